// Incremental cooperative rebalancing (KIP-429) in the bundled client: the cooperative-sticky
// assignor (balance, stickiness across generations, moving partitions withheld for one
// generation, claims of two members, generations, differing subscriptions; seeded properties),
// the subscription bytes it reads (v0-v2, librdkafka's and the Java client's generation in user
// data), the choice of rebalance protocol, and groups against a broker child process (dist/; run
// `npm run build` first, as npm test does): members joining and leaving while records flow, a
// kcat -G (librdkafka) cooperative member, a member whose membership is lost, the leader's check
// of a cooperative assignment, and a group that falls back to an eager assignor.
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSubscription, encodeSubscription, rebalanceProtocolOf, resolveAssignors, type Assignor, type GroupAssignment, type MemberSubscription } from '../client/assignors.js';
import type { Consumer } from '../client/consumer/consumer.js';
import { createProducer, type Producer } from '../client/producer.js';
import { cooperativeStickyAssignor, stickyAssign, subscriptionGeneration } from '../client/stickyAssignor.js';
import type { TopicPartition } from '../client/types.js';
import { decodeLeaveGroupResponse, encodeLeaveGroupRequest } from '../protocol/generated/index.js';
import { useGroupBroker, GROUP_WAIT_MS } from './support/groupFixture.js';
import { BrokerProcess, runKcat, waitUntil, withRawClient, createTopic } from './support/brokerProcess.js';
import { SeededRandom } from './support/random.js';

const key = (tp: TopicPartition): string => `${tp.topic}-${tp.partition}`;

/** memberId -> ["topic-partition", ...] */
function flat(assignment: GroupAssignment): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [member, topics] of assignment) out[member] = [...topics].flatMap(([topic, partitions]) => partitions.map((partition) => `${topic}-${partition}`));
  return out;
}

function ownedOf(assignment: GroupAssignment, memberId: string): TopicPartition[] {
  return [...(assignment.get(memberId) ?? new Map<string, number[]>())].flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition })));
}

function counts(assignment: GroupAssignment): number[] {
  return Object.values(flat(assignment)).map((list) => list.length);
}

function allAssigned(assignment: GroupAssignment): string[] {
  return Object.values(flat(assignment)).flat().sort();
}

function partitionsOf(topic: string, count: number): string[] {
  return Array.from({ length: count }, (_, p) => `${topic}-${p}`);
}

/** The next generation's subscriptions: each member owns what `assignment` gave it. */
function nextGeneration(memberIds: readonly string[], topics: readonly string[], assignment: GroupAssignment, generationId: number): MemberSubscription[] {
  return memberIds.map((memberId) => ({ memberId, topics, ownedPartitions: ownedOf(assignment, memberId), generationId }));
}

