// The consumer's decoder of record batch v2 bytes (layout in segments/recordBatch.ts), as a Fetch
// response carries them: back-to-back batches, the last one possibly cut short by maxBytes
// (KIP-74 lets the broker stop mid-batch; such a tail is ignored and fetched again next time).
//
// Two steps, so a prefetched response costs nothing until it is consumed:
//   scanFetchedRecords   header walk only: where the next fetch starts, how many bytes are whole
//   decodeFetchedBatches per batch: CRC-32C check, gzip inflated, control batches dropped; returns
//                        RecordBatch views (no record objects)
// Records are then read by a RecordCursor (mutable fields, no allocation per record) or
// materialised by batchRecords(). Keys, values and header values are zero-copy subarrays of the
// response (or of the inflated area); varints are read by two small module-level functions that
// leave their end position in `cursor`, so no object is made per field.
import { CompressionCodec, UnsupportedCompressionError, compressionName, decompress } from '../segments/compression.js';
import { crc32c } from '../segments/crc32c.js';
import {
  ATTRIBUTES_OFFSET,
  ATTRIBUTE_COMPRESSION_MASK,
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_TRANSACTIONAL,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_HEADER_BYTES,
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
  hex32,
  readInt64AsNumber,
} from '../segments/recordBatch.js';
import { KafkaClientError } from './errors.js';

export interface ConsumerRecordHeader {
  key: string;
  value: Buffer | null;
}

/** A record as records() hands it out; K and V are Buffer unless the consumer has deserializers. */
export interface ConsumerRecord<K = Buffer, V = Buffer> {
  topic: string;
  partition: number;
  /** bigint, as the producer's RecordMetadata.offset. */
  offset: bigint;
  /** Milliseconds since the epoch (CreateTime, or LogAppendTime when the topic says so). */
  timestamp: number;
  /** A view of the fetched bytes (or the deserializer's result); null stays null. */
  key: K | null;
  value: V | null;
  /** In wire order; duplicate keys kept. */
  headers: readonly ConsumerRecordHeader[];
}

/** One batch of a Fetch response, checked and (when compressed) inflated; records not decoded. */
export interface RecordBatch {
  topic: string;
  partition: number;
  baseOffset: number;
  lastOffset: number;
  /** Records below this offset (before the fetch position) are skipped by readers. */
  firstWantedOffset: number;
  recordCount: number;
  attributes: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  partitionLeaderEpoch: number;
  /** The records area: a view of the response, or the inflated bytes of a compressed batch. */
  records: Buffer;
}

/** A batch whose bytes are not what their CRC or lengths say. Not retriable: seek past it. */
export class KafkaCorruptRecordError extends KafkaClientError {
  override readonly name = 'KafkaCorruptRecordError';

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The base offset of the bad batch (as far as its header can be trusted). */
    readonly offset: number,
    detail: string,
  ) {
    super(`corrupt record batch in ${topic}-${partition} at offset ${offset}: ${detail}`, false);
  }
}

export interface ScanResult {
  /** Offset after the last whole batch (the fetch offset when there is none). */
  nextOffset: number;
  /** Bytes of whole batches at the start of the buffer. */
  completeBytes: number;
  batchCount: number;
}

/** Header walk of a Fetch partition's records: where the next fetch starts. No CRC here. */
export function scanFetchedRecords(buffer: Buffer | null, fetchOffset: number): ScanResult {
  let nextOffset = fetchOffset;
  let position = 0;
  let batchCount = 0;
  if (buffer === null) return { nextOffset, completeBytes: 0, batchCount };
  const end = buffer.length;
  while (end - position >= BATCH_HEADER_BYTES) {
    const size = buffer.readInt32BE(position + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_BYTES || size > end - position) break; // a cut tail; bad lengths are reported by decode
    const lastOffset = readInt64AsNumber(buffer, position + BASE_OFFSET_OFFSET) + buffer.readInt32BE(position + LAST_OFFSET_DELTA_OFFSET);
    if (lastOffset + 1 > nextOffset) nextOffset = lastOffset + 1;
    position += size;
    batchCount++;
  }
  return { nextOffset, completeBytes: position, batchCount };
}

