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
import { writeFile } from 'node:fs/promises';
import { fsyncDirectory, syncFileData } from '../../segments/checkpointFile.js';
import type { BatchChainRules, LogSegment, SegmentResources } from '../../segments/logSegment.js';
import type { Clock } from '../clock.js';
import { TimerScheduler, type Scheduler } from '../scheduler.js';
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
  /**
   * Shared by a manager's logs: how many of their small-file writes and syncs (a new log's first
   * files, producer snapshots at rolls) may hold a descriptor at once. A produce request to
   * 10,000 new partitions would otherwise open 10,000 files together.
   */
  fileOperations?: ConcurrencyLimit;
  /** Runs the periodic flushes and delayed file deletions; a manager's logs share one timer. Default: timers of its own. */
  scheduler?: Scheduler;
  /** Validates appended record sets; default: one of its own on `workers`, with no broker-wide budget. */
  validator?: AppendValidator;
  /**
   * The directory was made just now for a new partition and holds nothing: the open reads
   * nothing, and its first files are synced with the log's first flush, not one by one.
   */
  fresh?: boolean;
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
  readonly fileOperations: ConcurrencyLimit | null;
  readonly scheduler: Scheduler;

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
  /**
   * A new log's small files (its epoch checkpoint, its records-validated marker), kept in memory
   * until its first write, and whether the directory's entries await a sync: syncDeferred()
   * writes and syncs them all before the recovery point next moves. Until the first write the log
   * holds nothing that needs them, and a start after a crash rebuilds them: creating 10,000
   * partitions then costs a directory and a segment file each, not four files and five syncs.
   */
  private deferredFiles: Array<{ path: string; contents: () => string }> = [];
  private unsyncedFiles: string[] = [];
  private directoryUnsynced = false;
  /**
   * Set at open when the log's files were in a finished state (opened after a clean stop with
   * nothing recovered, or just created): close() need write nothing while the log end and the
   * truncation count are still these.
   */
  openedSettled: { logEnd: number; truncations: number } | null = null;

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
    this.fileOperations = options.fileOperations ?? null;
    this.scheduler = options.scheduler ?? new TimerScheduler();
  }

  /** Defers writing `path` (with what `contents` gives then) to the first write or flush. */
  deferWrite(path: string, contents: () => string): void {
    this.deferredFiles.push({ path, contents });
    this.directoryUnsynced = true;
  }

  /** Defers the sync of the directory's entries (a new segment file) to syncDeferred(). */
  deferDirectorySync(): void {
    this.directoryUnsynced = true;
  }

  get hasDeferredWrites(): boolean {
    return this.deferredFiles.length > 0;
  }

  get hasDeferredSyncs(): boolean {
    return this.directoryUnsynced;
  }

  /** Writes the files deferWrite() put off (unsynced: syncDeferred() syncs them). */
  async writeDeferred(): Promise<void> {
    while (this.deferredFiles.length > 0) {
      const file = this.deferredFiles[0]!;
      await this.withFileOperation(() => writeFile(file.path, file.contents()));
      this.deferredFiles.shift();
      this.unsyncedFiles.push(file.path);
    }
  }

  /** Writes and syncs what deferWrite() and deferDirectorySync() put off; call before the recovery point moves. */
  async syncDeferred(): Promise<void> {
    if (!this.directoryUnsynced) return;
    await this.writeDeferred();
    const files = this.unsyncedFiles;
    await this.withFileOperation(async () => {
      for (const path of files) await syncFileData(path);
      await fsyncDirectory(this.dir);
    });
    this.unsyncedFiles = this.unsyncedFiles.slice(files.length);
    this.directoryUnsynced = this.unsyncedFiles.length > 0 || this.deferredFiles.length > 0;
  }

  /** Runs a small-file operation within the manager's shared bound (fileOperations). */
  withFileOperation<T>(operation: () => Promise<T>): Promise<T> {
    return this.fileOperations === null ? operation() : this.fileOperations.run(operation);
  }

  /** Whether nothing changed on disk since an open that found (or made) the log settled. */
  get unchangedSinceSettledOpen(): boolean {
    const mark = this.openedSettled;
    return mark !== null && mark.logEnd === this.logEnd && mark.truncations === this.truncations;
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
