// The compaction benchmark behind `tidelog bench compaction`: does compaction of a large compacted
// topic stall producers? In one run, against one broker child process:
//
//   fill       a compacted topic `table` of --size bytes (default 1 GiB; --quick 64 MiB): 1000-byte
//              values over KEY_COUNT keys, with min.compaction.lag.ms holding the cleaner off
//   baseline   the produce load alone on topic `load`: SENDERS closed-loop senders, each sending
//              RECORDS_PER_SEND records of 100 bytes (acks=1, linger 0) and waiting for the answer
//   compaction the same load while the cleaner compacts `table` (the lag is lifted with
//              IncrementalAlterConfigs); the phase counts the sends that started between the
//              cleaner's "compacting log" and "cleaned log" lines (a --quick clean is short, so
//              its p99 rests on fewer samples: the row says how many)
//
// Reported: produce p50/p99/max latency and records/s of both phases, the p99 ratio (target: at
// most 1.5), compaction MB/s (log bytes cleaned / the task's run time, from the cleaner's log
// line; the task reads them twice, map and rewrite, under log.cleaner.io.max.bytes.per.second), the
// worker's peak memory as the task measured it (its thread's V8 heap + the key map + read buffers)
// and the broker process's peak RSS (VmHWM). Both processes share this machine's CPUs.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createAdmin } from '../client/admin.js';
import { createProducer, type Producer } from '../client/producer.js';
import { startBrokerChild, type BrokerChild } from './brokerChild.js';
import { percentileOfSorted } from './percentiles.js';

const MIB = 1024 * 1024;
const MB = 1_000_000;
export const FULL_SIZE_BYTES = 1024 * MIB;
export const QUICK_SIZE_BYTES = 64 * MIB;
/** --size bounds: at least one segment's worth, at most what a shared machine's disk should take. */
export const MIN_SIZE_BYTES = 4 * MIB;
export const MAX_SIZE_BYTES = 64 * 1024 * MIB;
/** The cleaner's read rate: the broker's default log.cleaner.io.max.bytes.per.second, stated here so the report says it. */
const CLEANER_IO_BYTES_PER_SECOND = 100 * MIB;
const FILL_VALUE_BYTES = 1000;
const KEY_COUNT = 20_000;
const FILL_RECORDS_PER_SEND = 500;
const FILL_SENDS_IN_FLIGHT = 4;
const LOAD_VALUE_BYTES = 100;
const RECORDS_PER_SEND = 100;
const SENDERS = 4;
const BASELINE_MS = { quick: 5_000, full: 15_000 };
/** The cleaner must have started and finished within these bounds, or the run fails. */
const COMPACTION_START_TIMEOUT_MS = 30_000;
const COMPACTION_TIMEOUT_MS = 30 * 60_000;
/** Latency samples kept per phase at most (a ring would bias; past this the phase stops sampling). */
const MAX_SAMPLES = 2_000_000;

export interface CompactionBenchOptions {
  quick: boolean;
  /** Bytes of the compacted topic; default FULL_SIZE_BYTES, or QUICK_SIZE_BYTES with quick. */
  sizeBytes?: number;
  outPath: string;
  brokerEntry: string;
  out?: (text: string) => void;
  progress?: (line: string) => void;
}

export interface LoadPhase {
  name: 'baseline' | 'with compaction';
  durationMs: number;
  sends: number;
  recordsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface CompactionBenchReport {
  meta: { date: string; node: string; quick: boolean; note: string };
  settings: { sizeBytes: number; fillValueBytes: number; keys: number; senders: number; recordsPerSend: number; loadValueBytes: number; tableSegmentBytes: number; cleanerIoMaxBytesPerSecond: number };
  fill: { records: number; seconds: number; mbPerSecond: number };
  phases: LoadPhase[];
  p99Ratio: number;
  target: { p99RatioAtMost: number; met: boolean };
  compaction: { bytesRead: number; bytesWritten: number; runMs: number; mbPerSecond: number; recordsKept: number; recordsDropped: number; workerPeakMemoryBytes: number; brokerPeakRssBytes: number };
}

/** Parses --size: bytes, or a number with KiB/MiB/GiB (also K/M/G, binary). */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kib|m|mib|g|gib)?\s*$/i.exec(text);
  if (match === null) throw new RangeError(`--size must be bytes or a number with KiB, MiB or GiB, got ${JSON.stringify(text)}`);
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? MIB : unit.startsWith('g') ? 1024 * MIB : 1;
  const bytes = Math.round(Number(match[1]) * factor);
  if (bytes < MIN_SIZE_BYTES || bytes > MAX_SIZE_BYTES) throw new RangeError(`--size must be in [${MIN_SIZE_BYTES / MIB} MiB, ${MAX_SIZE_BYTES / MIB} MiB], got ${text}`);
  return bytes;
}

