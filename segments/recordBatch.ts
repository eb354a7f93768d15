// Kafka record batch v2 ("magic 2"): the bytes on the wire inside `records` fields and, unchanged,
// the bytes in our .log files.
//
//   offset size field
//        0    8 baseOffset            int64, assigned by the log on append (clients send 0)
//        8    4 batchLength           int32, bytes after this field: batch size = batchLength + 12
//       12    4 partitionLeaderEpoch  int32, stamped by the log; NOT covered by the CRC
//       16    1 magic                 int8, always 2 here (0 and 1 are legacy message sets)
//       17    4 crc                   uint32, CRC-32C of bytes 21..end of batch
//       21    2 attributes            bits 0-2 codec, 3 timestamp type (1 = LogAppendTime),
//                                     4 transactional, 5 control, 6 delete horizon set
//       23    4 lastOffsetDelta       int32, offset delta of the last record
//       27    8 baseTimestamp         int64
//       35    8 maxTimestamp          int64
//       43    8 producerId            int64, -1 when not idempotent
//       51    2 producerEpoch         int16
//       53    4 baseSequence          int32
//       57    4 recordCount           int32, never compressed
//       61    . records               compressed as one blob when codec != 0
//
// Record (varint = zigzag LEB128): length varint, attributes int8, timestampDelta varlong,
// offsetDelta varint, keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
// headerCount varint, then per header: keyLength varint, key (UTF-8), valueLength varint (-1 = null), value.
//
// 64-bit fields are exposed as JS numbers after a safe-integer check: offsets, producer ids and
// millisecond timestamps stay far below 2^53, and a value beyond it is treated as corruption.
import { crc32c } from './crc32c.js';
import { CompressionCodec, compress, compressionName, decompress } from './compression.js';
import { readVarint, readVarlong, varintSize, varlongSize, writeVarint, writeVarlong } from './varint.js';

export const BASE_OFFSET_OFFSET = 0;
export const BATCH_LENGTH_OFFSET = 8;
export const PARTITION_LEADER_EPOCH_OFFSET = 12;
export const MAGIC_OFFSET = 16;
export const CRC_OFFSET = 17;
export const ATTRIBUTES_OFFSET = 21;
export const LAST_OFFSET_DELTA_OFFSET = 23;
export const BASE_TIMESTAMP_OFFSET = 27;
export const MAX_TIMESTAMP_OFFSET = 35;
export const PRODUCER_ID_OFFSET = 43;
export const PRODUCER_EPOCH_OFFSET = 51;
export const BASE_SEQUENCE_OFFSET = 53;
export const RECORD_COUNT_OFFSET = 57;
export const RECORDS_OFFSET = 61;

/** baseOffset + batchLength: the bytes that precede what batchLength counts. */
export const LOG_OVERHEAD = 12;
/** A batch is at least its header. */
export const BATCH_HEADER_BYTES = RECORDS_OFFSET;
export const CURRENT_MAGIC = 2;

export const ATTRIBUTE_COMPRESSION_MASK = 0x07;
export const ATTRIBUTE_LOG_APPEND_TIME = 0x08;
export const ATTRIBUTE_TRANSACTIONAL = 0x10;
export const ATTRIBUTE_CONTROL = 0x20;
export const ATTRIBUTE_DELETE_HORIZON = 0x40;

export const NO_PRODUCER_ID = -1;
export const NO_TIMESTAMP = -1;

/** Every header field of a batch, read without touching the records. */
export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export function readInt64AsNumber(buffer: Buffer, position: number): number {
  const high = buffer.readInt32BE(position);
  const low = buffer.readUInt32BE(position + 4);
  const value = high * 0x1_0000_0000 + low;
  // Values beyond 2^53 cannot be represented exactly; callers treat NaN as corruption.
  return Number.isSafeInteger(value) ? value : Number.NaN;
}

export function writeInt64FromNumber(buffer: Buffer, position: number, value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`int64 field outside the safe integer range: ${value}`);
  const high = Math.floor(value / 0x1_0000_0000);
  buffer.writeInt32BE(high, position);
  buffer.writeUInt32BE(value - high * 0x1_0000_0000, position + 4);
}

