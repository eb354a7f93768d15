// The end-to-end matrix's results: the JSON row schema (and a validator for it), the
// tidelog/kafkajs ratios, the issue's target checks and the Markdown table. Pure: no I/O.
import type { MachineFacts } from './benchStats.js';
import { TARGET_POINT, formatBinaryBytes, pointLabel, samePoint, type AcksSetting, type MatrixMode, type MatrixPoint } from './matrixPlan.js';

export type BenchClient = 'tidelog' | 'kafkajs';
export type BenchOp = 'produce' | 'consume';

/** One measurement: one client, one operation, one matrix point. */
export interface MatrixRow extends MatrixPoint {
  client: BenchClient;
  op: BenchOp;
  recordsPerSec: number;
  /** Payload (value) bytes per second, MB = 10^6. */
  mbPerSec: number;
  /** Per-send acknowledgement latency (produce); null for consume rows. */
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  records: number;
  seconds: number;
  /** Which bound ended the phase. */
  stoppedBy: 'count' | 'time';
  /** utime + stime of the broker process during the phase. */
  brokerCpuSec: number;
  /** The largest broker VmRSS sampled during the phase; null where /proc does not say. */
  brokerRssMb: number | null;
  /** CPU of this (client) process during the phase. */
  clientCpuSec: number;
  /** tidelog: the producer's batch.size; kafkajs: the bytes of one send() (it has no batch.size). Null on consume rows. */
  batchSize: number | null;
  /** tidelog: the producer's linger.ms; kafkajs: 0 (it sends at once). Null on consume rows. */
  lingerMs: number | null;
  /** Records per send call (produce) or null. */
  recordsPerSend: number | null;
  sendsInFlight: number | null;
}

export interface RatioEntry extends MatrixPoint {
  op: BenchOp;
  /** tidelog records/s divided by kafkajs records/s at this point. */
  recordsPerSecRatio: number;
}

export interface TargetCheck {
  name: string;
  /** null: the run did not measure what the target needs. */
  pass: boolean | null;
  measured: string;
}

export interface MatrixMeta {
  date: string;
  mode: MatrixMode;
  matrix: string;
  node: string;
  kafkajsVersion: string;
  machine: MachineFacts;
  /** Free text from --note (e.g. "shared machine"). */
  note: string | null;
  durationSec: number;
  measured: Record<string, string>;
  settings: Record<string, number | string>;
  broker: { peakRssMb: number | null; warnLines: number; errorLines: number };
  ratios: RatioEntry[];
  targets: TargetCheck[];
}

export interface MatrixReport {
  rows: MatrixRow[];
  meta: MatrixMeta;
}

// ---------------------------------------------------------------------------------------------
// Schema

const CLIENTS: readonly string[] = ['tidelog', 'kafkajs'];
const OPS: readonly string[] = ['produce', 'consume'];

