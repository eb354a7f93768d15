// Metadata (3), v0-4: this broker as the only broker, leader and ISR of every partition, and the
// requested topics. Missing topics are created when auto.create.topics.enable is on and the
// request allows it (v0-3 always allow it, as in Kafka).
import { ErrorCode } from '../../protocol/errors.js';
import { decodeMetadataRequest, type MetadataRequest } from '../../protocol/generated/metadataRequest.js';
import { encodeMetadataResponse, type MetadataResponse, type MetadataResponseTopic } from '../../protocol/generated/metadataResponse.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import { INTERNAL_TOPICS, invalidTopicName, type Topic } from '../topicManager.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type BrokerServices } from './handler.js';

export function describeTopic(topic: Topic, nodeId: number): MetadataResponseTopic {
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: INTERNAL_TOPICS.has(topic.name),
    partitions: Array.from({ length: topic.partitions }, (_, partitionIndex) => ({
      errorCode: ErrorCode.NONE,
      partitionIndex,
      leaderId: nodeId,
      leaderEpoch: 0,
      replicaNodes: [nodeId],
      isrNodes: [nodeId],
      offlineReplicas: [],
    })),
  };
}

function missingTopic(name: string, errorCode: number): MetadataResponseTopic {
  return { errorCode, name, isInternal: false, partitions: [] };
}

/** A topic a client is about to use: created with the broker defaults when allowed. */
export async function topicForUse(services: BrokerServices, name: string, allowAutoCreate: boolean): Promise<{ topic: Topic } | { errorCode: number }> {
  const existing = services.topics.get(name);
  if (existing !== undefined) return { topic: existing };
  if (invalidTopicName(name) !== null) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION };
  if (!allowAutoCreate || !services.config.autoCreateTopics) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
  try {
    return { topic: await services.topics.create(name, -1, -1, {}) };
  } catch (error) {
    // Another request created it meanwhile: use it.
    const created = services.topics.get(name);
    if (created !== undefined) return { topic: created };
    return { errorCode: kafkaErrorCodeOf(error) };
  }
}

export const metadataHandler = defineHandler<MetadataRequest, MetadataResponse>({
  apiKey: ApiKey.Metadata,
  decode: decodeMetadataRequest,
  encode: encodeMetadataResponse,
  async handle(request, version, context) {
    const { services } = context;
    const nodeId = services.config.nodeId;
    // v0: an empty list means every topic; v1+: null means every topic.
    const everyTopic = request.topics === null || (version === 0 && request.topics.length === 0);
    let topics: MetadataResponseTopic[];
    if (everyTopic) {
      topics = services.topics.list().map((topic) => describeTopic(topic, nodeId));
    } else {
      const allowAutoCreate = version < 4 || request.allowAutoTopicCreation !== false;
      topics = [];
      for (const requested of request.topics ?? []) {
        const name = requested.name ?? '';
        const found = await topicForUse(services, name, allowAutoCreate);
        topics.push('topic' in found ? describeTopic(found.topic, nodeId) : missingTopic(name, found.errorCode));
      }
    }
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId, host: services.config.advertisedHost, port: services.config.advertisedPort, rack: null }],
      clusterId: services.config.clusterId,
      controllerId: nodeId,
      topics,
    };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    brokers: [],
    clusterId: null,
    controllerId: -1,
    topics: (request.topics ?? []).map((topic) => missingTopic(topic.name ?? '', errorCode)),
  }),
});
