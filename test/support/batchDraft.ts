// Record batches written field by field, for the invalid-batch generator
// (test/support/invalidBatches.ts) and its control cases: random good records, each record laid
// out with every varint kept as its own bytes (so one field can be broken without re-encoding the
// others), a draft of the batch (the layouts, the bytes after them and the header fields, kept
// consistent with the records until a rule breaks one), and the writer that compresses the area
// (codecFrames.ts) and writes the header and the CRC-32C over the result. The valid batches at the
// end are drafts written unbroken: batches the broker must accept.
import {
  ATTRIBUTES_OFFSET,
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
  type BatchHeader,
} from '../../segments/recordBatch.js';
import { varintSize, writeVarint, writeVarlong } from '../../segments/varint.js';
import { codecId, compressArea, type CaseCodec } from './codecFrames.js';
import type { SeededRandom } from './random.js';

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

export function text(rng: SeededRandom, length: number): Buffer {
  let out = '';
  for (let i = 0; i < length; i++) out += TEXT_ALPHABET[rng.int(0, TEXT_ALPHABET.length - 1)];
  return Buffer.from(out, 'latin1');
}

/** Bytes that compress (a repeated pattern) or not (random), so codecs really copy and match. */
export function payload(rng: SeededRandom, length: number, textual: boolean): Buffer {
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

export function varint(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(5);
  return buffer.subarray(0, writeVarint(buffer, 0, value));
}

function varlong(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(10);
  return buffer.subarray(0, writeVarlong(buffer, 0, value));
}

/** A varint of `totalBytes` (> 5) bytes: `value`'s zigzag groups padded with continuation bytes. */
export function overlongVarint(value: number, totalBytes: number): Buffer {
  const zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  const out = Buffer.alloc(totalBytes);
  for (let i = 0; i < totalBytes; i++) {
    const group = i < 5 ? Math.floor(zigzag / 2 ** (7 * i)) & 0x7f : 0;
    out[i] = i < totalBytes - 1 ? group | 0x80 : group;
  }
  return out;
}

export interface HeaderLayout {
  keyLength: Buffer;
  key: Buffer;
  valueLength: Buffer;
  value: Buffer;
}

export interface RecordLayout {
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

export function headerBytes(header: HeaderLayout): Buffer {
  return Buffer.concat([header.keyLength, header.key, header.valueLength, header.value]);
}

export function bodyOf(layout: RecordLayout): Buffer {
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

export function encodeLayout(layout: RecordLayout): Buffer {
  const body = bodyOf(layout);
  return Buffer.concat([layout.length ?? varint(body.length), body]);
}

/** Bytes of the record that follow the given part (up to the record's end). */
export function bytesAfter(layout: RecordLayout, part: 'keyLength' | 'valueLength' | 'headerCount'): number {
  const headers = layout.headers.reduce((sum, header) => sum + headerBytes(header).length, 0);
  const afterHeaderCount = headers + layout.trailing.length;
  const afterValueLength = layout.value.length + layout.headerCount.length + afterHeaderCount;
  if (part === 'headerCount') return afterHeaderCount;
  if (part === 'valueLength') return afterValueLength;
  return layout.key.length + layout.valueLength.length + afterValueLength;
}

// ---------------------------------------------------------------------------------------------
// Batches

/** The header fields a draft sets; writeBatch adds baseOffset 0, batchLength, leader epoch -1 and the CRC. */
export type BatchFields = Omit<BatchHeader, 'baseOffset' | 'batchLength' | 'partitionLeaderEpoch' | 'crc'>;

/** A batch before it is written: records laid out, header fields consistent with them. */
export interface Draft {
  codec: CaseCodec;
  records: GoodRecord[];
  layouts: RecordLayout[];
  /** Bytes after the last record, inside the (uncompressed) records area. */
  trailing: Buffer;
  fields: BatchFields;
}

export function draftOf(records: GoodRecord[], codec: CaseCodec): Draft {
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

export function recordsArea(draft: Draft): Buffer {
  return Buffer.concat([...draft.layouts.map(encodeLayout), draft.trailing]);
}

/** Writes header + area (already compressed) and the CRC over attributes..end. */
export function writeBatch(fields: BatchFields, area: Buffer): Buffer {
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
export function withCrc(batch: Buffer): Buffer {
  if (batch.length >= RECORDS_OFFSET) batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.length), CRC_OFFSET);
  return batch;
}

export function finish(draft: Draft, rng: SeededRandom, transformArea: (compressed: Buffer) => Buffer = (area) => area): Buffer {
  return writeBatch(draft.fields, transformArea(compressArea(draft.codec, recordsArea(draft), rng)));
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

