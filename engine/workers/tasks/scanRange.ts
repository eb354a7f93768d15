// The filtered range scan behind ScanRecords (`tidelog replay`), run on a worker thread so a large
// replay never holds the broker's event loop. The broker hands over a snapshot of the partition
// (segment paths, base offsets, committed bytes) and the range; this runner opens the .log files
// itself, read-only, and walks their batches in order:
//
//   below the range       header only (no CRC): skipped on the way to the first wanted offset
//   in the range          CRC-32C and header checks first; a bad batch stops the scan with a
//                         'corrupt' problem and none of its bytes are returned
//   every record matches  (no key, header or time filter, batch wholly inside the range and the
//                         record limit): the stored batch is returned as it is
//   otherwise             records are decoded (decompressed when needed) and the matching ones
//                         re-packed into a new uncompressed batch that keeps the original base
//                         offset, base timestamp, offset deltas and record bytes, so every record
//                         keeps its offset, timestamp, key and headers. Such batches have offset
//                         gaps, which record batch v2 allows (compaction makes them too).
//
// segments/recordBatch.ts's encodeBatch cannot write offset gaps (it numbers records 0..n-1), so
// the matching records' own bytes are copied instead of being re-encoded field by field.
//
// Limits per task: bytes of batches checked (maxScanBytes), bytes returned (maxResultBytes, but at
// least one batch), records returned (maxRecords). Nothing at or past endOffset (at most the high
// watermark when the scan was planned) and nothing past a segment's committed bytes is read.
import { open, type FileHandle } from 'node:fs/promises';
import { UnsupportedCompressionError, decompress } from '../../../segments/compression.js';
import {
  ATTRIBUTES_OFFSET,
  ATTRIBUTE_COMPRESSION_MASK,
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_LOG_APPEND_TIME,
  BASE_OFFSET_OFFSET,
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  CURRENT_MAGIC,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  RECORDS_OFFSET,
  RECORD_COUNT_OFFSET,
  checkBatch,
  computeBatchCrc,
  readInt64AsNumber,
  writeInt64FromNumber,
  type BatchHeader,
} from '../../../segments/recordBatch.js';
import { readVarint, readVarlong } from '../../../segments/varint.js';

/** Bytes read at once while checking batches in the range. */
const READ_WINDOW_BYTES = 1024 * 1024;
/** Bytes read at once while walking headers below the range (large batches are jumped over). */
const SKIP_WINDOW_BYTES = 64 * 1024;

export interface ScanSegment {
  path: string;
  baseOffset: number;
  /** Committed bytes when the scan was planned: nothing at or past this position is read. */
  endPosition: number;
  /**
   * Where the batch holding the start offset was found (from the offset index), 0 to walk from
   * the beginning; trusted only if a batch with base offset startBatchBaseOffset is there.
   */
  startPosition: number;
  startBatchBaseOffset: number;
}

export interface ScanFilter {
  /** Only records whose key is exactly these bytes; null: any key (null keys included). */
  key: Uint8Array | null;
  /** Only records carrying a header of this name; null: no header filter. */
  headerName: string | null;
  /** With headerName: only such headers with this value; null: any value. */
  headerValue: Uint8Array | null;
  /** Record timestamp >= this; -1: no lower bound. */
  fromTimestamp: number;
  /** Record timestamp < this; -1: no upper bound. */
  toTimestamp: number;
}

export interface ScanRangeInput {
  /** Oldest first, starting with the segment that holds startOffset. */
  segments: ScanSegment[];
  startOffset: number;
  /** Exclusive; at most the high watermark when the scan was planned. */
  endOffset: number;
  filter: ScanFilter;
  maxResultBytes: number;
  maxRecords: number;
  maxScanBytes: number;
  /** Largest stored batch accepted, bytes (a larger declared length is corruption). */
  maxBatchBytes: number;
}

export type ScanProblemKind =
  /** A batch failed its checks: nothing of it was returned. */
  | 'corrupt'
  /** A segment file disappeared (retention or DeleteRecords ran meanwhile): plan again. */
  | 'segment-gone'
  /** Records compressed with a codec this build cannot decode, so they cannot be filtered. */
  | 'unsupported-compression';

