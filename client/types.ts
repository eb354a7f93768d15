// Types shared by the consumer, its group membership and the assignors. They live here, in a module
// that imports nothing, so those modules can use one another's types without an import cycle.

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface MemberSubscription {
  memberId: string;
  topics: readonly string[];
  userData?: Buffer | null;
  /** Partitions the member holds while it rejoins (subscription v1+; absent: none). */
  ownedPartitions?: readonly TopicPartition[];
  /** The generation ownedPartitions belong to (subscription v2+; absent: unknown). */
  generationId?: number;
}

/**
 * eager: every member gives up all its partitions before rejoining. cooperative (KIP-429): members
 * keep theirs; the assignor never gives a partition to a member while another still owns it.
 */
export type RebalanceProtocol = 'eager' | 'cooperative';

/** memberId -> topic -> partitions (ascending). Every member appears, possibly with nothing. */
export type GroupAssignment = Map<string, Map<string, number[]>>;

export interface Assignor {
  /** The protocol name sent in JoinGroup. */
  readonly name: string;
  /** Rebalance protocols it supports. Default ['eager']. */
  readonly supportedProtocols?: readonly RebalanceProtocol[];
  /**
   * Assigns the partitions of the subscribed topics; `partitionCounts` holds the partition count of
   * every topic some member subscribes to and that exists (others are skipped).
   */
  assign(members: readonly MemberSubscription[], partitionCounts: ReadonlyMap<string, number>): GroupAssignment;
}

export type AssignorName = 'range' | 'roundrobin' | 'cooperative-sticky';
