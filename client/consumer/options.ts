// The consumer's options and subscribe() options: their types, defaults and limits, and the one
// place each is validated (a KafkaConfigError naming the option) and resolved to the settings the
// other consumer modules read.
import { resolveAssignors } from '../assignors.js';
import { KafkaConfigError } from '../errors.js';
import { deserializers, type Deserializer, type SerializerName } from '../serializers.js';
import type { Assignor, AssignorName } from '../types.js';
import { INT32_MAX, MAX_REQUEST_TIMEOUT_MS, MAX_TIMER_DELAY_MS } from '../../common/limits.js';

export type AutoOffsetReset = 'earliest' | 'latest' | 'none';
export type IsolationLevel = 'read_uncommitted' | 'read_committed';

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

export type DeserializerChoice = SerializerName | Deserializer;

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
const MAX_BYTES_LIMIT = INT32_MAX;
const MAX_WAIT_LIMIT_MS = 300_000;

/** ConsumerOptions checked and with their defaults filled in. */
export interface ConsumerSettings<K, V> {
  readonly bootstrapServers: readonly string[];
  readonly clientId: string;
  readonly maxBytes: number;
  readonly maxPartitionBytes: number;
  readonly maxWaitMs: number;
  readonly minBytes: number;
  /** As sent in Fetch and ListOffsets: 1 read_committed, 0 read_uncommitted. */
  readonly isolationLevel: 0 | 1;
  readonly prefetchMaxBytes: number;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number | undefined;
  readonly autoOffsetReset: AutoOffsetReset;
  readonly retryBackoffMs: number;
  readonly retryBackoffMaxMs: number;
  readonly checkCrcs: boolean;
  /** null: the bytes as they are (no call per record). */
  readonly keyDeserializer: Deserializer<K> | null;
  readonly valueDeserializer: Deserializer<V> | null;
}

export function resolveConsumerOptions<K, V>(options: ConsumerOptions<K, V>): ConsumerSettings<K, V> {
  const maxBytes = checkInteger('maxBytes', options.maxBytes ?? CONSUMER_DEFAULTS.maxBytes, 1, MAX_BYTES_LIMIT);
  const maxPartitionBytes = checkInteger('maxPartitionBytes', options.maxPartitionBytes ?? CONSUMER_DEFAULTS.maxPartitionBytes, 1, MAX_BYTES_LIMIT);
  const maxWaitMs = checkInteger('maxWaitMs', options.maxWaitMs ?? CONSUMER_DEFAULTS.maxWaitMs, 0, MAX_WAIT_LIMIT_MS);
  const minBytes = checkInteger('minBytes', options.minBytes ?? CONSUMER_DEFAULTS.minBytes, 0, MAX_BYTES_LIMIT);
  const isolation = options.isolationLevel ?? CONSUMER_DEFAULTS.isolationLevel;
  if (isolation !== 'read_committed' && isolation !== 'read_uncommitted') throw new KafkaConfigError(`isolationLevel must be 'read_committed' or 'read_uncommitted', got ${String(isolation)}`);
  const prefetchMaxBytes = checkInteger('prefetchMaxBytes', options.prefetchMaxBytes ?? CONSUMER_DEFAULTS.prefetchMaxBytes, 1, 2 ** 40);
  // Fetch's timeout is requestTimeoutMs + maxWaitMs: both together must fit a timer.
  const requestTimeoutMs = checkInteger('requestTimeoutMs', options.requestTimeoutMs ?? CONSUMER_DEFAULTS.requestTimeoutMs, 1, MAX_REQUEST_TIMEOUT_MS - MAX_WAIT_LIMIT_MS);
  const autoOffsetReset = options.autoOffsetReset ?? CONSUMER_DEFAULTS.autoOffsetReset;
  if (autoOffsetReset !== 'earliest' && autoOffsetReset !== 'latest' && autoOffsetReset !== 'none') throw new KafkaConfigError(`autoOffsetReset must be 'earliest', 'latest' or 'none', got ${String(autoOffsetReset)}`);
  const retryBackoffMs = checkInteger('retryBackoffMs', options.retryBackoffMs ?? CONSUMER_DEFAULTS.retryBackoffMs, 0, MAX_TIMER_DELAY_MS);
  const retryBackoffMaxMs = checkInteger('retryBackoffMaxMs', options.retryBackoffMaxMs ?? CONSUMER_DEFAULTS.retryBackoffMaxMs, retryBackoffMs, MAX_TIMER_DELAY_MS);
  return {
    bootstrapServers: options.bootstrapServers,
    clientId: options.clientId ?? 'tidelog-consumer',
    maxBytes,
    maxPartitionBytes,
    maxWaitMs,
    minBytes,
    isolationLevel: isolation === 'read_committed' ? 1 : 0,
    prefetchMaxBytes,
    requestTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    autoOffsetReset,
    retryBackoffMs,
    retryBackoffMaxMs,
    checkCrcs: options.checkCrcs ?? true,
    keyDeserializer: checkDeserializer('keyDeserializer', options.keyDeserializer) as Deserializer<K> | null,
    valueDeserializer: checkDeserializer('valueDeserializer', options.valueDeserializer) as Deserializer<V> | null,
  };
}

