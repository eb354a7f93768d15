// Issue 18, bad input: max.broker.partitions (KIP-578) refuses CreateTopics and CreatePartitions
// that would take the broker past it (POLICY_VIOLATION, naming the limit and the counts), and a
// creation that runs out of file descriptors is answered KAFKA_STORAGE_ERROR naming the process
// limit, with nothing of it left behind. Requests go through the dispatcher, as a client sends them.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../engine/broker.js';
import { brokerConfigFromProperties, DEFAULT_MAX_BROKER_PARTITIONS, MAX_BROKER_PARTITIONS_CEILING } from '../engine/brokerConfig.js';
import { ConfigError } from '../engine/errors.js';
import { checkDescriptorRoom, defaultReadHandles, defaultWriteHandles, descriptorErrorCode, descriptorExhaustionError, DESCRIPTOR_HEADROOM, FALLBACK_READ_HANDLES, FALLBACK_WRITE_HANDLES, parseOpenFilesLimit, readOpenFilesLimit } from '../engine/fileDescriptors.js';
import { LogManager } from '../engine/log/logManager.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/apiSchemas.js';
import { encodeCreatePartitionsRequest, type CreatePartitionsRequest } from '../protocol/generated/createPartitionsRequest.js';
import { decodeCreatePartitionsResponse, type CreatePartitionsResponse, type CreatePartitionsResponseTopicResult } from '../protocol/generated/createPartitionsResponse.js';
import { encodeCreateTopicsRequest, type CreateTopicsRequest } from '../protocol/generated/createTopicsRequest.js';
import { decodeCreateTopicsResponse, type CreateTopicsResponse, type CreateTopicsResponseCreatableTopicResult } from '../protocol/generated/createTopicsResponse.js';
import { encodeDescribeConfigsRequest, type DescribeConfigsRequest } from '../protocol/generated/describeConfigsRequest.js';
import { decodeDescribeConfigsResponse, type DescribeConfigsResponse } from '../protocol/generated/describeConfigsResponse.js';
import { encodeFindCoordinatorRequest, type FindCoordinatorRequest } from '../protocol/generated/findCoordinatorRequest.js';
import { decodeFindCoordinatorResponse, type FindCoordinatorResponse } from '../protocol/generated/findCoordinatorResponse.js';
import { encodeMetadataRequest, type MetadataRequest } from '../protocol/generated/metadataRequest.js';
import { decodeMetadataResponse, type MetadataResponse } from '../protocol/generated/metadataResponse.js';
import { sendRequest, startInProcessBroker, type InProcessBroker } from './support/inProcessBroker.js';

const LIMIT = 10;
const BROKER_RESOURCE = 4;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startBroker(): Promise<InProcessBroker> {
  // __consumer_offsets (created when a group first needs it) has one partition here, counted too.
  const started = await startInProcessBroker({ maxBrokerPartitions: LIMIT, offsetsTopicPartitions: 1, groupInitialRebalanceDelayMs: 0 });
  cleanups.push(started.stop);
  return started;
}

async function createTopics(broker: Broker, topics: Array<{ name: string; partitions: number }>, validateOnly = false): Promise<CreateTopicsResponseCreatableTopicResult[]> {
  const response = await sendRequest<CreateTopicsRequest, CreateTopicsResponse>(broker, ApiKey.CreateTopics, 3, encodeCreateTopicsRequest, decodeCreateTopicsResponse, {
    topics: topics.map((topic) => ({ name: topic.name, numPartitions: topic.partitions, replicationFactor: -1, assignments: [], configs: [] })),
    timeoutMs: 5000,
    validateOnly,
  });
  return response!.topics;
}

async function createPartitions(broker: Broker, name: string, count: number, validateOnly = false): Promise<CreatePartitionsResponseTopicResult> {
  const response = await sendRequest<CreatePartitionsRequest, CreatePartitionsResponse>(broker, ApiKey.CreatePartitions, 1, encodeCreatePartitionsRequest, decodeCreatePartitionsResponse, {
    topics: [{ name, count, assignments: null }],
    timeoutMs: 5000,
    validateOnly,
  });
  return response!.results[0]!;
}

async function metadata(broker: Broker): Promise<MetadataResponse> {
  const response = await sendRequest<MetadataRequest, MetadataResponse>(broker, ApiKey.Metadata, 4, encodeMetadataRequest, decodeMetadataResponse, { topics: null, allowAutoTopicCreation: false });
  return response!;
}

/** Partitions by topic, as Metadata reports them (internal topics included). */
async function partitionsByTopic(broker: Broker): Promise<Map<string, number>> {
  return new Map((await metadata(broker)).topics.map((topic) => [topic.name!, topic.partitions.length]));
}

