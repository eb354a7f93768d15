// The produce-side validation benchmark behind `tidelog bench validation`: what it costs to check
// every record of a produced batch (engine/log/appendValidation.ts) instead of its header alone, as
// the broker did before. Every case is measured at two levels; at each, two sides take the same
// pre-encoded batches in one run, in alternating blocks (with, without, without, with, ...):
//
//   produce  Produce v7 requests (acks=1, one topic of one partition, the case's batch as that
//            partition's records) handed as request frames to Broker.handleFrame, as a connection
//            hands them over, without sockets: request decoding, the produce handler, the append,
//            the response encoding. Two in-process brokers, started once per run:
//              with     Broker.start({ ... })                            the broker's default
//              without  Broker.start({ ..., recordValidation: false })   header checks only
//            each with its own data directory, worker pool and decompression budget (defaults).
//   append   PartitionLog.append alone, on two fresh logs:
//              with     new AppendValidator({ workers, budget })                        default
//              without  new AppendValidator({ workers, budget, checkRecords: false })   header only
//            sharing one WorkerPool (the broker's default size for this machine) and one
//            DecompressionBudget (the broker's default, 64 MiB), as engine/broker.ts builds them.
//
// The issue asks for produce throughput, so the target is judged on the produce level. The append
// level leaves out request decoding, the handler and the network, so validation's share looks
// largest there: its ratio is reported beside, as the strictest view.
//
// At both levels BATCHES_IN_FLIGHT batches are in flight on a side (several producer
// connections); each gets its own copy of the batch (at the produce level, a request frame of its
// own), made before the block's clock starts, since the log writes offsets into it in place.
// flush=os, segment.bytes 256 MiB; a log never rolls (a roll syncs a segment, which this does not
// measure): when one fills up the round ends, and a fresh pair (two logs, or a new topic on each
// broker, the old one deleted) continues the case. Of each block's Produce responses, the first,
// the last and every RESPONSE_SAMPLE_EVERY-th are copied and decoded after the clock stops; an
// error code there fails the run, and at the end of every round each side's log must hold every
// record it was sent.
//
// Cases: uncompressed batches of 100 B and 1 KiB values (16 KiB and 1 MiB batches), and 16 KiB of
// 1 KiB values compressed with gzip, lz4 and zstd. tidelog cannot write zstd, so that batch holds
// a hand-made zstd frame of Raw blocks (zstdRawFrame): it measures the validation path (a worker
// task, the frame decode, the walk), not real zstd decompression speed.
//
// Reported per case and level: records/s and MB/s of each side over its median block time (MB =
// 10^6 bytes of batches as appended, compressed where the case is) and ratio = with / without,
// the median over adjacent pairs of blocks: on this VM kind a writeback stall can double one
// block's time, and a ratio of summed times swung from 0.8 to 1.04 between runs where the pair
// median held at 0.75-0.80. The summed ratio is kept beside it. Target: uncompressed cases keep
// at least RATIO_TARGET of the header-only produce throughput. A missed target is reported, not
// an error. Every loop stops at a count or a deadline. Table and PASS/FAIL lines to `out`
// (stdout), progress to `progress` (stderr), JSON to `outPath`, Markdown beside it (.md).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AppendValidator } from '../engine/log/appendValidation.js';
import { Broker, type BrokerResponse } from '../engine/broker.js';
import { defaultBrokerConfig, type BrokerConfig } from '../engine/brokerConfig.js';
import { DecompressionBudget } from '../engine/log/decompressionBudget.js';
import { resolveLogConfig, type LogConfig } from '../engine/log/logConfig.js';
import { silentLogger } from '../engine/logger.js';
import { MemoryMetadataStore } from '../engine/metadataStore.js';
import type { PartitionLog } from '../engine/log/partitionLog.js';
import { WorkerPool } from '../engine/workers/workerPool.js';
import { ErrorCode, errorCodeName } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/apiSchemas.js';
import { encodeProduceRequest } from '../protocol/generated/produceRequest.js';
import { decodeProduceResponse } from '../protocol/generated/produceResponse.js';
import { readResponseHeader, responseHeaderVersion, writeRequestHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import { CompressionCodec, compress, decompress } from '../segments/compression.js';
import { crc32cImplementation } from '../segments/crc32c.js';
import { RECORD_COUNT_OFFSET, RECORDS_OFFSET, encodeBatch, type RecordInput } from '../segments/recordBatch.js';
import { MAX_LOOP_MS, benchSinks, boundedLoop, closeLog, mulberry32, openLog, pretouchPageCache, withCompressedArea, writeJsonReport } from './benchRun.js';
import { loadAverages, machineFacts, median, type MachineFacts } from './benchStats.js';
import { percentileOfSorted } from './percentiles.js';

// ---------------------------------------------------------------------------------------------
// Limits and shapes (all in one place)

const KIB = 1024;
const MIB = 1024 * KIB;
const MB = 1_000_000;
const SEGMENT_BYTES = 256 * MIB;
/** Batches in flight on a side at once (appends awaited, or Produce requests unanswered), like several producer connections to one partition. */
const BATCHES_IN_FLIGHT = 8;
const KEY_BYTES = 10;
/**
 * One block carries at most this many bytes of batches and takes about BLOCK_TARGET_MS on the
 * validating side (judged from its first warm-up), within [BLOCK_MIN_BATCHES, BLOCK_MAX_BATCHES]
 * batches: slow cases still get enough pairs, fast ones do not pay per-block overhead.
 */
const BLOCK_BYTES = 8 * MIB;
const BLOCK_TARGET_MS = 100;
const BLOCK_MIN_BATCHES = 2 * BATCHES_IN_FLIGHT;
const BLOCK_MAX_BATCHES = 512;
/** Rounds (fresh pairs of logs or topics) one level of a case may use at most (each holds up to one segment per side). */
const MAX_ROUNDS_PER_LEVEL = 64;
/** Records a built batch may hold at most, and attempts at fitting a batch to its target size. */
const MAX_RECORDS_PER_BATCH = 100_000;
const MAX_FIT_ATTEMPTS = 64;
/** Uncompressed cases must keep this share of the header-only produce throughput. */
export const RATIO_TARGET = 0.9;
const RANDOM_SEED = 0x5eed_ba7c;
const KEY_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** Words values are made of: text-like, so gzip and lz4 see a realistic ratio (about 3:1). */
const VALUE_WORDS = [
  'order', 'created', 'updated', 'customer', 'id', 'amount', 'currency', 'EUR', 'USD', 'status', 'pending', 'shipped',
  'warehouse', 'north', 'south', 'item', 'sku', 'quantity', 'price', 'discount', 'region', 'session', 'click', 'view',
  'user', 'agent', 'mobile', 'desktop', 'true', 'false', 'null', 'timestamp', 'source', 'campaign', 'email', 'retry',
];

// The produce level's requests: the version kafkajs 2.2.4 sends, acks=1 (answered once the leader
// appended), one topic of one partition.
const PRODUCE_VERSION = 7;
const PRODUCE_ACKS_LEADER = 1;
const PRODUCE_TIMEOUT_MS = 30_000;
const PRODUCE_PARTITION = 0;
const BENCH_CLIENT_ID = 'tidelog-bench-validation';
const BENCH_REMOTE_ADDRESS = '127.0.0.1:0';
/** Of a block's Produce responses, the first, the last and every this-many-th are copied and decoded after the clock stops. */
const RESPONSE_SAMPLE_EVERY = 32;

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

/** produce: Produce requests through an in-process broker (judged); append: PartitionLog.append alone (the strictest view). */
export type Level = 'produce' | 'append';
/** The order a case runs its levels in. */
export const LEVELS: readonly Level[] = ['append', 'produce'];

type Side = 'with' | 'without';
const SIDES: readonly Side[] = ['with', 'without'];

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
  /** Wall time one level of a case may take, round setup and closing included. */
  msPerLevel: number;
  /** Batches (appends or Produce requests) each side may take in one level of a case (across its rounds). */
  maxBatchesPerSide: number;
  /** Untimed bytes sent to each side of a fresh round before its first block (at least BATCHES_IN_FLIGHT batches). */
  warmupBytes: number;
  /** Bytes written once and deleted before the first case (0: none). */
  pretouchBytes: number;
  /** The cases to run; default all of VALIDATION_CASES. */
  cases?: readonly ValidationCase[];
}

