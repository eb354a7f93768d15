// The messages between the broker and its worker threads, shared by both sides. A task gets plain
// data (paths, offsets, configs), never live objects: the worker opens the files itself. Its
// output comes back msgpack-encoded (plain maps and arrays; offsets as numbers, which stay exact
// below 2^53), so every field of an output type must be msgpack-able.
import type { DiagnosticInput, DiagnosticOutput } from './tasks/diagnostic.js';
import type { CompactLogInput, CompactLogOutput } from '../log/compaction/compactLog.js';
import type { RecoverSegmentInput, RecoverSegmentOutput } from './tasks/recoverSegment.js';
import type { VerifySegmentsInput, VerifySegmentsOutput } from './tasks/verifySegments.js';
import type { ScanRangeInput, ScanRangeOutput } from './tasks/scanRange.js';
import type { ValidateRecordsInput, ValidateRecordsOutput } from './tasks/validateRecords.js';

/** Every task kind: its input and its output. Add a kind here and its runner in worker.ts. */
export interface WorkerTasks {
  diagnostic: { input: DiagnosticInput; output: DiagnosticOutput };
  compactLog: { input: CompactLogInput; output: CompactLogOutput };
  verifySegments: { input: VerifySegmentsInput; output: VerifySegmentsOutput };
  recoverSegment: { input: RecoverSegmentInput; output: RecoverSegmentOutput };
  scanRange: { input: ScanRangeInput; output: ScanRangeOutput };
  validateRecords: { input: ValidateRecordsInput; output: ValidateRecordsOutput };
}

export type TaskKind = keyof WorkerTasks;
export type TaskInput<K extends TaskKind> = WorkerTasks[K]['input'];
export type TaskOutput<K extends TaskKind> = WorkerTasks[K]['output'];

/** What the pool posts to a worker. */
export interface TaskMessage<K extends TaskKind = TaskKind> {
  kind: K;
  input: TaskInput<K>;
}

/** What a worker answers: the msgpack-encoded output and the time the task ran on the thread. */
export interface TaskReply {
  packed: Uint8Array;
  runMs: number;
}
