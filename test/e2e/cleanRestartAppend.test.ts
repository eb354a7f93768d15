// Appends after a clean restart, when the active segment was closed before its first index
// entry (less than index.interval.bytes = 4096 bytes in it): the .index and .timeindex written at
// shutdown are empty files, and the appends that follow the restart must still succeed, roll
// segments, and be served, with nothing refused left behind.
//
// These tests fail today (product bug, see the report of the e2e suite): an OffsetIndex or
// TimeIndex loaded from a 0-byte file cannot grow (its capacity doubles from 0), so the first
// index entry after the restart throws ERR_BUFFER_OUT_OF_BOUNDS. With the default flush policy
// the broker process dies of the unhandled rejection; with flush.messages=1 every append to the
// partition is refused with KAFKA_STORAGE_ERROR, a roll leaves a stray next segment file behind
// (EEXIST ever after), and the refused batch's bytes stay in the .log and are served after the
// next restart.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BrokerProcess, kafkaFor, recordsOf, withRawClient } from '../support/brokerProcess.js';

/** 10 records of about 220 bytes: one batch of ~2.2 KB, so two batches stay under 4096 bytes. */
function batchValues(topic: string, send: number): string[] {
  return Array.from({ length: 10 }, (_, i) => `${topic}-${send}-${i}-${'v'.repeat(200)}`);
}

describe('appends after a clean restart whose active segment has no index entry yet', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
  });

  beforeEach(async () => {
    // A test that crashed the broker must not take the next one with it.
    await broker.ensureRunning();
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  async function scenario(topic: string, configEntries: Array<{ name: string; value: string }>, sendsAfterRestart: number): Promise<void> {
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const acked: string[] = [];
    let send = 0;
    const produce = async (count: number): Promise<void> => {
      const producer = kafkaFor(broker, { retries: 1 }).producer({ retry: { retries: 1 } });
      await producer.connect();
      try {
        for (let i = 0; i < count; i++) {
          const values = batchValues(topic, send++);
          let result;
          try {
            [result] = await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: 'k', value })) });
          } catch (error) {
            throw new Error(`send ${send - 1} failed: ${String(error)}; broker alive: ${broker.isAlive()}\n${broker.stderrTail(15)}`);
          }
          expect(result).toMatchObject({ errorCode: 0, baseOffset: String(acked.length) });
          acked.push(...values);
        }
      } finally {
        await producer.disconnect();
      }
    };
    const expectServed = async (): Promise<void> => {
      const records = await withRawClient(broker, async (client) => recordsOf((await client.fetchAllBatches(topic, 0)).batches));
      expect(records.map((record) => record.value?.toString('utf8'))).toEqual(acked);
      expect(records.map((record) => record.offset)).toEqual(acked.map((_, i) => i));
    };

    await produce(2); // ~4.4 KB: no index entry yet
    await broker.stop();
    await broker.restart();
    await produce(sendsAfterRestart);
    expect(broker.isAlive()).toBe(true);
    expect(broker.runLines().filter((line) => / ERROR /.test(line))).toEqual([]);
    await expectServed();
    // And again after one more clean restart: exactly the acknowledged records, nothing refused.
    await broker.stop();
    await broker.restart();
    await expectServed();
  }

  it('default flush policy: the appends succeed and the broker keeps running', async () => {
    await scenario('clean-restart-append', [], 3);
  });

  it('flush.messages=1 with 8 KiB segments: the appends succeed and the segment rolls', async () => {
    await scenario('clean-restart-append-roll', [{ name: 'flush.messages', value: '1' }, { name: 'segment.bytes', value: '8192' }], 6);
    expect(broker.lines.some((line) => /INFO rolled segment .*clean-restart-append-roll-0/.test(line))).toBe(true);
  });
});
