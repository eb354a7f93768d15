// CreateTopics (19), v0-3: one TopicManager.create per requested topic, each answered on its own
// (errorMessage from v1). NumPartitions and ReplicationFactor of -1 mean the broker defaults at
// every version: upstream allows -1 only from v4, but kafkajs sends it at v3. A manual
// assignment is accepted only when it is what this single node would do anyway: partitions
// 0..n-1, each on [our node id]. Names listed twice are refused (each entry), as Kafka does.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeCreateTopicsRequest, type CreateTopicsRequest, type CreateTopicsRequestCreatableTopic } from '../../protocol/generated/createTopicsRequest.js';
import { encodeCreateTopicsResponse, type CreateTopicsResponse, type CreateTopicsResponseCreatableTopicResult } from '../../protocol/generated/createTopicsResponse.js';
import { TopicError } from '../topicManager.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';
import { duplicatesOf, failureOf } from './itemFailures.js';

/** Partitions and replication factor to ask the engine for, from the counts or a manual assignment. */
function requestedLayout(topic: CreateTopicsRequestCreatableTopic, nodeId: number): { partitions: number; replicationFactor: number } {
  if (topic.assignments.length === 0) return { partitions: topic.numPartitions, replicationFactor: topic.replicationFactor };
  if (topic.numPartitions !== -1 || topic.replicationFactor !== -1) {
    throw new TopicError(ErrorCode.INVALID_REQUEST, 'both numPartitions or replicationFactor and a replica assignment were given; use one or the other (set the counts to -1)');
  }
  const indexes = topic.assignments.map((assignment) => assignment.partitionIndex).sort((a, b) => a - b);
  if (indexes.some((index, position) => index !== position)) {
    throw new TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `the assigned partitions must be 0..${topic.assignments.length - 1}, each once; got ${indexes.join(',')}`);
  }
  for (const assignment of topic.assignments) {
    if (assignment.brokerIds.length !== 1 || assignment.brokerIds[0] !== nodeId) {
      throw new TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `partition ${assignment.partitionIndex} is assigned to brokers [${assignment.brokerIds.join(',')}]; this single-node cluster can only place it on [${nodeId}]`);
    }
  }
  return { partitions: topic.assignments.length, replicationFactor: 1 };
}

/** The topic's config overrides; a null value means "not set". */
function requestedConfigs(topic: CreateTopicsRequestCreatableTopic): Record<string, string> {
  const configs: Record<string, string> = {};
  for (const config of topic.configs) {
    if (Object.hasOwn(configs, config.name)) throw new TopicError(ErrorCode.INVALID_REQUEST, `config ${config.name} is given more than once`);
    if (config.value !== null) configs[config.name] = config.value;
  }
  return configs;
}

function result(name: string, errorCode: number, errorMessage: string | null): CreateTopicsResponseCreatableTopicResult {
  return { name, errorCode, errorMessage };
}

export const createTopicsHandler = defineHandler<CreateTopicsRequest, CreateTopicsResponse>({
  apiKey: ApiKey.CreateTopics,
  decode: decodeCreateTopicsRequest,
  encode: encodeCreateTopicsResponse,
  async handle(request, _version, context) {
    const { topics, config } = context.services;
    const duplicates = duplicatesOf(request.topics.map((topic) => topic.name));
    const validateOnly = request.validateOnly === true;
    const results: CreateTopicsResponseCreatableTopicResult[] = [];
    for (const topic of request.topics) {
      if (duplicates.has(topic.name)) {
        results.push(result(topic.name, ErrorCode.INVALID_REQUEST, `topic ${topic.name} is listed more than once in this request`));
        continue;
      }
      try {
        const layout = requestedLayout(topic, config.nodeId);
        await topics.create(topic.name, layout.partitions, layout.replicationFactor, requestedConfigs(topic), { validateOnly });
        results.push(result(topic.name, ErrorCode.NONE, null));
      } catch (error) {
        const failure = failureOf(error, context, { api: 'CreateTopics', topic: topic.name });
        results.push(result(topic.name, failure.errorCode, failure.errorMessage));
      }
    }
    return { throttleTimeMs: 0, topics: results };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => result(topic.name, errorCode, null)),
  }),
});
