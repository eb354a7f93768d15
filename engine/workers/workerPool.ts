// The broker's pool of worker threads (piscina) for work too heavy for the event loop: compaction,
// retention scans, CRC verification, index rebuilds, filtered replay scans.
//
// Limits, all explicit:
//   threads       sized from the machine (cores - 1, at least 1, at most 4) unless configured;
//                 started together when the first task arrives, none before
//   maxQueue      tasks waiting for a thread; past it run() rejects with WorkerPoolBusyError at once
//   timeoutMs     per attempt, counted from submission (a backlog shows up as timeouts, not as
//                 silent delay); the attempt is then cancelled as below
//   retries       per run() call; an attempt that threw or timed out is tried again after a
//                 backoff, with a WARN line; cancellation is never retried
//   heap          each thread's old space is capped (resourceLimits), so a runaway task kills its
//                 thread, not the broker
//
// Cancelling a task (its signal, its time limit, close()) never terminates a thread that is busy
// or still loading: Node 20 aborts the whole process when a worker is terminated inside some
// native steps, e.g. while piscina's require() of this ESM worker module finishes (issue 11: the
// suite's "Worker exited unexpectedly"; see PISCINA_READY_KEY), or while a file operation's
// callback resolves its promise. Instead, per attempt:
//   - a task not yet started is marked cancelled in a shared control word; the thread that picks
//     it up drops it without running it;
//   - a started task gets an abort signal through its own message port and stops at its next
//     safe point (runners check the signal between reads);
//   - only a task still on its thread cancelGraceMs after that (a thread stuck in synchronous code,
//     which a signal cannot reach) has its thread terminated, and a new thread replaces it.
// run() rejects at once in every case; the thread counts as busy until it is free again.
// close() cancels every queued and running task (their run() calls reject with
// WorkerTaskCancelledError), waits for the threads to be free and to have finished loading, then
// stops them and waits until they have exited. Tasks must leave nothing half-written that a reader
// could take for real data (they write to temporary names and rename), since a cancelled or
// timed-out task stops at an arbitrary point.
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
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
  /** How long a cancelled or timed-out task may keep its thread before the thread is terminated. Default 2 s. */
  cancelGraceMs?: number;
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
const DEFAULT_CANCEL_GRACE_MS = 2_000;
const MAX_THREADS = 64;
/** close() waits this long for a thread to finish loading before it stops the thread anyway. */
const THREAD_LOAD_TIMEOUT_MS = 30_000;

// The control block of one attempt, shared with the thread that runs it: an Int32Array over a
// SharedArrayBuffer. The pool and the thread each move the state out of QUEUED with a
// compare-exchange, so exactly one of them decides whether the task runs.
/** Index of the attempt's state: TASK_QUEUED, TASK_RUNNING or TASK_DROPPED. */
export const TASK_CONTROL_STATE = 0;
/** Index where the thread writes its threadId before it claims the task. */
export const TASK_CONTROL_THREAD = 1;
export const TASK_CONTROL_LENGTH = 2;
/** Not yet picked up by a thread. */
export const TASK_QUEUED = 0;
/** Claimed by a thread: it runs, and only the cancel port (or termination) can stop it. */
export const TASK_RUNNING = 1;
/** Cancelled before any thread claimed it: the thread that picks it up must not run it. */
export const TASK_DROPPED = 2;

/** What the pool posts to a thread: the task, its control block and the port a cancel arrives on (any message). */
export interface TaskEnvelope extends TaskMessage {
  control: Int32Array;
  cancel: MessagePort;
}

/**
 * What piscina's thread posts once it has loaded the worker module (piscina 5's worker.js; the
 * version is pinned). Only then is a thread safe to stop: while it loads, Node 20 aborts the whole
 * process when the thread is terminated inside require() of our ESM module (observed:
 * "Assertion failed: facade->InstantiateModule(context, LinkRequireFacadeWithOriginal).IsJust()"
 * in node::loader::ModuleWrap::CreateRequiredModuleFacade, which runs after the module's own
 * top-level code, so a signal from that code comes too early).
 */
