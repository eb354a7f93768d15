// `tidelog bench partitions`: its pure parts (the counts flag, the topic layout, the phase bounds,
// the costs per partition, the targets, the chart) and tiny runs of the compiled CLI (`npm run
// build` first) into temporary directories: a whole run, a run whose phase passes its bound, and
// the flags it refuses.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARTITIONS_PER_TOPIC, REPORT_FILES, parsePartitionCounts, phaseBounds, topicLayout } from '../bench/partitionsBench.js';
import {
  COMPARISON_FIELDS,
  COST_SERIES,
  MEASURED_FIELDS,
  PER_PARTITION_FIELDS,
  TARGET_PARTITIONS,
  emptyCountRow,
  perPartitionCost,
  renderCostChart,
  reportProblems,
  targetChecks,
  type CountRow,
  type EmptyBrokerBaseline,
  type PartitionsReport,
} from '../bench/partitionsReport.js';
import { runTidelog } from './support/brokerProcess.js';

const BASELINE: EmptyBrokerBaseline = { runs: 3, startMs: 400, stopMs: 20, rssKb: 80_000, openFds: 24, fdLimit: 20_000, failure: null };

function measuredRow(partitions: number, values: Partial<CountRow>): CountRow {
  return { ...emptyCountRow(partitions, topicLayout(partitions).length, phaseBounds(partitions, 1_000, null)), outcome: 'complete', ...values };
}

function seriesNames(svg: string): string[] {
  return [...svg.matchAll(/<g class="series" data-series="([^"]*)"/g)].map((match) => match[1]!);
}

describe('the plan', () => {
  it('--partitions is a list of distinct counts, sorted', () => {
    expect(parsePartitionCounts('2000,100')).toEqual([100, 2000]);
    expect(parsePartitionCounts(' 10 , 40 ')).toEqual([10, 40]);
    expect(() => parsePartitionCounts('10,10')).toThrow(/names a count twice/);
    for (const bad of ['', '0', '10,', '1e3', '-5', '100001', 'ten']) expect(() => parsePartitionCounts(bad), bad).toThrow(/^--partitions must be a comma-separated list of integers in \[1, 100000\]/);
  });

  it('topics hold at most 1,000 partitions, the last one the rest', () => {
    expect(topicLayout(40)).toEqual([{ name: 'spread-000', partitions: 40 }]);
    expect(topicLayout(2_500).map((topic) => topic.partitions)).toEqual([1_000, 1_000, 500]);
    const fifty = topicLayout(50_000);
    expect(fifty).toHaveLength(50);
    expect(fifty.every((topic) => topic.partitions === PARTITIONS_PER_TOPIC)).toBe(true);
    expect(new Set(fifty.map((topic) => topic.name)).size).toBe(50);
  });

  it('bounds grow with the count (minutes at 50,000), and --phase-timeout-ms replaces them all', () => {
    const small = phaseBounds(100, 5_000, null);
    const large = phaseBounds(50_000, 5_000, null);
    for (const kind of ['start', 'create', 'stop', 'metadata', 'traffic'] as const) expect(large[kind]).toBeGreaterThan(small[kind]);
    expect(large.start).toBeGreaterThanOrEqual(5 * 60_000);
    expect(large.create).toBeGreaterThanOrEqual(5 * 60_000);
    expect(phaseBounds(50_000, 5_000, 1_234)).toEqual({ start: 1_234, create: 1_234, stop: 1_234, metadata: 1_234, traffic: 1_234 });
  });
});

