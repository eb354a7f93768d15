// One timer for many callbacks (engine/scheduler.ts SharedTimerScheduler): the partition logs of a
// data directory share it for their periodic flushes and delayed deletions (issue 18).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SharedTimerScheduler } from '../engine/scheduler.js';
import { waitFor } from './support/waitFor.js';


let scheduler: SharedTimerScheduler | null = null;
afterEach(() => {
  scheduler = null;
  vi.restoreAllMocks();
});

describe('SharedTimerScheduler', () => {
  it('runs callbacks in due-time order (ties in scheduling order) on one real timer, whatever their number', async () => {
    let now = 1_000;
    scheduler = new SharedTimerScheduler(() => now);
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const ran: string[] = [];
    scheduler.schedule(1_001, () => ran.push('a'));
    scheduler.schedule(1_002, () => ran.push('b'));
    for (let i = 0; i < 1_000; i++) scheduler.schedule(1_020 + (i % 10), () => ran.push(`late-${i}`));
    scheduler.schedule(1_002, () => ran.push('c'));
    // One timer for all of them: none is due before the first.
    expect(timers).toHaveBeenCalledTimes(1);
    expect(scheduler.pendingCount).toBe(1_003);
    timers.mockRestore();

    now = 1_002;
    await waitFor(() => ran.length, { until: (count) => count === 3, timeoutMs: 5_000, intervalMs: 5, what: 'the three due callbacks' });
    expect(ran).toEqual(['a', 'b', 'c']);

    now = 1_100;
    await waitFor(() => ran.length, { until: (count) => count === 1_003, timeoutMs: 5_000, intervalMs: 5, what: 'the late callbacks' });
    // Due times 1,020..1,029, each due time in scheduling order.
    const late = ran.slice(3).map((name) => Number(name.slice('late-'.length)));
    expect(late).toEqual([...late].sort((a, b) => (a % 10) - (b % 10) || a - b));
    expect(scheduler.pendingCount).toBe(0);
  });

  it('never runs a cancelled callback, and clears its timer once nothing is pending', async () => {
    let now = 0;
    scheduler = new SharedTimerScheduler(() => now);
    const ran: number[] = [];
    const cancels = Array.from({ length: 200 }, (_, i) => scheduler!.schedule(10 + i, () => ran.push(i)));
    for (let i = 0; i < 200; i += 2) cancels[i]!();
    expect(scheduler.pendingCount).toBe(100);
    now = 1_000;
    await waitFor(() => ran.length, { until: (count) => count === 100, timeoutMs: 5_000, intervalMs: 5, what: 'the callbacks left' });
    expect(ran.every((i) => i % 2 === 1)).toBe(true);
    const clears = vi.spyOn(globalThis, 'clearTimeout');
    const cancel = scheduler.schedule(5_000, () => ran.push(-1));
    cancel();
    expect(clears).toHaveBeenCalledTimes(1);
    expect(scheduler.pendingCount).toBe(0);
  });

  it('re-arms for a callback due before the one its timer waits for', async () => {
    scheduler = new SharedTimerScheduler();
    const ran: string[] = [];
    scheduler.schedule(Date.now() + 60_000, () => ran.push('late'));
    scheduler.schedule(Date.now() + 1, () => ran.push('soon'));
    await waitFor(() => ran, { until: (names) => names.length > 0, timeoutMs: 5_000, intervalMs: 5, what: 'the callback due soon' });
    expect(ran).toEqual(['soon']);
    expect(scheduler.pendingCount).toBe(1);
  });
});
