// How configs relate to each other and to the fixed limits (common/limits.ts, engine/configRelations.ts):
// a broker whose configs contradict each other does not start; a topic create or alter that
// contradicts the broker's configs is INVALID_CONFIG; single values are bounded by named limits.
import { afterEach, describe, expect, it } from 'vitest';
import { INT32_MAX, MAX_RELATIVE_OFFSET, MAX_SEGMENT_BYTES, PRODUCE_REQUEST_OVERHEAD_BYTES } from '../common/limits.js';
import { Broker } from '../engine/broker.js';
import { brokerConfigFromProperties, defaultBrokerConfig, type BrokerConfig } from '../engine/brokerConfig.js';
import { ManualClock } from '../engine/clock.js';
import { ConfigError } from '../engine/errors.js';
import { MIN_DECOMPRESSED_BATCH_LIMIT } from '../engine/log/appendValidation.js';
import { defaultLogConfig, maxIndexEntries, resolveLogConfig } from '../engine/log/logConfig.js';
import { MemoryLogger } from '../engine/logger.js';
import { MemoryMetadataStore, type MetadataStore } from '../engine/metadataStore.js';
import { TOPIC_CONFIGS } from '../engine/topicConfig.js';
import { TopicError } from '../engine/topicManager.js';
import { ErrorCode } from '../protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frame.js';
import { OFFSET_INDEX_ENTRY_BYTES } from '../segments/offsetIndex.js';
import { BATCH_HEADER_BYTES } from '../segments/recordBatch.js';
import { temporaryDirectory } from './support/logs.js';

const DEFAULT_MAX_MESSAGE_BYTES = defaultLogConfig.maxMessageBytes;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startBroker(overrides: Partial<BrokerConfig> = {}): Promise<Broker> {
  const dir = await temporaryDirectory('tidelog-config-relations-');
  cleanups.push(dir.remove);
  const config: BrokerConfig = { ...defaultBrokerConfig(), dataDir: dir.path, workerThreads: 1, ...overrides };
  const broker = await Broker.start({ config, metadataStore: new MemoryMetadataStore(), clock: new ManualClock(), logger: new MemoryLogger() });
  cleanups.push(() => broker.shutdown());
  return broker;
}

