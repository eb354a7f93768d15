// The group coordinator's vocabulary: requests and results shaped after the Kafka APIs they serve
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups, the
// member checks of OffsetCommit), the persisted form of a group, change events, and the limits.
// Error codes are Kafka's (protocol/errors.ts); the wire handlers copy them into responses as is.
import { ConfigError } from '../errors.js';
import { INT32_MAX } from '../../common/limits.js';

/** Group states, spelled as Kafka spells them in DescribeGroups and ListGroups. */
export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export const GROUP_STATE_NAMES: readonly GroupStateName[] = ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead'];

/** One protocol a member offers, e.g. `range` with its ConsumerProtocolSubscription bytes. */
export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinGroupRequest {
  groupId: string;
  /** "" for a member that has no id yet. */
  memberId: string;
  /** KIP-345 static membership (JoinGroup v5+); null for dynamic members. */
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  /** JoinGroup v0 has none: pass the session timeout, as Kafka does. */
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: readonly GroupProtocol[];
  /** KIP-394: true for JoinGroup v4+; a member without an id first gets MEMBER_ID_REQUIRED. */
  requireKnownMemberId: boolean;
  /**
   * KIP-814: true for JoinGroup v9+. Decides how a static leader that restarts while the group is
   * Stable is answered (see `JoinGroupResult.skipAssignment`). Defaults to false.
   */
  supportSkippingAssignment?: boolean;
}

export interface JoinGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  /** The member's metadata for the chosen protocol. */
  metadata: Buffer;
}

export interface JoinGroupResult {
  errorCode: number;
  /** -1 with an error. */
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  /** "" with an error. */
  leaderId: string;
  /** The member's id: the generated one with MEMBER_ID_REQUIRED or a first join. */
  memberId: string;
  /** True only for a v9+ static leader rejoining a Stable group: it must not run its assignor. */
  skipAssignment: boolean;
  /** Every member with its metadata for the leader; empty for followers and with errors. */
  members: JoinGroupMember[];
}

export interface MemberAssignment {
  memberId: string;
  assignment: Buffer;
}

export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** SyncGroup v5+ sends both; null means not sent (no check). */
  protocolType: string | null;
  protocolName: string | null;
  /** Only the leader's are used; followers send none. */
  assignments: readonly MemberAssignment[];
}

export interface SyncGroupResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  /** This member's assignment; an empty buffer with errors or when the leader gave it none. */
  assignment: Buffer;
}

export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface HeartbeatResult {
  errorCode: number;
}

export interface LeavingMember {
  /** "" together with a groupInstanceId removes that static member (admin removal, KIP-345). */
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeaveGroupRequest {
  groupId: string;
  /** LeaveGroup v0-2 carry exactly one member (its memberId); v3+ a list. */
  members: readonly LeavingMember[];
}

export interface LeaveGroupMemberResult extends LeavingMember {
  errorCode: number;
}

export interface LeaveGroupResult {
  /** Group-level error; per-member errors are in `members`. v0-2 answer with the one member's code. */
  errorCode: number;
  members: LeaveGroupMemberResult[];
}

export interface DescribedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Metadata for the chosen protocol; empty unless the group is Stable (as Kafka). */
  metadata: Buffer;
  /** Empty unless the group is Stable (as Kafka). */
  assignment: Buffer;
}

export interface GroupDescription {
  errorCode: number;
  groupId: string;
  /** "Dead" for a group this coordinator does not know (DescribeGroups < v6 answers so). */
  state: GroupStateName;
  /** "" when none. */
  protocolType: string;
  /** "" unless the group is Stable (as Kafka). */
  protocolName: string;
  members: DescribedMember[];
}

export interface ListedGroup {
  groupId: string;
  /** "" for groups that only hold committed offsets ("simple" groups). */
  protocolType: string;
  state: GroupStateName;
}

export interface ListGroupsResult {
  errorCode: number;
  groups: ListedGroup[];
}

/** A member as persisted (the fields of Kafka's GroupMetadataValue member). */
export interface PersistedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  /** The member's metadata for the group's chosen protocol ("subscription"). */
  metadata: Buffer;
  assignment: Buffer;
}

/**
 * A group as persisted: its last completed generation (Stable, with members and assignments) or an
 * Empty group. `restoreGroup` takes exactly this; `onGroupChange` events carry it. Buffers are
 * shared with the coordinator: treat them as read-only.
 */
export interface PersistedGroup {
  groupId: string;
  generationId: number;
  /** null for a group that never had members (offsets only). */
  protocolType: string | null;
  /** null when the group has no members. */
  protocolName: string | null;
  /** null when the group has no members. */
  leaderId: string | null;
  /** When the group entered its current state (Kafka's currentStateTimestamp; offset expiry uses it). */
  stateTimestampMs: number;
  members: PersistedMember[];
}

