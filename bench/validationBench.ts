// The produce-side validation benchmark behind `tidelog bench validation`: what it costs the
// partition log to check every record of a produced batch (engine/appendValidation.ts) instead of
// its header alone, as the broker did before. Two fresh logs take the same pre-encoded batches in
// one run, in alternating blocks (with, without, without, with, ...):
//
//   with     new AppendValidator({ workers, budget })                        the broker's default
//   without  new AppendValidator({ workers, budget, checkRecords: false })   header checks only
//
// Both share one WorkerPool (the broker's default size for this machine) and one
// DecompressionBudget (the broker's default, 64 MiB), as engine/broker.ts builds them. Appends
// run APPENDS_IN_FLIGHT at a time (several producer connections); each append gets its own copy
// of the batch, made before the block's clock starts (the log writes offsets into it in place).
// flush=os, segment.bytes 256 MiB; a log never rolls (a roll syncs a segment, which this does not
// measure): when one fills up, both are closed and a fresh pair continues the case.
//
// Cases: uncompressed batches of 100 B and 1 KiB values (16 KiB and 1 MiB batches), and 16 KiB of
// 1 KiB values compressed with gzip, lz4 and zstd. tidelog cannot write zstd, so that batch holds
// a hand-made zstd frame of Raw blocks (zstdRawFrame): it measures the validation path (a worker
// task, the frame decode, the walk), not real zstd decompression speed.
//
// Reported per case: records/s and MB/s of each side over its median block time (MB = 10^6
// bytes of batches as appended, compressed where the case is) and ratio = with / without, the
// median over adjacent pairs of blocks: on this VM kind a writeback stall can double one block's
// time, and a ratio of summed times swung from 0.8 to 1.04 between runs where the pair median
// held at 0.75-0.80. The summed ratio is kept beside it. Target: uncompressed cases keep at least
// RATIO_TARGET of the header-only throughput. A missed target is reported, not an error. Every
// loop stops at a count or a deadline. Table and PASS/FAIL lines to `out` (stdout), progress to
// `progress` (stderr), JSON to `outPath`, the same table as Markdown beside it (.md).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AppendValidator } from '../engine/appendValidation.js';
import { defaultBrokerConfig } from '../engine/brokerConfig.js';
import { DecompressionBudget } from '../engine/decompressionBudget.js';
import { resolveLogConfig, type LogConfig } from '../engine/logConfig.js';
import { silentLogger } from '../engine/logger.js';
import type { PartitionLog } from '../engine/partitionLog.js';
import { WorkerPool } from '../engine/workers/workerPool.js';
import { CompressionCodec, compress, decompress } from '../segments/compression.js';
import { crc32cImplementation } from '../segments/crc32c.js';
import {
  ATTRIBUTE_COMPRESSION_MASK,
  ATTRIBUTES_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  LOG_OVERHEAD,
  RECORD_COUNT_OFFSET,
  RECORDS_OFFSET,
  computeBatchCrc,
  encodeBatch,
  type RecordInput,
} from '../segments/recordBatch.js';
import { MAX_LOOP_MS, benchSinks, boundedLoop, closeLog, mulberry32, openLog, pretouchPageCache, writeJsonReport, type OpenedLog } from './benchRun.js';
import { loadAverages, machineFacts, median, type MachineFacts } from './benchStats.js';
import { percentileOfSorted } from './percentiles.js';

// ---------------------------------------------------------------------------------------------
// Limits and shapes (all in one place)

const KIB = 1024;
const MIB = 1024 * KIB;
const MB = 1_000_000;
const SEGMENT_BYTES = 256 * MIB;
/** Appends awaited at once on a side, like several producer connections to one partition. */
const APPENDS_IN_FLIGHT = 8;
const KEY_BYTES = 10;
/**
 * One block of appends carries at most this many bytes and takes about BLOCK_TARGET_MS on the
 * validating side (judged from its first warm-up), within [BLOCK_MIN_APPENDS, BLOCK_MAX_APPENDS]
 * appends: slow cases still get enough pairs, fast ones do not pay per-block overhead.
 */
