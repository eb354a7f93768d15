// LZ4 frames, strictly: what record batch v2 carries for codec 3 (Kafka uses the LZ4 frame format,
// not bare blocks). Decoding refuses what liblz4 (librdkafka, kcat) or Kafka's Java client
// refuses, never writes past the caller's limit, and allocates the exact output size once.
//
// Frame (all integers little-endian):
//   | magic 0x184D2204 (4) | FLG (1) | BD (1) | [content size (8)] | HC (1) |
//   | blocks ... | EndMark 0x00000000 (4) | [content checksum (4)] |
//   FLG: bits 7-6 version = 01 | bit 5 block independence (clear: dependent blocks, which
//        Java refuses but librdkafka reads and lz4js writes, so they are accepted) | bit 4 block checksum |
//        bit 3 content size | bit 2 content checksum | bit 1 reserved (0) |
//        bit 0 dictionary id: refused (Kafka never uses one; Java treats the bit as reserved)
//   BD:  bit 7 reserved (0) | bits 6-4 block maximum size id 4..7 = 64 KiB, 256 KiB, 1 MiB, 4 MiB |
//        bits 3-0 reserved (0)
//   HC:  (xxh32(FLG .. last descriptor byte, seed 0) >> 8) & 0xff
// Block:
//   | size (4): bit 31 set = stored uncompressed, bits 30-0 = byte count <= block maximum |
//   | data | [xxh32 of data (4) if block checksums] |
//   A stored block of 0 bytes is refused: liblz4 reads it as an empty block, Java as the EndMark.
// Content size, when present and not 0, must equal the decoded size (0 means unknown, as in
// liblz4); the content checksum is xxh32 of the whole decoded frame. The area is exactly one
// frame: librdkafka fails on any byte after the first frame's end (another frame, a skippable
// frame) and Java ignores them, so a second frame would read differently in each.
//
// Compressed block (the LZ4 block format): sequences of
//   | token: literal length (high 4 bits) | match length - 4 (low 4 bits) |
//   | [literal length continued: bytes added while they are 255] | literals |
//   | offset (2, LE, 1..65535) | [match length continued, as above] |
// and the last sequence is a literal run only, ending exactly at the block's end. A match copies
// from `offset` bytes back and may overlap what it writes; it may reach into earlier blocks of
// the frame only when blocks are dependent (FLG bit 5 clear). liblz4 decodes a block into room
// for the block maximum and, measured against that room, refuses a literal run that a match
// follows when it ends in the last 12 bytes (MFLIMIT) or within 8 bytes of the input's end, a
// match ending in the last 5 bytes (LASTLITERALS), and a match length whose extra bytes end
// within 4 bytes of the input's end: so do we (legitimate encoders never produce them).
//
// Decoding runs in two passes. Pass 1 walks the frame header, every block and every sequence
// without copying a byte: it checks all of the above (and the header and block checksums), and so
// learns the exact output size, with work bounded by the input size; it stops with
// DecompressionLimitError as soon as the output would pass the limit. Pass 2 allocates that size
// once and copies; then the content checksum is checked.
import lz4 from 'lz4js';
import { CorruptCompressionError, DecompressionLimitError } from './compressionErrors.js';
import { SHORT_COPY_BYTES, copyMatch } from './matchCopy.js';
import { xxh32 } from './xxhash.js';

const CODEC = 'lz4';

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC = 0x184d2a50;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
/** A frame header: magic, FLG, BD and HC; the content size adds 8. */
const MIN_FRAME_HEADER_BYTES = 7;

const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_01 = 0x40;
const FLG_BLOCK_INDEPENDENCE = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICTIONARY_ID = 0x01;
const BD_RESERVED = 0x8f;
const BD_MIN_SIZE_ID = 4;

const BLOCK_UNCOMPRESSED = 0x80000000;
const BLOCK_SIZE_MASK = 0x7fffffff;

