// Retention: every log.retention.check.interval.ms, each log whose cleanup.policy includes
// `delete` loses its oldest sealed segments, as Kafka decides it:
//
//   by time   a segment goes when now - its largest record timestamp > retention.ms, oldest
//             first, stopping at the first segment that is young enough (the log start moves
//             forward only, so a young segment protects every segment after it);
//   by size   while the partition's size minus the oldest remaining segment's size stays
//             >= retention.bytes, that segment goes.
//
// Both only ever take sealed segments whose successor starts at or below the high watermark;
// the active segment is never deleted, nor rolled to make it deletable. (Kafka rolls an expired,
// non-empty active segment so an idle partition empties; here its records stay until the next
// append rolls it by segment.bytes or segment.ms. Reading what is still there is never wrong,
// and retention stays out of the writer's way.) The log start offset moves to the base offset of
// the first segment kept, or stays higher where DeleteRecords put it, and is checkpointed at
// once. Deletion is PartitionLog's two-step delete: files renamed `.deleted`, removed after
// file.delete.delay.ms, so reads holding a segment's handle finish.
//
// The decision reads only facts kept in memory (sizes, largest timestamps); a segment's largest
// timestamp is loaded once from its time index's last entry and the few batch headers after its
// last offset index entry, which is a small read, so no worker thread is involved.
import { stat } from 'node:fs/promises';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { PartitionLog, SealedSegmentFacts } from './partitionLog.js';

/** Shortest and longest check interval accepted (the broker config is range-checked too). */
const MIN_CHECK_INTERVAL_MS = 1;
const MAX_CHECK_INTERVAL_MS = 365 * 24 * 60 * 60 * 1000;

/** A log retention looks at, with its topic's limits (-1: none). */
export interface RetainedPartition {
  topic: string;
  partition: number;
  log: PartitionLog;
  /** Only segments wholly below it may go: consumers may not have read what lies above. */
  readonly highWatermark: number;
  retentionMs: number;
  retentionBytes: number;
}

export type RetentionReason = 'time' | 'size' | 'time+size';

/** What one round did to one partition (only partitions that lost segments are reported). */
export interface RetentionOutcome {
  topic: string;
  partition: number;
  reason: RetentionReason;
  segmentsDeleted: number;
  bytesDeleted: number;
  logStartOffset: number;
}

export interface RetentionManagerOptions {
  /** The logs to check now (called once per round). */
  partitions(): Iterable<RetainedPartition>;
  /** Writes the log start offset checkpoint (after a round that moved a log start). */
  checkpoint(): Promise<void>;
  checkIntervalMs: number;
  clock: Clock;
  logger: Logger;
}

/** A sealed segment with the largest timestamp retention compares against retention.ms. */
export interface RetentionSegment {
  nextBaseOffset: number;
  sizeBytes: number;
  /** The largest record timestamp, or the file's modification time when it holds none (Kafka's rule). */
  largestTimestampMs: number;
}

export interface RetentionDecision {
  /** How many of the oldest sealed segments go. */
  count: number;
  /** How many of them retention.ms alone would take, and retention.bytes alone. */
  byTime: number;
  bySize: number;
}

/**
 * Which oldest segments retention deletes. `segments` are the sealed ones, oldest first;
 * `partitionBytes` counts the active segment too. Both rules take a prefix of the log, so
 * applying them one after the other (as Kafka does) deletes the longer of the two prefixes.
 */
export function segmentsToDelete(
  segments: readonly RetentionSegment[],
  partitionBytes: number,
  highWatermark: number,
  limits: { retentionMs: number; retentionBytes: number },
  nowMs: number,
): RetentionDecision {
  let eligible = 0;
  while (eligible < segments.length && segments[eligible]!.nextBaseOffset <= highWatermark) eligible++;

  let byTime = 0;
  if (limits.retentionMs >= 0) {
    while (byTime < eligible && nowMs - segments[byTime]!.largestTimestampMs > limits.retentionMs) byTime++;
  }

  let bySize = 0;
  if (limits.retentionBytes >= 0) {
    let excessBytes = partitionBytes - limits.retentionBytes;
    while (bySize < eligible && excessBytes - segments[bySize]!.sizeBytes >= 0) {
      excessBytes -= segments[bySize]!.sizeBytes;
      bySize++;
    }
  }
  return { count: Math.max(byTime, bySize), byTime, bySize };
}

