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
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fsyncDirectory } from '../../segments/checkpointFile.js';
import {
  ATTRIBUTE_LOG_APPEND_TIME,
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  CRC_OFFSET,
  LOG_OVERHEAD,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  checkBatch,
  readInt64AsNumber,
  readBatchHeader,
  batchSizeOf,
  computeBatchCrc,
  decodeRecords,
  RecordDecodeError,
  hex32,
  writeInt64FromNumber,
} from '../../segments/recordBatch.js';
import { CorruptCompressionError, UnsupportedCompressionError } from '../../segments/compression.js';
import { VarintError } from '../../segments/varint.js';
import { CorruptBatchError, LogSegment, writeFileSynced, type BatchChainRules, type PendingBatch, type SegmentResources } from '../../segments/logSegment.js';
import { DELETED_SUFFIX, OFFSET_GAPS_MARKER, RECORDS_VALIDATED_MARKER, parsePartitionDirName, parseSegmentFileName, segmentPath } from '../../segments/segmentNames.js';
import type { Clock } from '../clock.js';
import { InvalidRecordsError, InvalidStoredBatchError, LogClosedError, OffsetOutOfRangeError, StorageError } from '../errors.js';
import { LeaderEpochCache } from './leaderEpochCache.js';
import { ProducerStateManager, type ProducerBatch } from './producerState.js';
import { hasContiguousOffsets, maxIndexEntries, type LogConfig } from './logConfig.js';
import type { Logger } from '../logger.js';
import { recoverInterruptedSwaps } from './compaction/segmentSwap.js';
import { recoverSegmentFile, type RecoverSegmentInput, type RecoverSegmentOutput } from '../workers/tasks/recoverSegment.js';
import type { WorkerPool } from '../workers/workerPool.js';
import { AppendValidator, appendPolicyOf, decompressedBatchLimit, type AppendPolicy, type ValidatedBatch } from './appendValidation.js';

const SNAPSHOT_SUFFIX = '.snapshot';

/** Base offsets remembered per log for batches checked on read (about 1 MiB of Set each). */
const MAX_REMEMBERED_BATCHES = 65_536;


/** Producer-state snapshots kept per partition; older ones are removed at each roll. */
const SNAPSHOTS_KEPT = 2;

/** One writev takes at most this many buffers (Linux IOV_MAX is 1024). */
const MAX_BUFFERS_PER_WRITE = 1024;
/** One group of appends carries at most this many bytes before the writer writes it. */
const MAX_BYTES_PER_WRITE = 32 * 1024 * 1024;
const INT32_MAX = 0x7fffffff;

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** The broker time stamped into LogAppendTime batches, else -1. */
  logAppendTimeMs: number;
  logStartOffset: number;
}

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

export interface RecoveryReport {
  segmentsScanned: number;
  bytesScanned: number;
  truncatedBytes: number;
  /** Offsets that were in the dropped bytes, as far as their headers could be read. */
  droppedOffsets: { from: number; to: number | null } | null;
}

export interface PartitionLogOptions {
  dir: string;
  config: LogConfig;
  resources: SegmentResources;
  clock: Clock;
  logger: Logger;
  /** Every offset below this was flushed and checked before; recovery scans from its segment. */
  recoveryPoint: number;
  /** Whether the last stop was clean (no scan needed). */
  cleanShutdown: boolean;
  /** The log start offset saved by DeleteRecords or retention, if any. */
  logStartOffset?: number;
  /** The leader epoch this log appends under (0 for a single node). */
  leaderEpoch?: number;
  /** Runs the recovery scan of each segment on a worker thread; without it, on this thread. */
  workers?: WorkerPool;
  /** Validates appended record sets; default: one of its own on `workers`, with no broker-wide budget. */
  validator?: AppendValidator;
}

interface QueuedAppend {
  kind: 'append';
  batches: PendingBatch[];
  bytes: number;
  result: AppendResult;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

interface QueuedControl {
  kind: 'control';
  run: () => Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

type QueuedOperation = QueuedAppend | QueuedControl;

export class PartitionLog {
  readonly dir: string;
  private currentConfig: LogConfig;
  private readonly resources: SegmentResources;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly epochs: LeaderEpochCache;
  private readonly rules: { contiguousOffsets: boolean; expectedEpoch(offset: number): number | null };
  private leaderEpoch: number;
  private readonly workers: WorkerPool | null;
  private readonly validator: AppendValidator;
  /** What appends must satisfy, from the current config. */
  private policy: AppendPolicy;
  /** Appends between their call and their offsets on the slow (asynchronously validated) path. */
  private admissionsInProgress = 0;
  /** Settles when the latest slow-path append has its offsets (or was refused). */
  private admissionTail: Promise<void> = Promise.resolve();
  /** Batches below this offset were stored without append validation: reads check their records. */
  private recordsValidatedFrom = 0;
  /** Base offsets of such batches that passed (bounded; cleared when full). */
  private readonly legacyBatchesChecked = new Set<number>();
  /** Base offsets of such batches that failed and were reported (bounded). */
  private readonly invalidBatchesReported = new Set<number>();

  private segments: LogSegment[] = [];
  private logStart = 0;
  /** Next offset handed out by append(); runs ahead of the written end while appends queue. */
  private nextOffsetToAssign = 0;
  /** Offset after the last written batch: what reads can see. */
  private logEnd = 0;
  private recoveryPointOffset = 0;
  private queue: QueuedOperation[] = [];
  private queuedBytes = 0;
  private readonly roomWaiters: Array<() => void> = [];
  private writerRunning = false;
  private truncations = 0;
  private closed = false;
  private failedWith: Error | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private producers: ProducerStateManager;
  /** Unacknowledged idempotent appends by base offset, so a retry can wait for its original. */
  private readonly pendingIdempotent = new Map<number, Promise<AppendResult>>();
  private readonly appendListeners = new Set<() => void>();
  /** Flushes of rolled segments, chained in roll order; control operations wait for them. */
  private sealedFlushes: Promise<void> = Promise.resolve();
  private readonly pendingDeletes = new Set<NodeJS.Timeout>();
  /** Settles when a compaction swap in progress has replaced its segments; reads that raced it wait. */
  private segmentSwap: Promise<void> | null = null;
  recovery: RecoveryReport | null = null;

  private constructor(options: PartitionLogOptions, epochs: LeaderEpochCache, producers: ProducerStateManager = new ProducerStateManager()) {
    this.producers = producers;
    this.dir = options.dir;
    this.currentConfig = options.config;
    this.resources = options.resources;
    this.clock = options.clock;
    this.logger = options.logger;
    this.epochs = epochs;
    this.leaderEpoch = options.leaderEpoch ?? 0;
    this.workers = options.workers ?? null;
    this.validator = options.validator ?? new AppendValidator({ workers: this.workers });
    this.policy = appendPolicyOf(options.config);
    const contiguousOffsets = hasContiguousOffsets(options.config);
    this.rules = { contiguousOffsets, expectedEpoch: (offset) => this.epochs.epochFor(offset) };
  }

