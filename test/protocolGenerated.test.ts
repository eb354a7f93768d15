import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ADVERTISED_APIS, isAdvertised } from '../protocol/apis.js';
import { generateProtocolFiles } from '../protocol/generator/codegen.js';
import { type FieldModel, type FieldType, type MessageModel, type StructModel, buildMessageModel, loadSchemaDir } from '../protocol/generator/schema.js';
import * as generated from '../protocol/generated/index.js';
import { API_SCHEMAS, apiSchema, isFlexibleVersion } from '../protocol/generated/apiSchemas.js';
import { readRequestHeader, requestHeaderVersion, responseHeaderVersion, writeRequestHeader, writeResponseHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter, ZERO_UUID } from '../protocol/wire.js';
import { SeededRandom } from './support/random.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const sharedSchemas = join(root, '..', 'shared', 'kafka-protocol', 'schemas');
const fixtureSchemas = join(root, 'test', 'fixtures', 'protocol', 'schemas');
const generatedDir = join(root, 'protocol', 'generated');

describe('generated code is current', () => {
  it.skipIf(!existsSync(sharedSchemas))('protocol/generated/ is byte-identical to a fresh generation from ../shared', () => {
    const files = generateProtocolFiles(sharedSchemas);
    const committed = readdirSync(generatedDir).filter((name) => name.endsWith('.ts')).sort();
    expect(committed).toEqual([...files.keys()].sort());
    for (const [name, content] of files) {
      expect(readFileSync(join(generatedDir, name), 'utf8'), `protocol/generated/${name} is stale: run npm run generate:protocol`).toBe(content);
    }
    // The fixture copies used by the round trip below are the same schemas.
    for (const name of readdirSync(fixtureSchemas)) {
      expect(readFileSync(join(fixtureSchemas, name), 'utf8'), `test/fixtures/protocol/schemas/${name}`).toBe(
        readFileSync(join(sharedSchemas, name), 'utf8'),
      );
    }
  });
});

// ---- random messages driven by the schema model ----------------------------------------------

const ALPHABET = ['a', 'b', 'z', 'Q', '0', '9', '-', '.', '_', 'é', 'ß', '字', '🎉'];

function randomString(random: SeededRandom): string {
  let text = '';
  for (let i = random.int(0, 8); i > 0; i--) text += random.pick(ALPHABET);
  return text;
}

function randomUuid(random: SeededRandom): string {
  const hex = random.bytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function randomInt64(random: SeededRandom): bigint {
  const special = [0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n)];
  if (random.bool(0.2)) return random.pick(special);
  return BigInt.asIntN(64, (BigInt(random.int(0, 0xffffffff)) << 32n) | BigInt(random.int(0, 0xffffffff)));
}

function randomScalar(type: FieldType, version: number, random: SeededRandom): unknown {
  switch (type.kind) {
    case 'struct':
      return randomStruct(type.struct, version, random);
    case 'array':
      return Array.from({ length: random.int(0, 3) }, () => randomScalar(type.element, version, random));
    case 'primitive':
      switch (type.name) {
        case 'bool':
          return random.bool();
        case 'int8':
          return random.int(-0x80, 0x7f);
        case 'int16':
          return random.int(-0x8000, 0x7fff);
        case 'int32':
          return random.int(-0x80000000, 0x7fffffff);
        case 'uint16':
          return random.int(0, 0xffff);
        case 'uint32':
          return random.int(0, 0xffffffff);
        case 'int64':
          return randomInt64(random);
        case 'float64':
          return (random.next() - 0.5) * 1e12;
        case 'string':
          return randomString(random);
        case 'uuid':
          return random.bool(0.2) ? ZERO_UUID : randomUuid(random);
        case 'bytes':
        case 'records':
          return random.bytes(random.int(0, 24));
      }
  }
}

