// ListOffsets against a broker process, by kafkajs admin and by a raw client: earliest, latest and
// by-timestamp answers match the timestamps kafkajs produced explicitly, per record (inside a gzip
// batch too, and with timestamps out of order within a partition).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompressionCodec } from '../../segments/compression.js';
import { compressionOf } from '../../segments/recordBatch.js';
import { BrokerProcess, kafkaFor, kafkajs, recordsOf, withRawClient } from '../support/brokerProcess.js';

const TOPIC = 'timestamps';
const T0 = 1_700_000_000_000;
/** Partition 0: 30 records at T0 + 10 i, sent as three batches (the middle one gzip). */
const P0_COUNT = 30;
const p0Timestamp = (i: number): number => T0 + 10 * i;
/** Partition 1: one batch whose timestamps are out of order. */
const P1_TIMESTAMPS = [T0 + 500, T0 + 100, T0 + 900, T0 + 300, T0 + 700];

/** Kafka's rule: the first offset whose timestamp is >= the target, or -1 (timestamp -1) if none. */
function expected(timestamps: readonly number[], target: number): { offset: number; timestamp: number } {
  const offset = timestamps.findIndex((timestamp) => timestamp >= target);
  return offset < 0 ? { offset: -1, timestamp: -1 } : { offset, timestamp: timestamps[offset]! };
}

const P0_TIMESTAMPS = Array.from({ length: P0_COUNT }, (_, i) => p0Timestamp(i));
/** Targets: before everything, exact hits, between records, inside the gzip batch, past the end. */
const P0_TARGETS = [0, T0 - 1, T0, T0 + 1, T0 + 55, T0 + 99, T0 + 100, T0 + 150, T0 + 151, T0 + 199, T0 + 200, T0 + 290, T0 + 291, T0 + 10_000];
const P1_TARGETS = [T0, T0 + 100, T0 + 200, T0 + 500, T0 + 501, T0 + 600, T0 + 800, T0 + 900, T0 + 901];

describe('ListOffsets: earliest, latest and by timestamp', () => {
  let broker: BrokerProcess;
  let admin: ReturnType<ReturnType<typeof kafkaFor>['admin']>;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
    admin = kafkaFor(broker).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafkaFor(broker).producer();
    await producer.connect();
    try {
      const message = (i: number, timestamp: number, partition: number) => ({ partition, key: `k${i}`, value: `v${i}`, timestamp: String(timestamp) });
      for (const [from, to, compression] of [[0, 10, kafkajs.CompressionTypes.None], [10, 20, kafkajs.CompressionTypes.GZIP], [20, 30, kafkajs.CompressionTypes.None]] as const) {
        await producer.send({ topic: TOPIC, acks: -1, compression, messages: P0_TIMESTAMPS.slice(from, to).map((timestamp, i) => message(from + i, timestamp, 0)) });
      }
      await producer.send({ topic: TOPIC, acks: -1, messages: P1_TIMESTAMPS.map((timestamp, i) => message(i, timestamp, 1)) });
    } finally {
      await producer.disconnect();
    }
  });

  afterAll(async () => {
    await admin?.disconnect();
    await broker?.cleanup();
  });

  it('the data under test: partition 0 holds three batches (the middle one gzip), partition 1 one batch', async () => {
    await withRawClient(broker, async (client) => {
      const p0 = (await client.fetchAllBatches(TOPIC, 0)).batches.map((batch) => [batch.header.baseOffset, batch.header.recordCount, compressionOf(batch.header.attributes)]);
      expect(p0).toEqual([[0, 10, CompressionCodec.none], [10, 10, CompressionCodec.gzip], [20, 10, CompressionCodec.none]]);
      const p1 = await client.fetchAllBatches(TOPIC, 1);
      expect(p1.batches).toHaveLength(1);
      expect(recordsOf(p1.batches).map((record) => record.timestamp)).toEqual(P1_TIMESTAMPS);
    });
  });

  for (const version of [1, 2]) {
    it(`raw ListOffsets v${version}: -2 is the log start, -1 the log end, each timestamp the first record at or after it`, async () => {
      await withRawClient(broker, async (client) => {
        for (const [partition, count] of [[0, P0_COUNT], [1, P1_TIMESTAMPS.length]] as const) {
          expect(await client.listOffsets(TOPIC, partition, -2n, version)).toMatchObject({ errorCode: 0, offset: 0n, timestamp: -1n });
          expect(await client.listOffsets(TOPIC, partition, -1n, version)).toMatchObject({ errorCode: 0, offset: BigInt(count), timestamp: -1n });
        }
        for (const [partition, timestamps, targets] of [[0, P0_TIMESTAMPS, P0_TARGETS], [1, P1_TIMESTAMPS, P1_TARGETS]] as const) {
          for (const target of targets) {
            const answer = await client.listOffsets(TOPIC, partition, BigInt(target), version);
            const want = expected(timestamps, target);
            expect({ target, errorCode: answer.errorCode, offset: Number(answer.offset), timestamp: Number(answer.timestamp) }, `partition ${partition}`).toEqual({ target, errorCode: 0, ...want });
          }
        }
      });
    });
  }

  it('kafkajs admin fetchTopicOffsetsByTimestamp answers the first record at or after each timestamp (the log end when none is)', async () => {
    for (const target of [...P0_TARGETS, ...P1_TARGETS]) {
      const answers = (await admin.fetchTopicOffsetsByTimestamp(TOPIC, target)).sort((a, b) => a.partition - b.partition);
      const want = [P0_TIMESTAMPS, P1_TIMESTAMPS].map((timestamps, partition) => {
        const found = expected(timestamps, target).offset;
        return { partition, offset: String(found >= 0 ? found : timestamps.length) };
      });
      expect({ target, answers }).toEqual({ target, answers: want });
    }
  });

  it('kafkajs admin fetchTopicOffsets reports log start and end per partition', async () => {
    const offsets = (await admin.fetchTopicOffsets(TOPIC)).sort((a, b) => a.partition - b.partition);
    expect(offsets).toEqual([
      { partition: 0, offset: String(P0_COUNT), high: String(P0_COUNT), low: '0' },
      { partition: 1, offset: String(P1_TIMESTAMPS.length), high: String(P1_TIMESTAMPS.length), low: '0' },
    ]);
  });
});
