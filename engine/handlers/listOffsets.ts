// ListOffsets (2), v1-2: -1 latest (the high watermark; for read_committed the last stable
// offset, the same on a log without open transactions), -2 earliest (the log start offset),
// a timestamp: the first offset below the high watermark whose record timestamp is >= it, or
// -1/-1 when none is.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeListOffsetsRequest, type ListOffsetsRequest } from '../../protocol/generated/listOffsetsRequest.js';
import { encodeListOffsetsResponse, type ListOffsetsResponse, type ListOffsetsResponsePartitionResponse } from '../../protocol/generated/listOffsetsResponse.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type HandlerContext } from './handler.js';

export const LATEST_TIMESTAMP = -1n;
export const EARLIEST_TIMESTAMP = -2n;

async function lookup(context: HandlerContext, topic: string, partitionIndex: number, timestamp: bigint): Promise<ListOffsetsResponsePartitionResponse> {
  const partition = context.services.topics.partition(topic, partitionIndex);
  const none = { partitionIndex, timestamp: -1n, offset: -1n };
  if (partition === undefined) return { ...none, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
  if (timestamp === LATEST_TIMESTAMP) return { partitionIndex, errorCode: ErrorCode.NONE, timestamp: -1n, offset: BigInt(partition.highWatermark) };
  if (timestamp === EARLIEST_TIMESTAMP) return { partitionIndex, errorCode: ErrorCode.NONE, timestamp: -1n, offset: BigInt(partition.logStartOffset) };
  if (timestamp < 0n || timestamp > BigInt(Number.MAX_SAFE_INTEGER)) return { ...none, errorCode: ErrorCode.INVALID_REQUEST };
  try {
    const found = await partition.offsetForTimestamp(Number(timestamp));
    if (found === null) return { ...none, errorCode: ErrorCode.NONE };
    return { partitionIndex, errorCode: ErrorCode.NONE, timestamp: BigInt(found.timestamp), offset: BigInt(found.offset) };
  } catch (error) {
    const errorCode = kafkaErrorCodeOf(error);
    if (errorCode === ErrorCode.UNKNOWN_SERVER_ERROR) throw error;
    return { ...none, errorCode };
  }
}

export const listOffsetsHandler = defineHandler<ListOffsetsRequest, ListOffsetsResponse>({
  apiKey: ApiKey.ListOffsets,
  decode: decodeListOffsetsRequest,
  encode: encodeListOffsetsResponse,
  async handle(request, _version, context) {
    const topics = await Promise.all(
      request.topics.map(async (topic) => ({
        name: topic.name,
        partitions: await Promise.all(topic.partitions.map((partition) => lookup(context, topic.name, partition.partitionIndex, partition.timestamp))),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => ({ name: topic.name, partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, errorCode, timestamp: -1n, offset: -1n })) })),
  }),
});
