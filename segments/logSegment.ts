// One segment of a partition log: `<base>.log` (record batches back to back, nothing else),
// `<base>.index` and `<base>.timeindex` (see offsetIndex.ts and timeIndex.ts for their layouts).
//
// Ownership: the segment owns its write handle (only the partition's single writer calls
// writeBatches, seal and truncate). Reads go through the shared FileHandleCache with read-only
// handles, so sealing can close the write handle while reads run.
//
// Every read checks each batch it returns (lengths, magic, CRC-32C, offsets increasing, leader
// epoch) so bytes that rotted on disk are reported, never served.
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { readWholeFile, syncFileData } from './checkpointFile.js';
import { FileHandleCache } from './fileHandleCache.js';
import type { WriteHandleBudget } from './writeHandleBudget.js';
import { IndexCache } from './indexCache.js';
import { OffsetIndex, OFFSET_INDEX_ENTRY_BYTES } from './offsetIndex.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  LOG_OVERHEAD,
  checkBatch,
  type BatchHeader,
  type BatchProblem,
} from './recordBatch.js';
import { DELETED_SUFFIX, LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, segmentPath } from './segmentNames.js';
import { TimeIndex, TIME_INDEX_ENTRY_BYTES } from './timeIndex.js';
import { MAX_RELATIVE_OFFSET, MAX_SEGMENT_BYTES } from '../common/limits.js';

/** Reads of headers scan in windows of this size; one window covers several index intervals. */
const HEADER_SCAN_WINDOW_BYTES = 64 * 1024;
/** Recovery and verification read the log in chunks of this size. */
const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;
/** The largest batch a stored log may hold, whatever a topic's max.message.bytes says today. */
export const MAX_STORED_BATCH_BYTES = MAX_SEGMENT_BYTES;

export interface SegmentResources {
  handles: FileHandleCache;
  indexes: IndexCache;
  /** Caps the write handles open at once across segments; without it, each keeps its own open. */
  writeHandles?: WriteHandleBudget;
  /** Reports something an operator should know that is not an error of the caller (index rebuilt). */
  notice(message: string, fields: Record<string, unknown>): void;
}

export interface SegmentLimits {
  indexIntervalBytes: number;
  maxIndexEntries: number;
}

/** What a batch must satisfy relative to the batches before it (checked on every read and scan). */
export interface BatchChainRules {
  /** Offsets follow each other with no gap (true for every log that was never compacted). */
  contiguousOffsets: boolean;
  /** The partition leader epoch a batch starting at `baseOffset` must carry, or null for any. */
  expectedEpoch(baseOffset: number): number | null;
}

export class CorruptBatchError extends Error {
  override readonly name = 'CorruptBatchError';
  /** Found where an index entry pointed: the index, not the log, may be what rotted. */
  suspectIndex = false;
  constructor(
    readonly file: string,
    readonly position: number,
    readonly problem: BatchProblem | 'offset-chain' | 'leader-epoch',
    readonly detail: string,
    readonly baseOffset: number | null,
  ) {
    super(`corrupt batch in ${file} at position ${position}${baseOffset === null ? '' : ` (base offset ${baseOffset})`}: ${problem}: ${detail}`);
  }
}

/** A batch about to be written: its bytes (offsets already assigned) and header facts. */
export interface PendingBatch {
  buffer: Buffer;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
}

export interface SegmentReadResult {
  /** Whole batches, the first one containing the requested offset. Empty when nothing is there. */
  records: Buffer;
  /** True when data was there but its first batch alone is larger than maxBytes (minOneBatch off). */
  firstBatchTooLarge?: boolean;
  firstOffset: number;
  /** Offset after the last returned batch. */
  nextOffset: number;
}

export interface ScanReport {
  validBytes: number;
  batches: number;
  nextOffset: number;
  /** The first bad batch, when the scan stopped before the end of the file. */
  failure: { position: number; problem: string; detail: string; baseOffset: number | null } | null;
}

/**
 * What a scan learned of a segment, enough to rebuild its object elsewhere without reading it
 * again (a recovery task hands the active segment's to the main thread).
 */
export interface SegmentScanFacts {
  sizeBytes: number;
  nextOffset: number;
  maxTimestamp: { timestamp: number; offset: number };
  offsetIndex: Buffer;
  timeIndex: Buffer;
  bytesSinceLastIndexEntry: number;
  /** Batches of idempotent producers (producer id >= 0): none, and producer state need not read it. */
  producerBatches: number;
}

/** What is known about the batch before the one being checked. */
type Predecessor =
  | { kind: 'segment-start' }
  | { kind: 'batch'; lastOffset: number }
  /** The batch sits at an offset index entry, which names its last offset. */
  | { kind: 'indexed'; lastOffset: number };

function chainProblem(header: BatchHeader, predecessor: Predecessor, segmentBase: number, rules: BatchChainRules): { problem: 'offset-chain' | 'leader-epoch'; detail: string } | null {
  const lastOffset = header.baseOffset + header.lastOffsetDelta;
  if (header.baseOffset < segmentBase) return { problem: 'offset-chain', detail: `base offset ${header.baseOffset} is below the segment base ${segmentBase}` };
  if (lastOffset - segmentBase > MAX_RELATIVE_OFFSET) return { problem: 'offset-chain', detail: `last offset ${lastOffset} is too far from the segment base` };
  switch (predecessor.kind) {
    case 'segment-start':
      if (rules.contiguousOffsets && header.baseOffset !== segmentBase) {
        return { problem: 'offset-chain', detail: `first batch starts at ${header.baseOffset}, the segment at ${segmentBase}` };
      }
      break;
    case 'batch':
      if (header.baseOffset <= predecessor.lastOffset) return { problem: 'offset-chain', detail: `base offset ${header.baseOffset} does not follow ${predecessor.lastOffset}` };
      if (rules.contiguousOffsets && header.baseOffset !== predecessor.lastOffset + 1) {
        return { problem: 'offset-chain', detail: `base offset ${header.baseOffset} leaves a gap after ${predecessor.lastOffset}` };
      }
      break;
    case 'indexed':
      if (lastOffset !== predecessor.lastOffset) return { problem: 'offset-chain', detail: `batch ends at ${lastOffset} but the offset index says ${predecessor.lastOffset}` };
      break;
  }
  const epoch = rules.expectedEpoch(header.baseOffset);
  if (epoch !== null && header.partitionLeaderEpoch !== epoch) {
    return { problem: 'leader-epoch', detail: `leader epoch ${header.partitionLeaderEpoch}, expected ${epoch}` };
  }
  return null;
}

