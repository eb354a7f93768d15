// Topic configs by Kafka's names, with the broker-level key that sets each one's default, Kafka's
// defaults, and a validator that names the valid range. A topic stores only its overrides; the
// effective value is override ?? broker default ?? Kafka default.
import { ConfigError } from './errors.js';
import { MIN_MAX_MESSAGE_BYTES, MIN_SEGMENT_BYTES, MIN_SEGMENT_INDEX_BYTES, defaultLogConfig, resolveLogConfig, type CleanupPolicy, type FlushPolicy, type LogConfig } from './log/logConfig.js';
import { INT32_MAX, MAX_SEGMENT_BYTES } from '../common/limits.js';

type Kind = 'long' | 'int' | 'double' | 'string';

export interface TopicConfigDefinition {
  name: string;
  /** The broker config that supplies the default (Kafka's `log.*` name). */
  brokerKey: string;
  kind: Kind;
  defaultValue: string;
  /** Returns why `value` is invalid, naming the valid range, or null. */
  invalid(value: string): string | null;
  documentation: string;
}

const LONG_MAX = '9223372036854775807';

function integerIn(min: number, max: number, kind: 'int' | 'long'): (value: string) => string | null {
  return (value) => {
    if (value === LONG_MAX && kind === 'long') return null;
    if (!/^-?\d+$/.test(value.trim())) return `must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? LONG_MAX : max}]`;
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) return `must be in [${min}, ${max === Number.MAX_SAFE_INTEGER ? LONG_MAX : max}], got ${value}`;
    return null;
  };
}

function oneOf(values: readonly string[]): (value: string) => string | null {
  return (value) => (values.includes(value) ? null : `must be one of ${values.join(', ')}; got ${value}`);
}

function fraction(value: string): string | null {
  const parsed = Number(value);
  return Number.isFinite(parsed) && parsed >= 0 && parsed <= 1 ? null : `must be a number in [0, 1], got ${value}`;
}

function cleanupPolicy(value: string): string | null {
  const parts = value.split(',').map((part) => part.trim()).filter((part) => part.length > 0).sort();
  const allowed = parts.length > 0 && parts.every((part) => part === 'delete' || part === 'compact') && new Set(parts).size === parts.length;
  return allowed ? null : `must be delete, compact, or compact,delete; got ${value}`;
}

