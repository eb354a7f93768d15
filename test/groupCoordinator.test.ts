// The group coordinator as a state machine, driven by a ManualScheduler: every timeout is a clock
// step, nothing sleeps. Members follow what kafkajs and librdkafka do on the wire (KIP-394 handshake,
// heartbeats, rejoin on REBALANCE_IN_PROGRESS).
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../protocol/errors.js';
import {
  GroupCoordinator,
  GroupRestoreError,
  type GroupChangeEvent,
  type GroupCoordinatorConfig,
  type GroupProtocol,
  type JoinGroupResult,
  type PersistedGroup,
  type SyncGroupResult,
} from '../engine/groups/groupCoordinator.js';
import { ManualScheduler, TimerScheduler } from '../engine/scheduler.js';
import { SeededRandom } from './support/random.js';

const GROUP = 'orders';
const START_MS = 1_700_000_000_000;
const SESSION_MS = 10_000;
const REBALANCE_MS = 30_000;

const PENDING = Symbol('pending');

/** The promise's value if it has settled by now, else PENDING (no waiting involved). */
async function peek<T>(promise: Promise<T>): Promise<T | typeof PENDING> {
  return Promise.race([promise, Promise.resolve(PENDING)]);
}

async function expectPending(promise: Promise<unknown>): Promise<void> {
  expect(await peek(promise)).toBe(PENDING);
}

interface Harness {
  scheduler: ManualScheduler;
  coordinator: GroupCoordinator;
  events: GroupChangeEvent[];
}

function setup(config: Partial<GroupCoordinatorConfig> = {}): Harness {
  const scheduler = new ManualScheduler(START_MS);
  let uuids = 0;
  const coordinator = new GroupCoordinator({ scheduler, config: { initialRebalanceDelayMs: 0, ...config }, newUuid: () => `uuid${++uuids}` });
  const events: GroupChangeEvent[] = [];
  coordinator.onGroupChange((event) => events.push(event));
  return { scheduler, coordinator, events };
}

function protocols(...names: string[]): GroupProtocol[] {
  return names.map((name) => ({ name, metadata: Buffer.from(`${name}-subscription`) }));
}

interface MemberOptions {
  groupId?: string;
  protocols?: GroupProtocol[];
  protocolType?: string;
  groupInstanceId?: string | null;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  supportSkippingAssignment?: boolean;
}

/** One client, holding what a real consumer holds between requests: member id and generation. */
class Member {
  memberId = '';
  generationId = -1;
  readonly groupId: string;
  protocols: GroupProtocol[];

  constructor(
    readonly coordinator: GroupCoordinator,
    readonly clientId: string,
    readonly options: MemberOptions = {},
  ) {
    this.groupId = options.groupId ?? GROUP;
    // Metadata unique to the member, so tests can tell whose metadata the leader got.
    this.protocols = (options.protocols ?? protocols('range')).map((protocol) => ({ name: protocol.name, metadata: Buffer.concat([protocol.metadata, Buffer.from(`/${clientId}`)]) }));
  }

  get groupInstanceId(): string | null {
    return this.options.groupInstanceId ?? null;
  }

  join(requireKnownMemberId = true): Promise<JoinGroupResult> {
    return this.coordinator
      .joinGroup({
        groupId: this.groupId,
        memberId: this.memberId,
        groupInstanceId: this.groupInstanceId,
        clientId: this.clientId,
        clientHost: `/10.0.0.${this.clientId.length}`,
        sessionTimeoutMs: this.options.sessionTimeoutMs ?? SESSION_MS,
        rebalanceTimeoutMs: this.options.rebalanceTimeoutMs ?? REBALANCE_MS,
        protocolType: this.options.protocolType ?? 'consumer',
        protocols: this.protocols,
        requireKnownMemberId,
        ...(this.options.supportSkippingAssignment === undefined ? {} : { supportSkippingAssignment: this.options.supportSkippingAssignment }),
      })
      .then((result) => {
        if (result.errorCode === ErrorCode.MEMBER_ID_REQUIRED || result.errorCode === ErrorCode.NONE) this.memberId = result.memberId;
        if (result.errorCode === ErrorCode.NONE) this.generationId = result.generationId;
        return result;
      });
  }

  /** KIP-394: the first JoinGroup only fetches an id. */
  async handshake(): Promise<void> {
    const first = await this.join();
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect(first.memberId).toMatch(new RegExp(`^${this.clientId}-uuid\\d+$`));
  }

  sync(assignments: Array<{ memberId: string; assignment: Buffer }> = [], generationId = this.generationId): Promise<SyncGroupResult> {
    return this.coordinator.syncGroup({ groupId: this.groupId, generationId, memberId: this.memberId, groupInstanceId: this.groupInstanceId, protocolType: 'consumer', protocolName: null, assignments });
  }

  async heartbeat(generationId = this.generationId): Promise<number> {
    return (await this.coordinator.heartbeat({ groupId: this.groupId, generationId, memberId: this.memberId, groupInstanceId: this.groupInstanceId })).errorCode;
  }

  commit(generationId = this.generationId): number {
    return this.coordinator.validateCommit(this.groupId, generationId, this.memberId, this.groupInstanceId);
  }
}

function assignmentFor(member: Member, generationId: number): Buffer {
  return Buffer.from(`partitions-of-${member.clientId}-in-${generationId}`);
}

/**
 * Handshakes every member, joins them all in one initial rebalance, completes the sync with the
 * leader assigning `assignmentFor(member)` to each; returns the join results in member order.
 */
