// CreatePartitions (37), v0-1: TopicManager.addPartitions per topic (raise only, never lower),
// validateOnly honoured. A manual assignment must name exactly the new partitions, each on [our
// node id]; anything else is INVALID_REPLICA_ASSIGNMENT. A topic listed twice is INVALID_REQUEST
// for each entry, as Kafka answers it.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeCreatePartitionsRequest, type CreatePartitionsRequest, type CreatePartitionsRequestTopic } from '../../protocol/generated/createPartitionsRequest.js';
import { encodeCreatePartitionsResponse, type CreatePartitionsResponse, type CreatePartitionsResponseTopicResult } from '../../protocol/generated/createPartitionsResponse.js';
import { TopicError, type TopicManager } from '../topicManager.js';
import { duplicatesOf, failureOf } from './itemFailures.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

/** Checks a manual assignment against what this node can do; the engine checks the count itself. */
function checkAssignments(request: CreatePartitionsRequestTopic, topics: TopicManager, nodeId: number): void {
  if (request.assignments === null) return;
  const current = topics.get(request.name)?.partitions;
  // Unknown topic or a count that does not grow: the engine answers those with their own codes.
  if (current === undefined || request.count <= current) return;
  const added = request.count - current;
  if (request.assignments.length !== added) {
    throw new TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `increasing the number of partitions by ${added} needs ${added} assignments, got ${request.assignments.length}`);
  }
  request.assignments.forEach((assignment, index) => {
    if (assignment.brokerIds.length !== 1 || assignment.brokerIds[0] !== nodeId) {
      throw new TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `new partition ${current + index} is assigned to brokers [${assignment.brokerIds.join(',')}]; this single-node cluster can only place it on [${nodeId}]`);
    }
  });
}

export const createPartitionsHandler = defineHandler<CreatePartitionsRequest, CreatePartitionsResponse>({
  apiKey: ApiKey.CreatePartitions,
  decode: decodeCreatePartitionsRequest,
  encode: encodeCreatePartitionsResponse,
  async handle(request, _version, context) {
    const { topics, config } = context.services;
    const duplicates = duplicatesOf(request.topics.map((topic) => topic.name));
    const results: CreatePartitionsResponseTopicResult[] = [];
    for (const topic of request.topics) {
      if (duplicates.has(topic.name)) {
        results.push({ name: topic.name, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `topic ${topic.name} is listed more than once in this request` });
        continue;
      }
      try {
        checkAssignments(topic, topics, config.nodeId);
        await topics.addPartitions(topic.name, topic.count, { validateOnly: request.validateOnly });
        results.push({ name: topic.name, errorCode: ErrorCode.NONE, errorMessage: null });
      } catch (error) {
        results.push({ name: topic.name, ...failureOf(error, context, { api: 'CreatePartitions', topic: topic.name }) });
      }
    }
    return { throttleTimeMs: 0, results };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    results: request.topics.map((topic) => ({ name: topic.name, errorCode, errorMessage: null })),
  }),
});
