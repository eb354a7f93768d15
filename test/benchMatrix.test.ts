// `tidelog bench` (the end-to-end matrix): its pure parts (which points run, percentiles, the JSON
// row schema, the Markdown table, the target checks, the SVG charts) and one tiny run of the
// compiled CLI (`npm run build` first) into a temporary directory.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeXml, matrixCharts, niceCeiling, renderLineChart, renderLogBarChart, LATENCY_SERIES, THROUGHPUT_SERIES } from '../bench/charts.js';
import { BASE_POINT, MATRIX_AXES, TARGET_POINT, matrixPoints, samePoint, type MatrixPoint } from '../bench/matrixPlan.js';
import { formatTargetCheck, ratios, renderMarkdown, reportProblems, rowProblems, targetChecks, type MatrixReport, type MatrixRow } from '../bench/matrixReport.js';
import { LatencyRecorder, percentileOfSorted } from '../bench/percentiles.js';
import { runTidelog } from './support/brokerProcess.js';

const MIB = 1024 * 1024;

function axesDiffering(a: MatrixPoint, b: MatrixPoint): string[] {
  return (['partitions', 'segmentBytes', 'recordBytes', 'acks'] as const).filter((axis) => a[axis] !== b[axis]);
}

function row(point: MatrixPoint, client: MatrixRow['client'], op: MatrixRow['op'], recordsPerSec: number, extra: Partial<MatrixRow> = {}): MatrixRow {
  const produce = op === 'produce';
  return {
    ...point,
    client,
    op,
    recordsPerSec,
    mbPerSec: (recordsPerSec * point.recordBytes) / 1e6,
    p50Ms: produce ? 1.5 : null,
    p99Ms: produce ? 4 : null,
    p999Ms: produce ? 9.25 : null,
    records: recordsPerSec * 2,
    seconds: 2,
    stoppedBy: 'time',
    brokerCpuSec: 1.2,
    brokerRssMb: 80,
    clientCpuSec: 1.9,
    batchSize: produce ? 65536 : null,
    lingerMs: produce ? 5 : null,
    recordsPerSend: produce ? 1000 : null,
    sendsInFlight: produce ? 16 : null,
    ...extra,
  };
}

/** Rows for every point of a mode, tidelog `factor` times kafkajs. */
function rowsFor(points: readonly MatrixPoint[], factor = 6): MatrixRow[] {
  return points.flatMap((point) => [
    row(point, 'tidelog', 'produce', 100_000 * factor * point.partitions),
    row(point, 'kafkajs', 'produce', 100_000 * point.partitions),
    row(point, 'tidelog', 'consume', 200_000 * factor),
    row(point, 'kafkajs', 'consume', 200_000),
  ]);
}

function reportOf(rows: MatrixRow[]): MatrixReport {
  return {
    rows,
    meta: {
      date: '2026-11-22T12:00:00.000Z',
      mode: 'default',
      matrix: 'test matrix',
      node: 'v20.20.2',
      kafkajsVersion: '2.2.4',
      machine: { cpus: 2, cpuModel: 'test cpu', totalMemoryMb: 1000, platform: 'linux', arch: 'x64', loadAverageAtStart: [0.5, 0.25, 0.1] },
      note: 'a shared machine',
      durationSec: 12,
      measured: { 'produce latency': 'per send' },
      settings: { tidelogBatchSize: 65536 },
      broker: { peakRssMb: 90, warnLines: 0, errorLines: 0 },
      ratios: ratios(rows),
      targets: targetChecks(rows),
    },
  };
}

/**
 * Problems that make `text` not well-formed XML (as far as these charts go: a declaration,
 * elements, quoted attributes, text, the five predefined entities); empty when it is.
 */