describe('cooperative-sticky assignor', () => {
  const T6 = new Map([['t', 6]]);

  it('balances a group from scratch: counts differ by at most one and every partition is assigned once', () => {
    const members: MemberSubscription[] = ['c', 'a', 'b'].map((memberId) => ({ memberId, topics: ['t', 'u'] }));
    const result = cooperativeStickyAssignor.assign(members, new Map([['t', 5], ['u', 3]]));
    expect(counts(result).sort()).toEqual([2, 3, 3]);
    expect(allAssigned(result)).toEqual([...partitionsOf('t', 5), ...partitionsOf('u', 3)].sort());
  });

  it('a member joining: the owner keeps its share, the moving partitions go to nobody this generation, and to the newcomer in the next', () => {
    const first = cooperativeStickyAssignor.assign([{ memberId: 'a', topics: ['t'], ownedPartitions: [], generationId: -1 }], T6);
    expect(flat(first)).toEqual({ a: partitionsOf('t', 6) });

    // generation 2: b joins; a still owns all six
    const second = cooperativeStickyAssignor.assign(nextGeneration(['a', 'b'], ['t'], first, 1), T6);
    expect(flat(second).a).toHaveLength(3);
    expect(flat(second).a!.every((k) => partitionsOf('t', 6).includes(k))).toBe(true);
    expect(flat(second).b).toEqual([]); // the three moving away from a are withheld

    // generation 3: a gave them up and rejoined; b gets them, a keeps its three
    const third = cooperativeStickyAssignor.assign(nextGeneration(['a', 'b'], ['t'], second, 2), T6);
    expect(flat(third).a).toEqual(flat(second).a);
    expect(flat(third).b).toEqual(partitionsOf('t', 6).filter((k) => !flat(second).a!.includes(k)));

    // generation 4: nothing changes
    expect(flat(cooperativeStickyAssignor.assign(nextGeneration(['a', 'b'], ['t'], third, 3), T6))).toEqual(flat(third));
  });

  it('a member leaving: its partitions (owned by nobody left) go to the others at once, which keep theirs', () => {
    const owned = { a: [0, 1], b: [2, 3], c: [4, 5] } as const;
    const members: MemberSubscription[] = (['a', 'b'] as const).map((memberId) => ({ memberId, topics: ['t'], ownedPartitions: owned[memberId].map((partition) => ({ topic: 't', partition })), generationId: 5 }));
    const result = flat(cooperativeStickyAssignor.assign(members, T6));
    expect(result.a!.slice(0, 2)).toEqual(['t-0', 't-1']);
    expect(result.b!.filter((k) => k === 't-2' || k === 't-3')).toEqual(['t-2', 't-3']);
    expect(counts(cooperativeStickyAssignor.assign(members, T6))).toEqual([3, 3]);
    expect([...result.a!, ...result.b!].sort()).toEqual(partitionsOf('t', 6));
  });

  it('a partition claimed by two members of the same generation is taken from both, then assigned once', () => {
    const members: MemberSubscription[] = [
      { memberId: 'a', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }], generationId: 7 },
      { memberId: 'b', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 2 }], generationId: 7 },
    ];
    const result = flat(cooperativeStickyAssignor.assign(members, new Map([['t', 4]])));
    expect(result.a).toContain('t-1');
    expect(result.b).toContain('t-2');
    expect([...result.a!, ...result.b!]).not.toContain('t-0');
    // both gave it up: the next generation hands it out
    const next = flat(cooperativeStickyAssignor.assign(nextGeneration(['a', 'b'], ['t'], cooperativeStickyAssignor.assign(members, new Map([['t', 4]])), 8), new Map([['t', 4]])));
    expect([...next.a!, ...next.b!].sort()).toEqual(partitionsOf('t', 4));
    expect(next.a).toHaveLength(2);
  });

  it('claims of an older generation keep nothing but still block a move for a generation; without any generation (v0/v1) claims count', () => {
    const stale: MemberSubscription[] = [
      { memberId: 'a', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }], generationId: 3 },
      { memberId: 'b', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 1 }], generationId: 4 },
    ];
    const result = flat(cooperativeStickyAssignor.assign(stale, new Map([['t', 2]])));
    expect(result.b).toEqual(['t-1']); // b's current claim wins
    expect(result.a).toEqual(['t-0']); // nobody else may be fetching t-0

    // x (stale) may still fetch t-0: it goes to nobody this generation, as t-2 moving from b
    const blocked: MemberSubscription[] = [
      { memberId: 'x', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 0 }], generationId: 3 },
      { memberId: 'a', topics: ['t'], ownedPartitions: [], generationId: 4 },
      { memberId: 'b', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 1 }, { topic: 't', partition: 2 }], generationId: 4 },
    ];
    expect(flat(cooperativeStickyAssignor.assign(blocked, new Map([['t', 3]])))).toEqual({ a: [], b: ['t-1'], x: [] });
    expect(allAssigned(stickyAssign(blocked, new Map([['t', 3]]), false))).toEqual(['t-0', 't-1', 't-2']);

    const noGeneration: MemberSubscription[] = [
      { memberId: 'a', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 1 }] },
      { memberId: 'b', topics: ['t'] },
    ];
    expect(flat(cooperativeStickyAssignor.assign(noGeneration, new Map([['t', 2]])))).toEqual({ a: ['t-1'], b: ['t-0'] });
    // the Java client's generation in user data (one int32) counts as the generation
    const javaStyle: MemberSubscription[] = [
      { memberId: 'a', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 1 }], userData: Buffer.from([0, 0, 0, 9]) },
      { memberId: 'b', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 1 }], generationId: 8 },
    ];
    expect(flat(cooperativeStickyAssignor.assign(javaStyle, new Map([['t', 2]])))).toEqual({ a: ['t-1'], b: ['t-0'] });
  });

  it('librdkafka\'s v1 subscription: the generation in its sticky user data makes its claims count', () => {
    // previous assignment [{t, [0, 1]}], then generation 5 (librdkafka 2.0's cooperative-sticky user data)
    const userData = Buffer.from([0, 0, 0, 1, 0, 1, 0x74, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5]);
    expect(subscriptionGeneration({ memberId: 'r', topics: ['t'], userData })).toBe(5);
    expect(subscriptionGeneration({ memberId: 'r', topics: ['t'], userData: Buffer.from('0000000000000002', 'hex') })).toBe(2); // as kcat sent it
    expect(subscriptionGeneration({ memberId: 'r', topics: ['t'], userData: Buffer.from([0, 0, 0, 9, 1]) })).toBe(-1); // not that layout
    const members: MemberSubscription[] = [
      { memberId: 'rdkafka', topics: ['t'], userData, ownedPartitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }] },
      { memberId: 'tidelog', topics: ['t'], ownedPartitions: [], generationId: 5 },
    ];
    const result = flat(cooperativeStickyAssignor.assign(members, new Map([['t', 2]])));
    expect(result.rdkafka).toHaveLength(1);
    expect(result.tidelog).toEqual([]); // the other one is still librdkafka's: withheld
  });

  it('claims on partitions that no longer exist, or topics no longer subscribed, are dropped; an owner of an unsubscribed topic still blocks it for one generation', () => {
    const members: MemberSubscription[] = [
      { memberId: 'a', topics: ['t'], ownedPartitions: [{ topic: 't', partition: 9 }, { topic: 'u', partition: 0 }], generationId: 2 },
      { memberId: 'b', topics: ['t', 'u'], ownedPartitions: [], generationId: 2 },
    ];
    const result = flat(cooperativeStickyAssignor.assign(members, new Map([['t', 2], ['u', 1]])));
    expect([...result.a!, ...result.b!]).not.toContain('u-0'); // a may still be fetching it
    expect([...result.a!, ...result.b!].sort()).toEqual(['t-0', 't-1']);
  });

  it('differing subscriptions: every partition goes to a subscriber, owned ones stay, and no partition could move to an eligible member with two fewer', () => {
    const members: MemberSubscription[] = [
      { memberId: 'a', topics: ['x'] },
      { memberId: 'b', topics: ['x', 'y'] },
      { memberId: 'c', topics: ['y', 'z'] },
      { memberId: 'd', topics: ['z'] },
    ];
    const partitionCounts = new Map([['x', 4], ['y', 6], ['z', 1]]);
    const result = stickyAssign(members, partitionCounts, false);
    const byMember = flat(result);
    expect(Object.values(byMember).flat().sort()).toEqual([...partitionsOf('x', 4), ...partitionsOf('y', 6), ...partitionsOf('z', 1)].sort());
    for (const member of members) expect(byMember[member.memberId]!.every((k) => member.topics.includes(k.split('-')[0]!))).toBe(true);
    expectNoImprovingMove(members, result);

    // next generation with ownership: nothing moves
    const owning = members.map((m) => ({ ...m, ownedPartitions: ownedOf(result, m.memberId), generationId: 1 }));
    expect(flat(cooperativeStickyAssignor.assign(owning, partitionCounts))).toEqual(byMember);
  });

  function expectNoImprovingMove(members: readonly MemberSubscription[], result: GroupAssignment): void {
    const byMember = flat(result);
    for (const from of members) {
      for (const k of byMember[from.memberId]!) {
        const topic = k.split('-')[0]!;
        for (const to of members) {
          if (to.topics.includes(topic)) expect(byMember[from.memberId]!.length - byMember[to.memberId]!.length).toBeLessThan(2);
        }
      }
    }
  }

  it.each([5, 77, 1234])('property (seed %i): differing subscriptions over generations stay complete, balanced as far as subscriptions allow, and sticky', (seed) => {
    const random = new SeededRandom(seed);
    const topics = ['a', 'b', 'c', 'd'];
    const partitionCounts = new Map(topics.map((t) => [t, random.int(1, 8)] as [string, number]));
    const memberIds = Array.from({ length: random.int(2, 6) }, (_, i) => `m${i}`);
    const subscribe = (): string[] => topics.filter(() => random.bool(0.5)).concat(random.pick(topics));
    let subscriptions = memberIds.map((memberId) => ({ memberId, topics: [...new Set(subscribe())] }));
    let previous: GroupAssignment = new Map();
    for (let generation = 1; generation <= 20; generation++) {
      if (random.bool(0.3)) {
        const changed = random.pick(memberIds);
        subscriptions = subscriptions.map((s) => (s.memberId === changed ? { memberId: s.memberId, topics: [...new Set(subscribe())] } : s));
      }
      const members: MemberSubscription[] = subscriptions.map((s) => ({ ...s, ownedPartitions: ownedOf(previous, s.memberId), generationId: generation - 1 }));
      const result = stickyAssign(members, partitionCounts, false);
      const subscribed = [...new Set(subscriptions.flatMap((s) => s.topics))];
      expect(allAssigned(result)).toEqual(subscribed.flatMap((t) => partitionsOf(t, partitionCounts.get(t)!)).sort());
      for (const member of members) expect(flat(result)[member.memberId]!.every((k) => member.topics.includes(k.split('-')[0]!))).toBe(true);
      expectNoImprovingMove(members, result);
      // with nothing changed, the next generation moves nothing
      const again = stickyAssign(members.map((m) => ({ ...m, ownedPartitions: ownedOf(result, m.memberId), generationId: generation })), partitionCounts, false);
      expect(flat(again)).toEqual(flat(result));
      previous = result;
    }
  });

  it.each([11, 29, 4242])('property (seed %i): through random joins and leaves no partition is given while another member owns it, members keep their share, and a settled group is balanced and complete', (seed) => {
    const random = new SeededRandom(seed);
    const partitionCounts = new Map([['t', random.int(1, 20)], ['u', random.int(0, 9)]]);
    const all = [...partitionsOf('t', partitionCounts.get('t')!), ...partitionsOf('u', partitionCounts.get('u')!)].sort();
    let memberIds = ['m0'];
    let nextId = 1;
    let assignment: GroupAssignment = new Map([['m0', new Map()]]);
    let generation = 0;
    for (let round = 0; round < 60; round++) {
      if (random.bool(0.4)) {
        // membership change: joins and/or a leave
        const joins = random.int(0, 2);
        for (let i = 0; i < joins; i++) memberIds.push(`m${nextId++}`);
        if (memberIds.length > 1 && random.bool(0.4)) {
          const leaving = random.pick(memberIds);
          memberIds = memberIds.filter((id) => id !== leaving);
        }
      }
      generation++;
      const subscriptions = nextGeneration(memberIds, ['t', 'u'], assignment, generation);
      const result = cooperativeStickyAssignor.assign(subscriptions, partitionCounts);
      const owners = new Map<string, string>();
      for (const s of subscriptions) for (const tp of s.ownedPartitions!) owners.set(key(tp), s.memberId);
      const minQuota = Math.floor(all.length / memberIds.length);
      for (const [memberId, list] of Object.entries(flat(result))) {
        // never given while another member owns it
        for (const k of list) expect([undefined, memberId]).toContain(owners.get(k));
        // keeps its owned partitions up to its share
        const owned = subscriptions.find((s) => s.memberId === memberId)!.ownedPartitions!.map(key);
        expect(list.filter((k) => owned.includes(k)).length).toBeGreaterThanOrEqual(Math.min(owned.length, minQuota));
      }
      expect(new Set(allAssigned(result)).size).toBe(allAssigned(result).length);
      // the follow-up rebalance (same members) hands out what was withheld and takes nothing:
      // balanced and complete
      generation++;
      const settled = cooperativeStickyAssignor.assign(nextGeneration(memberIds, ['t', 'u'], result, generation), partitionCounts);
      expect(allAssigned(settled)).toEqual(all);
      expect(Math.max(...counts(settled)) - Math.min(...counts(settled))).toBeLessThanOrEqual(1);
      for (const memberId of memberIds) expect(flat(settled)[memberId]).toEqual(expect.arrayContaining(flat(result)[memberId]!));
      assignment = settled;
    }
  });
});

