// The broker's pool of worker threads (piscina) for work too heavy for the event loop: compaction,
// retention scans, CRC verification, index rebuilds, filtered replay scans.
//
// Limits, all explicit:
//   threads       sized from the machine (cores - 1, at least 1, at most 4) unless configured
//   maxQueue      tasks waiting for a thread; past it run() rejects with WorkerPoolBusyError at once
//   timeoutMs     per attempt, counted from submission (a backlog shows up as timeouts, not as
//                 silent delay); the attempt's thread is terminated, so a hung task cannot hold it
//   retries       per run() call; an attempt that threw or timed out is tried again after a
//                 backoff, with a WARN line; cancellation is never retried
//   heap          each thread's old space is capped (resourceLimits), so a runaway task kills its
//                 thread, not the broker
// close() cancels every queued and running task (their run() calls reject with
// WorkerTaskCancelledError) and terminates the threads. Tasks must leave nothing half-written that
// a reader could take for real data (they write to temporary names and rename), since a cancelled
// or timed-out task stops at an arbitrary point.
import { availableParallelism } from 'node:os';
import { Packr } from 'msgpackr';
import { Piscina } from 'piscina';
import type { Logger } from '../logger.js';
import type { TaskInput, TaskKind, TaskMessage, TaskOutput, TaskReply } from './taskTypes.js';

export interface WorkerPoolOptions {
  /** Worker threads. Default: cores - 1, in [1, 4]. */
  threads?: number;
  /** Tasks waiting for a thread before run() rejects. Default 1000. */
  maxQueue?: number;
  /** Default per-attempt time limit. Default 10 minutes. */
  taskTimeoutMs?: number;
  /** Old-space cap of each thread, MiB. Default 1024. */
  maxHeapMb?: number;
  logger: Logger;
}

export interface RunOptions {
  /** This task's per-attempt time limit; default: the pool's. */
  timeoutMs?: number;
  /** Attempts after the first when an attempt throws or times out. Default 0. */
  retries?: number;
  /** First retry backoff, doubled per attempt. Default 100 ms. */
  retryBackoffMs?: number;
  /** Cancels the task (queued or running). */
  signal?: AbortSignal;
  /** Names the task in log lines and errors, e.g. "compact orders-3". */
  label?: string;
}

export interface WorkerPoolCounters {
  threads: number;
  /** Waiting for a thread. */
  queued: number;
  /** On a thread now. */
  running: number;
  completed: number;
  /** run() calls that failed after their last attempt (thrown, timed out or refused). */
  failed: number;
  timedOut: number;
  cancelled: number;
  retried: number;
  /** Refused because the queue was full. */
  rejected: number;
  /** Sum of the time completed tasks ran on their threads. */
  taskTimeMs: number;
}

export class WorkerPoolError extends Error {
  override readonly name: string = 'WorkerPoolError';
}

/** The queue is at maxQueue: try later (the caller's next scheduled round). */
export class WorkerPoolBusyError extends WorkerPoolError {
  override readonly name = 'WorkerPoolBusyError';
}

export class WorkerPoolClosedError extends WorkerPoolError {
  override readonly name = 'WorkerPoolClosedError';
}

export class WorkerTaskTimeoutError extends WorkerPoolError {
  override readonly name = 'WorkerTaskTimeoutError';
}

export class WorkerTaskCancelledError extends WorkerPoolError {
  override readonly name = 'WorkerTaskCancelledError';
}

/** The task threw in its thread (or the thread died); the message is the task's own. */
export class WorkerTaskFailedError extends WorkerPoolError {
  override readonly name = 'WorkerTaskFailedError';
}

const DEFAULT_MAX_QUEUE = 1000;
const DEFAULT_TASK_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_MAX_HEAP_MB = 1024;
const DEFAULT_RETRY_BACKOFF_MS = 100;
const MAX_THREADS = 64;

export function defaultWorkerThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/**
 * The compiled worker entry. Tests run the TypeScript sources, but threads always load the
 * compiled JS in dist/ (npm test builds first), so the CLI, tests and benchmarks run one code.
 */
function workerFilename(): string {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/engine/workers/worker.js', here).href : new URL('./worker.js', here).href;
}

const unpacker = new Packr({ useRecords: false, mapsAsObjects: true });

export class WorkerPool {
  readonly threads: number;
  private readonly piscina: Piscina<TaskMessage, TaskReply>;
  private readonly maxQueue: number;
  private readonly taskTimeoutMs: number;
  private readonly logger: Logger;
  /** Abort controllers of attempts submitted and not settled; close() aborts them all. */
  private readonly inFlight = new Set<AbortController>();
  private closed = false;
  private readonly stats = { completed: 0, failed: 0, timedOut: 0, cancelled: 0, retried: 0, rejected: 0, taskTimeMs: 0 };

