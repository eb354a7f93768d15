// The report of `tidelog bench partitions` (bench/partitionsBench.ts): its JSON schema, the checks
// of a report against it, the per-partition costs, the issue 18 targets, the Markdown summary and
// the SVG chart of cost per partition against the partition count. Pure: no I/O.
//
// latest.json:
//
//   meta      date (ISO), node (version), machine (bench/benchStats.ts MachineFacts: cpus, model,
//             memory, load averages at the start), mode ("default" | "quick" | "chosen": counts
//             from --partitions), counts (the partition counts asked for, ascending), phaseMs (the
//             least time each throughput phase runs), phaseTimeoutMs (--phase-timeout-ms: every
//             bound replaced by it, or null: bounds scaled with the count), note (--note or null)
//   settings  how the load is shaped, the constants of partitionsBench.ts: partitionsPerTopic,
//             topicsPerCreateRequest, valueBytes, singlePartitionsPerRequest,
//             batchedRecordsPerPartition, batchedPartitionsPerRequest, requestsInFlight,
//             fetchMaxBytes, fetchPartitionMaxBytes, metadataSamples, baselineRuns
//   baseline  an empty broker (no topics), started and stopped `runs` times before the counts:
//             medians of startMs, stopMs, rssKb, openFds; fdLimit (the broker's soft "Max open
//             files"); failure (PhaseFailure or null). Per-partition costs are net of it.
//   counts[]  one CountRow per count asked for, in order, with every field present (null: not
//             measured, because the count was skipped or an earlier phase of it failed):
//     partitions, topics (of at most partitionsPerTopic partitions each)
//     outcome          "complete" | "timed out" | "failed" | "skipped"
//     boundsMs         the time bound of each phase kind: start, create, stop, metadata, traffic
//     createMs         CreateTopics of all topics (topicsPerCreateRequest a request) until every
//                      partition has a leader in Metadata (the bundled admin client)
//     cleanStopMs      SIGTERM to exit, right after the create
//     cleanStartMs     spawn to the broker answering Metadata for all topics, every partition with
//                      a leader, after that clean stop
//     rssKbAfterStart, openFdsAfterStart        VmRSS and entries of /proc/<pid>/fd then
//     metadataMs, metadataMaxMs, metadataBytes  Metadata for all topics: median and max of
//                      metadataSamples requests, response size on the wire (size prefix included)
//     produceOnePerPartition, produceBatched, consume: a Comparison (below) each
//     crashStartMs     spawn to answering Metadata for all topics after kill -9 (SIGKILL) of the
//                      broker that took the traffic
//     rssKbAfterCrashStart, openFdsAfterCrashStart
//     peakRssKb        VmHWM of the broker started after the crash, before its stop
//     finalStopMs      SIGTERM to exit of that broker (partitions with data, recovered)
//     perPartition     createMs, cleanStartMs, crashStartMs, cleanStopMs (ms a partition) and rssKb
//                      (KB a partition), each net of the empty broker's baseline: (x - baseline) / partitions
//     startLog         the broker's "opened partition logs" summary line of the clean and the crash
//                      start (timestamp dropped), or null when it logged none
//     brokerWarnLines, brokerErrorLines  WARN and ERROR lines the count's brokers logged
//     failure          PhaseFailure or null; skippedBecause: why the count did not run, or null
//   targets[] the issue 18 targets at 10,000 partitions: what, limit, unit, value, pass (null when
//             10,000 partitions were not measured)
//
//   Comparison: spread (records over every partition of the count), onePartition (the same total
//   of records to a topic of 1 partition, requests of the same size, same run), ratio (spread
//   records/s / onePartition records/s). Each side a Throughput: records, bytes (record batch bytes),
//   requests, seconds, recordsPerSec, mbPerSec (10^6 bytes).
//   PhaseFailure: phase (e.g. "clean start"), kind ("timeout" | "error"), boundMs, message,
//   logTail (the broker's newest log lines when it failed, or null without a broker).
import { escapeXml, formatAxisNumber, niceCeiling } from './charts.js';
import type { MachineFacts } from './benchStats.js';

