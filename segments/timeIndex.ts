// Sparse time index of one segment (`<base>.timeindex`), Kafka's layout: fixed 12-byte entries,
// big-endian, no header and no checksum:
//
//   bytes 0-7   timestamp      int64  largest record timestamp in the segment up to this entry
//   bytes 8-11  relativeOffset int32  last offset of the batch that carried that timestamp
//
// Written at the same moments as offset index entries and only when the timestamp grew, so
// timestamps never decrease. An entry (T, O) promises that every record at or before offset O has
// a timestamp <= T. Record timestamps are not monotonic, so an entry is only a starting hint for
// the forward scan that finds the exact answer.
import { readInt64AsNumber, writeInt64FromNumber } from './recordBatch.js';

export const TIME_INDEX_ENTRY_BYTES = 12;

export interface TimeIndexEntry {
  timestamp: number;
  offset: number;
}

export class TimeIndex {
  private entries: Buffer;
  private count: number;

  constructor(
    readonly baseOffset: number,
    readonly maxEntries: number,
    existing?: Buffer,
  ) {
    if (existing !== undefined && existing.length % TIME_INDEX_ENTRY_BYTES !== 0) {
      throw new RangeError(`time index of ${existing.length} bytes is not a whole number of entries`);
    }
    this.count = existing === undefined ? 0 : existing.length / TIME_INDEX_ENTRY_BYTES;
    this.entries = existing ?? Buffer.alloc(Math.min(maxEntries, 64) * TIME_INDEX_ENTRY_BYTES);
  }

  get entryCount(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.count * TIME_INDEX_ENTRY_BYTES;
  }

  isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  entryAt(index: number): TimeIndexEntry {
    const at = index * TIME_INDEX_ENTRY_BYTES;
    return { timestamp: readInt64AsNumber(this.entries, at), offset: this.baseOffset + this.entries.readInt32BE(at + 8) };
  }

  lastEntry(): TimeIndexEntry | null {
    return this.count === 0 ? null : this.entryAt(this.count - 1);
  }

  /** Adds (timestamp, offset) when the timestamp grew; returns whether an entry was written. */
  maybeAppend(timestamp: number, offset: number): boolean {
    const last = this.lastEntry();
    if (last !== null && timestamp <= last.timestamp) return false;
    if (last !== null && offset <= last.offset) return false;
    if (this.isFull()) throw new Error(`time index of segment ${this.baseOffset} is full (${this.maxEntries} entries)`);
    const relative = offset - this.baseOffset;
    if (relative < 0 || relative > 0x7fffffff) throw new RangeError(`offset ${offset} does not fit segment ${this.baseOffset}`);
    const needed = (this.count + 1) * TIME_INDEX_ENTRY_BYTES;
    if (needed > this.entries.length) {
      // Double, starting from 64 entries (a loaded index may be 0 bytes), up to the maximum.
      const grown = Buffer.alloc(Math.min(this.maxEntries * TIME_INDEX_ENTRY_BYTES, Math.max(this.entries.length * 2, 64 * TIME_INDEX_ENTRY_BYTES)));
      this.entries.copy(grown, 0, 0, this.count * TIME_INDEX_ENTRY_BYTES);
      this.entries = grown;
    }
    writeInt64FromNumber(this.entries, this.count * TIME_INDEX_ENTRY_BYTES, timestamp);
    this.entries.writeInt32BE(relative, this.count * TIME_INDEX_ENTRY_BYTES + 8);
    this.count++;
    return true;
  }

  /**
   * The offset from which to scan for the first record with timestamp >= `timestamp`: the entry
   * before the first one that reaches `timestamp` (every record up to it is older), else the base.
   */
  lookup(timestamp: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1; // last entry with entry.timestamp < timestamp
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.entryAt(middle).timestamp < timestamp) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? this.baseOffset : this.entryAt(found).offset;
  }

  /** Drops entries at or after `offset` (the log was truncated below it). */
  truncateToOffset(offset: number): void {
    while (this.count > 0 && this.entryAt(this.count - 1).offset >= offset) this.count--;
  }

  toBuffer(): Buffer {
    return this.entries.subarray(0, this.count * TIME_INDEX_ENTRY_BYTES);
  }

  /** Why the index cannot be trusted for a segment ending before `nextOffset`, or null. */
  inconsistency(nextOffset: number): string | null {
    let previous: TimeIndexEntry | null = null;
    for (let i = 0; i < this.count; i++) {
      const entry = this.entryAt(i);
      if (Number.isNaN(entry.timestamp)) return `entry ${i} has a timestamp beyond 2^53`;
      if (previous !== null && (entry.timestamp < previous.timestamp || entry.offset <= previous.offset)) return `entry ${i} goes backwards`;
      if (entry.offset < this.baseOffset || entry.offset >= nextOffset) return `entry ${i} names offset ${entry.offset}, outside the segment`;
      previous = entry;
    }
    return null;
  }
}
