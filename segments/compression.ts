// Compression codecs of record batch v2 (attribute bits 0-2).
//
// The broker stores and serves compressed batches as the client sent them; it needs the records
// inside to validate a produced batch, for inspection, exact timestamp lookups, compaction and
// filtered scans; clients need them to read. Decoding is strict: a records area that librdkafka
// (kcat) or Kafka's Java client would fail to decompress fails here too, with
// CorruptCompressionError naming what is wrong. Decoding is bounded: output past the caller's
// `maxOutputBytes` is a DecompressionLimitError, raised before more than about that many bytes
// are allocated or produced, so a "zip bomb" costs at most the limit.
//
//   codec  id  decoder                                      encoder
//   none   0   the bytes themselves                         the bytes themselves
//   gzip   1   Node's zlib, maxOutputLength = the limit     zlib
//   snappy 2   snappyBlock.ts (raw, or xerial framing)      snappyjs (raw block)
//   lz4    3   lz4Frame.ts (one LZ4 frame)                  lz4Frame.ts over lz4js blocks
//   zstd   4   zstdFrame.ts + zstdEntropy.ts                none: UnsupportedCompressionError
// All pure JavaScript or zlib, so `npm install` needs no native build.
import snappy from 'snappyjs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CorruptCompressionError, DecompressionLimitError, UnsupportedCompressionError } from './compressionErrors.js';
import { decodeLz4Frame, encodeLz4Frame, lz4DeclaredBytes } from './lz4Frame.js';
import { decodeSnappy, snappyDeclaredBytes } from './snappyBlock.js';
import { decodeZstdFrames, zstdDeclaredBytes } from './zstdFrame.js';
import { INT32_MAX } from '../common/limits.js';

export { CorruptCompressionError, DecompressionLimitError, UnsupportedCompressionError } from './compressionErrors.js';

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

/** The default limit of decompress(): the largest records area read, compacted or scanned. */
export const MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

/** The largest limit decompress() takes (produce validation derives its limit from config). */
export const DECOMPRESSION_LIMIT_CEILING_BYTES = INT32_MAX;

/**
 * Decodes a records area compressed with `codec` (0-4). Throws UnsupportedCompressionError for
 * other codec ids, CorruptCompressionError for input that does not decode, and
 * DecompressionLimitError when the output would pass maxOutputBytes (an integer in
 * [0, DECOMPRESSION_LIMIT_CEILING_BYTES]; a RangeError otherwise).
 */
export function decompress(codec: number, data: Uint8Array, maxOutputBytes: number = MAX_DECOMPRESSED_BYTES): Buffer {
  if (!Number.isSafeInteger(maxOutputBytes) || maxOutputBytes < 0 || maxOutputBytes > DECOMPRESSION_LIMIT_CEILING_BYTES) {
    throw new RangeError(`maxOutputBytes must be an integer in [0, ${DECOMPRESSION_LIMIT_CEILING_BYTES}], got ${maxOutputBytes}`);
  }
  switch (codec) {
    case CompressionCodec.none:
      if (data.length > maxOutputBytes) throw new DecompressionLimitError('none', maxOutputBytes, `${data.length} uncompressed bytes`);
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    case CompressionCodec.gzip:
      return gunzipBounded(data, maxOutputBytes);
    case CompressionCodec.snappy:
      return decodeSnappy(data, maxOutputBytes);
    case CompressionCodec.lz4:
      return decodeLz4Frame(data, maxOutputBytes);
    case CompressionCodec.zstd:
      return decodeZstdFrames(data, maxOutputBytes);
    default:
      throw new UnsupportedCompressionError(compressionName(codec) ?? `codec id ${codec}`);
  }
}

function gunzipBounded(data: Uint8Array, maxOutputBytes: number): Buffer {
  let out: Buffer;
  try {
    // zlib refuses a maxOutputLength of 0; a limit of 0 is checked on the result instead.
    out = gunzipSync(data, { maxOutputLength: Math.max(1, maxOutputBytes) });
  } catch (error) {
    throw gzipErrorToCompressionError(error, maxOutputBytes);
  }
  if (out.length > maxOutputBytes) throw new DecompressionLimitError('gzip', maxOutputBytes, `decodes to ${out.length} bytes`);
  checkSingleGzipMember(data, out.length);
  return out;
}

/**
 * zlib (and the Java client) decode every gzip member of an area; librdkafka decodes only the
 * first and ignores the rest, so a batch of several members reads differently in each. A single
 * member ends with ISIZE, its decoded size mod 2^32: the area's last 4 bytes must be that. (Also
 * refuses padding after the member, which no client writes.) For the async zlib.gunzip path too.
 */
export function checkSingleGzipMember(data: Uint8Array, outputBytes: number): void {
  const isize = data.length < 4 ? -1 : (data[data.length - 4]! | (data[data.length - 3]! << 8) | (data[data.length - 2]! << 16) | (data[data.length - 1]! << 24)) >>> 0;
  if (isize !== outputBytes % 0x100000000) {
    throw new CorruptCompressionError('gzip', `the area does not end with its member's size (${outputBytes} bytes decoded): more than one gzip member, or bytes after it (librdkafka reads only the first member)`);
  }
}

/** zlib error codes that mean the input is not valid gzip (truncated, bad header, bad check). */
const ZLIB_CORRUPT_CODES = new Set(['Z_DATA_ERROR', 'Z_BUF_ERROR', 'Z_NEED_DICT', 'Z_STREAM_ERROR']);

/**
 * Maps what Node's zlib throws (gunzipSync) or reports (the async zlib.gunzip callback) when
 * inflating with `maxOutputLength: limit` to our errors: ERR_BUFFER_TOO_LARGE becomes
 * DecompressionLimitError, a zlib data error CorruptCompressionError; anything else (a bad
 * argument, out of memory) is returned as it was.
 */
export function gzipErrorToCompressionError(error: unknown, limit: number): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const code = (error as NodeJS.ErrnoException).code;
  if (error instanceof RangeError && code === 'ERR_BUFFER_TOO_LARGE') {
    return new DecompressionLimitError('gzip', limit, error.message);
  }
  if (code !== undefined && ZLIB_CORRUPT_CODES.has(code)) return new CorruptCompressionError('gzip', `${error.message} (${code})`);
  return error;
}

/**
 * The exact decompressed size when the format declares it, else null (also for input that does
 * not parse); cheap (headers only) and never throws. none: the length; gzip: null; snappy: the
 * preamble (xerial: the sum of its blocks' preambles); lz4: the frame's content size (not 0);
 * zstd: the sum of every frame's content size. A declared size is a claim: decompress() checks it.
 */
export function declaredOutputBytes(codec: number, data: Uint8Array): number | null {
  switch (codec) {
    case CompressionCodec.none:
      return data.length;
    case CompressionCodec.snappy:
      return snappyDeclaredBytes(data);
    case CompressionCodec.lz4:
      return lz4DeclaredBytes(data);
    case CompressionCodec.zstd:
      return zstdDeclaredBytes(data);
    default:
      return null;
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
      return encodeLz4Frame(data);
    default:
      throw new UnsupportedCompressionError(compressionName(codec) ?? `codec id ${codec}`);
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