const MIN_MATCH = 4;
const MFLIMIT = 12;
const LASTLITERALS = 5;
/** A literal run a match follows must leave this much input: offset (2), token (1), 5 literals. */
const MIN_INPUT_AFTER_LITERALS = 2 + 1 + LASTLITERALS;
/** Extra match-length bytes must end this far before the input's end (liblz4's read limit). */
const MIN_INPUT_AFTER_MATCH_LENGTH = LASTLITERALS - 1;

/** Our encoder's block maximum (BD id 4), what librdkafka and Kafka's Java client use. */
const ENCODE_BLOCK_BYTES = 64 * 1024;
const ENCODE_BD_SIZE_ID = 4;

function blockMaximumBytes(sizeId: number): number {
  return 1 << (2 * sizeId + 8);
}

interface FrameHeader {
  flags: number;
  blockMaximumBytes: number;
  /** Declared content size; null when absent or 0 (unknown). May exceed 2^53 only as Infinity. */
  contentBytes: number | null;
  /** Position of the first block header. */
  blocksStart: number;
}

/** Parses and checks the frame header at `position`; returns a reason instead when it is bad. */
function readFrameHeader(data: Uint8Array, position: number): FrameHeader | string {
  if (position + MIN_FRAME_HEADER_BYTES > data.length) return `frame header at byte ${position} cut short`;
  const flags = data[position + 4]!;
  const bd = data[position + 5]!;
  if ((flags & FLG_VERSION_MASK) !== FLG_VERSION_01) return `frame at byte ${position} has version bits ${(flags & FLG_VERSION_MASK) >>> 6}, not 01`;
  if ((flags & FLG_RESERVED) !== 0) return `frame at byte ${position} sets the reserved FLG bit`;
  if ((flags & FLG_DICTIONARY_ID) !== 0) return `frame at byte ${position} names a dictionary (Kafka never uses one)`;
  if ((bd & BD_RESERVED) !== 0) return `frame at byte ${position} sets reserved BD bits (0x${bd.toString(16)})`;
  const sizeId = (bd >>> 4) & 7;
  if (sizeId < BD_MIN_SIZE_ID) return `frame at byte ${position} has block maximum size id ${sizeId} (4-7 allowed)`;
  const hasContentSize = (flags & FLG_CONTENT_SIZE) !== 0;
  const checksumAt = position + 6 + (hasContentSize ? 8 : 0);
  if (checksumAt >= data.length) return `frame header at byte ${position} cut short`;
  const expected = (xxh32(data, position + 4, checksumAt) >>> 8) & 0xff;
  if (data[checksumAt] !== expected) return `frame header checksum at byte ${checksumAt} is ${data[checksumAt]}, expected ${expected}`;
  let contentBytes: number | null = null;
  if (hasContentSize) {
    const low = readU32(data, position + 6);
    const high = readU32(data, position + 10);
    const size = high * 0x100000000 + low;
    contentBytes = size === 0 ? null : Number.isSafeInteger(size) ? size : Infinity;
  }
  return { flags, blockMaximumBytes: blockMaximumBytes(sizeId), contentBytes, blocksStart: checksumAt + 1 };
}

interface BlockPlan {
  compressed: boolean;
  inStart: number;
  inEnd: number;
  outStart: number;
  outEnd: number;
}

interface Plan {
  blocks: BlockPlan[];
  /** Expected xxh32 of the output, or null without a content checksum. */
  contentChecksum: number | null;
  /** Position of the content checksum (for messages). */
  checksumAt: number;
  totalBytes: number;
}

