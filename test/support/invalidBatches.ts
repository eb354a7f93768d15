// Invalid record batches for the Produce validation tests: a seeded generator of batches that each
// have exactly one thing wrong (every rule of the produce validation contract in turn, for
// uncompressed batches and for every codec), the compression bombs, and valid batches for control.
//
// How a case is made: random good records (keys, values, headers, timestamps near the clock),
// laid out field by field (each varint kept as its own bytes), one field broken, the records area
// compressed with the case's codec, the batch header written, and the CRC-32C computed over the
// result. Every CRC is right except in the cases of the field `crc`: the point is that the
// contents are wrong while the CRC vouches for them.
//
// What a case expects (Produce partition error codes, protocol/errors.ts):
//   CORRUPT_MESSAGE        lengths, magic >= 3 or < 0, the CRC, codec ids 5-7, compressed areas that
//                          do not decode (truncated, garbage, flipped bytes)
//   UNSUPPORTED_FOR_MESSAGE_FORMAT  magic 0 or 1
//   MESSAGE_TOO_LARGE      batch over max.message.bytes; areas decoding to more than the
//                          decompressed limit (the bombs)
//   INVALID_RECORD         counts, offsets, record structure, producer fields, attributes, keyless
//                          records on compacted topics
//   INVALID_TIMESTAMP      record timestamps outside message.timestamp.{after,before}.max.ms
// `recordIndex`: a record-level refusal Kafka reports in recordErrors (KIP-467): v8 must answer
// exactly [{ batchIndex: recordIndex }]. `possibleRecordIndex`: a refusal the decoder meets at one
// record (structure errors); whether it is reported per record is the broker's choice, so v8 must
// answer [] or [{ batchIndex: possibleRecordIndex }]. Neither: a batch-level refusal, [] expected.
//
// Flipped bytes in formats without a checksum (raw snappy, xerial, LZ4 block data, zstd frames
// without a content checksum) may still decode: such a case is `mayBeAccepted` and only says the
// batch is refused with CORRUPT_MESSAGE or INVALID_RECORD (or INVALID_TIMESTAMP, when the flip lands
// in a timestamp delta), or, if accepted, reads back byte for byte. Flips never touch a field that
// declares a decompressed size, so MESSAGE_TOO_LARGE is not a possible answer to them. Flips in
// gzip (CRC-32 and length trailer) and in the LZ4 header checksum must be refused outright.
//
// Bombs are built once per process and limit (they take up to a few hundred ms each) and cached.
import { createRequire } from 'node:module';
import { gunzipSync, gzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import lz4 from 'lz4js';
import snappy from 'snappyjs';
import { ErrorCode } from '../../protocol/errors.js';
import {
  ATTRIBUTES_OFFSET,
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_DELETE_HORIZON,
  ATTRIBUTE_TRANSACTIONAL,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORDS_OFFSET,
  RECORD_COUNT_OFFSET,
  computeBatchCrc,
  writeInt64FromNumber,
} from '../../segments/recordBatch.js';
import { readVarint, readVarlong, varintSize, writeVarint, writeVarlong } from '../../segments/varint.js';
import { SeededRandom } from './random.js';

// ---------------------------------------------------------------------------------------------
// Public types

/** The codec of a case; snappy comes raw (snappyjs) and in the xerial framing Java clients write. */
export type CaseCodec = 'none' | 'gzip' | 'snappy' | 'snappy-xerial' | 'lz4' | 'zstd';
export const CASE_CODECS: readonly CaseCodec[] = ['none', 'gzip', 'snappy', 'snappy-xerial', 'lz4', 'zstd'];
export const COMPRESSED_CODECS: readonly CaseCodec[] = CASE_CODECS.filter((codec) => codec !== 'none');

/** The codec id in attribute bits 0-2. */
export function codecId(codec: CaseCodec): number {
  return { none: 0, gzip: 1, snappy: 2, 'snappy-xerial': 2, lz4: 3, zstd: 4 }[codec];
}

/**
 * The topic a case is sent to: `default` (CreateTime, delete, Kafka's defaults), `compacted`
 * (cleanup.policy=compact), `strictTimestamps` (message.timestamp.before.max.ms=86400000).
 */
export type CaseTopic = 'default' | 'compacted' | 'strictTimestamps';

/** message.timestamp.before.max.ms of the `strictTimestamps` topic. */
export const STRICT_TIMESTAMP_BEFORE_MAX_MS = 86_400_000;
/** Kafka's default message.timestamp.after.max.ms. */
export const DEFAULT_TIMESTAMP_AFTER_MAX_MS = 3_600_000;
/** Kafka's default max.message.bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

export interface InvalidBatchCase {
  /** Unique within a list: `<field> [<codec>] #<variant>: <what exactly>`. */
  name: string;
  /** The rule the case breaks (tests are grouped by it). */
  field: string;
  codec: CaseCodec;
  batch: Buffer;
  /** The Produce partition error code. */
  expected: number;
  topic?: CaseTopic;
  /** recordErrors of a v8 answer must be exactly [{ batchIndex: recordIndex }]. */
  recordIndex?: number;
  /** recordErrors of a v8 answer must be [] or [{ batchIndex: possibleRecordIndex }]. */
  possibleRecordIndex?: number;
  /** Other refusal codes that are right too (flipped bytes only). */
  alsoAcceptable?: readonly number[];
  /** Flipped bytes without a checksum: the batch may decode; if accepted it must read back byte for byte. */
  mayBeAccepted?: boolean;
  /** A bomb or an oversized batch: large to send or to decode. */
  heavy?: boolean;
}

export interface GeneratorOptions {
  /** The broker's clock (ms), read for every case: timestamps are drawn around it. */
  nowMs?: () => number;
  /** Random variants of each field for each codec (default 3). */
  variants?: number;
  codecs?: readonly CaseCodec[];
  /** max.message.bytes of the topics (default Kafka's 1048588). */
  maxMessageBytes?: number;
  /**
   * decompressedBatchLimit(maxMessageBytes) of the broker under test: the bombs are sized from it.
   * Without it no bomb is generated.
   */
  decompressedLimitBytes?: number;
  /** Oversized batches and bombs (default: true). */
  includeHeavy?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Good records

export interface GoodHeader {
  key: Buffer;
  value: Buffer | null;
}

export interface GoodRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: GoodHeader[];
  timestamp: number;
}

export interface RecordOptions {
  /** Default Date.now(). */
  nowMs?: number;
  /** Every record has a key (compacted topics; kcat-readable data). */
  keyed?: boolean;
  /** Keys, values and headers as letters and digits only (for kcat's text output). */
  textual?: boolean;
  count?: number;
}

const TEXT_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.';

function text(rng: SeededRandom, length: number): Buffer {
  let out = '';
  for (let i = 0; i < length; i++) out += TEXT_ALPHABET[rng.int(0, TEXT_ALPHABET.length - 1)];
  return Buffer.from(out, 'latin1');
}

/** Bytes that compress (a repeated pattern) or not (random), so codecs really copy and match. */
function payload(rng: SeededRandom, length: number, textual: boolean): Buffer {
  if (textual) {
    if (rng.bool(0.5)) return text(rng, length);
    const unit = text(rng, rng.int(1, 8));
    return Buffer.from(unit.toString('latin1').repeat(Math.ceil(length / unit.length)).slice(0, length), 'latin1');
  }
  if (rng.bool(0.5)) return rng.bytes(length);
  const unit = rng.bytes(rng.int(1, 12));
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = unit[i % unit.length]!;
  return out;
}

/** Random records a broker must accept: timestamps within a minute of nowMs. */
export function goodRecords(rng: SeededRandom, options: RecordOptions = {}): GoodRecord[] {
  const nowMs = options.nowMs ?? Date.now();
  const textual = options.textual ?? false;
  const count = options.count ?? (rng.bool(0.8) ? rng.int(1, 6) : rng.int(7, 24));
  const records: GoodRecord[] = [];
  for (let i = 0; i < count; i++) {
    const headerCount = rng.bool(0.6) ? 0 : rng.int(1, 3);
    const headers: GoodHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      headers.push({ key: text(rng, rng.int(1, 10)), value: !textual && rng.bool(0.2) ? null : payload(rng, rng.int(0, 24), textual) });
    }
    const keyed = options.keyed === true || rng.bool(0.8);
    records.push({
      key: keyed ? payload(rng, rng.int(textual ? 1 : 0, 16), textual) : null,
      value: !textual && rng.bool(0.05) ? null : payload(rng, rng.bool(0.9) ? rng.int(textual ? 1 : 0, 200) : rng.int(201, 3000), textual),
      headers,
      timestamp: nowMs + rng.int(-60_000, 60_000),
    });
  }
  return records;
}

// ---------------------------------------------------------------------------------------------
// Records laid out field by field

function varint(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(5);
  return buffer.subarray(0, writeVarint(buffer, 0, value));
}

function varlong(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(10);
  return buffer.subarray(0, writeVarlong(buffer, 0, value));
}

/** A varint of `totalBytes` (> 5) bytes: `value`'s zigzag groups padded with continuation bytes. */
function overlongVarint(value: number, totalBytes: number): Buffer {
  const zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  const out = Buffer.alloc(totalBytes);
  for (let i = 0; i < totalBytes; i++) {
    const group = i < 5 ? Math.floor(zigzag / 2 ** (7 * i)) & 0x7f : 0;
    out[i] = i < totalBytes - 1 ? group | 0x80 : group;
  }
  return out;
}

interface HeaderLayout {
  keyLength: Buffer;
  key: Buffer;
  valueLength: Buffer;
  value: Buffer;
}

interface RecordLayout {
  /** The length varint's bytes; null: computed from the body. */
  length: Buffer | null;
  attributes: Buffer;
  timestampDelta: Buffer;
  offsetDelta: Buffer;
  keyLength: Buffer;
  key: Buffer;
  valueLength: Buffer;
  value: Buffer;
  headerCount: Buffer;
  headers: HeaderLayout[];
  /** Bytes after the headers that the length counts (none in a good record). */
  trailing: Buffer;
}

function layoutOf(record: GoodRecord, offsetDelta: number, baseTimestamp: number): RecordLayout {
  return {
    length: null,
    attributes: Buffer.from([0]),
    timestampDelta: varlong(record.timestamp - baseTimestamp),
    offsetDelta: varint(offsetDelta),
    keyLength: varint(record.key === null ? -1 : record.key.length),
    key: record.key ?? Buffer.alloc(0),
    valueLength: varint(record.value === null ? -1 : record.value.length),
    value: record.value ?? Buffer.alloc(0),
    headerCount: varint(record.headers.length),
    headers: record.headers.map((header) => ({
      keyLength: varint(header.key.length),
      key: header.key,
      valueLength: varint(header.value === null ? -1 : header.value.length),
      value: header.value ?? Buffer.alloc(0),
    })),
    trailing: Buffer.alloc(0),
  };
}

