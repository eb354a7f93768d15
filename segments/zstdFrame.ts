// zstd frames, strictly (RFC 8878; checks as libzstd, which librdkafka and Kafka's Java client
// (zstd-jni) use): what record batch v2 carries for codec 4. Replaces fzstd, which accepts
// corrupt frames libzstd refuses (offsets before the frame's start, literal overruns, bitstreams
// not consumed exactly), skips the content checksum, and can spend minutes of CPU on a few KB
// (it keeps copying past the end of a block's buffer without stopping).
//
// Frame (integers little-endian):
//   | magic 0xFD2FB528 (4) | Frame_Header_Descriptor (1) | [Window_Descriptor (1)] |
//   | [Dictionary_ID (0/1/2/4)] | [Frame_Content_Size (0/1/2/4/8)] | blocks ... | [checksum (4)] |
//   FHD: bits 7-6 FCS flag (field 0/2/4/8 bytes; 0 = 1 byte when single segment) |
//        bit 5 single segment (no window descriptor; window = content size) | bit 4 unused |
//        bit 3 reserved (0) | bit 2 content checksum | bits 1-0 dictionary id size (0/1/2/4)
//   Window_Descriptor: exponent (bits 7-3), mantissa (bits 2-0):
//        window = 2^(10 + exponent) * (1 + mantissa / 8); window log above 31 is refused, and so
//        is a window above 128 MiB (libzstd's streaming decoder, Java's, refuses those).
//   Dictionary_ID: must be 0 (Kafka never uses a dictionary).
//   FCS with a 2-byte field is the value + 256. When present, the frame must decode to exactly it.
//   Checksum: low 32 bits of XXH64(decoded frame, seed 0).
// Block:
//   | header (3): bit 0 last block | bits 2-1 type | bits 23-3 size | content |
//   Raw (0): `size` bytes copied. RLE (1): one byte repeated `size` times. Compressed (2): `size`
//   bytes of literals section + sequences section. Reserved (3): refused.
//   Every block's size and decoded size is at most min(window, 128 KiB).
// Skippable frames (magic 0x184D2A50-0x184D2A5F, size (4), data) are skipped; frames follow one
// another to the end of the area, which must hold at least one zstd frame.
// Compressed blocks are checked as libzstd checks them: literals headers and sizes, Huffman and
// FSE tables (zstdEntropy.ts), symbol compression modes, repeat offsets, every offset within the
// frame's output and the window, literals never overrun, the sequences bitstream consumed
// exactly. One deliberate difference: every Huffman stream must be consumed exactly (the spec's
// rule), where libzstd's fast 4-stream decoder only counts its output, so a few corrupt frames
// libzstd decodes (to garbage) are refused here.
//
// Decoding: pass 1 walks every frame and block header (no decoding), checks the structure and
// refuses with DecompressionLimitError as soon as declared sizes or raw/RLE blocks pass the limit
// (an RLE frame is a perfect bomb: 4 input bytes per 128 KiB). Pass 2 decodes into one growing
// buffer (exactly sized when every frame declares its size), checking each write against the
// block maximum and the limit, so work and memory stay within about the limit.
import { DecompressionLimitError } from './compressionErrors.js';
import { SHORT_COPY_BYTES, copyMatch } from './matchCopy.js';
import { xxh64Low32 } from './xxhash.js';
import { BackwardBitReader, buildFseTable, corrupt, decodeHuffmanStream, readFseTable, readHuffmanTable, rleFseTable, type FseTable, type HuffmanTable } from './zstdEntropy.js';

const CODEC = 'zstd';

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC = 0x184d2a50;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;

const MAX_BLOCK_BYTES = 128 * 1024;
const MAX_WINDOW_LOG = 31;
/** libzstd's streaming default (ZSTD_WINDOWLOG_LIMIT_DEFAULT 27, plus one). */
const MAX_WINDOW_BYTES = 2 ** 27 + 1;
const MIN_COMPRESSED_BLOCK_BYTES = 2;
const MIN_LITERALS_FOR_4_STREAMS = 6;

