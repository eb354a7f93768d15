// The reference validator: the Produce validation contract written out plainly, as an oracle for
// the invalid-batch generator's own checks (test/support/invalidBatches.ts): every case is refused
// by it with its expected code and record, every valid batch is accepted. Of segments/ it uses only
// the header's field offsets, the CRC and the varint readers; its decoders are its own, strict
// ones of the subset of each format the generator writes. A zstd frame with compressed blocks is
// beyond it (null: no verdict). Not fast; small batches, and the bombs once.
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { ErrorCode } from '../../protocol/errors.js';
import {
  ATTRIBUTES_OFFSET,
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_DELETE_HORIZON,
  ATTRIBUTE_TRANSACTIONAL,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORDS_OFFSET,
  RECORD_COUNT_OFFSET,
  computeBatchCrc,
} from '../../segments/recordBatch.js';
import { readVarint, readVarlong } from '../../segments/varint.js';
import { XERIAL_HEADER, ZSTD_BLOCK_RESERVED, ZSTD_BLOCK_RLE, ZSTD_MAGIC, ZSTD_MAX_BLOCK_BYTES } from './codecFrames.js';
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_TIMESTAMP_AFTER_MAX_MS, STRICT_TIMESTAMP_BEFORE_MAX_MS, type CaseTopic } from './invalidBatches.js';

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
