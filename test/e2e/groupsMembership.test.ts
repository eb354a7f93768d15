// kafkajs 2.2.4 consumer groups against a broker process: in every generation each partition has
// exactly one owner (as the members received it and as the leader assigned it), records are
// consumed exactly once when no member fails, a member joining mid-stream costs exactly one
// rebalance, and two groups on one topic each receive every record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess } from '../support/brokerProcess.js';
import {
  Changes,
  KafkajsMember,
  allRecords,
  createTopic,
  describeJoins,
  distinctValues,
  duplicates,
  generations,
  GROUP_BROKER_CONFIGS,
  ownershipProblems,
  produce,
  startAll,
  stopAll,
  waitForSettled,
  withProducer,
  type MemberLedger,
} from './support/groupMembers.js';

const PARTITIONS = 6;
const SETTLE_TIMEOUT_MS = 30_000;
const CONSUME_TIMEOUT_MS = 30_000;

/** Every value consumed exactly once, and by the member that owned its partition in the generation it consumed it in. */
function expectExactlyOnce(members: readonly MemberLedger[], produced: readonly string[]): void {
  const records = allRecords(members);
  const repeated = [...duplicates(records)].map(([value, list]) => `${value} x${list.length} (${list.map((record) => record.member).join(',')})`);
  expect(repeated, 'values consumed more than once').toEqual([]);
  const seen = distinctValues(records);
  expect(produced.filter((value) => !seen.has(value)), 'values never consumed').toEqual([]);
  expect(records.length).toBe(produced.length);
  const owners = generations(members);
  const strays = records.filter((record) => !(owners.get(record.generationId)?.get(record.member) ?? []).includes(record.partition));
  expect(strays.map((record) => `${record.member} consumed p${record.partition}@${record.offset} in generation ${record.generationId}`)).toEqual([]);
}

