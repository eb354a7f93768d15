import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyPartitionDir } from '../cli/verifyPartition.js';
import { LogManager } from '../engine/log/logManager.js';
import { resolveLogConfig } from '../engine/log/logConfig.js';
import { MemoryLogger } from '../engine/logger.js';
import { CorruptBatchError } from '../segments/logSegment.js';
import { decodeRecords, encodeBatch, readBatchHeader } from '../segments/recordBatch.js';
import { segmentFileName } from '../segments/segmentNames.js';
import { SeededRandom } from './support/random.js';
import { labelledBatch, openTestLog, readAll, splitBatches, temporaryDirectory, testResources } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scratch(): Promise<string> {
  const dir = await temporaryDirectory();
  cleanups.push(dir.remove);
  return dir.path;
}

async function copyDirectory(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of await readdir(from)) await copyFile(join(from, name), join(to, name));
}

/** A closed log of `count` small batches in one segment; returns its dir and the stored batches. */
async function pristineLog(count: number, overrides: Parameters<typeof openTestLog>[1] = {}): Promise<{ dir: string; batches: Buffer[] }> {
  const dir = join(await scratch(), 'pristine');
  const { log } = await openTestLog(dir, overrides);
  for (let i = 0; i < count; i++) await log.append(labelledBatch(`p${i}`, 2 + (i % 3), 1_000 + i * 10, { valueBytes: 20 }));
  const batches = await readAll(log);
  await log.close();
  return { dir, batches };
}

describe('recovery of a torn tail', () => {
  it('cut at every byte position of the last batch recovers to the last whole batch and accepts appends', async () => {
    const { dir, batches } = await pristineLog(4);
    const logFile = segmentFileName(0, '.log');
    const total = batches.reduce((sum, b) => sum + b.length, 0);
    const lastStart = total - batches[3]!.length;
    const lastBase = readBatchHeader(batches[3]!).baseOffset;
    for (let cut = lastStart; cut < total; cut++) {
      const copy = join(await scratch(), `cut-${cut}`);
      await copyDirectory(dir, copy);
      await truncate(join(copy, logFile), cut);
      const { log, logger } = await openTestLog(copy, {}, { cleanShutdown: false, recoveryPoint: 0 });
      expect(log.logEndOffset, `cut at ${cut}`).toBe(lastBase);
      expect(await readAll(log)).toEqual(batches.slice(0, 3));
      if (cut > lastStart) {
        const line = logger.lines.find((l) => l.message === 'recovery truncated a torn or corrupt log tail');
        expect(line?.fields).toMatchObject({ droppedBytes: cut - lastStart, droppedFromOffset: lastBase, position: lastStart });
      }
      const appended = await log.append(labelledBatch('after', 2, 9_999));
      expect(appended.baseOffset).toBe(lastBase);
      expect(decodeRecords((await readAll(log)).at(-1)!).map((r) => r.value!.toString())).toEqual(['after-0', 'after-1']);
      await log.close();
    }
  });

  it('drops garbage and zero-filled bytes after the last whole batch, and later segments after a torn one', async () => {
    const { dir, batches } = await pristineLog(3);
    for (const tail of [Buffer.alloc(4096), new SeededRandom(5).bytes(777)]) {
      const copy = join(await scratch(), 'garbage');
      await copyDirectory(dir, copy);
      const handle = await open(join(copy, segmentFileName(0, '.log')), 'a');
      await handle.write(tail);
      await handle.close();
      const { log, logger } = await openTestLog(copy, {}, { cleanShutdown: false, recoveryPoint: 0 });
      expect(await readAll(log)).toEqual(batches);
      expect(log.recovery?.truncatedBytes).toBe(tail.length);
      expect(logger.lines.some((l) => l.level === 'warn' && l.fields['droppedBytes'] === tail.length)).toBe(true);
      await log.close();
    }
  });

  it('scans only from the segment holding the recovery point', async () => {
    const dir = await scratch();
    const first = await openTestLog(dir, { segmentBytes: 600 });
    for (let i = 0; i < 30; i++) await first.log.append(labelledBatch(`s${i}`, 2, 1000, { valueBytes: 30 }));
    const bases = first.log.segmentBaseOffsets();
    await first.log.close();
    const second = await openTestLog(dir, { segmentBytes: 600 }, { cleanShutdown: false, recoveryPoint: bases[bases.length - 2]! + 1 });
    expect(second.log.recovery?.segmentsScanned).toBe(2);
    expect(second.log.logEndOffset).toBe(60);
    await second.log.close();
  });
});