/** A random struct for `version`: only fields that exist in it, tagged ones sometimes left out. */
function randomStruct(struct: StructModel, version: number, random: SeededRandom): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of struct.fields) {
    if (!field.present.has(version)) continue;
    if (field.tag !== null && random.bool(0.4)) continue;
    out[field.prop] = field.nullable.has(version) && random.bool(0.2) ? null : randomScalar(field.type, version, random);
  }
  return out;
}

// ---- what the decoder must return: the message plus defaults (written here independently) ----

function defaultOf(field: FieldModel): unknown {
  const raw = field.rawDefault === undefined ? undefined : String(field.rawDefault);
  if (raw === 'null') return null;
  const type = field.type;
  if (type.kind === 'array') return [];
  if (type.kind === 'struct') return expectedStruct(type.struct, {});
  switch (type.name) {
    case 'bool':
      return raw === 'true';
    case 'int64':
      return BigInt(raw ?? '0');
    case 'string':
      return raw ?? '';
    case 'uuid':
      return ZERO_UUID;
    case 'bytes':
      return Buffer.alloc(0);
    case 'records':
      return null;
    default:
      return Number(raw ?? '0');
  }
}

function expectedValue(type: FieldType, value: unknown): unknown {
  if (value === null) return null;
  if (type.kind === 'struct') return expectedStruct(type.struct, value as Record<string, unknown>);
  if (type.kind === 'array') return (value as unknown[]).map((item) => expectedValue(type.element, item));
  return value;
}

function expectedStruct(struct: StructModel, given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of struct.fields) {
    const value = given[field.prop];
    out[field.prop] = value === undefined ? defaultOf(field) : expectedValue(field.type, value);
  }
  return out;
}

type Encode = (writer: ByteWriter, version: number, message: unknown) => void;
type Decode = (reader: ByteReader, version: number) => unknown;

function codecs(model: MessageModel): { encode: Encode; decode: Decode } {
  const exports = generated as unknown as Record<string, unknown>;
  const encode = exports[`encode${model.name}`];
  const decode = exports[`decode${model.name}`];
  if (typeof encode !== 'function' || typeof decode !== 'function') throw new Error(`no codec for ${model.name}`);
  return { encode: encode as Encode, decode: decode as Decode };
}

const fixtureModels = [...loadSchemaDir(fixtureSchemas).entries()].map(([file, raw]) => buildMessageModel(file, raw));