export interface DecodeResult {
  batches: RecordBatch[];
  /** Set when a batch failed its checks; `batches` holds the good ones before it. */
  error: KafkaCorruptRecordError | null;
}

/**
 * Checks and splits the whole batches of a Fetch partition's records. Control batches and batches
 * wholly below `fetchOffset` are dropped; a cut trailing batch is ignored.
 */
export function decodeFetchedBatches(topic: string, partition: number, buffer: Buffer | null, fetchOffset: number, verifyCrc = true): DecodeResult {
  const batches: RecordBatch[] = [];
  if (buffer === null) return { batches, error: null };
  const end = buffer.length;
  let position = 0;
  while (end - position >= BATCH_HEADER_BYTES) {
    const batchLength = buffer.readInt32BE(position + BATCH_LENGTH_OFFSET);
    const size = batchLength + LOG_OVERHEAD;
    const baseOffset = readInt64AsNumber(buffer, position + BASE_OFFSET_OFFSET);
    const fail = (detail: string): DecodeResult => ({ batches, error: new KafkaCorruptRecordError(topic, partition, baseOffset, detail) });
    if (size < BATCH_HEADER_BYTES) return fail(`batchLength ${batchLength} is smaller than a batch header`);
    if (size > end - position) break;
    const magic = buffer[position + MAGIC_OFFSET]!;
    if (magic !== CURRENT_MAGIC) return fail(`magic byte ${magic}: only record batch v2 is supported`);
    if (Number.isNaN(baseOffset)) return fail('baseOffset is beyond 2^53');
    const batchEnd = position + size;
    if (verifyCrc) {
      const stored = buffer.readUInt32BE(position + CRC_OFFSET);
      const actual = crc32c(buffer.subarray(position + ATTRIBUTES_OFFSET, batchEnd));
      if (actual !== stored) return fail(`CRC-32C mismatch: stored ${hex32(stored)}, computed ${hex32(actual)}`);
    }
    const attributes = buffer.readInt16BE(position + ATTRIBUTES_OFFSET);
    const lastOffsetDelta = buffer.readInt32BE(position + LAST_OFFSET_DELTA_OFFSET);
    const recordCount = buffer.readInt32BE(position + RECORD_COUNT_OFFSET);
    if (lastOffsetDelta < 0 || recordCount < 0 || recordCount > lastOffsetDelta + 1) {
      return fail(`recordCount ${recordCount} does not fit lastOffsetDelta ${lastOffsetDelta}`);
    }
    const lastOffset = baseOffset + lastOffsetDelta;
    if ((attributes & ATTRIBUTE_CONTROL) === 0 && lastOffset >= fetchOffset && recordCount > 0) {
      const codec = attributes & ATTRIBUTE_COMPRESSION_MASK;
      let records: Buffer;
      if (codec === CompressionCodec.none) {
        records = buffer.subarray(position + RECORDS_OFFSET, batchEnd);
      } else {
        try {
          records = decompress(codec, buffer.subarray(position + RECORDS_OFFSET, batchEnd));
        } catch (error) {
          if (error instanceof UnsupportedCompressionError) throw new KafkaClientError(`${topic}-${partition} at offset ${baseOffset}: ${error.message}`, false, { cause: error });
          return fail(`${compressionName(codec) ?? codec} records do not inflate: ${(error as Error).message}`);
        }
      }
      batches.push({
        topic,
        partition,
        baseOffset,
        lastOffset,
        firstWantedOffset: fetchOffset,
        recordCount,
        attributes,
        baseTimestamp: readInt64AsNumber(buffer, position + BASE_TIMESTAMP_OFFSET),
        maxTimestamp: readInt64AsNumber(buffer, position + MAX_TIMESTAMP_OFFSET),
        producerId: readInt64AsNumber(buffer, position + PRODUCER_ID_OFFSET),
        producerEpoch: buffer.readInt16BE(position + PRODUCER_EPOCH_OFFSET),
        baseSequence: buffer.readInt32BE(position + BASE_SEQUENCE_OFFSET),
        partitionLeaderEpoch: buffer.readInt32BE(position + PARTITION_LEADER_EPOCH_OFFSET),
        records,
      });
    }
    position = batchEnd;
  }
  return { batches, error: null };
}

