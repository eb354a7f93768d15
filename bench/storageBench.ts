// The storage benchmark behind `tidelog bench storage`. Each measurement of the partition log
// stands beside a baseline measured in the same run, on the same disk, with the same bytes, so
// the ratio says what the engine costs on top of the machine:
//
//   append, flush=os            one append awaited at a time   vs  FileHandle.write loop
//   append, flush=every-append  8 appenders sharing fdatasyncs vs  write + fdatasync per batch
//   read by offset              random offsets on a 1e4 log    vs  the same on logs 100-1000x larger,
//                                                                  and a plain 64 KiB pread
//   recovery scan               unclean open (CRC every batch) vs  plain sequential read, same chunks
//
// Appends and reads run both sides in alternating blocks (see interleave()); recovery alternates
// whole rounds and reports the median. Either way drift of this VM's speed hits both sides alike.
// Every loop stops at a count or a deadline, whichever comes first. MB means 10^6 bytes. The
// table goes to `out` (stdout), progress lines to `progress` (stderr), the JSON to `outPath`.
import { mkdir, mkdtemp, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveLogConfig } from '../engine/log/logConfig.js';
import type { PartitionLog } from '../engine/log/partitionLog.js';
import { crc32cImplementation } from '../segments/crc32c.js';
import { LAST_OFFSET_DELTA_OFFSET, encodeBatch, readInt64AsNumber, type RecordInput } from '../segments/recordBatch.js';
import { benchSinks, boundedLoop, closeLog, mulberry32, openLog, pretouchPageCache, writeJsonReport, type LoopLimit, type OpenedLog } from './benchRun.js';

// ---------------------------------------------------------------------------------------------
// Limits and shapes (all in one place)

const KIB = 1024;
const MIB = 1024 * KIB;
const MB = 1_000_000;
/** Every record carries a 100-byte value and no key, like the machine facts in SKETCH.md. */
const VALUE_BYTES = 100;
/** Records per batch in the logs built for reads and recovery (about 10.8 KB a batch). */
const RECORDS_PER_BUILD_BATCH = 100;
/** One append while building a log carries about this many bytes of whole batches. */
const BUILD_SET_BYTES = 1 * MIB;
const READ_MAX_BYTES = 64 * KIB;
/** segment.bytes of the logs built for reads and recovery: several segments per large log. */
const BUILT_LOG_SEGMENT_BYTES = 128 * MIB;
/** The chunk size of segments/logSegment.ts SCAN_CHUNK_BYTES (not exported), for the read baseline. */
const RECOVERY_CHUNK_BYTES = 8 * MIB;
const GROUP_COMMIT_APPENDERS = 8;
const GROUP_COMMIT_BATCH_BYTES = 16 * KIB;
/** Appends (and plain writes) before a timed run starts: JIT, thread pool, the epoch checkpoint. */
const WARMUP_OPERATIONS = 32;
const WARMUP_LOOKUPS = 300;
const RANDOM_SEED = 0x7e1d_e10c;

/** One interleaved block of appends moves about this much, at most APPEND_BLOCK_MAX_COUNT batches. */
const APPEND_BLOCK_BYTES = 16 * MIB;
const APPEND_BLOCK_MAX_COUNT = 500;
/** Group commit blocks: 8 appenders share this many batches; the plain side syncs this many. */
const GROUP_COMMIT_LOG_BLOCK = 400;
const GROUP_COMMIT_PLAIN_BLOCK = 100;
/** Lookups each log (and the pread baseline) does before the next one takes its turn. */
const LOOKUP_BLOCK = 50;

interface Plan {
  label: 'full' | 'quick';
  appendSizes: readonly number[];
  /** Bytes each side of an append comparison may write (bounds page-cache use; the log never rolls). */
  appendBytesPerSide: number;
  /** Batches each side may write; bounds the 1 KiB case on a fast disk. */
  appendMaxBatches: number;
  appendMsPerSize: number;
  syncMaxBatches: number;
  syncMs: number;
  readLogRecords: readonly number[];
  /** Lookups per log, and for the pread baseline. */
  lookups: number;
  lookupMs: number;
  /** Deadline for building one log; a log cut short is reported with its real record count. */
  buildMs: number;
  recoveryLogBytes: number;
  recoveryRounds: number;
  recoveryPhaseMs: number;
}

