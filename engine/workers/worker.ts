// The worker-thread side of the pool (piscina loads this file, compiled, in each thread). It
// dispatches a task to the runner of its kind and msgpack-encodes the output. Nothing here
// touches the broker's state: runners open the files named in their input.
//
// Cancellation (see workerPool.ts): the thread claims a task in its control block before running
// it and drops one the pool cancelled first; a cancel that arrives on the task's port aborts the
// signal handed to the runner, which stops at its next check. The thread is never terminated for
// a cancel it honours, so it is never stopped in the middle of a file operation.
import { performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import type { TaskInput, TaskKind, TaskOutput, TaskReply } from './taskTypes.js';
import { TASK_CONTROL_STATE, TASK_CONTROL_THREAD, TASK_QUEUED, TASK_RUNNING, type TaskEnvelope } from './workerPool.js';
import { runDiagnostic } from './tasks/diagnostic.js';
import { runCompactLog } from '../log/compaction/compactLog.js';
import { recoverSegmentFile } from './tasks/recoverSegment.js';
import { runVerifySegments } from './tasks/verifySegments.js';
import { runScanRange } from './tasks/scanRange.js';
import { runValidateRecords } from './tasks/validateRecords.js';

/** A runner gets its input and the task's cancel signal; it checks the signal where stopping is safe. */
type Runners = { [K in TaskKind]: (input: TaskInput<K>, signal: AbortSignal) => Promise<TaskOutput<K>> };

const RUNNERS: Runners = {
  diagnostic: (input, signal) => runDiagnostic(input, threadId, signal),
  // Not interruptible: a cancelled compaction runs to its end (it writes only .cleaned files).
  compactLog: (input) => runCompactLog(input),
  verifySegments: runVerifySegments,
  recoverSegment: recoverSegmentFile,
  scanRange: runScanRange,
  validateRecords: (input) => runValidateRecords(input),
};

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export default async function runTask(envelope: TaskEnvelope): Promise<TaskReply> {
  const { control, cancel } = envelope;
  try {
    Atomics.store(control, TASK_CONTROL_THREAD, threadId);
    if (Atomics.compareExchange(control, TASK_CONTROL_STATE, TASK_QUEUED, TASK_RUNNING) !== TASK_QUEUED) {
      // Its run() call was answered already; nothing of it may run.
      throw new Error(`${envelope.kind} task cancelled before it started`);
    }
    const runner = RUNNERS[envelope.kind] as ((input: unknown, signal: AbortSignal) => Promise<unknown>) | undefined;
    if (runner === undefined) throw new Error(`unknown worker task kind ${JSON.stringify(envelope.kind)}`);
    const cancelled = new AbortController();
    cancel.once('message', (why: unknown) => cancelled.abort(new Error(`${envelope.kind} task ${String(why)}`)));
    const started = performance.now();
    const output = await runner(envelope.input, cancelled.signal);
    // A copy: msgpackr's result can be a view of its reusable buffer.
    const packed = new Uint8Array(packr.pack(output));
    return { packed, runMs: performance.now() - started };
  } finally {
    cancel.close();
  }
}
