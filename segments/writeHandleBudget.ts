// How many segments may hold a write handle at once, across every log of a data directory.
// 10,000 partitions must not need 10,000 descriptors while most are idle: a segment opens its
// write handle when it next writes or syncs, and the least recently used idle one closes when a
// new one needs the room (the read-handle cache, fileHandleCache.ts, does the same for reads).
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
  /** Holders with an open handle, least recently used first (a use re-inserts). */
  private readonly holders = new Set<WriteHandleHolder>();
  /** Handles being opened or closed: counted, so real descriptors never pass the limit. */
  private inTransition = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly maxOpenHandles: number,
    readonly maxWaiters = 100_000,
  ) {
    if (!Number.isInteger(maxOpenHandles) || maxOpenHandles < 1) throw new RangeError(`maxOpenHandles must be a positive integer, got ${maxOpenHandles}`);
  }

  /** Write handles open right now (including those opening or closing). */
  get openHandles(): number {
    return this.holders.size + this.inTransition;
  }

  /** Marks a holder's handle as just used. */
  touch(holder: WriteHandleHolder): void {
    if (!this.holders.delete(holder)) return;
    this.holders.add(holder);
  }

  /**
   * Opens a write handle for `holder` with `openHandle`, closing the least recently used idle one
   * first when the budget is spent; waits (bounded) when every holder is busy.
   */
  async open<T>(holder: WriteHandleHolder, openHandle: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.openHandles < this.maxOpenHandles) break;
      const victim = this.leastRecentlyUsedIdle();
      if (victim !== undefined) {
        this.holders.delete(victim);
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
    this.holders.add(holder);
    return handle;
  }

  /** The holder closed its handle (or is about to): it no longer counts. */
  closed(holder: WriteHandleHolder): void {
    if (this.holders.delete(holder)) this.wakeOne();
  }

  /** A busy holder became idle: a waiter may now close it. */
  idle(): void {
    if (this.waiters.length > 0) this.wakeOne();
  }

  private leastRecentlyUsedIdle(): WriteHandleHolder | undefined {
    for (const holder of this.holders) if (!holder.writeHandleBusy) return holder;
    return undefined;
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }
}