function xmlProblems(text: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const entity = /&(amp|lt|gt|quot|apos);/y;
  const checkText = (chunk: string, where: number): void => {
    for (let i = chunk.indexOf('&'); i !== -1; i = chunk.indexOf('&', i + 1)) {
      entity.lastIndex = i;
      if (!entity.test(chunk)) problems.push(`a bare & at ${where + i}`);
    }
    if (chunk.includes('>') && chunk.includes('<')) problems.push(`markup inside text at ${where}`);
  };
  let position = 0;
  let roots = 0;
  const body = text.replace(/^<\?xml [^?]*\?>\s*/, (declaration) => {
    position = declaration.length;
    return '';
  });
  if (position === 0) problems.push('no XML declaration');
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let match = tag.exec(body); match !== null; match = tag.exec(body)) {
    const between = body.slice(last, match.index);
    if (between.includes('<')) problems.push(`an unreadable tag near ${position + last + between.indexOf('<')}: ${between.slice(between.indexOf('<'), between.indexOf('<') + 40)}`);
    checkText(between, position + last);
    const [, closing, name, attributes, selfClosing] = match as unknown as [string, string, string, string, string];
    for (const attribute of attributes.matchAll(/="([^"]*)"/g)) checkText(attribute[1]!, position + match.index);
    if (closing === '/') {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else if (selfClosing !== '/') {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) {
      roots++;
    }
    last = tag.lastIndex;
  }
  if (body.slice(last).trim().length > 0) problems.push(`text after the root: ${body.slice(last, last + 40)}`);
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

function seriesNames(svg: string): string[] {
  return [...svg.matchAll(/<g class="series" data-series="([^"]*)"/g)].map((match) => match[1]!);
}

describe('matrix points', () => {
  it('the default run varies one axis at a time around the base point and covers record size x acks at 1 partition', () => {
    const points = matrixPoints('default');
    expect(points).toHaveLength(15);
    expect(points.some((point) => samePoint(point, BASE_POINT))).toBe(true);
    for (let i = 0; i < points.length; i++) for (let j = i + 1; j < points.length; j++) expect(samePoint(points[i]!, points[j]!)).toBe(false);
    for (const point of points) {
      const differs = axesDiffering(point, BASE_POINT);
      const inSinglePartitionGrid = point.partitions === 1 && point.segmentBytes === BASE_POINT.segmentBytes;
      expect(differs.length <= 1 || inSinglePartitionGrid, `${JSON.stringify(point)} differs from the base in ${differs.join(', ')}`).toBe(true);
    }
    for (const partitions of MATRIX_AXES.partitions) expect(points.some((point) => point.partitions === partitions)).toBe(true);
    for (const segmentBytes of MATRIX_AXES.segmentBytes) expect(points.some((point) => point.segmentBytes === segmentBytes)).toBe(true);
    for (const recordBytes of MATRIX_AXES.recordBytes) {
      for (const acks of MATRIX_AXES.acks) expect(points.some((point) => point.partitions === 1 && point.recordBytes === recordBytes && point.acks === acks)).toBe(true);
    }
  });

  it('--full is the whole cross product, each point once', () => {
    const points = matrixPoints('full');
    expect(points).toHaveLength(4 * 4 * 3 * 2);
    expect(new Set(points.map((point) => JSON.stringify(point))).size).toBe(96);
  });

  it('--quick includes the target point (100-byte records, 1 partition, acks=1) and stays small', () => {
    const points = matrixPoints('quick');
    expect(points.some((point) => samePoint(point, TARGET_POINT))).toBe(true);
    expect(TARGET_POINT).toEqual({ partitions: 1, segmentBytes: 16 * MIB, recordBytes: 100, acks: 1 });
    expect(points.length).toBeLessThanOrEqual(4);
  });
});

describe('percentiles', () => {
  it('are nearest-rank over sorted samples', () => {
    const hundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentileOfSorted(hundred, 0.5)).toBe(50);
    expect(percentileOfSorted(hundred, 0.99)).toBe(99);
    expect(percentileOfSorted(hundred, 0.999)).toBe(100);
    expect(percentileOfSorted(hundred, 0)).toBe(1);
    expect(percentileOfSorted([7], 0.999)).toBe(7);
    expect(percentileOfSorted([], 0.5)).toBeNull();
    expect(() => percentileOfSorted(hundred, 1.5)).toThrow(/fraction in \[0, 1\]/);
  });

  it('the recorder sorts what it was given in any order and counts every sample', () => {
    const recorder = new LatencyRecorder(1000);
    for (const value of [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]) recorder.record(value);
    expect(recorder.summary()).toEqual({ count: 10, p50Ms: 5, p99Ms: 10, p999Ms: 10, maxMs: 10 });
    expect(new LatencyRecorder(4).summary()).toEqual({ count: 0, p50Ms: null, p99Ms: null, p999Ms: null, maxMs: null });
  });

  it('past its capacity the recorder keeps a uniform sample: percentiles stay close and the max stays exact', () => {
    const recorder = new LatencyRecorder(2_000);
    // 0..99,999 in a scrambled order (multiplication by a unit modulo 100,000).
    for (let i = 0; i < 100_000; i++) recorder.record((i * 7_919) % 100_000);
    const summary = recorder.summary();
    expect(summary.count).toBe(100_000);
    expect(summary.maxMs).toBe(99_999);
    expect(summary.p50Ms!).toBeGreaterThan(45_000);
    expect(summary.p50Ms!).toBeLessThan(55_000);
    expect(summary.p99Ms!).toBeGreaterThan(97_000);
  });

  it('refuses latencies that are not finite non-negative numbers, and a capacity without bound', () => {
    const recorder = new LatencyRecorder(8);
    expect(() => recorder.record(-1)).toThrow(/finite number >= 0/);
    expect(() => recorder.record(Number.NaN)).toThrow(/finite number >= 0/);
    expect(() => new LatencyRecorder(0)).toThrow(/capacity/);
    expect(() => new LatencyRecorder(Number.POSITIVE_INFINITY)).toThrow(/capacity/);
  });
});