function headerBytes(header: HeaderLayout): Buffer {
  return Buffer.concat([header.keyLength, header.key, header.valueLength, header.value]);
}

function bodyOf(layout: RecordLayout): Buffer {
  return Buffer.concat([
    layout.attributes,
    layout.timestampDelta,
    layout.offsetDelta,
    layout.keyLength,
    layout.key,
    layout.valueLength,
    layout.value,
    layout.headerCount,
    ...layout.headers.map(headerBytes),
    layout.trailing,
  ]);
}

function encodeLayout(layout: RecordLayout): Buffer {
  const body = bodyOf(layout);
  return Buffer.concat([layout.length ?? varint(body.length), body]);
}

/** Bytes of the record that follow the given part (up to the record's end). */
function bytesAfter(layout: RecordLayout, part: 'keyLength' | 'valueLength' | 'headerCount'): number {
  const headers = layout.headers.reduce((sum, header) => sum + headerBytes(header).length, 0);
  const afterHeaderCount = headers + layout.trailing.length;
  const afterValueLength = layout.value.length + layout.headerCount.length + afterHeaderCount;
  if (part === 'headerCount') return afterHeaderCount;
  if (part === 'valueLength') return afterValueLength;
  return layout.key.length + layout.valueLength.length + afterValueLength;
}

// ---------------------------------------------------------------------------------------------
// Batches

interface BatchFields {
  magic: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** A batch before it is written: records laid out, header fields consistent with them. */
interface Draft {
  codec: CaseCodec;
  records: GoodRecord[];
  layouts: RecordLayout[];
  /** Bytes after the last record, inside the (uncompressed) records area. */
  trailing: Buffer;
  fields: BatchFields;
}

function draftOf(records: GoodRecord[], codec: CaseCodec): Draft {
  const baseTimestamp = records[0]?.timestamp ?? -1;
  return {
    codec,
    records,
    layouts: records.map((record, i) => layoutOf(record, i, baseTimestamp)),
    trailing: Buffer.alloc(0),
    fields: {
      magic: 2,
      attributes: codecId(codec),
      lastOffsetDelta: records.length - 1,
      baseTimestamp,
      maxTimestamp: records.length === 0 ? -1 : Math.max(...records.map((record) => record.timestamp)),
      producerId: -1,
      producerEpoch: -1,
      baseSequence: -1,
      recordCount: records.length,
    },
  };
}

function recordsArea(draft: Draft): Buffer {
  return Buffer.concat([...draft.layouts.map(encodeLayout), draft.trailing]);
}

/** Writes header + area (already compressed) and the CRC over attributes..end. */
function writeBatch(fields: BatchFields, area: Buffer): Buffer {
  const batch = Buffer.alloc(RECORDS_OFFSET + area.length);
  writeInt64FromNumber(batch, BASE_OFFSET_OFFSET, 0);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  batch.writeInt32BE(-1, PARTITION_LEADER_EPOCH_OFFSET);
  batch.writeInt8(fields.magic, MAGIC_OFFSET);
  batch.writeInt16BE(fields.attributes, ATTRIBUTES_OFFSET);
  batch.writeInt32BE(fields.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  writeInt64FromNumber(batch, BASE_TIMESTAMP_OFFSET, fields.baseTimestamp);
  writeInt64FromNumber(batch, MAX_TIMESTAMP_OFFSET, fields.maxTimestamp);
  writeInt64FromNumber(batch, PRODUCER_ID_OFFSET, fields.producerId);
  batch.writeInt16BE(fields.producerEpoch, PRODUCER_EPOCH_OFFSET);
  batch.writeInt32BE(fields.baseSequence, BASE_SEQUENCE_OFFSET);
  batch.writeInt32BE(fields.recordCount, RECORD_COUNT_OFFSET);
  area.copy(batch, RECORDS_OFFSET);
  return withCrc(batch);
}

/** Sets the CRC-32C of the bytes present (attributes up to the end of the buffer). */
function withCrc(batch: Buffer): Buffer {
  if (batch.length >= RECORDS_OFFSET) batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.length), CRC_OFFSET);
  return batch;
}

function finish(draft: Draft, rng: SeededRandom, transformArea: (compressed: Buffer) => Buffer = (area) => area): Buffer {
  return writeBatch(draft.fields, transformArea(compressArea(draft.codec, recordsArea(draft), rng)));
}

// ---------------------------------------------------------------------------------------------
// Codecs

const XERIAL_HEADER = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);

function int32(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer.writeInt32BE(value, 0);
  return buffer;
}

function snappyRaw(data: Buffer): Buffer {
  return Buffer.from(snappy.compress(data));
}

/** xerial framing: the 16-byte header, then [int32 BE length][raw snappy block] per block. */
export function xerialFrame(blocks: readonly Buffer[]): Buffer {
  return Buffer.concat([XERIAL_HEADER, ...blocks.flatMap((block) => [int32(block.length), block])]);
}

function splitRandomly(rng: SeededRandom, data: Buffer, maxPieces: number): Buffer[] {
  const pieces: Buffer[] = [];
  let at = 0;
  const count = rng.int(1, maxPieces);
  for (let i = 1; i < count && at < data.length; i++) {
    const size = rng.int(1, Math.max(1, Math.ceil((data.length - at) / 2)));
    pieces.push(data.subarray(at, at + size));
    at += size;
  }
  pieces.push(data.subarray(at));
  return pieces;
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const ZSTD_MAX_BLOCK_BYTES = 128 * 1024;
const ZSTD_BLOCK_RAW = 0;
const ZSTD_BLOCK_RLE = 1;
const ZSTD_BLOCK_RESERVED = 3;

export interface ZstdBlock {
  type: typeof ZSTD_BLOCK_RAW | typeof ZSTD_BLOCK_RLE;
  /** Raw: the bytes. RLE: one byte, repeated `size` times. */
  content: Buffer;
  size: number;
}

function zstdBlockHeader(last: boolean, type: number, size: number): Buffer {
  const value = (last ? 1 : 0) | (type << 1) | (size << 3);
  return Buffer.from([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff]);
}

/**
 * A zstd frame header: magic (LE), a descriptor with Single_Segment and a Frame_Content_Size of
 * `fcsBytes` bytes (1: value < 256; 2: value - 256, for 256..65791; 4; 8), no checksum, no dictionary.
 */
function zstdFrameHeader(contentSize: number, fcsBytes: 1 | 2 | 4 | 8): Buffer {
  const flag = { 1: 0, 2: 1, 4: 2, 8: 3 }[fcsBytes];
  const fcs = Buffer.alloc(fcsBytes);
  if (fcsBytes === 1) fcs.writeUInt8(contentSize, 0);
  else if (fcsBytes === 2) fcs.writeUInt16LE(contentSize - 256, 0);
  else if (fcsBytes === 4) fcs.writeUInt32LE(contentSize, 0);
  else fcs.writeBigUInt64LE(BigInt(contentSize), 0);
  return Buffer.concat([ZSTD_MAGIC, Buffer.from([(flag << 6) | 0x20]), fcs]);
}

function fcsSizes(contentSize: number): Array<1 | 2 | 4 | 8> {
  const sizes: Array<1 | 2 | 4 | 8> = [4, 8];
  if (contentSize < 256) sizes.push(1);
  if (contentSize >= 256 && contentSize <= 65_791) sizes.push(2);
  return sizes;
}

/** A zstd frame of the given Raw and RLE blocks (the last one flagged). */
export function zstdFrameOfBlocks(blocks: readonly ZstdBlock[], fcsBytes: 1 | 2 | 4 | 8 = 4): Buffer {
  const contentSize = blocks.reduce((sum, block) => sum + block.size, 0);
  const parts: Buffer[] = [zstdFrameHeader(contentSize, fcsBytes)];
  if (blocks.length === 0) parts.push(zstdBlockHeader(true, ZSTD_BLOCK_RAW, 0));
  blocks.forEach((block, i) => {
    if (block.size > ZSTD_MAX_BLOCK_BYTES) throw new RangeError(`zstd block of ${block.size} bytes`);
    parts.push(zstdBlockHeader(i === blocks.length - 1, block.type, block.size), block.content);
  });
  return Buffer.concat(parts);
}

/** Splits `data` into Raw blocks and RLE blocks (for runs of 8 or more equal bytes), at most 128 KiB each. */
function zstdBlocksOf(data: Buffer, rng: SeededRandom): ZstdBlock[] {
  const blocks: ZstdBlock[] = [];
  let rawStart = 0;
  const flushRaw = (end: number): void => {
    while (rawStart < end) {
      const size = Math.min(end - rawStart, ZSTD_MAX_BLOCK_BYTES, rng.bool(0.3) ? rng.int(1, 4096) : ZSTD_MAX_BLOCK_BYTES);
      blocks.push({ type: ZSTD_BLOCK_RAW, content: data.subarray(rawStart, rawStart + size), size });
      rawStart += size;
    }
  };
  let at = 0;
  while (at < data.length) {
    let run = 1;
    while (at + run < data.length && data[at + run] === data[at] && run < ZSTD_MAX_BLOCK_BYTES) run++;
    if (run >= 8) {
      flushRaw(at);
      blocks.push({ type: ZSTD_BLOCK_RLE, content: Buffer.from([data[at]!]), size: run });
      at += run;
      rawStart = at;
    } else {
      at += run;
    }
  }
  flushRaw(data.length);
  return blocks;
}

/** A zstd frame of Raw and RLE blocks holding `data`, Frame_Content_Size of a random valid width. */
export function zstdFrame(data: Buffer, rng: SeededRandom): Buffer {
  return zstdFrameOfBlocks(zstdBlocksOf(data, rng), rng.pick(fcsSizes(data.length)));
}

/** The records area compressed with `codec` (checked: it decodes back to `area`). */
export function compressArea(codec: CaseCodec, area: Buffer, rng: SeededRandom): Buffer {
  let compressed: Buffer;
  switch (codec) {
    case 'none':
      return area;
    case 'gzip':
      compressed = gzipSync(area, { level: rng.int(1, 9) });
      break;
    case 'snappy':
      compressed = snappyRaw(area);
      break;
    case 'snappy-xerial':
      compressed = xerialFrame(splitRandomly(rng, area, 4).map(snappyRaw));
      break;
    case 'lz4':
      compressed = Buffer.from(lz4.compress(area));
      break;
    case 'zstd':
      compressed = zstdFrame(area, rng);
      break;
  }
  const back = referenceDecompress(codec, compressed, area.length);
  if (!back.equals(area)) throw new Error(`generator bug: ${codec} did not round-trip ${area.length} bytes`);
  return compressed;
}

/**
 * Decodes with the reference libraries, for the generator's own checks (small inputs only).
 * `expectedBytes` sizes lz4js's output buffer (it would otherwise allocate 4 MiB per block).
 */
export function referenceDecompress(codec: CaseCodec, data: Buffer, expectedBytes?: number): Buffer {
  switch (codec) {
    case 'none':
      return data;
    case 'gzip':
      return gunzipSync(data);
    case 'snappy':
      return Buffer.from(snappy.uncompress(data));
    case 'snappy-xerial': {
      const blocks: Buffer[] = [];
      for (let at = XERIAL_HEADER.length; at < data.length; ) {
        const length = data.readInt32BE(at);
        blocks.push(Buffer.from(snappy.uncompress(data.subarray(at + 4, at + 4 + length))));
        at += 4 + length;
      }
      return Buffer.concat(blocks);
    }
    case 'lz4':
      return Buffer.from(expectedBytes === undefined ? lz4.decompress(data) : lz4.decompress(data, expectedBytes));
    case 'zstd':
      return Buffer.from(zstdDecompress(data));
  }
}

// ---------------------------------------------------------------------------------------------
// Valid batches (control cases)

export interface ValidBatchOptions extends RecordOptions {
  /** The records to encode; default goodRecords(rng, options). */
  records?: GoodRecord[];
}

/** A batch the broker must accept: good records (timestamps near now), compressed with `codec`. */
export function validBatch(rng: SeededRandom, codec: CaseCodec, options: ValidBatchOptions = {}): Buffer {
  return finish(draftOf(options.records ?? goodRecords(rng, options), codec), rng);
}

/** The same, with the records it holds (offset deltas 0, 1, 2, ... in this order). */
export function validBatchWithRecords(rng: SeededRandom, codec: CaseCodec, options: ValidBatchOptions = {}): { batch: Buffer; records: GoodRecord[] } {
  const records = options.records ?? goodRecords(rng, options);
  return { batch: finish(draftOf(records, codec), rng), records };
}

/** An uncompressed batch of exactly `size` bytes (one record with key "k", its value sized to fit). */
export function batchOfExactSize(rng: SeededRandom, size: number, nowMs = Date.now()): Buffer {
  // Record body: attributes, timestampDelta 0, offsetDelta 0, keyLength 1, "k", valueLength, value, headerCount 0.
  for (let valueBytes = size - RECORDS_OFFSET; valueBytes >= Math.max(0, size - RECORDS_OFFSET - 20); valueBytes--) {
    const body = 6 + varintSize(valueBytes) + valueBytes;
    if (RECORDS_OFFSET + varintSize(body) + body !== size) continue;
    const batch = validBatch(rng, 'none', { records: [{ key: Buffer.from('k'), value: payload(rng, valueBytes, false), headers: [], timestamp: nowMs }] });
    if (batch.length !== size) throw new Error(`generator bug: batch of ${batch.length} bytes, wanted ${size}`);
    return batch;
  }
  throw new Error(`no single-record batch of exactly ${size} bytes`);
}

// ---------------------------------------------------------------------------------------------
// The rules, each broken in turn

interface BreakContext {
  rng: SeededRandom;
  codec: CaseCodec;
  nowMs: number;
}

type Broken = Omit<InvalidBatchCase, 'name' | 'field' | 'codec'> & { detail: string };

interface Breaker {
  field: string;
  /** Codecs it applies to (default: all). */
  codecs?: readonly CaseCodec[];
  make(context: BreakContext): Broken;
}

function records(context: BreakContext, options: RecordOptions = {}): GoodRecord[] {
  return goodRecords(context.rng, { nowMs: context.nowMs, ...options });
}

function draft(context: BreakContext, options: RecordOptions = {}): Draft {
  return draftOf(records(context, options), context.codec);
}

function pickIndex(rng: SeededRandom, items: readonly unknown[]): number {
  return rng.int(0, items.length - 1);
}

function randomNegative(rng: SeededRandom, min = -0x80000000): number {
  return rng.pick([-1, -2, rng.int(-1000, -1), rng.int(min, -1), min]);
}

/** One record of the draft broken by `mutate`; the case names the record. */
function recordBreak(context: BreakContext, expected: number, mutate: (layout: RecordLayout, draft: Draft, index: number) => string, options: RecordOptions & { required?: boolean } = {}): Broken {
  const base = draft(context, options);
  const index = pickIndex(context.rng, base.layouts);
  const detail = mutate(base.layouts[index]!, base, index);
  const indexField = options.required === true ? { recordIndex: index } : { possibleRecordIndex: index };
  return { batch: finish(base, context.rng), expected, ...indexField, detail: `record ${index} of ${base.layouts.length}: ${detail}` };
}

/** A record that has at least one header (one is added when it has none). */
function ensureHeader(context: BreakContext, layout: RecordLayout): HeaderLayout {
  if (layout.headers.length === 0) {
    const key = text(context.rng, context.rng.int(1, 8));
    const value = context.rng.bytes(context.rng.int(0, 12));
    layout.headers.push({ keyLength: varint(key.length), key, valueLength: varint(value.length), value });
    layout.headerCount = varint(layout.headers.length);
  }
  return layout.headers[pickIndex(context.rng, layout.headers)]!;
}

function headerBreak(context: BreakContext, mutate: (header: HeaderLayout, layout: RecordLayout, rng: SeededRandom) => string): Broken {
  return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
    const header = ensureHeader(context, layout);
    return `header ${layout.headers.indexOf(header)} of ${layout.headers.length}: ${mutate(header, layout, context.rng)}`;
  });
}

