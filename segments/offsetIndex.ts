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

export const OFFSET_INDEX_ENTRY_BYTES = 8;

export interface IndexPosition {
  offset: number;
  position: number;
}

export class OffsetIndex {
  private entries: Buffer;
  private count: number;

  constructor(
    readonly baseOffset: number,
    readonly maxEntries: number,
    existing?: Buffer,
  ) {
    if (existing !== undefined && existing.length % OFFSET_INDEX_ENTRY_BYTES !== 0) {
      throw new RangeError(`offset index of ${existing.length} bytes is not a whole number of entries`);
    }
    this.count = existing === undefined ? 0 : existing.length / OFFSET_INDEX_ENTRY_BYTES;
    this.entries = existing ?? Buffer.alloc(Math.min(maxEntries, 64) * OFFSET_INDEX_ENTRY_BYTES);
  }

  get entryCount(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.count * OFFSET_INDEX_ENTRY_BYTES;
  }

  isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  relativeOffsetAt(index: number): number {
    return this.entries.readInt32BE(index * OFFSET_INDEX_ENTRY_BYTES);
  }

  positionAt(index: number): number {
    return this.entries.readInt32BE(index * OFFSET_INDEX_ENTRY_BYTES + 4);
  }

  lastEntry(): IndexPosition | null {
    if (this.count === 0) return null;
    return { offset: this.baseOffset + this.relativeOffsetAt(this.count - 1), position: this.positionAt(this.count - 1) };
  }

  append(offset: number, position: number): void {
    const relative = offset - this.baseOffset;
    if (this.isFull()) throw new Error(`offset index of segment ${this.baseOffset} is full (${this.maxEntries} entries)`);
    if (relative < 0 || relative > 0x7fffffff) throw new RangeError(`offset ${offset} does not fit segment ${this.baseOffset}`);
    if (this.count > 0 && (relative <= this.relativeOffsetAt(this.count - 1) || position <= this.positionAt(this.count - 1))) {
      throw new Error(`offset index entries must increase: (${offset}, ${position}) after ${JSON.stringify(this.lastEntry())}`);
    }
    const needed = (this.count + 1) * OFFSET_INDEX_ENTRY_BYTES;
    if (needed > this.entries.length) {
      // Double, starting from 64 entries (a loaded index may be 0 bytes), up to the maximum.
      const grown = Buffer.alloc(Math.min(this.maxEntries * OFFSET_INDEX_ENTRY_BYTES, Math.max(this.entries.length * 2, 64 * OFFSET_INDEX_ENTRY_BYTES)));
      this.entries.copy(grown, 0, 0, this.count * OFFSET_INDEX_ENTRY_BYTES);
      this.entries = grown;
    }
    this.entries.writeInt32BE(relative, this.count * OFFSET_INDEX_ENTRY_BYTES);
    this.entries.writeInt32BE(position, this.count * OFFSET_INDEX_ENTRY_BYTES + 4);
    this.count++;
  }

  /** Where to start scanning for `offset`: the last entry at or below it, else the segment start. */
  lookup(offset: number): IndexPosition {
    const relative = offset - this.baseOffset;
    let low = 0;
    let high = this.count - 1;
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
    while (this.count > 0 && this.positionAt(this.count - 1) >= position) this.count--;
  }

  /** The exact bytes of the index file. */
  toBuffer(): Buffer {
    return this.entries.subarray(0, this.count * OFFSET_INDEX_ENTRY_BYTES);
  }

  /**
   * Why the index cannot be trusted for a .log of `logSizeBytes`, or null when it is consistent:
   * entries strictly increasing, every position inside the log.
   */
  inconsistency(logSizeBytes: number): string | null {
    let previousRelative = -1;
    let previousPosition = -1;
    for (let i = 0; i < this.count; i++) {
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