const BLOCK_BYTES = 8 * MIB;
const BLOCK_TARGET_MS = 100;
const BLOCK_MIN_APPENDS = 2 * APPENDS_IN_FLIGHT;
const BLOCK_MAX_APPENDS = 512;
/** Pairs of fresh logs a case may use at most (each holds up to one segment per side). */
const MAX_ROUNDS_PER_CASE = 64;
/** Records a built batch may hold at most, and attempts at fitting a batch to its target size. */
const MAX_RECORDS_PER_BATCH = 100_000;
const MAX_FIT_ATTEMPTS = 64;
/** Uncompressed cases must keep this share of the header-only throughput. */
export const RATIO_TARGET = 0.9;
const RANDOM_SEED = 0x5eed_ba7c;
const KEY_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** Words values are made of: text-like, so gzip and lz4 see a realistic ratio (about 3:1). */
const VALUE_WORDS = [
  'order', 'created', 'updated', 'customer', 'id', 'amount', 'currency', 'EUR', 'USD', 'status', 'pending', 'shipped',
  'warehouse', 'north', 'south', 'item', 'sku', 'quantity', 'price', 'discount', 'region', 'session', 'click', 'view',
  'user', 'agent', 'mobile', 'desktop', 'true', 'false', 'null', 'timestamp', 'source', 'campaign', 'email', 'retry',
];

// zstd frame format (RFC 8878), just enough for a frame of Raw blocks:
//   magic 0xFD2FB528 (u32 LE) | frame header descriptor (u8) | frame content size | blocks
//   descriptor 0xA0: bits 7-6 = 2 (content size in 4 bytes, u32 LE), bit 5 = single segment (no
//   window descriptor), no checksum, no dictionary
//   block header (u24 LE): bit 0 last block, bits 1-2 type (0 = Raw), bits 3-23 size; Raw bytes follow
const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_DESCRIPTOR_SINGLE_SEGMENT_FCS4 = 0xa0;
const ZSTD_FRAME_HEADER_BYTES = 4 + 1 + 4;
const ZSTD_BLOCK_HEADER_BYTES = 3;
const ZSTD_BLOCK_TYPE_RAW = 0;
const ZSTD_MAX_BLOCK_BYTES = 128 * KIB;

export type CaseCodec = 'none' | 'gzip' | 'lz4' | 'zstd';

export interface ValidationCase {
  name: string;
  codec: CaseCodec;
  valueBytes: number;
  /** Size of the batch before compression; the batch holds as many records as fit. */
  targetBatchBytes: number;
}

export const VALIDATION_CASES: readonly ValidationCase[] = [
  { name: 'uncompressed, 100 B values, 16 KiB batches', codec: 'none', valueBytes: 100, targetBatchBytes: 16 * KIB },
  { name: 'uncompressed, 1 KiB values, 16 KiB batches', codec: 'none', valueBytes: 1 * KIB, targetBatchBytes: 16 * KIB },
  { name: 'uncompressed, 1 KiB values, 1 MiB batches', codec: 'none', valueBytes: 1 * KIB, targetBatchBytes: 1 * MIB },
  { name: 'gzip, 1 KiB values, 16 KiB before compression', codec: 'gzip', valueBytes: 1 * KIB, targetBatchBytes: 16 * KIB },
  { name: 'lz4, 1 KiB values, 16 KiB before compression', codec: 'lz4', valueBytes: 1 * KIB, targetBatchBytes: 16 * KIB },
  { name: 'zstd (Raw blocks), 1 KiB values, 16 KiB before compression', codec: 'zstd', valueBytes: 1 * KIB, targetBatchBytes: 16 * KIB },
];

export interface ValidationPlan {
  label: string;
  /** Wall time a case may take, log setup and closing included. */
  msPerCase: number;
  /** Appends each side may make in one case (across its rounds). */
  maxAppendsPerSide: number;
  /** Untimed bytes appended to each side of a fresh pair of logs before its first block (at least APPENDS_IN_FLIGHT appends). */
  warmupBytes: number;
  /** Bytes written once and deleted before the first case (0: none). */
  pretouchBytes: number;
  /** The cases to run; default all of VALIDATION_CASES. */
  cases?: readonly ValidationCase[];
}

export const DEFAULT_PLAN: ValidationPlan = { label: 'default', msPerCase: 11_000, maxAppendsPerSide: 400_000, warmupBytes: 4 * MIB, pretouchBytes: 512 * MIB };
export const QUICK_PLAN: ValidationPlan = { label: 'quick', msPerCase: 2_600, maxAppendsPerSide: 100_000, warmupBytes: 2 * MIB, pretouchBytes: 128 * MIB };

// ---------------------------------------------------------------------------------------------
// Report shapes

