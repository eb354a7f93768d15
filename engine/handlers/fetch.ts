// Fetch (1), v4-11: whole batches straight from the log, never decoded. Per partition at most
// partitionMaxBytes, in total at most maxBytes, except that the first partition with data always
// returns at least one whole batch (KIP-74) so a consumer never sticks on a large one. Reads stop
// at the high watermark (read_uncommitted) or the last stable offset (read_committed); without
// transactions both are the high watermark.
//
// Long poll: with fewer than minBytes available, the request waits for the high watermark of any
// of its partitions to move, up to maxWaitMs (capped by the broker), or until its connection closes.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeFetchRequest, type FetchRequest } from '../../protocol/generated/fetchRequest.js';
import { encodeFetchResponse, type FetchResponse, type FetchResponsePartitionData } from '../../protocol/generated/fetchResponse.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import type { Partition } from '../partition/partition.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type HandlerContext } from './handler.js';

const EMPTY: Buffer = Buffer.alloc(0);

function partitionError(partitionIndex: number, errorCode: number, partition?: Partition): FetchResponsePartitionData {
  const highWatermark = partition === undefined ? -1n : BigInt(partition.highWatermark);
  return {
    partitionIndex,
    errorCode,
    highWatermark,
    lastStableOffset: highWatermark,
    logStartOffset: partition === undefined ? -1n : BigInt(partition.logStartOffset),
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: EMPTY,
  };
}

interface ReadPass {
  response: FetchResponse;
  bytes: number;
  errors: boolean;
  partitions: Partition[];
  /** Each partition's high watermark when it was read, to catch a move before the wait starts. */
  marksSeen: number[];
}

async function readPass(request: FetchRequest, context: HandlerContext): Promise<ReadPass> {
  let remaining = request.maxBytes ?? Number.MAX_SAFE_INTEGER;
  let bytes = 0;
  let errors = false;
  let gotData = false;
  const partitions: Partition[] = [];
  const marksSeen: number[] = [];
  const responses = [];
  for (const topic of request.topics) {
    const name = topic.topic ?? '';
    const answers: FetchResponsePartitionData[] = [];
    for (const wanted of topic.partitions) {
      const partition = context.services.topics.partition(name, wanted.partition);
      if (partition === undefined) {
        errors = true;
        answers.push(partitionError(wanted.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
        continue;
      }
      partitions.push(partition);
      marksSeen.push(partition.highWatermark);
      const offset = Number(wanted.fetchOffset);
      if (!Number.isSafeInteger(offset) || offset < 0 || wanted.partitionMaxBytes < 0) {
        errors = true;
        answers.push(partitionError(wanted.partition, ErrorCode.OFFSET_OUT_OF_RANGE, partition));
        continue;
      }
      let records: Buffer = EMPTY;
      let highWatermark = partition.highWatermark;
      try {
        const limit = Math.min(wanted.partitionMaxBytes, remaining);
        if (limit > 0 || !gotData) {
          const read = await partition.read(offset, Math.max(limit, 0), { minOneBatch: !gotData });
          records = read.records;
          highWatermark = read.highWatermark;
        }
      } catch (error) {
        const errorCode = kafkaErrorCodeOf(error);
        if (errorCode === ErrorCode.UNKNOWN_SERVER_ERROR) throw error;
        if (errorCode === ErrorCode.KAFKA_STORAGE_ERROR) {
          context.services.logger.error('fetch met a corrupt batch', { topic: name, partition: wanted.partition, offset, error: (error as Error).message });
        }
        errors = true;
        answers.push(partitionError(wanted.partition, errorCode, partition));
        continue;
      }
      if (records.length > 0) gotData = true;
      remaining -= records.length;
      bytes += records.length;
      answers.push({
        partitionIndex: wanted.partition,
        errorCode: ErrorCode.NONE,
        highWatermark: BigInt(highWatermark),
        lastStableOffset: BigInt(highWatermark),
        logStartOffset: BigInt(partition.logStartOffset),
        abortedTransactions: request.isolationLevel === 1 ? [] : null,
        preferredReadReplica: -1,
        records,
      });
    }
    responses.push({ topic: name, partitions: answers });
  }
  return { response: { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses }, bytes, errors, partitions, marksSeen };
}

/**
 * Resolves when the high watermark of any of `partitions` moves ('data'), after `waitMs`
 * ('timeout'), or on abort (connection closed or broker stopping). A move after the read pass
 * but before this subscription counts too.
 */
function waitForData(partitions: readonly Partition[], marksSeen: readonly number[], waitMs: number, signals: readonly AbortSignal[]): Promise<'data' | 'timeout' | 'aborted'> {
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
    for (const partition of partitions) unsubscribers.push(partition.onHighWatermarkAdvance(() => done('data')));
    timer = setTimeout(() => done('timeout'), waitMs);
    for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
    if (partitions.some((partition, index) => partition.highWatermark !== marksSeen[index])) done('data');
  });
}

export const fetchHandler = defineHandler<FetchRequest, FetchResponse>({
  apiKey: ApiKey.Fetch,
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
      if (enough || pass.errors || left <= 0 || waited !== 'data' || context.signal.aborted || context.services.stopping.aborted || pass.partitions.length === 0) {
        return pass.response;
      }
      waited = await waitForData(pass.partitions, pass.marksSeen, left, [context.signal, context.services.stopping]);
    }
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    sessionId: 0,
    responses: request.topics.map((topic) => ({ topic: topic.topic ?? '', partitions: topic.partitions.map((partition) => partitionError(partition.partition, errorCode)) })),
  }),
});
