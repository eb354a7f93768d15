// The bundled client: producer, consumer (manual assignment or consumer groups: subscribe) and admin.
export * from './errors.js';
export { BrokerConnection, ApiKey, type ConnectionOptions, type RequestOptions } from './connection.js';
export { Cluster, type ClusterOptions, type TopicMetadata } from './cluster.js';
export { murmur2, partitionForKey, StickyPartitioner } from './partitioner.js';
export type { RecordHeaders, HeaderValue } from './batchBuilder.js';
export { serializers, deserializers, resolveSerializer, resolveDeserializer, KafkaSerializationError, type Serializer, type Deserializer, type SerializerName } from './serializers.js';
export { createProducer, Producer, PRODUCER_DEFAULTS, type Acks, type ProducerOptions, type ProducerRecord, type RecordMetadata } from './producer.js';
export { createConsumer, Consumer, CONSUMER_DEFAULTS, SUBSCRIBE_DEFAULTS, KafkaOffsetOutOfRangeError, KafkaRecordDeserializationError, type DeserializedBy, type DeserializerFor, type SubscribeOptions, type AutoOffsetReset, type ConsumerOptions, type IsolationLevel, type IterateOptions, type OffsetInput, type TopicPartitionOffset } from './consumer/consumer.js';
export { RecordCursor, KafkaCorruptRecordError, batchRecords, decodeFetchedBatches, decodeFetchedRecords, scanFetchedRecords, type ConsumerRecord, type ConsumerRecordHeader, type RecordBatch } from './recordDecoder.js';
export { createAdmin, Admin, AdminApiKey, KafkaGroupActiveError, type AdminOptions, type AlterConfigsInput, type ConfigEntry, type CreateTopicsOptions, type GroupDescription, type GroupMemberDescription, type GroupPartitionOffset, type ListedGroup, type NewTopic, type OffsetSpec, type PartitionDescription, type PartitionOffset, type ResetOptions, type ResetResult, type ResetTarget, type TopicDescription } from './admin.js';
export { rangeAssignor, roundRobinAssignor, BUILTIN_ASSIGNORS, rebalanceProtocolOf, encodeSubscription, decodeSubscription, encodeAssignment, decodeAssignment, type DecodedSubscription, type Ownership } from './assignors.js';
export type { Assignor, AssignorName, GroupAssignment, MemberSubscription, RebalanceProtocol, TopicPartition } from './types.js';
export { cooperativeStickyAssignor } from './stickyAssignor.js';
export { GroupMembership, KafkaCommitFailedError, type GroupMembershipOptions } from './groupMembership.js';
export { replay, Replay, type ReplayFilter, type ReplayOptions, type ReplayStats } from './replay.js';
