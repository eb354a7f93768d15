// The admin APIs through the dispatcher, as a client sends them: request frames built with the
// generated encoders, responses decoded with the generated decoders. No sockets: the broker's
// handleFrame is called directly.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../engine/broker.js';
import { defaultBrokerConfig, type BrokerConfig } from '../engine/brokerConfig.js';
import { ManualClock } from '../engine/clock.js';
import { MemoryLogger } from '../engine/logger.js';
import { MemoryMetadataStore } from '../engine/metadataStore.js';
import { ErrorCode } from '../protocol/errors.js';
import { encodeAlterConfigsRequest, type AlterConfigsRequest } from '../protocol/generated/alterConfigsRequest.js';
import { decodeAlterConfigsResponse, type AlterConfigsResponse } from '../protocol/generated/alterConfigsResponse.js';
import { encodeCreatePartitionsRequest, type CreatePartitionsRequest } from '../protocol/generated/createPartitionsRequest.js';
import { decodeCreatePartitionsResponse, type CreatePartitionsResponse } from '../protocol/generated/createPartitionsResponse.js';
import { encodeCreateTopicsRequest, type CreateTopicsRequest, type CreateTopicsRequestCreatableTopic } from '../protocol/generated/createTopicsRequest.js';
import { decodeCreateTopicsResponse, type CreateTopicsResponse, type CreateTopicsResponseCreatableTopicResult } from '../protocol/generated/createTopicsResponse.js';
import { encodeDeleteRecordsRequest, type DeleteRecordsRequest } from '../protocol/generated/deleteRecordsRequest.js';
import { decodeDeleteRecordsResponse, type DeleteRecordsResponse } from '../protocol/generated/deleteRecordsResponse.js';
import { encodeDeleteTopicsRequest, type DeleteTopicsRequest } from '../protocol/generated/deleteTopicsRequest.js';
import { decodeDeleteTopicsResponse, type DeleteTopicsResponse } from '../protocol/generated/deleteTopicsResponse.js';
import { encodeDescribeConfigsRequest, type DescribeConfigsRequest, type DescribeConfigsRequestResource } from '../protocol/generated/describeConfigsRequest.js';
import { decodeDescribeConfigsResponse, type DescribeConfigsResponse, type DescribeConfigsResponseResult } from '../protocol/generated/describeConfigsResponse.js';
import { encodeIncrementalAlterConfigsRequest, type IncrementalAlterConfigsRequest } from '../protocol/generated/incrementalAlterConfigsRequest.js';
import { decodeIncrementalAlterConfigsResponse, type IncrementalAlterConfigsResponse } from '../protocol/generated/incrementalAlterConfigsResponse.js';
import { encodeMetadataRequest, type MetadataRequest } from '../protocol/generated/metadataRequest.js';
import { decodeMetadataResponse, type MetadataResponse } from '../protocol/generated/metadataResponse.js';
import { readResponseHeader, responseHeaderVersion, writeRequestHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import { labelledBatch, temporaryDirectory } from './support/logs.js';

const TOPIC = 2;
const BROKER = 4;
const DYNAMIC_TOPIC_CONFIG = 1;
const STATIC_BROKER_CONFIG = 4;
const DEFAULT_CONFIG = 5;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Started {
  broker: Broker;
  config: BrokerConfig;
  store: MemoryMetadataStore;
  logger: MemoryLogger;
}

async function startBroker(options: { topicDefaults?: Record<string, string>; dataDir?: string; store?: MemoryMetadataStore } = {}): Promise<Started> {
  let dataDir = options.dataDir;
  if (dataDir === undefined) {
    const dir = await temporaryDirectory('tidelog-admin-');
    cleanups.push(dir.remove);
    dataDir = dir.path;
  }
  const config: BrokerConfig = { ...defaultBrokerConfig(), dataDir, topicDefaults: options.topicDefaults ?? {} };
  const store = options.store ?? new MemoryMetadataStore();
  const logger = new MemoryLogger();
  const broker = await Broker.start({ config, metadataStore: store, clock: new ManualClock(), logger });
  cleanups.push(async () => {
    await broker.shutdown();
    // Every refusal above is an expected condition: nothing may reach the log as an error.
    expect(logger.lines.filter((line) => line.level === 'error')).toEqual([]);
  });
  return { broker, config, store, logger };
}

let correlationId = 0;

/** Sends one request through the dispatcher and decodes the response body. */
async function call<Request, Response>(
  broker: Broker,
  apiKey: number,
  version: number,
  encode: (writer: ByteWriter, version: number, message: Request) => void,
  decode: (reader: ByteReader, version: number) => Response,
  request: Request,
): Promise<Response> {
  const id = ++correlationId;
  const writer = new ByteWriter();
  writeRequestHeader(writer, { apiKey, apiVersion: version, correlationId: id, clientId: 'admin-test' });
  encode(writer, version, request);
  const response = await broker.handleFrame(writer.toBuffer(), { connectionId: 1, remoteAddress: '127.0.0.1:50000', signal: new AbortController().signal });
  if (response === null) throw new Error('no response');
  const frame = Buffer.concat(response.chunks);
  response.release();
  const reader = new ByteReader(frame);
  expect(reader.readInt32()).toBe(frame.length - 4);
  expect(readResponseHeader(reader, responseHeaderVersion(apiKey, version))).toBe(id);
  const body = decode(reader, version);
  expect(reader.remaining).toBe(0);
  return body;
}

function topicSpec(name: string, numPartitions = -1, extra: Partial<CreateTopicsRequestCreatableTopic> = {}): CreateTopicsRequestCreatableTopic {
  return { name, numPartitions, replicationFactor: -1, assignments: [], configs: [], ...extra };
}

function configsOf(configs: Record<string, string | null>): Array<{ name: string; value: string | null }> {
  return Object.entries(configs).map(([name, value]) => ({ name, value }));
}

const createTopics = (broker: Broker, topics: CreateTopicsRequestCreatableTopic[], options: { validateOnly?: boolean; version?: number } = {}): Promise<CreateTopicsResponse> =>
  call<CreateTopicsRequest, CreateTopicsResponse>(broker, 19, options.version ?? 3, encodeCreateTopicsRequest, decodeCreateTopicsResponse, { topics, timeoutMs: 5000, validateOnly: options.validateOnly ?? false });

async function createOne(broker: Broker, topic: CreateTopicsRequestCreatableTopic, options: { validateOnly?: boolean; version?: number } = {}): Promise<CreateTopicsResponseCreatableTopicResult> {
  const response = await createTopics(broker, [topic], options);
  expect(response.topics).toHaveLength(1);
  return response.topics[0]!;
}

const deleteTopics = (broker: Broker, topicNames: string[], version = 1): Promise<DeleteTopicsResponse> =>
  call<DeleteTopicsRequest, DeleteTopicsResponse>(broker, 20, version, encodeDeleteTopicsRequest, decodeDeleteTopicsResponse, { topicNames, timeoutMs: 5000 });

const metadata = (broker: Broker): Promise<MetadataResponse> =>
  call<MetadataRequest, MetadataResponse>(broker, 3, 4, encodeMetadataRequest, decodeMetadataResponse, { topics: null, allowAutoTopicCreation: false });

const createPartitions = (broker: Broker, topics: CreatePartitionsRequest['topics'], validateOnly = false): Promise<CreatePartitionsResponse> =>
  call<CreatePartitionsRequest, CreatePartitionsResponse>(broker, 37, 1, encodeCreatePartitionsRequest, decodeCreatePartitionsResponse, { topics, timeoutMs: 5000, validateOnly });

const describeConfigs = (broker: Broker, resources: DescribeConfigsRequestResource[], options: { version?: number; includeSynonyms?: boolean } = {}): Promise<DescribeConfigsResponse> =>
  call<DescribeConfigsRequest, DescribeConfigsResponse>(broker, 32, options.version ?? 2, encodeDescribeConfigsRequest, decodeDescribeConfigsResponse, { resources, includeSynonyms: options.includeSynonyms ?? false });

async function describeTopic(broker: Broker, name: string, options: { version?: number; includeSynonyms?: boolean; keys?: string[] } = {}): Promise<DescribeConfigsResponseResult> {
  const response = await describeConfigs(broker, [{ resourceType: TOPIC, resourceName: name, configurationKeys: options.keys ?? null }], options);
  expect(response.results).toHaveLength(1);
  return response.results[0]!;
}

/** name -> value of a described resource. */
async function topicConfigValues(broker: Broker, name: string): Promise<Record<string, string | null>> {
  const result = await describeTopic(broker, name);
  expect(result.errorCode).toBe(ErrorCode.NONE);
  return Object.fromEntries(result.configs.map((config) => [config.name, config.value]));
}

const alterConfigs = (broker: Broker, resources: AlterConfigsRequest['resources'], validateOnly = false): Promise<AlterConfigsResponse> =>
  call<AlterConfigsRequest, AlterConfigsResponse>(broker, 33, 1, encodeAlterConfigsRequest, decodeAlterConfigsResponse, { resources, validateOnly });

const incrementalAlterConfigs = (broker: Broker, resources: IncrementalAlterConfigsRequest['resources'], options: { validateOnly?: boolean; version?: number } = {}): Promise<IncrementalAlterConfigsResponse> =>
  call<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(broker, 44, options.version ?? 1, encodeIncrementalAlterConfigsRequest, decodeIncrementalAlterConfigsResponse, {
    resources,
    validateOnly: options.validateOnly ?? false,
  });

const deleteRecords = (broker: Broker, topics: DeleteRecordsRequest['topics'], version = 1): Promise<DeleteRecordsResponse> =>
  call<DeleteRecordsRequest, DeleteRecordsResponse>(broker, 21, version, encodeDeleteRecordsRequest, decodeDeleteRecordsResponse, { topics, timeoutMs: 5000 });

const SET = 0;
const DELETE = 1;
const APPEND = 2;
const SUBTRACT = 3;

describe('CreateTopics', () => {
  it('creates with the broker defaults for -1 at v3, and with explicit partitions and configs', async () => {
    const { broker, config } = await startBroker();
    const response = await createTopics(broker, [
      topicSpec('defaults'),
      topicSpec('explicit', 3, { replicationFactor: 1, configs: configsOf({ 'retention.ms': '1000', 'cleanup.policy': 'compact', 'segment.ms': null }) }),
    ]);
    expect(response.topics).toEqual([
      { name: 'defaults', errorCode: ErrorCode.NONE, errorMessage: null, topicId: expect.any(String), topicConfigErrorCode: 0, numPartitions: -1, replicationFactor: -1, configs: [] },
      { name: 'explicit', errorCode: ErrorCode.NONE, errorMessage: null, topicId: expect.any(String), topicConfigErrorCode: 0, numPartitions: -1, replicationFactor: -1, configs: [] },
    ]);
    expect(broker.topics.get('defaults')?.partitions).toBe(config.numPartitions);
    expect(broker.topics.get('explicit')?.partitions).toBe(3);
    // A null value means "not set": only the two real overrides are stored.
    expect(broker.topics.get('explicit')?.configs).toEqual({ 'retention.ms': '1000', 'cleanup.policy': 'compact' });
    for (let partition = 0; partition < 3; partition++) expect(existsSync(join(config.dataDir, `explicit-${partition}`))).toBe(true);

    const listed = await metadata(broker);
    expect(listed.topics.map((topic) => [topic.name, topic.partitions.length]).sort()).toEqual([
      ['defaults', 1],
      ['explicit', 3],
    ]);
  });

  it('accepts -1 at v0 too, where the response has no error message', async () => {
    const { broker } = await startBroker();
    expect(await createOne(broker, topicSpec('old-client'), { version: 0 })).toMatchObject({ name: 'old-client', errorCode: ErrorCode.NONE });
    const again = await createOne(broker, topicSpec('old-client'), { version: 0 });
    expect(again.errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS);
    // Not on the wire at v0: the decoder fills its default.
    expect(again.errorMessage ?? '').toBe('');
  });

  it('refuses an existing topic, bad names, bad partition counts and replication factors', async () => {
    const { broker } = await startBroker();
    expect((await createOne(broker, topicSpec('orders'))).errorCode).toBe(ErrorCode.NONE);
    const exists = await createOne(broker, topicSpec('orders', 4));
    expect(exists).toMatchObject({ errorCode: ErrorCode.TOPIC_ALREADY_EXISTS, errorMessage: expect.stringContaining('orders') });
    expect(broker.topics.get('orders')?.partitions).toBe(1);

    for (const name of ['.', '..', 'a'.repeat(250), 'a b']) {
      const result = await createOne(broker, topicSpec(name));
      expect(result.errorCode, name).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
      expect(result.errorMessage, name).toBeTruthy();
    }
    expect((await createOne(broker, topicSpec('a'.repeat(249)))).errorCode).toBe(ErrorCode.NONE);

    for (const count of [0, -5]) {
      const result = await createOne(broker, topicSpec(`partitions${count}`, count));
      expect(result.errorCode, String(count)).toBe(ErrorCode.INVALID_PARTITIONS);
      expect(result.errorMessage).toContain(String(count));
    }
    const replicated = await createOne(broker, topicSpec('replicated', 1, { replicationFactor: 3 }));
    expect(replicated).toMatchObject({ errorCode: ErrorCode.INVALID_REPLICATION_FACTOR, errorMessage: expect.stringContaining('3') });
    expect(broker.topics.list().map((topic) => topic.name).sort()).toEqual(['a'.repeat(249), 'orders']);
  });

  it('refuses invalid configs with the valid range in the message', async () => {
    const { broker } = await startBroker();
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'retention.ms': '-2' }, '[-1, 9223372036854775807]'],
      [{ 'cleanup.policy': 'bogus' }, 'delete, compact'],
      [{ 'segment.bytes': '1' }, '[14, 2147483647]'],
      [{ 'no.such.config': '1' }, 'unknown topic config no.such.config'],
    ];
    for (const [configs, range] of cases) {
      const result = await createOne(broker, topicSpec('configured', 1, { configs: configsOf(configs) }));
      expect(result.errorCode, JSON.stringify(configs)).toBe(ErrorCode.INVALID_CONFIG);
      expect(result.errorMessage).toContain(Object.keys(configs)[0]);
      expect(result.errorMessage).toContain(range);
    }
    expect(broker.topics.get('configured')).toBeUndefined();
  });

  it('with validateOnly checks everything and creates nothing', async () => {
    const { broker, config } = await startBroker();
    expect((await createOne(broker, topicSpec('dry-run', 2), { validateOnly: true })).errorCode).toBe(ErrorCode.NONE);
    expect((await createOne(broker, topicSpec('dry-run', 0), { validateOnly: true })).errorCode).toBe(ErrorCode.INVALID_PARTITIONS);
    expect(broker.topics.get('dry-run')).toBeUndefined();
    expect(existsSync(join(config.dataDir, 'dry-run-0'))).toBe(false);
    expect((await metadata(broker)).topics).toEqual([]);

    expect((await createOne(broker, topicSpec('real'))).errorCode).toBe(ErrorCode.NONE);
    expect((await createOne(broker, topicSpec('real'), { validateOnly: true })).errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS);
  });

  it('refuses every entry of a name listed twice, and creates the rest', async () => {
    const { broker } = await startBroker();
    const response = await createTopics(broker, [topicSpec('twice'), topicSpec('once'), topicSpec('twice', 2)]);
    expect(response.topics.map((topic) => [topic.name, topic.errorCode])).toEqual([
      ['twice', ErrorCode.INVALID_REQUEST],
      ['once', ErrorCode.NONE],
      ['twice', ErrorCode.INVALID_REQUEST],
    ]);
    expect(broker.topics.get('twice')).toBeUndefined();
    expect(broker.topics.get('once')).toBeDefined();
  });

  it('accepts a manual assignment only when every partition is on this node', async () => {
    const { broker, config } = await startBroker();
    const here = config.nodeId;
    const assigned = await createOne(broker, topicSpec('assigned', -1, { assignments: [{ partitionIndex: 1, brokerIds: [here] }, { partitionIndex: 0, brokerIds: [here] }] }));
    expect(assigned.errorCode).toBe(ErrorCode.NONE);
    expect(broker.topics.get('assigned')?.partitions).toBe(2);

    const elsewhere = await createOne(broker, topicSpec('elsewhere', -1, { assignments: [{ partitionIndex: 0, brokerIds: [here + 1] }] }));
    expect(elsewhere.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    const twoReplicas = await createOne(broker, topicSpec('two-replicas', -1, { assignments: [{ partitionIndex: 0, brokerIds: [here, here] }] }));
    expect(twoReplicas.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    const gap = await createOne(broker, topicSpec('gap', -1, { assignments: [{ partitionIndex: 0, brokerIds: [here] }, { partitionIndex: 2, brokerIds: [here] }] }));
    expect(gap.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    const both = await createOne(broker, topicSpec('both', 1, { assignments: [{ partitionIndex: 0, brokerIds: [here] }] }));
    expect(both.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect(broker.topics.list().map((topic) => topic.name)).toEqual(['assigned']);
  });

  it('keeps a created topic across a restart only when the metadata store persists', async () => {
    const first = await startBroker();
    expect((await createOne(first.broker, topicSpec('durable', 2, { configs: configsOf({ 'retention.ms': '1234' }) }))).errorCode).toBe(ErrorCode.NONE);
    await first.broker.shutdown();

    // The same store instance stands for a persistent one.
    const restarted = await startBroker({ dataDir: first.config.dataDir, store: first.store });
    expect((await metadata(restarted.broker)).topics.map((topic) => [topic.name, topic.partitions.length])).toEqual([['durable', 2]]);
    expect((await topicConfigValues(restarted.broker, 'durable'))['retention.ms']).toBe('1234');
    expect(restarted.broker.topics.partition('durable', 1)).toBeDefined();
    await restarted.broker.shutdown();

    // A fresh store knows nothing: the directories are left alone, the topic is gone.
    const forgotten = await startBroker({ dataDir: first.config.dataDir, store: new MemoryMetadataStore() });
    expect((await metadata(forgotten.broker)).topics).toEqual([]);
    expect(forgotten.logger.lines.some((line) => line.level === 'warn' && line.fields['topic'] === 'durable')).toBe(true);
    expect(existsSync(join(first.config.dataDir, 'durable-0'))).toBe(true);
  });
});

describe('DeleteTopics', () => {
  it('deletes a topic: Metadata no longer lists it and its partition directories are gone', async () => {
    const { broker, config } = await startBroker();
    await createTopics(broker, [topicSpec('doomed', 3), topicSpec('kept')]);
    expect(existsSync(join(config.dataDir, 'doomed-2'))).toBe(true);

    const response = await deleteTopics(broker, ['doomed', 'missing', 'a b', 'doomed']);
    expect(response.responses).toEqual([
      { name: 'doomed', errorCode: ErrorCode.NONE, topicId: expect.any(String), errorMessage: null },
      { name: 'missing', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, topicId: expect.any(String), errorMessage: null },
      { name: 'a b', errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, topicId: expect.any(String), errorMessage: null },
    ]);
    expect((await metadata(broker)).topics.map((topic) => topic.name)).toEqual(['kept']);
    for (let partition = 0; partition < 3; partition++) expect(existsSync(join(config.dataDir, `doomed-${partition}`))).toBe(false);
    expect(existsSync(join(config.dataDir, 'kept-0'))).toBe(true);

    // The name is free again.
    expect((await createOne(broker, topicSpec('doomed'))).errorCode).toBe(ErrorCode.NONE);
    expect((await deleteTopics(broker, ['doomed'], 0)).responses.map((result) => result.errorCode)).toEqual([ErrorCode.NONE]);
  });
});

describe('CreatePartitions', () => {
  it('raises the partition count and refuses to lower it or keep it', async () => {
    const { broker, config } = await startBroker();
    await createTopics(broker, [topicSpec('growing', 1)]);

    const raised = await createPartitions(broker, [{ name: 'growing', count: 3, assignments: null }]);
    expect(raised.results).toEqual([{ name: 'growing', errorCode: ErrorCode.NONE, errorMessage: null }]);
    expect(broker.topics.get('growing')?.partitions).toBe(3);
    expect(existsSync(join(config.dataDir, 'growing-2'))).toBe(true);
    expect((await metadata(broker)).topics[0]?.partitions).toHaveLength(3);

    for (const count of [2, 3]) {
      const [result] = (await createPartitions(broker, [{ name: 'growing', count, assignments: null }])).results;
      expect(result?.errorCode, String(count)).toBe(ErrorCode.INVALID_PARTITIONS);
      expect(result?.errorMessage).toContain('has 3 partitions');
    }
    const [missing] = (await createPartitions(broker, [{ name: 'missing', count: 2, assignments: null }])).results;
    expect(missing?.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(broker.topics.get('growing')?.partitions).toBe(3);
  });

  it('honours validateOnly and checks manual assignments', async () => {
    const { broker, config } = await startBroker();
    await createTopics(broker, [topicSpec('assigned', 1)]);
    const here = config.nodeId;

    expect((await createPartitions(broker, [{ name: 'assigned', count: 5, assignments: null }], true)).results[0]?.errorCode).toBe(ErrorCode.NONE);
    expect(broker.topics.get('assigned')?.partitions).toBe(1);

    const wrongCount = await createPartitions(broker, [{ name: 'assigned', count: 3, assignments: [{ brokerIds: [here] }] }]);
    expect(wrongCount.results[0]).toMatchObject({ errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: expect.stringContaining('needs 2 assignments') });
    const elsewhere = await createPartitions(broker, [{ name: 'assigned', count: 2, assignments: [{ brokerIds: [here + 5] }] }]);
    expect(elsewhere.results[0]?.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    expect(broker.topics.get('assigned')?.partitions).toBe(1);

    const placed = await createPartitions(broker, [{ name: 'assigned', count: 3, assignments: [{ brokerIds: [here] }, { brokerIds: [here] }] }]);
    expect(placed.results[0]?.errorCode).toBe(ErrorCode.NONE);
    expect(broker.topics.get('assigned')?.partitions).toBe(3);

    const twice = await createPartitions(broker, [
      { name: 'assigned', count: 4, assignments: null },
      { name: 'assigned', count: 5, assignments: null },
    ]);
    expect(twice.results.map((result) => result.errorCode)).toEqual([ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);
    expect(broker.topics.get('assigned')?.partitions).toBe(3);
  });
});

describe('DescribeConfigs', () => {
  it('shows overrides as DYNAMIC_TOPIC_CONFIG, broker values as STATIC_BROKER_CONFIG and the rest as DEFAULT_CONFIG', async () => {
    const { broker } = await startBroker({ topicDefaults: { 'log.segment.bytes': '2097152' } });
    await createTopics(broker, [topicSpec('described', 1, { configs: configsOf({ 'retention.ms': '3600000' }) })]);

    const result = await describeTopic(broker, 'described', { version: 1, includeSynonyms: true });
    expect(result).toMatchObject({ errorCode: ErrorCode.NONE, errorMessage: null, resourceType: TOPIC, resourceName: 'described' });
    const byName = new Map(result.configs.map((config) => [config.name, config]));
    expect(byName.size).toBe(18);
    expect(byName.get('retention.ms')).toMatchObject({
      name: 'retention.ms',
      value: '3600000',
      readOnly: false,
      isDefault: false,
      configSource: DYNAMIC_TOPIC_CONFIG,
      isSensitive: false,
      synonyms: [
        { name: 'retention.ms', value: '3600000', source: DYNAMIC_TOPIC_CONFIG },
        { name: 'log.retention.ms', value: '604800000', source: DEFAULT_CONFIG },
      ],
    });
    expect(byName.get('segment.bytes')).toMatchObject({
      value: '2097152',
      configSource: STATIC_BROKER_CONFIG,
      synonyms: [
        { name: 'log.segment.bytes', value: '2097152', source: STATIC_BROKER_CONFIG },
        { name: 'log.segment.bytes', value: '1073741824', source: DEFAULT_CONFIG },
      ],
    });
    expect(byName.get('cleanup.policy')).toMatchObject({ value: 'delete', readOnly: false, configSource: DEFAULT_CONFIG, synonyms: [{ name: 'log.cleanup.policy', value: 'delete', source: DEFAULT_CONFIG }] });
    expect(byName.get('max.message.bytes')).toMatchObject({ value: '1048588', configSource: DEFAULT_CONFIG });

    // Without includeSynonyms, none; v0 reports isDefault instead of a source.
    expect((await describeTopic(broker, 'described', { version: 2 })).configs.every((config) => config.synonyms?.length === 0)).toBe(true);
    const v0 = await describeTopic(broker, 'described', { version: 0, keys: ['retention.ms', 'cleanup.policy', 'no.such.key'] });
    expect(v0.configs.map((config) => [config.name, config.value, config.isDefault, config.configSource])).toEqual([
      ['cleanup.policy', 'delete', true, -1],
      ['retention.ms', '3600000', false, -1],
    ]);
  });

  it('answers unknown topics, brokers and resource types', async () => {
    const { broker, config } = await startBroker();
    const response = await describeConfigs(broker, [
      { resourceType: TOPIC, resourceName: 'missing', configurationKeys: null },
      { resourceType: TOPIC, resourceName: 'a b', configurationKeys: null },
      { resourceType: BROKER, resourceName: String(config.nodeId + 7), configurationKeys: null },
      { resourceType: 99, resourceName: 'x', configurationKeys: null },
      // The cluster-wide dynamic defaults: tidelog has none.
      { resourceType: BROKER, resourceName: '', configurationKeys: null },
    ]);
    expect(response.results.map((result) => [result.resourceName, result.errorCode, result.configs.length])).toEqual([
      ['missing', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
      ['a b', ErrorCode.INVALID_TOPIC_EXCEPTION, 0],
      [String(config.nodeId + 7), ErrorCode.INVALID_REQUEST, 0],
      ['x', ErrorCode.INVALID_REQUEST, 0],
      ['', ErrorCode.NONE, 0],
    ]);
    expect(response.results[3]?.errorMessage).toContain('resource type 99');
  });

  it('shows the broker configs, read-only', async () => {
    const { broker, config } = await startBroker({ topicDefaults: { 'log.retention.ms': '1000' } });
    const [result] = (await describeConfigs(broker, [{ resourceType: BROKER, resourceName: String(config.nodeId), configurationKeys: null }], { version: 1, includeSynonyms: true })).results;
    expect(result?.errorCode).toBe(ErrorCode.NONE);
    const byName = new Map(result!.configs.map((entry) => [entry.name, entry]));
    for (const name of ['num.partitions', 'auto.create.topics.enable', 'socket.request.max.bytes', 'log.retention.check.interval.ms', 'log.retention.ms', 'log.segment.bytes', 'log.cleanup.policy', 'message.max.bytes']) {
      expect(byName.get(name)?.readOnly, name).toBe(true);
    }
    expect(byName.get('num.partitions')).toMatchObject({ value: String(config.numPartitions), configSource: DEFAULT_CONFIG });
    expect(byName.get('auto.create.topics.enable')?.value).toBe('true');
    expect(byName.get('log.dirs')?.value).toBe(config.dataDir);
    expect(byName.get('log.dirs')?.configSource).toBe(STATIC_BROKER_CONFIG);
    expect(byName.get('log.retention.ms')).toMatchObject({
      value: '1000',
      configSource: STATIC_BROKER_CONFIG,
      synonyms: [
        { name: 'log.retention.ms', value: '1000', source: STATIC_BROKER_CONFIG },
        { name: 'log.retention.ms', value: '604800000', source: DEFAULT_CONFIG },
      ],
    });
    const [selected] = (await describeConfigs(broker, [{ resourceType: BROKER, resourceName: String(config.nodeId), configurationKeys: ['num.partitions'] }])).results;
    expect(selected?.configs.map((entry) => entry.name)).toEqual(['num.partitions']);
  });
});

describe('AlterConfigs', () => {
  it('replaces the overrides; invalid values and broker resources are refused', async () => {
    const { broker, config } = await startBroker();
    await createTopics(broker, [topicSpec('altered', 1, { configs: configsOf({ 'cleanup.policy': 'compact', 'retention.ms': '1000' }) })]);

    const replaced = await alterConfigs(broker, [{ resourceType: TOPIC, resourceName: 'altered', configs: configsOf({ 'retention.ms': '5000' }) }]);
    expect(replaced.responses).toEqual([{ errorCode: ErrorCode.NONE, errorMessage: null, resourceType: TOPIC, resourceName: 'altered' }]);
    const described = await describeTopic(broker, 'altered', { version: 1 });
    expect(described.configs.find((entry) => entry.name === 'retention.ms')).toMatchObject({ value: '5000', configSource: DYNAMIC_TOPIC_CONFIG });
    // Not named, so back to the default.
    expect(described.configs.find((entry) => entry.name === 'cleanup.policy')).toMatchObject({ value: 'delete', configSource: DEFAULT_CONFIG });

    const response = await alterConfigs(broker, [
      { resourceType: TOPIC, resourceName: 'altered', configs: configsOf({ 'retention.ms': '-2' }) },
      { resourceType: BROKER, resourceName: String(config.nodeId), configs: configsOf({ 'num.partitions': '3' }) },
      { resourceType: TOPIC, resourceName: 'missing', configs: [] },
      { resourceType: TOPIC, resourceName: 'nulls', configs: configsOf({ 'retention.ms': null }) },
    ]);
    expect(response.responses.map((result) => [result.resourceName, result.errorCode])).toEqual([
      ['altered', ErrorCode.INVALID_CONFIG],
      [String(config.nodeId), ErrorCode.INVALID_REQUEST],
      ['missing', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['nulls', ErrorCode.INVALID_REQUEST],
    ]);
    expect(response.responses[0]?.errorMessage).toContain('retention.ms must be in [-1, 9223372036854775807], got -2');
    expect(response.responses[1]?.errorMessage).toBe('broker configs are static; restart with --config');
    expect((await topicConfigValues(broker, 'altered'))['retention.ms']).toBe('5000');

    const dryRun = await alterConfigs(broker, [{ resourceType: TOPIC, resourceName: 'altered', configs: configsOf({ 'retention.ms': '9000' }) }], true);
    expect(dryRun.responses[0]?.errorCode).toBe(ErrorCode.NONE);
    expect(broker.topics.get('altered')?.configs).toEqual({ 'retention.ms': '5000' });
  });
});

describe('IncrementalAlterConfigs', () => {
  it('sets, deletes, appends and subtracts, visibly in DescribeConfigs', async () => {
    const { broker, config } = await startBroker();
    await createTopics(broker, [topicSpec('incremental', 1, { configs: configsOf({ 'segment.ms': '60000' }) })]);
    const alter = async (configs: Array<{ name: string; configOperation: number; value: string | null }>, version = 1): Promise<IncrementalAlterConfigsResponse['responses'][number]> => {
      const response = await incrementalAlterConfigs(broker, [{ resourceType: TOPIC, resourceName: 'incremental', configs }], { version });
      expect(response.responses).toHaveLength(1);
      return response.responses[0]!;
    };

    expect(await alter([{ name: 'retention.ms', configOperation: SET, value: '7000' }], 0)).toEqual({ errorCode: ErrorCode.NONE, errorMessage: null, resourceType: TOPIC, resourceName: 'incremental' });
    let values = await topicConfigValues(broker, 'incremental');
    expect(values['retention.ms']).toBe('7000');
    expect(values['segment.ms']).toBe('60000');

    expect((await alter([{ name: 'segment.ms', configOperation: DELETE, value: null }])).errorCode).toBe(ErrorCode.NONE);
    expect((await alter([{ name: 'cleanup.policy', configOperation: APPEND, value: 'compact' }])).errorCode).toBe(ErrorCode.NONE);
    values = await topicConfigValues(broker, 'incremental');
    expect(values['segment.ms']).toBe('604800000');
    expect(values['cleanup.policy']).toBe('delete,compact');
    expect(values['retention.ms']).toBe('7000');

    expect((await alter([{ name: 'cleanup.policy', configOperation: SUBTRACT, value: 'delete' }])).errorCode).toBe(ErrorCode.NONE);
    expect(broker.topics.get('incremental')?.configs).toEqual({ 'retention.ms': '7000', 'cleanup.policy': 'compact' });

    const invalid = await alter([
      { name: 'retention.ms', configOperation: SET, value: '1' },
      { name: 'segment.bytes', configOperation: SET, value: '1' },
    ]);
    expect(invalid).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG, errorMessage: expect.stringContaining('[14, 2147483647]') });
    expect(broker.topics.get('incremental')?.configs['retention.ms']).toBe('7000');
    expect((await alter([{ name: 'retention.ms', configOperation: 9, value: '1' }])).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect((await alter([{ name: 'retention.ms', configOperation: SET, value: null }])).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect((await alter([{ name: 'segment.bytes', configOperation: APPEND, value: '5' }])).errorCode).toBe(ErrorCode.INVALID_CONFIG);

    const onBroker = await incrementalAlterConfigs(broker, [{ resourceType: BROKER, resourceName: String(config.nodeId), configs: [{ name: 'num.partitions', configOperation: SET, value: '2' }] }]);
    expect(onBroker.responses[0]).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'broker configs are static; restart with --config' });

    const dryRun = await incrementalAlterConfigs(broker, [{ resourceType: TOPIC, resourceName: 'incremental', configs: [{ name: 'retention.ms', configOperation: DELETE, value: null }] }], { validateOnly: true });
    expect(dryRun.responses[0]?.errorCode).toBe(ErrorCode.NONE);
    expect(broker.topics.get('incremental')?.configs['retention.ms']).toBe('7000');
  });
});

describe('DeleteRecords', () => {
  it('moves the low watermark, and the log agrees', async () => {
    const { broker } = await startBroker();
    // Small segments so that whole segments fall below the new log start.
    await createTopics(broker, [topicSpec('trimmed', 2, { configs: configsOf({ 'segment.bytes': '1024', 'file.delete.delay.ms': '0' }) })]);
    const log = broker.topics.partition('trimmed', 0)!.log;
    for (let batch = 0; batch < 10; batch++) await log.append(labelledBatch(`b${batch}`, 5, 1_700_000_000_000 + batch * 10, { valueBytes: 60 }));
    expect(log.logEndOffset).toBe(50);
    const segmentsBefore = log.segmentCount;
    expect(segmentsBefore).toBeGreaterThan(2);

    const response = await deleteRecords(broker, [
      {
        name: 'trimmed',
        partitions: [
          { partitionIndex: 0, offset: 27n },
          { partitionIndex: 1, offset: 0n },
          { partitionIndex: 7, offset: 0n },
        ],
      },
      { name: 'missing', partitions: [{ partitionIndex: 0, offset: 0n }] },
    ]);
    expect(response.topics).toEqual([
      {
        name: 'trimmed',
        partitions: [
          { partitionIndex: 0, lowWatermark: 27n, errorCode: ErrorCode.NONE },
          { partitionIndex: 1, lowWatermark: 0n, errorCode: ErrorCode.NONE },
          { partitionIndex: 7, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
        ],
      },
      { name: 'missing', partitions: [{ partitionIndex: 0, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
    ]);
    expect(log.logStartOffset).toBe(27);
    expect(log.segmentCount).toBeLessThan(segmentsBefore);
    expect(log.segmentBaseOffsets()[0]).toBeLessThanOrEqual(27);

    // Past the high watermark or negative: refused, nothing moves. Below the log start: a no-op.
    const refused = await deleteRecords(broker, [
      {
        name: 'trimmed',
        partitions: [
          { partitionIndex: 0, offset: 51n },
          { partitionIndex: 0, offset: -2n },
          { partitionIndex: 0, offset: 10n },
        ],
      },
    ]);
    expect(refused.topics[0]?.partitions.map((partition) => [partition.errorCode, partition.lowWatermark])).toEqual([
      [ErrorCode.OFFSET_OUT_OF_RANGE, -1n],
      [ErrorCode.OFFSET_OUT_OF_RANGE, -1n],
      [ErrorCode.NONE, 27n],
    ]);
    expect(log.logStartOffset).toBe(27);

    // -1: up to the high watermark.
    const all = await deleteRecords(broker, [{ name: 'trimmed', partitions: [{ partitionIndex: 0, offset: -1n }] }], 0);
    expect(all.topics[0]?.partitions[0]).toEqual({ partitionIndex: 0, lowWatermark: 50n, errorCode: ErrorCode.NONE });
    expect(log.logStartOffset).toBe(50);
    expect(log.logEndOffset).toBe(50);
  });
});
