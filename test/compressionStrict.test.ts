// Strict, bounded decoding of every Kafka codec (segments/compression.ts and the codec files it
// uses). A records area a real client (librdkafka/kcat, Java) fails to decompress must fail here
// with CorruptCompressionError; an area that decodes past the caller's limit must fail with
// DecompressionLimitError before anything near its expansion is allocated or computed.
//
// Reference bytes come from the real implementations: batches captured from kcat and kafkajs
// (test/fixtures/batches) and frames written by the zstd and lz4 tools, i.e. libzstd and liblz4
// (test/fixtures/compression, made by make-fixtures.mjs). Every random choice is seeded.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzipSync } from 'node:zlib';
import { Decompress as FzstdDecompress } from 'fzstd';
import lz4js from 'lz4js';
import snappyjs from 'snappyjs';
import { describe, expect, it } from 'vitest';
import {
  CompressionCodec,
  CorruptCompressionError,
  DecompressionLimitError,
  DECOMPRESSION_LIMIT_CEILING_BYTES,
  UnsupportedCompressionError,
  checkSingleGzipMember,
  compress,
  declaredOutputBytes,
  decompress,
  gzipErrorToCompressionError,
} from '../segments/compression.js';
import { RECORDS_OFFSET, batchSizeOf, compressionOf, readBatchHeader } from '../segments/recordBatch.js';
import { xxh32, xxh64 } from '../segments/xxhash.js';
import { SeededRandom } from './support/random.js';

const MiB = 1024 * 1024;
const LIMIT = 16 * MiB;
const { gzip, snappy, lz4, zstd } = CompressionCodec;

const compressionFixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/compression/${name}`, import.meta.url));
const input = gunzipSync(compressionFixture('input.txt.gz'));

function batchFixture(name: string): { codec: number; area: Buffer } {
  const bytes = readFileSync(new URL(`./fixtures/batches/${name}`, import.meta.url));
  const header = readBatchHeader(bytes);
  return { codec: compressionOf(header.attributes), area: bytes.subarray(RECORDS_OFFSET, batchSizeOf(header)) };
}

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectCorrupt(run: () => unknown, pattern?: RegExp): void {
  const error = caught(run);
  expect(error).toBeInstanceOf(CorruptCompressionError);
  if (pattern !== undefined) expect((error as Error).message).toMatch(pattern);
}

/** Runs a bomb under LIMIT: DecompressionLimitError, and no allocation near its expansion. */
function expectBounded(codec: number, data: Uint8Array): DecompressionLimitError {
  const before = process.memoryUsage().arrayBuffers;
  const error = caught(() => decompress(codec, data, LIMIT));
  const grownBytes = process.memoryUsage().arrayBuffers - before;
  expect(error).toBeInstanceOf(DecompressionLimitError);
  expect(error).not.toBeInstanceOf(CorruptCompressionError);
  expect((error as DecompressionLimitError).limit).toBe(LIMIT);
  expect(grownBytes).toBeLessThan(2 * LIMIT);
  return error as DecompressionLimitError;
}

const u32le = (value: number): Buffer => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0);
  return bytes;
};

/** The kinds of data records areas hold, from incompressible to one repeated byte. */
function sampleData(random: SeededRandom, bytes: number): Buffer {
  const shape = random.int(0, 3);
  if (shape === 0) return random.bytes(bytes);
  if (shape === 1) return Buffer.from(Array.from({ length: bytes }, () => random.int(0, 3) * 17));
  if (shape === 2) return Buffer.alloc(bytes, random.int(0, 255));
  const words = ['kafka', 'tidelog', '{"id":', '"value"', ',', '}', ' ', 'record', '\n'];
  let text = '';
  while (text.length < bytes) text += random.pick(words) + (random.bool(0.1) ? String(random.int(0, 99999)) : '');
  return Buffer.from(text.slice(0, bytes));
}

describe('what real clients wrote decodes to the same bytes', () => {
  const fzstd = (area: Uint8Array): Buffer => {
    const chunks: Uint8Array[] = [];
    new FzstdDecompress((chunk) => chunks.push(chunk)).push(area, true);
    return Buffer.concat(chunks);
  };
  const lenient: Record<number, (area: Buffer) => Buffer> = {
    [gzip]: (area) => gunzipSync(area),
    [snappy]: (area) => Buffer.from(snappyjs.uncompress(area)),
    [lz4]: (area) => Buffer.from(lz4js.decompress(area)),
    [zstd]: fzstd,
  };
  for (const name of ['kcat-gzip.bin', 'kafkajs-gzip.bin', 'kcat-snappy.bin', 'kcat-lz4.bin', 'kcat-zstd.bin']) {
    it(`${name}: as the lenient library decoded it`, () => {
      const { codec, area } = batchFixture(name);
      expect(decompress(codec, area).equals(lenient[codec]!(area))).toBe(true);
    });
  }

  for (const name of ['zstd-3.zst', 'zstd-19-stream-nocheck.zst', 'zstd-22-long.zst', 'lz4-1.lz4', 'lz4-9-dependent.lz4', 'lz4-blockcrc-size.lz4', 'lz4-64k-nocrc.lz4']) {
    it(`${name} (written by the ${name.startsWith('zstd') ? 'zstd' : 'lz4'} tool) decodes to its input`, () => {
      expect(decompress(name.endsWith('.zst') ? zstd : lz4, compressionFixture(name)).equals(input)).toBe(true);
    });
  }

  it('zstd: two frames back to back decode to the concatenation', () => {
    const frames = Buffer.concat([compressionFixture('zstd-3.zst'), compressionFixture('zstd-19-stream-nocheck.zst')]);
    expect(decompress(zstd, frames).equals(Buffer.concat([input, input]))).toBe(true);
  });

  it('lz4: a second frame is refused (librdkafka fails on bytes after the first, Java ignores them)', () => {
    const frames = Buffer.concat([compressionFixture('lz4-1.lz4'), compressionFixture('lz4-9-dependent.lz4')]);
    expectCorrupt(() => decompress(lz4, frames), /bytes after the frame .* librdkafka refuses them/);
  });
});

describe('round trips (seed 20240611)', () => {
  const random = new SeededRandom(20240611);
  const sizes = [0, 1, 15, 200, 4096, 65535, 65536, 65537, 200_000, 300_000];

  it('gzip, snappy and lz4: compress() then decompress() gives the bytes back', () => {
    for (const bytes of sizes) {
      const data = sampleData(random, bytes);
      for (const codec of [gzip, snappy, lz4]) {
        expect(decompress(codec, compress(codec, data)).equals(data), `codec ${codec}, ${bytes} bytes`).toBe(true);
      }
    }
  });

  it('snappyjs.compress and lz4js.compress output decodes, and our lz4 frames decode with lz4js too', () => {
    for (const bytes of sizes) {
      const data = sampleData(random, bytes);
      expect(decompress(snappy, Buffer.from(snappyjs.compress(data))).equals(data), `snappyjs ${bytes}`).toBe(true);
      expect(decompress(lz4, Buffer.from(lz4js.compress(data))).equals(data), `lz4js ${bytes}`).toBe(true);
      expect(Buffer.from(lz4js.decompress(compress(lz4, data))).equals(data), `lz4js reads ours ${bytes}`).toBe(true);
    }
  });

  it('our lz4 frames are what Kafka clients write: independent 64 KiB blocks, no checksums', () => {
    const frame = compress(lz4, sampleData(random, 200_000));
    expect(frame.readUInt32LE(0)).toBe(0x184d2204);
    expect(frame[4]).toBe(0x60); // version 01, block independence (Java refuses dependent blocks)
    expect(frame[5]).toBe(0x40); // 64 KiB block maximum
  });

  it('our lz4 encoder stores a block whose lz4js encoding liblz4 would refuse (a match in its last 12 bytes)', () => {
    const block = Buffer.from('abcdefgh'.repeat(8192));
    block[65536 - 11] = 0x5a;
    const frame = compress(lz4, block);
    expect(decompress(lz4, frame).equals(block)).toBe(true);
    expect(frame.readUInt32LE(7)).toBe((0x80000000 | 65536) >>> 0); // stored as is
  });

  it('xerial snappy with many blocks decodes to the concatenation', () => {
    const data = sampleData(random, 150_000);
    expect(decompress(snappy, xerial(data, 32 * 1024)).equals(data)).toBe(true);
  });
});

function xerial(data: Buffer, blockBytes: number): Buffer {
  const parts = [Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])];
  for (let start = 0; start < data.length; start += blockBytes) {
    const block = Buffer.from(snappyjs.compress(data.subarray(start, start + blockBytes)));
    const length = Buffer.alloc(4);
    length.writeInt32BE(block.length);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

interface Sample {
  name: string;
  codec: number;
  bytes: Buffer;
  expected: Buffer;
  /** checksum: a change is detected or harmless; length: the output length is declared; none: neither. */
  integrity: 'checksum' | 'length' | 'none';
}

function samples(): Sample[] {
  const kcat = (name: string, integrity: Sample['integrity']): Sample => {
    const { codec, area } = batchFixture(name);
    return { name, codec, bytes: area, expected: decompress(codec, area), integrity };
  };
  const small = input.subarray(0, 40_000);
  return [
    { name: 'gzip', codec: gzip, bytes: gzipSync(small), expected: small, integrity: 'checksum' },
    { name: 'raw snappy', codec: snappy, bytes: Buffer.from(snappyjs.compress(small)), expected: small, integrity: 'length' },
    { name: 'xerial snappy', codec: snappy, bytes: xerial(small, 8192), expected: small, integrity: 'length' },
    { name: 'our lz4', codec: lz4, bytes: compress(lz4, small), expected: small, integrity: 'none' },
    { name: 'lz4 tool, content checksum', codec: lz4, bytes: compressionFixture('lz4-1.lz4'), expected: input, integrity: 'checksum' },
    { name: 'lz4 tool, block checksums', codec: lz4, bytes: compressionFixture('lz4-blockcrc-size.lz4'), expected: input, integrity: 'checksum' },
    { name: 'lz4 tool, dependent blocks', codec: lz4, bytes: compressionFixture('lz4-9-dependent.lz4'), expected: input, integrity: 'checksum' },
    { name: 'zstd tool, checksum', codec: zstd, bytes: compressionFixture('zstd-3.zst'), expected: input, integrity: 'checksum' },
    { name: 'zstd tool, no checksum', codec: zstd, bytes: compressionFixture('zstd-19-stream-nocheck.zst'), expected: input, integrity: 'none' },
    kcat('kcat-snappy.bin', 'length'),
    kcat('kcat-lz4.bin', 'none'),
    kcat('kcat-zstd.bin', 'none'),
  ];
}

/** Decodes; the only acceptable failures are our two errors. */
function decodeOrError(codec: number, bytes: Buffer): Buffer | CorruptCompressionError | DecompressionLimitError {
  try {
    return decompress(codec, bytes);
  } catch (error) {
    if (error instanceof CorruptCompressionError || error instanceof DecompressionLimitError) return error;
    throw error;
  }
}

describe('damaged input', () => {
  for (const sample of samples()) {
    it(`${sample.name}: every truncation is a CorruptCompressionError`, () => {
      expect(decompress(sample.codec, sample.bytes).equals(sample.expected)).toBe(true);
      const random = new SeededRandom(sample.bytes.length);
      const cuts = new Set([0, 1, 2, 4, 7, 8, 12, 16, 17, 20, sample.bytes.length - 1, sample.bytes.length - 2, sample.bytes.length - 4, sample.bytes.length - 5]);
      while (cuts.size < 40) cuts.add(random.int(0, sample.bytes.length - 1));
      for (const cut of cuts) {
        if (cut < 0 || cut >= sample.bytes.length) continue;
        const result = decodeOrError(sample.codec, sample.bytes.subarray(0, cut));
        // xerial snappy has no end marker: a cut between blocks is a shorter valid stream.
        if (sample.name === 'xerial snappy' && Buffer.isBuffer(result)) {
          expect(sample.expected.subarray(0, result.length).equals(result), `cut ${cut}`).toBe(true);
          continue;
        }
        expect(result, `cut at ${cut} of ${sample.bytes.length}`).toBeInstanceOf(CorruptCompressionError);
      }
    });

    it(`${sample.name}: single flipped bytes (seeded) fail with our errors or, without a checksum, decode harmlessly`, () => {
      const random = new SeededRandom(7919 + sample.bytes.length);
      for (let i = 0; i < 250; i++) {
        const damaged = Buffer.from(sample.bytes);
        const position = random.int(0, damaged.length - 1);
        damaged[position] = damaged[position]! ^ random.int(1, 255);
        const result = decodeOrError(sample.codec, damaged);
        if (!Buffer.isBuffer(result)) continue;
        if (sample.integrity === 'checksum') expect(result.equals(sample.expected), `flip at ${position}`).toBe(true);
        if (sample.integrity === 'length') expect(result.length, `flip at ${position}`).toBe(sample.expected.length);
      }
    });
  }
});

describe('bombs: DecompressionLimitError under a 16 MiB limit, nothing near the expansion allocated', () => {
  it('gzip: 64 members of 1 MiB of zeros', () => {
    const member = gzipSync(Buffer.alloc(MiB));
    expect(expectBounded(gzip, Buffer.concat(Array.from({ length: 64 }, () => member))).codec).toBe('gzip');
  });

  it('snappy: a raw preamble declaring 1 GiB', () => {
    const bomb = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61]);
    expect(expectBounded(snappy, bomb).message).toMatch(/declares 1073741824 bytes/);
  });

  it('snappy: 40 MiB of zeros compressed by snappyjs', () => {
    expectBounded(snappy, Buffer.from(snappyjs.compress(Buffer.alloc(40 * MiB))));
  });

  it('snappy: xerial blocks of 4 MiB of zeros each, 40 MiB in all', () => {
    expectBounded(snappy, xerial(Buffer.alloc(40 * MiB), 4 * MiB));
  });

  it('lz4: 64 MiB of zeros compressed by lz4js', () => {
    expect(expectBounded(lz4, Buffer.from(lz4js.compress(Buffer.alloc(64 * MiB)))).codec).toBe('lz4');
  });

  it('lz4: a frame whose content size field claims 1 GiB', () => {
    const frame = lz4Frame(0x60 | 0x08, 0x40, [storedBlock(Buffer.from('x'))], { contentBytes: 2 ** 30 });
    expect(expectBounded(lz4, frame).message).toMatch(/declares 1073741824 bytes/);
  });

  it('zstd: RLE blocks of 128 KiB declaring 1 GiB of content', () => {
    const blocks = Array.from({ length: 8192 }, (_, i) => zstdBlock(i === 8191, 1, 128 * 1024, Buffer.from([0x41])));
    const frame = zstdFrame(0x80, 0x38, u32le(2 ** 30), blocks); // 4-byte content size, 128 KiB window
    expect(expectBounded(zstd, frame).message).toMatch(/declares 1073741824 bytes/);
  });

  it('zstd: the same RLE blocks without a content size', () => {
    const blocks = Array.from({ length: 8192 }, (_, i) => zstdBlock(i === 8191, 1, 128 * 1024, Buffer.from([0x41])));
    expect(expectBounded(zstd, zstdFrame(0x00, 0x38, Buffer.alloc(0), blocks)).message).toMatch(/RLE blocks/);
  });

  it('zstd: a valid frame of compressed blocks stops at the limit', () => {
    const error = caught(() => decompress(zstd, compressionFixture('zstd-19-stream-nocheck.zst'), 100_000));
    expect(error).toBeInstanceOf(DecompressionLimitError);
    expect((error as DecompressionLimitError).limit).toBe(100_000);
  });

  it('zstd: the frame that costs fzstd seconds of CPU (4000 sequences of 64 KiB+ matches) fails at once', () => {
    const started = performance.now();
    expectCorrupt(() => decompress(zstd, fzstdCpuBomb(4000)));
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('none: an uncompressed area past the limit', () => {
    const error = caught(() => decompress(CompressionCodec.none, Buffer.alloc(100), 99));
    expect(error).toBeInstanceOf(DecompressionLimitError);
  });

  it('limits are checked: a bad maxOutputBytes is a RangeError; 0 and 2^31 - 1 are fine', () => {
    for (const bad of [-1, 1.5, Number.NaN, DECOMPRESSION_LIMIT_CEILING_BYTES + 1]) {
      expect(() => decompress(gzip, gzipSync(Buffer.from('x')), bad)).toThrow(RangeError);
    }
    expect(decompress(gzip, gzipSync(Buffer.alloc(0)), 0).length).toBe(0);
    expect(caught(() => decompress(gzip, gzipSync(Buffer.from('x')), 0))).toBeInstanceOf(DecompressionLimitError);
    const atCeiling: Array<[number, Buffer]> = [[gzip, compress(gzip, input)], [snappy, compress(snappy, input)], [lz4, compress(lz4, input)], [zstd, compressionFixture('zstd-3.zst')]];
    for (const [codec, bytes] of atCeiling) expect(decompress(codec, bytes, DECOMPRESSION_LIMIT_CEILING_BYTES).equals(input), `codec ${codec}`).toBe(true);
  });
});

describe('gzip errors', () => {
  it('gunzipSync errors map to ours: truncated, garbage, bad CRC', () => {
    const member = gzipSync(input.subarray(0, 1000));
    expectCorrupt(() => decompress(gzip, member.subarray(0, member.length - 3)), /unexpected end of file/);
    expectCorrupt(() => decompress(gzip, Buffer.from('definitely not gzip')), /incorrect header check/);
    const badCrc = Buffer.from(member);
    badCrc[badCrc.length - 6] = badCrc[badCrc.length - 6]! ^ 1;
    expectCorrupt(() => decompress(gzip, badCrc), /incorrect data check/);
    expectCorrupt(() => decompress(gzip, Buffer.alloc(0)));
  });

  it('one member only: librdkafka reads just the first of several, zlib and Java all of them', () => {
    const member = gzipSync(input.subarray(0, 1000));
    expect(decompress(gzip, member).equals(input.subarray(0, 1000))).toBe(true);
    expectCorrupt(() => decompress(gzip, Buffer.concat([member, member])), /more than one gzip member/);
    expectCorrupt(() => decompress(gzip, Buffer.concat([member, Buffer.alloc(8)])), /bytes after it/);
    // The same check for the async zlib.gunzip path.
    expect(() => checkSingleGzipMember(member, 1000)).not.toThrow();
    expect(() => checkSingleGzipMember(Buffer.concat([member, member]), 2000)).toThrow(CorruptCompressionError);
  });

  it('gzipErrorToCompressionError maps what the async zlib.gunzip reports', async () => {
    const gunzipAsync = promisify(gunzip);
    const bomb = Buffer.concat(Array.from({ length: 24 }, () => gzipSync(Buffer.alloc(MiB))));
    const tooBig = await gunzipAsync(bomb, { maxOutputLength: LIMIT }).then(() => null, (error: unknown) => error);
    const mappedLimit = gzipErrorToCompressionError(tooBig, LIMIT);
    expect(mappedLimit).toBeInstanceOf(DecompressionLimitError);
    expect((mappedLimit as DecompressionLimitError).limit).toBe(LIMIT);
    const garbage = await gunzipAsync(Buffer.from('definitely not gzip')).then(() => null, (error: unknown) => error);
    expect(gzipErrorToCompressionError(garbage, LIMIT)).toBeInstanceOf(CorruptCompressionError);
    const other = new TypeError('not a zlib error');
    expect(gzipErrorToCompressionError(other, LIMIT)).toBe(other);
  });
});

describe('snappy: what Google snappy refuses is refused', () => {
  const block = (...bytes: number[]): Buffer => Buffer.from(bytes);
  const abcd = [0x61, 0x62, 0x63, 0x64];

  it('a hand-made block decodes (literal, then an overlapping copy)', () => {
    // preamble 10 | literal "abcd" (tag (4-1)<<2) | copy 6 from offset 4 (type 1: len 4 + 2)
    expect(decompress(snappy, block(10, 0x0c, ...abcd, 0x09, 0x04)).toString()).toBe('abcdabcdab');
  });

  it('each malformed element is named', () => {
    expectCorrupt(() => decompress(snappy, block(8, 0x0c, ...abcd, 0x01, 0x00)), /offset 0/);
    expectCorrupt(() => decompress(snappy, block(8, 0x0c, ...abcd, 0x01, 0x05)), /offset 5 with 4 bytes written/);
    expectCorrupt(() => decompress(snappy, block(6, 0x0c, ...abcd, 0x01, 0x04)), /runs past the declared length/);
    expectCorrupt(() => decompress(snappy, block(10, 0x0c, ...abcd)), /decodes to 4 bytes, its preamble declares 10/);
    expectCorrupt(() => decompress(snappy, block(8, 0x1c, ...abcd)), /runs past the input/);
    expectCorrupt(() => decompress(snappy, block(4, 0x0c, ...abcd, 0x00, 0x61)), /runs past the declared length/);
    expectCorrupt(() => decompress(snappy, block(8, 0x0c, ...abcd, 0x02)), /copy cut short/);
    expectCorrupt(() => decompress(snappy, block(1, 0xf0)), /literal length cut short/);
    expectCorrupt(() => decompress(snappy, block(0xff, 0xff, 0xff, 0xff, 0x1f)), /does not fit 32 bits/);
    expectCorrupt(() => decompress(snappy, block(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)), /does not fit 32 bits|longer than 5 bytes/);
    expectCorrupt(() => decompress(snappy, Buffer.alloc(0)), /cut short/);
    expectCorrupt(() => decompress(snappy, block(0xe8, 0x07, 0x0c, ...abcd)), /declares 1000 bytes, more than its 5 bytes/);
  });

  it('xerial framing is checked', () => {
    const good = xerial(Buffer.from('hello xerial'), 64);
    expect(decompress(snappy, good).toString()).toBe('hello xerial');
    const version0 = Buffer.from(good);
    version0[11] = 0;
    expectCorrupt(() => decompress(snappy, version0), /version 0/);
    const negative = Buffer.from(good);
    negative.writeInt32BE(-5, 16);
    expectCorrupt(() => decompress(snappy, negative), /xerial block of -5 bytes/);
    expectCorrupt(() => decompress(snappy, good.subarray(0, 18)), /length cut short/);
    expectCorrupt(() => decompress(snappy, Buffer.concat([good, good])), /xerial block of -\d+ bytes/); // a second header is not a block
    expectCorrupt(() => decompress(snappy, good.subarray(0, 16)), /holds no data/);
  });
});

// LZ4 frames by hand: header (magic, FLG, BD, [content size], HC), blocks, EndMark, [checksum].
function lz4Frame(flags: number, bd: number, blocks: Buffer[], options: { contentBytes?: number; contentChecksum?: number; badHeaderChecksum?: boolean } = {}): Buffer {
  const descriptor = [Buffer.from([flags, bd])];
  if (options.contentBytes !== undefined) {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(options.contentBytes));
    descriptor.push(size);
  }
  const body = Buffer.concat(descriptor);
  const checksum = (xxh32(body, 0, body.length) >>> 8) & 0xff;
  const tail = options.contentChecksum === undefined ? [] : [u32le(options.contentChecksum)];
  return Buffer.concat([u32le(0x184d2204), body, Buffer.from([options.badHeaderChecksum ? checksum ^ 1 : checksum]), ...blocks, u32le(0), ...tail]);
}
const storedBlock = (data: Buffer): Buffer => Buffer.concat([u32le(0x80000000 | data.length), data]);
const compressedBlock = (...bytes: Array<number | string>): Buffer => {
  const data = Buffer.concat(bytes.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from([part]))));
  return Buffer.concat([u32le(data.length), data]);
};
// Literals "abcd", a 4-byte match from offset 4, then the last literals "efghi": "abcdabcdefghi".
const goodSequences = (offset: number): Buffer => compressedBlock(0x40, 'abcd', offset & 0xff, offset >>> 8, 0x50, 'efghi');

describe('lz4: what liblz4 or the Java client refuses is refused', () => {
  const INDEPENDENT = 0x60;

  it('a hand-made frame decodes', () => {
    expect(decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [goodSequences(4)])).toString()).toBe('abcdabcdefghi');
  });

  it('frame header problems', () => {
    const good = lz4Frame(INDEPENDENT, 0x40, [goodSequences(4)]);
    const withByte = (at: number, value: number): Buffer => {
      const frame = Buffer.from(good);
      frame[at] = value;
      return frame;
    };
    expectCorrupt(() => decompress(lz4, withByte(0, 0x05)), /not an LZ4 frame/);
    expectCorrupt(() => decompress(lz4, lz4Frame(0x20, 0x40, [goodSequences(4)])), /version bits 0/);
    expectCorrupt(() => decompress(lz4, lz4Frame(0xa0, 0x40, [goodSequences(4)])), /version bits 2/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT | 0x02, 0x40, [goodSequences(4)])), /reserved FLG bit/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT | 0x01, 0x40, [goodSequences(4)])), /dictionary/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0xc0, [goodSequences(4)])), /reserved BD bits/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x41, [goodSequences(4)])), /reserved BD bits/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x30, [goodSequences(4)])), /block maximum size id 3/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [goodSequences(4)], { badHeaderChecksum: true })), /header checksum/);
    expectCorrupt(() => decompress(lz4, good.subarray(0, 6)), /cut short/);
    expectCorrupt(() => decompress(lz4, Buffer.alloc(0)), /empty/);
  });

  it('block problems', () => {
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [storedBlock(Buffer.alloc(65537))])), /exceeds the frame's 65536 byte block maximum/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [storedBlock(Buffer.alloc(0))])), /stored block of 0 bytes/);
    const withChecksum = (block: Buffer, checksum: number): Buffer => Buffer.concat([block, u32le(checksum)]);
    const data = goodSequences(4).subarray(4);
    expect(decompress(lz4, lz4Frame(INDEPENDENT | 0x10, 0x40, [withChecksum(goodSequences(4), xxh32(data, 0, data.length))])).toString()).toBe('abcdabcdefghi');
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT | 0x10, 0x40, [withChecksum(goodSequences(4), 12345)])), /block checksum/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [goodSequences(4)]).subarray(0, -4)), /no EndMark/);
  });

  it('content size and content checksum are verified', () => {
    const output = Buffer.from('abcdabcdefghi');
    const checksum = xxh32(output, 0, output.length);
    expect(decompress(lz4, lz4Frame(INDEPENDENT | 0x0c, 0x40, [goodSequences(4)], { contentBytes: 13, contentChecksum: checksum })).equals(output)).toBe(true);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT | 0x08, 0x40, [goodSequences(4)], { contentBytes: 12 })), /declares 12 bytes of content but its blocks decode to 13/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT | 0x04, 0x40, [goodSequences(4)], { contentChecksum: checksum ^ 1 })), /content checksum/);
    // Content size 0 means "unknown" to liblz4.
    expect(decompress(lz4, lz4Frame(INDEPENDENT | 0x08, 0x40, [goodSequences(4)], { contentBytes: 0 })).equals(output)).toBe(true);
  });

  it('sequence problems', () => {
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [goodSequences(0)])), /match offset 0/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [goodSequences(5)])), /match offset 5 .* reaches before the start of the 4 bytes/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [compressedBlock(0x40, 'abcd', 4, 0)])), /ends without its last literals/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [compressedBlock(0xf0, 100, 'abcd')])), /literal run of 115 bytes .* runs past its block/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [compressedBlock(0xf0)])), /literal length cut short/);
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [compressedBlock(0x4f, 'abcd', 4, 0, 255, 255, 255, 255, 255, 255, 255, 255)])), /match length .* runs into the end of its block/);
  });

  it('a block reaches into the previous one only when blocks are dependent', () => {
    const blocks = [compressedBlock(0x80, 'abcdefgh'), compressedBlock(0x00, 8, 0, 0x50, 'efghi')];
    // Block 1: literals "abcdefgh" only. Block 2: a 4-byte match from offset 8 (into block 1).
    expect(decompress(lz4, lz4Frame(0x40, 0x40, blocks)).toString()).toBe('abcdefghabcdefghi');
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, blocks)), /reaches before the start of the 0 bytes/);
  });

  it('liblz4 refuses a match starting in the last 12 bytes of a full block; so do we', () => {
    const data = Buffer.from('abcdefgh'.repeat(8192));
    data[65536 - 11] = 0x5a;
    const scratch = new Uint8Array(70_000);
    const size = lz4js.compressBlock(data, scratch, 0, data.length, new Uint32Array(1 << 16));
    expectCorrupt(() => decompress(lz4, lz4Frame(INDEPENDENT, 0x40, [Buffer.concat([u32le(size), scratch.subarray(0, size)])])), /match starting in the last 12 bytes/);
  });

  it('exactly one frame: nothing before it, nothing after it (skippable frames included)', () => {
    const frame = lz4Frame(INDEPENDENT, 0x40, [goodSequences(4)]);
    const skippable = Buffer.concat([u32le(0x184d2a53), u32le(3), Buffer.from('xyz')]);
    expectCorrupt(() => decompress(lz4, Buffer.concat([skippable, frame])), /starts with a skippable frame/);
    expectCorrupt(() => decompress(lz4, Buffer.concat([frame, skippable])), /11 bytes after the frame/);
    expectCorrupt(() => decompress(lz4, Buffer.concat([frame, frame])), /bytes after the frame/);
    expectCorrupt(() => decompress(lz4, Buffer.concat([frame, Buffer.from([1, 2])])), /2 bytes after the frame/);
    expectCorrupt(() => decompress(lz4, Buffer.from([0x04, 0x22])), /2 bytes are not an LZ4 frame/);
  });
});

// zstd frames by hand: magic, Frame_Header_Descriptor, [window descriptor], [content size], blocks.
function zstdFrame(descriptor: number, window: number | null, contentSize: Buffer, blocks: Buffer[], extraHeader: Buffer = Buffer.alloc(0)): Buffer {
  const windowByte = window === null ? [] : [window];
  return Buffer.concat([u32le(0xfd2fb528), Buffer.from([descriptor, ...windowByte]), extraHeader, contentSize, ...blocks]);
}
function zstdBlock(last: boolean, type: number, size: number, content: Buffer): Buffer {
  const header = (size << 3) | (type << 1) | (last ? 1 : 0);
  return Buffer.concat([Buffer.from([header & 0xff, (header >>> 8) & 0xff, header >>> 16]), content]);
}
/**
 * A compressed block with raw literals and one sequence whose three codes use RLE tables (no
 * state bits), so the sequences bitstream holds only the extra bits: offset, then match length,
 * then literals length, read from the top of `bitstream`.
 */
function sequenceBlock(literals: string, codes: { literalsLength: number; offset: number; matchLength: number }, bitstream: number[]): Buffer {
  return Buffer.from([literals.length << 3, ...Buffer.from(literals), 0x01, 0x54, codes.literalsLength, codes.offset, codes.matchLength, ...bitstream]);
}
const oneBlockFrame = (content: Buffer): Buffer => zstdFrame(0x00, 0x00, Buffer.alloc(0), [zstdBlock(true, 2, content.length, content)]);

/** The frame that makes fzstd spin: sequences of 65539 + 16-bit match lengths, in one block. */
function fzstdCpuBomb(sequences: number): Buffer {
  const bitstream = Buffer.alloc(sequences * 2 + 1, 0xff);
  bitstream[bitstream.length - 1] = 0x80;
  const count = sequences < 0x7f00 ? [128 + (sequences >>> 8), sequences & 255] : [255, (sequences - 0x7f00) & 255, (sequences - 0x7f00) >>> 8];
  const body = Buffer.concat([Buffer.from([0x00, ...count, 0x54, 0, 0, 52]), bitstream]);
  return zstdFrame(0x00, 0x58, Buffer.alloc(0), [zstdBlock(true, 2, body.length, body)]);
}

describe('zstd: what libzstd refuses is refused', () => {
  const codes = (offset: number, literalsLength = 4, matchLength = 0) => ({ literalsLength, offset, matchLength });

  it('a hand-made compressed block decodes: literals "abcd", then 3 bytes from offset 1', () => {
    // Offset code 2: value 4 + 2 extra bits (0) = 4, i.e. offset 1. Bitstream: 2 zero bits, marker.
    expect(decompress(zstd, oneBlockFrame(sequenceBlock('abcd', codes(2), [0b100]))).toString()).toBe('abcdddd');
  });

  it('sequence problems', () => {
    expectCorrupt(() => decompress(zstd, oneBlockFrame(sequenceBlock('abcd', codes(5), [0b100000]))), /offset 29 .* reaches before the start of its frame/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(sequenceBlock('abcd', codes(2), [0b1000]))), /1 bits left over/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(sequenceBlock('abcd', codes(5), [0b100]))), /over-read/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(sequenceBlock('abcd', codes(2, 5), [0b100]))), /more literals than the block has/);
    // Match length code 52 with 16 extra bits set: 131074 bytes, past the block maximum...
    const longMatch = sequenceBlock('abcd', codes(2, 4, 52), [0xff, 0xff, 0x04]);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(longMatch)), /more than its 1024 byte maximum/);
    // ...also when the frame declares room for it (200000 bytes, 2 MiB window, 128 KiB blocks).
    const roomy = zstdFrame(0x80, 0x58, u32le(200_000), [zstdBlock(false, 2, longMatch.length, longMatch), zstdBlock(true, 2, longMatch.length, longMatch)]);
    expectCorrupt(() => decompress(zstd, roomy), /more than its 131072 byte maximum/);
    // Literals length 0 with offset value 3 means "repeat offset 1, minus 1": 1 - 1 = 0.
    expectCorrupt(() => decompress(zstd, oneBlockFrame(sequenceBlock('abcd', codes(1, 0), [0b11]))), /repeat offset 1 minus 1 is 0/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(Buffer.from([0x20, ...Buffer.from('abcd'), 0x01, 0xfc, 0x80]))), /repeated without an earlier one/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(Buffer.from([0x20, ...Buffer.from('abcd'), 0x01, 0x55, 4, 2, 0, 0x04]))), /reserved bits/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(Buffer.from([0x20, ...Buffer.from('abcd'), 0x01, 0x54, 36, 2, 0, 0x04]))), /literals length RLE symbol 36/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(Buffer.from([0x20, ...Buffer.from('abcd'), 0x00, 0x99]))), /after a sequences section without sequences/);
  });

  it('literals problems', () => {
    // Treeless literals (type 3) need an earlier Huffman table.
    expectCorrupt(() => decompress(zstd, oneBlockFrame(Buffer.from([0x03 | (0 << 2), 0x40, 0x00, 0x01, 0x00, 0x00]))), /treeless literals/);
    expectCorrupt(() => decompress(zstd, oneBlockFrame(Buffer.from([0x28, 0x61, 0x00]))), /raw literals .* run past their block/);
  });

  it('frame and block header problems', () => {
    const raw = zstdBlock(true, 0, 4, Buffer.from('abcd'));
    expect(decompress(zstd, zstdFrame(0x00, 0x00, Buffer.alloc(0), [raw])).toString()).toBe('abcd');
    expect(decompress(zstd, zstdFrame(0x20, null, Buffer.from([4]), [raw])).toString()).toBe('abcd');
    expectCorrupt(() => decompress(zstd, zstdFrame(0x08, 0x00, Buffer.alloc(0), [raw])), /reserved header bit/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x01, 0x00, Buffer.alloc(0), [raw], Buffer.from([7]))), /needs dictionary 7/);
    expect(decompress(zstd, zstdFrame(0x01, 0x00, Buffer.alloc(0), [raw], Buffer.from([0]))).toString()).toBe('abcd');
    expectCorrupt(() => decompress(zstd, zstdFrame(0x00, 22 << 3, Buffer.alloc(0), [raw])), /window log 32, above 31/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x00, (17 << 3) | 1, Buffer.alloc(0), [raw])), /needs a window of 150994944 bytes/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x00, 0x00, Buffer.alloc(0), [zstdBlock(true, 3, 4, Buffer.from('abcd'))])), /reserved block type/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x00, 0x00, Buffer.alloc(0), [zstdBlock(true, 0, 2000, Buffer.alloc(2000))])), /exceeds the frame's 1024 byte block maximum/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x20, null, Buffer.from([5]), [raw])), /declares 5 bytes, more than its blocks can hold/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x20, null, Buffer.from([3]), [raw])), /block maximum|decodes past its declared 3 bytes/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x00, 0x00, Buffer.alloc(0), [zstdBlock(true, 2, 1, Buffer.from([0]))])), /has only 1 bytes/);
    expectCorrupt(() => decompress(zstd, zstdFrame(0x00, 0x00, Buffer.alloc(0), [zstdBlock(false, 0, 4, Buffer.from('abcd'))])), /block header at byte .* cut short/);
  });

  it('the content checksum (XXH64, low 32 bits) is verified', () => {
    const frame = Buffer.from(compressionFixture('zstd-3.zst'));
    frame[frame.length - 1] = frame[frame.length - 1]! ^ 0x10;
    expectCorrupt(() => decompress(zstd, frame), /content checksum/);
  });

  it('frames: skippable frames anywhere, at least one zstd frame, nothing after the last', () => {
    const frame = zstdFrame(0x00, 0x00, Buffer.alloc(0), [zstdBlock(true, 0, 4, Buffer.from('abcd'))]);
    const skippable = Buffer.concat([u32le(0x184d2a5f), u32le(2), Buffer.from('zz')]);
    expect(decompress(zstd, Buffer.concat([skippable, frame, skippable, frame])).toString()).toBe('abcdabcd');
    expectCorrupt(() => decompress(zstd, skippable), /no zstd frame/);
    expectCorrupt(() => decompress(zstd, Buffer.concat([frame, Buffer.from('garbage!')])), /is not a zstd frame/);
    expectCorrupt(() => decompress(zstd, Buffer.concat([frame, Buffer.from([0])])), /stray bytes/);
    expectCorrupt(() => decompress(zstd, Buffer.alloc(0)), /empty/);
  });
});

describe('declaredOutputBytes', () => {
  it('names the declared size where the format has one, null elsewhere', () => {
    expect(declaredOutputBytes(CompressionCodec.none, Buffer.alloc(42))).toBe(42);
    expect(declaredOutputBytes(gzip, gzipSync(input))).toBeNull();
    expect(declaredOutputBytes(snappy, Buffer.from(snappyjs.compress(input)))).toBe(input.length);
    expect(declaredOutputBytes(snappy, xerial(input, 32 * 1024))).toBe(input.length);
    expect(declaredOutputBytes(lz4, compressionFixture('lz4-blockcrc-size.lz4'))).toBe(input.length);
    expect(declaredOutputBytes(lz4, compressionFixture('lz4-1.lz4'))).toBeNull();
    expect(declaredOutputBytes(lz4, compress(lz4, input))).toBeNull();
    expect(declaredOutputBytes(zstd, compressionFixture('zstd-3.zst'))).toBe(input.length);
    expect(declaredOutputBytes(zstd, Buffer.concat([compressionFixture('zstd-3.zst'), compressionFixture('zstd-22-long.zst')]))).toBe(2 * input.length);
    expect(declaredOutputBytes(zstd, compressionFixture('zstd-19-stream-nocheck.zst'))).toBeNull();
    expect(declaredOutputBytes(5, Buffer.alloc(10))).toBeNull();
  });

  it('declares what the bombs claim, so a caller can refuse them without decoding', () => {
    expect(declaredOutputBytes(snappy, Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04]))).toBe(2 ** 30);
    const blocks = Array.from({ length: 8192 }, (_, i) => zstdBlock(i === 8191, 1, 128 * 1024, Buffer.from([0x41])));
    expect(declaredOutputBytes(zstd, zstdFrame(0x80, 0x38, u32le(2 ** 30), blocks))).toBe(2 ** 30);
  });

  it('never throws on garbage (seed 4242)', () => {
    const random = new SeededRandom(4242);
    for (let i = 0; i < 2000; i++) {
      const bytes = random.bytes(random.int(0, 64));
      if (bytes.length >= 4 && random.bool(0.3)) bytes.writeUInt32LE(random.pick([0x184d2204, 0xfd2fb528, 0x184d2a50]), 0);
      for (let codec = 0; codec <= 7; codec++) expect(() => declaredOutputBytes(codec, bytes)).not.toThrow();
    }
  });
});

describe('codec ids and error types', () => {
  it('codec ids other than 0-4 are UnsupportedCompressionError', () => {
    for (const id of [5, 6, 7, 8, -1]) expect(() => decompress(id, Buffer.alloc(8))).toThrow(UnsupportedCompressionError);
  });

  it('DecompressionLimitError is not a CorruptCompressionError and carries codec and limit', () => {
    const error = new DecompressionLimitError('lz4', 100, 'detail');
    expect(error).not.toBeInstanceOf(CorruptCompressionError);
    expect(error.name).toBe('DecompressionLimitError');
    expect(error.codec).toBe('lz4');
    expect(error.limit).toBe(100);
  });

  it('garbage (seed 99) under each codec fails with our errors only', () => {
    const random = new SeededRandom(99);
    for (let i = 0; i < 500; i++) {
      const bytes = random.bytes(random.int(0, 300));
      if (bytes.length >= 4 && random.bool(0.5)) bytes.writeUInt32LE(random.pick([0x184d2204, 0xfd2fb528]), 0);
      for (const codec of [gzip, snappy, lz4, zstd]) decodeOrError(codec, bytes);
    }
  });
});

describe('xxhash', () => {
  const require = createRequire(import.meta.url);
  const lz4jsXxh32 = require('lz4js/xxh32.js') as { hash(seed: number, src: Uint8Array, index: number, length: number): number };

  function referenceXxh64(data: Uint8Array): bigint {
    const mask = (1n << 64n) - 1n;
    const [p1, p2, p3, p4, p5] = [11400714785074694791n, 14029467366897019727n, 1609587929392839161n, 9650029242287828579n, 2870177450012600261n];
    const rotl = (x: bigint, r: number): bigint => ((x << BigInt(r)) | (x >> BigInt(64 - r))) & mask;
    const read = (at: number, bytes: number): bigint => {
      let value = 0n;
      for (let i = bytes - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[at + i]!);
      return value;
    };
    const round = (acc: bigint, lane: bigint): bigint => (rotl((acc + lane * p2) & mask, 31) * p1) & mask;
    let p = 0;
    let h: bigint;
    if (data.length >= 32) {
      const v = [(p1 + p2) & mask, p2, 0n, (mask + 1n - p1) & mask];
      for (; p + 32 <= data.length; p += 32) for (let i = 0; i < 4; i++) v[i] = round(v[i]!, read(p + 8 * i, 8));
      h = (rotl(v[0]!, 1) + rotl(v[1]!, 7) + rotl(v[2]!, 12) + rotl(v[3]!, 18)) & mask;
      for (const lane of v) h = ((h ^ round(0n, lane)) * p1 + p4) & mask;
    } else {
      h = p5;
    }
    h = (h + BigInt(data.length)) & mask;
    for (; p + 8 <= data.length; p += 8) h = (rotl(h ^ round(0n, read(p, 8)), 27) * p1 + p4) & mask;
    if (p + 4 <= data.length) {
      h = (rotl(h ^ ((read(p, 4) * p1) & mask), 23) * p2 + p3) & mask;
      p += 4;
    }
    for (; p < data.length; p++) h = (rotl(h ^ ((BigInt(data[p]!) * p5) & mask), 11) * p1) & mask;
    h ^= h >> 33n;
    h = (h * p2) & mask;
    h ^= h >> 29n;
    h = (h * p3) & mask;
    return h ^ (h >> 32n);
  }

  it('known values', () => {
    expect(xxh32(Buffer.alloc(0), 0, 0)).toBe(0x02cc5d05);
    expect(xxh64(Buffer.alloc(0), 0, 0)).toBe(0xef46db3751d8e999n);
    expect(xxh64(Buffer.from('abc'), 0, 3)).toBe(0x44bc2cf5ad770999n);
  });

  it('xxh32 agrees with lz4js and xxh64 with a BigInt reference, every length 0-300 and offsets (seed 31)', () => {
    const random = new SeededRandom(31);
    for (let length = 0; length <= 300; length++) {
      const data = random.bytes(length + 5);
      expect(xxh32(data, 3, 3 + length)).toBe(lz4jsXxh32.hash(0, data, 3, length) >>> 0);
      expect(xxh64(data, 3, 3 + length)).toBe(referenceXxh64(data.subarray(3, 3 + length)));
    }
  });
});