describe('costs per partition and targets', () => {
  it('are net of the empty broker, per partition', () => {
    const row = measuredRow(1_000, { createMs: 2_500, cleanStartMs: 2_400, crashStartMs: 3_400, cleanStopMs: 1_020, rssKbAfterStart: 90_000 });
    expect(perPartitionCost(row, BASELINE)).toEqual({ createMs: 2.5, cleanStartMs: 2, crashStartMs: 3, cleanStopMs: 1, rssKb: 10 });
    expect(perPartitionCost(row, { ...BASELINE, startMs: null }).cleanStartMs).toBeNull();
    expect(perPartitionCost(emptyCountRow(10, 1, phaseBounds(10, 1_000, null)), BASELINE)).toEqual({ createMs: null, cleanStartMs: null, crashStartMs: null, cleanStopMs: null, rssKb: null });
  });

  it('the issue 18 targets are read at 10,000 partitions, N/A without them', () => {
    expect(targetChecks([measuredRow(100, { createMs: 1 })]).map((check) => check.pass)).toEqual([null, null, null, null, null]);
    const checks = targetChecks([measuredRow(TARGET_PARTITIONS, { createMs: 28_000, cleanStartMs: 4_000, crashStartMs: 9_000, cleanStopMs: 2_500, rssKbAfterStart: 150_000 })]);
    expect(checks.map((check) => [check.what, check.pass])).toEqual([
      ['create', false],
      ['clean start', true],
      ['start after kill -9', true],
      ['clean stop', false],
      ['RSS after start', true],
    ]);
  });

  it('the chart has one series per cost on a log x axis: 100, 1,000 and 10,000 equally apart', () => {
    const rows = [100, 1_000, 10_000].map((partitions) => measuredRow(partitions, { perPartition: { createMs: 2, cleanStartMs: 3, crashStartMs: -0.5, cleanStopMs: 1, rssKb: 12 } }));
    const svg = renderCostChart(rows);
    expect(seriesNames(svg)).toEqual(COST_SERIES.map((series) => series.name));
    const createSeries = svg.slice(svg.indexOf('data-series="create (ms)"'), svg.indexOf('</g>', svg.indexOf('data-series="create (ms)"')));
    const xs = [...createSeries.matchAll(/<circle cx="([\d.]+)"/g)].map((match) => Number(match[1]));
    expect(xs).toHaveLength(3);
    expect(xs[1]! - xs[0]!).toBeCloseTo(xs[2]! - xs[1]!, 0);
    // A net cost below zero is drawn on the axis, and its tooltip keeps the value.
    expect(svg).toContain('start after kill -9 (ms) per partition at 100 partitions: -0.5');
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg.match(/<g[ >]/g)?.length).toBe(svg.match(/<\/g>/g)?.length);
  });
});

