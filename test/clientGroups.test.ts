// Consumer groups in the bundled client: the range and roundrobin assignors (unit tests, with the
// ConsumerProtocol bytes), and group membership end to end against a broker child process (dist/;
// run `npm run build` first, as npm test does): partitions split between members, rebalances when
// members join and leave, committed offsets resuming a restarted member, and a librdkafka (kcat -G)
// member sharing a group with a bundled one.
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, rangeAssignor, roundRobinAssignor, resolveAssignors, type GroupAssignment, type MemberSubscription } from '../client/assignors.js';
import { createConsumer, type Consumer } from '../client/consumer/consumer.js';
import { KafkaConfigError } from '../client/errors.js';
import { createProducer } from '../client/producer.js';
import type { ConsumerRecord } from '../client/recordDecoder.js';
import { useGroupBroker, GROUP_WAIT_MS } from './support/groupFixture.js';
import { BrokerProcess, runKcat, waitUntil, createTopic } from './support/brokerProcess.js';

function plain(assignment: GroupAssignment): Record<string, Record<string, number[]>> {
  const out: Record<string, Record<string, number[]>> = {};
  for (const [member, topics] of assignment) out[member] = Object.fromEntries(topics);
  return out;
}

describe('range assignor', () => {
  it('splits each topic in contiguous ranges over the members sorted by id, the first ones getting the remainder', () => {
    const members: MemberSubscription[] = [{ memberId: 'c', topics: ['t'] }, { memberId: 'a', topics: ['t'] }, { memberId: 'b', topics: ['t'] }];
    expect(plain(rangeAssignor.assign(members, new Map([['t', 7]])))).toEqual({ a: { t: [0, 1, 2] }, b: { t: [3, 4] }, c: { t: [5, 6] } });
    expect(plain(rangeAssignor.assign(members, new Map([['t', 2]])))).toEqual({ a: { t: [0] }, b: { t: [1] }, c: {} });
  });

  it('assigns per topic among the members subscribed to it; unknown topics give nothing', () => {
    const members: MemberSubscription[] = [{ memberId: 'm1', topics: ['x', 'y'] }, { memberId: 'm2', topics: ['y'] }, { memberId: 'm3', topics: ['x', 'gone'] }];
    expect(plain(rangeAssignor.assign(members, new Map([['x', 3], ['y', 3]])))).toEqual({
      m1: { x: [0, 1], y: [0, 1] },
      m2: { y: [2] },
      m3: { x: [2] },
    });
  });
});

describe('roundrobin assignor', () => {
  it('deals all topic-partitions, sorted, to the members sorted by id', () => {
    const members: MemberSubscription[] = [{ memberId: 'b', topics: ['t1', 't2'] }, { memberId: 'a', topics: ['t2', 't1'] }];
    expect(plain(roundRobinAssignor.assign(members, new Map([['t1', 3], ['t2', 2]])))).toEqual({ a: { t1: [0, 2], t2: [1] }, b: { t1: [1], t2: [0] } });
  });

  it('skips members not subscribed to a partition\'s topic (Kafka\'s example)', () => {
    // C0: t0; C1: t0, t1; C2: t0, t1, t2 with t0: 1, t1: 2, t2: 3 partitions.
    const members: MemberSubscription[] = [{ memberId: 'C0', topics: ['t0'] }, { memberId: 'C1', topics: ['t0', 't1'] }, { memberId: 'C2', topics: ['t0', 't1', 't2'] }];
    expect(plain(roundRobinAssignor.assign(members, new Map([['t0', 1], ['t1', 2], ['t2', 3]])))).toEqual({
      C0: { t0: [0] },
      C1: { t1: [0] },
      C2: { t1: [1], t2: [0, 1, 2] },
    });
  });

  it('an uneven count: 5 partitions over 3 members', () => {
    const members: MemberSubscription[] = ['m2', 'm0', 'm1'].map((memberId) => ({ memberId, topics: ['t'] }));
    expect(plain(roundRobinAssignor.assign(members, new Map([['t', 5]])))).toEqual({ m0: { t: [0, 3] }, m1: { t: [1, 4] }, m2: { t: [2] } });
  });
});

