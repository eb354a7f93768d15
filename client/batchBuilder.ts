// One producer batch being filled: records are encoded straight into a pooled buffer as record
// batch v2 (layout in segments/recordBatch.ts), varints written in place; the header and the one
// CRC-32C are written when the batch is sealed. Per record we keep only who asked for it (the
// SendTracker and the record's index in its send() call), in two reused arrays, to hand back
// offsets when the batch is acknowledged.
import { CompressionCodec, compress } from '../segments/compression.js';

/** Codecs the producer can write (zstd is decoded by the consumer but not written). */
export type ProducerCompression = 'none' | 'gzip' | 'snappy' | 'lz4';
export const PRODUCER_COMPRESSIONS: readonly ProducerCompression[] = ['none', 'gzip', 'snappy', 'lz4'];
import { crc32c } from '../segments/crc32c.js';
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  CURRENT_MAGIC,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORDS_OFFSET,
  RECORD_COUNT_OFFSET,
  writeInt64FromNumber,
} from '../segments/recordBatch.js';
import { writeVarlong } from '../segments/varint.js';

/** Receives the offsets of the records of one send() call. */
export interface BatchOwner {
  /** Record `index` of the call was written at `offset` (-1 when unknown: acks=0). */
  acknowledge(index: number, offset: number): void;
  fail(error: Error): void;
}

export type HeaderValue = string | Uint8Array | null;
export type RecordHeaders = Readonly<Record<string, HeaderValue>> | readonly { key: string; value: HeaderValue }[];

/** Bytes a record can need beyond its key, value and header bytes (length varints, deltas). */
export const RECORD_OVERHEAD_BOUND_BYTES = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/** Per header, beyond its key and value bytes. */
export const HEADER_OVERHEAD_BOUND_BYTES = 10;

export function varintSize(value: number): number {
  const zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  return zigzag < 0x80 ? 1 : zigzag < 0x4000 ? 2 : zigzag < 0x200000 ? 3 : zigzag < 0x10000000 ? 4 : 5;
}

function putVarint(buffer: Buffer, position: number, value: number): number {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  while (zigzag >= 0x80) {
    buffer[position++] = (zigzag & 0x7f) | 0x80;
    zigzag >>>= 7;
  }
  buffer[position++] = zigzag;
  return position;
}

/** -1 for null; UTF-8 bytes for strings. */
export function byteLengthOf(value: string | Uint8Array | null): number {
  if (value === null) return -1;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  return value.length;
}

function putBytes(buffer: Buffer, position: number, value: string | Uint8Array | null, length: number): number {
  if (value === null) {
    buffer[position] = 1; // zigzag(-1)
    return position + 1;
  }
  position = putVarint(buffer, position, length);
  if (typeof value === 'string') {
    if (length > 0) buffer.write(value, position, length, 'utf8');
  } else if (length > 0) {
    buffer.set(value, position);
  }
  return position + length;
}

const INT32_SAFE_DELTA = 0x3fffffff;