function refusal(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

describe('broker configs: socket.request.max.bytes against message.max.bytes', () => {
  it('refuses a socket.request.max.bytes that cannot carry a batch of the default message.max.bytes, naming both', () => {
    const error = refusal(() => brokerConfigFromProperties({ 'socket.request.max.bytes': String(1024 * 1024) }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('socket.request.max.bytes 1048576');
    expect(error.message).toContain(`message.max.bytes ${DEFAULT_MAX_MESSAGE_BYTES}`);
    expect(error.message).toContain(String(DEFAULT_MAX_MESSAGE_BYTES + PRODUCE_REQUEST_OVERHEAD_BYTES));
  });

  it('refuses a message.max.bytes above what the default socket.request.max.bytes carries', () => {
    const error = refusal(() => brokerConfigFromProperties({ 'message.max.bytes': String(DEFAULT_MAX_FRAME_BYTES) }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(`socket.request.max.bytes ${DEFAULT_MAX_FRAME_BYTES}`);
    expect(error.message).toContain(`message.max.bytes ${DEFAULT_MAX_FRAME_BYTES}`);
  });

  it('takes the two raised or lowered together, to the byte', () => {
    const maxMessageBytes = 200 * 1024 * 1024;
    const { config } = brokerConfigFromProperties({ 'message.max.bytes': String(maxMessageBytes), 'socket.request.max.bytes': String(maxMessageBytes + PRODUCE_REQUEST_OVERHEAD_BYTES) });
    expect(config.socketRequestMaxBytes).toBe(maxMessageBytes + PRODUCE_REQUEST_OVERHEAD_BYTES);
    expect(() => brokerConfigFromProperties({ 'message.max.bytes': String(maxMessageBytes), 'socket.request.max.bytes': String(maxMessageBytes + PRODUCE_REQUEST_OVERHEAD_BYTES - 1) })).toThrow(ConfigError);
    expect(() => brokerConfigFromProperties({ 'message.max.bytes': '65536', 'socket.request.max.bytes': String(65_536 + PRODUCE_REQUEST_OVERHEAD_BYTES) })).not.toThrow();
  });

  it('Broker.start refuses a config built in code the same way, before it touches the metadata store', async () => {
    const store = {
      load: () => Promise.reject(new Error('the metadata store was read')),
    } as unknown as MetadataStore;
    const config: BrokerConfig = { ...defaultBrokerConfig(), socketRequestMaxBytes: 1024 * 1024 };
    await expect(Broker.start({ config, metadataStore: store, clock: new ManualClock(), logger: new MemoryLogger() })).rejects.toThrow(/socket\.request\.max\.bytes 1048576 is too small for message\.max\.bytes 1048588/);
    const sessions: BrokerConfig = { ...defaultBrokerConfig(), groupMinSessionTimeoutMs: 10_000, groupMaxSessionTimeoutMs: 5_000 };
    await expect(Broker.start({ config: sessions, metadataStore: store, clock: new ManualClock(), logger: new MemoryLogger() })).rejects.toThrow(/group\.min\.session\.timeout\.ms 10000 must not exceed group\.max\.session\.timeout\.ms 5000/);
  });
});

describe('topic configs against the broker: INVALID_CONFIG', () => {
  const socketRequestMaxBytes = 2 * 1024 * 1024;
  const largestFitting = socketRequestMaxBytes - PRODUCE_REQUEST_OVERHEAD_BYTES;

  it('refuses to create a topic whose max.message.bytes no Produce request under socket.request.max.bytes could carry', async () => {
    const broker = await startBroker({ socketRequestMaxBytes });
    const error = await broker.topics.create('too-large', 1, 1, { 'max.message.bytes': String(largestFitting + 1) }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TopicError);
    expect((error as TopicError).kafkaErrorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect((error as TopicError).message).toContain(`max.message.bytes ${largestFitting + 1}`);
    expect((error as TopicError).message).toContain(`socket.request.max.bytes ${socketRequestMaxBytes}`);
    expect(broker.topics.get('too-large')).toBeUndefined();
    await expect(broker.topics.create('fits', 1, 1, { 'max.message.bytes': String(largestFitting) })).resolves.toMatchObject({ name: 'fits' });
  });

  it('refuses to alter a topic past it, by AlterConfigs and IncrementalAlterConfigs, and keeps the old configs', async () => {
    const broker = await startBroker({ socketRequestMaxBytes });
    await broker.topics.create('altered', 1, 1, {});
    for (const alter of [
      () => broker.topics.replaceConfigs('altered', { 'max.message.bytes': String(largestFitting + 1) }),
      () => broker.topics.alterConfigs('altered', [{ name: 'max.message.bytes', op: 'set', value: String(largestFitting + 1) }]),
    ]) {
      const error = await alter().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TopicError);
      expect((error as TopicError).kafkaErrorCode).toBe(ErrorCode.INVALID_CONFIG);
      expect((error as TopicError).message).toContain('socket.request.max.bytes');
    }
    expect(broker.topics.get('altered')?.configs).toEqual({});
  });
});

describe('limits defined once, checked when configs load', () => {
  it('segment.bytes stops at the largest position an index entry holds', () => {
    expect(MAX_SEGMENT_BYTES).toBe(INT32_MAX);
    expect(MAX_RELATIVE_OFFSET).toBe(INT32_MAX);
    expect(resolveLogConfig({ segmentBytes: MAX_SEGMENT_BYTES }).segmentBytes).toBe(MAX_SEGMENT_BYTES);
    expect(() => resolveLogConfig({ segmentBytes: MAX_SEGMENT_BYTES + 1 })).toThrow(`segment.bytes must be an integer in [14, ${MAX_SEGMENT_BYTES}]`);
    expect(TOPIC_CONFIGS.get('segment.bytes')!.invalid(String(MAX_SEGMENT_BYTES + 1))).toContain(String(MAX_SEGMENT_BYTES));
    expect(() => brokerConfigFromProperties({ 'log.segment.bytes': String(MAX_SEGMENT_BYTES + 1) })).toThrow(ConfigError);
  });

  it('max.message.bytes takes at least an empty batch; the index holds segment.index.bytes of entries', () => {
    expect(() => resolveLogConfig({ maxMessageBytes: BATCH_HEADER_BYTES - 1 })).toThrow(`max.message.bytes must be an integer in [${BATCH_HEADER_BYTES}, ${INT32_MAX}]`);
    expect(TOPIC_CONFIGS.get('max.message.bytes')!.invalid(String(BATCH_HEADER_BYTES))).toBeNull();
    expect(maxIndexEntries(resolveLogConfig({ segmentIndexBytes: 10 * OFFSET_INDEX_ENTRY_BYTES + 3 }))).toBe(10);
  });

  it('the topic configs default to the log config defaults, and the broker to Kafka socket.request.max.bytes', () => {
    const defaults: Record<string, number> = {
      'segment.bytes': defaultLogConfig.segmentBytes,
      'segment.ms': defaultLogConfig.segmentMs,
      'segment.index.bytes': defaultLogConfig.segmentIndexBytes,
      'index.interval.bytes': defaultLogConfig.indexIntervalBytes,
      'max.message.bytes': defaultLogConfig.maxMessageBytes,
      'message.timestamp.after.max.ms': defaultLogConfig.messageTimestampAfterMaxMs,
      'file.delete.delay.ms': defaultLogConfig.fileDeleteDelayMs,
    };
    for (const [name, value] of Object.entries(defaults)) expect(TOPIC_CONFIGS.get(name)!.defaultValue, name).toBe(String(value));
    expect(defaultLogConfig.maxMessageBytes).toBe(1048588);
    expect(defaultBrokerConfig().socketRequestMaxBytes).toBe(DEFAULT_MAX_FRAME_BYTES);
    expect(() => brokerConfigFromProperties({ 'produce.decompression.buffer.bytes': String(MIN_DECOMPRESSED_BATCH_LIMIT - 1) })).toThrow(`[${MIN_DECOMPRESSED_BATCH_LIMIT}, `);
  });
});