export interface SideResult {
  appends: number;
  records: number;
  /** Bytes of batches appended (compressed where the case is). */
  bytes: number;
  /** Sum of this side's timed blocks. */
  seconds: number;
  /** Records of a block / this side's median block time: the rate of a block no stall hit. */
  recordsPerSec: number;
  /** The same in MB/s. */
  mbPerSec: number;
  /** records / seconds: every block, stalls included. */
  meanRecordsPerSec: number;
}

export interface CaseResult {
  name: string;
  codec: CaseCodec;
  valueBytes: number;
  keyBytes: number;
  recordsPerBatch: number;
  /** Bytes of one batch as appended. */
  batchBytes: number;
  /** Bytes of its records area before compression. */
  recordsAreaBytes: number;
  appendsPerBlock: number;
  with: SideResult;
  without: SideResult;
  /**
   * The judged ratio: the median, over pairs of adjacent blocks (one per side), of the block's
   * rate with validation / its rate without. A disk stall lands in one block of one side; a
   * median of pairs shrugs it off where a ratio of sums does not.
   */
  ratio: number;
  /** 10th and 90th percentiles of the pair ratios: how much the machine moved during the case. */
  pairRatioP10: number;
  pairRatioP90: number;
  /** with.seconds / without.seconds turned into a rate ratio: every block, stalls included. */
  totalRatio: number;
  pairs: number;
  /** Fresh pairs of logs the case used. */
  rounds: number;
  /** Validation tasks the worker pool completed during the case (with side only). */
  workerTasks: number;
  /** Peak bytes the decompression budget held at once, over the run so far. */
  budgetPeakBytes: number;
  target: { description: string; ratioAtLeast: number; pass: boolean } | null;
}

export interface ValidationBenchReport {
  meta: {
    date: string;
    node: string;
    plan: string;
    durationSec: number;
    machine: MachineFacts & { crc32c: 'native' | 'js' };
    workerThreads: number;
    decompressionBudgetBytes: number;
    appendsInFlight: number;
    segmentBytes: number;
    flush: 'os';
    notes: string[];
  };
  cases: CaseResult[];
  targets: Array<{ case: string; ratio: number; ratioAtLeast: number; pass: boolean }>;
}

export interface ValidationBenchOptions {
  quick: boolean;
  /** Where the JSON goes (its directory is created); the Markdown goes beside it with .md. */
  outPath: string;
  /** Overrides the plan `quick` picks (tests run a tiny one). */
  plan?: ValidationPlan;
  /** Receives the table and the target lines. */
  out?: (text: string) => void;
  /** Receives one line per step. */
  progress?: (line: string) => void;
}

const NOTES = [
  'Records/s and MB/s (MB = 10^6 bytes of batches as appended, compressed where the case is) are a block\'s records or bytes over the side\'s median block time; ratio = the median over adjacent block pairs of (rate with validation / rate with header checks only), the two sides alternating blocks in one run. The ratio over all blocks, stalls included, is beside it.',
  'The zstd case holds a hand-made zstd frame of Raw blocks (tidelog cannot write zstd): it measures the validation path (frame decode and record walk, wherever the validator runs them), not real zstd decompression speed.',
  'gzip is inflated through zlib on the libuv thread pool; lz4 and zstd on the worker pool unless the frame declares a small output (then in this thread): the worker tasks column says which path a case took. Every compressed batch first reserves its decompression limit (16 x max.message.bytes) from the budget.',
];

// ---------------------------------------------------------------------------------------------
// Entry point

