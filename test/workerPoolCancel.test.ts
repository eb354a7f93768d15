// Cancelling pool tasks without terminating threads that may be doing I/O: Node aborts the whole
// process when a worker is terminated while one of its file operations resolves, or while it is
// still loading its modules (issue 11: "Worker exited unexpectedly" under the full suite). A task
// not yet claimed is dropped by the thread that picks it up; a running one is signalled; only a
// thread deaf to its signal past the grace is terminated, and a new one replaces it.
// Threads load dist/engine/workers/worker.js: run `npm run build` first (npm test does).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryLogger } from '../engine/logger.js';
import runTask from '../engine/workers/worker.js';
import {
  TASK_CONTROL_LENGTH,
  TASK_CONTROL_STATE,
  TASK_DROPPED,
  TASK_RUNNING,
  WorkerPool,
  WorkerTaskCancelledError,
  WorkerTaskTimeoutError,
} from '../engine/workers/workerPool.js';
import { runScanRange } from '../engine/workers/tasks/scanRange.js';
import { temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  // Every cleanup runs even when one fails, so no pool outlives its test.
  const results = await Promise.allSettled(cleanups.splice(0).reverse().map((cleanup) => cleanup()));
  const failure = results.find((result) => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
});

function makePool(options: Partial<ConstructorParameters<typeof WorkerPool>[0]> = {}): { pool: WorkerPool; logger: MemoryLogger } {
  const logger = new MemoryLogger();
  const pool = new WorkerPool({ threads: 1, logger, ...options });
  cleanups.push(() => pool.close());
  return { pool, logger };
}

const TERMINATION_WARNING = 'worker task ignored its cancel; terminating its thread';

