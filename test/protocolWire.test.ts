import { describe, expect, it } from 'vitest';
import { FrameReader, beginFrame, endFrame, writeFrame } from '../protocol/frame.js';
import { decodeApiVersionsRequest, encodeApiVersionsRequest } from '../protocol/generated/apiVersionsRequest.js';
import { decodeApiVersionsResponse, encodeApiVersionsResponse } from '../protocol/generated/apiVersionsResponse.js';
import { decodeFetchRequest, encodeFetchRequest } from '../protocol/generated/fetchRequest.js';
import { decodeFetchResponse, encodeFetchResponse } from '../protocol/generated/fetchResponse.js';
import { decodeMetadataRequest, encodeMetadataRequest } from '../protocol/generated/metadataRequest.js';
import { decodeMetadataResponse, encodeMetadataResponse } from '../protocol/generated/metadataResponse.js';
import { decodeProduceRequest, encodeProduceRequest } from '../protocol/generated/produceRequest.js';
import { decodeJoinGroupRequest, encodeJoinGroupRequest } from '../protocol/generated/joinGroupRequest.js';
import { readRequestHeader, writeRequestHeader } from '../protocol/headers.js';
import {
  ByteReader,
  ByteWriter,
  EMPTY_BYTES,
  ProtocolDecodeError,
  ProtocolEncodeError,
  ZERO_UUID,
  readInt32Element,
} from '../protocol/wire.js';
import { SeededRandom } from './support/random.js';

/** Runs `decode` and requires a ProtocolDecodeError (never a RangeError, TypeError or success). */
function expectDecodeError(decode: () => unknown, message?: RegExp): ProtocolDecodeError {
  let thrown: unknown;
  try {
    decode();
  } catch (error) {
    thrown = error;
  }
  if (!(thrown instanceof ProtocolDecodeError)) {
    throw new Error(`expected a ProtocolDecodeError, got ${thrown === undefined ? 'success' : String(thrown)}`);
  }
  if (message !== undefined) expect(thrown.message).toMatch(message);
  return thrown;
}

function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

type BodyDecoder = (reader: ByteReader, version: number) => unknown;

/** A request frame body (header v1/v2 + body), as a broker receives it after the size prefix. */
function requestFrame(apiKey: number, apiVersion: number, encodeBody: (writer: ByteWriter) => void): Buffer {
  const writer = new ByteWriter();
  writeRequestHeader(writer, { apiKey, apiVersion, correlationId: 7, clientId: 'tidelog-test' });
  encodeBody(writer);
  return writer.toBuffer();
}

function decodeRequestFrame(frame: Buffer, decodeBody: BodyDecoder): unknown {
  const reader = new ByteReader(frame);
  const header = readRequestHeader(reader);
  const body = decodeBody(reader, header.apiVersion);
  reader.expectEnd('request');
  return body;
}

function metadataV4Frame(): Buffer {
  return requestFrame(3, 4, (writer) =>
    encodeMetadataRequest(writer, 4, { topics: [{ name: 'orders' }, { name: 'payments-é' }], allowAutoTopicCreation: true }),
  );
}

function produceV7Frame(random: SeededRandom): Buffer {
  return requestFrame(0, 7, (writer) =>
    encodeProduceRequest(writer, 7, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 30_000,
      topicData: [
        {
          name: 'orders',
          partitionData: [
            { index: 0, records: random.bytes(70) },
            { index: 1, records: null },
          ],
        },
        { name: 'empty', partitionData: [] },
      ],
    }),
  );
}

