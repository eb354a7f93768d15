// Consumer-side deserializers: values written by the bundled producer with a serializer come back
// from records() as the same values with the matching deserializer; null keys and values stay
// null; a value the deserializer refuses is a KafkaRecordDeserializationError (a
// KafkaSerializationError) naming topic, partition and offset, the position stays at that record,
// and a seek past it continues. Runs a broker child process from dist/ (`npm run build` first).
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { Consumer, createConsumer, KafkaRecordDeserializationError } from '../client/consumer/consumer.js';
import { KafkaConfigError } from '../client/errors.js';
import { createProducer, type ProducerRecord } from '../client/producer.js';
import type { ConsumerRecord } from '../client/recordDecoder.js';
import { KafkaSerializationError, type Deserializer } from '../client/serializers.js';
import { BrokerProcess } from './support/brokerProcess.js';

const IDLE_MS = 1_500;
let broker: BrokerProcess;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'num.partitions': '1' } });
});

afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await broker?.cleanup();
});

async function produce(topic: string, records: readonly ProducerRecord[], serializers: { keySerializer?: 'string' | 'bytes'; valueSerializer?: 'json' | 'msgpack' | 'string' | 'bytes' }): Promise<void> {
  const producer = createProducer({ bootstrapServers: [broker.address], acks: 1, ...serializers });
  try {
    await producer.send(topic, records);
  } finally {
    await producer.close();
  }
}

async function take<K, V>(consumer: Consumer<K, V>, count: number): Promise<Array<ConsumerRecord<K, V>>> {
  const out: Array<ConsumerRecord<K, V>> = [];
  for await (const record of consumer.records({ idleTimeoutMs: IDLE_MS })) {
    out.push(record);
    if (out.length >= count) break;
  }
  return out;
}

const OBJECTS = [{ id: 1, name: 'first', tags: ['a', 'b'], nested: { ok: true } }, { id: 2, name: 'zwei ✓', tags: [], nested: { ok: false } }, [1, 2, 3], 'plain string', 42];