  get config(): LogConfig {
    return this.currentConfig;
  }

  /**
   * Applies new settings (AlterConfigs): they govern the next appends, rolls and flushes. Offset
   * gaps, once allowed (a compacted topic), stay allowed: compacted segments keep their gaps.
   */
  reconfigure(config: LogConfig): void {
    this.currentConfig = config;
    this.policy = appendPolicyOf(config);
    if (this.rules.contiguousOffsets && !hasContiguousOffsets(config)) {
      this.rules.contiguousOffsets = false;
      // The cleaner also awaits this before its first swap, so no gap exists before the marker.
      this.markOffsetGapsAllowed().catch((error: unknown) => this.logger.error('writing the offset-gaps marker failed', { dir: this.dir, error: String(error) }));
    }
    this.startFlushTimer();
  }

  /** Whether this log requires contiguous offsets (never after it may have been compacted). */
  get offsetsContiguous(): boolean {
    return this.rules.contiguousOffsets;
  }

  private gapsMarker: Promise<void> | null = null;

  /** Writes OFFSET_GAPS_MARKER durably (once); call before anything can leave a gap. */
  markOffsetGapsAllowed(): Promise<void> {
    this.rules.contiguousOffsets = false;
    this.gapsMarker ??= (async () => {
      await writeFileSynced(join(this.dir, OFFSET_GAPS_MARKER), Buffer.alloc(0));
      await fsyncDirectory(this.dir);
    })().catch((error: unknown) => {
      this.gapsMarker = null;
      throw error;
    });
    return this.gapsMarker;
  }

  private startFlushTimer(): void {
    if (this.flushTimer !== null) clearInterval(this.flushTimer);
    this.flushTimer = null;
    if (this.currentConfig.flush.mode !== 'interval' || this.closed) return;
    this.flushTimer = setInterval(() => {
      this.flush().catch((error: unknown) => this.logger.error('periodic flush failed', { dir: this.dir, error: String(error) }));
    }, this.currentConfig.flush.intervalMs);
    this.flushTimer.unref();
  }

  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    await mkdir(options.dir, { recursive: true });
    const log = new PartitionLog(options, await LeaderEpochCache.load(options.dir));
    const gapsMarked = await readFile(join(options.dir, OFFSET_GAPS_MARKER)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    if (gapsMarked) log.rules.contiguousOffsets = false;
    else if (!log.rules.contiguousOffsets) await log.markOffsetGapsAllowed();
    await log.load(options);
    await log.loadRecordsValidatedMarker();
    log.startFlushTimer();
    return log;
  }

  get logStartOffset(): number {
    return this.logStart;
  }

  /** Offset after the last written batch. On a single node this is also the high watermark. */
  get logEndOffset(): number {
    return this.logEnd;
  }

  get recoveryPoint(): number {
    return this.recoveryPointOffset;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get sizeBytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
  }

  segmentBaseOffsets(): number[] {
    return this.segments.map((segment) => segment.baseOffset);
  }

  /**
   * For scans that run off the event loop (worker tasks open the files themselves): every
   * segment's .log path, base offset and committed bytes, oldest first, with the log start and end
   * at this moment. Bytes past a segment's sizeBytes, or batches at or past logEndOffset, are not
   * committed yet and must not be read. Read-only: nothing here changes the log.
   */
  scanSnapshot(): { logStartOffset: number; logEndOffset: number; segments: Array<{ path: string; baseOffset: number; sizeBytes: number }> } {
    const segments = this.segments.map((segment) => ({ path: segment.logPath, baseOffset: segment.baseOffset, sizeBytes: segment.sizeBytes }));
    return { logStartOffset: this.logStart, logEndOffset: this.logEnd, segments };
  }

  /**
   * Where the batch holding `offset` starts (through the sparse offset index, as a read finds it),
   * so a scan need not walk its segment from the beginning; null when that segment has no such
   * batch. A hint only: compaction may swap the file before a worker opens it.
   */
  async batchPositionOf(offset: number): Promise<{ segmentBaseOffset: number; position: number; batchBaseOffset: number } | null> {
    const segment = this.segments[this.segmentIndexFor(offset)];
    if (segment === undefined || segment.isEmpty) return null;
    // The smallest timestamp makes the time condition always true: the first batch reaching `offset`.
    const found = await segment.findBatchByTimestamp(Number.MIN_SAFE_INTEGER, offset);
    return found === null ? null : { segmentBaseOffset: segment.baseOffset, position: found.position, batchBaseOffset: found.header.baseOffset };
  }

  // -------------------------------------------------------------------------------------------
  // Opening and recovery

  private segmentLimits(): { indexIntervalBytes: number; maxIndexEntries: number } {
    return { indexIntervalBytes: this.config.indexIntervalBytes, maxIndexEntries: maxIndexEntries(this.config) };
  }

  private async load(options: PartitionLogOptions): Promise<void> {
    // A compaction swap a crash interrupted is finished or undone before segments are listed.
    await recoverInterruptedSwaps(this.dir, this.logger);
    const bases: number[] = [];
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(DELETED_SUFFIX) || name.endsWith('.tmp')) {
        // Leftovers of a deletion or checkpoint interrupted by a crash.
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const parsed = parseSegmentFileName(name);
      if (parsed?.kind === 'log') bases.push(parsed.baseOffset);
    }
    bases.sort((a, b) => a - b);
    for (const base of bases) this.segments.push(await LogSegment.existing(this.dir, base, this.segmentLimits(), this.resources));

    if (!options.cleanShutdown && this.segments.length > 0) await this.recover(options.recoveryPoint);

    if (this.segments.length === 0) {
      const base = options.logStartOffset ?? 0;
      this.segments.push(await LogSegment.create(this.dir, base, this.segmentLimits(), this.resources));
      await fsyncDirectory(this.dir);
    }
    let active = this.segments[this.segments.length - 1]!;
    try {
      await active.loadTail();
    } catch (error) {
      if (!(error instanceof CorruptBatchError)) throw error;
      // A clean stop promised a sound tail, but the bytes rotted since: recover that segment.
      this.logger.warn('active segment is corrupt despite a clean shutdown; recovering it', { file: error.file, position: error.position, problem: error.problem });
      await this.recover(active.baseOffset);
      active = this.segments[this.segments.length - 1]!;
      await active.loadTail();
    }
    await active.reopenForAppend();
    this.logEnd = active.nextOffset;
    this.nextOffsetToAssign = this.logEnd;
    this.logStart = Math.min(Math.max(options.logStartOffset ?? 0, this.segments[0]!.baseOffset), this.logEnd);
    this.recoveryPointOffset = options.cleanShutdown ? this.logEnd : Math.min(options.recoveryPoint, this.logEnd);
    if (this.epochs.latestEpoch === null || this.epochs.latestEpoch < this.leaderEpoch) await this.epochs.assign(this.leaderEpoch, this.logEnd);
    await this.loadProducerState();
  }