async function brokerPartitionTotal(broker: Broker): Promise<number> {
  let total = 0;
  for (const partitions of (await partitionsByTopic(broker)).values()) total += partitions;
  return total;
}

/** FindCoordinator makes the group coordinator create __consumer_offsets. */
async function ensureOffsetsTopic(broker: Broker): Promise<void> {
  const response = await sendRequest<FindCoordinatorRequest, FindCoordinatorResponse>(broker, ApiKey.FindCoordinator, 1, encodeFindCoordinatorRequest, decodeFindCoordinatorResponse, { key: 'limit-test', keyType: 0 });
  expect(response!.errorCode).toBe(ErrorCode.NONE);
}

function policyRefusal(added: number, total: number, had: number): RegExp {
  return new RegExp(`^(creating|adding) ${added} partitions (for|to) topic \\S+ would bring this broker to ${total} partitions \\(it has ${had}\\), above max\\.broker\\.partitions=${LIMIT}$`);
}

describe('max.broker.partitions', () => {
  it('is a broker config: default, range, and __consumer_offsets must fit under it', () => {
    expect(brokerConfigFromProperties({}).config.maxBrokerPartitions).toBe(DEFAULT_MAX_BROKER_PARTITIONS);
    // The 50,000-partition benchmark (plus __consumer_offsets) fits under the default.
    expect(DEFAULT_MAX_BROKER_PARTITIONS).toBeGreaterThanOrEqual(50_000 + 50);
    expect(brokerConfigFromProperties({ 'max.broker.partitions': '50000' }).config.maxBrokerPartitions).toBe(50_000);
    for (const bad of ['0', '-1', 'ten', '1.5', String(MAX_BROKER_PARTITIONS_CEILING + 1)]) {
      expect(() => brokerConfigFromProperties({ 'max.broker.partitions': bad })).toThrow(new ConfigError(`max.broker.partitions must be an integer in [1, ${MAX_BROKER_PARTITIONS_CEILING}], got ${JSON.stringify(bad)}`));
    }
    expect(() => brokerConfigFromProperties({ 'max.broker.partitions': '20' })).toThrow(/offsets\.topic\.num\.partitions 50 must not exceed max\.broker\.partitions 20/);
    expect(brokerConfigFromProperties({ 'max.broker.partitions': '20', 'offsets.topic.num.partitions': '20' }).config.maxBrokerPartitions).toBe(20);
  });

  it('refuses the CreateTopics that would pass it with POLICY_VIOLATION, counting internal topics and earlier topics of the same request', async () => {
    const { broker } = await startBroker();
    await ensureOffsetsTopic(broker);
    const before = await brokerPartitionTotal(broker);
    expect((await partitionsByTopic(broker)).get('__consumer_offsets')).toBe(1);
    expect(before).toBe(1);

    // One request: the first topic fits, the second would pass the limit, the third fits again.
    const results = await createTopics(broker, [
      { name: 'first', partitions: 6 },
      { name: 'second', partitions: 6 },
      { name: 'third', partitions: LIMIT - before - 6 },
    ]);
    expect(results.map((result) => [result.name, result.errorCode])).toEqual([
      ['first', ErrorCode.NONE],
      ['second', ErrorCode.POLICY_VIOLATION],
      ['third', ErrorCode.NONE],
    ]);
    expect(results[1]!.errorMessage).toMatch(policyRefusal(6, before + 6 + 6, before + 6));

    const topics = await partitionsByTopic(broker);
    expect(topics.get('first')).toBe(6);
    expect(topics.has('second')).toBe(false);
    expect(topics.get('third')).toBe(LIMIT - before - 6);
    expect(await brokerPartitionTotal(broker)).toBe(LIMIT);

    // At the limit, even one more partition is refused, and validateOnly gets the same answer.
    for (const validateOnly of [false, true]) {
      const [refused] = await createTopics(broker, [{ name: 'fourth', partitions: 1 }], validateOnly);
      expect(refused).toMatchObject({ errorCode: ErrorCode.POLICY_VIOLATION });
      expect(refused!.errorMessage).toMatch(policyRefusal(1, LIMIT + 1, LIMIT));
    }
    expect((await partitionsByTopic(broker)).has('fourth')).toBe(false);
  });

  it('answers validateOnly as a real request would, and creates nothing', async () => {
    const { broker, config } = await startBroker();
    const [fits, passes] = await createTopics(broker, [{ name: 'fits', partitions: LIMIT }, { name: 'passes', partitions: LIMIT + 1 }], true);
    expect(fits).toMatchObject({ errorCode: ErrorCode.NONE });
    expect(passes).toMatchObject({ errorCode: ErrorCode.POLICY_VIOLATION });
    expect(passes!.errorMessage).toMatch(policyRefusal(LIMIT + 1, LIMIT + 1, 0));
    expect(await brokerPartitionTotal(broker)).toBe(0);
    expect(existsSync(join(config.dataDir, 'fits-0'))).toBe(false);
  });

  it('refuses the CreatePartitions that would pass it, validateOnly included, and keeps the count', async () => {
    const { broker, config } = await startBroker();
    expect((await createTopics(broker, [{ name: 'grow', partitions: 6 }]))[0]).toMatchObject({ errorCode: ErrorCode.NONE });
    for (const validateOnly of [true, false]) {
      const refused = await createPartitions(broker, 'grow', LIMIT + 1, validateOnly);
      expect(refused).toMatchObject({ errorCode: ErrorCode.POLICY_VIOLATION });
      expect(refused.errorMessage).toMatch(policyRefusal(LIMIT + 1 - 6, LIMIT + 1, 6));
    }
    expect((await partitionsByTopic(broker)).get('grow')).toBe(6);
    expect(existsSync(join(config.dataDir, 'grow-6'))).toBe(false);

    // Up to the limit is fine; past it, any topic is refused.
    expect(await createPartitions(broker, 'grow', LIMIT)).toMatchObject({ errorCode: ErrorCode.NONE });
    expect((await createTopics(broker, [{ name: 'more', partitions: 1 }]))[0]).toMatchObject({ errorCode: ErrorCode.POLICY_VIOLATION });
    expect((await partitionsByTopic(broker)).get('grow')).toBe(LIMIT);
  });

  it('is shown by DescribeConfigs on the broker', async () => {
    const { broker, config } = await startBroker();
    const response = await sendRequest<DescribeConfigsRequest, DescribeConfigsResponse>(broker, ApiKey.DescribeConfigs, 2, encodeDescribeConfigsRequest, decodeDescribeConfigsResponse, {
      resources: [{ resourceType: BROKER_RESOURCE, resourceName: String(config.nodeId), configurationKeys: ['max.broker.partitions'] }],
      includeSynonyms: false,
    });
    expect(response!.results[0]!.configs.map((entry) => [entry.name, entry.value])).toEqual([['max.broker.partitions', String(LIMIT)]]);
  });
});