/** Pass 1: checks the frame, every block and sequence, and computes the output size; copies nothing. */
function planFrame(data: Uint8Array, maxOutputBytes: number): Plan {
  if (data.length === 0) throw corrupt('the area is empty');
  if (data.length < 4) throw corrupt(`${data.length} bytes are not an LZ4 frame`);
  const magic = readU32(data, 0);
  if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) throw corrupt('the area starts with a skippable frame (Java reads only an LZ4 frame there)');
  if (magic !== FRAME_MAGIC) throw corrupt(`magic 0x${magic.toString(16)} is not an LZ4 frame`);
  const header = readFrameHeader(data, 0);
  if (typeof header === 'string') throw corrupt(header);
  if (header.contentBytes !== null && header.contentBytes > maxOutputBytes) {
    throw new DecompressionLimitError(CODEC, maxOutputBytes, `the frame declares ${header.contentBytes} bytes`);
  }
  const blocks: BlockPlan[] = [];
  const blockChecksums = (header.flags & FLG_BLOCK_CHECKSUM) !== 0;
  const independent = (header.flags & FLG_BLOCK_INDEPENDENCE) !== 0;
  let out = 0;
  let position = header.blocksStart;
  for (;;) {
    if (position + 4 > data.length) throw corrupt(`block header at byte ${position} cut short (no EndMark)`);
    const blockHeader = readU32(data, position);
    position += 4;
    if (blockHeader === 0) break;
    const size = blockHeader & BLOCK_SIZE_MASK;
    const compressed = (blockHeader & BLOCK_UNCOMPRESSED) === 0;
    if (size > header.blockMaximumBytes) throw corrupt(`block of ${size} bytes at byte ${position - 4} exceeds the frame's ${header.blockMaximumBytes} byte block maximum`);
    if (size === 0) throw corrupt(`stored block of 0 bytes at byte ${position - 4} (liblz4 and Java disagree on what it means)`);
    const blockEnd = position + size;
    if (blockEnd + (blockChecksums ? 4 : 0) > data.length) throw corrupt(`block of ${size} bytes at byte ${position - 4} runs past the area`);
    if (blockChecksums && xxh32(data, position, blockEnd) !== readU32(data, blockEnd)) {
      throw corrupt(`block checksum at byte ${blockEnd} does not match the block at byte ${position - 4}`);
    }
    const blockOutStart = out;
    if (compressed) {
      out = scanBlock(data, position, blockEnd, out, independent ? out : 0, header.blockMaximumBytes, maxOutputBytes);
    } else {
      out += size;
      if (out > maxOutputBytes) throw new DecompressionLimitError(CODEC, maxOutputBytes, `stored block at byte ${position - 4} passes the limit`);
    }
    blocks.push({ compressed, inStart: position, inEnd: blockEnd, outStart: blockOutStart, outEnd: out });
    position = blockEnd + (blockChecksums ? 4 : 0);
  }
  let contentChecksum: number | null = null;
  const checksumAt = position;
  if ((header.flags & FLG_CONTENT_CHECKSUM) !== 0) {
    if (position + 4 > data.length) throw corrupt(`content checksum at byte ${position} cut short`);
    contentChecksum = readU32(data, position);
    position += 4;
  }
  if (header.contentBytes !== null && out !== header.contentBytes) {
    throw corrupt(`frame declares ${header.contentBytes} bytes of content but its blocks decode to ${out}`);
  }
  if (position !== data.length) {
    throw corrupt(`${data.length - position} bytes after the frame (another frame or a skippable one): librdkafka refuses them, Java ignores them`);
  }
  return { blocks, contentChecksum, checksumAt, totalBytes: out };
}

/**
 * Walks the sequences of the compressed block data[ip, ipEnd), whose output starts at `op`, and
 * returns where its output ends. Matches may reach back to `windowStart`; output may not pass
 * op + blockMaximumBytes (corrupt) nor maxOutputBytes (limit). Copies nothing.
 */
