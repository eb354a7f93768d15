// One member of a classic consumer group, as the Java client and librdkafka do:
//
//   FindCoordinator (any broker) -> a dedicated connection to the coordinator
//   -> eager: onRevoke(all partitions) (the consumer commits and stops fetching them)
//   -> JoinGroup (MEMBER_ID_REQUIRED: again with the member id given) -> the leader decodes every
//      member's subscription and runs the assignor the coordinator chose -> SyncGroup
//   -> cooperative: onRevoke(partitions no longer assigned) -> onAssign(new partitions)
//   -> Heartbeat every heartbeatIntervalMs on its own timer (it keeps going while the user's code
//      runs) until the coordinator answers REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
//      UNKNOWN_MEMBER_ID (the member id is then forgotten) -> rejoin.
//
// Cooperative rebalancing (KIP-429; when every listed assignor supports it, see assignors.ts):
// the member keeps its partitions, and the consumer keeps fetching them, while it rejoins
// (beforeRejoin commits their positions first); its subscription (v2) names them and their
// generation. The assignor gives a moving partition to nobody in that generation, so a member that
// lost partitions gives them up (onRevoke commits their positions: Kafka takes that commit, tidelog
// refuses commits outside the current assignment, so there the one before the rejoin counts) and
// rejoins at once; the follow-up rebalance hands them to their new owners.
// When the membership is lost (UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION reset the generation) the
// group may have handed the partitions out already: all are given up, uncommitted, before the
// rejoin, under both protocols.
//
// Every request has a timeout (JoinGroup: rebalanceTimeoutMs + requestTimeoutMs, since the
// coordinator holds it until the group has rejoined). COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
// COORDINATOR_LOAD_IN_PROGRESS and connection failures drop the coordinator; it is found again
// with a doubling backoff. OffsetCommit carries the generation and member id; OffsetFetch gives
// the starting positions of an assignment. leave() sends LeaveGroup.
import { ErrorCode } from '../protocol/errors.js';
import {
  decodeFindCoordinatorResponse,
  decodeHeartbeatResponse,
  decodeJoinGroupResponse,
  decodeLeaveGroupResponse,
  decodeOffsetCommitResponse,
  decodeOffsetFetchResponse,
  decodeSyncGroupResponse,
  encodeFindCoordinatorRequest,
  encodeHeartbeatRequest,
  encodeJoinGroupRequest,
  encodeLeaveGroupRequest,
  encodeOffsetCommitRequest,
  encodeOffsetFetchRequest,
  encodeSyncGroupRequest,
  type JoinGroupResponse,
  type JoinGroupResponseMember,
} from '../protocol/generated/index.js';
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, rebalanceProtocolOf } from './assignors.js';
import type { Cluster } from './cluster.js';
import { ApiKey, BrokerConnection } from './connection.js';
import { KafkaClientError, KafkaClosedError, KafkaConnectionError, KafkaProtocolError, KafkaRequestTimeoutError, isRetriable } from './errors.js';
import type { Assignor, GroupAssignment, MemberSubscription, RebalanceProtocol, TopicPartition } from './types.js';

const CONSUMER_PROTOCOL_TYPE = 'consumer';
const COORDINATOR_CODES: ReadonlySet<number> = new Set([ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS]);
const REJOIN_CODES: ReadonlySet<number> = new Set([ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID]);

export interface GroupMembershipOptions {
  cluster: Cluster;
  groupId: string;
  topics: readonly string[];
  assignors: readonly Assignor[];
  clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  requestTimeoutMs: number;
  connectTimeoutMs?: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  /**
   * The partitions given up (stop fetching them; commit their positions unless `lost`: the
   * membership was lost, others may own them already). Eager: before a rejoin; cooperative: after
   * SyncGroup, before onAssign. Must not throw.
   */
  onRevoke: (partitions: TopicPartition[], lost: boolean) => Promise<void>;
  /** After SyncGroup: the whole new assignment (cooperative: partitions kept are in it too). Must not throw. */
  onAssign: (partitions: TopicPartition[]) => Promise<void>;
  /**
   * Cooperative: before a JoinGroup that keeps the partitions (commit consumed positions while
   * the coordinator still takes commits of every partition owned). Must not throw.
   */
  beforeRejoin?: () => Promise<void>;
  /** A fatal group error (the membership stops). */
  onError: (error: Error) => void;
}

