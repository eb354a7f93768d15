// Scans on the worker pool: verification of sealed segments (the verifySegments task and the
// broker's periodic check) and recovery scans after an unclean stop (the recoverSegment task,
// several partitions at once). Threads load dist/engine/workers/worker.js: run `npm run build`
// first (npm test does).
import { cp, mkdir, readFile, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { brokerConfigFromProperties, defaultBrokerConfig } from '../engine/brokerConfig.js';
import { StorageError } from '../engine/errors.js';
import { resolveLogConfig, type LogConfig } from '../engine/log/logConfig.js';
import { CLEAN_SHUTDOWN_FILE, LogManager, RECOVERY_POINT_CHECKPOINT } from '../engine/log/logManager.js';
import { MemoryLogger } from '../engine/logger.js';
import type { PartitionLog } from '../engine/log/partitionLog.js';
import { VerificationScheduler } from '../engine/log/verification/verificationScheduler.js';
import { scanSegmentFile, type ScannedBatch } from '../engine/log/verification/partitionVerifier.js';
import { WorkerPool, WorkerTaskCancelledError } from '../engine/workers/workerPool.js';
import { writeCheckpoint } from '../segments/checkpointFile.js';
import { RECORDS_OFFSET } from '../segments/recordBatch.js';
import { LOG_SUFFIX, segmentFileName } from '../segments/segmentNames.js';
import { SeededRandom } from './support/random.js';
import { startInProcessBroker } from './support/inProcessBroker.js';
import { labelledBatch, openTestLog, readAll, temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  // In reverse order (schedulers before logs, logs before pools, directories last), each one even
  // when an earlier one failed, so no pool or thread outlives its test.
  let failure: unknown = null;
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== null) throw failure;
});

async function scratch(): Promise<string> {
  const dir = await temporaryDirectory('tidelog-scans-');
  cleanups.push(dir.remove);
  return dir.path;
}

function makePool(threads = 2): { pool: WorkerPool; logger: MemoryLogger } {
  const logger = new MemoryLogger();
  const pool = new WorkerPool({ threads, logger });
  cleanups.push(() => pool.close());
  return { pool, logger };
}

const SMALL_SEGMENTS: Partial<LogConfig> = { segmentBytes: 1200, indexIntervalBytes: 150 };

/** An open log of `batches` batches over several segments, flushed so every sealed segment is below the recovery point. */
async function flushedLog(dir: string, batches: number, label = 'b'): Promise<PartitionLog> {
  const { log } = await openTestLog(dir, SMALL_SEGMENTS);
  cleanups.push(() => log.close());
  for (let i = 0; i < batches; i++) await log.append(labelledBatch(`${label}${i}`, 1 + (i % 3), 1_000 + i * 10, { valueBytes: 40 }));
  await log.flush();
  return log;
}

/** Every batch of one segment file, as the verifier's scanner sees them. */
async function batchesOf(path: string): Promise<ScannedBatch[]> {
  const batches: ScannedBatch[] = [];
  for await (const item of scanSegmentFile(path)) if (item.kind === 'batch') batches.push({ ...item, bytes: null });
  return batches;
}

async function flipByte(path: string, position: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[position] = bytes[position]! ^ 0xff;
  await writeFile(path, bytes);
}

