// Latency percentiles for the benchmarks: a bounded sample store and nearest-rank percentiles.
//
// A run records one sample per acknowledged send; at about 1,000 sends a second for a few
// seconds that is a few thousand samples, but nothing bounds a long run, so past `capacity` the
// recorder keeps a uniform random sample of everything seen (reservoir sampling, Vitter's
// algorithm R) with a seeded generator: the same run keeps the same samples.

/** Samples kept before sampling starts: 8 MB of Float64Array. */
export const DEFAULT_LATENCY_CAPACITY = 1_000_000;
const MAX_LATENCY_CAPACITY = 16_000_000;

/**
 * The nearest-rank percentile of ascending `sorted`: the smallest sample with at least q of all
 * samples at or below it. q in [0, 1]; null for no samples.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`a percentile is a fraction in [0, 1], got ${q}`);
  const count = sorted.length;
  if (count === 0) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  return sorted[rank - 1]!;
}

export interface LatencySummary {
  /** Samples seen (not only kept). */
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
}

export class LatencyRecorder {
  private readonly samples: Float64Array;
  private kept = 0;
  private seen = 0;
  private maxMs = -Infinity;
  private randomState: number;

  constructor(readonly capacity: number = DEFAULT_LATENCY_CAPACITY, seed = 0x9e3779b9) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_LATENCY_CAPACITY) {
      throw new RangeError(`latency capacity must be an integer in [1, ${MAX_LATENCY_CAPACITY}], got ${capacity}`);
    }
    this.samples = new Float64Array(capacity);
    this.randomState = seed >>> 0 || 1;
  }

  record(latencyMs: number): void {
    if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) throw new RangeError(`a latency is a finite number >= 0, got ${latencyMs}`);
    this.seen++;
    if (latencyMs > this.maxMs) this.maxMs = latencyMs;
    if (this.kept < this.capacity) {
      this.samples[this.kept++] = latencyMs;
      return;
    }
    // Keep the i-th sample with probability capacity / i, replacing a random kept one.
    const slot = Math.floor(this.nextRandom() * this.seen);
    if (slot < this.capacity) this.samples[slot] = latencyMs;
  }

  get count(): number {
    return this.seen;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.kept).sort();
    return {
      count: this.seen,
      p50Ms: percentileOfSorted(sorted, 0.5),
      p99Ms: percentileOfSorted(sorted, 0.99),
      p999Ms: percentileOfSorted(sorted, 0.999),
      maxMs: this.seen === 0 ? null : this.maxMs,
    };
  }

  /** xorshift32, in [0, 1). */
  private nextRandom(): number {
    let x = this.randomState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.randomState = x >>> 0;
    return this.randomState / 0x1_0000_0000;
  }
}
