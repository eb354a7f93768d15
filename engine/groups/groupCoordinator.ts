// Kafka's classic group membership protocol as a deterministic state machine: no sockets, no files,
// no real timers (time comes from the injected Scheduler). The request methods resolve when Kafka
// would send the response: a JoinGroup is parked until the join phase completes, a follower's
// SyncGroup until the leader's assignment arrives or the rebalance is cancelled.
//
// States (Kafka's names) and what moves a group between them:
//   Empty ---------------- first member joins -----------------> PreparingRebalance (initial delay)
//   PreparingRebalance --- all members rejoined / timeout ----> CompletingRebalance (generation+1)
//                     \--- nobody left ----------------------> Empty (generation+1)
//   CompletingRebalance -- leader's SyncGroup ----------------> Stable
//   CompletingRebalance / Stable -- member joins, leaves, changes protocols, leader rejoins,
//                     session expires, SyncGroup missing ---> PreparingRebalance
//   Empty -- DeleteGroups --> Dead (removed)
// Timeouts, each one scheduled task, never polled:
//   join phase: initial delay (group.initial.rebalance.delay.ms, extended while members keep
//     arriving, capped by the rebalance timeout) or the rebalance timeout (max over members);
//   sync phase: members that send no SyncGroup within the rebalance timeout are removed;
//   sessions: per member, renewed by heartbeats, joins, syncs and commits;
//   pending ids (MEMBER_ID_REQUIRED): expire after the session timeout the member asked for;
//   new members: a parked first JoinGroup expires after newMemberJoinTimeoutMs.
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../../protocol/errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { EMPTY_BYTES, Group, GroupMember } from './groupState.js';
import {
  GROUP_STATE_NAMES,
  groupCoordinatorConfig,
  type GroupChangeEvent,
  type GroupChangeListener,
  type GroupCoordinatorConfig,
  type GroupDescription,
  type GroupProtocol,
  type GroupStateName,
  type HeartbeatRequest,
  type HeartbeatResult,
  type JoinGroupRequest,
  type JoinGroupResult,
  type LeaveGroupMemberResult,
  type LeaveGroupRequest,
  type LeaveGroupResult,
  type ListGroupsResult,
  type MemberRemovalReason,
  type PersistedGroup,
  type SyncGroupRequest,
  type SyncGroupResult,
} from './groupTypes.js';
import type { Scheduler } from '../scheduler.js';
import { INT32_MAX } from '../../common/limits.js';

export * from './groupTypes.js';

/** Answer when this coordinator cannot take one more group (maxGroups): retriable, like Kafka's answer for a group it cannot serve. */
export const GROUP_LIMIT_ERROR_CODE = ErrorCode.COORDINATOR_NOT_AVAILABLE;
/** Answer to requests parked when the coordinator closes: clients look the coordinator up again. */
export const CLOSED_PARKED_ERROR_CODE = ErrorCode.NOT_COORDINATOR;
/** Answer to any request after close. */
export const CLOSED_ERROR_CODE = ErrorCode.COORDINATOR_NOT_AVAILABLE;


/** restoreGroup was handed a group that cannot be right (a storage bug or corruption). */
export class GroupRestoreError extends Error {
  override readonly name = 'GroupRestoreError';
}

export interface GroupCoordinatorOptions {
  scheduler: Scheduler;
  config?: Partial<GroupCoordinatorConfig>;
  logger?: Logger;
  /** Random part of generated member ids; injected so tests can predict them. */
  newUuid?: () => string;
}

function joinError(memberId: string, errorCode: number): JoinGroupResult {
  return { errorCode, generationId: -1, protocolType: null, protocolName: null, leaderId: '', memberId, skipAssignment: false, members: [] };
}

function syncError(errorCode: number): SyncGroupResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY_BYTES };
}

export class GroupCoordinator {
  readonly config: GroupCoordinatorConfig;
  private readonly scheduler: Scheduler;
  private readonly logger: Logger;
  private readonly newUuid: () => string;
  private readonly groups = new Map<string, Group>();
  private readonly listeners = new Set<GroupChangeListener>();
  private closed = false;

  constructor(options: GroupCoordinatorOptions) {
    this.config = groupCoordinatorConfig(options.config);
    this.scheduler = options.scheduler;
    this.logger = options.logger ?? silentLogger;
    this.newUuid = options.newUuid ?? randomUUID;
  }

  // ---------------------------------------------------------------------------------------------
  // JoinGroup

  joinGroup(request: JoinGroupRequest): Promise<JoinGroupResult> {
    return new Promise((resolve) => this.handleJoin(request, resolve));
  }

