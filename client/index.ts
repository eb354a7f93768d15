// The bundled client: producer and consumer (manual assignment); groups and admin come next (see ARCHITECTURE.md).
export * from './errors.js';
export { BrokerConnection, ApiKey, type ConnectionOptions, type RequestOptions } from './connection.js';
export { Cluster, type ClusterOptions, type TopicMetadata } from './cluster.js';
export { murmur2, partitionForKey, StickyPartitioner } from './partitioner.js';
export type { RecordHeaders, HeaderValue } from './batchBuilder.js';
export { createProducer, Producer, PRODUCER_DEFAULTS, type Acks, type ProducerOptions, type ProducerRecord, type RecordMetadata } from './producer.js';
export { createConsumer, Consumer, CONSUMER_DEFAULTS, KafkaOffsetOutOfRangeError, type AutoOffsetReset, type ConsumerOptions, type IsolationLevel, type IterateOptions, type OffsetInput, type TopicPartition, type TopicPartitionOffset } from './consumer.js';
export { RecordCursor, KafkaCorruptRecordError, batchRecords, decodeFetchedBatches, decodeFetchedRecords, scanFetchedRecords, type ConsumerRecord, type ConsumerRecordHeader, type RecordBatch } from './recordDecoder.js';