/** Bytes of the record after header `header`'s key length field, up to the record's end. */
function bytesAfterHeaderKeyLength(layout: RecordLayout, header: HeaderLayout): number {
  const at = layout.headers.indexOf(header);
  const later = layout.headers.slice(at + 1).reduce((sum, other) => sum + headerBytes(other).length, 0);
  return header.key.length + header.valueLength.length + header.value.length + later + layout.trailing.length;
}

function bytesAfterHeaderValueLength(layout: RecordLayout, header: HeaderLayout): number {
  return bytesAfterHeaderKeyLength(layout, header) - header.key.length - header.valueLength.length;
}

function headerFieldBreak(context: BreakContext, field: (draft: Draft, rng: SeededRandom) => string, expected: number = ErrorCode.INVALID_RECORD, options: RecordOptions = {}): Broken {
  const base = draft(context, options);
  const detail = field(base, context.rng);
  return { batch: finish(base, context.rng), expected, detail };
}

/** Writes `mutate`'s changes into the finished batch's header and recomputes the CRC. */
function patchedBatch(context: BreakContext, mutate: (batch: Buffer) => string, options: RecordOptions = {}): { batch: Buffer; detail: string } {
  const batch = finish(draft(context, options), context.rng);
  const detail = mutate(batch);
  return { batch: withCrc(batch), detail };
}

