// DescribeConfigs (32), v0-2.
// - TOPIC (2): every topic config, or the requested keys (unknown keys are left out, as Kafka
//   does), with its effective value and where it comes from: the topic's override
//   (DYNAMIC_TOPIC_CONFIG), a broker-level `log.*` value (STATIC_BROKER_CONFIG) or Kafka's default
//   (DEFAULT_CONFIG). Writable, so readOnly is false. With includeSynonyms (v1+) each config lists
//   the override, the broker key and the default, in that order (Kafka's precedence).
// - BROKER (4) named by our node id: the broker's static configs, read-only. An empty name asks
//   for the cluster-wide dynamic defaults, of which tidelog has none. Any other id is
//   INVALID_REQUEST, as Kafka answers it.
// - Other resource types: INVALID_REQUEST with a message.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeDescribeConfigsRequest, type DescribeConfigsRequest, type DescribeConfigsRequestResource } from '../../protocol/generated/describeConfigsRequest.js';
import {
  encodeDescribeConfigsResponse,
  type DescribeConfigsResponse,
  type DescribeConfigsResponseResourceResult,
  type DescribeConfigsResponseResult,
  type DescribeConfigsResponseSynonym,
} from '../../protocol/generated/describeConfigsResponse.js';
import { defaultBrokerConfig, type BrokerConfig } from '../brokerConfig.js';
import { TOPIC_CONFIGS, effectiveTopicConfigs, type ConfigMap, type ConfigSource } from '../topicConfig.js';
import { invalidTopicName } from '../topicManager.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type BrokerServices } from './handler.js';

/** Kafka's config resource types (ConfigResource.Type). */
export const ConfigResourceType = { TOPIC: 2, BROKER: 4 } as const;

/** Kafka's DescribeConfigs config sources (the ones tidelog reports). */
export const ConfigSourceId = { DYNAMIC_TOPIC_CONFIG: 1, STATIC_BROKER_CONFIG: 4, DEFAULT_CONFIG: 5 } as const;

const SOURCE_IDS: Record<ConfigSource, number> = { topic: ConfigSourceId.DYNAMIC_TOPIC_CONFIG, broker: ConfigSourceId.STATIC_BROKER_CONFIG, default: ConfigSourceId.DEFAULT_CONFIG };

interface ShownConfig {
  name: string;
  value: string;
  source: number;
  readOnly: boolean;
  synonyms: DescribeConfigsResponseSynonym[];
}

function topicConfigs(overrides: ConfigMap, brokerDefaults: ConfigMap): ShownConfig[] {
  return effectiveTopicConfigs(overrides, brokerDefaults).map((entry) => {
    const definition = TOPIC_CONFIGS.get(entry.name)!;
    const synonyms: DescribeConfigsResponseSynonym[] = [];
    const override = overrides[entry.name];
    if (override !== undefined) synonyms.push({ name: entry.name, value: override, source: ConfigSourceId.DYNAMIC_TOPIC_CONFIG });
    const brokerValue = brokerDefaults[definition.brokerKey];
    if (brokerValue !== undefined) synonyms.push({ name: definition.brokerKey, value: brokerValue, source: ConfigSourceId.STATIC_BROKER_CONFIG });
    synonyms.push({ name: definition.brokerKey, value: definition.defaultValue, source: ConfigSourceId.DEFAULT_CONFIG });
    return { name: entry.name, value: entry.value, source: SOURCE_IDS[entry.source], readOnly: false, synonyms };
  });
}

/** The BrokerConfig fields by their Kafka broker config names. */
const BROKER_FIELDS: ReadonlyArray<{ name: string; value: (config: BrokerConfig) => string }> = [
  { name: 'node.id', value: (config) => String(config.nodeId) },
  { name: 'broker.id', value: (config) => String(config.nodeId) },
  { name: 'log.dirs', value: (config) => config.dataDir },
  { name: 'num.partitions', value: (config) => String(config.numPartitions) },
  { name: 'max.broker.partitions', value: (config) => String(config.maxBrokerPartitions) },
  { name: 'log.write.handles.max', value: (config) => String(config.logWriteHandlesMax) },
  { name: 'log.read.handles.max', value: (config) => String(config.logReadHandlesMax) },
  { name: 'default.replication.factor', value: (config) => String(config.defaultReplicationFactor) },
  { name: 'auto.create.topics.enable', value: (config) => String(config.autoCreateTopics) },
  { name: 'socket.request.max.bytes', value: (config) => String(config.socketRequestMaxBytes) },
  { name: 'max.connections', value: (config) => String(config.maxConnections) },
  { name: 'queued.max.requests', value: (config) => String(config.maxInFlightRequestsPerConnection) },
  { name: 'log.retention.check.interval.ms', value: (config) => String(config.retentionCheckIntervalMs) },
  { name: 'log.flush.offset.checkpoint.interval.ms', value: (config) => String(config.checkpointIntervalMs) },
];

