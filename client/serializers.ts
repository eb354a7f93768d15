// Serializers turn application values into record bytes and back. Kafka records carry no type tag,
// so producer and consumer must agree on the format; these are the four the client ships:
//   bytes    Uint8Array/Buffer as they are
//   string   UTF-8
//   json     JSON.stringify / JSON.parse, UTF-8
//   msgpack  msgpackr with plain maps (no record extension), so any MessagePack reader can decode it
// The producer's default (`auto`) picks by type: bytes stay bytes, strings are UTF-8, and every
// other value (objects, arrays, numbers, booleans) is msgpack. null is always a null value (a
// tombstone on a compacted topic), never serialized.
import { Packr } from 'msgpackr';
import { KafkaClientError } from './errors.js';

export type SerializerName = 'bytes' | 'string' | 'json' | 'msgpack';

export interface Serializer<T = unknown> {
  readonly name: string;
  /** The record bytes for a value; a string result is written as UTF-8 without a copy. */
  serialize(value: T): Uint8Array | string;
}

export interface Deserializer<T = unknown> {
  readonly name: string;
  deserialize(bytes: Buffer): T;
}

/** A value that a serializer or deserializer refused; names the format and the reason. */
export class KafkaSerializationError extends KafkaClientError {
  override readonly name: string = 'KafkaSerializationError';

  constructor(readonly format: string, reason: string) {
    super(`${format}: ${reason}`, false);
  }
}

// Plain MessagePack maps, so other languages' readers decode what we write.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

const bytesSerializer: Serializer<Uint8Array> = {
  name: 'bytes',
  serialize(value) {
    if (!(value instanceof Uint8Array)) throw new KafkaSerializationError('bytes', `expected a Uint8Array or Buffer, got ${describe(value)}`);
    return value;
  },
};

const stringSerializer: Serializer<string> = {
  name: 'string',
  serialize(value) {
    if (typeof value !== 'string') throw new KafkaSerializationError('string', `expected a string, got ${describe(value)}`);
    return value;
  },
};

const jsonSerializer: Serializer<unknown> = {
  name: 'json',
  serialize(value) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      throw new KafkaSerializationError('json', (error as Error).message);
    }
    if (text === undefined) throw new KafkaSerializationError('json', `${describe(value)} has no JSON form`);
    return text;
  },
};

const msgpackSerializer: Serializer<unknown> = {
  name: 'msgpack',
  serialize(value) {
    try {
      return packr.pack(value);
    } catch (error) {
      throw new KafkaSerializationError('msgpack', (error as Error).message);
    }
  },
};

/** The producer's default: bytes and strings as they are, everything else msgpack. */
const autoSerializer: Serializer<unknown> = {
  name: 'auto',
  serialize(value) {
    if (typeof value === 'string' || value instanceof Uint8Array) return value;
    return msgpackSerializer.serialize(value);
  },
};

const bytesDeserializer: Deserializer<Buffer> = { name: 'bytes', deserialize: (bytes) => bytes };
const stringDeserializer: Deserializer<string> = { name: 'string', deserialize: (bytes) => bytes.toString('utf8') };
const jsonDeserializer: Deserializer<unknown> = {
  name: 'json',
  deserialize(bytes) {
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (error) {
      throw new KafkaSerializationError('json', `${(error as Error).message} (${bytes.length} bytes)`);
    }
  },
};
const msgpackDeserializer: Deserializer<unknown> = {
  name: 'msgpack',
  deserialize(bytes) {
    try {
      return packr.unpack(bytes) as unknown;
    } catch (error) {
      throw new KafkaSerializationError('msgpack', `${(error as Error).message} (${bytes.length} bytes)`);
    }
  },
};

export const serializers = {
  bytes: bytesSerializer,
  string: stringSerializer,
  json: jsonSerializer,
  msgpack: msgpackSerializer,
  auto: autoSerializer,
} as const;

export const deserializers = {
  bytes: bytesDeserializer,
  string: stringDeserializer,
  json: jsonDeserializer,
  msgpack: msgpackDeserializer,
} as const;

/** A serializer by name, or the given one; undefined means the producer's default (auto). */
export function resolveSerializer(choice: SerializerName | 'auto' | Serializer | undefined): Serializer {
  if (choice === undefined) return autoSerializer;
  if (typeof choice !== 'string') return choice;
  const found = (serializers as Record<string, Serializer>)[choice];
  if (found === undefined) throw new KafkaSerializationError(String(choice), `unknown serializer; use one of ${Object.keys(serializers).join(', ')}`);
  return found;
}

/** A deserializer by name, or the given one; undefined means bytes (the record's own bytes). */
export function resolveDeserializer(choice: SerializerName | Deserializer | undefined): Deserializer {
  if (choice === undefined) return bytesDeserializer;
  if (typeof choice !== 'string') return choice;
  const found = (deserializers as Record<string, Deserializer>)[choice];
  if (found === undefined) throw new KafkaSerializationError(String(choice), `unknown deserializer; use one of ${Object.keys(deserializers).join(', ')}`);
  return found;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `a ${value.constructor?.name ?? 'object'}` : `a ${typeof value}`;
}
