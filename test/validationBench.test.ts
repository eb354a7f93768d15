// `tidelog bench validation`: the batches it sends (the hand-made zstd frame decodes, every
// case's batch is a valid v2 batch of the codec it names) and one tiny run of every case at both
// levels (Produce requests to two in-process brokers, and PartitionLog.append alone) through
// runValidationBench into a temporary directory. Worker threads load dist/ (`npm run build` first).
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEVELS, RATIO_TARGET, VALIDATION_CASES, buildCaseBatch, markdownPathOf, runValidationBench, zstdRawFrame, type ValidationBenchReport, type ValidationPlan } from '../bench/validationBench.js';
import { CompressionCodec, decompress } from '../segments/compression.js';
import { RECORDS_OFFSET, checkBatch, compressionOf, decodeRecords, readBatchHeader } from '../segments/recordBatch.js';

const TINY_PLAN: ValidationPlan = { label: 'tiny', msPerLevel: 400, maxBatchesPerSide: 2_000, warmupBytes: 0, pretouchBytes: 0 };

describe('the batches the validation bench appends', () => {
  it('a zstd frame of Raw blocks decodes to its content, across block boundaries and when empty', () => {
    for (const length of [0, 1, 1_000, 128 * 1024, 300 * 1024 + 7]) {
      const content = Buffer.from(Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff));
      const frame = zstdRawFrame(content);
      expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
      expect(decompress(CompressionCodec.zstd, frame).equals(content), `${length} bytes`).toBe(true);
    }
  });

  it('every case builds one valid v2 batch with its codec, CRC and records', () => {
    for (const spec of VALIDATION_CASES) {
      const { batch, recordsPerBatch, recordsAreaBytes } = buildCaseBatch(spec);
      const check = checkBatch(batch, 0, batch.length, { maxBatchBytes: 2 ** 31 - 1, verifyCrc: true });
      expect(check.ok, spec.name).toBe(true);
      const header = readBatchHeader(batch);
      expect(compressionOf(header.attributes), spec.name).toBe(CompressionCodec[spec.codec]);
      expect(header.recordCount).toBe(recordsPerBatch);
      expect(header.lastOffsetDelta).toBe(recordsPerBatch - 1);
      const area = decompress(CompressionCodec[spec.codec], batch.subarray(RECORDS_OFFSET));
      expect(area.length).toBe(recordsAreaBytes);
      expect(RECORDS_OFFSET + recordsAreaBytes).toBeLessThanOrEqual(spec.targetBatchBytes);
      const records = decodeRecords(batch);
      expect(records).toHaveLength(recordsPerBatch);
      expect(records[0]!.key).toHaveLength(10);
      expect(records[0]!.value).toHaveLength(spec.valueBytes);
    }
    // The 100-byte case holds about 130 records, the 1 KiB cases about 15 and 1000.
    expect(buildCaseBatch(VALIDATION_CASES[0]!).recordsPerBatch).toBeGreaterThan(120);
    expect(buildCaseBatch(VALIDATION_CASES[2]!).recordsPerBatch).toBeGreaterThan(950);
  });
});

describe('runValidationBench (a tiny plan)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidelog-bench-validation-test-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs every case at both levels on both sides and writes the JSON, the Markdown and the table with a PASS or FAIL per uncompressed case', async () => {
    const outPath = join(dir, 'validation.json');
    let table = '';
    const progress: string[] = [];
    const started = Date.now();
    const report = await runValidationBench({ quick: true, outPath, plan: TINY_PLAN, out: (text) => (table += text), progress: (line) => progress.push(line) });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(report.meta.plan).toBe('tiny');
    expect(report.meta.produce.apiVersion).toBe(7);
    expect(report.cases.map((result) => result.name)).toEqual(VALIDATION_CASES.map((spec) => spec.name));
    for (const result of report.cases) {
      for (const level of LEVELS) {
        const measured = result[level];
        expect(measured.level).toBe(level);
        for (const side of [measured.with, measured.without]) {
          expect(side.batches, `${result.name} [${level}]`).toBeGreaterThan(0);
          expect(side.records).toBe(side.batches * result.recordsPerBatch);
          expect(side.recordsPerSec).toBeGreaterThan(0);
          expect(side.batches).toBeLessThanOrEqual(TINY_PLAN.maxBatchesPerSide);
        }
        expect(measured.pairs).toBeGreaterThan(0);
        expect(Number.isFinite(measured.ratio) && measured.ratio > 0).toBe(true);
      }
      expect(result.produce.budgetPeakBytes).toBeNull();
      expect(result.target === null).toBe(result.codec !== 'none');
      // The target is judged on the produce level.
      if (result.target !== null) expect(result.target.pass).toBe(result.produce.ratio >= RATIO_TARGET);
    }
    expect(report.targets).toHaveLength(3);
    for (const target of report.targets) {
      expect(target.level).toBe('produce');
      expect(target.pass).toBe(target.ratio >= RATIO_TARGET);
      expect(target.appendRatio).toBe(report.cases.find((result) => result.name === target.case)!.append.ratio);
    }

    const written = JSON.parse(await readFile(outPath, 'utf8')) as ValidationBenchReport;
    expect(written.cases).toHaveLength(VALIDATION_CASES.length);
    expect(written.meta.machine.cpus).toBeGreaterThan(0);
    expect(written.meta.node).toBe(process.version);
    const markdown = await readFile(markdownPathOf(outPath), 'utf8');
    // A summary table (a row per case) and a detail table (a row per case and level), each with its header row.
    const markdownRows = markdown.split('\n').filter((line) => line.startsWith('| '));
    expect(markdownRows).toHaveLength(1 + VALIDATION_CASES.length + 1 + LEVELS.length * VALIDATION_CASES.length);
    expect(markdown).toMatch(/Note: .*judged on the produce level/);
    expect(markdown).toMatch(/strictest view/);
    expect(table.split('\n').filter((line) => line.startsWith('| '))).toHaveLength(1 + VALIDATION_CASES.length);
    expect(table.split('\n').filter((line) => /^(PASS|FAIL) uncompressed.*: produce ratio .* append ratio /.test(line))).toHaveLength(3);
    expect(progress.at(-1)).toMatch(/done; JSON written to /);
  }, 30_000);

  it('refuses a plan without bounds before it measures anything', async () => {
    await expect(runValidationBench({ quick: true, outPath: join(dir, 'never.json'), plan: { ...TINY_PLAN, msPerLevel: 0 } })).rejects.toThrow(/msPerLevel/);
    await expect(runValidationBench({ quick: true, outPath: join(dir, 'never.json'), plan: { ...TINY_PLAN, maxBatchesPerSide: Number.POSITIVE_INFINITY } })).rejects.toThrow(/maxBatchesPerSide/);
  });
});
