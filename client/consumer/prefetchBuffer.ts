// Between the fetch pipeline and the iterators: the FIFO of fetched chunks (raw, headers walked,
// not yet decoded), the count of the raw bytes they hold (heldBytes, which the pipeline keeps
// below prefetchMaxBytes), the errors for the iterators to throw, and the iterators waiting for
// either.
import type { PartitionState } from './positions.js';

/** One partition's part of a Fetch answer: whole batches from fetchOffset up to nextOffset. */
export interface Chunk {
  state: PartitionState;
  epoch: number;
  fetchOffset: number;
  records: Buffer;
  nextOffset: number;
  bytes: number;
}

export class PrefetchBuffer {
  private readonly chunks: Chunk[] = [];
  /** Errors for the iterator to throw, in order of arrival. */
  private readonly errors: Error[] = [];
  private heldBytesNow = 0;
  private maxHeldBytesSeen = 0;
  private waiters: Array<() => void> = [];

  /** Raw bytes of fetched, not yet consumed data held now. */
  get heldBytes(): number {
    return this.heldBytesNow;
  }

  /** The most heldBytes ever reached (for tests of the prefetch bound). */
  get maxHeldBytes(): number {
    return this.maxHeldBytesSeen;
  }

  push(chunk: Chunk): void {
    this.chunks.push(chunk);
    this.heldBytesNow += chunk.bytes;
    if (this.heldBytesNow > this.maxHeldBytesSeen) this.maxHeldBytesSeen = this.heldBytesNow;
  }

  /** The first error, else the first chunk of an unpaused partition (no longer held), else null. */
  take(): Chunk | Error | null {
    const error = this.errors.shift();
    if (error !== undefined) return error;
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (chunk.state.paused) continue;
      this.chunks.splice(i, 1);
      this.heldBytesNow -= chunk.bytes;
      return chunk;
    }
    return null;
  }

  drop(state: PartitionState): void {
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const chunk = this.chunks[i]!;
      if (chunk.state !== state) continue;
      this.chunks.splice(i, 1);
      this.heldBytesNow -= chunk.bytes;
    }
  }

  clear(): void {
    this.chunks.length = 0;
    this.heldBytesNow = 0;
  }

  /** Queues an error for the iterators and wakes them. */
  fail(error: Error): void {
    this.errors.push(error);
    this.wake();
  }

  /** Resolves true when wake() is called, false after timeoutMs (undefined: no timeout). */
  wait(timeoutMs: number | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const waiter = (): void => {
        if (timer !== null) clearTimeout(timer);
        resolve(true);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  wake(): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