function brokerConfigs(config: BrokerConfig): ShownConfig[] {
  const defaults = defaultBrokerConfig();
  const shown: ShownConfig[] = BROKER_FIELDS.map((field) => {
    const value = field.value(config);
    // BrokerConfig does not remember which keys were set: a value equal to the default is shown as the default.
    const source = value === field.value(defaults) ? ConfigSourceId.DEFAULT_CONFIG : ConfigSourceId.STATIC_BROKER_CONFIG;
    return { name: field.name, value, source, readOnly: true, synonyms: [{ name: field.name, value, source }] };
  });
  for (const definition of TOPIC_CONFIGS.values()) {
    const set = config.topicDefaults[definition.brokerKey];
    const synonyms: DescribeConfigsResponseSynonym[] = [];
    if (set !== undefined) synonyms.push({ name: definition.brokerKey, value: set, source: ConfigSourceId.STATIC_BROKER_CONFIG });
    synonyms.push({ name: definition.brokerKey, value: definition.defaultValue, source: ConfigSourceId.DEFAULT_CONFIG });
    shown.push({ name: definition.brokerKey, value: set ?? definition.defaultValue, source: synonyms[0]!.source, readOnly: true, synonyms });
  }
  return shown;
}

function failed(resource: DescribeConfigsRequestResource, errorCode: number, errorMessage: string | null): DescribeConfigsResponseResult {
  return { errorCode, errorMessage, resourceType: resource.resourceType, resourceName: resource.resourceName, configs: [] };
}

function describe(resource: DescribeConfigsRequestResource, includeSynonyms: boolean, services: BrokerServices): DescribeConfigsResponseResult {
  let shown: ShownConfig[];
  if (resource.resourceType === ConfigResourceType.TOPIC) {
    const invalid = invalidTopicName(resource.resourceName);
    if (invalid !== null) return failed(resource, ErrorCode.INVALID_TOPIC_EXCEPTION, invalid);
    const topic = services.topics.get(resource.resourceName);
    if (topic === undefined) return failed(resource, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${resource.resourceName} does not exist`);
    shown = topicConfigs(topic.configs, services.config.topicDefaults);
  } else if (resource.resourceType === ConfigResourceType.BROKER) {
    const nodeId = String(services.config.nodeId);
    if (resource.resourceName === '') shown = [];
    else if (resource.resourceName === nodeId) shown = brokerConfigs(services.config);
    else return failed(resource, ErrorCode.INVALID_REQUEST, `unexpected broker id ${JSON.stringify(resource.resourceName)}: this is broker ${nodeId} (or use "" for cluster defaults)`);
  } else {
    return failed(resource, ErrorCode.INVALID_REQUEST, `resource type ${resource.resourceType} is not supported; DescribeConfigs covers topics (2) and brokers (4)`);
  }
  const wanted = resource.configurationKeys === null ? null : new Set(resource.configurationKeys);
  const configs: DescribeConfigsResponseResourceResult[] = shown
    .filter((config) => wanted === null || wanted.has(config.name))
    .map((config) => ({
      name: config.name,
      value: config.value,
      readOnly: config.readOnly,
      isDefault: config.source === ConfigSourceId.DEFAULT_CONFIG,
      configSource: config.source,
      isSensitive: false,
      synonyms: includeSynonyms ? config.synonyms : [],
    }));
  return { errorCode: ErrorCode.NONE, errorMessage: null, resourceType: resource.resourceType, resourceName: resource.resourceName, configs };
}

export const describeConfigsHandler = defineHandler<DescribeConfigsRequest, DescribeConfigsResponse>({
  apiKey: ApiKey.DescribeConfigs,
  decode: decodeDescribeConfigsRequest,
  encode: encodeDescribeConfigsResponse,
  handle: (request, _version, context) =>
    Promise.resolve({
      throttleTimeMs: 0,
      results: request.resources.map((resource) => describe(resource, request.includeSynonyms === true, context.services)),
    }),
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    results: request.resources.map((resource) => failed(resource, errorCode, null)),
  }),
});