/**
 * Closed-loop senders until `keepGoing` says stop. The phase's numbers count the sends that
 * started inside `window()` (performance.now() times; default: the whole run).
 */
async function runLoad(producer: Producer, name: LoadPhase['name'], keepGoing: () => boolean, window?: () => { fromMs: number; toMs: number }): Promise<LoadPhase> {
  const value = Buffer.alloc(LOAD_VALUE_BYTES, 0x61);
  const records = Array.from({ length: RECORDS_PER_SEND }, () => ({ key: null, value }));
  const sends: Array<[number, number]> = [];
  const started = performance.now();
  const sender = async (): Promise<void> => {
    while (keepGoing()) {
      const sent = performance.now();
      await producer.send('load', records);
      if (sends.length < MAX_SAMPLES) sends.push([sent, performance.now() - sent]);
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, () => sender()));
  const { fromMs, toMs } = window?.() ?? { fromMs: started, toMs: performance.now() };
  const durationMs = toMs - fromMs;
  const latencies = sends.filter(([sent]) => sent >= fromMs && sent < toMs).map(([, latency]) => latency);
  latencies.sort((a, b) => a - b);
  return {
    name,
    durationMs: Math.round(durationMs),
    sends: latencies.length,
    recordsPerSecond: Math.round((latencies.length * RECORDS_PER_SEND) / (durationMs / 1000)),
    p50Ms: round(percentileOfSorted(latencies, 0.5) ?? Number.NaN),
    p99Ms: round(percentileOfSorted(latencies, 0.99) ?? Number.NaN),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
  };
}

function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

async function fillTable(producer: Producer, sizeBytes: number, progress: (line: string) => void): Promise<{ records: number; seconds: number }> {
  const total = Math.ceil(sizeBytes / (FILL_VALUE_BYTES + 24));
  const value = Buffer.alloc(FILL_VALUE_BYTES, 0x62);
  let next = 0;
  const started = performance.now();
  let reported = 0;
  const sender = async (): Promise<void> => {
    while (next < total) {
      const first = next;
      const count = Math.min(FILL_RECORDS_PER_SEND, total - first);
      next += count;
      await producer.send('table', Array.from({ length: count }, (_, i) => ({ key: `key-${(first + i) % KEY_COUNT}`, value })));
      if (next - reported >= total / 10) {
        reported = next;
        progress(`filled ${Math.round((100 * next) / total)}% of table (${next} records)`);
      }
    }
  };
  await Promise.all(Array.from({ length: FILL_SENDS_IN_FLIGHT }, () => sender()));
  return { records: total, seconds: (performance.now() - started) / 1000 };
}

function fieldOf(line: string, name: string): number {
  const match = new RegExp(`\\b${name}=(\\d+)`).exec(line);
  if (match === null) throw new Error(`no ${name} in the cleaner's line: ${line}`);
  return Number(match[1]);
}

async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