describe('consumer deserializers', () => {
  it('json and msgpack values written by the producer come back as the same values; null stays null; keys as strings', async () => {
    for (const format of ['json', 'msgpack'] as const) {
      const topic = `deserialize-${format}`;
      const records: ProducerRecord[] = [...OBJECTS.map((value, i) => ({ key: `k${i}`, value })), { key: null, value: null }];
      await produce(topic, records, { keySerializer: 'string', valueSerializer: format });
      const consumer = createConsumer({ bootstrapServers: [broker.address], maxWaitMs: 100, keyDeserializer: 'string', valueDeserializer: format });
      closers.push(() => consumer.close());
      consumer.assign([{ topic, partition: 0, offset: 0 }]);
      const read = await take(consumer, records.length);
      expectTypeOf(read[0]!.key).toEqualTypeOf<string | null>();
      expectTypeOf(read[0]!.value).toEqualTypeOf<unknown>();
      expect(read.map((record) => record.value), format).toEqual([...OBJECTS, null]);
      expect(read.map((record) => record.key), format).toEqual([...OBJECTS.map((_, i) => `k${i}`), null]);
      expect(read.map((record) => Number(record.offset))).toEqual(records.map((_, i) => i));
    }
  });

  it("'string' values are strings; the default stays the record's bytes (Buffer)", async () => {
    const topic = 'deserialize-string';
    const texts = ['hello', 'wörld ✓', ''];
    await produce(topic, texts.map((value) => ({ value })), { valueSerializer: 'string' });
    const asText = createConsumer({ bootstrapServers: [broker.address], maxWaitMs: 100, valueDeserializer: 'string' });
    const asBytes = createConsumer({ bootstrapServers: [broker.address], maxWaitMs: 100 });
    closers.push(() => asText.close(), () => asBytes.close());
    for (const consumer of [asText, asBytes]) consumer.assign([{ topic, partition: 0, offset: 0 }]);
    const text = await take(asText, texts.length);
    const bytes = await take(asBytes, texts.length);
    expectTypeOf(text[0]!.value).toEqualTypeOf<string | null>();
    expectTypeOf(bytes[0]!.value).toEqualTypeOf<Buffer | null>();
    expect(text.map((record) => record.value)).toEqual(texts);
    expect(bytes.every((record) => Buffer.isBuffer(record.value))).toBe(true);
    expect(bytes.map((record) => record.value!.toString('utf8'))).toEqual(texts);
  });

  it('a custom Deserializer<T> types and produces the values', async () => {
    const topic = 'deserialize-custom';
    await produce(topic, [{ value: '3' }, { value: '4' }], { valueSerializer: 'string' });
    const squares: Deserializer<number> = { name: 'square', deserialize: (bytes) => Number(bytes.toString()) ** 2 };
    const consumer = createConsumer({ bootstrapServers: [broker.address], maxWaitMs: 100, valueDeserializer: squares });
    closers.push(() => consumer.close());
    consumer.assign([{ topic, partition: 0, offset: 0 }]);
    const read = await take(consumer, 2);
    expectTypeOf(read[0]!.value).toEqualTypeOf<number | null>();
    expect(read.map((record) => record.value)).toEqual([9, 16]);
  });

  it('a malformed value throws a KafkaSerializationError naming topic, partition and offset; the position stays there; a seek past it continues', async () => {
    const topic = 'deserialize-malformed';
    await produce(topic, [{ value: '{"n":0}' }, { value: '{"n":1}' }, { value: '{"n": oops' }, { value: '{"n":3}' }], { valueSerializer: 'string' });
    const consumer = createConsumer({ bootstrapServers: [broker.address], maxWaitMs: 100, valueDeserializer: 'json' });
    closers.push(() => consumer.close());
    consumer.assign([{ topic, partition: 0, offset: 0 }]);
    const seen: unknown[] = [];
    let thrown: unknown = null;
    try {
      for await (const record of consumer.records({ idleTimeoutMs: IDLE_MS })) seen.push(record.value);
    } catch (error) {
      thrown = error;
    }
    expect(seen).toEqual([{ n: 0 }, { n: 1 }]);
    expect(thrown).toBeInstanceOf(KafkaSerializationError);
    expect(thrown).toBeInstanceOf(KafkaRecordDeserializationError);
    const error = thrown as KafkaRecordDeserializationError;
    expect([error.topic, error.partition, error.offset, error.field, error.format]).toEqual([topic, 0, 2n, 'value', 'json']);
    expect(error.message).toContain(`${topic}-0 at offset 2`);
    expect(consumer.position(topic, 0)).toBe(2n);

    // Iterating again reaches the same record again: nothing is skipped silently.
    await expect(take(consumer, 1)).rejects.toThrow(KafkaRecordDeserializationError);
    expect(consumer.position(topic, 0)).toBe(2n);

    consumer.seek(topic, 0, error.offset + 1n);
    const rest = await take(consumer, 1);
    expect(rest.map((record) => [Number(record.offset), record.value])).toEqual([[3, { n: 3 }]]);
  });

  it('bad deserializer options are refused with a precise message', () => {
    const base = { bootstrapServers: ['127.0.0.1:9'] };
    expect(() => createConsumer({ ...base, valueDeserializer: 'yaml' as unknown as 'json' })).toThrow(new KafkaConfigError('valueDeserializer must be one of bytes, string, json, msgpack or a Deserializer, got "yaml"'));
    expect(() => createConsumer({ ...base, keyDeserializer: {} as unknown as Deserializer })).toThrow(/keyDeserializer must be one of .* or an object with a deserialize\(bytes\) function/);
  });

  it('the types stay sound: a Consumer of Buffer values takes no deserializer that yields something else', () => {
    const base = { bootstrapServers: ['127.0.0.1:9'] };
    const typed = (): Consumer<Buffer, string> => new Consumer<Buffer, string>({ ...base, valueDeserializer: 'string' });
    // @ts-expect-error: without type arguments the values are Buffers, and 'string' yields strings
    const untyped = (): Consumer => new Consumer({ ...base, valueDeserializer: 'string' });
    // @ts-expect-error: 'json' yields unknown, not a number
    const wrong = (): Consumer<Buffer, number> => new Consumer<Buffer, number>({ ...base, valueDeserializer: 'json' });
    expectTypeOf(typed).returns.toEqualTypeOf<Consumer<Buffer, string>>();
    expect([untyped, wrong].every((make) => typeof make === 'function')).toBe(true);
  });
});
