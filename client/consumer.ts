// The bundled consumer: manual assignment (assign) or consumer-group membership (subscribe).
//
// subscribe(topics, {groupId, ...}) runs a GroupMembership (client/groupMembership.ts): on each
// assignment the partitions start at the group's committed offsets (else autoOffsetReset); before
// a rebalance (eager: every partition is given up), on close, and every autoCommitIntervalMs the
// positions of consumed records are committed (autoCommit, default true); commit() does it on
// demand. close() commits, leaves the group and closes the connections.
//
//   assign([{topic, partition, offset?}]) -> per partition: position (next offset handed to the
//   user) and fetchOffset (next offset to ask for; ahead of position while data is prefetched)
//   -> one Fetch in flight per leader broker, for every assigned, unpaused, positioned partition
//   with no fetch outstanding -> the answer is walked (headers only) to move fetchOffset, kept raw
//   in a FIFO of chunks -> the next Fetch goes out at once (pipelining) while heldBytes (raw bytes
//   of unconsumed chunks) is below prefetchMaxBytes -> records()/batches() take a chunk, check
//   each batch's CRC, inflate gzip, and hand out records or batches.
//
// Bounds: heldBytes <= prefetchMaxBytes + one response (maxBytes) per broker; every request has a
// timeout (requestTimeoutMs, plus maxWaitMs for Fetch); retriable errors refresh metadata and back
// off (retryBackoffMs doubling to retryBackoffMaxMs). OFFSET_OUT_OF_RANGE resets the position per
// autoOffsetReset ('none': the iterator throws KafkaOffsetOutOfRangeError and the partition waits
// for a seek). A corrupt batch makes the iterator throw KafkaCorruptRecordError after the records
// before it; the partition then waits for a seek.
//
// Seeks bump the partition's epoch: answers and chunks of an older epoch are dropped.
//
// keyDeserializer/valueDeserializer (records() only; batches() stay raw) turn each non-null key and
// value into the application's type as the record is handed out. One that throws makes the
// iterator throw KafkaRecordDeserializationError (topic, partition, offset); the position stays at
// that record and the partition is fetched again from there, so the user decides: seek past it
// (offset + 1) or fix the deserializer.
import { ErrorCode } from '../protocol/errors.js';
import {
  decodeFetchResponse,
  decodeListOffsetsResponse,
  encodeFetchRequest,
  encodeListOffsetsRequest,
  type FetchRequestTopic,
  type FetchResponse,
  type ListOffsetsResponse,
} from '../protocol/generated/index.js';
import { Cluster } from './cluster.js';
import { ApiKey, type BrokerConnection } from './connection.js';
import { KafkaClientError, KafkaClosedError, KafkaConfigError, KafkaProtocolError, isRetriable } from './errors.js';
import { resolveAssignors } from './assignors.js';
import { GroupMembership } from './groupMembership.js';
import { RecordCursor, decodeFetchedBatches, scanFetchedRecords, type ConsumerRecord, type RecordBatch } from './recordDecoder.js';
import { deserializers, KafkaSerializationError, type Deserializer, type SerializerName } from './serializers.js';
import type { Assignor, AssignorName, TopicPartition } from './types.js';

export type AutoOffsetReset = 'earliest' | 'latest' | 'none';
export type IsolationLevel = 'read_uncommitted' | 'read_committed';
export type OffsetInput = bigint | number;

/** What the built-in deserializers produce. */
interface BuiltinDeserializerOutputs {
  bytes: Buffer;
  string: string;
  json: unknown;
  msgpack: unknown;
}

/** The deserializers that produce a T: a Deserializer<T>, or a built-in one whose output is a T. */
export type DeserializerFor<T> = Deserializer<T> | { [N in SerializerName]: BuiltinDeserializerOutputs[N] extends T ? N : never }[SerializerName];

/** What records() hands out as key or value for a deserializer choice (none: the bytes). */
export type DeserializedBy<C> = C extends Deserializer<infer T> ? T : C extends SerializerName ? BuiltinDeserializerOutputs[C] : Buffer;

export interface ConsumerOptions<K = Buffer, V = Buffer> {
  bootstrapServers: readonly string[];
  clientId?: string;
  /** Fetch maxBytes (whole response). Default 50 MiB, as Kafka. */
  maxBytes?: number;
  /** Fetch partitionMaxBytes. Default 1 MiB, as Kafka. */
  maxPartitionBytes?: number;
  /** How long the broker may hold a Fetch for minBytes. Default 500 ms. */
  maxWaitMs?: number;
  /** Default 1. */
  minBytes?: number;
  /** Default 'read_committed' (kafkajs's default; the broker serves no transactions yet, so both read the same records). */
  isolationLevel?: IsolationLevel;
  /** Raw bytes of fetched, unconsumed data held before fetching pauses. Default 64 MiB. */
  prefetchMaxBytes?: number;
  /** Per request (Fetch adds maxWaitMs). Default 30 s. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Where a partition without a valid position starts. Default 'latest'. */
  autoOffsetReset?: AutoOffsetReset;
  /** First backoff after a retriable error, doubled up to retryBackoffMaxMs. Default 100 / 1000. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Check each batch's CRC-32C. Default true. */
  checkCrcs?: boolean;
  /** How records() reads keys: 'bytes' (default: the Buffer as received), 'string', 'json', 'msgpack' or a Deserializer. Null stays null. */
  keyDeserializer?: DeserializerFor<K>;
  /** How records() reads values; as keyDeserializer. */
  valueDeserializer?: DeserializerFor<V>;
}

/**
 * A key or value its deserializer refused (a KafkaSerializationError naming where). The position
 * stays at this record: seek to offset + 1 to skip it.
 */
export class KafkaRecordDeserializationError extends KafkaSerializationError {
  override readonly name = 'KafkaRecordDeserializationError';
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly field: 'key' | 'value';

  constructor(topic: string, partition: number, offset: number, field: 'key' | 'value', format: string, cause: unknown) {
    const reason = cause instanceof KafkaSerializationError && cause.message.startsWith(`${cause.format}: `) ? cause.message.slice(cause.format.length + 2) : cause instanceof Error ? cause.message : String(cause);
    super(format, `cannot read the ${field} of ${topic}-${partition} at offset ${offset}: ${reason}`);
    this.topic = topic;
    this.partition = partition;
    this.offset = BigInt(offset);
    this.field = field;
    this.cause = cause;
  }
}

// Defined in types.ts (assignors.ts and groupMembership.ts share it); still importable from here.
export type { TopicPartition } from './types.js';

export interface TopicPartitionOffset extends TopicPartition {
  /** Start here; without it, autoOffsetReset decides. */
  offset?: OffsetInput;
}