export function readBatchHeader(buffer: Buffer, position = 0): BatchHeader {
  return {
    baseOffset: readInt64AsNumber(buffer, position + BASE_OFFSET_OFFSET),
    batchLength: buffer.readInt32BE(position + BATCH_LENGTH_OFFSET),
    partitionLeaderEpoch: buffer.readInt32BE(position + PARTITION_LEADER_EPOCH_OFFSET),
    magic: buffer.readInt8(position + MAGIC_OFFSET),
    crc: buffer.readUInt32BE(position + CRC_OFFSET),
    attributes: buffer.readInt16BE(position + ATTRIBUTES_OFFSET),
    lastOffsetDelta: buffer.readInt32BE(position + LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: readInt64AsNumber(buffer, position + BASE_TIMESTAMP_OFFSET),
    maxTimestamp: readInt64AsNumber(buffer, position + MAX_TIMESTAMP_OFFSET),
    producerId: readInt64AsNumber(buffer, position + PRODUCER_ID_OFFSET),
    producerEpoch: buffer.readInt16BE(position + PRODUCER_EPOCH_OFFSET),
    baseSequence: buffer.readInt32BE(position + BASE_SEQUENCE_OFFSET),
    recordCount: buffer.readInt32BE(position + RECORD_COUNT_OFFSET),
  };
}

export function batchSizeOf(header: Pick<BatchHeader, 'batchLength'>): number {
  return header.batchLength + LOG_OVERHEAD;
}

export function lastOffsetOf(header: Pick<BatchHeader, 'baseOffset' | 'lastOffsetDelta'>): number {
  return header.baseOffset + header.lastOffsetDelta;
}

export function compressionOf(attributes: number): number {
  return attributes & ATTRIBUTE_COMPRESSION_MASK;
}

export function isControlBatch(attributes: number): boolean {
  return (attributes & ATTRIBUTE_CONTROL) !== 0;
}

export function isTransactionalBatch(attributes: number): boolean {
  return (attributes & ATTRIBUTE_TRANSACTIONAL) !== 0;
}

export function computeBatchCrc(batch: Buffer, position = 0, size = batchSizeOf({ batchLength: batch.readInt32BE(position + BATCH_LENGTH_OFFSET) })): number {
  return crc32c(batch.subarray(position + ATTRIBUTES_OFFSET, position + size));
}

// ---------------------------------------------------------------------------------------------
// Validation

export type BatchProblem =
  | 'truncated' // fewer bytes than the header or the declared length needs
  | 'bad-length' // batchLength too small to hold a header, or larger than allowed
  | 'bad-magic' // not a magic-2 batch
  | 'crc-mismatch' // stored CRC-32C differs from the bytes
  | 'bad-offsets' // lastOffsetDelta negative, or a 64-bit field beyond 2^53
  | 'bad-record-count'; // recordCount negative, or more records than offsets

export interface BatchCheckOk {
  ok: true;
  header: BatchHeader;
  size: number;
}
export interface BatchCheckFailed {
  ok: false;
  problem: BatchProblem;
  detail: string;
  /** The header when at least its bytes were present and sane enough to read. */
  header: BatchHeader | null;
}
export type BatchCheck = BatchCheckOk | BatchCheckFailed;

export interface BatchCheckOptions {
  /** Largest batch accepted, in bytes including the 12-byte log overhead. */
  maxBatchBytes: number;
  /** Whether to compute the CRC (false only for header walks that re-check later). */
  verifyCrc?: boolean;
}

/**
 * Checks the batch that starts at `position` and must end at or before `end`: lengths, magic,
 * offsets and (by default) the CRC. Never throws on bad bytes; says what is wrong instead.
 */
export function checkBatch(buffer: Buffer, position: number, end: number, options: BatchCheckOptions): BatchCheck {
  const available = end - position;
  if (available < LOG_OVERHEAD) {
    return { ok: false, problem: 'truncated', detail: `${available} bytes left, a batch needs at least ${BATCH_HEADER_BYTES}`, header: null };
  }
  const batchLength = buffer.readInt32BE(position + BATCH_LENGTH_OFFSET);
  const size = batchLength + LOG_OVERHEAD;
  if (batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD) {
    return { ok: false, problem: 'bad-length', detail: `batchLength ${batchLength} is smaller than a batch header`, header: null };
  }
  if (size > options.maxBatchBytes) {
    return { ok: false, problem: 'bad-length', detail: `batch of ${size} bytes exceeds the limit of ${options.maxBatchBytes}`, header: null };
  }
  if (available < BATCH_HEADER_BYTES) {
    return { ok: false, problem: 'truncated', detail: `${available} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`, header: null };
  }
  const magic = buffer.readInt8(position + MAGIC_OFFSET);
  if (magic !== CURRENT_MAGIC) {
    return { ok: false, problem: 'bad-magic', detail: `magic byte ${magic}, expected ${CURRENT_MAGIC}`, header: null };
  }
  const header = readBatchHeader(buffer, position);
  if (size > available) {
    return { ok: false, problem: 'truncated', detail: `batch declares ${size} bytes but ${available} remain`, header };
  }
  if (Number.isNaN(header.baseOffset) || Number.isNaN(header.producerId) || Number.isNaN(header.maxTimestamp) || Number.isNaN(header.baseTimestamp)) {
    return { ok: false, problem: 'bad-offsets', detail: 'a 64-bit field is beyond 2^53', header };
  }
  if (header.lastOffsetDelta < 0) {
    return { ok: false, problem: 'bad-offsets', detail: `lastOffsetDelta ${header.lastOffsetDelta} is negative`, header };
  }
  if (header.recordCount < 0 || header.recordCount > header.lastOffsetDelta + 1) {
    return { ok: false, problem: 'bad-record-count', detail: `recordCount ${header.recordCount} does not fit lastOffsetDelta ${header.lastOffsetDelta}`, header };
  }
  if (options.verifyCrc !== false) {
    const actual = crc32c(buffer.subarray(position + ATTRIBUTES_OFFSET, position + size));
    if (actual !== header.crc) {
      return { ok: false, problem: 'crc-mismatch', detail: `stored CRC ${hex32(header.crc)}, computed ${hex32(actual)}`, header };
    }
  }
  return { ok: true, header, size };
}

export function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Records: encode and decode

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface RecordInput {
  key: Buffer | null;
  value: Buffer | null;
  headers?: readonly RecordHeader[];
  /** Milliseconds since the epoch; defaults to the batch's base timestamp. */
  timestamp?: number;
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  attributes: number;
}

export interface EncodeBatchOptions {
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  /** Base timestamp; defaults to the first record's timestamp, else Date.now(). */
  baseTimestamp?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  compression?: 'none' | 'gzip';
  transactional?: boolean;
  control?: boolean;
  logAppendTime?: boolean;
}

function recordBodySize(record: RecordInput, offsetDelta: number, timestampDelta: number): number {
  let size = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta);
  size += record.key === null ? varintSize(-1) : varintSize(record.key.length) + record.key.length;
  size += record.value === null ? varintSize(-1) : varintSize(record.value.length) + record.value.length;
  const headers = record.headers ?? [];
  size += varintSize(headers.length);
  for (const header of headers) {
    const keyBytes = Buffer.byteLength(header.key, 'utf8');
    size += varintSize(keyBytes) + keyBytes;
    size += header.value === null ? varintSize(-1) : varintSize(header.value.length) + header.value.length;
  }
  return size;
}

