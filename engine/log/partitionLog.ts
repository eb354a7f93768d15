// One partition's log: an ordered set of segments, a log start offset and a log end offset.
//
// Writes: append() validates the record set and assigns offsets synchronously (so the order of
// calls is the order in the log), then queues the batches for the single writer. The writer
// takes every queued append it can (up to one writev's worth), rolls segments when needed,
// writes with one writev and, under flush-per-append, one fdatasync for the whole group: that is
// group commit. An append resolves once its bytes are written (and synced, per policy).
//
// Reads: read() finds the segment by binary search over base offsets, then the segment's sparse
// index; every returned batch has passed its CRC and chain checks.
//
// Control operations (flush, truncate, delete below, close) go through the same queue, so they
// never interleave with a write.
//
// This class is the facade; each concern has its own module, and they share one LogState
// (logState.ts: segments, offsets, producer state, closed/failed) and never import this file:
//   - logRecovery.ts: opening, the recovery scan and its decisions, the records-validated marker;
//   - appendAdmission.ts: offsets in call order for validated batches, idempotent producers;
//   - logWriter.ts: the single writer (queue, group commit, lone appends, rolls, flushes,
//     failures) and the control operations on its queue;
//   - logReads.ts: reads, reads by timestamp, the checks of batches stored before validation.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory } from '../../segments/checkpointFile.js';
import { writeFileSynced, type BatchChainRules } from '../../segments/logSegment.js';
import { OFFSET_GAPS_MARKER, RECORDS_VALIDATED_MARKER } from '../../segments/segmentNames.js';
import { AppendAdmission } from './appendAdmission.js';
import { AppendValidator, appendPolicyOf } from './appendValidation.js';
import { LEADER_EPOCH_CHECKPOINT, LeaderEpochCache } from './leaderEpochCache.js';
import { hasContiguousOffsets, type LogConfig } from './logConfig.js';
import { LogReader, type LogReadResult, type SealedSegmentFacts } from './logReads.js';
import { loadLog, loadRecordsValidatedMarker, type RecoveryReport } from './logRecovery.js';
import { LogState, type PartitionLogOptions } from './logState.js';
import { LogWriter, type AppendResult } from './logWriter.js';

export type { AppendResult, LogReadResult, PartitionLogOptions, RecoveryReport, SealedSegmentFacts };

export class PartitionLog {
  readonly dir: string;
  private readonly state: LogState;
  private readonly writer: LogWriter;
  private readonly reader: LogReader;
  private readonly admission: AppendAdmission;
  private gapsMarker: Promise<void> | null = null;
  recovery: RecoveryReport | null = null;

