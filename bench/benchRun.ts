// How the in-process benches (bench/storageBench.ts, bench/validationBench.ts) run: loops bounded
// by a count and a deadline, a seeded generator, where the table and the progress lines go, the
// page-cache warm-up before the first measurement, a partition log with resources of its own,
// and the JSON report written at the end.
import { ATTRIBUTE_COMPRESSION_MASK, ATTRIBUTES_OFFSET, BATCH_LENGTH_OFFSET, CRC_OFFSET, LOG_OVERHEAD, RECORDS_OFFSET, computeBatchCrc } from '../segments/recordBatch.js';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemClock } from '../engine/clock.js';
import type { LogConfig } from '../engine/log/logConfig.js';
import { silentLogger } from '../engine/logger.js';
import { PartitionLog, type PartitionLogOptions } from '../engine/log/partitionLog.js';
import { FileHandleCache } from '../segments/fileHandleCache.js';
import { IndexCache } from '../segments/indexCache.js';
import type { SegmentResources } from '../segments/logSegment.js';

const MIB = 1024 * 1024;
const MB = 1_000_000;
/** No loop of a bench may run longer than this, whatever a plan says. */
export const MAX_LOOP_MS = 120_000;
/** Chunk of the page-cache warm-up write, and the longest the warm-up may take. */
const PRETOUCH_CHUNK_BYTES = 1 * MIB;
const PRETOUCH_MAX_MS = 30_000;
/** Resources of a bench log: file handles kept open and index bytes cached. */
const FILE_HANDLES = 64;
const INDEX_CACHE_BYTES = 64 * MIB;

// ---------------------------------------------------------------------------------------------
// Loops and random numbers

export interface LoopLimit {
  maxCount: number;
  maxMs: number;
}

/**
 * Runs `step` one at a time until it did `maxCount` steps, `maxMs` milliseconds passed, or it
 * says 'stop', whichever is first.
 */
export async function boundedLoop(limit: LoopLimit, step: (index: number) => Promise<'stop' | 'continue'>): Promise<{ count: number; seconds: number }> {
  if (!Number.isSafeInteger(limit.maxCount) || limit.maxCount < 1 || !(limit.maxMs > 0 && limit.maxMs <= MAX_LOOP_MS)) {
    throw new RangeError(`loop limits must be finite and positive: ${JSON.stringify(limit)}`);
  }
  const start = performance.now();
  const deadline = start + limit.maxMs;
  let count = 0;
  let now = start;
  while (count < limit.maxCount && now < deadline) {
    const verdict = await step(count);
    count++;
    now = performance.now();
    if (verdict === 'stop') break;
  }
  return { count, seconds: (now - start) / 1000 };
}

/** Deterministic uniform numbers in [0, 1) (mulberry32), so every run builds and reads the same. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// ---------------------------------------------------------------------------------------------
// Output

export interface BenchSinks {
  /** The table (default stdout). */
  out: (text: string) => void;
  /** One line per step, stamped with the seconds since the run started (default stderr). */
  progress: (line: string) => void;
}

export function benchSinks(options: { out?: (text: string) => void; progress?: (line: string) => void }, startedMs: number): BenchSinks {
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const progressSink = options.progress ?? ((line: string) => void process.stderr.write(line + '\n'));
  const progress = (line: string): void => progressSink(`[bench ${((performance.now() - startedMs) / 1000).toFixed(1)}s] ${line}`);
  return { out, progress };
}

/** The report as indented JSON with a final newline. */
export async function writeJsonReport(path: string, report: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(report, null, 2) + '\n');
}

/**
 * Writes and deletes a scratch file once. On this VM kind, memory first touched runs at a
 * fraction of the speed of reused memory; without this, whichever side of the first comparison
 * touches the page cache first pays for it alone.
 */
export async function pretouchPageCache(dir: string, bytes: number, progress: (line: string) => void): Promise<void> {
  const path = join(dir, 'pretouch');
  const chunk = Buffer.alloc(PRETOUCH_CHUNK_BYTES, 0x5a);
  const handle = await open(path, 'w');
  try {
    const run = await boundedLoop({ maxCount: Math.ceil(bytes / chunk.length), maxMs: PRETOUCH_MAX_MS }, async () => {
      await handle.write(chunk, 0, chunk.length);
      return 'continue';
    });
    progress(`page cache warmed with ${((run.count * chunk.length) / MB).toFixed(0)} MB in ${run.seconds.toFixed(1)} s`);
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Logs

/** A bench log and the resources it alone uses (closed with it). */
export interface OpenedLog {
  log: PartitionLog;
  resources: SegmentResources;
}

/** How a bench log opens: after a clean stop or not, from which recovery point, on which workers and validator. */
export type BenchLogState = Pick<PartitionLogOptions, 'cleanShutdown' | 'recoveryPoint' | 'workers' | 'validator'>;

export async function openLog(dir: string, config: LogConfig, state: BenchLogState): Promise<OpenedLog> {
  const resources: SegmentResources = {
    handles: new FileHandleCache(FILE_HANDLES),
    indexes: new IndexCache(INDEX_CACHE_BYTES),
    notice: () => undefined,
  };
  try {
    const log = await PartitionLog.open({ dir, config, resources, clock: systemClock, logger: silentLogger, ...state });
    return { log, resources };
  } catch (error) {
    await resources.handles.close();
    throw error;
  }
}

export async function closeLog(opened: OpenedLog): Promise<void> {
  try {
    await opened.log.close();
  } finally {
    await opened.resources.handles.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Batches

/** The batch `plain` with its records area replaced by `area` compressed with `codec`: length, attributes and CRC redone. */
export function withCompressedArea(plain: Buffer, codec: number, area: Buffer): Buffer {
  const batch = Buffer.allocUnsafe(RECORDS_OFFSET + area.length);
  plain.copy(batch, 0, 0, RECORDS_OFFSET);
  area.copy(batch, RECORDS_OFFSET);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  batch.writeInt16BE((plain.readInt16BE(ATTRIBUTES_OFFSET) & ~ATTRIBUTE_COMPRESSION_MASK) | codec, ATTRIBUTES_OFFSET);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}
