// Consumer groups of one broker: the membership state machine (groupCoordinator.ts) plus the
// durable side (offsetStore.ts on __consumer_offsets). This is what the group API handlers call.
//
// - Group metadata is written to __consumer_offsets when Kafka writes it: a completed generation,
//   a group emptied by a rebalance, a static member replaced without a rebalance; a deleted group
//   leaves tombstones. Writes of one group are chained so they land in event order.
// - At start, stored groups (and groups that only have offsets) are restored into the
//   coordinator, so committed offsets, generations and static members survive a restart.
// - Offsets of groups that stay empty past offsets.retention.minutes expire on a timer.
// - __consumer_offsets is created on first use (FindCoordinator), as Kafka does.
import type { GroupMetadataValue } from '../../protocol/generated/groupMetadataValue.js';
import type { BrokerConfig } from '../brokerConfig.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { TopicManager } from '../topicManager.js';
import { GroupCoordinator, type GroupChangeEvent, type PersistedGroup } from './groupCoordinator.js';
import { CONSUMER_OFFSETS_TOPIC, OffsetStore } from './offsetStore.js';
import { TimerScheduler, type Scheduler } from '../scheduler.js';

/** __consumer_offsets as Kafka configures it: compacted, 100 MiB segments. */
const OFFSETS_TOPIC_CONFIGS = { 'cleanup.policy': 'compact', 'segment.bytes': String(100 * 1024 * 1024) };

function toStoredValue(group: PersistedGroup): GroupMetadataValue {
  return {
    protocolType: group.protocolType ?? '',
    generation: group.generationId,
    protocol: group.protocolName,
    leader: group.leaderId,
    currentStateTimestamp: BigInt(group.stateTimestampMs),
    members: group.members.map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      clientId: member.clientId,
      clientHost: member.clientHost,
      rebalanceTimeout: member.rebalanceTimeoutMs,
      sessionTimeout: member.sessionTimeoutMs,
      subscription: member.metadata,
      assignment: member.assignment,
    })),
  };
}

function fromStoredValue(groupId: string, value: GroupMetadataValue): PersistedGroup {
  return {
    groupId,
    generationId: value.generation,
    protocolType: value.protocolType === '' ? null : value.protocolType,
    protocolName: value.protocol,
    leaderId: value.leader,
    stateTimestampMs: Number(value.currentStateTimestamp ?? -1n),
    members: value.members.map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId ?? null,
      clientId: member.clientId,
      clientHost: member.clientHost,
      rebalanceTimeoutMs: member.rebalanceTimeout ?? member.sessionTimeout,
      sessionTimeoutMs: member.sessionTimeout,
      metadata: member.subscription,
      assignment: member.assignment,
    })),
  };
}

export class GroupService {
  readonly coordinator: GroupCoordinator;
  readonly offsets: OffsetStore;
  private ready: Promise<void> | null = null;
  /** The chained metadata writes of each group; each resolves to whether it was stored. */
  private readonly writes = new Map<string, Promise<boolean>>();
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly topics: TopicManager,
    private readonly config: BrokerConfig,
    clock: Clock,
    private readonly logger: Logger,
    scheduler: Scheduler = new TimerScheduler(),
  ) {
    this.offsets = new OffsetStore(topics, { numPartitions: config.offsetsTopicPartitions, topicConfigs: OFFSETS_TOPIC_CONFIGS }, clock, logger);
    this.coordinator = new GroupCoordinator({
      scheduler,
      logger,
      config: {
        minSessionTimeoutMs: config.groupMinSessionTimeoutMs,
        maxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
        initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
        maxGroupSize: config.groupMaxSize,
      },
    });
    this.coordinator.onGroupChange((event) => this.persist(event));
  }

  /** Loads stored groups and offsets when __consumer_offsets exists already (a restart). */
  async start(): Promise<void> {
    if (this.topics.get(CONSUMER_OFFSETS_TOPIC) !== undefined) await this.ensureReady();
    this.expiryTimer = setInterval(() => {
      this.expireOffsets().catch((error: unknown) => this.logger.error('offset expiry failed', { error: String(error) }));
    }, this.config.offsetsRetentionCheckIntervalMs);
    this.expiryTimer.unref();
  }

  /** Creates (first use) or loads __consumer_offsets and restores groups; idempotent. */
  ensureReady(): Promise<void> {
    this.ready ??= (async () => {
      await this.offsets.start();
      const stored = this.offsets.storedGroups();
      for (const [groupId, value] of stored) this.coordinator.restoreGroup(fromStoredValue(groupId, value));
      for (const groupId of this.offsets.groupsWithOffsets()) {
        if (stored.has(groupId)) continue;
        this.coordinator.restoreGroup({ groupId, generationId: 0, protocolType: null, protocolName: null, leaderId: null, stateTimestampMs: -1, members: [] });
      }
    })().catch((error: unknown) => {
      this.ready = null;
      throw error;
    });
    return this.ready;
  }

  private persist(event: GroupChangeEvent): void {
    let groupId: string;
    let write: () => Promise<unknown>;
    switch (event.kind) {
      case 'generation-completed':
      case 'group-emptied':
        groupId = event.group.groupId;
        write = () => this.offsets.storeGroupMetadata(groupId, toStoredValue(event.group));
        break;
      case 'static-member-replaced':
        if (event.group === null) return;
        groupId = event.groupId;
        write = () => this.offsets.storeGroupMetadata(groupId, toStoredValue(event.group!));
        break;
      case 'group-deleted':
        groupId = event.groupId;
        write = async () => {
          await this.offsets.deleteOffsets(groupId);
          await this.offsets.storeGroupMetadata(groupId, null);
        };
        break;
      default:
        return;
    }
    const previous = this.writes.get(groupId) ?? Promise.resolve(true);
    const next = previous
      .then(() => this.ensureReady())
      .then(write)
      .then(
        () => true,
        (error: unknown) => {
          this.logger.error('storing group metadata failed', { groupId, event: event.kind, error: String(error) });
          return false;
        },
      );
    this.writes.set(groupId, next);
    void next.finally(() => {
      if (this.writes.get(groupId) === next) this.writes.delete(groupId);
    });
  }

  /**
   * DeleteGroups for one group. Answers only once the tombstones for its offsets and metadata are
   * written, so an OffsetFetch right after the answer sees no offsets (as Kafka does).
   */
  async deleteGroup(groupId: string): Promise<number> {
    const errorCode = this.coordinator.deleteGroup(groupId);
    if (errorCode !== ErrorCode.NONE) return errorCode;
    const stored = await (this.writes.get(groupId) ?? Promise.resolve(true));
    return stored ? ErrorCode.NONE : ErrorCode.COORDINATOR_NOT_AVAILABLE;
  }

  async expireOffsets(): Promise<number> {
    if (this.ready === null) return 0;
    await this.ready;
    return this.offsets.expireOffsets(this.config.offsetsRetentionMs, (groupId) => this.coordinator.isEmpty(groupId));
  }

  /** Answers pending joins and syncs, stops timers, and lets queued metadata writes finish. */
  async close(): Promise<void> {
    if (this.expiryTimer !== null) clearInterval(this.expiryTimer);
    this.coordinator.close();
    await Promise.all([...this.writes.values()]);
  }
}