describe('the JSON row schema', () => {
  it('accepts produce rows with latencies and consume rows without', () => {
    expect(rowProblems(row(TARGET_POINT, 'tidelog', 'produce', 1_000_000), 0)).toEqual([]);
    expect(rowProblems(row(TARGET_POINT, 'kafkajs', 'consume', 100_000), 1)).toEqual([]);
    expect(reportProblems(reportOf(rowsFor(matrixPoints('quick'))))).toEqual([]);
  });

  it('names each field that is missing or wrong', () => {
    const good = row(TARGET_POINT, 'tidelog', 'produce', 1_000);
    expect(rowProblems({ ...good, client: 'librdkafka' }, 3)).toEqual(['rows[3].client: must be "tidelog" or "kafkajs", got "librdkafka"']);
    expect(rowProblems({ ...good, acks: -1 }, 0)).toEqual(['rows[0].acks: must be 1 or "all", got -1']);
    expect(rowProblems({ ...good, partitions: 0 }, 0)).toEqual(['rows[0].partitions: must be a positive integer, got 0']);
    expect(rowProblems({ ...good, recordsPerSec: Number.NaN }, 0)).toEqual(['rows[0].recordsPerSec: must be a finite number >= 0, got null']);
    expect(rowProblems({ ...good, p99Ms: null }, 0)).toEqual(['rows[0].p99Ms: must be a finite number >= 0 on a produce row, got null']);
    expect(rowProblems({ ...good, p50Ms: 5, p99Ms: 4 }, 0)).toEqual(['rows[0]: percentiles out of order (p50 5, p99 4, p999 9.25)']);
    expect(rowProblems({ ...row(TARGET_POINT, 'tidelog', 'consume', 1_000), p50Ms: 1 }, 0)).toEqual(['rows[0].p50Ms: must be null on a consume row, got 1']);
    const { segmentBytes: _dropped, ...withoutSegment } = good;
    expect(rowProblems(withoutSegment, 0)).toEqual(['rows[0].segmentBytes: must be a positive integer, got undefined']);
    expect(rowProblems('row', 0)).toEqual(['rows[0]: not an object']);
  });

  it('checks the meta: date, node version, ratios and targets', () => {
    const report = reportOf(rowsFor([TARGET_POINT]));
    expect(reportProblems({ ...report, meta: { ...report.meta, date: 'yesterday', node: '20' } })).toEqual(['meta.date: not an ISO date, got "yesterday"', 'meta.node: not a Node version, got "20"']);
    expect(reportProblems({ rows: report.rows })).toEqual(['meta: not an object']);
    expect(reportProblems({ rows: {}, meta: report.meta })).toEqual(['rows: not an array']);
  });
});