export interface ScanProblem {
  kind: ScanProblemKind;
  message: string;
  /** Base offset of the batch concerned, when known. */
  offset: number | null;
}

export interface ScanRangeOutput {
  /** Record batch v2 bytes of the matching records, offsets ascending. */
  records: Uint8Array;
  /** Every offset below this in the range was scanned; the next scan starts here. */
  nextOffset: number;
  recordsScanned: number;
  recordsMatched: number;
  bytesScanned: number;
  /** Set when the scan stopped on a problem; the records before it are still valid. */
  problem: ScanProblem | null;
}

class ScanStop extends Error {
  constructor(readonly problem: ScanProblem) {
    super(problem.message);
  }
}

/** A window of one segment file: batches are read through it, re-reading where they straddle. */
class SegmentReader {
  private window: Buffer = Buffer.allocUnsafe(READ_WINDOW_BYTES);
  private windowStart = 0;
  private windowLength = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly end: number,
  ) {}

  /** The window holding [position, position + bytes), and where that range starts in it. */
  async bytesAt(position: number, bytes: number, readAhead: number): Promise<{ buffer: Buffer; at: number }> {
    if (position >= this.windowStart && position + bytes <= this.windowStart + this.windowLength) {
      return { buffer: this.window, at: position - this.windowStart };
    }
    const length = Math.min(this.end - position, Math.max(readAhead, bytes));
    if (length > this.window.length) this.window = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(this.window, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.windowStart = position;
    this.windowLength = filled;
    if (filled < bytes) {
      throw new ScanStop({ kind: 'corrupt', message: `${this.path}: only ${filled} of ${bytes} bytes could be read at position ${position}`, offset: null });
    }
    return { buffer: this.window, at: 0 };
  }
}

interface MatchingRecords {
  /** [start, end) of each matching record's bytes in the records area. */
  ranges: number[];
  lastOffsetDelta: number;
  maxTimestamp: number;
  /** Offset after the last record looked at (less than the batch's end when maxRecords cut it). */
  nextOffset: number;
  scanned: number;
}

class RangeScan {
  private readonly keyFilter: Buffer | null;
  private readonly headerName: Buffer | null;
  private readonly headerValue: Buffer | null;
  private readonly recordFilters: boolean;
  private readonly batches: Buffer[] = [];
  private resultBytes = 0;
  private matched = 0;
  private scanned = 0;
  private bytesScanned = 0;
  private next: number;
  /** Last offset of the previous batch: offsets must increase from batch to batch. */
  private previousLastOffset = -1;

  constructor(
    private readonly input: ScanRangeInput,
    private readonly signal: AbortSignal | null,
  ) {
    const { filter } = input;
    this.keyFilter = filter.key === null ? null : Buffer.from(filter.key.buffer, filter.key.byteOffset, filter.key.byteLength);
    this.headerName = filter.headerName === null ? null : Buffer.from(filter.headerName, 'utf8');
    this.headerValue = filter.headerValue === null ? null : Buffer.from(filter.headerValue.buffer, filter.headerValue.byteOffset, filter.headerValue.byteLength);
    this.recordFilters = this.keyFilter !== null || this.headerName !== null || filter.fromTimestamp >= 0 || filter.toTimestamp >= 0;
    this.next = input.startOffset;
  }

  async run(): Promise<ScanRangeOutput> {
    let problem: ScanProblem | null = null;
    try {
      let finished = true;
      for (const segment of this.input.segments) {
        if (segment.baseOffset >= this.input.endOffset) break;
        if (!(await this.scanSegment(segment))) {
          finished = false;
          break;
        }
      }
      // Every segment read to its committed end: the whole range was scanned.
      if (finished) this.next = this.input.endOffset;
    } catch (error) {
      if (!(error instanceof ScanStop)) throw error;
      problem = error.problem;
    }
    return {
      records: this.batches.length === 1 ? this.batches[0]! : Buffer.concat(this.batches, this.resultBytes),
      nextOffset: this.next,
      recordsScanned: this.scanned,
      recordsMatched: this.matched,
      bytesScanned: this.bytesScanned,
      problem,
    };
  }