export async function runValidationBench(options: ValidationBenchOptions): Promise<ValidationBenchReport> {
  const plan = options.plan ?? (options.quick ? QUICK_PLAN : DEFAULT_PLAN);
  checkPlan(plan);
  const startedMs = performance.now();
  const { out, progress } = benchSinks(options, startedMs);
  const loadAverageAtStart = loadAverages();
  // Fail before a minute of measuring, not after, when the results cannot be written.
  await mkdir(dirname(options.outPath), { recursive: true });
  const brokerDefaults = defaultBrokerConfig();
  const workers = new WorkerPool({ threads: brokerDefaults.workerThreads, maxQueue: brokerDefaults.workerQueueMax, taskTimeoutMs: brokerDefaults.workerTaskTimeoutMs, maxHeapMb: brokerDefaults.workerMaxHeapMb, logger: silentLogger });
  const budget = new DecompressionBudget({ capacityBytes: brokerDefaults.produceDecompressionBufferBytes, maxWaiters: brokerDefaults.produceDecompressionMaxWaiting });
  const validators = {
    with: new AppendValidator({ workers, budget }),
    without: new AppendValidator({ workers, budget, checkRecords: false }),
  };
  const cases: CaseResult[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-bench-validation-'));
  progress(`${plan.label} run in ${dir}: ${workers.threads} worker thread(s), decompression budget ${budget.capacityBytes / MIB} MiB, ${APPENDS_IN_FLIGHT} appends in flight`);
  try {
    if (plan.pretouchBytes > 0) await pretouchPageCache(dir, plan.pretouchBytes, progress);
    for (const spec of plan.cases ?? VALIDATION_CASES) cases.push(await runCase({ plan, dir, progress, workers, budget, validators }, spec));
  } finally {
    await workers.close();
    await rm(dir, { recursive: true, force: true });
  }
  const report: ValidationBenchReport = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      plan: plan.label,
      durationSec: Number(((performance.now() - startedMs) / 1000).toFixed(1)),
      machine: { ...machineFacts(loadAverageAtStart), crc32c: crc32cImplementation },
      workerThreads: workers.threads,
      decompressionBudgetBytes: budget.capacityBytes,
      appendsInFlight: APPENDS_IN_FLIGHT,
      segmentBytes: SEGMENT_BYTES,
      flush: 'os',
      notes: NOTES,
    },
    cases,
    targets: cases.flatMap((result) => (result.target === null ? [] : [{ case: result.name, ratio: result.ratio, ratioAtLeast: result.target.ratioAtLeast, pass: result.target.pass }])),
  };
  const markdown = renderMarkdown(report);
  await writeJsonReport(options.outPath, report);
  await writeFile(markdownPathOf(options.outPath), markdown);
  out(formatTable(report) + '\n' + formatTargets(report) + '\n');
  progress(`done; JSON written to ${options.outPath}, Markdown to ${markdownPathOf(options.outPath)}`);
  return report;
}

/** validation.json -> validation.md (any other name gets .md appended). */
export function markdownPathOf(jsonPath: string): string {
  return jsonPath.endsWith('.json') ? jsonPath.slice(0, -'.json'.length) + '.md' : jsonPath + '.md';
}

function checkPlan(plan: ValidationPlan): void {
  if (!(plan.msPerCase > 0 && plan.msPerCase <= MAX_LOOP_MS)) throw new RangeError(`msPerCase must be in (0, ${MAX_LOOP_MS}], got ${plan.msPerCase}`);
  if (!Number.isSafeInteger(plan.maxAppendsPerSide) || plan.maxAppendsPerSide < 1) throw new RangeError(`maxAppendsPerSide must be a positive integer, got ${plan.maxAppendsPerSide}`);
  if (!Number.isSafeInteger(plan.warmupBytes) || plan.warmupBytes < 0) throw new RangeError(`warmupBytes must be a non-negative integer, got ${plan.warmupBytes}`);
  if (!Number.isSafeInteger(plan.pretouchBytes) || plan.pretouchBytes < 0) throw new RangeError(`pretouchBytes must be a non-negative integer, got ${plan.pretouchBytes}`);
}

// ---------------------------------------------------------------------------------------------
// One case: rounds of a fresh pair of logs, blocks alternating between them

interface Context {
  plan: ValidationPlan;
  dir: string;
  progress: (line: string) => void;
  workers: WorkerPool;
  budget: DecompressionBudget;
  validators: { with: AppendValidator; without: AppendValidator };
}

interface Tally {
  appends: number;
  seconds: number;
  blockSeconds: number[];
}

