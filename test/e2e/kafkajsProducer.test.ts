// kafkajs 2.2.4 producers against a broker process: what they send (keys, values, headers,
// timestamps, order) is exactly what kcat and a raw Fetch read back, for acks 1 and -1, the
// idempotent producer, and gzip batches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompressionCodec } from '../../segments/compression.js';
import { compressionOf } from '../../segments/recordBatch.js';
import { BrokerProcess, kafkaFor, kafkajs, recordsOf, withRawClient, type FetchedBatch } from '../support/brokerProcess.js';
import { byPartition, fromDecoded, kcatConsume, type ReadRecord } from './records.js';

type Producer = ReturnType<ReturnType<typeof kafkaFor>['producer']>;

const PARTITIONS = 3;
const SENDS = 4;
const MESSAGES_PER_SEND = 12;
const BASE_TIMESTAMP = 1_700_000_000_000;

interface SentRecord {
  key: string;
  value: string;
  headers: Array<[string, string]>;
  timestamp: number;
}

/** Keys cycle over 5 values; a third of the records carry headers, one of them repeated. */
function makeRecords(label: string, send: number): SentRecord[] {
  return Array.from({ length: MESSAGES_PER_SEND }, (_, i) => {
    const n = send * MESSAGES_PER_SEND + i;
    const headers: Array<[string, string]> = n % 3 === 0 ? [['trace', `${label}-t${n}`], ['multi', 'a'], ['multi', `b${n}`]] : [];
    return { key: `key-${n % 5}`, value: `${label} value #${n}: ${'x'.repeat(n % 17)}`, headers, timestamp: BASE_TIMESTAMP + n * 7 };
  });
}