function isFiniteNonNegative(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** What is wrong with one row, as "rows[i].field: reason" lines; empty when it matches the schema. */
export function rowProblems(row: unknown, index: number): string[] {
  const at = `rows[${index}]`;
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return [`${at}: not an object`];
  const value = row as Record<string, unknown>;
  const problems: string[] = [];
  if (!CLIENTS.includes(value['client'] as string)) problems.push(`${at}.client: must be "tidelog" or "kafkajs", got ${JSON.stringify(value['client'])}`);
  if (!OPS.includes(value['op'] as string)) problems.push(`${at}.op: must be "produce" or "consume", got ${JSON.stringify(value['op'])}`);
  for (const field of ['recordBytes', 'partitions', 'segmentBytes']) {
    if (!Number.isSafeInteger(value[field]) || (value[field] as number) < 1) problems.push(`${at}.${field}: must be a positive integer, got ${JSON.stringify(value[field])}`);
  }
  if (value['acks'] !== 1 && value['acks'] !== 'all') problems.push(`${at}.acks: must be 1 or "all", got ${JSON.stringify(value['acks'])}`);
  for (const field of ['recordsPerSec', 'mbPerSec']) {
    if (!isFiniteNonNegative(value[field])) problems.push(`${at}.${field}: must be a finite number >= 0, got ${JSON.stringify(value[field])}`);
  }
  const latencies = ['p50Ms', 'p99Ms', 'p999Ms'].map((field) => [field, value[field]] as const);
  for (const [field, latency] of latencies) {
    const allowed = value['op'] === 'consume' ? latency === null : isFiniteNonNegative(latency);
    if (!allowed) problems.push(`${at}.${field}: must be ${value['op'] === 'consume' ? 'null on a consume row' : 'a finite number >= 0 on a produce row'}, got ${JSON.stringify(latency)}`);
  }
  if (value['op'] === 'produce' && latencies.every(([, latency]) => isFiniteNonNegative(latency))) {
    const [p50, p99, p999] = latencies.map(([, latency]) => latency as number) as [number, number, number];
    if (!(p50 <= p99 && p99 <= p999)) problems.push(`${at}: percentiles out of order (p50 ${p50}, p99 ${p99}, p999 ${p999})`);
  }
  return problems;
}

/** Every way `report` differs from {rows: MatrixRow[], meta: {...}}; empty when it matches. */
export function reportProblems(report: unknown): string[] {
  if (typeof report !== 'object' || report === null) return ['the report is not an object'];
  const value = report as Record<string, unknown>;
  const problems: string[] = [];
  if (!Array.isArray(value['rows'])) problems.push('rows: not an array');
  else value['rows'].forEach((row, index) => problems.push(...rowProblems(row, index)));
  const meta = value['meta'] as Record<string, unknown> | undefined;
  if (typeof meta !== 'object' || meta === null) return [...problems, 'meta: not an object'];
  if (typeof meta['date'] !== 'string' || Number.isNaN(Date.parse(meta['date']))) problems.push(`meta.date: not an ISO date, got ${JSON.stringify(meta['date'])}`);
  if (typeof meta['node'] !== 'string' || !meta['node'].startsWith('v')) problems.push(`meta.node: not a Node version, got ${JSON.stringify(meta['node'])}`);
  if (typeof meta['machine'] !== 'object' || meta['machine'] === null) problems.push('meta.machine: not an object');
  if (!Array.isArray(meta['ratios'])) problems.push('meta.ratios: not an array');
  if (!Array.isArray(meta['targets'])) problems.push('meta.targets: not an array');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Ratios and targets

function pointOf(row: MatrixPoint): MatrixPoint {
  return { partitions: row.partitions, segmentBytes: row.segmentBytes, recordBytes: row.recordBytes, acks: row.acks };
}

function findRow(rows: readonly MatrixRow[], point: MatrixPoint, client: BenchClient, op: BenchOp): MatrixRow | undefined {
  return rows.find((row) => row.client === client && row.op === op && samePoint(row, point));
}

/** tidelog/kafkajs records/s for every (point, op) both clients measured, in row order. */
export function ratios(rows: readonly MatrixRow[]): RatioEntry[] {
  const entries: RatioEntry[] = [];
  for (const row of rows) {
    if (row.client !== 'tidelog') continue;
    const baseline = findRow(rows, row, 'kafkajs', row.op);
    if (baseline === undefined || baseline.recordsPerSec === 0) continue;
    entries.push({ ...pointOf(row), op: row.op, recordsPerSecRatio: row.recordsPerSec / baseline.recordsPerSec });
  }
  return entries;
}

const RATIO_TARGET = 5;
const SINGLE_PARTITION_TARGET_RECORDS_PER_SEC = 1_000_000;

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function ratioCheck(rows: readonly MatrixRow[], op: BenchOp, who: string): TargetCheck {
  const name = `bundled ${who} >= ${RATIO_TARGET}x kafkajs records/s, 100 B records (${pointLabel(TARGET_POINT)}, same run)`;
  const tidelog = findRow(rows, TARGET_POINT, 'tidelog', op);
  const kafkajs = findRow(rows, TARGET_POINT, 'kafkajs', op);
  if (tidelog === undefined || kafkajs === undefined || kafkajs.recordsPerSec === 0) return { name, pass: null, measured: 'not measured in this run' };
  const ratio = tidelog.recordsPerSec / kafkajs.recordsPerSec;
  return { name, pass: ratio >= RATIO_TARGET, measured: `tidelog ${count(tidelog.recordsPerSec)} rec/s, kafkajs ${count(kafkajs.recordsPerSec)} rec/s: ${ratio.toFixed(2)}x` };
}

/** The issue's three targets, judged on this run's rows. */
export function targetChecks(rows: readonly MatrixRow[]): TargetCheck[] {
  const ingestName = `1 partition ingests >= ${count(SINGLE_PARTITION_TARGET_RECORDS_PER_SEC)} rec/s of 100 B with acks=1 (bundled producer, ${pointLabel(TARGET_POINT)})`;
  const ingest = findRow(rows, TARGET_POINT, 'tidelog', 'produce');
  return [
    ratioCheck(rows, 'produce', 'producer'),
    ratioCheck(rows, 'consume', 'consumer'),
    ingest === undefined
      ? { name: ingestName, pass: null, measured: 'not measured in this run' }
      : { name: ingestName, pass: ingest.recordsPerSec >= SINGLE_PARTITION_TARGET_RECORDS_PER_SEC, measured: `${count(ingest.recordsPerSec)} rec/s, ${ingest.mbPerSec.toFixed(1)} MB/s` },
  ];
}

/** "PASS name: measured", "FAIL ...", or "N/A ..." when the run did not measure it. */
export function formatTargetCheck(check: TargetCheck): string {
  const verdict = check.pass === null ? 'N/A ' : check.pass ? 'PASS' : 'FAIL';
  return `${verdict} ${check.name}: ${check.measured}`;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function number(value: number | null, digits = 2): string {
  if (value === null) return '-';
  if (Math.abs(value) >= 100) return count(value);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(digits);
}

function acksLabel(acks: AcksSetting): string {
  return acks === 'all' ? 'all (flush.messages=1)' : '1';
}

/** The rows as one Markdown table (tidelog rows carry the ratio to kafkajs), then the targets. */
export function renderMarkdown(report: MatrixReport): string {
  const { meta } = report;
  const ratioByKey = new Map(meta.ratios.map((entry) => [`${pointLabel(entry)}|${entry.op}`, entry.recordsPerSecRatio]));
  const lines = [
    `# tidelog bench: end-to-end matrix (${meta.mode})`,
    '',
    `${meta.date}; Node ${meta.node}; kafkajs ${meta.kafkajsVersion}; ${meta.machine.cpus} CPUs (${meta.machine.cpuModel}), ${count(meta.machine.totalMemoryMb)} MB RAM, shared by broker and clients; load average at start ${meta.machine.loadAverageAtStart.map((load) => load.toFixed(2)).join(' ')}; ${meta.durationSec.toFixed(0)} s.`,
    ...(meta.note === null ? [] : ['', `Note: ${meta.note}`]),
    '',
    `Matrix: ${meta.matrix}`,
    '',
    ...Object.entries(meta.measured).map(([what, how]) => `- ${what}: ${how}`),
    '',
    '| Partitions | Segment | Record | Acks | Op | Client | Records/s | MB/s | p50 ms | p99 ms | p999 ms | Broker CPU s | Broker RSS MB | Batch size | Linger ms | tidelog/kafkajs |',
    '|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of report.rows) {
    const ratio = row.client === 'tidelog' ? ratioByKey.get(`${pointLabel(row)}|${row.op}`) : undefined;
    lines.push(
      `| ${row.partitions} | ${formatBinaryBytes(row.segmentBytes)} | ${formatBinaryBytes(row.recordBytes)} | ${acksLabel(row.acks)} | ${row.op} | ${row.client} | ${count(row.recordsPerSec)} | ${number(row.mbPerSec)} | ${number(row.p50Ms)} | ${number(row.p99Ms)} | ${number(row.p999Ms)} | ${number(row.brokerCpuSec)} | ${number(row.brokerRssMb)} | ${row.batchSize === null ? '-' : formatBinaryBytes(row.batchSize)} | ${row.lingerMs ?? '-'} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}x`} |`,
    );
  }
  lines.push('', `Broker: peak RSS ${meta.broker.peakRssMb === null ? 'unknown' : `${number(meta.broker.peakRssMb)} MB`} over the run, ${meta.broker.warnLines} WARN and ${meta.broker.errorLines} ERROR log lines.`);
  lines.push('', '## Targets', '', ...meta.targets.map((check) => `- ${formatTargetCheck(check)}`));
  return `${lines.join('\n')}\n`;
}
