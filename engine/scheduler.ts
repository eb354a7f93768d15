// Time comes through this interface, so state machines never touch a real timer: the group
// coordinator uses `TimerScheduler` (setTimeout, unref'd), the partition logs of a data directory
// share one `SharedTimerScheduler` (one timer for all their periodic flushes and delayed file
// deletions, not one per partition), and tests drive `ManualScheduler` by hand, so every
// rebalance, session expiry and delayed join becomes a deterministic step.

import { MAX_TIMER_DELAY_MS } from '../common/limits.js';

/** Cancels a scheduled callback; calling it after the callback ran, or twice, does nothing. */
export type Cancel = () => void;

export interface Scheduler {
  /** Milliseconds on the scheduler's clock (wall-clock for `TimerScheduler`). */
  nowMs(): number;
  /** Runs `callback` once `nowMs()` has reached `atMs` (at once, asynchronously, if already past). */
  schedule(atMs: number, callback: () => void): Cancel;
}

function checkDueTime(atMs: number): void {
  if (!Number.isFinite(atMs)) throw new Error(`scheduler: due time must be a finite number of milliseconds, got ${atMs}`);
}

/** Real timers. Timers are unref'd: pending group timeouts never keep a process alive. */
export class TimerScheduler implements Scheduler {
  constructor(private readonly clock: () => number = Date.now) {}

  nowMs(): number {
    return this.clock();
  }

  schedule(atMs: number, callback: () => void): Cancel {
    checkDueTime(atMs);
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = (): void => {
      const delayMs = Math.max(0, atMs - this.clock());
      timer = setTimeout(
        () => {
          timer = undefined;
          if (cancelled) return;
          if (this.clock() < atMs && delayMs >= MAX_TIMER_DELAY_MS) arm();
          else callback();
        },
        Math.min(delayMs, MAX_TIMER_DELAY_MS),
      );
      timer.unref();
    };
    arm();
    return () => {
      cancelled = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
  }
}

interface SharedTask {
  atMs: number;
  sequence: number;
  callback: () => void;
  cancelled: boolean;
}

/**
 * Many callbacks on one real timer: a binary heap by due time (ties in scheduling order), the
 * timer armed (unref'd) for the earliest. 10,000 partitions with a flush interval cost one timer,
 * not 10,000. Cancelled callbacks leave the heap lazily; it is rebuilt when they outnumber the live.
 */
export class SharedTimerScheduler implements Scheduler {
  private readonly heap: SharedTask[] = [];
  private nextSequence = 0;
  private cancelledInHeap = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedForMs = Number.POSITIVE_INFINITY;

  constructor(private readonly clock: () => number = Date.now) {}

  nowMs(): number {
    return this.clock();
  }

  /** Callbacks scheduled and not yet run or cancelled. */
  get pendingCount(): number {
    return this.heap.length - this.cancelledInHeap;
  }

  schedule(atMs: number, callback: () => void): Cancel {
    checkDueTime(atMs);
    const task: SharedTask = { atMs, sequence: this.nextSequence++, callback, cancelled: false };
    this.push(task);
    if (atMs < this.armedForMs) this.arm();
    return () => {
      if (task.cancelled) return;
      task.cancelled = true;
      this.cancelledInHeap++;
      if (this.cancelledInHeap > 64 && this.cancelledInHeap * 2 > this.heap.length) this.compact();
      if (this.pendingCount === 0) this.disarm();
    };
  }

  private arm(): void {
    this.disarm();
    const first = this.heap[0];
    if (first === undefined) return;
    this.armedForMs = first.atMs;
    this.timer = setTimeout(() => this.runDue(), Math.min(Math.max(0, first.atMs - this.clock()), MAX_TIMER_DELAY_MS));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedForMs = Number.POSITIVE_INFINITY;
  }

  private runDue(): void {
    this.timer = undefined;
    this.armedForMs = Number.POSITIVE_INFINITY;
    try {
      const now = this.clock();
      for (let first = this.heap[0]; first !== undefined && first.atMs <= now; first = this.heap[0]) {
        this.pop();
        if (first.cancelled) {
          this.cancelledInHeap--;
          continue;
        }
        first.cancelled = true; // a cancel after the run does nothing
        first.callback();
      }
    } finally {
      // Re-armed even if a callback threw, so one bad callback does not stop the others.
      this.arm();
    }
  }

