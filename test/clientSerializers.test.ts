// Serializers: each format round-trips, refuses what it cannot encode with a named error, and the
// producer's default sends bytes and strings as they are and every other value as msgpack.
import { unpack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaConfigError } from '../client/errors.js';
import { createProducer } from '../client/producer.js';
import { KafkaSerializationError, deserializers, resolveDeserializer, resolveSerializer, serializers } from '../client/serializers.js';
import { BrokerProcess, withRawClient } from './support/brokerProcess.js';

function bytesOf(value: Uint8Array | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
}

describe('serializers', () => {
  const sample = { id: 7, name: 'tide', tags: ['a', 'b'], nested: { ok: true, score: 1.5 } };

  it('json and msgpack round-trip an object; string and bytes round-trip their own types', () => {
    expect(deserializers.json.deserialize(bytesOf(serializers.json.serialize(sample)))).toEqual(sample);
    expect(deserializers.msgpack.deserialize(bytesOf(serializers.msgpack.serialize(sample)))).toEqual(sample);
    expect(deserializers.string.deserialize(bytesOf(serializers.string.serialize('héllo ☃')))).toBe('héllo ☃');
    const raw = Buffer.from([0, 1, 2, 255]);
    expect(deserializers.bytes.deserialize(bytesOf(serializers.bytes.serialize(raw)))).toEqual(raw);
  });

  it('msgpack writes plain MessagePack maps that a generic reader decodes', () => {
    const packed = bytesOf(serializers.msgpack.serialize({ a: 1 }));
    expect(packed[0]).toBe(0x81); // fixmap with one entry, no record extension
    expect(unpack(packed)).toEqual({ a: 1 });
  });

  it('auto keeps strings and bytes as they are and packs everything else', () => {
    expect(serializers.auto.serialize('text')).toBe('text');
    const raw = new Uint8Array([9, 8]);
    expect(serializers.auto.serialize(raw)).toBe(raw);
    expect(unpack(bytesOf(serializers.auto.serialize([1, 2, 3])))).toEqual([1, 2, 3]);
    expect(unpack(bytesOf(serializers.auto.serialize(42)))).toBe(42);
  });

  it('a value a format cannot carry is refused with KafkaSerializationError naming the format', () => {
    expect(() => serializers.string.serialize(5 as unknown as string)).toThrow(KafkaSerializationError);
    expect(() => serializers.bytes.serialize('x' as unknown as Uint8Array)).toThrow(/bytes: expected a Uint8Array or Buffer, got a string/);
    expect(() => serializers.json.serialize(undefined)).toThrow(/json: .*no JSON form/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => serializers.json.serialize(cyclic)).toThrow(KafkaSerializationError);
    expect(() => deserializers.json.deserialize(Buffer.from('{not json'))).toThrow(/json: .*\(9 bytes\)/);
    expect(() => deserializers.msgpack.deserialize(Buffer.from([0x92, 0x01]))).toThrow(/msgpack: .*\(2 bytes\)/);
  });

  it('resolves by name and rejects unknown names', () => {
    expect(resolveSerializer(undefined).name).toBe('auto');
    expect(resolveSerializer('json').name).toBe('json');
    expect(resolveDeserializer(undefined).name).toBe('bytes');
    expect(resolveDeserializer('msgpack').name).toBe('msgpack');
    expect(() => resolveSerializer('yaml' as 'json')).toThrow(/unknown serializer/);
    expect(() => resolveDeserializer('yaml' as 'json')).toThrow(/unknown deserializer/);
  });
});

describe('producer serializers', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: { 'num.partitions': '1' } });
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it('by default an object value is sent as msgpack, a string as UTF-8, bytes as they are, null as a null value', async () => {
    const producer = createProducer({ bootstrapServers: [`127.0.0.1:${broker.port}`] });
    try {
      await producer.send('ser-auto', [
        { key: 'k1', value: { user: 'ann', n: 3 } },
        { key: 'k2', value: 'plain' },
        { key: 'k3', value: Buffer.from([1, 2, 3]) },
        { key: 'k4', value: null },
      ]);
    } finally {
      await producer.close();
    }
    const records = await withRawClient(broker, (client) => client.fetchAllRecords('ser-auto', 0));
    expect(records.map((r) => r.key?.toString())).toEqual(['k1', 'k2', 'k3', 'k4']);
    expect(unpack(records[0]!.value!)).toEqual({ user: 'ann', n: 3 });
    expect(records[1]!.value!.toString()).toBe('plain');
    expect([...records[2]!.value!]).toEqual([1, 2, 3]);
    expect(records[3]!.value).toBeNull();
  });

  it('valueSerializer json and keySerializer json apply to every record', async () => {
    const producer = createProducer({ bootstrapServers: [`127.0.0.1:${broker.port}`], valueSerializer: 'json', keySerializer: 'json' });
    try {
      await producer.send('ser-json', [{ key: { id: 1 }, value: { a: [1, 2] } }, { key: 2, value: 'str' }]);
    } finally {
      await producer.close();
    }
    const records = await withRawClient(broker, (client) => client.fetchAllRecords('ser-json', 0));
    expect(records.map((r) => [r.key?.toString(), r.value?.toString()])).toEqual([
      ['{"id":1}', '{"a":[1,2]}'],
      ['2', '"str"'],
    ]);
  });

  it('an unknown serializer name is a KafkaConfigError at construction', () => {
    expect(() => createProducer({ bootstrapServers: ['127.0.0.1:1'], valueSerializer: 'yaml' as 'json' })).toThrow(KafkaConfigError);
  });
});