function toKafkajsMessage(record: SentRecord): { key: string; value: string; timestamp: string; headers: Record<string, string | string[]> } {
  const headers: Record<string, string | string[]> = {};
  for (const [key, value] of record.headers) {
    const existing = headers[key];
    headers[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  return { key: record.key, value: record.value, timestamp: String(record.timestamp), headers };
}

interface SendOutcome {
  records: SentRecord[];
  /** partition -> base offset the broker acknowledged for this send. */
  baseOffsets: Map<number, number>;
}

async function produceAll(producer: Producer, topic: string, label: string, options: { acks: number; compression?: number }): Promise<SendOutcome[]> {
  const outcomes: SendOutcome[] = [];
  for (let send = 0; send < SENDS; send++) {
    const records = makeRecords(label, send);
    const results = await producer.send({
      topic,
      acks: options.acks,
      ...(options.compression === undefined ? {} : { compression: options.compression }),
      messages: records.map(toKafkajsMessage),
    });
    const baseOffsets = new Map<number, number>();
    for (const result of results) {
      expect(result).toMatchObject({ topicName: topic, errorCode: 0 });
      baseOffsets.set(result.partition, Number(result.baseOffset));
    }
    outcomes.push({ records, baseOffsets });
  }
  return outcomes;
}

/**
 * What a reader returned must be every sent record exactly once, with its key, value, headers and
 * timestamp; per partition in send order; and each send's records on a partition must start at
 * the base offset the broker acknowledged for it.
 */
function expectSameAsSent(read: readonly ReadRecord[], outcomes: readonly SendOutcome[], reader: string): void {
  const sent = outcomes.flatMap((outcome) => outcome.records);
  expect(read.length, `${reader}: record count`).toBe(sent.length);
  const byValue = new Map(read.map((record) => [record.value, record]));
  expect(byValue.size, `${reader}: every value once`).toBe(sent.length);
  for (const record of sent) {
    const got = byValue.get(record.value);
    expect(got, `${reader}: ${record.value}`).toBeDefined();
    expect({ key: got!.key, value: got!.value, headers: got!.headers, timestamp: got!.timestamp }).toEqual({ key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp });
  }
  const partitions = byPartition(read);
  for (const [partition, records] of partitions) {
    // Offsets are dense from 0 and the order is the send order of the records on this partition.
    expect(records.map((record) => record.offset), `${reader}: offsets of partition ${partition}`).toEqual(records.map((_, i) => i));
    const order = new Map(sent.map((record, i) => [record.value, i]));
    const sentOrder = records.map((record) => order.get(record.value)!);
    expect(sentOrder, `${reader}: partition ${partition} in send order`).toEqual([...sentOrder].sort((a, b) => a - b));
  }
  for (const outcome of outcomes) {
    for (const [partition, baseOffset] of outcome.baseOffsets) {
      const values = new Set(outcome.records.map((record) => record.value));
      const mine = (partitions.get(partition) ?? []).filter((record) => values.has(record.value));
      expect(mine[0]?.offset, `${reader}: acknowledged base offset of partition ${partition}`).toBe(baseOffset);
    }
  }
}

describe('kafkajs 2.2.4 producer, read back by kcat and by a raw Fetch', () => {
  let broker: BrokerProcess;
  let admin: ReturnType<ReturnType<typeof kafkaFor>['admin']>;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
    admin = kafkaFor(broker).admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.disconnect();
    await broker?.cleanup();
  });

  async function produceScenario(topic: string, options: { acks: number; compression?: number; idempotent?: boolean }): Promise<{ outcomes: SendOutcome[]; batches: Map<number, FetchedBatch[]> }> {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    const producer = kafkaFor(broker).producer(options.idempotent === true ? { idempotent: true, maxInFlightRequests: 1 } : {});
    await producer.connect();
    let outcomes: SendOutcome[];
    try {
      outcomes = await produceAll(producer, topic, topic, options);
    } finally {
      await producer.disconnect();
    }
    const batches = new Map<number, FetchedBatch[]>();
    const raw: ReadRecord[] = [];
    await withRawClient(broker, async (client) => {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const fetched = await client.fetchAllBatches(topic, partition);
        batches.set(partition, fetched.batches);
        raw.push(...recordsOf(fetched.batches).map((record) => fromDecoded(partition, record)));
      }
    });
    expectSameAsSent(raw, outcomes, 'raw Fetch');
    expectSameAsSent(await kcatConsume(broker, topic, 'beginning'), outcomes, 'kcat -C');
    return { outcomes, batches };
  }

  it('acks=1: keyed records with headers and timestamps come back identical and in order', async () => {
    const { batches } = await produceScenario('kjs-acks1', { acks: 1 });
    for (const batch of [...batches.values()].flat()) {
      expect(compressionOf(batch.header.attributes)).toBe(CompressionCodec.none);
      expect(batch.header.producerId).toBe(-1);
    }
  });

  it('acks=-1: keyed records with headers and timestamps come back identical and in order', async () => {
    await produceScenario('kjs-acksall', { acks: -1 });
  });

  it('idempotent producer: records identical, batches carry its producer id and gapless sequences', async () => {
    const { batches } = await produceScenario('kjs-idempotent', { acks: -1, idempotent: true });
    const producerIds = new Set<number>();
    for (const [partition, list] of batches) {
      let expectedSequence = 0;
      for (const batch of list) {
        producerIds.add(batch.header.producerId);
        expect(batch.header.producerId, `partition ${partition}`).toBeGreaterThanOrEqual(0);
        expect(batch.header.producerEpoch).toBe(0);
        expect(batch.header.baseSequence, `partition ${partition} base sequence`).toBe(expectedSequence);
        expectedSequence += batch.header.recordCount;
      }
    }
    expect(producerIds.size).toBe(1);
  });

  it('gzip: batches are stored gzip-compressed as sent and their records come back identical', async () => {
    const { batches } = await produceScenario('kjs-gzip', { acks: -1, compression: kafkajs.CompressionTypes.GZIP });
    const all = [...batches.values()].flat();
    expect(all.length).toBeGreaterThan(0);
    for (const batch of all) expect(compressionOf(batch.header.attributes)).toBe(CompressionCodec.gzip);
  });
});
