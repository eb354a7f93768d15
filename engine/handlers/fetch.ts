// Fetch (1), v4-11: whole batches straight from the log, never decoded. Per partition at most
// partitionMaxBytes, in total at most maxBytes, except that the first partition with data always
// returns at least one whole batch (KIP-74) so a consumer never sticks on a large one. Reads stop
// at the high watermark (read_uncommitted) or the last stable offset (read_committed); without
// transactions both are the log end.
//
// Long poll: with fewer than minBytes available, the request waits for an append to any of its
// partitions, up to maxWaitMs (capped by the broker), or until its connection closes.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeFetchRequest, type FetchRequest } from '../../protocol/generated/fetchRequest.js';
import { encodeFetchResponse, type FetchResponse, type FetchResponsePartitionData } from '../../protocol/generated/fetchResponse.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import type { PartitionLog } from '../log/partitionLog.js';
import { defineHandler, type HandlerContext } from './handler.js';

const EMPTY: Buffer = Buffer.alloc(0);

function partitionError(partitionIndex: number, errorCode: number, log?: PartitionLog): FetchResponsePartitionData {
  const highWatermark = log === undefined ? -1n : BigInt(log.logEndOffset);
  return {
    partitionIndex,
    errorCode,
    highWatermark,
    lastStableOffset: highWatermark,
    logStartOffset: log === undefined ? -1n : BigInt(log.logStartOffset),
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: EMPTY,
  };
}

interface ReadPass {
  response: FetchResponse;
  bytes: number;
  errors: boolean;
  logs: PartitionLog[];
  /** Each log's end offset when it was read, to catch appends that land before the wait starts. */
  endsSeen: number[];
}

async function readPass(request: FetchRequest, context: HandlerContext): Promise<ReadPass> {
  let remaining = request.maxBytes ?? Number.MAX_SAFE_INTEGER;
  let bytes = 0;
  let errors = false;
  let gotData = false;
  const logs: PartitionLog[] = [];
  const endsSeen: number[] = [];
  const responses = [];
  for (const topic of request.topics) {
    const name = topic.topic ?? '';
    const partitions: FetchResponsePartitionData[] = [];
    for (const partition of topic.partitions) {
      const log = context.services.topics.partitionLog(name, partition.partition);
      if (log === undefined) {
        errors = true;
        partitions.push(partitionError(partition.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
        continue;
      }
      logs.push(log);
      endsSeen.push(log.logEndOffset);
      const offset = Number(partition.fetchOffset);
      if (!Number.isSafeInteger(offset) || offset < 0 || partition.partitionMaxBytes < 0) {
        errors = true;
        partitions.push(partitionError(partition.partition, ErrorCode.OFFSET_OUT_OF_RANGE, log));
        continue;
      }
      let records: Buffer = EMPTY;
      try {
        const limit = Math.min(partition.partitionMaxBytes, remaining);
        if (limit > 0 || !gotData) {
          const read = await log.read(offset, Math.max(limit, 0), { minOneBatch: !gotData });
          records = read.records;
        }
      } catch (error) {
        const errorCode = kafkaErrorCodeOf(error);
        if (errorCode === ErrorCode.UNKNOWN_SERVER_ERROR) throw error;
        if (errorCode === ErrorCode.KAFKA_STORAGE_ERROR) {
          context.services.logger.error('fetch met a corrupt batch', { topic: name, partition: partition.partition, offset, error: (error as Error).message });
        }
        errors = true;
        partitions.push(partitionError(partition.partition, errorCode, log));
        continue;
      }
      if (records.length > 0) gotData = true;
      remaining -= records.length;
      bytes += records.length;
      const highWatermark = BigInt(log.logEndOffset);
      partitions.push({
        partitionIndex: partition.partition,
        errorCode: ErrorCode.NONE,
        highWatermark,
        lastStableOffset: highWatermark,
        logStartOffset: BigInt(log.logStartOffset),
        abortedTransactions: request.isolationLevel === 1 ? [] : null,
        preferredReadReplica: -1,
        records,
      });
    }
    responses.push({ topic: name, partitions });
  }
  return { response: { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses }, bytes, errors, logs, endsSeen };
}

/**
 * Resolves on the first append to any of `logs` ('data'), after `waitMs` ('timeout'), or on
 * abort (connection closed or broker stopping). An append that landed after the read pass but
 * before this subscription counts too.
 */
function waitForData(logs: readonly PartitionLog[], endsSeen: readonly number[], waitMs: number, signals: readonly AbortSignal[]): Promise<'data' | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const unsubscribers: Array<() => void> = [];
    let timer: NodeJS.Timeout | null = null;
    const done = (outcome: 'data' | 'timeout' | 'aborted'): void => {
      for (const unsubscribe of unsubscribers) unsubscribe();
      if (timer !== null) clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = (): void => done('aborted');
    for (const log of logs) unsubscribers.push(log.onNextAppend(() => done('data')));
    timer = setTimeout(() => done('timeout'), waitMs);
    for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
    if (logs.some((log, index) => log.logEndOffset !== endsSeen[index])) done('data');
  });
}

export const fetchHandler = defineHandler<FetchRequest, FetchResponse>({
  apiKey: 1,
  decode: decodeFetchRequest,
  encode: encodeFetchResponse,
  async handle(request, _version, context) {
    const waitMs = Math.min(Math.max(request.maxWaitMs, 0), context.services.config.fetchMaxWaitCapMs);
    const deadline = context.services.clock.nowMs() + waitMs;
    let waited: 'data' | 'timeout' | 'aborted' = 'data';
    for (;;) {
      const pass = await readPass(request, context);
      const left = deadline - context.services.clock.nowMs();
      const enough = request.minBytes <= 0 || pass.bytes >= request.minBytes;
      if (enough || pass.errors || left <= 0 || waited !== 'data' || context.signal.aborted || context.services.stopping.aborted || pass.logs.length === 0) {
        return pass.response;
      }
      waited = await waitForData(pass.logs, pass.endsSeen, left, [context.signal, context.services.stopping]);
    }
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    sessionId: 0,
    responses: request.topics.map((topic) => ({ topic: topic.topic ?? '', partitions: topic.partitions.map((partition) => partitionError(partition.partition, errorCode)) })),
  }),
});