export function isTransactional(batch: RecordBatch): boolean {
  return (batch.attributes & ATTRIBUTE_TRANSACTIONAL) !== 0;
}

// ---------------------------------------------------------------------------------------------
// Records

/** Position after the last varint read by readVarint/readVarlong. */
let cursor = 0;

class RecordFormatError extends Error {}

/** Zigzag varint (int32) at `position`; the position after it is left in `cursor`. */
function readVarint(buffer: Buffer, position: number, end: number): number {
  if (position >= end) throw new RecordFormatError('a varint runs past the record');
  let byte = buffer[position++]!;
  let raw = byte & 0x7f;
  let shift = 7;
  while (byte >= 0x80) {
    if (position >= end || shift > 28) throw new RecordFormatError('a varint runs past the record or exceeds 5 bytes');
    byte = buffer[position++]!;
    raw |= (byte & 0x7f) << shift;
    shift += 7;
  }
  cursor = position;
  return (raw >>> 1) ^ -(raw & 1);
}

/** Zigzag varlong as a JS number (safe range); the position after it is left in `cursor`. */
function readVarlong(buffer: Buffer, position: number, end: number): number {
  if (position >= end) throw new RecordFormatError('a varlong runs past the record');
  let byte = buffer[position++]!;
  if (byte < 0x80) {
    cursor = position;
    return (byte >>> 1) ^ -(byte & 1);
  }
  let raw = byte & 0x7f;
  let multiplier = 128;
  while (byte >= 0x80) {
    if (position >= end || multiplier > 2 ** 49) throw new RecordFormatError('a varlong runs past the record or the safe integer range');
    byte = buffer[position++]!;
    raw += (byte & 0x7f) * multiplier;
    multiplier *= 128;
  }
  cursor = position;
  return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
}

const EMPTY_HEADERS: readonly ConsumerRecordHeader[] = Object.freeze([]);

/**
 * Reads the records of one batch without making objects: next() moves to the next wanted record
 * and fills the fields; key()/value()/headers() make views on request.
 */
export class RecordCursor {
  offset = 0;
  timestamp = 0;
  /** Start of the key in `buffer`, and its length (-1: null). */
  keyStart = 0;
  keyLength = -1;
  valueStart = 0;
  valueLength = -1;
  headerCount = 0;
  headersStart = 0;
  buffer: Buffer = Buffer.alloc(0);
  private batch: RecordBatch | null = null;
  private position = 0;
  private remaining = 0;

  reset(batch: RecordBatch): this {
    this.batch = batch;
    this.buffer = batch.records;
    this.position = 0;
    this.remaining = batch.recordCount;
    return this;
  }

  /** False when the batch has no more wanted records. Throws KafkaCorruptRecordError on bad bytes. */
  next(): boolean {
    const batch = this.batch;
    if (batch === null) return false;
    const buffer = this.buffer;
    const areaEnd = buffer.length;
    try {
      while (this.remaining > 0) {
        this.remaining--;
        const length = readVarint(buffer, this.position, areaEnd);
        let position = cursor;
        const end = position + length;
        if (length < 1 || end > areaEnd) throw new RecordFormatError(`a record declares ${length} bytes, ${areaEnd - position} remain`);
        position++; // record attributes: unused
        const timestampDelta = readVarlong(buffer, position, end);
        const offsetDelta = readVarint(buffer, cursor, end);
        const keyLength = readVarint(buffer, cursor, end);
        position = cursor;
        if (keyLength < -1 || position + keyLength > end) throw new RecordFormatError(`key length ${keyLength} runs past the record`);
        this.keyStart = position;
        this.keyLength = keyLength;
        if (keyLength > 0) position += keyLength;
        const valueLength = readVarint(buffer, position, end);
        position = cursor;
        if (valueLength < -1 || position + valueLength > end) throw new RecordFormatError(`value length ${valueLength} runs past the record`);
        this.valueStart = position;
        this.valueLength = valueLength;
        if (valueLength > 0) position += valueLength;
        const headerCount = readVarint(buffer, position, end);
        if (headerCount < 0 || headerCount > end - cursor) throw new RecordFormatError(`header count ${headerCount}`);
        this.headerCount = headerCount;
        this.headersStart = cursor;
        this.position = end;
        const offset = batch.baseOffset + offsetDelta;
        if (offset < batch.firstWantedOffset) continue;
        this.offset = offset;
        this.timestamp = (batch.attributes & 0x08) !== 0 ? batch.maxTimestamp : batch.baseTimestamp + timestampDelta;
        return true;
      }
    } catch (error) {
      this.batch = null;
      if (error instanceof RecordFormatError) throw new KafkaCorruptRecordError(batch.topic, batch.partition, batch.baseOffset, error.message);
      throw error;
    }
    this.batch = null;
    return false;
  }

