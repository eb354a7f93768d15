// The mutable state one partition log's parts share: its segments and offsets, its producer
// state, whether it is closed or stopped. The facade (partitionLog.ts) owns one LogState and
// hands it to recovery (logRecovery.ts), admission (appendAdmission.ts), the single writer
// (logWriter.ts) and reads (logReads.ts). Who may move what:
//   - segments: recovery at open; the writer (rolls, truncation, deletion, compaction swaps).
//   - nextOffsetToAssign: admission hands offsets out; recovery, the writer's failure handling
//     and truncation set it back to logEnd.
//   - logEnd, durableEnd, recoveryPointOffset, logStart: recovery at open, then only the writer.
// Invariants: logStart <= logEnd and durableEnd <= logEnd <= nextOffsetToAssign (checkOffsets()).
// durableEnd may trail logStart: batches written by a group whose fsync or a later write failed
// are readable but were never acknowledged, and DeleteRecords may move the start past them.
import type { BatchChainRules, LogSegment, SegmentResources } from '../../segments/logSegment.js';
import type { Clock } from '../clock.js';
import { LogClosedError, StorageError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { WorkerPool } from '../workers/workerPool.js';
import type { ConcurrencyLimit } from './concurrencyLimit.js';
import type { AppendValidator } from './appendValidation.js';
import type { LeaderEpochCache } from './leaderEpochCache.js';
import { maxIndexEntries, type LogConfig } from './logConfig.js';
import { ProducerStateManager } from './producerState.js';

export interface PartitionLogOptions {
  dir: string;
  config: LogConfig;
  resources: SegmentResources;
  clock: Clock;
  logger: Logger;
  /** Every offset below this was flushed and checked before; recovery scans from its segment. */
  recoveryPoint: number;
  /** Whether the last stop was clean (no scan needed). */
  cleanShutdown: boolean;
  /** The log start offset saved by DeleteRecords or retention, if any. */
  logStartOffset?: number;
  /** The leader epoch this log appends under (0 for a single node). */
  leaderEpoch?: number;
  /** Runs the recovery scan of each segment on a worker thread; without it, on this thread. */
  workers?: WorkerPool;
  /** Shared by the logs a manager opens together: how many recovery scans may run at once. */
  recoveryScans?: ConcurrencyLimit;
  /** Validates appended record sets; default: one of its own on `workers`, with no broker-wide budget. */
  validator?: AppendValidator;
}

export class LogState {
  readonly dir: string;
  /** The current settings (AlterConfigs replaces them through PartitionLog.reconfigure). */
  config: LogConfig;
  readonly resources: SegmentResources;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly epochs: LeaderEpochCache;
  readonly rules: BatchChainRules;
  readonly leaderEpoch: number;
  readonly workers: WorkerPool | null;
  readonly recoveryScans: ConcurrencyLimit | null;

  segments: LogSegment[] = [];
  logStart = 0;
  /** Next offset handed out by append(); runs ahead of the written end while appends queue. */
  nextOffsetToAssign = 0;
  /** Offset after the last written batch: what reads can see. */
  logEnd = 0;
  /**
   * Offset after the last acknowledged append: written, and synced when the flush policy asks
   * for it. Trails logEnd while a group waits for its fdatasync; the partition's high watermark
   * on a single node.
   */
  durableEnd = 0;
  recoveryPointOffset = 0;
  /** Counts truncations and compaction swaps, so a read that raced one knows to retry. */
  truncations = 0;
  closed = false;
  failedWith: Error | null = null;
  /** Replaced at open by the newest readable snapshot (logRecovery.ts). */
  producers = new ProducerStateManager();
  /** Batches below this offset were stored without append validation: reads check their records. */
  recordsValidatedFrom = 0;
  /** Settles when a compaction swap in progress has replaced its segments; reads that raced it wait. */
  segmentSwap: Promise<void> | null = null;

  constructor(options: PartitionLogOptions, epochs: LeaderEpochCache, rules: BatchChainRules) {
    this.dir = options.dir;
    this.config = options.config;
    this.resources = options.resources;
    this.clock = options.clock;
    this.logger = options.logger;
    this.epochs = epochs;
    this.rules = rules;
    this.leaderEpoch = options.leaderEpoch ?? 0;
    this.workers = options.workers ?? null;
    this.recoveryScans = options.recoveryScans ?? null;
  }

  assertWritable(): void {
    if (this.closed) throw new LogClosedError(`log ${this.dir} is closed`);
    if (this.failedWith !== null) throw new StorageError(`log ${this.dir} stopped after a failed fsync; restart to recover`, { cause: this.failedWith });
  }

  activeSegment(): LogSegment {
    const active = this.segments[this.segments.length - 1];
    if (active === undefined) throw new Error(`log ${this.dir} has no segment`);
    return active;
  }

  segmentIndexFor(offset: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    let found = 0;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.segments[middle]!.baseOffset <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  segmentLimits(): { indexIntervalBytes: number; maxIndexEntries: number } {
    return { indexIntervalBytes: this.config.indexIntervalBytes, maxIndexEntries: maxIndexEntries(this.config) };
  }

  /**
   * Asserts how the offsets relate. A violation is a bug, not bad input: like a failed commit, it
   * stops this log (a restart recovers it) rather than the process, and the error is thrown to the
   * operation that found it. Called where offsets move outside the lone-append path: at open,
   * before a group is acknowledged, after a truncation and after a deletion below the log start.
   */
  checkOffsets(where: string): void {
    if (this.logStart <= this.logEnd && this.durableEnd <= this.logEnd && this.logEnd <= this.nextOffsetToAssign) return;
    const error = new Error(
      `log ${this.dir} broke its offset invariant at ${where}: logStart ${this.logStart}, durableEnd ${this.durableEnd}, logEnd ${this.logEnd}, nextOffsetToAssign ${this.nextOffsetToAssign}`,
    );
    this.failedWith ??= error;
    throw error;
  }
}
