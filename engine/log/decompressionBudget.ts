// A per-broker bound on the bytes that produced batches may decompress to at once, so that many
// zip bombs arriving together cost at most this bound, never their expansion. Each decompression
// reserves its output limit before it starts and gives it back when it ends; reservations beyond
// the capacity wait in arrival order, and past a bounded number of waiters a request is refused
// with a retriable error instead of queueing without end.
import { ValidationBusyError } from '../errors.js';

export interface DecompressionBudgetOptions {
  /** Bytes of decompressed output reserved at once, across every partition of the broker. */
  capacityBytes: number;
  /** Reservations that may wait for room before more are refused. */
  maxWaiters: number;
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class DecompressionBudget {
  readonly capacityBytes: number;
  private readonly maxWaiters: number;
  private reservedBytes = 0;
  private readonly waiters: Waiter[] = [];
  /** Largest reservation ever held at once: tests and the log line at shutdown read it. */
  peakReservedBytes = 0;

  constructor(options: DecompressionBudgetOptions) {
    if (!Number.isSafeInteger(options.capacityBytes) || options.capacityBytes <= 0) throw new RangeError(`decompression capacity must be a positive integer, got ${options.capacityBytes}`);
    if (!Number.isSafeInteger(options.maxWaiters) || options.maxWaiters < 0) throw new RangeError(`decompression waiters must be a non-negative integer, got ${options.maxWaiters}`);
    this.capacityBytes = options.capacityBytes;
    this.maxWaiters = options.maxWaiters;
  }

  get reserved(): number {
    return this.reservedBytes;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Reserves `bytes` and resolves with the function that gives them back (call it exactly once).
   * A reservation larger than the whole capacity is granted only when nothing else is reserved,
   * so it still runs alone instead of never.
   */
  async reserve(bytes: number): Promise<() => void> {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`a reservation must be a positive integer, got ${bytes}`);
    if (this.waiters.length === 0 && this.fits(bytes)) {
      this.take(bytes);
    } else {
      if (this.waiters.length >= this.maxWaiters) {
        throw new ValidationBusyError(`${this.waiters.length} produced batches already wait to be decompressed for validation (${this.reservedBytes} of ${this.capacityBytes} bytes reserved); retry`);
      }
      await new Promise<void>((grant) => this.waiters.push({ bytes, grant }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reservedBytes -= bytes;
      this.grantWaiting();
    };
  }

  private fits(bytes: number): boolean {
    return this.reservedBytes === 0 || this.reservedBytes + bytes <= this.capacityBytes;
  }

  private take(bytes: number): void {
    this.reservedBytes += bytes;
    if (this.reservedBytes > this.peakReservedBytes) this.peakReservedBytes = this.reservedBytes;
  }

  private grantWaiting(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const waiter = this.waiters.shift()!;
      this.take(waiter.bytes);
      waiter.grant();
    }
  }
}