async function runCase(context: Context, spec: ValidationCase): Promise<CaseResult> {
  const { plan } = context;
  const caseDeadline = performance.now() + plan.msPerCase;
  const built = buildCaseBatch(spec);
  const { batch } = built;
  const maxAppendsPerBlock = Math.max(BLOCK_MIN_APPENDS, Math.min(BLOCK_MAX_APPENDS, Math.floor(BLOCK_BYTES / batch.length)));
  let appendsPerBlock = maxAppendsPerBlock;
  // Appends one log of a round may take without rolling: warm-up, whole blocks, one block of slack.
  const appendsPerSegment = Math.floor(SEGMENT_BYTES / batch.length);
  const warmupAppends = Math.max(APPENDS_IN_FLIGHT, Math.min(BLOCK_MAX_APPENDS, Math.floor(plan.warmupBytes / batch.length)));
  const timedAppendsPerRound = appendsPerSegment - warmupAppends - maxAppendsPerBlock;
  if (timedAppendsPerRound < maxAppendsPerBlock) throw new Error(`${spec.name}: a ${batch.length}-byte batch leaves no room for a block in a ${SEGMENT_BYTES}-byte segment`);
  const config = resolveLogConfig({ flush: { mode: 'os' }, segmentBytes: SEGMENT_BYTES });
  const tallies: Record<'with' | 'without', Tally> = { with: { appends: 0, seconds: 0, blockSeconds: [] }, without: { appends: 0, seconds: 0, blockSeconds: [] } };
  const pairRatios: number[] = [];
  const tasksBefore = context.workers.counters().completed;
  let rounds = 0;
  context.progress(`${spec.name}: ${built.recordsPerBatch} records, ${batch.length} bytes a batch (records area ${built.recordsAreaBytes} bytes before compression)`);
  while (rounds < MAX_ROUNDS_PER_CASE && performance.now() < caseDeadline && tallies.with.appends < plan.maxAppendsPerSide && tallies.without.appends < plan.maxAppendsPerSide) {
    const roundDir = join(context.dir, `case-${spec.codec}-${spec.valueBytes}-${spec.targetBatchBytes}-round-${rounds}`);
    rounds++;
    const withLog = await openValidatingLog(join(roundDir, 'with'), config, context.validators.with, context.workers);
    let withoutLog: OpenedLog;
    try {
      withoutLog = await openValidatingLog(join(roundDir, 'without'), config, context.validators.without, context.workers);
    } catch (error) {
      await closeLog(withLog);
      throw error;
    }
    const logs = { with: withLog, without: withoutLog };
    try {
      // Warm-up (untimed): JIT, the worker thread, and the proof that the validator accepts the batch.
      for (const side of ['with', 'without'] as const) {
        const copies = copiesOf(batch, warmupAppends);
        const before = performance.now();
        await appendBlock(logs[side].log, copies);
        if (side === 'with' && rounds === 1) {
          const msPerAppend = (performance.now() - before) / warmupAppends;
          appendsPerBlock = Math.max(BLOCK_MIN_APPENDS, Math.min(maxAppendsPerBlock, Math.round(BLOCK_TARGET_MS / Math.max(msPerAppend, 1e-3))));
          context.progress(`${spec.name}: ${appendsPerBlock} appends a block (${msPerAppend.toFixed(3)} ms an append in the validating side's warm-up)`);
        }
      }
      const roundStart = { with: tallies.with.appends, without: tallies.without.appends };
      const remaining = (side: 'with' | 'without'): number => Math.min(timedAppendsPerRound - (tallies[side].appends - roundStart[side]), plan.maxAppendsPerSide - tallies[side].appends);
      await boundedLoop({ maxCount: Math.ceil(timedAppendsPerRound / appendsPerBlock), maxMs: Math.max(1, caseDeadline - performance.now()) }, async (pair) => {
        if (remaining('with') < appendsPerBlock || remaining('without') < appendsPerBlock) return 'stop';
        // with, without, then without, with: whichever runs second in a pair (page cache, GC debt) alternates.
        const order = pair % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const);
        const seconds = { with: 0, without: 0 };
        for (const side of order) {
          const copies = copiesOf(batch, appendsPerBlock);
          const before = performance.now();
          await appendBlock(logs[side].log, copies);
          seconds[side] = (performance.now() - before) / 1000;
          tallies[side].appends += appendsPerBlock;
          tallies[side].seconds += seconds[side];
          tallies[side].blockSeconds.push(seconds[side]);
        }
        pairRatios.push(seconds.without / seconds.with);
        return 'continue';
      });
    } finally {
      await closeLog(logs.with);
      await closeLog(logs.without);
      await rm(roundDir, { recursive: true, force: true });
    }
  }
  if (pairRatios.length === 0) throw new Error(`${spec.name}: no block ran before the case's deadline of ${plan.msPerCase} ms`);
  const sideResult = (tally: Tally): SideResult => {
    const medianBlockSeconds = median(tally.blockSeconds);
    return {
      appends: tally.appends,
      records: tally.appends * built.recordsPerBatch,
      bytes: tally.appends * batch.length,
      seconds: round6(tally.seconds),
      recordsPerSec: Math.round((appendsPerBlock * built.recordsPerBatch) / medianBlockSeconds),
      mbPerSec: Number(((appendsPerBlock * batch.length) / MB / medianBlockSeconds).toFixed(2)),
      meanRecordsPerSec: Math.round((tally.appends * built.recordsPerBatch) / tally.seconds),
    };
  };
  const withSide = sideResult(tallies.with);
  const withoutSide = sideResult(tallies.without);
  const ratio = Number(median(pairRatios).toFixed(4));
  const sortedPairRatios = [...pairRatios].sort((a, b) => a - b);
  const result: CaseResult = {
    name: spec.name,
    codec: spec.codec,
    valueBytes: spec.valueBytes,
    keyBytes: KEY_BYTES,
    recordsPerBatch: built.recordsPerBatch,
    batchBytes: batch.length,
    recordsAreaBytes: built.recordsAreaBytes,
    appendsPerBlock,
    with: withSide,
    without: withoutSide,
    ratio,
    pairRatioP10: Number(percentileOfSorted(sortedPairRatios, 0.1)!.toFixed(4)),
    pairRatioP90: Number(percentileOfSorted(sortedPairRatios, 0.9)!.toFixed(4)),
    totalRatio: Number((tallies.without.seconds / tallies.with.seconds).toFixed(4)),
    pairs: pairRatios.length,
    rounds,
    workerTasks: context.workers.counters().completed - tasksBefore,
    budgetPeakBytes: context.budget.peakReservedBytes,
    target: spec.codec === 'none' ? { description: `records/s with validation >= ${RATIO_TARGET.toFixed(2)} x without`, ratioAtLeast: RATIO_TARGET, pass: ratio >= RATIO_TARGET } : null,
  };
  context.progress(
    `${spec.name}: with ${formatCount(withSide.recordsPerSec)} rec/s (${withSide.mbPerSec.toFixed(0)} MB/s), without ${formatCount(withoutSide.recordsPerSec)} rec/s, ratio ${ratio.toFixed(3)} (pairs p10 ${result.pairRatioP10.toFixed(3)}, p90 ${result.pairRatioP90.toFixed(3)}; all blocks ${result.totalRatio.toFixed(3)}; ${result.pairs} pairs, ${rounds} round(s))`,
  );
  return result;
}