describe('ConsumerProtocol bytes', () => {
  it('subscriptions and assignments round-trip (int16 version + body)', () => {
    const subscription = encodeSubscription(['a', 'b']);
    expect(subscription.readInt16BE(0)).toBe(0);
    expect(decodeSubscription(subscription)).toEqual({ topics: ['a', 'b'], userData: null });
    const assignment = encodeAssignment(new Map([['b', [2, 0]], ['a', [1]]]));
    expect(decodeAssignment(assignment)).toEqual([{ topic: 'a', partition: 1 }, { topic: 'b', partition: 0 }, { topic: 'b', partition: 2 }]);
    expect(decodeAssignment(Buffer.alloc(0))).toEqual([]);
  });

  it('reads a newer subscription version (v1 with owned partitions) as the fields it knows', () => {
    // v1: topics ["t"], userData null, ownedPartitions [{t, [0]}]
    const bytes = Buffer.from([0, 1, 0, 0, 0, 1, 0, 1, 0x74, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 1, 0x74, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(decodeSubscription(bytes).topics).toEqual(['t']);
  });

  it('assignor lists are checked', () => {
    expect(resolveAssignors(['roundrobin', 'range']).map((a) => a.name)).toEqual(['roundrobin', 'range']);
    expect(() => resolveAssignors([])).toThrow(KafkaConfigError);
    expect(() => resolveAssignors(['sticky' as 'range'])).toThrow(KafkaConfigError);
    expect(() => resolveAssignors(['range', 'range'])).toThrow(KafkaConfigError);
  });
});

// ---------------------------------------------------------------------------------------------

describe('consumer groups against a broker', () => {
  const fixture = useGroupBroker({ maxWaitMs: 100 });
  const { member, waitForSplit } = fixture;
  const WAIT_MS = GROUP_WAIT_MS;
  let broker: BrokerProcess;
  beforeAll(() => {
    broker = fixture.broker();
  });

  /** `perPartition` records in each of `partitions` partitions, values "p<partition>-<i>". */
  async function produce(topic: string, partitions: number, perPartition: number, from = 0): Promise<void> {
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 1 });
    try {
      const records = [];
      for (let p = 0; p < partitions; p++) for (let i = from; i < from + perPartition; i++) records.push({ value: `p${p}-${i}`, partition: p });
      await producer.send(topic, records);
    } finally {
      await producer.close();
    }
  }

  /** Reads with every member at once until `count` records arrived in total. */
  async function readAll(members: readonly Consumer[], count: number): Promise<Array<{ member: number; record: ConsumerRecord }>> {
    const out: Array<{ member: number; record: ConsumerRecord }> = [];
    const iterators = members.map((m) => m.records({ idleTimeoutMs: 3_000 }));
    await Promise.all(iterators.map(async (iterator, index) => {
      for (;;) {
        if (out.length >= count) break;
        const next = await iterator.next();
        if (next.done) break;
        out.push({ member: index, record: next.value });
      }
      await iterator.return!();
    }));
    return out;
  }

  it('two members split a 4-partition topic and together read every record once; a third rebalances; a leaving one hands over', async () => {
    const topic = 'groups-split';
    await createTopic(broker, topic, 4);
    await produce(topic, 4, 10);
    const a = member(topic, 'g-split');
    const b = member(topic, 'g-split');
    await waitForSplit([a, b], topic, 4);
    expect(a.assignment()).toHaveLength(2);
    expect(b.assignment()).toHaveLength(2);

    const read = await readAll([a, b], 40);
    expect(read).toHaveLength(40);
    const seen = new Set(read.map(({ record }) => `${record.partition}:${record.offset}`));
    expect(seen.size).toBe(40);
    // each partition read by exactly one member
    const readers = new Map<number, Set<number>>();
    for (const { member: index, record } of read) {
      const set = readers.get(record.partition) ?? new Set<number>();
      set.add(index);
      readers.set(record.partition, set);
    }
    expect([...readers.values()].every((set) => set.size === 1)).toBe(true);

    // a third member: every partition still owned exactly once, by three members
    const c = member(topic, 'g-split');
    await waitForSplit([a, b, c], topic, 4);

    // one leaves: the other two take its partitions
    await a.close();
    await waitForSplit([b, c], topic, 4);

    // committed offsets (auto-commit before the rebalances) mean nothing is read twice
    await produce(topic, 4, 5, 10);
    const more = await readAll([b, c], 20);
    expect(more.map(({ record }) => Number(record.offset)).every((offset) => offset >= 10)).toBe(true);
    expect(new Set(more.map(({ record }) => `${record.partition}:${record.offset}`)).size).toBe(20);
  }, 60_000);

  it('a restarted member resumes at the committed offsets (manual commit)', async () => {
    const topic = 'groups-resume';
    await createTopic(broker, topic, 4);
    await produce(topic, 4, 10);
    const first = member(topic, 'g-resume', { autoCommit: false });
    await waitForSplit([first], topic, 4);
    const firstRead = await readAll([first], 25);
    expect(firstRead).toHaveLength(25);
    await first.commit();
    await first.close();

    const second = member(topic, 'g-resume', { autoCommit: false });
    await waitForSplit([second], topic, 4);
    const secondRead = await readAll([second], 15);
    expect(secondRead).toHaveLength(15);
    const before = new Set(firstRead.map(({ record }) => `${record.partition}:${record.offset}`));
    const after = secondRead.map(({ record }) => `${record.partition}:${record.offset}`);
    expect(after.filter((k) => before.has(k))).toEqual([]);
    expect(new Set([...before, ...after]).size).toBe(40);
    // and nothing more is there
    expect(await readAll([second], 1).then((r) => r.length)).toBe(0);
  }, 60_000);

  it('auto-commit on close: the next member of the group starts after what was consumed', async () => {
    const topic = 'groups-autocommit';
    await createTopic(broker, topic, 2);
    await produce(topic, 2, 10);
    const first = member(topic, 'g-auto');
    await waitForSplit([first], topic, 2);
    expect(await readAll([first], 20).then((r) => r.length)).toBe(20);
    await first.close();
    await produce(topic, 2, 3, 10);
    const second = member(topic, 'g-auto');
    await waitForSplit([second], topic, 2);
    const read = await readAll([second], 6);
    expect(read.map(({ record }) => record.value!.toString()).sort()).toEqual(['p0-10', 'p0-11', 'p0-12', 'p1-10', 'p1-11', 'p1-12']);
  }, 60_000);

  it('commit() and assign() are refused where they do not apply', async () => {
    const manual = fixture.adopt(createConsumer({ bootstrapServers: [broker.address] }));
    await expect(manual.commit()).rejects.toThrow(KafkaConfigError);
    const grouped = member('groups-autocommit', 'g-refuse');
    expect(() => grouped.assign([{ topic: 'groups-autocommit', partition: 0 }])).toThrow(KafkaConfigError);
    expect(() => grouped.subscribe(['groups-autocommit'], { groupId: 'g-refuse' })).toThrow(KafkaConfigError);
    expect(() => createConsumer({ bootstrapServers: [broker.address] }).subscribe(['t'], { groupId: 'g', sessionTimeoutMs: 1000, heartbeatIntervalMs: 1000 })).toThrow(KafkaConfigError);
  });

  it.each(['range', 'roundrobin'] as const)('a bundled member and a kcat -G (librdkafka) member share a group and split the partitions (%s)', async (assignor) => {
    const topic = `groups-kcat-${assignor}`;
    const groupId = `g-kcat-${assignor}`;
    await createTopic(broker, topic, 4);
    await produce(topic, 4, 5);
    const ours = member(topic, groupId, { assignors: [assignor] });
    await waitForSplit([ours], topic, 4);
    // kcat stays in the group until it is killed at its timeout (-u: unbuffered, so its output survives the kill)
    const kcatRun = runKcat(broker, ['-G', groupId, '-X', `partition.assignment.strategy=${assignor}`, '-X', 'auto.offset.reset=earliest', '-u', '-q', '-f', '%p:%o\\n', topic], { timeoutMs: 10_000 });
    await waitUntil(() => ours.assignment().length === 2, WAIT_MS, 'the bundled member to keep 2 of 4 partitions');
    const mine = ours.assignment().map((tp) => tp.partition).sort();
    const read = await readAll([ours], 10);
    expect(read.map(({ record }) => record.partition).every((p) => mine.includes(p))).toBe(true);
    const result = await kcatRun;
    if (!/\d/.test(result.stdout.toString('utf8'))) console.error('kcat stderr:', result.stderr);
    const kcatPartitions = new Set(result.stdout.toString('utf8').split('\n').filter((line) => line.length > 0).map((line) => Number(line.split(':')[0])));
    expect([...kcatPartitions].sort()).toEqual([0, 1, 2, 3].filter((p) => !mine.includes(p)));
  }, 60_000);
});
