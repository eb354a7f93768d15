// A bounded set of open read-only file handles for sealed segments, closed least recently used
// first. Thousands of segments must not need thousands of descriptors: a handle is opened on
// demand and pinned only while a read uses it. When every handle is pinned and the limit is
// reached, acquirers wait in a bounded queue instead of opening more.
import { open, type FileHandle } from 'node:fs/promises';

interface Entry {
  path: string;
  handle: Promise<FileHandle>;
  pins: number;
  /** Evicted while pinned (file deleted or renamed): close when the last pin goes. */
  doomed: boolean;
}

export interface PinnedHandle {
  handle: FileHandle;
  release(): void;
}

export class FileHandleCacheFullError extends Error {
  override readonly name = 'FileHandleCacheFullError';
}

export class FileHandleCache {
  /** In least-recently-used order: Map iteration order is insertion order, and a use re-inserts. */
  private readonly entries = new Map<string, Entry>();
  private readonly waiters: Array<() => void> = [];
  private openCount = 0;
  private closed = false;

  constructor(
    readonly maxOpenHandles: number,
    readonly maxWaiters = 10_000,
  ) {
    if (!Number.isInteger(maxOpenHandles) || maxOpenHandles < 1) throw new RangeError(`maxOpenHandles must be a positive integer, got ${maxOpenHandles}`);
  }

  /** Handles open right now (including those still opening). */
  get openHandles(): number {
    return this.openCount;
  }

  async acquire(path: string): Promise<PinnedHandle> {
    for (;;) {
      if (this.closed) throw new Error('file handle cache is closed');
      const existing = this.entries.get(path);
      if (existing !== undefined && !existing.doomed) {
        existing.pins++;
        this.entries.delete(path);
        this.entries.set(path, existing);
        return this.pinned(existing);
      }
      if (this.openCount < this.maxOpenHandles) {
        const entry: Entry = { path, handle: open(path, 'r'), pins: 1, doomed: false };
        this.openCount++;
        this.entries.set(path, entry);
        return this.pinned(entry);
      }
      const victim = this.leastRecentlyUsedUnpinned();
      if (victim !== undefined) {
        // Wait for the close so the number of real descriptors never exceeds the limit.
        this.entries.delete(victim.path);
        await this.closeEntry(victim);
        continue;
      }
      if (this.waiters.length >= this.maxWaiters) {
        throw new FileHandleCacheFullError(`all ${this.maxOpenHandles} segment file handles are in use and ${this.waiters.length} reads wait`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Closes the handle of `path` now, or when its last user releases it. */
  evict(path: string): void {
    const entry = this.entries.get(path);
    if (entry === undefined) return;
    this.entries.delete(path);
    // Fire-and-forget, as in release(): closeEntry swallows close errors, so it never rejects.
    if (entry.pins === 0) void this.closeEntry(entry);
    else entry.doomed = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending: Array<Promise<void>> = [];
    for (const entry of this.entries.values()) {
      if (entry.pins === 0) pending.push(this.closeEntry(entry));
      else entry.doomed = true;
    }
    this.entries.clear();
    for (const wake of this.waiters.splice(0)) wake();
    await Promise.all(pending);
  }

  private async pinned(entry: Entry): Promise<PinnedHandle> {
    let handle: FileHandle;
    try {
      handle = await entry.handle;
    } catch (error) {
      // The open failed (file gone, EMFILE): forget the entry so the next acquire retries.
      if (this.entries.get(entry.path) === entry) this.entries.delete(entry.path);
      this.openCount--;
      this.wakeOne();
      throw error;
    }
    let released = false;
    return {
      handle,
      release: () => {
        if (released) return;
        released = true;
        entry.pins--;
        if (entry.pins === 0 && entry.doomed) void this.closeEntry(entry);
        else if (entry.pins === 0) this.wakeOne();
      },
    };
  }

  private leastRecentlyUsedUnpinned(): Entry | undefined {
    for (const entry of this.entries.values()) if (entry.pins === 0) return entry;
    return undefined;
  }

  private closeEntry(entry: Entry): Promise<void> {
    // The descriptor count drops only once close() has returned, so the limit holds for real fds.
    return entry.handle
      .then((handle) => handle.close())
      .catch(() => undefined)
      .finally(() => {
        this.openCount--;
        this.wakeOne();
      });
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }
}