  key(): Buffer | null {
    return this.keyLength < 0 ? null : this.buffer.subarray(this.keyStart, this.keyStart + this.keyLength);
  }

  value(): Buffer | null {
    return this.valueLength < 0 ? null : this.buffer.subarray(this.valueStart, this.valueStart + this.valueLength);
  }

  headers(): readonly ConsumerRecordHeader[] {
    const count = this.headerCount;
    if (count === 0) return EMPTY_HEADERS;
    const buffer = this.buffer;
    const end = this.position;
    const headers = new Array<ConsumerRecordHeader>(count);
    let position = this.headersStart;
    for (let h = 0; h < count; h++) {
      const keyLength = readVarint(buffer, position, end);
      position = cursor;
      if (keyLength < 0 || position + keyLength > end) throw this.corrupt(`header key length ${keyLength}`);
      const key = buffer.toString('utf8', position, position + keyLength);
      position += keyLength;
      const valueLength = readVarint(buffer, position, end);
      position = cursor;
      if (valueLength < -1 || position + valueLength > end) throw this.corrupt(`header value length ${valueLength}`);
      headers[h] = { key, value: valueLength < 0 ? null : buffer.subarray(position, position + valueLength) };
      if (valueLength > 0) position += valueLength;
    }
    return headers;
  }

  /** The current record as an object. */
  record(topic: string, partition: number): ConsumerRecord {
    return {
      topic,
      partition,
      offset: BigInt(this.offset),
      timestamp: this.timestamp,
      key: this.keyLength < 0 ? null : this.buffer.subarray(this.keyStart, this.keyStart + this.keyLength),
      value: this.valueLength < 0 ? null : this.buffer.subarray(this.valueStart, this.valueStart + this.valueLength),
      headers: this.headerCount === 0 ? EMPTY_HEADERS : this.headers(),
    };
  }

  private corrupt(detail: string): KafkaCorruptRecordError {
    const batch = this.batch;
    return new KafkaCorruptRecordError(batch?.topic ?? '?', batch?.partition ?? -1, batch?.baseOffset ?? -1, `record at offset ${this.offset}: ${detail}`);
  }
}

/** Every wanted record of a batch as objects. */
export function batchRecords(batch: RecordBatch): ConsumerRecord[] {
  const reader = new RecordCursor().reset(batch);
  const out: ConsumerRecord[] = [];
  while (reader.next()) out.push(reader.record(batch.topic, batch.partition));
  return out;
}

/** Every wanted record of a Fetch partition's records (throws KafkaCorruptRecordError after nothing is returned). */
export function decodeFetchedRecords(topic: string, partition: number, buffer: Buffer | null, fetchOffset: number): ConsumerRecord[] {
  const { batches, error } = decodeFetchedBatches(topic, partition, buffer, fetchOffset);
  if (error !== null) throw error;
  const out: ConsumerRecord[] = [];
  const reader = new RecordCursor();
  for (const batch of batches) {
    reader.reset(batch);
    while (reader.next()) out.push(reader.record(topic, partition));
  }
  return out;
}
