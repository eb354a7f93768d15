// The bundled admin client: topics, partitions, configs, offsets, records and consumer groups.
//
// One BrokerConnection per broker address (replaced when it fails). Topic requests go to the
// controller named by Metadata (any broker when none is named); ListOffsets and DeleteRecords go to
// each partition's leader; group requests go to the group's coordinator, found with
// FindCoordinator and cached until NOT_COORDINATOR / a connection failure.
//
// Every call has a deadline (requestTimeoutMs, default 30 s): each request's own timeout is what
// is left of it, broker-side timeoutMs fields get the same, and the whole call rejects with
// KafkaRequestTimeoutError when it passes. Connection failures and coordinator/leader movement are
// retried (with backoff) inside the deadline; every other Kafka error code rejects at once with a
// KafkaProtocolError naming it (and the broker's message). A reset of a group that has active
// members rejects with KafkaGroupActiveError (the broker's UNKNOWN_MEMBER_ID).
import { ErrorCode } from '../protocol/errors.js';
import {
  decodeConsumerProtocolAssignment,
  decodeCreatePartitionsResponse,
  decodeCreateTopicsResponse,
  decodeDeleteGroupsResponse,
  decodeDeleteRecordsResponse,
  decodeDeleteTopicsResponse,
  decodeDescribeConfigsResponse,
  decodeDescribeGroupsResponse,
  decodeFindCoordinatorResponse,
  decodeIncrementalAlterConfigsResponse,
  decodeListGroupsResponse,
  decodeListOffsetsResponse,
  decodeMetadataResponse,
  decodeOffsetCommitResponse,
  decodeOffsetFetchResponse,
  encodeCreatePartitionsRequest,
  encodeCreateTopicsRequest,
  encodeDeleteGroupsRequest,
  encodeDeleteRecordsRequest,
  encodeDeleteTopicsRequest,
  encodeDescribeConfigsRequest,
  encodeDescribeGroupsRequest,
  encodeFindCoordinatorRequest,
  encodeIncrementalAlterConfigsRequest,
  encodeListGroupsRequest,
  encodeListOffsetsRequest,
  encodeMetadataRequest,
  encodeOffsetCommitRequest,
  encodeOffsetFetchRequest,
  type DescribeConfigsResponseResourceResult,
  type MetadataResponse,
  type MetadataResponseTopic,
} from '../protocol/generated/index.js';
import { INT32_MAX, MAX_REQUEST_TIMEOUT_MS } from '../common/limits.js';
import { ApiKey } from '../protocol/generated/apiSchemas.js';
import { ByteReader } from '../protocol/wire.js';
import { parseBrokerAddress } from './cluster.js';
import { BrokerConnection, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, type BodyDecoder, type BodyEncoder } from './connection.js';
import { KafkaClientError, KafkaClosedError, KafkaConfigError, KafkaConnectionError, KafkaProtocolError, KafkaRequestTimeoutError } from './errors.js';

/** The admin client's API keys: the generated table, under the name it has always been exported by. */
export const AdminApiKey = ApiKey;

const RESOURCE_TOPIC = 2;
const CONFIG_SET = 0;
const CONFIG_DELETE = 1;
const LATEST_TIMESTAMP = -1n;
const EARLIEST_TIMESTAMP = -2n;
const RETRY_BACKOFF_MS = 50;
const RETRY_BACKOFF_MAX_MS = 1_000;
/** Codes worth another try after a backoff (the coordinator or a leader moved or is loading). */
const RETRIED_CODES: ReadonlySet<number> = new Set([
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
]);
const CONFIG_SOURCES: Readonly<Record<number, string>> = {
  0: 'UNKNOWN',
  1: 'DYNAMIC_TOPIC_CONFIG',
  2: 'DYNAMIC_BROKER_CONFIG',
  3: 'DYNAMIC_DEFAULT_BROKER_CONFIG',
  4: 'STATIC_BROKER_CONFIG',
  5: 'DEFAULT_CONFIG',
  6: 'DYNAMIC_BROKER_LOGGER_CONFIG',
};

export interface AdminOptions {
  /** `host:port` strings. */
  bootstrapServers: readonly string[];
  clientId?: string;
  /** Deadline of each admin call (all its requests and retries). Default 30 s. */
  requestTimeoutMs?: number;
}

export interface NewTopic {
  topic: string;
  /** Default: the broker's num.partitions (-1). */
  partitions?: number;
  /** Default: the broker's default.replication.factor (-1). */
  replicationFactor?: number;
  configs?: Readonly<Record<string, string>>;
}

export interface CreateTopicsOptions {
  /** Let the broker check everything and create nothing. */
  validateOnly?: boolean;
}

export interface PartitionDescription {
  partition: number;
  /** Node id of the leader (-1: none). */
  leader: number;
  replicas: number[];
  isr: number[];
  /** Kafka error name of the partition's metadata, NONE when fine. */
  error: string;
}

export interface ConfigEntry {
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  isSensitive: boolean;
  /** DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG, ... (UNKNOWN on DescribeConfigs v0). */
  source: string;
}

export interface TopicDescription {
  name: string;
  topicId: string | null;
  isInternal: boolean;
  partitions: PartitionDescription[];
  configs: Record<string, ConfigEntry>;
}

export interface AlterConfigsInput {
  set?: Readonly<Record<string, string>>;
  delete?: readonly string[];
}