const FULL_PLAN: Plan = {
  label: 'full',
  appendSizes: [1 * KIB, 16 * KIB, 1 * MIB],
  appendBytesPerSide: 512 * MIB,
  appendMaxBatches: 200_000,
  appendMsPerSize: 8_000,
  syncMaxBatches: 40_000,
  syncMs: 10_000,
  readLogRecords: [1e4, 1e6, 1e7],
  lookups: 20_000,
  lookupMs: 20_000,
  buildMs: 60_000,
  recoveryLogBytes: 512 * MIB,
  recoveryRounds: 5,
  recoveryPhaseMs: 30_000,
};

const QUICK_PLAN: Plan = {
  label: 'quick',
  appendSizes: [1 * KIB, 16 * KIB, 1 * MIB],
  appendBytesPerSide: 128 * MIB,
  appendMaxBatches: 40_000,
  appendMsPerSize: 2_500,
  syncMaxBatches: 10_000,
  syncMs: 3_000,
  readLogRecords: [1e4, 1e5, 1e6],
  lookups: 4_000,
  lookupMs: 5_000,
  buildMs: 15_000,
  recoveryLogBytes: 192 * MIB,
  recoveryRounds: 3,
  recoveryPhaseMs: 8_000,
};

// ---------------------------------------------------------------------------------------------
// Report shapes

export interface BenchRow {
  name: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** value / baseline.value */
  ratio?: number;
  target?: { description: string; met: boolean };
}

export interface StorageBenchReport {
  machine: { cpus: number; node: string; crc32c: 'native' | 'js' };
  startedAt: string;
  rows: BenchRow[];
}

export interface StorageBenchOptions {
  quick: boolean;
  /** Where the JSON goes; its directory is created. */
  outPath: string;
  /** Receives the Markdown table. */
  out?: (text: string) => void;
  /** Receives one line per step, so a long run shows where it is. */
  progress?: (line: string) => void;
}