  constructor(options: WorkerPoolOptions) {
    this.threads = options.threads ?? defaultWorkerThreads();
    if (!Number.isInteger(this.threads) || this.threads < 1 || this.threads > MAX_THREADS) throw new RangeError(`worker threads must be an integer in [1, ${MAX_THREADS}], got ${this.threads}`);
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) throw new RangeError(`worker maxQueue must be a non-negative integer, got ${this.maxQueue}`);
    this.taskTimeoutMs = options.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS;
    if (!(this.taskTimeoutMs > 0)) throw new RangeError(`worker task timeout must be positive, got ${this.taskTimeoutMs}`);
    this.logger = options.logger;
    this.piscina = new Piscina<TaskMessage, TaskReply>({
      filename: workerFilename(),
      minThreads: 0,
      maxThreads: this.threads,
      // Our own check below refuses first; piscina's bound is the backstop.
      maxQueue: this.maxQueue + this.threads,
      idleTimeout: 30_000,
      resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb ?? DEFAULT_MAX_HEAP_MB },
      // Workers hold no state of ours, so shutdown need not wait for them.
      closeTimeout: 1_000,
    });
  }

  /**
   * Runs a task on a thread and resolves with its output. Rejects with WorkerPoolBusyError when
   * the queue is full, WorkerTaskTimeoutError / WorkerTaskFailedError after the last attempt,
   * WorkerTaskCancelledError when cancelled or the pool closes, WorkerPoolClosedError after close().
   */
  async run<K extends TaskKind>(kind: K, input: TaskInput<K>, options: RunOptions = {}): Promise<TaskOutput<K>> {
    const label = options.label ?? kind;
    const retries = options.retries ?? 0;
    let backoffMs = options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attempt(kind, input, label, options);
      } catch (error) {
        const retriable = error instanceof WorkerTaskTimeoutError || error instanceof WorkerTaskFailedError;
        if (!retriable || attempt >= retries || this.closed || options.signal?.aborted === true) {
          if (!(error instanceof WorkerTaskCancelledError) && !(error instanceof WorkerPoolClosedError)) this.stats.failed++;
          throw error;
        }
        this.stats.retried++;
        this.logger.warn('worker task failed; retrying', { task: label, attempt: attempt + 1, of: retries + 1, backoffMs, error: (error as Error).message });
        await new Promise<void>((resolve) => setTimeout(resolve, backoffMs).unref());
        backoffMs *= 2;
      }
    }
  }

  private async attempt<K extends TaskKind>(kind: K, input: TaskInput<K>, label: string, options: RunOptions): Promise<TaskOutput<K>> {
    if (this.closed) throw new WorkerPoolClosedError(`worker pool is closed; ${label} not run`);
    if (options.signal?.aborted === true) {
      this.stats.cancelled++;
      throw new WorkerTaskCancelledError(`${label} was cancelled before it started`);
    }
    if (this.queued() >= this.maxQueue) {
      this.stats.rejected++;
      throw new WorkerPoolBusyError(`worker queue is full (${this.maxQueue} tasks waiting); ${label} refused`);
    }
    const timeoutMs = options.timeoutMs ?? this.taskTimeoutMs;
    const controller = new AbortController();
    let why: 'timeout' | 'cancelled' | null = null;
    const timer = setTimeout(() => {
      why = 'timeout';
      controller.abort();
    }, timeoutMs);
    const onCancel = (): void => {
      why ??= 'cancelled';
      controller.abort();
    };
    options.signal?.addEventListener('abort', onCancel, { once: true });
    this.inFlight.add(controller);
    try {
      const reply = await this.piscina.run({ kind, input }, { signal: controller.signal });
      this.stats.completed++;
      this.stats.taskTimeMs += reply.runMs;
      return unpacker.unpack(reply.packed) as TaskOutput<K>;
    } catch (error) {
      if (why === 'timeout') {
        this.stats.timedOut++;
        throw new WorkerTaskTimeoutError(`${label} did not finish within ${timeoutMs} ms; its thread was stopped`);
      }
      if (why === 'cancelled' || this.closed) {
        this.stats.cancelled++;
        throw new WorkerTaskCancelledError(`${label} was cancelled`);
      }
      throw new WorkerTaskFailedError(`${label} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCancel);
      this.inFlight.delete(controller);
    }
  }

  /** Attempts submitted beyond what the threads can run at once (one task per thread). */
  private queued(): number {
    return Math.max(0, this.inFlight.size - this.threads);
  }

  counters(): WorkerPoolCounters {
    const queued = this.queued();
    return { threads: this.threads, queued, running: this.inFlight.size - queued, ...this.stats };
  }

  /** Cancels every queued and running task and stops the threads. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const controller of this.inFlight) controller.abort();
    await this.piscina.destroy();
  }
}
