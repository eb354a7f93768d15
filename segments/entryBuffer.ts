// The in-memory form of a fixed-entry index file (.index, .timeindex): whole entries of one size,
// growing by doubling up to a maximum entry count. The index classes own the entry layouts.

/** Entries allocated at first, and the least a grown buffer holds (a loaded index may be empty). */
const INITIAL_ENTRIES = 64;

export class EntryBuffer {
  private buffer: Buffer;
  private count: number;

  constructor(
    readonly entryBytes: number,
    readonly maxEntries: number,
    what: string,
    existing?: Buffer,
  ) {
    if (existing !== undefined && existing.length % entryBytes !== 0) {
      throw new RangeError(`${what} of ${existing.length} bytes is not a whole number of ${entryBytes}-byte entries`);
    }
    this.count = existing === undefined ? 0 : existing.length / entryBytes;
    this.buffer = existing ?? Buffer.alloc(Math.min(maxEntries, INITIAL_ENTRIES) * entryBytes);
  }

  get entryCount(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.count * this.entryBytes;
  }

  /** The backing bytes; entry i starts at i * entryBytes. Valid until the next push(). */
  get bytes(): Buffer {
    return this.buffer;
  }

  isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  /** Makes room for one more entry and returns the byte position to write it at. */
  push(): number {
    if (this.isFull()) throw new Error(`index is full (${this.maxEntries} entries)`);
    const needed = (this.count + 1) * this.entryBytes;
    if (needed > this.buffer.length) {
      const grown = Buffer.alloc(Math.min(this.maxEntries * this.entryBytes, Math.max(this.buffer.length * 2, INITIAL_ENTRIES * this.entryBytes)));
      this.buffer.copy(grown, 0, 0, this.count * this.entryBytes);
      this.buffer = grown;
    }
    return this.count++ * this.entryBytes;
  }

  /** Keeps the first `count` entries. */
  truncate(count: number): void {
    if (count < 0 || count > this.count) throw new RangeError(`cannot keep ${count} of ${this.count} entries`);
    this.count = count;
  }

  /** The exact bytes of the index file. */
  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.count * this.entryBytes);
  }
}
