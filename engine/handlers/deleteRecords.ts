// DeleteRecords (21), v0-1: moves each partition's log start offset (its low watermark) up to the
// requested offset through Partition.deleteRecordsBelow, and answers the new log start.
// Offset -1 means the high watermark. An offset below 0 (other
// than -1) or past the high watermark is OFFSET_OUT_OF_RANGE; one at or below the current log
// start changes nothing, as in Kafka. The deletion is local, so timeoutMs is only an upper bound
// on the wait (the deletion queues behind the partition's pending appends): a partition still
// pending at the deadline is answered REQUEST_TIMED_OUT, and its deletion completes afterwards.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeDeleteRecordsRequest, type DeleteRecordsRequest } from '../../protocol/generated/deleteRecordsRequest.js';
import { encodeDeleteRecordsResponse, type DeleteRecordsResponse, type DeleteRecordsResponsePartitionResult } from '../../protocol/generated/deleteRecordsResponse.js';
import { failureOf } from './itemFailures.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type HandlerContext } from './handler.js';

/** The longest a request waits for its deletions, whatever its timeoutMs (0 or less included). */
export const DELETE_RECORDS_MAX_WAIT_MS = 60_000;
/** DeleteRecords' offset for "up to the high watermark". */
const HIGH_WATERMARK = -1n;
const NO_LOW_WATERMARK = -1n;

async function deleteBelow(topic: string, partitionIndex: number, offset: bigint, context: HandlerContext): Promise<DeleteRecordsResponsePartitionResult> {
  const refused = (errorCode: number): DeleteRecordsResponsePartitionResult => ({ partitionIndex, lowWatermark: NO_LOW_WATERMARK, errorCode });
  const partition = context.services.topics.partition(topic, partitionIndex);
  if (partition === undefined) return refused(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  if (offset !== HIGH_WATERMARK && (offset < 0n || offset > BigInt(partition.highWatermark))) return refused(ErrorCode.OFFSET_OUT_OF_RANGE);
  try {
    const logStartOffset = await partition.deleteRecordsBelow(Number(offset));
    return { partitionIndex, lowWatermark: BigInt(logStartOffset), errorCode: ErrorCode.NONE };
  } catch (error) {
    return refused(failureOf(error, context, { api: 'DeleteRecords', topic, partition: partitionIndex }).errorCode);
  }
}

export const deleteRecordsHandler = defineHandler<DeleteRecordsRequest, DeleteRecordsResponse>({
  apiKey: ApiKey.DeleteRecords,
  decode: decodeDeleteRecordsRequest,
  encode: encodeDeleteRecordsResponse,
  async handle(request, _version, context) {
    const waitMs = request.timeoutMs > 0 ? Math.min(request.timeoutMs, DELETE_RECORDS_MAX_WAIT_MS) : DELETE_RECORDS_MAX_WAIT_MS;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timed-out'>((resolve) => {
      timer = setTimeout(() => resolve('timed-out'), waitMs);
      timer.unref();
    });
    try {
      // Partitions are independent: their deletions run side by side. deleteBelow never rejects,
      // so a deletion that loses the race to the deadline cannot become an unhandled rejection.
      const topics = await Promise.all(
        request.topics.map(async (topic) => ({
          name: topic.name,
          partitions: await Promise.all(
            topic.partitions.map(async (partition) => {
              const outcome = await Promise.race([deleteBelow(topic.name, partition.partitionIndex, partition.offset, context), deadline]);
              return outcome === 'timed-out' ? { partitionIndex: partition.partitionIndex, lowWatermark: NO_LOW_WATERMARK, errorCode: ErrorCode.REQUEST_TIMED_OUT } : outcome;
            }),
          ),
        })),
      );
      return { throttleTimeMs: 0, topics };
    } finally {
      clearTimeout(timer);
    }
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, lowWatermark: NO_LOW_WATERMARK, errorCode })),
    })),
  }),
});