/** subscribe()'s arguments checked and with their defaults filled in. */
export interface SubscribeSettings {
  readonly groupId: string;
  /** Without duplicates. */
  readonly topics: string[];
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly autoCommitIntervalMs: number;
  readonly assignors: Assignor[];
  readonly autoCommit: boolean;
}

export function resolveSubscribeOptions(topics: readonly string[], options: SubscribeOptions, requestTimeoutMs: number): SubscribeSettings {
  if (!Array.isArray(topics) || topics.length === 0 || topics.some((topic) => typeof topic !== 'string' || topic.length === 0)) {
    throw new KafkaConfigError('subscribe() takes a non-empty array of topic names');
  }
  if (typeof options !== 'object' || options === null || typeof options.groupId !== 'string' || options.groupId.length === 0) {
    throw new KafkaConfigError('subscribe() needs options.groupId, a non-empty string');
  }
  const sessionTimeoutMs = checkInteger('sessionTimeoutMs', options.sessionTimeoutMs ?? SUBSCRIBE_DEFAULTS.sessionTimeoutMs, 1, MAX_REQUEST_TIMEOUT_MS);
  // JoinGroup's timeout is requestTimeoutMs + rebalanceTimeoutMs: both together must fit a timer.
  const rebalanceTimeoutMs = checkInteger('rebalanceTimeoutMs', options.rebalanceTimeoutMs ?? SUBSCRIBE_DEFAULTS.rebalanceTimeoutMs, 1, MAX_REQUEST_TIMEOUT_MS - requestTimeoutMs);
  const heartbeatIntervalMs = checkInteger('heartbeatIntervalMs', options.heartbeatIntervalMs ?? Math.min(SUBSCRIBE_DEFAULTS.heartbeatIntervalMs, Math.floor(sessionTimeoutMs / 3)), 1, sessionTimeoutMs - 1);
  const autoCommitIntervalMs = checkInteger('autoCommitIntervalMs', options.autoCommitIntervalMs ?? SUBSCRIBE_DEFAULTS.autoCommitIntervalMs, 1, MAX_TIMER_DELAY_MS);
  const assignors = resolveAssignors(options.assignors ?? SUBSCRIBE_DEFAULTS.assignors);
  const autoCommit = options.autoCommit ?? SUBSCRIBE_DEFAULTS.autoCommit;
  if (typeof autoCommit !== 'boolean') throw new KafkaConfigError(`autoCommit must be a boolean, got ${String(options.autoCommit)}`);
  return { groupId: options.groupId, topics: [...new Set(topics)], sessionTimeoutMs, rebalanceTimeoutMs, heartbeatIntervalMs, autoCommitIntervalMs, assignors, autoCommit };
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