describe('bit rot', () => {
  for (const indexIntervalBytes of [4096, 0]) {
    it(`a flipped bit anywhere in a batch is caught by verify at its position and never returned by read (index interval ${indexIntervalBytes})`, async () => {
      const { dir, batches } = await pristineLog(3, { indexIntervalBytes });
      const middleStart = batches[0]!.length;
      const middle = readBatchHeader(batches[1]!);
      const random = new SeededRandom(31 + indexIntervalBytes);
      const logFile = segmentFileName(0, '.log');
      const bitsToFlip: Array<{ byte: number; bit: number }> = [];
      for (let byte = 0; byte < batches[1]!.length; byte++) {
        if (byte < 61) for (let bit = 0; bit < 8; bit++) bitsToFlip.push({ byte, bit });
        else bitsToFlip.push({ byte, bit: random.int(0, 7) });
      }
      for (const { byte, bit } of bitsToFlip) {
        const copy = join(await scratch(), `flip-${byte}-${bit}`);
        await copyDirectory(dir, copy);
        const handle = await open(join(copy, logFile), 'r+');
        const one = Buffer.alloc(1);
        await handle.read(one, 0, 1, middleStart + byte);
        one[0]! ^= 1 << bit;
        await handle.write(one, 0, 1, middleStart + byte);
        await handle.close();

        const where = `byte ${byte} bit ${bit}`;
        const report = await verifyPartitionDir(copy);
        expect(report.problems.length, `verify missed ${where}`).toBeGreaterThan(0);
        expect(report.problems[0]).toMatchObject({ file: expect.stringContaining(logFile) as unknown, position: middleStart });
        const { log } = await openTestLog(copy, { indexIntervalBytes }, { cleanShutdown: true });
        for (let offset = 0; offset < log.logEndOffset; offset++) {
          const outcome: Awaited<ReturnType<typeof log.read>> | Error = await log.read(offset, 1 << 20).catch((error: unknown) => error as Error);
          if (outcome instanceof Error) {
            expect(outcome, where).toBeInstanceOf(CorruptBatchError);
            continue;
          }
          // Whatever comes back is byte-identical to a batch that was written, in order.
          for (const batch of splitBatches(outcome.records)) expect(batches.some((b) => b.equals(batch)), where).toBe(true);
          if (offset >= middle.baseOffset && offset <= middle.baseOffset + middle.lastOffsetDelta) {
            expect.fail(`${where}: read of offset ${offset} in the damaged batch returned data instead of an error`);
          }
        }
        await log.close();
      }
    });
  }
});

describe('bounded resources', () => {
  it('reads 5,000 segments with at most the configured number of open segment handles', async () => {
    const dir = await scratch();
    const segments = 5000;
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < segments; i++) {
      const batch = encodeBatch([{ key: null, value: Buffer.from(`segment-${i}`), timestamp: 1000 + i }], { baseOffset: i, partitionLeaderEpoch: 0 });
      writes.push(writeFile(join(dir, segmentFileName(i, '.log')), batch));
      writes.push(writeFile(join(dir, segmentFileName(i, '.index')), Buffer.alloc(0)));
      writes.push(writeFile(join(dir, segmentFileName(i, '.timeindex')), Buffer.alloc(0)));
      if (writes.length >= 300) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await writeFile(join(dir, 'leader-epoch-checkpoint'), '0\n1\n0 0\n');

    const maxOpenHandles = 32;
    const resources = testResources({ maxOpenHandles, indexCacheBytes: 64 * 1024 });
    const openBefore = readdirSync('/proc/self/fd').length;
    const { log } = await openTestLog(dir, {}, { cleanShutdown: true, resources });
    expect(log.segmentCount).toBe(segments);
    let peakDescriptors = 0;
    const random = new SeededRandom(41);
    const offsets = Array.from({ length: segments }, (_, i) => i).sort(() => random.next() - 0.5);
    for (let i = 0; i < offsets.length; i += 200) {
      await Promise.all(offsets.slice(i, i + 200).map(async (offset) => {
        const { records } = await log.read(offset, 1024);
        expect(decodeRecords(records)[0]!.value!.toString()).toBe(`segment-${offset}`);
        peakDescriptors = Math.max(peakDescriptors, readdirSync('/proc/self/fd').length - openBefore);
        expect(resources.handles.openHandles).toBeLessThanOrEqual(maxOpenHandles);
      }));
    }
    // The active segment's write handle and a few transient ones (index loads) come on top.
    expect(peakDescriptors).toBeLessThanOrEqual(maxOpenHandles + 8);
    expect(resources.indexes.loadedBytes).toBeLessThanOrEqual(64 * 1024);
    await log.close();
  });
});

