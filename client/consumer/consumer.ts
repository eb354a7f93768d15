// The bundled consumer: manual assignment (assign) or consumer-group membership (subscribe).
//
// subscribe(topics, {groupId, ...}) runs a GroupMembership (groupSubscription.ts): on each
// assignment the partitions start at the group's committed offsets (else autoOffsetReset); before
// a rebalance, on close, and every autoCommitIntervalMs the positions of consumed records are
// committed (autoCommit, default true); commit() does it on demand. close() commits, leaves the
// group and closes the connections.
//
//   assign([{topic, partition, offset?}]) -> per partition: position (next offset handed to the
//   user) and fetchOffset (next offset to ask for; ahead of position while data is prefetched)
//   (positions.ts) -> one Fetch in flight per leader broker, the answer kept raw in a FIFO of
//   chunks, the next Fetch sent at once while heldBytes is below prefetchMaxBytes
//   (fetchPipeline.ts, prefetchBuffer.ts) -> records()/batches() take a chunk, check each batch's
//   CRC, inflate gzip, and hand out records or batches (iterators.ts).
//
// This class owns the Cluster (it closes it, last) and wires the modules together; beyond checking
// which call may follow which, it delegates.
import { Cluster } from '../cluster.js';
import { ApiKey } from '../connection.js';
import { KafkaConfigError } from '../errors.js';
import type { GroupMembership } from '../groupMembership.js';
import type { ConsumerRecord, RecordBatch } from '../recordDecoder.js';
import type { TopicPartition } from '../types.js';
import { FetchPipeline } from './fetchPipeline.js';
import { GroupSubscription } from './groupSubscription.js';
import { BatchIterator, RecordIterator } from './iterators.js';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP } from './offsetLookup.js';
import { resolveConsumerOptions, resolveSubscribeOptions, type ConsumerOptions, type ConsumerSettings, type DeserializedBy, type DeserializerChoice, type IterateOptions, type SubscribeOptions } from './options.js';
import { PartitionPositions, type OffsetInput, type TopicPartitionOffset } from './positions.js';
import { PrefetchBuffer } from './prefetchBuffer.js';

export { KafkaOffsetOutOfRangeError, KafkaRecordDeserializationError } from './errors.js';
export { CONSUMER_DEFAULTS, SUBSCRIBE_DEFAULTS, type AutoOffsetReset, type ConsumerOptions, type DeserializedBy, type DeserializerFor, type IsolationLevel, type IterateOptions, type SubscribeOptions } from './options.js';
export type { OffsetInput, TopicPartitionOffset } from './positions.js';

/**
 * A consumer whose records() keys and values are typed by the deserializers given: Buffer by
 * default, string for 'string', unknown for 'json' and 'msgpack', T for a Deserializer<T>.
 */
export function createConsumer<KC extends DeserializerChoice | undefined = undefined, VC extends DeserializerChoice | undefined = undefined>(
  options: Omit<ConsumerOptions, 'keyDeserializer' | 'valueDeserializer'> & { keyDeserializer?: KC; valueDeserializer?: VC },
): Consumer<DeserializedBy<KC>, DeserializedBy<VC>> {
  // Sound: DeserializedBy<C> is by definition what C produces, so C is a DeserializerFor<DeserializedBy<C>>.
  return new Consumer(options as ConsumerOptions<DeserializedBy<KC>, DeserializedBy<VC>>);
}

export class Consumer<K = Buffer, V = Buffer> {
  private readonly settings: ConsumerSettings<K, V>;
  private readonly cluster: Cluster;
  private readonly positions = new PartitionPositions();
  private readonly buffer = new PrefetchBuffer();
  private readonly pipeline: FetchPipeline;
  private group: GroupSubscription | null = null;

  constructor(options: ConsumerOptions<K, V>) {
    this.settings = resolveConsumerOptions(options);
    this.cluster = new Cluster({
      bootstrapServers: options.bootstrapServers,
      clientId: this.settings.clientId,
      requestTimeoutMs: this.settings.requestTimeoutMs,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      requiredApis: [ApiKey.Fetch, ApiKey.ListOffsets],
      allowAutoTopicCreation: false,
    });
    this.pipeline = new FetchPipeline(this.settings, this.cluster, this.positions, this.buffer);
  }

  /** Raw bytes of fetched, not yet consumed data held now. */
  get heldBytes(): number {
    return this.buffer.heldBytes;
  }

  /** The most heldBytes ever reached (for tests of the prefetch bound). */
  get maxHeldBytes(): number {
    return this.buffer.maxHeldBytes;
  }

