// Garbage after a SIGKILL: bytes appended to the active segment of a partition (random bytes, the
// first half of a valid-looking batch, a whole batch with a wrong CRC) are cut off by recovery at
// the next start, with a WARN line naming the dropped bytes; every acknowledged record is still
// served, appends continue at the old log end, and `tidelog inspect verify` passes again.
import { appendFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRC_OFFSET, encodeBatch } from '../../segments/recordBatch.js';
import { BrokerProcess, kafkaFor, recordsOf, runTidelog, withRawClient } from '../support/brokerProcess.js';
import { SeededRandom } from '../support/random.js';

const SEED = 0x7042_0001;

describe('SIGKILL, then garbage appended to the active segment', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  /**
   * Each case has its own topic (one partition, flush.messages=1, small segments so the partition
   * has several and "the active one" is the highest): produce, SIGKILL, append
   * `garbage(leaderEpoch)` to the highest .log, restart. The recovery line must name that file and
   * exactly the appended bytes, from the old log end on.
   */
  async function corruptAndRecover(topic: string, garbage: (leaderEpoch: number, logEndOffset: number) => Buffer): Promise<void> {
    await broker.ensureRunning();
    const partitionDir = join(broker.dataDir, `${topic}-0`);
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'flush.messages', value: '1' }, { name: 'segment.bytes', value: '8192' }] }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    /** Every acknowledged value, in offset order. */
    const acked: string[] = [];
    const produceAcknowledged = async (count: number): Promise<void> => {
      const producer = kafkaFor(broker).producer();
      await producer.connect();
      try {
        for (let i = 0; i < count; i++) {
          const values = Array.from({ length: 10 }, (_, j) => `${topic}-${acked.length + j}-${'v'.repeat(100 + ((acked.length * 37) % 300))}`);
          const [result] = await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: 'k', value })) });
          expect(result).toMatchObject({ errorCode: 0, baseOffset: String(acked.length) });
          acked.push(...values);
        }
      } finally {
        await producer.disconnect();
      }
    };
    const expectEveryAcknowledgedRecord = async (): Promise<void> => {
      await withRawClient(broker, async (client) => {
        const { batches, highWatermark } = await client.fetchAllBatches(topic, 0);
        expect(highWatermark).toBe(acked.length);
        const records = recordsOf(batches);
        expect(records.map((record) => record.offset)).toEqual(acked.map((_, i) => i));
        expect(records.map((record) => record.value?.toString('utf8'))).toEqual(acked);
      });
    };

    await produceAcknowledged(6);
    const leaderEpoch = await withRawClient(broker, async (client) => (await client.fetchAllBatches(topic, 0, acked.length - 1)).batches[0]!.header.partitionLeaderEpoch);
    await broker.kill();

    const logs = (await readdir(partitionDir)).filter((name) => /^\d{20}\.log$/.test(name)).sort();
    expect(logs.length).toBeGreaterThan(1);
    const segment = join(partitionDir, logs[logs.length - 1]!);
    const bytes = garbage(leaderEpoch, acked.length);
    const sizeBefore = (await stat(segment)).size;
    await appendFile(segment, bytes);
    expect((await stat(segment)).size).toBe(sizeBefore + bytes.length);
    const before = await runTidelog(['inspect', 'verify', partitionDir]);
    expect(before.code, `verify before recovery:\n${before.stdout.toString('utf8')}${before.stderr}`).toBe(1);

    await broker.restart();
    const warning = await broker.waitForLine(/ WARN recovery truncated a torn or corrupt log tail /);
    expect(warning).toContain(`file=${JSON.stringify(segment)}`);
    expect(warning).toContain(`position=${sizeBefore} `);
    expect(warning).toContain(`droppedBytes=${bytes.length} `);
    expect(warning).toMatch(new RegExp(`droppedFromOffset=${acked.length}(\\s|$)`));
    expect((await stat(segment)).size).toBe(sizeBefore);
    await expectEveryAcknowledgedRecord();

    // Appends continue at the old log end, and what follows is served too.
    await produceAcknowledged(2);
    await expectEveryAcknowledgedRecord();

    await broker.stop();
    const after = await runTidelog(['inspect', 'verify', partitionDir]);
    expect(after.code, `verify after recovery:\n${after.stdout.toString('utf8')}${after.stderr}`).toBe(0);
  }

  it(`random bytes (seed ${SEED}) are truncated with a WARN naming the dropped bytes; acknowledged records survive; verify exits 0`, async () => {
    const random = new SeededRandom(SEED);
    await corruptAndRecover('torn-random', () => random.bytes(1_000));
  });

  it('the first half of a valid-looking batch (next offset, current epoch) is truncated; acknowledged records survive; verify exits 0', async () => {
    await corruptAndRecover('torn-half-batch', (leaderEpoch, logEndOffset) => {
      const batch = encodeBatch(
        Array.from({ length: 20 }, (_, i) => ({ key: Buffer.from('k'), value: Buffer.from(`never-acknowledged-${i}`), timestamp: 1_700_000_000_000 })),
        { baseOffset: logEndOffset, partitionLeaderEpoch: leaderEpoch },
      );
      return batch.subarray(0, Math.floor(batch.length / 2));
    });
  });

  it('a whole batch with a wrong CRC is truncated; acknowledged records survive; verify exits 0', async () => {
    await corruptAndRecover('torn-bad-crc', (leaderEpoch, logEndOffset) => {
      const batch = encodeBatch([{ key: Buffer.from('k'), value: Buffer.from('never-acknowledged'), timestamp: 1_700_000_000_000 }], { baseOffset: logEndOffset, partitionLeaderEpoch: leaderEpoch });
      batch.writeUInt32BE((batch.readUInt32BE(CRC_OFFSET) ^ 0x00ff00ff) >>> 0, CRC_OFFSET);
      return batch;
    });
  });
});