const BREAKERS: readonly Breaker[] = [
  // --- CORRUPT_MESSAGE: lengths, magic, CRC, codec ------------------------------------------
  {
    field: 'batchLength smaller than a batch header',
    make(context) {
      const { rng } = context;
      const batch = finish(draft(context), rng);
      const batchLength = rng.pick([rng.int(0, RECORDS_OFFSET - LOG_OVERHEAD - 1), RECORDS_OFFSET - LOG_OVERHEAD - 1, 0, randomNegative(rng)]);
      batch.writeInt32BE(batchLength, BATCH_LENGTH_OFFSET);
      // The record set as the client framed it: the whole buffer, or cut where batchLength says.
      const cut = rng.bool(0.5) && batchLength >= 0;
      const sent = withCrc(cut ? Buffer.from(batch.subarray(0, batchLength + LOG_OVERHEAD)) : batch);
      return { batch: sent, expected: ErrorCode.CORRUPT_MESSAGE, detail: `batchLength ${batchLength}, ${sent.length} bytes sent` };
    },
  },
  {
    field: 'batchLength past the bytes present (truncated)',
    make(context) {
      const { rng } = context;
      const batch = finish(draft(context), rng);
      if (rng.bool(0.5)) {
        // A batch cut short: its header (and CRC) as written, fewer bytes than it declares.
        const size = rng.pick([rng.int(0, batch.length - 1), rng.int(0, RECORDS_OFFSET - 1), batch.length - 1]);
        return { batch: Buffer.from(batch.subarray(0, size)), expected: ErrorCode.CORRUPT_MESSAGE, detail: `${size} of ${batch.length} bytes sent` };
      }
      const claimed = rng.pick([batch.length - LOG_OVERHEAD + 1, batch.length - LOG_OVERHEAD + rng.int(2, 1_000_000), 0x7fffffff]);
      batch.writeInt32BE(claimed, BATCH_LENGTH_OFFSET);
      return { batch: withCrc(batch), expected: ErrorCode.CORRUPT_MESSAGE, detail: `batchLength ${claimed} with ${batch.length - LOG_OVERHEAD} bytes after it` };
    },
  },
  {
    field: 'magic 3 or more, or negative',
    make(context) {
      const magic = context.rng.pick([3, context.rng.int(3, 127), 127, -1, context.rng.int(-128, -1), -128]);
      return { ...patchedBatch(context, (batch) => (batch.writeInt8(magic, MAGIC_OFFSET), `magic ${magic}`)), expected: ErrorCode.CORRUPT_MESSAGE };
    },
  },
  {
    field: 'magic 0 or 1 (legacy message format)',
    make(context) {
      const magic = context.rng.int(0, 1);
      return { ...patchedBatch(context, (batch) => (batch.writeInt8(magic, MAGIC_OFFSET), `magic ${magic}`)), expected: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT };
    },
  },
  {
    field: 'crc',
    make(context) {
      // The one rule whose cases carry a wrong CRC: the CRC field itself is changed.
      const batch = finish(draft(context), context.rng);
      const right = batch.readUInt32BE(CRC_OFFSET);
      const wrong = (right ^ context.rng.pick([1, 0x80000000, context.rng.int(1, 0xffffffff)])) >>> 0;
      batch.writeUInt32BE(wrong, CRC_OFFSET);
      return { batch, expected: ErrorCode.CORRUPT_MESSAGE, detail: `CRC 0x${wrong.toString(16)} instead of 0x${right.toString(16)}` };
    },
  },
  {
    field: 'compression codec id 5, 6 or 7',
    codecs: ['none'],
    make(context) {
      const id = context.rng.int(5, 7);
      const base = draft(context);
      base.fields.attributes = (base.fields.attributes & ~0x07) | id;
      return { batch: finish(base, context.rng), expected: ErrorCode.CORRUPT_MESSAGE, detail: `codec id ${id}` };
    },
  },

  // --- INVALID_RECORD: counts and offsets ----------------------------------------------------
  {
    field: 'recordCount 0 or negative',
    make(context) {
      const { rng } = context;
      if (rng.bool(0.25)) {
        const base = draftOf([], context.codec);
        base.fields.lastOffsetDelta = rng.pick([0, -1]);
        return { batch: finish(base, rng), expected: ErrorCode.INVALID_RECORD, detail: `no records, recordCount 0, lastOffsetDelta ${base.fields.lastOffsetDelta}` };
      }
      return headerFieldBreak(context, (base) => {
        base.fields.recordCount = rng.pick([0, randomNegative(rng)]);
        return `recordCount ${base.fields.recordCount} with ${base.layouts.length} records`;
      });
    },
  },
  {
    field: 'recordCount not lastOffsetDelta + 1',
    make(context) {
      const { rng } = context;
      return headerFieldBreak(context, (base) => {
        const n = base.layouts.length;
        switch (rng.int(0, 2)) {
          case 0:
            base.fields.lastOffsetDelta = rng.pick([n, n - 1 + rng.int(2, 1000), 0x7fffffff]);
            break;
          case 1:
            base.fields.recordCount = rng.pick([n + 1, n + rng.int(2, 1000), 0x7fffffff]);
            break;
          default:
            base.fields.lastOffsetDelta = n - 1 + rng.int(1, 50);
            base.fields.recordCount = base.fields.lastOffsetDelta + 1 + rng.pick([-1, 1, rng.int(2, 20)]);
        }
        return `recordCount ${base.fields.recordCount}, lastOffsetDelta ${base.fields.lastOffsetDelta}, ${n} records`;
      });
    },
  },
  {
    field: 'lastOffsetDelta negative',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.lastOffsetDelta = randomNegative(rng);
        return `lastOffsetDelta ${base.fields.lastOffsetDelta} with ${base.layouts.length} records`;
      });
    },
  },
  {
    field: 'fewer records than recordCount',
    make(context) {
      const base = draft(context);
      const n = base.layouts.length;
      // Up to a count of 2^31-1: a header consistent in itself that once moved a log end by 2^31-1.
      const missing = context.rng.pick([1, context.rng.int(1, 10), 1000, 0x7fffffff - n]);
      base.fields.recordCount = n + missing;
      base.fields.lastOffsetDelta = n + missing - 1;
      return { batch: finish(base, context.rng), expected: ErrorCode.INVALID_RECORD, possibleRecordIndex: n, detail: `recordCount ${n + missing} (lastOffsetDelta agrees), ${n} records` };
    },
  },
  {
    field: 'bytes left over after recordCount records',
    make(context) {
      const { rng } = context;
      const base = draft(context, { count: rng.int(2, 8) });
      const n = base.layouts.length;
      if (rng.bool(0.5)) {
        const declared = rng.int(1, n - 1);
        base.fields.recordCount = declared;
        base.fields.lastOffsetDelta = declared - 1;
        base.fields.maxTimestamp = Math.max(...base.records.slice(0, declared).map((record) => record.timestamp));
        return { batch: finish(base, rng), expected: ErrorCode.INVALID_RECORD, detail: `recordCount ${declared} (lastOffsetDelta agrees), ${n} records in the area` };
      }
      base.trailing = rng.pick([Buffer.from([0]), rng.bytes(rng.int(1, 40))]);
      return { batch: finish(base, rng), expected: ErrorCode.INVALID_RECORD, detail: `${base.trailing.length} bytes after the last of ${n} records` };
    },
  },
  {
    field: 'record offset deltas not 0, 1, 2, ...',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout, _draft, index) => {
        const { rng } = context;
        const options = [index + 1, index + rng.int(2, 1000), -1, rng.int(-0x80000000, -1), 0x7fffffff];
        if (index > 0) options.push(index - 1, 0);
        const delta = rng.pick(options);
        layout.offsetDelta = varint(delta);
        return `offsetDelta ${delta}`;
      });
    },
  },

  // --- INVALID_RECORD: record structure ------------------------------------------------------
  {
    field: 'record length negative',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const length = randomNegative(context.rng);
        layout.length = varint(length);
        return `length ${length}`;
      });
    },
  },
  {
    field: 'record length past the records area',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout, base, index) => {
        const after = base.layouts.slice(index + 1).reduce((sum, other) => sum + encodeLayout(other).length, 0) + base.trailing.length;
        const length = bodyOf(layout).length + after + context.rng.pick([1, context.rng.int(2, 100), 0x7fffffff - bodyOf(layout).length - after]);
        layout.length = varint(length);
        return `length ${length}, ${bodyOf(layout).length + after} bytes left`;
      });
    },
  },
  {
    field: 'record length shorter than its fields',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const body = bodyOf(layout).length;
        const length = body - context.rng.int(1, body);
        layout.length = varint(length);
        return `length ${length}, fields of ${body} bytes`;
      });
    },
  },
  {
    field: 'varint longer than 5 bytes',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const { rng } = context;
        const bytes = rng.int(6, 10);
        const fields: Array<[string, () => void]> = [
          ['length', () => (layout.length = overlongVarint(bodyOf(layout).length, bytes))],
          ['offsetDelta', () => (layout.offsetDelta = overlongVarint(readZigzag(layout.offsetDelta), bytes))],
          ['keyLength', () => (layout.keyLength = overlongVarint(readZigzag(layout.keyLength), bytes))],
          ['valueLength', () => (layout.valueLength = overlongVarint(readZigzag(layout.valueLength), bytes))],
          ['headerCount', () => (layout.headerCount = overlongVarint(layout.headers.length, bytes))],
        ];
        if (layout.headers.length > 0) {
          const header = layout.headers[pickIndex(rng, layout.headers)]!;
          fields.push(['header keyLength', () => (header.keyLength = overlongVarint(header.key.length, bytes))]);
          fields.push(['header valueLength', () => (header.valueLength = overlongVarint(readZigzag(header.valueLength), bytes))]);
        }
        const [name, apply] = rng.pick(fields);
        apply();
        return `${name} as a ${bytes}-byte varint`;
      });
    },
  },
  {
    field: 'keyLength below -1',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const length = randomNegative(context.rng);
        const keyLength = length === -1 ? -2 : length;
        layout.keyLength = varint(keyLength);
        return `keyLength ${keyLength}`;
      });
    },
  },
  {
    field: "keyLength past the record's end",
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const available = bytesAfter(layout, 'keyLength');
        const keyLength = available + context.rng.pick([1, context.rng.int(2, 64), 0x7fffffff - available]);
        layout.keyLength = varint(keyLength);
        return `keyLength ${keyLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'valueLength below -1',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const length = randomNegative(context.rng);
        const valueLength = length === -1 ? -2 : length;
        layout.valueLength = varint(valueLength);
        return `valueLength ${valueLength}`;
      });
    },
  },
  {
    field: "valueLength past the record's end",
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const available = bytesAfter(layout, 'valueLength');
        const valueLength = available + context.rng.pick([1, context.rng.int(2, 64), 0x7fffffff - available]);
        layout.valueLength = varint(valueLength);
        return `valueLength ${valueLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'headerCount negative',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const count = randomNegative(context.rng);
        layout.headerCount = varint(count);
        return `headerCount ${count} (${layout.headers.length} headers present)`;
      });
    },
  },
  {
    field: 'headerCount more than the bytes allow',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const available = bytesAfter(layout, 'headerCount');
        const count = layout.headers.length + context.rng.pick([1, context.rng.int(2, 1000), 0x7fffffff - layout.headers.length]);
        layout.headerCount = varint(count);
        return `headerCount ${count}, ${layout.headers.length} headers in ${available} bytes`;
      });
    },
  },
  {
    field: 'header with a null key',
    make(context) {
      return headerBreak(context, (header) => {
        header.keyLength = varint(-1);
        header.key = Buffer.alloc(0);
        return 'keyLength -1';
      });
    },
  },
  {
    field: 'header keyLength below -1',
    make(context) {
      return headerBreak(context, (header, _layout, rng) => {
        const length = randomNegative(rng);
        const keyLength = length === -1 ? -2 : length;
        header.keyLength = varint(keyLength);
        return `keyLength ${keyLength}`;
      });
    },
  },
  {
    field: "header keyLength past the record's end",
    make(context) {
      return headerBreak(context, (header, layout, rng) => {
        const available = bytesAfterHeaderKeyLength(layout, header);
        const keyLength = available + rng.pick([1, rng.int(2, 64), 0x7fffffff - available]);
        header.keyLength = varint(keyLength);
        return `keyLength ${keyLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'header valueLength below -1',
    make(context) {
      return headerBreak(context, (header, _layout, rng) => {
        const length = randomNegative(rng);
        const valueLength = length === -1 ? -2 : length;
        header.valueLength = varint(valueLength);
        return `valueLength ${valueLength}`;
      });
    },
  },
  {
    field: "header valueLength past the record's end",
    make(context) {
      return headerBreak(context, (header, layout, rng) => {
        const available = bytesAfterHeaderValueLength(layout, header);
        const valueLength = available + rng.pick([1, rng.int(2, 64), 0x7fffffff - available]);
        header.valueLength = varint(valueLength);
        return `valueLength ${valueLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'unexplained bytes after the headers',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        layout.trailing = context.rng.pick([Buffer.from([0]), context.rng.bytes(context.rng.int(1, 20))]);
        return `${layout.trailing.length} bytes after ${layout.headers.length} headers, counted by the length`;
      });
    },
  },

  // --- INVALID_RECORD: attributes and producer fields ----------------------------------------
  {
    field: 'control flag set by a client',
    make(context) {
      return headerFieldBreak(context, (base) => {
        base.fields.attributes |= ATTRIBUTE_CONTROL;
        return `attributes 0x${base.fields.attributes.toString(16)}`;
      });
    },
  },
  {
    field: 'transactional flag without a producer id',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.attributes |= ATTRIBUTE_TRANSACTIONAL;
        base.fields.producerEpoch = rng.pick([-1, rng.int(0, 100)]);
        base.fields.baseSequence = rng.pick([-1, rng.int(0, 1000)]);
        return `attributes 0x${base.fields.attributes.toString(16)}, producerId -1, epoch ${base.fields.producerEpoch}, sequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'producer id with a negative baseSequence',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.producerId = rng.pick([0, rng.int(1, 1_000_000_000), Number.MAX_SAFE_INTEGER]);
        base.fields.producerEpoch = rng.int(0, 32767);
        base.fields.baseSequence = randomNegative(rng);
        return `producerId ${base.fields.producerId}, epoch ${base.fields.producerEpoch}, baseSequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'producer id with a negative producerEpoch',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.producerId = rng.pick([0, rng.int(1, 1_000_000_000)]);
        base.fields.producerEpoch = randomNegative(rng, -0x8000);
        base.fields.baseSequence = rng.int(0, 1000);
        return `producerId ${base.fields.producerId}, epoch ${base.fields.producerEpoch}, baseSequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'producerId below -1',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.producerId = rng.pick([-2, rng.int(-1_000_000, -2), Number.MIN_SAFE_INTEGER]);
        if (rng.bool(0.5)) {
          base.fields.producerEpoch = rng.int(0, 100);
          base.fields.baseSequence = rng.int(0, 1000);
        }
        return `producerId ${base.fields.producerId}, epoch ${base.fields.producerEpoch}, baseSequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'delete horizon flag set',
    make(context) {
      return headerFieldBreak(context, (base) => {
        base.fields.attributes |= ATTRIBUTE_DELETE_HORIZON;
        return `attributes 0x${base.fields.attributes.toString(16)}`;
      });
    },
  },
  {
    field: 'keyless record on a compacted topic',
    make(context) {
      const base = draft(context, { keyed: true });
      const index = pickIndex(context.rng, base.layouts);
      base.layouts[index]!.keyLength = varint(-1);
      base.layouts[index]!.key = Buffer.alloc(0);
      return { batch: finish(base, context.rng), expected: ErrorCode.INVALID_RECORD, topic: 'compacted', recordIndex: index, detail: `record ${index} of ${base.layouts.length} has no key` };
    },
  },

  // --- INVALID_TIMESTAMP -----------------------------------------------------------------------
  {
    field: 'timestamp ahead of message.timestamp.after.max.ms',
    make(context) {
      const { rng } = context;
      const list = records(context);
      const index = pickIndex(rng, list);
      // At least 30 minutes past the bound, so the time the test takes cannot bring it back in.
      const ahead = DEFAULT_TIMESTAMP_AFTER_MAX_MS + rng.pick([30 * 60_000, rng.int(30 * 60_000, 30 * 86_400_000), 365 * 86_400_000]);
      list[index]!.timestamp = context.nowMs + ahead;
      return { batch: finish(draftOf(list, context.codec), rng), expected: ErrorCode.INVALID_TIMESTAMP, recordIndex: index, detail: `record ${index} of ${list.length} is ${ahead} ms ahead` };
    },
  },
  {
    field: 'timestamp behind message.timestamp.before.max.ms',
    make(context) {
      const { rng } = context;
      const list = records(context);
      const index = pickIndex(rng, list);
      const behind = rng.pick([2 * 86_400_000, STRICT_TIMESTAMP_BEFORE_MAX_MS + rng.int(30 * 60_000, 365 * 86_400_000)]);
      list[index]!.timestamp = context.nowMs - behind;
      return { batch: finish(draftOf(list, context.codec), rng), expected: ErrorCode.INVALID_TIMESTAMP, topic: 'strictTimestamps', recordIndex: index, detail: `record ${index} of ${list.length} is ${behind} ms old` };
    },
  },

  // --- Compressed areas that do not decode -----------------------------------------------------
  {
    field: 'compressed area truncated',
    codecs: COMPRESSED_CODECS,
    make(context) {
      const { rng, codec } = context;
      let detail = '';
      const batch = finish(draft(context), rng, (area) => {
        const cut = truncationPoint(rng, codec, area);
        detail = `${cut} of ${area.length} compressed bytes`;
        return area.subarray(0, cut);
      });
      return { batch, expected: ErrorCode.CORRUPT_MESSAGE, detail };
    },
  },
  {
    field: 'compressed area is garbage',
    codecs: COMPRESSED_CODECS,
    make(context) {
      const { rng, codec } = context;
      const base = draft(context);
      const garbage = garbageFor(rng, codec, recordsArea(base).length);
      return { batch: writeBatch(base.fields, garbage.bytes), expected: ErrorCode.CORRUPT_MESSAGE, detail: garbage.detail };
    },
  },
  {
    field: 'compressed area with flipped bytes',
    codecs: COMPRESSED_CODECS,
    make(context) {
      const { rng, codec } = context;
      let flipped: Flip = { area: Buffer.alloc(0), detail: '', strict: false };
      const batch = finish(draft(context), rng, (area) => {
        flipped = flipCompressed(rng, codec, area);
        return flipped.area;
      });
      if (flipped.strict) return { batch, expected: ErrorCode.CORRUPT_MESSAGE, detail: flipped.detail };
      return {
        batch,
        expected: ErrorCode.CORRUPT_MESSAGE,
        alsoAcceptable: [ErrorCode.INVALID_RECORD, ErrorCode.INVALID_TIMESTAMP],
        mayBeAccepted: true,
        detail: `${flipped.detail} (no checksum: refused, or accepted and read back byte for byte)`,
      };
    },
  },
];

