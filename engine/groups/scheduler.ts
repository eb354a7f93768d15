// Time for the group coordinator comes through this interface, so the state machine never touches a
// real timer: production uses `TimerScheduler` (setTimeout, unref'd), tests drive `ManualScheduler`
// by hand and every rebalance, session expiry and delayed join becomes a deterministic step.

import { MAX_TIMER_DELAY_MS } from '../../common/limits.js';

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
