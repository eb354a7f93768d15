// The broker's log cleaner: every log.cleaner.backoff.ms it picks, among logs whose
// cleanup.policy includes compact, the one with the highest dirty ratio at or above its
// min.cleanable.dirty.ratio (see cleaningPlan.ts), and cleans it on the worker pool (task
// `compactLog`), at most log.cleaner.threads logs at once. The worker writes `.cleaned` segments;
// the swap into the log happens here, group by group, oldest first, through segmentSwap.ts and
// PartitionLog.replaceSealedSegments. Where each log's last clean ended is kept in
// `<dataDir>/cleaner-offset-checkpoint` (`topic partition offset`, Kafka's name and format).
//
// Failures: a task that throws or times out is reported and the log is tried again after the
// backoff (its `.cleaned` files are removed first); a corrupt batch stops cleaning of that
// partition until the broker restarts, with an ERROR naming file and position, and leaves the
// data untouched. A log that changed under a clean (retention deleted a segment) is skipped and
// cleaned again next round.
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../../../segments/checkpointFile.js';
import type { Clock } from '../../clock.js';
import { maxIndexEntries } from '../logConfig.js';
import type { Logger } from '../../logger.js';
import type { PartitionLog } from '../partitionLog.js';
import type { CompactLogStats } from './compactLog.js';
import { WorkerPoolClosedError, WorkerTaskCancelledError, type WorkerPool } from '../../workers/workerPool.js';
import { crashPoint } from './crashPoints.js';
import { BYTES_PER_SLOT, MAX_LOAD_FACTOR, MIN_MAP_BYTES } from './keyOffsetMap.js';
import { planCleaning, type CleaningPlan } from './cleaningPlan.js';
import { installSwap, promoteCleanedToSwap, removeCleanedFiles } from './segmentSwap.js';

export const CLEANER_CHECKPOINT_FILE = 'cleaner-offset-checkpoint';

export interface CompactionSettings {
  deleteRetentionMs: number;
  minCompactionLagMs: number;
  minCleanableDirtyRatio: number;
}

export interface CleanerTarget {
  topic: string;
  partition: number;
  log: PartitionLog;
  /** Nothing at or above it is cleaned: it may not be on every replica yet, or acknowledged. */
  readonly highWatermark: number;
  settings: CompactionSettings;
}

export interface LogCleanerOptions {
  dataDir: string;
  /** Every log the cleaner may look at; it cleans those whose cleanup.policy includes compact. */
  targets: () => Iterable<CleanerTarget>;
  workers: WorkerPool;
  clock: Clock;
  logger: Logger;
  /** log.cleaner.backoff.ms: pause between rounds. */
  backoffMs: number;
  /** log.cleaner.dedupe.buffer.size: bytes of one clean's key map. */
  mapBudgetBytes: number;
  /** log.cleaner.threads: logs cleaned at once. */
  threads: number;
  /** log.cleaner.io.max.bytes.per.second: read rate of one clean; 0 for no limit. */
  ioMaxBytesPerSecond?: number;
  /** Time limit of one clean's worker task; default: the pool's. */
  taskTimeoutMs?: number;
}

export type CleanReport =
  | { topic: string; partition: number; outcome: 'cleaned'; dirtyRatio: number; firstDirtyOffset: number; nextDirtyOffset: number; splitIntoPasses: boolean; segmentsReplaced: number; stats: CompactLogStats }
  | { topic: string; partition: number; outcome: 'corrupt' | 'failed' | 'abandoned'; reason: string };

function keyOf(topic: string, partition: number): string {
  return `${topic} ${partition}`;
}

