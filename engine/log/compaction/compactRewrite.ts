// Compaction, phase two (in a worker): rewrites consecutive sealed segments into cleaned segments
// `<B>.log.cleaned`, each replacing as many input segments as fit one segment.bytes of output (+ indexes and the swap manifest, see engine/log/compaction/segmentSwap.ts),
// keeping a record iff no later record of its key is in the map (or it lies past the map's end),
// and dropping tombstones older than delete.retention.ms. Offsets and timestamps are kept: a
// rewritten batch keeps its header (base offset, last offset delta, base timestamp, producer
// fields) and the raw bytes of its retained records, so record deltas stay valid; only
// batchLength, recordCount, maxTimestamp and the CRC change. Control batches are kept whole, as
// are batches whose codec we can decode but not encode (zstd). Every file is fsynced.
// Writes are synchronous for the reason reads are (see compactBatches.ts): this is a worker thread.
import { closeSync, fdatasyncSync, ftruncateSync, openSync, writevSync } from 'node:fs';
import { OffsetIndex } from '../../../segments/offsetIndex.js';
import { TimeIndex } from '../../../segments/timeIndex.js';
import {
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_LOG_APPEND_TIME,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  LOG_OVERHEAD,
  MAX_TIMESTAMP_OFFSET,
  RECORD_COUNT_OFFSET,
  RECORDS_OFFSET,
  compressionOf,
  computeBatchCrc,
  writeInt64FromNumber,
  type BatchHeader,
} from '../../../segments/recordBatch.js';
import { UnsupportedCompressionError, compress, decompress } from '../../../segments/compression.js';
import { remainingBuffers, writeFileSynced } from '../../../segments/logSegment.js';
import { LOG_SUFFIX, segmentPath } from '../../../segments/segmentNames.js';
import { hashKey, type KeyOffsetMap } from './keyOffsetMap.js';
import { walkRecords } from './recordWalk.js';
import { cleanedFiles, encodeManifest } from './segmentSwap.js';
import { CorruptSegmentError, forEachBatchInFile, type ReadBufferStats } from './compactBatches.js';
import type { SegmentToRead } from './compactKeyMap.js';
import { MAX_RELATIVE_OFFSET, MAX_SEGMENT_BYTES } from '../../../common/limits.js';

/** Cleaned bytes are written in runs of about this size. */
const WRITE_RUN_BYTES = 1024 * 1024;

export interface RewriteRules {
  map: KeyOffsetMap;
  mapEndOffset: number;
  /** Tombstones with a timestamp below this are dropped (delete.retention.ms has passed). */
  tombstoneHorizonMs: number;
  indexIntervalBytes: number;
  maxIndexEntries: number;
}

export interface RewriteStats {
  recordsKept: number;
  recordsDropped: number;
  tombstonesDropped: number;
  batchesRewritten: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface RewrittenGroup {
  baseOffset: number;
  replacedBaseOffsets: number[];
  sizeBytes: number;
}

/** Appends batches to the cleaned log and indexes them as LogSegment does on append. */
class CleanedSegmentWriter {
  readonly offsetIndex: OffsetIndex;
  readonly timeIndex: TimeIndex;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private bytesSinceIndexEntry = 0;
  private max = { timestamp: -1, offset: 0 };

  constructor(
    private readonly fd: number,
    private readonly baseOffset: number,
    private readonly rules: RewriteRules,
  ) {
    this.offsetIndex = new OffsetIndex(baseOffset, Math.max(rules.maxIndexEntries, 1));
    this.timeIndex = new TimeIndex(baseOffset, Math.max(rules.maxIndexEntries, 1));
    this.max.offset = baseOffset;
  }

  get sizeBytes(): number {
    return this.written + this.pendingBytes;
  }

