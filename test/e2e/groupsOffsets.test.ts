// Committed offsets of consumer groups against a broker process: they survive a clean and a
// SIGKILL restart; kcat -G commits what it consumed; lag is log end minus committed; and offsets
// are reset only while the group is empty, both the way kafka-consumer-groups --reset-offsets
// does it (an admin OffsetCommit: generation -1, no member id, offsets resolved beforehand) and
// through kafkajs's admin.setOffsets (joins the group, commits as a member, leaves) and
// admin.resetOffsets (the same, committing the -2 / -1 sentinels, which Kafka stores as they are).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, kcat, kafkajs, withTimeout } from '../support/brokerProcess.js';
import { KCAT_RECORD_FORMAT, parseKcatRecords } from './records.js';
import {
  adminCommit,
  Changes,
  committedOffsets,
  createTopic,
  describeJoins,
  GROUP_BROKER_CONFIGS,
  KafkajsMember,
  logEndOffsets,
  produce,
  waitForGroupEmpty,
  withAdmin,
  withProducer,
} from './support/groupMembers.js';

const CONSUME_TIMEOUT_MS = 30_000;
/**
 * Members of tests that need their group Empty again afterwards use short sessions: a member that
 * left is gone at once, one whose LeaveGroup was lost only when its session expires.
 */
const SHORT_SESSION_MS = 1_500;
const EMPTY_TIMEOUT_MS = 10_000;
/** How long one admin reset may take (kafkajs's joins the group, seeks and leaves). */
const RESET_TIMEOUT_MS = 20_000;

function toMap(values: readonly number[]): Map<number, number> {
  return new Map(values.map((value, partition) => [partition, value]));
}

/** First offset a member consumed on each partition. */
function firstOffsets(member: KafkajsMember): Map<number, number> {
  const first = new Map<number, number>();
  for (const record of member.records) first.set(record.partition, Math.min(first.get(record.partition) ?? Infinity, record.offset));
  return new Map([...first].sort((a, b) => a[0] - b[0]));
}