export class LogSegment {
  readonly logPath: string;
  readonly offsetIndexPath: string;
  readonly timeIndexPath: string;

  /** Bytes of whole, written batches. Reads never look past it. */
  sizeBytes: number;
  private knownNextOffset: number | null;
  private knownMaxTimestamp: { timestamp: number; offset: number } | null;
  /** Batches of idempotent producers, when a scan counted them and nothing was written since; else null. */
  private knownProducerBatches: number | null = null;
  /** Clock time when the first batch went into this segment, for segment.ms rolls. */
  rollStartMs: number | null = null;

  private offsetIndex: OffsetIndex | null = null;
  private timeIndex: TimeIndex | null = null;
  private bytesSinceLastIndexEntry = 0;
  /** Open while the segment writes (or awaits its sealed flush), unless the budget closed it idle. */
  private writeHandle: FileHandle | null = null;
  private writeHandleOpening: Promise<FileHandle> | null = null;
  private writeHandleUsers = 0;
  /** Committed bytes known to be synced (null: unknown, e.g. a segment found on disk). */
  private syncedThrough: number | null = null;
  /** Sealed, with its bytes or indexes not yet on disk: flushSealed() is due. */
  private sealedFlushPending = false;
  private deleted = false;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    private readonly limits: SegmentLimits,
    private readonly resources: SegmentResources,
    sizeBytes: number,
    private active: boolean,
  ) {
    this.logPath = segmentPath(dir, baseOffset, LOG_SUFFIX);
    this.offsetIndexPath = segmentPath(dir, baseOffset, OFFSET_INDEX_SUFFIX);
    this.timeIndexPath = segmentPath(dir, baseOffset, TIME_INDEX_SUFFIX);
    this.sizeBytes = sizeBytes;
    this.knownNextOffset = sizeBytes === 0 ? baseOffset : null;
    this.knownMaxTimestamp = sizeBytes === 0 ? { timestamp: -1, offset: baseOffset } : null;
  }

  /** Creates a new, empty active segment. The caller fsyncs the directory. */
  static async create(dir: string, baseOffset: number, limits: SegmentLimits, resources: SegmentResources, options: { fresh?: boolean } = {}): Promise<LogSegment> {
    const segment = new LogSegment(dir, baseOffset, limits, resources, 0, true);
    if (options.fresh !== true) {
      // Indexes of an earlier incarnation of this base offset (a crash during a roll) are stale.
      // A directory made just now (`fresh`) has none.
      await rm(segment.offsetIndexPath, { force: true });
      await rm(segment.timeIndexPath, { force: true });
    }
    const budget = resources.writeHandles;
    segment.writeHandle = budget === undefined ? await open(segment.logPath, 'wx') : await budget.open(segment, () => open(segment.logPath, 'wx'));
    segment.syncedThrough = 0;
    segment.offsetIndex = new OffsetIndex(baseOffset, limits.maxIndexEntries);
    segment.timeIndex = new TimeIndex(baseOffset, limits.maxIndexEntries);
    return segment;
  }

  /** A segment already on disk, sealed; its indexes load on first use. */
  static async existing(dir: string, baseOffset: number, limits: SegmentLimits, resources: SegmentResources): Promise<LogSegment> {
    return LogSegment.existingOfSize(dir, baseOffset, (await stat(segmentPath(dir, baseOffset, LOG_SUFFIX))).size, limits, resources);
  }

  /** A segment another thread has just scanned, from what that scan learned (scanFacts()). */
  static fromScan(dir: string, baseOffset: number, facts: SegmentScanFacts, limits: SegmentLimits, resources: SegmentResources): LogSegment {
    const segment = new LogSegment(dir, baseOffset, limits, resources, facts.sizeBytes, false);
    const entries = (bytes: Buffer, entryBytes: number): number => Math.max(limits.maxIndexEntries, bytes.length / entryBytes);
    segment.offsetIndex = new OffsetIndex(baseOffset, entries(facts.offsetIndex, OFFSET_INDEX_ENTRY_BYTES), facts.offsetIndex);
    segment.timeIndex = new TimeIndex(baseOffset, entries(facts.timeIndex, TIME_INDEX_ENTRY_BYTES), facts.timeIndex);
    segment.knownNextOffset = facts.nextOffset;
    segment.knownMaxTimestamp = facts.maxTimestamp;
    segment.bytesSinceLastIndexEntry = facts.bytesSinceLastIndexEntry;
    segment.knownProducerBatches = facts.producerBatches;
    return segment;
  }

  /** What the last scan() learned; null before one. */
  scanFacts(): SegmentScanFacts | null {
    if (this.offsetIndex === null || this.timeIndex === null || this.knownNextOffset === null || this.knownMaxTimestamp === null) return null;
    const { sizeBytes, knownNextOffset: nextOffset, knownMaxTimestamp: maxTimestamp, bytesSinceLastIndexEntry, knownProducerBatches: producerBatches } = this;
    if (producerBatches === null) return null;
    return { sizeBytes, nextOffset, maxTimestamp, offsetIndex: this.offsetIndex.toBuffer(), timeIndex: this.timeIndex.toBuffer(), bytesSinceLastIndexEntry, producerBatches };
  }

  /** A segment already on disk whose .log size the caller knows (a recovery task was told it). */
  static existingOfSize(dir: string, baseOffset: number, sizeBytes: number, limits: SegmentLimits, resources: SegmentResources): LogSegment {
    return new LogSegment(dir, baseOffset, limits, resources, sizeBytes, false);
  }

  get isActive(): boolean {
    return this.active;
  }

  get isEmpty(): boolean {
    return this.sizeBytes === 0;
  }

  /** Offset after the last batch; known for the active segment and after a scan or tail load. */
  get nextOffset(): number {
    if (this.knownNextOffset === null) throw new Error(`next offset of segment ${this.baseOffset} is not loaded; call loadTail() first`);
    return this.knownNextOffset;
  }

  get indexIsFull(): boolean {
    return (this.offsetIndex?.isFull() ?? false) || (this.timeIndex?.isFull() ?? false);
  }

  // -------------------------------------------------------------------------------------------
  // Writing (only the partition's writer calls these, one at a time)

  /**
   * Makes the last segment found on disk the active segment again. Its write handle opens with
   * its first write: a broker with 10,000 idle partitions holds no descriptor for them.
   */
  async reopenForAppend(): Promise<void> {
    if (this.active) return;
    await this.ensureIndexes();
    this.resources.indexes.forget(this);
    this.active = true;
    // Continue the index interval from the last entry so re-opened segments index like fresh ones.
    const last = this.offsetIndex!.lastEntry();
    this.bytesSinceLastIndexEntry = this.sizeBytes - (last?.position ?? 0);
  }

  /**
   * Appends batches at the end of the log file and commits them (index entries, size); on
   * failure the file is cut back to its previous length and nothing changes.
   */
  async writeBatches(batches: readonly PendingBatch[]): Promise<void> {
    await this.writeUncommitted(batches);
    try {
      this.commitWritten(batches);
    } catch (error) {
      // Bytes that could not be committed must not stay where a restart would find them.
      await this.discardUncommitted().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Writes batches after the committed end without making them visible: reads stop at
   * sizeBytes until commitWritten(). On a write error the file is cut back and the error thrown.
   */
  async writeUncommitted(batches: readonly PendingBatch[]): Promise<void> {
    if (!this.active) throw new Error(`segment ${this.baseOffset} is not open for appends`);
    const startPosition = this.sizeBytes;
    let total = 0;
    for (const batch of batches) total += batch.buffer.length;
    if (startPosition + total > MAX_SEGMENT_BYTES) throw new RangeError(`segment ${this.baseOffset} would pass 2 GiB; roll first`);
    await this.withWriteHandle((handle) => writeAt(handle, batches, startPosition, total));
  }

  /** Makes batches written by writeUncommitted visible: index entries, size, next offset. */
  commitWritten(batches: readonly PendingBatch[]): void {
    this.knownProducerBatches = null;
    let position = this.sizeBytes;
    for (const batch of batches) {
      this.indexBatch(batch.lastOffset, batch.maxTimestamp, position, batch.buffer.length);
      position += batch.buffer.length;
    }
    this.sizeBytes = position;
    this.knownNextOffset = batches[batches.length - 1]!.lastOffset + 1;
  }

  /** Cuts off bytes written after the committed end (batches that must not be kept). */
  async discardUncommitted(): Promise<void> {
    if (!this.active) throw new Error(`segment ${this.baseOffset} is not open for appends`);
    const size = this.sizeBytes;
    await this.withWriteHandle((handle) => handle.truncate(size));
  }

  /** Whether a scan found no batch of an idempotent producer here (and nothing was written since). */
  get knownFreeOfProducerBatches(): boolean {
    return this.knownProducerBatches === 0;
  }

  /** Whether an operation uses the write handle now (WriteHandleBudget closes only idle ones). */
  get writeHandleBusy(): boolean {
    return this.writeHandleUsers > 0;
  }

  /** WriteHandleBudget: closes the idle write handle; the next use opens it again. */
  async closeIdleWriteHandle(): Promise<void> {
    if (this.writeHandleUsers > 0) throw new Error(`segment ${this.baseOffset}: its write handle is in use`);
    const handle = this.writeHandle;
    this.writeHandle = null;
    if (handle !== null) await handle.close();
  }

  /** Runs `use` with the write handle, opening it (within the budget) when it is closed. */
  private async withWriteHandle<T>(use: (handle: FileHandle) => Promise<T>): Promise<T> {
    // Counted before any await, so the budget never closes a handle an operation is about to use.
    this.writeHandleUsers++;
    const budget = this.resources.writeHandles;
    try {
      let handle = this.writeHandle;
      if (handle === null) {
        this.writeHandleOpening ??= (budget === undefined ? open(this.logPath, 'r+') : budget.open(this, () => open(this.logPath, 'r+'))).finally(() => {
          this.writeHandleOpening = null;
        });
        handle = await this.writeHandleOpening;
        this.writeHandle = handle;
      }
      return await use(handle);
    } finally {
      this.writeHandleUsers--;
      if (this.writeHandleUsers === 0) budget?.idle();
    }
  }

  /** Closes the write handle now and takes it out of the budget. */
  private async closeWriteHandle(): Promise<void> {
    const handle = this.writeHandle;
    this.writeHandle = null;
    this.resources.writeHandles?.closed(this);
    if (handle !== null) await handle.close();
  }

  private indexBatch(lastOffset: number, maxTimestamp: number, position: number, size: number): void {
    const max = this.knownMaxTimestamp;
    if (max === null || maxTimestamp > max.timestamp) this.knownMaxTimestamp = { timestamp: maxTimestamp, offset: lastOffset };
    // A full index skips entries (reads scan further) until the writer rolls, which it does next;
    // so does an offset too far from the base to index (the writer rolls before that, too).
    const indexable = lastOffset - this.baseOffset <= MAX_RELATIVE_OFFSET && !this.offsetIndex!.isFull() && !this.timeIndex!.isFull();
    if (this.bytesSinceLastIndexEntry > this.limits.indexIntervalBytes && indexable) {
      this.offsetIndex!.append(lastOffset, position);
      const current = this.knownMaxTimestamp!;
      if (current.timestamp >= 0) this.timeIndex!.maybeAppend(current.timestamp, current.offset);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += size;
  }

  /** Syncs the active segment's committed bytes (nothing to do when none came since the last sync). */
  async flush(): Promise<void> {
    const size = this.sizeBytes;
    if (this.syncedThrough === size || (!this.active && this.writeHandle === null)) return;
    await this.withWriteHandle((handle) => handle.datasync());
    this.syncedThrough = size;
  }

  /**
   * Makes this segment read-only at once (no more appends; a final time index entry for its
   * largest timestamp). Its bytes and indexes reach the disk in flushSealed(), which the log runs
   * off the append path so a roll does not stall producers behind a whole-segment fsync.
   */
  seal(): void {
    if (!this.active) return;
    const max = this.knownMaxTimestamp;
    if (max !== null && max.timestamp >= 0 && !this.timeIndex!.isFull() && max.offset - this.baseOffset <= MAX_RELATIVE_OFFSET) this.timeIndex!.maybeAppend(max.timestamp, max.offset);
    this.active = false;
    this.sealedFlushPending = true;
  }

  /** Syncs a sealed segment's log, writes and syncs its indexes, and closes its write handle. */
  async flushSealed(): Promise<void> {
    if (this.active) throw new Error(`segment ${this.baseOffset} is still active`);
    if (!this.sealedFlushPending) return;
    const size = this.sizeBytes;
    if (this.syncedThrough !== size) await this.withWriteHandle((handle) => handle.datasync());
    this.syncedThrough = size;
    await writeFileSynced(this.offsetIndexPath, this.offsetIndex!.toBuffer());
    await writeFileSynced(this.timeIndexPath, this.timeIndex!.toBuffer());
    this.sealedFlushPending = false;
    await this.closeWriteHandle();
    // Only now may the index cache drop these indexes: they can be read back from disk.
    this.resources.indexes.touch(this, this.indexBytes(), () => this.unloadIndexes());
  }

  /** Syncs the .log's bytes, through a handle of its own (recovery of a sealed segment). */
  async syncLog(): Promise<void> {
    await syncFileData(this.logPath);
  }

  /** Closes the write handle without sealing (shutdown of the active segment keeps it active). */
  async close(): Promise<void> {
    this.resources.handles.evict(this.logPath);
    this.resources.indexes.forget(this);
    await this.closeWriteHandle();
  }

  /** Writes the active segment's indexes so a clean restart need not rebuild them. */
  async writeIndexes(): Promise<void> {
    if (this.offsetIndex === null || this.timeIndex === null) return;
    await writeFileSynced(this.offsetIndexPath, this.offsetIndex.toBuffer());
    await writeFileSynced(this.timeIndexPath, this.timeIndex.toBuffer());
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  private indexBytes(): number {
    return (this.offsetIndex?.sizeBytes ?? 0) + (this.timeIndex?.sizeBytes ?? 0) + 2 * 64;
  }

  private unloadIndexes(): void {
    if (this.active || this.sealedFlushPending) return;
    this.offsetIndex = null;
    this.timeIndex = null;
  }

  /** Loads the indexes of a sealed segment, rebuilding them from the log when missing or inconsistent. */
  private async ensureIndexes(): Promise<{ offsetIndex: OffsetIndex; timeIndex: TimeIndex }> {
    if (this.offsetIndex !== null && this.timeIndex !== null) {
      if (!this.active) this.resources.indexes.touch(this, this.indexBytes(), () => this.unloadIndexes());
      return { offsetIndex: this.offsetIndex, timeIndex: this.timeIndex };
    }
    let offsetIndex: OffsetIndex | null = null;
    let timeIndex: TimeIndex | null = null;
    let reason: string | null = null;
    if (this.sizeBytes === 0) {
      // An empty log has empty indexes, whatever its index files hold (or if they are missing).
      this.offsetIndex = new OffsetIndex(this.baseOffset, this.limits.maxIndexEntries);
      this.timeIndex = new TimeIndex(this.baseOffset, this.limits.maxIndexEntries);
      if (!this.active) this.resources.indexes.touch(this, this.indexBytes(), () => this.unloadIndexes());
      return { offsetIndex: this.offsetIndex, timeIndex: this.timeIndex };
    }
    try {
      const [offsetBytes, timeBytes] = await Promise.all([readWholeFile(this.offsetIndexPath), readWholeFile(this.timeIndexPath)]);
      if (offsetBytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0 || timeBytes.length % TIME_INDEX_ENTRY_BYTES !== 0) {
        reason = 'index file size is not a whole number of entries';
      } else {
        offsetIndex = new OffsetIndex(this.baseOffset, Math.max(this.limits.maxIndexEntries, offsetBytes.length / OFFSET_INDEX_ENTRY_BYTES), offsetBytes);
        timeIndex = new TimeIndex(this.baseOffset, Math.max(this.limits.maxIndexEntries, timeBytes.length / TIME_INDEX_ENTRY_BYTES), timeBytes);
        reason = offsetIndex.inconsistency(this.sizeBytes) ?? timeIndex.inconsistency(this.knownNextOffset ?? Number.MAX_SAFE_INTEGER);
        if (reason === null && this.sizeBytes > this.limits.indexIntervalBytes * 2 && offsetIndex.entryCount === 0) reason = 'index is empty for a non-trivial log';
      }
    } catch (error) {
      reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'index file missing' : String(error);
    }
    if (reason !== null || offsetIndex === null || timeIndex === null) {
      this.resources.notice('rebuilding segment indexes', { file: this.logPath, reason });
      await this.scan({ contiguousOffsets: false, expectedEpoch: () => null }, { truncate: false, verifyCrc: false });
      await this.writeIndexes();
      return { offsetIndex: this.offsetIndex!, timeIndex: this.timeIndex! };
    }
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    if (!this.active) this.resources.indexes.touch(this, this.indexBytes(), () => this.unloadIndexes());
    return { offsetIndex, timeIndex };
  }

  private async withReadHandle<T>(use: (handle: FileHandle) => Promise<T>): Promise<T> {
    const pinned = await this.resources.handles.acquire(this.logPath);
    try {
      return await use(pinned.handle);
    } finally {
      pinned.release();
    }
  }

  /** Computes the next offset and largest timestamp of a sealed segment from its index and tail. */
  async loadTail(): Promise<void> {
    if (this.knownNextOffset !== null && this.knownMaxTimestamp !== null) return;
    const { offsetIndex, timeIndex } = await this.ensureIndexes();
    const start = offsetIndex.lastEntry()?.position ?? 0;
    let nextOffset = this.baseOffset;
    let max = timeIndex.lastEntry() ?? { timestamp: -1, offset: this.baseOffset };
    await this.walkHeaders(start, this.sizeBytes, (header) => {
      nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
      if (header.maxTimestamp > max.timestamp) max = { timestamp: header.maxTimestamp, offset: header.baseOffset + header.lastOffsetDelta };
      return true;
    });
    this.knownNextOffset = nextOffset;
    this.knownMaxTimestamp = max;
  }

  /** Calls `visit` with the header of every batch whose last offset is >= `fromOffset`, in order. */
  async forEachBatchHeader(fromOffset: number, visit: (header: BatchHeader) => void): Promise<void> {
    const { offsetIndex } = await this.ensureIndexes();
    await this.walkHeaders(offsetIndex.lookup(fromOffset).position, this.sizeBytes, (header) => {
      if (header.baseOffset + header.lastOffsetDelta >= fromOffset) visit(header);
      return true;
    });
  }

  /** Largest record timestamp in the segment (-1 when empty). */
  async maxTimestamp(): Promise<number> {
    await this.loadTail();
    return this.knownMaxTimestamp!.timestamp;
  }

  /**
   * Walks batch headers from `start` (a batch boundary) to `end`, calling `visit` with each header
   * and its position until it returns false. Structural problems throw CorruptBatchError.
   */
  private async walkHeaders(start: number, end: number, visit: (header: BatchHeader, position: number, size: number) => boolean): Promise<void> {
    if (start >= end) return;
    await this.withReadHandle(async (handle) => {
      let position = start;
      const window = Buffer.allocUnsafe(Math.min(HEADER_SCAN_WINDOW_BYTES, end - start));
      while (position < end) {
        const want = Math.min(window.length, end - position);
        const { bytesRead } = await handle.read(window, 0, want, position);
        if (bytesRead < Math.min(BATCH_HEADER_BYTES, end - position)) {
          throw new CorruptBatchError(this.logPath, position, 'truncated', `only ${bytesRead} bytes could be read`, null);
        }
        let cursor = 0;
        while (cursor < bytesRead) {
          if (bytesRead - cursor < BATCH_HEADER_BYTES) {
            if (end - (position + cursor) >= BATCH_HEADER_BYTES) break; // the header straddles the window: read on from it
            throw new CorruptBatchError(this.logPath, position + cursor, 'truncated', `${end - position - cursor} bytes left, less than a batch header`, null);
          }
          const check = checkBatch(window, cursor, bytesRead, { maxBatchBytes: MAX_STORED_BATCH_BYTES, verifyCrc: false });
          // 'truncated' here only means the batch continues past the window; its header is complete.
          if (!check.ok && (check.problem !== 'truncated' || check.header === null)) {
            throw new CorruptBatchError(this.logPath, position + cursor, check.problem, check.detail, check.header?.baseOffset ?? null);
          }
          const header = check.header!;
          const size = header.batchLength + LOG_OVERHEAD;
          if (position + cursor + size > end) {
            throw new CorruptBatchError(this.logPath, position + cursor, 'truncated', `batch of ${size} bytes runs past the end of the segment`, header.baseOffset);
          }
          if (!visit(header, position + cursor, size)) return;
          cursor += size;
        }
        position += cursor;
      }
    });
  }

  /** walkHeaders from an index position; a failure right there marks the index as suspect. */
  private async walkHeadersFromIndex(start: number, visit: (header: BatchHeader, position: number, size: number) => boolean): Promise<void> {
    try {
      await this.walkHeaders(start, this.sizeBytes, visit);
    } catch (error) {
      if (error instanceof CorruptBatchError && start > 0 && error.position === start) error.suspectIndex = true;
      throw error;
    }
  }

  /**
   * Runs a lookup; when it fails where an index entry pointed, rebuilds a sealed segment's
   * indexes from the log and runs it once more. A log that is really corrupt fails again.
   */
  private async withIndexRetry<T>(lookup: () => Promise<T>): Promise<T> {
    try {
      return await lookup();
    } catch (error) {
      if (!(error instanceof CorruptBatchError) || !error.suspectIndex || this.active) throw error;
      this.resources.notice('rebuilding segment indexes', { file: this.logPath, reason: `an index entry pointed at a bad batch: ${error.message}` });
      await this.scan({ contiguousOffsets: false, expectedEpoch: () => null }, { truncate: false, verifyCrc: false });
      await this.writeIndexes();
      return lookup();
    }
  }

  /**
   * The first batch whose last offset is >= `offset` (null when there is none), with what the
   * walk learned about the batch before it, for the chain check.
   */
  private async locate(offset: number): Promise<{ position: number; header: BatchHeader; predecessor: Predecessor } | null> {
    const { offsetIndex } = await this.ensureIndexes();
    const entry = offsetIndex.lookup(offset);
    const start = entry.position;
    let predecessor: Predecessor = start === 0 ? { kind: 'segment-start' } : { kind: 'indexed', lastOffset: entry.offset };
    let found: { position: number; header: BatchHeader; predecessor: Predecessor } | null = null;
    await this.walkHeadersFromIndex(start, (header, position) => {
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      if (lastOffset >= offset) {
        found = { position, header, predecessor };
        return false;
      }
      predecessor = { kind: 'batch', lastOffset };
      return true;
    });
    return found;
  }

  /**
   * Reads whole batches starting with the one that holds `offset`, at most `maxBytes` of them but
   * always one whole batch when there is any (so a consumer never sticks on a large batch).
   * Every returned batch passed its CRC and chain checks; a bad first batch throws.
   */
  async read(offset: number, maxBytes: number, rules: BatchChainRules, minOneBatch = true): Promise<SegmentReadResult> {
    const result = await this.withIndexRetry(() => this.readOnce(offset, maxBytes, rules));
    if (!minOneBatch && result.records.length > maxBytes) return { records: Buffer.alloc(0), firstOffset: offset, nextOffset: offset, firstBatchTooLarge: true };
    return result;
  }

  private async readOnce(offset: number, maxBytes: number, rules: BatchChainRules): Promise<SegmentReadResult> {
    const end = this.sizeBytes;
    const empty = { records: Buffer.alloc(0), firstOffset: offset, nextOffset: offset };
    if (end === 0) return empty;
    const optimistic = await this.readFromIndexPosition(offset, maxBytes, end, rules);
    if (optimistic !== null) return optimistic;
    // The batch lies further from its index entry than one read reaches (large batches): find it first.
    const located = await this.locate(offset);
    if (located === null) return empty;
    const firstSize = located.header.batchLength + LOG_OVERHEAD;
    const length = Math.min(end - located.position, Math.max(maxBytes, firstSize));
    const buffer = Buffer.allocUnsafe(length);
    const bytesRead = await this.withReadHandle(async (handle) => (await handle.read(buffer, 0, length, located.position)).bytesRead);
    return this.checkedRun(buffer.subarray(0, bytesRead), 0, bytesRead, located.position, located.predecessor, rules);
  }

  /**
   * The common case in one read: from the index entry at or below `offset`, read the index
   * interval plus maxBytes, walk headers to the batch holding `offset` and return the checked run
   * from there. Returns null when the target batch is not whole inside that read.
   */
  private async readFromIndexPosition(offset: number, maxBytes: number, end: number, rules: BatchChainRules): Promise<SegmentReadResult | null> {
    const { offsetIndex } = await this.ensureIndexes();
    const entry = offsetIndex.lookup(offset);
    const start = entry.position;
    const length = Math.min(end - start, maxBytes + this.limits.indexIntervalBytes + BATCH_HEADER_BYTES);
    const buffer = Buffer.allocUnsafe(length);
    const bytesRead = await this.withReadHandle(async (handle) => (await handle.read(buffer, 0, length, start)).bytesRead);
    let predecessor: Predecessor = start === 0 ? { kind: 'segment-start' } : { kind: 'indexed', lastOffset: entry.offset };
    let cursor = 0;
    while (cursor + BATCH_HEADER_BYTES <= bytesRead) {
      const check = checkBatch(buffer, cursor, bytesRead, { maxBatchBytes: MAX_STORED_BATCH_BYTES, verifyCrc: false });
      if (!check.ok && (check.problem !== 'truncated' || check.header === null)) {
        const error = new CorruptBatchError(this.logPath, start + cursor, check.problem, check.detail, check.header?.baseOffset ?? null);
        if (cursor === 0 && start > 0) error.suspectIndex = true;
        throw error;
      }
      const header = check.header!;
      const size = header.batchLength + LOG_OVERHEAD;
      if (header.baseOffset + header.lastOffsetDelta >= offset) {
        if (cursor + size > bytesRead) return null;
        const limit = Math.min(bytesRead, cursor + Math.max(maxBytes, size));
        return this.checkedRun(buffer, cursor, limit, start, predecessor, rules);
      }
      predecessor = { kind: 'batch', lastOffset: header.baseOffset + header.lastOffsetDelta };
      cursor += size;
    }
    return null;
  }

  /**
   * Checks the whole batches in buffer[from, limit) (CRC, chain, epoch) and returns those before
   * the first bad one; a bad first batch throws. `filePosition` is where buffer[0] sits in the file.
   */
  private checkedRun(buffer: Buffer, from: number, limit: number, filePosition: number, first: Predecessor, rules: BatchChainRules): SegmentReadResult {
    let cursor = from;
    let predecessor = first;
    let firstOffset = -1;
    let nextOffset = -1;
    while (cursor < limit) {
      const check = checkBatch(buffer, cursor, limit, { maxBatchBytes: MAX_STORED_BATCH_BYTES });
      if (!check.ok && check.problem === 'truncated' && cursor > from) break; // maxBytes cut a batch: stop before it
      const problem = check.ok ? chainProblem(check.header, predecessor, this.baseOffset, rules) : { problem: check.problem, detail: check.detail };
      if (problem !== null || !check.ok) {
        const error = new CorruptBatchError(this.logPath, filePosition + cursor, problem!.problem, problem!.detail, check.header?.baseOffset ?? null);
        if (cursor === from && predecessor.kind === 'indexed' && check.ok) error.suspectIndex = true;
        if (cursor === from) throw error;
        this.resources.notice('read stopped before a corrupt batch', { file: this.logPath, position: error.position, problem: error.problem, detail: error.detail });
        break;
      }
      if (firstOffset < 0) firstOffset = check.header.baseOffset;
      const lastOffset = check.header.baseOffset + check.header.lastOffsetDelta;
      predecessor = { kind: 'batch', lastOffset };
      nextOffset = lastOffset + 1;
      cursor += check.size;
    }
    return { records: buffer.subarray(from, cursor), firstOffset, nextOffset };
  }

  /** The first offset >= `fromOffset` whose batch max timestamp reaches `timestamp`, with that batch. */
  async findBatchByTimestamp(timestamp: number, fromOffset: number): Promise<{ position: number; header: BatchHeader } | null> {
    return this.withIndexRetry(() => this.findBatchByTimestampOnce(timestamp, fromOffset));
  }

  private async findBatchByTimestampOnce(timestamp: number, fromOffset: number): Promise<{ position: number; header: BatchHeader } | null> {
    const { timeIndex, offsetIndex } = await this.ensureIndexes();
    const hint = Math.max(timeIndex.lookup(timestamp), fromOffset);
    const start = offsetIndex.lookup(hint).position;
    let found: { position: number; header: BatchHeader } | null = null;
    await this.walkHeadersFromIndex(start, (header, position) => {
      if (header.baseOffset + header.lastOffsetDelta >= fromOffset && header.maxTimestamp >= timestamp) {
        found = { position, header };
        return false;
      }
      return true;
    });
    return found;
  }

  /** Reads one whole batch at a known position (after locate or findBatchByTimestamp). */
  async readBatchAt(position: number, size: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(size);
    const { bytesRead } = await this.withReadHandle((handle) => handle.read(buffer, 0, size, position));
    const check = checkBatch(buffer, 0, bytesRead, { maxBatchBytes: MAX_STORED_BATCH_BYTES });
    if (!check.ok) throw new CorruptBatchError(this.logPath, position, check.problem, check.detail, check.header?.baseOffset ?? null);
    return buffer;
  }

  // -------------------------------------------------------------------------------------------
  // Scanning: recovery, verification, index rebuild

  /**
   * Reads the whole log, checking every batch (and, with verifyCrc, its CRC) and the chain rules,
   * and rebuilds both indexes from it. Stops at the first bad batch; with `truncate`, cuts the
   * file there. Returns what it found; never throws for bad bytes.
   */
  /**
   * `blockingIo`: read with blocking calls, for a worker thread whose only job is this scan (10,000
   * small segments after a crash cost a thread-pool hop per call otherwise). Never on the main thread.
   */
  async scan(rules: BatchChainRules, options: { truncate: boolean; verifyCrc?: boolean; fileSizeBytes?: number; blockingIo?: boolean }): Promise<ScanReport> {
    const fileSize = options.fileSizeBytes ?? (await stat(this.logPath)).size;
    const offsetIndex = new OffsetIndex(this.baseOffset, Math.max(this.limits.maxIndexEntries, 1));
    const timeIndex = new TimeIndex(this.baseOffset, Math.max(this.limits.maxIndexEntries, 1));
    let bytesSinceEntry = 0;
    let max: { timestamp: number; offset: number } = { timestamp: -1, offset: this.baseOffset };
    let previousLast: number | null = null;
    let position = 0;
    let batches = 0;
    let producerBatches = 0;
    let failure: ScanReport['failure'] = null;
    const handle = options.blockingIo === true ? openBlocking(this.logPath, options.truncate ? 'r+' : 'r') : await open(this.logPath, options.truncate ? 'r+' : 'r');
    try {
      let chunk = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(fileSize, BATCH_HEADER_BYTES)));
      scanning: while (position < fileSize) {
        const want = Math.min(chunk.length, fileSize - position);
        const { bytesRead } = await handle.read(chunk, 0, want, position);
        let cursor = 0;
        while (cursor < bytesRead) {
          const atEndOfFile = position + bytesRead >= fileSize;
          const check = checkBatch(chunk, cursor, bytesRead, { maxBatchBytes: MAX_STORED_BATCH_BYTES, verifyCrc: options.verifyCrc !== false });
          if (!check.ok && check.problem === 'truncated' && !atEndOfFile) {
            // The batch continues past this chunk: read again from its start, with room for it whole.
            const declared = bytesRead - cursor >= LOG_OVERHEAD ? chunk.readInt32BE(cursor + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD : BATCH_HEADER_BYTES;
            if (declared > chunk.length && declared <= fileSize - (position + cursor)) chunk = Buffer.allocUnsafe(declared);
            if (cursor === 0 && declared > fileSize - position) {
              failure = { position, problem: 'truncated', detail: `batch declares ${declared} bytes, file has ${fileSize - position}`, baseOffset: check.header?.baseOffset ?? null };
              break scanning;
            }
            break;
          }
          const predecessor: Predecessor = previousLast === null ? { kind: 'segment-start' } : { kind: 'batch', lastOffset: previousLast };
          const problem = check.ok ? chainProblem(check.header, predecessor, this.baseOffset, rules) : { problem: check.problem, detail: check.detail };
          if (!check.ok || problem !== null) {
            failure = { position: position + cursor, problem: problem!.problem, detail: problem!.detail, baseOffset: check.header?.baseOffset ?? null };
            break scanning;
          }
          const header = check.header;
          const lastOffset = header.baseOffset + header.lastOffsetDelta;
          if (header.maxTimestamp > max.timestamp) max = { timestamp: header.maxTimestamp, offset: lastOffset };
          if (bytesSinceEntry > this.limits.indexIntervalBytes && !offsetIndex.isFull() && !timeIndex.isFull()) {
            offsetIndex.append(lastOffset, position + cursor);
            if (max.timestamp >= 0) timeIndex.maybeAppend(max.timestamp, max.offset);
            bytesSinceEntry = 0;
          }
          bytesSinceEntry += check.size;
          previousLast = lastOffset;
          batches++;
          if (header.producerId >= 0) producerBatches++;
          cursor += check.size;
        }
        position += cursor;
      }
      if (failure !== null && options.truncate) {
        await handle.truncate(failure.position);
        await handle.datasync();
      }
    } finally {
      await handle.close();
    }
    const validBytes = failure === null ? fileSize : failure.position;
    if (!this.active && max.timestamp >= 0 && !timeIndex.isFull()) timeIndex.maybeAppend(max.timestamp, max.offset);
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    this.bytesSinceLastIndexEntry = bytesSinceEntry;
    if (options.truncate || failure === null) {
      this.sizeBytes = validBytes;
      this.knownNextOffset = previousLast === null ? this.baseOffset : previousLast + 1;
      this.knownMaxTimestamp = max;
      this.knownProducerBatches = producerBatches;
    }
    this.resources.handles.evict(this.logPath);
    if (!this.active) this.resources.indexes.touch(this, this.indexBytes(), () => this.unloadIndexes());
    return { validBytes, batches, nextOffset: previousLast === null ? this.baseOffset : previousLast + 1, failure };
  }

  /**
   * Removes every batch at or after the one holding `offset` (whole batches only). Returns the
   * new next offset. Only the partition writer calls this.
   */
  async truncateFrom(offset: number, rules: BatchChainRules): Promise<number> {
    await this.loadTail();
    const located = offset <= this.baseOffset ? { position: 0 } : await this.locate(offset);
    if (located === null) return this.nextOffset;
    const cut = async (handle: FileHandle): Promise<void> => {
      await handle.truncate(located.position);
      await handle.datasync();
    };
    if (this.active) {
      await this.withWriteHandle(cut);
    } else {
      const handle = await open(this.logPath, 'r+');
      try {
        await cut(handle);
      } finally {
        await handle.close();
      }
    }
    this.syncedThrough = located.position;
    this.resources.handles.evict(this.logPath);
    this.sizeBytes = located.position;
    // Rebuild indexes and tail facts from what is left; truncation is rare, correctness first.
    const report = await this.scan(rules, { truncate: false, verifyCrc: false, fileSizeBytes: located.position });
    if (!this.active) await this.writeIndexes();
    return report.nextOffset;
  }

  /**
   * Step one of deletion: renames every file to `*.deleted` so no reader finds it by name;
   * returns the new paths for the caller to remove later (reads in flight keep their handles).
   */
  async markDeleted(): Promise<string[]> {
    if (this.deleted) return [];
    this.deleted = true;
    await this.close();
    const renamed: string[] = [];
    for (const path of [this.logPath, this.offsetIndexPath, this.timeIndexPath]) {
      try {
        await rename(path, path + DELETED_SUFFIX);
        renamed.push(path + DELETED_SUFFIX);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return renamed;
  }
}

/** What is left of a gathered write after `consumed` bytes went out (a short writev). */
export function remainingBuffers(buffers: readonly Buffer[], consumed: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = consumed;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}


/** Writes whole batches at `startPosition`; on a failed or short write, cuts the file back there. */
async function writeAt(handle: FileHandle, batches: readonly PendingBatch[], startPosition: number, total: number): Promise<void> {
  try {
    if (batches.length === 1) {
      // The common single-batch append: a plain write, no array of buffers to build.
      const buffer = batches[0]!.buffer;
      let written = 0;
      while (written < total) {
        const { bytesWritten } = await handle.write(buffer, written, total - written, startPosition + written);
        if (bytesWritten <= 0) throw new Error(`write wrote ${bytesWritten} bytes`);
        written += bytesWritten;
      }
    } else {
      let written = 0;
      let pending: Buffer[] = [];
      for (const batch of batches) pending.push(batch.buffer);
      while (written < total) {
        const { bytesWritten } = await handle.writev(pending, startPosition + written);
        if (bytesWritten <= 0) throw new Error(`writev wrote ${bytesWritten} bytes`);
        written += bytesWritten;
        pending = remainingBuffers(pending, bytesWritten);
      }
    }
  } catch (error) {
    await handle.truncate(startPosition).catch(() => undefined);
    throw error;
  }
}

/** The part of a FileHandle that scan() uses, over blocking calls (worker threads only). */
function openBlocking(path: string, flags: 'r' | 'r+'): Pick<FileHandle, 'read' | 'truncate' | 'datasync' | 'close'> {
  const fd = openSync(path, flags);
  const file = {
    read: async (buffer: Buffer, offset: number, length: number, position: number) => ({ bytesRead: readSync(fd, buffer, offset, length, position), buffer }),
    truncate: async (length: number) => ftruncateSync(fd, length),
    datasync: async () => fdatasyncSync(fd),
    close: async () => closeSync(fd),
  };
  return file as unknown as Pick<FileHandle, 'read' | 'truncate' | 'datasync' | 'close'>;
}

export async function writeFileSynced(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, 'w');
  try {
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await handle.write(data, written, data.length - written, written);
      written += bytesWritten;
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

