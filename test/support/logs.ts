// Helpers to build partition logs in temporary directories for tests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { ManualClock } from '../../engine/clock.js';
import { resolveLogConfig, type LogConfig } from '../../engine/log/logConfig.js';
import { MemoryLogger } from '../../engine/logger.js';
import { PartitionLog } from '../../engine/log/partitionLog.js';
import { FileHandleCache } from '../../segments/fileHandleCache.js';
import { IndexCache } from '../../segments/indexCache.js';
import type { SegmentResources } from '../../segments/logSegment.js';
import { encodeBatch, type RecordInput } from '../../segments/recordBatch.js';
import type { SeededRandom } from './random.js';

export async function temporaryDirectory(prefix = 'tidelog-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export function testResources(options: { maxOpenHandles?: number; indexCacheBytes?: number } = {}): SegmentResources & { notices: string[] } {
  const notices: string[] = [];
  return {
    handles: new FileHandleCache(options.maxOpenHandles ?? 64),
    indexes: new IndexCache(options.indexCacheBytes ?? 16 * 1024 * 1024),
    notice: (message, fields) => notices.push(`${message} ${JSON.stringify(fields)}`),
    notices,
  };
}

export interface TestLog {
  log: PartitionLog;
  clock: ManualClock;
  logger: MemoryLogger;
  resources: ReturnType<typeof testResources>;
  config: LogConfig;
  dir: string;
}

export async function openTestLog(
  dir: string,
  overrides: Partial<LogConfig> = {},
  state: { recoveryPoint?: number; cleanShutdown?: boolean; clock?: ManualClock; resources?: ReturnType<typeof testResources>; logStartOffset?: number } = {},
): Promise<TestLog> {
  const clock = state.clock ?? new ManualClock();
  const logger = new MemoryLogger();
  const resources = state.resources ?? testResources();
  const config = resolveLogConfig({ fileDeleteDelayMs: 0, ...overrides });
  const log = await PartitionLog.open({
    dir,
    config,
    resources,
    clock,
    logger,
    recoveryPoint: state.recoveryPoint ?? 0,
    cleanShutdown: state.cleanShutdown ?? true,
    ...(state.logStartOffset === undefined ? {} : { logStartOffset: state.logStartOffset }),
  });
  return { log, clock, logger, resources, config, dir };
}

export interface FreshLogs {
  /** Run after each test, the last added first: add anything a test opens beside its logs. */
  cleanups: Array<() => Promise<void>>;
  /** A log in a new temporary directory; closed and removed after the test. */
  freshLog(overrides?: Partial<LogConfig>): Promise<TestLog>;
}

/** Registers an afterEach in the calling file (or describe block) that runs the cleanups. */
export function useFreshLogs(): FreshLogs {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const freshLog = async (overrides: Partial<LogConfig> = {}): Promise<TestLog> => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const opened = await openTestLog(dir.path, overrides);
    cleanups.push(() => opened.log.close());
    return opened;
  };
  return { cleanups, freshLog };
}

/** Random records: keys and values may be null, headers may be present, timestamps spread. */
export function randomRecords(random: SeededRandom, count: number, baseTimestamp: number): RecordInput[] {
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    const headers = random.bool(0.3)
      ? Array.from({ length: random.int(1, 3) }, (_, h) => ({ key: `h${h}-${random.int(0, 9)}`, value: random.bool(0.2) ? null : random.bytes(random.int(0, 20)) }))
      : [];
    records.push({
      key: random.bool(0.2) ? null : random.bytes(random.int(0, 16)),
      value: random.bool(0.1) ? null : random.bytes(random.int(0, 300)),
      headers,
      timestamp: baseTimestamp + random.int(-1000, 100_000),
    });
  }
  return records;
}

/** A batch of `count` records with values "<label>-<i>", timestamps from `timestamp`. */
export function labelledBatch(label: string, count: number, timestamp: number, extra: { valueBytes?: number } = {}): Buffer {
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    const text = `${label}-${i}`;
    const value = extra.valueBytes === undefined ? Buffer.from(text) : Buffer.concat([Buffer.from(text), Buffer.alloc(Math.max(0, extra.valueBytes - text.length), 0x61)]);
    records.push({ key: Buffer.from(`k${i % 7}`), value, timestamp: timestamp + i });
  }
  return encodeBatch(records, { baseTimestamp: timestamp });
}

/** Every batch buffer in a record set, split by their lengths. */
export function splitBatches(records: Buffer): Buffer[] {
  const batches: Buffer[] = [];
  let position = 0;
  while (position < records.length) {
    const size = records.readInt32BE(position + 8) + 12;
    batches.push(records.subarray(position, position + size));
    position += size;
  }
  return batches;
}

/** Reads the whole log from its start, batch by batch, as a list of batch buffers. */
export async function readAll(log: PartitionLog, maxBytes = 1024 * 1024): Promise<Buffer[]> {
  const batches: Buffer[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const { records } = await log.read(offset, maxBytes);
    if (records.length === 0) break;
    for (const batch of splitBatches(records)) {
      batches.push(batch);
      offset = Number(batch.readBigInt64BE(0)) + batch.readInt32BE(23) + 1;
    }
  }
  return batches;
}
