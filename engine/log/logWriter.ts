// The single writer of one partition's log. Appends that have their offsets (appendAdmission.ts)
// queue here, bounded in bytes (maxQueuedAppendBytes; admission waits for room). The writer takes
// every queued append it can (up to one writev's worth), rolls segments when needed, writes with
// one writev and, under flush-per-append, one fdatasync for the whole group: that is group
// commit. An append resolves once its bytes are written (and synced, per policy). A lone append
// with the writer idle skips the queue (writeAlone), still as the only write in flight.
//
// Control operations (flush, truncate, delete below, compaction's swap, close) go through the
// same queue, so they never interleave with a write. Rolled segments flush in the background, in
// roll order; a write failure refuses the failed group and everything queued behind it.
import { rm } from 'node:fs/promises';
import { fsyncDirectory } from '../../segments/checkpointFile.js';
import { PARTITION_LEADER_EPOCH_OFFSET } from '../../segments/recordBatch.js';
import { LogSegment, type PendingBatch } from '../../segments/logSegment.js';
import { StorageError } from '../errors.js';
import type { LogState } from './logState.js';
import { writeProducerSnapshot } from './producerSnapshots.js';
import type { Cancel } from '../scheduler.js';
import { MAX_RELATIVE_OFFSET } from '../../common/limits.js';

/** One writev takes at most this many buffers (Linux IOV_MAX is 1024). */
const MAX_BUFFERS_PER_WRITE = 1024;
/** One group of appends carries at most this many bytes before the writer writes it. */
const MAX_BYTES_PER_WRITE = 32 * 1024 * 1024;

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** The broker time stamped into LogAppendTime batches, else -1. */
  logAppendTimeMs: number;
  logStartOffset: number;
}

export interface QueuedAppend {
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

export class LogWriter {
  private readonly state: LogState;
  private queue: QueuedOperation[] = [];
  private queuedBytes = 0;
  private readonly roomWaiters: Array<() => void> = [];
  private writerRunning = false;
  private cancelFlushTimer: Cancel | null = null;
  private readonly appendListeners = new Set<() => void>();
  /** Flushes of rolled segments, chained in roll order; control operations wait for them. */
  private sealedFlushes: Promise<void> = Promise.resolve();
  /** Cancels the deletions waiting for file.delete.delay.ms. */
  private readonly pendingDeletes = new Set<Cancel>();

  constructor(state: LogState) {
    this.state = state;
  }

  /** (Re)starts the periodic flush of log.flush.interval.ms, on the shared scheduler. */
  startFlushTimer(): void {
    const state = this.state;
    this.cancelFlushTimer?.();
    this.cancelFlushTimer = null;
    if (state.config.flush.mode !== 'interval' || state.closed) return;
    const intervalMs = state.config.flush.intervalMs;
    const tick = (): void => {
      this.cancelFlushTimer = state.scheduler.schedule(state.scheduler.nowMs() + intervalMs, tick);
      this.flush().catch((error: unknown) => state.logger.error('periodic flush failed', { dir: state.dir, error: String(error) }));
    };
    this.cancelFlushTimer = state.scheduler.schedule(state.scheduler.nowMs() + intervalMs, tick);
  }

  /** Whether an append of `bytes` must wait for room behind the writer (the queue's byte bound). */
  mustWaitForRoom(bytes: number): boolean {
    return this.queue.length > 0 && (this.queuedBytes + bytes > this.state.config.maxQueuedAppendBytes || this.roomWaiters.length > 0);
  }

