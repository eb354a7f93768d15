// The group admin APIs through kafkajs 2.2.4's admin client against a broker process:
// DescribeGroups (state, protocol, members with their metadata and assignments), ListGroups,
// DeleteGroups (refused while members remain, deletes an empty group with its offsets), and
// LeaveGroup (a member that leaves is out at once).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, kafkajs } from '../support/brokerProcess.js';
import {
  adminCommit,
  Changes,
  committedOffsets,
  createTopic,
  describeJoins,
  GROUP_BROKER_CONFIGS,
  KafkajsMember,
  lastJoin,
  produce,
  startAll,
  stopAll,
  waitForGroupEmpty,
  waitForSettled,
  withAdmin,
  withProducer,
} from './support/groupMembers.js';

const PARTITIONS = 6;
const SETTLE_TIMEOUT_MS = 30_000;
const CONSUME_TIMEOUT_MS = 30_000;
/** Kafka error codes, as kafkajs reports them. */
const NON_EMPTY_GROUP = 68;
const GROUP_ID_NOT_FOUND = 69;

async function deleteGroupsError(broker: BrokerProcess, groupIds: string[]): Promise<Array<{ groupId: string; errorCode: number; type: string | undefined }>> {
  return withAdmin(broker, async (admin) => {
    const error = await admin.deleteGroups(groupIds).then(
      () => null,
      (caught: unknown) => caught,
    );
    if (error === null) return [];
    expect(error).toBeInstanceOf(kafkajs.KafkaJSDeleteGroupsError);
    return (error as InstanceType<typeof kafkajs.KafkaJSDeleteGroupsError>).groups.map((group) => ({ groupId: group.groupId, errorCode: group.errorCode ?? 0, type: group.error?.type }));
  });
}

