// Broker configuration by Kafka's broker config names (server.properties style). Known keys are
// validated with their valid range in the error; unknown keys are reported back to the caller
// (which logs them) and ignored, so a Kafka server.properties can be reused as is.
import { defaultReadHandles, defaultWriteHandles } from './fileDescriptors.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frame.js';
import { ConfigError } from './errors.js';
import { MIN_DECOMPRESSED_BATCH_LIMIT } from './log/appendValidation.js';
import { defaultWorkerThreads } from './workers/workerPool.js';
import { checkBrokerConfigRelations } from './configRelations.js';
import { TOPIC_CONFIGS, type ConfigMap } from './topicConfig.js';
import { INT32_MAX } from '../common/limits.js';

export interface BrokerConfig {
  nodeId: number;
  /** Address the listener binds. */
  host: string;
  port: number;
  /** Address clients are told to connect to (Metadata, FindCoordinator). */
  advertisedHost: string;
  advertisedPort: number;
  dataDir: string;
  numPartitions: number;
  /**
   * max.broker.partitions (KIP-578): partitions of all topics, internal ones included, this broker
   * may hold; CreateTopics and CreatePartitions past it are refused with POLICY_VIOLATION.
   */
  maxBrokerPartitions: number;
  /** log.write.handles.max: segment write handles open at once (default half the open-files limit); an idle one, chosen at random, closes to make room. */
  logWriteHandlesMax: number;
  /** log.read.handles.max: segment read handles open at once (default 512, at most an eighth of the open-files limit), least recently used closed first. */
  logReadHandlesMax: number;
  defaultReplicationFactor: number;
  autoCreateTopics: boolean;
  /** Frames larger than this are refused before their body is buffered. */
  socketRequestMaxBytes: number;
  /** Requests of one connection being worked on at once; reading pauses past this. */
  maxInFlightRequestsPerConnection: number;
  /** Response bytes queued on one connection before reading pauses (a slow reader's bound). */
  maxQueuedResponseBytesPerConnection: number;
  maxConnections: number;
  retentionCheckIntervalMs: number;
  checkpointIntervalMs: number;
  /** Longest a Fetch may wait, whatever the client asks (bounds long polls). */
  fetchMaxWaitCapMs: number;
  /** offsets.topic.num.partitions: partitions of __consumer_offsets, fixed when it is created. */
  offsetsTopicPartitions: number;
  /** offsets.retention.minutes, in ms: committed offsets of a group empty this long expire. */
  offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms */
  offsetsRetentionCheckIntervalMs: number;
  /** group.min.session.timeout.ms / group.max.session.timeout.ms */
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms */
  groupInitialRebalanceDelayMs: number;
  /** group.max.size */
  groupMaxSize: number;
  /** worker.threads: threads of the worker pool (compaction, retention, scans); default from the machine. */
  workerThreads: number;
  /** worker.queue.max: tasks waiting for a thread before more are refused. */
  workerQueueMax: number;
  /** worker.task.timeout.ms: a task's time limit per attempt; its thread is stopped past it. */
  workerTaskTimeoutMs: number;
  /** worker.max.heap.mb: old-space cap of each worker thread. */
  workerMaxHeapMb: number;
  /** log.cleaner.enable: compact logs whose cleanup.policy includes compact. */
  logCleanerEnable: boolean;
  /** log.cleaner.backoff.ms: pause between the cleaner's rounds. */
  logCleanerBackoffMs: number;
  /** log.cleaner.dedupe.buffer.size: bytes of one clean's key -> offset map (outside the worker heap). */
  logCleanerDedupeBufferBytes: number;
  /** log.cleaner.threads: logs cleaned at once (each takes one worker thread). */
  logCleanerThreads: number;
  /** log.cleaner.io.max.bytes.per.second: read rate of one clean, so it does not crowd out producers. */
  logCleanerIoMaxBytesPerSecond: number;
  /** log.verify.interval.ms: how often sealed segments not verified yet are CRC-checked in the background; -1 never. */
  verifyIntervalMs: number;
  /** produce.decompression.buffer.bytes: decompressed bytes that produced batches may reserve at once for validation. */
  produceDecompressionBufferBytes: number;
  /** produce.decompression.max.waiting: batches that may wait for that room before more get a retriable error. */
  produceDecompressionMaxWaiting: number;
  /** The `log.*` and other broker keys that give topic configs their defaults. */
  topicDefaults: ConfigMap;
  clusterId: string;
}

