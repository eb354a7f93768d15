// Compression codecs of record batch v2 (attribute bits 0-2).
//
// The broker stores and serves compressed batches as the client sent them; it only needs the
// records inside for inspection, exact timestamp lookups and compaction. gzip comes with Node's
// zlib. snappy, lz4 and zstd batches are stored and served unchanged; decoding their records
// reports UnsupportedCompressionError until a codec library is added.
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

export function decompress(codec: number, data: Uint8Array): Buffer {
  switch (codec) {
    case CompressionCodec.none:
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    case CompressionCodec.gzip:
      return gunzipSync(data, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
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
    default:
      throw new UnsupportedCompressionError(compressionName(codec) ?? `codec id ${codec}`);
  }
}
