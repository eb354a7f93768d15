// Reads of one partition's log. read() finds the segment by binary search over base offsets,
// then the segment's sparse index; every returned batch has passed its CRC and chain checks.
// Batches below the records-validated-from marker (stored before append validation existed) have
// their records checked first. A read that raced a truncation, deletion or compaction swap is
// retried once against the new segment list. Nothing here changes the log.
import { basename } from 'node:path';
import { LOG_OVERHEAD, batchSizeOf, decodeRecords, readBatchHeader, RecordDecodeError } from '../../segments/recordBatch.js';
import { CorruptCompressionError, UnsupportedCompressionError } from '../../segments/compression.js';
import { VarintError } from '../../segments/varint.js';
import type { LogSegment } from '../../segments/logSegment.js';
import { parsePartitionDirName } from '../../segments/segmentNames.js';
import { InvalidStoredBatchError, OffsetOutOfRangeError } from '../errors.js';
import { decompressedBatchLimit, type AppendValidator } from './appendValidation.js';
import type { LogState } from './logState.js';

/** Base offsets remembered per log for batches checked on read (about 1 MiB of Set each). */
const MAX_REMEMBERED_BATCHES = 65_536;

export interface LogReadResult {
  /** Whole batches; empty when there is nothing at or after the offset (yet). */
  records: Buffer;
  logStartOffset: number;
  logEndOffset: number;
}

/** One sealed segment as retention sees it (PartitionLog.sealedSegments). */
export interface SealedSegmentFacts {
  baseOffset: number;
  /** Base offset of the next segment: where the log starts once this one and those before it go. */
  nextBaseOffset: number;
  sizeBytes: number;
  /** Largest record timestamp in the segment, -1 when it holds no record with a timestamp. */
  largestTimestamp: number;
  logPath: string;
}

export class LogReader {
  private readonly state: LogState;
  private readonly validator: AppendValidator;
  /** Base offsets of batches below recordsValidatedFrom that passed (bounded; cleared when full). */
  private readonly legacyBatchesChecked = new Set<number>();
  /** Base offsets of such batches that failed and were reported (bounded). */
  private readonly invalidBatchesReported = new Set<number>();

