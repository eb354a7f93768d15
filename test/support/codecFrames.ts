// The codecs of the invalid-batch generator (test/support/invalidBatches.ts): how it compresses
// a records area with each codec, and how it breaks a compressed area.
//
// Compression goes through the reference libraries (zlib, snappyjs, lz4js) and two framings made
// here by hand: xerial (snappy-java's header, then [int32 BE length][raw snappy block] per block)
// and zstd frames of Raw and RLE blocks (tidelog has no zstd encoder; fzstd checks they decode).
// Every area is checked to decode back to its records before it is used.
//
// Breaking an area: a cut that can only be corrupt (never at a xerial block boundary), garbage
// that cannot decode by construction, and flipped bytes. Flips land on payload bytes only, never
// on a field that declares a size; in formats without a checksum they may still decode (`strict`
// false), in gzip (CRC-32 and length trailer) and the LZ4 header checksum they cannot.
import { gunzipSync, gzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import lz4 from 'lz4js';
import snappy from 'snappyjs';
import type { SeededRandom } from './random.js';

// ---------------------------------------------------------------------------------------------
// The codec of a case

/** The codec of a case; snappy comes raw (snappyjs) and in the xerial framing Java clients write. */
export type CaseCodec = 'none' | 'gzip' | 'snappy' | 'snappy-xerial' | 'lz4' | 'zstd';
export const CASE_CODECS: readonly CaseCodec[] = ['none', 'gzip', 'snappy', 'snappy-xerial', 'lz4', 'zstd'];
export const COMPRESSED_CODECS: readonly CaseCodec[] = CASE_CODECS.filter((codec) => codec !== 'none');

/** The codec id in attribute bits 0-2. */
export function codecId(codec: CaseCodec): number {
  return { none: 0, gzip: 1, snappy: 2, 'snappy-xerial': 2, lz4: 3, zstd: 4 }[codec];
}

// ---------------------------------------------------------------------------------------------
// Codecs

export const XERIAL_HEADER = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);

function int32(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer.writeInt32BE(value, 0);
  return buffer;
}

export function snappyRaw(data: Buffer): Buffer {
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

export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
export const ZSTD_MAX_BLOCK_BYTES = 128 * 1024;
const ZSTD_BLOCK_RAW = 0;
export const ZSTD_BLOCK_RLE = 1;
export const ZSTD_BLOCK_RESERVED = 3;

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

/** zstd RLE blocks of zeros, `total` bytes in all, with a truthful Frame_Content_Size. */
export function zstdZeros(total: number): Buffer {
  const blocks: ZstdBlock[] = [];
  for (let left = total; left > 0; left -= ZSTD_MAX_BLOCK_BYTES) {
    blocks.push({ type: ZSTD_BLOCK_RLE, content: Buffer.from([0]), size: Math.min(left, ZSTD_MAX_BLOCK_BYTES) });
  }
  return zstdFrameOfBlocks(blocks, total > 0xffffffff ? 8 : 4);
}

// ---------------------------------------------------------------------------------------------
// Compressed areas broken

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
export function truncationPoint(rng: SeededRandom, codec: CaseCodec, area: Buffer): number {
  const forbidden = codec === 'snappy-xerial' ? xerialBoundaries(area) : new Set<number>();
  for (let attempt = 0; attempt < 100; attempt++) {
    const cut = rng.pick([0, rng.int(0, area.length - 1), area.length - 1, Math.max(0, area.length - rng.int(1, 8))]);
    if (!forbidden.has(cut)) return cut;
  }
  throw new Error(`generator bug: no cut point in a ${area.length}-byte ${codec} area`);
}

/** A compressed area that cannot decode, by construction (not merely with high probability). */
export function garbageFor(rng: SeededRandom, codec: CaseCodec, declared: number): { bytes: Buffer; detail: string } {
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

export function encodeUnsignedVarint(value: number): number[] {
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

export interface Flip {
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

export function flipCompressed(rng: SeededRandom, codec: CaseCodec, area: Buffer): Flip {
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

