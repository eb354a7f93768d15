// The broker's background check of what is at rest: every `log.verify.interval.ms`, each
// partition's sealed segments that were not verified since they were sealed are read back on a
// worker thread (engine/log/verification/partitionVerifier.ts: framing, CRC-32C, offset chain, leader
// epochs, .index and .timeindex), one partition at a time. Every problem found is an ERROR line
// naming topic, partition, file, offset and position.
//
// What was verified is remembered per segment as base offset + size: a segment is checked once
// after it is sealed, and again only if it changes (compaction replaced it). Only segments the
// recovery point has passed are checked, so their bytes and indexes are on disk and final; the
// active segment never is. A segment deleted meanwhile (retention, compaction) is skipped: a
// missing file is not corruption. The event loop only lists segments and stats files; reading
// and checking happen on the pool's threads.
import { stat } from 'node:fs/promises';
import type { Logger } from '../../logger.js';
import type { PartitionLog } from '../partitionLog.js';
import { LOG_SUFFIX, segmentPath } from '../../../segments/segmentNames.js';
import type { VerifyReport } from './partitionVerifier.js';
import { WorkerPoolBusyError, WorkerPoolClosedError, WorkerTaskCancelledError, type WorkerPool } from '../../workers/workerPool.js';

/** One task checks at most this many segments, so a first round over a large partition is split. */
export const MAX_SEGMENTS_PER_VERIFY_TASK = 64;
/** ... and at most this many bytes of .log (2 GiB: seconds of reading, far inside a task's time limit). */
export const MAX_BYTES_PER_VERIFY_TASK = 2 * 1024 * 1024 * 1024;

export interface VerifiedPartition {
  topic: string;
  partition: number;
  log: PartitionLog;
}

export interface VerificationSchedulerOptions {
  /** The partitions to check, asked at each round. */
  partitions: () => Iterable<VerifiedPartition>;
  workers: WorkerPool;
  /** Time between the end of one round and the start of the next; -1 disables the timer. */
  intervalMs: number;
  logger: Logger;
}

export interface VerificationCounters {
  /** Rounds completed. */
  rounds: number;
  /** Segments read back and checked (corrupt or not). */
  segmentsVerified: number;
  bytesVerified: number;
  /** Segments with at least one problem. */
  corruptSegments: number;
  /** Problems found, each one logged. */
  problemsFound: number;
  /** Segments deleted between being listed and being read: skipped. */
  segmentsGone: number;
  /** Verification tasks that failed or timed out (their segments are tried again next round). */
  tasksFailed: number;
}

interface Candidate {
  baseOffset: number;
  sizeBytes: number;
}

export class VerificationScheduler {
  /** Per partition directory: base offset -> size of every segment verified. */
  private readonly verified = new Map<string, Map<number, number>>();
  private readonly stats: VerificationCounters = { rounds: 0, segmentsVerified: 0, bytesVerified: 0, corruptSegments: 0, problemsFound: 0, segmentsGone: 0, tasksFailed: 0 };
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<void> | null = null;

  constructor(private readonly options: VerificationSchedulerOptions) {
    if (!Number.isSafeInteger(options.intervalMs) || (options.intervalMs < 1 && options.intervalMs !== -1)) {
      throw new RangeError(`verification interval must be -1 (never) or a positive integer of ms, got ${options.intervalMs}`);
    }
  }