export async function runCompactionBench(options: CompactionBenchOptions): Promise<CompactionBenchReport> {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const sizeBytes = options.sizeBytes ?? (options.quick ? QUICK_SIZE_BYTES : FULL_SIZE_BYTES);
  // Enough sealed segments to group and swap, few enough that indexes stay small.
  const tableSegmentBytes = Math.max(MIB, Math.min(64 * MIB, Math.floor(sizeBytes / 16)));
  const dataDir = await mkdtemp(join(tmpdir(), 'tidelog-bench-compaction-'));
  let broker: BrokerChild | null = null;
  let producer: Producer | null = null;
  try {
    broker = await startBrokerChild(options.brokerEntry, dataDir, { configs: { 'log.cleaner.backoff.ms': '200', 'log.cleaner.io.max.bytes.per.second': String(CLEANER_IO_BYTES_PER_SECOND), 'auto.create.topics.enable': 'false' }, progress });
    const admin = createAdmin({ bootstrapServers: [broker.address] });
    try {
      await admin.createTopics([
        { topic: 'table', partitions: 1, configs: { 'cleanup.policy': 'compact', 'segment.bytes': String(tableSegmentBytes), 'min.compaction.lag.ms': String(24 * 60 * 60 * 1000) } },
        { topic: 'load', partitions: 1 },
      ]);
    } finally {
      await admin.close();
    }
    producer = createProducer({ bootstrapServers: [broker.address], acks: 1, lingerMs: 0 });
    progress(`filling the compacted topic with ${Math.round(sizeBytes / MIB)} MiB`);
    const fill = await fillTable(producer, sizeBytes, progress);

    progress('baseline: the produce load alone');
    const baselineMs = options.quick ? BASELINE_MS.quick : BASELINE_MS.full;
    const baselineEnd = performance.now() + baselineMs;
    const baseline = await runLoad(producer, 'baseline', () => performance.now() < baselineEnd);

    progress('compaction: the same load while the cleaner compacts the table');
    const fromLine = broker.lineCount();
    const lift = createAdmin({ bootstrapServers: [broker.address] });
    try {
      await lift.alterConfigs('table', { set: { 'min.compaction.lag.ms': '0' } });
    } finally {
      await lift.close();
    }
    const running = broker;
    // The phase counts the sends that started between the cleaner's first and last line.
    const window = { fromMs: Number.POSITIVE_INFINITY, toMs: Number.POSITIVE_INFINITY };
    const compacting = running.waitForLine((line) => / INFO compacting log .*topic="table"/.test(line), COMPACTION_START_TIMEOUT_MS, fromLine).then(() => (window.fromMs = performance.now()));
    // One waiter for the end, success or failure, so no timer outlives the run.
    const finished = running.waitForLine((line) => / INFO cleaned log .*topic="table"/.test(line) || / ERROR compaction/.test(line), COMPACTION_TIMEOUT_MS, fromLine).then((line) => {
      window.toMs = performance.now();
      if (/ ERROR compaction/.test(line)) throw new Error(`compaction failed: ${line}`);
      return line;
    });
    const stop = Promise.all([compacting, finished]).then(([, line]) => line);
    let stopped = false;
    stop.then(
      () => (stopped = true),
      () => (stopped = true),
    );
    const withCompaction = await runLoad(producer, 'with compaction', () => !stopped, () => window);
    const line = await stop;
    const bytesRead = fieldOf(line, 'bytesRead');
    const runMs = fieldOf(line, 'runMs');
    const report: CompactionBenchReport = {
      meta: {
        date: new Date().toISOString(),
        node: process.version,
        quick: options.quick,
        note: 'measured on a shared 2-CPU machine while other work ran; the broker, its worker thread and this client share the CPUs',
      },
      settings: { sizeBytes, fillValueBytes: FILL_VALUE_BYTES, keys: KEY_COUNT, senders: SENDERS, recordsPerSend: RECORDS_PER_SEND, loadValueBytes: LOAD_VALUE_BYTES, tableSegmentBytes, cleanerIoMaxBytesPerSecond: CLEANER_IO_BYTES_PER_SECOND },
      fill: { records: fill.records, seconds: round(fill.seconds), mbPerSecond: round(sizeBytes / MB / fill.seconds) },
      phases: [baseline, withCompaction],
      p99Ratio: round(withCompaction.p99Ms / baseline.p99Ms),
      target: { p99RatioAtMost: 1.5, met: withCompaction.p99Ms / baseline.p99Ms <= 1.5 },
      compaction: {
        bytesRead,
        bytesWritten: fieldOf(line, 'bytesWritten'),
        runMs,
        mbPerSecond: round(bytesRead / MB / (runMs / 1000)),
        recordsKept: fieldOf(line, 'recordsKept'),
        recordsDropped: fieldOf(line, 'recordsDropped'),
        workerPeakMemoryBytes: fieldOf(line, 'peakMemoryBytes'),
        brokerPeakRssBytes: await peakRssBytes(running.pid),
      },
    };
    await mkdir(dirname(options.outPath), { recursive: true });
    await writeFile(options.outPath, `${JSON.stringify(report, null, 2)}\n`);
    out(formatTable(report));
    progress(`results written to ${options.outPath}`);
    return report;
  } finally {
    await producer?.close().catch(() => undefined);
    await broker?.stop().catch((error: unknown) => progress(`stopping the broker: ${String(error)}`));
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function formatTable(report: CompactionBenchReport): string {
  const rows = report.phases.map((phase) => `| ${phase.name} | ${phase.durationMs} | ${phase.sends} | ${phase.recordsPerSecond} | ${phase.p50Ms} | ${phase.p99Ms} | ${phase.maxMs} |`);
  const c = report.compaction;
  return [
    `## Produce latency with compaction of a ${Math.round(report.settings.sizeBytes / MIB)} MiB compacted topic${report.meta.quick ? ' (quick)' : ''}`,
    '',
    '| phase | ms | sends | records/s | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `p99 with compaction / without: ${report.p99Ratio} (target <= ${report.target.p99RatioAtMost}: ${report.target.met ? 'met' : 'missed'})`,
    `compaction (reads limited to ${Math.round(report.settings.cleanerIoMaxBytesPerSecond / MIB)} MiB/s over both passes): ${Math.round(c.bytesRead / MIB)} MiB of log cleaned, ${Math.round(c.bytesWritten / MIB)} MiB written in ${c.runMs} ms = ${c.mbPerSecond} MB/s; worker peak memory ${Math.round(c.workerPeakMemoryBytes / MIB)} MiB; broker peak RSS ${Math.round(c.brokerPeakRssBytes / MIB)} MiB`,
    '',
  ].join('\n');
}
