import { appendFile, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveLogConfig } from '../engine/log/logConfig.js';
import { CLEAN_SHUTDOWN_FILE, DataDirLockedError, LOG_START_OFFSET_CHECKPOINT, LogManager, RECOVERY_POINT_CHECKPOINT } from '../engine/log/logManager.js';
import { LOCK_FILE } from '../engine/log/directoryLock.js';
import { MemoryLogger } from '../engine/logger.js';
import { LOG_SUFFIX, segmentPath } from '../segments/segmentNames.js';
import { labelledBatch, readAll, temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDir(): Promise<string> {
  const dir = await temporaryDirectory();
  cleanups.push(dir.remove);
  return dir.path;
}

describe('LogManager', () => {
  it('writes checkpoints and the clean-shutdown marker on close, and removes the marker on open', async () => {
    const dir = await dataDir();
    const manager = await LogManager.open({ dataDir: dir, logger: new MemoryLogger() });
    const orders = await manager.getOrCreateLog('orders', 0);
    const audit = await manager.getOrCreateLog('audit.events', 3);
    await orders.append(labelledBatch('o', 5, 1000));
    await audit.append(labelledBatch('a', 2, 1000));
    await audit.deleteSegmentsBelow(1);
    await manager.close();

    expect((await readdir(dir)).sort()).toEqual([LOCK_FILE, 'audit.events-3', CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, 'orders-0', RECOVERY_POINT_CHECKPOINT].sort());
    const recovery = (await readFile(join(dir, RECOVERY_POINT_CHECKPOINT), 'utf8')).trim().split('\n');
    expect(recovery.slice(0, 2)).toEqual(['0', '2']);
    expect(recovery.slice(2).sort()).toEqual(['audit.events 3 2', 'orders 0 5']);
    expect((await readFile(join(dir, LOG_START_OFFSET_CHECKPOINT), 'utf8')).split('\n')).toContain('audit.events 3 1');

    const reopened = await LogManager.open({ dataDir: dir, logger: new MemoryLogger() });
    expect(reopened.openedAfterCleanShutdown).toBe(true);
    expect(await readdir(dir)).not.toContain(CLEAN_SHUTDOWN_FILE);
    expect(reopened.partitions().sort((a, b) => a.topic.localeCompare(b.topic))).toEqual([{ topic: 'audit.events', partition: 3 }, { topic: 'orders', partition: 0 }]);
    expect(reopened.getLog('orders', 0)!.logEndOffset).toBe(5);
    expect(reopened.getLog('audit.events', 3)!.logStartOffset).toBe(1);
    await reopened.close();
  });

  it('recovers every log after a stop without the marker, from each recovery point', async () => {
    const dir = await dataDir();
    const manager = await LogManager.open({ dataDir: dir, logger: new MemoryLogger(), configFor: () => resolveLogConfig({ segmentBytes: 1024 }) });
    const log = await manager.getOrCreateLog('t', 0);
    for (let i = 0; i < 20; i++) await log.append(labelledBatch(`r${i}`, 3, 1000, { valueBytes: 50 }));
    const before = await readAll(log);
    await manager.close();
    await rm(join(dir, CLEAN_SHUTDOWN_FILE));

    const logger = new MemoryLogger();
    const again = await LogManager.open({ dataDir: dir, logger, configFor: () => resolveLogConfig({ segmentBytes: 1024 }) });
    expect(again.openedAfterCleanShutdown).toBe(false);
    const recovered = again.getLog('t', 0)!;
    expect(recovered.recovery).not.toBeNull();
    // The recovery point was the log end at close, so only the last segment needed a scan.
    expect(recovered.recovery!.segmentsScanned).toBe(1);
    expect(await readAll(recovered)).toEqual(before);
    await again.close();
  });

  it('says in one line per start what opening the logs scanned, with a line of its own only for a partition recovery cut', async () => {
    const dir = await dataDir();
    const first = await LogManager.open({ dataDir: dir, logger: new MemoryLogger() });
    for (let partition = 0; partition < 4; partition++) await (await first.getOrCreateLog('many', partition)).append(labelledBatch(`p${partition}`, 3, 1000));
    await first.close();

    const cleanLogger = new MemoryLogger();
    const clean = await LogManager.open({ dataDir: dir, logger: cleanLogger });
    await clean.close();
    const summaries = cleanLogger.lines.filter((line) => line.message === 'opened partition logs');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.fields).toMatchObject({ partitions: 4, scanned: 0, segmentsScanned: 0, bytesScanned: 0, truncated: 0, cleanShutdown: true });
    expect(cleanLogger.lines.filter((line) => line.message === 'recovered partition log')).toEqual([]);

    // An unclean stop with a torn tail in one partition: all four rescanned, one cut, one line for it.
    await rm(join(dir, CLEAN_SHUTDOWN_FILE));
    await rm(join(dir, RECOVERY_POINT_CHECKPOINT));
    await appendFile(segmentPath(join(dir, 'many-2'), 0, LOG_SUFFIX), Buffer.from('torn tail'));
    const uncleanLogger = new MemoryLogger();
    const unclean = await LogManager.open({ dataDir: dir, logger: uncleanLogger });
    await unclean.close();
    const summary = uncleanLogger.lines.find((line) => line.message === 'opened partition logs')!;
    expect(summary.fields).toMatchObject({ partitions: 4, scanned: 4, segmentsScanned: 4, truncated: 1, cleanShutdown: false });
    const perPartition = uncleanLogger.lines.filter((line) => line.message === 'recovered partition log');
    expect(perPartition).toHaveLength(1);
    expect(perPartition[0]!.fields).toMatchObject({ dir: join(dir, 'many-2'), truncatedBytes: 9 });
  });

  it('creates the logs of many new partitions in one call (an open one left alone) with one line, and reopens them all after a clean stop', async () => {
    const dir = await dataDir();
    const logger = new MemoryLogger();
    const manager = await LogManager.open({ dataDir: dir, logger });
    const existing = await manager.getOrCreateLog('wide', 7);
    await existing.append(labelledBatch('kept', 2, 1000));
    await manager.createLogs('wide', Array.from({ length: 100 }, (_, partition) => partition));
    expect(manager.partitions().filter(({ topic }) => topic === 'wide')).toHaveLength(100);
    // The log open before was left as it was, not opened again.
    expect(manager.getLog('wide', 7)).toBe(existing);
    expect(logger.lines.filter((line) => line.message === 'created partition logs').map((line) => line.fields)).toEqual([{ topic: 'wide', partitions: 99 }]);
    await manager.close();

    expect((await readdir(dir)).filter((name) => name.startsWith('wide-'))).toHaveLength(100);
    const reopened = await LogManager.open({ dataDir: dir, logger: new MemoryLogger() });
    expect(reopened.openedAfterCleanShutdown).toBe(true);
    expect(reopened.partitions()).toHaveLength(100);
    expect(reopened.getLog('wide', 7)!.logEndOffset).toBe(2);
    await reopened.close();
  });

  it('refuses a data directory it already holds, and frees it at close (other processes: test/directoryLock.test.ts)', async () => {
    const dir = await dataDir();
    const manager = await LogManager.open({ dataDir: dir, logger: new MemoryLogger() });
    await expect(LogManager.open({ dataDir: dir, logger: new MemoryLogger() })).rejects.toBeInstanceOf(DataDirLockedError);
    await manager.close();
    const taken = await LogManager.open({ dataDir: dir, logger: new MemoryLogger() });
    await taken.close();
  });
});