const definitions: TopicConfigDefinition[] = [
  { name: 'cleanup.policy', brokerKey: 'log.cleanup.policy', kind: 'string', defaultValue: 'delete', invalid: cleanupPolicy, documentation: 'delete old segments, compact to the latest value per key, or both' },
  { name: 'retention.ms', brokerKey: 'log.retention.ms', kind: 'long', defaultValue: '604800000', invalid: integerIn(-1, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'delete segments older than this (-1: never)' },
  { name: 'retention.bytes', brokerKey: 'log.retention.bytes', kind: 'long', defaultValue: '-1', invalid: integerIn(-1, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'delete oldest segments while a partition is larger (-1: no limit)' },
  { name: 'segment.bytes', brokerKey: 'log.segment.bytes', kind: 'int', defaultValue: String(defaultLogConfig.segmentBytes), invalid: integerIn(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES, 'int'), documentation: 'roll a segment at this size' },
  { name: 'segment.ms', brokerKey: 'log.roll.ms', kind: 'long', defaultValue: String(defaultLogConfig.segmentMs), invalid: integerIn(1, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'roll a segment this long after its first append' },
  { name: 'segment.index.bytes', brokerKey: 'log.index.size.max.bytes', kind: 'int', defaultValue: String(defaultLogConfig.segmentIndexBytes), invalid: integerIn(MIN_SEGMENT_INDEX_BYTES, INT32_MAX, 'int'), documentation: 'roll a segment when its offset index reaches this size' },
  { name: 'index.interval.bytes', brokerKey: 'log.index.interval.bytes', kind: 'int', defaultValue: String(defaultLogConfig.indexIntervalBytes), invalid: integerIn(0, INT32_MAX, 'int'), documentation: 'log bytes between offset index entries' },
  { name: 'max.message.bytes', brokerKey: 'message.max.bytes', kind: 'int', defaultValue: String(defaultLogConfig.maxMessageBytes), invalid: integerIn(MIN_MAX_MESSAGE_BYTES, INT32_MAX, 'int'), documentation: 'largest record batch accepted' },
  { name: 'message.timestamp.type', brokerKey: 'log.message.timestamp.type', kind: 'string', defaultValue: 'CreateTime', invalid: oneOf(['CreateTime', 'LogAppendTime']), documentation: 'keep producer timestamps or stamp the append time' },
  { name: 'message.timestamp.before.max.ms', brokerKey: 'log.message.timestamp.before.max.ms', kind: 'long', defaultValue: LONG_MAX, invalid: integerIn(0, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'refuse CreateTime records older than this relative to the broker clock' },
  { name: 'message.timestamp.after.max.ms', brokerKey: 'log.message.timestamp.after.max.ms', kind: 'long', defaultValue: String(defaultLogConfig.messageTimestampAfterMaxMs), invalid: integerIn(0, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'refuse CreateTime records newer than this relative to the broker clock' },
  { name: 'min.insync.replicas', brokerKey: 'min.insync.replicas', kind: 'int', defaultValue: '1', invalid: integerIn(1, INT32_MAX, 'int'), documentation: 'replicas that must have a write for acks=all' },
  { name: 'min.cleanable.dirty.ratio', brokerKey: 'log.cleaner.min.cleanable.ratio', kind: 'double', defaultValue: '0.5', invalid: fraction, documentation: 'compact when this share of the log is uncompacted' },
  { name: 'delete.retention.ms', brokerKey: 'log.cleaner.delete.retention.ms', kind: 'long', defaultValue: '86400000', invalid: integerIn(0, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'how long compaction keeps tombstones' },
  { name: 'min.compaction.lag.ms', brokerKey: 'log.cleaner.min.compaction.lag.ms', kind: 'long', defaultValue: '0', invalid: integerIn(0, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'records younger than this are not compacted' },
  { name: 'flush.messages', brokerKey: 'log.flush.interval.messages', kind: 'long', defaultValue: LONG_MAX, invalid: integerIn(1, Number.MAX_SAFE_INTEGER, 'long'), documentation: '1: fsync every append before acknowledging (concurrent appends share one fsync)' },
  { name: 'flush.ms', brokerKey: 'log.flush.interval.ms', kind: 'long', defaultValue: LONG_MAX, invalid: integerIn(1, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'fsync at least this often' },
  { name: 'file.delete.delay.ms', brokerKey: 'log.segment.delete.delay.ms', kind: 'long', defaultValue: String(defaultLogConfig.fileDeleteDelayMs), invalid: integerIn(0, Number.MAX_SAFE_INTEGER, 'long'), documentation: 'delay before deleted segment files are removed' },
];

export const TOPIC_CONFIGS: ReadonlyMap<string, TopicConfigDefinition> = new Map(definitions.map((definition) => [definition.name, definition]));

/** Topic configs as strings: what a topic overrides, or what the broker sets as defaults. */
export type ConfigMap = Readonly<Record<string, string>>;

/** Throws ConfigError naming the config and its valid range when an override is unknown or invalid. */
export function validateTopicConfigs(overrides: ConfigMap): void {
  for (const [name, value] of Object.entries(overrides)) {
    const definition = TOPIC_CONFIGS.get(name);
    if (definition === undefined) throw new ConfigError(`unknown topic config ${name}`);
    const reason = definition.invalid(value);
    if (reason !== null) throw new ConfigError(`${name} ${reason}`);
  }
  const merged = { ...overrides };
  if (merged['segment.bytes'] !== undefined && merged['max.message.bytes'] !== undefined && Number(merged['max.message.bytes']) > Number(merged['segment.bytes'])) {
    throw new ConfigError(`max.message.bytes ${merged['max.message.bytes']} must not exceed segment.bytes ${merged['segment.bytes']}`);
  }
}

/** Where an effective value comes from, as DescribeConfigs reports it. */
export type ConfigSource = 'topic' | 'broker' | 'default';

export interface EffectiveConfig {
  name: string;
  value: string;
  source: ConfigSource;
}

/** Every topic config with its effective value, given broker-level defaults (Kafka `log.*` keys). */
export function effectiveTopicConfigs(overrides: ConfigMap, brokerDefaults: ConfigMap): EffectiveConfig[] {
  return definitions.map((definition) => {
    const topicValue = overrides[definition.name];
    if (topicValue !== undefined) return { name: definition.name, value: topicValue, source: 'topic' };
    const brokerValue = brokerDefaults[definition.brokerKey];
    if (brokerValue !== undefined) return { name: definition.name, value: brokerValue, source: 'broker' };
    return { name: definition.name, value: definition.defaultValue, source: 'default' };
  });
}

function numberOf(values: Map<string, string>, name: string): number {
  const value = values.get(name);
  if (value === undefined) throw new Error(`config ${name} has no value`);
  return value === LONG_MAX ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** The retention settings of a topic; -1 means no limit. */
export interface RetentionConfig {
  retentionMs: number;
  retentionBytes: number;
  deleteRetentionMs: number;
  minCompactionLagMs: number;
  minCleanableDirtyRatio: number;
}

export interface TopicSettings {
  log: LogConfig;
  retention: RetentionConfig;
  minInsyncReplicas: number;
}

/** Turns effective configs into the typed settings the log and the retention scheduler use. */
export function topicSettings(overrides: ConfigMap, brokerDefaults: ConfigMap): TopicSettings {
  const values = new Map(effectiveTopicConfigs(overrides, brokerDefaults).map((entry) => [entry.name, entry.value]));
  for (const [name, value] of values) {
    const reason = TOPIC_CONFIGS.get(name)!.invalid(value);
    if (reason !== null) throw new ConfigError(`${name} ${reason}`);
  }
  const flushMessages = numberOf(values, 'flush.messages');
  const flushMs = numberOf(values, 'flush.ms');
  const flush: FlushPolicy = flushMessages === 1 ? { mode: 'every-append' } : flushMs < Number.MAX_SAFE_INTEGER ? { mode: 'interval', intervalMs: flushMs } : { mode: 'os' };
  const policy = values.get('cleanup.policy')!.split(',').map((part) => part.trim()).sort().join(',') as CleanupPolicy;
  const log = resolveLogConfig({
    segmentBytes: numberOf(values, 'segment.bytes'),
    segmentMs: numberOf(values, 'segment.ms'),
    segmentIndexBytes: numberOf(values, 'segment.index.bytes'),
    indexIntervalBytes: numberOf(values, 'index.interval.bytes'),
    maxMessageBytes: numberOf(values, 'max.message.bytes'),
    fileDeleteDelayMs: numberOf(values, 'file.delete.delay.ms'),
    messageTimestampType: values.get('message.timestamp.type') as LogConfig['messageTimestampType'],
    messageTimestampBeforeMaxMs: numberOf(values, 'message.timestamp.before.max.ms'),
    messageTimestampAfterMaxMs: numberOf(values, 'message.timestamp.after.max.ms'),
    cleanupPolicy: policy,
    flush,
  });
  return {
    log,
    retention: {
      retentionMs: numberOf(values, 'retention.ms'),
      retentionBytes: numberOf(values, 'retention.bytes'),
      deleteRetentionMs: numberOf(values, 'delete.retention.ms'),
      minCompactionLagMs: numberOf(values, 'min.compaction.lag.ms'),
      minCleanableDirtyRatio: numberOf(values, 'min.cleanable.dirty.ratio'),
    },
    minInsyncReplicas: numberOf(values, 'min.insync.replicas'),
  };
}