function readZigzag(bytes: Buffer): number {
  let result = 0;
  for (let i = 0; i < bytes.length; i++) result += (bytes[i]! & 0x7f) * 2 ** (7 * i);
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}

/** Positions of the xerial block boundaries (where a cut leaves a well-formed, shorter stream). */
function xerialBoundaries(area: Buffer): Set<number> {
  const boundaries = new Set<number>([XERIAL_HEADER.length]);
  for (let at = XERIAL_HEADER.length; at + 4 <= area.length; ) {
    at += 4 + area.readInt32BE(at);
    boundaries.add(at);
  }
  return boundaries;
}

/** Where to cut a compressed area so that it can only be corrupt. */
function truncationPoint(rng: SeededRandom, codec: CaseCodec, area: Buffer): number {
  const forbidden = codec === 'snappy-xerial' ? xerialBoundaries(area) : new Set<number>();
  for (let attempt = 0; attempt < 100; attempt++) {
    const cut = rng.pick([0, rng.int(0, area.length - 1), area.length - 1, Math.max(0, area.length - rng.int(1, 8))]);
    if (!forbidden.has(cut)) return cut;
  }
  throw new Error(`generator bug: no cut point in a ${area.length}-byte ${codec} area`);
}

/** A compressed area that cannot decode, by construction (not merely with high probability). */
function garbageFor(rng: SeededRandom, codec: CaseCodec, declared: number): { bytes: Buffer; detail: string } {
  const tail = rng.bytes(rng.int(0, 200));
  switch (codec) {
    case 'gzip': {
      const bytes = Buffer.concat([rng.bytes(1), tail]);
      if (bytes[0] === 0x1f) bytes[0] = 0x20; // no gzip magic (1f 8b)
      return { bytes, detail: `${bytes.length} random bytes (no gzip magic)` };
    }
    case 'snappy':
      return snappyGarbage(rng, declared, tail);
    case 'snappy-xerial': {
      if (rng.bool(0.5)) {
        const inner = snappyGarbage(rng, declared, tail);
        return { bytes: xerialFrame([inner.bytes]), detail: `xerial block of ${inner.detail}` };
      }
      const length = rng.pick([-1, rng.int(-0x80000000, -1), tail.length + rng.int(1, 1000)]);
      return { bytes: Buffer.concat([XERIAL_HEADER, int32(length), tail]), detail: `xerial block length ${length} with ${tail.length} bytes after it` };
    }
    case 'lz4': {
      if (rng.bool(0.5)) {
        const bytes = Buffer.concat([rng.bytes(4), tail]);
        // Neither the LZ4 frame magic (04 22 4d 18) nor a skippable frame's (5x 2a 4d 18).
        bytes[0] = rng.pick([0x00, 0x03, 0x05, 0x4f, 0x60, 0xff]);
        return { bytes, detail: `${bytes.length} bytes without an LZ4 frame magic` };
      }
      // A well-formed frame header, then a block whose first sequence copies from before the output.
      const block = Buffer.concat([Buffer.from([rng.int(0, 15)]), Buffer.from([rng.int(1, 255), rng.int(0, 255)]), tail]);
      const size = Buffer.alloc(4);
      size.writeUInt32LE(block.length, 0);
      return { bytes: Buffer.concat([LZ4_FRAME_HEADER, size, block, Buffer.alloc(4)]), detail: `LZ4 block whose first match reaches before the output (${block.length} bytes)` };
    }
    case 'zstd': {
      if (rng.bool(0.5)) {
        const bytes = Buffer.concat([rng.bytes(4), tail]);
        // Neither the zstd magic (28 b5 2f fd) nor a skippable frame's (5x 2a 4d 18).
        bytes[0] = rng.pick([0x00, 0x27, 0x29, 0x4f, 0x60, 0xff]);
        return { bytes, detail: `${bytes.length} bytes without a zstd magic` };
      }
      const size = rng.int(1, 200);
      const bytes = Buffer.concat([zstdFrameHeader(size, 4), zstdBlockHeader(true, ZSTD_BLOCK_RESERVED, size), rng.bytes(size)]);
      return { bytes, detail: `zstd block of the reserved type 3 (${size} bytes)` };
    }
    case 'none':
      throw new Error('no garbage for uncompressed areas');
  }
}

/** Raw snappy that cannot decode: a copy before any output, or a literal longer than the input. */
function snappyGarbage(rng: SeededRandom, declared: number, tail: Buffer): { bytes: Buffer; detail: string } {
  // A truthful-looking preamble (the records area's size), so the refusal cannot be for size.
  const preamble = Buffer.from(encodeUnsignedVarint(Math.max(1, declared)));
  if (rng.bool(0.5)) {
    // Tags 01, 10, 11 are copies; as the first element they reach before the start of the output.
    const tag = (rng.int(0, 63) << 2) | rng.int(1, 3);
    return { bytes: Buffer.concat([preamble, Buffer.from([tag]), rng.bytes(4), tail]), detail: `raw snappy starting with copy tag 0x${tag.toString(16)}` };
  }
  // A literal of n + 1 bytes (n < 60 in the tag's upper 6 bits) with at most n bytes after it.
  const n = rng.int(Math.min(tail.length, 58), 59);
  const after = tail.subarray(0, Math.min(tail.length, n));
  return { bytes: Buffer.concat([preamble, Buffer.from([n << 2]), after]), detail: `raw snappy literal of ${n + 1} bytes with ${after.length} after it` };
}

function encodeUnsignedVarint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

/** magic, FLG (version 01, block independence off, no checksums), BD (4 MiB blocks), HC: as lz4js writes them. */
const LZ4_FRAME_HEADER = Buffer.from(lz4.compress(Buffer.from('x'))).subarray(0, 7);

interface Flip {
  area: Buffer;
  detail: string;
  /** The format checks these bytes (gzip trailer, LZ4 header checksum): the flip must be refused. */
  strict: boolean;
}

