// Sparse offset index of one segment (`<base>.index`), Kafka's layout: fixed 8-byte entries,
// big-endian, no header and no checksum:
//
//   bytes 0-3  relativeOffset int32  last offset of the indexed batch minus the segment base offset
//   bytes 4-7  position       int32  byte position in the .log where that batch starts
//
// An entry is added after more than index.interval.bytes of log since the previous one, so both
// fields strictly increase. Lookup of offset T: the last entry with offset <= T gives a position
// from which a forward scan of batch headers reaches T. The index can always be rebuilt from the
// .log, so a missing or inconsistent index file is rebuilt, never trusted.

import { EntryBuffer } from './entryBuffer.js';
import { MAX_RELATIVE_OFFSET } from '../common/limits.js';

export const OFFSET_INDEX_ENTRY_BYTES = 8;

export interface IndexPosition {
  offset: number;
  position: number;
}

export class OffsetIndex {
  private readonly entries: EntryBuffer;

  constructor(
    readonly baseOffset: number,
    readonly maxEntries: number,
    existing?: Buffer,
  ) {
    this.entries = new EntryBuffer(OFFSET_INDEX_ENTRY_BYTES, maxEntries, 'offset index', existing);
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

  relativeOffsetAt(index: number): number {
    return this.entries.bytes.readInt32BE(index * OFFSET_INDEX_ENTRY_BYTES);
  }

  positionAt(index: number): number {
    return this.entries.bytes.readInt32BE(index * OFFSET_INDEX_ENTRY_BYTES + 4);
  }

  lastEntry(): IndexPosition | null {
    const count = this.entries.entryCount;
    if (count === 0) return null;
    return { offset: this.baseOffset + this.relativeOffsetAt(count - 1), position: this.positionAt(count - 1) };
  }

  append(offset: number, position: number): void {
    const relative = offset - this.baseOffset;
    if (this.isFull()) throw new Error(`offset index of segment ${this.baseOffset} is full (${this.maxEntries} entries)`);
    if (relative < 0 || relative > MAX_RELATIVE_OFFSET) throw new RangeError(`offset ${offset} does not fit segment ${this.baseOffset}`);
    const last = this.lastEntry();
    if (last !== null && (offset <= last.offset || position <= last.position)) {
      throw new Error(`offset index entries must increase: (${offset}, ${position}) after ${JSON.stringify(last)}`);
    }
    const at = this.entries.push();
    this.entries.bytes.writeInt32BE(relative, at);
    this.entries.bytes.writeInt32BE(position, at + 4);
  }

  /** Where to start scanning for `offset`: the last entry at or below it, else the segment start. */
  lookup(offset: number): IndexPosition {
    const relative = offset - this.baseOffset;
    let low = 0;
    let high = this.entries.entryCount - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.relativeOffsetAt(middle) <= relative) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (found < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.baseOffset + this.relativeOffsetAt(found), position: this.positionAt(found) };
  }

  /** Drops every entry whose batch starts at or after `position` (the log was truncated there). */
  truncateToPosition(position: number): void {
    let count = this.entries.entryCount;
    while (count > 0 && this.positionAt(count - 1) >= position) count--;
    this.entries.truncate(count);
  }

  /** The exact bytes of the index file. */
  toBuffer(): Buffer {
    return this.entries.toBuffer();
  }

  /**
   * Why the index cannot be trusted for a .log of `logSizeBytes`, or null when it is consistent:
   * entries strictly increasing, every position inside the log.
   */
  inconsistency(logSizeBytes: number): string | null {
    let previousRelative = -1;
    let previousPosition = -1;
    for (let i = 0; i < this.entries.entryCount; i++) {
      const relative = this.relativeOffsetAt(i);
      const position = this.positionAt(i);
      if (relative <= previousRelative || position <= previousPosition) return `entry ${i} (${relative}, ${position}) does not increase`;
      if (position >= logSizeBytes) return `entry ${i} points at position ${position}, past the log's ${logSizeBytes} bytes`;
      previousRelative = relative;
      previousPosition = position;
    }
    return null;
  }
}