/** Fresh copies of a batch, one per append (the log rewrites offsets in place). */
function copiesOf(batch: Buffer, count: number): Buffer[] {
  return Array.from({ length: count }, () => Buffer.from(batch));
}

/** Appends every buffer, APPENDS_IN_FLIGHT at a time, each appender taking the next buffer when its append settles. */
async function appendBlock(log: PartitionLog, buffers: readonly Buffer[]): Promise<void> {
  let next = 0;
  const appender = async (): Promise<void> => {
    while (next < buffers.length) {
      const buffer = buffers[next++]!;
      await log.append(buffer);
    }
  };
  await Promise.all(Array.from({ length: Math.min(APPENDS_IN_FLIGHT, buffers.length) }, appender));
}

// ---------------------------------------------------------------------------------------------
// Logs

/** A log of one side of a round: a fresh directory, appends checked by `validator`. */
function openValidatingLog(dir: string, config: LogConfig, validator: AppendValidator, workers: WorkerPool): Promise<OpenedLog> {
  return openLog(dir, config, { recoveryPoint: 0, cleanShutdown: true, workers, validator });
}

// ---------------------------------------------------------------------------------------------
// Batches

export interface BuiltBatch {
  batch: Buffer;
  recordsPerBatch: number;
  /** Bytes of the records area before compression. */
  recordsAreaBytes: number;
}

/**
 * A batch of the case: as many records (random 10-byte keys, text-like values, timestamps = now)
 * as fit the target size uncompressed, then compressed as the case says. The compressed area is
 * checked to decode back to the records before the batch is used.
 */