  private handleJoin(request: JoinGroupRequest, respond: (result: JoinGroupResult) => void): void {
    const { groupId, memberId } = request;
    if (this.closed) return respond(joinError(memberId, CLOSED_ERROR_CODE));
    if (groupId === '') return respond(joinError(memberId, ErrorCode.INVALID_GROUP_ID));
    if (!Number.isInteger(request.sessionTimeoutMs) || request.sessionTimeoutMs < this.config.minSessionTimeoutMs || request.sessionTimeoutMs > this.config.maxSessionTimeoutMs) {
      return respond(joinError(memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
    }
    const problem = this.joinRequestProblem(request);
    if (problem !== null) {
      this.logger.warn('JoinGroup refused', { groupId, memberId, problem });
      return respond(joinError(memberId, ErrorCode.INVALID_REQUEST));
    }

    let group = this.groups.get(groupId) ?? null;
    if (group === null) {
      // Only a member without an id creates a group; an id for an unknown group is stale.
      if (memberId !== '') return respond(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      group = this.createGroup(groupId);
      if (group === null) return respond(joinError(memberId, GROUP_LIMIT_ERROR_CODE));
    }

    if (!this.acceptJoiningMember(group, memberId)) {
      const over = group.members.get(memberId);
      if (over !== undefined) this.removeMemberAndUpdateGroup(group, over, 'group-full');
      this.removePendingMember(group, memberId);
      respond(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
    } else if (memberId === '') {
      this.newMemberJoin(group, request, respond);
    } else {
      this.currentMemberJoin(group, request, respond);
    }
    this.tryCompleteJoin(group);
    this.dropIfUnused(group);
  }

  /** Bounds on what one member may send; null when within them. */
  private joinRequestProblem(request: JoinGroupRequest): string | null {
    if (!Number.isInteger(request.rebalanceTimeoutMs) || request.rebalanceTimeoutMs < 0 || request.rebalanceTimeoutMs > INT32_MAX) {
      return `rebalance timeout ${request.rebalanceTimeoutMs} is not in [0, ${INT32_MAX}]`;
    }
    if (request.protocols.length > this.config.maxProtocolsPerMember) {
      return `${request.protocols.length} protocols offered, at most ${this.config.maxProtocolsPerMember} allowed`;
    }
    let bytes = 0;
    for (const protocol of request.protocols) bytes += Buffer.byteLength(protocol.name) + protocol.metadata.length;
    if (bytes > this.config.maxMemberMetadataBytes) {
      return `protocol metadata of ${bytes} bytes exceeds maxMemberMetadataBytes ${this.config.maxMemberMetadataBytes}`;
    }
    return null;
  }

  /** group.max.size, counted the way Kafka counts it in each state. */
  private acceptJoiningMember(group: Group, memberId: string): boolean {
    switch (group.state) {
      case 'Empty':
      case 'Dead':
        return true;
      case 'PreparingRebalance':
        // Counting members that already rejoined (not all members) lets an over-full group, e.g.
        // restored after group.max.size was lowered, shed its last rejoiners.
        return group.members.get(memberId)?.joinWaiter != null || group.awaitingJoinCount() < this.config.maxGroupSize;
      case 'CompletingRebalance':
      case 'Stable':
        return group.members.has(memberId) || group.members.size < this.config.maxGroupSize;
    }
  }

  private newMemberJoin(group: Group, request: JoinGroupRequest, respond: (result: JoinGroupResult) => void): void {
    const instanceId = request.groupInstanceId;
    const replacedMemberId = instanceId === null ? undefined : group.staticMembers.get(instanceId);
    if (!group.supportsProtocols(request.protocolType, request.protocols.map((protocol) => protocol.name), replacedMemberId)) {
      return respond(joinError('', ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    // Static members get `${groupInstanceId}-${uuid}` as Kafka gives them, dynamic ones `${clientId}-${uuid}`.
    const newMemberId = `${instanceId ?? request.clientId}-${this.newUuid()}`;
    if (group.members.has(newMemberId) || group.pendingMembers.has(newMemberId)) throw new Error(`generated member id ${newMemberId} is already in use`);

    if (instanceId !== null) {
      if (replacedMemberId !== undefined) this.replaceStaticMember(group, instanceId, replacedMemberId, newMemberId, request, respond);
      else this.addMemberAndRebalance(group, newMemberId, request, respond);
    } else if (request.requireKnownMemberId) {
      // KIP-394: hand out the id first; the member is counted once it rejoins with it.
      if (group.pendingMembers.size >= this.config.maxGroupSize) return respond(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
      this.addPendingMember(group, newMemberId, request.sessionTimeoutMs);
      respond(joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED));
    } else {
      this.addMemberAndRebalance(group, newMemberId, request, respond);
    }
  }

  private currentMemberJoin(group: Group, request: JoinGroupRequest, respond: (result: JoinGroupResult) => void): void {
    const { memberId } = request;
    if (!group.supportsProtocols(request.protocolType, request.protocols.map((protocol) => protocol.name), memberId)) {
      return respond(joinError(memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    if (group.pendingMembers.has(memberId)) {
      // Pending ids are only ever handed to dynamic members.
      if (request.groupInstanceId !== null) return respond(joinError(memberId, ErrorCode.INVALID_REQUEST));
      return this.addMemberAndRebalance(group, memberId, request, respond);
    }
    const memberError = this.validateCurrentMember(group, memberId, request.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return respond(joinError(memberId, memberError));
    const member = group.members.get(memberId)!;

    switch (group.state) {
      case 'PreparingRebalance':
        this.updateMember(member, request, respond);
        return;
      case 'CompletingRebalance':
        // Same metadata: probably a retry after a lost response; answer with the current generation.
        if (member.matches(request.protocols)) return respond(this.generationAnswer(group, member, group.isLeader(memberId)));
        this.updateMember(member, request, respond);
        return this.prepareRebalance(group, `member ${memberId} changed its metadata`);
      case 'Stable':
        // The leader may rejoin to make the group reassign (e.g. topic metadata changed); a follower
        // with unchanged metadata just gets the current generation back.
        if (!group.isLeader(memberId) && member.matches(request.protocols)) return respond(this.generationAnswer(group, member, false));
        this.updateMember(member, request, respond);
        return this.prepareRebalance(group, group.isLeader(memberId) ? `leader ${memberId} rejoined` : `member ${memberId} changed its metadata`);
      case 'Empty':
      case 'Dead':
        return respond(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
    }
  }

  private generationAnswer(group: Group, member: GroupMember, withMembers: boolean): JoinGroupResult {
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leaderId: group.leaderId ?? '',
      memberId: member.memberId,
      skipAssignment: false,
      members: withMembers ? group.joinMembers() : [],
    };
  }

  private addMemberAndRebalance(group: Group, memberId: string, request: JoinGroupRequest, respond: (result: JoinGroupResult) => void): void {
    const member = new GroupMember(memberId, request.groupInstanceId, request.clientId, request.clientHost, request.rebalanceTimeoutMs, request.sessionTimeoutMs, request.protocolType, copyProtocols(request.protocols));
    member.isNew = true;
    if (group.state === 'PreparingRebalance' && group.generationId === 0) group.newMemberAdded = true;
    group.add(member);
    member.joinWaiter = respond;
    // A parked first JoinGroup cannot heartbeat; it gets a longer, separate timeout instead.
    this.scheduleSession(group, member, this.config.newMemberJoinTimeoutMs);
    this.emit({ kind: 'member-added', groupId: group.groupId, memberId, groupInstanceId: member.groupInstanceId });
    if (group.state !== 'PreparingRebalance') this.prepareRebalance(group, `member ${memberId} joined`);
  }

  /** Takes the member's new offer and parks its JoinGroup (a superseded parked one is answered). */
  private updateMember(member: GroupMember, request: JoinGroupRequest, respond: (result: JoinGroupResult) => void): void {
    member.protocols = copyProtocols(request.protocols);
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    this.answerJoin(member, joinError(member.memberId, ErrorCode.REBALANCE_IN_PROGRESS));
    member.joinWaiter = respond;
  }

  /** KIP-345: a static member restarted (same instance id, no member id). */
  private replaceStaticMember(group: Group, instanceId: string, oldMemberId: string, newMemberId: string, request: JoinGroupRequest, respond: (result: JoinGroupResult) => void): void {
    const previousLeaderId = group.leaderId;
    const old = group.members.get(oldMemberId)!;
    // Whatever the old incarnation still has parked is fenced now.
    this.answerJoin(old, joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID));
    this.answerSync(old, syncError(ErrorCode.FENCED_INSTANCE_ID));
    old.cancelSession?.();
    old.cancelSession = null;
    const member = group.replaceStaticMember(instanceId, oldMemberId, newMemberId);
    this.updateMember(member, request, respond);
    this.scheduleSession(group, member, member.sessionTimeoutMs);
    this.logger.info('static member replaced', { groupId: group.groupId, groupInstanceId: instanceId, oldMemberId, newMemberId, state: group.state });

    switch (group.state) {
      case 'Stable': {
        // No rebalance as long as the group would still pick the same protocol: members embed
        // generation and owned partitions in their metadata, so bytes always differ after a restart.
        if (group.selectProtocol() !== group.protocolName) {
          this.emitReplaced(group, instanceId, oldMemberId, newMemberId, null);
          return this.prepareRebalance(group, `static member ${newMemberId} rejoined with protocols that change the group's choice`);
        }
        const isLeader = group.isLeader(newMemberId);
        const skipAssignment = (request.supportSkippingAssignment ?? false) && isLeader;
        this.answerJoin(member, {
          errorCode: ErrorCode.NONE,
          generationId: group.generationId,
          protocolType: group.protocolType,
          protocolName: group.protocolName,
          // Before JoinGroup v9 the restarted leader is told the old leader id, so it does not think
          // it leads and run an assignment a Stable group would ignore; v9+ is told to skip it.
          leaderId: skipAssignment ? newMemberId : (previousLeaderId ?? ''),
          memberId: newMemberId,
          skipAssignment,
          members: skipAssignment ? group.joinMembers() : [],
        });
        return this.emitReplaced(group, instanceId, oldMemberId, newMemberId, group.snapshot());
      }
      case 'CompletingRebalance':
        // The leader may be assigning to the old id right now; only a new round gives the new id an assignment.
        this.emitReplaced(group, instanceId, oldMemberId, newMemberId, null);
        return this.prepareRebalance(group, `static member ${newMemberId} replaced ${oldMemberId} while the leader assigns`);
      case 'PreparingRebalance':
        // Parked like any rejoining member.
        return this.emitReplaced(group, instanceId, oldMemberId, newMemberId, null);
      case 'Empty':
      case 'Dead':
        throw new Error(`group ${group.groupId}: static member ${instanceId} known in state ${group.state}`);
    }
  }

  private emitReplaced(group: Group, groupInstanceId: string, oldMemberId: string, newMemberId: string, persisted: PersistedGroup | null): void {
    this.emit({ kind: 'static-member-replaced', groupId: group.groupId, groupInstanceId, oldMemberId, newMemberId, group: persisted });
  }

  private addPendingMember(group: Group, memberId: string, sessionTimeoutMs: number): void {
    const cancel = this.scheduler.schedule(this.scheduler.nowMs() + sessionTimeoutMs, () => {
      if (!group.pendingMembers.delete(memberId)) return;
      this.logger.info('pending member expired', { groupId: group.groupId, memberId });
      this.tryCompleteJoin(group);
      this.dropIfUnused(group);
    });
    group.pendingMembers.set(memberId, cancel);
  }

  private removePendingMember(group: Group, memberId: string): boolean {
    const cancel = group.pendingMembers.get(memberId);
    if (cancel === undefined) return false;
    cancel();
    group.pendingMembers.delete(memberId);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // The join phase

  private prepareRebalance(group: Group, reason: string): void {
    if (group.state === 'CompletingRebalance') this.resetAndPropagateAssignmentError(group, ErrorCode.REBALANCE_IN_PROGRESS);
    this.cancelSyncExpiry(group);
    const wasEmpty = group.state === 'Empty';
    this.transition(group, 'PreparingRebalance');
    this.logger.info('preparing rebalance', { groupId: group.groupId, generationId: group.generationId, reason });
    if (wasEmpty) {
      const delayMs = this.config.initialRebalanceDelayMs;
      this.scheduleInitialJoin(group, delayMs, Math.max(group.rebalanceTimeoutMs() - delayMs, 0));
    } else {
      this.scheduleRegularJoin(group);
      this.tryCompleteJoin(group);
    }
  }

  /**
   * The first rebalance of an Empty group waits `delayMs` for more members; each time members
   * arrived meanwhile it waits again, until the rebalance timeout is used up.
   */
  private scheduleInitialJoin(group: Group, delayMs: number, remainingMs: number): void {
    this.cancelJoinTimer(group);
    const cancel = this.scheduler.schedule(this.scheduler.nowMs() + delayMs, () => {
      group.joinTimer = null;
      this.assertState(group, 'PreparingRebalance');
      if (group.newMemberAdded && remainingMs > 0) {
        group.newMemberAdded = false;
        const nextDelayMs = Math.min(this.config.initialRebalanceDelayMs, remainingMs);
        this.scheduleInitialJoin(group, nextDelayMs, remainingMs - nextDelayMs);
      } else {
        this.completeJoin(group);
      }
    });
    group.joinTimer = { kind: 'initial', cancel };
  }

  private scheduleRegularJoin(group: Group): void {
    this.cancelJoinTimer(group);
    const cancel = this.scheduler.schedule(this.scheduler.nowMs() + group.rebalanceTimeoutMs(), () => {
      group.joinTimer = null;
      this.assertState(group, 'PreparingRebalance');
      this.completeJoin(group);
    });
    group.joinTimer = { kind: 'regular', cancel };
  }

  /** Ends a regular join phase early once everyone is in (the initial delay always runs out). */
  private tryCompleteJoin(group: Group): void {
    if (group.state === 'PreparingRebalance' && group.joinTimer?.kind === 'regular' && group.hasAllMembersJoined()) this.completeJoin(group);
  }

  private completeJoin(group: Group): void {
    this.assertState(group, 'PreparingRebalance');
    this.cancelJoinTimer(group);
    // Dynamic members that did not rejoin are out; static ones keep their place (KIP-345) until
    // their session or the sync phase runs out.
    for (const member of [...group.members.values()]) {
      if (member.joinWaiter === null && member.groupInstanceId === null) this.detachMember(group, member, 'rebalance-timeout');
    }
    if (!group.maybeElectNewJoinedLeader() && group.members.size > 0) {
      // Only static members that have not rejoined are left: wait another round for them.
      this.logger.warn('rebalance could not complete: no member rejoined', { groupId: group.groupId });
      this.scheduleRegularJoin(group);
      return;
    }

    group.generationId++;
    group.pendingSync.clear();
    group.newMemberAdded = false;
    if (group.members.size === 0) {
      group.protocolName = null;
      this.transition(group, 'Empty');
      this.logger.info('group is empty', { groupId: group.groupId, generationId: group.generationId });
      this.emit({ kind: 'group-emptied', group: group.snapshot() });
      return;
    }
    group.protocolName = group.selectProtocol();
    this.transition(group, 'CompletingRebalance');
    this.logger.info('join phase complete', { groupId: group.groupId, generationId: group.generationId, members: group.members.size, protocolName: group.protocolName, leaderId: group.leaderId });
    for (const member of group.members.values()) {
      this.answerJoin(member, this.generationAnswer(group, member, group.isLeader(member.memberId)));
      this.scheduleSession(group, member, member.sessionTimeoutMs);
      member.isNew = false;
      group.pendingSync.add(member.memberId);
    }
    this.scheduleSyncExpiry(group);
  }

  // ---------------------------------------------------------------------------------------------
  // SyncGroup

  syncGroup(request: SyncGroupRequest): Promise<SyncGroupResult> {
    return new Promise((resolve) => this.handleSync(request, resolve));
  }

  private handleSync(request: SyncGroupRequest, respond: (result: SyncGroupResult) => void): void {
    if (this.closed) return respond(syncError(CLOSED_ERROR_CODE));
    if (request.groupId === '') return respond(syncError(ErrorCode.INVALID_GROUP_ID));
    const group = this.groups.get(request.groupId);
    if (group === undefined) return respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    let errorCode = this.validateCurrentMember(group, request.memberId, request.groupInstanceId);
    if (errorCode === ErrorCode.NONE && request.generationId !== group.generationId) errorCode = ErrorCode.ILLEGAL_GENERATION;
    if (errorCode === ErrorCode.NONE && request.protocolType !== null && request.protocolType !== group.protocolType) errorCode = ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
    if (errorCode === ErrorCode.NONE && request.protocolName !== null && request.protocolName !== group.protocolName) errorCode = ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
    if (errorCode !== ErrorCode.NONE) return respond(syncError(errorCode));
    const member = group.members.get(request.memberId)!;

    switch (group.state) {
      case 'Empty':
      case 'Dead':
        return respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      case 'PreparingRebalance':
        return respond(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      case 'CompletingRebalance': {
        const isLeader = group.isLeader(member.memberId);
        if (isLeader) {
          const oversized = request.assignments.find((entry) => entry.assignment.length > this.config.maxAssignmentBytes);
          if (oversized !== undefined) {
            this.logger.warn('SyncGroup refused: assignment too large', { groupId: group.groupId, memberId: oversized.memberId, bytes: oversized.assignment.length, maxAssignmentBytes: this.config.maxAssignmentBytes });
            return respond(syncError(ErrorCode.INVALID_REQUEST));
          }
        }
        this.answerSync(member, syncError(ErrorCode.REBALANCE_IN_PROGRESS));
        member.syncWaiter = respond;
        this.removePendingSync(group, member.memberId);
        if (isLeader) this.completeSync(group, request.assignments);
        return;
      }
      case 'Stable':
        this.removePendingSync(group, member.memberId);
        respond({ errorCode: ErrorCode.NONE, protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment });
        this.scheduleSession(group, member, member.sessionTimeoutMs);
        return;
    }
  }

  /** The leader's assignment: store it, go Stable, answer every parked SyncGroup. */
  private completeSync(group: Group, assignments: SyncGroupRequest['assignments']): void {
    const byMember = new Map<string, Buffer>();
    for (const entry of assignments) {
      // Assignments for ids that are not members (any more) are ignored, as Kafka does.
      if (group.members.has(entry.memberId)) byMember.set(entry.memberId, Buffer.from(entry.assignment));
    }
    const missing: string[] = [];
    for (const member of group.members.values()) {
      const assignment = byMember.get(member.memberId);
      if (assignment === undefined) missing.push(member.memberId);
      member.assignment = assignment ?? EMPTY_BYTES;
    }
    if (missing.length > 0) this.logger.warn('leader gave some members no assignment', { groupId: group.groupId, generationId: group.generationId, members: missing.join(',') });
    this.transition(group, 'Stable');
    this.propagateAssignment(group, ErrorCode.NONE);
    this.emit({ kind: 'generation-completed', group: group.snapshot() });
  }

  private resetAndPropagateAssignmentError(group: Group, errorCode: number): void {
    for (const member of group.members.values()) member.assignment = EMPTY_BYTES;
    this.propagateAssignment(group, errorCode);
  }

  private propagateAssignment(group: Group, errorCode: number): void {
    for (const member of group.members.values()) {
      const answered = this.answerSync(
        member,
        errorCode === ErrorCode.NONE ? { errorCode, protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment } : syncError(errorCode),
      );
      // A parked member's session was not enforced while it waited; it starts again now.
      if (answered) this.scheduleSession(group, member, member.sessionTimeoutMs);
    }
  }

  private scheduleSyncExpiry(group: Group): void {
    this.cancelSyncExpiry(group);
    const generationId = group.generationId;
    group.cancelSyncExpiry = this.scheduler.schedule(this.scheduler.nowMs() + group.rebalanceTimeoutMs(), () => {
      group.cancelSyncExpiry = null;
      if (generationId !== group.generationId || (group.state !== 'CompletingRebalance' && group.state !== 'Stable')) {
        throw new Error(`group ${group.groupId}: sync expiry of generation ${generationId} fired in generation ${group.generationId}, state ${group.state}`);
      }
      if (group.pendingSync.size === 0) return;
      const late = [...group.pendingSync];
      this.logger.info('members sent no SyncGroup in time', { groupId: group.groupId, generationId, members: late.join(',') });
      for (const memberId of late) {
        const member = group.members.get(memberId);
        if (member !== undefined) this.detachMember(group, member, 'sync-timeout');
      }
      this.prepareRebalance(group, `members ${late.join(',')} sent no SyncGroup within the rebalance timeout`);
    });
  }

  private removePendingSync(group: Group, memberId: string): void {
    if (group.pendingSync.delete(memberId) && group.pendingSync.size === 0) this.cancelSyncExpiry(group);
  }

  // ---------------------------------------------------------------------------------------------
  // Heartbeat, LeaveGroup, sessions

  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResult> {
    return Promise.resolve({ errorCode: this.handleHeartbeat(request) });
  }

  private handleHeartbeat(request: HeartbeatRequest): number {
    if (this.closed) return CLOSED_ERROR_CODE;
    if (request.groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(request.groupId);
    if (group === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    const memberError = this.validateCurrentMember(group, request.memberId, request.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (request.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    const member = group.members.get(request.memberId)!;
    switch (group.state) {
      case 'Empty':
      case 'Dead':
        return ErrorCode.UNKNOWN_MEMBER_ID;
      case 'PreparingRebalance':
        this.scheduleSession(group, member, member.sessionTimeoutMs);
        return ErrorCode.REBALANCE_IN_PROGRESS;
      case 'CompletingRebalance':
      case 'Stable':
        this.scheduleSession(group, member, member.sessionTimeoutMs);
        return ErrorCode.NONE;
    }
  }

  leaveGroup(request: LeaveGroupRequest): Promise<LeaveGroupResult> {
    return Promise.resolve(this.handleLeave(request));
  }

  private handleLeave(request: LeaveGroupRequest): LeaveGroupResult {
    if (this.closed) return { errorCode: CLOSED_ERROR_CODE, members: [] };
    if (request.groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, members: [] };
    const group = this.groups.get(request.groupId);
    const results: LeaveGroupMemberResult[] = [];
    for (const leaving of request.members) {
      const answer = (errorCode: number): void => void results.push({ memberId: leaving.memberId, groupInstanceId: leaving.groupInstanceId, errorCode });
      if (group === undefined) {
        answer(ErrorCode.UNKNOWN_MEMBER_ID);
      } else if (leaving.memberId === '') {
        // Admin removal of a static member by its instance id.
        const currentId = leaving.groupInstanceId === null ? undefined : group.staticMembers.get(leaving.groupInstanceId);
        if (currentId === undefined) {
          answer(ErrorCode.UNKNOWN_MEMBER_ID);
        } else {
          this.removeMemberAndUpdateGroup(group, group.members.get(currentId)!, 'leave-group');
          answer(ErrorCode.NONE);
        }
      } else if (this.removePendingMember(group, leaving.memberId)) {
        this.tryCompleteJoin(group);
        answer(ErrorCode.NONE);
      } else {
        const memberError = this.validateCurrentMember(group, leaving.memberId, leaving.groupInstanceId);
        if (memberError === ErrorCode.NONE) this.removeMemberAndUpdateGroup(group, group.members.get(leaving.memberId)!, 'leave-group');
        answer(memberError);
      }
    }
    if (group !== undefined) this.dropIfUnused(group);
    return { errorCode: ErrorCode.NONE, members: results };
  }

  /**
   * (Re)starts the member's session. On expiry a member is removed unless it is parked in a
   * JoinGroup or SyncGroup (those are bounded by the rebalance timeout, and the session restarts
   * when they are answered); a new member's parked JoinGroup is bounded by `timeoutMs` itself.
   */
  private scheduleSession(group: Group, member: GroupMember, timeoutMs: number): void {
    member.cancelSession?.();
    member.cancelSession = this.scheduler.schedule(this.scheduler.nowMs() + timeoutMs, () => {
      member.cancelSession = null;
      if (this.groups.get(group.groupId) !== group || group.members.get(member.memberId) !== member) {
        throw new Error(`group ${group.groupId}: session timer fired for detached member ${member.memberId}`);
      }
      if (!member.isNew && (member.joinWaiter !== null || member.syncWaiter !== null)) return;
      const reason: MemberRemovalReason = member.isNew ? 'join-timeout' : 'session-timeout';
      this.logger.info('member expired', { groupId: group.groupId, memberId: member.memberId, reason });
      this.removeMemberAndUpdateGroup(group, member, reason);
      this.dropIfUnused(group);
    });
  }

  /** Answers whatever the member has parked, stops its timers and takes it out of the group. */
  private detachMember(group: Group, member: GroupMember, reason: MemberRemovalReason): void {
    // A parked request of a removed member is answered so the member rejoins from scratch.
    this.answerJoin(member, joinError('', ErrorCode.UNKNOWN_MEMBER_ID));
    this.answerSync(member, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    member.cancelSession?.();
    member.cancelSession = null;
    group.remove(member.memberId);
    if (group.pendingSync.size === 0) this.cancelSyncExpiry(group);
    this.logger.info('member removed', { groupId: group.groupId, memberId: member.memberId, reason });
    this.emit({ kind: 'member-removed', groupId: group.groupId, memberId: member.memberId, groupInstanceId: member.groupInstanceId, reason });
  }

  private removeMemberAndUpdateGroup(group: Group, member: GroupMember, reason: MemberRemovalReason): void {
    this.detachMember(group, member, reason);
    switch (group.state) {
      case 'Stable':
      case 'CompletingRebalance':
        return this.prepareRebalance(group, `member ${member.memberId} removed (${reason})`);
      case 'PreparingRebalance':
        return this.tryCompleteJoin(group);
      case 'Empty':
      case 'Dead':
        return;
    }
  }

  /** KIP-345 fencing, then membership: FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID or NONE. */
  private validateCurrentMember(group: Group, memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId !== null) {
      const currentId = group.staticMembers.get(groupInstanceId);
      if (currentId === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
      if (currentId !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
    }
    return group.members.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
  }

  // ---------------------------------------------------------------------------------------------
  // Offsets, admin, persistence

  /**
   * The member check of an OffsetCommit, as Kafka makes it; NONE means "store the offsets".
   * Generation -1 with member id "" (and no instance id) is a simple/admin commit, allowed only
   * while the group has no members; a commit for an unknown group is allowed only in that form and
   * creates the group Empty (so it is listed and can be deleted). A member's accepted commit
   * renews its session.
   */
  validateCommit(groupId: string, generationId: number, memberId: string, groupInstanceId: string | null): number {
    if (this.closed) return CLOSED_ERROR_CODE;
    let group = this.groups.get(groupId) ?? null;
    if (group === null) {
      if (generationId >= 0) return ErrorCode.ILLEGAL_GENERATION;
      group = this.createGroup(groupId);
      if (group === null) return GROUP_LIMIT_ERROR_CODE;
    }
    if (generationId < 0 && group.state === 'Empty') {
      group.keepWhenUnused = true;
      return ErrorCode.NONE;
    }
    if (generationId >= 0 || memberId !== '' || groupInstanceId !== null) {
      const memberError = this.validateCurrentMember(group, memberId, groupInstanceId);
      if (memberError !== ErrorCode.NONE) return memberError;
      if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    } else if (group.state !== 'Empty') {
      return ErrorCode.UNKNOWN_MEMBER_ID;
    }
    // The member has its new generation but no assignment yet.
    if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    const member = group.members.get(memberId);
    if (member !== undefined) this.scheduleSession(group, member, member.sessionTimeoutMs);
    return ErrorCode.NONE;
  }

  /** True when the group is unknown or Empty (no members): only simple commits may go to it. */
  isEmpty(groupId: string): boolean {
    const group = this.groups.get(groupId);
    return group === undefined || group.state === 'Empty';
  }

  describeGroup(groupId: string): GroupDescription {
    const group = this.closed ? undefined : this.groups.get(groupId);
    if (group === undefined) {
      return { errorCode: this.closed ? CLOSED_ERROR_CODE : ErrorCode.NONE, groupId, state: 'Dead', protocolType: '', protocolName: '', members: [] };
    }
    // Like Kafka, metadata, assignment and the protocol are shown only while the group is Stable.
    const stable = group.state === 'Stable';
    return {
      errorCode: ErrorCode.NONE,
      groupId,
      state: group.state,
      protocolType: group.protocolType ?? '',
      protocolName: stable ? (group.protocolName ?? '') : '',
      members: [...group.members.values()].map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        clientId: member.clientId,
        clientHost: member.clientHost,
        metadata: stable ? member.metadataFor(group.protocolName) : EMPTY_BYTES,
        assignment: stable ? member.assignment : EMPTY_BYTES,
      })),
    };
  }

  /** Every group, or those in the given states (compared case-insensitively, as Kafka does). */
  listGroups(states: readonly string[] = []): ListGroupsResult {
    if (this.closed) return { errorCode: CLOSED_ERROR_CODE, groups: [] };
    const wanted = new Set(states.map((state) => state.toLowerCase()));
    const groups = [...this.groups.values()]
      .filter((group) => wanted.size === 0 || wanted.has(group.state.toLowerCase()))
      .map((group) => ({ groupId: group.groupId, protocolType: group.protocolType ?? '', state: group.state }));
    return { errorCode: ErrorCode.NONE, groups };
  }

  /** DeleteGroups for one group: only an Empty group can go; its offsets go with it (group-deleted). */
  deleteGroup(groupId: string): number {
    if (this.closed) return CLOSED_ERROR_CODE;
    const group = this.groups.get(groupId);
    if (group === undefined) return ErrorCode.GROUP_ID_NOT_FOUND;
    if (group.state !== 'Empty') return ErrorCode.NON_EMPTY_GROUP;
    this.discardGroup(group);
    this.transition(group, 'Dead');
    this.logger.info('group deleted', { groupId });
    this.emit({ kind: 'group-deleted', groupId });
    return ErrorCode.NONE;
  }

  /**
   * Loads a persisted group at start: Stable with its members and assignments, or Empty. Members'
   * sessions start now; an over-full group (group.max.size lowered since) rebalances at once.
   * Throws GroupRestoreError for a group that is inconsistent, already known, or over maxGroups.
   */
  restoreGroup(persisted: PersistedGroup): void {
    if (this.closed) throw new GroupRestoreError('group coordinator is closed');
    const problem = restoreProblem(persisted, this.config);
    if (problem !== null) throw new GroupRestoreError(`group ${JSON.stringify(persisted.groupId)} cannot be restored: ${problem}`);
    if (this.groups.has(persisted.groupId)) throw new GroupRestoreError(`group ${JSON.stringify(persisted.groupId)} is already loaded`);
    if (this.groups.size >= this.config.maxGroups) throw new GroupRestoreError(`group ${JSON.stringify(persisted.groupId)} cannot be restored: maxGroups ${this.config.maxGroups} reached`);

    const hasMembers = persisted.members.length > 0;
    const group = new Group(persisted.groupId, hasMembers ? 'Stable' : 'Empty', persisted.stateTimestampMs);
    group.generationId = persisted.generationId;
    group.protocolType = persisted.protocolType;
    group.protocolName = hasMembers ? persisted.protocolName : null;
    group.keepWhenUnused = true;
    for (const stored of persisted.members) {
      const protocols: GroupProtocol[] = [{ name: persisted.protocolName!, metadata: Buffer.from(stored.metadata) }];
      const member = new GroupMember(stored.memberId, stored.groupInstanceId, stored.clientId, stored.clientHost, stored.rebalanceTimeoutMs, stored.sessionTimeoutMs, persisted.protocolType!, protocols);
      member.assignment = Buffer.from(stored.assignment);
      group.add(member);
    }
    group.leaderId = hasMembers ? persisted.leaderId : null;
    this.groups.set(group.groupId, group);
    for (const member of group.members.values()) this.scheduleSession(group, member, member.sessionTimeoutMs);
    if (group.members.size > this.config.maxGroupSize) this.prepareRebalance(group, `restored group has ${group.members.size} members, over group.max.size ${this.config.maxGroupSize}`);
  }

  /** Subscribes to group changes; returns the unsubscribe function. */
  onGroupChange(listener: GroupChangeListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /**
   * Stops: every parked JoinGroup and SyncGroup is answered with NOT_COORDINATOR (clients look the
   * coordinator up again), every timer is cancelled, and later calls get COORDINATOR_NOT_AVAILABLE.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const group of this.groups.values()) {
      for (const member of group.members.values()) {
        this.answerJoin(member, joinError(member.memberId, CLOSED_PARKED_ERROR_CODE));
        this.answerSync(member, syncError(CLOSED_PARKED_ERROR_CODE));
      }
      this.discardGroup(group);
    }
    this.groups.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private createGroup(groupId: string): Group | null {
    if (this.groups.size >= this.config.maxGroups) {
      this.logger.warn('group refused: maxGroups reached', { groupId, maxGroups: this.config.maxGroups });
      return null;
    }
    const group = new Group(groupId, 'Empty', this.scheduler.nowMs());
    this.groups.set(groupId, group);
    return group;
  }

  /**
   * A group that never had a generation, has nobody pending and holds nothing persisted (e.g. one
   * created by a JoinGroup that was refused, or whose MEMBER_ID_REQUIRED id expired) is forgotten,
   * so such requests cannot fill maxGroups.
   */
  private dropIfUnused(group: Group): void {
    if (group.state === 'Empty' && group.generationId === 0 && group.members.size === 0 && group.pendingMembers.size === 0 && !group.keepWhenUnused && this.groups.get(group.groupId) === group) {
      this.discardGroup(group);
    }
  }

  /** Cancels every timer of the group and forgets it. */
  private discardGroup(group: Group): void {
    this.cancelJoinTimer(group);
    this.cancelSyncExpiry(group);
    for (const cancel of group.pendingMembers.values()) cancel();
    group.pendingMembers.clear();
    for (const member of group.members.values()) {
      member.cancelSession?.();
      member.cancelSession = null;
    }
    if (this.groups.get(group.groupId) === group) this.groups.delete(group.groupId);
  }

  private cancelJoinTimer(group: Group): void {
    group.joinTimer?.cancel();
    group.joinTimer = null;
  }

  private cancelSyncExpiry(group: Group): void {
    group.cancelSyncExpiry?.();
    group.cancelSyncExpiry = null;
  }

  private answerJoin(member: GroupMember, result: JoinGroupResult): boolean {
    const respond = member.joinWaiter;
    if (respond === null) return false;
    member.joinWaiter = null;
    respond(result);
    return true;
  }

  private answerSync(member: GroupMember, result: SyncGroupResult): boolean {
    const respond = member.syncWaiter;
    if (respond === null) return false;
    member.syncWaiter = null;
    respond(result);
    return true;
  }

  private transition(group: Group, target: GroupStateName): void {
    const from = group.transitionTo(target, this.scheduler.nowMs());
    this.emit({ kind: 'state-changed', groupId: group.groupId, from, to: target, generationId: group.generationId });
  }

  private assertState(group: Group, expected: GroupStateName): void {
    if (group.state !== expected) throw new Error(`group ${group.groupId}: expected state ${expected}, found ${group.state}`);
  }

  private emit(event: GroupChangeEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error: unknown) {
        this.logger.error('group change listener failed', { kind: event.kind, error: error instanceof Error ? error.message : String(error) });
      }
    }
  }
}

/** Metadata is copied: the request's buffers may be views into a pooled network buffer. */
function copyProtocols(protocols: readonly GroupProtocol[]): GroupProtocol[] {
  const seen = new Set<string>();
  const copies: GroupProtocol[] = [];
  for (const protocol of protocols) {
    // A repeated name adds nothing to the vote; the first occurrence keeps its rank.
    if (seen.has(protocol.name)) continue;
    seen.add(protocol.name);
    copies.push({ name: protocol.name, metadata: Buffer.from(protocol.metadata) });
  }
  return copies;
}

function restoreProblem(persisted: PersistedGroup, config: GroupCoordinatorConfig): string | null {
  if (!Number.isInteger(persisted.generationId) || persisted.generationId < 0 || persisted.generationId > INT32_MAX) return `generation ${persisted.generationId} is not in [0, ${INT32_MAX}]`;
  if (!Number.isFinite(persisted.stateTimestampMs)) return `state timestamp ${persisted.stateTimestampMs} is not a number`;
  if (persisted.members.length === 0) return null;
  if (persisted.protocolType === null || persisted.protocolType === '') return 'members without a protocol type';
  if (persisted.protocolName === null) return 'members without a protocol name';
  if (persisted.generationId === 0) return 'members in generation 0';
  const ids = new Set<string>();
  const instances = new Set<string>();
  for (const member of persisted.members) {
    if (member.memberId === '' || ids.has(member.memberId)) return `member id ${JSON.stringify(member.memberId)} is empty or repeated`;
    ids.add(member.memberId);
    if (member.groupInstanceId !== null) {
      if (instances.has(member.groupInstanceId)) return `group instance id ${JSON.stringify(member.groupInstanceId)} is repeated`;
      instances.add(member.groupInstanceId);
    }
    if (!Number.isInteger(member.sessionTimeoutMs) || member.sessionTimeoutMs < 1 || member.sessionTimeoutMs > INT32_MAX) return `member ${member.memberId}: session timeout ${member.sessionTimeoutMs} is not in [1, ${INT32_MAX}]`;
    if (!Number.isInteger(member.rebalanceTimeoutMs) || member.rebalanceTimeoutMs < 0 || member.rebalanceTimeoutMs > INT32_MAX) return `member ${member.memberId}: rebalance timeout ${member.rebalanceTimeoutMs} is not in [0, ${INT32_MAX}]`;
    if (member.metadata.length > config.maxMemberMetadataBytes) return `member ${member.memberId}: metadata over maxMemberMetadataBytes`;
    if (member.assignment.length > config.maxAssignmentBytes) return `member ${member.memberId}: assignment over maxAssignmentBytes`;
  }
  if (persisted.leaderId === null || !ids.has(persisted.leaderId)) return `leader ${JSON.stringify(persisted.leaderId)} is not a member`;
  return null;
}

/** Kafka's state names, for handlers validating a ListGroups states filter. */
export function isGroupStateName(name: string): name is GroupStateName {
  return (GROUP_STATE_NAMES as readonly string[]).includes(name);
}