async function formGroup(harness: Harness, members: Member[]): Promise<JoinGroupResult[]> {
  for (const member of members) await member.handshake();
  const joins = members.map((member) => member.join());
  // Joining together, they extend the initial delay once.
  harness.scheduler.advanceBy(2 * harness.coordinator.config.initialRebalanceDelayMs);
  const results = await Promise.all(joins);
  const leader = members.find((member) => member.memberId === results[0]!.leaderId)!;
  const followerSyncs = members.filter((member) => member !== leader).map((member) => member.sync());
  const generationId = results[0]!.generationId;
  const leaderSync = await leader.sync(members.map((member) => ({ memberId: member.memberId, assignment: assignmentFor(member, generationId) })));
  expect(leaderSync.errorCode).toBe(ErrorCode.NONE);
  for (const sync of await Promise.all(followerSyncs)) expect(sync.errorCode).toBe(ErrorCode.NONE);
  expect(harness.coordinator.describeGroup(members[0]!.groupId).state).toBe('Stable');
  return results;
}

/** Moves the clock in `stepMs` steps, heartbeating for `alive` after each; returns the codes seen. */
async function runWithHeartbeats(harness: Harness, totalMs: number, stepMs: number, alive: Member[]): Promise<Map<Member, number[]>> {
  const seen = new Map<Member, number[]>(alive.map((member) => [member, []]));
  for (let elapsedMs = 0; elapsedMs < totalMs; elapsedMs += stepMs) {
    harness.scheduler.advanceBy(Math.min(stepMs, totalMs - elapsedMs));
    for (const member of alive) seen.get(member)!.push(await member.heartbeat());
  }
  return seen;
}

function rebalancesStarted(events: GroupChangeEvent[]): number {
  return events.filter((event) => event.kind === 'state-changed' && event.to === 'PreparingRebalance').length;
}