function writeRecord(target: Buffer, position: number, record: RecordInput, offsetDelta: number, timestampDelta: number, bodySize: number): number {
  position = writeVarint(target, position, bodySize);
  target[position++] = 0; // record attributes: unused
  position = writeVarlong(target, position, timestampDelta);
  position = writeVarint(target, position, offsetDelta);
  position = writeBytesField(target, position, record.key);
  position = writeBytesField(target, position, record.value);
  const headers = record.headers ?? [];
  position = writeVarint(target, position, headers.length);
  for (const header of headers) {
    const keyBytes = Buffer.byteLength(header.key, 'utf8');
    position = writeVarint(target, position, keyBytes);
    position += target.write(header.key, position, 'utf8');
    position = writeBytesField(target, position, header.value);
  }
  return position;
}

function writeBytesField(target: Buffer, position: number, bytes: Buffer | null): number {
  if (bytes === null) return writeVarint(target, position, -1);
  position = writeVarint(target, position, bytes.length);
  bytes.copy(target, position);
  return position + bytes.length;
}

/** Encodes records as one record batch v2 with a correct CRC. */
export function encodeBatch(records: readonly RecordInput[], options: EncodeBatchOptions = {}): Buffer {
  const baseTimestamp = options.baseTimestamp ?? records[0]?.timestamp ?? Date.now();
  let maxTimestamp = records.length === 0 ? NO_TIMESTAMP : baseTimestamp;
  const sizes: number[] = [];
  let recordsBytes = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const timestamp = record.timestamp ?? baseTimestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const bodySize = recordBodySize(record, i, timestamp - baseTimestamp);
    sizes.push(bodySize);
    recordsBytes += varintSize(bodySize) + bodySize;
  }
  let recordsArea: Buffer = Buffer.allocUnsafe(recordsBytes);
  let position = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    position = writeRecord(recordsArea, position, record, i, (record.timestamp ?? baseTimestamp) - baseTimestamp, sizes[i]!);
  }
  const codec = CompressionCodec[options.compression ?? 'none'];
  recordsArea = compress(codec, recordsArea);

  const batch = Buffer.allocUnsafe(BATCH_HEADER_BYTES + recordsArea.length);
  let attributes = codec;
  if (options.logAppendTime === true) attributes |= ATTRIBUTE_LOG_APPEND_TIME;
  if (options.transactional === true) attributes |= ATTRIBUTE_TRANSACTIONAL;
  if (options.control === true) attributes |= ATTRIBUTE_CONTROL;
  writeInt64FromNumber(batch, BASE_OFFSET_OFFSET, options.baseOffset ?? 0);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? -1, PARTITION_LEADER_EPOCH_OFFSET);
  batch.writeInt8(CURRENT_MAGIC, MAGIC_OFFSET);
  batch.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  batch.writeInt32BE(Math.max(records.length - 1, 0), LAST_OFFSET_DELTA_OFFSET);
  writeInt64FromNumber(batch, BASE_TIMESTAMP_OFFSET, records.length === 0 ? NO_TIMESTAMP : baseTimestamp);
  writeInt64FromNumber(batch, MAX_TIMESTAMP_OFFSET, maxTimestamp);
  writeInt64FromNumber(batch, PRODUCER_ID_OFFSET, options.producerId ?? NO_PRODUCER_ID);
  batch.writeInt16BE(options.producerEpoch ?? -1, PRODUCER_EPOCH_OFFSET);
  batch.writeInt32BE(options.baseSequence ?? -1, BASE_SEQUENCE_OFFSET);
  batch.writeInt32BE(records.length, RECORD_COUNT_OFFSET);
  recordsArea.copy(batch, RECORDS_OFFSET);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}

