// How configs relate to one another, checked wherever configs are resolved: a broker whose
// configs contradict each other refuses to start (brokerConfigFromProperties, Broker.start), and a
// topic create or alter that would contradict the broker's is refused with INVALID_CONFIG
// (TopicManager). One value's range is checked beside its definition (brokerConfig.ts,
// topicConfig.ts, log/logConfig.ts, against common/limits.ts); this file holds the relations.
//
// Relations deliberately not refused, because the code handles them and Kafka accepts them:
// - max.message.bytes above segment.bytes: as in Kafka, a batch larger than its topic's
//   segment.bytes is refused when appended (log/appendValidation.ts), so small test segments
//   keep the default max.message.bytes. (Both set on one topic is refused: topicConfig.ts.)
// - produce.decompression.buffer.bytes below a topic's decompressed batch limit: a reservation
//   larger than the whole budget runs alone (log/decompressionBudget.ts), it never waits forever.
// - a batch larger than the writer's queue bound: it is queued alone.
import { PRODUCE_REQUEST_OVERHEAD_BYTES } from '../common/limits.js';
import { ConfigError } from './errors.js';
import type { LogConfig } from './log/logConfig.js';
import { topicSettings, type ConfigMap } from './topicConfig.js';

/** The broker configs the relations read (a BrokerConfig has them all). */
export interface RelatedBrokerConfigs {
  readonly socketRequestMaxBytes: number;
  readonly groupMinSessionTimeoutMs: number;
  readonly groupMaxSessionTimeoutMs: number;
  readonly maxBrokerPartitions: number;
  readonly offsetsTopicPartitions: number;
  /** The `log.*` keys and message.max.bytes: the topic configs' broker defaults. */
  readonly topicDefaults: ConfigMap;
}

/** Throws ConfigError, naming both configs and their values, when the broker's configs contradict each other. */
export function checkBrokerConfigRelations(config: RelatedBrokerConfigs): void {
  // The defaults must combine into a valid log config now, not at the first topic creation.
  const defaults = topicSettings({}, config.topicDefaults).log;
  checkBatchFitsRequest('message.max.bytes', defaults.maxMessageBytes, config.socketRequestMaxBytes);
  if (config.groupMinSessionTimeoutMs > config.groupMaxSessionTimeoutMs) {
    throw new ConfigError(`group.min.session.timeout.ms ${config.groupMinSessionTimeoutMs} must not exceed group.max.session.timeout.ms ${config.groupMaxSessionTimeoutMs}`);
  }
  // The broker creates __consumer_offsets at its first start; it must fit under the broker's limit.
  if (config.offsetsTopicPartitions > config.maxBrokerPartitions) {
    throw new ConfigError(`offsets.topic.num.partitions ${config.offsetsTopicPartitions} must not exceed max.broker.partitions ${config.maxBrokerPartitions}: __consumer_offsets counts towards the broker's partitions`);
  }
}

/** Throws ConfigError when a topic's effective log config contradicts the broker's configs. */
export function checkTopicConfigRelations(log: LogConfig, broker: Pick<RelatedBrokerConfigs, 'socketRequestMaxBytes'>): void {
  checkBatchFitsRequest('max.message.bytes', log.maxMessageBytes, broker.socketRequestMaxBytes);
}

/** A batch of max.message.bytes must fit in one Produce request under socket.request.max.bytes. */
function checkBatchFitsRequest(maxMessageName: string, maxMessageBytes: number, socketRequestMaxBytes: number): void {
  const needed = maxMessageBytes + PRODUCE_REQUEST_OVERHEAD_BYTES;
  if (socketRequestMaxBytes < needed) {
    throw new ConfigError(
      `socket.request.max.bytes ${socketRequestMaxBytes} is too small for ${maxMessageName} ${maxMessageBytes}: a Produce request carrying one such batch ` +
        `takes up to ${needed} bytes (${PRODUCE_REQUEST_OVERHEAD_BYTES} beside the batch); raise socket.request.max.bytes or lower ${maxMessageName}`,
    );
  }
}