describe('ByteReader primitives', () => {
  it('reads every fixed-width type big-endian, with sign', () => {
    const writer = new ByteWriter({ initialBytes: 16 });
    writer.writeInt8(-128);
    writer.writeInt16(-2);
    writer.writeUint16(0xfffe);
    writer.writeInt32(-0x80000000);
    writer.writeUint32(0xfffffffe);
    writer.writeInt64(-(2n ** 63n));
    writer.writeInt64(2n ** 63n - 1n);
    writer.writeFloat64(-1.5e300);
    writer.writeBool(true);
    writer.writeBool(false);
    const buffer = writer.toBuffer();
    expect(buffer.subarray(0, 7)).toEqual(bytes(0x80, 0xff, 0xfe, 0xff, 0xfe, 0x80, 0x00));
    const reader = new ByteReader(buffer);
    expect(reader.readInt8()).toBe(-128);
    expect(reader.readInt16()).toBe(-2);
    expect(reader.readUint16()).toBe(0xfffe);
    expect(reader.readInt32()).toBe(-0x80000000);
    expect(reader.readUint32()).toBe(0xfffffffe);
    expect(reader.readInt64()).toBe(-(2n ** 63n));
    expect(reader.readInt64()).toBe(2n ** 63n - 1n);
    expect(reader.readFloat64()).toBe(-1.5e300);
    expect(reader.readBool()).toBe(true);
    expect(reader.readBool()).toBe(false);
    reader.expectEnd();
  });

  it('round-trips unsigned varints, varints and varlongs at the edges and at random (seed 31)', () => {
    const random = new SeededRandom(31);
    const unsigned = [0, 1, 127, 128, 16_383, 16_384, 2 ** 28 - 1, 2 ** 28, 0xffffffff, ...Array.from({ length: 500 }, () => random.int(0, 0xffffffff))];
    const signed = [0, -1, 1, -64, 63, 64, -65, 0x7fffffff, -0x80000000, ...Array.from({ length: 500 }, () => random.int(-0x80000000, 0x7fffffff))];
    const longs = [0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n), ...Array.from({ length: 500 }, () => BigInt.asIntN(64, (BigInt(random.int(0, 0xffffffff)) << 32n) | BigInt(random.int(0, 0xffffffff))))];
    const writer = new ByteWriter({ initialBytes: 16 });
    for (const value of unsigned) writer.writeUnsignedVarint(value);
    for (const value of signed) writer.writeVarint(value);
    for (const value of longs) writer.writeVarlong(value);
    const reader = new ByteReader(writer.toBuffer());
    for (const value of unsigned) expect(reader.readUnsignedVarint()).toBe(value);
    for (const value of signed) expect(reader.readVarint()).toBe(value);
    for (const value of longs) expect(reader.readVarlong()).toBe(value);
    reader.expectEnd();
    // Known encodings: 300 -> ac 02; zigzag(-1) = 1; zigzag(1) = 2.
    const known = new ByteWriter();
    known.writeUnsignedVarint(300);
    known.writeVarint(-1);
    known.writeVarint(1);
    expect(known.toBuffer()).toEqual(bytes(0xac, 0x02, 0x01, 0x02));
  });

  it('round-trips strings (ASCII, multi-byte, long), compact and not, and uuids', () => {
    const values = ['', 'orders', 'é', '字节', '🎉 party', 'x'.repeat(40), 'ü'.repeat(200), 'a'.repeat(0x7fff)];
    const writer = new ByteWriter({ initialBytes: 16 });
    for (const value of values) {
      writer.writeString(value);
      writer.writeCompactString(value);
      writer.writeNullableString(null);
      writer.writeCompactNullableString(null);
    }
    const uuid = '0123abcd-4567-89ef-0123-456789abcdef';
    writer.writeUuid(uuid);
    writer.writeUuid(ZERO_UUID);
    writer.writeUuid('0123ABCD-4567-89EF-0123-456789ABCDEF');
    const reader = new ByteReader(writer.toBuffer());
    for (const value of values) {
      expect(reader.readString()).toBe(value);
      expect(reader.readCompactString()).toBe(value);
      expect(reader.readNullableString()).toBeNull();
      expect(reader.readCompactNullableString()).toBeNull();
    }
    expect(reader.readUuid()).toBe(uuid);
    expect(reader.readUuid()).toBe(ZERO_UUID);
    expect(reader.readUuid()).toBe(uuid);
    reader.expectEnd();
  });

  it('copies bytes but returns views for records and zero-copy bytes', () => {
    const writer = new ByteWriter();
    writer.writeBytes(bytes(1, 2, 3));
    writer.writeRecords(bytes(4, 5));
    writer.writeCompactNullableBytes(null);
    writer.writeCompactBytes(EMPTY_BYTES);
    const frame = writer.toBuffer();
    const reader = new ByteReader(frame);
    const copied = reader.readBytes();
    const view = reader.readRecords();
    expect(reader.readCompactNullableBytes()).toBeNull();
    expect(reader.readCompactBytes()).toEqual(EMPTY_BYTES);
    expect(copied).toEqual(bytes(1, 2, 3));
    expect(view).toEqual(bytes(4, 5));
    frame.fill(0);
    expect(copied).toEqual(bytes(1, 2, 3));
    expect(view).toEqual(bytes(0, 0));
  });
});

