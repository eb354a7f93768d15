import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cPortable } from '../segments/crc32c.js';
import { compressionName } from '../segments/compression.js';
import {
  CRC_OFFSET,
  checkBatch,
  computeBatchCrc,
  decodeRecords,
  encodeBatch,
  readBatchHeader,
  type RecordInput,
} from '../segments/recordBatch.js';
import { readVarint, readVarlong, writeVarint, writeVarlong } from '../segments/varint.js';
import { SeededRandom } from './support/random.js';
import { randomRecords } from './support/logs.js';

const LIMITS = { maxBatchBytes: 64 * 1024 * 1024 };

describe('varints', () => {
  it('round-trips int32 zigzag varints at the edges and at random (seed 11)', () => {
    const random = new SeededRandom(11);
    const values = [0, 1, -1, 63, -64, 64, 0x7fffffff, -0x80000000, ...Array.from({ length: 2000 }, () => random.int(-0x80000000, 0x7fffffff))];
    const buffer = Buffer.alloc(5);
    for (const value of values) {
      const end = writeVarint(buffer, 0, value);
      expect(readVarint(buffer, 0)).toEqual({ value, next: end });
    }
  });

  it('round-trips varlongs across the safe integer range (seed 12)', () => {
    const random = new SeededRandom(12);
    const values = [0, -1, 1, 2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, ...Array.from({ length: 2000 }, () => Math.round((random.next() - 0.5) * 2 ** 52))];
    const buffer = Buffer.alloc(10);
    for (const value of values) {
      const end = writeVarlong(buffer, 0, value);
      expect(readVarlong(buffer, 0)).toEqual({ value, next: end });
    }
  });

  it('rejects a varint that runs past its buffer or past five bytes', () => {
    expect(() => readVarint(Buffer.from([0x80, 0x80]), 0)).toThrow(/past the end/);
    expect(() => readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 0)).toThrow(/longer than 5 bytes|overflows/);
  });
});

describe('CRC-32C', () => {
  it('matches the standard check value and agrees between native and portable implementations (seed 13)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32cPortable(Buffer.from('123456789'))).toBe(0xe3069283);
    const random = new SeededRandom(13);
    for (let i = 0; i < 200; i++) {
      const data = random.bytes(random.int(0, 5000));
      expect(crc32c(data)).toBe(crc32cPortable(data));
    }
  });
});

function expectRecordsEqual(decoded: ReturnType<typeof decodeRecords>, input: readonly RecordInput[], baseOffset: number): void {
  expect(decoded).toHaveLength(input.length);
  decoded.forEach((record, i) => {
    const expected = input[i]!;
    expect(record.offset).toBe(baseOffset + i);
    expect(record.timestamp).toBe(expected.timestamp);
    expect(record.key).toEqual(expected.key);
    expect(record.value).toEqual(expected.value);
    expect(record.headers).toEqual(expected.headers ?? []);
  });
}

describe('record batch v2 codec', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`round-trips random batches with null keys, null values and headers (seed ${seed})`, () => {
      const random = new SeededRandom(seed);
      for (let round = 0; round < 40; round++) {
        const records = randomRecords(random, random.int(1, 60), 1_700_000_000_000);
        const compression = random.bool() ? 'gzip' : 'none';
        const baseOffset = random.int(0, 2 ** 40);
        const batch = encodeBatch(records, { baseOffset, compression, producerId: random.int(-1, 1000), producerEpoch: 0, baseSequence: 0 });
        const check = checkBatch(batch, 0, batch.length, LIMITS);
        expect(check.ok).toBe(true);
        const header = readBatchHeader(batch);
        expect(header.baseOffset).toBe(baseOffset);
        expect(header.recordCount).toBe(records.length);
        expect(header.lastOffsetDelta).toBe(records.length - 1);
        expect(header.maxTimestamp).toBe(Math.max(...records.map((r) => r.timestamp!)));
        expect(compressionName(header.attributes & 7)).toBe(compression);
        expectRecordsEqual(decodeRecords(batch), records, baseOffset);
      }
    });
  }

  it('names the problem of each kind of bad batch and never throws for bad bytes', () => {
    const good = encodeBatch([{ key: null, value: Buffer.from('v') }]);
    const withMagic = Buffer.from(good);
    withMagic[16] = 1;
    expect(checkBatch(withMagic, 0, withMagic.length, LIMITS)).toMatchObject({ ok: false, problem: 'bad-magic' });
    const torn = good.subarray(0, good.length - 1);
    expect(checkBatch(torn, 0, torn.length, LIMITS)).toMatchObject({ ok: false, problem: 'truncated' });
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1]! ^= 0x01;
    expect(checkBatch(flipped, 0, flipped.length, LIMITS)).toMatchObject({ ok: false, problem: 'crc-mismatch' });
    const shortLength = Buffer.from(good);
    shortLength.writeInt32BE(10, 8);
    expect(checkBatch(shortLength, 0, shortLength.length, LIMITS)).toMatchObject({ ok: false, problem: 'bad-length' });
    const negativeDelta = Buffer.from(good);
    negativeDelta.writeInt32BE(-5, 23);
    negativeDelta.writeUInt32BE(computeBatchCrc(negativeDelta), CRC_OFFSET);
    expect(checkBatch(negativeDelta, 0, negativeDelta.length, LIMITS)).toMatchObject({ ok: false, problem: 'bad-offsets' });
    expect(checkBatch(good, 0, good.length, { maxBatchBytes: good.length - 1 })).toMatchObject({ ok: false, problem: 'bad-length' });
  });
});

interface ManifestFile {
  file: string;
  source: string;
  case: string;
  compression: string;
  idempotent: boolean;
  records: Array<{ key: string | null; value: string | null; headers: Array<{ key: string; value: string | null }> }>;
}

describe('batches written by other Kafka encoders', async () => {
  const manifestUrl = new URL('./fixtures/batches/manifest.json', import.meta.url);
  const manifest = JSON.parse(await readFile(manifestUrl, 'utf8')) as { files: ManifestFile[] };

  for (const entry of manifest.files) {
    it(`${entry.file} (${entry.source}, ${entry.compression}) passes its CRC and decodes to the records sent`, async () => {
      const bytes = await readFile(new URL(`./fixtures/batches/${entry.file}`, import.meta.url));
      const check = checkBatch(bytes, 0, bytes.length, LIMITS);
      expect(check.ok).toBe(true);
      if (!check.ok) return;
      expect(check.size).toBe(bytes.length);
      expect(check.header.recordCount).toBe(entry.records.length);
      expect(compressionName(check.header.attributes & 7)).toBe(entry.compression);
      if (entry.idempotent) expect(check.header.producerId).toBeGreaterThanOrEqual(0);
      const decoded = decodeRecords(bytes);
      expect(decoded.map((r) => ({
        key: r.key === null ? null : r.key.toString('utf8'),
        value: r.value === null ? null : r.value.toString('utf8'),
        headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString('utf8') })),
      }))).toEqual(entry.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers ?? [] })));
    });
  }
});
