// One group's membership data and the pure rules over it (protocol vote, leader election, state
// transition table). No timers and no responses: the coordinator owns those. Members are kept in
// join order, which makes "first remaining member" (leader re-election) and the vote tie-break
// deterministic.
import type { Cancel } from '../scheduler.js';
import type {
  GroupProtocol,
  GroupStateName,
  JoinGroupMember,
  JoinGroupResult,
  PersistedGroup,
  SyncGroupResult,
} from './groupTypes.js';

export const EMPTY_BYTES: Buffer = Buffer.alloc(0);

export class GroupMember {
  assignment: Buffer = EMPTY_BYTES;
  /** Added in the current rebalance and not yet answered; expires after newMemberJoinTimeoutMs. */
  isNew = false;
  /** A parked JoinGroup; set means "awaiting join". */
  joinWaiter: ((result: JoinGroupResult) => void) | null = null;
  /** A parked SyncGroup; set means "awaiting sync". */
  syncWaiter: ((result: SyncGroupResult) => void) | null = null;
  cancelSession: Cancel | null = null;

  constructor(
    readonly memberId: string,
    readonly groupInstanceId: string | null,
    readonly clientId: string,
    readonly clientHost: string,
    public rebalanceTimeoutMs: number,
    public sessionTimeoutMs: number,
    readonly protocolType: string,
    public protocols: readonly GroupProtocol[],
  ) {}

  supports(protocolName: string): boolean {
    return this.protocols.some((protocol) => protocol.name === protocolName);
  }

  metadataFor(protocolName: string | null): Buffer {
    return this.protocols.find((protocol) => protocol.name === protocolName)?.metadata ?? EMPTY_BYTES;
  }

  /** The member's first protocol (in its own preference order) among the candidates. */
  vote(candidates: ReadonlySet<string>): string {
    const choice = this.protocols.find((protocol) => candidates.has(protocol.name));
    if (choice === undefined) throw new Error(`group member ${this.memberId} supports none of the candidate protocols`);
    return choice.name;
  }

  /** Same protocols, same order, same metadata bytes. */
  matches(protocols: readonly GroupProtocol[]): boolean {
    return (
      protocols.length === this.protocols.length &&
      protocols.every((protocol, index) => {
        const mine = this.protocols[index]!;
        return mine.name === protocol.name && mine.metadata.equals(protocol.metadata);
      })
    );
  }
}

// Kafka's transition table: a state may only be entered from the states listed for it.
const VALID_PREVIOUS_STATES: Record<GroupStateName, readonly GroupStateName[]> = {
  Empty: ['PreparingRebalance'],
  PreparingRebalance: ['Stable', 'CompletingRebalance', 'Empty'],
  CompletingRebalance: ['PreparingRebalance'],
  Stable: ['CompletingRebalance'],
  Dead: ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'],
};

export class Group {
  state: GroupStateName;
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  stateTimestampMs: number;
  /** In join order. */
  members = new Map<string, GroupMember>();
  /** groupInstanceId -> current member id. */
  readonly staticMembers = new Map<string, string>();
  /** Ids handed out with MEMBER_ID_REQUIRED and not yet used; value cancels the expiry. */
  readonly pendingMembers = new Map<string, Cancel>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSync = new Set<string>();
  /** A member joined during the initial (delayed) rebalance: the delay is extended. */
  newMemberAdded = false;
  /** The delayed join of PreparingRebalance: `initial` waits out the delay, `regular` completes early once all joined. */
  joinTimer: { kind: 'initial' | 'regular'; cancel: Cancel } | null = null;
  cancelSyncExpiry: Cancel | null = null;
  /** Restored from storage or used for commits: never dropped silently while Empty. */
  keepWhenUnused = false;

  constructor(
    readonly groupId: string,
    state: GroupStateName,
    nowMs: number,
  ) {
    this.state = state;
    this.stateTimestampMs = nowMs;
  }