describe('group admin APIs through kafkajs admin', () => {
  let broker: BrokerProcess;
  const topic = 'groups-admin';

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: GROUP_BROKER_CONFIGS });
    await createTopic(broker, topic, PARTITIONS);
    await withProducer(broker, (producer) => produce(producer, topic, 'admin', new Array<number>(PARTITIONS).fill(5)));
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it('DescribeGroups shows a Stable group with its protocol and each member with its client, subscription and the assignment it received; an unknown group is Dead; ListGroups lists both kinds of groups', async () => {
    const groupId = 'admin-described';
    const changes = new Changes();
    const members = [new KafkajsMember({ broker, groupId, topic, name: 'd0', changes }), new KafkajsMember({ broker, groupId, topic, name: 'd1', changes })];
    try {
      await startAll(members);
      await waitForSettled(changes, members, PARTITIONS, SETTLE_TIMEOUT_MS);
      await adminCommit(broker, 'admin-offsets-only', topic, new Map([[0, 1]]));
      await withAdmin(broker, async (admin) => {
        const { groups } = await admin.describeGroups([groupId, 'admin-unknown']);
        expect(groups).toHaveLength(2);
        const [described, unknown] = groups as [(typeof groups)[number], (typeof groups)[number]];
        expect(described).toMatchObject({ groupId, state: 'Stable', protocolType: 'consumer', protocol: 'RoundRobinAssigner', errorCode: 0 });
        expect(described.members).toHaveLength(2);
        for (const member of members) {
          const entry = described.members.find((candidate) => candidate.memberId === member.memberId);
          expect(entry, `${member.name} (${member.memberId}) is described`).toBeDefined();
          expect(entry!.clientId).toBe(`e2e-${member.name}`);
          expect(entry!.clientHost).toContain('127.0.0.1');
          const assignment = kafkajs.AssignerProtocol.MemberAssignment.decode(entry!.memberAssignment);
          expect([...(assignment?.assignment[topic] ?? [])].sort((a, b) => a - b)).toEqual(lastJoin(member)!.partitions);
          expect(kafkajs.AssignerProtocol.MemberMetadata.decode(entry!.memberMetadata)?.topics).toEqual([topic]);
        }
        expect(unknown).toMatchObject({ groupId: 'admin-unknown', state: 'Dead', members: [] });

        const listed = (await admin.listGroups()).groups;
        expect(listed).toContainEqual({ groupId, protocolType: 'consumer' });
        // A group that only holds committed offsets (a "simple" group) has no protocol type.
        expect(listed).toContainEqual({ groupId: 'admin-offsets-only', protocolType: '' });
        expect(listed.map((group) => group.groupId)).not.toContain('admin-unknown');
      });
    } finally {
      await stopAll(members);
    }
  });

  it('DeleteGroups refuses a group with members (NON_EMPTY_GROUP) and an unknown one (GROUP_ID_NOT_FOUND), and deletes an empty group with its committed offsets', async () => {
    const groupId = 'admin-deleted';
    const changes = new Changes();
    // Short sessions: the group is Empty again soon after they go, whatever happens to their leave.
    const members = [
      new KafkajsMember({ broker, groupId, topic, name: 'x0', changes, sessionTimeoutMs: 1_500 }),
      new KafkajsMember({ broker, groupId, topic, name: 'x1', changes, sessionTimeoutMs: 1_500 }),
    ];
    try {
      await startAll(members);
      await waitForSettled(changes, members, PARTITIONS, SETTLE_TIMEOUT_MS);
      await changes.until(() => members.reduce((sum, member) => sum + member.records.length, 0) >= PARTITIONS * 5, CONSUME_TIMEOUT_MS, 'the records', () => describeJoins(members));
      expect(await deleteGroupsError(broker, [groupId])).toEqual([{ groupId, errorCode: NON_EMPTY_GROUP, type: 'NON_EMPTY_GROUP' }]);
      expect(await deleteGroupsError(broker, ['admin-never-existed'])).toEqual([{ groupId: 'admin-never-existed', errorCode: GROUP_ID_NOT_FOUND, type: 'GROUP_ID_NOT_FOUND' }]);
      await withAdmin(broker, async (admin) => {
        // Still there, offsets included (kafkajs commits after each batch).
        expect((await admin.describeGroups([groupId])).groups[0]?.state).toBe('Stable');
        expect([...(await committedOffsets(admin, groupId, topic)).values()]).toEqual(new Array<number>(PARTITIONS).fill(5));
      });

      const leftAt = broker.lineCount;
      await stopAll(members);
      await waitForGroupEmpty(broker, groupId, leftAt, 10_000);
      await withAdmin(broker, async (admin) => {
        expect(await admin.deleteGroups([groupId])).toEqual([expect.objectContaining({ groupId, errorCode: 0 })]);
        expect([...(await committedOffsets(admin, groupId, topic)).values()]).toEqual(new Array<number>(PARTITIONS).fill(-1));
        expect((await admin.listGroups()).groups.map((group) => group.groupId)).not.toContain(groupId);
        expect((await admin.describeGroups([groupId])).groups[0]).toMatchObject({ state: 'Dead', members: [] });
      });
      // Deleting it again: it is gone.
      expect(await deleteGroupsError(broker, [groupId])).toEqual([{ groupId, errorCode: GROUP_ID_NOT_FOUND, type: 'GROUP_ID_NOT_FOUND' }]);
    } finally {
      await stopAll(members);
    }
  });

  it('LeaveGroup: a member that leaves (kafkajs disconnect) is removed at once, so the other member takes every partition long before the leaver\'s session would expire, and the group is Empty when the last one leaves', async () => {
    const groupId = 'admin-leave';
    const SESSION_TIMEOUT_MS = 10_000;
    const changes = new Changes();
    const leaver = new KafkajsMember({ broker, groupId, topic, name: 'leaver', changes, sessionTimeoutMs: SESSION_TIMEOUT_MS });
    const stayer = new KafkajsMember({ broker, groupId, topic, name: 'stayer', changes, sessionTimeoutMs: SESSION_TIMEOUT_MS });
    try {
      await startAll([leaver, stayer]);
      const generation = await waitForSettled(changes, [leaver, stayer], PARTITIONS, SETTLE_TIMEOUT_MS);
      const leftAt = broker.lineCount;
      await leaver.stop();
      // Well inside the leaver's session: only its LeaveGroup can have removed it.
      await waitForSettled(changes, [stayer], PARTITIONS, SESSION_TIMEOUT_MS / 2, generation + 1);
      const removed = broker.lines.slice(leftAt).find((line) => line.includes('member removed') && line.includes(leaver.memberId!));
      expect(removed).toContain('reason="leave-group"');

      await stayer.stop();
      await withAdmin(broker, async (admin) => {
        expect((await admin.describeGroups([groupId])).groups[0]).toMatchObject({ state: 'Empty', members: [] });
      });
    } finally {
      await stopAll([leaver, stayer]);
    }
  });
});
