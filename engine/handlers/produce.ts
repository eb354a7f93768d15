// Produce (0), v3-8 (v0-2 are advertised for librdkafka's feature probes but carry legacy
// message sets, which the log refuses as UNSUPPORTED_FOR_MESSAGE_FORMAT). Every partition's
// record set goes to its log as the raw bytes the client sent; the log validates every batch
// (engine/log/appendValidation.ts) and assigns offsets. A refusal carries its reason (errorMessage)
// and, for a record at fault, that record's index (recordErrors), both from v8 as KIP-467 has it.
// acks 0 sends no response; 1 answers once the append is done under the topic's flush policy;
// -1 once the partition's high watermark covers it (one node: the same moment), else
// REQUEST_TIMED_OUT after the request's timeoutMs. Missing topics are auto-created.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeProduceRequest, type ProduceRequest } from '../../protocol/generated/produceRequest.js';
import { encodeProduceResponse, type ProduceResponse, type ProduceResponseBatchIndexAndErrorMessage, type ProduceResponsePartitionProduceResponse } from '../../protocol/generated/produceResponse.js';
import { ATTRIBUTES_OFFSET, ATTRIBUTE_TRANSACTIONAL, BATCH_LENGTH_OFFSET, LOG_OVERHEAD, PRODUCER_ID_OFFSET, RECORDS_OFFSET } from '../../segments/recordBatch.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import { InvalidRecordsError } from '../errors.js';
import type { RequiredAcks } from '../partition/partition.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type HandlerContext } from './handler.js';
import { topicForUse } from './metadata.js';

function partitionError(index: number, errorCode: number, errorMessage: string | null = null, recordErrors: ProduceResponseBatchIndexAndErrorMessage[] = []): ProduceResponsePartitionProduceResponse {
  return { index, errorCode, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, errorMessage, recordErrors };
}

/** Why a record set cannot be appended before the log even sees it, or null. */
function recordSetProblem(records: Buffer | null): { errorCode: number; message: string } | null {
  if (records === null || records.length === 0) return { errorCode: ErrorCode.CORRUPT_MESSAGE, message: 'no records' };
  if (records.length < LOG_OVERHEAD) return { errorCode: ErrorCode.CORRUPT_MESSAGE, message: 'record set shorter than a batch header' };
  // Produce v3+ carries exactly one batch per partition (Kafka refuses more).
  // A first batch whose length cannot even hold a header is corrupt, whatever follows it (the log says so).
  const firstBatchBytes = records.readInt32BE(BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
  if (firstBatchBytes >= RECORDS_OFFSET && firstBatchBytes < records.length) return { errorCode: ErrorCode.INVALID_RECORD, message: 'more than one record batch for a partition' };
  // A transactional batch without a producer id is malformed, which the log's validation says.
  if (records.length > PRODUCER_ID_OFFSET + 8 && (records.readInt16BE(ATTRIBUTES_OFFSET) & ATTRIBUTE_TRANSACTIONAL) !== 0 && records.readInt32BE(PRODUCER_ID_OFFSET) >= 0) {
    return { errorCode: ErrorCode.INVALID_TXN_STATE, message: 'transactions are not supported yet' };
  }
  return null;
}

async function appendPartition(context: HandlerContext, request: ProduceRequest, topic: string, index: number, records: Buffer | null): Promise<ProduceResponsePartitionProduceResponse> {
  const problem = recordSetProblem(records);
  if (problem !== null) return partitionError(index, problem.errorCode, problem.message);
  const partition = context.services.topics.partition(topic, index);
  if (partition === undefined) return partitionError(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  try {
    const result = await partition.appendAsLeader(records!, request.acks as RequiredAcks, request.timeoutMs);
    return { index, errorCode: ErrorCode.NONE, baseOffset: BigInt(result.baseOffset), logAppendTimeMs: BigInt(result.logAppendTimeMs), logStartOffset: BigInt(result.logStartOffset), errorMessage: null };
  } catch (error) {
    const errorCode = kafkaErrorCodeOf(error);
    if (errorCode === ErrorCode.UNKNOWN_SERVER_ERROR) throw error;
    const recordErrors = error instanceof InvalidRecordsError ? error.recordErrors.map((record) => ({ batchIndex: record.batchIndex, batchIndexErrorMessage: record.message })) : [];
    return partitionError(index, errorCode, `${topic}-${index}: ${(error as Error).message}`, recordErrors);
  }
}

export const produceHandler = defineHandler<ProduceRequest, ProduceResponse>({
  apiKey: ApiKey.Produce,
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
          : await Promise.all(topicData.partitionData.map((partition) => appendPartition(context, request, topicData.name, partition.index, partition.records)));
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