describe('SIGKILL during flush-per-append', () => {
  const child = fileURLToPath(new URL('./support/appendUntilKilled.mjs', import.meta.url));
  const compiled = fileURLToPath(new URL('../dist/engine/log/logManager.js', import.meta.url));

  for (const killAfterAcks of [40, 400]) {
    it(`leaves every acknowledged batch readable after restart (killed after ${killAfterAcks} acks)`, async () => {
      expect(existsSync(compiled), 'dist/ is missing: `npm test` builds it first (npm run build)').toBe(true);
      const dataDir = await scratch();
      const acked = new Map<string, { base: number; last: number; count: number }>();
      const processHandle = spawn(process.execPath, [child, dataDir, '8', '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buffered = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${acked.size} acks within 30 s`)), 30_000);
        processHandle.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const line of lines) {
            const [word, label, base, last, count] = line.split(' ');
            if (word !== 'ack') continue;
            acked.set(label!, { base: Number(base), last: Number(last), count: Number(count) });
          }
          if (acked.size >= killAfterAcks) {
            clearTimeout(timer);
            processHandle.kill('SIGKILL');
            resolve();
          }
        });
        processHandle.on('exit', (code) => {
          if (acked.size < killAfterAcks) reject(new Error(`child exited with ${code} after ${acked.size} acks`));
        });
      });
      await new Promise<void>((resolve) => (processHandle.exitCode !== null || processHandle.signalCode !== null ? resolve() : processHandle.once('exit', () => resolve())));
      expect(processHandle.signalCode).toBe('SIGKILL');

      const logger = new MemoryLogger();
      const manager = await LogManager.open({ dataDir, logger, configFor: () => resolveLogConfig({ segmentBytes: 64 * 1024 }) });
      expect(manager.openedAfterCleanShutdown).toBe(false);
      const log = manager.getLog('killed', 0)!;
      const byOffset = new Map<number, string>();
      for (const batch of await readAll(log)) for (const record of decodeRecords(batch)) byOffset.set(record.offset, record.key!.toString());
      for (const [label, { base, last }] of acked) {
        for (let offset = base; offset <= last; offset++) expect(byOffset.get(offset), `acked ${label} at ${offset}`).toBe(label);
      }
      expect(log.logEndOffset).toBeGreaterThanOrEqual(Math.max(...[...acked.values()].map((a) => a.last + 1)));
      await manager.close();
    });
  }
});

describe('a full disk', () => {
  it('refuses the append that does not fit with a StorageError, keeps every acknowledged batch and accepts appends that fit', async () => {
    const child = fileURLToPath(new URL('./support/diskFullChild.mjs', import.meta.url));
    const dataDir = await scratch();
    // RLIMIT_FSIZE of 64 KiB: writes past it fail with EFBIG, as they fail with ENOSPC on a full disk.
    const output = await new Promise<string>((resolve, reject) => {
      const processHandle = spawn('bash', ['-c', 'ulimit -f 64 && exec "$0" "$1" "$2"', process.execPath, child, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      processHandle.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const timer = setTimeout(() => processHandle.kill('SIGKILL'), 30_000);
      processHandle.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(text);
        else reject(new Error(`child exited with ${code}: ${text}`));
      });
    });
    const report = JSON.parse(output) as { acked: string[]; failure: { name: string; code: number } | null; afterFailure: string[]; appendAfterFailure: string; reopened: string[] };
    expect(report.acked.length).toBeGreaterThan(10);
    expect(report.failure).toMatchObject({ name: 'StorageError', code: 56 });
    expect(report.afterFailure).toEqual(report.acked);
    expect(report.appendAfterFailure).toBe('ok');
    expect(report.reopened).toEqual([...report.acked, 'tiny']);
  });
});