describe('ByteWriter', () => {
  it('grows from a tiny buffer, and reuses its buffer after reset', () => {
    const writer = new ByteWriter({ initialBytes: 16, maxRetainedBytes: 1 << 20 });
    for (let i = 0; i < 10_000; i++) writer.writeInt32(i);
    expect(writer.length).toBe(40_000);
    const first = writer.finish()[0]!;
    expect(first.readInt32BE(39_996)).toBe(9_999);
    writer.reset();
    writer.writeInt32(42);
    const again = writer.finish()[0]!;
    expect(again.buffer).toBe(first.buffer);
    expect(again.readInt32BE(0)).toBe(42);
  });

  it('drops a buffer that grew past maxRetainedBytes at reset', () => {
    const writer = new ByteWriter({ initialBytes: 16, maxRetainedBytes: 64 });
    writer.writeRaw(Buffer.alloc(50));
    writer.writeRaw(Buffer.alloc(50));
    const big = writer.finish()[0]!;
    writer.reset();
    writer.writeInt8(1);
    expect(writer.finish()[0]!.buffer).not.toBe(big.buffer);
  });

  it('passes large record batches through as chunks without copying, and patches the frame size', () => {
    const writer = new ByteWriter({ initialBytes: 64, rawChunkMinBytes: 32 });
    const batch = Buffer.alloc(100, 7);
    const start = beginFrame(writer);
    writer.writeString('orders');
    writer.writeRecords(batch);
    writer.writeInt32(-1);
    const size = endFrame(writer, start);
    expect(size).toBe(2 + 6 + 4 + 100 + 4);
    const chunks = writer.finish();
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(batch);
    const whole = writer.toBuffer();
    expect(whole).toEqual(Buffer.concat(chunks));
    // Patching can only touch the writer's own bytes, never a batch passed through.
    expect(() => writer.patchInt32(start + 4 + 2 + 6 + 4, 0)).toThrow(ProtocolEncodeError);
    expect(batch.every((byte) => byte === 7)).toBe(true);
    const reader = new ByteReader(whole);
    expect(reader.readInt32()).toBe(size);
    expect(reader.readString()).toBe('orders');
    expect(reader.readRecords()).toEqual(batch);
    expect(reader.readInt32()).toBe(-1);
  });

  it('sizes nested regions (tagged fields) correctly, even across growth', () => {
    const writer = new ByteWriter({ initialBytes: 16, rawChunkMinBytes: 8 });
    const outer = writer.beginSized();
    writer.writeInt8(1);
    const inner = writer.beginSized();
    writer.writeRaw(Buffer.alloc(200, 9)); // would be a chunk outside a sized region
    writer.endSized(inner);
    writer.endSized(outer);
    expect(writer.finish()).toHaveLength(1);
    const reader = new ByteReader(writer.toBuffer());
    expect(reader.readUnsignedVarint()).toBe(1 + 2 + 200);
    expect(reader.readInt8()).toBe(1);
    expect(reader.readUnsignedVarint()).toBe(200);
    reader.skip(200);
    reader.expectEnd();
  });

  it('refuses values that do not fit their type with a ProtocolEncodeError', () => {
    const writer = new ByteWriter();
    expect(() => writer.writeInt8(128)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeInt16(-32_769)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeInt32(2 ** 31)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeInt32(1.5)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeUint16(-1)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeInt64(2n ** 63n)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeUnsignedVarint(-1)).toThrow(ProtocolEncodeError);
    expect(() => writer.writeString('x'.repeat(0x8000))).toThrow(ProtocolEncodeError);
    expect(() => writer.writeCompactString('é'.repeat(0x4000))).toThrow(ProtocolEncodeError);
    expect(() => writer.writeUuid('not-a-uuid')).toThrow(ProtocolEncodeError);
    expect(() => writer.writeUuid('0123abcd-4567-89ef-0123-456789abcdeg')).toThrow(ProtocolEncodeError);
    expect(() => encodeMetadataRequest(writer, 13, { topics: null })).toThrow(ProtocolEncodeError);
    // Topics is nullable only from v1 on.
    expect(() => encodeMetadataRequest(writer, 0, { topics: null })).toThrow(/cannot be null in version 0/);
  });
});