export class LogCleaner {
  private readonly checkpoints = new Map<string, number>();
  /** Partitions whose segments hold a corrupt batch: not cleaned again until a restart. */
  private readonly uncleanable = new Set<string>();
  private readonly running = new Map<string, Promise<CleanReport>>();
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Checkpoint writes, one after another (they share the file's `.tmp`). */
  private checkpointWrites: Promise<void> = Promise.resolve();

  private constructor(private readonly options: LogCleanerOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError(`log cleaner threads must be a positive integer, got ${options.threads}`);
    if (!(options.backoffMs > 0)) throw new RangeError(`log.cleaner.backoff.ms must be positive, got ${options.backoffMs}`);
  }

  static async open(options: LogCleanerOptions): Promise<LogCleaner> {
    const cleaner = new LogCleaner(options);
    const path = join(options.dataDir, CLEANER_CHECKPOINT_FILE);
    try {
      const rows = (await readCheckpoint(path, 3)) ?? [];
      for (const [topic, partition, offset] of rows) {
        if (Number.isSafeInteger(Number(offset)) && Number(offset) >= 0) cleaner.checkpoints.set(keyOf(topic!, Number(partition)), Number(offset));
      }
    } catch (error) {
      // Losing the checkpoint costs one full clean of each log, never data.
      options.logger.warn('unreadable cleaner checkpoint; every compacted log is cleaned from its start', { path, error: String(error) });
    }
    return cleaner;
  }

  /** Starts the rounds (every backoffMs). */
  start(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setInterval(() => this.startRound(), this.options.backoffMs);
    this.timer.unref();
  }

  /** Where the next clean of a log starts (its cleaner checkpoint), or null if never cleaned. */
  checkpointOf(topic: string, partition: number): number | null {
    return this.checkpoints.get(keyOf(topic, partition)) ?? null;
  }

  private startRound(): void {
    if (this.closed) return;
    void this.pickAndCleanAll().catch((error: unknown) => this.options.logger.error('log cleaner round failed', { error: (error as Error).stack ?? String(error) }));
  }

  private async pickAndCleanAll(): Promise<void> {
    while (!this.closed && this.running.size < this.options.threads) {
      const chosen = await this.pick();
      if (chosen === null) return;
      const key = keyOf(chosen.target.topic, chosen.target.partition);
      const cleaning = this.clean(chosen.target, chosen.plan).finally(() => this.running.delete(key));
      this.running.set(key, cleaning);
      cleaning.catch(() => undefined);
    }
  }

  /** The compacted log with the highest dirty ratio at or above its threshold, not being cleaned now. */
  private async pick(): Promise<{ target: CleanerTarget; plan: CleaningPlan } | null> {
    let best: { target: CleanerTarget; plan: CleaningPlan } | null = null;
    for (const target of this.options.targets()) {
      const key = keyOf(target.topic, target.partition);
      if (!target.log.config.cleanupPolicy.includes('compact') || this.running.has(key) || this.uncleanable.has(key)) continue;
      const plan = await this.planFor(target);
      if (plan.cleanableBytes === 0 || plan.dirtyRatio < target.settings.minCleanableDirtyRatio) continue;
      if (best === null || plan.dirtyRatio > best.plan.dirtyRatio) best = { target, plan };
    }
    return best;
  }

  /** The plan a clean of this log would follow now (for the dirty ratio; tests and benchmarks too). */
  async planFor(target: CleanerTarget): Promise<CleaningPlan> {
    const sealed = (await target.log.sealedSegments()).map((segment) => ({ baseOffset: segment.baseOffset, nextBaseOffset: segment.nextBaseOffset, sizeBytes: segment.sizeBytes, largestTimestamp: segment.largestTimestamp }));
    return planCleaning({
      sealed,
      logStartOffset: target.log.logStartOffset,
      checkpointOffset: this.checkpointOf(target.topic, target.partition),
      nowMs: this.options.clock.nowMs(),
      minCompactionLagMs: target.settings.minCompactionLagMs,
      highWatermark: target.highWatermark,
    });
  }

  /**
   * Runs one round now and waits for it: cleans the dirtiest eligible log, or returns null when
   * none is eligible (used by tests and benchmarks; the timer does the same).
   */
  async cleanOnce(): Promise<CleanReport | null> {
    const chosen = await this.pick();
    if (chosen === null) return null;
    const key = keyOf(chosen.target.topic, chosen.target.partition);
    const cleaning = this.clean(chosen.target, chosen.plan).finally(() => this.running.delete(key));
    this.running.set(key, cleaning);
    return cleaning;
  }

  private async clean(target: CleanerTarget, plan: CleaningPlan): Promise<CleanReport> {
    const { topic, partition, log } = target;
    const { logger } = this.options;
    const dir = log.dir;
    const nowMs = this.options.clock.nowMs();
    const dirtySegments = plan.segments.filter((segment) => segment.nextBaseOffset > plan.firstDirtyOffset).map(({ baseOffset, sizeBytes }) => ({ baseOffset, sizeBytes }));
    logger.info('compacting log', { topic, partition, dirtyRatio: plan.dirtyRatio.toFixed(3), firstDirtyOffset: plan.firstDirtyOffset, cleanableEndOffset: plan.cleanableEndOffset, cleanableBytes: plan.cleanableBytes, segments: plan.segments.length });
    let output;
    try {
      output = await this.options.workers.run(
        'compactLog',
        {
          dir,
          segments: plan.segments,
          segmentBytes: log.config.segmentBytes,
          ioMaxBytesPerSecond: this.options.ioMaxBytesPerSecond ?? 0,
          dirtySegments,
          firstDirtyOffset: plan.firstDirtyOffset,
          cleanableEndOffset: plan.cleanableEndOffset,
          mapBudgetBytes: mapBudgetFor(plan.cleanableBytes, this.options.mapBudgetBytes),
          tombstoneHorizonMs: nowMs - target.settings.deleteRetentionMs,
          indexIntervalBytes: log.config.indexIntervalBytes,
          maxIndexEntries: maxIndexEntries(log.config),
        },
        { label: `compact ${topic}-${partition}`, signal: this.stopping.signal, ...(this.options.taskTimeoutMs === undefined ? {} : { timeoutMs: this.options.taskTimeoutMs }) },
      );
    } catch (error) {
      // A thread stopped mid-write leaves `.cleaned` files: never read, removed now (or at the next open).
      await removeCleanedFiles(dir).catch(() => undefined);
      const reason = (error as Error).message;
      if (error instanceof WorkerTaskCancelledError || error instanceof WorkerPoolClosedError) return { topic, partition, outcome: 'failed', reason };
      logger.error('compaction failed; the log is tried again after the backoff', { topic, partition, backoffMs: this.options.backoffMs, error: reason });
      return { topic, partition, outcome: 'failed', reason };
    }
    if (output.outcome === 'corrupt') {
      this.uncleanable.add(keyOf(topic, partition));
      logger.error('compaction met a corrupt batch; cleaning of this partition stops until a restart and its data is left untouched', {
        topic,
        partition,
        file: output.file,
        position: output.position,
        problem: output.problem,
        detail: output.detail,
      });
      return { topic, partition, outcome: 'corrupt', reason: `${output.file} at ${output.position}: ${output.problem}: ${output.detail}` };
    }
    crashPoint('after-cleaned');
    // Gaps must be known valid (across restarts and policy changes) before the first one lands.
    await log.markOffsetGapsAllowed();
    let segmentsReplaced = 0;
    for (const group of output.groups) {
      const base = group.baseOffset;
      const swapped = await log.replaceSealedSegments(group.replacedBaseOffsets, {
        commit: async () => {
          await promoteCleanedToSwap(dir, base);
          crashPoint('after-swap-rename');
        },
        install: async () => {
          crashPoint('after-old-deleted');
          await installSwap(dir, base);
        },
        replaced: () => crashPoint('after-replace'),
      });
      if (!swapped) {
        await removeCleanedFiles(dir);
        logger.info('the log changed during compaction; the rest of this clean is dropped and redone next round', { topic, partition, segment: base });
        return { topic, partition, outcome: 'abandoned', reason: `segments from ${base} changed during the clean` };
      }
      segmentsReplaced += group.replacedBaseOffsets.length;
    }
    this.checkpoints.set(keyOf(topic, partition), output.mapEndOffset);
    await this.writeCheckpoint();
    const { stats } = output;
    if (output.splitIntoPasses) {
      logger.info('compaction split into passes: the key map filled before the end of the dirty range; the rest is cleaned in a later pass', {
        topic,
        partition,
        mapFilledAtOffset: output.mapEndOffset,
        cleanableEndOffset: plan.cleanableEndOffset,
        keys: stats.keys,
        mapBytes: stats.mapBytes,
      });
    }
    logger.info('cleaned log', {
      topic,
      partition,
      dirtyRatio: plan.dirtyRatio.toFixed(3),
      firstDirtyOffset: plan.firstDirtyOffset,
      nextDirtyOffset: output.mapEndOffset,
      segmentsReplaced,
      segmentsWritten: output.groups.length,
      recordsKept: stats.recordsKept,
      recordsDropped: stats.recordsDropped,
      tombstonesDropped: stats.tombstonesDropped,
      bytesRead: stats.bytesRead,
      bytesWritten: stats.bytesWritten,
      keys: stats.keys,
      peakMemoryBytes: stats.peakMemoryBytes,
      runMs: stats.runMs,
    });
    return { topic, partition, outcome: 'cleaned', dirtyRatio: plan.dirtyRatio, firstDirtyOffset: plan.firstDirtyOffset, nextDirtyOffset: output.mapEndOffset, splitIntoPasses: output.splitIntoPasses, segmentsReplaced, stats };
  }

  private writeCheckpoint(): Promise<void> {
    const write = this.checkpointWrites.catch(() => undefined).then(() => this.writeCheckpointNow());
    this.checkpointWrites = write;
    return write;
  }

  private async writeCheckpointNow(): Promise<void> {
    const live = new Set<string>();
    for (const target of this.options.targets()) live.add(keyOf(target.topic, target.partition));
    const rows: Array<[string, number, number]> = [];
    for (const [key, offset] of this.checkpoints) {
      if (!live.has(key)) continue;
      const split = key.lastIndexOf(' ');
      rows.push([key.slice(0, split), Number(key.slice(split + 1)), offset]);
    }
    await writeCheckpoint(join(this.options.dataDir, CLEANER_CHECKPOINT_FILE), rows);
  }

  /** Stops the rounds, cancels cleans in flight (their `.cleaned` files are removed) and waits for them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.stopping.abort();
    await Promise.allSettled([...this.running.values()]);
  }
}

/** A stored record takes at least this many bytes, so a dirty range holds at most bytes/this keys. */
const MIN_STORED_RECORD_BYTES = 8;

/** The map a clean needs at most: a small dirty range does not allocate the whole configured budget. */
function mapBudgetFor(dirtyBytes: number, configuredBytes: number): number {
  const neededBytes = Math.ceil(dirtyBytes / MIN_STORED_RECORD_BYTES / MAX_LOAD_FACTOR) * BYTES_PER_SLOT;
  return Math.min(configuredBytes, Math.max(MIN_MAP_BYTES, neededBytes));
}