function scanBlock(data: Uint8Array, ip: number, ipEnd: number, op: number, windowStart: number, blockMaximumBytes: number, maxOutputBytes: number): number {
  const blockStart = ip;
  const capacityEnd = op + blockMaximumBytes;
  for (;;) {
    const token = data[ip++]!;
    let literalLength = token >>> 4;
    if (literalLength === 15) {
      let byte: number;
      do {
        if (ip >= ipEnd) throw corrupt(`literal length cut short in the block at byte ${blockStart}`);
        byte = data[ip++]!;
        literalLength += byte;
      } while (byte === 255);
    }
    if (literalLength > ipEnd - ip) throw corrupt(`literal run of ${literalLength} bytes at byte ${ip} runs past its block`);
    ip += literalLength;
    op += literalLength;
    if (op > capacityEnd) throw corrupt(`block at byte ${blockStart} decodes to more than its ${blockMaximumBytes} byte maximum`);
    if (op > maxOutputBytes) throw new DecompressionLimitError(CODEC, maxOutputBytes, `block at byte ${blockStart} passes the limit`);
    if (ip === ipEnd) return op;
    if (op > capacityEnd - MFLIMIT) throw corrupt(`block at byte ${blockStart} has a match starting in the last ${MFLIMIT} bytes of its maximum size`);
    if (ip > ipEnd - MIN_INPUT_AFTER_LITERALS) throw corrupt(`block at byte ${blockStart} ends without its last literals`);
    const offset = data[ip]! | (data[ip + 1]! << 8);
    ip += 2;
    if (offset === 0) throw corrupt(`match offset 0 at byte ${ip - 2}`);
    if (offset > op - windowStart) throw corrupt(`match offset ${offset} at byte ${ip - 2} reaches before the start of the ${op - windowStart} bytes it may copy from`);
    let matchLength = token & 15;
    if (matchLength === 15) {
      let byte: number;
      do {
        byte = data[ip++]!;
        matchLength += byte;
        if (ip > ipEnd - MIN_INPUT_AFTER_MATCH_LENGTH) throw corrupt(`match length at byte ${ip - 1} runs into the end of its block`);
      } while (byte === 255);
    }
    op += matchLength + MIN_MATCH;
    if (op > capacityEnd - LASTLITERALS) throw corrupt(`block at byte ${blockStart} has a match ending in the last ${LASTLITERALS} bytes of its maximum size`);
    if (op > maxOutputBytes) throw new DecompressionLimitError(CODEC, maxOutputBytes, `block at byte ${blockStart} passes the limit`);
  }
}

/** Pass 2 for one compressed block that passed scanBlock: copies its output into out[op, ...). */
function copyBlock(data: Uint8Array, ip: number, ipEnd: number, out: Uint8Array, op: number): number {
  for (;;) {
    const token = data[ip++]!;
    let literalLength = token >>> 4;
    if (literalLength === 15) {
      let byte: number;
      do {
        byte = data[ip++]!;
        literalLength += byte;
      } while (byte === 255);
    }
    if (literalLength < SHORT_COPY_BYTES) {
      const literalEnd = ip + literalLength;
      while (ip < literalEnd) out[op++] = data[ip++]!;
    } else {
      out.set(data.subarray(ip, ip + literalLength), op);
      ip += literalLength;
      op += literalLength;
    }
    if (ip >= ipEnd) return op;
    const offset = data[ip]! | (data[ip + 1]! << 8);
    ip += 2;
    let matchLength = token & 15;
    if (matchLength === 15) {
      let byte: number;
      do {
        byte = data[ip++]!;
        matchLength += byte;
      } while (byte === 255);
    }
    matchLength += MIN_MATCH;
    op = copyMatch(out, op, offset, matchLength);
  }
}