describe('FrameReader', () => {
  it('reassembles frames split at every byte boundary, and returns views for whole ones', () => {
    const writer = new ByteWriter();
    writeFrame(writer, (w) => w.writeString('first'));
    writeFrame(writer, () => undefined);
    writeFrame(writer, (w) => w.writeRaw(Buffer.alloc(300, 3)));
    const stream = writer.toBuffer();
    for (let step = 1; step <= stream.length; step++) {
      const frames = new FrameReader(1024);
      const out: Buffer[] = [];
      for (let at = 0; at < stream.length; at += step) {
        frames.push(stream.subarray(at, at + step));
        for (let frame = frames.next(); frame !== undefined; frame = frames.next()) out.push(frame);
      }
      expect(out.map((frame) => frame.length)).toEqual([7, 0, 300]);
      expect(out[0]!.toString('latin1', 2)).toBe('first');
      expect(frames.bufferedBytes).toBe(0);
    }
    const whole = new FrameReader();
    whole.push(stream);
    expect(whole.next()!.buffer).toBe(stream.buffer);
  });

  it('refuses negative and oversized frame sizes before buffering them', () => {
    const negative = new FrameReader(1024);
    negative.push(bytes(0xff, 0xff, 0xff, 0xfe));
    expectDecodeError(() => negative.next(), /frame size -2/);
    const huge = new FrameReader(1024);
    huge.push(bytes(0x7f, 0xff, 0xff, 0xff, 0x00));
    expectDecodeError(() => huge.next(), /frame size 2147483647/);
  });
});