describe('random round trips through every version (schema fixtures)', () => {
  it('covers the six APIs of the brief, requests and responses, plus both headers', () => {
    expect(fixtureModels.map((model) => model.name).sort()).toEqual(
      [
        'ApiVersionsRequest',
        'ApiVersionsResponse',
        'CreateTopicsRequest',
        'CreateTopicsResponse',
        'FetchRequest',
        'FetchResponse',
        'JoinGroupRequest',
        'JoinGroupResponse',
        'MetadataRequest',
        'MetadataResponse',
        'ProduceRequest',
        'ProduceResponse',
        'RequestHeader',
        'ResponseHeader',
      ].sort(),
    );
  });

  for (const [index, model] of fixtureModels.entries()) {
    const seed = 1000 + index;
    it(`${model.name} v${model.validVersions.min}-${model.validVersions.max}: encode, decode, re-encode (seed ${seed})`, () => {
      const random = new SeededRandom(seed);
      const { encode, decode } = codecs(model);
      // A small writer that must grow, and a low raw-chunk threshold so records travel as chunks.
      const writer = new ByteWriter({ initialBytes: 16, rawChunkMinBytes: 16 });
      for (const version of model.versions) {
        for (let round = 0; round < 25; round++) {
          const message = randomStruct(model.root, version, random);
          writer.reset();
          encode(writer, version, message);
          const encoded = writer.toBuffer();
          const reader = new ByteReader(encoded);
          const decoded = decode(reader, version);
          reader.expectEnd();
          expect(decoded).toEqual(expectedStruct(model.root, message));
          writer.reset();
          encode(writer, version, decoded);
          expect(writer.toBuffer()).toEqual(encoded);
        }
      }
    });
  }

  it('fills defaults for fields a version lacks (schema defaults, else zero values)', () => {
    const metadataV0 = generated.decodeMetadataRequest(new ByteReader(Buffer.from([0, 0, 0, 0])), 0);
    expect(metadataV0).toEqual({
      topics: [],
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    const writer = new ByteWriter();
    generated.encodeFetchResponse(writer, 4, { responses: [{ topic: 't', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 3n, records: null }] }] });
    const fetchV4 = generated.decodeFetchResponse(new ByteReader(writer.toBuffer()), 4);
    expect(fetchV4.responses[0]!.partitions[0]).toEqual({
      partitionIndex: 0,
      errorCode: 0,
      highWatermark: 3n,
      lastStableOffset: -1n,
      logStartOffset: -1n,
      divergingEpoch: { epoch: -1, endOffset: -1n },
      currentLeader: { leaderId: -1, leaderEpoch: -1 },
      snapshotId: { endOffset: -1n, epoch: -1 },
      abortedTransactions: [],
      preferredReadReplica: -1,
      records: null,
    });
    expect(fetchV4).toMatchObject({ throttleTimeMs: 0, errorCode: 0, sessionId: 0, nodeEndpoints: [] });
  });

  it('writes tagged fields only when they differ from their default, in tag order', () => {
    const writer = new ByteWriter();
    generated.encodeApiVersionsResponse(writer, 3, { errorCode: 0, apiKeys: [], throttleTimeMs: 0, finalizedFeaturesEpoch: -1n, zkMigrationReady: false });
    expect(writer.toBuffer()).toEqual(Buffer.from([0, 0, 1, 0, 0, 0, 0, 0]));
    writer.reset();
    generated.encodeApiVersionsResponse(writer, 3, { errorCode: 0, apiKeys: [], zkMigrationReady: true, finalizedFeaturesEpoch: 2n });
    // 2 tags: tag 1 (8 bytes: int64 2), tag 3 (1 byte: true).
    expect(writer.toBuffer()).toEqual(Buffer.from([0, 0, 1, 0, 0, 0, 0, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 2, 3, 1, 1]));
  });
});