describe('a creation that runs out of file descriptors', () => {
  /** createLogs opens the first `opened` partitions' logs, then fails as the kernel would. */
  function failCreateLogsAfter(opened: number): void {
    const original = LogManager.prototype.createLogs;
    vi.spyOn(LogManager.prototype, 'createLogs').mockImplementation(async function (this: LogManager, topic: string, partitions: readonly number[]) {
      await original.call(this, topic, partitions.slice(0, opened));
      throw Object.assign(new Error(`EMFILE: too many open files, open '${topic}-${partitions[opened]}/00000000000000000000.log'`), { code: 'EMFILE', errno: -24, syscall: 'open' });
    });
  }

  const outOfDescriptors = /^creating \d+ partition logs of topic \S+ failed: out of file descriptors \(EMFILE\): the process limit is (\d+|unknown)/;

  it('is answered KAFKA_STORAGE_ERROR naming the limit, and leaves no topic, record or directory behind', async () => {
    const { broker, config, logger } = await startBroker();
    failCreateLogsAfter(3);
    const [failed, other] = await createTopics(broker, [{ name: 'halfway', partitions: 6 }, { name: 'unaffected', partitions: 2 }]);
    expect(failed).toMatchObject({ name: 'halfway', errorCode: ErrorCode.KAFKA_STORAGE_ERROR });
    expect(failed!.errorMessage).toMatch(outOfDescriptors);
    expect(failed!.errorMessage).toContain('ulimit -n');
    // The mock fails every creation: the next topic of the request is answered the same way.
    expect(other).toMatchObject({ name: 'unaffected', errorCode: ErrorCode.KAFKA_STORAGE_ERROR });
    vi.restoreAllMocks();

    expect(await partitionsByTopic(broker)).toEqual(new Map());
    const leftovers = (await readdir(config.dataDir)).filter((entry) => entry.startsWith('halfway') || entry.startsWith('unaffected'));
    expect(leftovers).toEqual([]);
    expect(logger.lines.filter((line) => line.level === 'error')).toEqual([]);

    // The partitions it had counted are free again, and the same name can be created.
    expect((await createTopics(broker, [{ name: 'halfway', partitions: LIMIT }]))[0]).toMatchObject({ errorCode: ErrorCode.NONE });
    expect((await partitionsByTopic(broker)).get('halfway')).toBe(LIMIT);
  });

  it('in CreatePartitions leaves the topic at its old count without the new partitions', async () => {
    const { broker, config } = await startBroker();
    expect((await createTopics(broker, [{ name: 'grow', partitions: 2 }]))[0]).toMatchObject({ errorCode: ErrorCode.NONE });
    failCreateLogsAfter(1);
    const failed = await createPartitions(broker, 'grow', 6);
    expect(failed).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR });
    expect(failed.errorMessage).toMatch(outOfDescriptors);
    vi.restoreAllMocks();

    expect((await partitionsByTopic(broker)).get('grow')).toBe(2);
    expect(existsSync(join(config.dataDir, 'grow-1'))).toBe(true);
    expect(existsSync(join(config.dataDir, 'grow-2'))).toBe(false);
    expect(await createPartitions(broker, 'grow', LIMIT)).toMatchObject({ errorCode: ErrorCode.NONE });
    expect((await partitionsByTopic(broker)).get('grow')).toBe(LIMIT);
  });
});