describe('ManualScheduler', () => {
  it('runs due callbacks in time order, ties in scheduling order, including ones scheduled by callbacks', () => {
    const scheduler = new ManualScheduler(100);
    const ran: string[] = [];
    scheduler.schedule(130, () => ran.push(`c@${scheduler.nowMs()}`));
    scheduler.schedule(110, () => {
      ran.push(`a@${scheduler.nowMs()}`);
      scheduler.schedule(120, () => ran.push(`nested@${scheduler.nowMs()}`));
      scheduler.schedule(500, () => ran.push('too-late'));
    });
    scheduler.schedule(110, () => ran.push(`b@${scheduler.nowMs()}`));
    const cancelled = scheduler.schedule(115, () => ran.push('cancelled'));
    cancelled();
    cancelled();
    expect(scheduler.advanceTo(200)).toBe(4);
    expect(ran).toEqual(['a@110', 'b@110', 'nested@120', 'c@130']);
    expect(scheduler.nowMs()).toBe(200);
    expect(scheduler.pendingCount()).toBe(1);
    expect(scheduler.nextDueMs()).toBe(500);
    // A callback due in the past runs at the next advance, without moving the clock back.
    scheduler.schedule(10, () => ran.push(`past@${scheduler.nowMs()}`));
    expect(scheduler.runDue()).toBe(1);
    expect(ran.at(-1)).toBe('past@200');
    expect(() => scheduler.advanceTo(199)).toThrow(/cannot move back/);
  });

  it('TimerScheduler fires at the due time, cancels, and hops over setTimeout\'s 2^31-1 ms limit (fake timers)', () => {
    vi.useFakeTimers({ now: START_MS });
    try {
      const scheduler = new TimerScheduler();
      const ran: string[] = [];
      scheduler.schedule(START_MS + 1_000, () => ran.push(`soon@${scheduler.nowMs() - START_MS}`));
      scheduler.schedule(START_MS + 500, () => ran.push('cancelled'))();
      const farMs = 3 * 2 ** 31;
      scheduler.schedule(START_MS + farMs, () => ran.push(`far@${scheduler.nowMs() - START_MS}`));
      vi.advanceTimersByTime(999);
      expect(ran).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(ran).toEqual(['soon@1000']);
      vi.advanceTimersByTime(farMs - 1_001);
      expect(ran).toEqual(['soon@1000']);
      vi.advanceTimersByTime(1);
      expect(ran).toEqual(['soon@1000', `far@${farMs}`]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('GroupCoordinator: joining', () => {
  it('answers a first JoinGroup (v4+) with MEMBER_ID_REQUIRED and an id the member must rejoin with', async () => {
    const harness = setup({ initialRebalanceDelayMs: 3_000 });
    const member = new Member(harness.coordinator, 'client-a');
    const first = await member.join();
    expect(first).toEqual({ errorCode: ErrorCode.MEMBER_ID_REQUIRED, generationId: -1, protocolType: null, protocolName: null, leaderId: '', memberId: 'client-a-uuid1', skipAssignment: false, members: [] });
    // The handshake alone makes nobody a member.
    expect(harness.coordinator.describeGroup(GROUP).members).toEqual([]);

    const join = member.join();
    await expectPending(join);
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('PreparingRebalance');
    harness.scheduler.advanceBy(2_999); // group.initial.rebalance.delay.ms
    await expectPending(join);
    harness.scheduler.advanceBy(1);
    const result = await join;
    expect(result).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, memberId: 'client-a-uuid1', leaderId: 'client-a-uuid1', protocolType: 'consumer', protocolName: 'range' });
    expect(result.members.map((entry) => entry.memberId)).toEqual(['client-a-uuid1']);
  });

  it('forgets an id handed out with MEMBER_ID_REQUIRED after its session timeout', async () => {
    const harness = setup();
    const member = new Member(harness.coordinator, 'client-a');
    await member.handshake();
    harness.scheduler.advanceBy(SESSION_MS);
    expect((await member.join()).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    // The group existed only for that id, so it is gone again.
    expect(harness.coordinator.listGroups().groups).toEqual([]);
  });

  it('lets a pre-v4 member (no KIP-394) join with an empty id directly', async () => {
    const harness = setup();
    const member = new Member(harness.coordinator, 'old-client');
    const join = member.join(false);
    harness.scheduler.runDue();
    expect(await join).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, memberId: 'old-client-uuid1', leaderId: 'old-client-uuid1' });
  });

  it.each([1, 3, 5])('forms one generation with one leader from %i members; each gets exactly its assignment', async (count) => {
    const harness = setup();
    const members = Array.from({ length: count }, (_, index) => new Member(harness.coordinator, `client-${index}`));
    for (const member of members) await member.handshake();
    const joins = members.map((member) => member.join());
    for (const join of joins) await expectPending(join);
    harness.scheduler.runDue();
    const results = await Promise.all(joins);

    expect(new Set(results.map((result) => result.generationId))).toEqual(new Set([1]));
    const leaderId = members[0]!.memberId; // the first joiner leads
    expect(new Set(results.map((result) => result.leaderId))).toEqual(new Set([leaderId]));
    const leaderResult = results[0]!;
    expect(leaderResult.members).toEqual(members.map((member) => ({ memberId: member.memberId, groupInstanceId: null, metadata: member.protocols[0]!.metadata })));
    for (const follower of results.slice(1)) expect(follower.members).toEqual([]);

    // Followers' SyncGroups wait for the leader's.
    const followerSyncs = members.slice(1).map((member) => member.sync());
    for (const sync of followerSyncs) await expectPending(sync);
    const leaderSync = await members[0]!.sync(members.map((member) => ({ memberId: member.memberId, assignment: assignmentFor(member, 1) })));
    const syncs = [leaderSync, ...(await Promise.all(followerSyncs))];
    syncs.forEach((sync, index) => {
      expect(sync).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: assignmentFor(members[index]!, 1) });
    });

    const description = harness.coordinator.describeGroup(GROUP);
    expect(description).toMatchObject({ errorCode: ErrorCode.NONE, state: 'Stable', protocolType: 'consumer', protocolName: 'range' });
    expect(description.members.map((member) => member.assignment.toString())).toEqual(members.map((member) => assignmentFor(member, 1).toString()));
    expect(harness.events.filter((event) => event.kind === 'generation-completed')).toHaveLength(1);
    for (const member of members) expect(await member.heartbeat()).toBe(ErrorCode.NONE);
  });

  it('gives a member the leader left out an empty assignment, and ignores assignments for strangers', async () => {
    const harness = setup();
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    for (const member of [a, b]) await member.handshake();
    const joins = [a.join(), b.join()];
    harness.scheduler.runDue();
    await Promise.all(joins);
    const followerSync = b.sync();
    await a.sync([{ memberId: a.memberId, assignment: Buffer.from('x') }, { memberId: 'stranger', assignment: Buffer.from('y') }]);
    expect((await followerSync).assignment).toEqual(Buffer.alloc(0));
  });

  it('rebalances exactly once when a member joins a Stable group; the others learn it from heartbeats', async () => {
    const harness = setup();
    const members = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b'), new Member(harness.coordinator, 'c')];
    await formGroup(harness, members);
    expect(rebalancesStarted(harness.events)).toBe(1);

    const newcomer = new Member(harness.coordinator, 'd');
    await newcomer.handshake();
    expect(await members[1]!.heartbeat()).toBe(ErrorCode.NONE); // a handshake alone changes nothing
    const newcomerJoin = newcomer.join();
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('PreparingRebalance');
    for (const member of members) expect(await member.heartbeat()).toBe(ErrorCode.REBALANCE_IN_PROGRESS);

    const rejoins = members.map((member) => member.join());
    const results = await Promise.all([...rejoins, newcomerJoin]); // the last rejoin completes the phase at once
    expect(harness.scheduler.nowMs()).toBe(START_MS);
    expect(new Set(results.map((result) => result.generationId))).toEqual(new Set([2]));
    expect(results[0]!.leaderId).toBe(members[0]!.memberId); // the leader stays the leader
    expect(results[0]!.members).toHaveLength(4);
    expect(rebalancesStarted(harness.events)).toBe(1 + 1);
  });

  it('evicts a member that stops heartbeating after its session timeout; the rest rebalance without it', async () => {
    const harness = setup();
    const [a, b, c] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b'), new Member(harness.coordinator, 'c')];
    await formGroup(harness, [a, b, c]);

    const seen = await runWithHeartbeats(harness, SESSION_MS - 1_000, 3_000, [a, b]);
    expect(seen.get(a)).toEqual([ErrorCode.NONE, ErrorCode.NONE, ErrorCode.NONE]);
    expect(harness.coordinator.describeGroup(GROUP).members).toHaveLength(3);
    harness.scheduler.advanceBy(1_000); // c's session runs out now
    expect(harness.events).toContainEqual({ kind: 'member-removed', groupId: GROUP, memberId: c.memberId, groupInstanceId: null, reason: 'session-timeout' });
    expect(await a.heartbeat()).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(await b.heartbeat()).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(await c.heartbeat()).toBe(ErrorCode.UNKNOWN_MEMBER_ID);

    const [joinA, joinB] = await Promise.all([a.join(), b.join()]);
    expect(joinA.generationId).toBe(2);
    expect(joinB.generationId).toBe(2);
    expect(joinA.members.map((entry) => entry.memberId)).toEqual([a.memberId, b.memberId]);
  });

  it('drops a member that does not rejoin within the rebalance timeout and completes without it', async () => {
    const harness = setup();
    const [a, b, c] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b'), new Member(harness.coordinator, 'c')];
    await formGroup(harness, [a, b, c]);

    // The leader rejoins (as after a metadata change): a rebalance starts; b rejoins, c keeps
    // heartbeating but never rejoins (a consumer stuck in its processing loop).
    const joinA = a.join();
    const joinB = b.join();
    const seen = await runWithHeartbeats(harness, REBALANCE_MS - 1_000, 3_000, [c]);
    expect(new Set(seen.get(c))).toEqual(new Set([ErrorCode.REBALANCE_IN_PROGRESS]));
    await expectPending(joinA);
    harness.scheduler.advanceBy(1_000);
    const [resultA, resultB] = await Promise.all([joinA, joinB]);
    expect(resultA).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leaderId: a.memberId });
    expect(resultA.members.map((entry) => entry.memberId)).toEqual([a.memberId, b.memberId]);
    expect(resultB.generationId).toBe(2);
    expect(harness.events).toContainEqual({ kind: 'member-removed', groupId: GROUP, memberId: c.memberId, groupInstanceId: null, reason: 'rebalance-timeout' });
    expect(await c.heartbeat()).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('hands leadership to a rejoined member when the leader drops out during a rebalance', async () => {
    const harness = setup();
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    await formGroup(harness, [a, b]);
    const newcomer = new Member(harness.coordinator, 'c');
    await newcomer.handshake();
    const joins = [newcomer.join(), b.join()];
    harness.scheduler.advanceBy(REBALANCE_MS);
    const [resultC, resultB] = await Promise.all(joins);
    expect(resultB!.leaderId).toBe(b.memberId);
    expect(resultB!.members.map((entry) => entry.memberId)).toEqual([b.memberId, newcomer.memberId]);
    expect(resultC!.members).toEqual([]);
  });

  it('removes a leader that never sends SyncGroup, so followers are not stalled past the rebalance timeout', async () => {
    const harness = setup();
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    for (const member of [a, b]) await member.handshake();
    const joins = [a.join(), b.join()];
    harness.scheduler.runDue();
    await Promise.all(joins);
    const followerSync = b.sync();
    // The leader stays alive (its heartbeats are answered) but its assignor never finishes.
    const seen = await runWithHeartbeats(harness, REBALANCE_MS - 1, 3_000, [a]);
    expect(new Set(seen.get(a))).toEqual(new Set([ErrorCode.NONE]));
    await expectPending(followerSync);
    harness.scheduler.advanceBy(1);
    expect((await followerSync).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(harness.events).toContainEqual({ kind: 'member-removed', groupId: GROUP, memberId: a.memberId, groupInstanceId: null, reason: 'sync-timeout' });
    const rejoin = await b.join();
    expect(rejoin).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leaderId: b.memberId });
  });

  it('extends the initial delay while members keep arriving, up to the rebalance timeout', async () => {
    const harness = setup({ initialRebalanceDelayMs: 3_000 });
    const members = Array.from({ length: 4 }, (_, index) => new Member(harness.coordinator, `m${index}`, { rebalanceTimeoutMs: 10_000 }));
    for (const member of members) await member.handshake();
    const joins: Array<Promise<JoinGroupResult>> = [members[0]!.join()];
    for (const member of members.slice(1)) {
      harness.scheduler.advanceBy(2_000);
      joins.push(member.join());
    }
    // Joined at 0, 2 s, 4 s and 6 s: waits 3 s, then 3 s more twice, then the last 1 s of the 10 s.
    harness.scheduler.advanceTo(START_MS + 9_999);
    await expectPending(joins[0]!);
    harness.scheduler.advanceTo(START_MS + 10_000);
    const results = await Promise.all(joins);
    expect(new Set(results.map((result) => result.generationId))).toEqual(new Set([1]));
    expect(results[0]!.members).toHaveLength(4);
  });
});