describe('verifySegments on a worker thread', () => {
  it('reports a clean log as clean, and a flipped byte in a sealed segment with its file, offset and position', async () => {
    const { pool } = makePool();
    const dir = join(await scratch(), 'orders-0');
    const log = await flushedLog(dir, 30);
    const sealed = log.segmentBaseOffsets().slice(0, -1);
    expect(sealed.length).toBeGreaterThanOrEqual(3);

    const clean = await pool.run('verifySegments', { dir, allowOffsetGaps: false, segmentBaseOffsets: sealed });
    expect(clean).toMatchObject({ segmentsChecked: sealed.length, problems: [], problemsNotListed: 0, segmentsGone: [] });
    expect(clean.segments.map((segment) => segment.baseOffset)).toEqual(sealed);
    expect(clean.batches).toBeGreaterThan(0);

    const target = join(dir, segmentFileName(sealed[1]!, LOG_SUFFIX));
    const victim = (await batchesOf(target))[1]!;
    await flipByte(target, victim.position + RECORDS_OFFSET + 3);
    const corrupt = await pool.run('verifySegments', { dir, allowOffsetGaps: false, segmentBaseOffsets: sealed });
    expect(corrupt.problems).toEqual([
      { file: target, position: victim.position, baseOffset: victim.header.baseOffset, problem: 'crc-mismatch', detail: expect.stringMatching(/^stored CRC 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/) as unknown },
    ]);
    expect(corrupt.segments.find((segment) => segment.baseOffset === sealed[1])).toMatchObject({ problems: 1, checkedBytes: victim.position });
    // A whole-directory check (what `inspect verify` runs) finds the same problem.
    expect((await pool.run('verifySegments', { dir, allowOffsetGaps: false })).problems).toEqual(corrupt.problems);
  });

  it('lists a named segment whose files are gone as gone, not as a problem, and a vanished directory likewise', async () => {
    const { pool } = makePool();
    const dir = join(await scratch(), 'orders-0');
    const log = await flushedLog(dir, 30);
    const [first, second, third] = log.segmentBaseOffsets();
    await rename(join(dir, segmentFileName(second!, LOG_SUFFIX)), join(dir, segmentFileName(second!, LOG_SUFFIX) + '.deleted'));
    const report = await pool.run('verifySegments', { dir, allowOffsetGaps: false, segmentBaseOffsets: [first!, second!, third!] });
    expect(report.problems).toEqual([]);
    expect(report.segmentsGone).toEqual([second]);
    expect(report.segments.map((segment) => segment.baseOffset)).toEqual([first, third]);

    const missing = await pool.run('verifySegments', { dir: join(dir, '..', 'deleted-0'), allowOffsetGaps: false, segmentBaseOffsets: [0, 7] });
    expect(missing).toMatchObject({ segmentsChecked: 0, problems: [], segmentsGone: [0, 7] });
  });
});

