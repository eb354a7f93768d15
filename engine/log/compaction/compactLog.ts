// Worker task `compactLog`: cleans one partition log's sealed segments (see
// engine/log/compaction/logCleaner.ts for when and which). Phase one maps each key of the dirty range
// to its latest offset (compactKeyMap.ts); phase two rewrites each group of segments into one
// `.cleaned` segment (compactRewrite.ts). The map stays in this thread: both phases run in one
// task, so it is never copied between threads. The task only writes `.cleaned` files; the swap
// happens on the broker's event loop. A corrupt batch is reported as an outcome, not thrown, so
// the cleaner can stop cleaning that partition instead of retrying it.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { removeCleanedFiles } from './segmentSwap.js';
import { CorruptSegmentError, IoThrottle, type ReadBufferStats } from './compactBatches.js';
import { buildKeyOffsetMap, type SegmentToRead } from './compactKeyMap.js';
import { rewriteSegments, type RewriteStats, type RewrittenGroup, type SegmentToRewrite } from './compactRewrite.js';

export interface CompactLogInput {
  /** The partition directory. */
  dir: string;
  /** Sealed segments to rewrite, consecutive, oldest first. */
  segments: SegmentToRewrite[];
  /** The segments holding the dirty range [firstDirtyOffset, cleanableEndOffset), oldest first. */
  dirtySegments: SegmentToRead[];
  /** Records before this offset were cleaned before (the cleaner checkpoint). */
  firstDirtyOffset: number;
  /** Exclusive end of what may be cleaned now (the active segment and min.compaction.lag.ms bound it). */
  cleanableEndOffset: number;
  /** Bytes the key map may take (log.cleaner.dedupe.buffer.size). */
  mapBudgetBytes: number;
  /** log.cleaner.io.max.bytes.per.second: read rate limit of the task (both phases); 0 for none. */
  ioMaxBytesPerSecond: number;
  /** segment.bytes: a cleaned segment replaces as many input segments as its output fits. */
  segmentBytes: number;
  /** Tombstones with a timestamp below this are dropped. */
  tombstoneHorizonMs: number;
  indexIntervalBytes: number;
  maxIndexEntries: number;
}

export interface CompactLogStats extends RewriteStats {
  keys: number;
  mapBytes: number;
  recordsScanned: number;
  bytesScanned: number;
  /** Largest V8 heap of this thread seen during the task, plus the map at its peak and the read buffer (both outside the heap). */
  peakMemoryBytes: number;
  runMs: number;
}

export type CompactLogOutput =
  | {
      outcome: 'cleaned';
      /** Keys are deduplicated below this offset; the next pass starts here. */
      mapEndOffset: number;
      /** The map filled before cleanableEndOffset: the rest waits for another pass. */
      splitIntoPasses: boolean;
      groups: RewrittenGroup[];
      stats: CompactLogStats;
    }
  | { outcome: 'corrupt'; file: string; position: number; problem: string; detail: string };

/** Niceness of the thread while it cleans: the event loop's producers and consumers win the CPU. */
export const CLEANER_THREAD_NICENESS = 10;

/**
 * Runs `work` with this thread's scheduling priority lowered (Linux: a thread's id from
 * /proc/thread-self works with setpriority), and restores it afterwards where the OS lets us. On
 * other systems, or without permission, the work runs at normal priority.
 */
async function atLowPriority<T>(work: () => Promise<T>): Promise<T> {
  let threadId: number | null = null;
  let previous = 0;
  try {
    threadId = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    previous = getPriority(threadId);
    if (previous < CLEANER_THREAD_NICENESS) setPriority(threadId, CLEANER_THREAD_NICENESS);
  } catch {
    threadId = null;
  }
  try {
    return await work();
  } finally {
    if (threadId !== null) {
      try {
        setPriority(threadId, previous);
      } catch {
        // Raising priority back needs privileges; the thread stays a background thread.
      }
    }
  }
}

export function runCompactLog(input: CompactLogInput): Promise<CompactLogOutput> {
  return atLowPriority(() => compactLog(input));
}

async function compactLog(input: CompactLogInput): Promise<CompactLogOutput> {
  const started = Date.now();
  const readStats: ReadBufferStats = { peakChunkBytes: 0, throttle: new IoThrottle(input.ioMaxBytesPerSecond) };
  let peakHeapBytes = getHeapStatistics().used_heap_size;
  const sampleHeap = (): void => {
    peakHeapBytes = Math.max(peakHeapBytes, getHeapStatistics().used_heap_size);
  };
  try {
    const { map, mapEndOffset, recordsScanned, bytesScanned } = await buildKeyOffsetMap(input.dir, input.dirtySegments, input.firstDirtyOffset, input.cleanableEndOffset, input.mapBudgetBytes, readStats);
    sampleHeap();
    if (mapEndOffset <= input.firstDirtyOffset && map.size === 0) {
      throw new Error(`log.cleaner.dedupe.buffer.size ${input.mapBudgetBytes} holds no whole batch at offset ${input.firstDirtyOffset}; raise it`);
    }
    const stats: CompactLogStats = {
      recordsKept: 0,
      recordsDropped: 0,
      tombstonesDropped: 0,
      batchesRewritten: 0,
      bytesRead: 0,
      bytesWritten: 0,
      keys: map.size,
      mapBytes: map.sizeBytes,
      recordsScanned,
      bytesScanned,
      peakMemoryBytes: 0,
      runMs: 0,
    };
    const rules = { map, mapEndOffset, tombstoneHorizonMs: input.tombstoneHorizonMs, indexIntervalBytes: input.indexIntervalBytes, maxIndexEntries: input.maxIndexEntries };
    const groups: RewrittenGroup[] = await rewriteSegments(input.dir, input.segments, rules, input.segmentBytes, stats, readStats);
    sampleHeap();
    stats.peakMemoryBytes = peakHeapBytes + map.peakBytes + readStats.peakChunkBytes;
    stats.runMs = Date.now() - started;
    return { outcome: 'cleaned', mapEndOffset, splitIntoPasses: mapEndOffset < input.cleanableEndOffset, groups, stats };
  } catch (error) {
    // Nothing half-written may stay behind, whatever went wrong.
    await removeCleanedFiles(input.dir).catch(() => undefined);
    if (error instanceof CorruptSegmentError) return { outcome: 'corrupt', file: error.file, position: error.position, problem: error.problem, detail: error.detail };
    throw error;
  }
}