describe('ratios and target checks', () => {
  it('divide tidelog by kafkajs at the same point and operation', () => {
    const entries = ratios(rowsFor([TARGET_POINT, BASE_POINT], 6));
    expect(entries).toHaveLength(4);
    for (const entry of entries) expect(entry.recordsPerSecRatio).toBeCloseTo(6, 10);
  });

  it('pass at 5x and 1,000,000 records/s, fail below, and say when the run did not measure them', () => {
    const passing = targetChecks(rowsFor([TARGET_POINT], 12));
    expect(passing.map((check) => check.pass)).toEqual([true, true, true]);
    expect(formatTargetCheck(passing[0]!)).toMatch(/^PASS bundled producer >= 5x kafkajs records\/s.*tidelog 1,200,000 rec\/s, kafkajs 100,000 rec\/s: 12\.00x$/);
    const failing = targetChecks(rowsFor([TARGET_POINT], 4));
    expect(failing.map((check) => check.pass)).toEqual([false, false, false]);
    expect(formatTargetCheck(failing[2]!)).toMatch(/^FAIL 1 partition ingests >= 1,000,000 rec\/s.*: 400,000 rec\/s/);
    const absent = targetChecks(rowsFor([BASE_POINT]));
    expect(absent.map((check) => check.pass)).toEqual([null, null, null]);
    expect(formatTargetCheck(absent[1]!)).toMatch(/^N\/A .*not measured in this run$/);
  });
});

describe('the Markdown table', () => {
  it('has one line per row, the ratio on tidelog lines, the note and the target lines', () => {
    const rows = rowsFor([TARGET_POINT, { ...TARGET_POINT, acks: 'all' }], 12);
    const markdown = renderMarkdown(reportOf(rows));
    const tableLines = markdown.split('\n').filter((line) => line.startsWith('| '));
    expect(tableLines).toHaveLength(1 + rows.length);
    expect(tableLines[0]).toMatch(/^\| Partitions \| Segment \| Record \| Acks \| Op \| Client \| Records\/s \| MB\/s \| p50 ms \| p99 ms \| p999 ms \|/);
    expect(tableLines[1]).toBe('| 1 | 16 MiB | 100 B | 1 | produce | tidelog | 1,200,000 | 120 | 1.50 | 4.00 | 9.25 | 1.20 | 80.0 | 64 KiB | 5 | 12.00x |');
    expect(tableLines[4]).toBe('| 1 | 16 MiB | 100 B | 1 | consume | kafkajs | 200,000 | 20.0 | - | - | - | 1.20 | 80.0 | - | - |  |');
    expect(tableLines[5]).toContain('| all (flush.messages=1) | produce | tidelog |');
    expect(markdown).toContain('Note: a shared machine');
    expect(markdown).toMatch(/\n- PASS bundled producer >= 5x/);
    expect(markdown).toMatch(/\n- PASS 1 partition ingests >= 1,000,000 rec\/s/);
  });
});

describe('the SVG charts', () => {
  it('are well-formed XML with the four throughput series and the six latency series', () => {
    const charts = matrixCharts(rowsFor(matrixPoints('default')));
    expect(charts.map((chart) => chart.fileName)).toEqual(['throughput-vs-partitions.svg', 'throughput-vs-segment-bytes.svg', 'latency-percentiles.svg']);
    for (const chart of charts) expect(xmlProblems(chart.svg), chart.fileName).toEqual([]);
    const [partitions, segments, latency] = charts.map((chart) => chart.svg) as [string, string, string];
    expect(seriesNames(partitions)).toEqual([...THROUGHPUT_SERIES]);
    expect(seriesNames(segments)).toEqual([...THROUGHPUT_SERIES]);
    expect(seriesNames(latency)).toEqual([...LATENCY_SERIES]);
  });

  it('plot against partitions the slice that varies them (the base point slice: 1 KiB, 16 MiB, acks=1)', () => {
    const [partitions, segments] = matrixCharts(rowsFor(matrixPoints('default'))).map((chart) => chart.svg) as [string, string];
    expect(partitions).toContain('Throughput against partitions (segments 16 MiB, 1 KiB records, acks=1)');
    const xLabels = (svg: string): string[] => [...svg.slice(svg.indexOf('<g class="x-axis">'), svg.indexOf('</g>', svg.indexOf('<g class="x-axis">'))).matchAll(/>([^<]+)<\/text>/g)].map((match) => match[1]!);
    expect(xLabels(partitions)).toEqual(['1', '4', '16', '64']);
    expect(xLabels(segments)).toEqual(['1 MiB', '16 MiB', '128 MiB', '1 GiB']);
    // One circle per measured point per series: 4 partition counts x 4 series.
    expect(partitions.match(/<circle /g)).toHaveLength(16);
  });

  it('escape text, leave gaps for unmeasured values and keep a log axis positive', () => {
    const line = renderLineChart({ title: 'a <b> & "c"', xLabel: 'x', yLabel: 'y', categories: ['1', '2', '3'], series: [{ name: 's&p', values: [1, null, 3] }] });
    expect(xmlProblems(line)).toEqual([]);
    expect(line).toContain(escapeXml('a <b> & "c"'));
    expect(line).toContain('data-series="s&amp;p"');
    expect(line.match(/<circle /g)).toHaveLength(2);
    expect(line).not.toContain('<polyline'); // two points with a gap between them: no line
    const bars = renderLogBarChart({ title: 't', xLabel: 'x', yLabel: 'ms', categories: ['a', 'b'], series: [{ name: 'p50', values: [0.01, 250] }, { name: 'p99', values: [null, 900] }] });
    expect(xmlProblems(bars)).toEqual([]);
    expect(bars.match(/<rect [^>]*><title>/g)).toHaveLength(3); // one bar per measured value
    expect(niceCeiling(1_234_567)).toBe(2_000_000);
    expect(niceCeiling(0)).toBe(1);
  });

  it('the XML checker used here rejects what is not well-formed', () => {
    expect(xmlProblems('<?xml version="1.0"?><svg><g></svg>')).not.toEqual([]);
    expect(xmlProblems('<?xml version="1.0"?><svg><text>a & b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<?xml version="1.0"?><svg><text>ok</text></svg>')).toEqual([]);
  });
});