  private constructor(options: PartitionLogOptions, epochs: LeaderEpochCache) {
    this.dir = options.dir;
    const rules: BatchChainRules = { contiguousOffsets: hasContiguousOffsets(options.config), expectedEpoch: (offset) => epochs.epochFor(offset) };
    this.state = new LogState(options, epochs, rules);
    const validator = options.validator ?? new AppendValidator({ workers: this.state.workers });
    this.writer = new LogWriter(this.state);
    this.reader = new LogReader(this.state, validator);
    this.admission = new AppendAdmission(this.state, this.writer, validator, appendPolicyOf(options.config));
  }

  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    // One listing serves every step of the open: a file it does not name is not read.
    const names = options.fresh === true ? new Set<string>() : await listOrMakeDirectory(options.dir);
    const epochs = names.has(LEADER_EPOCH_CHECKPOINT) ? await LeaderEpochCache.load(options.dir) : LeaderEpochCache.empty(options.dir);
    const log = new PartitionLog(options, epochs);
    if (names.has(OFFSET_GAPS_MARKER)) log.state.rules.contiguousOffsets = false;
    else if (!log.state.rules.contiguousOffsets) await log.markOffsetGapsAllowed();
    try {
      log.recovery = await loadLog(log.state, options, names);
      await loadRecordsValidatedMarker(log.state, names.has(RECORDS_VALIDATED_MARKER));
    } catch (error) {
      // A log that fails to open keeps no descriptor (nor a place in the write-handle budget).
      for (const segment of log.state.segments) await segment.close().catch(() => undefined);
      throw error;
    }
    const settled = options.fresh === true || (options.cleanShutdown && log.recovery === null);
    log.state.openedSettled = settled ? { logEnd: log.state.logEnd, truncations: log.state.truncations } : null;
    log.writer.startFlushTimer();
    return log;
  }

  get config(): LogConfig {
    return this.state.config;
  }

  /**
   * Applies new settings (AlterConfigs): they govern the next appends, rolls and flushes. Offset
   * gaps, once allowed (a compacted topic), stay allowed: compacted segments keep their gaps.
   */
  reconfigure(config: LogConfig): void {
    const state = this.state;
    state.config = config;
    this.admission.policy = appendPolicyOf(config);
    if (state.rules.contiguousOffsets && !hasContiguousOffsets(config)) {
      state.rules.contiguousOffsets = false;
      // The cleaner also awaits this before its first swap, so no gap exists before the marker.
      this.markOffsetGapsAllowed().catch((error: unknown) => state.logger.error('writing the offset-gaps marker failed', { dir: this.dir, error: String(error) }));
    }
    this.writer.startFlushTimer();
  }

  /** Whether this log requires contiguous offsets (never after it may have been compacted). */
  get offsetsContiguous(): boolean {
    return this.state.rules.contiguousOffsets;
  }

  /** Writes OFFSET_GAPS_MARKER durably (once); call before anything can leave a gap. */
  markOffsetGapsAllowed(): Promise<void> {
    this.state.rules.contiguousOffsets = false;
    this.gapsMarker ??= (async () => {
      await writeFileSynced(join(this.dir, OFFSET_GAPS_MARKER), Buffer.alloc(0));
      await fsyncDirectory(this.dir);
    })().catch((error: unknown) => {
      this.gapsMarker = null;
      throw error;
    });
    return this.gapsMarker;
  }

  get logStartOffset(): number {
    return this.state.logStart;
  }

  /** Offset after the last acknowledged append (written, and synced if the flush policy says so). */
  get durableEndOffset(): number {
    return this.state.durableEnd;
  }

  /** Offset after the last written batch. On a single node this is also the high watermark. */
  get logEndOffset(): number {
    return this.state.logEnd;
  }

  get recoveryPoint(): number {
    return this.state.recoveryPointOffset;
  }

  get segmentCount(): number {
    return this.state.segments.length;
  }

  get sizeBytes(): number {
    return this.state.segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
  }

  segmentBaseOffsets(): number[] {
    return this.state.segments.map((segment) => segment.baseOffset);
  }

  /**
   * For scans that run off the event loop (worker tasks open the files themselves): every
   * segment's .log path, base offset and committed bytes, oldest first, with the log start and end
   * at this moment. Bytes past a segment's sizeBytes, or batches at or past logEndOffset, are not
   * committed yet and must not be read. Read-only: nothing here changes the log.
   */
  scanSnapshot(): { logStartOffset: number; logEndOffset: number; segments: Array<{ path: string; baseOffset: number; sizeBytes: number }> } {
    const segments = this.state.segments.map((segment) => ({ path: segment.logPath, baseOffset: segment.baseOffset, sizeBytes: segment.sizeBytes }));
    return { logStartOffset: this.state.logStart, logEndOffset: this.state.logEnd, segments };
  }

  /**
   * Where the batch holding `offset` starts (through the sparse offset index, as a read finds it),
   * so a scan need not walk its segment from the beginning; null when that segment has no such
   * batch. A hint only: compaction may swap the file before a worker opens it.
   */
  batchPositionOf(offset: number): Promise<{ segmentBaseOffset: number; position: number; batchBaseOffset: number } | null> {
    return this.reader.batchPositionOf(offset);
  }

  // -------------------------------------------------------------------------------------------
  // Appending (appendAdmission.ts, then logWriter.ts)

  /**
   * Appends a record set (one or more v2 batches, as a producer sent them). The log takes the
   * buffer: offsets and the leader epoch are written into it in place (neither is covered by the
   * CRC). Every batch is validated first (appendValidation.ts); if any is bad the whole set is
   * refused with InvalidRecordsError and nothing is written. Offsets go to appends in call order
   * even when some need asynchronous validation (compressed or large batches): an append waits
   * for those called before it.
   */
  append(records: Buffer): Promise<AppendResult> {
    // Not async: the admission's promise is returned as is, with no extra hop on the append path.
    return this.admission.append(records);
  }

  /** Registers a one-time callback for the next time the log end moves (Fetch long polls). */
  onNextAppend(listener: () => void): () => void {
    return this.writer.onNextAppend(listener);
  }

  /**
   * Appends batches that already carry their offsets and epochs (a follower copying its leader,
   * or the cleaner). Offsets must be above the log end and increase; otherwise the whole set is
   * refused with 'offsets-out-of-order'.
   */
  appendWithOffsets(records: Buffer): Promise<AppendResult> {
    return this.admission.appendWithOffsets(records);
  }

  // -------------------------------------------------------------------------------------------
  // Reading (logReads.ts)

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (but at least one batch when
   * there is data), never past `maxOffset` (exclusive; defaults to the log end).
   */
  read(offset: number, maxBytes: number, options: { maxOffset?: number; minOneBatch?: boolean } = {}): Promise<LogReadResult> {
    return this.reader.read(offset, maxBytes, options);
  }

  /**
   * The first offset at or after the log start whose record timestamp is >= `timestamp`, with that
   * record's timestamp; null when no record is that recent. Records of batches whose codec we
   * cannot decode are answered with the batch's base offset and max timestamp.
   */
  readByTimestamp(timestamp: number): Promise<{ offset: number; timestamp: number } | null> {
    return this.reader.readByTimestamp(timestamp);
  }

  // -------------------------------------------------------------------------------------------
  // Flush, truncation, retention, close (control operations on the writer's queue, logWriter.ts)

  /** Syncs everything written so far; afterwards the recovery point is the log end. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * Removes every batch at or after the one holding `offset`; the log end becomes that batch's
   * base offset. Used when a follower diverged from its leader.
   */
  truncateTo(offset: number): Promise<void> {
    return this.writer.truncateTo(offset);
  }

  /**
   * Retention and DeleteRecords: moves the log start offset up to `offset` (at most the log end)
   * and deletes every sealed segment whose offsets are all below it. The active segment stays.
   * Deleted files are renamed to `.deleted` at once and removed after file.delete.delay.ms.
   * `reason` goes into the one log line of the deletion (retention passes time, size or both).
   */
  deleteSegmentsBelow(offset: number, reason = 'log-start-offset'): Promise<{ segmentsDeleted: number; bytesDeleted: number }> {
    return this.writer.deleteSegmentsBelow(offset, reason);
  }

  /**
   * What retention decides on, oldest first: every sealed segment (never the active one) with the
   * base offset of the segment after it, its size and its largest record timestamp (-1 when it
   * holds none). A segment's largest timestamp stays in memory once known: segments written since
   * the open know it already; others load it once, from their time index's last entry and the
   * batch headers after the last offset index entry.
   */
  sealedSegments(): Promise<SealedSegmentFacts[]> {
    return this.reader.sealedSegments();
  }

  /**
   * Compaction's swap (engine/log/compaction/): replaces the consecutive sealed segments with these
   * base offsets by one cleaned segment based at the first of them, on the writer queue so it never
   * interleaves with a roll, truncation or retention. `commit` makes the cleaned files the
   * committed swap; once the old files are renamed `.deleted` (reads in flight keep their handles
   * and finish; a read that loses the race retries against the new list), `install` gives the
   * cleaned files their final names. Returns false, touching nothing, when the log changed since
   * the clean was planned.
   */
  replaceSealedSegments(replacedBaseOffsets: readonly number[], steps: { commit(): Promise<void>; install(): Promise<void>; replaced(): void }): Promise<boolean> {
    return this.writer.replaceSealedSegments(replacedBaseOffsets, steps);
  }

  /**
   * Finishes queued appends, flushes, writes the active segment's indexes and closes every file.
   * Renamed `.deleted` files still waiting for their delay are removed at the next open.
   */
  close(): Promise<void> {
    return this.writer.close();
  }

  /** Why reads of this log see corruption, for tests and inspection: the rules every batch obeys. */
  get chainRules(): BatchChainRules {
    return this.state.rules;
  }
}

/** The names in a partition directory, made first when it does not exist. */
async function listOrMakeDirectory(dir: string): Promise<Set<string>> {
  try {
    return new Set(await readdir(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(dir, { recursive: true });
    return new Set();
  }
}