describe('API table and headers', () => {
  it('lists every API in the schemas with its versions and first flexible version', () => {
    expect(API_SCHEMAS.length).toBeGreaterThanOrEqual(80);
    expect(apiSchema(18)).toEqual({ apiKey: 18, name: 'ApiVersions', minVersion: 0, maxVersion: 4, firstFlexibleVersion: 3, generated: true });
    expect(apiSchema(0)).toMatchObject({ name: 'Produce', minVersion: 0, maxVersion: 11, firstFlexibleVersion: 9 });
    expect(apiSchema(1)).toMatchObject({ name: 'Fetch', firstFlexibleVersion: 12 });
    expect(apiSchema(4)).toMatchObject({ name: 'LeaderAndIsr', generated: false });
    expect(isFlexibleVersion(3, 8)).toBe(false);
    expect(isFlexibleVersion(3, 9)).toBe(true);
    expect(isFlexibleVersion(9999, 0)).toBeUndefined();
    for (const name of ['Produce', 'Fetch', 'ApiVersions', 'DeleteRecords', 'SaslHandshake', 'OffsetDelete', 'IncrementalAlterConfigs']) {
      expect(API_SCHEMAS.find((api) => api.name === name)?.generated, name).toBe(true);
    }
    expect(generated.METADATA_REQUEST_SCHEMA).toEqual({ name: 'MetadataRequest', type: 'request', apiKey: 3, minVersion: 0, maxVersion: 12, firstFlexibleVersion: 9 });
    expect(generated.CONSUMER_PROTOCOL_SUBSCRIPTION_SCHEMA).toMatchObject({ type: 'data', apiKey: null, firstFlexibleVersion: null });
  });

  it('advertises the NOTES.md section 4 ranges plus the admin and group extras, without transactions (no coordinator yet)', () => {
    const table = Object.fromEntries(ADVERTISED_APIS.map((api) => [api.name, `${api.minVersion}-${api.maxVersion}`]));
    expect(table).toEqual({
      ApiVersions: '0-3',
      Metadata: '0-4',
      Produce: '0-8',
      Fetch: '4-11',
      ListOffsets: '1-2',
      FindCoordinator: '0-2',
      JoinGroup: '0-5',
      SyncGroup: '0-3',
      Heartbeat: '0-3',
      LeaveGroup: '0-1',
      OffsetFetch: '1-4',
      OffsetCommit: '2-5',
      InitProducerId: '0-1',
      CreateTopics: '0-3',
      DeleteTopics: '0-1',
      DescribeGroups: '0-2',
      ListGroups: '0-2',
      DeleteGroups: '0-1',
      DescribeConfigs: '0-2',
      CreatePartitions: '0-1',
      DeleteRecords: '0-1',
      AlterConfigs: '0-1',
      IncrementalAlterConfigs: '0-1',
      OffsetDelete: '0-0',
      ScanRecords: '0-0',
    });
    expect(isAdvertised(1, 3)).toBe(false);
    expect(isAdvertised(1, 4)).toBe(true);
    expect(isAdvertised(47, 0)).toBe(true);
    expect(isAdvertised(26, 0)).toBe(false);
  });

  it('picks header versions: v2/v1 for flexible versions, v0 for every ApiVersions response', () => {
    expect(requestHeaderVersion(3, 4)).toBe(1);
    expect(requestHeaderVersion(3, 9)).toBe(2);
    expect(requestHeaderVersion(18, 3)).toBe(2);
    expect(requestHeaderVersion(18, 7)).toBe(2); // a future ApiVersions version is still flexible
    expect(requestHeaderVersion(7, 0)).toBe(0);
    expect(requestHeaderVersion(7, 1)).toBe(1);
    expect(requestHeaderVersion(9999, 0)).toBeNull();
    expect(responseHeaderVersion(18, 3)).toBe(0);
    expect(responseHeaderVersion(3, 9)).toBe(1);
    expect(responseHeaderVersion(3, 4)).toBe(0);
    const writer = new ByteWriter();
    writeResponseHeader(writer, 0x01020304, 1);
    writeResponseHeader(writer, 5, 0);
    expect(writer.toBuffer()).toEqual(Buffer.from([1, 2, 3, 4, 0, 0, 0, 0, 5]));
  });

  it('reads any request header: client_id keeps its int16 length in v2, and unknown API keys still parse', () => {
    const writer = new ByteWriter();
    writeRequestHeader(writer, { apiKey: 18, apiVersion: 3, correlationId: 9, clientId: 'rdkafka' });
    writer.writeInt8(0x55);
    expect(writer.toBuffer()).toEqual(Buffer.concat([Buffer.from([0, 18, 0, 3, 0, 0, 0, 9, 0, 7]), Buffer.from('rdkafka'), Buffer.from([0, 0x55])]));
    const reader = new ByteReader(writer.toBuffer());
    expect(readRequestHeader(reader)).toEqual({ apiKey: 18, apiVersion: 3, correlationId: 9, clientId: 'rdkafka', headerVersion: 2 });
    expect(reader.readInt8()).toBe(0x55);
    const unknown = new ByteReader(Buffer.from([0x27, 0x0f, 0, 1, 0, 0, 0, 4, 0xff, 0xff, 0xaa]));
    expect(readRequestHeader(unknown)).toEqual({ apiKey: 9999, apiVersion: 1, correlationId: 4, clientId: null, headerVersion: null });
    expect(unknown.remaining).toBe(1);
    // The generated RequestHeader codec agrees with the hand-written one.
    const viaSchema = generated.decodeRequestHeader(new ByteReader(writer.toBuffer()), 2);
    expect(viaSchema).toEqual({ requestApiKey: 18, requestApiVersion: 3, correlationId: 9, clientId: 'rdkafka' });
  });
});