describe('the periodic background verification', () => {
  it('logs a corrupt batch once with topic, partition, file, offset and position, and never re-verifies unchanged segments', async () => {
    const { pool } = makePool();
    const dir = join(await scratch(), 'orders-3');
    const log = await flushedLog(dir, 30);
    const logger = new MemoryLogger();
    const scheduler = new VerificationScheduler({ partitions: () => [{ topic: 'orders', partition: 3, log }], workers: pool, intervalMs: -1, logger });
    cleanups.push(() => scheduler.stop());
    const sealed = log.segmentBaseOffsets().slice(0, -1);
    const target = join(dir, segmentFileName(sealed[0]!, LOG_SUFFIX));
    const victim = (await batchesOf(target))[2]!;
    await flipByte(target, victim.position + RECORDS_OFFSET + 1);

    await scheduler.runOnce();
    const errors = (): MemoryLogger['lines'] => logger.lines.filter((line) => line.level === 'error');
    expect(errors()).toEqual([
      {
        level: 'error',
        message: 'background verification found corrupt data',
        fields: { topic: 'orders', partition: 3, file: target, baseOffset: victim.header.baseOffset, position: victim.position, problem: 'crc-mismatch', detail: expect.any(String) as unknown },
      },
    ]);
    expect(scheduler.counters()).toMatchObject({ rounds: 1, segmentsVerified: sealed.length, corruptSegments: 1, problemsFound: 1, segmentsGone: 0, tasksFailed: 0 });
    const tasksAfterFirstRound = pool.counters().completed;

    await scheduler.runOnce();
    expect(errors()).toHaveLength(1);
    expect(scheduler.counters()).toMatchObject({ rounds: 2, segmentsVerified: sealed.length, corruptSegments: 1, problemsFound: 1 });
    expect(pool.counters().completed).toBe(tasksAfterFirstRound);

    // New sealed segments are verified on the next round, and only they.
    for (let i = 0; i < 20; i++) await log.append(labelledBatch(`more${i}`, 2, 5_000 + i, { valueBytes: 40 }));
    await log.flush();
    const sealedNow = log.segmentBaseOffsets().slice(0, -1);
    expect(sealedNow.length).toBeGreaterThan(sealed.length);
    await scheduler.runOnce();
    expect(scheduler.counters()).toMatchObject({ rounds: 3, segmentsVerified: sealedNow.length, corruptSegments: 1, problemsFound: 1 });
    expect(errors()).toHaveLength(1);
  });

  it('checks only segments behind the recovery point, never the active one', async () => {
    const { pool } = makePool();
    const dir = join(await scratch(), 'orders-0');
    const written = await openTestLog(dir, SMALL_SEGMENTS);
    for (let i = 0; i < 30; i++) await written.log.append(labelledBatch(`u${i}`, 2, 1_000 + i, { valueBytes: 40 }));
    const bases = written.log.segmentBaseOffsets();
    await written.log.close();
    // Reopened as after a crash whose last checkpoint said offset bases[2]: two segments are behind it.
    const { log } = await openTestLog(dir, SMALL_SEGMENTS, { cleanShutdown: false, recoveryPoint: bases[2]! });
    cleanups.push(() => log.close());
    expect(log.recoveryPoint).toBe(bases[2]);
    const scheduler = new VerificationScheduler({ partitions: () => [{ topic: 'orders', partition: 0, log }], workers: pool, intervalMs: -1, logger: new MemoryLogger() });
    cleanups.push(() => scheduler.stop());
    await scheduler.runOnce();
    expect(scheduler.counters().segmentsVerified).toBe(2);
    await log.flush();
    await scheduler.runOnce();
    expect(log.segmentBaseOffsets()).toEqual(bases);
    expect(scheduler.counters().segmentsVerified).toBe(bases.length - 1);
  });

  it('skips a segment deleted after it was listed, without reporting it as corrupt', async () => {
    const { pool } = makePool(1);
    const dir = join(await scratch(), 'orders-0');
    const log = await flushedLog(dir, 30);
    const logger = new MemoryLogger();
    const scheduler = new VerificationScheduler({ partitions: () => [{ topic: 'orders', partition: 0, log }], workers: pool, intervalMs: -1, logger });
    cleanups.push(() => scheduler.stop());
    const sealed = log.segmentBaseOffsets().slice(0, -1);

    // Hold the only thread, so the round's task waits in the queue after the segments were listed.
    const holder = new AbortController();
    const held = pool.run('diagnostic', { action: 'sleep', ms: 60_000 }, { signal: holder.signal });
    const round = scheduler.runOnce();
    await vi.waitFor(() => expect(pool.counters().queued).toBe(1), { timeout: 10_000 });
    const doomed = join(dir, segmentFileName(sealed[1]!, LOG_SUFFIX));
    await rename(doomed, doomed + '.deleted'); // what retention's first step does
    holder.abort();
    await expect(held).rejects.toBeInstanceOf(WorkerTaskCancelledError);
    await round;

    expect(logger.lines.filter((line) => line.level !== 'info')).toEqual([]);
    expect(scheduler.counters()).toMatchObject({ segmentsVerified: sealed.length - 1, segmentsGone: 1, corruptSegments: 0, problemsFound: 0 });
  });

  it('stop() cancels the task of a running round', async () => {
    const { pool } = makePool(1);
    const dir = join(await scratch(), 'orders-0');
    const log = await flushedLog(dir, 30);
    const scheduler = new VerificationScheduler({ partitions: () => [{ topic: 'orders', partition: 0, log }], workers: pool, intervalMs: 60_000, logger: new MemoryLogger() });
    cleanups.push(() => scheduler.stop());
    scheduler.start();
    const holder = new AbortController();
    const held = pool.run('diagnostic', { action: 'sleep', ms: 60_000 }, { signal: holder.signal });
    const round = scheduler.runOnce();
    await vi.waitFor(() => expect(pool.counters().queued).toBe(1), { timeout: 10_000 });
    await scheduler.stop();
    await round;
    expect(pool.counters().cancelled).toBe(1);
    expect(scheduler.counters()).toMatchObject({ rounds: 0, segmentsVerified: 0, tasksFailed: 0 });
    holder.abort();
    await expect(held).rejects.toBeInstanceOf(WorkerTaskCancelledError);
  });

  it('log.verify.interval.ms: an hour by default, -1 disables, 0 and other values out of range are refused with the range', () => {
    expect(defaultBrokerConfig().verifyIntervalMs).toBe(3_600_000);
    expect(brokerConfigFromProperties({ 'log.verify.interval.ms': '-1' }).config.verifyIntervalMs).toBe(-1);
    expect(brokerConfigFromProperties({ 'log.verify.interval.ms': '60000' }).config.verifyIntervalMs).toBe(60_000);
    for (const value of ['0', '-2', 'soon', String(366 * 24 * 3_600_000)]) {
      expect(() => brokerConfigFromProperties({ 'log.verify.interval.ms': value })).toThrow(`log.verify.interval.ms must be -1 (never) or an integer in [1, 31536000000], got ${JSON.stringify(value)}`);
    }
  });

  it('runs in the broker every log.verify.interval.ms, on the broker pool, until shutdown', async () => {
    const { broker, stop } = await startInProcessBroker({ verifyIntervalMs: 20, workerThreads: 1 });
    cleanups.push(stop);
    await vi.waitFor(() => expect(broker.verificationCounters()!.rounds).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
  });

  it('refuses an interval that is neither -1 nor positive', () => {
    const { pool } = makePool(1);
    expect(() => new VerificationScheduler({ partitions: () => [], workers: pool, intervalMs: 0, logger: new MemoryLogger() })).toThrow('verification interval must be -1 (never) or a positive integer of ms, got 0');
  });
});

// ---------------------------------------------------------------------------------------------
// Recovery

const RECOVERY_CONFIG = resolveLogConfig({ segmentBytes: 1500, indexIntervalBytes: 120, fileDeleteDelayMs: 0 });

interface TornDataDir {
  dataDir: string;
  partitions: number;
}

/**
 * A data directory of several partitions after a crash: no clean-shutdown marker, recovery points
 * at 0 (so every segment is scanned), and each partition damaged differently: a torn last batch,
 * garbage after the last batch, a flipped byte in a middle segment (later segments must go), and
 * one left intact.
 */
async function tornDataDir(): Promise<TornDataDir> {
  const dataDir = join(await scratch(), 'data');
  const manager = await LogManager.open({ dataDir, logger: new MemoryLogger(), configFor: () => RECOVERY_CONFIG });
  const partitions = 4;
  const random = new SeededRandom(6);
  for (let partition = 0; partition < partitions; partition++) {
    const log = await manager.getOrCreateLog('events', partition);
    for (let i = 0; i < 40 + partition * 5; i++) await log.append(labelledBatch(`p${partition}-${i}`, 1 + random.int(0, 3), 1_000 + i * 7, { valueBytes: random.int(10, 80) }));
  }
  await manager.close();
  await rm(join(dataDir, CLEAN_SHUTDOWN_FILE));
  await writeCheckpoint(
    join(dataDir, RECOVERY_POINT_CHECKPOINT),
    Array.from({ length: partitions }, (_, partition) => ['events', partition, 0]),
  );
  const logsOf = async (partition: number): Promise<string[]> => {
    const dir = join(dataDir, `events-${partition}`);
    return (await readdir(dir)).filter((name) => name.endsWith(LOG_SUFFIX)).sort().map((name) => join(dir, name));
  };
  const torn = (await logsOf(0)).at(-1)!;
  await truncate(torn, (await stat(torn)).size - 17);
  const garbage = (await logsOf(1)).at(-1)!;
  await writeFile(garbage, Buffer.concat([await readFile(garbage), random.bytes(300)]));
  const middle = (await logsOf(2))[2]!;
  const batch = (await batchesOf(middle))[1]!;
  await flipByte(middle, batch.position + RECORDS_OFFSET + 2);
  return { dataDir, partitions };
}

/**
 * Every file of a data directory but the lock, by relative path, with its bytes; the rows of
 * checkpoint files sorted (logs opened in parallel list them in another order).
 */
async function filesOf(dataDir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dataDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === '.lock') continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path);
    files.set(path.slice(dataDir.length), entry.name.endsWith('-checkpoint') ? bytes.toString('utf8').split('\n').sort().join('\n') : bytes.toString('base64'));
  }
  return files;
}