describe('committed offsets of consumer groups', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: GROUP_BROKER_CONFIGS });
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  for (const mode of ['clean stop (SIGTERM)', 'SIGKILL with the member still in the group'] as const) {
    it(`committed offsets survive a broker restart after a ${mode}: the group's next consumer resumes exactly at them, and admin.fetchOffsets shows them`, async () => {
      const killed = mode.startsWith('SIGKILL');
      const topic = killed ? 'groups-restart-killed' : 'groups-restart-clean';
      const groupId = killed ? 'restart-killed' : 'restart-clean';
      const PHASE_ONE = [20, 15, 10];
      const PHASE_TWO = [5, 7, 9];
      await createTopic(broker, topic, PHASE_ONE.length);
      const changes = new Changes();
      // Short session: after a SIGKILL the restored group still holds this member until it expires.
      const before = new KafkajsMember({ broker, groupId, topic, name: 'before', changes, commit: 'each-record', sessionTimeoutMs: 2_000 });
      try {
        const phaseOne = await withProducer(broker, (producer) => produce(producer, topic, 'one', PHASE_ONE));
        await before.start();
        await changes.until(() => before.records.length >= phaseOne.length, CONSUME_TIMEOUT_MS, 'phase one to be consumed and committed', () => describeJoins([before]));
        const memberId = before.memberId!;
        expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap(PHASE_ONE));

        if (killed) {
          await broker.kill();
          await before.stop(); // its broker is gone: the leave fails, the client is abandoned
        } else {
          const leftAt = broker.lineCount;
          await before.stop();
          await waitForGroupEmpty(broker, groupId, leftAt, EMPTY_TIMEOUT_MS);
          await broker.stop();
        }
        await broker.restart();

        await withAdmin(broker, async (admin) => {
          expect(await committedOffsets(admin, groupId, topic)).toEqual(toMap(PHASE_ONE));
          // The group itself came back too: Stable with the old member after the kill, Empty after the clean stop.
          const [group] = (await admin.describeGroups([groupId])).groups;
          expect(group?.state).toBe(killed ? 'Stable' : 'Empty');
          expect(group?.members.map((member) => member.memberId)).toEqual(killed ? [memberId] : []);
        });
        const phaseTwo = await withProducer(broker, (producer) => produce(producer, topic, 'two', PHASE_TWO));
        const after = new KafkajsMember({ broker, groupId, topic, name: 'after', changes, commit: 'each-record' });
        try {
          await after.start();
          await changes.until(() => after.records.length >= phaseTwo.length, CONSUME_TIMEOUT_MS, 'phase two to be consumed', () => describeJoins([after]));
          await after.stop();
          // Exactly the records after the committed offsets, nothing before them.
          expect(after.records.map((record) => record.value).sort()).toEqual([...phaseTwo].sort());
          expect(firstOffsets(after)).toEqual(toMap(PHASE_ONE));
          expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap(PHASE_ONE.map((count, partition) => count + PHASE_TWO[partition]!)));
        } finally {
          await after.stop();
        }
      } finally {
        await before.stop();
        await broker.ensureRunning();
      }
    });
  }

  it('kcat -G consumes every record as a group member and commits: admin.fetchOffsets shows the log end offsets afterwards', async () => {
    const topic = 'groups-kcat';
    const groupId = 'kcat-group';
    const COUNTS = [10, 20, 30];
    await createTopic(broker, topic, COUNTS.length);
    const produced = await withProducer(broker, (producer) => produce(producer, topic, 'kcat', COUNTS));
    // -e: exit once every assigned partition reached its end; librdkafka commits on close.
    const result = await kcat(broker, ['-G', groupId, '-e', '-q', '-f', KCAT_RECORD_FORMAT, '-X', 'auto.offset.reset=earliest', topic], { timeoutMs: 30_000 });
    const records = parseKcatRecords(result.stdout.toString('utf8'));
    expect(records.map((record) => record.value).sort()).toEqual([...produced].sort());
    expect(broker.lines.some((line) => line.includes('join phase complete') && line.includes(`groupId="${groupId}"`))).toBe(true);
    expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap(COUNTS));
  });

  it('lag: after producing N and consuming M per partition in a group, log end offsets minus committed offsets are N - M', async () => {
    const topic = 'groups-lag';
    const groupId = 'lag';
    const CONSUMED = [12, 3, 7];
    const PRODUCED = [30, 5, 7];
    await createTopic(broker, topic, CONSUMED.length);
    const changes = new Changes();
    const member = new KafkajsMember({ broker, groupId, topic, name: 'lag', changes, commit: 'each-record' });
    try {
      await withProducer(broker, async (producer) => {
        await produce(producer, topic, 'first', CONSUMED);
        await member.start();
        await changes.until(() => member.records.length >= CONSUMED.reduce((a, b) => a + b), CONSUME_TIMEOUT_MS, 'the first records', () => describeJoins([member]));
        await member.stop();
        await produce(
          producer,
          topic,
          'rest',
          PRODUCED.map((count, partition) => count - CONSUMED[partition]!),
        );
      });
      await withAdmin(broker, async (admin) => {
        const committed = await committedOffsets(admin, groupId, topic);
        const ends = await logEndOffsets(admin, topic);
        expect(committed).toEqual(toMap(CONSUMED));
        expect(ends).toEqual(toMap(PRODUCED));
        const lag = new Map([...ends].map(([partition, end]) => [partition, end - committed.get(partition)!]));
        expect(lag).toEqual(toMap(PRODUCED.map((count, partition) => count - CONSUMED[partition]!)));
      });
    } finally {
      await member.stop();
    }
  });

  describe('offset reset, as kafka-consumer-groups --reset-offsets does it', () => {
    const topic = 'groups-reset';
    const groupId = 'reset';
    const PARTITIONS = 2;
    const INITIAL = 10;
    const changes = new Changes();
    let probes = 0;

    /** Where a new member of the group starts: it reads up to a fresh probe record on each partition, commits nothing. */
    async function startOffsetsOfNewMember(): Promise<Map<number, number>> {
      const label = `probe${probes++}`;
      const probeValues = await withProducer(broker, (producer) => produce(producer, topic, label, new Array<number>(PARTITIONS).fill(1)));
      const member = new KafkajsMember({ broker, groupId, topic, name: label, changes, commit: 'none', sessionTimeoutMs: SHORT_SESSION_MS });
      try {
        await member.start();
        await changes.until(() => probeValues.every((value) => member.records.some((record) => record.value === value)), CONSUME_TIMEOUT_MS, `${label} to read its probes`, () => describeJoins([member]));
      } finally {
        const leftAt = broker.lineCount;
        await member.stop();
        await waitForGroupEmpty(broker, groupId, leftAt, EMPTY_TIMEOUT_MS);
      }
      return firstOffsets(member);
    }

    beforeAll(async () => {
      await createTopic(broker, topic, PARTITIONS);
      await withProducer(broker, (producer) => produce(producer, topic, 'initial', new Array<number>(PARTITIONS).fill(INITIAL)));
      const member = new KafkajsMember({ broker, groupId, topic, name: 'initial', changes, commit: 'each-record', sessionTimeoutMs: SHORT_SESSION_MS });
      try {
        await member.start();
        await changes.until(() => member.records.length >= PARTITIONS * INITIAL, CONSUME_TIMEOUT_MS, 'the initial records');
      } finally {
        const leftAt = broker.lineCount;
        await member.stop();
        await waitForGroupEmpty(broker, groupId, leftAt, EMPTY_TIMEOUT_MS);
      }
    });

    it('with the group empty, the admin commit kafka-consumer-groups --reset-offsets sends (generation -1, no member id) moves where a new member starts: to a specific offset, to the earliest and to the latest offset', async () => {
      expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap([INITIAL, INITIAL]));
      await adminCommit(broker, groupId, topic, toMap([3, 7]));
      expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap([3, 7]));
      expect(await startOffsetsOfNewMember()).toEqual(toMap([3, 7]));

      // --to-earliest and --to-latest: the tool resolves them to offsets (ListOffsets) and commits those.
      const earliest = await withAdmin(broker, async (admin) => new Map((await admin.fetchTopicOffsets(topic)).map((entry) => [entry.partition, Number(entry.low)])));
      await adminCommit(broker, groupId, topic, earliest);
      expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap([0, 0]));
      expect(await startOffsetsOfNewMember()).toEqual(toMap([0, 0]));

      const latest = await withAdmin(broker, (admin) => logEndOffsets(admin, topic));
      await adminCommit(broker, groupId, topic, latest);
      expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(latest);
      // Only the probe written after the reset is read.
      expect(await startOffsetsOfNewMember()).toEqual(latest);
    });

    it('with a member active, the reset is refused: kafkajs setOffsets refuses a non-empty group, and the admin commit itself (generation -1, no member id) gets UNKNOWN_MEMBER_ID', async () => {
      const active = new KafkajsMember({ broker, groupId, topic, name: 'active', changes, commit: 'none', sessionTimeoutMs: SHORT_SESSION_MS });
      try {
        await active.start();
        await changes.until(() => active.joins.length > 0, CONSUME_TIMEOUT_MS, 'the active member to join');
        await withAdmin(broker, async (admin) => {
          const committed = await committedOffsets(admin, groupId, topic);
          const refused = await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }] }).then(
            () => null,
            (error: unknown) => error,
          );
          expect(refused).toBeInstanceOf(kafkajs.KafkaJSNonRetriableError);
          expect((refused as Error).message).toBe('The consumer group must have no running instances, current state: Stable');

          const commitError = await adminCommit(broker, groupId, topic, toMap([1, 1])).then(
            () => null,
            (error: unknown) => error,
          );
          expect(commitError).toBeInstanceOf(kafkajs.KafkaJSProtocolError);
          expect(commitError).toMatchObject({ type: 'UNKNOWN_MEMBER_ID', code: 25, retriable: false });
          expect(await committedOffsets(admin, groupId, topic)).toEqual(committed);
        });
      } finally {
        const leftAt = broker.lineCount;
        await active.stop();
        await waitForGroupEmpty(broker, groupId, leftAt, EMPTY_TIMEOUT_MS);
      }
      // Once the member left, the same admin commit goes through.
      await adminCommit(broker, groupId, topic, toMap([1, 2]));
      expect(await withAdmin(broker, (admin) => committedOffsets(admin, groupId, topic))).toEqual(toMap([1, 2]));
      expect(await startOffsetsOfNewMember()).toEqual(toMap([1, 2]));
    });

    it('with the group empty, kafkajs admin.setOffsets (which joins the group, commits as a member and leaves) sets a specific offset, and the group is Empty again once it returns', async () => {
      const group = 'reset-kafkajs';
      await adminCommit(broker, group, topic, toMap([INITIAL, INITIAL]));
      await withAdmin(broker, async (admin) => {
        await withTimeout(admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '3' }, { partition: 1, offset: '7' }] }), RESET_TIMEOUT_MS, 'admin.setOffsets');
        expect(await committedOffsets(admin, group, topic)).toEqual(toMap([3, 7]));
        // setOffsets's member left (LeaveGroup): nobody is left in the group.
        const [described] = (await admin.describeGroups([group])).groups;
        expect({ state: described?.state, members: described?.members.map((member) => member.memberId) }).toEqual({ state: 'Empty', members: [] });
      });
    });

    it('with the group empty, kafkajs admin.resetOffsets commits the earliest (-2) and latest (-1) sentinels, which the broker stores as Kafka does; admin.fetchOffsets resolves them to the log start and end', async () => {
      // kafkajs's resetOffsets never returns when its commit is refused (its consumer crashes and
      // restarts for ever), so the commit it sends is tried first on a group of its own.
      const sentinel = await adminCommit(broker, 'reset-sentinel-check', topic, toMap([-2, -1])).then(
        () => null,
        (error: unknown) => error,
      );
      expect(sentinel, 'an admin commit of offsets -2 and -1 (what kafkajs resetOffsets sends)').toBeNull();

      const ends = await withAdmin(broker, (admin) => logEndOffsets(admin, topic));
      // Two groups, reset at once: each kafkajs reset waits out its internal consumer's fetch (5 s).
      const cases = [
        { group: 'reset-earliest', earliest: true, sentinelOffset: -2, resolved: [0, 0] },
        { group: 'reset-latest', earliest: false, sentinelOffset: -1, resolved: [...ends.values()] },
      ];
      await Promise.all(
        cases.map(async ({ group, earliest, sentinelOffset, resolved }) => {
          await adminCommit(broker, group, topic, toMap([INITIAL, INITIAL]));
          await withAdmin(broker, async (admin) => {
            await withTimeout(admin.resetOffsets({ groupId: group, topic, earliest }), RESET_TIMEOUT_MS, `admin.resetOffsets earliest=${earliest}`);
            expect(await committedOffsets(admin, group, topic)).toEqual(toMap([sentinelOffset, sentinelOffset]));
            const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic], resolveOffsets: true });
            expect(fetched?.partitions.map((entry) => Number(entry.offset))).toEqual(resolved);
          });
        }),
      );
    });
  });
});