function reasonOf(decision: RetentionDecision): RetentionReason {
  if (decision.byTime > 0 && decision.bySize > decision.byTime) return 'time+size';
  return decision.byTime > 0 ? 'time' : 'size';
}

export class RetentionManager {
  private readonly options: RetentionManagerOptions;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RetentionOutcome[]> | null = null;
  private stopped = false;

  constructor(options: RetentionManagerOptions) {
    const interval = options.checkIntervalMs;
    if (!Number.isSafeInteger(interval) || interval < MIN_CHECK_INTERVAL_MS || interval > MAX_CHECK_INTERVAL_MS) {
      throw new RangeError(`log.retention.check.interval.ms must be an integer in [${MIN_CHECK_INTERVAL_MS}, ${MAX_CHECK_INTERVAL_MS}], got ${interval}`);
    }
    this.options = options;
  }

  /** Checks every log every checkIntervalMs from now on; rounds never overlap. */
  start(): void {
    if (this.stopped || this.timer !== null) return;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runOnce()
        .catch((error: unknown) => this.options.logger.error('retention round failed', { error: (error as Error).stack ?? String(error) }))
        .finally(() => this.schedule());
    }, this.options.checkIntervalMs);
    this.timer.unref();
  }

  /**
   * One round over every log (tests call it after moving the clock). A round already running is
   * joined, not doubled. Resolves with what each partition lost.
   */
  runOnce(): Promise<RetentionOutcome[]> {
    if (this.running !== null) return this.running;
    const round = this.round().finally(() => {
      this.running = null;
    });
    this.running = round;
    return round;
  }

  /** Stops the timer and waits for a round in progress (it skips the partitions it has not reached). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  private async round(): Promise<RetentionOutcome[]> {
    const outcomes: RetentionOutcome[] = [];
    for (const partition of this.options.partitions()) {
      if (this.stopped) break;
      if (!partition.log.config.cleanupPolicy.includes('delete')) continue;
      if (partition.retentionMs < 0 && partition.retentionBytes < 0) continue;
      try {
        const outcome = await this.retain(partition);
        if (outcome !== null) outcomes.push(outcome);
      } catch (error) {
        // One partition's trouble (a corrupt index, a log closed by a topic deletion) must not
        // keep retention from the others; the next round tries again.
        this.options.logger.warn('retention skipped a partition', { topic: partition.topic, partition: partition.partition, error: String(error) });
      }
    }
    if (outcomes.length > 0) await this.options.checkpoint();
    return outcomes;
  }

  private async retain(partition: RetainedPartition): Promise<RetentionOutcome | null> {
    const { log } = partition;
    const sealed = await log.sealedSegments();
    if (sealed.length === 0) return null;
    const segments = await Promise.all(sealed.map(retentionSegment));
    const decision = segmentsToDelete(segments, log.sizeBytes, partition.highWatermark, partition, this.options.clock.nowMs());
    if (decision.count === 0) return null;
    const reason = reasonOf(decision);
    const target = sealed[decision.count - 1]!.nextBaseOffset;
    const deleted = await log.deleteSegmentsBelow(target, `retention ${reason}`);
    if (deleted.segmentsDeleted === 0) return null;
    return { topic: partition.topic, partition: partition.partition, reason, ...deleted, logStartOffset: log.logStartOffset };
  }
}

async function retentionSegment(segment: SealedSegmentFacts): Promise<RetentionSegment> {
  // A segment without timestamps (empty, or written without them) ages by its file, as in Kafka.
  const largestTimestampMs = segment.largestTimestamp >= 0 ? segment.largestTimestamp : (await stat(segment.logPath)).mtimeMs;
  return { nextBaseOffset: segment.nextBaseOffset, sizeBytes: segment.sizeBytes, largestTimestampMs };
}
