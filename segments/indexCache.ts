// A memory budget for the offset and time indexes of sealed segments. A sealed segment loads its
// indexes on first use and registers them here; when the loaded total passes the budget, the
// least recently used segments drop theirs (they reload from disk when needed again). Active
// segments keep their indexes outside the budget: they are being appended to.

interface Loaded {
  bytes: number;
  unload: () => void;
}

export class IndexCache {
  private readonly loaded = new Map<object, Loaded>();
  private totalBytes = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`index cache budget must be a positive byte count, got ${maxBytes}`);
  }

  get loadedBytes(): number {
    return this.totalBytes;
  }

  get loadedCount(): number {
    return this.loaded.size;
  }

  /** Records a use of `owner`'s loaded indexes, evicting others past the budget. */
  touch(owner: object, bytes: number, unload: () => void): void {
    const previous = this.loaded.get(owner);
    if (previous !== undefined) {
      this.loaded.delete(owner);
      this.totalBytes -= previous.bytes;
    }
    this.loaded.set(owner, { bytes, unload });
    this.totalBytes += bytes;
    for (const [candidate, entry] of this.loaded) {
      if (this.totalBytes <= this.maxBytes || candidate === owner) break;
      this.loaded.delete(candidate);
      this.totalBytes -= entry.bytes;
      entry.unload();
    }
  }

  forget(owner: object): void {
    const previous = this.loaded.get(owner);
    if (previous === undefined) return;
    this.loaded.delete(owner);
    this.totalBytes -= previous.bytes;
  }
}