export class BatchBuilder {
  position = RECORDS_OFFSET;
  recordCount = 0;
  maxTimestamp: number;
  readonly owners: BatchOwner[] = [];
  readonly ownerIndexes: number[] = [];
  /** The sealed batch (a view of `buffer`, or a new buffer when compressed). */
  bytes: Buffer | null = null;
  baseSequence = -1;
  attempts = 0;
  readonly createdMs: number;

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** Pooled: returned to the pool by the producer once the batch is done. */
    readonly buffer: Buffer,
    readonly baseTimestamp: number,
  ) {
    this.maxTimestamp = baseTimestamp;
    this.createdMs = Date.now();
  }

  /**
   * Encodes one record; false (nothing written) when it does not fit. `headersBytes` is the
   * exact encoded size of the header section (count varint included), from headersSize().
   */
  append(
    key: string | Uint8Array | null,
    keyLength: number,
    value: string | Uint8Array | null,
    valueLength: number,
    headers: RecordHeaders | undefined,
    headersBytes: number,
    timestamp: number,
    owner: BatchOwner,
    ownerIndex: number,
  ): boolean {
    const offsetDelta = this.recordCount;
    const timestampDelta = timestamp - this.baseTimestamp;
    const smallDelta = timestampDelta >= -INT32_SAFE_DELTA && timestampDelta <= INT32_SAFE_DELTA;
    const bodySize =
      1 +
      (smallDelta ? varintSize(timestampDelta) : varlongSizeOf(timestampDelta)) +
      varintSize(offsetDelta) +
      (keyLength < 0 ? 1 : varintSize(keyLength) + keyLength) +
      (valueLength < 0 ? 1 : varintSize(valueLength) + valueLength) +
      headersBytes;
    const buffer = this.buffer;
    let position = this.position;
    if (position + varintSize(bodySize) + bodySize > buffer.length) return false;
    position = putVarint(buffer, position, bodySize);
    buffer[position++] = 0; // record attributes
    position = smallDelta ? putVarint(buffer, position, timestampDelta) : writeVarlong(buffer, position, timestampDelta);
    position = putVarint(buffer, position, offsetDelta);
    position = putBytes(buffer, position, key, keyLength);
    position = putBytes(buffer, position, value, valueLength);
    if (headers === undefined) {
      buffer[position++] = 0;
    } else {
      position = writeHeaders(buffer, position, headers);
    }
    this.position = position;
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    this.recordCount = offsetDelta + 1;
    this.owners.push(owner);
    this.ownerIndexes.push(ownerIndex);
    return true;
  }

  /** Writes the header and the CRC (compressing first when asked); the batch is then immutable. */
  seal(producerId: number, producerEpoch: number, baseSequence: number, compression: ProducerCompression): Buffer {
    let batch: Buffer;
    let attributes = 0;
    if (compression !== 'none') {
      const codec = CompressionCodec[compression];
      const compressed = compress(codec, this.buffer.subarray(RECORDS_OFFSET, this.position));
      batch = Buffer.allocUnsafe(RECORDS_OFFSET + compressed.length);
      compressed.copy(batch, RECORDS_OFFSET);
      attributes = codec;
    } else {
      batch = this.buffer.subarray(0, this.position);
    }
    writeInt64FromNumber(batch, BASE_OFFSET_OFFSET, 0);
    batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
    batch.writeInt32BE(-1, PARTITION_LEADER_EPOCH_OFFSET);
    batch[MAGIC_OFFSET] = CURRENT_MAGIC;
    batch.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
    batch.writeInt32BE(this.recordCount - 1, LAST_OFFSET_DELTA_OFFSET);
    writeInt64FromNumber(batch, BASE_TIMESTAMP_OFFSET, this.baseTimestamp);
    writeInt64FromNumber(batch, MAX_TIMESTAMP_OFFSET, this.maxTimestamp);
    writeInt64FromNumber(batch, PRODUCER_ID_OFFSET, producerId);
    batch.writeInt16BE(producerEpoch, PRODUCER_EPOCH_OFFSET);
    batch.writeInt32BE(baseSequence, BASE_SEQUENCE_OFFSET);
    batch.writeInt32BE(this.recordCount, RECORD_COUNT_OFFSET);
    batch.writeUInt32BE(crc32c(batch.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
    this.baseSequence = baseSequence;
    this.bytes = batch;
    return batch;
  }
}

function varlongSizeOf(value: number): number {
  let rest = Math.floor((value < 0 ? -value - 1 : value) / 64);
  let bytes = 1;
  while (rest > 0) {
    rest = Math.floor(rest / 128);
    bytes++;
  }
  return bytes;
}

/** Encoded size of a record's header section, count varint included. */
export function headersSize(headers: RecordHeaders | undefined): number {
  if (headers === undefined) return 1;
  let size = 0;
  let count = 0;
  if (Array.isArray(headers)) {
    for (const header of headers as readonly { key: string; value: HeaderValue }[]) {
      size += headerSize(header.key, header.value);
      count++;
    }
  } else {
    const object = headers as Readonly<Record<string, HeaderValue>>;
    for (const key of Object.keys(object)) {
      size += headerSize(key, object[key] ?? null);
      count++;
    }
  }
  return size + varintSize(count);
}

function headerSize(key: string, value: HeaderValue): number {
  const keyLength = Buffer.byteLength(key, 'utf8');
  const valueLength = byteLengthOf(value);
  return varintSize(keyLength) + keyLength + (valueLength < 0 ? 1 : varintSize(valueLength) + valueLength);
}

function writeHeaders(buffer: Buffer, position: number, headers: RecordHeaders): number {
  if (Array.isArray(headers)) {
    const list = headers as readonly { key: string; value: HeaderValue }[];
    position = putVarint(buffer, position, list.length);
    for (const header of list) position = writeHeader(buffer, position, header.key, header.value);
    return position;
  }
  const object = headers as Readonly<Record<string, HeaderValue>>;
  const keys = Object.keys(object);
  position = putVarint(buffer, position, keys.length);
  for (const key of keys) position = writeHeader(buffer, position, key, object[key] ?? null);
  return position;
}

function writeHeader(buffer: Buffer, position: number, key: string, value: HeaderValue): number {
  position = putBytes(buffer, position, key, Buffer.byteLength(key, 'utf8'));
  return putBytes(buffer, position, value, byteLengthOf(value));
}