describe('consumer groups of kafkajs members', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: GROUP_BROKER_CONFIGS });
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  for (const memberCount of [1, 3, 5]) {
    it(`${memberCount} member(s) on ${PARTITIONS} partitions: every generation gives each partition exactly one owner, and every record is consumed exactly once`, async () => {
      const topic = `groups-size-${memberCount}`;
      const groupId = `size-${memberCount}`;
      await createTopic(broker, topic, PARTITIONS);
      const changes = new Changes();
      const members = Array.from({ length: memberCount }, (_, i) => new KafkajsMember({ broker, groupId, topic, name: `m${i}`, changes }));
      try {
        // One at a time, so that every size of the group from 1 to memberCount gets a generation.
        let settled = 0;
        for (let joined = 1; joined <= memberCount; joined++) {
          await members[joined - 1]!.start();
          settled = await waitForSettled(changes, members.slice(0, joined), PARTITIONS, SETTLE_TIMEOUT_MS, settled + 1);
        }
        expect(generations(members).size).toBeGreaterThanOrEqual(memberCount);

        const produced = await withProducer(broker, (producer) => produce(producer, topic, topic, new Array<number>(PARTITIONS).fill(50)));
        await changes.until(() => allRecords(members).length >= produced.length, CONSUME_TIMEOUT_MS, `${produced.length} records to be consumed`, () => describeJoins(members));
        await stopAll(members);

        expect(ownershipProblems(members, PARTITIONS)).toEqual([]);
        // Nobody rebalanced while the records were consumed: the settled generation is the last one.
        expect(Math.max(...generations(members).keys())).toBe(settled);
        expect(members.every((member) => member.records.every((record) => record.generationId === settled))).toBe(true);
        // Each generation the leader assigned covers the partitions (checked above); the members
        // received every leader assignment they were part of.
        expect(members.flatMap((member) => member.leaderAssignments).length).toBeGreaterThan(0);
        expectExactlyOnce(members, produced);
        // Round robin over 6 partitions: nobody idle, nobody with more than its share.
        const sizes = members.map((member) => member.joins[member.joins.length - 1]!.partitions.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      } finally {
        await stopAll(members);
      }
    });
  }

  it('a member joining mid-stream causes exactly one rebalance: one new generation, after which all three consume, and no committed record is consumed twice', async () => {
    const topic = 'groups-mid-join';
    const groupId = 'mid-join';
    await createTopic(broker, topic, PARTITIONS);
    const changes = new Changes();
    // Each member commits every record before counting it, so records in flight while partitions
    // move count once, with whoever committed them.
    const member = (name: string): KafkajsMember => new KafkajsMember({ broker, groupId, topic, name, changes, commit: 'each-record' });
    const first = [member('a'), member('b')];
    const late = member('late');
    const all = [...first, late];
    try {
      await startAll(first);
      const before = await waitForSettled(changes, first, PARTITIONS, SETTLE_TIMEOUT_MS);
      const produced: string[] = [];
      let joinLineIndex = -1;
      let joinPhases: string[] = [];
      await withProducer(broker, async (producer) => {
        // The stream: one record per partition per send, until the late member has consumed some
        // in its new generation (or MAX_SENDS).
        const MAX_SENDS = 300;
        let joined: Promise<number> | null = null;
        for (let send = 0; send < MAX_SENDS && late.records.length < 12; send++) {
          produced.push(...(await produce(producer, topic, `s${send}`, new Array<number>(PARTITIONS).fill(1))));
          if (joined === null && allRecords(first).length >= 60) {
            joinLineIndex = broker.lineCount;
            await late.start();
            joined = waitForSettled(changes, all, PARTITIONS, SETTLE_TIMEOUT_MS, before + 1);
            joined.catch(() => undefined);
          }
        }
        expect(joined, 'the late member started while records were flowing').not.toBeNull();
        const after = await joined!;
        expect(after).toBe(before + 1);
        await changes.until(() => allRecords(all).length >= produced.length, CONSUME_TIMEOUT_MS, `all ${produced.length} records`, () => describeJoins(all));
        // What the broker logged from the join to the end of consumption (before anyone leaves).
        joinPhases = broker.lines.slice(joinLineIndex).filter((line) => line.includes('join phase complete') && line.includes(`groupId="${groupId}"`));
      });
      await stopAll(all);

      expect(joinPhases).toHaveLength(1);
      expect(joinPhases[0]).toContain(`generationId=${before + 1} members=3`);
      expect([...generations(all).keys()].filter((generationId) => generationId > before)).toEqual([before + 1]);
      expect(late.records.length).toBeGreaterThan(0);
      expect(ownershipProblems(all, PARTITIONS)).toEqual([]);
      expectExactlyOnce(all, produced);
    } finally {
      await stopAll(all);
    }
  });

  it('two groups on one topic (fan-out): each group receives every record once', async () => {
    const topic = 'groups-fan-out';
    await createTopic(broker, topic, PARTITIONS);
    const changes = new Changes();
    const groupA = [new KafkajsMember({ broker, groupId: 'fan-a', topic, name: 'a0', changes }), new KafkajsMember({ broker, groupId: 'fan-a', topic, name: 'a1', changes })];
    const groupB = [new KafkajsMember({ broker, groupId: 'fan-b', topic, name: 'b0', changes })];
    try {
      await startAll([...groupA, ...groupB]);
      await waitForSettled(changes, groupA, PARTITIONS, SETTLE_TIMEOUT_MS);
      await waitForSettled(changes, groupB, PARTITIONS, SETTLE_TIMEOUT_MS);
      const produced = await withProducer(broker, (producer) => produce(producer, topic, 'fan', new Array<number>(PARTITIONS).fill(30)));
      await changes.until(
        () => allRecords(groupA).length >= produced.length && allRecords(groupB).length >= produced.length,
        CONSUME_TIMEOUT_MS,
        'both groups to consume every record',
        () => describeJoins([...groupA, ...groupB]),
      );
      await stopAll([...groupA, ...groupB]);
      expectExactlyOnce(groupA, produced);
      expectExactlyOnce(groupB, produced);
    } finally {
      await stopAll([...groupA, ...groupB]);
    }
  });
});