  /**
   * Rebuilds idempotent-producer state: the newest snapshot at or below the log end, then the
   * headers of every batch after it. Snapshots past the log end (a truncated tail) are removed.
   */
  private async loadProducerState(): Promise<void> {
    const snapshots: number[] = [];
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith(SNAPSHOT_SUFFIX)) continue;
      const offset = Number(name.slice(0, -SNAPSHOT_SUFFIX.length));
      if (!Number.isSafeInteger(offset)) continue;
      if (offset > this.logEnd) await rm(join(this.dir, name), { force: true });
      else snapshots.push(offset);
    }
    snapshots.sort((a, b) => b - a);
    let from = this.logStart;
    for (const offset of snapshots) {
      try {
        const restored = ProducerStateManager.fromSnapshot(await readFile(segmentPath(this.dir, offset, SNAPSHOT_SUFFIX)));
        this.producers = restored;
        from = Math.max(offset, this.logStart);
        break;
      } catch (error) {
        this.logger.warn('ignoring unreadable producer state snapshot', { dir: this.dir, offset, error: String(error) });
      }
    }
    try {
      for (let i = this.segmentIndexFor(from); i < this.segments.length; i++) {
        // The log is history, not requests: every producer batch is recorded as it stands.
        await this.segments[i]!.forEachBatchHeader(from, (header) => {
          if (header.producerId >= 0) this.producers.record(header, header.baseOffset, this.clock.nowMs());
        });
      }
    } catch (error) {
      if (!(error instanceof CorruptBatchError)) throw error;
      // Reads will report the corrupt batch; idempotence simply knows less about what follows it.
      this.logger.warn('producer state scan stopped at a corrupt batch', { file: error.file, position: error.position, problem: error.problem });
    }
  }

  /**
   * Scans every segment from the one holding the recovery point: each batch's lengths, CRC,
   * offsets and epoch. At the first bad byte the log is cut there and later segments go.
   */
  private async recover(recoveryPoint: number): Promise<void> {
    let first = 0;
    for (let i = 0; i < this.segments.length; i++) if (this.segments[i]!.baseOffset <= recoveryPoint) first = i;
    const report: RecoveryReport = { segmentsScanned: 0, bytesScanned: 0, truncatedBytes: 0, droppedOffsets: null };
    let expectedNext: number | null = null;
    for (let i = first; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      if (expectedNext !== null && (segment.baseOffset < expectedNext || (this.rules.contiguousOffsets && segment.baseOffset !== expectedNext && !segment.isEmpty))) {
        await this.dropSegmentsFrom(i, report, `segment ${segment.baseOffset} does not follow offset ${expectedNext - 1}`, expectedNext);
        break;
      }
      const before = segment.sizeBytes;
      const scan = await this.recoverSegment(i, before);
      report.segmentsScanned++;
      report.bytesScanned += scan.validBytes;
      if (scan.failure !== null) {
        report.truncatedBytes += before - scan.validBytes;
        report.droppedOffsets = { from: scan.nextOffset, to: null };
        this.logger.warn('recovery truncated a torn or corrupt log tail', {
          file: segment.logPath,
          position: scan.failure.position,
          problem: scan.failure.problem,
          detail: scan.failure.detail,
          droppedBytes: before - scan.validBytes,
          droppedFromOffset: scan.nextOffset,
        });
        if (i + 1 < this.segments.length) await this.dropSegmentsFrom(i + 1, report, 'they follow a truncated segment', scan.nextOffset);
        break;
      }
      expectedNext = scan.nextOffset;
    }
    this.recovery = report;
    this.logger.info('recovered partition log', { dir: this.dir, ...report, droppedOffsets: JSON.stringify(report.droppedOffsets) });
  }

  /**
   * The heavy part of recovering segment `index`: scan, cut at the first bad byte, write rebuilt
   * indexes (recoverSegment.ts), on a worker thread when the log has a pool. The segment object is
   * then opened afresh from what is on disk. A scan that fails leaves the log unopened: a segment
   * nobody verified is never served.
   */
  private async recoverSegment(index: number, fileSizeBytes: number): Promise<RecoverSegmentOutput> {
    const segment = this.segments[index]!;
    const input: RecoverSegmentInput = { dir: this.dir, baseOffset: segment.baseOffset, fileSizeBytes, ...this.segmentLimits(), contiguousOffsets: this.rules.contiguousOffsets };
    let result: RecoverSegmentOutput;
    try {
      // No retry: an attempt stopped after its cut would leave a second one a clean-looking file,
      // and the loss unreported. A failed open is retried by the next start, as after a crash.
      result = this.workers === null ? await recoverSegmentFile(input) : await this.workers.run('recoverSegment', input, { label: `recover ${segment.logPath}` });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.logger.error('recovery scan failed; the log is not opened', { file: segment.logPath, error: message });
      throw new StorageError(`recovery of ${segment.logPath} failed, so its log was not opened: ${message}`, { cause: error });
    }
    await segment.close();
    this.segments[index] = await LogSegment.existing(this.dir, segment.baseOffset, this.segmentLimits(), this.resources);
    return result;
  }

  private async dropSegmentsFrom(index: number, report: RecoveryReport, reason: string, droppedFrom: number): Promise<void> {
    const dropped = this.segments.splice(index);
    let bytes = 0;
    for (const segment of dropped) {
      bytes += segment.sizeBytes;
      for (const path of await segment.markDeleted()) await rm(path, { force: true });
    }
    report.truncatedBytes += bytes;
    report.droppedOffsets = { from: droppedFrom, to: null };
    this.logger.warn('recovery deleted segments', { dir: this.dir, reason, segments: dropped.map((s) => s.baseOffset).join(','), droppedBytes: bytes, droppedFromOffset: droppedFrom });
  }

  // -------------------------------------------------------------------------------------------
  // Appending

  /**
   * Appends a record set (one or more v2 batches, as a producer sent them). The log takes the
   * buffer: offsets and the leader epoch are written into it in place (neither is covered by the
   * CRC). Every batch is validated first (appendValidation.ts); if any is bad the whole set is
   * refused with InvalidRecordsError and nothing is written. Offsets go to appends in call order
   * even when some need asynchronous validation (compressed or large batches): an append waits
   * for those called before it.
   */
  async append(records: Buffer): Promise<AppendResult> {
    this.assertWritable();
    const validation = this.validator.validate(records, this.policy, this.clock.nowMs());
    if (!(validation instanceof Promise) && this.admissionsInProgress === 0) return this.admit(records, validation);
    return this.admitInCallOrder(records, validation);
  }

  /** The slow path of append(): waits for this append's validation and for every earlier append. */
  private async admitInCallOrder(records: Buffer, validation: Promise<ValidatedBatch[]> | ValidatedBatch[]): Promise<AppendResult> {
    const previous = this.admissionTail;
    let admitted!: () => void;
    const mine = new Promise<void>((resolve) => (admitted = resolve));
    // Successors wait for this append and, through it, for every one before it: even when this
    // one fails early, it is not out of their way before its predecessors are.
    this.admissionTail = previous.then(() => mine);
    this.admissionsInProgress++;
    try {
      const batches = await validation;
      await previous;
      this.assertWritable();
      return await this.admit(records, batches, admitted);
    } finally {
      this.admissionsInProgress--;
      admitted();
    }
  }

  /**
   * Offsets and the queue for validated batches: waits for room behind the writer, then, without
   * awaiting anything more, checks sequences, assigns offsets and queues. `onAdmitted` runs once
   * the offsets are assigned (or the append is refused).
   */
  private async admit(records: Buffer, validated: readonly ValidatedBatch[], onAdmitted?: () => void): Promise<AppendResult> {
    const batches: PendingBatch[] = validated.map((batch) => ({ buffer: batch.buffer, baseOffset: 0, lastOffset: batch.lastOffsetDelta, maxTimestamp: batch.maxTimestamp }));
    const idempotent = validated.some((batch) => batch.producerId >= 0);
    if (idempotent && batches.length > 1) {
      throw new InvalidRecordsError('invalid-record', 'a batch of an idempotent producer must come alone in its record set', 1);
    }
    if (this.queue.length > 0 && (this.queuedBytes + records.length > this.config.maxQueuedAppendBytes || this.roomWaiters.length > 0)) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      this.assertWritable();
    }
    // From here to the queue, nothing awaits: the sequence check, the offsets and the producer
    // state update happen in call order.
    const producerHeader = idempotent ? producerFields(batches[0]!) : null;
    if (producerHeader !== null) {
      const verdict = this.producers.check(producerHeader);
      if (verdict.kind === 'duplicate') {
        onAdmitted?.();
        return this.duplicateOf(verdict.batch);
      }
    }
    const result: AppendResult = { baseOffset: -1, lastOffset: -1, logAppendTimeMs: -1, logStartOffset: this.logStart };
    // Before anything is written, so a damaged batch never touches the file and never holds up
    // the appends behind it (about 3 us for 16 KiB with the native CRC).
    const refusal = crcRefusal(batches, validated);
    if (refusal !== null) throw refusal;
    const writeAlone = this.canWriteAlone(batches);
    if (this.config.messageTimestampType === 'LogAppendTime') {
      // LogAppendTime: the broker's clock replaces the producer's, so the CRC must be redone.
      result.logAppendTimeMs = this.clock.nowMs();
      for (const batch of batches) {
        batch.buffer.writeInt16BE(batch.buffer.readInt16BE(ATTRIBUTES_OFFSET) | ATTRIBUTE_LOG_APPEND_TIME, ATTRIBUTES_OFFSET);
        writeInt64FromNumber(batch.buffer, MAX_TIMESTAMP_OFFSET, result.logAppendTimeMs);
        batch.buffer.writeUInt32BE(computeBatchCrc(batch.buffer), CRC_OFFSET);
        batch.maxTimestamp = result.logAppendTimeMs;
      }
    }
    const appended = new Promise<AppendResult>((resolve, reject) => {
      const queued: QueuedAppend = { kind: 'append', batches, bytes: records.length, result, resolve, reject };
      this.assignOffsets(queued);
      if (writeAlone) this.writeAlone(queued);
      else this.enqueue(queued);
    });
    onAdmitted?.();
    if (producerHeader !== null) {
      this.producers.record(producerHeader, result.baseOffset, this.clock.nowMs());
      const baseOffset = result.baseOffset;
      this.pendingIdempotent.set(baseOffset, appended);
      const forget = (): void => void this.pendingIdempotent.delete(baseOffset);
      appended.then(forget, forget);
    }
    return appended;
  }

  /** A producer retried a batch we have: answer with the original's offsets, once it is acknowledged. */
  private async duplicateOf(batch: ProducerBatch): Promise<AppendResult> {
    const pending = this.pendingIdempotent.get(batch.baseOffset);
    if (pending !== undefined) return pending;
    return { baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, logAppendTimeMs: -1, logStartOffset: this.logStart };
  }

  /** Registers a one-time callback for the next time the log end moves (Fetch long polls). */
  onNextAppend(listener: () => void): () => void {
    this.appendListeners.add(listener);
    return () => void this.appendListeners.delete(listener);
  }

  private notifyAppend(): void {
    if (this.appendListeners.size === 0) return;
    const listeners = [...this.appendListeners];
    this.appendListeners.clear();
    for (const listener of listeners) listener();
  }

  /**
   * Gives an append the next offsets, in call order: rewrites each batch's baseOffset and leader
   * epoch in place (neither is covered by the CRC).
   */
  private assignOffsets(append: QueuedAppend): void {
    append.result.baseOffset = this.nextOffsetToAssign;
    for (const batch of append.batches) {
      const delta = batch.lastOffset - batch.baseOffset;
      batch.baseOffset = this.nextOffsetToAssign;
      batch.lastOffset = batch.baseOffset + delta;
      this.nextOffsetToAssign = batch.lastOffset + 1;
      writeInt64FromNumber(batch.buffer, BASE_OFFSET_OFFSET, batch.baseOffset);
      batch.buffer.writeInt32BE(this.leaderEpoch, PARTITION_LEADER_EPOCH_OFFSET);
    }
    append.result.lastOffset = this.nextOffsetToAssign - 1;
  }

  /**
   * Appends batches that already carry their offsets and epochs (a follower copying its leader,
   * or the cleaner). Offsets must be above the log end and increase; otherwise the whole set is
   * refused with 'offsets-out-of-order'.
   */
  async appendWithOffsets(records: Buffer): Promise<AppendResult> {
    this.assertWritable();
    const batches = this.validateWithOffsets(records);
    let previousLast = this.nextOffsetToAssign - 1;
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      const gapNotAllowed = this.rules.contiguousOffsets && batch.baseOffset !== previousLast + 1;
      if (batch.baseOffset <= previousLast || gapNotAllowed) {
        throw new InvalidRecordsError('offsets-out-of-order', `batch base offset ${batch.baseOffset} does not follow ${previousLast}`, i);
      }
      const epoch = batch.buffer.readInt32BE(PARTITION_LEADER_EPOCH_OFFSET);
      if (epoch < this.leaderEpoch) throw new InvalidRecordsError('offsets-out-of-order', `batch leader epoch ${epoch} is below the log's ${this.leaderEpoch}`, i);
      previousLast = batch.lastOffset;
    }
    const first = batches[0]!;
    const result: AppendResult = { baseOffset: first.baseOffset, lastOffset: previousLast, logAppendTimeMs: -1, logStartOffset: this.logStart };
    this.nextOffsetToAssign = previousLast + 1;
    return new Promise<AppendResult>((resolve, reject) => this.enqueue({ kind: 'append', batches, bytes: records.length, result, resolve, reject }));
  }

  private assertWritable(): void {
    if (this.closed) throw new LogClosedError(`log ${this.dir} is closed`);
    if (this.failedWith !== null) throw new StorageError(`log ${this.dir} stopped after a failed fsync; restart to recover`, { cause: this.failedWith });
  }

  /**
   * Checks the framing and CRC of batches that already carry offsets (a follower copying its
   * leader, or the cleaner): their records were validated when they were first appended.
   */
  private validateWithOffsets(records: Buffer): PendingBatch[] {
    if (records.length === 0) throw new InvalidRecordsError('empty', 'the record set holds no batch', 0);
    const batches: PendingBatch[] = [];
    let position = 0;
    while (position < records.length) {
      const index = batches.length;
      const check = checkBatch(records, position, records.length, { maxBatchBytes: INT32_MAX });
      if (!check.ok) throw new InvalidRecordsError('corrupt', `${check.problem}: ${check.detail}`, index);
      if (check.size > this.config.maxMessageBytes) {
        throw new InvalidRecordsError('too-large', `batch of ${check.size} bytes exceeds max.message.bytes ${this.config.maxMessageBytes}`, index);
      }
      if (check.size > this.config.segmentBytes) {
        throw new InvalidRecordsError('too-large', `batch of ${check.size} bytes exceeds segment.bytes ${this.config.segmentBytes}`, index);
      }
      const header = check.header;
      batches.push({
        // Batches stay views into the caller's buffer: no copy on the append path.
        buffer: records.subarray(position, position + check.size),
        baseOffset: header.baseOffset,
        lastOffset: header.baseOffset + header.lastOffsetDelta,
        maxTimestamp: header.maxTimestamp,
      });
      position += check.size;
    }
    return batches;
  }

  private enqueue(append: QueuedAppend): void {
    this.queue.push(append);
    this.queuedBytes += append.bytes;
    this.startWriter();
  }

  /**
   * Whether an append may skip the queue: the writer is idle with nothing queued, no roll is due,
   * there is no fsync to share and no CRC to recompute (LogAppendTime). Decided before offsets
   * are assigned; nothing awaits between the decision and writeAlone().
   */
  private canWriteAlone(batches: readonly PendingBatch[]): boolean {
    if (this.writerRunning || this.queue.length > 0 || batches.length !== 1) return false;
    if (this.config.flush.mode === 'every-append' || this.config.messageTimestampType === 'LogAppendTime') return false;
    const batch = batches[0]!;
    const epoch = this.epochs.latestEpoch;
    if (epoch === null || this.leaderEpoch > epoch) return false;
    // The roll decision needs the offsets the batch will really get, not the ones it was sent with.
    const baseOffset = this.nextOffsetToAssign;
    return !this.shouldRoll(this.activeSegment(), 0, { ...batch, baseOffset, lastOffset: baseOffset + (batch.lastOffset - batch.baseOffset) });
  }

  /**
   * Writes a lone append at once, without the queue and group machinery: the same single writer,
   * fewer hops on the latency path of a producer that waits for each append. Its batches were
   * validated and CRC-checked before; they become readable once the write returns.
   */
  private writeAlone(append: QueuedAppend): void {
    this.writerRunning = true;
    const active = this.activeSegment();
    const writing = active.writeUncommitted(append.batches);
    const finish = (): void => {
      this.writerRunning = false;
      if (this.queue.length > 0) this.startWriter();
    };
    writing.then(
      async () => {
        try {
          active.commitWritten(append.batches);
        } catch (error) {
          // A bug, not bad input: stop this log (restart recovers it) instead of the process.
          await active.discardUncommitted().catch(() => undefined);
          this.failedWith = error as Error;
          this.logger.error('committing an append failed; the log stops accepting appends', { dir: this.dir, error: (error as Error).stack ?? String(error) });
          this.failQueuedAppends([append], error);
          finish();
          return;
        }
        this.committed(active, append.batches);
        append.result.logStartOffset = this.logStart;
        append.resolve(append.result);
        this.notifyAppend();
        finish();
      },
      (error: unknown) => {
        this.failQueuedAppends([append], new StorageError(`writing a batch to ${active.logPath} failed: ${String(error)}`, { cause: error }));
        finish();
      },
    ).catch((error: unknown) => {
      // Nothing above should throw; if it does, stop this log rather than the process.
      this.failedWith ??= error as Error;
      this.writerRunning = false;
      this.logger.error('the append path failed unexpectedly; the log stops accepting appends', { dir: this.dir, error: (error as Error).stack ?? String(error) });
    });
  }

  private enqueueControl(operation: () => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      // A failed segment flush has stopped appends already (failedWith); control operations
      // such as close still run.
      await this.sealedFlushes.catch(() => undefined);
      await operation();
    };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'control', run, resolve, reject });
      this.startWriter();
    });
  }

  private startWriter(): void {
    if (this.writerRunning) return;
    this.writerRunning = true;
    const run = (): void => {
      // The writer reports every failure to the operations it ran; it never rejects itself.
      void this.runWriter().finally(() => {
        this.writerRunning = false;
        if (this.queue.length > 0) this.startWriter();
      });
    };
    // Under flush-per-append, wait one turn of the event loop so producers that were just
    // acknowledged can queue their next appends and share the next fdatasync (group commit).
    if (this.config.flush.mode === 'every-append') setImmediate(run);
    else run();
  }

  private async runWriter(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.kind === 'control') {
        this.queue.shift();
        try {
          await head.run();
          head.resolve();
        } catch (error) {
          head.reject(error);
        }
        continue;
      }
      const group: QueuedAppend[] = [];
      let buffers = 0;
      let bytes = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0]!;
        if (next.kind !== 'append') break;
        if (group.length > 0 && (buffers + next.batches.length > MAX_BUFFERS_PER_WRITE || bytes + next.bytes > MAX_BYTES_PER_WRITE)) break;
        this.queue.shift();
        group.push(next);
        buffers += next.batches.length;
        bytes += next.bytes;
      }
      this.queuedBytes -= bytes;
      this.wakeRoomWaiters();
      try {
        await this.writeGroup(group);
      } catch (error) {
        this.failQueuedAppends(group, error);
      }
    }
  }

  private wakeRoomWaiters(): void {
    while (this.roomWaiters.length > 0 && this.queuedBytes < this.config.maxQueuedAppendBytes) this.roomWaiters.shift()!();
  }

  /** Writes one group of appends, rolling segments between batches where a limit says so. */
  private async writeGroup(group: QueuedAppend[]): Promise<void> {
    let pending: PendingBatch[] = [];
    let pendingBytes = 0;
    for (const append of group) {
      for (const batch of append.batches) {
        const active = this.activeSegment();
        if (this.shouldRoll(active, pendingBytes, batch)) {
          if (pending.length > 0) await this.writeToActive(pending);
          pending = [];
          pendingBytes = 0;
          await this.roll(batch.baseOffset);
        }
        pending.push(batch);
        pendingBytes += batch.buffer.length;
      }
    }
    if (pending.length > 0) await this.writeToActive(pending);
    if (this.config.flush.mode === 'every-append') {
      try {
        // A roll inside this group left batches in the sealed segment: its flush must finish too.
        await Promise.all([this.activeSegment().flush(), this.sealedFlushes]);
      } catch (error) {
        this.failedWith = error as Error;
        throw error;
      }
      this.recoveryPointOffset = this.logEnd;
    }
    for (const append of group) {
      append.result.logStartOffset = this.logStart;
      append.resolve(append.result);
    }
    this.notifyAppend();
  }

  private shouldRoll(active: LogSegment, pendingBytes: number, batch: PendingBatch): boolean {
    const sizeAfter = active.sizeBytes + pendingBytes;
    if (sizeAfter === 0) return false; // an empty segment takes any batch that passed validation
    if (sizeAfter + batch.buffer.length > this.config.segmentBytes) return true;
    if (active.rollStartMs !== null && this.clock.nowMs() - active.rollStartMs >= this.config.segmentMs) return true;
    if (active.indexIsFull) return true;
    return batch.lastOffset - active.baseOffset > INT32_MAX;
  }

  private async writeToActive(batches: PendingBatch[]): Promise<void> {
    const active = this.activeSegment();
    const epoch = batches[0]!.buffer.readInt32BE(PARTITION_LEADER_EPOCH_OFFSET);
    if (this.epochs.latestEpoch === null || epoch > this.epochs.latestEpoch) await this.epochs.assign(epoch, batches[0]!.baseOffset);
    try {
      await active.writeBatches(batches);
    } catch (error) {
      throw new StorageError(`writing ${batches.length} batches to ${active.logPath} failed: ${String(error)}`, { cause: error });
    }
    this.committed(active, batches);
  }

  /** Bookkeeping once batches are written to the active segment: they are readable now. */
  private committed(active: LogSegment, batches: readonly PendingBatch[]): void {
    if (active.rollStartMs === null) active.rollStartMs = this.clock.nowMs();
    this.logEnd = batches[batches.length - 1]!.lastOffset + 1;
  }

  private async roll(newBaseOffset: number): Promise<void> {
    const previous = this.activeSegment();
    const next = await LogSegment.create(this.dir, newBaseOffset, this.segmentLimits(), this.resources);
    previous.seal();
    this.segments.push(next);
    await this.writeProducerSnapshot(newBaseOffset);
    await fsyncDirectory(this.dir);
    // Sealed segments flush one after another, in order, so the recovery point only ever moves
    // past segments whose bytes and indexes are all on disk.
    this.sealedFlushes = this.sealedFlushes.then(async () => {
      await previous.flushSealed();
      this.recoveryPointOffset = Math.max(this.recoveryPointOffset, previous.nextOffset);
    });
    this.sealedFlushes.catch((error: unknown) => {
      this.failedWith ??= error as Error;
      this.logger.error('flushing a rolled segment failed; the log stops accepting appends', { file: previous.logPath, error: String(error) });
    });
    this.logger.info('rolled segment', { dir: this.dir, sealed: previous.baseOffset, sealedBytes: previous.sizeBytes, next: newBaseOffset });
  }

  /**
   * Snapshots producer state as of `offset` (a new segment's base, or the log end at close) and
   * drops old snapshots. Written even when empty: it bounds the scan at the next open.
   */
  private async writeProducerSnapshot(offset: number): Promise<void> {
    await writeFileSynced(segmentPath(this.dir, offset, SNAPSHOT_SUFFIX), this.producers.toSnapshot(offset));
    const older = (await readdir(this.dir))
      .filter((name) => name.endsWith(SNAPSHOT_SUFFIX))
      .map((name) => Number(name.slice(0, -SNAPSHOT_SUFFIX.length)))
      .filter((snapshot) => Number.isSafeInteger(snapshot))
      .sort((a, b) => b - a)
      .slice(SNAPSHOTS_KEPT);
    for (const snapshot of older) await rm(segmentPath(this.dir, snapshot, SNAPSHOT_SUFFIX), { force: true });
  }

  /** A write failed: the failed group and every append queued behind it are refused, offsets rewound. */
  private failQueuedAppends(group: QueuedAppend[], error: unknown, severity: 'error' | 'warn' = 'error'): void {
    const storageError = error instanceof StorageError ? error : new StorageError(`append to ${this.dir} failed: ${String(error)}`, { cause: error });
    const refused = group.length + this.queue.filter((operation) => operation.kind === 'append').length;
    if (refused > 0) this.logger[severity]('appends refused', { dir: this.dir, appends: refused, error: storageError.message });
    for (const append of group) append.reject(storageError);
    const remaining: QueuedOperation[] = [];
    for (const operation of this.queue) {
      if (operation.kind === 'append') {
        this.queuedBytes -= operation.bytes;
        operation.reject(storageError);
      } else {
        remaining.push(operation);
      }
    }
    this.queue = remaining;
    this.nextOffsetToAssign = this.logEnd;
    this.producers.truncateFrom(this.logEnd);
    this.wakeRoomWaiters();
  }

  private activeSegment(): LogSegment {
    const active = this.segments[this.segments.length - 1];
    if (active === undefined) throw new Error(`log ${this.dir} has no segment`);
    return active;
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  private segmentIndexFor(offset: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    let found = 0;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.segments[middle]!.baseOffset <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (but at least one batch when
   * there is data), never past `maxOffset` (exclusive; defaults to the log end).
   */
  async read(offset: number, maxBytes: number, options: { maxOffset?: number; minOneBatch?: boolean } = {}): Promise<LogReadResult> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`read needs integer offset and non-negative integer maxBytes, got ${offset} and ${maxBytes}`);
    }
    for (let attempt = 0; ; attempt++) {
      const truncationsBefore = this.truncations;
      if (attempt > 0 && this.segmentSwap !== null) await this.segmentSwap;
      try {
        return await this.readOnce(offset, maxBytes, options.maxOffset ?? this.logEnd, options.minOneBatch ?? true);
      } catch (error) {
        // A truncation or deletion that raced this read can make bytes vanish under it; retry once
        // against the new state rather than report corruption that is not there.
        const raced = this.truncations !== truncationsBefore || (error as NodeJS.ErrnoException).code === 'ENOENT';
        if (!raced || attempt > 0) throw error;
      }
    }
  }

  private async readOnce(offset: number, maxBytes: number, maxOffset: number, minOneBatch: boolean): Promise<LogReadResult> {
    if (offset < this.logStart || offset > this.logEnd) throw new OffsetOutOfRangeError(offset, this.logStart, this.logEnd);
    const empty = { records: Buffer.alloc(0), logStartOffset: this.logStart, logEndOffset: this.logEnd };
    if (offset >= maxOffset) return empty;
    const segments = this.segments;
    for (let i = this.segmentIndexFor(offset); i < segments.length; i++) {
      const segment = segments[i]!;
      const result = await segment.read(Math.max(offset, segment.baseOffset), maxBytes, this.rules, minOneBatch);
      if (result.firstBatchTooLarge === true) break;
      if (result.records.length === 0) continue;
      const records = result.firstOffset < this.recordsValidatedFrom ? await this.checkUnvalidatedBatches(result.records, segment) : result.records;
      return { records: trimToOffset(records, maxOffset), logStartOffset: this.logStart, logEndOffset: this.logEnd };
    }
    return empty;
  }

  /**
   * Reads the marker saying from which offset on every batch passed append validation. A log
   * without it was written by an older version: everything up to its end is checked on read.
   */
  private async loadRecordsValidatedMarker(): Promise<void> {
    const path = join(this.dir, RECORDS_VALIDATED_MARKER);
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    const stored = text === null ? Number.NaN : Number(text.trim());
    if (Number.isSafeInteger(stored) && stored >= 0) {
      this.recordsValidatedFrom = stored;
      return;
    }
    // Missing (an older version wrote this log) or unreadable: what is there now is checked on
    // read, what is appended from now on was validated.
    if (text !== null) this.logger.warn('unreadable records-validated marker; records stored so far are checked on read', { file: path });
    this.recordsValidatedFrom = this.logEnd;
    if (this.logEnd > this.logStart) this.logger.info('log written before append validation; its records are checked when read', { dir: this.dir, belowOffset: this.logEnd });
    await writeFileSynced(path, Buffer.from(`${this.logEnd}\n`));
    await fsyncDirectory(this.dir);
  }

  /**
   * Checks the records of batches stored before append validation existed. Returns the batches
   * before the first that fails (reported once with its file and offsets); throws
   * InvalidStoredBatchError when the first batch itself fails, so nothing undecodable is served.
   */
  private async checkUnvalidatedBatches(records: Buffer, segment: LogSegment): Promise<Buffer> {
    const limitBytes = decompressedBatchLimit(this.config.maxMessageBytes);
    let position = 0;
    while (position < records.length) {
      const header = readBatchHeader(records, position);
      const size = batchSizeOf(header);
      if (header.baseOffset >= this.recordsValidatedFrom) break;
      if (!this.legacyBatchesChecked.has(header.baseOffset)) {
        const verdict = await this.validator.checkStoredBatch(records.subarray(position, position + size), header, { limitBytes, denseOffsetDeltas: this.rules.contiguousOffsets });
        if (!verdict.ok) {
          const error = new InvalidStoredBatchError(segment.logPath, header.baseOffset, header.baseOffset + header.lastOffsetDelta, verdict.detail);
          if (!this.invalidBatchesReported.has(header.baseOffset) && this.invalidBatchesReported.size < MAX_REMEMBERED_BATCHES) {
            this.invalidBatchesReported.add(header.baseOffset);
            const partitionOfDir = parsePartitionDirName(basename(this.dir));
            this.logger.error('stored batch does not decode; it is not served', { topic: partitionOfDir?.topic ?? basename(this.dir), partition: partitionOfDir?.partition ?? null, file: segment.logPath, offset: header.baseOffset, lastOffset: error.lastOffset, problem: verdict.problem, detail: verdict.detail });
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
    for (let attempt = 0; ; attempt++) {
      const truncationsBefore = this.truncations;
      if (attempt > 0 && this.segmentSwap !== null) await this.segmentSwap;
      try {
        return await this.readByTimestampOnce(timestamp);
      } catch (error) {
        // As read(): a compaction swap, truncation or deletion that raced the lookup; retry once.
        const raced = this.truncations !== truncationsBefore || (error as NodeJS.ErrnoException).code === 'ENOENT';
        if (!raced || attempt > 0) throw error;
      }
    }
  }

  private async readByTimestampOnce(timestamp: number): Promise<{ offset: number; timestamp: number } | null> {
    for (const segment of this.segments) {
      if (segment.isEmpty || (await segment.maxTimestamp()) < timestamp) continue;
      let fromOffset = Math.max(this.logStart, segment.baseOffset);
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

  // -------------------------------------------------------------------------------------------
  // Flush, truncation, retention, close

  /** Syncs everything written so far; afterwards the recovery point is the log end. */
  flush(): Promise<void> {
    return this.enqueueControl(async () => {
      const end = this.logEnd;
      try {
        await this.activeSegment().flush();
      } catch (error) {
        this.failedWith = error as Error;
        throw new StorageError(`fsync of ${this.activeSegment().logPath} failed`, { cause: error });
      }
      this.recoveryPointOffset = Math.max(this.recoveryPointOffset, end);
    });
  }

  /**
   * Removes every batch at or after the one holding `offset`; the log end becomes that batch's
   * base offset. Used when a follower diverged from its leader.
   */
  truncateTo(offset: number): Promise<void> {
    return this.enqueueControl(async () => {
      if (offset >= this.logEnd) return;
      if (offset < this.logStart) throw new RangeError(`cannot truncate to ${offset}, below the log start ${this.logStart}`);
      this.truncations++;
      const keepIndex = this.segmentIndexFor(offset);
      const removed = this.segments.splice(keepIndex + 1);
      for (const segment of removed) this.scheduleDeletion(await segment.markDeleted());
      const kept = this.activeSegment();
      const newEnd = await kept.truncateFrom(offset, this.rules);
      if (!kept.isActive) await kept.reopenForAppend();
      this.logEnd = newEnd;
      this.nextOffsetToAssign = newEnd;
      this.recoveryPointOffset = Math.min(this.recoveryPointOffset, newEnd);
      this.producers.truncateFrom(newEnd);
      await this.epochs.truncateFromEnd(newEnd);
      if (this.epochs.latestEpoch === null) await this.epochs.assign(this.leaderEpoch, newEnd);
      this.logger.info('truncated log', { dir: this.dir, requested: offset, logEndOffset: newEnd, segmentsRemoved: removed.length });
    });
  }

  /**
   * Retention and DeleteRecords: moves the log start offset up to `offset` (at most the log end)
   * and deletes every sealed segment whose offsets are all below it. The active segment stays.
   * Deleted files are renamed to `.deleted` at once and removed after file.delete.delay.ms.
   * `reason` goes into the one log line of the deletion (retention passes time, size or both).
   */
  deleteSegmentsBelow(offset: number, reason = 'log-start-offset'): Promise<{ segmentsDeleted: number; bytesDeleted: number }> {
    let outcome = { segmentsDeleted: 0, bytesDeleted: 0 };
    return this.enqueueControl(async () => {
      const target = Math.min(offset, this.logEnd);
      if (target > this.logStart) this.logStart = target;
      let count = 0;
      while (count < this.segments.length - 1 && this.segments[count + 1]!.baseOffset <= this.logStart) count++;
      const doomed = this.segments.slice(0, count);
      this.segments = this.segments.slice(count);
      let bytes = 0;
      for (const segment of doomed) {
        bytes += segment.sizeBytes;
        this.scheduleDeletion(await segment.markDeleted());
      }
      if (doomed.length > 0) this.logger.info('deleted segments below log start', { dir: this.dir, logStartOffset: this.logStart, segments: doomed.length, bytes, reason });
      outcome = { segmentsDeleted: doomed.length, bytesDeleted: bytes };
    }).then(() => outcome);
  }

  /**
   * What retention decides on, oldest first: every sealed segment (never the active one) with the
   * base offset of the segment after it, its size and its largest record timestamp (-1 when it
   * holds none). A segment's largest timestamp stays in memory once known: segments written since
   * the open know it already; others load it once, from their time index's last entry and the
   * batch headers after the last offset index entry.
   */
  async sealedSegments(): Promise<SealedSegmentFacts[]> {
    const segments = this.segments;
    const facts: SealedSegmentFacts[] = [];
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i]!;
      const largestTimestamp = await segment.maxTimestamp();
      facts.push({ baseOffset: segment.baseOffset, nextBaseOffset: segments[i + 1]!.baseOffset, sizeBytes: segment.sizeBytes, largestTimestamp, logPath: segment.logPath });
    }
    return facts;
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
    let done = false;
    return this.enqueueControl(async () => {
      if (this.closed || this.failedWith !== null || replacedBaseOffsets.length === 0) return;
      const first = this.segments.findIndex((segment) => segment.baseOffset === replacedBaseOffsets[0]);
      const count = replacedBaseOffsets.length;
      // The active segment is never replaced.
      if (first < 0 || first + count >= this.segments.length) return;
      for (let i = 0; i < count; i++) if (this.segments[first + i]!.baseOffset !== replacedBaseOffsets[i]) return;
      await steps.commit();
      this.truncations++;
      let swapped: () => void = () => undefined;
      this.segmentSwap = new Promise<void>((resolve) => (swapped = resolve));
      try {
        for (const segment of this.segments.slice(first, first + count)) this.scheduleDeletion(await segment.markDeleted());
        await steps.install();
        const cleaned = await LogSegment.existing(this.dir, replacedBaseOffsets[0]!, this.segmentLimits(), this.resources);
        await cleaned.loadTail();
        this.segments = [...this.segments.slice(0, first), cleaned, ...this.segments.slice(first + count)];
      } catch (error) {
        // The swap is committed on disk; a restart completes it. Until then this log stops.
        this.failedWith = error as Error;
        this.logger.error('installing a cleaned segment failed; the log stops until a restart completes the swap', { dir: this.dir, error: String(error) });
        throw error;
      } finally {
        this.segmentSwap = null;
        swapped();
      }
      done = true;
      steps.replaced();
    }).then(() => done);
  }

  private scheduleDeletion(paths: string[]): void {
    if (paths.length === 0) return;
    const remove = async (): Promise<void> => {
      for (const path of paths) await rm(path, { force: true });
    };
    if (this.config.fileDeleteDelayMs === 0) {
      remove().catch((error: unknown) => this.logger.error('removing deleted segment files failed', { paths: paths.join(','), error: String(error) }));
      return;
    }
    const timer = setTimeout(() => {
      this.pendingDeletes.delete(timer);
      remove().catch((error: unknown) => this.logger.error('removing deleted segment files failed', { paths: paths.join(','), error: String(error) }));
    }, this.config.fileDeleteDelayMs);
    timer.unref();
    this.pendingDeletes.add(timer);
  }

  /**
   * Finishes queued appends, flushes, writes the active segment's indexes and closes every file.
   * Renamed `.deleted` files still waiting for their delay are removed at the next open.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushTimer !== null) clearInterval(this.flushTimer);
    await this.enqueueControl(async () => {
      const active = this.activeSegment();
      if (this.failedWith === null) {
        await active.flush();
        await active.writeIndexes();
        await this.writeProducerSnapshot(this.logEnd);
        this.recoveryPointOffset = this.logEnd;
      }
      for (const segment of this.segments) await segment.close();
    });
    this.closed = true;
    for (const timer of this.pendingDeletes) clearTimeout(timer);
    this.pendingDeletes.clear();
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  /** Why reads of this log see corruption, for tests and inspection: the rules every batch obeys. */
  get chainRules(): BatchChainRules {
    return this.rules;
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

/** The producer fields of a batch (the idempotence check needs nothing else). */
function producerFields(batch: PendingBatch): { producerId: number; producerEpoch: number; baseSequence: number; lastOffsetDelta: number } {
  return {
    producerId: readInt64AsNumber(batch.buffer, PRODUCER_ID_OFFSET),
    producerEpoch: batch.buffer.readInt16BE(PRODUCER_EPOCH_OFFSET),
    baseSequence: batch.buffer.readInt32BE(BASE_SEQUENCE_OFFSET),
    lastOffsetDelta: batch.lastOffset - batch.baseOffset,
  };
}

/**
 * The refusal for the first batch whose stored CRC does not match its bytes, or null. Batches
 * whose CRC validation already checked (compressed ones, before decompressing) are not checked again.
 */
function crcRefusal(batches: readonly PendingBatch[], validated: readonly ValidatedBatch[]): InvalidRecordsError | null {
  for (let i = 0; i < batches.length; i++) {
    if (validated[i]!.crcVerified) continue;
    const buffer = batches[i]!.buffer;
    const stored = buffer.readUInt32BE(CRC_OFFSET);
    const actual = computeBatchCrc(buffer);
    if (stored !== actual) return new InvalidRecordsError('corrupt', `crc-mismatch: stored CRC ${hex32(stored)}, computed ${hex32(actual)}`, i);
  }
  return null;
}
