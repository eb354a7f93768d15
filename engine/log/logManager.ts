// The logs of one data directory: discovery and opening (with recovery after an unclean stop),
// the shared limits on open segment files and loaded indexes, the directory-level checkpoints
// and the clean-shutdown marker.
//
//   <dataDir>/.lock                              pid of the process that owns the directory
//   <dataDir>/<topic>-<partition>/               one PartitionLog each
//   <dataDir>/recovery-point-offset-checkpoint   `topic partition offset` per log: flushed and checked below it
//   <dataDir>/log-start-offset-checkpoint        `topic partition offset` per log moved by retention or DeleteRecords
//   <dataDir>/clean-shutdown                     written last by close(); removed by open()
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory, readCheckpoint, writeCheckpoint } from '../../segments/checkpointFile.js';
import { lockDirectory } from './directoryLock.js';
import { FileHandleCache } from '../../segments/fileHandleCache.js';
import { IndexCache } from '../../segments/indexCache.js';
import { WriteHandleBudget } from '../../segments/writeHandleBudget.js';
import { SharedTimerScheduler, type Scheduler } from '../scheduler.js';
import type { SegmentResources } from '../../segments/logSegment.js';
import { parsePartitionDirName } from '../../segments/segmentNames.js';
import { systemClock, type Clock } from '../clock.js';
import { resolveLogConfig, type LogConfig } from './logConfig.js';
import { streamLogger, type Logger } from '../logger.js';
import { ConcurrencyLimit } from './concurrencyLimit.js';
import { PartitionLog } from './partitionLog.js';
import type { WorkerPool } from '../workers/workerPool.js';
import type { AppendValidator } from './appendValidation.js';

export const CLEAN_SHUTDOWN_FILE = 'clean-shutdown';
export const RECOVERY_POINT_CHECKPOINT = 'recovery-point-offset-checkpoint';
export const LOG_START_OFFSET_CHECKPOINT = 'log-start-offset-checkpoint';
const DELETED_DIR_SUFFIX = '-delete';