describe('cancelling worker tasks', () => {
  it('the thread side: a claimed task gets the cancel from its port; a task cancelled first is never run', async () => {
    const control = new Int32Array(new SharedArrayBuffer(TASK_CONTROL_LENGTH * Int32Array.BYTES_PER_ELEMENT));
    const { port1, port2 } = new MessageChannel();
    cleanups.push(async () => port1.close());
    const sleeping = runTask({ kind: 'diagnostic', input: { action: 'sleep', ms: 60_000 }, control, cancel: port2 });
    expect(Atomics.load(control, TASK_CONTROL_STATE)).toBe(TASK_RUNNING);
    port1.postMessage('cancelled');
    await expect(sleeping).rejects.toThrow('diagnostic task cancelled');

    const dropped = new Int32Array(new SharedArrayBuffer(TASK_CONTROL_LENGTH * Int32Array.BYTES_PER_ELEMENT));
    Atomics.store(dropped, TASK_CONTROL_STATE, TASK_DROPPED);
    const channel = new MessageChannel();
    cleanups.push(async () => channel.port1.close());
    // A minute's sleep that rejects at once: it was never started.
    await expect(runTask({ kind: 'diagnostic', input: { action: 'sleep', ms: 60_000 }, control: dropped, cancel: channel.port2 })).rejects.toThrow('diagnostic task cancelled before it started');
  });

  it('a task cancelled on a thread ends there, and the thread serves the next task', async () => {
    const { pool, logger } = makePool();
    const { threadId } = await pool.run('diagnostic', { action: 'echo' });
    const controller = new AbortController();
    const sleeping = pool.run('diagnostic', { action: 'sleep', ms: 60_000 }, { signal: controller.signal });
    controller.abort();
    await expect(sleeping).rejects.toBeInstanceOf(WorkerTaskCancelledError);
    // The same thread answers: it was never terminated.
    expect((await pool.run('diagnostic', { action: 'echo' })).threadId).toBe(threadId);
    expect(logger.lines.filter((line) => line.message === TERMINATION_WARNING)).toEqual([]);
  });

  it('a task cancelled before a thread claimed it is dropped unrun: the queue empties as soon as the thread is free', async () => {
    const { pool } = makePool();
    const first = pool.run('diagnostic', { action: 'sleep', ms: 200 });
    const controller = new AbortController();
    const queued = pool.run('diagnostic', { action: 'sleep', ms: 60_000 }, { signal: controller.signal });
    expect(pool.counters().queued).toBe(1);
    controller.abort();
    await expect(queued).rejects.toBeInstanceOf(WorkerTaskCancelledError);
    await first;
    // Had the dropped task run, the thread would be asleep for a minute.
    await vi.waitFor(() => expect(pool.counters()).toMatchObject({ running: 0, queued: 0 }), { timeout: 10_000 });
    expect(pool.counters()).toMatchObject({ completed: 1, cancelled: 1 });
  });

  it('a task deaf to its cancel has its thread terminated after the grace, and a new thread serves the tasks queued behind it', async () => {
    const { pool, logger } = makePool({ cancelGraceMs: 300 });
    const { threadId } = await pool.run('diagnostic', { action: 'echo' });
    const hung = pool.run('diagnostic', { action: 'spin', ms: 60_000 }, { timeoutMs: 200 });
    const behind = pool.run('diagnostic', { action: 'echo', payload: 'behind' });
    await expect(hung).rejects.toBeInstanceOf(WorkerTaskTimeoutError);
    const output = await behind;
    expect(output.payload).toBe('behind');
    expect(output.threadId).not.toBe(threadId);
    expect(logger.lines.filter((line) => line.message === TERMINATION_WARNING)).toHaveLength(1);
  });

  it('close() right after the first task is submitted waits for the threads to load, then stops them', async () => {
    const { pool, logger } = makePool({ threads: 2 });
    const tasks = [pool.run('diagnostic', { action: 'sleep', ms: 60_000 }), pool.run('diagnostic', { action: 'echo' })];
    const settled = Promise.allSettled(tasks);
    await pool.close();
    for (const result of await settled) {
      // The echo may have been answered before close(); the sleep never is.
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(WorkerTaskCancelledError);
    }
    expect((await settled)[0]!.status).toBe('rejected');
    expect(logger.lines.filter((line) => line.level !== 'info')).toEqual([]);
  });

  it('closes and reopens pools whose threads are cancelled at every stage of their start, many times over', async () => {
    // The stages, by what has happened rather than by elapsed time: nothing yet (threads not even
    // spawned), one event-loop turn (threads spawned, loading their module), and a task answered
    // (a thread loaded and working, the sleeps running or queued).
    const stages = ['at once', 'one turn', 'a task answered'] as const;
    for (let round = 0; round < 6; round++) {
      const stage = stages[round % stages.length]!;
      const logger = new MemoryLogger();
      const pool = new WorkerPool({ threads: 2, logger });
      const controller = new AbortController();
      const echo = pool.run('diagnostic', { action: 'echo' });
      const tasks = Promise.allSettled([
        echo,
        pool.run('diagnostic', { action: 'sleep', ms: 60_000 }, { signal: controller.signal }),
        pool.run('diagnostic', { action: 'sleep', ms: 60_000 }),
      ]);
      if (stage === 'one turn') await new Promise<void>((resolve) => setImmediate(resolve));
      if (stage === 'a task answered') await echo;
      controller.abort();
      await pool.close();
      await tasks;
      expect(logger.lines.filter((line) => line.level !== 'info')).toEqual([]);
    }
  });
});

describe('the cancel grace option', () => {
  it('is a non-negative integer of ms, refused otherwise with the value', () => {
    for (const cancelGraceMs of [-1, 1.5, Number.NaN]) {
      expect(() => new WorkerPool({ threads: 1, cancelGraceMs, logger: new MemoryLogger() })).toThrow(`worker cancel grace must be a non-negative integer of ms, got ${cancelGraceMs}`);
    }
  });
});

describe('runners stop at their cancel', () => {
  it('scanRange checks its signal before each batch and closes the segment it opened', async () => {
    const dir = await temporaryDirectory('tidelog-cancel-');
    cleanups.push(dir.remove);
    const path = join(dir.path, '00000000000000000000.log');
    await writeFile(path, Buffer.alloc(4096));
    const reason = new Error('scan cancelled');
    const input = {
      segments: [{ path, baseOffset: 0, endPosition: 4096, startPosition: 0, startBatchBaseOffset: 0 }],
      startOffset: 0,
      endOffset: 10,
      filter: { key: null, headerName: null, headerValue: null, fromTimestamp: -1, toTimestamp: -1 },
      maxResultBytes: 1 << 20,
      maxRecords: 100,
      maxScanBytes: 1 << 20,
      maxBatchBytes: 1 << 20,
    };
    await expect(runScanRange(input, AbortSignal.abort(reason))).rejects.toBe(reason);
    // Without a cancel the same input is read (and found corrupt: it is all zeros).
    expect((await runScanRange(input)).problem).toMatchObject({ kind: 'corrupt' });
  });
});