  constructor(state: LogState, validator: AppendValidator) {
    this.state = state;
    this.validator = validator;
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (but at least one batch when
   * there is data), never past `maxOffset` (exclusive; defaults to the log end).
   */
  async read(offset: number, maxBytes: number, options: { maxOffset?: number; minOneBatch?: boolean }): Promise<LogReadResult> {
    const state = this.state;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`read needs integer offset and non-negative integer maxBytes, got ${offset} and ${maxBytes}`);
    }
    for (let attempt = 0; ; attempt++) {
      const truncationsBefore = state.truncations;
      if (attempt > 0 && state.segmentSwap !== null) await state.segmentSwap;
      try {
        return await this.readOnce(offset, maxBytes, options.maxOffset ?? state.logEnd, options.minOneBatch ?? true);
      } catch (error) {
        // A truncation or deletion that raced this read can make bytes vanish under it; retry once
        // against the new state rather than report corruption that is not there.
        const raced = state.truncations !== truncationsBefore || (error as NodeJS.ErrnoException).code === 'ENOENT';
        if (!raced || attempt > 0) throw error;
      }
    }
  }

  private async readOnce(offset: number, maxBytes: number, maxOffset: number, minOneBatch: boolean): Promise<LogReadResult> {
    const state = this.state;
    if (offset < state.logStart || offset > state.logEnd) throw new OffsetOutOfRangeError(offset, state.logStart, state.logEnd);
    const empty = { records: Buffer.alloc(0), logStartOffset: state.logStart, logEndOffset: state.logEnd };
    if (offset >= maxOffset) return empty;
    const segments = state.segments;
    for (let i = state.segmentIndexFor(offset); i < segments.length; i++) {
      const segment = segments[i]!;
      const result = await segment.read(Math.max(offset, segment.baseOffset), maxBytes, state.rules, minOneBatch);
      if (result.firstBatchTooLarge === true) break;
      if (result.records.length === 0) continue;
      const records = result.firstOffset < state.recordsValidatedFrom ? await this.checkUnvalidatedBatches(result.records, segment) : result.records;
      return { records: trimToOffset(records, maxOffset), logStartOffset: state.logStart, logEndOffset: state.logEnd };
    }
    return empty;
  }

  /**
   * Checks the records of batches stored before append validation existed. Returns the batches
   * before the first that fails (reported once with its file and offsets); throws
   * InvalidStoredBatchError when the first batch itself fails, so nothing undecodable is served.
   */
  private async checkUnvalidatedBatches(records: Buffer, segment: LogSegment): Promise<Buffer> {
    const state = this.state;
    const limitBytes = decompressedBatchLimit(state.config.maxMessageBytes);
    let position = 0;
    while (position < records.length) {
      const header = readBatchHeader(records, position);
      const size = batchSizeOf(header);
      if (header.baseOffset >= state.recordsValidatedFrom) break;
      if (!this.legacyBatchesChecked.has(header.baseOffset)) {
        const verdict = await this.validator.checkStoredBatch(records.subarray(position, position + size), header, { limitBytes, denseOffsetDeltas: state.rules.contiguousOffsets });
        if (!verdict.ok) {
          const error = new InvalidStoredBatchError(segment.logPath, header.baseOffset, header.baseOffset + header.lastOffsetDelta, verdict.detail);
          if (!this.invalidBatchesReported.has(header.baseOffset) && this.invalidBatchesReported.size < MAX_REMEMBERED_BATCHES) {
            this.invalidBatchesReported.add(header.baseOffset);
            const partitionOfDir = parsePartitionDirName(basename(state.dir));
            state.logger.error('stored batch does not decode; it is not served', { topic: partitionOfDir?.topic ?? basename(state.dir), partition: partitionOfDir?.partition ?? null, file: segment.logPath, offset: header.baseOffset, lastOffset: error.lastOffset, problem: verdict.problem, detail: verdict.detail });
          }
          if (position === 0) throw error;
          return records.subarray(0, position);
        }
        if (this.legacyBatchesChecked.size >= MAX_REMEMBERED_BATCHES) this.legacyBatchesChecked.clear();
        this.legacyBatchesChecked.add(header.baseOffset);
      }
      position += size;
    }
    return records;
  }

  /**
   * The first offset at or after the log start whose record timestamp is >= `timestamp`, with that
   * record's timestamp; null when no record is that recent. Records of batches whose codec we
   * cannot decode are answered with the batch's base offset and max timestamp.
   */
  async readByTimestamp(timestamp: number): Promise<{ offset: number; timestamp: number } | null> {
    const state = this.state;
    for (let attempt = 0; ; attempt++) {
      const truncationsBefore = state.truncations;
      if (attempt > 0 && state.segmentSwap !== null) await state.segmentSwap;
      try {
        return await this.readByTimestampOnce(timestamp);
      } catch (error) {
        // As read(): a compaction swap, truncation or deletion that raced the lookup; retry once.
        const raced = state.truncations !== truncationsBefore || (error as NodeJS.ErrnoException).code === 'ENOENT';
        if (!raced || attempt > 0) throw error;
      }
    }
  }

  private async readByTimestampOnce(timestamp: number): Promise<{ offset: number; timestamp: number } | null> {
    const state = this.state;
    for (const segment of state.segments) {
      if (segment.isEmpty || (await segment.maxTimestamp()) < timestamp) continue;
      let fromOffset = Math.max(state.logStart, segment.baseOffset);
      for (;;) {
        const found = await segment.findBatchByTimestamp(timestamp, fromOffset);
        if (found === null) break;
        const batch = await segment.readBatchAt(found.position, found.header.batchLength + LOG_OVERHEAD);
        try {
          for (const record of decodeRecords(batch)) {
            if (record.offset >= fromOffset && record.timestamp >= timestamp) return { offset: record.offset, timestamp: record.timestamp };
          }
        } catch (error) {
          // A codec we cannot decode, or a batch stored before validation whose records do not
          // decode: the batch's own offsets and max timestamp are the best answer there is.
          if (!(error instanceof UnsupportedCompressionError || error instanceof CorruptCompressionError || error instanceof RecordDecodeError || error instanceof VarintError)) throw error;
          return { offset: Math.max(found.header.baseOffset, fromOffset), timestamp: found.header.maxTimestamp };
        }
        // Every qualifying record of this batch sits below the log start: look further on.
        fromOffset = found.header.baseOffset + found.header.lastOffsetDelta + 1;
      }
    }
    return null;
  }

  /**
   * Where the batch holding `offset` starts (through the sparse offset index, as a read finds it),
   * so a scan need not walk its segment from the beginning; null when that segment has no such
   * batch. A hint only: compaction may swap the file before a worker opens it.
   */
  async batchPositionOf(offset: number): Promise<{ segmentBaseOffset: number; position: number; batchBaseOffset: number } | null> {
    const state = this.state;
    const segment = state.segments[state.segmentIndexFor(offset)];
    if (segment === undefined || segment.isEmpty) return null;
    // The smallest timestamp makes the time condition always true: the first batch reaching `offset`.
    const found = await segment.findBatchByTimestamp(Number.MIN_SAFE_INTEGER, offset);
    return found === null ? null : { segmentBaseOffset: segment.baseOffset, position: found.position, batchBaseOffset: found.header.baseOffset };
  }

  /**
   * What retention decides on, oldest first: every sealed segment (never the active one) with the
   * base offset of the segment after it, its size and its largest record timestamp (-1 when it
   * holds none). A segment's largest timestamp stays in memory once known: segments written since
   * the open know it already; others load it once, from their time index's last entry and the
   * batch headers after the last offset index entry.
   */
  async sealedSegments(): Promise<SealedSegmentFacts[]> {
    const segments = this.state.segments;
    const facts: SealedSegmentFacts[] = [];
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i]!;
      const largestTimestamp = await segment.maxTimestamp();
      facts.push({ baseOffset: segment.baseOffset, nextBaseOffset: segments[i + 1]!.baseOffset, sizeBytes: segment.sizeBytes, largestTimestamp, logPath: segment.logPath });
    }
    return facts;
  }
}

/** Drops whole batches that start at or after `maxOffset` (the high watermark or LSO). */
function trimToOffset(records: Buffer, maxOffset: number): Buffer {
  let position = 0;
  while (position + LOG_OVERHEAD <= records.length) {
    const base = records.readInt32BE(position) * 0x1_0000_0000 + records.readUInt32BE(position + 4);
    if (base >= maxOffset) break;
    position += records.readInt32BE(position + 8) + LOG_OVERHEAD;
  }
  return records.subarray(0, position);
}