const BLOCK_RAW = 0;
const BLOCK_RLE = 1;
const BLOCK_COMPRESSED = 2;

// Sequence codes (RFC 8878 3.1.1.3.2.1.1): baseline and extra bits of each literals length and
// match length code; an offset code is itself the number of extra bits.
const LITERALS_LENGTH_BASE = Uint32Array.of(
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536);
const LITERALS_LENGTH_BITS = Uint8Array.of(
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
const MATCH_LENGTH_BASE = Uint32Array.of(
  3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
  35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387, 32771, 65539);
const MATCH_LENGTH_BITS = Uint8Array.of(
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
/** 2^code: the base of each offset code's Offset_Value (a lookup; Math.pow is slow here). */
const OFFSET_BASE = Float64Array.from({ length: 32 }, (_, code) => 2 ** code);
const MAX_LITERALS_LENGTH_CODE = 35;
const MAX_MATCH_LENGTH_CODE = 52;
const MAX_OFFSET_CODE = 31;
const MAX_LITERALS_LENGTH_ACCURACY_LOG = 9;
const MAX_MATCH_LENGTH_ACCURACY_LOG = 9;
const MAX_OFFSET_ACCURACY_LOG = 8;

// Predefined_Mode distributions (RFC 8878 3.1.1.3.2.2).
const DEFAULT_LITERALS_LENGTH_TABLE = buildFseTable([
  4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1], 36, 6);
const DEFAULT_MATCH_LENGTH_TABLE = buildFseTable([
  1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1], 53, 6);
const DEFAULT_OFFSET_TABLE = buildFseTable([
  1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1], 29, 5);

/** Decoded literals of the current block when they are not raw bytes of the input. */
const literalScratch = new Uint8Array(MAX_BLOCK_BYTES);

interface FrameHeader {
  flagsAt: number;
  hasChecksum: boolean;
  singleSegment: boolean;
  /** Window size; for a single-segment frame, the content size. */
  windowBytes: number;
  /** Declared content size, or null; Infinity when past 2^53. */
  contentBytes: number | null;
  blocksStart: number;
}

interface BlockPlan {
  type: number;
  start: number;
  end: number;
  /** Decoded size of raw and RLE blocks; 0 for compressed ones (known only by decoding). */
  decodedBytes: number;
}

interface FramePlan {
  header: FrameHeader;
  blockMaximumBytes: number;
  blocks: BlockPlan[];
  /** Exact decoded size of the raw and RLE blocks. */
  rawBytes: number;
  compressedBlocks: number;
  /** Position of the checksum, or -1 without one. */
  checksumAt: number;
}

function readFrameHeader(data: Uint8Array, position: number): FrameHeader | string {
  if (position + 5 > data.length) return `frame header at byte ${position} cut short`;
  const flags = data[position + 4]!;
  if ((flags & 0x08) !== 0) return `frame at byte ${position} sets the reserved header bit`;
  const singleSegment = (flags & 0x20) !== 0;
  const fcsFlag = flags >>> 6;
  const dictionaryIdBytes = [0, 1, 2, 4][flags & 3]!;
  const contentSizeBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  const blocksStart = position + 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
  if (blocksStart + 3 > data.length) return `frame at byte ${position} cut short`;
  let p = position + 5;
  let windowBytes = 0;
  if (!singleSegment) {
    const descriptor = data[p++]!;
    const windowLog = 10 + (descriptor >>> 3);
    if (windowLog > MAX_WINDOW_LOG) return `frame at byte ${position} has window log ${windowLog}, above ${MAX_WINDOW_LOG}`;
    const base = 2 ** windowLog;
    windowBytes = base + (base / 8) * (descriptor & 7);
  }
  let dictionaryId = 0;
  for (let i = 0; i < dictionaryIdBytes; i++) dictionaryId += data[p + i]! * 2 ** (8 * i);
  p += dictionaryIdBytes;
  if (dictionaryId !== 0) return `frame at byte ${position} needs dictionary ${dictionaryId} (Kafka never uses one)`;
  let contentBytes: number | null = null;
  if (contentSizeBytes === 1) contentBytes = data[p]!;
  else if (contentSizeBytes === 2) contentBytes = (data[p]! | (data[p + 1]! << 8)) + 256;
  else if (contentSizeBytes === 4) contentBytes = readU32(data, p);
  else if (contentSizeBytes === 8) {
    const size = readU32(data, p + 4) * 0x100000000 + readU32(data, p);
    contentBytes = Number.isSafeInteger(size) ? size : Infinity;
  }
  if (singleSegment) windowBytes = contentBytes!;
  return { flagsAt: position + 4, hasChecksum: (flags & 0x04) !== 0, singleSegment, windowBytes, contentBytes, blocksStart };
}

/**
 * Pass 1: every frame's header and block headers, checked, with the limit applied to what is
 * known without decoding. Throws CorruptCompressionError or DecompressionLimitError.
 */
function planFrames(data: Uint8Array, maxOutputBytes: number): FramePlan[] {
  if (data.length === 0) throw corrupt('the area is empty');
  const frames: FramePlan[] = [];
  let minimumBytes = 0;
  let position = 0;
  const limitError = (detail: string) => new DecompressionLimitError(CODEC, maxOutputBytes, detail);
  while (position < data.length) {
    if (position + 4 > data.length) throw corrupt(`${data.length - position} stray bytes after the last frame`);
    const magic = readU32(data, position);
    if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (position + 8 > data.length) throw corrupt(`skippable frame at byte ${position} cut short`);
      const size = readU32(data, position + 4);
      if (size > data.length - position - 8) throw corrupt(`skippable frame of ${size} bytes at byte ${position} runs past the area`);
      position += 8 + size;
      continue;
    }
    if (magic !== FRAME_MAGIC) throw corrupt(`magic 0x${magic.toString(16)} at byte ${position} is not a zstd frame`);
    const header = readFrameHeader(data, position);
    if (typeof header === 'string') throw corrupt(header);
    if (header.contentBytes !== null && header.contentBytes > maxOutputBytes - minimumBytes) {
      throw limitError(`frame at byte ${position} declares ${header.contentBytes} bytes with ${maxOutputBytes - minimumBytes} left`);
    }
    if (header.windowBytes > MAX_WINDOW_BYTES) throw corrupt(`frame at byte ${position} needs a window of ${header.windowBytes} bytes (libzstd's streaming decoder refuses more than ${MAX_WINDOW_BYTES})`);
    const blockMaximumBytes = Math.min(header.windowBytes, MAX_BLOCK_BYTES);
    const blocks: BlockPlan[] = [];
    let rawBytes = 0;
    let compressedBlocks = 0;
    position = header.blocksStart;
    for (;;) {
      if (position + 3 > data.length) throw corrupt(`block header at byte ${position} cut short`);
      const blockHeader = data[position]! | (data[position + 1]! << 8) | (data[position + 2]! << 16);
      const last = (blockHeader & 1) !== 0;
      const type = (blockHeader >>> 1) & 3;
      const size = blockHeader >>> 3;
      const start = position + 3;
      if (type === 3) throw corrupt(`block at byte ${position} has the reserved block type`);
      if (size > blockMaximumBytes) throw corrupt(`block at byte ${position} of ${size} bytes exceeds the frame's ${blockMaximumBytes} byte block maximum`);
      const contentBytes = type === BLOCK_RLE ? 1 : size;
      if (contentBytes > data.length - start) throw corrupt(`block at byte ${position} runs past the area`);
      if (type === BLOCK_COMPRESSED) {
        if (size < MIN_COMPRESSED_BLOCK_BYTES) throw corrupt(`compressed block at byte ${position} has only ${size} bytes`);
        compressedBlocks++;
      } else {
        rawBytes += size;
        if (header.contentBytes !== null && rawBytes > header.contentBytes) throw corrupt(`frame at byte ${header.flagsAt - 4} decodes past its declared ${header.contentBytes} bytes`);
        if (rawBytes > maxOutputBytes - minimumBytes) throw limitError(`raw and RLE blocks of the frame at byte ${header.flagsAt - 4} pass the limit`);
      }
      blocks.push({ type, start, end: start + contentBytes, decodedBytes: type === BLOCK_COMPRESSED ? 0 : size });
      position = start + contentBytes;
      if (last) break;
    }
    let checksumAt = -1;
    if (header.hasChecksum) {
      if (position + 4 > data.length) throw corrupt(`content checksum at byte ${position} cut short`);
      checksumAt = position;
      position += 4;
    }
    if (header.contentBytes !== null && header.contentBytes > rawBytes + compressedBlocks * blockMaximumBytes) {
      throw corrupt(`frame at byte ${header.flagsAt - 4} declares ${header.contentBytes} bytes, more than its blocks can hold`);
    }
    minimumBytes += header.contentBytes ?? rawBytes;
    frames.push({ header, blockMaximumBytes, blocks, rawBytes, compressedBlocks, checksumAt });
  }
  if (frames.length === 0) throw corrupt('the area holds no zstd frame');
  return frames;
}

/** The output, growing by doubling up to the limit. */
class Output {
  bytes: Buffer;
  length = 0;

  constructor(initialBytes: number, private readonly maxOutputBytes: number) {
    this.bytes = Buffer.allocUnsafe(initialBytes);
  }

  /** Makes room for min(total, limit) bytes. */
  reserve(totalBytes: number): void {
    const wanted = Math.min(totalBytes, this.maxOutputBytes);
    if (wanted <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.min(this.maxOutputBytes, Math.max(wanted, this.bytes.length * 2)));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  result(): Buffer {
    if (this.length === this.bytes.length) return this.bytes;
    if (this.length >= this.bytes.length / 2) return this.bytes.subarray(0, this.length);
    const exact = Buffer.allocUnsafe(this.length);
    this.bytes.copy(exact, 0, 0, this.length);
    return exact;
  }
}

/** What a compressed block inherits from the earlier blocks of its frame. */
interface FrameState {
  frameStart: number;
  /** frameStart + the declared content size, or null when the frame does not declare it. */
  declaredEnd: number | null;
  windowBytes: number;
  blockMaximumBytes: number;
  maxOutputBytes: number;
  repeatOffsets: [number, number, number];
  huffman: HuffmanTable | null;
  literalsLengthTable: FseTable | null;
  offsetTable: FseTable | null;
  matchLengthTable: FseTable | null;
}

/** Decodes the zstd frames in `data` into a new Buffer of at most maxOutputBytes. */
export function decodeZstdFrames(data: Uint8Array, maxOutputBytes: number): Buffer {
  const frames = planFrames(data, maxOutputBytes);
  let declaredBytes = 0;
  let boundBytes = 0;
  let allDeclared = true;
  for (const frame of frames) {
    if (frame.header.contentBytes === null) {
      allDeclared = false;
      boundBytes += frame.rawBytes + frame.compressedBlocks * frame.blockMaximumBytes;
    } else {
      declaredBytes += frame.header.contentBytes;
      boundBytes += frame.header.contentBytes;
    }
  }
  const initialBytes = allDeclared ? declaredBytes : Math.min(maxOutputBytes, boundBytes, Math.max(16 * 1024, 4 * data.length));
  const output = new Output(initialBytes, maxOutputBytes);
  for (const frame of frames) {
    const contentBytes = frame.header.contentBytes;
    const state: FrameState = {
      frameStart: output.length,
      declaredEnd: contentBytes === null ? null : output.length + contentBytes,
      windowBytes: frame.header.windowBytes,
      blockMaximumBytes: frame.blockMaximumBytes,
      maxOutputBytes,
      repeatOffsets: [1, 4, 8],
      huffman: null,
      literalsLengthTable: null,
      offsetTable: null,
      matchLengthTable: null,
    };
    for (const block of frame.blocks) {
      if (block.type === BLOCK_COMPRESSED) {
        output.length = decodeCompressedBlock(data, block.start, block.end, output, state);
      } else {
        if (output.length + block.decodedBytes > maxOutputBytes) throw new DecompressionLimitError(CODEC, maxOutputBytes, `block at byte ${block.start - 3} passes the limit`);
        output.reserve(output.length + block.decodedBytes);
        if (block.type === BLOCK_RAW) output.bytes.set(data.subarray(block.start, block.end), output.length);
        else output.bytes.fill(data[block.start]!, output.length, output.length + block.decodedBytes);
        output.length += block.decodedBytes;
      }
      if (contentBytes !== null && output.length - state.frameStart > contentBytes) {
        throw corrupt(`frame at byte ${frame.header.flagsAt - 4} decodes past its declared ${contentBytes} bytes`);
      }
    }
    const frameBytes = output.length - state.frameStart;
    if (contentBytes !== null && frameBytes !== contentBytes) {
      throw corrupt(`frame at byte ${frame.header.flagsAt - 4} decodes to ${frameBytes} bytes, its header declares ${contentBytes}`);
    }
    if (frame.checksumAt >= 0 && xxh64Low32(output.bytes, state.frameStart, output.length) !== readU32(data, frame.checksumAt)) {
      throw corrupt(`content checksum at byte ${frame.checksumAt} does not match the decoded frame`);
    }
  }
  return output.result();
}

/**
 * Decodes the compressed block data[start, end) to the end of `output` and returns the new
 * output length. Every write is checked first against the block maximum, the frame's declared
 * size and the limit; the output grows as needed.
 */
function decodeCompressedBlock(data: Uint8Array, start: number, end: number, output: Output, state: FrameState): number {
  let op = output.length;
  let out: Uint8Array = output.bytes;
  const blockOutEnd = op + state.blockMaximumBytes;
  // The furthest this block may write; writes up to min(that, out.length) need no check.
  const writeLimit = Math.min(blockOutEnd, state.declaredEnd ?? Infinity, state.maxOutputBytes);
  let uncheckedEnd = Math.min(writeLimit, out.length);
  // Literals section.
  let ip = start;
  const first = data[ip]!;
  const literalsType = first & 3;
  const sizeFormat = (first >>> 2) & 3;
  let literals: Uint8Array;
  let literalsPosition: number;
  let literalsEnd: number;
  if (literalsType === 0 || literalsType === 1) {
    let headerBytes: number;
    let literalsBytes: number;
    if ((sizeFormat & 1) === 0) {
      headerBytes = 1;
      literalsBytes = first >>> 3;
    } else if (sizeFormat === 1) {
      headerBytes = 2;
      literalsBytes = (first >>> 4) + (data[ip + 1]! << 4);
    } else {
      headerBytes = 3;
      literalsBytes = (first >>> 4) + (data[ip + 1]! << 4) + (data[ip + 2]! << 12);
    }
    if (headerBytes > end - ip) throw corrupt(`literals header at byte ${ip} cut short`);
    if (literalsBytes > state.blockMaximumBytes) throw corrupt(`block at byte ${start - 3} has ${literalsBytes} literals, above its block maximum`);
    ip += headerBytes;
    if (literalsType === 0) {
      if (literalsBytes > end - ip) throw corrupt(`raw literals at byte ${ip} run past their block`);
      literals = data;
      literalsPosition = ip;
      literalsEnd = ip + literalsBytes;
      ip += literalsBytes;
    } else {
      if (ip >= end) throw corrupt(`RLE literals at byte ${ip} cut short`);
      literals = literalScratch;
      literalScratch.fill(data[ip]!, 0, literalsBytes);
      literalsPosition = 0;
      literalsEnd = literalsBytes;
      ip += 1;
    }
  } else {
    if (end - start < 5) throw corrupt(`compressed literals header at byte ${ip} cut short`);
    let headerBytes: number;
    let literalsBytes: number;
    let compressedBytes: number;
    const header = readU32(data, ip);
    if (sizeFormat <= 1) {
      headerBytes = 3;
      literalsBytes = (header >>> 4) & 0x3ff;
      compressedBytes = (header >>> 14) & 0x3ff;
    } else if (sizeFormat === 2) {
      headerBytes = 4;
      literalsBytes = (header >>> 4) & 0x3fff;
      compressedBytes = header >>> 18;
    } else {
      headerBytes = 5;
      literalsBytes = (header >>> 4) & 0x3ffff;
      compressedBytes = (header >>> 22) + (data[ip + 4]! << 10);
    }
    const streams = sizeFormat === 0 ? 1 : 4;
    if (literalsBytes > state.blockMaximumBytes) throw corrupt(`block at byte ${start - 3} has ${literalsBytes} literals, above its block maximum`);
    if (streams === 4 && literalsBytes < MIN_LITERALS_FOR_4_STREAMS) throw corrupt(`${literalsBytes} literals in 4 Huffman streams (at least ${MIN_LITERALS_FOR_4_STREAMS})`);
    if (compressedBytes > end - ip - headerBytes) throw corrupt(`compressed literals at byte ${ip} run past their block`);
    const sectionStart = ip + headerBytes;
    const sectionEnd = sectionStart + compressedBytes;
    let streamsStart = sectionStart;
    if (literalsType === 2) {
      const description = readHuffmanTable(data, sectionStart, sectionEnd);
      state.huffman = description.table;
      streamsStart = description.next;
    } else if (state.huffman === null) {
      throw corrupt(`treeless literals at byte ${ip} without an earlier Huffman table in the frame`);
    }
    const table = state.huffman!;
    if (streams === 1) {
      decodeHuffmanStream(data, streamsStart, sectionEnd, table, literalScratch, 0, literalsBytes);
    } else {
      if (sectionEnd - streamsStart < 10) throw corrupt(`4 Huffman streams at byte ${streamsStart} in fewer than 10 bytes`);
      const stream1 = streamsStart + 6;
      const stream2 = stream1 + (data[streamsStart]! | (data[streamsStart + 1]! << 8));
      const stream3 = stream2 + (data[streamsStart + 2]! | (data[streamsStart + 3]! << 8));
      const stream4 = stream3 + (data[streamsStart + 4]! | (data[streamsStart + 5]! << 8));
      if (stream4 >= sectionEnd) throw corrupt(`Huffman jump table at byte ${streamsStart} points past its literals`);
      const segment = (literalsBytes + 3) >>> 2;
      decodeHuffmanStream(data, stream1, stream2, table, literalScratch, 0, segment);
      decodeHuffmanStream(data, stream2, stream3, table, literalScratch, segment, segment);
      decodeHuffmanStream(data, stream3, stream4, table, literalScratch, 2 * segment, segment);
      decodeHuffmanStream(data, stream4, sectionEnd, table, literalScratch, 3 * segment, literalsBytes - 3 * segment);
    }
    literals = literalScratch;
    literalsPosition = 0;
    literalsEnd = literalsBytes;
    ip = sectionEnd;
  }

  // Sequences section.
  if (ip >= end) throw corrupt(`sequences section of the block at byte ${start - 3} missing`);
  let sequenceCount = data[ip++]!;
  if (sequenceCount >= 128) {
    if (sequenceCount === 255) {
      if (ip + 2 > end) throw corrupt(`sequence count at byte ${ip - 1} cut short`);
      sequenceCount = data[ip]! + (data[ip + 1]! << 8) + 0x7f00;
      ip += 2;
    } else {
      if (ip >= end) throw corrupt(`sequence count at byte ${ip - 1} cut short`);
      sequenceCount = ((sequenceCount - 128) << 8) + data[ip++]!;
    }
  }
  if (sequenceCount === 0) {
    if (ip !== end) throw corrupt(`${end - ip} bytes after a sequences section without sequences at byte ${ip}`);
    return copyLiterals(literals, literalsPosition, literalsEnd, output, op, blockOutEnd, state, start);
  }
  if (ip >= end) throw corrupt(`symbol compression modes at byte ${ip} missing`);
  const modes = data[ip++]!;
  if ((modes & 3) !== 0) throw corrupt(`symbol compression modes at byte ${ip - 1} set reserved bits`);
  let chosen = sequenceTable((modes >>> 6) & 3, data, ip, end, state.literalsLengthTable, DEFAULT_LITERALS_LENGTH_TABLE, MAX_LITERALS_LENGTH_CODE, MAX_LITERALS_LENGTH_ACCURACY_LOG, 'literals length');
  const literalsLengthTable = chosen.table;
  chosen = sequenceTable((modes >>> 4) & 3, data, chosen.next, end, state.offsetTable, DEFAULT_OFFSET_TABLE, MAX_OFFSET_CODE, MAX_OFFSET_ACCURACY_LOG, 'offset');
  const offsetTable = chosen.table;
  chosen = sequenceTable((modes >>> 2) & 3, data, chosen.next, end, state.matchLengthTable, DEFAULT_MATCH_LENGTH_TABLE, MAX_MATCH_LENGTH_CODE, MAX_MATCH_LENGTH_ACCURACY_LOG, 'match length');
  const matchLengthTable = chosen.table;
  state.literalsLengthTable = literalsLengthTable;
  state.offsetTable = offsetTable;
  state.matchLengthTable = matchLengthTable;

  const reader = new BackwardBitReader(data, chosen.next, end, 'sequences stream');
  let literalsLengthState = reader.read(literalsLengthTable.accuracyLog);
  let offsetState = reader.read(offsetTable.accuracyLog);
  let matchLengthState = reader.read(matchLengthTable.accuracyLog);
  let [repeat1, repeat2, repeat3] = state.repeatOffsets;
  const frameStart = state.frameStart;
  for (let i = 0; i < sequenceCount; i++) {
    const offsetCode = offsetTable.symbol[offsetState]!;
    const matchLengthCode = matchLengthTable.symbol[matchLengthState]!;
    const literalsLengthCode = literalsLengthTable.symbol[literalsLengthState]!;
    const offsetValue = OFFSET_BASE[offsetCode]! + reader.read(offsetCode);
    const matchLength = MATCH_LENGTH_BASE[matchLengthCode]! + reader.read(MATCH_LENGTH_BITS[matchLengthCode]!);
    const literalsLength = LITERALS_LENGTH_BASE[literalsLengthCode]! + reader.read(LITERALS_LENGTH_BITS[literalsLengthCode]!);
    if (i + 1 < sequenceCount) {
      literalsLengthState = literalsLengthTable.base[literalsLengthState]! + reader.read(literalsLengthTable.bits[literalsLengthState]!);
      matchLengthState = matchLengthTable.base[matchLengthState]! + reader.read(matchLengthTable.bits[matchLengthState]!);
      offsetState = offsetTable.base[offsetState]! + reader.read(offsetTable.bits[offsetState]!);
    }
    if (reader.position < 0) throw corrupt(`sequences stream of the block at byte ${start - 3} over-read`);

    let offset: number;
    if (offsetValue > 3) {
      offset = offsetValue - 3;
      repeat3 = repeat2;
      repeat2 = repeat1;
      repeat1 = offset;
    } else {
      const index = offsetValue - 1 + (literalsLength === 0 ? 1 : 0);
      if (index === 0) {
        offset = repeat1;
      } else if (index === 1) {
        offset = repeat2;
        repeat2 = repeat1;
        repeat1 = offset;
      } else {
        offset = index === 2 ? repeat3 : repeat1 - 1;
        if (offset === 0) throw corrupt(`repeat offset 1 minus 1 is 0 in the block at byte ${start - 3}`);
        repeat3 = repeat2;
        repeat2 = repeat1;
        repeat1 = offset;
      }
    }

    if (literalsLength > literalsEnd - literalsPosition) throw corrupt(`a sequence of the block at byte ${start - 3} takes more literals than the block has`);
    const sequenceEnd = op + literalsLength + matchLength;
    if (sequenceEnd > uncheckedEnd) {
      checkWrite(sequenceEnd, blockOutEnd, state, start);
      output.length = op;
      output.reserve(sequenceEnd);
      out = output.bytes;
      uncheckedEnd = Math.min(writeLimit, out.length);
    }
    if (literalsLength < SHORT_COPY_BYTES) {
      const literalsStop = literalsPosition + literalsLength;
      while (literalsPosition < literalsStop) out[op++] = literals[literalsPosition++]!;
    } else {
      out.set(literals.subarray(literalsPosition, literalsPosition + literalsLength), op);
      literalsPosition += literalsLength;
      op += literalsLength;
    }
    if (offset > op - frameStart) throw corrupt(`offset ${offset} in the block at byte ${start - 3} reaches before the start of its frame`);
    if (offset > state.windowBytes) throw corrupt(`offset ${offset} in the block at byte ${start - 3} is beyond the ${state.windowBytes} byte window`);
    op = copyMatch(out, op, offset, matchLength);
  }
  if (reader.position !== 0) throw corrupt(`sequences stream of the block at byte ${start - 3} has ${reader.position} bits left over`);
  state.repeatOffsets = [repeat1, repeat2, repeat3];
  return copyLiterals(literals, literalsPosition, literalsEnd, output, op, blockOutEnd, state, start);
}

/** A block's output may not pass its block maximum, its frame's declared size, or the limit. */
function checkWrite(writeEnd: number, blockOutEnd: number, state: FrameState, blockStart: number): void {
  if (writeEnd > blockOutEnd) throw corrupt(`block at byte ${blockStart - 3} decodes to more than its ${state.blockMaximumBytes} byte maximum`);
  if (state.declaredEnd !== null && writeEnd > state.declaredEnd) throw corrupt(`frame decodes past its declared ${state.declaredEnd - state.frameStart} bytes`);
  if (writeEnd > state.maxOutputBytes) throw new DecompressionLimitError(CODEC, state.maxOutputBytes, `block at byte ${blockStart - 3} passes the limit`);
}

function copyLiterals(literals: Uint8Array, from: number, to: number, output: Output, op: number, blockOutEnd: number, state: FrameState, blockStart: number): number {
  const end = op + (to - from);
  checkWrite(end, blockOutEnd, state, blockStart);
  if (end > output.bytes.length) {
    output.length = op;
    output.reserve(end);
  }
  output.bytes.set(literals.subarray(from, to), op);
  return end;
}

/** The FSE table a symbol compression mode selects; reads its description when there is one. */
function sequenceTable(mode: number, data: Uint8Array, ip: number, end: number, previous: FseTable | null, predefined: FseTable, maxSymbol: number, maxAccuracyLog: number, what: string): { table: FseTable; next: number } {
  switch (mode) {
    case 0:
      return { table: predefined, next: ip };
    case 1: {
      if (ip >= end) throw corrupt(`${what} RLE symbol at byte ${ip} missing`);
      const symbol = data[ip]!;
      if (symbol > maxSymbol) throw corrupt(`${what} RLE symbol ${symbol} above ${maxSymbol}`);
      return { table: rleFseTable(symbol), next: ip + 1 };
    }
    case 2:
      return readFseTable(data, ip, end, maxSymbol, maxAccuracyLog, what);
    default:
      if (previous === null) throw corrupt(`${what} table repeated without an earlier one in the frame`);
      return { table: previous, next: ip };
  }
}

/** The exact decoded size when every frame declares its content size, else null. Never throws. */
export function zstdDeclaredBytes(data: Uint8Array): number | null {
  let frames: FramePlan[];
  try {
    frames = planFrames(data, Number.MAX_SAFE_INTEGER);
  } catch {
    return null;
  }
  let total = 0;
  for (const frame of frames) {
    if (frame.header.contentBytes === null) return null;
    total += frame.header.contentBytes;
  }
  return total;
}

function readU32(data: Uint8Array, at: number): number {
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
}
