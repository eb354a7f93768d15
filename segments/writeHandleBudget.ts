// How many segments may hold a write handle at once, across every log of a data directory.
// 10,000 partitions must not need 10,000 descriptors while most are idle: a segment opens its
// write handle when it next writes or syncs, and an idle one, chosen at random, closes when a new
// one needs the room. Random, not least recently used: producers often write partitions in turn,
// and with one partition more than the budget LRU closes exactly the handle needed next, every
// time (10,001 partitions on 10,000 handles reopened a file on every write); random choice misses
// about as often as the budget is short.
// Closing loses nothing: written bytes are in the page cache, and fdatasync through a handle
// opened later syncs the file's data all the same.

/** What the budget needs of a segment that holds a write handle. */
export interface WriteHandleHolder {
  /** Operations using the handle right now: a busy holder is never asked to close. */
  readonly writeHandleBusy: boolean;
  /** Closes the handle; called only when not busy, and the holder reopens on its next use. */
  closeIdleWriteHandle(): Promise<void>;
}

export class WriteHandleBudgetFullError extends Error {
  override readonly name = 'WriteHandleBudgetFullError';
}

export class WriteHandleBudget {
  /** Holders with an open handle, in no order; `slots` gives each one's index, for O(1) removal. */
  private readonly holders: WriteHandleHolder[] = [];
  private readonly slots = new Map<WriteHandleHolder, number>();
  /** Handles being opened or closed: counted, so real descriptors never pass the limit. */
  private inTransition = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly maxOpenHandles: number,
    readonly maxWaiters = 100_000,
    private readonly random: () => number = Math.random,
  ) {
    if (!Number.isInteger(maxOpenHandles) || maxOpenHandles < 1) throw new RangeError(`maxOpenHandles must be a positive integer, got ${maxOpenHandles}`);
  }

  /** Write handles open right now (including those opening or closing). */
  get openHandles(): number {
    return this.holders.length + this.inTransition;
  }

  /**
   * Opens a write handle for `holder` with `openHandle`, closing an idle one first when the budget
   * is spent; waits (bounded) when every holder is busy.
   */
  async open<T>(holder: WriteHandleHolder, openHandle: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.openHandles < this.maxOpenHandles) break;
      const victim = this.randomIdle();
      if (victim !== undefined) {
        this.remove(victim);
        this.inTransition++;
        try {
          await victim.closeIdleWriteHandle();
        } finally {
          this.inTransition--;
        }
        continue;
      }
      if (this.waiters.length >= this.maxWaiters) {
        throw new WriteHandleBudgetFullError(`all ${this.maxOpenHandles} segment write handles are in use and ${this.waiters.length} writers wait`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.inTransition++;
    let handle: T;
    try {
      handle = await openHandle();
    } finally {
      this.inTransition--;
      // Whether it opened (an idle holder a waiter may close) or failed (room): a waiter may go on.
      this.wakeOne();
    }
    this.slots.set(holder, this.holders.length);
    this.holders.push(holder);
    return handle;
  }

  /** The holder closed its handle (or is about to): it no longer counts. */
  closed(holder: WriteHandleHolder): void {
    if (this.remove(holder)) this.wakeOne();
  }

  /** A busy holder became idle: a waiter may now close it. */
  idle(): void {
    if (this.waiters.length > 0) this.wakeOne();
  }

  /** An idle holder from a random start, probing on past busy ones; undefined when all are busy. */
  private randomIdle(): WriteHandleHolder | undefined {
    const count = this.holders.length;
    const start = Math.floor(this.random() * count);
    for (let i = 0; i < count; i++) {
      const holder = this.holders[(start + i) % count]!;
      if (!holder.writeHandleBusy) return holder;
    }
    return undefined;
  }

  private remove(holder: WriteHandleHolder): boolean {
    const slot = this.slots.get(holder);
    if (slot === undefined) return false;
    // The last holder takes the removed one's slot.
    const last = this.holders.pop()!;
    if (last !== holder) {
      this.holders[slot] = last;
      this.slots.set(last, slot);
    }
    this.slots.delete(holder);
    return true;
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }
}
