// Produce (0), v3-7 (v0-2 are advertised for librdkafka's feature probes but carry legacy
// message sets, which the log refuses as UNSUPPORTED_FOR_MESSAGE_FORMAT). Every partition's
// record set goes to its log as the raw bytes the client sent; the log validates and assigns
// offsets. acks 0 sends no response, 1 and -1 answer once the append is done under the topic's
// flush policy (one node: the leader is every replica). Missing topics are auto-created.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeProduceRequest, type ProduceRequest } from '../../protocol/generated/produceRequest.js';
import { encodeProduceResponse, type ProduceResponse, type ProduceResponsePartitionProduceResponse } from '../../protocol/generated/produceResponse.js';
import { ATTRIBUTES_OFFSET, ATTRIBUTE_TRANSACTIONAL, BATCH_LENGTH_OFFSET, LOG_OVERHEAD } from '../../segments/recordBatch.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import { firstKeylessRecord } from '../compaction/keylessRecords.js';
import { defineHandler, type HandlerContext } from './handler.js';
import { topicForUse } from './metadata.js';

function partitionError(index: number, errorCode: number, errorMessage: string | null = null): ProduceResponsePartitionProduceResponse {
  return { index, errorCode, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, errorMessage };
}

/** Why a record set cannot be appended before the log even sees it, or null. */
function recordSetProblem(records: Buffer | null): { errorCode: number; message: string } | null {
  if (records === null || records.length === 0) return { errorCode: ErrorCode.CORRUPT_MESSAGE, message: 'no records' };
  if (records.length < LOG_OVERHEAD) return { errorCode: ErrorCode.CORRUPT_MESSAGE, message: 'record set shorter than a batch header' };
  // Produce v3+ carries exactly one batch per partition (Kafka refuses more).
  if (records.readInt32BE(BATCH_LENGTH_OFFSET) + LOG_OVERHEAD < records.length) return { errorCode: ErrorCode.INVALID_RECORD, message: 'more than one record batch for a partition' };
  if (records.length > ATTRIBUTES_OFFSET + 2 && (records.readInt16BE(ATTRIBUTES_OFFSET) & ATTRIBUTE_TRANSACTIONAL) !== 0) {
    return { errorCode: ErrorCode.INVALID_TXN_STATE, message: 'transactions are not supported yet' };
  }
  return null;
}

async function appendPartition(context: HandlerContext, topic: string, index: number, records: Buffer | null): Promise<ProduceResponsePartitionProduceResponse> {
  const problem = recordSetProblem(records);
  if (problem !== null) return partitionError(index, problem.errorCode, problem.message);
  const log = context.services.topics.partitionLog(topic, index);
  if (log === undefined) return partitionError(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  if (log.config.cleanupPolicy.includes('compact')) {
    // Compaction keeps the latest record per key: a record without a key has no place (as in Kafka).
    const keyless = firstKeylessRecord(records!);
    if (keyless !== null) return partitionError(index, ErrorCode.INVALID_RECORD, `compacted topic ${topic} refuses records without a key (record ${keyless.record} of the batch has none)`);
  }
  try {
    const result = await log.append(records!);
    return { index, errorCode: ErrorCode.NONE, baseOffset: BigInt(result.baseOffset), logAppendTimeMs: BigInt(result.logAppendTimeMs), logStartOffset: BigInt(result.logStartOffset), errorMessage: null };
  } catch (error) {
    const errorCode = kafkaErrorCodeOf(error);
    if (errorCode === ErrorCode.UNKNOWN_SERVER_ERROR) throw error;
    return partitionError(index, errorCode, (error as Error).message);
  }
}

export const produceHandler = defineHandler<ProduceRequest, ProduceResponse>({
  apiKey: 0,
  decode: decodeProduceRequest,
  encode: encodeProduceResponse,
  async handle(request, _version, context) {
    if (request.acks !== 0 && request.acks !== 1 && request.acks !== -1) {
      return produceError(request, ErrorCode.INVALID_REQUIRED_ACKS);
    }
    const responses = await Promise.all(
      request.topicData.map(async (topicData) => {
        const found = await topicForUse(context.services, topicData.name, true);
        const partitionResponses = 'errorCode' in found
          ? topicData.partitionData.map((partition) => partitionError(partition.index, found.errorCode))
          : await Promise.all(topicData.partitionData.map((partition) => appendPartition(context, topicData.name, partition.index, partition.records)));
        return { name: topicData.name, partitionResponses };
      }),
    );
    // acks=0: the client expects no answer at all; the appends above still finished first.
    if (request.acks === 0) return null;
    return { responses, throttleTimeMs: 0 };
  },
  errorResponse: (request, _version, errorCode) => produceError(request, errorCode),
});

function produceError(request: ProduceRequest, errorCode: number): ProduceResponse {
  return {
    responses: request.topicData.map((topicData) => ({ name: topicData.name, partitionResponses: topicData.partitionData.map((partition) => partitionError(partition.index, errorCode)) })),
    throttleTimeMs: 0,
  };
}