export type OffsetSpec = 'earliest' | 'latest' | number;

export interface PartitionOffset {
  partition: number;
  /** -1n when a timestamp is after every record (no such offset). */
  offset: bigint;
  /** The found record's timestamp for a timestamp query, else -1. */
  timestamp: number;
}

export interface ListedGroup {
  groupId: string;
  protocolType: string;
  /** Empty when the broker's ListGroups version has no state (v < 4). */
  state: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Decoded ConsumerProtocolAssignment (empty for other protocol types or an undecodable one). */
  assignment: Array<{ topic: string; partition: number }>;
}

export interface GroupPartitionOffset {
  topic: string;
  partition: number;
  /** null when the group has no committed offset here. */
  committedOffset: bigint | null;
  logEndOffset: bigint;
  /** logEndOffset - committedOffset; null without a committed offset. */
  lag: bigint | null;
  /** The member this partition is assigned to, if any. */
  memberId: string | null;
}

export interface GroupDescription {
  groupId: string;
  /** Stable, PreparingRebalance, CompletingRebalance, Empty, Dead (unknown group). */
  state: string;
  protocolType: string;
  /** The chosen assignor (e.g. "RoundRobinAssigner"). */
  protocol: string;
  members: GroupMemberDescription[];
  offsets: GroupPartitionOffset[];
  /** Sum of the known lags. */
  totalLag: bigint;
}

export type ResetTarget = 'earliest' | 'latest' | { offset: number | bigint } | { timestampMs: number } | { shiftBy: number };

export interface ResetOptions {
  /** Compute and return the new offsets without committing them. */
  dryRun?: boolean;
}

export interface ResetResult {
  topic: string;
  partition: number;
  previousOffset: bigint | null;
  newOffset: bigint;
}

/** The broker refused an offset reset because the group has active members (UNKNOWN_MEMBER_ID). */
export class KafkaGroupActiveError extends KafkaClientError {
  override readonly name = 'KafkaGroupActiveError';
  readonly code = ErrorCode.UNKNOWN_MEMBER_ID;
  readonly codeName = 'UNKNOWN_MEMBER_ID';

  constructor(readonly groupId: string, readonly state: string, options?: { cause?: unknown }) {
    super(`cannot reset offsets of group ${groupId}: it has active members (state ${state}); stop its consumers first (broker answered UNKNOWN_MEMBER_ID)`, false, options);
  }
}

interface BrokerAddress {
  host: string;
  port: number;
}

class Deadline {
  readonly at: number;

  constructor(timeoutMs: number) {
    this.at = Date.now() + timeoutMs;
  }

  get remainingMs(): number {
    return Math.max(1, this.at - Date.now());
  }

  get passed(): boolean {
    return Date.now() >= this.at;
  }
}

export function createAdmin(options: AdminOptions): Admin {
  return new Admin(options);
}

export class Admin {
  private readonly bootstrap: BrokerAddress[];
  private readonly clientId: string;
  private readonly requestTimeoutMs: number;
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly connections = new Map<string, Promise<BrokerConnection>>();
  private readonly coordinators = new Map<string, BrokerAddress>();
  private controllerId = -1;
  private closed = false;