/** Byte positions that hold payload (not a field declaring a size), for each format. */
function flippablePositions(codec: CaseCodec, area: Buffer): Array<[number, number]> {
  switch (codec) {
    case 'gzip':
      // After the 10-byte fixed header (mtime, xfl and os are not checked by anyone).
      return [[10, area.length]];
    case 'snappy':
      return [[unsignedVarintLength(area, 0), area.length]];
    case 'snappy-xerial': {
      const ranges: Array<[number, number]> = [];
      for (let at = XERIAL_HEADER.length; at + 4 <= area.length; ) {
        const length = area.readInt32BE(at);
        const start = at + 4 + unsignedVarintLength(area, at + 4);
        if (start < at + 4 + length) ranges.push([start, at + 4 + length]);
        at += 4 + length;
      }
      return ranges;
    }
    case 'lz4': {
      const ranges: Array<[number, number]> = [];
      for (let at = LZ4_FRAME_HEADER.length; at + 4 <= area.length; ) {
        const size = area.readUInt32LE(at) & 0x7fffffff;
        if (size === 0) break;
        ranges.push([at + 4, at + 4 + size]);
        at += 4 + size;
      }
      return ranges;
    }
    case 'zstd': {
      const ranges: Array<[number, number]> = [];
      const descriptor = area[4]!;
      const fcsBytes = [1, 2, 4, 8][descriptor >> 6]!;
      for (let at = 5 + fcsBytes; at + 3 <= area.length; ) {
        const header = area[at]! | (area[at + 1]! << 8) | (area[at + 2]! << 16);
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        const contentBytes = type === ZSTD_BLOCK_RLE ? 1 : size;
        if (contentBytes > 0) ranges.push([at + 3, at + 3 + contentBytes]);
        at += 3 + contentBytes;
        if ((header & 1) === 1) break;
      }
      return ranges;
    }
    case 'none':
      return [];
  }
}

function unsignedVarintLength(buffer: Buffer, at: number): number {
  let length = 1;
  while ((buffer[at + length - 1]! & 0x80) !== 0) length++;
  return length;
}

function flipCompressed(rng: SeededRandom, codec: CaseCodec, area: Buffer): Flip {
  if (codec === 'lz4' && rng.bool(0.25)) {
    const copy = Buffer.from(area);
    copy[6] = copy[6]! ^ rng.int(1, 255);
    return { area: copy, detail: 'LZ4 frame header checksum byte flipped', strict: true };
  }
  const ranges = flippablePositions(codec, area).filter(([start, end]) => end > start);
  for (let attempt = 0; attempt < 100; attempt++) {
    const copy = Buffer.from(area);
    const positions: number[] = [];
    const count = rng.int(1, 3);
    for (let i = 0; i < count; i++) {
      const [start, end] = rng.pick(ranges);
      const at = rng.int(start, end - 1);
      copy[at] = copy[at]! ^ rng.int(1, 255);
      positions.push(at);
    }
    if (copy.equals(area)) continue;
    const detail = `byte${count > 1 ? 's' : ''} ${positions.join(', ')} of ${area.length} flipped`;
    if (codec !== 'gzip') return { area: copy, detail, strict: false };
    // gzip checks a CRC-32 and the length of what it inflates: a flip can only be an error. Keep the
    // (astronomically unlikely) exception out rather than trust it.
    try {
      gunzipSync(copy);
    } catch {
      return { area: copy, detail, strict: true };
    }
  }
  throw new Error(`generator bug: could not flip a ${codec} area of ${area.length} bytes`);
}

// ---------------------------------------------------------------------------------------------
// Heavy cases: batches over max.message.bytes, and the bombs

/** Batches over max.message.bytes, one per codec: random (incompressible) values. */
function oversizedCase(rng: SeededRandom, codec: CaseCodec, nowMs: number, maxMessageBytes: number): InvalidBatchCase {
  const over = rng.pick([1, rng.int(2, 100), rng.int(101, 64 * 1024)]);
  let valueBytes = maxMessageBytes - RECORDS_OFFSET - 16 + over;
  for (let attempt = 0; attempt < 8; attempt++) {
    const record: GoodRecord = { key: text(rng, 8), value: rng.bytes(valueBytes), headers: [], timestamp: nowMs };
    const batch = finish(draftOf([record], codec), rng);
    if (batch.length > maxMessageBytes) {
      return {
        name: `batch over max.message.bytes [${codec}]: ${batch.length} bytes, limit ${maxMessageBytes}`,
        field: 'batch over max.message.bytes',
        codec,
        batch,
        expected: ErrorCode.MESSAGE_TOO_LARGE,
        heavy: true,
      };
    }
    valueBytes += maxMessageBytes - batch.length + over;
  }
  throw new Error(`generator bug: no ${codec} batch over ${maxMessageBytes} bytes`);
}

const bombCache = new Map<string, InvalidBatchCase[]>();

/** A one-record header (recordCount 1, lastOffsetDelta 0) around a compressed area. */
function bombBatch(codec: CaseCodec, area: Buffer, nowMs: number): Buffer {
  return writeBatch(
    { magic: 2, attributes: codecId(codec), lastOffsetDelta: 0, baseTimestamp: nowMs, maxTimestamp: nowMs, producerId: -1, producerEpoch: -1, baseSequence: -1, recordCount: 1 },
    area,
  );
}

/** zstd RLE blocks of zeros, `total` bytes in all, with a truthful Frame_Content_Size. */
function zstdZeros(total: number): Buffer {
  const blocks: ZstdBlock[] = [];
  for (let left = total; left > 0; left -= ZSTD_MAX_BLOCK_BYTES) {
    blocks.push({ type: ZSTD_BLOCK_RLE, content: Buffer.from([0]), size: Math.min(left, ZSTD_MAX_BLOCK_BYTES) });
  }
  return zstdFrameOfBlocks(blocks, total > 0xffffffff ? 8 : 4);
}

/**
 * The bombs: areas that decode to more than `limitBytes` (MESSAGE_TOO_LARGE), each under
 * max.message.bytes compressed, and areas of exactly `limitBytes` zeros, which are not too large
 * but are no records either (INVALID_RECORD at record 0). Built once per limit and cached.
 */
export function bombCases(limitBytes: number, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): InvalidBatchCase[] {
  const key = `${limitBytes}/${maxMessageBytes}`;
  const cached = bombCache.get(key);
  if (cached !== undefined) return cached;
  // The records inside are zeros: their timestamps never come into it.
  const nowMs = Date.now();
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  const bigZeros = Math.max(64 * MiB, 2 * limitBytes);
  const overLimit = limitBytes + MiB;
  const zeros = (size: number): Buffer => Buffer.alloc(size);
  const cases: Array<Omit<InvalidBatchCase, 'batch' | 'expected' | 'field'> & { area: () => Buffer; expected?: number; possibleRecordIndex?: number }> = [
    { name: `gzip of ${bigZeros} zero bytes`, codec: 'gzip', area: () => gzipSync(zeros(bigZeros), { level: 9 }) },
    { name: `gzip of limit + 1 (${limitBytes + 1}) zero bytes`, codec: 'gzip', area: () => gzipSync(zeros(limitBytes + 1), { level: 9 }) },
    {
      name: `gzip of exactly the limit (${limitBytes}) zero bytes: not too large, but no record`,
      codec: 'gzip',
      area: () => gzipSync(zeros(limitBytes), { level: 9 }),
      expected: ErrorCode.INVALID_RECORD,
      possibleRecordIndex: 0,
    },
    {
      name: 'raw snappy whose preamble declares 1 GiB (a short literal follows)',
      codec: 'snappy',
      area: () => Buffer.concat([Buffer.from(encodeUnsignedVarint(GiB)), Buffer.from([15 << 2]), Buffer.alloc(16, 0x61)]),
    },
    { name: `raw snappy of ${overLimit} zero bytes (real)`, codec: 'snappy', area: () => snappyRaw(zeros(overLimit)) },
    {
      name: `xerial snappy of ${overLimit} zero bytes in 1 MiB blocks (real)`,
      codec: 'snappy-xerial',
      area: () => {
        const block = snappyRaw(zeros(MiB));
        return xerialFrame(Array.from({ length: Math.ceil(overLimit / MiB) }, () => block));
      },
    },
    {
      name: 'xerial snappy whose block preamble declares 1 GiB',
      codec: 'snappy-xerial',
      area: () => xerialFrame([Buffer.concat([Buffer.from(encodeUnsignedVarint(GiB)), Buffer.from([15 << 2]), Buffer.alloc(16, 0x61)])]),
    },
    { name: `lz4 frame of ${bigZeros} zero bytes (lz4js)`, codec: 'lz4', area: () => Buffer.from(lz4.compress(zeros(bigZeros))) },
    { name: 'zstd RLE blocks of zeros declaring and holding 1 GiB', codec: 'zstd', area: () => zstdZeros(GiB) },
    { name: `zstd RLE blocks of limit + 1 (${limitBytes + 1}) zero bytes`, codec: 'zstd', area: () => zstdZeros(limitBytes + 1) },
    {
      name: `zstd RLE blocks of exactly the limit (${limitBytes}) zero bytes: not too large, but no record`,
      codec: 'zstd',
      area: () => zstdZeros(limitBytes),
      expected: ErrorCode.INVALID_RECORD,
      possibleRecordIndex: 0,
    },
  ];
  const built = cases.map(({ area, expected, possibleRecordIndex, name, codec }): InvalidBatchCase => {
    const batch = bombBatch(codec, area(), nowMs);
    if (batch.length > maxMessageBytes) throw new Error(`generator bug: bomb "${name}" is ${batch.length} bytes, over max.message.bytes ${maxMessageBytes}`);
    const tooLarge = expected === undefined;
    return {
      name: `${tooLarge ? 'decompresses past the limit' : 'decompresses to the limit'} [${codec}]: ${name}, ${batch.length} bytes sent`,
      field: tooLarge ? 'compressed area decompresses past the limit (bomb)' : 'compressed area decompresses to exactly the limit',
      codec,
      batch,
      expected: expected ?? ErrorCode.MESSAGE_TOO_LARGE,
      ...(possibleRecordIndex === undefined ? {} : { possibleRecordIndex }),
      heavy: true,
    };
  });
  bombCache.set(key, built);
  return built;
}

// ---------------------------------------------------------------------------------------------
// Lists and streams

/** The rules the generator breaks (for tests that check every one is covered). */
export const BROKEN_FIELDS: readonly string[] = BREAKERS.map((breaker) => breaker.field);

