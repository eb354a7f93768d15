// What subscribe() adds to a consumer: a GroupMembership (client/groupMembership.ts) whose
// assignments replace the consumer's, and the commits of consumed positions.
//
// On each assignment the partitions start at the group's committed offsets (else
// autoOffsetReset); before a rebalance (eager: every partition is given up), on close, and every
// autoCommitIntervalMs the positions of consumed records are committed (autoCommit, default true).
import type { Cluster } from '../cluster.js';
import { GroupMembership } from '../groupMembership.js';
import type { TopicPartition } from '../types.js';
import type { FetchPipeline } from './fetchPipeline.js';
import type { ConsumerSettings, SubscribeSettings } from './options.js';
import { keyOf, type PartitionPositions } from './positions.js';

type PartitionOffset = TopicPartition & { offset: number };

export class GroupSubscription {
  readonly membership: GroupMembership;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private autoCommitTimer: NodeJS.Timeout | null = null;
  /** Offsets committed (or fetched as committed) per partition key, to skip unchanged commits. */
  private readonly committedOffsets = new Map<string, number>();

  constructor(
    subscription: SubscribeSettings,
    settings: ConsumerSettings<unknown, unknown>,
    cluster: Cluster,
    private readonly positions: PartitionPositions,
    private readonly pipeline: FetchPipeline,
  ) {
    this.autoCommit = subscription.autoCommit;
    this.autoCommitIntervalMs = subscription.autoCommitIntervalMs;
    this.membership = new GroupMembership({
      cluster,
      groupId: subscription.groupId,
      topics: subscription.topics,
      assignors: subscription.assignors,
      clientId: settings.clientId,
      sessionTimeoutMs: subscription.sessionTimeoutMs,
      rebalanceTimeoutMs: subscription.rebalanceTimeoutMs,
      heartbeatIntervalMs: subscription.heartbeatIntervalMs,
      requestTimeoutMs: settings.requestTimeoutMs,
      ...(settings.connectTimeoutMs !== undefined ? { connectTimeoutMs: settings.connectTimeoutMs } : {}),
      retryBackoffMs: settings.retryBackoffMs,
      retryBackoffMaxMs: settings.retryBackoffMaxMs,
      onRevoke: (partitions, lost) => this.onRevoke(partitions, lost),
      onAssign: (partitions) => this.onAssign(partitions),
      beforeRejoin: () => (this.autoCommit && !this.pipeline.isClosed ? this.commitConsumed().catch(() => undefined) : Promise.resolve()),
      onError: (error) => this.pipeline.fail(error),
    });
  }

  start(): void {
    this.membership.start();
    if (this.autoCommit) {
      this.autoCommitTimer = setInterval(() => {
        void this.commitConsumed().catch(() => undefined); // retried on the next tick
      }, this.autoCommitIntervalMs);
    }
  }

  async commit(): Promise<void> {
    await this.commitConsumed();
  }

  /**
   * The first half of close, before fetching stops: no more automatic commits. Returns what the
   * second half, leave(), commits (with autoCommit, the positions consumed by now).
   */
  stopCommitting(): PartitionOffset[] {
    const finalOffsets = this.autoCommit ? this.consumedPositions() : [];
    if (this.autoCommitTimer !== null) clearInterval(this.autoCommitTimer);
    this.autoCommitTimer = null;
    return finalOffsets;
  }

  async leave(finalOffsets: PartitionOffset[]): Promise<void> {
    await this.commitConsumed(finalOffsets).catch(() => undefined);
    await this.membership.leave();
  }

  private consumedPositions(): PartitionOffset[] {
    const out: PartitionOffset[] = [];
    for (const state of this.positions.values()) {
      if (state.position < 0 || this.committedOffsets.get(state.key) === state.position) continue;
      out.push({ topic: state.topic, partition: state.partition, offset: state.position });
    }
    return out;
  }

  private async commitConsumed(offsets: PartitionOffset[] = this.consumedPositions()): Promise<void> {
    if (offsets.length === 0) return;
    await this.membership.commit(offsets);
    for (const entry of offsets) this.committedOffsets.set(keyOf(entry.topic, entry.partition), entry.offset);
  }

  /** Eager: every partition; cooperative: only those lost (the others keep being fetched). */
  private async onRevoke(partitions: TopicPartition[], lost: boolean): Promise<void> {
    const revoked = new Set(partitions.map((tp) => keyOf(tp.topic, tp.partition)));
    const offsets = this.consumedPositions().filter((entry) => revoked.has(keyOf(entry.topic, entry.partition)));
    // nothing more of them is handed out from here
    this.pipeline.replaceAssignment(this.positions.assignment().filter((tp) => !revoked.has(keyOf(tp.topic, tp.partition))));
    if (this.autoCommit && !this.pipeline.isClosed && !lost) await this.commitConsumed(offsets).catch(() => undefined);
    for (const key of revoked) this.committedOffsets.delete(key);
  }

  /** The whole new assignment: partitions kept keep their positions, new ones start at the committed offset. */
  private async onAssign(partitions: TopicPartition[]): Promise<void> {
    if (this.pipeline.isClosed) return;
    const added = partitions.filter((tp) => !this.positions.has(tp.topic, tp.partition));
    let committed: Map<string, number>;
    try {
      committed = await this.membership.committed(added);
    } catch {
      if (!this.pipeline.isClosed) this.membership.requestRejoin(); // no starting positions: try again
      return;
    }
    if (this.pipeline.isClosed) return;
    this.pipeline.replaceAssignment(partitions.map((tp) => {
      const offset = committed.get(`${tp.topic}\u0000${tp.partition}`);
      if (offset === undefined) return { topic: tp.topic, partition: tp.partition };
      this.committedOffsets.set(keyOf(tp.topic, tp.partition), offset);
      return { topic: tp.topic, partition: tp.partition, offset };
    }));
  }
}