  /** Scans one segment; false when a limit or the end offset stopped the scan. */
  private async scanSegment(segment: ScanSegment): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(segment.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      throw new ScanStop({ kind: 'segment-gone', message: `${segment.path} was deleted during the scan`, offset: segment.baseOffset });
    }
    try {
      // A sealed segment that compaction replaced meanwhile is shorter; its offsets are the same.
      const end = Math.min(segment.endPosition, (await handle.stat()).size);
      const reader = new SegmentReader(handle, segment.path, end);
      let position = await hintedStart(reader, segment, end);
      while (position < end) {
        // A cancelled scan stops between batches; the finally below still closes the file.
        this.signal?.throwIfAborted();
        const corrupt = (message: string, offset: number | null): ScanStop =>
          new ScanStop({ kind: 'corrupt', message: `corrupt batch in ${segment.path} at position ${position}${offset === null ? '' : ` (base offset ${offset})`}: ${message}`, offset });
        if (end - position < BATCH_HEADER_BYTES) throw corrupt(`${end - position} bytes left, less than a batch header`, null);
        const head = await reader.bytesAt(position, BATCH_HEADER_BYTES, SKIP_WINDOW_BYTES);
        const baseOffset = readInt64AsNumber(head.buffer, head.at + BASE_OFFSET_OFFSET);
        const size = head.buffer.readInt32BE(head.at + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
        if (size < BATCH_HEADER_BYTES || size > this.input.maxBatchBytes || position + size > end) {
          throw corrupt(`a batch of ${size} bytes does not fit (${end - position} committed bytes left)`, Number.isNaN(baseOffset) ? null : baseOffset);
        }
        if (Number.isNaN(baseOffset)) throw corrupt('base offset beyond 2^53', null);
        if (baseOffset >= this.input.endOffset) {
          this.next = this.input.endOffset;
          return false;
        }
        const lastOffset = baseOffset + head.buffer.readInt32BE(head.at + LAST_OFFSET_DELTA_OFFSET);
        if (baseOffset <= this.previousLastOffset) throw corrupt(`offsets go back: base offset ${baseOffset} after ${this.previousLastOffset}`, baseOffset);
        if (lastOffset < this.next) {
          // Below the range: not returned, so not checked; the next header is all that matters.
          this.previousLastOffset = lastOffset;
          position += size;
          continue;
        }
        const whole = await reader.bytesAt(position, size, READ_WINDOW_BYTES);
        const check = checkBatch(whole.buffer, whole.at, whole.at + size, { maxBatchBytes: this.input.maxBatchBytes });
        if (!check.ok) throw corrupt(`${check.problem}: ${check.detail}`, baseOffset);
        this.previousLastOffset = lastOffset;
        if (!this.takeBatch(whole.buffer, whole.at, check.header, corrupt)) return false;
        position += size;
        if (this.bytesScanned >= this.input.maxScanBytes || this.matched >= this.input.maxRecords) return false;
      }
      return true;
    } finally {
      await handle.close();
    }
  }

  /**
   * Adds the batch's matching records to the result; false when the result is full and the batch
   * was left for the next scan (nothing of it counted).
   */
  private takeBatch(buffer: Buffer, at: number, header: BatchHeader, corrupt: (message: string, offset: number | null) => ScanStop): boolean {
    const size = header.batchLength + LOG_OVERHEAD;
    const lastOffset = header.baseOffset + header.lastOffsetDelta;
    const nextAfterBatch = Math.min(lastOffset + 1, this.input.endOffset);
    const roomForRecords = this.input.maxRecords - this.matched;
    let out: Buffer | null = null;
    let matched = 0;
    let scanned = header.recordCount;
    let next = nextAfterBatch;
    if ((header.attributes & ATTRIBUTE_CONTROL) !== 0) {
      scanned = 0; // transaction markers are not records a reader sees
    } else if (!this.recordFilters && header.baseOffset >= this.next && lastOffset < this.input.endOffset && header.recordCount <= roomForRecords) {
      out = Buffer.from(buffer.subarray(at, at + size));
      matched = header.recordCount;
    } else if (!this.outsideTimeRange(header)) {
      const records = this.matchingRecords(buffer, at, header, roomForRecords, corrupt);
      scanned = records.scanned;
      next = Math.min(records.nextOffset, nextAfterBatch);
      matched = records.ranges.length / 2;
      if (matched > 0) out = repack(buffer, at, header, records);
    }
    if (out !== null && this.batches.length > 0 && this.resultBytes + out.length > this.input.maxResultBytes) return false;
    if (out !== null) {
      this.batches.push(out);
      this.resultBytes += out.length;
    }
    this.matched += matched;
    this.scanned += scanned;
    this.bytesScanned += size;
    this.next = next;
    return this.resultBytes < this.input.maxResultBytes;
  }