const PISCINA_READY_KEY = '_WORKER_READY';

function isPiscinaReady(message: unknown): boolean {
  return typeof message === 'object' && message !== null && PISCINA_READY_KEY in message;
}

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

type StopReason = 'timeout' | 'cancelled';
/** How an attempt ended for its run() call: first of the thread's answer and a stop. */
type AttemptOutcome = { ended: 'replied'; reply: TaskReply } | { ended: 'threw'; error: unknown } | { ended: 'stopped'; why: StopReason };

/**
 * One attempt of a task on the pool: its control block, its cancel port and the piscina task. It
 * occupies a thread (or a queue place) from submission until the thread is free of it, which can
 * be after its run() call has been answered (a cancelled task winding down).
 */
class TaskAttempt {
  readonly control = new Int32Array(new SharedArrayBuffer(TASK_CONTROL_LENGTH * Int32Array.BYTES_PER_ELEMENT));
  /** Resolves when the thread is free of this attempt (it answered, or its thread was terminated); never rejects. */
  readonly settled: Promise<void>;
  /** Resolves with whichever comes first: the thread's answer or stop(); never rejects. */
  readonly outcome: Promise<AttemptOutcome>;
  private readonly channel = new MessageChannel();
  /** Aborting piscina's signal terminates the thread running the task: only for a thread that ignored its cancel. */
  private readonly terminate = new AbortController();
  private decide: (outcome: AttemptOutcome) => void = () => undefined;
  private stoppedBy: StopReason | null = null;
  /** The thread is free of this attempt: nothing may be sent to it or terminated for it any more. */
  private finished = false;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    piscina: Piscina<TaskEnvelope, TaskReply>,
    message: TaskMessage,
    private readonly onHung: (threadId: number) => void,
    onSettled: () => void,
  ) {
    this.outcome = new Promise<AttemptOutcome>((resolve) => {
      this.decide = resolve;
    });
    const envelope: TaskEnvelope = { ...message, control: this.control, cancel: this.channel.port2 };
    this.settled = piscina.run(envelope, { signal: this.terminate.signal, transferList: [this.channel.port2] }).then(
      (reply) => this.finish({ ended: 'replied', reply }, onSettled),
      (error: unknown) => this.finish({ ended: 'threw', error }, onSettled),
    );
  }

  /** Cancels the attempt: its run() call is answered now, its thread is freed as the header describes. */
  stop(why: StopReason, graceMs: number): void {
    if (this.stoppedBy !== null || this.finished) return;
    this.stoppedBy = why;
    this.decide({ ended: 'stopped', why });
    const previous = Atomics.compareExchange(this.control, TASK_CONTROL_STATE, TASK_QUEUED, TASK_DROPPED);
    // Not claimed by a thread: whichever thread picks it up drops it without running it.
    if (previous === TASK_QUEUED) return;
    this.channel.port1.postMessage(why);
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      this.onHung(Atomics.load(this.control, TASK_CONTROL_THREAD));
      this.terminate.abort();
    }, graceMs);
  }

  private finish(outcome: AttemptOutcome, onSettled: () => void): void {
    this.finished = true;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.channel.port1.close();
    onSettled();
    this.decide(outcome);
  }
}