describe('subscriptions with ownership, and the rebalance protocol', () => {
  it('v2 carries owned partitions and the generation; v0 still decodes without them', () => {
    const bytes = encodeSubscription(['t', 'u'], null, { ownedPartitions: [{ topic: 'u', partition: 1 }, { topic: 't', partition: 3 }, { topic: 't', partition: 0 }], generationId: 12 });
    expect(bytes.readInt16BE(0)).toBe(2);
    expect(decodeSubscription(bytes)).toEqual({ topics: ['t', 'u'], userData: null, ownedPartitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 3 }, { topic: 'u', partition: 1 }], generationId: 12 });
    const v0 = decodeSubscription(encodeSubscription(['t']));
    expect(v0).toEqual({ topics: ['t'], userData: null });
    expect('ownedPartitions' in v0).toBe(false);
    // a v1 member (owned partitions, no generation)
    const v1 = Buffer.from([0, 1, 0, 0, 0, 1, 0, 1, 0x74, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 1, 0x74, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(decodeSubscription(v1)).toEqual({ topics: ['t'], userData: null, ownedPartitions: [{ topic: 't', partition: 0 }] });
  });

  it('a member rebalances cooperatively only when every assignor it lists supports it', () => {
    expect(rebalanceProtocolOf(resolveAssignors(['cooperative-sticky']))).toBe('cooperative');
    expect(rebalanceProtocolOf(resolveAssignors(['cooperative-sticky', 'range']))).toBe('eager');
    expect(rebalanceProtocolOf(resolveAssignors(['range', 'roundrobin']))).toBe('eager');
    expect(() => resolveAssignors([{ name: 'x', supportedProtocols: ['incremental' as 'eager'], assign: () => new Map() }])).toThrow(/supportedProtocols/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('cooperative groups against a broker', () => {
  const fixture = useGroupBroker({ maxWaitMs: 50 });
  const { member, waitForSplit } = fixture;
  const WAIT_MS = GROUP_WAIT_MS;
  let broker: BrokerProcess;
  beforeAll(() => {
    broker = fixture.broker();
  });

  interface Received { member: number; partition: number; offset: number; atMs: number }

  /** Reads with a member until it is closed, into `out`. */
  function drain(consumer: Consumer, index: number, out: Received[]): Promise<void> {
    return (async () => {
      for await (const record of consumer.records()) out.push({ member: index, partition: record.partition, offset: Number(record.offset), atMs: Date.now() });
    })();
  }

  /** Writes one record to every partition every `intervalMs` until stopped; counts what was acknowledged. */
  function produceSteadily(producer: Producer, topic: string, partitions: number, intervalMs: number): { stop: () => Promise<number[]> } {
    const acked = new Array<number>(partitions).fill(0);
    let running = true;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        const records = Array.from({ length: partitions }, (_, partition) => ({ value: `p${partition}-${i}`, partition }));
        for (const meta of await producer.send(topic, records)) acked[meta.partition] = Math.max(acked[meta.partition]!, Number(meta.offset) + 1);
        // Pacing, not waiting: a steady trickle of records while members join and leave (what the
        // test needs to see keep flowing) without flooding the broker. Nothing is asserted on it.
        await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return acked;
      },
    };
  }

  /**
   * Records every change of a member's assignment (sorted keys) on each timer tick until stopped,
   * with when it was seen (no earlier than the change).
   */
  function watchAssignment(consumer: Consumer): { snapshots: string[][]; seenAtMs: number[]; sample: () => void; stop: () => void } {
    const snapshots: string[][] = [];
    const seenAtMs: number[] = [];
    const snapshot = (): void => {
      const now = consumer.assignment().map(key).sort();
      const last = snapshots[snapshots.length - 1];
      if (last === undefined || last.join() !== now.join()) {
        snapshots.push(now);
        seenAtMs.push(Date.now());
      }
    };
    snapshot();
    // Sampling, not waiting: the consumer has no public assignment-change callback to listen to.
    // The assignments sampled here each last until the test's next waitForSplit, far longer than a tick.
    const timer = setInterval(snapshot, 1);
    return {
      snapshots,
      seenAtMs,
      sample: snapshot,
      stop: () => {
        clearInterval(timer);
        snapshot();
      },
    };
  }

  it('members joining and leaving a cooperative group: the first keeps fetching the partitions it retains, each partition ends with one owner, and no record is lost', async () => {
    const topic = 'coop-join';
    const groupId = 'g-coop-join';
    const partitions = 6;
    await createTopic(broker, topic, partitions);
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 1 });
    const received: Received[] = [];
    const drains: Array<Promise<void>> = [];
    let steady: ReturnType<typeof produceSteadily> | null = null;
    let watch: ReturnType<typeof watchAssignment> | null = null;
    try {
      steady = produceSteadily(producer, topic, partitions, 10);
      const a = member(topic, groupId, { assignors: ['cooperative-sticky'] });
      drains.push(drain(a, 0, received));
      await waitForSplit([a], topic, partitions);
      expect(a.groupMembership!.rebalanceProtocol).toBe('cooperative');
      expect(a.groupMembership!.protocolName).toBe('cooperative-sticky');
      await waitUntil(() => received.length > partitions, WAIT_MS, 'the first member to read');

      watch = watchAssignment(a);
      const snapshots = watch.snapshots;
      const joinedAtMs = Date.now();
      const b = member(topic, groupId, { assignors: ['cooperative-sticky'] });
      drains.push(drain(b, 1, received));
      await waitUntil(() => b.assignment().length > 0, WAIT_MS, 'the new member to get partitions');
      const bAssignedAtMs = Date.now();
      await waitForSplit([a, b], topic, partitions);
      const c = member(topic, groupId, { assignors: ['cooperative-sticky'] });
      drains.push(drain(c, 2, received));
      await waitForSplit([a, b, c], topic, partitions);
      watch.sample();

      // a keeps what it retains in every snapshot (never revoked), going 6 -> 3 -> 2
      const retained = a.assignment().map(key).sort();
      expect(retained).toHaveLength(2);
      expect(snapshots[0]).toHaveLength(partitions);
      expect(snapshots.every((snapshot) => retained.every((k) => snapshot.includes(k)))).toBe(true);
      expect(snapshots.map((s) => s.length)).toEqual([6, 3, 2]);
      // and its records kept flowing while b was joining (before b was handed anything)
      const retainedPartitions = retained.map((k) => Number(k.split('-').pop()));
      expect(received.some((r) => r.member === 0 && retainedPartitions.includes(r.partition) && r.atMs > joinedAtMs && r.atMs < bAssignedAtMs)).toBe(true);
      // each partition is owned by exactly one member
      const owners = [a, b, c].map((m) => m.assignment().map(key));
      expect(owners.flat().sort()).toEqual(partitionsOf(topic, partitions));
      expect(owners.every((list) => list.length === 2)).toBe(true);
      expect(c.groupMembership!.protocolName).toBe('cooperative-sticky');

      // c leaves: a and b take its two partitions in one rebalance and give up nothing
      const bBefore = b.assignment().map(key);
      await fixture.close(c);
      await waitForSplit([a, b], topic, partitions);
      watch.stop();
      expect(snapshots.map((s) => s.length)).toEqual([6, 3, 2, 3]);
      expect(snapshots.every((snapshot) => retained.every((k) => snapshot.includes(k)))).toBe(true);
      expect(b.assignment().map(key)).toEqual(expect.arrayContaining(bBefore));
      // a returned no record of a partition after it gave it up (for good)
      const final = snapshots[snapshots.length - 1]!;
      const givenUp = snapshots[0]!.filter((k) => !final.includes(k));
      expect(givenUp.length).toBeGreaterThan(0);
      for (const k of givenUp) {
        const gone = snapshots.findIndex((snapshot) => !snapshot.includes(k));
        if (snapshots.slice(gone).some((snapshot) => snapshot.includes(k))) continue; // came back meanwhile
        const goneAtMs = watch.seenAtMs[gone]!;
        expect(received.filter((r) => r.member === 0 && `${topic}-${r.partition}` === k && r.atMs > goneAtMs)).toEqual([]);
      }

      // every acknowledged record is consumed at least once
      const acked = await steady.stop();
      const missing = (): number => {
        const seen = new Set(received.map((r) => `${r.partition}:${r.offset}`));
        let count = 0;
        for (let p = 0; p < partitions; p++) for (let o = 0; o < acked[p]!; o++) if (!seen.has(`${p}:${o}`)) count++;
        return count;
      };
      await waitUntil(() => missing() === 0, WAIT_MS, 'every produced record to be consumed');
      expect(acked.every((end) => end > 0)).toBe(true);
    } finally {
      watch?.stop();
      await steady?.stop().catch(() => undefined);
      await producer.close();
      await fixture.closeAll();
      await Promise.all(drains);
    }
  }, 60_000);

  it('a bundled member and a kcat -G (librdkafka) member share a cooperative-sticky group: the bundled one keeps half, never revoked', async () => {
    const topic = 'coop-kcat';
    const groupId = 'g-coop-kcat';
    await createTopic(broker, topic, 4);
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 1 });
    try {
      await producer.send(topic, Array.from({ length: 20 }, (_, i) => ({ value: `v${i}`, partition: i % 4 })));
    } finally {
      await producer.close();
    }
    const ours = member(topic, groupId, { assignors: ['cooperative-sticky'] });
    await waitForSplit([ours], topic, 4);
    const watch = watchAssignment(ours);
    try {
      const kcatRun = runKcat(broker, ['-G', groupId, '-X', 'partition.assignment.strategy=cooperative-sticky', '-X', 'auto.offset.reset=earliest', '-u', '-q', '-f', '%p:%o\\n', topic], { timeoutMs: 10_000 });
      await waitUntil(() => ours.assignment().length === 2, WAIT_MS, 'the bundled member to keep 2 of 4 partitions');
      const result = await kcatRun;
      const mine = ours.assignment().map((tp) => tp.partition).sort();
      if (!/\d/.test(result.stdout.toString('utf8'))) console.error('kcat stderr:', result.stderr);
      const kcatPartitions = new Set(result.stdout.toString('utf8').split('\n').filter((line) => line.length > 0).map((line) => Number(line.split(':')[0])));
      expect([...kcatPartitions].sort()).toEqual([0, 1, 2, 3].filter((p) => !mine.includes(p)));
      watch.stop();
      expect(watch.snapshots.every((snapshot) => mine.every((p) => snapshot.includes(`${topic}-${p}`)))).toBe(true);
    } finally {
      watch.stop();
    }
  }, 60_000);

  it('a member whose membership is lost (removed from the group) gives up every partition before rejoining; the other keeps its own', async () => {
    const topic = 'coop-lost';
    const groupId = 'g-coop-lost';
    await createTopic(broker, topic, 4);
    const a = member(topic, groupId, { assignors: ['cooperative-sticky'] });
    const b = member(topic, groupId, { assignors: ['cooperative-sticky'] });
    await waitForSplit([a, b], topic, 4);
    const aWatch = watchAssignment(a);
    const bWatch = watchAssignment(b);
    try {
      const removedId = a.groupMembership!.memberId;
      const leave = await withRawClient(broker, (client) => client.request(13, 1, (w, v) => encodeLeaveGroupRequest(w, v, { groupId, memberId: removedId }), decodeLeaveGroupResponse));
      expect(leave.errorCode).toBe(0);
      await waitUntil(() => a.groupMembership!.memberId !== removedId && a.groupMembership!.memberId !== '', WAIT_MS, 'the removed member to rejoin with a new member id');
      await waitForSplit([a, b], topic, 4);
    } finally {
      aWatch.stop();
      bWatch.stop();
    }
    const bKept = bWatch.snapshots[0]!;
    expect(aWatch.snapshots[0]).toHaveLength(2);
    expect(aWatch.snapshots).toContainEqual([]); // lost: everything given up before the rejoin
    expect(a.assignment()).toHaveLength(2);
    expect(bWatch.snapshots.every((snapshot) => bKept.every((k) => snapshot.includes(k)))).toBe(true);
  }, 60_000);

  it('the leader refuses (fatally) an assignor that claims cooperative support but hands an owned partition to another member at once', async () => {
    const topic = 'coop-bad';
    await createTopic(broker, topic, 2);
    const newestTakesAll: Assignor = {
      name: 'newest-takes-all',
      supportedProtocols: ['cooperative'],
      assign(members) {
        const out: GroupAssignment = new Map(members.map((m) => [m.memberId, new Map<string, number[]>()]));
        const newest = members.find((m) => (m.ownedPartitions ?? []).length === 0) ?? members[0]!;
        out.set(newest.memberId, new Map([[topic, [0, 1]]]));
        return out;
      },
    };
    const first = member(topic, 'g-coop-bad', { assignors: [newestTakesAll] });
    await waitForSplit([first], topic, 2);
    const iterator = first.records();
    member(topic, 'g-coop-bad', { assignors: [newestTakesAll] });
    await expect(iterator.next()).rejects.toThrow(/newest-takes-all .* another still owns them: coop-bad-0, coop-bad-1/);
  }, 60_000);

  it('a member listing cooperative-sticky and range in a group with a range-only member settles on range (eager)', async () => {
    const topic = 'coop-mixed';
    const groupId = 'g-coop-mixed';
    await createTopic(broker, topic, 4);
    const upgraded = member(topic, groupId, { assignors: ['cooperative-sticky', 'range'] });
    await waitForSplit([upgraded], topic, 4);
    expect(upgraded.groupMembership!.protocolName).toBe('cooperative-sticky');
    expect(upgraded.groupMembership!.rebalanceProtocol).toBe('eager');
    const old = member(topic, groupId, { assignors: ['range'] });
    await waitForSplit([upgraded, old], topic, 4);
    expect(upgraded.groupMembership!.protocolName).toBe('range');
    expect(old.groupMembership!.protocolName).toBe('range');
    // range: the member ids sorted, contiguous halves
    const [first, second] = [upgraded, old].sort((x, y) => (x.groupMembership!.memberId < y.groupMembership!.memberId ? -1 : 1));
    expect(first!.assignment().map((tp) => tp.partition).sort()).toEqual([0, 1]);
    expect(second!.assignment().map((tp) => tp.partition).sort()).toEqual([2, 3]);
  }, 60_000);
});