export interface SubscribeOptions {
  groupId: string;
  /** Default 45 s (Kafka's); the broker bounds it (group.min/max.session.timeout.ms). */
  sessionTimeoutMs?: number;
  /** How long the coordinator waits for members to rejoin. Default 5 min (Kafka's max.poll.interval.ms). */
  rebalanceTimeoutMs?: number;
  /** Default 3 s. Must be below sessionTimeoutMs. */
  heartbeatIntervalMs?: number;
  /** In order of preference. Default ['range', 'roundrobin']. */
  assignors?: ReadonlyArray<AssignorName | Assignor>;
  /** Commit consumed positions every autoCommitIntervalMs, before a rebalance and on close. Default true. */
  autoCommit?: boolean;
  /** Default 5000. */
  autoCommitIntervalMs?: number;
}

export const SUBSCRIBE_DEFAULTS = {
  sessionTimeoutMs: 45_000,
  rebalanceTimeoutMs: 300_000,
  heartbeatIntervalMs: 3_000,
  assignors: ['range', 'roundrobin'] as ReadonlyArray<AssignorName>,
  autoCommit: true,
  autoCommitIntervalMs: 5_000,
} as const;

export interface IterateOptions {
  /** End the iteration (done) after this long without data. Default: wait until close(). */
  idleTimeoutMs?: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;
export const CONSUMER_DEFAULTS = {
  maxBytes: 50 * MIB,
  maxPartitionBytes: 1 * MIB,
  maxWaitMs: 500,
  minBytes: 1,
  isolationLevel: 'read_committed' as IsolationLevel,
  prefetchMaxBytes: 64 * MIB,
  requestTimeoutMs: 30_000,
  autoOffsetReset: 'latest' as AutoOffsetReset,
  retryBackoffMs: 100,
  retryBackoffMaxMs: 1_000,
} as const;
const MAX_BYTES_LIMIT = 2 ** 31 - 1;
const MAX_WAIT_LIMIT_MS = 300_000;
const MAX_ASSIGNED_PARTITIONS = 100_000;
/** Records handed out by an iterator between two turns of the event loop. */
const YIELD_EVERY_RECORDS = 1024;
const LATEST_TIMESTAMP = -1n;
const EARLIEST_TIMESTAMP = -2n;

/** OFFSET_OUT_OF_RANGE with autoOffsetReset 'none' (or no position and 'none'). */
export class KafkaOffsetOutOfRangeError extends KafkaClientError {
  override readonly name = 'KafkaOffsetOutOfRangeError';

  constructor(readonly topic: string, readonly partition: number, readonly offset: number | null) {
    super(
      offset === null
        ? `${topic}-${partition} has no position and autoOffsetReset is 'none': seek first`
        : `offset ${offset} is out of range for ${topic}-${partition} and autoOffsetReset is 'none': seek to a valid offset`,
      false,
    );
  }
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  /** Next offset handed to the user; -1 while a reset (ListOffsets) is pending. */
  position: number;
  /** Next offset to fetch. */
  fetchOffset: number;
  paused: boolean;
  epoch: number;
  fetching: boolean;
  resetting: boolean;
  /** Set by a 'none' out-of-range or a corrupt batch: not fetched until a seek. */
  failed: Error | null;
  backoffUntilMs: number;
  backoffMs: number;
  assigned: boolean;
}

interface Chunk {
  state: PartitionState;
  epoch: number;
  fetchOffset: number;
  records: Buffer;
  nextOffset: number;
  bytes: number;
}

type DeserializerChoice = SerializerName | Deserializer;

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
  private readonly maxBytes: number;
  private readonly maxPartitionBytes: number;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly isolationLevel: 0 | 1;
  private readonly prefetchMaxBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly autoOffsetReset: AutoOffsetReset;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;
  private readonly checkCrcs: boolean;
  /** null: the bytes as they are (no call per record). */
  private readonly keyDeserializer: Deserializer<K> | null;
  private readonly valueDeserializer: Deserializer<V> | null;
  private readonly cluster: Cluster;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly chunks: Chunk[] = [];
  /** Errors for the iterator to throw, in order of arrival. */
  private readonly errors: Error[] = [];
  private readonly fetchingNodes = new Set<number>();
  private readonly nodeBackoffUntilMs = new Map<number, number>();
  private heldBytesNow = 0;
  private maxHeldBytesSeen = 0;
  private waiters: Array<() => void> = [];
  private pumpScheduled = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAtMs = 0;
  private readonly operations = new Set<Promise<void>>();
  /** Connections Fetches went out on: close() drops them instead of waiting out long polls. */
  private readonly fetchConnections = new Set<BrokerConnection>();
  private closed = false;
  private readonly connectTimeoutMs: number | undefined;
  private readonly clientId: string;
  private group: GroupMembership | null = null;
  private autoCommit = false;
  private autoCommitTimer: NodeJS.Timeout | null = null;
  /** Offsets committed (or fetched as committed) per partition key, to skip unchanged commits. */
  private readonly committedOffsets = new Map<string, number>();

  constructor(options: ConsumerOptions<K, V>) {
    this.maxBytes = checkInteger('maxBytes', options.maxBytes ?? CONSUMER_DEFAULTS.maxBytes, 1, MAX_BYTES_LIMIT);
    this.maxPartitionBytes = checkInteger('maxPartitionBytes', options.maxPartitionBytes ?? CONSUMER_DEFAULTS.maxPartitionBytes, 1, MAX_BYTES_LIMIT);
    this.maxWaitMs = checkInteger('maxWaitMs', options.maxWaitMs ?? CONSUMER_DEFAULTS.maxWaitMs, 0, MAX_WAIT_LIMIT_MS);
    this.minBytes = checkInteger('minBytes', options.minBytes ?? CONSUMER_DEFAULTS.minBytes, 0, MAX_BYTES_LIMIT);
    const isolation = options.isolationLevel ?? CONSUMER_DEFAULTS.isolationLevel;
    if (isolation !== 'read_committed' && isolation !== 'read_uncommitted') throw new KafkaConfigError(`isolationLevel must be 'read_committed' or 'read_uncommitted', got ${String(isolation)}`);
    this.isolationLevel = isolation === 'read_committed' ? 1 : 0;
    this.prefetchMaxBytes = checkInteger('prefetchMaxBytes', options.prefetchMaxBytes ?? CONSUMER_DEFAULTS.prefetchMaxBytes, 1, 2 ** 40);
    this.requestTimeoutMs = checkInteger('requestTimeoutMs', options.requestTimeoutMs ?? CONSUMER_DEFAULTS.requestTimeoutMs, 1, 0x7fffffff - MAX_WAIT_LIMIT_MS);
    const reset = options.autoOffsetReset ?? CONSUMER_DEFAULTS.autoOffsetReset;
    if (reset !== 'earliest' && reset !== 'latest' && reset !== 'none') throw new KafkaConfigError(`autoOffsetReset must be 'earliest', 'latest' or 'none', got ${String(reset)}`);
    this.autoOffsetReset = reset;
    this.retryBackoffMs = checkInteger('retryBackoffMs', options.retryBackoffMs ?? CONSUMER_DEFAULTS.retryBackoffMs, 0, 0x7fffffff);
    this.retryBackoffMaxMs = checkInteger('retryBackoffMaxMs', options.retryBackoffMaxMs ?? CONSUMER_DEFAULTS.retryBackoffMaxMs, this.retryBackoffMs, 0x7fffffff);
    this.checkCrcs = options.checkCrcs ?? true;
    this.keyDeserializer = checkDeserializer('keyDeserializer', options.keyDeserializer) as Deserializer<K> | null;
    this.valueDeserializer = checkDeserializer('valueDeserializer', options.valueDeserializer) as Deserializer<V> | null;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.clientId = options.clientId ?? 'tidelog-consumer';
    this.cluster = new Cluster({
      bootstrapServers: options.bootstrapServers,
      clientId: options.clientId ?? 'tidelog-consumer',
      requestTimeoutMs: this.requestTimeoutMs,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      requiredApis: [ApiKey.Fetch, ApiKey.ListOffsets],
      allowAutoTopicCreation: false,
    });
  }

