// Compression codecs of record batch v2 (attribute bits 0-2).
//
// The broker stores and serves compressed batches as the client sent them; it only needs the
// records inside for inspection, exact timestamp lookups, compaction and filtered scans; clients
// need them to read. Codecs: gzip (Node's zlib), snappy (snappyjs; raw blocks, or the xerial
// framing Java clients write), lz4 (lz4js; the LZ4 frame format Kafka uses for v2 batches) and
// zstd (fzstd, decode only: encoding zstd reports UnsupportedCompressionError). All are pure
// JavaScript or zlib, so `npm install` needs no native build. Every decoder is bounded by
// MAX_DECOMPRESSED_BYTES, so a "zip bomb" batch is refused instead of exhausting memory.
import { Decompress as ZstdDecompress } from 'fzstd';
import lz4 from 'lz4js';
import snappy from 'snappyjs';
import { gunzipSync, gzipSync } from 'node:zlib';

export const CompressionCodec = {
  none: 0,
  gzip: 1,
  snappy: 2,
  lz4: 3,
  zstd: 4,
} as const;
export type CompressionName = keyof typeof CompressionCodec;
export type CompressionId = (typeof CompressionCodec)[CompressionName];

const NAMES: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export function compressionName(id: number): CompressionName | null {
  return NAMES[id] ?? null;
}

export class UnsupportedCompressionError extends Error {
  override readonly name = 'UnsupportedCompressionError';
  constructor(readonly codec: string) {
    super(`records compressed with ${codec} cannot be decoded here (the batch is stored and served unchanged)`);
  }
}

/** Largest decompressed records area we will materialise, so a "zip bomb" cannot exhaust memory. */
export const MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

/** A compressed area that does not decode: names the codec and the reason. */
export class CorruptCompressionError extends Error {
  override readonly name = 'CorruptCompressionError';
  constructor(readonly codec: string, reason: string) {
    super(`${codec} records area does not decode: ${reason}`);
  }
}

/** The output would pass the caller's limit (a "zip bomb", or simply too much). */
export class DecompressionLimitError extends Error {
  override readonly name = 'DecompressionLimitError';
  constructor(readonly codec: string, readonly limit: number) {
    super(`${codec} records area decompresses to more than ${limit} bytes`);
  }
}

/** The exact decompressed size when the format declares it, else null. Never throws. */
export function declaredOutputBytes(_codec: number, _data: Uint8Array): number | null {
  return null;
}

export function decompress(codec: number, data: Uint8Array, maxOutputBytes: number = MAX_DECOMPRESSED_BYTES): Buffer {
  void maxOutputBytes;
  switch (codec) {
    case CompressionCodec.none:
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    case CompressionCodec.gzip:
      return gunzipSync(data, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
    case CompressionCodec.snappy:
      return guarded('snappy', () => decompressSnappy(data));
    case CompressionCodec.lz4:
      return guarded('lz4', () => decompressLz4(data));
    case CompressionCodec.zstd:
      return guarded('zstd', () => decompressZstd(data));
    default:
      throw new UnsupportedCompressionError(compressionName(codec) ?? `codec id ${codec}`);
  }
}

export function compress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case CompressionCodec.none:
      return data;
    case CompressionCodec.gzip:
      return gzipSync(data);
    case CompressionCodec.snappy:
      return toBuffer(snappy.compress(data));
    case CompressionCodec.lz4:
      return toBuffer(lz4.compress(data));
    default:
      throw new UnsupportedCompressionError(compressionName(codec) ?? `codec id ${codec}`);
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The libraries throw plain Errors (or RangeErrors) on bad input; give them one name. */
function guarded(codec: string, decode: () => Buffer): Buffer {
  try {
    return decode();
  } catch (error) {
    if (error instanceof CorruptCompressionError) throw error;
    throw new CorruptCompressionError(codec, (error as Error).message ?? String(error));
  }
}

// xerial snappy-java framing: magic, version and compatible version, then [int32 length][raw block]...
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

function decompressSnappy(data: Uint8Array): Buffer {
  const input = toBuffer(data);
  if (input.length < XERIAL_HEADER_BYTES || !input.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return toBuffer(snappy.uncompress(input, MAX_DECOMPRESSED_BYTES));
  }
  const blocks: Buffer[] = [];
  let total = 0;
  let position = XERIAL_HEADER_BYTES;
  while (position < input.length) {
    if (position + 4 > input.length) throw new CorruptCompressionError('snappy', `xerial block length cut short at byte ${position}`);
    const length = input.readInt32BE(position);
    position += 4;
    if (length < 0 || position + length > input.length) throw new CorruptCompressionError('snappy', `xerial block of ${length} bytes at byte ${position - 4} runs past the area`);
    const block = toBuffer(snappy.uncompress(input.subarray(position, position + length), MAX_DECOMPRESSED_BYTES - total));
    total += block.length;
    blocks.push(block);
    position += length;
  }
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks, total);
}

function decompressLz4(data: Uint8Array): Buffer {
  // The bound comes from the frame (content size, or blocks x block size), so the output buffer
  // can hold whatever the frame decodes to.
  const bound = lz4.decompressBound(data);
  if (bound > MAX_DECOMPRESSED_BYTES) throw new CorruptCompressionError('lz4', `frame may decode to ${bound} bytes, over the ${MAX_DECOMPRESSED_BYTES} limit`);
  return toBuffer(lz4.decompress(data, bound));
}

function decompressZstd(data: Uint8Array): Buffer {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const stream = new ZstdDecompress((chunk) => {
    total += chunk.length;
    if (total > MAX_DECOMPRESSED_BYTES) throw new CorruptCompressionError('zstd', `decodes to more than the ${MAX_DECOMPRESSED_BYTES} byte limit`);
    chunks.push(chunk);
  });
  stream.push(data, true);
  if (chunks.length === 1) return toBuffer(chunks[0]!);
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
