// The cleaner's memory-bounded map from record key to the latest offset seen for it (Kafka's
// SkimpyOffsetMap, in spirit). Keys are not stored: each is reduced to a 64-bit hash (two
// independent 32-bit murmur3 lanes), and the table is open addressing with linear probing over
// three parallel typed arrays:
//
//   hashHigh Int32Array   lane 1 of the key hash (also picks the home slot)
//   hashLow  Int32Array   lane 2
//   offsets  Float64Array latest offset of the key, -1 for an empty slot
//
// 16 bytes a slot. The table starts small and doubles while keys arrive, up to the largest power
// of two of slots the byte budget holds; it refuses new keys past MAX_LOAD_FACTOR of that, so
// probes stay short and memory stays within log.cleaner.dedupe.buffer.size. Two keys that share all 64
// bits would be taken for one key (expected once in ~2^32 keys at 1M keys: accepted, as Kafka
// accepts MD5 collisions).

export const BYTES_PER_SLOT = 16;
/** Fill beyond this and probe chains grow quickly. */
export const MAX_LOAD_FACTOR = 0.75;
/** Smallest budget accepted: 4096 slots. */
export const MIN_MAP_BYTES = 4096 * BYTES_PER_SLOT;
/** A new map starts this small and doubles as keys arrive. */
const INITIAL_SLOTS = 4096;

const EMPTY = -1;

export interface KeyHash {
  high: number;
  low: number;
}

export class KeyOffsetMap {
  /** Distinct keys the map takes, at its largest, before it reports itself full. */
  readonly capacity: number;
  private readonly maxSlots: number;
  private slots: number;
  private mask: number;
  private hashHigh: Int32Array;
  private hashLow: Int32Array;
  private offsets: Float64Array;
  private entryCount = 0;
  /** Most bytes held at once (while growing, the old and the new table both exist). */
  peakBytes: number;

  /**
   * A map of at most `budgetBytes`. It starts at INITIAL_SLOTS and doubles as keys arrive, so a
   * log with few keys never allocates the whole budget.
   */
  constructor(budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < MIN_MAP_BYTES) throw new RangeError(`key offset map budget must be an integer >= ${MIN_MAP_BYTES} bytes, got ${budgetBytes}`);
    let maxSlots = 1;
    while (maxSlots * 2 * BYTES_PER_SLOT <= budgetBytes && maxSlots * 2 <= 0x4000_0000) maxSlots *= 2;
    this.maxSlots = maxSlots;
    this.capacity = Math.floor(maxSlots * MAX_LOAD_FACTOR);
    this.slots = Math.min(INITIAL_SLOTS, maxSlots);
    this.mask = this.slots - 1;
    this.hashHigh = new Int32Array(this.slots);
    this.hashLow = new Int32Array(this.slots);
    this.offsets = new Float64Array(this.slots).fill(EMPTY);
    this.peakBytes = this.sizeBytes;
  }

  get size(): number {
    return this.entryCount;
  }

  /** Bytes the map holds now (it grows up to its budget). */
  get sizeBytes(): number {
    return this.slots * BYTES_PER_SLOT;
  }

  /** Room for `count` more new keys. */
  hasRoomFor(count: number): boolean {
    return this.entryCount + count <= this.capacity;
  }

  /** Records `offset` as the key's latest; false (nothing changed) when a new key finds the map full. */
  put(hash: KeyHash, offset: number): boolean {
    let slot = hash.high & this.mask;
    for (;;) {
      const existing = this.offsets[slot]!;
      if (existing === EMPTY) {
        if (this.entryCount >= this.capacity) return false;
        if (this.entryCount >= this.slots * MAX_LOAD_FACTOR) {
          this.grow();
          return this.put(hash, offset);
        }
        this.hashHigh[slot] = hash.high;
        this.hashLow[slot] = hash.low;
        this.offsets[slot] = offset;
        this.entryCount++;
        return true;
      }
      if (this.hashHigh[slot] === hash.high && this.hashLow[slot] === hash.low) {
        if (offset > existing) this.offsets[slot] = offset;
        return true;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** The key's latest offset, or -1 when the map never saw it. */
  get(hash: KeyHash): number {
    let slot = hash.high & this.mask;
    for (;;) {
      const existing = this.offsets[slot]!;
      if (existing === EMPTY) return EMPTY;
      if (this.hashHigh[slot] === hash.high && this.hashLow[slot] === hash.low) return existing;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Doubles the table (within the budget) and re-inserts every entry. */
  private grow(): void {
    const [oldHigh, oldLow, oldOffsets] = [this.hashHigh, this.hashLow, this.offsets];
    this.slots = Math.min(this.slots * 2, this.maxSlots);
    this.mask = this.slots - 1;
    this.hashHigh = new Int32Array(this.slots);
    this.hashLow = new Int32Array(this.slots);
    this.offsets = new Float64Array(this.slots).fill(EMPTY);
    this.peakBytes = Math.max(this.peakBytes, this.sizeBytes + oldOffsets.length * BYTES_PER_SLOT);
    for (let i = 0; i < oldOffsets.length; i++) {
      const offset = oldOffsets[i]!;
      if (offset === EMPTY) continue;
      let slot = oldHigh[i]! & this.mask;
      while (this.offsets[slot] !== EMPTY) slot = (slot + 1) & this.mask;
      this.hashHigh[slot] = oldHigh[i]!;
      this.hashLow[slot] = oldLow[i]!;
      this.offsets[slot] = offset;
    }
  }
}

/** murmur3 (x86, 32-bit) of bytes[start, end) with a seed. */
function murmur3(bytes: Uint8Array, start: number, end: number, seed: number): number {
  let h = seed | 0;
  let i = start;
  const blocksEnd = start + ((end - start) & ~3);
  for (; i < blocksEnd; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = end - i;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[i + 2]! << 16;
    if (tail >= 2) k ^= bytes[i + 1]! << 8;
    k ^= bytes[i]!;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const SEED_HIGH = 0x9747b28c;
const SEED_LOW = 0x5bd1e995;

/** The 64-bit hash of a key's bytes; `into` is reused to spare an allocation per record. */
export function hashKey(bytes: Uint8Array, start: number, end: number, into: KeyHash = { high: 0, low: 0 }): KeyHash {
  into.high = murmur3(bytes, start, end, SEED_HIGH);
  into.low = murmur3(bytes, start, end, SEED_LOW);
  return into;
}