  constructor(options: AdminOptions) {
    if (typeof options !== 'object' || options === null || !Array.isArray(options.bootstrapServers) || options.bootstrapServers.length === 0) {
      throw new KafkaConfigError('bootstrapServers must be a non-empty array of "host:port" strings');
    }
    this.bootstrap = options.bootstrapServers.map(parseBrokerAddress);
    this.clientId = options.clientId ?? 'tidelog-admin';
    const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_REQUEST_TIMEOUT_MS) throw new KafkaConfigError(`requestTimeoutMs must be an integer in [1, ${MAX_REQUEST_TIMEOUT_MS}], got ${String(timeout)}`);
    this.requestTimeoutMs = timeout;
  }

  // -------------------------------------------------------------------------------------------
  // Topics

  /** Creates topics and waits until each has a leader for every partition (not with validateOnly). */
  createTopics(topics: readonly NewTopic[], options: CreateTopicsOptions = {}): Promise<void> {
    return this.run('createTopics', async (deadline) => {
      if (!Array.isArray(topics) || topics.length === 0) throw new KafkaConfigError('createTopics() takes a non-empty array of {topic, partitions?, replicationFactor?, configs?}');
      const names = new Set<string>();
      for (const entry of topics) {
        checkTopicName(entry?.topic);
        if (names.has(entry.topic)) throw new KafkaConfigError(`topic ${entry.topic} is given twice`);
        names.add(entry.topic);
        if (entry.partitions !== undefined) checkInteger('partitions', entry.partitions, 1, INT32_MAX);
        if (entry.replicationFactor !== undefined) checkInteger('replicationFactor', entry.replicationFactor, 1, 32767);
      }
      const request = {
        topics: topics.map((entry) => ({
          name: entry.topic,
          numPartitions: entry.partitions ?? -1,
          replicationFactor: entry.replicationFactor ?? -1,
          assignments: [],
          configs: Object.entries(entry.configs ?? {}).map(([name, value]) => ({ name, value: String(value) })),
        })),
        timeoutMs: deadline.remainingMs,
        validateOnly: options.validateOnly ?? false,
      };
      if (request.validateOnly) {
        const connection = await this.controller(deadline);
        if (connection.versionOf(ApiKey.CreateTopics) < 1) throw new KafkaConfigError(`broker ${connection.address} does not support validateOnly (CreateTopics v1+)`);
      }
      const response = await this.retrying(deadline, async () => {
        const connection = await this.controller(deadline);
        return this.send(connection, ApiKey.CreateTopics, deadline, (w, v) => encodeCreateTopicsRequest(w, v, request), decodeCreateTopicsResponse);
      });
      for (const result of response.topics) {
        if (result.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(result.errorCode, `createTopics: topic ${result.name}`, result.errorMessage ?? null);
      }
      if (request.validateOnly) return;
      for (const name of names) await this.waitForLeaders(name, deadline);
    });
  }

  deleteTopics(names: readonly string[]): Promise<void> {
    return this.run('deleteTopics', async (deadline) => {
      if (!Array.isArray(names) || names.length === 0) throw new KafkaConfigError('deleteTopics() takes a non-empty array of topic names');
      for (const name of names) checkTopicName(name);
      const response = await this.retrying(deadline, async () => {
        const connection = await this.controller(deadline);
        return this.send(
          connection,
          ApiKey.DeleteTopics,
          deadline,
          (w, v) => encodeDeleteTopicsRequest(w, v, v >= 6 ? { topics: names.map((name) => ({ name, topicId: '00000000-0000-0000-0000-000000000000' })), timeoutMs: deadline.remainingMs } : { topicNames: [...names], timeoutMs: deadline.remainingMs }),
          decodeDeleteTopicsResponse,
        );
      });
      for (const result of response.responses) {
        if (result.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(result.errorCode, `deleteTopics: topic ${result.name ?? '?'}`, result.errorMessage ?? null);
      }
    });
  }

  /** Names of the non-internal topics, sorted. */
  listTopics(): Promise<string[]> {
    return this.run('listTopics', async (deadline) => {
      const metadata = await this.metadata(null, deadline);
      return metadata.topics.filter((t) => t.errorCode === ErrorCode.NONE && t.isInternal !== true && t.name !== null).map((t) => t.name!).sort();
    });
  }

  /** Partitions (leader, replicas, isr) and configs of each topic; an unknown topic rejects. */
  describeTopics(names: readonly string[]): Promise<TopicDescription[]> {
    return this.run('describeTopics', async (deadline) => {
      if (!Array.isArray(names) || names.length === 0) throw new KafkaConfigError('describeTopics() takes a non-empty array of topic names');
      for (const name of names) checkTopicName(name);
      const metadata = await this.metadata(names, deadline);
      const configs = await this.topicConfigs(names, deadline);
      return names.map((name) => {
        const topic = metadata.topics.find((t) => t.name === name);
        if (topic === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `describeTopics: topic ${name}`);
        if (topic.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(topic.errorCode, `describeTopics: topic ${name}`);
        return {
          name,
          topicId: topic.topicId === undefined || /^0{8}-/.test(topic.topicId) ? null : topic.topicId,
          isInternal: topic.isInternal ?? false,
          partitions: topic.partitions
            .map((p) => ({ partition: p.partitionIndex, leader: p.leaderId, replicas: p.replicaNodes, isr: p.isrNodes, error: p.errorCode === ErrorCode.NONE ? 'NONE' : new KafkaProtocolError(p.errorCode, '').codeName }))
            .sort((a, b) => a.partition - b.partition),
          configs: configs.get(name) ?? {},
        };
      });
    });
  }

  /** Raises the topic's partition count to `total` (Kafka never lowers it). */
  createPartitions(topic: string, total: number): Promise<void> {
    return this.run('createPartitions', async (deadline) => {
      checkTopicName(topic);
      checkInteger('total', total, 1, INT32_MAX);
      const response = await this.retrying(deadline, async () => {
        const connection = await this.controller(deadline);
        return this.send(
          connection,
          ApiKey.CreatePartitions,
          deadline,
          (w, v) => encodeCreatePartitionsRequest(w, v, { topics: [{ name: topic, count: total, assignments: null }], timeoutMs: deadline.remainingMs, validateOnly: false }),
          decodeCreatePartitionsResponse,
        );
      });
      for (const result of response.results) {
        if (result.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(result.errorCode, `createPartitions: topic ${result.name}`, result.errorMessage);
      }
      await this.waitForLeaders(topic, deadline, total);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Configs

  describeConfigs(topic: string): Promise<Record<string, ConfigEntry>> {
    return this.run('describeConfigs', async (deadline) => {
      checkTopicName(topic);
      const configs = await this.topicConfigs([topic], deadline);
      return configs.get(topic) ?? {};
    });
  }

  /** IncrementalAlterConfigs: SET each of `set`, DELETE (back to the default) each of `delete`. */
  alterConfigs(topic: string, changes: AlterConfigsInput): Promise<void> {
    return this.run('alterConfigs', async (deadline) => {
      checkTopicName(topic);
      const configs = [
        ...Object.entries(changes.set ?? {}).map(([name, value]) => ({ name, configOperation: CONFIG_SET, value: String(value) })),
        ...(changes.delete ?? []).map((name) => ({ name, configOperation: CONFIG_DELETE, value: null })),
      ];
      if (configs.length === 0) throw new KafkaConfigError('alterConfigs() needs at least one config in set or delete');
      const response = await this.retrying(deadline, async () => {
        const connection = await this.anyConnection(deadline);
        return this.send(
          connection,
          ApiKey.IncrementalAlterConfigs,
          deadline,
          (w, v) => encodeIncrementalAlterConfigsRequest(w, v, { resources: [{ resourceType: RESOURCE_TOPIC, resourceName: topic, configs }], validateOnly: false }),
          decodeIncrementalAlterConfigsResponse,
        );
      });
      for (const result of response.responses) {
        if (result.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(result.errorCode, `alterConfigs: topic ${result.resourceName}`, result.errorMessage);
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Offsets and records

  /** Per partition: the earliest offset, the log end, or the first offset with a timestamp >= ms. */
  listOffsets(topic: string, spec: OffsetSpec): Promise<PartitionOffset[]> {
    return this.run('listOffsets', async (deadline) => {
      checkTopicName(topic);
      const timestamp = timestampOf(spec);
      const answers = await this.offsetsOf(topic, timestamp, deadline);
      return [...answers].map(([partition, answer]) => ({ partition, ...answer })).sort((a, b) => a.partition - b.partition);
    });
  }

  /** Deletes records before each given offset (-1: the high watermark); returns the new low watermarks. */
  deleteRecords(topic: string, before: Readonly<Record<number, number | bigint>>): Promise<Record<number, bigint>> {
    return this.run('deleteRecords', async (deadline) => {
      checkTopicName(topic);
      const entries = Object.entries(before).map(([key, value]) => {
        const partition = Number(key);
        checkInteger('partition', partition, 0, INT32_MAX);
        const offset = BigInt(value);
        if (offset < -1n) throw new KafkaConfigError(`offset of partition ${partition} must be >= -1, got ${offset}`);
        return { partitionIndex: partition, offset };
      });
      if (entries.length === 0) throw new KafkaConfigError('deleteRecords() needs at least one {partition: offset}');
      const out: Record<number, bigint> = {};
      await this.retrying(deadline, async () => {
        const byLeader = await this.byLeader(topic, entries.map((e) => e.partitionIndex), deadline);
        await Promise.all([...byLeader].map(async ([nodeId, partitions]) => {
          const connection = await this.connectionToNode(nodeId, deadline);
          const request = { topics: [{ name: topic, partitions: entries.filter((e) => partitions.includes(e.partitionIndex)) }], timeoutMs: deadline.remainingMs };
          const response = await this.send(connection, ApiKey.DeleteRecords, deadline, (w, v) => encodeDeleteRecordsRequest(w, v, request), decodeDeleteRecordsResponse);
          for (const t of response.topics) {
            for (const p of t.partitions) {
              if (p.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(p.errorCode, `deleteRecords: ${topic}-${p.partitionIndex}`);
              out[p.partitionIndex] = p.lowWatermark;
            }
          }
        }));
      });
      return out;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /** Groups of every broker (each answers for the groups it coordinates). */
  listGroups(): Promise<ListedGroup[]> {
    return this.run('listGroups', async (deadline) => {
      const metadata = await this.metadata([], deadline);
      const groups = new Map<string, ListedGroup>();
      await Promise.all(metadata.brokers.map(async (broker) => {
        const response = await this.retrying(deadline, async () => {
          const connection = await this.connectionTo({ host: broker.host, port: broker.port }, deadline);
          return this.send(connection, ApiKey.ListGroups, deadline, (w, v) => encodeListGroupsRequest(w, v, {}), decodeListGroupsResponse);
        });
        if (response.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(response.errorCode, `listGroups at ${broker.host}:${broker.port}`);
        for (const g of response.groups) groups.set(g.groupId, { groupId: g.groupId, protocolType: g.protocolType, state: g.groupState ?? '' });
      }));
      return [...groups.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
    });
  }

  /**
   * State, members with their assignments, and per partition the committed offset, the log end and
   * the lag. Partitions are those with a committed offset plus those assigned to a member. An
   * unknown group is described as Dead with no members.
   */
  describeGroup(groupId: string): Promise<GroupDescription> {
    return this.run('describeGroup', async (deadline) => {
      checkGroupId(groupId);
      const described = await this.onCoordinator(groupId, deadline, (connection) =>
        this.send(connection, ApiKey.DescribeGroups, deadline, (w, v) => encodeDescribeGroupsRequest(w, v, { groups: [groupId] }), decodeDescribeGroupsResponse).then((response) => {
          const group = response.groups.find((g) => g.groupId === groupId);
          if (group === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_SERVER_ERROR, `describeGroup: the answer lacks group ${groupId}`);
          if (group.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(group.errorCode, `describeGroup: group ${groupId}`);
          return group;
        }),
      );
      const members: GroupMemberDescription[] = described.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId ?? null,
        clientId: m.clientId,
        clientHost: m.clientHost,
        assignment: described.protocolType === 'consumer' ? decodeAssignment(m.memberAssignment) : [],
      }));
      const committed = await this.committedOffsets(groupId, deadline);
      const owners = new Map<string, string>();
      for (const member of members) for (const tp of member.assignment) owners.set(`${tp.topic}\u0000${tp.partition}`, member.memberId);
      const partitions = new Map<string, { topic: string; partition: number }>();
      for (const c of committed) partitions.set(`${c.topic}\u0000${c.partition}`, c);
      for (const member of members) for (const tp of member.assignment) partitions.set(`${tp.topic}\u0000${tp.partition}`, tp);
      const ends = new Map<string, Map<number, { offset: bigint }>>();
      for (const topic of new Set([...partitions.values()].map((p) => p.topic))) {
        try {
          ends.set(topic, await this.offsetsOf(topic, LATEST_TIMESTAMP, deadline));
        } catch (error) {
          if (!(error instanceof KafkaProtocolError && error.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)) throw error;
          ends.set(topic, new Map()); // a deleted topic: committed offsets without a log end
        }
      }
      const offsets: GroupPartitionOffset[] = [];
      let totalLag = 0n;
      for (const [key, tp] of partitions) {
        const committedOffset = committed.find((c) => c.topic === tp.topic && c.partition === tp.partition)?.offset ?? null;
        const logEndOffset = ends.get(tp.topic)?.get(tp.partition)?.offset ?? -1n;
        const lag = committedOffset === null || logEndOffset < 0n ? null : maxBig(0n, logEndOffset - committedOffset);
        if (lag !== null) totalLag += lag;
        offsets.push({ topic: tp.topic, partition: tp.partition, committedOffset, logEndOffset, lag, memberId: owners.get(key) ?? null });
      }
      offsets.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
      return { groupId, state: described.groupState, protocolType: described.protocolType, protocol: described.protocolData, members, offsets, totalLag };
    });
  }

  /**
   * Commits new offsets for every partition of `topic` as an admin (generation -1, no member).
   * The broker allows that only while the group has no members: KafkaGroupActiveError otherwise.
   * Explicit and shifted offsets are clamped to [earliest, latest].
   */
  resetGroupOffsets(groupId: string, topic: string, to: ResetTarget, options: ResetOptions = {}): Promise<ResetResult[]> {
    return this.run('resetGroupOffsets', async (deadline) => {
      checkGroupId(groupId);
      checkTopicName(topic);
      checkResetTarget(to);
      const earliest = await this.offsetsOf(topic, EARLIEST_TIMESTAMP, deadline);
      const latest = await this.offsetsOf(topic, LATEST_TIMESTAMP, deadline);
      const committed = (await this.committedOffsets(groupId, deadline)).filter((c) => c.topic === topic);
      const byTime = typeof to === 'object' && 'timestampMs' in to ? await this.offsetsOf(topic, BigInt(to.timestampMs), deadline) : null;
      const results: ResetResult[] = [];
      for (const [partition, { offset: low }] of [...earliest].sort((a, b) => a[0] - b[0])) {
        const high = latest.get(partition)?.offset ?? low;
        const previousOffset = committed.find((c) => c.partition === partition)?.offset ?? null;
        let target: bigint;
        if (to === 'earliest') target = low;
        else if (to === 'latest') target = high;
        else if ('offset' in to) target = BigInt(to.offset);
        else if ('timestampMs' in to) {
          const found = byTime!.get(partition)?.offset ?? -1n;
          target = found < 0n ? high : found;
        } else {
          if (previousOffset === null) throw new KafkaConfigError(`resetGroupOffsets: group ${groupId} has no committed offset for ${topic}-${partition} to shift`);
          target = previousOffset + BigInt(to.shiftBy);
        }
        target = target < low ? low : target > high ? high : target;
        results.push({ topic, partition, previousOffset, newOffset: target });
      }
      if (options.dryRun === true) return results;
      const request = {
        groupId,
        generationIdOrMemberEpoch: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: -1n,
        topics: [{ name: topic, partitions: results.map((r) => ({ partitionIndex: r.partition, committedOffset: r.newOffset, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: '' })) }],
      };
      const response = await this.onCoordinator(groupId, deadline, (connection) =>
        this.send(connection, ApiKey.OffsetCommit, deadline, (w, v) => encodeOffsetCommitRequest(w, v, request), decodeOffsetCommitResponse).then((answer) => {
          const first = answer.topics.flatMap((t) => t.partitions).find((p) => p.errorCode !== ErrorCode.NONE);
          if (first !== undefined && RETRIED_CODES.has(first.errorCode)) throw new KafkaProtocolError(first.errorCode, `resetGroupOffsets: group ${groupId}`);
          return answer;
        }),
      );
      for (const t of response.topics) {
        for (const p of t.partitions) {
          if (p.errorCode === ErrorCode.UNKNOWN_MEMBER_ID || p.errorCode === ErrorCode.ILLEGAL_GENERATION || p.errorCode === ErrorCode.REBALANCE_IN_PROGRESS) {
            const state = await this.groupState(groupId, deadline).catch(() => 'unknown');
            throw new KafkaGroupActiveError(groupId, state, { cause: new KafkaProtocolError(p.errorCode, `OffsetCommit of ${t.name}-${p.partitionIndex}`) });
          }
          if (p.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(p.errorCode, `resetGroupOffsets: ${t.name}-${p.partitionIndex} of group ${groupId}`);
        }
      }
      return results;
    });
  }

  /** Deletes groups with no members (NON_EMPTY_GROUP / GROUP_ID_NOT_FOUND otherwise). */
  deleteGroups(groupIds: readonly string[]): Promise<void> {
    return this.run('deleteGroups', async (deadline) => {
      if (!Array.isArray(groupIds) || groupIds.length === 0) throw new KafkaConfigError('deleteGroups() takes a non-empty array of group ids');
      for (const id of groupIds) checkGroupId(id);
      for (const groupId of groupIds) {
        const response = await this.onCoordinator(groupId, deadline, (connection) =>
          this.send(connection, ApiKey.DeleteGroups, deadline, (w, v) => encodeDeleteGroupsRequest(w, v, { groupsNames: [groupId] }), decodeDeleteGroupsResponse).then((answer) => {
            const retried = answer.results.find((r) => RETRIED_CODES.has(r.errorCode));
            if (retried !== undefined) throw new KafkaProtocolError(retried.errorCode, `deleteGroups: group ${groupId}`);
            return answer;
          }),
        );
        for (const result of response.results) {
          if (result.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(result.errorCode, `deleteGroups: group ${result.groupId}`);
        }
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map(async (pending) => {
      const connection = await pending.catch(() => null);
      if (connection !== null) await connection.close();
    }));
  }

  // -------------------------------------------------------------------------------------------

  /** Runs one admin call under its deadline. */
  private async run<T>(what: string, body: (deadline: Deadline) => Promise<T>): Promise<T> {
    if (this.closed) throw new KafkaClosedError('the admin client is closed');
    const deadline = new Deadline(this.requestTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KafkaRequestTimeoutError(`${what} did not finish within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
    });
    const work = body(deadline);
    work.catch(() => undefined);
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Retries connection failures and RETRIED_CODES within the deadline. */
  private async retrying<T>(deadline: Deadline, attempt: () => Promise<T>): Promise<T> {
    let backoffMs = RETRY_BACKOFF_MS;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        const again = error instanceof KafkaConnectionError || (error instanceof KafkaProtocolError && RETRIED_CODES.has(error.code));
        if (!again || this.closed || Date.now() + backoffMs >= deadline.at) throw error;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, RETRY_BACKOFF_MAX_MS);
    }
  }

  private send<T>(connection: BrokerConnection, apiKey: number, deadline: Deadline, encode: BodyEncoder, decode: BodyDecoder<T>): Promise<T> {
    return connection.request(apiKey, encode, decode, { timeoutMs: Math.min(deadline.remainingMs, this.requestTimeoutMs) });
  }

  private async connectionTo(address: BrokerAddress, deadline: Deadline): Promise<BrokerConnection> {
    if (this.closed) throw new KafkaClosedError('the admin client is closed');
    const key = `${address.host}:${address.port}`;
    const existing = this.connections.get(key);
    if (existing !== undefined) {
      const connection = await existing.catch(() => null);
      if (connection !== null && !connection.closed) return connection;
      if (this.connections.get(key) === existing) this.connections.delete(key);
    }
    const opening = BrokerConnection.connect({
      host: address.host,
      port: address.port,
      clientId: this.clientId,
      connectTimeoutMs: Math.min(DEFAULT_CONNECT_TIMEOUT_MS, deadline.remainingMs),
      requestTimeoutMs: this.requestTimeoutMs,
    });
    this.connections.set(key, opening);
    try {
      return await opening;
    } catch (error) {
      if (this.connections.get(key) === opening) this.connections.delete(key);
      throw error;
    }
  }

  private async anyConnection(deadline: Deadline): Promise<BrokerConnection> {
    for (const pending of this.connections.values()) {
      const connection = await pending.catch(() => null);
      if (connection !== null && !connection.closed) return connection;
    }
    const errors: string[] = [];
    for (const address of [...this.brokers.values(), ...this.bootstrap]) {
      try {
        return await this.connectionTo(address, deadline);
      } catch (error) {
        errors.push(`${address.host}:${address.port}: ${(error as Error).message}`);
        if (!(error instanceof KafkaConnectionError)) throw error;
      }
    }
    throw new KafkaConnectionError(`no broker reachable: ${errors.join('; ')}`);
  }

  private connectionToNode(nodeId: number, deadline: Deadline): Promise<BrokerConnection> {
    const address = this.brokers.get(nodeId);
    if (address === undefined) return Promise.reject(new KafkaConnectionError(`broker ${nodeId} is not in the metadata`));
    return this.connectionTo(address, deadline);
  }

  /** The controller from the last metadata (fetched when unknown), else any broker. */
  private async controller(deadline: Deadline): Promise<BrokerConnection> {
    if (this.controllerId < 0 || !this.brokers.has(this.controllerId)) await this.metadata([], deadline);
    if (this.controllerId >= 0 && this.brokers.has(this.controllerId)) return this.connectionToNode(this.controllerId, deadline);
    return this.anyConnection(deadline);
  }

  /** Metadata of `topics` (null: all; []: brokers only), never creating topics. */
  private metadata(topics: readonly string[] | null, deadline: Deadline): Promise<MetadataResponse> {
    return this.retrying(deadline, async () => {
      const connection = await this.anyConnection(deadline);
      const response = await this.send(
        connection,
        ApiKey.Metadata,
        deadline,
        (w, v) => encodeMetadataRequest(w, v, { topics: topics === null ? null : topics.map((name) => ({ name })), allowAutoTopicCreation: false }),
        decodeMetadataResponse,
      );
      this.brokers.clear();
      for (const broker of response.brokers) this.brokers.set(broker.nodeId, { host: broker.host, port: broker.port });
      this.controllerId = response.controllerId ?? -1;
      return response;
    });
  }

  private async topicMetadata(topic: string, deadline: Deadline): Promise<MetadataResponseTopic> {
    const response = await this.metadata([topic], deadline);
    const entry = response.topics.find((t) => t.name === topic);
    if (entry === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `metadata of topic ${topic}`);
    if (entry.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(entry.errorCode, `metadata of topic ${topic}`);
    return entry;
  }

  /** Waits until the topic has `partitions` (or any) partitions, each with a leader. */
  private async waitForLeaders(topic: string, deadline: Deadline, partitions?: number): Promise<void> {
    await this.retrying(deadline, async () => {
      const entry = await this.topicMetadata(topic, deadline).catch((error: unknown) => {
        if (error instanceof KafkaProtocolError && error.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) throw new KafkaProtocolError(ErrorCode.LEADER_NOT_AVAILABLE, `metadata of new topic ${topic}`);
        throw error;
      });
      const ready = entry.partitions.length > 0 && (partitions === undefined || entry.partitions.length >= partitions) && entry.partitions.every((p) => p.leaderId >= 0);
      if (!ready) throw new KafkaProtocolError(ErrorCode.LEADER_NOT_AVAILABLE, `metadata of topic ${topic}`);
    });
  }

  /** Partition -> leader node id, grouped by leader; unknown partitions reject. */
  private async byLeader(topic: string, partitions: readonly number[] | null, deadline: Deadline): Promise<Map<number, number[]>> {
    const entry = await this.topicMetadata(topic, deadline);
    const out = new Map<number, number[]>();
    const wanted = partitions ?? entry.partitions.map((p) => p.partitionIndex);
    for (const partition of wanted) {
      const p = entry.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}-${partition}: topic ${topic} has ${entry.partitions.length} partitions`);
      if (p.leaderId < 0) throw new KafkaProtocolError(ErrorCode.LEADER_NOT_AVAILABLE, `${topic}-${partition}`);
      let list = out.get(p.leaderId);
      if (list === undefined) out.set(p.leaderId, (list = []));
      list.push(partition);
    }
    return out;
  }

  /** ListOffsets of every partition of a topic, at each leader. */
  private offsetsOf(topic: string, timestamp: bigint, deadline: Deadline): Promise<Map<number, { offset: bigint; timestamp: number }>> {
    return this.retrying(deadline, async () => {
      const byLeader = await this.byLeader(topic, null, deadline);
      const out = new Map<number, { offset: bigint; timestamp: number }>();
      await Promise.all([...byLeader].map(async ([nodeId, partitions]) => {
        const connection = await this.connectionToNode(nodeId, deadline);
        const request = { replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp, currentLeaderEpoch: -1, maxNumOffsets: 1 })) }] };
        const response = await this.send(connection, ApiKey.ListOffsets, deadline, (w, v) => encodeListOffsetsRequest(w, v, request), decodeListOffsetsResponse);
        for (const t of response.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(p.errorCode, `listOffsets: ${topic}-${p.partitionIndex}`);
            const offset = p.offset !== undefined && connection.versionOf(ApiKey.ListOffsets) >= 1 ? p.offset : p.oldStyleOffsets?.[0] ?? -1n;
            out.set(p.partitionIndex, { offset, timestamp: Number(p.timestamp ?? -1n) });
          }
        }
      }));
      return out;
    });
  }

  private async topicConfigs(topics: readonly string[], deadline: Deadline): Promise<Map<string, Record<string, ConfigEntry>>> {
    let version = 0;
    const response = await this.retrying(deadline, async () => {
      const connection = await this.anyConnection(deadline);
      version = connection.versionOf(ApiKey.DescribeConfigs);
      return this.send(
        connection,
        ApiKey.DescribeConfigs,
        deadline,
        (w, v) => encodeDescribeConfigsRequest(w, v, { resources: topics.map((name) => ({ resourceType: RESOURCE_TOPIC, resourceName: name, configurationKeys: null })), includeSynonyms: false, includeDocumentation: false }),
        decodeDescribeConfigsResponse,
      );
    });
    const out = new Map<string, Record<string, ConfigEntry>>();
    for (const result of response.results) {
      if (result.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(result.errorCode, `describeConfigs: topic ${result.resourceName}`, result.errorMessage);
      const configs: Record<string, ConfigEntry> = {};
      for (const entry of result.configs) configs[entry.name] = configEntry(entry, version);
      out.set(result.resourceName, configs);
    }
    return out;
  }

  /** Finds (or uses the cached) coordinator of a group and runs `use` on it, retrying moves. */
  private onCoordinator<T>(groupId: string, deadline: Deadline, use: (connection: BrokerConnection) => Promise<T>): Promise<T> {
    return this.retrying(deadline, async () => {
      let address = this.coordinators.get(groupId);
      if (address === undefined) {
        address = await this.findCoordinator(groupId, deadline);
        this.coordinators.set(groupId, address);
      }
      try {
        return await use(await this.connectionTo(address, deadline));
      } catch (error) {
        if (error instanceof KafkaConnectionError || (error instanceof KafkaProtocolError && RETRIED_CODES.has(error.code))) this.coordinators.delete(groupId);
        throw error;
      }
    });
  }

  private async findCoordinator(groupId: string, deadline: Deadline): Promise<BrokerAddress> {
    const connection = await this.anyConnection(deadline);
    const response = await this.send(
      connection,
      ApiKey.FindCoordinator,
      deadline,
      (w, v) => encodeFindCoordinatorRequest(w, v, v >= 4 ? { keyType: 0, coordinatorKeys: [groupId] } : { key: groupId, keyType: 0 }),
      decodeFindCoordinatorResponse,
    );
    const entry = response.coordinators !== undefined && response.coordinators.length > 0
      ? response.coordinators[0]!
      : { errorCode: response.errorCode ?? ErrorCode.NONE, errorMessage: response.errorMessage ?? null, host: response.host ?? '', port: response.port ?? 0, nodeId: response.nodeId ?? -1 };
    if (entry.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(entry.errorCode, `findCoordinator: group ${groupId}`, entry.errorMessage);
    return { host: entry.host, port: entry.port };
  }

  /** Committed offsets of every partition the group has committed (OffsetFetch, all topics). */
  private async committedOffsets(groupId: string, deadline: Deadline): Promise<Array<{ topic: string; partition: number; offset: bigint }>> {
    return this.onCoordinator(groupId, deadline, async (connection) => {
      const response = await this.send(
        connection,
        ApiKey.OffsetFetch,
        deadline,
        (w, v) => encodeOffsetFetchRequest(w, v, v >= 8 ? { groups: [{ groupId, topics: null }], requireStable: false } : { groupId, topics: null, requireStable: false }),
        decodeOffsetFetchResponse,
      );
      const group = response.groups?.find((g) => g.groupId === groupId);
      const errorCode = group?.errorCode ?? response.errorCode ?? ErrorCode.NONE;
      if (errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(errorCode, `offsetFetch: group ${groupId}`);
      const topics = group?.topics ?? response.topics ?? [];
      const out: Array<{ topic: string; partition: number; offset: bigint }> = [];
      for (const t of topics) {
        for (const p of t.partitions) {
          if (p.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(p.errorCode, `offsetFetch: ${t.name}-${p.partitionIndex} of group ${groupId}`);
          if (p.committedOffset >= 0n) out.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset });
        }
      }
      return out;
    });
  }

  private groupState(groupId: string, deadline: Deadline): Promise<string> {
    return this.onCoordinator(groupId, deadline, async (connection) => {
      const response = await this.send(connection, ApiKey.DescribeGroups, deadline, (w, v) => encodeDescribeGroupsRequest(w, v, { groups: [groupId] }), decodeDescribeGroupsResponse);
      return response.groups[0]?.groupState ?? 'unknown';
    });
  }
}

// ---------------------------------------------------------------------------------------------

function decodeAssignment(bytes: Buffer): Array<{ topic: string; partition: number }> {
  if (bytes.length < 2) return [];
  try {
    const reader = new ByteReader(bytes);
    const version = reader.readInt16();
    if (version < 0) return [];
    // Newer versions only add fields at the end: read them as the newest version we know.
    const assignment = decodeConsumerProtocolAssignment(reader, Math.min(version, 3));
    return assignment.assignedPartitions.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition }))).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  } catch {
    return [];
  }
}

function configEntry(entry: DescribeConfigsResponseResourceResult, version: number): ConfigEntry {
  const sourceCode = version >= 1 ? entry.configSource ?? 0 : entry.isDefault === true ? 5 : 0;
  return {
    value: entry.value,
    readOnly: entry.readOnly,
    isDefault: version >= 1 ? sourceCode === 5 : entry.isDefault === true,
    isSensitive: entry.isSensitive,
    source: CONFIG_SOURCES[sourceCode] ?? 'UNKNOWN',
  };
}

function timestampOf(spec: OffsetSpec): bigint {
  if (spec === 'earliest') return EARLIEST_TIMESTAMP;
  if (spec === 'latest') return LATEST_TIMESTAMP;
  if (typeof spec === 'number' && Number.isSafeInteger(spec) && spec >= 0) return BigInt(spec);
  throw new KafkaConfigError(`offset spec must be 'earliest', 'latest' or a timestamp in ms >= 0, got ${String(spec)}`);
}

function checkResetTarget(to: ResetTarget): void {
  if (to === 'earliest' || to === 'latest') return;
  if (typeof to === 'object' && to !== null) {
    if ('offset' in to && (typeof to.offset === 'bigint' ? to.offset >= 0n : Number.isSafeInteger(to.offset) && to.offset >= 0)) return;
    if ('timestampMs' in to && Number.isSafeInteger(to.timestampMs) && to.timestampMs >= 0) return;
    if ('shiftBy' in to && Number.isSafeInteger(to.shiftBy)) return;
  }
  throw new KafkaConfigError(`reset target must be 'earliest', 'latest', {offset}, {timestampMs} or {shiftBy}, got ${JSON.stringify(to, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
}

function checkTopicName(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) throw new KafkaConfigError(`a topic name must be a non-empty string, got ${JSON.stringify(topic)}`);
}

function checkGroupId(groupId: unknown): asserts groupId is string {
  if (typeof groupId !== 'string' || groupId.length === 0) throw new KafkaConfigError(`a group id must be a non-empty string, got ${JSON.stringify(groupId)}`);
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new KafkaConfigError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
}

function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