export class WorkerPool {
  readonly threads: number;
  private readonly maxQueue: number;
  private readonly taskTimeoutMs: number;
  private readonly cancelGraceMs: number;
  private readonly maxHeapMb: number;
  private readonly logger: Logger;
  /** Started with the first task, so a pool that is never used starts no thread. */
  private piscina: Piscina<TaskEnvelope, TaskReply> | null = null;
  /** Attempts submitted whose thread is not yet free of them; close() cancels them all. */
  private readonly inFlight = new Set<TaskAttempt>();
  /** Threads that have finished loading the worker module (by threadId). */
  private readonly loadedThreads = new Set<number>();
  /** Threads started with the pool: piscina announces them before they have loaded. */
  private readonly firstThreads = new Set<number>();
  /** Exits of threads terminated for ignoring a cancel; close() waits for them. */
  private readonly exiting = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly stats = { completed: 0, failed: 0, timedOut: 0, cancelled: 0, retried: 0, rejected: 0, taskTimeMs: 0 };

  constructor(options: WorkerPoolOptions) {
    this.threads = options.threads ?? defaultWorkerThreads();
    if (!Number.isInteger(this.threads) || this.threads < 1 || this.threads > MAX_THREADS) throw new RangeError(`worker threads must be an integer in [1, ${MAX_THREADS}], got ${this.threads}`);
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) throw new RangeError(`worker maxQueue must be a non-negative integer, got ${this.maxQueue}`);
    this.taskTimeoutMs = options.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS;
    if (!(this.taskTimeoutMs > 0)) throw new RangeError(`worker task timeout must be positive, got ${this.taskTimeoutMs}`);
    this.cancelGraceMs = options.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS;
    if (!Number.isSafeInteger(this.cancelGraceMs) || this.cancelGraceMs < 0) throw new RangeError(`worker cancel grace must be a non-negative integer of ms, got ${this.cancelGraceMs}`);
    this.maxHeapMb = options.maxHeapMb ?? DEFAULT_MAX_HEAP_MB;
    this.logger = options.logger;
  }

  private started(): Piscina<TaskEnvelope, TaskReply> {
    if (this.piscina !== null) return this.piscina;
    const piscina = new Piscina<TaskEnvelope, TaskReply>({
      filename: workerFilename(),
      // Every thread is kept: a thread terminated for ignoring a cancel is replaced at once, so
      // tasks queued behind it are not left without a thread.
      minThreads: this.threads,
      maxThreads: this.threads,
      // Our own check refuses first; piscina's bound is the backstop.
      maxQueue: this.maxQueue + this.threads,
      resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb },
    });
    // piscina announces a replacement thread once it has loaded, but the first threads at once,
    // so those are watched for their ready message themselves.
    for (const thread of piscina.threads) {
      this.firstThreads.add(thread.threadId);
      thread.on('message', (message: unknown) => {
        if (isPiscinaReady(message)) this.loadedThreads.add(thread.threadId);
      });
    }
    piscina.on('workerCreate', (worker: { id: number }) => {
      if (!this.firstThreads.has(worker.id)) this.loadedThreads.add(worker.id);
    });
    piscina.on('workerDestroy', (worker: { id: number }) => this.loadedThreads.delete(worker.id));
    // A thread that fails outside a task (its task already answered) is replaced by piscina; an
    // 'error' event without a listener would throw on the event loop and stop the broker.
    piscina.on('error', (error: unknown) => this.logger.error('worker thread failed outside a task', { error: String(error) }));
    this.piscina = piscina;
    return piscina;
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
    const attempt: TaskAttempt = new TaskAttempt(
      this.started(),
      { kind, input },
      (threadId) => this.terminating(threadId, label),
      () => this.inFlight.delete(attempt),
    );
    this.inFlight.add(attempt);
    const timer = setTimeout(() => attempt.stop('timeout', this.cancelGraceMs), timeoutMs);
    const onCancel = (): void => attempt.stop('cancelled', this.cancelGraceMs);
    options.signal?.addEventListener('abort', onCancel, { once: true });
    try {
      const outcome = await attempt.outcome;
      switch (outcome.ended) {
        case 'replied':
          this.stats.completed++;
          this.stats.taskTimeMs += outcome.reply.runMs;
          return unpacker.unpack(outcome.reply.packed) as TaskOutput<K>;
        case 'stopped':
          if (outcome.why === 'timeout') {
            this.stats.timedOut++;
            throw new WorkerTaskTimeoutError(`${label} did not finish within ${timeoutMs} ms; it was cancelled`);
          }
          this.stats.cancelled++;
          throw new WorkerTaskCancelledError(`${label} was cancelled`);
      }
      const error = outcome.error;
      throw new WorkerTaskFailedError(`${label} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCancel);
    }
  }

  /** A cancelled task kept its thread past the grace: that thread is about to be terminated. */
  private terminating(threadId: number, label: string): void {
    this.logger.warn('worker task ignored its cancel; terminating its thread', { task: label, threadId, graceMs: this.cancelGraceMs });
    const worker = this.piscina?.threads.find((thread) => thread.threadId === threadId);
    if (worker === undefined) return;
    const exit: Promise<void> = once(worker, 'exit').then(
      () => undefined,
      () => undefined,
    );
    this.exiting.add(exit);
    void exit.then(() => this.exiting.delete(exit));
  }

  /** Attempts submitted beyond what the threads can run at once (one task per thread). */
  private queued(): number {
    return Math.max(0, this.inFlight.size - this.threads);
  }

  counters(): WorkerPoolCounters {
    const queued = this.queued();
    return { threads: this.threads, queued, running: this.inFlight.size - queued, ...this.stats };
  }

  /**
   * Cancels every queued and running task, waits until the threads are free and loaded, stops
   * them and waits for them to exit. Idempotent: later calls wait for the first one.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    const attempts = [...this.inFlight];
    for (const attempt of attempts) attempt.stop('cancelled', this.cancelGraceMs);
    if (this.piscina !== null) {
      await this.drained(attempts, this.piscina);
      await Promise.all(this.piscina.threads.map((thread) => this.loaded(thread)));
      // Every thread is idle now: none is inside a file operation or still loading its modules.
      await this.piscina.destroy();
    }
    await Promise.all(this.exiting);
  }

  /**
   * Resolves when every attempt has left its thread, or when no thread is left to take the queued
   * ones (threads that fail to load are not replaced forever): destroy() then rejects those.
   */
  private async drained(attempts: readonly TaskAttempt[], piscina: Piscina<TaskEnvelope, TaskReply>): Promise<void> {
    let listener: (() => void) | null = null;
    try {
      await Promise.race([
        Promise.all(attempts.map((attempt) => attempt.settled)),
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (piscina.threads.length === 0) resolve();
          };
          // piscina announces a thread's removal before it updates its list of threads.
          listener = (): void => void setImmediate(check);
          piscina.on('workerDestroy', listener);
          check();
        }),
      ]);
    } finally {
      if (listener !== null) piscina.off('workerDestroy', listener);
    }
  }

  /** Resolves when the thread has finished loading the worker module, has exited, or after THREAD_LOAD_TIMEOUT_MS. */
  private async loaded(thread: Worker): Promise<void> {
    const piscina = this.piscina;
    if (piscina === null || this.loadedThreads.has(thread.threadId)) return;
    const cleanups: Array<() => void> = [];
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (this.loadedThreads.has(thread.threadId)) resolve();
          };
          // Either announcement; the listeners installed in started() run first and record it.
          thread.on('message', check);
          piscina.on('workerCreate', check);
          cleanups.push(() => thread.off('message', check), () => piscina.off('workerCreate', check));
        }),
        once(thread, 'exit').then(
          () => undefined,
          () => undefined,
        ),
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.logger.warn('worker thread still loading at close; stopping it anyway', { threadId: thread.threadId, waitedMs: THREAD_LOAD_TIMEOUT_MS });
            resolve();
          }, THREAD_LOAD_TIMEOUT_MS);
          cleanups.push(() => clearTimeout(timer));
        }),
      ]);
    } finally {
      for (const cleanup of cleanups) cleanup();
    }
  }
}