  /** Starts the periodic rounds (the first one interval ms from now); does nothing when disabled. */
  start(): void {
    if (this.options.intervalMs === -1 || this.stopping.signal.aborted) return;
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runOnce()
        .catch((error: unknown) => this.options.logger.error('background verification round failed', { error: String(error) }))
        .finally(() => {
          if (!this.stopping.signal.aborted) this.schedule();
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  counters(): VerificationCounters {
    return { ...this.stats };
  }

  /** Runs one round now (or joins the one running). Resolves when it ends; stop() ends it early. */
  runOnce(): Promise<void> {
    this.current ??= this.round().finally(() => {
      this.current = null;
    });
    return this.current;
  }

  /** Cancels the running task, if any, and stops the timer. */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.current?.catch(() => undefined);
  }

  private async round(): Promise<void> {
    const partitions = [...this.options.partitions()];
    const before = this.counters();
    for (const partition of partitions) {
      if (this.stopping.signal.aborted) return;
      const goOn = await this.verifyPartition(partition);
      if (!goOn) return;
    }
    // Forget partitions that are gone (deleted topics), so the memory follows the logs.
    const dirs = new Set(partitions.map(({ log }) => log.dir));
    for (const dir of this.verified.keys()) if (!dirs.has(dir)) this.verified.delete(dir);
    this.stats.rounds++;
    const verified = this.stats.segmentsVerified - before.segmentsVerified;
    if (verified > 0) {
      this.options.logger.info('background verification round done', {
        segmentsVerified: verified,
        bytesVerified: this.stats.bytesVerified - before.bytesVerified,
        corruptSegments: this.stats.corruptSegments - before.corruptSegments,
        problemsFound: this.stats.problemsFound - before.problemsFound,
      });
    }
  }

  /** Sealed, synced segments of one partition not verified at their current size. */
  private async candidatesOf(log: PartitionLog, known: Map<number, number>): Promise<Candidate[]> {
    const bases = log.segmentBaseOffsets();
    const recoveryPoint = log.recoveryPoint;
    const present = new Set(bases);
    for (const base of known.keys()) if (!present.has(base)) known.delete(base);
    const candidates: Candidate[] = [];
    // A segment is sealed and on disk for good once the next one starts at or below the recovery point.
    for (let i = 0; i + 1 < bases.length && bases[i + 1]! <= recoveryPoint; i++) {
      const baseOffset = bases[i]!;
      let sizeBytes: number;
      try {
        sizeBytes = (await stat(segmentPath(log.dir, baseOffset, LOG_SUFFIX))).size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        known.delete(baseOffset);
        continue;
      }
      if (known.get(baseOffset) !== sizeBytes) candidates.push({ baseOffset, sizeBytes });
    }
    return candidates;
  }

  /** Verifies one partition's new segments; false when the round must end (shutdown, full queue). */
  private async verifyPartition({ topic, partition, log }: VerifiedPartition): Promise<boolean> {
    const known = this.verified.get(log.dir) ?? new Map<number, number>();
    this.verified.set(log.dir, known);
    const candidates = await this.candidatesOf(log, known);
    for (const chunk of chunks(candidates)) {
      let report: VerifyReport;
      try {
        report = await this.options.workers.run(
          'verifySegments',
          { dir: log.dir, allowOffsetGaps: !log.offsetsContiguous, segmentBaseOffsets: chunk.map((candidate) => candidate.baseOffset) },
          { signal: this.stopping.signal, label: `verify ${topic}-${partition}` },
        );
      } catch (error) {
        if (error instanceof WorkerTaskCancelledError || error instanceof WorkerPoolClosedError) return false;
        if (error instanceof WorkerPoolBusyError) {
          this.options.logger.warn('background verification postponed: the worker queue is full', { topic, partition });
          return false;
        }
        this.stats.tasksFailed++;
        this.options.logger.warn('background verification of a partition failed; retried next round', { topic, partition, error: (error as Error).message });
        return true;
      }
      this.record(topic, partition, report, known);
    }
    return true;
  }

  private record(topic: string, partition: number, report: VerifyReport, known: Map<number, number>): void {
    for (const segment of report.segments) {
      known.set(segment.baseOffset, segment.sizeBytes);
      this.stats.segmentsVerified++;
      this.stats.bytesVerified += segment.checkedBytes;
      if (segment.problems > 0) this.stats.corruptSegments++;
    }
    for (const baseOffset of report.segmentsGone ?? []) {
      known.delete(baseOffset);
      this.stats.segmentsGone++;
    }
    for (const problem of report.problems) {
      this.options.logger.error('background verification found corrupt data', {
        topic,
        partition,
        file: problem.file,
        baseOffset: problem.baseOffset,
        position: problem.position,
        problem: problem.problem,
        detail: problem.detail,
      });
    }
    if (report.problemsNotListed > 0) {
      this.options.logger.error('background verification found more problems than it lists', { topic, partition, dir: report.dir, notListed: report.problemsNotListed });
    }
    this.stats.problemsFound += report.problems.length + report.problemsNotListed;
  }
}

/** Candidates split into tasks within MAX_SEGMENTS_PER_VERIFY_TASK and MAX_BYTES_PER_VERIFY_TASK. */
function* chunks(candidates: readonly Candidate[]): Generator<Candidate[]> {
  let chunk: Candidate[] = [];
  let bytes = 0;
  for (const candidate of candidates) {
    if (chunk.length > 0 && (chunk.length >= MAX_SEGMENTS_PER_VERIFY_TASK || bytes + candidate.sizeBytes > MAX_BYTES_PER_VERIFY_TASK)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(candidate);
    bytes += candidate.sizeBytes;
  }
  if (chunk.length > 0) yield chunk;
}