  append(batch: Buffer, lastOffset: number, maxTimestamp: number): void {
    const position = this.sizeBytes;
    if (position + batch.length > MAX_SEGMENT_BYTES) throw new RangeError(`cleaned segment ${this.baseOffset} would pass 2 GiB`);
    if (maxTimestamp > this.max.timestamp) this.max = { timestamp: maxTimestamp, offset: lastOffset };
    const indexable = lastOffset - this.baseOffset <= MAX_RELATIVE_OFFSET && !this.offsetIndex.isFull() && !this.timeIndex.isFull();
    if (this.bytesSinceIndexEntry > this.rules.indexIntervalBytes && indexable) {
      this.offsetIndex.append(lastOffset, position);
      if (this.max.timestamp >= 0) this.timeIndex.maybeAppend(this.max.timestamp, this.max.offset);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += batch.length;
    // The batch may be a view of a reused read buffer: keep a copy until it is written.
    this.pending.push(Buffer.from(batch));
    this.pendingBytes += batch.length;
    if (this.pendingBytes >= WRITE_RUN_BYTES) this.drain();
  }

  private drain(): void {
    let buffers = this.pending;
    let remaining = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    while (remaining > 0) {
      const bytesWritten = writevSync(this.fd, buffers, this.written);
      if (bytesWritten <= 0) throw new Error(`writev wrote ${bytesWritten} bytes`);
      this.written += bytesWritten;
      remaining -= bytesWritten;
      buffers = remainingBuffers(buffers, bytesWritten);
    }
  }

  /** Where the output stands now (everything written), to return to with rollback(). */
  mark(): WriterMark {
    this.drain();
    return { sizeBytes: this.written, bytesSinceIndexEntry: this.bytesSinceIndexEntry, max: { ...this.max } };
  }

  /** Cuts the output back to `mark`: the records of offsets from `firstOffset` on are gone. */
  rollback(mark: WriterMark, firstOffset: number): void {
    this.pending = [];
    this.pendingBytes = 0;
    ftruncateSync(this.fd, mark.sizeBytes);
    this.written = mark.sizeBytes;
    this.offsetIndex.truncateToPosition(mark.sizeBytes);
    this.timeIndex.truncateToOffset(firstOffset);
    this.bytesSinceIndexEntry = mark.bytesSinceIndexEntry;
    this.max = mark.max;
  }

  /** Writes what is buffered, syncs, and seals the time index with the largest timestamp. */
  finish(): void {
    this.drain();
    fdatasyncSync(this.fd);
    const max = this.max;
    if (max.timestamp >= 0 && !this.timeIndex.isFull() && max.offset - this.baseOffset <= MAX_RELATIVE_OFFSET) this.timeIndex.maybeAppend(max.timestamp, max.offset);
  }
}

interface WriterMark {
  sizeBytes: number;
  bytesSinceIndexEntry: number;
  max: { timestamp: number; offset: number };
}

/** What to write for one stored batch: itself, a rewritten copy, or nothing. */
function filterBatch(batch: Buffer, header: BatchHeader, rules: RewriteRules, stats: RewriteStats, path: string, filePosition: number): { bytes: Buffer; maxTimestamp: number } | null {
  if ((header.attributes & ATTRIBUTE_CONTROL) !== 0) {
    // Transaction markers keep their meaning only if they stay; there are few of them.
    stats.recordsKept += header.recordCount;
    return { bytes: batch, maxTimestamp: header.maxTimestamp };
  }
  const codec = compressionOf(header.attributes);
  const retained: Array<[number, number]> = [];
  let retainedBytes = 0;
  let maxTimestamp = -1;
  let dropped = 0;
  let tombstonesDropped = 0;
  let area: Buffer;
  const hash = { high: 0, low: 0 };
  try {
    area = decompress(codec, batch.subarray(RECORDS_OFFSET));
    walkRecords(area, header.recordCount, (record) => {
      const offset = header.baseOffset + record.offsetDelta;
      // Records without a key cannot be compacted; Kafka's cleaner drops them too.
      let keep = record.keyStart >= 0;
      if (keep && offset < rules.mapEndOffset) {
        const latest = rules.map.get(hashKey(area, record.keyStart, record.keyEnd, hash));
        keep = latest < 0 || offset >= latest;
        const timestamp = header.baseTimestamp + record.timestampDelta;
        if (keep && record.valueIsNull && timestamp < rules.tombstoneHorizonMs) {
          keep = false;
          tombstonesDropped++;
        }
      }
      if (!keep) {
        dropped++;
        return;
      }
      retained.push([record.start, record.end]);
      retainedBytes += record.end - record.start;
      maxTimestamp = Math.max(maxTimestamp, header.baseTimestamp + record.timestampDelta);
    });
  } catch (error) {
    throw new CorruptSegmentError(path, filePosition, 'records', `records of the batch at offset ${header.baseOffset} do not decode: ${(error as Error).message}`);
  }
  const keepWhole = (): { bytes: Buffer; maxTimestamp: number } => {
    stats.recordsKept += header.recordCount;
    return { bytes: batch, maxTimestamp: header.maxTimestamp };
  };
  if (retained.length === header.recordCount) return keepWhole();
  stats.recordsDropped += dropped;
  stats.tombstonesDropped += tombstonesDropped;
  if (retained.length === 0) return null;
  const records = Buffer.allocUnsafe(retainedBytes);
  let position = 0;
  for (const [start, end] of retained) position += area.copy(records, position, start, end);
  let packed: Buffer;
  try {
    packed = compress(codec, records);
  } catch (error) {
    if (!(error instanceof UnsupportedCompressionError)) throw error;
    // We read this codec but cannot write it: keep the batch as it is (nothing is lost).
    stats.recordsDropped -= dropped;
    stats.tombstonesDropped -= tombstonesDropped;
    return keepWhole();
  }
  stats.recordsKept += retained.length;
  const rewritten = Buffer.allocUnsafe(RECORDS_OFFSET + packed.length);
  batch.copy(rewritten, 0, 0, RECORDS_OFFSET);
  packed.copy(rewritten, RECORDS_OFFSET);
  rewritten.writeInt32BE(rewritten.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  rewritten.writeInt32BE(retained.length, RECORD_COUNT_OFFSET);
  // LogAppendTime batches carry the append time for every record: it stays.
  const newMax = (header.attributes & ATTRIBUTE_LOG_APPEND_TIME) !== 0 ? header.maxTimestamp : maxTimestamp;
  writeInt64FromNumber(rewritten, MAX_TIMESTAMP_OFFSET, newMax);
  rewritten.writeUInt32BE(computeBatchCrc(rewritten), CRC_OFFSET);
  stats.batchesRewritten++;
  return { bytes: rewritten, maxTimestamp: newMax };
}

export interface SegmentToRewrite extends SegmentToRead {
  nextBaseOffset: number;
}

/** One cleaned segment being written. */
class OpenGroup {
  readonly replaced: number[] = [];
  readonly writer: CleanedSegmentWriter;
  private readonly fd: number;
  private fileClosed = false;

  constructor(
    private readonly dir: string,
    readonly baseOffset: number,
    rules: RewriteRules,
  ) {
    this.fd = openSync(cleanedFiles(dir, baseOffset).log, 'w');
    this.writer = new CleanedSegmentWriter(this.fd, baseOffset, rules);
  }

  /** Syncs the log, writes the indexes and the manifest (all fsynced); returns what the swap needs. */
  async close(stats: RewriteStats): Promise<RewrittenGroup> {
    try {
      this.writer.finish();
    } finally {
      this.abandon();
    }
    const files = cleanedFiles(this.dir, this.baseOffset);
    stats.bytesWritten += this.writer.sizeBytes;
    await writeFileSynced(files.offsetIndex, this.writer.offsetIndex.toBuffer());
    await writeFileSynced(files.timeIndex, this.writer.timeIndex.toBuffer());
    await writeFileSynced(files.manifest, encodeManifest({ baseOffset: this.baseOffset, replacedBaseOffsets: this.replaced }));
    return { baseOffset: this.baseOffset, replacedBaseOffsets: [...this.replaced], sizeBytes: this.writer.sizeBytes };
  }

  /** Gives up this group's file (an error elsewhere); the caller removes `.cleaned` files. */
  abandon(): void {
    if (this.fileClosed) return;
    this.fileClosed = true;
    closeSync(this.fd);
  }
}

/**
 * Rewrites `segments` (consecutive, oldest first) up to the map's end. Cleaned output is grouped
 * by its real size: a segment joins the current cleaned segment unless the output would pass
 * `segmentBytes` (then that segment's output is cut off again and it starts the next one), so
 * segments that clean down to little become one.
 */
export async function rewriteSegments(dir: string, segments: readonly SegmentToRewrite[], rules: RewriteRules, segmentBytes: number, stats: RewriteStats, readStats: ReadBufferStats): Promise<RewrittenGroup[]> {
  const groups: RewrittenGroup[] = [];
  let current: OpenGroup | null = null;
  const copy = async (group: OpenGroup, segment: SegmentToRewrite): Promise<void> => {
    const path = segmentPath(dir, segment.baseOffset, LOG_SUFFIX);
    await forEachBatchInFile(path, segment.sizeBytes, (buffer, position, header, filePosition) => {
      const size = header.batchLength + LOG_OVERHEAD;
      stats.bytesRead += size;
      const kept = filterBatch(buffer.subarray(position, position + size), header, rules, stats, path, filePosition);
      if (kept !== null) group.writer.append(kept.bytes, header.baseOffset + header.lastOffsetDelta, kept.maxTimestamp);
    }, readStats);
  };
  try {
    for (const segment of segments) {
      // Segments wholly past the map's end hold nothing the map can deduplicate.
      if (segment.baseOffset >= rules.mapEndOffset) break;
      if (current !== null && segment.nextBaseOffset - 1 - current.baseOffset > MAX_RELATIVE_OFFSET) {
        groups.push(await current.close(stats));
        current = null;
      }
      current ??= new OpenGroup(dir, segment.baseOffset, rules);
      const mark = current.writer.mark();
      const statsBefore = { ...stats };
      await copy(current, segment);
      if (current.writer.sizeBytes > segmentBytes && current.replaced.length > 0) {
        current.writer.rollback(mark, segment.baseOffset);
        Object.assign(stats, statsBefore);
        groups.push(await current.close(stats));
        current = new OpenGroup(dir, segment.baseOffset, rules);
        await copy(current, segment);
      }
      current.replaced.push(segment.baseOffset);
    }
    if (current !== null) groups.push(await current.close(stats));
    current = null;
  } finally {
    current?.abandon();
  }
  return groups;
}
