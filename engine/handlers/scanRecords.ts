// ScanRecords (32000, tidelog's own API; schema in protocol/schemas/), v0: the filtered range scan
// behind `tidelog replay`. The handler checks the request against the partition, takes a snapshot
// of its segment files (PartitionLog.scanSnapshot) and runs the scan as a worker task
// (engine/workers/tasks/scanRange.ts), so reading, CRC checks, decompression and filtering of a
// large range happen off the event loop. The event loop only plans and copies the answer.
//
// Errors: an unknown topic or partition -> UNKNOWN_TOPIC_OR_PARTITION; a start below the log start
// or past the log end -> OFFSET_OUT_OF_RANGE; bad numbers -> INVALID_REQUEST; a corrupt batch ->
// CORRUPT_MESSAGE with a message naming file, position and offset (its bytes are never served);
// records of a codec this build cannot decode -> UNSUPPORTED_COMPRESSION_TYPE; an I/O error in the
// task -> KAFKA_STORAGE_ERROR; a full, slow or stopping worker pool -> REQUEST_TIMED_OUT (retriable).
import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { decodeScanRecordsRequest, type ScanRecordsRequest } from '../../protocol/generated/scanRecordsRequest.js';
import { encodeScanRecordsResponse, type ScanRecordsResponse } from '../../protocol/generated/scanRecordsResponse.js';
import type { PartitionLog } from '../log/partitionLog.js';
import type { Partition } from '../partition/partition.js';
import type { ScanRangeInput, ScanRangeOutput, ScanSegment } from '../workers/tasks/scanRange.js';
import { WorkerPoolError, WorkerTaskFailedError } from '../workers/workerPool.js';
import { defineHandler, type HandlerContext } from './handler.js';

/** Record bytes one answer carries at most (the request may ask for less). */
export const SCAN_MAX_RESULT_BYTES = 8 * 1024 * 1024;
/** Records one answer carries at most. */
export const SCAN_MAX_RECORDS = 100_000;
/** Bytes of stored batches one scan checks at most, matching or not: bounds a worker task. */
export const SCAN_MAX_BYTES_PER_REQUEST = 64 * 1024 * 1024;
/** A scan task's time limit; its work is bounded above, so only a stuck disk reaches it. */
const SCAN_TASK_TIMEOUT_MS = 60_000;
/** Plans made again when a segment was deleted under a running scan. */
const SCAN_REPLANS = 1;

const EMPTY: Buffer = Buffer.alloc(0);

function failure(errorCode: number, errorMessage: string | null, partition?: Partition): ScanRecordsResponse {
  return {
    throttleTimeMs: 0,
    errorCode,
    errorMessage,
    nextOffset: -1n,
    logStartOffset: partition === undefined ? -1n : BigInt(partition.logStartOffset),
    logEndOffset: partition === undefined ? -1n : BigInt(partition.highWatermark),
    recordsScanned: 0n,
    bytesScanned: 0n,
    records: EMPTY,
  };
}

function safeNumber(value: bigint): number | null {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
}

/** The request's range and filters as numbers, or the reason they are invalid. */
function readRequest(request: ScanRecordsRequest): { start: number; end: number; fromTimestamp: number; toTimestamp: number } | string {
  const start = safeNumber(request.startOffset);
  const end = safeNumber(request.endOffset);
  const fromTimestamp = safeNumber(request.fromTimestamp);
  const toTimestamp = safeNumber(request.toTimestamp);
  if (start === null || start < 0) return `startOffset ${request.startOffset} is not a valid offset`;
  if (end === null || end < -1) return `endOffset ${request.endOffset} must be -1 (the log end) or an offset`;
  if (end !== -1 && end < start) return `endOffset ${end} is below startOffset ${start}`;
  if (fromTimestamp === null || fromTimestamp < -1 || toTimestamp === null || toTimestamp < -1) return 'timestamps must be -1 (none) or milliseconds since the epoch';
  if (request.maxBytes < 1 || request.maxRecords < 1) return `maxBytes and maxRecords must be positive, got ${request.maxBytes} and ${request.maxRecords}`;
  if (request.headerName === null && request.headerValue !== null) return 'headerValue needs headerName';
  return { start, end, fromTimestamp, toTimestamp };
}

