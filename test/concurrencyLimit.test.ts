// ConcurrencyLimit (engine/log/concurrencyLimit.ts): never more jobs at once than the limit, the
// waiting ones in the order they came, and a failed job frees its slot.
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../engine/log/concurrencyLimit.js';

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` jobs at once, starts the waiting ones in order, and frees the slot of a job that failed', async () => {
    const limit = new ConcurrencyLimit(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const releases: Array<() => void> = [];
    const job = (id: number, fail = false) =>
      limit.run(async () => {
        started.push(id);
        peak = Math.max(peak, ++running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        if (fail) throw new Error(`job ${id} failed`);
        return id;
      });
    const jobs = [job(0, true), job(1), job(2), job(3)];
    const firstOutcome = jobs[0]!.then(() => 'resolved', (error: Error) => error.message);
    const settle = async (): Promise<void> => {
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    };
    await settle();
    expect(started).toEqual([0, 1]);
    releases.shift()!(); // job 0 fails: its slot goes to job 2
    await settle();
    expect(started).toEqual([0, 1, 2]);
    while (releases.length > 0 || started.length < 4) {
      releases.shift()?.();
      await settle();
    }
    expect(await firstOutcome).toBe('job 0 failed');
    expect(await Promise.all(jobs.slice(1))).toEqual([1, 2, 3]);
    expect(started).toEqual([0, 1, 2, 3]);
    expect(peak).toBe(2);
    expect(() => new ConcurrencyLimit(0)).toThrow('positive integer');
  });
});
