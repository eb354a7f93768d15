// The logs of one data directory: discovery and opening (with recovery after an unclean stop),
// the shared limits on open segment files and loaded indexes, the directory-level checkpoints
// and the clean-shutdown marker.
//
//   <dataDir>/.lock                              pid of the process that owns the directory
//   <dataDir>/<topic>-<partition>/               one PartitionLog each
//   <dataDir>/recovery-point-offset-checkpoint   `topic partition offset` per log: flushed and checked below it
//   <dataDir>/log-start-offset-checkpoint        `topic partition offset` per log moved by retention or DeleteRecords
//   <dataDir>/clean-shutdown                     written last by close(); removed by open()
import { mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fsyncDirectory, readCheckpoint, writeCheckpoint } from '../segments/checkpointFile.js';
import { FileHandleCache } from '../segments/fileHandleCache.js';
import { IndexCache } from '../segments/indexCache.js';
import type { SegmentResources } from '../segments/logSegment.js';
import { systemClock, type Clock } from './clock.js';
import { resolveLogConfig, type LogConfig } from './logConfig.js';
import { streamLogger, type Logger } from './logger.js';
import { PartitionLog } from './partitionLog.js';

export const CLEAN_SHUTDOWN_FILE = 'clean-shutdown';
export const RECOVERY_POINT_CHECKPOINT = 'recovery-point-offset-checkpoint';
export const LOG_START_OFFSET_CHECKPOINT = 'log-start-offset-checkpoint';
const LOCK_FILE = '.lock';
const PARTITION_DIR = /^(.+)-(\d+)$/;

export interface LogManagerOptions {
  dataDir: string;
  clock?: Clock;
  logger?: Logger;
  /** Read handles of sealed segments kept open at once, across every log. */
  maxOpenSegmentHandles?: number;
  /** Memory for the indexes of sealed segments, across every log. */
  indexCacheBytes?: number;
  /** How often recovery points and log start offsets are checkpointed. */
  checkpointIntervalMs?: number;
  /** The config of a log being opened; defaults to Kafka's defaults. */
  configFor?: (topic: string, partition: number) => LogConfig;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

function key(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

/** Data directories opened by this process: the pid lock alone cannot tell two of ours apart. */
const openedInThisProcess = new Set<string>();

export class LogManager {
  readonly resources: SegmentResources;
  private readonly logs = new Map<string, { topic: string; partition: number; log: PartitionLog }>();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly configFor: (topic: string, partition: number) => LogConfig;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private recoveryPoints = new Map<string, number>();
  private logStartOffsets = new Map<string, number>();
  private cleanShutdown = false;

  private constructor(
    readonly dataDir: string,
    options: LogManagerOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? streamLogger();
    this.configFor = options.configFor ?? (() => resolveLogConfig());
    const logger = this.logger;
    this.resources = {
      handles: new FileHandleCache(options.maxOpenSegmentHandles ?? 512),
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
        const match = entry.isDirectory() ? PARTITION_DIR.exec(entry.name) : null;
        if (match === null) continue;
        await manager.openLog(match[1]!, Number(match[2]));
      }
    } catch (error) {
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
    const resolved = resolve(this.dataDir);
    if (openedInThisProcess.has(resolved)) throw new DataDirLockedError(`data directory ${this.dataDir} is already open in this process`);
    openedInThisProcess.add(resolved);
    try {
      await this.lockFile();
    } catch (error) {
      openedInThisProcess.delete(resolved);
      throw error;
    }
  }

  private async lockFile(): Promise<void> {
    const path = join(this.dataDir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processIsAlive(owner)) {
        throw new DataDirLockedError(`data directory ${this.dataDir} is in use by process ${owner}`);
      }
      await rm(path, { force: true }); // stale lock of a process that died
    }
    throw new DataDirLockedError(`could not lock data directory ${this.dataDir}`);
  }

  private async unlock(): Promise<void> {
    await rm(join(this.dataDir, LOCK_FILE), { force: true });
    openedInThisProcess.delete(resolve(this.dataDir));
  }

  private async loadCheckpoints(): Promise<void> {
    const read = async (name: string): Promise<Map<string, number>> => {
      const rows = (await readCheckpoint(join(this.dataDir, name), 3)) ?? [];
      return new Map(rows.map(([topic, partition, offset]) => [key(topic!, Number(partition)), Number(offset)]));
    };
    this.recoveryPoints = await read(RECOVERY_POINT_CHECKPOINT);
    this.logStartOffsets = await read(LOG_START_OFFSET_CHECKPOINT);
  }

  private async openLog(topic: string, partition: number): Promise<PartitionLog> {
    const id = key(topic, partition);
    const startOffset = this.logStartOffsets.get(id);
    const log = await PartitionLog.open({
      dir: join(this.dataDir, id),
      config: this.configFor(topic, partition),
      resources: this.resources,
      clock: this.clock,
      logger: this.logger,
      recoveryPoint: this.recoveryPoints.get(id) ?? 0,
      cleanShutdown: this.cleanShutdown,
      ...(startOffset === undefined ? {} : { logStartOffset: startOffset }),
    });
    this.logs.set(id, { topic, partition, log });
    return log;
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(key(topic, partition))?.log;
  }

  /** The log of a partition, created (empty) when it does not exist yet. */
  async getOrCreateLog(topic: string, partition: number): Promise<PartitionLog> {
    if (this.closed) throw new Error('log manager is closed');
    const existing = this.getLog(topic, partition);
    if (existing !== undefined) return existing;
    await mkdir(join(this.dataDir, key(topic, partition)), { recursive: true });
    await fsyncDirectory(this.dataDir);
    const log = await this.openLog(topic, partition);
    this.logger.info('created partition log', { topic, partition });
    return log;
  }

  partitions(): TopicPartition[] {
    return [...this.logs.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  /** Writes both checkpoints for every open log. */
  async checkpoint(): Promise<void> {
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
    for (const { log } of this.logs.values()) await log.close();
    await this.checkpoint();
    await this.resources.handles.close();
    const marker = await open(join(this.dataDir, CLEAN_SHUTDOWN_FILE), 'w');
    await marker.datasync();
    await marker.close();
    await fsyncDirectory(this.dataDir);
    await this.unlock();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