describe('fileDescriptors', () => {
  it('defaults log.write.handles.max to half the soft open-files limit, within [64, 1,000,000], and to 4,096 when the limit is unknown or unlimited', () => {
    expect(defaultWriteHandles({ soft: 20_000, hard: 20_000 })).toBe(10_000);
    expect(defaultWriteHandles({ soft: 1024, hard: 524_288 })).toBe(512);
    expect(defaultWriteHandles({ soft: 100, hard: 100 })).toBe(64);
    expect(defaultWriteHandles({ soft: 10_000_000, hard: 10_000_000 })).toBe(1_000_000);
    expect(defaultWriteHandles({ soft: null, hard: null })).toBe(FALLBACK_WRITE_HANDLES);
    expect(defaultWriteHandles(null)).toBe(FALLBACK_WRITE_HANDLES);
  });

  it('defaults log.read.handles.max to 512, at most an eighth of the soft open-files limit and at least 16', () => {
    expect(defaultReadHandles({ soft: 20_000, hard: 20_000 })).toBe(512);
    expect(defaultReadHandles({ soft: 1024, hard: 524_288 })).toBe(128);
    expect(defaultReadHandles({ soft: 64, hard: 64 })).toBe(16);
    expect(defaultReadHandles(null)).toBe(FALLBACK_READ_HANDLES);
  });

  const limits = 'Max cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 524288               files     \n';

  it('reads the soft and hard open-files limits, null when unlimited or absent', () => {
    expect(parseOpenFilesLimit(limits)).toEqual({ soft: 1024, hard: 524288 });
    expect(parseOpenFilesLimit('Max open files            unlimited            unlimited            files     \n')).toEqual({ soft: null, hard: null });
    expect(parseOpenFilesLimit('nothing here')).toBeNull();
    expect(readOpenFilesLimit('/nonexistent/limits')).toBeNull();
  });

  it('names the limit for EMFILE and ENFILE, found by code, cause or message; null for other errors', () => {
    const limit = { soft: 1024, hard: 524288 };
    const emfile = Object.assign(new Error('EMFILE: too many open files, open x'), { code: 'EMFILE' });
    expect(descriptorExhaustionError(emfile, 'creating 3 partition logs of topic t', limit)?.message).toBe(
      'creating 3 partition logs of topic t failed: out of file descriptors (EMFILE): the process limit is 1024 open files (ulimit -n; hard limit 524288); raise it, or lower log.write.handles.max and log.read.handles.max (segment files held open)',
    );
    expect(descriptorErrorCode(new Error('wrapped', { cause: emfile }))).toBe('EMFILE');
    expect(descriptorErrorCode(new Error('recover x failed: ENFILE: file table overflow, open y'))).toBe('ENFILE');
    expect(descriptorExhaustionError(new Error('ENOSPC: no space left on device'), 'x', limit)).toBeNull();
    expect(descriptorExhaustionError(emfile, 'x', limit)?.kafkaErrorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
  });

  it('refuses a creation that would leave less than the headroom free', async () => {
    const limit = { soft: 1000, hard: 2000 };
    await expect(checkDescriptorRoom(1000 - 100 - DESCRIPTOR_HEADROOM, 'creating', limit, 100)).resolves.toBeUndefined();
    await expect(checkDescriptorRoom(1000 - 100 - DESCRIPTOR_HEADROOM + 1, 'creating 773 partitions for topic t', limit, 100)).rejects.toThrow(
      `not enough file descriptors: creating 773 partitions for topic t needs about 773 more open files (one per partition log) and ${DESCRIPTOR_HEADROOM} to spare, and this process has 100 open; the process limit is 1000 open files (ulimit -n; hard limit 2000)`,
    );
    await expect(checkDescriptorRoom(1_000_000, 'creating', { soft: null, hard: null }, 100)).resolves.toBeUndefined();
  });
});