/** The recovery lines of a logger, with the data directory taken out of paths, in a stable order. */
function recoveryLines(logger: MemoryLogger, dataDir: string): string[] {
  return logger.lines
    .filter((line) => line.message.startsWith('recover'))
    .map((line) => `${line.level} ${line.message} ${JSON.stringify(line.fields)}`.replaceAll(dataDir, '<data>'))
    .sort();
}

describe('recovery scans on the worker pool', () => {
  it('recovers several torn partitions in parallel with exactly the truncations, records and index files of the in-thread path', async () => {
    const { dataDir, partitions } = await tornDataDir();
    const inThreadDir = `${dataDir}-in-thread`;
    const pooledDir = `${dataDir}-pooled`;
    await cp(dataDir, inThreadDir, { recursive: true });
    await cp(dataDir, pooledDir, { recursive: true });

    const inThreadLogger = new MemoryLogger();
    const inThread = await LogManager.open({ dataDir: inThreadDir, logger: inThreadLogger, configFor: () => RECOVERY_CONFIG });
    const { pool } = makePool(2);
    // Counts the recovery tasks in flight at once: two partitions at a time on two threads.
    const run = pool.run.bind(pool);
    let inFlight = 0;
    let peakInFlight = 0;
    vi.spyOn(pool, 'run').mockImplementation(async (...args: Parameters<typeof run>) => {
      peakInFlight = Math.max(peakInFlight, ++inFlight);
      try {
        return await run(...args);
      } finally {
        inFlight--;
      }
    });
    const pooledLogger = new MemoryLogger();
    const pooled = await LogManager.open({ dataDir: pooledDir, logger: pooledLogger, configFor: () => RECOVERY_CONFIG, workers: pool });

    let segmentsScanned = 0;
    for (let partition = 0; partition < partitions; partition++) {
      const expected = inThread.getLog('events', partition)!;
      const actual = pooled.getLog('events', partition)!;
      expect(actual.recovery, `partition ${partition}`).toEqual(expected.recovery);
      expect(actual.logEndOffset).toBe(expected.logEndOffset);
      expect(actual.segmentBaseOffsets()).toEqual(expected.segmentBaseOffsets());
      expect(await readAll(actual)).toEqual(await readAll(expected));
      segmentsScanned += actual.recovery!.segmentsScanned;
    }
    // The damage was found where it was made, and the intact partition lost nothing.
    const truncated = [0, 1, 2, 3].map((partition) => pooled.getLog('events', partition)!.recovery!.truncatedBytes > 0);
    expect(truncated).toEqual([true, true, true, false]);
    expect(pooled.getLog('events', 2)!.recovery!.droppedOffsets).not.toBeNull();
    expect(recoveryLines(pooledLogger, pooledDir)).toEqual(recoveryLines(inThreadLogger, inThreadDir));
    // Every segment scan ran on the pool, those of two partitions at a time.
    expect(pool.counters()).toMatchObject({ completed: segmentsScanned, failed: 0 });
    expect(peakInFlight).toBe(2);

    await inThread.close();
    await pooled.close();
    const expectedFiles = await filesOf(inThreadDir);
    const actualFiles = await filesOf(pooledDir);
    expect([...actualFiles.keys()].sort()).toEqual([...expectedFiles.keys()].sort());
    for (const [path, content] of expectedFiles) expect(actualFiles.get(path), path).toBe(content);
  });

  it('a recovery task that throws fails the open with a clear error, and the log is never served or marked clean', async () => {
    const dataDir = join(await scratch(), 'data');
    const first = await LogManager.open({ dataDir, logger: new MemoryLogger(), configFor: () => RECOVERY_CONFIG });
    const good = await first.getOrCreateLog('events', 0);
    await good.append(labelledBatch('good', 3, 1_000));
    await first.getOrCreateLog('events', 1);
    await first.close();
    await rm(join(dataDir, CLEAN_SHUTDOWN_FILE));
    // A segment .log that cannot be scanned: the task's read throws (EISDIR) on the thread.
    const broken = join(dataDir, 'events-1', segmentFileName(0, LOG_SUFFIX));
    await rm(broken);
    await mkdir(broken);

    const { pool, logger: poolLogger } = makePool(2);
    const logger = new MemoryLogger();
    const attempt = LogManager.open({ dataDir, logger, configFor: () => RECOVERY_CONFIG, workers: pool });
    await expect(attempt).rejects.toBeInstanceOf(StorageError);
    await expect(attempt).rejects.toThrow(`recovery of ${broken} failed, so its log was not opened: recover ${broken} failed: EISDIR`);
    expect(logger.lines).toContainEqual({ level: 'error', message: 'recovery scan failed; the log is not opened', fields: { file: broken, error: expect.stringContaining('EISDIR') as unknown } });
    // Not retried: a second attempt after a first one's cut could not tell what was lost.
    expect(poolLogger.lines.filter((line) => line.message === 'worker task failed; retrying')).toEqual([]);
    expect(pool.counters()).toMatchObject({ failed: 1, retried: 0 });

    // The broker's way in: the manager opens, the log does not, and close() leaves no clean-shutdown marker.
    const manager = await LogManager.open({ dataDir, logger: new MemoryLogger(), configFor: () => RECOVERY_CONFIG, workers: pool, openExistingLogs: false });
    await expect(manager.openLogs([{ topic: 'events', partition: 0 }, { topic: 'events', partition: 1 }])).rejects.toBeInstanceOf(StorageError);
    expect(manager.getLog('events', 1)).toBeUndefined();
    expect(await readAll(manager.getLog('events', 0)!)).toHaveLength(1);
    await manager.close();
    await expect(stat(join(dataDir, CLEAN_SHUTDOWN_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
    // Without a pool, the same function fails the same way on this thread.
    await expect(LogManager.open({ dataDir, logger: new MemoryLogger(), configFor: () => RECOVERY_CONFIG })).rejects.toThrow(/^recovery of .* failed, so its log was not opened: EISDIR/);
  });
});