  /** Settles once the writer has taken enough off the queue (or the log closed). */
  roomFreed(): Promise<void> {
    return new Promise<void>((resolve) => this.roomWaiters.push(resolve));
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

  enqueue(append: QueuedAppend): void {
    this.queue.push(append);
    this.queuedBytes += append.bytes;
    this.startWriter();
  }

  /**
   * Whether an append may skip the queue: the writer is idle with nothing queued, no roll is due,
   * there is no fsync to share and no CRC to recompute (LogAppendTime). Decided before offsets
   * are assigned; nothing awaits between the decision and writeAlone().
   */
  canWriteAlone(batches: readonly PendingBatch[]): boolean {
    const state = this.state;
    if (this.writerRunning || this.queue.length > 0 || batches.length !== 1) return false;
    if (state.config.flush.mode === 'every-append' || state.config.messageTimestampType === 'LogAppendTime') return false;
    const batch = batches[0]!;
    const epoch = state.epochs.latestEpoch;
    if (epoch === null || state.leaderEpoch > epoch || state.hasDeferredWrites) return false;
    // The roll decision needs the offsets the batch will really get, not the ones it was sent with.
    const baseOffset = state.nextOffsetToAssign;
    return !this.shouldRoll(state.activeSegment(), 0, { ...batch, baseOffset, lastOffset: baseOffset + (batch.lastOffset - batch.baseOffset) });
  }

  /**
   * Writes a lone append at once, without the queue and group machinery: the same single writer,
   * fewer hops on the latency path of a producer that waits for each append. Its batches were
   * validated and CRC-checked before; they become readable once the write returns.
   */
  writeAlone(append: QueuedAppend): void {
    const state = this.state;
    this.writerRunning = true;
    const active = state.activeSegment();
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
          state.failedWith = error as Error;
          state.logger.error('committing an append failed; the log stops accepting appends', { dir: state.dir, error: (error as Error).stack ?? String(error) });
          this.failQueuedAppends([append], error);
          finish();
          return;
        }
        this.committed(active, append.batches);
        state.durableEnd = state.logEnd;
        append.result.logStartOffset = state.logStart;
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
      state.failedWith ??= error as Error;
      this.writerRunning = false;
      state.logger.error('the append path failed unexpectedly; the log stops accepting appends', { dir: state.dir, error: (error as Error).stack ?? String(error) });
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
    if (this.state.config.flush.mode === 'every-append') setImmediate(run);
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
    while (this.roomWaiters.length > 0 && this.queuedBytes < this.state.config.maxQueuedAppendBytes) this.roomWaiters.shift()!();
  }