describe('GroupCoordinator: errors of stale or unknown members', () => {
  it('answers a stale generation with ILLEGAL_GENERATION on heartbeat, sync and commit', async () => {
    const harness = setup();
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    await formGroup(harness, [a, b]);
    const joins = [a.join(), b.join()];
    await Promise.all(joins);
    expect(a.generationId).toBe(2);
    expect(await a.heartbeat(1)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect((await b.sync([], 1)).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(b.commit(1)).toBe(ErrorCode.ILLEGAL_GENERATION);
    // In CompletingRebalance a current-generation commit must wait for the assignment.
    expect(b.commit(2)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it('answers an unknown member id with UNKNOWN_MEMBER_ID everywhere', async () => {
    const harness = setup();
    const [a] = [new Member(harness.coordinator, 'a')];
    await formGroup(harness, [a]);
    const impostor = new Member(harness.coordinator, 'impostor');
    impostor.memberId = 'impostor-123';
    impostor.generationId = 1;
    expect(await impostor.heartbeat()).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await impostor.sync()).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(impostor.commit()).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await impostor.join()).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    const unknownGroup = new Member(harness.coordinator, 'x', { groupId: 'nowhere' });
    unknownGroup.memberId = 'x-1';
    expect((await unknownGroup.join()).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(await unknownGroup.heartbeat(1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(unknownGroup.commit(1)).toBe(ErrorCode.ILLEGAL_GENERATION); // as Kafka: a generation for a group it does not have
  });
});

describe('GroupCoordinator: protocols', () => {
  it.each([
    { offers: [['range', 'roundrobin'], ['roundrobin', 'range'], ['roundrobin', 'range']], chosen: 'roundrobin' },
    { offers: [['range', 'roundrobin'], ['range', 'roundrobin'], ['roundrobin', 'range']], chosen: 'range' },
    { offers: [['sticky', 'range'], ['range']], chosen: 'range' }, // sticky is not common to all
    { offers: [['roundrobin', 'range'], ['range', 'roundrobin']], chosen: 'roundrobin' }, // a tie goes to the leader's preference
  ])('chooses $chosen by vote from $offers', async ({ offers, chosen }) => {
    const harness = setup();
    const members = offers.map((names, index) => new Member(harness.coordinator, `m${index}`, { protocols: protocols(...names) }));
    const results = await formGroup(harness, members);
    expect(results[0]!.protocolName).toBe(chosen);
    expect(results[0]!.members[1]!.metadata).toEqual(members[1]!.protocols.find((protocol) => protocol.name === chosen)!.metadata);
  });

  it('refuses a member with no protocol in common (kafkajs next to librdkafka) or another protocol type', async () => {
    const harness = setup();
    const kafkajs = new Member(harness.coordinator, 'kafkajs', { protocols: protocols('RoundRobinAssigner') });
    await formGroup(harness, [kafkajs]);
    const rdkafka = new Member(harness.coordinator, 'rdkafka', { protocols: protocols('range', 'roundrobin') });
    expect((await rdkafka.join()).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    const connect = new Member(harness.coordinator, 'connect', { protocolType: 'connect', protocols: protocols('RoundRobinAssigner') });
    expect((await connect.join()).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    const noProtocols = new Member(harness.coordinator, 'none', { protocols: [] });
    expect((await noProtocols.join()).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('Stable');
    expect(rebalancesStarted(harness.events)).toBe(1);
  });

  it('refuses an empty protocol type for a new group', async () => {
    const harness = setup();
    const member = new Member(harness.coordinator, 'a', { protocolType: '' });
    expect((await member.join()).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(harness.coordinator.listGroups().groups).toEqual([]);
  });
});

describe('GroupCoordinator: static membership (KIP-345)', () => {
  async function formStatic(harness: Harness, options: Partial<MemberOptions> = {}): Promise<Member[]> {
    const members = ['i-0', 'i-1', 'i-2'].map((instance) => new Member(harness.coordinator, `client-${instance}`, { groupInstanceId: instance, ...options }));
    const joins = members.map((member) => member.join());
    harness.scheduler.runDue();
    const results = await Promise.all(joins);
    expect(results.map((result) => result.memberId)).toEqual(['i-0-uuid1', 'i-1-uuid2', 'i-2-uuid3']);
    const followerSyncs = members.slice(1).map((member) => member.sync());
    await members[0]!.sync(members.map((member) => ({ memberId: member.memberId, assignment: assignmentFor(member, 1) })));
    await Promise.all(followerSyncs);
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('Stable');
    return members;
  }

  it('lets a restarted static member take over within its session timeout: no rebalance, same generation and assignment, old id fenced', async () => {
    const harness = setup();
    const members = await formStatic(harness);
    const restarted = members[1]!;
    const oldMemberId = restarted.memberId;
    const eventsBefore = harness.events.length;

    const replacement = new Member(harness.coordinator, restarted.clientId, { groupInstanceId: 'i-1' });
    harness.scheduler.advanceBy(SESSION_MS - 1);
    const others = [members[0]!, members[2]!];
    for (const member of others) expect(await member.heartbeat()).toBe(ErrorCode.NONE);
    const join = await replacement.join();
    expect(join).toEqual({ errorCode: ErrorCode.NONE, generationId: 1, protocolType: 'consumer', protocolName: 'range', leaderId: members[0]!.memberId, memberId: 'i-1-uuid4', skipAssignment: false, members: [] });
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('Stable');
    expect(rebalancesStarted(harness.events.slice(eventsBefore))).toBe(0);
    expect(harness.events.slice(eventsBefore)).toContainEqual(expect.objectContaining({ kind: 'static-member-replaced', oldMemberId, newMemberId: 'i-1-uuid4' }));

    expect(await replacement.sync()).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: assignmentFor(restarted, 1) });
    // The old incarnation is fenced, the others are untouched.
    expect(await restarted.heartbeat()).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(restarted.commit()).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect((await restarted.sync()).errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(await replacement.heartbeat()).toBe(ErrorCode.NONE);
    expect(replacement.commit()).toBe(ErrorCode.NONE);
    for (const member of others) expect(await member.heartbeat()).toBe(ErrorCode.NONE);
  });

  it('tells a restarted static leader the old leader id before JoinGroup v9, and to skip the assignment from v9', async () => {
    const harness = setup();
    const members = await formStatic(harness);
    const leader = members[0]!;
    const before = new Member(harness.coordinator, leader.clientId, { groupInstanceId: 'i-0' });
    const old = await before.join();
    expect(old).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leaderId: leader.memberId, memberId: 'i-0-uuid4', members: [], skipAssignment: false });
    const v9 = new Member(harness.coordinator, leader.clientId, { groupInstanceId: 'i-0', supportSkippingAssignment: true });
    const result = await v9.join();
    expect(result).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leaderId: 'i-0-uuid5', memberId: 'i-0-uuid5', skipAssignment: true });
    expect(result.members.map((entry) => entry.memberId)).toEqual(['i-0-uuid5', members[1]!.memberId, members[2]!.memberId]);
    expect(await before.heartbeat()).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect((await v9.sync()).assignment).toEqual(assignmentFor(leader, 1));
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('Stable');
  });

  it('rebalances when a restarted static member would change the chosen protocol', async () => {
    const harness = setup();
    await formStatic(harness, { protocols: protocols('range', 'roundrobin') });
    const changed = new Member(harness.coordinator, 'client-i-2', { groupInstanceId: 'i-2', protocols: protocols('roundrobin') });
    const join = changed.join();
    await expectPending(join);
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('PreparingRebalance');
  });

  it('removes a static member that leaves by instance id, and rebalances', async () => {
    const harness = setup();
    const members = await formStatic(harness);
    const result = await harness.coordinator.leaveGroup({ groupId: GROUP, members: [{ memberId: '', groupInstanceId: 'i-2' }, { memberId: '', groupInstanceId: 'i-9' }] });
    expect(result).toEqual({ errorCode: ErrorCode.NONE, members: [{ memberId: '', groupInstanceId: 'i-2', errorCode: ErrorCode.NONE }, { memberId: '', groupInstanceId: 'i-9', errorCode: ErrorCode.UNKNOWN_MEMBER_ID }] });
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('PreparingRebalance');
    expect(await members[2]!.heartbeat()).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('keeps a static member that has not rejoined in the next generation, so the leader can keep its partitions for it', async () => {
    const harness = setup();
    const members = await formStatic(harness);
    const joins = [members[0]!.join(), members[1]!.join()];
    // i-2 stays alive (heartbeats) but does not rejoin, like a restarting process would not.
    await runWithHeartbeats(harness, REBALANCE_MS, 3_000, [members[2]!]);
    const [leaderJoin] = await Promise.all(joins);
    expect(leaderJoin!.generationId).toBe(2);
    expect(leaderJoin!.members.map((entry) => entry.groupInstanceId)).toEqual(['i-0', 'i-1', 'i-2']);
  });
});

describe('GroupCoordinator: leaving, deleting, committing', () => {
  it('goes Empty (with a new generation) when the last member leaves', async () => {
    const harness = setup();
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    await formGroup(harness, [a, b]);
    const leaveB = await harness.coordinator.leaveGroup({ groupId: GROUP, members: [{ memberId: b.memberId, groupInstanceId: null }, { memberId: 'ghost', groupInstanceId: null }] });
    expect(leaveB.members.map((member) => member.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]);
    expect(await a.heartbeat()).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect((await a.join()).generationId).toBe(2);
    await a.sync([{ memberId: a.memberId, assignment: Buffer.from('all') }]);

    await harness.coordinator.leaveGroup({ groupId: GROUP, members: [{ memberId: a.memberId, groupInstanceId: null }] });
    const description = harness.coordinator.describeGroup(GROUP);
    expect(description).toMatchObject({ state: 'Empty', protocolType: 'consumer', protocolName: '', members: [] });
    const emptied = harness.events.filter((event) => event.kind === 'group-emptied');
    expect(emptied).toHaveLength(1);
    expect(emptied[0]).toMatchObject({ group: { groupId: GROUP, generationId: 3, members: [], protocolName: null } });
    expect(harness.coordinator.isEmpty(GROUP)).toBe(true);
    expect(harness.coordinator.listGroups(['empty']).groups).toEqual([{ groupId: GROUP, protocolType: 'consumer', state: 'Empty' }]);
    expect(harness.coordinator.listGroups(['Stable']).groups).toEqual([]);
    expect((await harness.coordinator.leaveGroup({ groupId: 'nowhere', members: [{ memberId: 'x', groupInstanceId: null }] })).members[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('deletes only Empty groups', async () => {
    const harness = setup();
    expect(harness.coordinator.deleteGroup('nowhere')).toBe(ErrorCode.GROUP_ID_NOT_FOUND);
    const a = new Member(harness.coordinator, 'a');
    await formGroup(harness, [a]);
    expect(harness.coordinator.deleteGroup(GROUP)).toBe(ErrorCode.NON_EMPTY_GROUP);
    await harness.coordinator.leaveGroup({ groupId: GROUP, members: [{ memberId: a.memberId, groupInstanceId: null }] });
    expect(harness.coordinator.deleteGroup(GROUP)).toBe(ErrorCode.NONE);
    expect(harness.events.at(-1)).toEqual({ kind: 'group-deleted', groupId: GROUP });
    expect(harness.coordinator.describeGroup(GROUP)).toEqual({ errorCode: ErrorCode.NONE, groupId: GROUP, state: 'Dead', protocolType: '', protocolName: '', members: [] });
    expect(harness.coordinator.deleteGroup(GROUP)).toBe(ErrorCode.GROUP_ID_NOT_FOUND);
    expect(harness.scheduler.pendingCount()).toBe(0);
  });

  it('allows simple (generation -1, no member) commits only while the group has no members', async () => {
    const harness = setup();
    expect(harness.coordinator.validateCommit('tool', -1, '', null)).toBe(ErrorCode.NONE);
    expect(harness.coordinator.listGroups().groups).toEqual([{ groupId: 'tool', protocolType: '', state: 'Empty' }]);

    const a = new Member(harness.coordinator, 'a');
    await formGroup(harness, [a]);
    expect(harness.coordinator.isEmpty(GROUP)).toBe(false);
    expect(harness.coordinator.validateCommit(GROUP, -1, '', null)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(harness.coordinator.validateCommit(GROUP, -1, 'someone', null)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(a.commit()).toBe(ErrorCode.NONE);
    await harness.coordinator.leaveGroup({ groupId: GROUP, members: [{ memberId: a.memberId, groupInstanceId: null }] });
    expect(harness.coordinator.validateCommit(GROUP, -1, '', null)).toBe(ErrorCode.NONE);
  });

  it('renews the session of a member whose commits are accepted', async () => {
    const harness = setup();
    const a = new Member(harness.coordinator, 'a');
    await formGroup(harness, [a]);
    for (let step = 0; step < 5; step++) {
      harness.scheduler.advanceBy(SESSION_MS - 1);
      expect(a.commit()).toBe(ErrorCode.NONE);
    }
    expect(harness.coordinator.describeGroup(GROUP).members).toHaveLength(1);
  });
});

describe('GroupCoordinator: bounds and validation', () => {
  it('refuses members past group.max.size', async () => {
    const harness = setup({ maxGroupSize: 2 });
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    await formGroup(harness, [a, b]);
    const third = new Member(harness.coordinator, 'c');
    expect(await third.join()).toMatchObject({ errorCode: ErrorCode.GROUP_MAX_SIZE_REACHED, memberId: '' });
    expect(harness.coordinator.describeGroup(GROUP).state).toBe('Stable');
  });

  it('refuses oversized metadata and assignments with INVALID_REQUEST', async () => {
    const harness = setup({ maxMemberMetadataBytes: 1_000, maxAssignmentBytes: 100 });
    const big = new Member(harness.coordinator, 'big', { protocols: [{ name: 'range', metadata: Buffer.alloc(1_000) }] });
    expect((await big.join()).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect(harness.coordinator.listGroups().groups).toEqual([]);

    const a = new Member(harness.coordinator, 'a');
    await a.handshake();
    const join = a.join();
    harness.scheduler.runDue();
    await join;
    expect((await a.sync([{ memberId: a.memberId, assignment: Buffer.alloc(101) }])).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect((await a.sync([{ memberId: a.memberId, assignment: Buffer.alloc(100) }])).errorCode).toBe(ErrorCode.NONE);
  });

  it('refuses a group past maxGroups, an empty group id and session timeouts out of range', async () => {
    const harness = setup({ maxGroups: 1 });
    await formGroup(harness, [new Member(harness.coordinator, 'a')]);
    const other = new Member(harness.coordinator, 'b', { groupId: 'second' });
    expect((await other.join()).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(harness.coordinator.validateCommit('second', -1, '', null)).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect((await new Member(harness.coordinator, 'c', { groupId: '' }).join()).errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
    expect((await new Member(harness.coordinator, 'd', { sessionTimeoutMs: 5_999 }).join()).errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
    expect((await new Member(harness.coordinator, 'e', { sessionTimeoutMs: 1_800_001 }).join()).errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
  });

  it('rejects impossible configurations with a message naming the key', () => {
    const scheduler = new ManualScheduler();
    expect(() => new GroupCoordinator({ scheduler, config: { maxGroupSize: 0 } })).toThrow(/maxGroupSize must be an integer in \[1, 1000000\], got 0/);
    expect(() => new GroupCoordinator({ scheduler, config: { minSessionTimeoutMs: 10, maxSessionTimeoutMs: 5 } })).toThrow(/minSessionTimeoutMs \(10\) exceeds maxSessionTimeoutMs \(5\)/);
  });
});

describe('GroupCoordinator: persistence hooks and close', () => {
  it('restores a persisted generation: members keep working, silent ones expire', async () => {
    const first = setup();
    const [a, b] = [new Member(first.coordinator, 'a'), new Member(first.coordinator, 'b')];
    await formGroup(first, [a, b]);
    const completed = first.events.filter((event): event is Extract<GroupChangeEvent, { kind: 'generation-completed' }> => event.kind === 'generation-completed').at(-1)!;
    first.coordinator.close();

    const second = setup();
    second.coordinator.restoreGroup(completed.group);
    expect(() => second.coordinator.restoreGroup(completed.group)).toThrow(GroupRestoreError);
    const restoredA = new Member(second.coordinator, 'a');
    restoredA.memberId = a.memberId;
    restoredA.generationId = 1;
    expect(await restoredA.heartbeat()).toBe(ErrorCode.NONE);
    expect(await restoredA.sync()).toMatchObject({ errorCode: ErrorCode.NONE, assignment: assignmentFor(a, 1) });
    expect(second.coordinator.describeGroup(GROUP)).toMatchObject({ state: 'Stable', protocolName: 'range' });
    // b never comes back: it expires and a is told to rejoin.
    second.scheduler.advanceBy(SESSION_MS - 1);
    expect(await restoredA.heartbeat()).toBe(ErrorCode.NONE);
    second.scheduler.advanceBy(1);
    expect(await restoredA.heartbeat()).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it('refuses an inconsistent persisted group', () => {
    const { coordinator } = setup();
    const broken: PersistedGroup = { groupId: 'g', generationId: 3, protocolType: 'consumer', protocolName: 'range', leaderId: 'nobody', stateTimestampMs: START_MS, members: [{ memberId: 'm', groupInstanceId: null, clientId: 'c', clientHost: 'h', rebalanceTimeoutMs: 1, sessionTimeoutMs: 1, metadata: Buffer.alloc(0), assignment: Buffer.alloc(0) }] };
    expect(() => coordinator.restoreGroup(broken)).toThrow(/leader "nobody" is not a member/);
    coordinator.restoreGroup({ groupId: 'empty', generationId: 7, protocolType: 'consumer', protocolName: null, leaderId: null, stateTimestampMs: START_MS, members: [] });
    expect(coordinator.describeGroup('empty').state).toBe('Empty');
  });

  it('close() answers every parked JoinGroup and SyncGroup and cancels all scheduled work', async () => {
    const harness = setup({ initialRebalanceDelayMs: 3_000 });
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    await formGroup(harness, [a, b]);
    const joinA = a.join(); // the leader rejoins: the group waits for b
    const other = new Member(harness.coordinator, 'c', { groupId: 'other' });
    await other.handshake();
    const joinOther = other.join(); // parked in the initial delay
    await expectPending(joinA);
    await expectPending(joinOther);
    harness.coordinator.close();
    expect((await joinA).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect((await joinOther).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(harness.scheduler.pendingCount()).toBe(0);
    expect(await b.heartbeat()).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect((await b.join()).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(b.commit()).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  });

  it('close() answers a parked follower SyncGroup', async () => {
    const harness = setup();
    const [a, b] = [new Member(harness.coordinator, 'a'), new Member(harness.coordinator, 'b')];
    for (const member of [a, b]) await member.handshake();
    const joins = [a.join(), b.join()];
    harness.scheduler.runDue();
    await Promise.all(joins);
    const followerSync = b.sync();
    await expectPending(followerSync);
    harness.coordinator.close();
    expect((await followerSync).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(harness.scheduler.pendingCount()).toBe(0);
  });

  it('keeps working when a listener throws', async () => {
    const harness = setup();
    harness.coordinator.onGroupChange(() => {
      throw new Error('listener bug');
    });
    await formGroup(harness, [new Member(harness.coordinator, 'a')]);
  });
});

describe('GroupCoordinator: seeded simulation', () => {
  interface Tracked {
    kind: 'join' | 'sync';
    startedMs: number;
    settledMs: number | null;
    result: JoinGroupResult | SyncGroupResult | null;
  }
  interface Simulated {
    member: Member;
    request: Tracked | null;
    busyUntilMs: number;
    deafUntilMs: number;
  }

  async function flushMicrotasks(): Promise<void> {
    for (let turn = 0; turn < 10; turn++) await Promise.resolve();
  }

  it.each([1, 2, 3, 4])('answers every parked request within the rebalance timeout; generations stay consistent (seed %i)', async (seed) => {
    const random = new SeededRandom(seed);
    const harness = setup({ initialRebalanceDelayMs: 3_000 });
    const { scheduler, coordinator } = harness;
    const simulated: Simulated[] = Array.from({ length: 6 }, (_, index) => ({
      member: new Member(coordinator, `sim${index}`, index < 2 ? { groupInstanceId: `static-${index}`, protocols: protocols('range', 'roundrobin') } : { protocols: protocols('range', 'roundrobin') }),
      request: null,
      busyUntilMs: 0,
      deafUntilMs: 0,
    }));
    const generations = new Map<number, { leaderId: string; protocolName: string | null }>();
    const assigned = new Map<number, Map<string, string>>();

    const track = (entry: Simulated, kind: Tracked['kind'], promise: Promise<JoinGroupResult | SyncGroupResult>): void => {
      const tracked: Tracked = { kind, startedMs: scheduler.nowMs(), settledMs: null, result: null };
      entry.request = tracked;
      void promise.then((result) => {
        tracked.result = result;
        tracked.settledMs = scheduler.nowMs();
      });
    };
    const join = (entry: Simulated): void => track(entry, 'join', entry.member.join());
    const restart = (entry: Simulated): void => {
      entry.member.memberId = '';
      entry.member.generationId = -1;
      join(entry);
    };

    const checkBounds = (): void => {
      for (const { request } of simulated) {
        if (request === null) continue;
        const waitedMs = (request.settledMs ?? scheduler.nowMs()) - request.startedMs;
        expect(waitedMs, `${request.kind} parked ${waitedMs} ms`).toBeLessThanOrEqual(REBALANCE_MS);
      }
    };

    const act = async (entry: Simulated): Promise<void> => {
      const { member, request } = entry;
      if (scheduler.nowMs() < entry.busyUntilMs) return;
      if (scheduler.nowMs() < entry.deafUntilMs) {
        // Heartbeats keep flowing, but the member neither rejoins nor sends its SyncGroup.
        if (member.memberId !== '' && (request === null || request.result !== null)) {
          const code = await member.heartbeat();
          if (code !== ErrorCode.NONE && code !== ErrorCode.REBALANCE_IN_PROGRESS && code !== ErrorCode.ILLEGAL_GENERATION) restart(entry);
        }
        return;
      }
      if (request !== null) {
        if (request.result === null) return;
        entry.request = null;
        if (request.kind === 'join') {
          const result = request.result as JoinGroupResult;
          if (result.errorCode === ErrorCode.NONE && random.bool(0.1)) {
            // Goes deaf between its JoinGroup answer and its SyncGroup (a leader's slow assignor).
            entry.request = request;
            entry.deafUntilMs = scheduler.nowMs() + random.int(5_000, 60_000);
          } else if (result.errorCode === ErrorCode.NONE) {
            const known = generations.get(result.generationId) ?? { leaderId: result.leaderId, protocolName: result.protocolName };
            generations.set(result.generationId, known);
            expect(result.protocolName).toBe(known.protocolName);
            if (result.leaderId === member.memberId) {
              expect(result.leaderId).toBe(known.leaderId);
              const assignment = new Map(result.members.map((entryMember) => [entryMember.memberId, `${result.generationId}:${entryMember.memberId}`]));
              assigned.set(result.generationId, assignment);
              track(entry, 'sync', member.sync([...assignment].map(([memberId, text]) => ({ memberId, assignment: Buffer.from(text) }))));
            } else {
              expect(result.members).toEqual([]);
              track(entry, 'sync', member.sync());
            }
          } else if (result.errorCode === ErrorCode.MEMBER_ID_REQUIRED || result.errorCode === ErrorCode.REBALANCE_IN_PROGRESS) {
            join(entry);
          } else {
            expect([ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID]).toContain(result.errorCode);
            restart(entry);
          }
        } else {
          const result = request.result as SyncGroupResult;
          if (result.errorCode === ErrorCode.NONE) {
            const inGeneration = assigned.get(member.generationId) ?? new Map<string, string>();
            // A static member that restarted while Stable keeps its predecessor's assignment.
            const predecessor = member.groupInstanceId === null ? undefined : [...inGeneration].find(([memberId]) => memberId.startsWith(`${member.groupInstanceId}-`))?.[1];
            expect(result.assignment.toString()).toBe(inGeneration.get(member.memberId) ?? predecessor ?? '');
          } else if (result.errorCode === ErrorCode.REBALANCE_IN_PROGRESS || result.errorCode === ErrorCode.ILLEGAL_GENERATION) {
            join(entry);
          } else {
            expect([ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID]).toContain(result.errorCode);
            restart(entry);
          }
        }
        return;
      }
      if (member.memberId === '') return restart(entry);
      const roll = random.next();
      if (roll < 0.02) {
        await coordinator.leaveGroup({ groupId: GROUP, members: [{ memberId: member.memberId, groupInstanceId: member.groupInstanceId }] });
        member.memberId = '';
        entry.busyUntilMs = scheduler.nowMs() + random.int(1_000, 60_000);
      } else if (roll < 0.05) {
        // Stuck in its processing loop with a live heartbeat thread: the rebalance and sync
        // timeouts, not the session, must get it out of the others' way.
        entry.deafUntilMs = scheduler.nowMs() + random.int(5_000, 60_000);
      } else if (roll < 0.08) {
        // Stalls (a long GC, a slow poll loop, or a restart for static members): no heartbeats.
        entry.busyUntilMs = scheduler.nowMs() + random.int(5_000, 40_000);
        if (member.groupInstanceId !== null) member.memberId = '';
      } else {
        const code = await member.heartbeat();
        if (code === ErrorCode.REBALANCE_IN_PROGRESS || code === ErrorCode.ILLEGAL_GENERATION) join(entry);
        else if (code !== ErrorCode.NONE) restart(entry);
      }
    };

    for (let step = 0; step < 400; step++) {
      const targetMs = scheduler.nowMs() + random.int(0, 3_000);
      // Step through every due callback so settle times are exact.
      for (let next = scheduler.nextDueMs(); next !== undefined && next <= targetMs; next = scheduler.nextDueMs()) {
        scheduler.advanceTo(Math.max(next, scheduler.nowMs()));
        await flushMicrotasks();
        checkBounds();
      }
      scheduler.advanceTo(targetMs);
      await flushMicrotasks();
      checkBounds();
      for (const entry of simulated) await act(entry);
      await flushMicrotasks();
      checkBounds();
    }

    expect(harness.events.filter((event) => event.kind === 'generation-completed').length).toBeGreaterThan(3);
    coordinator.close();
    await flushMicrotasks();
    for (const { request } of simulated) if (request !== null) expect(request.result).not.toBeNull();
    expect(scheduler.pendingCount()).toBe(0);
  });
});
