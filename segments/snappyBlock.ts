// Snappy, strictly: the raw block format librdkafka writes, and the xerial snappy-java framing
// Java clients write around raw blocks. Decoding refuses anything Google's snappy (which both
// clients use) refuses, and never produces more than the declared length.
//
// Raw block:
//   | preamble: uncompressed length, varint (7 bits a byte, low first), 1-5 bytes, < 2^32 |
//   | elements until the input ends; each starts with a tag byte, low 2 bits = element type:   |
//   |   00 literal   length-1 = tag >> 2 when < 60, else the next (tag >> 2) - 59 bytes (LE)  |
//   |                hold length-1; then `length` literal bytes                                |
//   |   01 copy      length = 4 + ((tag >> 2) & 7), offset = (tag >> 5) << 8 | next byte       |
//   |   10 copy      length = (tag >> 2) + 1, offset = next 2 bytes LE                         |
//   |   11 copy      length = (tag >> 2) + 1, offset = next 4 bytes LE                         |
// A copy repeats `length` bytes starting `offset` bytes back (they may overlap the output being
// written). Offset 0, an offset before the start of the output, any write past the declared
// length, an element cut short, or an output shorter than declared is corrupt.
//
// xerial framing (snappy-java's SnappyOutputStream, what Kafka's Java client writes):
//   | magic 0x82 'SNAPPY' 0x00 (8) | version int32 BE (>= 1) | compatible version int32 BE |
//   | then [block length int32 BE][raw block] ... to the end of the input                      |
// Java refuses versions below 1; librdkafka refuses a block length that runs past the input
// (including the negative "lengths" a second concatenated header would produce), bytes after
// the last block, and a stream that decodes to nothing.
import { CorruptCompressionError, DecompressionLimitError } from './compressionErrors.js';
import { SHORT_COPY_BYTES, copyMatch } from './matchCopy.js';

const CODEC = 'snappy';

export const XERIAL_MAGIC = Uint8Array.of(0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00);
export const XERIAL_HEADER_BYTES = 16;
const XERIAL_MIN_VERSION = 1;

/** Most output a raw block's elements can produce per input byte: a 3-byte copy of 64 bytes. */
const MAX_OUTPUT_BYTES_PER_INPUT_BYTE = 64 / 3;

interface Preamble {
  /** Declared uncompressed length. */
  length: number;
  /** Input position of the first element. */
  next: number;
}

/** Reads the varint length preamble of the raw block data[start, end), or returns a reason. */
function readPreamble(data: Uint8Array, start: number, end: number): Preamble | string {
  let length = 0;
  let position = start;
  for (let shift = 0; shift <= 28; shift += 7) {
    if (position >= end) return `length preamble cut short at byte ${position}`;
    const byte = data[position++]!;
    if (shift === 28 && byte > 0x0f) return `length preamble at byte ${start} does not fit 32 bits`;
    length += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return { length, next: position };
  }
  return `length preamble at byte ${start} is longer than 5 bytes`;
}

/** The exact decoded size of a raw or xerial-framed area, or null if the area does not say. */
export function snappyDeclaredBytes(data: Uint8Array): number | null {
  if (!isXerial(data)) {
    const preamble = readPreamble(data, 0, data.length);
    return typeof preamble === 'string' ? null : preamble.length;
  }
  let total = 0;
  let position = XERIAL_HEADER_BYTES;
  while (position < data.length) {
    if (position + 4 > data.length) return null;
    const length = readInt32BE(data, position);
    position += 4;
    if (length < 0 || length > data.length - position) return null;
    const preamble = readPreamble(data, position, position + length);
    if (typeof preamble === 'string') return null;
    total += preamble.length;
    position += length;
  }
  return total;
}