/** Decodes the LZ4 frame in `data` into a new Buffer of at most maxOutputBytes. */
export function decodeLz4Frame(data: Uint8Array, maxOutputBytes: number): Buffer {
  const plan = planFrame(data, maxOutputBytes);
  const out = Buffer.allocUnsafe(plan.totalBytes);
  for (const block of plan.blocks) {
    if (block.compressed) {
      const end = copyBlock(data, block.inStart, block.inEnd, out, block.outStart);
      if (end !== block.outEnd) throw new Error(`lz4 pass 2 wrote ${end - block.outStart} bytes for a block pass 1 sized at ${block.outEnd - block.outStart}`);
    } else {
      out.set(data.subarray(block.inStart, block.inEnd), block.outStart);
    }
  }
  if (plan.contentChecksum !== null && xxh32(out, 0, out.length) !== plan.contentChecksum) {
    throw corrupt(`content checksum at byte ${plan.checksumAt} does not match the decoded frame`);
  }
  return out;
}

/** The frame's content size when it declares one (not 0), else null. Never throws. */
export function lz4DeclaredBytes(data: Uint8Array): number | null {
  if (data.length < MIN_FRAME_HEADER_BYTES || readU32(data, 0) !== FRAME_MAGIC) return null;
  const header = readFrameHeader(data, 0);
  if (typeof header === 'string' || header.contentBytes === null || !Number.isFinite(header.contentBytes)) return null;
  return header.contentBytes;
}

let encodeHashTable: Uint32Array | null = null;
let encodeScratch: Uint8Array | null = null;

/**
 * Encodes `data` as one LZ4 frame the way Kafka's clients do: independent 64 KiB blocks, no
 * checksums beyond the header's, no content size. Blocks are compressed with lz4js; a block lz4js
 * leaves bigger, or shapes in a way liblz4 refuses (its matches may start in a full block's last
 * 12 bytes), is stored uncompressed instead.
 */
export function encodeLz4Frame(data: Uint8Array): Buffer {
  encodeHashTable ??= new Uint32Array(1 << 16);
  encodeScratch ??= new Uint8Array(ENCODE_BLOCK_BYTES + Math.ceil(ENCODE_BLOCK_BYTES / 255) + 16);
  const blockCount = Math.ceil(data.length / ENCODE_BLOCK_BYTES);
  const out = Buffer.allocUnsafe(7 + blockCount * (4 + ENCODE_BLOCK_BYTES) + 4);
  out.writeUInt32LE(FRAME_MAGIC, 0);
  out[4] = FLG_VERSION_01 | FLG_BLOCK_INDEPENDENCE;
  out[5] = ENCODE_BD_SIZE_ID << 4;
  out[6] = (xxh32(out, 4, 6) >>> 8) & 0xff;
  let position = 7;
  for (let start = 0; start < data.length; start += ENCODE_BLOCK_BYTES) {
    const length = Math.min(ENCODE_BLOCK_BYTES, data.length - start);
    encodeHashTable.fill(0);
    const compressedBytes = lz4.compressBlock(data, encodeScratch, start, length, encodeHashTable);
    if (compressedBytes > 0 && compressedBytes < length && decodesTo(encodeScratch, compressedBytes, length)) {
      out.writeUInt32LE(compressedBytes, position);
      out.set(encodeScratch.subarray(0, compressedBytes), position + 4);
      position += 4 + compressedBytes;
    } else {
      out.writeUInt32LE((BLOCK_UNCOMPRESSED | length) >>> 0, position);
      out.set(data.subarray(start, start + length), position + 4);
      position += 4 + length;
    }
  }
  out.writeUInt32LE(0, position);
  return out.subarray(0, position + 4);
}

function decodesTo(block: Uint8Array, blockBytes: number, expectedBytes: number): boolean {
  try {
    return scanBlock(block, 0, blockBytes, 0, 0, ENCODE_BLOCK_BYTES, ENCODE_BLOCK_BYTES) === expectedBytes;
  } catch (error) {
    if (error instanceof CorruptCompressionError) return false;
    throw error;
  }
}

function readU32(data: Uint8Array, at: number): number {
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
}

function corrupt(reason: string): CorruptCompressionError {
  return new CorruptCompressionError(CODEC, reason);
}