  /** Writes one group of appends, rolling segments between batches where a limit says so. */
  private async writeGroup(group: QueuedAppend[]): Promise<void> {
    const state = this.state;
    // A new log's first write brings its small files along (LogState.deferWrite).
    if (state.hasDeferredWrites) await state.writeDeferred();
    let pending: PendingBatch[] = [];
    let pendingBytes = 0;
    for (const append of group) {
      for (const batch of append.batches) {
        const active = state.activeSegment();
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
    if (state.config.flush.mode === 'every-append') {
      try {
        // A roll inside this group left batches in the sealed segment: its flush must finish too.
        await Promise.all([state.activeSegment().flush(), this.sealedFlushes]);
        if (state.hasDeferredSyncs) await state.syncDeferred();
      } catch (error) {
        state.failedWith = error as Error;
        throw error;
      }
      state.recoveryPointOffset = state.logEnd;
    }
    state.durableEnd = state.logEnd;
    state.checkOffsets('a group commit');
    for (const append of group) {
      append.result.logStartOffset = state.logStart;
      append.resolve(append.result);
    }
    this.notifyAppend();
  }

  private shouldRoll(active: LogSegment, pendingBytes: number, batch: PendingBatch): boolean {
    const config = this.state.config;
    const sizeAfter = active.sizeBytes + pendingBytes;
    if (sizeAfter === 0) return false; // an empty segment takes any batch that passed validation
    if (sizeAfter + batch.buffer.length > config.segmentBytes) return true;
    if (active.rollStartMs !== null && this.state.clock.nowMs() - active.rollStartMs >= config.segmentMs) return true;
    if (active.indexIsFull) return true;
    return batch.lastOffset - active.baseOffset > MAX_RELATIVE_OFFSET;
  }

  private async writeToActive(batches: PendingBatch[]): Promise<void> {
    const state = this.state;
    const active = state.activeSegment();
    const epoch = batches[0]!.buffer.readInt32BE(PARTITION_LEADER_EPOCH_OFFSET);
    if (state.epochs.latestEpoch === null || epoch > state.epochs.latestEpoch) await state.epochs.assign(epoch, batches[0]!.baseOffset);
    try {
      await active.writeBatches(batches);
    } catch (error) {
      throw new StorageError(`writing ${batches.length} batches to ${active.logPath} failed: ${String(error)}`, { cause: error });
    }
    this.committed(active, batches);
  }

  /** Bookkeeping once batches are written to the active segment: they are readable now. */
  private committed(active: LogSegment, batches: readonly PendingBatch[]): void {
    if (active.rollStartMs === null) active.rollStartMs = this.state.clock.nowMs();
    this.state.logEnd = batches[batches.length - 1]!.lastOffset + 1;
  }

  private async roll(newBaseOffset: number): Promise<void> {
    const state = this.state;
    const previous = state.activeSegment();
    const next = await LogSegment.create(state.dir, newBaseOffset, state.segmentLimits(), state.resources);
    previous.seal();
    state.segments.push(next);
    await state.withFileOperation(() => writeProducerSnapshot(state.dir, state.producers, newBaseOffset));
    // The new segment's name, and anything a new log deferred (its first files), reach the disk.
    if (state.hasDeferredSyncs) await state.syncDeferred();
    else await fsyncDirectory(state.dir);
    // Sealed segments flush one after another, in order, so the recovery point only ever moves
    // past segments whose bytes and indexes are all on disk.
    this.sealedFlushes = this.sealedFlushes.then(async () => {
      await previous.flushSealed();
      state.recoveryPointOffset = Math.max(state.recoveryPointOffset, previous.nextOffset);
    });
    this.sealedFlushes.catch((error: unknown) => {
      state.failedWith ??= error as Error;
      state.logger.error('flushing a rolled segment failed; the log stops accepting appends', { file: previous.logPath, error: String(error) });
    });
    state.logger.info('rolled segment', { dir: state.dir, sealed: previous.baseOffset, sealedBytes: previous.sizeBytes, next: newBaseOffset });
  }

  /** A write failed: the failed group and every append queued behind it are refused, offsets rewound. */
  private failQueuedAppends(group: QueuedAppend[], error: unknown, severity: 'error' | 'warn' = 'error'): void {
    const state = this.state;
    const storageError = error instanceof StorageError ? error : new StorageError(`append to ${state.dir} failed: ${String(error)}`, { cause: error });
    const refused = group.length + this.queue.filter((operation) => operation.kind === 'append').length;
    if (refused > 0) state.logger[severity]('appends refused', { dir: state.dir, appends: refused, error: storageError.message });
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
    state.nextOffsetToAssign = state.logEnd;
    state.producers.truncateFrom(state.logEnd);
    this.wakeRoomWaiters();
  }

  // -------------------------------------------------------------------------------------------
  // Control operations: flush, truncation, retention, compaction's swap, close

  /** Syncs everything written so far; afterwards the recovery point is the log end. */
  flush(): Promise<void> {
    const state = this.state;
    return this.enqueueControl(async () => {
      const end = state.logEnd;
      try {
        await state.activeSegment().flush();
        await state.syncDeferred();
      } catch (error) {
        state.failedWith = error as Error;
        throw new StorageError(`fsync of ${state.activeSegment().logPath} failed`, { cause: error });
      }
      state.recoveryPointOffset = Math.max(state.recoveryPointOffset, end);
    });
  }

  /**
   * Removes every batch at or after the one holding `offset`; the log end becomes that batch's
   * base offset. Used when a follower diverged from its leader.
   */
  truncateTo(offset: number): Promise<void> {
    const state = this.state;
    return this.enqueueControl(async () => {
      if (offset >= state.logEnd) return;
      if (offset < state.logStart) throw new RangeError(`cannot truncate to ${offset}, below the log start ${state.logStart}`);
      state.truncations++;
      const keepIndex = state.segmentIndexFor(offset);
      const removed = state.segments.splice(keepIndex + 1);
      for (const segment of removed) this.scheduleDeletion(await segment.markDeleted());
      const kept = state.activeSegment();
      const newEnd = await kept.truncateFrom(offset, state.rules);
      if (!kept.isActive) await kept.reopenForAppend();
      state.logEnd = newEnd;
      state.durableEnd = Math.min(state.durableEnd, newEnd);
      state.nextOffsetToAssign = newEnd;
      state.recoveryPointOffset = Math.min(state.recoveryPointOffset, newEnd);
      state.producers.truncateFrom(newEnd);
      await state.epochs.truncateFromEnd(newEnd);
      if (state.epochs.latestEpoch === null) await state.epochs.assign(state.leaderEpoch, newEnd);
      state.logger.info('truncated log', { dir: state.dir, requested: offset, logEndOffset: newEnd, segmentsRemoved: removed.length });
      state.checkOffsets('the end of a truncation');
    });
  }

  /**
   * Retention and DeleteRecords: moves the log start offset up to `offset` (at most the log end)
   * and deletes every sealed segment whose offsets are all below it. The active segment stays.
   * Deleted files are renamed to `.deleted` at once and removed after file.delete.delay.ms.
   * `reason` goes into the one log line of the deletion (retention passes time, size or both).
   */
  deleteSegmentsBelow(offset: number, reason: string): Promise<{ segmentsDeleted: number; bytesDeleted: number }> {
    const state = this.state;
    let outcome = { segmentsDeleted: 0, bytesDeleted: 0 };
    return this.enqueueControl(async () => {
      const target = Math.min(offset, state.logEnd);
      if (target > state.logStart) state.logStart = target;
      let count = 0;
      while (count < state.segments.length - 1 && state.segments[count + 1]!.baseOffset <= state.logStart) count++;
      const doomed = state.segments.slice(0, count);
      state.segments = state.segments.slice(count);
      let bytes = 0;
      for (const segment of doomed) {
        bytes += segment.sizeBytes;
        this.scheduleDeletion(await segment.markDeleted());
      }
      if (doomed.length > 0) state.logger.info('deleted segments below log start', { dir: state.dir, logStartOffset: state.logStart, segments: doomed.length, bytes, reason });
      outcome = { segmentsDeleted: doomed.length, bytesDeleted: bytes };
      state.checkOffsets('the end of a deletion below the log start');
    }).then(() => outcome);
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
    const state = this.state;
    let done = false;
    return this.enqueueControl(async () => {
      if (state.closed || state.failedWith !== null || replacedBaseOffsets.length === 0) return;
      const first = state.segments.findIndex((segment) => segment.baseOffset === replacedBaseOffsets[0]);
      const count = replacedBaseOffsets.length;
      // The active segment is never replaced.
      if (first < 0 || first + count >= state.segments.length) return;
      for (let i = 0; i < count; i++) if (state.segments[first + i]!.baseOffset !== replacedBaseOffsets[i]) return;
      await steps.commit();
      state.truncations++;
      let swapped: () => void = () => undefined;
      state.segmentSwap = new Promise<void>((resolve) => (swapped = resolve));
      try {
        for (const segment of state.segments.slice(first, first + count)) this.scheduleDeletion(await segment.markDeleted());
        await steps.install();
        const cleaned = await LogSegment.existing(state.dir, replacedBaseOffsets[0]!, state.segmentLimits(), state.resources);
        await cleaned.loadTail();
        state.segments = [...state.segments.slice(0, first), cleaned, ...state.segments.slice(first + count)];
      } catch (error) {
        // The swap is committed on disk; a restart completes it. Until then this log stops.
        state.failedWith = error as Error;
        state.logger.error('installing a cleaned segment failed; the log stops until a restart completes the swap', { dir: state.dir, error: String(error) });
        throw error;
      } finally {
        state.segmentSwap = null;
        swapped();
      }
      done = true;
      steps.replaced();
    }).then(() => done);
  }

  private scheduleDeletion(paths: string[]): void {
    const state = this.state;
    if (paths.length === 0) return;
    const remove = async (): Promise<void> => {
      for (const path of paths) await rm(path, { force: true });
    };
    if (state.config.fileDeleteDelayMs === 0) {
      remove().catch((error: unknown) => state.logger.error('removing deleted segment files failed', { paths: paths.join(','), error: String(error) }));
      return;
    }
    const cancel = state.scheduler.schedule(state.scheduler.nowMs() + state.config.fileDeleteDelayMs, () => {
      this.pendingDeletes.delete(cancel);
      remove().catch((error: unknown) => state.logger.error('removing deleted segment files failed', { paths: paths.join(','), error: String(error) }));
    });
    this.pendingDeletes.add(cancel);
  }

  /**
   * Finishes queued appends, flushes, writes the active segment's indexes and closes every file.
   * Renamed `.deleted` files still waiting for their delay are removed at the next open.
   */
  async close(): Promise<void> {
    const state = this.state;
    if (state.closed) return;
    this.cancelFlushTimer?.();
    this.cancelFlushTimer = null;
    await this.enqueueControl(async () => {
      const active = state.activeSegment();
      // A log that opened settled and was not written to since has nothing to flush: 10,000
      // idle partitions would otherwise cost 40,000 syncs at every stop.
      try {
        if (state.failedWith === null && !state.unchangedSinceSettledOpen) {
          await active.flush();
          await active.writeIndexes();
          await writeProducerSnapshot(state.dir, state.producers, state.logEnd);
          await state.syncDeferred();
          state.recoveryPointOffset = state.logEnd;
        }
      } finally {
        // Even when a flush failed (the error goes to the caller, and no clean-shutdown marker is
        // written): the descriptors go.
        for (const segment of state.segments) await segment.close().catch(() => undefined);
      }
    });
    state.closed = true;
    for (const cancel of this.pendingDeletes) cancel();
    this.pendingDeletes.clear();
    for (const wake of this.roomWaiters.splice(0)) wake();
  }
}