  /** Replaces the assignment. Partitions kept keep their position unless an offset is given. */
  assign(partitions: readonly TopicPartitionOffset[]): void {
    this.pipeline.checkOpen();
    if (this.group !== null) throw new KafkaConfigError('assign() cannot be used after subscribe(): the group assigns the partitions');
    this.pipeline.replaceAssignment(partitions);
  }

  /**
   * Joins consumer group `groupId` for these topics; the group assigns the partitions (records()
   * and batches() iterate them as they come and go). Once per consumer; not with assign().
   */
  subscribe(topics: readonly string[], options: SubscribeOptions): void {
    this.pipeline.checkOpen();
    if (this.group !== null) throw new KafkaConfigError('subscribe() was already called on this consumer');
    if (this.positions.size > 0) throw new KafkaConfigError('subscribe() cannot be used after assign(): assign([]) first');
    const subscription = resolveSubscribeOptions(topics, options, this.settings.requestTimeoutMs);
    this.group = new GroupSubscription(subscription, this.settings, this.cluster, this.positions, this.pipeline);
    this.group.start();
  }

  /** The group membership after subscribe() (member id, generation), else null. */
  get groupMembership(): GroupMembership | null {
    return this.group?.membership ?? null;
  }

  /**
   * Commits the positions of consumed records (the offset after the last record handed out) of
   * the assigned partitions to the group. Throws KafkaCommitFailedError when the group rebalanced.
   */
  async commit(): Promise<void> {
    this.pipeline.checkOpen();
    if (this.group === null) throw new KafkaConfigError('commit() needs subscribe() (a consumer group)');
    await this.group.commit();
  }

  assignment(): TopicPartition[] {
    return this.positions.assignment();
  }

  /** The next fetch starts at `offset` for this partition; prefetched data of it is dropped. */
  seek(topic: string, partition: number, offset: OffsetInput): void {
    this.pipeline.seek(topic, partition, offset);
  }

  /** Seeks to the log start offset of each partition (all assigned when none given). */
  seekToBeginning(partitions?: readonly TopicPartition[]): Promise<void> {
    return this.pipeline.seekByTimestamp(partitions, EARLIEST_TIMESTAMP);
  }

  /** Seeks to the log end offset (the next record to be written). */
  seekToEnd(partitions?: readonly TopicPartition[]): Promise<void> {
    return this.pipeline.seekByTimestamp(partitions, LATEST_TIMESTAMP);
  }

  /** Seeks to the first record with a timestamp >= `timestampMs` (the log end when there is none). */
  seekToTimestamp(timestampMs: number, partitions?: readonly TopicPartition[]): Promise<void> {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) return Promise.reject(new KafkaConfigError(`timestampMs must be a non-negative integer, got ${timestampMs}`));
    return this.pipeline.seekByTimestamp(partitions, BigInt(timestampMs));
  }

  /** No more records of these partitions until resume(); their prefetched data is dropped (fetched again). */
  pause(partitions: readonly TopicPartition[]): void {
    this.pipeline.pause(partitions);
  }

  resume(partitions: readonly TopicPartition[]): void {
    this.pipeline.resume(partitions);
  }

  paused(): TopicPartition[] {
    return this.positions.paused();
  }

  /** The offset of the next record the iterators will hand out; null while it is being reset. */
  position(topic: string, partition: number): bigint | null {
    return this.positions.position(topic, partition);
  }

  /** Records of every assigned, unpaused partition, in fetch order (per partition: offset order). */
  records(options: IterateOptions = {}): AsyncIterableIterator<ConsumerRecord<K, V>> {
    return new RecordIterator<K, V>(this.pipeline, options.idleTimeoutMs, this.settings.keyDeserializer, this.settings.valueDeserializer);
  }

  /** Batches (records not materialised; read them with a RecordCursor or batchRecords()). */
  batches(options: IterateOptions = {}): AsyncIterableIterator<RecordBatch> {
    return new BatchIterator(this.pipeline, options.idleTimeoutMs);
  }

  /**
   * Connects and loads the metadata of the assigned topics (iteration does it when needed; this
   * lets a caller fail early, or time what comes after).
   */
  connect(): Promise<void> {
    return this.pipeline.connect();
  }

  /**
   * Stops fetching and ends every iterator. Outstanding Fetches (reads only, possibly long polls)
   * are abandoned by closing their connections rather than awaited; other requests are awaited
   * (bounded by their timeouts).
   */
  async close(): Promise<void> {
    if (this.pipeline.isClosed) return;
    const group = this.group;
    const finalOffsets = group !== null ? group.stopCommitting() : [];
    this.pipeline.close();
    if (group !== null) await group.leave(finalOffsets);
    await this.pipeline.settled();
    await this.cluster.close();
  }

  get isClosed(): boolean {
    return this.pipeline.isClosed;
  }
}