  private compact(): void {
    const live = this.heap.filter((task) => !task.cancelled);
    this.heap.length = 0;
    this.cancelledInHeap = 0;
    for (const task of live) this.push(task);
  }

  private static before(a: SharedTask, b: SharedTask): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.sequence < b.sequence);
  }

  private push(task: SharedTask): void {
    const heap = this.heap;
    let index = heap.push(task) - 1;
    while (index > 0) {
      const parent = (index - 1) >>> 1;
      if (!SharedTimerScheduler.before(task, heap[parent]!)) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = task;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && SharedTimerScheduler.before(heap[right]!, heap[left]!) ? right : left;
      if (!SharedTimerScheduler.before(heap[child]!, last)) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
  }
}

interface ManualTask {
  atMs: number;
  /** Order of scheduling; breaks ties between callbacks due at the same millisecond. */
  sequence: number;
  callback: () => void;
  cancelled: boolean;
}

/** Callbacks one `advanceTo` may run before it decides a callback keeps rescheduling itself. */
export const MANUAL_SCHEDULER_MAX_CALLBACKS_PER_ADVANCE = 1_000_000;

/**
 * A scheduler whose clock only moves when a test moves it. `advanceTo`/`advanceBy` run every
 * callback that falls due, in due-time order (ties in scheduling order), with `nowMs()` equal to the
 * callback's due time while it runs; callbacks scheduled by callbacks run in the same advance if
 * they fall due within it.
 */
export class ManualScheduler implements Scheduler {
  private currentMs: number;
  private nextSequence = 0;
  /** Kept sorted by (atMs, sequence). */
  private readonly tasks: ManualTask[] = [];

  constructor(startMs = 0) {
    checkDueTime(startMs);
    this.currentMs = startMs;
  }

  nowMs(): number {
    return this.currentMs;
  }

  schedule(atMs: number, callback: () => void): Cancel {
    checkDueTime(atMs);
    const task: ManualTask = { atMs, sequence: this.nextSequence++, callback, cancelled: false };
    // Binary search for the first task due strictly later; equal times keep scheduling order.
    let low = 0;
    let high = this.tasks.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.tasks[middle]!.atMs <= atMs) low = middle + 1;
      else high = middle;
    }
    this.tasks.splice(low, 0, task);
    return () => {
      if (task.cancelled) return;
      task.cancelled = true;
      const index = this.tasks.indexOf(task);
      if (index >= 0) this.tasks.splice(index, 1);
    };
  }

  /** Moves the clock to `targetMs` (never backwards) running due callbacks; returns how many ran. */
  advanceTo(targetMs: number): number {
    checkDueTime(targetMs);
    if (targetMs < this.currentMs) throw new Error(`ManualScheduler: cannot move back from ${this.currentMs} to ${targetMs}`);
    let ran = 0;
    for (;;) {
      const next = this.tasks[0];
      if (next === undefined || next.atMs > targetMs) break;
      if (ran >= MANUAL_SCHEDULER_MAX_CALLBACKS_PER_ADVANCE) {
        throw new Error(`ManualScheduler: more than ${MANUAL_SCHEDULER_MAX_CALLBACKS_PER_ADVANCE} callbacks in one advance (a callback rescheduling itself without moving time?)`);
      }
      this.tasks.shift();
      next.cancelled = true;
      // A callback scheduled for a time already past runs now; the clock never goes backwards.
      this.currentMs = Math.max(this.currentMs, next.atMs);
      ran++;
      next.callback();
    }
    this.currentMs = targetMs;
    return ran;
  }

  advanceBy(deltaMs: number): number {
    if (!(deltaMs >= 0)) throw new Error(`ManualScheduler: advanceBy needs a delta >= 0, got ${deltaMs}`);
    return this.advanceTo(this.currentMs + deltaMs);
  }

  /** Runs the callbacks already due without moving the clock. */
  runDue(): number {
    return this.advanceTo(this.currentMs);
  }

  /** Callbacks scheduled and not yet run or cancelled. */
  pendingCount(): number {
    return this.tasks.length;
  }

  /** Due time of the earliest pending callback, if any. */
  nextDueMs(): number | undefined {
    return this.tasks[0]?.atMs;
  }
}