export const DEFAULT_PLAN: ValidationPlan = { label: 'default', msPerLevel: 11_000, maxBatchesPerSide: 400_000, warmupBytes: 4 * MIB, pretouchBytes: 512 * MIB };
export const QUICK_PLAN: ValidationPlan = { label: 'quick', msPerLevel: 2_600, maxBatchesPerSide: 100_000, warmupBytes: 2 * MIB, pretouchBytes: 128 * MIB };

// ---------------------------------------------------------------------------------------------
// Report shapes

export interface SideResult {
  /** Batches this side took in timed blocks: one per append, or per Produce request. */
  batches: number;
  records: number;
  /** Bytes of batches (compressed where the case is). */
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

export interface LevelResult {
  level: Level;
  batchesPerBlock: number;
  with: SideResult;
  without: SideResult;
  /**
   * The median, over pairs of adjacent blocks (one per side), of the block's rate with
   * validation / its rate without. A disk stall lands in one block of one side; a median of
   * pairs shrugs it off where a ratio of sums does not.
   */
  ratio: number;
  /** 10th and 90th percentiles of the pair ratios: how much the machine moved during the level. */
  pairRatioP10: number;
  pairRatioP90: number;
  /** with.seconds / without.seconds turned into a rate ratio: every block, stalls included. */
  totalRatio: number;
  pairs: number;
  /** Rounds (fresh pairs of logs, or of topics) the level used. */
  rounds: number;
  /** Validation tasks the validating side's worker pool completed during the level. */
  workerTasks: number;
  /** Append level: peak bytes the shared decompression budget held at once, over the run so far. Produce level: null (each broker's budget is its own and not visible). */
  budgetPeakBytes: number | null;
}

export interface CaseResult {
  name: string;
  codec: CaseCodec;
  valueBytes: number;
  keyBytes: number;
  recordsPerBatch: number;
  /** Bytes of one batch as sent. */
  batchBytes: number;
  /** Bytes of its records area before compression. */
  recordsAreaBytes: number;
  /** The measure, and the one judged: Produce requests through an in-process broker. */
  produce: LevelResult;
  /** The strictest view: PartitionLog.append alone. */
  append: LevelResult;
  /** Judged on produce.ratio; null for compressed cases. */
  target: { description: string; ratioAtLeast: number; pass: boolean } | null;
}

export interface TargetResult {
  case: string;
  level: 'produce';
  ratio: number;
  /** The append level's ratio, the strictest view, reported beside (not judged). */
  appendRatio: number;
  ratioAtLeast: number;
  pass: boolean;
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
    batchesInFlight: number;
    segmentBytes: number;
    flush: 'os';
    produce: { apiVersion: number; acks: number; responseSampleEvery: number };
    notes: string[];
  };
  cases: CaseResult[];
  targets: TargetResult[];
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
  'Two levels per case. produce: Produce v7 requests (acks=1, one partition, the case\'s batch) handed as request frames to Broker.handleFrame of two in-process brokers, one started with record validation (the default) and one with header checks only (recordValidation: false); no sockets, so the network and the client are left out. append: PartitionLog.append of the same batches with the broker\'s default AppendValidator beside checkRecords: false.',
  'The PASS/FAIL target (uncompressed cases, ratio >= 0.90) is judged on the produce level, the issue\'s measure (produce throughput); the append-level ratio beside it is the strictest view, since it leaves out request decoding, the handler and the network, so validation\'s share of the time looks largest there.',
  'Records/s and MB/s (MB = 10^6 bytes of batches as sent, compressed where the case is) are a block\'s records or bytes over the side\'s median block time; ratio = the median over adjacent block pairs of (rate with validation / rate with header checks only), the two sides alternating blocks in one run. The ratio over all blocks, stalls included, is beside it.',
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
  const cases: CaseResult[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-bench-validation-'));
  const workers = new WorkerPool({ threads: brokerDefaults.workerThreads, maxQueue: brokerDefaults.workerQueueMax, taskTimeoutMs: brokerDefaults.workerTaskTimeoutMs, maxHeapMb: brokerDefaults.workerMaxHeapMb, logger: silentLogger });
  const budget = new DecompressionBudget({ capacityBytes: brokerDefaults.produceDecompressionBufferBytes, maxWaiters: brokerDefaults.produceDecompressionMaxWaiting });
  const validators = {
    with: new AppendValidator({ workers, budget }),
    without: new AppendValidator({ workers, budget, checkRecords: false }),
  };
  const stopping = new AbortController();
  let brokers: Record<Side, Broker> | null = null;
  progress(`${plan.label} run in ${dir}: ${workers.threads} worker thread(s), decompression budget ${budget.capacityBytes / MIB} MiB, ${BATCHES_IN_FLIGHT} batches in flight`);
  try {
    brokers = await startBrokers(dir);
    progress('two in-process brokers started (record validation on, and header checks only)');
    const drivers: Record<Level, LevelDriver> = { append: appendDriver(dir, workers, budget, validators), produce: produceDriver(brokers, stopping.signal) };
    if (plan.pretouchBytes > 0) await pretouchPageCache(dir, plan.pretouchBytes, progress);
    const specs = plan.cases ?? VALIDATION_CASES;
    for (const [index, spec] of specs.entries()) cases.push(await runCase({ plan, progress, drivers }, spec, index));
  } finally {
    stopping.abort();
    try {
      if (brokers !== null) await stopBrokers(brokers);
    } finally {
      await workers.close();
      await rm(dir, { recursive: true, force: true });
    }
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
      batchesInFlight: BATCHES_IN_FLIGHT,
      segmentBytes: SEGMENT_BYTES,
      flush: 'os',
      produce: { apiVersion: PRODUCE_VERSION, acks: PRODUCE_ACKS_LEADER, responseSampleEvery: RESPONSE_SAMPLE_EVERY },
      notes: NOTES,
    },
    cases,
    targets: cases.flatMap((result) =>
      result.target === null ? [] : [{ case: result.name, level: 'produce' as const, ratio: result.produce.ratio, appendRatio: result.append.ratio, ratioAtLeast: result.target.ratioAtLeast, pass: result.target.pass }],
    ),
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
  if (!(plan.msPerLevel > 0 && plan.msPerLevel <= MAX_LOOP_MS)) throw new RangeError(`msPerLevel must be in (0, ${MAX_LOOP_MS}], got ${plan.msPerLevel}`);
  if (!Number.isSafeInteger(plan.maxBatchesPerSide) || plan.maxBatchesPerSide < 1) throw new RangeError(`maxBatchesPerSide must be a positive integer, got ${plan.maxBatchesPerSide}`);
  if (!Number.isSafeInteger(plan.warmupBytes) || plan.warmupBytes < 0) throw new RangeError(`warmupBytes must be a non-negative integer, got ${plan.warmupBytes}`);
  if (!Number.isSafeInteger(plan.pretouchBytes) || plan.pretouchBytes < 0) throw new RangeError(`pretouchBytes must be a non-negative integer, got ${plan.pretouchBytes}`);
}

// ---------------------------------------------------------------------------------------------
// One case: each level in turn; per level, rounds of a fresh pair, blocks alternating between them

interface Context {
  plan: ValidationPlan;
  progress: (line: string) => void;
  drivers: Record<Level, LevelDriver>;
}

/** Where one level sends its batches. */
interface LevelDriver {
  level: Level;
  /** A fresh target on each side for one round (two new logs, or a new topic on each broker). */
  openRound(roundName: string, built: BuiltBatch): Promise<Record<Side, SideTarget>>;
  /** Validation tasks the validating side's worker pool has completed so far. */
  workerTasksCompleted(): number;
  budgetPeakBytes(): number | null;
}

/** One side of a round. */
interface SideTarget {
  /** Untimed: `count` batches ready to go, each in a buffer of its own. */
  prepare(count: number): PreparedBlock;
  /** Untimed, at the end of a round: throws unless the log holds every record this target was given. */
  verify(): void;
  close(): Promise<void>;
}

interface PreparedBlock {
  /** Timed: sends the block's batches, BATCHES_IN_FLIGHT at a time. */
  run(): Promise<void>;
  /** Untimed, after run(): throws when an answer kept for checking is an error. */
  check(): void;
}

interface Tally {
  batches: number;
  seconds: number;
  blockSeconds: number[];
}

async function runCase(context: Context, spec: ValidationCase, caseIndex: number): Promise<CaseResult> {
  const built = buildCaseBatch(spec);
  context.progress(`${spec.name}: ${built.recordsPerBatch} records, ${built.batch.length} bytes a batch (records area ${built.recordsAreaBytes} bytes before compression)`);
  const levels: Partial<Record<Level, LevelResult>> = {};
  for (const level of LEVELS) levels[level] = await runLevel(context, context.drivers[level], spec, caseIndex, built);
  const produce = levels.produce!;
  const append = levels.append!;
  return {
    name: spec.name,
    codec: spec.codec,
    valueBytes: spec.valueBytes,
    keyBytes: KEY_BYTES,
    recordsPerBatch: built.recordsPerBatch,
    batchBytes: built.batch.length,
    recordsAreaBytes: built.recordsAreaBytes,
    produce,
    append,
    target: spec.codec === 'none' ? { description: `produce records/s with validation >= ${RATIO_TARGET.toFixed(2)} x without`, ratioAtLeast: RATIO_TARGET, pass: produce.ratio >= RATIO_TARGET } : null,
  };
}

async function runLevel(context: Context, driver: LevelDriver, spec: ValidationCase, caseIndex: number, built: BuiltBatch): Promise<LevelResult> {
  const { plan } = context;
  const label = `${spec.name} [${driver.level}]`;
  const deadline = performance.now() + plan.msPerLevel;
  const { batch } = built;
  const maxBatchesPerBlock = Math.max(BLOCK_MIN_BATCHES, Math.min(BLOCK_MAX_BATCHES, Math.floor(BLOCK_BYTES / batch.length)));
  let batchesPerBlock = maxBatchesPerBlock;
  // Batches one log of a round may take without rolling: warm-up, whole blocks, one block of slack.
  const batchesPerSegment = Math.floor(SEGMENT_BYTES / batch.length);
  const warmupBatches = Math.max(BATCHES_IN_FLIGHT, Math.min(BLOCK_MAX_BATCHES, Math.floor(plan.warmupBytes / batch.length)));
  const timedBatchesPerRound = batchesPerSegment - warmupBatches - maxBatchesPerBlock;
  if (timedBatchesPerRound < maxBatchesPerBlock) throw new Error(`${label}: a ${batch.length}-byte batch leaves no room for a block in a ${SEGMENT_BYTES}-byte segment`);
  const tallies: Record<Side, Tally> = { with: { batches: 0, seconds: 0, blockSeconds: [] }, without: { batches: 0, seconds: 0, blockSeconds: [] } };
  const pairRatios: number[] = [];
  const tasksBefore = driver.workerTasksCompleted();
  let rounds = 0;
  while (rounds < MAX_ROUNDS_PER_LEVEL && performance.now() < deadline && tallies.with.batches < plan.maxBatchesPerSide && tallies.without.batches < plan.maxBatchesPerSide) {
    const round = rounds++;
    const targets = await driver.openRound(`case${caseIndex}-${driver.level}-round${round}`, built);
    try {
      // Warm-up (untimed): JIT, the worker thread, a new topic's creation, and the proof that the validator accepts the batch.
      for (const side of SIDES) {
        const block = targets[side].prepare(warmupBatches);
        const before = performance.now();
        await block.run();
        const msPerBatch = (performance.now() - before) / warmupBatches;
        block.check();
        if (side === 'with' && round === 0) {
          batchesPerBlock = Math.max(BLOCK_MIN_BATCHES, Math.min(maxBatchesPerBlock, Math.round(BLOCK_TARGET_MS / Math.max(msPerBatch, 1e-3))));
          context.progress(`${label}: ${batchesPerBlock} batches a block (${msPerBatch.toFixed(3)} ms a batch in the validating side's warm-up)`);
        }
      }
      const roundStart = { with: tallies.with.batches, without: tallies.without.batches };
      const remaining = (side: Side): number => Math.min(timedBatchesPerRound - (tallies[side].batches - roundStart[side]), plan.maxBatchesPerSide - tallies[side].batches);
      await boundedLoop({ maxCount: Math.ceil(timedBatchesPerRound / batchesPerBlock), maxMs: Math.max(1, deadline - performance.now()) }, async (pair) => {
        if (remaining('with') < batchesPerBlock || remaining('without') < batchesPerBlock) return 'stop';
        // with, without, then without, with: whichever runs second in a pair (page cache, GC debt) alternates.
        const order: readonly Side[] = pair % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
        const seconds = { with: 0, without: 0 };
        for (const side of order) {
          const block = targets[side].prepare(batchesPerBlock);
          const before = performance.now();
          await block.run();
          seconds[side] = (performance.now() - before) / 1000;
          block.check();
          tallies[side].batches += batchesPerBlock;
          tallies[side].seconds += seconds[side];
          tallies[side].blockSeconds.push(seconds[side]);
        }
        pairRatios.push(seconds.without / seconds.with);
        return 'continue';
      });
      for (const side of SIDES) targets[side].verify();
    } finally {
      try {
        await targets.with.close();
      } finally {
        await targets.without.close();
      }
    }
  }
  if (pairRatios.length === 0) throw new Error(`${label}: no block ran before the level's deadline of ${plan.msPerLevel} ms`);
  const sideResult = (tally: Tally): SideResult => {
    const medianBlockSeconds = median(tally.blockSeconds);
    return {
      batches: tally.batches,
      records: tally.batches * built.recordsPerBatch,
      bytes: tally.batches * batch.length,
      seconds: round6(tally.seconds),
      recordsPerSec: Math.round((batchesPerBlock * built.recordsPerBatch) / medianBlockSeconds),
      mbPerSec: Number(((batchesPerBlock * batch.length) / MB / medianBlockSeconds).toFixed(2)),
      meanRecordsPerSec: Math.round((tally.batches * built.recordsPerBatch) / tally.seconds),
    };
  };
  const withSide = sideResult(tallies.with);
  const withoutSide = sideResult(tallies.without);
  const ratio = Number(median(pairRatios).toFixed(4));
  const sortedPairRatios = [...pairRatios].sort((a, b) => a - b);
  const result: LevelResult = {
    level: driver.level,
    batchesPerBlock,
    with: withSide,
    without: withoutSide,
    ratio,
    pairRatioP10: Number(percentileOfSorted(sortedPairRatios, 0.1)!.toFixed(4)),
    pairRatioP90: Number(percentileOfSorted(sortedPairRatios, 0.9)!.toFixed(4)),
    totalRatio: Number((tallies.without.seconds / tallies.with.seconds).toFixed(4)),
    pairs: pairRatios.length,
    rounds,
    workerTasks: driver.workerTasksCompleted() - tasksBefore,
    budgetPeakBytes: driver.budgetPeakBytes(),
  };
  context.progress(
    `${label}: with ${formatCount(withSide.recordsPerSec)} rec/s (${withSide.mbPerSec.toFixed(0)} MB/s), without ${formatCount(withoutSide.recordsPerSec)} rec/s, ratio ${ratio.toFixed(3)} (pairs p10 ${result.pairRatioP10.toFixed(3)}, p90 ${result.pairRatioP90.toFixed(3)}; all blocks ${result.totalRatio.toFixed(3)}; ${result.pairs} pairs, ${rounds} round(s))`,
  );
  return result;
}

/** Throws unless a log of a round holds every record it was given (it started empty, at offset 0). */
function expectLogHolds(what: string, log: PartitionLog | undefined, batches: number, recordsPerBatch: number): void {
  if (log === undefined) throw new Error(`${what}: the partition log is gone`);
  const expected = batches * recordsPerBatch;
  if (log.logEndOffset !== expected) throw new Error(`${what}: log end offset ${log.logEndOffset} after ${batches} batches of ${recordsPerBatch} records (expected ${expected})`);
}

// ---------------------------------------------------------------------------------------------
// The append level: two fresh logs a round

function appendDriver(dir: string, workers: WorkerPool, budget: DecompressionBudget, validators: Record<Side, AppendValidator>): LevelDriver {
  const config = resolveLogConfig({ flush: { mode: 'os' }, segmentBytes: SEGMENT_BYTES });
  return {
    level: 'append',
    async openRound(roundName, built) {
      const opened: Partial<Record<Side, SideTarget>> = {};
      try {
        for (const side of SIDES) opened[side] = await appendTarget(join(dir, `${roundName}-${side}`), config, validators[side], workers, built);
      } catch (error) {
        for (const target of Object.values(opened)) await target.close();
        throw error;
      }
      return { with: opened.with!, without: opened.without! };
    },
    workerTasksCompleted: () => workers.counters().completed,
    budgetPeakBytes: () => budget.peakReservedBytes,
  };
}

async function appendTarget(dir: string, config: LogConfig, validator: AppendValidator, workers: WorkerPool, built: BuiltBatch): Promise<SideTarget> {
  const opened = await openLog(dir, config, { recoveryPoint: 0, cleanShutdown: true, workers, validator });
  let batchesGiven = 0;
  return {
    prepare(count) {
      const copies = copiesOf(built.batch, count);
      batchesGiven += count;
      return { run: () => appendBlock(opened.log, copies), check: () => undefined };
    },
    verify: () => expectLogHolds(dir, opened.log, batchesGiven, built.recordsPerBatch),
    async close() {
      try {
        await closeLog(opened);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Fresh copies of a batch, one per append (the log rewrites offsets in place). */
function copiesOf(batch: Buffer, count: number): Buffer[] {
  return Array.from({ length: count }, () => Buffer.from(batch));
}

/** Appends every buffer, BATCHES_IN_FLIGHT at a time, each appender taking the next buffer when its append settles. */
async function appendBlock(log: PartitionLog, buffers: readonly Buffer[]): Promise<void> {
  let next = 0;
  const appender = async (): Promise<void> => {
    while (next < buffers.length) {
      const buffer = buffers[next++]!;
      await log.append(buffer);
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCHES_IN_FLIGHT, buffers.length) }, appender));
}

// ---------------------------------------------------------------------------------------------
// The produce level: two in-process brokers, a new topic on each a round

/** Both brokers, each in a data directory of its own under `dir`; neither opens a socket. */
async function startBrokers(dir: string): Promise<Record<Side, Broker>> {
  const start = async (side: Side): Promise<Broker> => {
    const dataDir = join(dir, `broker-${side}`);
    await mkdir(dataDir, { recursive: true });
    return Broker.start({ config: brokerConfig(dataDir), metadataStore: new MemoryMetadataStore(), logger: silentLogger, recordValidation: side === 'with' });
  };
  const withBroker = await start('with');
  try {
    return { with: withBroker, without: await start('without') };
  } catch (error) {
    await withBroker.shutdown();
    throw error;
  }
}

/** The broker defaults, with topics created by their first Produce request and segments of SEGMENT_BYTES. */
function brokerConfig(dataDir: string): BrokerConfig {
  const defaults = defaultBrokerConfig();
  return { ...defaults, dataDir, autoCreateTopics: true, topicDefaults: { ...defaults.topicDefaults, 'log.segment.bytes': String(SEGMENT_BYTES) } };
}

async function stopBrokers(brokers: Record<Side, Broker>): Promise<void> {
  try {
    await brokers.with.shutdown();
  } finally {
    await brokers.without.shutdown();
  }
}

function produceDriver(brokers: Record<Side, Broker>, signal: AbortSignal): LevelDriver {
  return {
    level: 'produce',
    openRound: async (roundName, built) => ({
      with: produceTarget(brokers.with, 'with', `validation-${roundName}`, built, signal),
      without: produceTarget(brokers.without, 'without', `validation-${roundName}`, built, signal),
    }),
    workerTasksCompleted: () => brokers.with.services.workers.counters().completed,
    budgetPeakBytes: () => null,
  };
}

/** A topic of one partition on `broker`, created by the first request of the round's warm-up and deleted at close. */
function produceTarget(broker: Broker, side: Side, topic: string, built: BuiltBatch, signal: AbortSignal): SideTarget {
  let nextCorrelationId = 1;
  let batchesGiven = 0;
  return {
    prepare(count) {
      const firstCorrelationId = nextCorrelationId;
      nextCorrelationId += count;
      batchesGiven += count;
      const frames = Array.from({ length: count }, (_, index) => produceFrame(topic, built.batch, firstCorrelationId + index));
      const kept: Array<{ correlationId: number; response: Buffer | null }> = [];
      return {
        run: () =>
          sendBlock(broker, frames, signal, (index, response) => {
            if (response === null || index === 0 || index === frames.length - 1 || index % RESPONSE_SAMPLE_EVERY === 0) {
              kept.push({ correlationId: firstCorrelationId + index, response: response === null ? null : Buffer.concat(response.chunks) });
            }
          }),
        check: () => checkProduceResponses(`${topic} on the broker ${side} validation`, topic, kept),
      };
    },
    verify: () => expectLogHolds(`${topic} on the broker ${side} validation`, broker.topics.partition(topic, PRODUCE_PARTITION)?.log, batchesGiven, built.recordsPerBatch),
    async close() {
      if (broker.topics.get(topic) !== undefined) await broker.topics.delete(topic);
    },
  };
}

/** A Produce request frame (header and body, no size prefix) carrying `batch` to partition 0 of `topic`; a copy of the batch of its own. */
function produceFrame(topic: string, batch: Buffer, correlationId: number): Buffer {
  const writer = new ByteWriter();
  writeRequestHeader(writer, { apiKey: ApiKey.Produce, apiVersion: PRODUCE_VERSION, correlationId, clientId: BENCH_CLIENT_ID });
  encodeProduceRequest(writer, PRODUCE_VERSION, {
    transactionalId: null,
    acks: PRODUCE_ACKS_LEADER,
    timeoutMs: PRODUCE_TIMEOUT_MS,
    topicData: [{ name: topic, partitionData: [{ index: PRODUCE_PARTITION, records: batch }] }],
  });
  return writer.toBuffer();
}

/**
 * Hands every frame to the broker as a connection would, BATCHES_IN_FLIGHT at a time (one
 * connection id each); `answered` sees each response before it is released.
 */
async function sendBlock(broker: Broker, frames: readonly Buffer[], signal: AbortSignal, answered: (index: number, response: BrokerResponse | null) => void): Promise<void> {
  let next = 0;
  const connection = async (connectionId: number): Promise<void> => {
    while (next < frames.length) {
      const index = next++;
      const response = await broker.handleFrame(frames[index]!, { connectionId, remoteAddress: BENCH_REMOTE_ADDRESS, signal });
      try {
        answered(index, response);
      } finally {
        response?.release();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCHES_IN_FLIGHT, frames.length) }, (_, index) => connection(index + 1)));
}

/** Decodes the kept Produce responses; throws naming every one that is missing, malformed or an error. */
function checkProduceResponses(what: string, topic: string, kept: ReadonlyArray<{ correlationId: number; response: Buffer | null }>): void {
  const problems: string[] = [];
  for (const { correlationId, response } of kept) {
    const problem = produceResponseProblem(topic, correlationId, response);
    if (problem !== null) problems.push(`request ${correlationId}: ${problem}`);
  }
  if (problems.length > 0) throw new Error(`${what}: ${problems.length} of ${kept.length} checked Produce responses failed; ${problems.slice(0, 3).join('; ')}`);
}

function produceResponseProblem(topic: string, correlationId: number, frame: Buffer | null): string | null {
  if (frame === null) return 'no response (acks=1 must be answered)';
  const reader = new ByteReader(frame);
  const size = reader.readInt32();
  if (size !== frame.length - 4) return `size prefix ${size} for a ${frame.length}-byte frame`;
  const answeredId = readResponseHeader(reader, responseHeaderVersion(ApiKey.Produce, PRODUCE_VERSION));
  if (answeredId !== correlationId) return `answered as correlation id ${answeredId}`;
  const body = decodeProduceResponse(reader, PRODUCE_VERSION);
  const partition = body.responses.length === 1 && body.responses[0]!.name === topic ? body.responses[0]!.partitionResponses[0] : undefined;
  if (partition === undefined || partition.index !== PRODUCE_PARTITION) return `no answer for ${topic}-${PRODUCE_PARTITION}`;
  if (partition.errorCode !== ErrorCode.NONE) return `error ${partition.errorCode} (${errorCodeName(partition.errorCode)}): ${partition.errorMessage ?? 'no message'}`;
  return null;
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

function formatTarget(result: CaseResult): string {
  return result.target === null ? '-' : `${result.target.pass ? 'PASS' : 'FAIL'} (>= ${result.target.ratioAtLeast.toFixed(2)})`;
}

/** One row per case: the produce level's rates and ratio (judged), the append level's ratio beside it. */
export function formatTable(report: ValidationBenchReport): string {
  const { meta } = report;
  const lines = [
    `Validation benchmark (${meta.plan}), ${meta.date}: ${meta.machine.cpus} CPUs, Node ${meta.node}, ${meta.workerThreads} worker thread(s), ${meta.batchesInFlight} batches in flight, flush=os. MB = 10^6 bytes as sent.`,
    `produce = Produce v${meta.produce.apiVersion} requests (acks=${meta.produce.acks}) to in-process brokers, judged; append = PartitionLog.append alone, the strictest view.`,
    '',
    '| Case | Produce records/s with | Produce records/s without | Produce MB/s with | Produce ratio | Append ratio (strictest) | Target |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const result of report.cases) {
    const { produce, append } = result;
    lines.push(`| ${result.name} | ${formatCount(produce.with.recordsPerSec)} | ${formatCount(produce.without.recordsPerSec)} | ${formatMb(produce.with.mbPerSec)} | ${produce.ratio.toFixed(3)} | ${append.ratio.toFixed(3)} | ${formatTarget(result)} |`);
  }
  return lines.join('\n') + '\n';
}

/** One PASS or FAIL line per uncompressed case. */
export function formatTargets(report: ValidationBenchReport): string {
  return report.targets.map(formatTargetLine).join('\n') + '\n';
}

function formatTargetLine(target: TargetResult): string {
  return `${target.pass ? 'PASS' : 'FAIL'} ${target.case}: produce ratio ${target.ratio.toFixed(3)} (target >= ${target.ratioAtLeast.toFixed(2)}); append ratio ${target.appendRatio.toFixed(3)} (strictest view, not judged)`;
}

export function renderMarkdown(report: ValidationBenchReport): string {
  const { meta } = report;
  const lines = [
    '# tidelog bench validation',
    '',
    `${meta.date}; Node ${meta.node}; plan ${meta.plan}; ${meta.machine.cpus} CPUs (${meta.machine.cpuModel}), ${formatCount(meta.machine.totalMemoryMb)} MB RAM; load average at start ${meta.machine.loadAverageAtStart.map((load) => load.toFixed(2)).join(' ')}; crc32c ${meta.machine.crc32c}; ${meta.durationSec.toFixed(0)} s.`,
    '',
    `Throughput with record validation beside header checks only, alternating blocks in one run, at two levels: produce (Produce v${meta.produce.apiVersion} requests, acks=${meta.produce.acks}, to two in-process brokers through Broker.handleFrame, no sockets) and append (PartitionLog.append with the broker's default AppendValidator beside checkRecords: false). ${meta.batchesInFlight} batches in flight, flush=os, segment.bytes ${meta.segmentBytes / MIB} MiB, ${meta.workerThreads} worker thread(s), decompression budget ${meta.decompressionBudgetBytes / MIB} MiB.`,
    '',
    '| Case | Records/batch | Batch bytes | Produce ratio | Append ratio (strictest view) | Target |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const result of report.cases) {
    lines.push(`| ${result.name} | ${result.recordsPerBatch} | ${formatCount(result.batchBytes)} | ${result.produce.ratio.toFixed(3)} | ${result.append.ratio.toFixed(3)} | ${formatTarget(result)} |`);
  }
  lines.push(
    '',
    '| Case | Level | Records/s with | Records/s without | MB/s with | MB/s without | Ratio | Pair ratio p10-p90 | All blocks ratio | Pairs | Batches/block | Worker tasks |',
    '|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|',
  );
  for (const result of report.cases) {
    for (const level of [result.produce, result.append]) {
      lines.push(
        `| ${result.name} | ${level.level} | ${formatCount(level.with.recordsPerSec)} | ${formatCount(level.without.recordsPerSec)} | ${formatMb(level.with.mbPerSec)} | ${formatMb(level.without.mbPerSec)} | ${level.ratio.toFixed(3)} | ${level.pairRatioP10.toFixed(3)}-${level.pairRatioP90.toFixed(3)} | ${level.totalRatio.toFixed(3)} | ${level.pairs} | ${level.batchesPerBlock} | ${formatCount(level.workerTasks)} |`,
      );
    }
  }
  lines.push('', ...report.targets.map((target) => `- ${formatTargetLine(target)}`), '');
  lines.push(...meta.notes.map((note) => `Note: ${note}`), '');
  return lines.join('\n');
}