export function buildCaseBatch(spec: ValidationCase, seed = RANDOM_SEED): BuiltBatch {
  const random = mulberry32(seed);
  const timestamp = Date.now();
  const records: RecordInput[] = [];
  const recordAt = (index: number): RecordInput => {
    while (records.length <= index) records.push({ key: randomKey(random), value: textValue(random, spec.valueBytes), timestamp });
    return records[index]!;
  };
  const encode = (count: number): Buffer => {
    recordAt(count - 1);
    return encodeBatch(records.slice(0, count), { baseTimestamp: timestamp });
  };
  const recordBytes = Math.max(1, encode(2).length - encode(1).length);
  let count = Math.max(1, Math.min(MAX_RECORDS_PER_BATCH, Math.floor((spec.targetBatchBytes - RECORDS_OFFSET) / recordBytes)));
  let plain = encode(count);
  for (let attempt = 0; plain.length > spec.targetBatchBytes && count > 1; attempt++) {
    if (attempt >= MAX_FIT_ATTEMPTS) throw new Error(`could not fit ${spec.valueBytes}-byte records into ${spec.targetBatchBytes} bytes`);
    count -= Math.max(1, Math.floor((plain.length - spec.targetBatchBytes) / recordBytes));
    plain = encode(Math.max(1, count));
  }
  const recordsAreaBytes = plain.length - RECORDS_OFFSET;
  const area = plain.subarray(RECORDS_OFFSET);
  let batch: Buffer;
  switch (spec.codec) {
    case 'none':
      batch = plain;
      break;
    case 'gzip':
      batch = encodeBatch(records.slice(0, count), { baseTimestamp: timestamp, compression: 'gzip' });
      break;
    case 'lz4':
      batch = withCompressedArea(plain, CompressionCodec.lz4, compress(CompressionCodec.lz4, Buffer.from(area)));
      break;
    case 'zstd':
      batch = withCompressedArea(plain, CompressionCodec.zstd, zstdRawFrame(area));
      break;
  }
  if (batch.readInt32BE(RECORD_COUNT_OFFSET) !== count) throw new Error(`built batch says ${batch.readInt32BE(RECORD_COUNT_OFFSET)} records, not ${count}`);
  if (spec.codec !== 'none') {
    const codecId = CompressionCodec[spec.codec];
    const decoded = decompress(codecId, batch.subarray(RECORDS_OFFSET));
    if (!decoded.equals(area)) throw new Error(`the ${spec.codec} records area does not decode to the records it was made from`);
  }
  return { batch, recordsPerBatch: count, recordsAreaBytes };
}

/** The batch `plain` with its records area replaced by `area` compressed with `codec`: length, attributes and CRC redone. */
function withCompressedArea(plain: Buffer, codec: number, area: Buffer): Buffer {
  const batch = Buffer.allocUnsafe(RECORDS_OFFSET + area.length);
  plain.copy(batch, 0, 0, RECORDS_OFFSET);
  area.copy(batch, RECORDS_OFFSET);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  batch.writeInt16BE((plain.readInt16BE(ATTRIBUTES_OFFSET) & ~ATTRIBUTE_COMPRESSION_MASK) | codec, ATTRIBUTES_OFFSET);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}

/** A zstd frame that stores `content` uncompressed in Raw blocks (format at the top of this file). */
export function zstdRawFrame(content: Uint8Array): Buffer {
  if (content.length > 0xffff_ffff) throw new RangeError(`a 4-byte frame content size cannot say ${content.length}`);
  const blocks = Math.max(1, Math.ceil(content.length / ZSTD_MAX_BLOCK_BYTES));
  const frame = Buffer.allocUnsafe(ZSTD_FRAME_HEADER_BYTES + blocks * ZSTD_BLOCK_HEADER_BYTES + content.length);
  frame.writeUInt32LE(ZSTD_MAGIC, 0);
  frame[4] = ZSTD_DESCRIPTOR_SINGLE_SEGMENT_FCS4;
  frame.writeUInt32LE(content.length, 5);
  let position = ZSTD_FRAME_HEADER_BYTES;
  for (let block = 0; block < blocks; block++) {
    const start = block * ZSTD_MAX_BLOCK_BYTES;
    const size = Math.min(ZSTD_MAX_BLOCK_BYTES, content.length - start);
    const last = block === blocks - 1 ? 1 : 0;
    frame.writeUIntLE(last | (ZSTD_BLOCK_TYPE_RAW << 1) | (size << 3), position, ZSTD_BLOCK_HEADER_BYTES);
    position += ZSTD_BLOCK_HEADER_BYTES;
    frame.set(content.subarray(start, start + size), position);
    position += size;
  }
  if (position !== frame.length) throw new Error(`zstd frame assembly ended at ${position} of ${frame.length} bytes`);
  return frame;
}

function randomKey(random: () => number): Buffer {
  let key = '';
  for (let i = 0; i < KEY_BYTES; i++) key += KEY_ALPHABET[Math.floor(random() * KEY_ALPHABET.length)];
  return Buffer.from(key, 'latin1');
}