/** A commit the coordinator refused because the group rebalanced (the member rejoins). */
export class KafkaCommitFailedError extends KafkaClientError {
  override readonly name = 'KafkaCommitFailedError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, false, options);
  }
}

function partitionKey(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

/**
 * Kafka's rule for an assignor that supports cooperative rebalancing (the Java leader checks it
 * too): no partition is added to one member in the generation it is revoked from another, who may
 * still be fetching it. A violation is a bug in the assignor, so it is fatal.
 */
function checkCooperativeAssignment(assignorName: string, subscriptions: readonly MemberSubscription[], result: GroupAssignment): void {
  const added = new Set<string>();
  const revoked = new Set<string>();
  for (const member of subscriptions) {
    const owned = new Set((member.ownedPartitions ?? []).map(partitionKey));
    const assigned = new Set([...(result.get(member.memberId) ?? [])].flatMap(([topic, partitions]) => partitions.map((partition) => partitionKey({ topic, partition }))));
    for (const key of assigned) if (!owned.has(key)) added.add(key);
    for (const key of owned) if (!assigned.has(key)) revoked.add(key);
  }
  const moving = [...added].filter((key) => revoked.has(key));
  if (moving.length > 0) {
    const names = moving.slice(0, 5).map((key) => key.replace('\u0000', '-')).join(', ');
    throw new KafkaClientError(`assignor ${assignorName} supports cooperative rebalancing but gave partitions to a member while another still owns them: ${names}`, false);
  }
}

export class GroupMembership {
  private memberIdNow = '';
  private generation = -1;
  private assigned: TopicPartition[] = [];
  private coordinatorConnection: BrokerConnection | null = null;
  private finding: Promise<BrokerConnection> | null = null;
  private rejoinNeeded = true;
  private stable = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeating = false;
  private wakeLoop: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private leaderNow = false;
  private generationCount = 0;
  private protocolNameNow = '';
  private readonly protocol: RebalanceProtocol;

  constructor(private readonly options: GroupMembershipOptions) {
    this.protocol = rebalanceProtocolOf(options.assignors);
  }

  /** cooperative when every assignor of this member supports it, else eager. */
  get rebalanceProtocol(): RebalanceProtocol {
    return this.protocol;
  }

  /** The assignor the coordinator chose for the current generation ('' before the first). */
  get protocolName(): string {
    return this.protocolNameNow;
  }

  get memberId(): string {
    return this.memberIdNow;
  }

  get generationId(): number {
    return this.generation;
  }

  get isLeader(): boolean {
    return this.leaderNow;
  }

  /** Partitions of the current generation (while rebalancing: eager, none; cooperative, those kept). */
  assignment(): TopicPartition[] {
    return this.assigned.slice();
  }

  /** Assignments received so far (for tests and waiting). */
  get assignmentsReceived(): number {
    return this.generationCount;
  }

  start(): void {
    if (this.loop !== null) return;
    this.loop = this.run();
  }

  /** Stops heartbeats and the join loop (no LeaveGroup: see leave()). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopHeartbeat();
    this.wakeLoop?.();
    await this.loop;
  }

  /**
   * LeaveGroup (best effort, bounded by the request timeout), then closes the coordinator
   * connection (which also ends a JoinGroup the coordinator is holding).
   */
  async leave(): Promise<void> {
    this.stopped = true;
    this.stopHeartbeat();
    this.wakeLoop?.();
    const memberId = this.memberIdNow;
    const connection = this.coordinatorConnection;
    if (memberId !== '' && connection !== null && !connection.closed) {
      try {
        const response = await connection.request(
          ApiKey.LeaveGroup,
          (w, v) => encodeLeaveGroupRequest(w, v, v >= 3 ? { groupId: this.options.groupId, members: [{ memberId, groupInstanceId: null }] } : { groupId: this.options.groupId, memberId }),
          decodeLeaveGroupResponse,
          { timeoutMs: this.options.requestTimeoutMs },
        );
        void response; // UNKNOWN_MEMBER_ID: already gone
      } catch {
        // the session timeout removes us instead
      }
    }
    this.memberIdNow = '';
    this.generation = -1;
    this.assigned = [];
    this.coordinatorConnection = null;
    if (connection !== null) connection.destroy(new KafkaClosedError('the consumer is closed'));
    await this.loop;
  }

  private owns(topic: string, partition: number): boolean {
    return this.assigned.some((tp) => tp.topic === topic && tp.partition === partition);
  }

  /** Asks for a rejoin (e.g. after a failed commit). */
  requestRejoin(): void {
    if (this.stopped) return;
    this.rejoinNeeded = true;
    this.stable = false;
    this.stopHeartbeat();
    this.wakeLoop?.();
  }

  /**
   * Commits offsets with the current generation and member id. Coordinator moves are retried until
   * requestTimeoutMs passes; a rebalance makes it throw KafkaCommitFailedError (and rejoin).
   */
  async commit(offsets: ReadonlyArray<TopicPartition & { offset: number }>): Promise<void> {
    if (offsets.length === 0) return;
    const topics = new Map<string, Array<{ partitionIndex: number; committedOffset: bigint; committedMetadata: string | null }>>();
    for (const entry of offsets) {
      let list = topics.get(entry.topic);
      if (list === undefined) topics.set(entry.topic, (list = []));
      list.push({ partitionIndex: entry.partition, committedOffset: BigInt(entry.offset), committedMetadata: '' });
    }
    const generationId = this.generation;
    const memberId = this.memberIdNow;
    await this.onCoordinator('OffsetCommit', async (connection) => {
      const response = await connection.request(
        ApiKey.OffsetCommit,
        (w, v) => encodeOffsetCommitRequest(w, v, {
          groupId: this.options.groupId,
          generationIdOrMemberEpoch: generationId,
          memberId,
          retentionTimeMs: -1n,
          topics: [...topics].map(([name, partitions]) => ({ name, partitions })),
        }),
        decodeOffsetCommitResponse,
        { timeoutMs: this.options.requestTimeoutMs },
      );
      for (const topic of response.topics) {
        for (const partition of topic.partitions) {
          if (partition.errorCode === ErrorCode.NONE) continue;
          const context = `OffsetCommit of ${topic.name}-${partition.partitionIndex}`;
          // An answer for an older generation says nothing about the membership now (auto-commits
          // run through rebalances, cooperative ones above all).
          if (generationId !== this.generation || memberId !== this.memberIdNow) throw new KafkaProtocolError(partition.errorCode, context);
          // Nor does a refusal of a partition just revoked: tidelog fences commits to the member's
          // current assignment with ILLEGAL_GENERATION (Kafka accepts them); the heartbeat still
          // catches a generation that really moved on.
          if (partition.errorCode === ErrorCode.ILLEGAL_GENERATION && !this.owns(topic.name, partition.partitionIndex)) throw new KafkaProtocolError(partition.errorCode, `${context} (revoked)`);
          this.checkGroupCode(partition.errorCode, context);
        }
      }
    });
  }

  /** Committed offsets of these partitions (absent: none committed). */
  async committed(partitions: readonly TopicPartition[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (partitions.length === 0) return out;
    const byTopic = new Map<string, number[]>();
    for (const tp of partitions) {
      let list = byTopic.get(tp.topic);
      if (list === undefined) byTopic.set(tp.topic, (list = []));
      list.push(tp.partition);
    }
    const topics = [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes }));
    await this.onCoordinator('OffsetFetch', async (connection) => {
      const groupId = this.options.groupId;
      const response = await connection.request(
        ApiKey.OffsetFetch,
        (w, v) => encodeOffsetFetchRequest(w, v, v >= 8 ? { groups: [{ groupId, topics }], requireStable: true } : { groupId, topics, requireStable: true }),
        decodeOffsetFetchResponse,
        { timeoutMs: this.options.requestTimeoutMs },
      );
      const group = response.groups?.find((g) => g.groupId === groupId);
      const errorCode = group?.errorCode ?? response.errorCode ?? ErrorCode.NONE;
      if (errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(errorCode, `OffsetFetch of group ${groupId}`);
      for (const topic of group?.topics ?? response.topics ?? []) {
        for (const partition of topic.partitions) {
          if (partition.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(partition.errorCode, `OffsetFetch of ${topic.name}-${partition.partitionIndex} (group ${groupId})`);
          if (partition.committedOffset >= 0n) out.set(`${topic.name}\u0000${partition.partitionIndex}`, Number(partition.committedOffset));
        }
      }
    });
    return out;
  }

  // -------------------------------------------------------------------------------------------

  private async run(): Promise<void> {
    let backoffMs = this.options.retryBackoffMs;
    while (!this.stopped) {
      if (!this.rejoinNeeded) {
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        this.wakeLoop = null;
        continue;
      }
      try {
        await this.joinAndSync();
        backoffMs = this.options.retryBackoffMs;
      } catch (error) {
        if (this.stopped) return;
        const code = error instanceof KafkaProtocolError ? error.code : -1;
        if (!REJOIN_CODES.has(code) && !COORDINATOR_CODES.has(code) && !isRetriable(error)) {
          this.stopped = true;
          this.options.onError(error as Error);
          return;
        }
        // MEMBER_ID_REQUIRED / UNKNOWN_MEMBER_ID rejoin at once; others after a backoff.
        if (code !== ErrorCode.UNKNOWN_MEMBER_ID) {
          await this.interruptibleSleep(backoffMs);
          backoffMs = Math.min(backoffMs * 2, this.options.retryBackoffMaxMs);
        }
      }
    }
  }

  private async joinAndSync(): Promise<void> {
    this.stable = false;
    this.stopHeartbeat();
    const cooperative = this.protocol === 'cooperative';
    // First, as that commit may find the generation gone (it resets it): then the partitions are lost.
    if (cooperative && this.assigned.length > 0 && this.generation >= 0) await this.options.beforeRejoin?.();
    const lost = this.generation < 0;
    if (this.assigned.length > 0 && (!cooperative || lost)) {
      const revoked = this.assigned;
      this.assigned = [];
      await this.options.onRevoke(revoked, lost);
    }
    if (this.stopped) return;
    const connection = await this.coordinator();
    const { groupId, sessionTimeoutMs, rebalanceTimeoutMs } = this.options;
    // The generation is the one of the last JoinGroup, as the Java client sends it: if a SyncGroup
    // failed after it, the partitions kept are still those of the generation before, which nobody
    // else was given meanwhile.
    const metadata = cooperative
      ? encodeSubscription(this.options.topics, null, { ownedPartitions: this.assigned, generationId: this.generation })
      : encodeSubscription(this.options.topics);
    const protocols = this.options.assignors.map((assignor) => ({ name: assignor.name, metadata }));
    let join: JoinGroupResponse;
    for (;;) {
      const memberId = this.memberIdNow;
      join = await this.groupRequest(connection, () => connection.request(
        ApiKey.JoinGroup,
        (w, v) => encodeJoinGroupRequest(w, v, { groupId, sessionTimeoutMs, rebalanceTimeoutMs, memberId, groupInstanceId: null, protocolType: CONSUMER_PROTOCOL_TYPE, protocols }),
        decodeJoinGroupResponse,
        { timeoutMs: rebalanceTimeoutMs + this.options.requestTimeoutMs },
      ));
      if (join.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
        this.memberIdNow = join.memberId;
        continue;
      }
      this.checkGroupCode(join.errorCode, `JoinGroup of group ${groupId}`);
      break;
    }
    if (this.stopped) return;
    this.memberIdNow = join.memberId;
    this.generation = join.generationId;
    this.leaderNow = join.leader === join.memberId;
    const protocolName = join.protocolName ?? '';
    const assignments = this.leaderNow ? await this.computeAssignments(protocolName, join.members) : [];
    const generationId = this.generation;
    const memberId = this.memberIdNow;
    const sync = await this.groupRequest(connection, () => connection.request(
      ApiKey.SyncGroup,
      (w, v) => encodeSyncGroupRequest(w, v, { groupId, generationId, memberId, groupInstanceId: null, protocolType: CONSUMER_PROTOCOL_TYPE, protocolName, assignments }),
      decodeSyncGroupResponse,
      { timeoutMs: this.options.requestTimeoutMs },
    ));
    this.checkGroupCode(sync.errorCode, `SyncGroup of group ${groupId}`);
    if (this.stopped) return;
    const partitions = decodeAssignment(sync.assignment);
    const kept = new Set(partitions.map(partitionKey));
    const revoked = this.assigned.filter((tp) => !kept.has(partitionKey(tp))); // eager: none left
    this.assigned = partitions;
    this.protocolNameNow = protocolName;
    this.rejoinNeeded = false;
    this.stable = true;
    this.generationCount++;
    this.scheduleHeartbeat();
    if (revoked.length > 0) await this.options.onRevoke(revoked, false);
    await this.options.onAssign(partitions);
    // Cooperative: partitions given up go to their new owners in the follow-up rebalance.
    if (revoked.length > 0) this.requestRejoin();
  }

  private async computeAssignments(protocolName: string, members: readonly JoinGroupResponseMember[]): Promise<Array<{ memberId: string; assignment: Buffer }>> {
    const assignor = this.options.assignors.find((candidate) => candidate.name === protocolName);
    if (assignor === undefined) throw new KafkaClientError(`the coordinator chose assignor ${JSON.stringify(protocolName)}, which this member does not have`, false);
    const subscriptions: MemberSubscription[] = members.map((member) => ({ memberId: member.memberId, ...decodeSubscription(member.metadata) }));
    const partitionCounts = new Map<string, number>();
    for (const topic of new Set(subscriptions.flatMap((member) => member.topics))) {
      try {
        partitionCounts.set(topic, (await this.options.cluster.refreshTopic(topic)).leaders.length);
      } catch {
        // a topic that does not exist (yet) gets no partitions
      }
    }
    const result = assignor.assign(subscriptions, partitionCounts);
    if ((assignor.supportedProtocols ?? ['eager']).includes('cooperative')) checkCooperativeAssignment(assignor.name, subscriptions, result);
    return subscriptions.map((member) => ({ memberId: member.memberId, assignment: encodeAssignment(result.get(member.memberId) ?? new Map()) }));
  }

  /** Throws for a non-zero code, after applying what it means for the membership. */
  private checkGroupCode(code: number, context: string): void {
    if (code === ErrorCode.NONE) return;
    if (code === ErrorCode.UNKNOWN_MEMBER_ID) {
      this.memberIdNow = '';
      this.generation = -1;
    }
    if (code === ErrorCode.ILLEGAL_GENERATION) this.generation = -1;
    if (REJOIN_CODES.has(code)) this.requestRejoin();
    if (COORDINATOR_CODES.has(code)) this.dropCoordinator();
    throw new KafkaProtocolError(code, context);
  }

  /** A request to the coordinator: a connection failure or timeout drops the coordinator. */
  private async groupRequest<T>(connection: BrokerConnection, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof KafkaConnectionError || error instanceof KafkaRequestTimeoutError) this.dropCoordinator(connection);
      throw error;
    }
  }

  /** Runs `use` on the coordinator, rediscovering it (with backoff) until requestTimeoutMs passes. */
  private async onCoordinator(what: string, use: (connection: BrokerConnection) => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.options.requestTimeoutMs;
    let backoffMs = this.options.retryBackoffMs;
    for (;;) {
      try {
        const connection = await this.coordinator();
        await this.groupRequest(connection, () => use(connection));
        return;
      } catch (error) {
        const code = error instanceof KafkaProtocolError ? error.code : -1;
        if (REJOIN_CODES.has(code)) throw new KafkaCommitFailedError(`${what} failed: the group is rebalancing (${(error as Error).message})`, { cause: error });
        const retry = COORDINATOR_CODES.has(code) || (code === -1 && isRetriable(error));
        if (!retry || Date.now() + backoffMs > deadline) throw error;
      }
      await this.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, this.options.retryBackoffMaxMs);
    }
  }

  private dropCoordinator(connection: BrokerConnection | null = this.coordinatorConnection): void {
    if (connection === null || connection !== this.coordinatorConnection) return;
    this.coordinatorConnection = null;
    connection.destroy(new KafkaConnectionError('the group coordinator moved'));
  }

  private coordinator(): Promise<BrokerConnection> {
    const current = this.coordinatorConnection;
    if (current !== null && !current.closed) return Promise.resolve(current);
    this.coordinatorConnection = null;
    if (this.finding === null) this.finding = this.discover().finally(() => (this.finding = null));
    return this.finding;
  }

  /** FindCoordinator with backoff (bounded by requestTimeoutMs), then a connection to it. */
  private async discover(): Promise<BrokerConnection> {
    const { groupId, cluster } = this.options;
    const deadline = Date.now() + this.options.requestTimeoutMs;
    let backoffMs = this.options.retryBackoffMs;
    for (;;) {
      if (this.stopped) throw new KafkaClosedError('the consumer is closed');
      try {
        const any = await cluster.anyConnection();
        const response = await any.request(
          ApiKey.FindCoordinator,
          (w, v) => encodeFindCoordinatorRequest(w, v, v >= 4 ? { keyType: 0, coordinatorKeys: [groupId] } : { key: groupId, keyType: 0 }),
          decodeFindCoordinatorResponse,
          { timeoutMs: this.options.requestTimeoutMs },
        );
        const entry = response.coordinators !== undefined && response.coordinators.length > 0
          ? response.coordinators[0]!
          : { errorCode: response.errorCode ?? ErrorCode.NONE, errorMessage: response.errorMessage ?? null, host: response.host ?? '', port: response.port ?? 0 };
        if (entry.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(entry.errorCode, `FindCoordinator of group ${groupId}`, entry.errorMessage);
        const connection = await BrokerConnection.connect({
          host: entry.host,
          port: entry.port,
          clientId: this.options.clientId,
          requestTimeoutMs: this.options.requestTimeoutMs,
          ...(this.options.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.options.connectTimeoutMs } : {}),
          requiredApis: [ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.Heartbeat, ApiKey.LeaveGroup, ApiKey.OffsetCommit, ApiKey.OffsetFetch],
        });
        if (this.stopped) {
          connection.destroy();
          throw new KafkaClosedError('the consumer is closed');
        }
        this.coordinatorConnection = connection;
        return connection;
      } catch (error) {
        const code = error instanceof KafkaProtocolError ? error.code : -1;
        const retry = COORDINATOR_CODES.has(code) || isRetriable(error);
        if (!retry || this.stopped || Date.now() + backoffMs > deadline) throw error;
      }
      await this.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, this.options.retryBackoffMaxMs);
    }
  }

  private scheduleHeartbeat(): void {
    if (this.stopped || !this.stable || this.heartbeatTimer !== null) return;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = null;
      void this.heartbeat();
    }, this.options.heartbeatIntervalMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeating || !this.stable || this.stopped) return;
    this.heartbeating = true;
    const generationId = this.generation;
    const memberId = this.memberIdNow;
    try {
      const connection = await this.coordinator();
      const response = await this.groupRequest(connection, () => connection.request(
        ApiKey.Heartbeat,
        (w, v) => encodeHeartbeatRequest(w, v, { groupId: this.options.groupId, generationId, memberId, groupInstanceId: null }),
        decodeHeartbeatResponse,
        { timeoutMs: Math.min(this.options.requestTimeoutMs, this.options.sessionTimeoutMs) },
      ));
      // An answer for an older generation means nothing now.
      if (generationId === this.generation && memberId === this.memberIdNow) this.checkGroupCode(response.errorCode, `Heartbeat of group ${this.options.groupId}`);
    } catch (error) {
      const code = error instanceof KafkaProtocolError ? error.code : -1;
      if (!REJOIN_CODES.has(code) && !COORDINATOR_CODES.has(code) && !isRetriable(error) && !this.stopped) {
        this.stopped = true;
        this.stopHeartbeat();
        this.options.onError(error as Error);
        this.wakeLoop?.();
      }
    } finally {
      this.heartbeating = false;
      this.scheduleHeartbeat();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => setTimeout(resolve, ms));
  }

  /** The join loop's backoff: stop() cuts it short. */
  private interruptibleSleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeLoop = null;
        resolve();
      }, ms);
      this.wakeLoop = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