export function isXerial(data: Uint8Array): boolean {
  if (data.length < XERIAL_HEADER_BYTES) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (data[i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

/** Decodes a raw snappy block or a xerial-framed stream into a new Buffer of at most maxOutputBytes. */
export function decodeSnappy(data: Uint8Array, maxOutputBytes: number): Buffer {
  if (!isXerial(data)) {
    const preamble = checkedPreamble(data, 0, data.length, maxOutputBytes, maxOutputBytes);
    const out = Buffer.allocUnsafe(preamble.length);
    decodeRawBlock(data, preamble.next, data.length, out, 0, preamble.length);
    return out;
  }
  // xerial: read every block's preamble first, so the total is known (and checked against the
  // limit) before anything is allocated; then decode each block into its place.
  const version = readInt32BE(data, 8);
  if (version < XERIAL_MIN_VERSION) throw corrupt(`xerial header version ${version}, below ${XERIAL_MIN_VERSION}`);
  const blocks: Array<{ preamble: Preamble; end: number }> = [];
  let total = 0;
  let position = XERIAL_HEADER_BYTES;
  while (position < data.length) {
    if (position + 4 > data.length) throw corrupt(`xerial block length cut short at byte ${position}`);
    const length = readInt32BE(data, position);
    position += 4;
    if (length < 0 || length > data.length - position) throw corrupt(`xerial block of ${length} bytes at byte ${position - 4} runs past the area`);
    const preamble = checkedPreamble(data, position, position + length, maxOutputBytes - total, maxOutputBytes);
    total += preamble.length;
    blocks.push({ preamble, end: position + length });
    position += length;
  }
  if (total === 0) throw corrupt('xerial stream holds no data (librdkafka refuses an empty one)');
  const out = Buffer.allocUnsafe(total);
  let written = 0;
  for (const { preamble, end } of blocks) {
    decodeRawBlock(data, preamble.next, end, out, written, written + preamble.length);
    written += preamble.length;
  }
  return out;
}

function checkedPreamble(data: Uint8Array, start: number, end: number, remainingBytes: number, limitBytes: number): Preamble {
  const preamble = readPreamble(data, start, end);
  if (typeof preamble === 'string') throw corrupt(preamble);
  if (preamble.length > remainingBytes) {
    throw new DecompressionLimitError(CODEC, limitBytes, `block at byte ${start} declares ${preamble.length} bytes with ${remainingBytes} left`);
  }
  const inputBytes = end - preamble.next;
  if (preamble.length > Math.floor(inputBytes * MAX_OUTPUT_BYTES_PER_INPUT_BYTE)) {
    throw corrupt(`block at byte ${start} declares ${preamble.length} bytes, more than its ${inputBytes} bytes of elements can produce`);
  }
  return preamble;
}

/**
 * Decodes the elements in data[inStart, inEnd) into out[outStart, outEnd), which they must fill
 * exactly. Every byte of out[outStart, outEnd) is written (so `out` may be uninitialised).
 */
function decodeRawBlock(data: Uint8Array, inStart: number, inEnd: number, out: Uint8Array, outStart: number, outEnd: number): void {
  let ip = inStart;
  let op = outStart;
  while (ip < inEnd) {
    const tag = data[ip++]!;
    const type = tag & 3;
    let length: number;
    if (type === 0) {
      length = tag >>> 2;
      if (length >= 60) {
        const extraBytes = length - 59;
        if (extraBytes > inEnd - ip) throw corrupt(`literal length cut short at byte ${ip - 1}`);
        length = data[ip]!;
        if (extraBytes > 1) length |= data[ip + 1]! << 8;
        if (extraBytes > 2) length |= data[ip + 2]! << 16;
        if (extraBytes > 3) length += data[ip + 3]! * 0x1000000;
        ip += extraBytes;
      }
      length += 1;
      if (length > inEnd - ip) throw corrupt(`literal of ${length} bytes at byte ${ip} runs past the input`);
      if (length > outEnd - op) throw corrupt(`literal of ${length} bytes at byte ${ip} runs past the declared length`);
      if (length < SHORT_COPY_BYTES) {
        const literalEnd = ip + length;
        while (ip < literalEnd) out[op++] = data[ip++]!;
      } else {
        out.set(data.subarray(ip, ip + length), op);
        ip += length;
        op += length;
      }
      continue;
    }
    let offset: number;
    if (type === 1) {
      if (ip >= inEnd) throw corrupt(`copy cut short at byte ${ip - 1}`);
      length = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | data[ip++]!;
    } else if (type === 2) {
      if (ip + 2 > inEnd) throw corrupt(`copy cut short at byte ${ip - 1}`);
      length = (tag >>> 2) + 1;
      offset = data[ip]! | (data[ip + 1]! << 8);
      ip += 2;
    } else {
      if (ip + 4 > inEnd) throw corrupt(`copy cut short at byte ${ip - 1}`);
      length = (tag >>> 2) + 1;
      offset = (data[ip]! | (data[ip + 1]! << 8) | (data[ip + 2]! << 16)) + data[ip + 3]! * 0x1000000;
      ip += 4;
    }
    if (offset === 0 || offset > op - outStart) throw corrupt(`copy at byte ${ip} has offset ${offset} with ${op - outStart} bytes written`);
    if (length > outEnd - op) throw corrupt(`copy of ${length} bytes at byte ${ip} runs past the declared length`);
    op = copyMatch(out, op, offset, length);
  }
  if (op !== outEnd) throw corrupt(`block decodes to ${op - outStart} bytes, its preamble declares ${outEnd - outStart}`);
}

function readInt32BE(data: Uint8Array, at: number): number {
  return (data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!;
}

function corrupt(reason: string): CorruptCompressionError {
  return new CorruptCompressionError(CODEC, reason);
}