export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
}

/**
 * Decodes the records of the batch at `position` (which must already have passed checkBatch).
 * Decompresses when needed; throws UnsupportedCompressionError for codecs we cannot decode.
 */
export function decodeRecords(buffer: Buffer, position = 0): DecodedRecord[] {
  const header = readBatchHeader(buffer, position);
  const end = position + batchSizeOf(header);
  const codec = compressionOf(header.attributes);
  const area = decompress(codec, buffer.subarray(position + RECORDS_OFFSET, end));
  const records: DecodedRecord[] = [];
  let cursor = 0;
  for (let i = 0; i < header.recordCount; i++) {
    const length = readVarint(area, cursor);
    const recordEnd = length.next + length.value;
    if (length.value < 0 || recordEnd > area.length) {
      throw new RecordDecodeError(`record ${i} of batch at offset ${header.baseOffset} declares ${length.value} bytes past the end of the records area (${compressionName(codec) ?? codec})`);
    }
    cursor = length.next;
    const attributes = area.readInt8(cursor);
    cursor += 1;
    const timestampDelta = readVarlong(area, cursor, recordEnd);
    const offsetDelta = readVarint(area, timestampDelta.next, recordEnd);
    cursor = offsetDelta.next;
    const key = readBytesField(area, cursor, recordEnd);
    const value = readBytesField(area, key.next, recordEnd);
    const headerCount = readVarint(area, value.next, recordEnd);
    cursor = headerCount.next;
    if (headerCount.value < 0 || headerCount.value > recordEnd - cursor) {
      throw new RecordDecodeError(`record ${i} declares ${headerCount.value} headers`);
    }
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount.value; h++) {
      const headerKey = readBytesField(area, cursor, recordEnd);
      if (headerKey.bytes === null) throw new RecordDecodeError(`record ${i} has a header with a null key`);
      const headerValue = readBytesField(area, headerKey.next, recordEnd);
      headers.push({ key: headerKey.bytes.toString('utf8'), value: headerValue.bytes });
      cursor = headerValue.next;
    }
    if (cursor !== recordEnd) {
      throw new RecordDecodeError(`record ${i} of batch at offset ${header.baseOffset} has ${recordEnd - cursor} unexplained bytes`);
    }
    records.push({
      offset: header.baseOffset + offsetDelta.value,
      timestamp: header.baseTimestamp + timestampDelta.value,
      key: key.bytes,
      value: value.bytes,
      headers,
      attributes,
    });
  }
  if (cursor !== area.length) {
    throw new RecordDecodeError(`batch at offset ${header.baseOffset} has ${area.length - cursor} bytes after its ${header.recordCount} records`);
  }
  return records;
}

function readBytesField(area: Buffer, position: number, end: number): { bytes: Buffer | null; next: number } {
  const length = readVarint(area, position, end);
  if (length.value === -1) return { bytes: null, next: length.next };
  if (length.value < -1 || length.next + length.value > end) {
    throw new RecordDecodeError(`field length ${length.value} runs past the record`);
  }
  return { bytes: area.subarray(length.next, length.next + length.value), next: length.next + length.value };
}

/** Splits a buffer of back-to-back batches into their positions, checking each one. */
export function* walkBatches(buffer: Buffer, options: BatchCheckOptions, start = 0, end = buffer.length): Generator<BatchCheck & { position: number }> {
  let position = start;
  while (position < end) {
    const check = checkBatch(buffer, position, end, options);
    yield { ...check, position };
    if (!check.ok) return;
    position += check.size;
  }
}