async function scan(request: ScanRecordsRequest, context: HandlerContext): Promise<ScanRecordsResponse> {
  const partition = context.services.topics.partition(request.topic, request.partitionIndex);
  if (partition === undefined) return failure(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${request.topic}-${request.partitionIndex} does not exist`);
  const range = readRequest(request);
  if (typeof range === 'string') return failure(ErrorCode.INVALID_REQUEST, range, partition);
  const log = partition.log;
  let scanned = { records: 0, bytes: 0 };
  for (let plan = 0; ; plan++) {
    // The mark first: it never passes the snapshot's end, so the scan stays within both.
    const highWatermark = partition.highWatermark;
    const snapshot = log.scanSnapshot();
    const { logStartOffset, logEndOffset } = snapshot;
    if (range.start < logStartOffset || range.start > logEndOffset) {
      return failure(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${range.start} is outside ${logStartOffset}..${logEndOffset}`, partition);
    }
    const end = range.end === -1 ? highWatermark : Math.min(range.end, highWatermark);
    const answer = (records: Buffer, nextOffset: number): ScanRecordsResponse => ({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      nextOffset: BigInt(nextOffset),
      logStartOffset: BigInt(logStartOffset),
      logEndOffset: BigInt(highWatermark),
      recordsScanned: BigInt(scanned.records),
      bytesScanned: BigInt(scanned.bytes),
      records,
    });
    if (range.start >= end) return answer(EMPTY, range.start);
    const input: ScanRangeInput = {
      segments: segmentsFor(snapshot.segments, range.start, end, await startHint(log, range.start)),
      startOffset: range.start,
      endOffset: end,
      filter: {
        key: request.keyFilter,
        headerName: request.headerName,
        headerValue: request.headerValue,
        fromTimestamp: range.fromTimestamp,
        toTimestamp: range.toTimestamp,
      },
      maxResultBytes: Math.min(request.maxBytes, SCAN_MAX_RESULT_BYTES),
      maxRecords: Math.min(request.maxRecords, SCAN_MAX_RECORDS),
      maxScanBytes: SCAN_MAX_BYTES_PER_REQUEST,
      // Larger than max.message.bytes allows, in case it was lowered after bigger batches were stored.
      maxBatchBytes: Math.max(log.config.maxMessageBytes, SCAN_MAX_BYTES_PER_REQUEST),
    };
    let output: ScanRangeOutput;
    try {
      output = await context.services.workers.run('scanRange', input, {
        timeoutMs: SCAN_TASK_TIMEOUT_MS,
        signal: AbortSignal.any([context.signal, context.services.stopping]),
        label: `scan ${request.topic}-${request.partitionIndex} from ${range.start}`,
      });
    } catch (error) {
      if (error instanceof WorkerTaskFailedError) {
        // The runner threw: an I/O error reading the segment (bad bytes are problems, not throws).
        context.services.logger.error('scan task failed', { topic: request.topic, partition: request.partitionIndex, offset: range.start, error: error.message });
        return failure(ErrorCode.KAFKA_STORAGE_ERROR, error.message, partition);
      }
      if (!(error instanceof WorkerPoolError)) throw error;
      // Busy, timed out, cancelled or closing: nothing wrong with the data; the client may retry.
      return failure(ErrorCode.REQUEST_TIMED_OUT, `the scan did not run: ${error.message}`, partition);
    }
    scanned = { records: scanned.records + output.recordsScanned, bytes: scanned.bytes + output.bytesScanned };
    const records = output.records.byteLength === 0 ? EMPTY : Buffer.from(output.records.buffer, output.records.byteOffset, output.records.byteLength);
    const problem = output.problem;
    // Records before a problem are good: they go out now, and the next request, which starts
    // where they end, meets the problem first thing and reports it.
    if (problem === null || output.nextOffset > range.start) return answer(records, output.nextOffset);
    if (problem.kind === 'segment-gone' && plan < SCAN_REPLANS) continue;
    if (problem.kind === 'segment-gone') return failure(ErrorCode.OFFSET_OUT_OF_RANGE, problem.message, partition);
    if (problem.kind === 'corrupt') {
      context.services.logger.error('scan met a corrupt batch', { topic: request.topic, partition: request.partitionIndex, offset: problem.offset ?? -1, error: problem.message });
    }
    return failure(problem.kind === 'corrupt' ? ErrorCode.CORRUPT_MESSAGE : ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, problem.message, partition);
  }
}

type StartHint = Awaited<ReturnType<PartitionLog['batchPositionOf']>>;

/** Where the batch holding `start` sits, so the worker need not walk its segment from 0. */
async function startHint(log: PartitionLog, start: number): Promise<StartHint> {
  try {
    return await log.batchPositionOf(start);
  } catch {
    return null; // e.g. a corrupt batch on the way: the worker's own walk finds and reports it
  }
}

/** The segments that may hold offsets in [start, end): from the one holding start on. */
function segmentsFor(segments: ReadonlyArray<{ path: string; baseOffset: number; sizeBytes: number }>, start: number, end: number, hint: StartHint): ScanSegment[] {
  let first = 0;
  for (let i = 0; i < segments.length; i++) if (segments[i]!.baseOffset <= start) first = i;
  const out: ScanSegment[] = [];
  for (let i = first; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.baseOffset >= end) break;
    if (segment.sizeBytes === 0) continue;
    const hinted = i === first && hint !== null && hint.segmentBaseOffset === segment.baseOffset && hint.position < segment.sizeBytes;
    out.push({
      path: segment.path,
      baseOffset: segment.baseOffset,
      endPosition: segment.sizeBytes,
      startPosition: hinted ? hint.position : 0,
      startBatchBaseOffset: hinted ? hint.batchBaseOffset : -1,
    });
  }
  return out;
}

export const scanRecordsHandler = defineHandler<ScanRecordsRequest, ScanRecordsResponse>({
  apiKey: ApiKey.ScanRecords,
  decode: decodeScanRecordsRequest,
  encode: encodeScanRecordsResponse,
  handle: (request, _version, context) => scan(request, context),
  errorResponse: (_request, _version, errorCode) => failure(errorCode, null),
});