describe('tidelog bench partitions (the compiled CLI)', () => {
  let outDir: string;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'tidelog-bench-partitions-test-'));
  });

  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  /** The bench's temporary data directories (not this test's output directory). */
  async function benchDataDirs(): Promise<string[]> {
    return (await readdir(tmpdir())).filter((name) => name.startsWith('tidelog-bench-partitions-') && !name.startsWith('tidelog-bench-partitions-test-'));
  }

  async function reportIn(dir: string): Promise<PartitionsReport> {
    return JSON.parse(await readFile(join(dir, REPORT_FILES.json), 'utf8')) as PartitionsReport;
  }

  it('measures 10 and 40 partitions with short phases: every field of every count, the Markdown and the chart', async () => {
    const dir = join(outDir, 'whole');
    const dataDirsBefore = await benchDataDirs();
    const result = await runTidelog(['bench', 'partitions', '--partitions', '40,10', '--phase-ms', '150', '--out-dir', dir, '--note', 'smoke test'], { timeoutMs: 40_000 });
    expect(result.code, result.stderr).toBe(0);
    const report = await reportIn(dir);
    expect(reportProblems(report)).toEqual([]);
    expect(report.meta).toMatchObject({ mode: 'chosen', counts: [10, 40], phaseMs: 150, phaseTimeoutMs: null, note: 'smoke test' });
    expect(report.baseline.failure).toBeNull();
    for (const field of ['startMs', 'stopMs', 'rssKb', 'openFds'] as const) expect(report.baseline[field], `baseline.${field}`).toBeGreaterThan(0);
    expect(report.counts.map((row) => [row.partitions, row.topics, row.outcome])).toEqual([
      [10, 1, 'complete'],
      [40, 1, 'complete'],
    ]);
    for (const row of report.counts) {
      const label = `${row.partitions} partitions`;
      for (const field of MEASURED_FIELDS) expect(typeof row[field], `${label}: ${field}`).toBe('number');
      for (const field of PER_PARTITION_FIELDS) expect(typeof row.perPartition[field], `${label}: perPartition.${field}`).toBe('number');
      for (const field of COMPARISON_FIELDS) {
        const comparison = row[field]!;
        expect(comparison.spread.records, `${label}: ${field}`).toBe(comparison.onePartition.records);
        expect(comparison.spread.recordsPerSec, `${label}: ${field}`).toBeGreaterThan(0);
        expect(comparison.ratio, `${label}: ${field}`).toBeGreaterThan(0);
      }
      // Whole passes over every partition: the spread totals are multiples of the count.
      expect(row.produceOnePerPartition!.spread.records % row.partitions).toBe(0);
      expect(row.produceBatched!.spread.records % (row.partitions * report.settings.batchedRecordsPerPartition)).toBe(0);
      expect(row.consume!.spread.records).toBe(row.produceOnePerPartition!.spread.records + row.produceBatched!.spread.records);
      // Measured; a clean start holds no descriptor per partition, so it may equal the empty broker's.
      expect(row.openFdsAfterStart!).toBeGreaterThan(0);
      expect(row.metadataBytes!).toBeGreaterThan(0);
      expect(row.failure).toBeNull();
    }
    expect(report.counts[1]!.metadataBytes!).toBeGreaterThan(report.counts[0]!.metadataBytes!);
    const markdown = await readFile(join(dir, REPORT_FILES.markdown), 'utf8');
    expect(markdown).toContain('Note: smoke test');
    expect(markdown.split('\n').filter((line) => /^\| (10|40) \| 1 \| .* \| complete \|$/.test(line))).toHaveLength(2);
    expect(result.stdout.toString('utf8')).toBe(markdown);
    const svg = await readFile(join(dir, REPORT_FILES.chart), 'utf8');
    expect(seriesNames(svg)).toEqual(COST_SERIES.map((series) => series.name));
    expect(svg.match(/<circle /g)).toHaveLength(2 * COST_SERIES.length);
    expect(result.stderr).toMatch(/wrote .*latest\.json/);
    // Each count's temporary data directory is removed after it.
    expect((await benchDataDirs()).filter((name) => !dataDirsBefore.includes(name))).toEqual([]);
  }, 45_000);

  it('a phase past its bound is recorded as timed out with the broker log tail; larger counts are skipped', async () => {
    const dir = join(outDir, 'bounded');
    // Every bound is 4 s; a produce phase runs 6 s at least, so it is the one cut.
    const result = await runTidelog(['bench', 'partitions', '--partitions', '10,20', '--phase-ms', '6000', '--phase-timeout-ms', '4000', '--out-dir', dir], { timeoutMs: 40_000 });
    expect(result.code, result.stderr).toBe(0);
    const report = await reportIn(dir);
    expect(reportProblems(report)).toEqual([]);
    const [cut, skipped] = report.counts as [CountRow, CountRow];
    expect(cut.outcome).toBe('timed out');
    expect(cut.failure).toMatchObject({ phase: 'produce one record a partition', kind: 'timeout', boundMs: 4_000 });
    expect(cut.failure!.logTail).toMatch(/^broker log \(last \d+ lines\):\n/);
    expect(cut.failure!.logTail).toContain('INFO broker started');
    expect(cut.createMs).toBeGreaterThan(0);
    expect(cut.cleanStartMs).toBeGreaterThan(0);
    expect(cut.produceOnePerPartition).toBeNull();
    expect(cut.crashStartMs).toBeNull();
    expect(skipped.outcome).toBe('skipped');
    expect(skipped.skippedBecause).toBe('10 partitions timed out in produce one record a partition');
    expect(await readFile(join(dir, REPORT_FILES.markdown), 'utf8')).toContain('10 partitions: timed out in produce one record a partition (bound 4,000 ms)');
    expect(existsSync(join(dir, REPORT_FILES.chart))).toBe(true);
  }, 45_000);

  it('refuses flags that do not fit, with a one-line reason and exit code 2', async () => {
    const cases: Array<[string[], string]> = [
      [['--partitions', '0,10'], 'tidelog: --partitions must be a comma-separated list of integers in [1, 100000], got "0,10"'],
      [['--partitions', '10,10'], 'tidelog: --partitions names a count twice: "10,10"'],
      [['--partitions', '10', '--quick'], 'tidelog: --partitions and --quick exclude each other'],
      [['--phase-ms', '0'], 'tidelog: --phase-ms must be an integer in [1, 600000], got 0'],
      [['--phase-timeout-ms', '2.5'], 'tidelog: --phase-timeout-ms must be an integer in [1, 3600000], got 2.5'],
      [['--out', join(outDir, 'x.json')], 'tidelog: the partitions suite writes a directory: use --out-dir, not --out'],
      [['--full'], 'tidelog: --full is for the matrix (tidelog bench with no suite), not for partitions'],
    ];
    const results = await Promise.all(cases.map(([flags]) => runTidelog(['bench', 'partitions', ...flags, '--out-dir', join(outDir, 'refused')], { timeoutMs: 15_000 })));
    results.forEach((result, index) => {
      expect(result.code, cases[index]![1]).toBe(2);
      expect(result.stderr.trim()).toBe(cases[index]![1]);
    });
    const elsewhere = await runTidelog(['bench', 'storage', '--partitions', '10'], { timeoutMs: 15_000 });
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr.trim()).toBe('tidelog: --partitions is for the partitions suite, not for storage');
    expect(existsSync(join(outDir, 'refused'))).toBe(false);
  });
});
