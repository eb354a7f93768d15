// Admission of appends to one partition's log: between a record set's validation
// (appendValidation.ts) and the writer's queue (logWriter.ts). Offsets go to appends in call
// order, so the order of calls is the order in the log, even when some appends need asynchronous
// validation (compressed or large batches): an append waits for those called before it. Here too:
// the idempotent producer checks (duplicates answered with their original's offsets), the CRC
// check before anything is written, LogAppendTime stamping, and the choice between the lone-append
// path and the queue. Batches that already carry offsets (appendWithOffsets) are admitted here too.
import {
  ATTRIBUTE_LOG_APPEND_TIME,
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  CRC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  checkBatch,
  computeBatchCrc,
  hex32,
  readInt64AsNumber,
  writeInt64FromNumber,
} from '../../segments/recordBatch.js';
import type { PendingBatch } from '../../segments/logSegment.js';
import { InvalidRecordsError } from '../errors.js';
import type { AppendPolicy, AppendValidator, ValidatedBatch } from './appendValidation.js';
import type { LogState } from './logState.js';
import { type AppendResult, type LogWriter, type QueuedAppend } from './logWriter.js';
import type { ProducerBatch } from './producerState.js';
import { INT32_MAX } from '../../common/limits.js';

export class AppendAdmission {
  private readonly state: LogState;
  private readonly writer: LogWriter;
  private readonly validator: AppendValidator;
  /** What appends must satisfy, from the current config (PartitionLog.reconfigure replaces it). */
  policy: AppendPolicy;
  /** Appends between their call and their offsets on the slow (asynchronously validated) path. */
  private admissionsInProgress = 0;
  /** Settles when the latest slow-path append has its offsets (or was refused). */
  private admissionTail: Promise<void> = Promise.resolve();
  /** Unacknowledged idempotent appends by base offset, so a retry can wait for its original. */
  private readonly pendingIdempotent = new Map<number, Promise<AppendResult>>();

  constructor(state: LogState, writer: LogWriter, validator: AppendValidator, policy: AppendPolicy) {
    this.state = state;
    this.writer = writer;
    this.validator = validator;
    this.policy = policy;
  }

  /**
   * Appends a record set (one or more v2 batches, as a producer sent them). The log takes the
   * buffer: offsets and the leader epoch are written into it in place (neither is covered by the
   * CRC). Every batch is validated first (appendValidation.ts); if any is bad the whole set is
   * refused with InvalidRecordsError and nothing is written. Offsets go to appends in call order
   * even when some need asynchronous validation (compressed or large batches): an append waits
   * for those called before it.
   */
  async append(records: Buffer): Promise<AppendResult> {
    this.state.assertWritable();
    const validation = this.validator.validate(records, this.policy, this.state.clock.nowMs());
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
      this.state.assertWritable();
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
    const state = this.state;
    const batches: PendingBatch[] = validated.map((batch) => ({ buffer: batch.buffer, baseOffset: 0, lastOffset: batch.lastOffsetDelta, maxTimestamp: batch.maxTimestamp }));
    const idempotent = validated.some((batch) => batch.producerId >= 0);
    if (idempotent && batches.length > 1) {
      throw new InvalidRecordsError('invalid-record', 'a batch of an idempotent producer must come alone in its record set', 1);
    }
    if (this.writer.mustWaitForRoom(records.length)) {
      await this.writer.roomFreed();
      state.assertWritable();
    }
    // From here to the queue, nothing awaits: the sequence check, the offsets and the producer
    // state update happen in call order.
    const producerHeader = idempotent ? producerFields(batches[0]!) : null;
    if (producerHeader !== null) {
      const verdict = state.producers.check(producerHeader);
      if (verdict.kind === 'duplicate') {
        onAdmitted?.();
        return this.duplicateOf(verdict.batch);
      }
    }
    const result: AppendResult = { baseOffset: -1, lastOffset: -1, logAppendTimeMs: -1, logStartOffset: state.logStart };
    // Before anything is written, so a damaged batch never touches the file and never holds up
    // the appends behind it (about 3 us for 16 KiB with the native CRC).
    const refusal = crcRefusal(batches, validated);
    if (refusal !== null) throw refusal;
    const writeAlone = this.writer.canWriteAlone(batches);
    if (state.config.messageTimestampType === 'LogAppendTime') {
      // LogAppendTime: the broker's clock replaces the producer's, so the CRC must be redone.
      result.logAppendTimeMs = state.clock.nowMs();
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
      if (writeAlone) this.writer.writeAlone(queued);
      else this.writer.enqueue(queued);
    });
    onAdmitted?.();
    if (producerHeader !== null) {
      state.producers.record(producerHeader, result.baseOffset, state.clock.nowMs());
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
    return { baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, logAppendTimeMs: -1, logStartOffset: this.state.logStart };
  }