  /** Raw bytes of fetched, not yet consumed data held now. */
  get heldBytes(): number {
    return this.heldBytesNow;
  }

  /** The most heldBytes ever reached (for tests of the prefetch bound). */
  get maxHeldBytes(): number {
    return this.maxHeldBytesSeen;
  }

  /** Replaces the assignment. Partitions kept keep their position unless an offset is given. */
  assign(partitions: readonly TopicPartitionOffset[]): void {
    this.checkOpen();
    if (this.group !== null) throw new KafkaConfigError('assign() cannot be used after subscribe(): the group assigns the partitions');
    this.replaceAssignment(partitions);
  }

  /**
   * Joins consumer group `groupId` for these topics; the group assigns the partitions (records()
   * and batches() iterate them as they come and go). Once per consumer; not with assign().
   */
  subscribe(topics: readonly string[], options: SubscribeOptions): void {
    this.checkOpen();
    if (this.group !== null) throw new KafkaConfigError('subscribe() was already called on this consumer');
    if (this.partitions.size > 0) throw new KafkaConfigError('subscribe() cannot be used after assign(): assign([]) first');
    if (!Array.isArray(topics) || topics.length === 0 || topics.some((topic) => typeof topic !== 'string' || topic.length === 0)) {
      throw new KafkaConfigError('subscribe() takes a non-empty array of topic names');
    }
    if (typeof options !== 'object' || options === null || typeof options.groupId !== 'string' || options.groupId.length === 0) {
      throw new KafkaConfigError('subscribe() needs options.groupId, a non-empty string');
    }
    const sessionTimeoutMs = checkInteger('sessionTimeoutMs', options.sessionTimeoutMs ?? SUBSCRIBE_DEFAULTS.sessionTimeoutMs, 1, 0x7fffffff);
    const rebalanceTimeoutMs = checkInteger('rebalanceTimeoutMs', options.rebalanceTimeoutMs ?? SUBSCRIBE_DEFAULTS.rebalanceTimeoutMs, 1, 0x7fffffff - this.requestTimeoutMs);
    const heartbeatIntervalMs = checkInteger('heartbeatIntervalMs', options.heartbeatIntervalMs ?? Math.min(SUBSCRIBE_DEFAULTS.heartbeatIntervalMs, Math.floor(sessionTimeoutMs / 3)), 1, sessionTimeoutMs - 1);
    const autoCommitIntervalMs = checkInteger('autoCommitIntervalMs', options.autoCommitIntervalMs ?? SUBSCRIBE_DEFAULTS.autoCommitIntervalMs, 1, 0x7fffffff);
    const assignors = resolveAssignors(options.assignors ?? SUBSCRIBE_DEFAULTS.assignors);
    this.autoCommit = options.autoCommit ?? SUBSCRIBE_DEFAULTS.autoCommit;
    if (typeof this.autoCommit !== 'boolean') throw new KafkaConfigError(`autoCommit must be a boolean, got ${String(options.autoCommit)}`);
    this.group = new GroupMembership({
      cluster: this.cluster,
      groupId: options.groupId,
      topics: [...new Set(topics)],
      assignors,
      clientId: this.clientId,
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      heartbeatIntervalMs,
      requestTimeoutMs: this.requestTimeoutMs,
      ...(this.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.connectTimeoutMs } : {}),
      retryBackoffMs: this.retryBackoffMs,
      retryBackoffMaxMs: this.retryBackoffMaxMs,
      onRevoke: (partitions, lost) => this.onRevoke(partitions, lost),
      onAssign: (partitions) => this.onAssign(partitions),
      beforeRejoin: () => (this.autoCommit && !this.closed ? this.commitConsumed().catch(() => undefined) : Promise.resolve()),
      onError: (error) => this.fail(error),
    });
    this.group.start();
    if (this.autoCommit) {
      this.autoCommitTimer = setInterval(() => {
        void this.commitConsumed().catch(() => undefined); // retried on the next tick
      }, autoCommitIntervalMs);
    }
  }

  /** The group membership after subscribe() (member id, generation), else null. */
  get groupMembership(): GroupMembership | null {
    return this.group;
  }

  /**
   * Commits the positions of consumed records (the offset after the last record handed out) of
   * the assigned partitions to the group. Throws KafkaCommitFailedError when the group rebalanced.
   */
  async commit(): Promise<void> {
    this.checkOpen();
    if (this.group === null) throw new KafkaConfigError('commit() needs subscribe() (a consumer group)');
    await this.commitConsumed();
  }

  private consumedPositions(): Array<TopicPartition & { offset: number }> {
    const out: Array<TopicPartition & { offset: number }> = [];
    for (const state of this.partitions.values()) {
      if (state.position < 0 || this.committedOffsets.get(state.key) === state.position) continue;
      out.push({ topic: state.topic, partition: state.partition, offset: state.position });
    }
    return out;
  }

  private async commitConsumed(offsets: Array<TopicPartition & { offset: number }> = this.consumedPositions()): Promise<void> {
    const group = this.group;
    if (group === null || offsets.length === 0) return;
    await group.commit(offsets);
    for (const entry of offsets) this.committedOffsets.set(keyOf(entry.topic, entry.partition), entry.offset);
  }

  /** Eager: every partition; cooperative: only those lost (the others keep being fetched). */
  private async onRevoke(partitions: TopicPartition[], lost: boolean): Promise<void> {
    const revoked = new Set(partitions.map((tp) => keyOf(tp.topic, tp.partition)));
    const offsets = this.consumedPositions().filter((entry) => revoked.has(keyOf(entry.topic, entry.partition)));
    // nothing more of them is handed out from here
    this.replaceAssignment(this.assignment().filter((tp) => !revoked.has(keyOf(tp.topic, tp.partition))));
    if (this.autoCommit && !this.closed && !lost) await this.commitConsumed(offsets).catch(() => undefined);
    for (const key of revoked) this.committedOffsets.delete(key);
  }

  /** The whole new assignment: partitions kept keep their positions, new ones start at the committed offset. */
  private async onAssign(partitions: TopicPartition[]): Promise<void> {
    if (this.closed) return;
    const added = partitions.filter((tp) => !this.partitions.has(keyOf(tp.topic, tp.partition)));
    let committed: Map<string, number>;
    try {
      committed = await this.group!.committed(added);
    } catch {
      if (!this.closed) this.group!.requestRejoin(); // no starting positions: try again
      return;
    }
    if (this.closed) return;
    this.replaceAssignment(partitions.map((tp) => {
      const offset = committed.get(`${tp.topic}\u0000${tp.partition}`);
      if (offset === undefined) return { topic: tp.topic, partition: tp.partition };
      this.committedOffsets.set(keyOf(tp.topic, tp.partition), offset);
      return { topic: tp.topic, partition: tp.partition, offset };
    }));
  }

  private replaceAssignment(partitions: readonly TopicPartitionOffset[]): void {
    if (!Array.isArray(partitions)) throw new KafkaConfigError('assign() takes an array of {topic, partition, offset?}');
    if (partitions.length > MAX_ASSIGNED_PARTITIONS) throw new KafkaConfigError(`at most ${MAX_ASSIGNED_PARTITIONS} partitions can be assigned, got ${partitions.length}`);
    const next = new Map<string, PartitionState>();
    for (const entry of partitions) {
      checkTopicPartition(entry);
      const key = keyOf(entry.topic, entry.partition);
      if (next.has(key)) throw new KafkaConfigError(`${key} is assigned twice`);
      const state = this.partitions.get(key) ?? newState(entry.topic, entry.partition, key);
      next.set(key, state);
    }
    for (const [key, state] of this.partitions) {
      if (next.has(key)) continue;
      state.assigned = false;
      state.epoch++;
      this.dropChunks(state);
    }
    this.partitions.clear();
    for (const [key, state] of next) {
      state.assigned = true;
      this.partitions.set(key, state);
    }
    for (const entry of partitions) {
      if (entry.offset !== undefined) this.seek(entry.topic, entry.partition, entry.offset);
    }
    this.schedulePump();
  }

  assignment(): TopicPartition[] {
    return [...this.partitions.values()].map((state) => ({ topic: state.topic, partition: state.partition }));
  }

  /** The next fetch starts at `offset` for this partition; prefetched data of it is dropped. */
  seek(topic: string, partition: number, offset: OffsetInput): void {
    this.checkOpen();
    const state = this.stateOf(topic, partition);
    const value = typeof offset === 'bigint' ? Number(offset) : offset;
    if (!Number.isSafeInteger(value) || value < 0) throw new KafkaConfigError(`offset must be a non-negative integer, got ${String(offset)}`);
    state.epoch++;
    state.position = value;
    state.fetchOffset = value;
    state.failed = null;
    state.resetting = false;
    state.backoffMs = 0;
    state.backoffUntilMs = 0;
    this.dropChunks(state);
    this.schedulePump();
  }

  /** Seeks to the log start offset of each partition (all assigned when none given). */
  seekToBeginning(partitions?: readonly TopicPartition[]): Promise<void> {
    return this.seekByTimestamp(partitions, EARLIEST_TIMESTAMP);
  }

  /** Seeks to the log end offset (the next record to be written). */
  seekToEnd(partitions?: readonly TopicPartition[]): Promise<void> {
    return this.seekByTimestamp(partitions, LATEST_TIMESTAMP);
  }

  /** Seeks to the first record with a timestamp >= `timestampMs` (the log end when there is none). */
  seekToTimestamp(timestampMs: number, partitions?: readonly TopicPartition[]): Promise<void> {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) return Promise.reject(new KafkaConfigError(`timestampMs must be a non-negative integer, got ${timestampMs}`));
    return this.seekByTimestamp(partitions, BigInt(timestampMs));
  }

  /** No more records of these partitions until resume(); their prefetched data is dropped (fetched again). */
  pause(partitions: readonly TopicPartition[]): void {
    for (const entry of partitions) {
      const state = this.stateOf(entry.topic, entry.partition);
      state.paused = true;
      this.rewind(state);
    }
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const entry of partitions) this.stateOf(entry.topic, entry.partition).paused = false;
    this.schedulePump();
    this.wake();
  }

  paused(): TopicPartition[] {
    return [...this.partitions.values()].filter((state) => state.paused).map((state) => ({ topic: state.topic, partition: state.partition }));
  }

  /** The offset of the next record the iterators will hand out; null while it is being reset. */
  position(topic: string, partition: number): bigint | null {
    const state = this.stateOf(topic, partition);
    return state.position < 0 ? null : BigInt(state.position);
  }

  /** Records of every assigned, unpaused partition, in fetch order (per partition: offset order). */
  records(options: IterateOptions = {}): AsyncIterableIterator<ConsumerRecord<K, V>> {
    return new RecordIterator<K, V>(this, options.idleTimeoutMs, this.keyDeserializer, this.valueDeserializer);
  }

  /** Batches (records not materialised; read them with a RecordCursor or batchRecords()). */
  batches(options: IterateOptions = {}): AsyncIterableIterator<RecordBatch> {
    return new BatchIterator(this, options.idleTimeoutMs);
  }

  /**
   * Connects and loads the metadata of the assigned topics (iteration does it when needed; this
   * lets a caller fail early, or time what comes after).
   */
  async connect(): Promise<void> {
    this.checkOpen();
    await this.cluster.anyConnection();
    for (const topic of new Set([...this.partitions.values()].map((state) => state.topic))) {
      const metadata = await this.cluster.topic(topic);
      for (const nodeId of new Set(metadata.leaders)) this.fetchConnections.add(await this.cluster.connectionToNode(nodeId));
    }
  }

  /**
   * Stops fetching and ends every iterator. Outstanding Fetches (reads only, possibly long polls)
   * are abandoned by closing their connections rather than awaited; other requests are awaited
   * (bounded by their timeouts).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const group = this.group;
    const finalOffsets = group !== null && this.autoCommit ? this.consumedPositions() : [];
    if (this.autoCommitTimer !== null) clearInterval(this.autoCommitTimer);
    this.autoCommitTimer = null;
    this.closed = true;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wake();
    this.chunks.length = 0;
    this.heldBytesNow = 0;
    for (const connection of this.fetchConnections) connection.destroy(new KafkaClosedError('the consumer is closed'));
    this.fetchConnections.clear();
    if (group !== null) {
      await this.commitConsumed(finalOffsets).catch(() => undefined);
      await group.leave();
    }
    await Promise.all([...this.operations]);
    await this.cluster.close();
  }

  // -------------------------------------------------------------------------------------------
  // For the iterators

  /** @internal A chunk to read (its state current), an error to throw, or null (nothing yet). */
  takeChunk(): Chunk | Error | null {
    const error = this.errors.shift();
    if (error !== undefined) return error;
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (chunk.state.paused) continue;
      this.chunks.splice(i, 1);
      this.release(chunk.bytes);
      return chunk;
    }
    return null;
  }

  /** @internal Checks and inflates a chunk's batches; a corrupt batch stops its partition. */
  decodeChunk(chunk: Chunk): { batches: RecordBatch[]; error: Error | null } {
    const state = chunk.state;
    let decoded: { batches: RecordBatch[]; error: Error | null };
    try {
      decoded = decodeFetchedBatches(state.topic, state.partition, chunk.records, chunk.fetchOffset, this.checkCrcs);
    } catch (error) {
      decoded = { batches: [], error: error as Error };
    }
    if (decoded.error !== null) {
      // The partition restarts from the bad batch only after a seek past it.
      const badOffset = decoded.batches.length > 0 ? decoded.batches[decoded.batches.length - 1]!.lastOffset + 1 : chunk.fetchOffset;
      state.epoch++;
      state.fetchOffset = badOffset;
      state.failed = decoded.error;
      this.dropChunks(state);
      return { batches: decoded.batches, error: decoded.error };
    }
    return { batches: decoded.batches, error: null };
  }

  /** @internal Forgets what was fetched beyond the position: the next fetch starts there. */
  rewind(state: PartitionState): void {
    state.epoch++;
    this.dropChunks(state);
    if (state.position >= 0) state.fetchOffset = state.position;
    this.schedulePump();
  }

  /** @internal */
  isCurrent(chunk: Chunk, epoch: number): boolean {
    return chunk.state.epoch === epoch && chunk.state.assigned && !this.closed;
  }

  /** @internal */
  advance(state: PartitionState, epoch: number, position: number): void {
    if (state.epoch === epoch && position > state.position) state.position = position;
  }

  /** @internal Resolves when data, an error or close() arrives, or after timeoutMs. */
  waitForData(timeoutMs: number | undefined): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.schedulePump();
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const waiter = (): void => {
        if (timer !== null) clearTimeout(timer);
        resolve(true);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // -------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new KafkaClosedError('the consumer is closed');
  }

  private stateOf(topic: string, partition: number): PartitionState {
    const state = this.partitions.get(keyOf(topic, partition));
    if (state === undefined) throw new KafkaConfigError(`${keyOf(topic, partition)} is not assigned`);
    return state;
  }

  private wake(): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private release(bytes: number): void {
    this.heldBytesNow -= bytes;
    this.schedulePump(); // room for the next fetch
  }

  private dropChunks(state: PartitionState): void {
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const chunk = this.chunks[i]!;
      if (chunk.state !== state) continue;
      this.chunks.splice(i, 1);
      this.heldBytesNow -= chunk.bytes;
    }
  }

  private track(operation: Promise<void>): void {
    this.operations.add(operation);
    void operation.finally(() => this.operations.delete(operation));
  }

  private fail(error: Error): void {
    this.errors.push(error);
    this.wake();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private wakeAt(atMs: number): void {
    if (this.closed) return;
    if (this.wakeTimer !== null && this.wakeAtMs <= atMs) return;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.schedulePump();
    }, Math.max(atMs - Date.now(), 1));
  }

  /** Starts resets and fetches that may start now. Never throws. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    let earliest = Infinity;
    const byNode = new Map<number, PartitionState[]>();
    const resets: PartitionState[] = [];
    const missingTopics = new Set<string>();
    for (const state of this.partitions.values()) {
      if (state.failed !== null || state.fetching || state.resetting) continue;
      if (state.backoffUntilMs > now) {
        earliest = Math.min(earliest, state.backoffUntilMs);
        continue;
      }
      if (state.position < 0) {
        resets.push(state);
        continue;
      }
      if (state.paused) continue;
      const metadata = this.cluster.cachedTopic(state.topic);
      if (metadata === undefined) {
        missingTopics.add(state.topic);
        continue;
      }
      const leader = metadata.leaders[state.partition];
      if (leader === undefined) {
        this.failPartition(state, new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${state.key}: topic ${state.topic} has ${metadata.leaders.length} partitions`));
        continue;
      }
      let list = byNode.get(leader);
      if (list === undefined) byNode.set(leader, (list = []));
      list.push(state);
    }
    for (const topic of missingTopics) this.track(this.loadMetadata(topic));
    if (resets.length > 0) this.track(this.resetPositions(resets));
    if (this.heldBytesNow < this.prefetchMaxBytes) {
      for (const [nodeId, states] of byNode) {
        if (this.fetchingNodes.has(nodeId)) continue;
        const until = this.nodeBackoffUntilMs.get(nodeId) ?? 0;
        if (until > now) {
          earliest = Math.min(earliest, until);
          continue;
        }
        this.track(this.fetch(nodeId, states));
      }
    }
    if (earliest !== Infinity) this.wakeAt(earliest);
  }

  private failPartition(state: PartitionState, error: Error): void {
    state.failed = error;
    this.fail(error);
  }

  private backoff(state: PartitionState): void {
    state.backoffMs = state.backoffMs === 0 ? this.retryBackoffMs : Math.min(state.backoffMs * 2, this.retryBackoffMaxMs);
    state.backoffUntilMs = Date.now() + state.backoffMs;
    this.wakeAt(state.backoffUntilMs);
  }

  private async loadMetadata(topic: string): Promise<void> {
    try {
      await this.cluster.refreshTopic(topic);
    } catch (error) {
      if (this.closed) return;
      if (!isRetriable(error)) {
        for (const state of this.partitions.values()) if (state.topic === topic) this.failPartition(state, error as Error);
        return;
      }
      for (const state of this.partitions.values()) if (state.topic === topic) this.backoff(state);
    }
    this.schedulePump();
  }

  private async fetch(nodeId: number, states: PartitionState[]): Promise<void> {
    this.fetchingNodes.add(nodeId);
    const epochs = states.map((state) => state.epoch);
    const offsets = states.map((state) => state.fetchOffset);
    for (const state of states) state.fetching = true;
    let response: FetchResponse;
    try {
      const connection = await this.cluster.connectionToNode(nodeId);
      if (!this.fetchConnections.has(connection)) {
        for (const old of this.fetchConnections) if (old.closed) this.fetchConnections.delete(old);
        this.fetchConnections.add(connection);
      }
      const topics: FetchRequestTopic[] = [];
      for (let i = 0; i < states.length; i++) {
        const state = states[i]!;
        let topic = topics.find((t) => t.topic === state.topic);
        if (topic === undefined) topics.push((topic = { topic: state.topic, partitions: [] }));
        topic.partitions.push({ partition: state.partition, fetchOffset: BigInt(offsets[i]!), partitionMaxBytes: this.maxPartitionBytes, logStartOffset: -1n, currentLeaderEpoch: -1 });
      }
      const request = { replicaId: -1, maxWaitMs: this.maxWaitMs, minBytes: this.minBytes, maxBytes: this.maxBytes, isolationLevel: this.isolationLevel, sessionId: 0, sessionEpoch: -1, topics, forgottenTopicsData: [], rackId: '' };
      response = await connection.request(ApiKey.Fetch, (writer, version) => encodeFetchRequest(writer, version, request), decodeFetchResponse, {
        timeoutMs: this.requestTimeoutMs + this.maxWaitMs,
      });
      if (response.errorCode !== undefined && response.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(response.errorCode, `Fetch from broker ${nodeId}`);
      this.nodeBackoffUntilMs.delete(nodeId);
    } catch (error) {
      for (const state of states) state.fetching = false;
      this.fetchingNodes.delete(nodeId);
      if (this.closed) return;
      if (!isRetriable(error)) {
        for (const state of states) this.failPartition(state, error as Error);
        return;
      }
      for (const state of states) this.backoff(state);
      for (const topic of new Set(states.map((state) => state.topic))) this.track(this.loadMetadata(topic));
      return;
    }
    this.fetchingNodes.delete(nodeId);
    for (const state of states) state.fetching = false;
    if (this.closed) return;
    let arrived = false;
    for (const topicResponse of response.responses) {
      for (const data of topicResponse.partitions) {
        const index = states.findIndex((s) => s.topic === topicResponse.topic && s.partition === data.partitionIndex);
        if (index < 0) continue;
        const state = states[index]!;
        const fetchOffset = offsets[index]!;
        if (state.epoch !== epochs[index] || !state.assigned) continue; // sought or unassigned meanwhile
        if (data.errorCode === ErrorCode.NONE) {
          state.backoffMs = 0;
          const records = data.records;
          if (records === null || records.length === 0) continue;
          const scan = scanFetchedRecords(records, fetchOffset);
          if (scan.batchCount === 0) {
            // KIP-74 always returns one whole batch; a cut first batch means a bad length.
            this.failPartition(state, new KafkaClientError(`${state.key}: the Fetch at offset ${fetchOffset} returned ${records.length} bytes without a whole batch (maxPartitionBytes ${this.maxPartitionBytes})`, false));
            continue;
          }
          const bytes = scan.completeBytes;
          this.chunks.push({ state, epoch: state.epoch, fetchOffset, records: records.subarray(0, bytes), nextOffset: scan.nextOffset, bytes });
          this.heldBytesNow += bytes;
          if (this.heldBytesNow > this.maxHeldBytesSeen) this.maxHeldBytesSeen = this.heldBytesNow;
          state.fetchOffset = scan.nextOffset;
          arrived = true;
        } else if (data.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
          if (this.autoOffsetReset === 'none') {
            this.failPartition(state, new KafkaOffsetOutOfRangeError(state.topic, state.partition, fetchOffset));
          } else {
            state.epoch++;
            this.dropChunks(state);
            state.position = -1; // reset by the next pump
          }
        } else {
          const error = new KafkaProtocolError(data.errorCode, `Fetch of ${state.key} at offset ${fetchOffset}`);
          if (error.retriable) {
            this.backoff(state);
            this.track(this.loadMetadata(state.topic));
          } else {
            this.failPartition(state, error);
          }
        }
      }
    }
    if (arrived) this.wake();
    this.schedulePump();
  }

  /** autoOffsetReset for partitions without a position. */
  private async resetPositions(states: PartitionState[]): Promise<void> {
    if (this.autoOffsetReset === 'none') {
      for (const state of states) this.failPartition(state, new KafkaOffsetOutOfRangeError(state.topic, state.partition, null));
      return;
    }
    const timestamp = this.autoOffsetReset === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP;
    const epochs = states.map((state) => state.epoch);
    for (const state of states) state.resetting = true;
    try {
      const offsets = await this.listOffsets(states, timestamp);
      for (let i = 0; i < states.length; i++) {
        const state = states[i]!;
        state.resetting = false;
        if (state.epoch !== epochs[i]) continue;
        const offset = offsets[i]!;
        state.epoch++;
        state.position = offset;
        state.fetchOffset = offset;
        state.backoffMs = 0;
      }
    } catch (error) {
      for (const state of states) state.resetting = false;
      if (this.closed) return;
      if (!isRetriable(error)) {
        for (const state of states) this.failPartition(state, error as Error);
        return;
      }
      for (const state of states) this.backoff(state);
    }
    this.schedulePump();
  }

  private async seekByTimestamp(partitions: readonly TopicPartition[] | undefined, timestamp: bigint): Promise<void> {
    this.checkOpen();
    const states = partitions === undefined ? [...this.partitions.values()] : partitions.map((entry) => this.stateOf(entry.topic, entry.partition));
    if (states.length === 0) return;
    const epochs = states.map((state) => state.epoch);
    const deadline = Date.now() + this.requestTimeoutMs;
    let backoffMs = this.retryBackoffMs;
    for (;;) {
      try {
        const offsets = await this.listOffsets(states, timestamp);
        for (let i = 0; i < states.length; i++) {
          const state = states[i]!;
          if (state.epoch === epochs[i] && state.assigned) this.seek(state.topic, state.partition, offsets[i]!);
        }
        return;
      } catch (error) {
        if (!isRetriable(error) || this.closed || Date.now() + backoffMs > deadline) throw error;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, this.retryBackoffMaxMs);
    }
  }

  /** ListOffsets for each partition at its leader; the log end for a timestamp after every record. */
  private async listOffsets(states: readonly PartitionState[], timestamp: bigint): Promise<number[]> {
    const byNode = new Map<number, number[]>();
    for (let i = 0; i < states.length; i++) {
      const state = states[i]!;
      const metadata = await this.cluster.topic(state.topic);
      const leader = metadata.leaders[state.partition];
      if (leader === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${state.key}: topic ${state.topic} has ${metadata.leaders.length} partitions`);
      let list = byNode.get(leader);
      if (list === undefined) byNode.set(leader, (list = []));
      list.push(i);
    }
    const offsets = new Array<number>(states.length).fill(-1);
    const latest: number[] = [];
    await Promise.all([...byNode].map(async ([nodeId, indexes]) => {
      const connection = await this.cluster.connectionToNode(nodeId);
      const response = await this.listOffsetsAt(connection, indexes.map((i) => states[i]!), timestamp);
      for (const i of indexes) {
        const state = states[i]!;
        const answer = response.topics.find((t) => t.name === state.topic)?.partitions.find((p) => p.partitionIndex === state.partition);
        if (answer === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_SERVER_ERROR, `ListOffsets answered without ${state.key}`);
        if (answer.errorCode !== ErrorCode.NONE) {
          const error = new KafkaProtocolError(answer.errorCode, `ListOffsets of ${state.key}`);
          if (error.retriable) void this.cluster.refreshTopic(state.topic).catch(() => undefined);
          throw error;
        }
        const offset = Number(answer.offset ?? -1n);
        if (offset < 0) latest.push(i);
        else offsets[i] = offset;
      }
    }));
    if (latest.length > 0) {
      const ends = await this.listOffsets(latest.map((i) => states[i]!), LATEST_TIMESTAMP);
      latest.forEach((i, j) => (offsets[i] = ends[j]!));
    }
    return offsets;
  }

  private listOffsetsAt(connection: BrokerConnection, states: readonly PartitionState[], timestamp: bigint): Promise<ListOffsetsResponse> {
    const topics: Array<{ name: string; partitions: Array<{ partitionIndex: number; timestamp: bigint; currentLeaderEpoch: number }> }> = [];
    for (const state of states) {
      let topic = topics.find((t) => t.name === state.topic);
      if (topic === undefined) topics.push((topic = { name: state.topic, partitions: [] }));
      topic.partitions.push({ partitionIndex: state.partition, timestamp, currentLeaderEpoch: -1 });
    }
    const request = { replicaId: -1, isolationLevel: this.isolationLevel, topics };
    return connection.request(ApiKey.ListOffsets, (writer, version) => encodeListOffsetsRequest(writer, version, request), decodeListOffsetsResponse);
  }
}

// ---------------------------------------------------------------------------------------------
// Iterators: hand-written (not async generators) so a buffered record costs one resolved promise.

/**
 * The fetched chunks an iterator walks, one at a time: its decoded batches in order, then the
 * partition's position moves past the chunk, then an error found in it (a corrupt batch) is
 * thrown, after the good batches before it were handed out.
 */
class ChunkWalker {
  chunk: Chunk | null = null;
  private batches: RecordBatch[] = [];
  private batchIndex = 0;
  private pendingError: Error | null = null;

  constructor(private readonly consumer: Consumer<unknown, unknown>) {}

  nextBatch(): RecordBatch | undefined {
    return this.batches[this.batchIndex++];
  }

  /** The current chunk is used up: move its partition past it and report its error, if any. */
  finishChunk(): void {
    const chunk = this.chunk!;
    this.consumer.advance(chunk.state, chunk.epoch, chunk.nextOffset);
    this.chunk = null;
    if (this.pendingError !== null) {
      const error = this.pendingError;
      this.pendingError = null;
      throw error;
    }
  }

  /** Forgets the current chunk (its partition was sought or paused meanwhile). */
  drop(): void {
    this.chunk = null;
  }

  /** The iteration ends early: what was not handed out is fetched again by the next iterator. */
  release(): void {
    if (this.chunk !== null && this.consumer.isCurrent(this.chunk, this.chunk.epoch)) this.consumer.rewind(this.chunk.state);
    this.chunk = null;
  }

  /** Takes and decodes the next fetched chunk; false when none is ready. */
  loadNext(): boolean {
    const next = this.consumer.takeChunk();
    if (next === null) return false;
    if (next instanceof Error) throw next;
    const decoded = this.consumer.decodeChunk(next);
    this.chunk = next;
    this.batches = decoded.batches;
    this.batchIndex = 0;
    this.pendingError = decoded.error;
    if (decoded.error !== null) next.nextOffset = decoded.batches.length > 0 ? decoded.batches[decoded.batches.length - 1]!.lastOffset + 1 : next.fetchOffset;
    next.epoch = next.state.epoch; // decodeChunk bumps the epoch on a corrupt batch
    return true;
  }
}

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

/**
 * One record per next(). The fast path (the next record of the batch being read, its partition
 * not sought, paused or unassigned meanwhile: same epoch) costs a cursor step, the record object
 * and one resolved promise; everything else (next batch, next chunk, waiting, yielding to the
 * event loop) is in nextGeneral.
 */
class RecordIterator<K, V> implements AsyncIterableIterator<ConsumerRecord<K, V>> {
  private readonly cursor = new RecordCursor();
  private readonly walker: ChunkWalker;
  /** The partition of the batch the cursor reads, and the epoch of its chunk; null between batches. */
  private state: PartitionState | null = null;
  private epoch = 0;
  private untilYield = YIELD_EVERY_RECORDS;
  private done = false;
  private readonly deserializing: boolean;

  constructor(
    private readonly consumer: Consumer<unknown, unknown>,
    private readonly idleTimeoutMs: number | undefined,
    private readonly keyDeserializer: Deserializer<K> | null,
    private readonly valueDeserializer: Deserializer<V> | null,
  ) {
    this.walker = new ChunkWalker(consumer);
    this.deserializing = keyDeserializer !== null || valueDeserializer !== null;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    const state = this.state;
    if (state !== null && state.epoch === this.epoch && --this.untilYield > 0 && !this.consumer.isClosed) {
      try {
        if (this.cursor.next()) return Promise.resolve({ value: this.take(state), done: false });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.nextGeneral();
  }

  return(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    this.done = true;
    this.state = null;
    this.walker.release();
    return Promise.resolve(DONE);
  }

  private nextGeneral(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    if (this.done) return Promise.resolve(DONE);
    if (this.untilYield <= 0) {
      // Buffered records resolve at once, so a loop over them runs in microtasks only: without a
      // turn of the event loop now and then, no socket data is read and no next Fetch is sent
      // while a chunk is consumed, which would undo the pipelining.
      this.untilYield = YIELD_EVERY_RECORDS;
      return new Promise((resolve) => setImmediate(() => resolve(this.next())));
    }
    try {
      const record = this.nextBuffered();
      if (record !== null) return Promise.resolve({ value: record, done: false });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.nextSlow();
  }

  private async nextSlow(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    for (;;) {
      if (this.done || this.consumer.isClosed) return DONE;
      const record = this.nextBuffered();
      if (record !== null) return { value: record, done: false };
      if (!(await this.consumer.waitForData(this.idleTimeoutMs))) return DONE;
    }
  }

  /** The next record already fetched, or null; throws a partition's error in its turn. */
  private nextBuffered(): ConsumerRecord<K, V> | null {
    const consumer = this.consumer;
    const walker = this.walker;
    for (;;) {
      const state = this.state;
      if (state !== null) {
        if (state.epoch === this.epoch && !consumer.isClosed && this.cursor.next()) return this.take(state);
        this.state = null;
      }
      const chunk = walker.chunk;
      if (chunk !== null) {
        if (consumer.isCurrent(chunk, chunk.epoch) && !chunk.state.paused) {
          const batch = walker.nextBatch();
          if (batch !== undefined) {
            this.cursor.reset(batch);
            this.state = chunk.state;
            this.epoch = chunk.epoch;
            continue;
          }
          walker.finishChunk();
          continue;
        }
        walker.drop();
      }
      if (!walker.loadNext()) return null;
    }
  }

  /** The cursor's record, handed out: the partition's position moves past it. */
  private take(state: PartitionState): ConsumerRecord<K, V> {
    const cursor = this.cursor;
    const offset = cursor.offset;
    const record = this.deserializing ? this.deserialized(state) : (cursor.record(state.topic, state.partition) as ConsumerRecord<unknown, unknown> as ConsumerRecord<K, V>);
    if (offset >= state.position) state.position = offset + 1;
    return record;
  }

  /** The record with its key and value deserialized; on failure the position stays at it. */
  private deserialized(state: PartitionState): ConsumerRecord<K, V> {
    const cursor = this.cursor;
    const rawKey = cursor.key();
    const rawValue = cursor.value();
    let field: 'key' | 'value' = 'key';
    let format = '';
    try {
      let key: K | null = null;
      if (rawKey !== null) {
        if (this.keyDeserializer === null) key = rawKey as unknown as K;
        else {
          format = this.keyDeserializer.name;
          key = this.keyDeserializer.deserialize(rawKey);
        }
      }
      field = 'value';
      let value: V | null = null;
      if (rawValue !== null) {
        if (this.valueDeserializer === null) value = rawValue as unknown as V;
        else {
          format = this.valueDeserializer.name;
          value = this.valueDeserializer.deserialize(rawValue);
        }
      }
      return { topic: state.topic, partition: state.partition, offset: BigInt(cursor.offset), timestamp: cursor.timestamp, key, value, headers: cursor.headers() };
    } catch (error) {
      // Fetched again from this record by the next read: it is not skipped unless the user seeks past it.
      this.state = null;
      this.consumer.rewind(state);
      throw new KafkaRecordDeserializationError(state.topic, state.partition, cursor.offset, field, format, error);
    }
  }
}

class BatchIterator implements AsyncIterableIterator<RecordBatch> {
  private readonly walker: ChunkWalker;
  private sinceYield = 0;
  private done = false;

  constructor(private readonly consumer: Consumer<unknown, unknown>, private readonly idleTimeoutMs: number | undefined) {
    this.walker = new ChunkWalker(consumer);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<RecordBatch>> {
    for (;;) {
      if (this.done || this.consumer.isClosed) return { value: undefined, done: true };
      const batch = this.nextBuffered();
      if (batch !== null) {
        this.sinceYield += batch.recordCount;
        if (this.sinceYield >= YIELD_EVERY_RECORDS) {
          this.sinceYield = 0; // a turn of the event loop: see RecordIterator.next
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        return { value: batch, done: false };
      }
      if (!(await this.consumer.waitForData(this.idleTimeoutMs))) return { value: undefined, done: true };
    }
  }

  return(): Promise<IteratorResult<RecordBatch>> {
    this.done = true;
    this.walker.release();
    return Promise.resolve({ value: undefined, done: true });
  }

  private nextBuffered(): RecordBatch | null {
    const consumer = this.consumer;
    const walker = this.walker;
    for (;;) {
      const chunk = walker.chunk;
      if (chunk !== null) {
        const state = chunk.state;
        if (consumer.isCurrent(chunk, chunk.epoch) && !state.paused) {
          const batch = walker.nextBatch();
          if (batch !== undefined) {
            // The position moves past the batch as it is handed out (the whole batch is the user's).
            consumer.advance(state, chunk.epoch, batch.lastOffset + 1);
            return batch;
          }
          walker.finishChunk();
          continue;
        }
        walker.drop();
      }
      if (!walker.loadNext()) return null;
    }
  }
}

// ---------------------------------------------------------------------------------------------

function keyOf(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

function newState(topic: string, partition: number, key: string): PartitionState {
  return { topic, partition, key, position: -1, fetchOffset: -1, paused: false, epoch: 0, fetching: false, resetting: false, failed: null, backoffUntilMs: 0, backoffMs: 0, assigned: true };
}

function checkTopicPartition(entry: TopicPartition): void {
  if (typeof entry !== 'object' || entry === null || typeof entry.topic !== 'string' || entry.topic.length === 0) throw new KafkaConfigError('each partition needs a non-empty topic string');
  if (!Number.isInteger(entry.partition) || entry.partition < 0 || entry.partition > 0x7fffffff) throw new KafkaConfigError(`partition must be a non-negative integer, got ${String(entry.partition)}`);
}

/** The deserializer to call per record, or null for bytes (the default). */
function checkDeserializer(name: string, choice: DeserializerChoice | undefined): Deserializer | null {
  if (choice === undefined || choice === 'bytes' || choice === deserializers.bytes) return null;
  if (typeof choice === 'string') {
    const found = (deserializers as Record<string, Deserializer>)[choice];
    if (found === undefined) throw new KafkaConfigError(`${name} must be one of ${Object.keys(deserializers).join(', ')} or a Deserializer, got ${JSON.stringify(choice)}`);
    return found;
  }
  if (typeof choice !== 'object' || choice === null || typeof choice.deserialize !== 'function') throw new KafkaConfigError(`${name} must be one of ${Object.keys(deserializers).join(', ')} or an object with a deserialize(bytes) function`);
  return choice;
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new KafkaConfigError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