function textValue(random: () => number, bytes: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const word = random() < 0.2 ? String(Math.floor(random() * 100_000)) : VALUE_WORDS[Math.floor(random() * VALUE_WORDS.length)]!;
    parts.push(word);
    length += word.length + 1;
  }
  return Buffer.from(parts.join(' ').slice(0, bytes), 'latin1');
}

// ---------------------------------------------------------------------------------------------
// Formatting

function round6(value: number): number {
  return Number(value.toFixed(6));
}

function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function formatMb(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

export function formatTable(report: ValidationBenchReport): string {
  const { meta } = report;
  const lines = [
    `Validation benchmark (${meta.plan}), ${meta.date}: ${meta.machine.cpus} CPUs, Node ${meta.node}, ${meta.workerThreads} worker thread(s), ${meta.appendsInFlight} appends in flight, flush=os. MB = 10^6 bytes as appended.`,
    '',
    '| Case | Records/s with | Records/s without | MB/s with | Ratio | Target |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const result of report.cases) {
    const target = result.target === null ? '-' : `${result.target.pass ? 'PASS' : 'FAIL'} (>= ${result.target.ratioAtLeast.toFixed(2)})`;
    lines.push(`| ${result.name} | ${formatCount(result.with.recordsPerSec)} | ${formatCount(result.without.recordsPerSec)} | ${formatMb(result.with.mbPerSec)} | ${result.ratio.toFixed(3)} | ${target} |`);
  }
  return lines.join('\n') + '\n';
}

/** One PASS or FAIL line per uncompressed case. */
export function formatTargets(report: ValidationBenchReport): string {
  return report.targets.map((target) => `${target.pass ? 'PASS' : 'FAIL'} ${target.case}: ratio ${target.ratio.toFixed(3)} (target >= ${target.ratioAtLeast.toFixed(2)})`).join('\n') + '\n';
}

export function renderMarkdown(report: ValidationBenchReport): string {
  const { meta } = report;
  const lines = [
    '# tidelog bench validation',
    '',
    `${meta.date}; Node ${meta.node}; plan ${meta.plan}; ${meta.machine.cpus} CPUs (${meta.machine.cpuModel}), ${formatCount(meta.machine.totalMemoryMb)} MB RAM; load average at start ${meta.machine.loadAverageAtStart.map((load) => load.toFixed(2)).join(' ')}; crc32c ${meta.machine.crc32c}; ${meta.durationSec.toFixed(0)} s.`,
    '',
    `PartitionLog.append of pre-encoded batches with record validation (the broker's default AppendValidator) beside header checks only (checkRecords: false), alternating blocks in one run; ${meta.appendsInFlight} appends in flight, flush=os, segment.bytes ${meta.segmentBytes / MIB} MiB, ${meta.workerThreads} worker thread(s), decompression budget ${meta.decompressionBudgetBytes / MIB} MiB.`,
    '',
    '| Case | Records/batch | Batch bytes | Records/s with | Records/s without | MB/s with | MB/s without | Ratio | Pair ratio p10-p90 | All blocks ratio | Pairs | Worker tasks | Target |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|',
  ];
  for (const result of report.cases) {
    const target = result.target === null ? '-' : `${result.target.pass ? 'PASS' : 'FAIL'} (>= ${result.target.ratioAtLeast.toFixed(2)})`;
    lines.push(
      `| ${result.name} | ${result.recordsPerBatch} | ${formatCount(result.batchBytes)} | ${formatCount(result.with.recordsPerSec)} | ${formatCount(result.without.recordsPerSec)} | ${formatMb(result.with.mbPerSec)} | ${formatMb(result.without.mbPerSec)} | ${result.ratio.toFixed(3)} | ${result.pairRatioP10.toFixed(3)}-${result.pairRatioP90.toFixed(3)} | ${result.totalRatio.toFixed(3)} | ${result.pairs} | ${formatCount(result.workerTasks)} | ${target} |`,
    );
  }
  lines.push('', ...report.targets.map((target) => `- ${target.pass ? 'PASS' : 'FAIL'} ${target.case}: ratio ${target.ratio.toFixed(3)} (target >= ${target.ratioAtLeast.toFixed(2)})`), '');
  lines.push(...meta.notes.map((note) => `Note: ${note}`), '');
  return lines.join('\n');
}
