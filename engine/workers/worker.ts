// The worker-thread side of the pool (piscina loads this file, compiled, in each thread). It
// dispatches a TaskMessage to the runner of its kind and msgpack-encodes the output. Nothing here
// touches the broker's state: runners open the files named in their input.
import { performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import type { TaskInput, TaskKind, TaskMessage, TaskOutput, TaskReply } from './taskTypes.js';
import { runDiagnostic } from './tasks/diagnostic.js';
import { runCompactLog } from '../log/compaction/compactLog.js';
import { recoverSegmentFile } from './tasks/recoverSegment.js';
import { runVerifySegments } from './tasks/verifySegments.js';
import { runScanRange } from './tasks/scanRange.js';
import { runValidateRecords } from './tasks/validateRecords.js';

type Runners = { [K in TaskKind]: (input: TaskInput<K>) => Promise<TaskOutput<K>> };

const RUNNERS: Runners = {
  diagnostic: (input) => runDiagnostic(input, threadId),
  compactLog: (input) => runCompactLog(input),
  verifySegments: runVerifySegments,
  recoverSegment: recoverSegmentFile,
  scanRange: runScanRange,
  validateRecords: runValidateRecords,
};

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export default async function runTask(message: TaskMessage): Promise<TaskReply> {
  const runner = RUNNERS[message.kind] as ((input: unknown) => Promise<unknown>) | undefined;
  if (runner === undefined) throw new Error(`unknown worker task kind ${JSON.stringify(message.kind)}`);
  const started = performance.now();
  const output = await runner(message.input);
  // A copy: msgpackr's result can be a view of its reusable buffer.
  const packed = new Uint8Array(packr.pack(output));
  return { packed, runMs: performance.now() - started };
}