// ---------------------------------------------------------------------------------------------
// Schema

export type CountOutcome = 'complete' | 'timed out' | 'failed' | 'skipped';
export const COUNT_OUTCOMES: readonly CountOutcome[] = ['complete', 'timed out', 'failed', 'skipped'];

export interface PhaseFailure {
  phase: string;
  kind: 'timeout' | 'error';
  boundMs: number;
  message: string;
  logTail: string | null;
}

export interface PhaseBounds {
  start: number;
  create: number;
  stop: number;
  metadata: number;
  traffic: number;
}

export interface Throughput {
  records: number;
  bytes: number;
  requests: number;
  seconds: number;
  recordsPerSec: number;
  mbPerSec: number;
}

export interface Comparison {
  spread: Throughput;
  onePartition: Throughput;
  ratio: number;
}

export interface PerPartitionCost {
  createMs: number | null;
  cleanStartMs: number | null;
  crashStartMs: number | null;
  cleanStopMs: number | null;
  rssKb: number | null;
}

export interface CountRow {
  partitions: number;
  topics: number;
  outcome: CountOutcome;
  boundsMs: PhaseBounds;
  createMs: number | null;
  cleanStopMs: number | null;
  cleanStartMs: number | null;
  rssKbAfterStart: number | null;
  openFdsAfterStart: number | null;
  metadataMs: number | null;
  metadataMaxMs: number | null;
  metadataBytes: number | null;
  produceOnePerPartition: Comparison | null;
  produceBatched: Comparison | null;
  consume: Comparison | null;
  crashStartMs: number | null;
  rssKbAfterCrashStart: number | null;
  openFdsAfterCrashStart: number | null;
  peakRssKb: number | null;
  finalStopMs: number | null;
  perPartition: PerPartitionCost;
  startLog: { clean: string | null; crash: string | null };
  brokerWarnLines: number | null;
  brokerErrorLines: number | null;
  failure: PhaseFailure | null;
  skippedBecause: string | null;
}

/** The measured number fields of a row: all of them are numbers on a complete row. */
export const MEASURED_FIELDS = [
  'createMs',
  'cleanStopMs',
  'cleanStartMs',
  'rssKbAfterStart',
  'openFdsAfterStart',
  'metadataMs',
  'metadataMaxMs',
  'metadataBytes',
  'crashStartMs',
  'rssKbAfterCrashStart',
  'openFdsAfterCrashStart',
  'peakRssKb',
  'finalStopMs',
  'brokerWarnLines',
  'brokerErrorLines',
] as const satisfies ReadonlyArray<keyof CountRow>;
export const COMPARISON_FIELDS = ['produceOnePerPartition', 'produceBatched', 'consume'] as const satisfies ReadonlyArray<keyof CountRow>;
export const PER_PARTITION_FIELDS = ['createMs', 'cleanStartMs', 'crashStartMs', 'cleanStopMs', 'rssKb'] as const satisfies ReadonlyArray<keyof PerPartitionCost>;
const THROUGHPUT_FIELDS = ['records', 'bytes', 'requests', 'seconds', 'recordsPerSec', 'mbPerSec'] as const satisfies ReadonlyArray<keyof Throughput>;
const BOUND_FIELDS = ['start', 'create', 'stop', 'metadata', 'traffic'] as const satisfies ReadonlyArray<keyof PhaseBounds>;

export interface EmptyBrokerBaseline {
  runs: number;
  startMs: number | null;
  stopMs: number | null;
  rssKb: number | null;
  openFds: number | null;
  fdLimit: number | null;
  failure: PhaseFailure | null;
}

export interface PartitionsSettings {
  partitionsPerTopic: number;
  topicsPerCreateRequest: number;
  valueBytes: number;
  singlePartitionsPerRequest: number;
  batchedRecordsPerPartition: number;
  batchedPartitionsPerRequest: number;
  requestsInFlight: number;
  fetchMaxBytes: number;
  fetchPartitionMaxBytes: number;
  metadataSamples: number;
  baselineRuns: number;
}

