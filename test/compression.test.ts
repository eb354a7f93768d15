// Compression codecs: every codec Kafka clients write decodes (kcat's captured batches are checked
// in recordBatch.test.ts), snappy and lz4 round-trip, zstd encoding is refused by name, bad input
// is a CorruptCompressionError and oversized output a DecompressionLimitError, never a crash or a
// silent short result. compressionStrict.test.ts checks each decoder in depth.
import { gzipSync } from 'node:zlib';
import lz4 from 'lz4js';
import snappy from 'snappyjs';
import { describe, expect, it } from 'vitest';
import { CompressionCodec, CorruptCompressionError, DecompressionLimitError, MAX_DECOMPRESSED_BYTES, UnsupportedCompressionError, compress, decompress } from '../segments/compression.js';
import { xxh32 } from '../segments/xxhash.js';
import { SeededRandom } from './support/random.js';

const sample = Buffer.concat([Buffer.from('tidelog '.repeat(2000)), new SeededRandom(7).bytes(4096)]);

describe('compression codecs', () => {
  for (const codec of ['gzip', 'snappy', 'lz4'] as const) {
    it(`${codec}: compress then decompress gives the bytes back`, () => {
      const packed = compress(CompressionCodec[codec], sample);
      expect(packed.length).toBeLessThan(sample.length);
      expect(decompress(CompressionCodec[codec], packed).equals(sample)).toBe(true);
    });
  }

  it('snappy in the xerial framing Java clients write (several blocks) decodes to the concatenation', () => {
    const blocks = [sample.subarray(0, 5000), sample.subarray(5000)].map((part) => Buffer.from(snappy.compress(part)));
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const framed = Buffer.concat([header, ...blocks.flatMap((block) => {
      const length = Buffer.alloc(4);
      length.writeInt32BE(block.length);
      return [length, block];
    })]);
    expect(decompress(CompressionCodec.snappy, framed).equals(sample)).toBe(true);
  });

  it('a xerial block running past the area is a CorruptCompressionError', () => {
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const length = Buffer.alloc(4);
    length.writeInt32BE(1000);
    expect(() => decompress(CompressionCodec.snappy, Buffer.concat([header, length, Buffer.alloc(10)]))).toThrow(/snappy records area does not decode: xerial block of 1000 bytes/);
  });

  it('garbage under each codec is a CorruptCompressionError naming the codec', () => {
    const garbage = new SeededRandom(11).bytes(256);
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      let error: unknown = null;
      try {
        decompress(CompressionCodec[codec], garbage);
      } catch (caught) {
        error = caught;
      }
      expect(error, codec).toBeInstanceOf(CorruptCompressionError);
      expect((error as Error).message).toContain(codec);
    }
  });

  it('an lz4 frame that claims more than the limit is a DecompressionLimitError before allocating it', () => {
    // Frame descriptor with a content size field of 1 GiB.
    const frame = Buffer.from(lz4.compress(sample));
    const flags = frame[4]!;
    const withSize = Buffer.concat([frame.subarray(0, 4), Buffer.from([flags | 0x08, frame[5]!]), Buffer.alloc(8), frame.subarray(7)]);
    withSize.writeBigUInt64LE(BigInt(MAX_DECOMPRESSED_BYTES) * 4n, 6);
    // The header checksum covers the new descriptor bytes.
    withSize[14] = (xxh32(withSize, 4, 14) >>> 8) & 0xff;
    expect(() => decompress(CompressionCodec.lz4, withSize)).toThrow(DecompressionLimitError);
  });

  it('gzip output is bounded by the limit', () => {
    const bomb = gzipSync(Buffer.alloc(4 * 1024 * 1024));
    expect(() => decompress(CompressionCodec.gzip, bomb, 1024 * 1024)).toThrow(DecompressionLimitError);
    expect(decompress(CompressionCodec.gzip, bomb, 4 * 1024 * 1024).length).toBe(4 * 1024 * 1024);
  });

  it('zstd encoding is refused with UnsupportedCompressionError (decode only)', () => {
    expect(() => compress(CompressionCodec.zstd, sample)).toThrow(UnsupportedCompressionError);
  });
});
