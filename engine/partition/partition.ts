// A Partition is one partition's log with its replica state (leader epoch, ISR, follower
// positions, high watermark). Handlers, groups, retention and lag go through it, so what a
// consumer may see is decided in one place: nothing above the high watermark is read, listed
// or deleted, and acks=-1 is answered only once the high watermark covers the append.
import { ReplicationTimeoutError } from '../errors.js';
import type { AppendResult, LogReadResult, PartitionLog } from '../log/partitionLog.js';
import { ReplicaState } from './replicaState.js';

export type RequiredAcks = -1 | 0 | 1;

export interface PartitionReadResult extends LogReadResult {
  highWatermark: number;
}

export class Partition {
  private readonly replica: ReplicaState;
  private readonly highWatermarkListeners = new Set<() => void>();
  /** Unsubscribes the pending one-shot log notification, or null when none is armed. */
  private logWatch: (() => void) | null = null;

  constructor(
    readonly topic: string,
    readonly index: number,
    readonly log: PartitionLog,
    options: { leaderEpoch?: number; isr?: readonly number[] } = {},
  ) {
    this.replica = new ReplicaState({ leaderEpoch: options.leaderEpoch ?? 0, highWatermark: 0, ...(options.isr === undefined ? {} : { isr: options.isr }) });
    this.replica.advance(log.durableEndOffset);
  }

  /**
   * The leader's own contribution to the high watermark: its durable end, but never below the log
   * start (a failed fsync can leave unacknowledged batches that DeleteRecords then passes).
   */
  private localEnd(): number {
    return Math.max(this.log.durableEndOffset, this.log.logStartOffset);
  }

  /** Offsets below it are on every in-sync replica (one node: acknowledged under the flush policy). */
  get highWatermark(): number {
    if (this.replica.advance(this.localEnd())) this.notifyHighWatermark();
    return this.replica.highWatermark;
  }

  get logStartOffset(): number {
    return this.log.logStartOffset;
  }

  get logEndOffset(): number {
    return this.log.logEndOffset;
  }

  /**
   * Appends as the leader. acks 0 and 1 are answered once the local append is done (under the
   * flush policy); acks -1 once the high watermark passes the append, or REQUEST_TIMED_OUT after
   * `timeoutMs` (the records stay in the log, as in Kafka).
   */
  async appendAsLeader(records: Buffer, acks: RequiredAcks, timeoutMs: number): Promise<AppendResult> {
    const result = await this.log.append(records);
    if (acks !== -1 || this.highWatermark > result.lastOffset) return result;
    await this.waitForHighWatermark(result.lastOffset + 1, timeoutMs);
    return result;
  }

  /** Resolves once the high watermark reaches `offset`; rejects with ReplicationTimeoutError at the deadline. */
  waitForHighWatermark(offset: number, timeoutMs: number): Promise<void> {
    if (this.highWatermark >= offset) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let unsubscribe = (): void => undefined;
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new ReplicationTimeoutError(`${this.topic}-${this.index}: the high watermark ${this.replica.highWatermark} did not reach ${offset} within ${timeoutMs} ms`));
      }, Math.max(0, timeoutMs));
      const check = (): void => {
        if (this.highWatermark >= offset) {
          clearTimeout(timer);
          resolve();
        } else {
          unsubscribe = this.onHighWatermarkAdvance(check);
        }
      };
      unsubscribe = this.onHighWatermarkAdvance(check);
    });
  }

  /** Reads whole batches from `offset`, never past the high watermark. */
  async read(offset: number, maxBytes: number, options: { minOneBatch?: boolean } = {}): Promise<PartitionReadResult> {
    const highWatermark = this.highWatermark;
    const read = await this.log.read(offset, maxBytes, { maxOffset: highWatermark, minOneBatch: options.minOneBatch ?? true });
    return { ...read, highWatermark };
  }

  /** The first offset below the high watermark whose record timestamp is >= `timestamp`, or null. */
  async offsetForTimestamp(timestamp: number): Promise<{ offset: number; timestamp: number } | null> {
    const highWatermark = this.highWatermark;
    const found = await this.log.readByTimestamp(timestamp);
    return found !== null && found.offset < highWatermark ? found : null;
  }

  /**
   * Moves the log start up to `offset` (DeleteRecords); -1 means the high watermark. An offset
   * past the high watermark is refused with a RangeError before anything changes.
   */
  async deleteRecordsBelow(offset: number): Promise<number> {
    const highWatermark = this.highWatermark;
    const target = offset === -1 ? highWatermark : offset;
    if (!Number.isSafeInteger(target) || target < 0 || target > highWatermark) throw new RangeError(`offset ${offset} is outside 0..${highWatermark} (the high watermark)`);
    await this.log.deleteSegmentsBelow(target);
    return this.log.logStartOffset;
  }

  /** Records a follower's position (its fetch offset); issue 13's follower fetches call this. */
  updateFollowerEnd(replicaId: number, logEndOffset: number): void {
    this.replica.updateFollowerEnd(replicaId, logEndOffset);
    if (this.replica.advance(this.localEnd())) this.notifyHighWatermark();
  }

  /** A one-time callback for the next time the high watermark moves (Fetch long polls, acks=-1). */
  onHighWatermarkAdvance(listener: () => void): () => void {
    this.highWatermarkListeners.add(listener);
    this.watchLog();
    return () => void this.highWatermarkListeners.delete(listener);
  }

  /** While anyone waits, listen for the log's next acknowledged append: it may move the mark. */
  private watchLog(): void {
    if (this.logWatch !== null) return;
    this.logWatch = this.log.onNextAppend(() => {
      this.logWatch = null;
      if (this.replica.advance(this.localEnd())) this.notifyHighWatermark();
      if (this.highWatermarkListeners.size > 0) this.watchLog();
    });
  }

  private notifyHighWatermark(): void {
    if (this.highWatermarkListeners.size === 0) return;
    const listeners = [...this.highWatermarkListeners];
    this.highWatermarkListeners.clear();
    for (const listener of listeners) listener();
  }
}