export interface LogManagerOptions {
  dataDir: string;
  clock?: Clock;
  logger?: Logger;
  /** Read handles of segments kept open at once, across every log (log.read.handles.max). */
  maxOpenSegmentHandles?: number;
  /** Write handles of segments kept open at once, across every log; idle ones close first (log.write.handles.max). */
  maxOpenWriteHandles?: number;
  /** Memory for the indexes of sealed segments, across every log. */
  indexCacheBytes?: number;
  /** How often recovery points and log start offsets are checkpointed. */
  checkpointIntervalMs?: number;
  /** The config of a log being opened; defaults to Kafka's defaults. */
  configFor?: (topic: string, partition: number) => LogConfig;
  /**
   * Open every partition directory found at start (the default). A broker passes false and opens
   * the logs of the topics its metadata knows, so it can tell stray directories apart.
   */
  openExistingLogs?: boolean;
  /**
   * Runs recovery scans on these threads, and lets openLogs() open as many logs at once as the
   * pool has threads. Without it, logs open one at a time and scan on this thread.
   */
  workers?: WorkerPool;
  /** Validates produced record sets (the broker's, with its decompression budget); default: one per log. */
  validator?: AppendValidator;
  /** Runs every log's periodic flushes and delayed deletions; default: one SharedTimerScheduler. */
  scheduler?: Scheduler;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

function key(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

export { DirectoryLockedError as DataDirLockedError } from './directoryLock.js';

export class LogManager {
  readonly resources: SegmentResources;
  private readonly logs = new Map<string, { topic: string; partition: number; log: PartitionLog }>();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly configFor: (topic: string, partition: number) => LogConfig;
  private checkpointTimer: NodeJS.Timeout | null = null;
  /** The checkpoint write in progress (or the last one), so the next waits for it. */
  private checkpointing: Promise<void> = Promise.resolve();
  private closed = false;
  private recoveryPoints = new Map<string, number>();
  private logStartOffsets = new Map<string, number>();
  private cleanShutdown = false;
  private unlockDirectory: (() => Promise<void>) | null = null;
  private readonly workers: WorkerPool | null;
  /** Recovery scans of the logs being opened: as many at once as the pool has threads. */
  private readonly recoveryScans: ConcurrencyLimit;
  /** Small-file writes and syncs of every log (LogState.fileOperations). */
  private readonly fileOperations = new ConcurrencyLimit(FILE_OPERATION_PARALLELISM);
  /** Every log's periodic flushes and delayed deletions: one timer for all (SharedTimerScheduler). */
  readonly scheduler: Scheduler;
  private readonly validator: AppendValidator | null;
  /** A log failed to open (its recovery may be unfinished): close() then writes no clean-shutdown marker. */
  private openFailed = false;
  /** Partition directories present at start, opened or not. */
  readonly directoriesFound: TopicPartition[] = [];

  private constructor(
    readonly dataDir: string,
    options: LogManagerOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? streamLogger();
    this.configFor = options.configFor ?? (() => resolveLogConfig());
    this.workers = options.workers ?? null;
    this.recoveryScans = new ConcurrencyLimit(this.workers?.threads ?? 1);
    this.validator = options.validator ?? null;
    this.scheduler = options.scheduler ?? new SharedTimerScheduler();
    const logger = this.logger;
    this.resources = {
      handles: new FileHandleCache(options.maxOpenSegmentHandles ?? DEFAULT_READ_HANDLES),
      writeHandles: new WriteHandleBudget(options.maxOpenWriteHandles ?? DEFAULT_WRITE_HANDLES),
      indexes: new IndexCache(options.indexCacheBytes ?? 128 * 1024 * 1024),
      notice: (message, fields) => logger.warn(message, fields),
    };
  }

  /** Opens the data directory and every partition log in it, recovering them after an unclean stop. */
  static async open(options: LogManagerOptions): Promise<LogManager> {
    await mkdir(options.dataDir, { recursive: true });
    const manager = new LogManager(options.dataDir, options);
    await manager.lock();
    try {
      await manager.loadCheckpoints();
      manager.cleanShutdown = await exists(join(options.dataDir, CLEAN_SHUTDOWN_FILE));
      // Remove the marker before anything changes, so a crash from here on is seen as unclean.
      await rm(join(options.dataDir, CLEAN_SHUTDOWN_FILE), { force: true });
      await fsyncDirectory(options.dataDir);
      for (const entry of await readdir(options.dataDir, { withFileTypes: true })) {
        if (entry.isDirectory() && entry.name.endsWith(DELETED_DIR_SUFFIX)) {
          // A topic deletion that a crash interrupted: finish it.
          await rm(join(options.dataDir, entry.name), { recursive: true, force: true });
          continue;
        }
        const found = entry.isDirectory() ? parsePartitionDirName(entry.name) : null;
        if (found !== null) manager.directoriesFound.push(found);
      }
      if (options.openExistingLogs !== false) await manager.openLogs(manager.directoriesFound);
    } catch (error) {
      for (const { log } of manager.logs.values()) await log.close().catch(() => undefined);
      await manager.unlock();
      throw error;
    }
    const interval = options.checkpointIntervalMs ?? 60_000;
    manager.checkpointTimer = setInterval(() => {
      manager.checkpoint().catch((error: unknown) => manager.logger.error('checkpoint failed', { dataDir: manager.dataDir, error: String(error) }));
    }, interval);
    manager.checkpointTimer.unref();
    return manager;
  }

  /** Whether the previous process stopped cleanly (no recovery scan was needed). */
  get openedAfterCleanShutdown(): boolean {
    return this.cleanShutdown;
  }

  private async lock(): Promise<void> {
    this.unlockDirectory = await lockDirectory(this.dataDir, 'data directory');
  }

  private async unlock(): Promise<void> {
    await this.unlockDirectory?.();
    this.unlockDirectory = null;
  }

  private async loadCheckpoints(): Promise<void> {
    const read = async (name: string): Promise<Map<string, number>> => {
      const rows = (await readCheckpoint(join(this.dataDir, name), 3)) ?? [];
      return new Map(rows.map(([topic, partition, offset]) => [key(topic!, Number(partition)), Number(offset)]));
    };
    this.recoveryPoints = await read(RECOVERY_POINT_CHECKPOINT);
    this.logStartOffsets = await read(LOG_START_OFFSET_CHECKPOINT);
  }

  private async openLog(topic: string, partition: number, fresh = false): Promise<PartitionLog> {
    const id = key(topic, partition);
    const startOffset = this.logStartOffsets.get(id);
    let log: PartitionLog;
    try {
      log = await PartitionLog.open({
        dir: join(this.dataDir, id),
        config: this.configFor(topic, partition),
        resources: this.resources,
        clock: this.clock,
        logger: this.logger,
        recoveryPoint: this.recoveryPoints.get(id) ?? 0,
        cleanShutdown: this.cleanShutdown,
        ...(startOffset === undefined ? {} : { logStartOffset: startOffset }),
        ...(this.workers === null ? {} : { workers: this.workers }),
        recoveryScans: this.recoveryScans,
        fileOperations: this.fileOperations,
        scheduler: this.scheduler,
        ...(this.validator === null ? {} : { validator: this.validator }),
        fresh,
      });
    } catch (error) {
      // A new log that failed to open (say, out of descriptors) left no recovery unfinished.
      if (!fresh) this.openFailed = true;
      throw error;
    }
    this.logs.set(id, { topic, partition, log });
    return log;
  }

  /**
   * Opens the logs of these partitions that are not open yet, OPEN_PARALLELISM at a time (opening
   * is mostly small reads), their recovery scans after an unclean stop as many at once as the
   * worker pool has threads (one without a pool). When one fails, the opens under way finish, no
   * new one starts, and the first error is thrown.
   */
  async openLogs(partitions: readonly TopicPartition[]): Promise<void> {
    const pending = partitions.filter(({ topic, partition }) => this.getLog(topic, partition) === undefined);
    const startedMs = performance.now();
    await inBatches(pending, OPEN_PARALLELISM, ({ topic, partition }) => this.openLog(topic, partition), { stopAtFailure: true });
    if (pending.length > 0) this.logger.info('opened partition logs', { ...this.openSummary(pending), cleanShutdown: this.cleanShutdown, ms: Math.round(performance.now() - startedMs) });
  }

  /** What opening these partitions scanned and cut, summed: one line per start, not one per partition. */
  private openSummary(opened: readonly TopicPartition[]): { partitions: number; scanned: number; segmentsScanned: number; bytesScanned: number; truncated: number } {
    const summary = { partitions: opened.length, scanned: 0, segmentsScanned: 0, bytesScanned: 0, truncated: 0 };
    for (const { topic, partition } of opened) {
      const report = this.getLog(topic, partition)?.recovery;
      if (report === undefined || report === null) continue;
      if (report.segmentsScanned > 0) summary.scanned++;
      summary.segmentsScanned += report.segmentsScanned;
      summary.bytesScanned += report.bytesScanned;
      if (report.truncatedBytes > 0 || report.droppedOffsets !== null) summary.truncated++;
    }
    return summary;
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(key(topic, partition))?.log;
  }

  /** The log of a partition, created (empty) when it does not exist yet. */
  async getOrCreateLog(topic: string, partition: number): Promise<PartitionLog> {
    if (this.closed) throw new Error('log manager is closed');
    const existing = this.getLog(topic, partition);
    if (existing !== undefined) return existing;
    await this.makeLogs(topic, [partition]);
    this.logger.info('created partition log', { topic, partition });
    return this.getLog(topic, partition)!;
  }

  /**
   * Creates the logs of many new partitions of `topic` at once (CreateTopics, CreatePartitions):
   * their directories made side by side, the data directory synced once for all of them, the logs
   * opened CREATE_PARALLELISM at a time. A partition whose log is open already is left as it is.
   */
  async createLogs(topic: string, partitions: readonly number[]): Promise<void> {
    if (this.closed) throw new Error('log manager is closed');
    const missing = partitions.filter((partition) => this.getLog(topic, partition) === undefined);
    if (missing.length === 0) return;
    await this.makeLogs(topic, missing);
    this.logger.info('created partition logs', { topic, partitions: missing.length });
  }

  /** New partitions' directories, one sync of the data directory for all, then their logs opened. */
  private async makeLogs(topic: string, partitions: readonly number[]): Promise<void> {
    const existing = new Set<number>();
    const makeDirectory = async (partition: number): Promise<void> => {
      try {
        await mkdir(join(this.dataDir, key(topic, partition)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        existing.add(partition);
      }
    };
    await inBatches(partitions, CREATE_PARALLELISM, makeDirectory);
    await fsyncDirectory(this.dataDir);
    // A directory made here is empty: its log opens without reading anything.
    await inBatches(partitions, CREATE_PARALLELISM, (partition) => this.openLog(topic, partition, !existing.has(partition)));
  }

  /**
   * Closes a partition's log and deletes its directory: renamed to `<dir>.<id>-delete` first (so
   * a crash leaves nothing that looks like a partition; the next start finishes the removal).
   */
  async removeLog(topic: string, partition: number): Promise<void> {
    const id = key(topic, partition);
    const entry = this.logs.get(id);
    if (entry !== undefined) {
      this.logs.delete(id);
      await entry.log.close();
    }
    this.recoveryPoints.delete(id);
    this.logStartOffsets.delete(id);
    const dir = join(this.dataDir, id);
    if (!(await exists(dir))) return;
    const doomed = `${dir}.${randomUUID().replaceAll('-', '')}${DELETED_DIR_SUFFIX}`;
    await rename(dir, doomed);
    await fsyncDirectory(this.dataDir);
    await rm(doomed, { recursive: true, force: true });
  }

  /**
   * Descriptors that opening `count` new logs may add: one write handle each, but no more than
   * the write-handle budget has room for, since it closes idle handles to make more.
   */
  descriptorsForNewLogs(count: number): number {
    const budget = this.resources.writeHandles;
    return budget === undefined ? count : Math.min(count, Math.max(0, budget.maxOpenHandles - budget.openHandles));
  }

  partitions(): TopicPartition[] {
    return [...this.logs.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Writes both checkpoints for every open log. Calls run one after another (the periodic timer,
   * retention and close all call it), so two writers never share a `.tmp` file.
   */
  checkpoint(): Promise<void> {
    const run = this.checkpointing.catch(() => undefined).then(() => this.writeCheckpoints());
    this.checkpointing = run;
    return run;
  }

  private async writeCheckpoints(): Promise<void> {
    const recovery: Array<[string, number, number]> = [];
    const starts: Array<[string, number, number]> = [];
    for (const { topic, partition, log } of this.logs.values()) {
      recovery.push([topic, partition, log.recoveryPoint]);
      starts.push([topic, partition, log.logStartOffset]);
    }
    await writeCheckpoint(join(this.dataDir, RECOVERY_POINT_CHECKPOINT), recovery);
    await writeCheckpoint(join(this.dataDir, LOG_START_OFFSET_CHECKPOINT), starts);
  }

  /** Closes every log (each flushes), writes the checkpoints, then the clean-shutdown marker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.checkpointTimer !== null) clearInterval(this.checkpointTimer);
    // Side by side, a bounded number at a time: each close is a few small writes and syncs.
    await inBatches([...this.logs.values()], CLOSE_PARALLELISM, ({ log }) => log.close());
    await this.checkpoint();
    await this.resources.handles.close();
    if (this.openFailed) {
      // A log that failed to open was not recovered: the next start must scan it again.
      this.logger.warn('no clean-shutdown marker written: a log failed to open, so the next start recovers', { dataDir: this.dataDir });
    } else {
      const marker = await open(join(this.dataDir, CLEAN_SHUTDOWN_FILE), 'w');
      await marker.datasync();
      await marker.close();
    }
    await fsyncDirectory(this.dataDir);
    await this.unlock();
  }
}

/** Default of log.read.handles.max, and of the write handles of a manager not told (the broker derives log.write.handles.max from the open-files limit). */
const DEFAULT_READ_HANDLES = 512;
const DEFAULT_WRITE_HANDLES = 4096;
/** Small-file writes and syncs of all logs at once (each holds a descriptor while it runs). */
const FILE_OPERATION_PARALLELISM = 16;
/** Existing logs opened this many at a time (their recovery scans are limited apart). */
const OPEN_PARALLELISM = 32;
/** New partitions' directories made, and their logs opened, this many at a time. */
const CREATE_PARALLELISM = 32;
/** Logs closed this many at a time at shutdown. */
const CLOSE_PARALLELISM = 32;

/**
 * Runs `work` on every item, at most `parallelism` at once. Every item is tried even when one
 * fails (unless `stopAtFailure`: then no new one starts); the first failure is thrown once all
 * that started have settled, so nothing is left half-done unseen.
 */
async function inBatches<T>(items: readonly T[], parallelism: number, work: (item: T) => Promise<unknown>, options: { stopAtFailure?: boolean } = {}): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const runner = async (): Promise<void> => {
    while (next < items.length && (failure === null || options.stopAtFailure !== true)) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, runner));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