describe('malformed requests', () => {
  it('every truncation of a Metadata v4 request throws ProtocolDecodeError', () => {
    const frame = metadataV4Frame();
    expect(decodeRequestFrame(frame, decodeMetadataRequest)).toEqual({
      topics: [
        { name: 'orders', topicId: ZERO_UUID },
        { name: 'payments-é', topicId: ZERO_UUID },
      ],
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    for (let length = 0; length < frame.length; length++) {
      expectDecodeError(() => decodeRequestFrame(frame.subarray(0, length), decodeMetadataRequest), /truncated|claims/);
    }
  });

  it('every truncation of a Produce v7 request throws ProtocolDecodeError (seed 41)', () => {
    const frame = produceV7Frame(new SeededRandom(41));
    decodeRequestFrame(frame, decodeProduceRequest);
    for (let length = 0; length < frame.length; length++) {
      expectDecodeError(() => decodeRequestFrame(frame.subarray(0, length), decodeProduceRequest), /truncated|claims/);
    }
  });

  it('a frame longer than its message is refused (trailing bytes)', () => {
    const frame = Buffer.concat([metadataV4Frame(), bytes(0)]);
    expectDecodeError(() => decodeRequestFrame(frame, decodeMetadataRequest), /1 unexpected bytes after the request/);
  });

  it('lengths that claim more bytes than are left are refused', () => {
    const frame = metadataV4Frame();
    const headerBytes = 2 + 2 + 4 + 2 + 'tidelog-test'.length;
    // Topic count (int32) then the first name's int16 length.
    const nameLength = Buffer.from(frame);
    nameLength.writeInt16BE(0x7fff, headerBytes + 4);
    expectDecodeError(() => decodeRequestFrame(nameLength, decodeMetadataRequest), /truncated string/);
    const clientId = Buffer.from(frame);
    clientId.writeInt16BE(200, 8);
    expectDecodeError(() => decodeRequestFrame(clientId, decodeMetadataRequest), /truncated string/);
    const produce = produceV7Frame(new SeededRandom(42));
    const recordsAt = produce.indexOf(Buffer.from('orders')) + 6 + 4 + 4;
    expect(produce.readInt32BE(recordsAt)).toBe(70);
    const records = Buffer.from(produce);
    records.writeInt32BE(0x10000, recordsAt);
    expectDecodeError(() => decodeRequestFrame(records, decodeProduceRequest), /truncated bytes/);
  });

  it('negative lengths other than -1 are refused, and -1 only where null is allowed', () => {
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xfe)).readNullableString(), /negative string length -2/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff)).readString(), /null in a non-nullable string/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xfb)).readNullableBytes(), /negative bytes length -5/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xff)).readBytes(), /null in non-nullable bytes/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xfe)).readRecords(), /negative bytes length -2/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xfe)).readNullableArray(readInt32Element, 0, 4), /negative array length/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xff)).readArray(readInt32Element, 0, 4), /null in a non-nullable array/);
    expectDecodeError(() => new ByteReader(bytes(0x00)).readCompactString(), /null in a non-nullable compact string/);
    expectDecodeError(() => new ByteReader(bytes(0x00)).readCompactArray(readInt32Element, 0, 4), /null in a non-nullable compact array/);
    // Metadata v0: Topics is not nullable, so -1 is malformed there (and means "all topics" in v1+).
    const v0 = requestFrame(3, 0, (writer) => writer.writeInt32(-1));
    expectDecodeError(() => decodeRequestFrame(v0, decodeMetadataRequest), /null in a non-nullable array/);
    const v1 = requestFrame(3, 1, (writer) => writer.writeInt32(-1));
    expect(decodeRequestFrame(v1, decodeMetadataRequest)).toMatchObject({ topics: null });
    const minus3 = requestFrame(3, 1, (writer) => writer.writeInt32(-3));
    expectDecodeError(() => decodeRequestFrame(minus3, decodeMetadataRequest), /negative array length -3/);
  });

  it('bad varints are refused: too long, overflowing, truncated', () => {
    expectDecodeError(() => new ByteReader(bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)).readUnsignedVarint(), /overflows 32 bits/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xff, 0x10)).readUnsignedVarint(), /overflows 32 bits/);
    expectDecodeError(() => new ByteReader(bytes(0x80, 0x80)).readUnsignedVarint(), /truncated unsigned varint/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xff, 0x1f)).readVarint(), /overflows/);
    expectDecodeError(() => new ByteReader(Buffer.alloc(10, 0xff)).readVarlong(), /overflows 64 bits/);
    expectDecodeError(() => new ByteReader(bytes(0x80)).readVarlong(), /truncated varlong/);
    // A compact string length as a six-byte varint, in an ApiVersions v3 request body.
    const frame = requestFrame(18, 3, (writer) => writer.writeRaw(bytes(0x81, 0x80, 0x80, 0x80, 0x80, 0x00)));
    expectDecodeError(() => decodeRequestFrame(frame, decodeApiVersionsRequest), /overflows 32 bits/);
  });

  it('huge array counts fail before any element is read or allocated', () => {
    let calls = 0;
    const spy = (reader: ByteReader): number => {
      calls++;
      return reader.readInt32();
    };
    expectDecodeError(() => new ByteReader(bytes(0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4)).readArray(spy, 0, 1), /claims 2147483647 elements/);
    expectDecodeError(() => new ByteReader(bytes(0xff, 0xff, 0xff, 0xff, 0x0f)).readCompactNullableArray(spy, 0, 1), /claims 4294967294 elements/);
    // Each element of at least 4 bytes: 3 elements need 12 bytes, 11 are left.
    expectDecodeError(() => new ByteReader(Buffer.concat([bytes(0, 0, 0, 3), Buffer.alloc(11)])).readArray(spy, 0, 4), /claims 3 elements of at least 4 bytes/);
    expect(calls).toBe(0);
    // Through the generated decoders: topic counts of 2^31 - 1 with a handful of bytes behind them.
    const metadata = requestFrame(3, 4, (writer) => writer.writeRaw(bytes(0x7f, 0xff, 0xff, 0xff, 0, 1, 0x61, 1)));
    expectDecodeError(() => decodeRequestFrame(metadata, decodeMetadataRequest), /claims 2147483647 elements/);
    const fetch = requestFrame(1, 11, (writer) => {
      writer.writeRaw(Buffer.alloc(4 * 4 + 1 + 4 + 4));
      writer.writeInt32(0x7fffffff);
    });
    expectDecodeError(() => decodeRequestFrame(fetch, decodeFetchRequest), /claims 2147483647 elements of at least 6 bytes/);
    const tags = requestFrame(18, 3, (writer) => {
      writer.writeCompactString('a');
      writer.writeCompactString('b');
      writer.writeUnsignedVarint(0xffffffff);
    });
    expectDecodeError(() => decodeRequestFrame(tags, decodeApiVersionsRequest), /claims 4294967295 elements/);
  });

  it('tagged fields: unknown tags are skipped, sizes that lie are refused', () => {
    const body = (tagged: number[]): Buffer =>
      requestFrame(18, 3, (writer) => {
        writer.writeCompactString('librdkafka');
        writer.writeCompactString('2.0.2');
        writer.writeRaw(Buffer.from(tagged));
      });
    expect(decodeRequestFrame(body([2, 5, 1, 0xaa, 9, 2, 0xbb, 0xcc]), decodeApiVersionsRequest)).toEqual({
      clientSoftwareName: 'librdkafka',
      clientSoftwareVersion: '2.0.2',
    });
    expectDecodeError(() => decodeRequestFrame(body([1, 5, 9, 0xaa]), decodeApiVersionsRequest), /truncated tagged field 5/);
    // ApiVersions v3 response, tag 1 (FinalizedFeaturesEpoch, an int64) declared 4 bytes long.
    const writer = new ByteWriter();
    writer.writeInt16(0);
    writer.writeCompactArray([], () => undefined, 3);
    writer.writeInt32(0);
    writer.writeRaw(bytes(1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 1));
    expectDecodeError(() => decodeApiVersionsResponse(new ByteReader(writer.toBuffer()), 3), /tagged field 1 should end at offset/);
  });

  it('an unsupported version is a decode error, not a crash', () => {
    expectDecodeError(() => decodeMetadataRequest(new ByteReader(Buffer.alloc(100)), 99), /version 99 is not in 0-12/);
    expectDecodeError(() => decodeMetadataRequest(new ByteReader(Buffer.alloc(100)), -1), /version -1/);
  });

  it('random corruption of valid frames only ever throws ProtocolDecodeError (seed 43)', () => {
    const random = new SeededRandom(43);
    const cases: { frame: Buffer; decode: BodyDecoder }[] = [
      { frame: metadataV4Frame(), decode: decodeMetadataRequest },
      { frame: produceV7Frame(random), decode: decodeProduceRequest },
      {
        frame: requestFrame(18, 3, (writer) => encodeApiVersionsRequest(writer, 3, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' })),
        decode: decodeApiVersionsRequest,
      },
      {
        frame: requestFrame(1, 11, (writer) =>
          encodeFetchRequest(writer, 11, {
            replicaId: -1,
            maxWaitMs: 500,
            minBytes: 1,
            maxBytes: 1 << 20,
            isolationLevel: 1,
            sessionId: 0,
            sessionEpoch: -1,
            topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: 5n, partitionMaxBytes: 1 << 20 }] }],
            forgottenTopicsData: [],
            rackId: '',
          }),
        ),
        decode: decodeFetchRequest,
      },
      {
        frame: requestFrame(11, 7, (writer) =>
          encodeJoinGroupRequest(writer, 7, {
            groupId: 'g',
            sessionTimeoutMs: 10_000,
            memberId: '',
            protocolType: 'consumer',
            protocols: [{ name: 'range', metadata: bytes(0, 1, 2) }],
          }),
        ),
        decode: decodeJoinGroupRequest,
      },
    ];
    let decoded = 0;
    let refused = 0;
    for (const { frame, decode } of cases) {
      for (let round = 0; round < 600; round++) {
        const mutated = Buffer.from(frame);
        const flips = random.int(1, 4);
        for (let i = 0; i < flips; i++) mutated[random.int(0, mutated.length - 1)] = random.int(0, 255);
        const cut = random.bool(0.2) ? random.int(0, mutated.length) : mutated.length;
        try {
          decodeRequestFrame(mutated.subarray(0, cut), decode);
          decoded++;
        } catch (error) {
          if (!(error instanceof ProtocolDecodeError)) throw error;
          refused++;
        }
      }
    }
    expect(decoded + refused).toBe(cases.length * 600);
    expect(refused).toBeGreaterThan(0);
  });

  it('responses decode defensively too (Metadata v4, Fetch v11, ApiVersions v3) (seed 44)', () => {
    const random = new SeededRandom(44);
    const encoded: { buffer: Buffer; decode: BodyDecoder; version: number }[] = [];
    const writer = new ByteWriter();
    encodeMetadataResponse(writer, 4, {
      throttleTimeMs: 0,
      brokers: [{ nodeId: 1, host: 'localhost', port: 9092, rack: null }],
      clusterId: 'tidelog',
      controllerId: 1,
      topics: [{ errorCode: 0, name: 'orders', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1] }] }],
    });
    encoded.push({ buffer: writer.toBuffer(), decode: decodeMetadataResponse, version: 4 });
    writer.reset();
    encodeFetchResponse(writer, 11, {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: 0,
      responses: [{ topic: 'orders', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 10n, abortedTransactions: null, records: random.bytes(80) }] }],
    });
    encoded.push({ buffer: writer.toBuffer(), decode: decodeFetchResponse, version: 11 });
    writer.reset();
    encodeApiVersionsResponse(writer, 3, { errorCode: 0, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }], throttleTimeMs: 0, finalizedFeaturesEpoch: 5n });
    encoded.push({ buffer: writer.toBuffer(), decode: decodeApiVersionsResponse, version: 3 });
    for (const { buffer, decode, version } of encoded) {
      for (let length = 0; length < buffer.length; length++) {
        expectDecodeError(() => {
          const reader = new ByteReader(buffer.subarray(0, length));
          decode(reader, version);
          reader.expectEnd();
        });
      }
      for (let round = 0; round < 300; round++) {
        const mutated = Buffer.from(buffer);
        mutated[random.int(0, mutated.length - 1)] = random.int(0, 255);
        try {
          const reader = new ByteReader(mutated);
          decode(reader, version);
          reader.expectEnd();
        } catch (error) {
          if (!(error instanceof ProtocolDecodeError)) throw error;
        }
      }
    }
  });
});
