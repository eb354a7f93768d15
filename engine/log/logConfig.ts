// Per-log settings, named after Kafka's topic configs, with Kafka's defaults. Every value is
// range-checked when a config is built against the limits it must fit (an index position is an
// int32, so a segment stays within MAX_SEGMENT_BYTES). A batch must also fit in a segment: that is
// checked per batch when appended, as in Kafka (appendValidation.ts); relations to the broker's
// configs are in ../configRelations.ts.
import { INT32_MAX, MAX_SEGMENT_BYTES } from '../../common/limits.js';
import { OFFSET_INDEX_ENTRY_BYTES } from '../../segments/offsetIndex.js';
import { BATCH_HEADER_BYTES } from '../../segments/recordBatch.js';
import { ConfigError } from '../errors.js';

export type FlushPolicy =
  /** fdatasync before acknowledging; concurrent appends share one fdatasync (group commit). */
  | { mode: 'every-append' }
  /** fdatasync every intervalMs (log.flush.interval.ms); acknowledge once written. */
  | { mode: 'interval'; intervalMs: number }
  /** Leave flushing to the OS; the log still flushes on roll and on close. */
  | { mode: 'os' };

export type CleanupPolicy = 'delete' | 'compact' | 'compact,delete';

export interface LogConfig {
  /** segment.bytes: roll when the .log would grow past this. */
  segmentBytes: number;
  /** segment.ms: roll a non-empty segment this long after its first append. */
  segmentMs: number;
  /** segment.index.bytes: roll when the offset index reaches this size. */
  segmentIndexBytes: number;
  /** index.interval.bytes: log bytes between two index entries. */
  indexIntervalBytes: number;
  /** max.message.bytes: largest record batch accepted. */
  maxMessageBytes: number;
  flush: FlushPolicy;
  /** file.delete.delay.ms: how long a deleted segment's renamed files stay for reads in flight. */
  fileDeleteDelayMs: number;
  /** message.timestamp.type */
  messageTimestampType: 'CreateTime' | 'LogAppendTime';
  /** message.timestamp.before.max.ms: how far behind the broker's clock a CreateTime record may be (MAX_SAFE_INTEGER: unbounded). */
  messageTimestampBeforeMaxMs: number;
  /** message.timestamp.after.max.ms: how far ahead of the broker's clock a CreateTime record may be. */
  messageTimestampAfterMaxMs: number;
  /** cleanup.policy: compacted logs may have offset gaps, others never do. */
  cleanupPolicy: CleanupPolicy;
  /** Bytes of appends queued behind the writer before append() waits for room. */
  maxQueuedAppendBytes: number;
}

const MIB = 1024 * 1024;

/** The smallest segment.bytes: Kafka's (the size of a legacy v0 record's overhead). */
export const MIN_SEGMENT_BYTES = 14;
/** The smallest segment.index.bytes tidelog takes: room for a few entries of each index. */
export const MIN_SEGMENT_INDEX_BYTES = 24;
/** The smallest max.message.bytes: a batch with its header and no records. */
export const MIN_MAX_MESSAGE_BYTES = BATCH_HEADER_BYTES;

export const defaultLogConfig: Readonly<LogConfig> = Object.freeze({
  segmentBytes: 1024 * MIB,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  segmentIndexBytes: 10 * MIB,
  indexIntervalBytes: 4096,
  // Kafka's: 1 MiB of records plus a batch's length and offset fields.
  maxMessageBytes: MIB + 12,
  flush: { mode: 'os' } as FlushPolicy,
  fileDeleteDelayMs: 60_000,
  messageTimestampType: 'CreateTime',
  messageTimestampBeforeMaxMs: Number.MAX_SAFE_INTEGER,
  // Kafka 4.0's default: a producer clock an hour ahead is a misconfiguration, not data.
  messageTimestampAfterMaxMs: 60 * 60 * 1000,
  cleanupPolicy: 'delete',
  maxQueuedAppendBytes: 64 * MIB,
});

function requireIntegerInRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/** Fills defaults and checks every value and relation; throws ConfigError naming the valid range. */
export function resolveLogConfig(overrides: Partial<LogConfig> = {}): LogConfig {
  const config: LogConfig = { ...defaultLogConfig, ...overrides };
  requireIntegerInRange('segment.bytes', config.segmentBytes, MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
  requireIntegerInRange('segment.ms', config.segmentMs, 1, Number.MAX_SAFE_INTEGER);
  requireIntegerInRange('segment.index.bytes', config.segmentIndexBytes, MIN_SEGMENT_INDEX_BYTES, INT32_MAX);
  requireIntegerInRange('index.interval.bytes', config.indexIntervalBytes, 0, INT32_MAX);
  requireIntegerInRange('max.message.bytes', config.maxMessageBytes, MIN_MAX_MESSAGE_BYTES, INT32_MAX);
  requireIntegerInRange('message.timestamp.before.max.ms', config.messageTimestampBeforeMaxMs, 0, Number.MAX_SAFE_INTEGER);
  requireIntegerInRange('message.timestamp.after.max.ms', config.messageTimestampAfterMaxMs, 0, Number.MAX_SAFE_INTEGER);
  requireIntegerInRange('file.delete.delay.ms', config.fileDeleteDelayMs, 0, Number.MAX_SAFE_INTEGER);
  requireIntegerInRange('max queued append bytes', config.maxQueuedAppendBytes, 1, Number.MAX_SAFE_INTEGER);
  if (config.flush.mode === 'interval') requireIntegerInRange('log.flush.interval.ms', config.flush.intervalMs, 1, Number.MAX_SAFE_INTEGER);
  if (!['delete', 'compact', 'compact,delete'].includes(config.cleanupPolicy)) {
    throw new ConfigError(`cleanup.policy must be one of delete, compact, compact,delete; got ${String(config.cleanupPolicy)}`);
  }
  if (config.messageTimestampType !== 'CreateTime' && config.messageTimestampType !== 'LogAppendTime') {
    throw new ConfigError(`message.timestamp.type must be CreateTime or LogAppendTime, got ${String(config.messageTimestampType)}`);
  }
  return config;
}

export function maxIndexEntries(config: LogConfig): number {
  return Math.floor(config.segmentIndexBytes / OFFSET_INDEX_ENTRY_BYTES);
}

export function hasContiguousOffsets(config: LogConfig): boolean {
  return !config.cleanupPolicy.includes('compact');
}