describe('tidelog bench (the compiled CLI)', () => {
  let outDir: string;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'tidelog-bench-matrix-test-'));
  });

  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  it('runs the quick matrix with a few records a phase and writes latest.json, latest.md and the SVGs to --out-dir', async () => {
    const result = await runTidelog(['bench', '--quick', '--max-records', '300', '--warmup-ms', '0', '--out-dir', outDir, '--note', 'smoke test'], { timeoutMs: 45_000 });
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(await readFile(join(outDir, 'latest.json'), 'utf8')) as MatrixReport;
    expect(reportProblems(report)).toEqual([]);
    const points = matrixPoints('quick');
    expect(report.rows).toHaveLength(points.length * 4);
    for (const point of points) {
      for (const client of ['tidelog', 'kafkajs'] as const) {
        for (const op of ['produce', 'consume'] as const) {
          const found = report.rows.filter((candidate) => candidate.client === client && candidate.op === op && samePoint(candidate, point));
          expect(found, `${client} ${op} ${JSON.stringify(point)}`).toHaveLength(1);
          expect(found[0]!.records).toBeGreaterThan(0);
          expect(found[0]!.records).toBeLessThanOrEqual(300);
        }
      }
    }
    expect(report.meta.note).toBe('smoke test');
    expect(report.meta.mode).toBe('quick');
    expect(report.meta.ratios).toHaveLength(points.length * 2);
    expect(report.meta.targets.map((check) => typeof check.pass)).toEqual(['boolean', 'boolean', 'boolean']);
    for (const name of ['latest.md', 'throughput-vs-partitions.svg', 'throughput-vs-segment-bytes.svg', 'latency-percentiles.svg']) expect(existsSync(join(outDir, name)), name).toBe(true);
    const stdout = result.stdout.toString('utf8');
    expect(stdout.split('\n').filter((line) => /^(PASS|FAIL) /.test(line))).toHaveLength(3);
    // Piped stderr: a plain line per row, no bar redrawn with carriage returns.
    expect(result.stderr).not.toContain('\r');
    const rowLines = result.stderr.split('\n').filter((line) => / row \d+\/\d+ /.test(line));
    expect(rowLines).toHaveLength(points.length * 4);
    expect(rowLines.at(-1)).toContain(` row ${points.length * 4}/${points.length * 4} `);
  }, 60_000);

  it('refuses flags that do not fit, with a one-line reason and exit code 2', async () => {
    const both = await runTidelog(['bench', '--quick', '--full', '--out-dir', outDir], { timeoutMs: 15_000 });
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('tidelog: --full and --quick exclude each other');
    const tiny = await runTidelog(['bench', '--batch-size', '10', '--out-dir', outDir], { timeoutMs: 15_000 });
    expect(tiny.code).toBe(2);
    expect(tiny.stderr.trim()).toMatch(/^tidelog: --batch-size must be an integer in \[1024, 1048576\], got 10$/);
    const wrongSuite = await runTidelog(['bench', 'storage', '--out-dir', outDir], { timeoutMs: 15_000 });
    expect(wrongSuite.code).toBe(2);
    expect(wrongSuite.stderr.trim()).toBe('tidelog: --out-dir is for the matrix; storage takes --out');
  });
});
