// The cleaner's memory-bounded map from record key to the latest offset seen for it (Kafka's
// SkimpyOffsetMap, in spirit). Keys are not stored: each is reduced to a 64-bit hash (two
// independent 32-bit murmur3 lanes), and the table is open addressing with linear probing over
// three parallel typed arrays:
//
//   hashHigh Int32Array   lane 1 of the key hash (also picks the home slot)
//   hashLow  Int32Array   lane 2
//   offsets  Float64Array latest offset of the key, -1 for an empty slot
//
// 16 bytes a slot; the slot count is the largest power of two the byte budget holds, and the
// table refuses new keys past MAX_LOAD_FACTOR so probes stay short. Two keys that share all 64
// bits would be taken for one key (expected once in ~2^32 keys at 1M keys: accepted, as Kafka
// accepts MD5 collisions).

export const BYTES_PER_SLOT = 16;
/** Fill beyond this and probe chains grow quickly. */
export const MAX_LOAD_FACTOR = 0.75;
/** Smallest budget accepted: 4096 slots. */
export const MIN_MAP_BYTES = 4096 * BYTES_PER_SLOT;

const EMPTY = -1;

export interface KeyHash {
  high: number;
  low: number;
}

export class KeyOffsetMap {
  readonly slots: number;
  /** Distinct keys the map takes before it reports itself full. */
  readonly capacity: number;
  private readonly hashHigh: Int32Array;
  private readonly hashLow: Int32Array;
  private readonly offsets: Float64Array;
  private readonly mask: number;
  private entryCount = 0;

  constructor(budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < MIN_MAP_BYTES) throw new RangeError(`key offset map budget must be an integer >= ${MIN_MAP_BYTES} bytes, got ${budgetBytes}`);
    let slots = 1;
    while (slots * 2 * BYTES_PER_SLOT <= budgetBytes && slots * 2 <= 0x4000_0000) slots *= 2;
    this.slots = slots;
    this.mask = slots - 1;
    this.capacity = Math.floor(slots * MAX_LOAD_FACTOR);
    this.hashHigh = new Int32Array(slots);
    this.hashLow = new Int32Array(slots);
    this.offsets = new Float64Array(slots).fill(EMPTY);
  }

  get size(): number {
    return this.entryCount;
  }

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