  /** Whether no record of the batch can fall in the time range (its largest timestamp is below it). */
  private outsideTimeRange(header: BatchHeader): boolean {
    return this.input.filter.fromTimestamp >= 0 && header.maxTimestamp < this.input.filter.fromTimestamp;
  }

  private matchingRecords(buffer: Buffer, at: number, header: BatchHeader, roomForRecords: number, corrupt: (message: string, offset: number | null) => ScanStop): MatchingRecords & { area: Buffer } {
    const codec = header.attributes & ATTRIBUTE_COMPRESSION_MASK;
    let area: Buffer;
    try {
      area = decompress(codec, buffer.subarray(at + RECORDS_OFFSET, at + header.batchLength + LOG_OVERHEAD));
    } catch (error) {
      if (error instanceof UnsupportedCompressionError) {
        throw new ScanStop({ kind: 'unsupported-compression', message: `batch at offset ${header.baseOffset}: ${error.message}`, offset: header.baseOffset });
      }
      throw corrupt(`records do not decompress: ${(error as Error).message}`, header.baseOffset);
    }
    const { filter } = this.input;
    const logAppendTime = (header.attributes & ATTRIBUTE_LOG_APPEND_TIME) !== 0;
    const result: MatchingRecords & { area: Buffer } = { area, ranges: [], lastOffsetDelta: 0, maxTimestamp: -1, nextOffset: header.baseOffset + header.lastOffsetDelta + 1, scanned: 0 };
    let cursor = 0;
    try {
      for (let i = 0; i < header.recordCount; i++) {
        const length = readVarint(area, cursor);
        const start = cursor;
        const end = length.next + length.value;
        if (length.value <= 0 || end > area.length) throw new Error(`record ${i} declares ${length.value} bytes, ${area.length - length.next} remain`);
        const timestampDelta = readVarlong(area, length.next + 1, end);
        const offsetDelta = readVarint(area, timestampDelta.next, end);
        const offset = header.baseOffset + offsetDelta.value;
        const timestamp = logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta.value;
        cursor = end;
        if (offset < this.next) continue;
        if (offset >= this.input.endOffset) break;
        result.scanned++;
        const wanted =
          (filter.fromTimestamp < 0 || timestamp >= filter.fromTimestamp) &&
          (filter.toTimestamp < 0 || timestamp < filter.toTimestamp) &&
          this.keyAndHeadersMatch(area, offsetDelta.next, end);
        if (!wanted) continue;
        result.ranges.push(start, end);
        result.lastOffsetDelta = offsetDelta.value;
        if (timestamp > result.maxTimestamp) result.maxTimestamp = timestamp;
        if (result.ranges.length / 2 >= roomForRecords) {
          result.nextOffset = offset + 1;
          return result;
        }
      }
    } catch (error) {
      if (error instanceof ScanStop) throw error;
      throw corrupt(`undecodable records: ${(error as Error).message}`, header.baseOffset);
    }
    return result;
  }

