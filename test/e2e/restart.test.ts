// A broker restart between produce and consume loses nothing that was acknowledged: after a clean
// stop (SIGTERM, exit 0, clean-shutdown marker), and after a SIGKILL that lands while a kafkajs
// producer is sending with acks=-1 to a topic with flush.messages=1 (acknowledged = fsynced).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, kafkaFor, recordsOf, withRawClient, withTimeout } from '../support/brokerProcess.js';
import { fromDecoded, kcatConsume, type ReadRecord } from './records.js';

interface AckedSend {
  partition: number;
  baseOffset: number;
  values: string[];
}

async function readPartition(broker: BrokerProcess, topic: string, partition: number): Promise<ReadRecord[]> {
  return withRawClient(broker, async (client) => recordsOf((await client.fetchAllBatches(topic, partition)).batches).map((record) => fromDecoded(partition, record)));
}

/** Each acknowledged send's values sit at its acknowledged offsets, in order. */
function expectAcknowledgedPresent(records: readonly ReadRecord[], acked: readonly AckedSend[]): void {
  const byOffset = new Map(records.map((record) => [`${record.partition}/${record.offset}`, record.value]));
  const missing: string[] = [];
  for (const send of acked) {
    send.values.forEach((value, i) => {
      const got = byOffset.get(`${send.partition}/${send.baseOffset + i}`);
      if (got !== value) missing.push(`${value} expected at ${send.partition}/${send.baseOffset + i}, found ${got ?? 'nothing'}`);
    });
  }
  expect(missing.slice(0, 20), `${missing.length} acknowledged records missing or moved`).toEqual([]);
}

describe('broker restart between produce and consume', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it('clean restart (SIGTERM, exit 0, clean-shutdown marker): every acknowledged record is read back, and appends continue at the log end', async () => {
    const topic = 'restart-clean';
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    await admin.disconnect();

    const acked: AckedSend[] = [];
    const producer = kafkaFor(broker).producer();
    await producer.connect();
    for (let send = 0; send < 6; send++) {
      const partition = send % 2;
      const values = Array.from({ length: 25 }, (_, i) => `clean-${send}-${i}`);
      const [result] = await producer.send({ topic, acks: -1, messages: values.map((value) => ({ partition, key: `k${send}`, value })) });
      acked.push({ partition, baseOffset: Number(result!.baseOffset), values });
    }
    await producer.disconnect();

    await broker.stop();
    expect(existsSync(join(broker.dataDir, 'clean-shutdown'))).toBe(true);
    expect(broker.runLines().some((line) => / INFO broker stopped /.test(line))).toBe(true);

    await broker.restart();
    const afterRestart = broker.runLines();
    expect(afterRestart.filter((line) => /recovery (truncated|deleted)/.test(line))).toEqual([]);
    const records = [...(await readPartition(broker, topic, 0)), ...(await readPartition(broker, topic, 1))];
    expect(records).toHaveLength(150);
    expectAcknowledgedPresent(records, acked);
    const viaKcat = await kcatConsume(broker, topic, 'beginning');
    expect(viaKcat.map((record) => `${record.partition}/${record.offset}/${record.value}`).sort()).toEqual(records.map((record) => `${record.partition}/${record.offset}/${record.value}`).sort());

    const next = kafkaFor(broker).producer();
    await next.connect();
    const [result] = await next.send({ topic, acks: -1, messages: [{ partition: 0, value: 'after-restart' }] });
    await next.disconnect();
    expect(result).toMatchObject({ partition: 0, errorCode: 0, baseOffset: '75' });
  });

  it('SIGKILL while an acks=-1 producer is sending (flush.messages=1), three times: after each restart every acknowledged record is read back', async () => {
    const topic = 'restart-killed';
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    // Small segments, so the kill may also land around a roll.
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'flush.messages', value: '1' }, { name: 'segment.bytes', value: String(64 * 1024) }] }], waitForLeaders: true });
    await admin.disconnect();

    const LOOPS = 4;
    const ROUNDS = 3;
    const KILL_AFTER_ACKED_SENDS = 150;
    const acked: AckedSend[] = [];
    const attempted = new Set<string>();

    /** Producer loops send until the broker dies under them; the kill comes from inside a loop. */
    const produceUntilKilled = async (round: number): Promise<{ inFlightAtKill: number; ackedThisRound: number }> => {
      const ackedBefore = acked.length;
      let inFlight = 0;
      let inFlightAtKill = -1;
      let killed: Promise<unknown> | null = null;
      const producer = kafkaFor(broker, { retries: 0, requestTimeoutMs: 5_000 }).producer({ retry: { retries: 0 } });
      await producer.connect();
      const loop = async (id: number): Promise<void> => {
        for (let send = 0; ; send++) {
          const values = Array.from({ length: 1 + (send % 5) }, (_, i) => `kill-r${round}-${id}-${send}-${i}-${'p'.repeat((send * 31) % 400)}`);
          for (const value of values) attempted.add(value);
          inFlight++;
          try {
            const [result] = await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: `loop-${id}`, value })) });
            acked.push({ partition: 0, baseOffset: Number(result!.baseOffset), values });
          } catch {
            return; // the broker died under this send: not acknowledged
          } finally {
            inFlight--;
          }
          if (acked.length - ackedBefore >= KILL_AFTER_ACKED_SENDS && killed === null) {
            inFlightAtKill = inFlight;
            killed = broker.kill();
          }
        }
      };
      await withTimeout(Promise.all(Array.from({ length: LOOPS }, (_, id) => loop(id))), 60_000, 'the producer loops to end at the kill');
      await killed;
      await withTimeout(producer.disconnect(), 10_000, 'the producer to disconnect');
      return { inFlightAtKill, ackedThisRound: acked.length - ackedBefore };
    };

    for (let round = 0; round < ROUNDS; round++) {
      const { inFlightAtKill, ackedThisRound } = await produceUntilKilled(round);
      // Sends were under way when the process died.
      expect(inFlightAtKill).toBeGreaterThan(0);
      expect(ackedThisRound).toBeGreaterThanOrEqual(KILL_AFTER_ACKED_SENDS);

      await broker.restart();
      // The summary line of the start: the killed partition's tail was scanned.
      await broker.waitForLine(/INFO opened partition logs .*\bscanned=[1-9]/);
      const records = await readPartition(broker, topic, 0);
      expectAcknowledgedPresent(records, acked);
      // Nothing but what was sent, each record at most once, offsets gapless.
      expect(records.map((record) => record.offset)).toEqual(records.map((_, i) => i));
      expect(records.filter((record) => !attempted.has(record.value))).toEqual([]);
      expect(new Set(records.map((record) => record.value)).size).toBe(records.length);
    }
  });
});