  /**
   * Gives an append the next offsets, in call order: rewrites each batch's baseOffset and leader
   * epoch in place (neither is covered by the CRC).
   */
  private assignOffsets(append: QueuedAppend): void {
    const state = this.state;
    append.result.baseOffset = state.nextOffsetToAssign;
    for (const batch of append.batches) {
      const delta = batch.lastOffset - batch.baseOffset;
      batch.baseOffset = state.nextOffsetToAssign;
      batch.lastOffset = batch.baseOffset + delta;
      state.nextOffsetToAssign = batch.lastOffset + 1;
      writeInt64FromNumber(batch.buffer, BASE_OFFSET_OFFSET, batch.baseOffset);
      batch.buffer.writeInt32BE(state.leaderEpoch, PARTITION_LEADER_EPOCH_OFFSET);
    }
    append.result.lastOffset = state.nextOffsetToAssign - 1;
  }

  /**
   * Appends batches that already carry their offsets and epochs (a follower copying its leader,
   * or the cleaner). Offsets must be above the log end and increase; otherwise the whole set is
   * refused with 'offsets-out-of-order'.
   */
  async appendWithOffsets(records: Buffer): Promise<AppendResult> {
    const state = this.state;
    state.assertWritable();
    const batches = this.validateWithOffsets(records);
    let previousLast = state.nextOffsetToAssign - 1;
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      const gapNotAllowed = state.rules.contiguousOffsets && batch.baseOffset !== previousLast + 1;
      if (batch.baseOffset <= previousLast || gapNotAllowed) {
        throw new InvalidRecordsError('offsets-out-of-order', `batch base offset ${batch.baseOffset} does not follow ${previousLast}`, i);
      }
      const epoch = batch.buffer.readInt32BE(PARTITION_LEADER_EPOCH_OFFSET);
      if (epoch < state.leaderEpoch) throw new InvalidRecordsError('offsets-out-of-order', `batch leader epoch ${epoch} is below the log's ${state.leaderEpoch}`, i);
      previousLast = batch.lastOffset;
    }
    const first = batches[0]!;
    const result: AppendResult = { baseOffset: first.baseOffset, lastOffset: previousLast, logAppendTimeMs: -1, logStartOffset: state.logStart };
    state.nextOffsetToAssign = previousLast + 1;
    return new Promise<AppendResult>((resolve, reject) => this.writer.enqueue({ kind: 'append', batches, bytes: records.length, result, resolve, reject }));
  }

  /**
   * Checks the framing and CRC of batches that already carry offsets (a follower copying its
   * leader, or the cleaner): their records were validated when they were first appended.
   */
  private validateWithOffsets(records: Buffer): PendingBatch[] {
    const config = this.state.config;
    if (records.length === 0) throw new InvalidRecordsError('empty', 'the record set holds no batch', 0);
    const batches: PendingBatch[] = [];
    let position = 0;
    while (position < records.length) {
      const index = batches.length;
      const check = checkBatch(records, position, records.length, { maxBatchBytes: INT32_MAX });
      if (!check.ok) throw new InvalidRecordsError('corrupt', `${check.problem}: ${check.detail}`, index);
      if (check.size > config.maxMessageBytes) {
        throw new InvalidRecordsError('too-large', `batch of ${check.size} bytes exceeds max.message.bytes ${config.maxMessageBytes}`, index);
      }
      if (check.size > config.segmentBytes) {
        throw new InvalidRecordsError('too-large', `batch of ${check.size} bytes exceeds segment.bytes ${config.segmentBytes}`, index);
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
