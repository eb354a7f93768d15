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
import { EntryBuffer } from './entryBuffer.js';
import { readInt64AsNumber, writeInt64FromNumber } from './recordBatch.js';
import { MAX_RELATIVE_OFFSET } from '../common/limits.js';

export const TIME_INDEX_ENTRY_BYTES = 12;

export interface TimeIndexEntry {
  timestamp: number;
  offset: number;
}

export class TimeIndex {
  private readonly entries: EntryBuffer;

  constructor(
    readonly baseOffset: number,
    readonly maxEntries: number,
    existing?: Buffer,
  ) {
    this.entries = new EntryBuffer(TIME_INDEX_ENTRY_BYTES, maxEntries, 'time index', existing);
  }

  get entryCount(): number {
    return this.entries.entryCount;
  }

  get sizeBytes(): number {
    return this.entries.sizeBytes;
  }

  isFull(): boolean {
    return this.entries.isFull();
  }

  entryAt(index: number): TimeIndexEntry {
    const at = index * TIME_INDEX_ENTRY_BYTES;
    const bytes = this.entries.bytes;
    return { timestamp: readInt64AsNumber(bytes, at), offset: this.baseOffset + bytes.readInt32BE(at + 8) };
  }

  lastEntry(): TimeIndexEntry | null {
    const count = this.entries.entryCount;
    return count === 0 ? null : this.entryAt(count - 1);
  }

  /** Adds (timestamp, offset) when the timestamp grew; returns whether an entry was written. */
  maybeAppend(timestamp: number, offset: number): boolean {
    const last = this.lastEntry();
    if (last !== null && timestamp <= last.timestamp) return false;
    if (last !== null && offset <= last.offset) return false;
    if (this.isFull()) throw new Error(`time index of segment ${this.baseOffset} is full (${this.maxEntries} entries)`);
    const relative = offset - this.baseOffset;
    if (relative < 0 || relative > MAX_RELATIVE_OFFSET) throw new RangeError(`offset ${offset} does not fit segment ${this.baseOffset}`);
    const at = this.entries.push();
    writeInt64FromNumber(this.entries.bytes, at, timestamp);
    this.entries.bytes.writeInt32BE(relative, at + 8);
    return true;
  }

  /**
   * The offset from which to scan for the first record with timestamp >= `timestamp`: the entry
   * before the first one that reaches `timestamp` (every record up to it is older), else the base.
   */
  lookup(timestamp: number): number {
    let low = 0;
    let high = this.entries.entryCount - 1;
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
    let count = this.entries.entryCount;
    while (count > 0 && this.entryAt(count - 1).offset >= offset) count--;
    this.entries.truncate(count);
  }

  toBuffer(): Buffer {
    return this.entries.toBuffer();
  }

  /** Why the index cannot be trusted for a segment ending before `nextOffset`, or null. */
  inconsistency(nextOffset: number): string | null {
    let previous: TimeIndexEntry | null = null;
    for (let i = 0; i < this.entries.entryCount; i++) {
      const entry = this.entryAt(i);
      if (Number.isNaN(entry.timestamp)) return `entry ${i} has a timestamp beyond 2^53`;
      if (previous !== null && (entry.timestamp < previous.timestamp || entry.offset <= previous.offset)) return `entry ${i} goes backwards`;
      if (entry.offset < this.baseOffset || entry.offset >= nextOffset) return `entry ${i} names offset ${entry.offset}, outside the segment`;
      previous = entry;
    }
    return null;
  }
}