  /** The key and header filters against one record, whose key field starts at `position`. */
  private keyAndHeadersMatch(area: Buffer, position: number, end: number): boolean {
    const keyLength = readVarint(area, position, end);
    let cursor = keyLength.next + Math.max(keyLength.value, 0);
    if (this.keyFilter !== null) {
      if (keyLength.value < 0 || keyLength.value !== this.keyFilter.length) return false;
      if (!this.keyFilter.equals(area.subarray(keyLength.next, cursor))) return false;
    }
    if (this.headerName === null) return true;
    const valueLength = readVarint(area, cursor, end);
    cursor = valueLength.next + Math.max(valueLength.value, 0);
    const count = readVarint(area, cursor, end);
    cursor = count.next;
    for (let h = 0; h < count.value; h++) {
      const nameLength = readVarint(area, cursor, end);
      const nameEnd = nameLength.next + nameLength.value;
      const valueField = readVarint(area, nameEnd, end);
      const valueEnd = valueField.next + Math.max(valueField.value, 0);
      if (nameLength.value < 0 || valueEnd > end) throw new Error(`a header runs past its record`);
      cursor = valueEnd;
      if (nameLength.value !== this.headerName.length || !this.headerName.equals(area.subarray(nameLength.next, nameEnd))) continue;
      if (this.headerValue === null) return true;
      if (valueField.value === this.headerValue.length && this.headerValue.equals(area.subarray(valueField.next, valueEnd))) return true;
    }
    return false;
  }
}

/**
 * The hinted start position if the batch expected there is there (magic 2, the expected base
 * offset, a length that fits); else 0. A miss is not corruption: compaction may have swapped the
 * file since the hint was taken, and the walk from 0 checks every batch anyway.
 */
async function hintedStart(reader: SegmentReader, segment: ScanSegment, end: number): Promise<number> {
  const position = segment.startPosition;
  if (position <= 0 || position + BATCH_HEADER_BYTES > end) return 0;
  const head = await reader.bytesAt(position, BATCH_HEADER_BYTES, SKIP_WINDOW_BYTES);
  const size = head.buffer.readInt32BE(head.at + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
  const fits = head.buffer[head.at + MAGIC_OFFSET] === CURRENT_MAGIC && size >= BATCH_HEADER_BYTES && position + size <= end;
  return fits && readInt64AsNumber(head.buffer, head.at + BASE_OFFSET_OFFSET) === segment.startBatchBaseOffset ? position : 0;
}

/**
 * A new uncompressed batch holding the chosen records' bytes: the original header (base offset,
 * base timestamp, producer fields, leader epoch) with the length, codec bits, last offset delta,
 * max timestamp, record count and CRC made true for what it now holds.
 */
function repack(buffer: Buffer, at: number, header: BatchHeader, records: MatchingRecords & { area: Buffer }): Buffer {
  let recordBytes = 0;
  for (let i = 0; i < records.ranges.length; i += 2) recordBytes += records.ranges[i + 1]! - records.ranges[i]!;
  const out = Buffer.allocUnsafe(RECORDS_OFFSET + recordBytes);
  buffer.copy(out, 0, at, at + RECORDS_OFFSET);
  let position = RECORDS_OFFSET;
  for (let i = 0; i < records.ranges.length; i += 2) position += records.area.copy(out, position, records.ranges[i]!, records.ranges[i + 1]!);
  out.writeInt32BE(out.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  out.writeInt16BE(header.attributes & ~ATTRIBUTE_COMPRESSION_MASK, ATTRIBUTES_OFFSET);
  out.writeInt32BE(records.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  // LogAppendTime batches give every record the batch's max timestamp: it must stay as it was.
  if ((header.attributes & ATTRIBUTE_LOG_APPEND_TIME) === 0) writeInt64FromNumber(out, MAX_TIMESTAMP_OFFSET, records.maxTimestamp);
  out.writeInt32BE(records.ranges.length / 2, RECORD_COUNT_OFFSET);
  out.writeUInt32BE(computeBatchCrc(out), CRC_OFFSET);
  return out;
}

/** `signal`: the task's cancel, checked before each batch. */
export async function runScanRange(input: ScanRangeInput, signal?: AbortSignal): Promise<ScanRangeOutput> {
  if (!Number.isSafeInteger(input.startOffset) || !Number.isSafeInteger(input.endOffset) || input.startOffset < 0 || input.endOffset < input.startOffset) {
    throw new RangeError(`scanRange needs 0 <= startOffset <= endOffset, got ${input.startOffset} and ${input.endOffset}`);
  }
  for (const name of ['maxResultBytes', 'maxRecords', 'maxScanBytes', 'maxBatchBytes'] as const) {
    if (!Number.isSafeInteger(input[name]) || input[name] < 1) throw new RangeError(`scanRange needs a positive integer ${name}, got ${input[name]}`);
  }
  return new RangeScan(input, signal ?? null).run();
}