  /** Changes state after checking Kafka's transition table; returns the previous state. */
  transitionTo(target: GroupStateName, nowMs: number): GroupStateName {
    const previous = this.state;
    if (!VALID_PREVIOUS_STATES[target].includes(previous)) {
      throw new Error(`group ${this.groupId}: invalid transition ${previous} -> ${target}`);
    }
    this.state = target;
    this.stateTimestampMs = nowMs;
    return previous;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  add(member: GroupMember): void {
    if (this.members.has(member.memberId)) throw new Error(`group ${this.groupId}: member ${member.memberId} added twice`);
    if (member.groupInstanceId !== null) {
      if (this.staticMembers.has(member.groupInstanceId)) throw new Error(`group ${this.groupId}: instance ${member.groupInstanceId} added twice`);
      this.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    if (this.members.size === 0) this.protocolType = member.protocolType;
    if (this.protocolType !== member.protocolType) throw new Error(`group ${this.groupId}: member protocol type differs from the group's`);
    if (this.leaderId === null) this.leaderId = member.memberId;
    this.members.set(member.memberId, member);
    this.pendingMembers.get(member.memberId)?.();
    this.pendingMembers.delete(member.memberId);
  }

  /** Takes the member out; a leaving leader hands over to the first remaining member. */
  remove(memberId: string): void {
    const member = this.members.get(memberId);
    if (member === undefined) return;
    this.members.delete(memberId);
    if (member.groupInstanceId !== null && this.staticMembers.get(member.groupInstanceId) === memberId) {
      this.staticMembers.delete(member.groupInstanceId);
    }
    this.pendingSync.delete(memberId);
    if (this.leaderId === memberId) this.leaderId = this.members.keys().next().value ?? null;
  }

  /**
   * KIP-345: the static member `groupInstanceId` continues under `newMemberId`, keeping its place in
   * the join order, its assignment, and its leadership. The caller has already answered and
   * detached whatever the old incarnation had parked.
   */
  replaceStaticMember(groupInstanceId: string, oldMemberId: string, newMemberId: string): GroupMember {
    const old = this.members.get(oldMemberId);
    if (old === undefined || old.groupInstanceId !== groupInstanceId) throw new Error(`group ${this.groupId}: no static member ${oldMemberId} for instance ${groupInstanceId}`);
    if (this.members.has(newMemberId)) throw new Error(`group ${this.groupId}: member id ${newMemberId} already in use`);
    const replacement = new GroupMember(newMemberId, groupInstanceId, old.clientId, old.clientHost, old.rebalanceTimeoutMs, old.sessionTimeoutMs, old.protocolType, old.protocols);
    replacement.assignment = old.assignment;
    const reordered = new Map<string, GroupMember>();
    for (const [memberId, member] of this.members) {
      if (memberId === oldMemberId) reordered.set(newMemberId, replacement);
      else reordered.set(memberId, member);
    }
    this.members = reordered;
    this.staticMembers.set(groupInstanceId, newMemberId);
    if (this.leaderId === oldMemberId) this.leaderId = newMemberId;
    if (this.pendingSync.delete(oldMemberId)) this.pendingSync.add(newMemberId);
    return replacement;
  }

  /** Protocol names every member supports. */
  candidateProtocols(excludingMemberId?: string): Set<string> {
    const others = [...this.members.values()].filter((member) => member.memberId !== excludingMemberId);
    const [first, ...rest] = others;
    if (first === undefined) return new Set<string>();
    const candidates = new Set(first.protocols.map((protocol) => protocol.name));
    for (const member of rest) {
      for (const name of candidates) if (!member.supports(name)) candidates.delete(name);
    }
    return candidates;
  }

  /**
   * Could a member with this protocol type and these protocols join? An Empty group takes any
   * non-empty offer; otherwise the type must match and one protocol must be supported by every
   * other member. (`excludingMemberId` leaves out the member's own current registration, so a
   * member may change its protocols as long as the others can follow.)
   */
  supportsProtocols(protocolType: string, protocolNames: readonly string[], excludingMemberId?: string): boolean {
    if (this.state === 'Empty') return protocolType !== '' && protocolNames.length > 0;
    if (this.protocolType !== protocolType || protocolNames.length === 0) return false;
    const others = [...this.members.values()].filter((member) => member.memberId !== excludingMemberId);
    if (others.length === 0) return true;
    const candidates = this.candidateProtocols(excludingMemberId);
    return protocolNames.some((name) => candidates.has(name));
  }

  /**
   * Each member votes for its first protocol that all members support; most votes wins. Ties go to
   * the protocol the leader prefers (Kafka leaves ties to hash order).
   */
  selectProtocol(): string {
    if (this.members.size === 0) throw new Error(`group ${this.groupId}: cannot select a protocol without members`);
    const candidates = this.candidateProtocols();
    if (candidates.size === 0) throw new Error(`group ${this.groupId}: members share no protocol`);
    const votes = new Map<string, number>();
    for (const member of this.members.values()) {
      const choice = member.vote(candidates);
      votes.set(choice, (votes.get(choice) ?? 0) + 1);
    }
    const mostVotes = Math.max(...votes.values());
    const tied = new Set([...votes].filter(([, count]) => count === mostVotes).map(([name]) => name));
    const leader = (this.leaderId === null ? undefined : this.members.get(this.leaderId)) ?? this.members.values().next().value!;
    return leader.protocols.find((protocol) => tied.has(protocol.name))?.name ?? [...tied][0]!;
  }

  /** Max of the members' rebalance timeouts (0 without members). */
  rebalanceTimeoutMs(): number {
    let timeoutMs = 0;
    for (const member of this.members.values()) timeoutMs = Math.max(timeoutMs, member.rebalanceTimeoutMs);
    return timeoutMs;
  }

  awaitingJoinCount(): number {
    let count = 0;
    for (const member of this.members.values()) if (member.joinWaiter !== null) count++;
    return count;
  }

  /** Every member has rejoined and no MEMBER_ID_REQUIRED member is still expected. */
  hasAllMembersJoined(): boolean {
    return this.pendingMembers.size === 0 && this.awaitingJoinCount() === this.members.size;
  }

  /**
   * Keeps the leader if it rejoined, else makes the first rejoined member leader. False when no
   * member rejoined (or there are none).
   */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    if (this.members.get(this.leaderId)?.joinWaiter != null) return true;
    for (const member of this.members.values()) {
      if (member.joinWaiter !== null) {
        this.leaderId = member.memberId;
        return true;
      }
    }
    return false;
  }

  /** The member list the leader receives in its JoinGroup response. */
  joinMembers(): JoinGroupMember[] {
    return [...this.members.values()].map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      metadata: member.metadataFor(this.protocolName),
    }));
  }

  snapshot(): PersistedGroup {
    return {
      groupId: this.groupId,
      generationId: this.generationId,
      protocolType: this.protocolType,
      protocolName: this.protocolName,
      leaderId: this.leaderId,
      stateTimestampMs: this.stateTimestampMs,
      members: [...this.members.values()].map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        clientId: member.clientId,
        clientHost: member.clientHost,
        rebalanceTimeoutMs: member.rebalanceTimeoutMs,
        sessionTimeoutMs: member.sessionTimeoutMs,
        metadata: member.metadataFor(this.protocolName),
        assignment: member.assignment,
      })),
    };
  }
}