interface Context {
  plan: Plan;
  dir: string;
  progress: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Entry point

export async function runStorageBench(options: StorageBenchOptions): Promise<StorageBenchReport> {
  const plan = options.quick ? QUICK_PLAN : FULL_PLAN;
  const { out, progress } = benchSinks(options, performance.now());
  const report: StorageBenchReport = {
    machine: { cpus: cpus().length, node: process.version, crc32c: crc32cImplementation },
    startedAt: new Date().toISOString(),
    rows: [],
  };
  // Fail before a minute of measuring, not after, when the results cannot be written.
  await mkdir(dirname(options.outPath), { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-bench-'));
  progress(`${plan.label} run in ${dir} (crc32c: ${crc32cImplementation})`);
  const context: Context = { plan, dir, progress };
  try {
    await pretouchPageCache(dir, 2 * plan.appendBytesPerSide, progress);
    for (const size of plan.appendSizes) report.rows.push(...(await bufferedAppend(context, size)));
    report.rows.push(...(await groupCommit(context)));
    report.rows.push(...(await readByOffset(context)));
    report.rows.push(...(await recoveryScan(context)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await writeJsonReport(options.outPath, report);
  out(formatTable(report, plan.label));
  progress(`done; JSON written to ${options.outPath}`);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Interleaved comparisons
//
// Two sides run in alternating blocks (A, B, A, B, ...) and each side's time is the sum of its
// blocks. On a VM whose speed drifts by 2x from one second to the next, this keeps both sides
// under the same conditions; separate runs minutes apart do not.

interface Side {
  /** Runs one block of operations; returns how many it did and how many bytes they moved. */
  block(): Promise<{ count: number; bytes: number }>;
}

interface Rate {
  count: number;
  bytes: number;
  seconds: number;
}

/** Alternates blocks of every side until each did `maxCount` operations or `maxMs` passed. */
async function interleave(sides: readonly Side[], limit: LoopLimit): Promise<Rate[]> {
  const rates: Rate[] = sides.map(() => ({ count: 0, bytes: 0, seconds: 0 }));
  await boundedLoop({ maxCount: limit.maxCount, maxMs: limit.maxMs }, async () => {
    for (let i = 0; i < sides.length; i++) {
      const rate = rates[i]!;
      if (rate.count >= limit.maxCount) continue;
      const before = performance.now();
      const done = await sides[i]!.block();
      rate.seconds += (performance.now() - before) / 1000;
      rate.count += done.count;
      rate.bytes += done.bytes;
    }
    return rates.every((rate) => rate.count >= limit.maxCount) ? 'stop' : 'continue';
  });
  return rates;
}

/** A plain file written with FileHandle.write, one call awaited at a time (and fdatasync after each, if asked). */
async function plainFileSide(path: string, buffer: Buffer, blockCount: number, syncEach: boolean): Promise<Side & { close(): Promise<void> }> {
  const handle = await open(path, 'w');
  const side = {
    block: async () => {
      for (let i = 0; i < blockCount; i++) {
        await handle.write(buffer, 0, buffer.length);
        if (syncEach) await handle.datasync();
      }
      return { count: blockCount, bytes: blockCount * buffer.length };
    },
    close: async () => {
      await handle.close();
      await rm(path, { force: true });
    },
  };
  try {
    for (let i = 0; i < Math.ceil(WARMUP_OPERATIONS / blockCount); i++) await side.block();
  } catch (error) {
    await side.close();
    throw error;
  }
  return side;
}

/**
 * A log appended to by `templates.length` appenders, each awaiting its own appends of its own
 * buffer (the log writes offsets into it, so two appends in flight must not share one).
 */
function logSide(log: PartitionLog, templates: readonly Buffer[], blockCount: number): Side {
  return {
    block: async () => {
      let started = 0;
      let bytes = 0;
      const appender = async (template: Buffer): Promise<void> => {
        while (started < blockCount) {
          started++;
          bytes += template.length;
          await log.append(template);
        }
      };
      await Promise.all(templates.map(appender));
      return { count: started, bytes };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// a. Buffered append (flush=os) against a plain FileHandle.write loop

async function bufferedAppend(context: Context, batchBytes: number): Promise<BenchRow[]> {
  const { plan } = context;
  const batch = buildBatch(batchBytes);
  const maxCount = Math.max(1, Math.min(plan.appendMaxBatches, Math.floor(plan.appendBytesPerSide / batchBytes)));
  const blockCount = Math.max(1, Math.min(APPEND_BLOCK_MAX_COUNT, Math.floor(APPEND_BLOCK_BYTES / batchBytes)));
  const config = resolveLogConfig({ flush: { mode: 'os' } });
  // The log must not roll: a roll syncs the whole segment, which this row does not measure.
  if ((maxCount + blockCount + WARMUP_OPERATIONS) * batchBytes >= config.segmentBytes) throw new Error('an append run must fit one segment');
  const dir = join(context.dir, `append-${batchBytes}`);
  const opened = await openLog(dir, config, { cleanShutdown: true, recoveryPoint: 0 });
  let rates: Rate[];
  try {
    for (let i = 0; i < WARMUP_OPERATIONS; i++) await opened.log.append(batch);
    const plain = await plainFileSide(join(context.dir, `plain-${batchBytes}`), batch, blockCount, false);
    try {
      rates = await interleave([plain, logSide(opened.log, [batch], blockCount)], { maxCount, maxMs: plan.appendMsPerSize });
    } finally {
      await plain.close();
    }
  } finally {
    await closeLog(opened);
    await rm(dir, { recursive: true, force: true });
  }
  const [plainRate, logRate] = rates as [Rate, Rate];
  const label = sizeLabel(batchBytes);
  context.progress(`append ${label} flush=os: ${mbPerSecond(logRate).toFixed(0)} MB/s vs plain ${mbPerSecond(plainRate).toFixed(0)} MB/s (${logRate.count} vs ${plainRate.count} batches)`);
  const name = `append ${label} batches, flush=os, 1 in flight`;
  const baselineName = `FileHandle.write loop, ${label} writes, 1 in flight`;
  const mbRow = compare(name, 'throughput', mbPerSecond(logRate), 'MB/s', baselineName, mbPerSecond(plainRate));
  if (batchBytes === 16 * KIB) mbRow.target = { description: '>= 80% of the plain write loop', met: mbRow.ratio! >= 0.8 };
  const countRow = compare(name, 'batches/s', perSecond(logRate), 'batches/s', baselineName, perSecond(plainRate));
  return [mbRow, countRow];
}

// ---------------------------------------------------------------------------------------------
// b. Group commit (flush=every-append, 8 appenders) against write + fdatasync per batch

async function groupCommit(context: Context): Promise<BenchRow[]> {
  const { plan } = context;
  const template = buildBatch(GROUP_COMMIT_BATCH_BYTES);
  const templates = Array.from({ length: GROUP_COMMIT_APPENDERS }, () => Buffer.from(template));
  const config = resolveLogConfig({ flush: { mode: 'every-append' } });
  if ((plan.syncMaxBatches + GROUP_COMMIT_LOG_BLOCK + WARMUP_OPERATIONS) * template.length >= config.segmentBytes) throw new Error('a group commit run must fit one segment');
  const dir = join(context.dir, 'group-commit');
  const opened = await openLog(dir, config, { cleanShutdown: true, recoveryPoint: 0 });
  let rates: Rate[];
  try {
    for (let i = 0; i < WARMUP_OPERATIONS; i++) await opened.log.append(template);
    const plain = await plainFileSide(join(context.dir, 'plain-sync'), template, GROUP_COMMIT_PLAIN_BLOCK, true);
    try {
      rates = await interleave([plain, logSide(opened.log, templates, GROUP_COMMIT_LOG_BLOCK)], { maxCount: plan.syncMaxBatches, maxMs: plan.syncMs });
    } finally {
      await plain.close();
    }
  } finally {
    await closeLog(opened);
    await rm(dir, { recursive: true, force: true });
  }
  const [plainRate, logRate] = rates as [Rate, Rate];
  context.progress(`group commit: ${perSecond(logRate).toFixed(0)} batches/s vs write+fdatasync ${perSecond(plainRate).toFixed(0)}/s`);
  const name = `append 16 KiB batches, flush=every-append, ${GROUP_COMMIT_APPENDERS} appenders`;
  const baselineName = 'write + fdatasync per 16 KiB batch, 1 in flight';
  const row = compare(name, 'batches/s', perSecond(logRate), 'batches/s', baselineName, perSecond(plainRate));
  row.target = { description: '>= 3x write + fdatasync per batch', met: row.ratio! >= 3 };
  return [row, compare(name, 'throughput', mbPerSecond(logRate), 'MB/s', baselineName, mbPerSecond(plainRate))];
}

// ---------------------------------------------------------------------------------------------
// c. Read-by-offset latency on logs of growing size, all measured in interleaved blocks

interface LatencySide {
  label: string;
  lookup(): Promise<void>;
  samples: Float64Array;
  count: number;
}

async function readByOffset(context: Context): Promise<BenchRow[]> {
  const { plan } = context;
  const config = resolveLogConfig({ flush: { mode: 'os' }, segmentBytes: BUILT_LOG_SEGMENT_BYTES });
  const logs: Array<{ opened: OpenedLog; records: number; bytes: number; dir: string }> = [];
  const preadHandles: FileHandle[] = [];
  try {
    for (const records of plan.readLogRecords) {
      const dir = join(context.dir, `read-${records}`);
      const opened = await openLog(dir, config, { cleanShutdown: true, recoveryPoint: 0 });
      logs.push({ opened, records, bytes: 0, dir });
      const built = await fillLog(opened.log, records, plan.buildMs);
      logs[logs.length - 1]!.records = built.records;
      logs[logs.length - 1]!.bytes = built.bytes;
      context.progress(`built a log of ${formatCount(built.records)} records, ${(built.bytes / MB).toFixed(0)} MB, ${opened.log.segmentCount} segments in ${built.seconds.toFixed(1)} s`);
    }
    const random = mulberry32(RANDOM_SEED);
    const sides: LatencySide[] = logs.map(({ opened, records }) => {
      const log = opened.log;
      return {
        label: formatCount(records),
        samples: new Float64Array(plan.lookups),
        count: 0,
        lookup: async () => {
          const offset = log.logStartOffset + Math.floor(random() * (log.logEndOffset - log.logStartOffset));
          assertHoldsOffset((await log.read(offset, READ_MAX_BYTES)).records, offset);
        },
      };
    });
    // The machine's own cost of the same read: one pread of 64 KiB at a random place in the largest log's files.
    const largest = logs[logs.length - 1]!;
    const files = await logFiles(largest.dir);
    for (const file of files) preadHandles.push(await open(file.path, 'r'));
    const preadBuffer = Buffer.allocUnsafe(READ_MAX_BYTES);
    const totalBytes = files.reduce((sum, file) => sum + file.bytes, 0);
    sides.push({
      label: 'pread',
      samples: new Float64Array(plan.lookups),
      count: 0,
      lookup: async () => {
        let at = Math.floor(random() * totalBytes);
        let index = 0;
        while (at >= files[index]!.bytes) at -= files[index++]!.bytes;
        const { bytesRead } = await preadHandles[index]!.read(preadBuffer, 0, Math.min(READ_MAX_BYTES, files[index]!.bytes - at), at);
        if (bytesRead === 0) throw new Error('pread returned no bytes');
      },
    });
    for (const side of sides) for (let i = 0; i < WARMUP_LOOKUPS; i++) await side.lookup();
    await boundedLoop({ maxCount: Math.ceil(plan.lookups / LOOKUP_BLOCK), maxMs: plan.lookupMs }, async () => {
      for (const side of sides) {
        for (let i = 0; i < LOOKUP_BLOCK && side.count < side.samples.length; i++) {
          const before = performance.now();
          await side.lookup();
          side.samples[side.count++] = (performance.now() - before) * 1000;
        }
      }
      return 'continue';
    });
    const stats = sides.map((side) => {
      const sorted = side.samples.subarray(0, side.count).sort();
      return { medianUs: quantile(sorted, 0.5), p99Us: quantile(sorted, 0.99), lookups: side.count };
    });
    const rows: BenchRow[] = [];
    const smallest = stats[0]!;
    for (let i = 0; i < logs.length; i++) {
      const { records, bytes, opened } = logs[i]!;
      const stat = stats[i]!;
      context.progress(`read, ${formatCount(records)} records: median ${stat.medianUs.toFixed(1)} us, p99 ${stat.p99Us.toFixed(1)} us over ${stat.lookups} lookups`);
      const name = `read(offset, 64 KiB) at random offsets, ${formatCount(records)} records (${(bytes / MB).toFixed(0)} MB, ${opened.log.segmentCount} segments)`;
      if (i === 0) {
        rows.push({ name, metric: 'median latency', value: stat.medianUs, unit: 'us' }, { name, metric: 'p99 latency', value: stat.p99Us, unit: 'us' });
        continue;
      }
      const baselineName = `same on ${formatCount(logs[0]!.records)} records`;
      const medianRow = compare(name, 'median latency', stat.medianUs, 'us', baselineName, smallest.medianUs);
      if (i === logs.length - 1) medianRow.target = { description: `median within 2x of the ${formatCount(logs[0]!.records)}-record log`, met: medianRow.ratio! <= 2 };
      rows.push(medianRow, compare(name, 'p99 latency', stat.p99Us, 'us', baselineName, smallest.p99Us));
    }
    const pread = stats[stats.length - 1]!;
    const largestStat = stats[logs.length - 1]!;
    context.progress(`plain pread 64 KiB: median ${pread.medianUs.toFixed(1)} us, p99 ${pread.p99Us.toFixed(1)} us`);
    const preadName = `plain FileHandle.read of 64 KiB at random positions of the ${formatCount(largest.records)}-record log's files`;
    rows.push(compare(`read(offset, 64 KiB), ${formatCount(largest.records)} records, against the machine`, 'median latency', largestStat.medianUs, 'us', preadName, pread.medianUs));
    return rows;
  } finally {
    for (const handle of preadHandles) await handle.close();
    for (const { opened, dir } of logs) {
      await closeLog(opened);
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** A read must start with the batch that holds the offset asked for. */
function assertHoldsOffset(records: Buffer, offset: number): void {
  if (records.length < 61) throw new Error(`read at offset ${offset} returned ${records.length} bytes`);
  const base = readInt64AsNumber(records, 0);
  const last = base + records.readInt32BE(LAST_OFFSET_DELTA_OFFSET);
  if (base > offset || last < offset) throw new Error(`read at offset ${offset} returned a batch holding ${base}..${last}`);
}

// ---------------------------------------------------------------------------------------------
// d. Recovery scan after an unclean stop, against a plain sequential read

async function recoveryScan(context: Context): Promise<BenchRow[]> {
  const { plan } = context;
  const dir = join(context.dir, 'recovery');
  const config = resolveLogConfig({ flush: { mode: 'os' }, segmentBytes: BUILT_LOG_SEGMENT_BYTES });
  const recordsWanted = Math.floor(plan.recoveryLogBytes / buildBatch(0, RECORDS_PER_BUILD_BATCH).length) * RECORDS_PER_BUILD_BATCH;
  const building = await openLog(dir, config, { cleanShutdown: true, recoveryPoint: 0 });
  try {
    const built = await fillLog(building.log, recordsWanted, plan.buildMs);
    context.progress(`built a recovery log of ${(built.bytes / MB).toFixed(0)} MB in ${building.log.segmentCount} segments`);
  } finally {
    await closeLog(building);
  }
  const files = await logFiles(dir);
  const totalBytes = files.reduce((sum, file) => sum + file.bytes, 0);
  await sequentialRead(files); // warms the page cache for both sides
  const readRuns: number[] = [];
  const recoveryRuns: number[] = [];
  const phaseEnd = performance.now() + plan.recoveryPhaseMs;
  for (let round = 0; round < plan.recoveryRounds && (round === 0 || performance.now() < phaseEnd); round++) {
    readRuns.push(await sequentialRead(files));
    const before = performance.now();
    const opened = await openLog(dir, config, { cleanShutdown: false, recoveryPoint: 0 });
    const seconds = (performance.now() - before) / 1000;
    try {
      const recovery = opened.log.recovery;
      if (recovery === null || recovery.truncatedBytes !== 0 || recovery.bytesScanned !== totalBytes) {
        throw new Error(`recovery scanned ${recovery?.bytesScanned ?? 0} of ${totalBytes} bytes and dropped ${recovery?.truncatedBytes ?? 0}`);
      }
    } finally {
      await closeLog(opened);
    }
    recoveryRuns.push(seconds);
  }
  await rm(dir, { recursive: true, force: true });
  const recoverMbs = totalBytes / MB / median(recoveryRuns);
  const readMbs = totalBytes / MB / median(readRuns);
  context.progress(`recovery scan: ${recoverMbs.toFixed(0)} MB/s vs sequential read ${readMbs.toFixed(0)} MB/s`);
  const row = compare(
    `recovery scan (unclean open, recovery point 0), ${(totalBytes / MB).toFixed(0)} MB in ${files.length} segments, warm cache`,
    'throughput',
    recoverMbs,
    'MB/s',
    'sequential fs read of the same .log files, 8 MiB chunks',
    readMbs,
  );
  row.target = { description: '>= 500 MB/s', met: recoverMbs >= 500 };
  return [row];
}

async function logFiles(dir: string): Promise<Array<{ path: string; bytes: number }>> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.log')).sort();
  const files: Array<{ path: string; bytes: number }> = [];
  for (const name of names) files.push({ path: join(dir, name), bytes: (await stat(join(dir, name))).size });
  return files;
}

/** Reads the files front to back in recovery-sized chunks, one chunk buffer per file like the scan; returns seconds. */
async function sequentialRead(files: ReadonlyArray<{ path: string; bytes: number }>): Promise<number> {
  const before = performance.now();
  for (const file of files) {
    const handle = await open(file.path, 'r');
    try {
      const chunk = Buffer.allocUnsafe(Math.min(RECOVERY_CHUNK_BYTES, Math.max(file.bytes, 1)));
      let position = 0;
      while (position < file.bytes) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, file.bytes - position), position);
        if (bytesRead === 0) throw new Error(`${file.path} ended at ${position} of ${file.bytes} bytes`);
        position += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }
  return (performance.now() - before) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Building logs, batches and record sets

/**
 * Appends `records` records (a multiple of RECORDS_PER_BUILD_BATCH) in record sets of about
 * BUILD_SET_BYTES, one append awaited at a time so one template set serves every call.
 */
async function fillLog(log: PartitionLog, records: number, maxMs: number): Promise<{ records: number; bytes: number; seconds: number }> {
  if (records % RECORDS_PER_BUILD_BATCH !== 0) throw new RangeError(`a built log holds a multiple of ${RECORDS_PER_BUILD_BATCH} records, not ${records}`);
  const batch = buildBatch(0, RECORDS_PER_BUILD_BATCH);
  const batchesPerSet = Math.max(1, Math.floor(BUILD_SET_BYTES / batch.length));
  const set = Buffer.concat(Array.from({ length: batchesPerSet }, () => batch));
  const totalBatches = records / RECORDS_PER_BUILD_BATCH;
  let batchesWritten = 0;
  const run = await boundedLoop({ maxCount: Math.ceil(totalBatches / batchesPerSet), maxMs }, async () => {
    const batches = Math.min(batchesPerSet, totalBatches - batchesWritten);
    await log.append(set.subarray(0, batches * batch.length));
    batchesWritten += batches;
    return 'continue';
  });
  return { records: batchesWritten * RECORDS_PER_BUILD_BATCH, bytes: batchesWritten * batch.length, seconds: run.seconds };
}

/**
 * A batch of records with 100-byte values. With `recordCount`, exactly that many records; else
 * as many as fit and the last value stretched or shrunk so the batch is exactly `targetBytes`.
 */
function buildBatch(targetBytes: number, recordCount?: number): Buffer {
  const baseTimestamp = Date.now();
  const encode = (count: number, lastValueBytes: number): Buffer => {
    const records: RecordInput[] = [];
    for (let i = 0; i < count; i++) {
      const value = Buffer.alloc(i === count - 1 ? lastValueBytes : VALUE_BYTES, 0x61 + (i % 26));
      records.push({ key: null, value });
    }
    return encodeBatch(records, { baseTimestamp });
  };
  if (recordCount !== undefined) return encode(recordCount, VALUE_BYTES);
  // Records grow by a byte or two as their offset delta needs a longer varint, so settle the
  // count first (within one record of the target), then stretch the last value to fit exactly.
  const recordBytes = encode(2, VALUE_BYTES).length - encode(1, VALUE_BYTES).length;
  let count = 1;
  for (let attempt = 0; attempt < 16; attempt++) {
    const shortBy = targetBytes - encode(count, VALUE_BYTES).length;
    if (shortBy >= 0 && shortBy < 2 * recordBytes) break;
    count = Math.max(1, count + Math.trunc(shortBy / (recordBytes + 2)) + (shortBy < 0 ? -1 : 0));
  }
  let lastValueBytes = VALUE_BYTES;
  for (let attempt = 0; attempt < 8; attempt++) {
    const batch = encode(count, lastValueBytes);
    if (batch.length === targetBytes) return batch;
    lastValueBytes = Math.max(0, lastValueBytes + targetBytes - batch.length);
  }
  throw new Error(`could not build a batch of exactly ${targetBytes} bytes`);
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) throw new RangeError('no samples');
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) throw new RangeError('no samples');
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function perSecond(rate: Rate): number {
  return rate.count / rate.seconds;
}

function mbPerSecond(rate: Rate): number {
  return rate.bytes / MB / rate.seconds;
}

function compare(name: string, metric: string, value: number, unit: string, baselineName: string, baselineValue: number): BenchRow {
  return { name, metric, value, unit, baseline: { name: baselineName, value: baselineValue }, ratio: value / baselineValue };
}

function sizeLabel(bytes: number): string {
  return bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / KIB} KiB`;
}

function formatCount(count: number): string {
  const exponent = Math.log10(count);
  return Number.isInteger(exponent) ? `1e${exponent}` : count.toLocaleString('en-US');
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatTable(report: StorageBenchReport, label: string): string {
  const lines = [
    `Storage benchmark (${label}), ${report.startedAt}: ${report.machine.cpus} CPUs, Node ${report.machine.node}, crc32c ${report.machine.crc32c}. MB = 10^6 bytes.`,
    '',
    '| Benchmark | Metric | Value | Baseline | Ratio | Target |',
    '|---|---|---:|---|---:|---|',
  ];
  for (const row of report.rows) {
    const baseline = row.baseline === undefined ? '' : `${formatNumber(row.baseline.value)} ${row.unit} (${row.baseline.name})`;
    const ratio = row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}x`;
    const target = row.target === undefined ? '' : `${row.target.met ? 'met' : '**NOT met**'}: ${row.target.description}`;
    lines.push(`| ${row.name} | ${row.metric} | ${formatNumber(row.value)} ${row.unit} | ${baseline} | ${ratio} | ${target} |`);
  }
  return lines.join('\n') + '\n';
}