function makeCase(breaker: Breaker, codec: CaseCodec, variant: number, rng: SeededRandom, options: GeneratorOptions, label: string): InvalidBatchCase {
  const context: BreakContext = { rng, codec, nowMs: (options.nowMs ?? Date.now)() };
  const { detail, ...broken } = breaker.make(context);
  return { name: `${breaker.field} [${codec}] ${label}${variant}: ${detail}`, field: breaker.field, codec, ...broken };
}

function breakersFor(codec: CaseCodec): Breaker[] {
  return BREAKERS.filter((breaker) => (breaker.codecs ?? CASE_CODECS).includes(codec));
}

function heavyCases(rng: SeededRandom, options: GeneratorOptions): InvalidBatchCase[] {
  if (options.includeHeavy === false) return [];
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const codecs = options.codecs ?? CASE_CODECS;
  const oversized = codecs.map((codec) => oversizedCase(rng, codec, (options.nowMs ?? Date.now)(), maxMessageBytes));
  const bombs = options.decompressedLimitBytes === undefined ? [] : bombCases(options.decompressedLimitBytes, maxMessageBytes).filter((bomb) => codecs.includes(bomb.codec));
  return [...oversized, ...bombs];
}

/**
 * Every rule broken `variants` times for every codec (each variant its own random records), then
 * the oversized batches and the bombs. Deterministic for a seed (timestamps aside, which follow
 * options.nowMs).
 */
export function invalidBatchCases(seed: number, options: GeneratorOptions = {}): InvalidBatchCase[] {
  const rng = new SeededRandom(seed);
  const variants = options.variants ?? 3;
  const cases: InvalidBatchCase[] = [];
  for (const codec of options.codecs ?? CASE_CODECS) {
    for (const breaker of breakersFor(codec)) {
      for (let variant = 1; variant <= variants; variant++) cases.push(makeCase(breaker, codec, variant, new SeededRandom(rng.int(0, 0xffffffff)), options, '#'));
    }
  }
  return [...cases, ...heavyCases(rng, options)];
}

export interface StreamOptions extends GeneratorOptions {
  /** Share of the stream that is oversized batches and bombs (default 0.005). */
  heavyProbability?: number;
  /** Leave out cases that may be accepted (flipped bytes without a checksum). */
  refusedOnly?: boolean;
}

/**
 * An unbounded seeded stream of invalid batches: each draws a rule and a codec at random (each
 * case from its own sub-seed, named in the case, so one case can be replayed alone).
 */
export function* invalidBatchStream(seed: number, options: StreamOptions = {}): Generator<InvalidBatchCase, never, undefined> {
  const rng = new SeededRandom(seed);
  const codecs = options.codecs ?? CASE_CODECS;
  const pairs = codecs.flatMap((codec) => breakersFor(codec).map((breaker) => ({ breaker, codec })));
  const heavy = heavyCases(new SeededRandom(seed ^ 0x5bd1e995), options);
  for (let index = 0; ; index++) {
    if (heavy.length > 0 && rng.bool(options.heavyProbability ?? 0.005)) {
      yield rng.pick(heavy);
      continue;
    }
    const { breaker, codec } = rng.pick(pairs);
    const caseSeed = rng.int(0, 0xffffffff);
    const made = makeCase(breaker, codec, index, new SeededRandom(caseSeed), options, `(stream ${seed}, sub-seed ${caseSeed}) #`);
    if (options.refusedOnly === true && made.mayBeAccepted === true) continue;
    yield made;
  }
}

// ---------------------------------------------------------------------------------------------
// The reference validator: the contract written out plainly, as an oracle for the generator's own
// checks (every case is refused by it with its expected code and record, every valid batch is
// accepted). Strict decoders of the subset of each format the generator writes; a zstd frame with
// compressed blocks is beyond it (null: no verdict). Not fast; small batches, and the bombs once.

export interface Verdict {
  /** ErrorCode.NONE when the batch is acceptable. */
  code: number;
  /** The record the refusal is about, when it is about one. */
  recordIndex?: number;
  reason: string;
}

export interface VerdictContext {
  topic: CaseTopic;
  nowMs: number;
  limitBytes: number;
  maxMessageBytes?: number;
}

class Refusal extends Error {
  constructor(
    readonly code: number,
    reason: string,
    readonly recordIndex?: number,
  ) {
    super(reason);
  }
}

const corrupt = (reason: string): Refusal => new Refusal(ErrorCode.CORRUPT_MESSAGE, reason);
const tooLarge = (reason: string): Refusal => new Refusal(ErrorCode.MESSAGE_TOO_LARGE, reason);
const invalidRecord = (reason: string, recordIndex?: number): Refusal => new Refusal(ErrorCode.INVALID_RECORD, reason, recordIndex);

/** The batch's verdict under the contract, or null when the oracle cannot decode its area. */
export function referenceVerdict(batch: Buffer, context: VerdictContext): Verdict | null {
  try {
    checkReference(batch, context);
    return { code: ErrorCode.NONE, reason: 'accepted' };
  } catch (error) {
    if (error instanceof Refusal) return { code: error.code, ...(error.recordIndex === undefined ? {} : { recordIndex: error.recordIndex }), reason: error.message };
    if (error instanceof BeyondOracle) return null;
    throw error;
  }
}

class BeyondOracle extends Error {}

function checkReference(batch: Buffer, context: VerdictContext): void {
  if (batch.length < LOG_OVERHEAD) throw corrupt('shorter than baseOffset + batchLength');
  const batchLength = batch.readInt32BE(BATCH_LENGTH_OFFSET);
  if (batchLength < RECORDS_OFFSET - LOG_OVERHEAD) throw corrupt(`batchLength ${batchLength}`);
  if (batchLength + LOG_OVERHEAD > batch.length) throw corrupt('truncated');
  if (batchLength + LOG_OVERHEAD < batch.length) throw invalidRecord('more than one batch');
  const magic = batch.readInt8(MAGIC_OFFSET);
  if (magic === 0 || magic === 1) throw new Refusal(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, `magic ${magic}`);
  if (magic !== 2) throw corrupt(`magic ${magic}`);
  if (batch.length > (context.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES)) throw tooLarge(`${batch.length} bytes`);
  if (batch.readUInt32BE(CRC_OFFSET) !== computeBatchCrc(batch, 0, batch.length)) throw corrupt('CRC');
  const attributes = batch.readInt16BE(ATTRIBUTES_OFFSET);
  const codec = attributes & 0x07;
  if (codec > 4) throw corrupt(`codec ${codec}`);
  const lastOffsetDelta = batch.readInt32BE(LAST_OFFSET_DELTA_OFFSET);
  const recordCount = batch.readInt32BE(RECORD_COUNT_OFFSET);
  if (lastOffsetDelta < 0 || recordCount <= 0 || recordCount !== lastOffsetDelta + 1) throw invalidRecord(`recordCount ${recordCount}, lastOffsetDelta ${lastOffsetDelta}`);
  if ((attributes & (ATTRIBUTE_CONTROL | ATTRIBUTE_DELETE_HORIZON)) !== 0) throw invalidRecord(`attributes 0x${attributes.toString(16)}`);
  const producerId = batch.readBigInt64BE(PRODUCER_ID_OFFSET);
  if (producerId < -1n) throw invalidRecord(`producerId ${producerId}`);
  if ((attributes & ATTRIBUTE_TRANSACTIONAL) !== 0 && producerId === -1n) throw invalidRecord('transactional without a producer id');
  if (producerId >= 0n && (batch.readInt16BE(PRODUCER_EPOCH_OFFSET) < 0 || batch.readInt32BE(BASE_SEQUENCE_OFFSET) < 0)) throw invalidRecord('producer id with a negative epoch or sequence');
  const area = strictDecompress(codec, batch.subarray(RECORDS_OFFSET), context.limitBytes);
  const baseTimestamp = Number(batch.readBigInt64BE(BASE_TIMESTAMP_OFFSET));
  const parsed = parseRecordsStrictly(area, recordCount);
  parsed.forEach((record, index) => {
    if (context.topic === 'compacted' && !record.keyed) throw invalidRecord('keyless record on a compacted topic', index);
    const timestamp = baseTimestamp + record.timestampDelta;
    if (timestamp > context.nowMs + DEFAULT_TIMESTAMP_AFTER_MAX_MS) throw new Refusal(ErrorCode.INVALID_TIMESTAMP, 'ahead', index);
    if (context.topic === 'strictTimestamps' && timestamp < context.nowMs - STRICT_TIMESTAMP_BEFORE_MAX_MS) throw new Refusal(ErrorCode.INVALID_TIMESTAMP, 'behind', index);
  });
}

function parseRecordsStrictly(area: Buffer, recordCount: number): Array<{ keyed: boolean; timestampDelta: number }> {
  const parsed: Array<{ keyed: boolean; timestampDelta: number }> = [];
  let position = 0;
  for (let index = 0; index < recordCount; index++) {
    const fail = (reason: string): Refusal => invalidRecord(`record ${index}: ${reason}`, index);
    if (position >= area.length) throw fail('missing');
    const varintAt = (end: number): number => {
      const decoded = readVarintStrictly(area, position, end, fail);
      position = decoded.next;
      return decoded.value;
    };
    const length = varintAt(area.length);
    if (length < 0 || position + length > area.length) throw fail(`length ${length}`);
    const end = position + length;
    if (position + 1 > end) throw fail('no attributes');
    position += 1;
    let timestampDelta: number;
    try {
      const decoded = readVarlong(area, position, end);
      timestampDelta = decoded.value;
      position = decoded.next;
    } catch {
      throw fail('timestampDelta');
    }
    const offsetDelta = varintAt(end);
    if (offsetDelta !== index) throw fail(`offsetDelta ${offsetDelta}`);
    const bytesField = (name: string, nullable: boolean): boolean => {
      const size = varintAt(end);
      if (size === -1 && nullable) return false;
      if (size < 0 || position + size > end) throw fail(`${name} length ${size}`);
      position += size;
      return true;
    };
    const keyed = bytesField('key', true);
    bytesField('value', true);
    const headerCount = varintAt(end);
    if (headerCount < 0) throw fail(`headerCount ${headerCount}`);
    for (let header = 0; header < headerCount; header++) {
      bytesField(`header ${header} key`, false);
      bytesField(`header ${header} value`, true);
    }
    if (position !== end) throw fail(`${end - position} bytes after the headers`);
    parsed.push({ keyed, timestampDelta });
  }
  if (position !== area.length) throw invalidRecord(`${area.length - position} bytes after ${recordCount} records`);
  return parsed;
}

function readVarintStrictly(area: Buffer, position: number, end: number, fail: (reason: string) => Refusal): { value: number; next: number } {
  try {
    return readVarint(area, position, end);
  } catch (error) {
    throw fail((error as Error).message);
  }
}