interface BrokerKey {
  parse(value: string, key: string): number | string | boolean | [string, number];
  apply(config: BrokerConfig, value: number | string | boolean | [string, number]): void;
}

function integer(min: number, max: number): (value: string, key: string) => number {
  return (value, key) => {
    const parsed = Number(value.trim());
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new ConfigError(`${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
    }
    return parsed;
  };
}

/**
 * A rate Kafka writes as a double (its default is Double.MAX_VALUE, 1.7976931348623157E308): any
 * number at or above `min`; values past 2^53 mean no limit and are held as MAX_SAFE_INTEGER.
 */
function bytesPerSecond(min: number): (value: string, key: string) => number {
  return (value, key) => {
    const parsed = Number(value.trim());
    if (value.trim() === '' || !(parsed >= min)) throw new ConfigError(`${key} must be a number of bytes per second of at least ${min}, got ${JSON.stringify(value)}`);
    return Math.min(Math.floor(parsed), Number.MAX_SAFE_INTEGER);
  };
}

function boolean(value: string, key: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(value)}`);
}

function listener(value: string, key: string): [string, number] {
  const first = value.split(',')[0]!.trim();
  const match = /^(?:PLAINTEXT:\/\/)?(\[[^\]]*\]|[^:/]*):(\d+)$/.exec(first);
  const port = Number(match?.[2]);
  if (match === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${key} must look like PLAINTEXT://host:port with a port in [0, 65535], got ${JSON.stringify(value)}`);
  }
  return [match[1]!.replace(/^\[|\]$/g, ''), port];
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * max.broker.partitions by default: twice the 50,000 partitions `tidelog bench partitions` runs.
 * Each partition is a directory, an open file (its active segment) and memory; Kafka's default is
 * unlimited, ours is a number (STYLE: never default to Infinity).
 */
export const DEFAULT_MAX_BROKER_PARTITIONS = 100_000;
/** The largest max.broker.partitions accepted: ten times the default. */
export const MAX_BROKER_PARTITIONS_CEILING = 1_000_000;

/** A period in ms, or -1 for never (0 would mean checking without pause). */
function periodOrNever(max: number): (value: string, key: string) => number {
  const inRange = integer(-1, max);
  return (value, key) => {
    const refusal = `${key} must be -1 (never) or an integer in [1, ${max}], got ${JSON.stringify(value)}`;
    let parsed: number;
    try {
      parsed = inRange(value, key);
    } catch {
      throw new ConfigError(refusal);
    }
    if (parsed === 0) throw new ConfigError(refusal);
    return parsed;
  };
}

const brokerKeys: Record<string, BrokerKey> = {
  'node.id': { parse: integer(0, INT32_MAX), apply: (c, v) => (c.nodeId = v as number) },
  'broker.id': { parse: integer(0, INT32_MAX), apply: (c, v) => (c.nodeId = v as number) },
  'num.partitions': { parse: integer(1, 100_000), apply: (c, v) => (c.numPartitions = v as number) },
  'max.broker.partitions': { parse: integer(1, MAX_BROKER_PARTITIONS_CEILING), apply: (c, v) => (c.maxBrokerPartitions = v as number) },
  'log.write.handles.max': { parse: integer(1, 1_000_000), apply: (c, v) => (c.logWriteHandlesMax = v as number) },
  'log.read.handles.max': { parse: integer(1, 1_000_000), apply: (c, v) => (c.logReadHandlesMax = v as number) },
  'default.replication.factor': { parse: integer(1, 1), apply: (c, v) => (c.defaultReplicationFactor = v as number) },
  'auto.create.topics.enable': { parse: boolean, apply: (c, v) => (c.autoCreateTopics = v as boolean) },
  'socket.request.max.bytes': { parse: integer(1024, INT32_MAX), apply: (c, v) => (c.socketRequestMaxBytes = v as number) },
  'max.connections': { parse: integer(1, 1_000_000), apply: (c, v) => (c.maxConnections = v as number) },
  'queued.max.requests': { parse: integer(1, 10_000), apply: (c, v) => (c.maxInFlightRequestsPerConnection = v as number) },
  'log.retention.check.interval.ms': { parse: integer(1, Number.MAX_SAFE_INTEGER), apply: (c, v) => (c.retentionCheckIntervalMs = v as number) },
  'log.flush.offset.checkpoint.interval.ms': { parse: integer(1, INT32_MAX), apply: (c, v) => (c.checkpointIntervalMs = v as number) },
  // Kafka listener syntax, first listener only: PLAINTEXT://host:port (SASL/TLS are not served).
  listeners: { parse: listener, apply: (c, v) => ([c.host, c.port] = v as [string, number]) },
  'advertised.listeners': { parse: listener, apply: (c, v) => ([c.advertisedHost, c.advertisedPort] = v as [string, number]) },
  'offsets.topic.num.partitions': { parse: integer(1, 1000), apply: (c, v) => (c.offsetsTopicPartitions = v as number) },
  'offsets.retention.minutes': { parse: integer(1, Math.floor(Number.MAX_SAFE_INTEGER / 60_000)), apply: (c, v) => (c.offsetsRetentionMs = (v as number) * 60_000) },
  'offsets.retention.check.interval.ms': { parse: integer(1, INT32_MAX), apply: (c, v) => (c.offsetsRetentionCheckIntervalMs = v as number) },
  'group.min.session.timeout.ms': { parse: integer(1, INT32_MAX), apply: (c, v) => (c.groupMinSessionTimeoutMs = v as number) },
  'group.max.session.timeout.ms': { parse: integer(1, INT32_MAX), apply: (c, v) => (c.groupMaxSessionTimeoutMs = v as number) },
  'group.initial.rebalance.delay.ms': { parse: integer(0, INT32_MAX), apply: (c, v) => (c.groupInitialRebalanceDelayMs = v as number) },
  'group.max.size': { parse: integer(1, 100_000), apply: (c, v) => (c.groupMaxSize = v as number) },
  // tidelog's own: the worker pool (Kafka sizes its cleaner and recovery threads separately).
  'worker.threads': { parse: integer(1, 64), apply: (c, v) => (c.workerThreads = v as number) },
  'worker.queue.max': { parse: integer(0, 1_000_000), apply: (c, v) => (c.workerQueueMax = v as number) },
  'worker.task.timeout.ms': { parse: integer(1, INT32_MAX), apply: (c, v) => (c.workerTaskTimeoutMs = v as number) },
  'worker.max.heap.mb': { parse: integer(16, 65_536), apply: (c, v) => (c.workerMaxHeapMb = v as number) },
  'log.cleaner.enable': { parse: boolean, apply: (c, v) => (c.logCleanerEnable = v as boolean) },
  'log.cleaner.backoff.ms': { parse: integer(1, DAY_MS), apply: (c, v) => (c.logCleanerBackoffMs = v as number) },
  // At least 4096 map slots of 16 bytes, at most 4 GiB (the map lives outside the worker's heap).
  'log.cleaner.dedupe.buffer.size': { parse: integer(65_536, 4 * 1024 * 1024 * 1024), apply: (c, v) => (c.logCleanerDedupeBufferBytes = v as number) },
  'log.cleaner.threads': { parse: integer(1, 64), apply: (c, v) => (c.logCleanerThreads = v as number) },
  'log.cleaner.io.max.bytes.per.second': { parse: bytesPerSecond(1024 * 1024), apply: (c, v) => (c.logCleanerIoMaxBytesPerSecond = v as number) },
  // tidelog's own: the bound on zip bombs in flight (Kafka bounds only the request size).
  'produce.decompression.buffer.bytes': { parse: integer(MIN_DECOMPRESSED_BATCH_LIMIT, Number.MAX_SAFE_INTEGER), apply: (c, v) => (c.produceDecompressionBufferBytes = v as number) },
  'produce.decompression.max.waiting': { parse: integer(0, 1_000_000), apply: (c, v) => (c.produceDecompressionMaxWaiting = v as number) },
  // tidelog's own: the background CRC check of sealed segments (Kafka has none).
  'log.verify.interval.ms': { parse: periodOrNever(365 * DAY_MS), apply: (c, v) => (c.verifyIntervalMs = v as number) },
  'log.dirs': { parse: (v) => v, apply: (c, v) => (c.dataDir = String(v).split(',')[0]!) },
  'log.dir': { parse: (v) => v, apply: (c, v) => (c.dataDir = String(v)) },
};

/** Keys that set a topic default under another unit; normalised to the `*.ms` key. */
const hourAndMinuteAliases: Record<string, { target: string; factorMs: number }> = {
  'log.retention.hours': { target: 'log.retention.ms', factorMs: 60 * 60 * 1000 },
  'log.retention.minutes': { target: 'log.retention.ms', factorMs: 60 * 1000 },
  'log.roll.hours': { target: 'log.roll.ms', factorMs: 60 * 60 * 1000 },
};

const topicDefaultKeys = new Map([...TOPIC_CONFIGS.values()].map((definition) => [definition.brokerKey, definition]));

export function defaultBrokerConfig(): BrokerConfig {
  return {
    nodeId: 0,
    host: '127.0.0.1',
    port: 9092,
    advertisedHost: '127.0.0.1',
    advertisedPort: 9092,
    dataDir: './data',
    numPartitions: 1,
    maxBrokerPartitions: DEFAULT_MAX_BROKER_PARTITIONS,
    logWriteHandlesMax: defaultWriteHandles(),
    logReadHandlesMax: defaultReadHandles(),
    defaultReplicationFactor: 1,
    autoCreateTopics: true,
    socketRequestMaxBytes: DEFAULT_MAX_FRAME_BYTES,
    maxInFlightRequestsPerConnection: 100,
    maxQueuedResponseBytesPerConnection: 64 * 1024 * 1024,
    maxConnections: 10_000,
    retentionCheckIntervalMs: 5 * 60 * 1000,
    checkpointIntervalMs: 60_000,
    fetchMaxWaitCapMs: 30_000,
    offsetsTopicPartitions: 50,
    offsetsRetentionMs: 7 * DAY_MS,
    offsetsRetentionCheckIntervalMs: 600_000,
    groupMinSessionTimeoutMs: 6000,
    groupMaxSessionTimeoutMs: 1_800_000,
    groupInitialRebalanceDelayMs: 3000,
    groupMaxSize: 1000,
    workerThreads: defaultWorkerThreads(),
    workerQueueMax: 1000,
    workerTaskTimeoutMs: 10 * 60 * 1000,
    workerMaxHeapMb: 1024,
    logCleanerEnable: true,
    logCleanerBackoffMs: 15_000,
    logCleanerDedupeBufferBytes: 128 * 1024 * 1024,
    logCleanerThreads: 1,
    logCleanerIoMaxBytesPerSecond: 100 * 1024 * 1024,
    verifyIntervalMs: 60 * 60 * 1000,
    produceDecompressionBufferBytes: 64 * 1024 * 1024,
    produceDecompressionMaxWaiting: 1024,
    topicDefaults: {},
    clusterId: 'tidelog',
  };
}

/**
 * Applies Kafka-named properties over the defaults. Returns the config and the keys it does not
 * know (ignored). Throws ConfigError for a known key with a bad value.
 */
export function brokerConfigFromProperties(properties: ConfigMap, base: BrokerConfig = defaultBrokerConfig()): { config: BrokerConfig; unknownKeys: string[] } {
  const config: BrokerConfig = { ...base, topicDefaults: { ...base.topicDefaults } };
  const topicDefaults: Record<string, string> = { ...config.topicDefaults };
  const unknownKeys: string[] = [];
  for (const [rawKey, rawValue] of Object.entries(properties)) {
    const key = rawKey.trim();
    const value = rawValue.trim();
    const alias = hourAndMinuteAliases[key];
    if (alias !== undefined) {
      const amount = integer(-1, Math.floor(Number.MAX_SAFE_INTEGER / alias.factorMs))(value, key);
      topicDefaults[alias.target] = String(amount < 0 ? -1 : amount * alias.factorMs);
      continue;
    }
    const brokerKey = brokerKeys[key];
    if (brokerKey !== undefined) {
      brokerKey.apply(config, brokerKey.parse(value, key));
      continue;
    }
    const definition = topicDefaultKeys.get(key);
    if (definition !== undefined) {
      const reason = definition.invalid(value);
      if (reason !== null) throw new ConfigError(`${key} ${reason}`);
      topicDefaults[key] = value;
      continue;
    }
    unknownKeys.push(key);
  }
  config.topicDefaults = topicDefaults;
  if (config.retentionCheckIntervalMs > DAY_MS * 365) throw new ConfigError('log.retention.check.interval.ms must be at most a year');
  checkBrokerConfigRelations(config);
  return { config, unknownKeys };
}

/** Parses `key=value` lines (server.properties): `#` and `!` comments, blank lines ignored. */
export function parseProperties(text: string): Record<string, string> {
  const properties: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed.length === 0 || trimmed.startsWith('#') || trimmed.startsWith('!')) return;
    const separator = trimmed.search(/[=:]/);
    if (separator <= 0) throw new ConfigError(`line ${index + 1}: expected key=value, got ${JSON.stringify(trimmed)}`);
    properties[trimmed.slice(0, separator).trim()] = trimmed.slice(separator + 1).trim();
  });
  return properties;
}