export type MemberRemovalReason =
  | 'leave-group' // LeaveGroup (by member id, or by instance id for a static member)
  | 'session-timeout' // no heartbeat within the member's session timeout
  | 'join-timeout' // a new member's JoinGroup stayed parked past newMemberJoinTimeoutMs
  | 'rebalance-timeout' // a dynamic member did not rejoin before the rebalance timeout
  | 'sync-timeout' // did not send SyncGroup within the rebalance timeout after the join phase
  | 'group-full'; // over group.max.size when it rejoined (only after restoring an oversized group)

/**
 * What a persistence layer (or a metrics reader) hears. Listeners run synchronously, in the middle
 * of the coordinator's work: they must not throw (a throw is logged and ignored) and must not call
 * the coordinator's request methods.
 */
export type GroupChangeEvent =
  | { kind: 'member-added'; groupId: string; memberId: string; groupInstanceId: string | null }
  | { kind: 'member-removed'; groupId: string; memberId: string; groupInstanceId: string | null; reason: MemberRemovalReason }
  | {
      kind: 'static-member-replaced';
      groupId: string;
      groupInstanceId: string;
      oldMemberId: string;
      newMemberId: string;
      /** Set when the group stays Stable without a rebalance: the metadata Kafka stores then. */
      group: PersistedGroup | null;
    }
  | { kind: 'state-changed'; groupId: string; from: GroupStateName; to: GroupStateName; generationId: number }
  /** The leader's assignment arrived: the group is Stable in `group.generationId`. Kafka stores this. */
  | { kind: 'generation-completed'; group: PersistedGroup }
  /** A rebalance ended with no members: the group is Empty at a new generation. Kafka stores this. */
  | { kind: 'group-emptied'; group: PersistedGroup }
  /** DeleteGroups removed it; committed offsets go with it. */
  | { kind: 'group-deleted'; groupId: string };

export type GroupChangeListener = (event: GroupChangeEvent) => void;

/** Limits and timeouts; names follow Kafka's broker configs where one exists. */
export interface GroupCoordinatorConfig {
  /** group.min.session.timeout.ms */
  minSessionTimeoutMs: number;
  /** group.max.session.timeout.ms */
  maxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms: how long the first rebalance of an Empty group waits for more members. */
  initialRebalanceDelayMs: number;
  /** group.max.size: members per group (Kafka's default is unbounded; ours is not). */
  maxGroupSize: number;
  /** Groups this coordinator holds, Empty ones included. */
  maxGroups: number;
  /** Bytes of protocol names plus metadata one member may send in JoinGroup. */
  maxMemberMetadataBytes: number;
  /** Bytes of one member's assignment in the leader's SyncGroup. */
  maxAssignmentBytes: number;
  /** Protocols one member may offer. */
  maxProtocolsPerMember: number;
  /** How long a new member's JoinGroup may stay parked (Kafka's fixed NewMemberJoinTimeoutMs). */
  newMemberJoinTimeoutMs: number;
}


export const DEFAULT_GROUP_COORDINATOR_CONFIG: Readonly<GroupCoordinatorConfig> = {
  minSessionTimeoutMs: 6_000,
  maxSessionTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 3_000,
  maxGroupSize: 1_000,
  maxGroups: 10_000,
  maxMemberMetadataBytes: 1024 * 1024,
  maxAssignmentBytes: 1024 * 1024,
  maxProtocolsPerMember: 64,
  newMemberJoinTimeoutMs: 300_000,
};

const CONFIG_RANGES: Record<keyof GroupCoordinatorConfig, readonly [number, number]> = {
  minSessionTimeoutMs: [0, INT32_MAX],
  maxSessionTimeoutMs: [1, INT32_MAX],
  initialRebalanceDelayMs: [0, INT32_MAX],
  maxGroupSize: [1, 1_000_000],
  maxGroups: [1, 10_000_000],
  maxMemberMetadataBytes: [1, INT32_MAX],
  maxAssignmentBytes: [1, INT32_MAX],
  maxProtocolsPerMember: [1, 10_000],
  newMemberJoinTimeoutMs: [1, INT32_MAX],
};

/** Defaults overlaid with `overrides`, every value range-checked; throws ConfigError naming the key. */
export function groupCoordinatorConfig(overrides: Partial<GroupCoordinatorConfig> = {}): GroupCoordinatorConfig {
  const config: GroupCoordinatorConfig = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, ...overrides };
  for (const key of Object.keys(CONFIG_RANGES) as Array<keyof GroupCoordinatorConfig>) {
    const [min, max] = CONFIG_RANGES[key];
    const value = config[key];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`group coordinator: ${key} must be an integer in [${min}, ${max}], got ${String(value)}`);
    }
  }
  if (config.minSessionTimeoutMs > config.maxSessionTimeoutMs) {
    throw new ConfigError(`group coordinator: minSessionTimeoutMs (${config.minSessionTimeoutMs}) exceeds maxSessionTimeoutMs (${config.maxSessionTimeoutMs})`);
  }
  return config;
}