/** Decodes an area, bounded by `limitBytes`: CORRUPT_MESSAGE or MESSAGE_TOO_LARGE as Refusals. */
function strictDecompress(codec: number, data: Buffer, limitBytes: number): Buffer {
  switch (codec) {
    case 0:
      return data;
    case 1:
      try {
        return gunzipSync(data, { maxOutputLength: limitBytes });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge('gzip output over the limit');
        throw corrupt(`gzip: ${(error as Error).message}`);
      }
    case 2:
      return data.length >= 8 && data.subarray(0, 8).equals(XERIAL_HEADER.subarray(0, 8)) ? strictXerial(data, limitBytes) : strictSnappy(data, limitBytes);
    case 3:
      return strictLz4(data, limitBytes);
    default:
      return strictZstd(data, limitBytes);
  }
}

/** An output buffer that grows by doubling, never past the limit. */
class Output {
  bytes = Buffer.allocUnsafe(1024);
  length = 0;
  constructor(private readonly limitBytes: number) {}
  reserve(more: number): void {
    if (this.length + more > this.limitBytes) throw tooLarge(`output over ${this.limitBytes} bytes`);
    if (this.length + more <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.min(this.limitBytes, Math.max(this.bytes.length * 2, this.length + more)));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }
  push(byte: number): void {
    this.reserve(1);
    this.bytes[this.length++] = byte;
  }
  copyBack(offset: number, count: number): void {
    if (offset <= 0 || offset > this.length) throw corrupt(`match offset ${offset} with ${this.length} bytes out`);
    this.reserve(count);
    for (let i = 0; i < count; i++, this.length++) this.bytes[this.length] = this.bytes[this.length - offset]!;
  }
  result(): Buffer {
    return this.bytes.subarray(0, this.length);
  }
}

function strictSnappy(data: Buffer, limitBytes: number): Buffer {
  let position = 0;
  let declared = 0;
  for (let shift = 0; ; shift += 7) {
    if (position >= data.length || shift > 28) throw corrupt('snappy preamble');
    const byte = data[position++]!;
    declared += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
  }
  if (declared > limitBytes) throw tooLarge(`snappy preamble declares ${declared}`);
  const out = new Output(declared);
  try {
    decodeSnappyElements(data, position, out);
  } catch (error) {
    // The output is bounded by the preamble: more than it declares is a corrupt stream.
    throw error instanceof Refusal && error.code === ErrorCode.MESSAGE_TOO_LARGE ? corrupt('snappy output past its preamble') : error;
  }
  if (out.length !== declared) throw corrupt(`snappy decoded ${out.length} of ${declared} bytes`);
  return out.result();
}

function decodeSnappyElements(data: Buffer, start: number, out: Output): void {
  let position = start;
  const need = (count: number): void => {
    if (position + count > data.length) throw corrupt('snappy element past the input');
  };
  while (position < data.length) {
    const tag = data[position++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let length = (tag >> 2) + 1;
      if (length > 60) {
        const extra = length - 60;
        need(extra);
        length = data.readUIntLE(position, extra) + 1;
        position += extra;
      }
      need(length);
      out.reserve(length);
      data.copy(out.bytes, out.length, position, position + length);
      out.length += length;
      position += length;
      continue;
    }
    const offsetBytes = kind === 1 ? 1 : kind === 2 ? 2 : 4;
    need(offsetBytes);
    const length = kind === 1 ? ((tag >> 2) & 7) + 4 : (tag >> 2) + 1;
    const offset = kind === 1 ? ((tag >> 5) << 8) | data[position]! : data.readUIntLE(position, offsetBytes);
    position += offsetBytes;
    out.copyBack(offset, length);
  }
}

function strictXerial(data: Buffer, limitBytes: number): Buffer {
  if (data.length < XERIAL_HEADER.length) throw corrupt('xerial header cut');
  const blocks: Buffer[] = [];
  let total = 0;
  for (let position = XERIAL_HEADER.length; position < data.length; ) {
    if (position + 4 > data.length) throw corrupt('xerial block length cut');
    const length = data.readInt32BE(position);
    if (length < 0 || position + 4 + length > data.length) throw corrupt(`xerial block of ${length}`);
    const block = strictSnappy(data.subarray(position + 4, position + 4 + length), limitBytes - total);
    total += block.length;
    blocks.push(block);
    position += 4 + length;
  }
  return Buffer.concat(blocks);
}

const xxh32 = createRequire(import.meta.url)('lz4js/xxh32.js') as { hash(seed: number, src: Uint8Array, index: number, length: number): number };

function strictLz4(data: Buffer, limitBytes: number): Buffer {
  if (data.length < 7 || data.readUInt32LE(0) !== 0x184d2204) throw corrupt('no LZ4 frame magic');
  const flags = data[4]!;
  if (flags >> 6 !== 1 || (flags & 0x02) !== 0) throw corrupt(`LZ4 FLG 0x${flags.toString(16)}`);
  const blockChecksums = (flags & 0x10) !== 0;
  const contentChecksum = (flags & 0x04) !== 0;
  const headerEnd = 6 + ((flags & 0x08) !== 0 ? 8 : 0) + ((flags & 0x01) !== 0 ? 4 : 0);
  if (data.length < headerEnd + 1) throw corrupt('LZ4 frame descriptor cut');
  const blockMaxBytes = { 4: 0x10000, 5: 0x40000, 6: 0x100000, 7: 0x400000 }[(data[5]! >> 4) & 7];
  if (blockMaxBytes === undefined || (data[5]! & 0x8f) !== 0) throw corrupt(`LZ4 BD 0x${data[5]!.toString(16)}`);
  if (((xxh32.hash(0, data, 4, headerEnd - 4) >>> 8) & 0xff) !== data[headerEnd]) throw corrupt('LZ4 header checksum');
  const contentSize = (flags & 0x08) !== 0 ? Number(data.readBigUInt64LE(6)) : null;
  if (contentSize !== null && contentSize > limitBytes) throw tooLarge(`LZ4 content size ${contentSize}`);
  const out = new Output(limitBytes);
  let position = headerEnd + 1;
  for (;;) {
    if (position + 4 > data.length) throw corrupt('LZ4 block size cut');
    const word = data.readUInt32LE(position);
    position += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    if (size > blockMaxBytes || position + size + (blockChecksums ? 4 : 0) > data.length) throw corrupt(`LZ4 block of ${size}`);
    const blockStart = out.length;
    if ((word & 0x80000000) !== 0) {
      out.reserve(size);
      data.copy(out.bytes, out.length, position, position + size);
      out.length += size;
    } else {
      decodeLz4Block(data, position, position + size, out);
    }
    if (out.length - blockStart > blockMaxBytes) throw corrupt('LZ4 block decodes past its maximum');
    position += size + (blockChecksums ? 4 : 0);
  }
  if (contentChecksum) {
    if (position + 4 > data.length) throw corrupt('LZ4 content checksum cut');
    if ((xxh32.hash(0, out.bytes, 0, out.length) >>> 0) !== data.readUInt32LE(position)) throw corrupt('LZ4 content checksum');
    position += 4;
  }
  if (position !== data.length) throw corrupt(`${data.length - position} bytes after the LZ4 frame`);
  if (contentSize !== null && contentSize !== out.length) throw corrupt('LZ4 content size differs');
  return out.result();
}

function decodeLz4Block(data: Buffer, start: number, end: number, out: Output): void {
  let position = start;
  const lengthWithExtension = (base: number): number => {
    let length = base;
    if (base !== 15) return length;
    for (;;) {
      if (position >= end) throw corrupt('LZ4 length cut');
      const byte = data[position++]!;
      length += byte;
      if (byte !== 255) return length;
    }
  };
  for (;;) {
    if (position >= end) throw corrupt('LZ4 block without a last literal run');
    const token = data[position++]!;
    const literals = lengthWithExtension(token >> 4);
    if (position + literals > end) throw corrupt('LZ4 literals past the block');
    out.reserve(literals);
    data.copy(out.bytes, out.length, position, position + literals);
    out.length += literals;
    position += literals;
    if (position === end) return;
    if (position + 2 > end) throw corrupt('LZ4 match offset cut');
    const offset = data.readUInt16LE(position);
    position += 2;
    out.copyBack(offset, lengthWithExtension(token & 15) + 4);
  }
}

function strictZstd(data: Buffer, limitBytes: number): Buffer {
  if (data.length < 5 || !data.subarray(0, 4).equals(ZSTD_MAGIC)) throw corrupt('no zstd magic');
  const descriptor = data[4]!;
  const single = (descriptor & 0x20) !== 0;
  if ((descriptor & 0x08) !== 0) throw corrupt('zstd reserved bit');
  const fcsFlag = descriptor >> 6;
  const fcsBytes = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  let position = 5 + (single ? 0 : 1) + dictionaryBytes;
  if (position + fcsBytes > data.length) throw corrupt('zstd frame header cut');
  let contentSize: number | null = null;
  if (fcsBytes === 1) contentSize = data[position]!;
  if (fcsBytes === 2) contentSize = data.readUInt16LE(position) + 256;
  if (fcsBytes === 4) contentSize = data.readUInt32LE(position);
  if (fcsBytes === 8) contentSize = Number(data.readBigUInt64LE(position));
  position += fcsBytes;
  if (!single) throw new BeyondOracle('zstd window descriptors');
  if (contentSize !== null && contentSize > limitBytes) throw tooLarge(`zstd content size ${contentSize}`);
  const blockMaxBytes = Math.min(ZSTD_MAX_BLOCK_BYTES, contentSize ?? ZSTD_MAX_BLOCK_BYTES);
  const out = new Output(limitBytes);
  for (let last = false; !last; ) {
    if (position + 3 > data.length) throw corrupt('zstd block header cut');
    const header = data[position]! | (data[position + 1]! << 8) | (data[position + 2]! << 16);
    position += 3;
    last = (header & 1) === 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === ZSTD_BLOCK_RESERVED) throw corrupt('zstd reserved block type');
    if (type === 2) throw new BeyondOracle('zstd compressed blocks');
    if (size > blockMaxBytes) throw corrupt(`zstd block of ${size}`);
    const contentBytes = type === ZSTD_BLOCK_RLE ? 1 : size;
    if (position + contentBytes > data.length) throw corrupt('zstd block cut');
    out.reserve(size);
    if (type === ZSTD_BLOCK_RLE) out.bytes.fill(data[position]!, out.length, out.length + size);
    else data.copy(out.bytes, out.length, position, position + size);
    out.length += size;
    position += contentBytes;
  }
  if ((descriptor & 0x04) !== 0) position += 4;
  if (position !== data.length) throw corrupt(`${data.length - position} bytes after the zstd frame`);
  if (contentSize !== null && contentSize !== out.length) throw corrupt('zstd content size differs');
  return out.result();
}