export interface TargetCheck {
  what: string;
  limit: number;
  unit: 'ms' | 'MB';
  value: number | null;
  pass: boolean | null;
}

export interface PartitionsReport {
  meta: {
    date: string;
    node: string;
    machine: MachineFacts;
    mode: 'default' | 'quick' | 'chosen';
    counts: number[];
    phaseMs: number;
    phaseTimeoutMs: number | null;
    note: string | null;
  };
  settings: PartitionsSettings;
  baseline: EmptyBrokerBaseline;
  counts: CountRow[];
  targets: TargetCheck[];
}

/** A row with nothing measured yet. */
export function emptyCountRow(partitions: number, topics: number, boundsMs: PhaseBounds): CountRow {
  return {
    partitions,
    topics,
    outcome: 'skipped',
    boundsMs,
    createMs: null,
    cleanStopMs: null,
    cleanStartMs: null,
    rssKbAfterStart: null,
    openFdsAfterStart: null,
    metadataMs: null,
    metadataMaxMs: null,
    metadataBytes: null,
    produceOnePerPartition: null,
    produceBatched: null,
    consume: null,
    crashStartMs: null,
    rssKbAfterCrashStart: null,
    openFdsAfterCrashStart: null,
    peakRssKb: null,
    finalStopMs: null,
    perPartition: { createMs: null, cleanStartMs: null, crashStartMs: null, cleanStopMs: null, rssKb: null },
    startLog: { clean: null, crash: null },
    brokerWarnLines: null,
    brokerErrorLines: null,
    failure: null,
    skippedBecause: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Derived numbers

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function throughputOf(records: number, bytes: number, requests: number, seconds: number): Throughput {
  if (!(seconds > 0)) throw new RangeError(`a throughput phase must take some time, got ${seconds} s`);
  return { records, bytes, requests, seconds: round(seconds, 3), recordsPerSec: Math.round(records / seconds), mbPerSec: round(bytes / seconds / 1e6) };
}

export function comparisonOf(spread: Throughput, onePartition: Throughput): Comparison {
  return { spread, onePartition, ratio: onePartition.recordsPerSec > 0 ? round(spread.recordsPerSec / onePartition.recordsPerSec, 3) : 0 };
}

/** (value - baseline) / partitions, null when either is unknown. */
function netPerPartition(value: number | null, baseline: number | null, partitions: number, digits: number): number | null {
  if (value === null || baseline === null) return null;
  return round((value - baseline) / partitions, digits);
}

/** Each row's cost per partition, net of the empty broker's. */
export function perPartitionCost(row: CountRow, baseline: EmptyBrokerBaseline): PerPartitionCost {
  return {
    createMs: row.createMs === null ? null : round(row.createMs / row.partitions, 4),
    cleanStartMs: netPerPartition(row.cleanStartMs, baseline.startMs, row.partitions, 4),
    crashStartMs: netPerPartition(row.crashStartMs, baseline.startMs, row.partitions, 4),
    cleanStopMs: netPerPartition(row.cleanStopMs, baseline.stopMs, row.partitions, 4),
    rssKb: netPerPartition(row.rssKbAfterStart, baseline.rssKb, row.partitions, 3),
  };
}

/** The partition count issue 18 sets its targets at. */
export const TARGET_PARTITIONS = 10_000;
const TARGETS: ReadonlyArray<{ what: string; limit: number; unit: 'ms' | 'MB'; value: (row: CountRow) => number | null }> = [
  { what: 'create', limit: 5_000, unit: 'ms', value: (row) => row.createMs },
  { what: 'clean start', limit: 5_000, unit: 'ms', value: (row) => row.cleanStartMs },
  { what: 'start after kill -9', limit: 10_000, unit: 'ms', value: (row) => row.crashStartMs },
  { what: 'clean stop', limit: 2_000, unit: 'ms', value: (row) => row.cleanStopMs },
  { what: 'RSS after start', limit: 500, unit: 'MB', value: (row) => (row.rssKbAfterStart === null ? null : round((row.rssKbAfterStart * 1024) / 1e6, 1)) },
];

export function targetChecks(rows: readonly CountRow[]): TargetCheck[] {
  const row = rows.find((candidate) => candidate.partitions === TARGET_PARTITIONS);
  return TARGETS.map((target) => {
    const value = row === undefined ? null : target.value(row);
    return { what: target.what, limit: target.limit, unit: target.unit, value, pass: value === null ? null : value < target.limit };
  });
}

export function formatTargetCheck(check: TargetCheck): string {
  const verdict = check.pass === null ? 'N/A' : check.pass ? 'PASS' : 'FAIL';
  const limit = `${check.what} < ${check.unit === 'ms' ? `${check.limit / 1000} s` : `${check.limit} MB`} at ${TARGET_PARTITIONS.toLocaleString('en-US')} partitions`;
  if (check.value === null) return `${verdict} ${limit}: not measured in this run`;
  return `${verdict} ${limit}: ${check.unit === 'ms' ? `${(check.value / 1000).toFixed(2)} s` : `${check.value} MB`}`;
}

// ---------------------------------------------------------------------------------------------
// Checks of a report (the test reads latest.json through these)

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberProblem(path: string, value: unknown, allowNull: boolean, allowNegative = false): string | null {
  if (value === null && allowNull) return null;
  if (typeof value === 'number' && Number.isFinite(value) && (allowNegative || value >= 0)) return null;
  return `${path}: must be a finite number${allowNegative ? '' : ' >= 0'}${allowNull ? ' or null' : ''}, got ${JSON.stringify(value)}`;
}

function throughputProblems(path: string, value: unknown): string[] {
  if (!isObject(value)) return [`${path}: not an object`];
  const problems = THROUGHPUT_FIELDS.map((field) => numberProblem(`${path}.${field}`, value[field], false)).filter((problem): problem is string => problem !== null);
  if (value.records === 0) problems.push(`${path}.records: no records moved`);
  return problems;
}

function failureProblems(path: string, value: unknown): string[] {
  if (!isObject(value)) return [`${path}: not an object`];
  const problems: string[] = [];
  if (typeof value.phase !== 'string' || value.phase.length === 0) problems.push(`${path}.phase: must be a phase name`);
  if (value.kind !== 'timeout' && value.kind !== 'error') problems.push(`${path}.kind: must be "timeout" or "error", got ${JSON.stringify(value.kind)}`);
  const bound = numberProblem(`${path}.boundMs`, value.boundMs, false);
  if (bound !== null) problems.push(bound);
  if (typeof value.message !== 'string') problems.push(`${path}.message: must be a string`);
  if (value.logTail !== null && typeof value.logTail !== 'string') problems.push(`${path}.logTail: must be a string or null`);
  return problems;
}

/** What is wrong with one row of counts[]: a complete row has every field measured. */
export function countRowProblems(value: unknown, index: number): string[] {
  const path = `counts[${index}]`;
  if (!isObject(value)) return [`${path}: not an object`];
  const problems: string[] = [];
  const complete = value.outcome === 'complete';
  if (!(COUNT_OUTCOMES as readonly unknown[]).includes(value.outcome)) problems.push(`${path}.outcome: must be one of ${COUNT_OUTCOMES.join(', ')}, got ${JSON.stringify(value.outcome)}`);
  for (const field of ['partitions', 'topics'] as const) {
    if (!Number.isSafeInteger(value[field]) || (value[field] as number) < 1) problems.push(`${path}.${field}: must be a positive integer, got ${JSON.stringify(value[field])}`);
  }
  const bounds = value.boundsMs;
  if (!isObject(bounds)) problems.push(`${path}.boundsMs: not an object`);
  else for (const field of BOUND_FIELDS) {
    const problem = numberProblem(`${path}.boundsMs.${field}`, bounds[field], false);
    if (problem !== null) problems.push(problem);
  }
  for (const field of MEASURED_FIELDS) {
    if (!(field in value)) {
      problems.push(`${path}.${field}: missing`);
      continue;
    }
    const problem = numberProblem(`${path}.${field}`, value[field], !complete);
    if (problem !== null) problems.push(problem);
  }
  for (const field of COMPARISON_FIELDS) {
    if (!(field in value)) problems.push(`${path}.${field}: missing`);
    else if (value[field] === null) {
      if (complete) problems.push(`${path}.${field}: not measured on a complete row`);
    } else if (!isObject(value[field])) problems.push(`${path}.${field}: not an object`);
    else {
      const comparison = value[field];
      problems.push(...throughputProblems(`${path}.${field}.spread`, comparison.spread), ...throughputProblems(`${path}.${field}.onePartition`, comparison.onePartition));
      const ratio = numberProblem(`${path}.${field}.ratio`, comparison.ratio, false);
      if (ratio !== null) problems.push(ratio);
      if (isObject(comparison.spread) && isObject(comparison.onePartition) && comparison.spread.records !== comparison.onePartition.records) {
        problems.push(`${path}.${field}: spread moved ${String(comparison.spread.records)} records, one partition ${String(comparison.onePartition.records)}`);
      }
    }
  }
  const perPartition = value.perPartition;
  if (!isObject(perPartition)) problems.push(`${path}.perPartition: not an object`);
  else for (const field of PER_PARTITION_FIELDS) {
    if (!(field in perPartition)) problems.push(`${path}.perPartition.${field}: missing`);
    else {
      const problem = numberProblem(`${path}.perPartition.${field}`, perPartition[field], !complete, true);
      if (problem !== null) problems.push(problem);
    }
  }
  const startLog = value.startLog;
  if (!isObject(startLog) || !('clean' in startLog) || !('crash' in startLog)) problems.push(`${path}.startLog: must have clean and crash`);
  if (!('failure' in value)) problems.push(`${path}.failure: missing`);
  else if (value.failure !== null) problems.push(...failureProblems(`${path}.failure`, value.failure));
  if (complete && value.failure !== null) problems.push(`${path}: complete with a failure`);
  if ((value.outcome === 'timed out' || value.outcome === 'failed') && value.failure === null) problems.push(`${path}: ${String(value.outcome)} without a failure`);
  if (!('skippedBecause' in value)) problems.push(`${path}.skippedBecause: missing`);
  else if (value.outcome === 'skipped' && typeof value.skippedBecause !== 'string') problems.push(`${path}: skipped without a reason`);
  return problems;
}

/** What is wrong with a whole report; [] when it follows the schema above. */
export function reportProblems(value: unknown): string[] {
  if (!isObject(value)) return ['report: not an object'];
  const problems: string[] = [];
  const meta = value.meta;
  if (!isObject(meta)) problems.push('meta: not an object');
  else {
    if (typeof meta.date !== 'string' || Number.isNaN(Date.parse(meta.date))) problems.push(`meta.date: not an ISO date, got ${JSON.stringify(meta.date)}`);
    if (typeof meta.node !== 'string' || !/^v\d+\.\d+\.\d+/.test(meta.node)) problems.push(`meta.node: not a Node version, got ${JSON.stringify(meta.node)}`);
    if (!Array.isArray(meta.counts)) problems.push('meta.counts: not an array');
  }
  if (!isObject(value.settings)) problems.push('settings: not an object');
  const baseline = value.baseline;
  if (!isObject(baseline)) problems.push('baseline: not an object');
  else {
    for (const field of ['startMs', 'stopMs', 'rssKb', 'openFds', 'fdLimit'] as const) {
      const problem = numberProblem(`baseline.${field}`, baseline[field], true);
      if (problem !== null) problems.push(problem);
    }
    if (baseline.failure !== null) problems.push(...failureProblems('baseline.failure', baseline.failure));
  }
  if (!Array.isArray(value.counts)) problems.push('counts: not an array');
  else {
    value.counts.forEach((row, index) => problems.push(...countRowProblems(row, index)));
    if (isObject(meta) && Array.isArray(meta.counts) && meta.counts.length !== value.counts.length) problems.push(`counts: ${value.counts.length} rows for ${meta.counts.length} counts`);
  }
  if (!Array.isArray(value.targets)) problems.push('targets: not an array');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function cell(value: number | null, format: (value: number) => string): string {
  return value === null ? '-' : format(value);
}

const seconds = (ms: number): string => (ms / 1000).toFixed(2);
const integer = (value: number): string => Math.round(value).toLocaleString('en-US');
const megabytes = (kb: number): string => ((kb * 1024) / 1e6).toFixed(1);

function comparisonCells(comparison: Comparison | null): string {
  if (comparison === null) return '- | - | -';
  return `${integer(comparison.spread.recordsPerSec)} | ${integer(comparison.onePartition.recordsPerSec)} | ${comparison.ratio.toFixed(2)}x`;
}

export function renderMarkdown(report: PartitionsReport): string {
  const { meta, baseline } = report;
  const lines = [
    '# tidelog bench partitions',
    '',
    `${meta.date}, Node ${meta.node}, ${meta.machine.cpus} x ${meta.machine.cpuModel}, ${meta.machine.totalMemoryMb} MB, load at start ${meta.machine.loadAverageAtStart.join(' / ')}; counts ${meta.counts.join(', ')} (${meta.mode}), throughput phases at least ${meta.phaseMs} ms each.`,
  ];
  if (meta.note !== null) lines.push('', `Note: ${meta.note}`);
  lines.push(
    '',
    `Empty broker (median of ${baseline.runs}): start ${cell(baseline.startMs, integer)} ms, stop ${cell(baseline.stopMs, integer)} ms, RSS ${cell(baseline.rssKb, megabytes)} MB, ${cell(baseline.openFds, integer)} open files (limit ${cell(baseline.fdLimit, integer)}). Costs per partition below are net of it.`,
    '',
    '| Partitions | Topics | Create s | Clean stop s | Clean start s | Start after kill -9 s | Stop after traffic s | RSS MB | Open files | Metadata ms (max) | Metadata KB | Outcome |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const row of report.counts) {
    const metadata = row.metadataMs === null ? '-' : `${row.metadataMs.toFixed(1)} (${cell(row.metadataMaxMs, (value) => value.toFixed(1))})`;
    const outcome = row.failure !== null ? `${row.outcome} in ${row.failure.phase}` : row.outcome;
    lines.push(
      `| ${integer(row.partitions)} | ${row.topics} | ${cell(row.createMs, seconds)} | ${cell(row.cleanStopMs, seconds)} | ${cell(row.cleanStartMs, seconds)} | ${cell(row.crashStartMs, seconds)} | ${cell(row.finalStopMs, seconds)} | ${cell(row.rssKbAfterStart, megabytes)} | ${cell(row.openFdsAfterStart, integer)} | ${metadata} | ${cell(row.metadataBytes, (bytes) => (bytes / 1024).toFixed(1))} | ${outcome} |`,
    );
  }
  lines.push(
    '',
    'Records/s spread over all partitions beside the same total on 1 partition (same run; ratio = spread / 1 partition):',
    '',
    '| Partitions | Produce 1 record a partition: spread | 1 partition | ratio | Produce batched: spread | 1 partition | ratio | Consume: spread | 1 partition | ratio |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const row of report.counts) lines.push(`| ${integer(row.partitions)} | ${comparisonCells(row.produceOnePerPartition)} | ${comparisonCells(row.produceBatched)} | ${comparisonCells(row.consume)} |`);
  const perPartition = (value: number | null): string => cell(value, (number) => number.toFixed(3));
  lines.push('', 'Cost per partition (a flat column is the goal):', '', '| Partitions | Create ms | Clean start ms | Start after kill -9 ms | Clean stop ms | RSS KB |', '|---:|---:|---:|---:|---:|---:|');
  for (const row of report.counts) {
    const cost = row.perPartition;
    lines.push(`| ${integer(row.partitions)} | ${perPartition(cost.createMs)} | ${perPartition(cost.cleanStartMs)} | ${perPartition(cost.crashStartMs)} | ${perPartition(cost.cleanStopMs)} | ${perPartition(cost.rssKb)} |`);
  }
  lines.push('', 'Targets (issue 18):', '', ...report.targets.map((check) => `- ${formatTargetCheck(check)}`));
  const failures: Array<{ title: string; failure: PhaseFailure }> = [];
  if (baseline.failure !== null) failures.push({ title: 'empty broker', failure: baseline.failure });
  for (const row of report.counts) if (row.failure !== null) failures.push({ title: `${integer(row.partitions)} partitions`, failure: row.failure });
  const skipped = report.counts.filter((row) => row.skippedBecause !== null);
  if (failures.length > 0 || skipped.length > 0) lines.push('', '## Not measured');
  for (const { title, failure } of failures) {
    lines.push('', `${title}: ${failure.kind === 'timeout' ? `timed out in ${failure.phase} (bound ${integer(failure.boundMs)} ms)` : `failed in ${failure.phase}`}: ${failure.message}`);
    if (failure.logTail !== null) lines.push('', '```', failure.logTail, '```');
  }
  for (const row of skipped) lines.push('', `${integer(row.partitions)} partitions: skipped, ${row.skippedBecause}`);
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// The chart: cost per partition against the partition count, log x axis

const CHART = { width: 960, height: 460, left: 80, right: 280, top: 48, bottom: 70 };
/** Room inside the plot at either end of the x axis, so no point sits on an axis line. */
const X_PAD = 24;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd'];
const Y_TICKS = 5;
/** Times on the left axis (ms a partition), memory on the right one (KB a partition). */
export const COST_SERIES: ReadonlyArray<{ name: string; axis: 'left' | 'right'; value: (cost: PerPartitionCost) => number | null }> = [
  { name: 'create (ms)', axis: 'left', value: (cost) => cost.createMs },
  { name: 'clean start (ms)', axis: 'left', value: (cost) => cost.cleanStartMs },
  { name: 'start after kill -9 (ms)', axis: 'left', value: (cost) => cost.crashStartMs },
  { name: 'clean stop (ms)', axis: 'left', value: (cost) => cost.cleanStopMs },
  { name: 'RSS (KB, right axis)', axis: 'right', value: (cost) => cost.rssKb },
];

/**
 * One line per cost over the measured counts on a log10 x axis; times on a linear left axis from
 * 0, RSS on a linear right axis from 0. A net cost below zero (the empty broker's noise at small
 * counts) is drawn at 0; its tooltip says the value.
 */
export function renderCostChart(rows: readonly CountRow[]): string {
  const plotLeft = CHART.left;
  const plotRight = CHART.width - CHART.right;
  const plotTop = CHART.top;
  const plotBottom = CHART.height - CHART.bottom;
  const counts = rows.map((row) => row.partitions);
  const lowPower = counts.length === 0 ? 1 : Math.floor(Math.log10(Math.min(...counts)));
  const highPower = Math.max(lowPower + 1, counts.length === 0 ? 2 : Math.ceil(Math.log10(Math.max(...counts))));
  const xOf = (count: number): number => plotLeft + X_PAD + ((Math.log10(count) - lowPower) / (highPower - lowPower)) * (plotRight - plotLeft - 2 * X_PAD);
  const axisMax = (axis: 'left' | 'right'): number =>
    niceCeiling(Math.max(0, ...rows.flatMap((row) => COST_SERIES.filter((series) => series.axis === axis).map((series) => series.value(row.perPartition) ?? 0))));
  const yMax = { left: axisMax('left'), right: axisMax('right') };
  const yOf = (value: number, axis: 'left' | 'right'): number => plotBottom - (Math.max(0, value) / yMax[axis]) * (plotBottom - plotTop);
  const title = 'Cost per partition against partition count (net of an empty broker; flat is the goal)';
  const parts = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART.width}" height="${CHART.height}" viewBox="0 0 ${CHART.width} ${CHART.height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${CHART.width}" height="${CHART.height}" fill="#ffffff"/>`,
    `<text x="${CHART.width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<g class="y-axis">`,
  ];
  for (let i = 0; i <= Y_TICKS; i++) {
    const y = yOf((yMax.left * i) / Y_TICKS, 'left');
    parts.push(
      `<line x1="${plotLeft}" y1="${y.toFixed(1)}" x2="${plotRight}" y2="${y.toFixed(1)}" stroke="#e0e0e0"/>`,
      `<text x="${plotLeft - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end">${escapeXml(formatAxisNumber((yMax.left * i) / Y_TICKS))}</text>`,
      `<text x="${plotRight + 8}" y="${(y + 4).toFixed(1)}" text-anchor="start">${escapeXml(formatAxisNumber((yMax.right * i) / Y_TICKS))}</text>`,
    );
  }
  parts.push(
    `<text transform="translate(20 ${(plotTop + plotBottom) / 2}) rotate(-90)" text-anchor="middle">ms per partition</text>`,
    `<text transform="translate(${plotRight + 52} ${(plotTop + plotBottom) / 2}) rotate(-90)" text-anchor="middle">KB RSS per partition</text>`,
    `</g>`,
    `<g class="x-axis">`,
  );
  const labelled = new Set<number>();
  for (let power = lowPower; power <= highPower; power++) {
    const x = xOf(10 ** power).toFixed(1);
    labelled.add(10 ** power);
    parts.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotBottom}" stroke="#e0e0e0"/>`, `<text x="${x}" y="${plotBottom + 18}" text-anchor="middle">${escapeXml(formatAxisNumber(10 ** power))}</text>`);
  }
  for (const count of counts) {
    if (labelled.has(count)) continue;
    labelled.add(count);
    parts.push(`<text x="${xOf(count).toFixed(1)}" y="${plotBottom + 32}" text-anchor="middle" font-size="10" fill="#555555">${escapeXml(formatAxisNumber(count))}</text>`);
  }
  parts.push(
    `</g>`,
    `<line x1="${plotLeft}" y1="${plotBottom}" x2="${plotRight}" y2="${plotBottom}" stroke="#333333"/>`,
    `<line x1="${plotLeft}" y1="${plotTop}" x2="${plotLeft}" y2="${plotBottom}" stroke="#333333"/>`,
    `<line x1="${plotRight}" y1="${plotTop}" x2="${plotRight}" y2="${plotBottom}" stroke="#333333"/>`,
    `<text x="${(plotLeft + plotRight) / 2}" y="${CHART.height - 14}" text-anchor="middle">partitions on one broker (log scale)</text>`,
  );
  COST_SERIES.forEach((series, index) => {
    const color = PALETTE[index % PALETTE.length]!;
    const dashed = series.axis === 'right' ? ' stroke-dasharray="6 3"' : '';
    parts.push(`<g class="series" data-series="${escapeXml(series.name)}" stroke="${color}" fill="${color}">`);
    let run: string[] = [];
    const flush = (): void => {
      if (run.length > 1) parts.push(`<polyline fill="none" stroke-width="2"${dashed} points="${run.join(' ')}"/>`);
      run = [];
    };
    for (const row of rows) {
      const value = series.value(row.perPartition);
      if (value === null) {
        flush();
        continue;
      }
      const [x, y] = [xOf(row.partitions).toFixed(1), yOf(value, series.axis).toFixed(1)];
      run.push(`${x},${y}`);
      parts.push(`<circle cx="${x}" cy="${y}" r="3.5"><title>${escapeXml(`${series.name} per partition at ${row.partitions} partitions: ${formatAxisNumber(value)}`)}</title></circle>`);
    }
    flush();
    parts.push(`</g>`);
  });
  parts.push(`<g class="legend">`);
  COST_SERIES.forEach((series, index) => {
    const y = plotTop + 10 + index * 20;
    const x = plotRight + 70;
    parts.push(
      `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${PALETTE[index % PALETTE.length]!}" stroke-width="3"${series.axis === 'right' ? ' stroke-dasharray="6 3"' : ''}/>`,
      `<text x="${x + 30}" y="${y + 4}">${escapeXml(series.name)}</text>`,
    );
  });
  parts.push(`</g>`, `</svg>`, '');
  return parts.join('\n');
}
