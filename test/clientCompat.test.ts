// Compatibility both ways, through a real broker: what the bundled producer writes (every codec it
// writes; keys, null keys, null values, headers, explicit timestamps) reads back identically in
// kcat and kafkajs, and what kcat writes with every codec librdkafka has reads back identically in
// the bundled consumer. kafkajs only ships gzip among the codecs, so it reads the none/gzip cases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, type Consumer } from '../client/consumer/consumer.js';
import { createProducer } from '../client/producer.js';
import type { ProducerCompression } from '../client/batchBuilder.js';
import { compressionName } from '../segments/compression.js';
import { BrokerProcess, kafkaFor, kcat, waitUntil, withRawClient } from './support/brokerProcess.js';
import { kcatConsume } from './e2e/records.js';

const COUNT = 200;
const BASE_TIMESTAMP = 1_760_000_000_000;
let broker: BrokerProcess;

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'num.partitions': '1', 'group.initial.rebalance.delay.ms': '0' } });
});

afterAll(async () => {
  await broker?.cleanup();
});

/** One record in a shape every reader can produce; null stays null where the reader can tell. */
interface Seen {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Array<[string, string]>;
}

function sent(i: number): Seen {
  return {
    offset: i,
    timestamp: BASE_TIMESTAMP + i * 1000,
    key: i % 7 === 0 ? null : `key-${i % 13}`,
    value: i % 5 === 0 ? null : `value-${i}-${'x'.repeat(i % 50)}`,
    headers: i % 3 === 0 ? [] : [['trace', `t${i}`], ['source', 'bundled']],
  };
}

async function produceBundled(topic: string, compression: ProducerCompression): Promise<void> {
  const producer = createProducer({ bootstrapServers: [broker.address], compression, lingerMs: 20 });
  try {
    await producer.send(
      topic,
      Array.from({ length: COUNT }, (_, i) => {
        const record = sent(i);
        return { key: record.key, value: record.value, timestamp: record.timestamp, headers: Object.fromEntries(record.headers) };
      }),
    );
  } finally {
    await producer.close();
  }
}

async function readWithKafkajs(topic: string, count: number): Promise<Seen[]> {
  const consumer = kafkaFor(broker, { clientId: `compat-${topic}` }).consumer({ groupId: `compat-${topic}`, sessionTimeout: 10_000, heartbeatInterval: 500 });
  const seen: Seen[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push({
          offset: Number(message.offset),
          timestamp: Number(message.timestamp),
          key: message.key === null ? null : message.key.toString('utf8'),
          value: message.value === null ? null : message.value.toString('utf8'),
          headers: Object.entries(message.headers ?? {}).map(([key, value]) => [key, String(value)]),
        });
      },
    });
    await waitUntil(() => seen.length >= count, 30_000, `kafkajs to read ${count} records of ${topic}`);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

async function readBundled(topic: string, count: number): Promise<Seen[]> {
  const consumer: Consumer = createConsumer({ bootstrapServers: [broker.address], autoOffsetReset: 'earliest', maxWaitMs: 100 });
  const seen: Seen[] = [];
  try {
    consumer.assign([{ topic, partition: 0 }]);
    for await (const record of consumer.records({ idleTimeoutMs: 3_000 })) {
      seen.push({
        offset: Number(record.offset),
        timestamp: Number(record.timestamp),
        key: record.key === null ? null : record.key.toString('utf8'),
        value: record.value === null ? null : record.value.toString('utf8'),
        headers: record.headers.map((header) => [header.key, header.value === null ? '' : header.value.toString('utf8')]),
      });
      if (seen.length >= count) break;
    }
  } finally {
    await consumer.close();
  }
  return seen;
}

/** kcat prints null keys and values as empty strings; compare against that view. */
function asKcatSees(record: Seen): Omit<Seen, 'key' | 'value'> & { key: string; value: string } {
  return { ...record, key: record.key ?? '', value: record.value ?? '' };
}

describe('bundled producer -> kcat and kafkajs', () => {
  for (const compression of ['none', 'gzip', 'snappy', 'lz4'] as const) {
    it(`${compression}: kcat reads every key, value, header and timestamp as sent`, async () => {
      const topic = `compat-bundled-${compression}`;
      await produceBundled(topic, compression);
      const { batches } = await withRawClient(broker, (client) => client.fetchAllBatches(topic, 0));
      expect(new Set(batches.map((batch) => compressionName(batch.header.attributes & 7)))).toEqual(new Set([compression]));
      const read = await kcatConsume(broker, topic, 'beginning');
      const expected = Array.from({ length: COUNT }, (_, i) => asKcatSees(sent(i)));
      expect(read.map(({ partition: _partition, ...rest }) => rest)).toEqual(expected);
    });
  }

  for (const compression of ['none', 'gzip'] as const) {
    it(`${compression}: kafkajs reads every key, value (nulls as null), header and timestamp as sent`, async () => {
      const topic = `compat-bundled-kjs-${compression}`;
      await produceBundled(topic, compression);
      const read = await readWithKafkajs(topic, COUNT);
      expect(read).toEqual(Array.from({ length: COUNT }, (_, i) => sent(i)));
    });
  }
});

describe('kcat producer -> bundled consumer', () => {
  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`${codec}: the bundled consumer reads what kcat wrote exactly as kcat reads it back`, async () => {
      const topic = `compat-kcat-${codec}`;
      const lines = Array.from({ length: COUNT }, (_, i) => (i % 9 === 0 ? `k${i}:` : `k${i}:v${i}-${'y'.repeat(i % 40)}`));
      await kcat(broker, ['-P', '-t', topic, '-p', '0', '-K', ':', '-Z', '-z', codec, '-H', 'codec=' + codec, '-X', 'linger.ms=50'], { input: lines.join('\n') + '\n' });
      const byKcat = await kcatConsume(broker, topic, 'beginning');
      expect(byKcat).toHaveLength(COUNT);
      const read = await readBundled(topic, COUNT);
      expect(read.map(asKcatSees)).toEqual(byKcat.map(({ partition: _partition, ...rest }) => rest));
      // -Z: an empty value is a null value, and the bundled consumer sees null, not ''.
      expect(read.filter((record) => record.value === null).map((record) => record.offset)).toEqual(lines.flatMap((line, i) => (line.endsWith(':') ? [i] : [])));
    });
  }
});
