// Members that die: a kafkajs member in a child process is SIGKILLed mid-stream and is evicted
// after its session timeout, the survivors take its partitions, nothing is lost and only its
// uncommitted window is consumed twice; a static member (kcat, group.instance.id) that restarts
// within its session timeout gets its assignment back without a rebalance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, kafkajs } from '../support/brokerProcess.js';
import {
  Changes,
  ChildMember,
  KafkajsMember,
  KcatMember,
  allRecords,
  createTopic,
  describeJoins,
  distinctValues,
  duplicates,
  GROUP_BROKER_CONFIGS,
  lastJoin,
  ownershipProblems,
  produce,
  startAll,
  stopAll,
  waitForSettled,
  withAdmin,
  withProducer,
} from './support/groupMembers.js';

const PARTITIONS = 6;
const SETTLE_TIMEOUT_MS = 30_000;
const CONSUME_TIMEOUT_MS = 30_000;

/** The broker's log time of a line (its first field, an ISO timestamp). */
function lineTimeMs(line: string): number {
  const time = Date.parse(line.slice(0, line.indexOf(' ')));
  if (Number.isNaN(time)) throw new Error(`no timestamp at the start of ${JSON.stringify(line)}`);
  return time;
}

describe('consumer group members that die', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: GROUP_BROKER_CONFIGS });
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it('a member SIGKILLed mid-stream (child process) is evicted after its session timeout, the survivors consume its partitions, no record is lost and duplicates stay within its uncommitted window', async () => {
    const topic = 'groups-kill';
    const groupId = 'kill';
    const SESSION_TIMEOUT_MS = 3_000;
    const HEARTBEAT_INTERVAL_MS = 300;
    const COMMIT_EVERY = 20;
    /** Not a multiple of COMMIT_EVERY: the child has uncommitted records when the kill is sent. */
    const KILL_AFTER_RECORDS = 47;
    const MAX_SENDS = 2_000;
    await createTopic(broker, topic, PARTITIONS);
    const changes = new Changes();
    // Survivors commit each record before counting it: every duplicate then comes from the child.
    const survivors = [
      new KafkajsMember({ broker, groupId, topic, name: 'a', changes, commit: 'each-record' }),
      new KafkajsMember({ broker, groupId, topic, name: 'b', changes, commit: 'each-record' }),
    ];
    const child = new ChildMember({ broker, groupId, topic, name: 'child', changes, sessionTimeoutMs: SESSION_TIMEOUT_MS, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, commitEvery: COMMIT_EVERY });
    const all = [...survivors, child];
    try {
      await startAll(survivors);
      const before = await waitForSettled(changes, survivors, PARTITIONS, SETTLE_TIMEOUT_MS);
      child.start();
      const withChild = await waitForSettled(changes, all, PARTITIONS, SETTLE_TIMEOUT_MS, before + 1);
      const childMemberId = child.memberId!;
      const childPartitions = lastJoin(child)!.partitions;
      expect(childPartitions.length).toBeGreaterThan(0);

      const produced: string[] = [];
      let killAtMs = 0;
      let lineIndexAtKill = -1;
      await withProducer(broker, async (producer) => {
        // The stream: one record per partition per send. The child is killed once it has printed
        // KILL_AFTER_RECORDS records, while sends go on; BACKLOG_SENDS more then pile up on its
        // partitions while it is dead, and the same again after the survivors took over.
        const BACKLOG_SENDS = 20;
        for (let send = 0; send < MAX_SENDS && killAtMs === 0; send++) {
          produced.push(...(await produce(producer, topic, `k${send}`, new Array<number>(PARTITIONS).fill(1))));
          if (child.records.length >= KILL_AFTER_RECORDS) {
            lineIndexAtKill = broker.lineCount;
            killAtMs = Date.now();
            await child.kill('SIGKILL');
          }
        }
        expect(killAtMs, 'the child was killed while records were flowing').toBeGreaterThan(0);
        for (let send = 0; send < BACKLOG_SENDS; send++) produced.push(...(await produce(producer, topic, `dead${send}`, new Array<number>(PARTITIONS).fill(1))));
        await waitForSettled(changes, survivors, PARTITIONS, SETTLE_TIMEOUT_MS, withChild + 1);
        for (let send = 0; send < BACKLOG_SENDS; send++) produced.push(...(await produce(producer, topic, `after${send}`, new Array<number>(PARTITIONS).fill(1))));
      });
      await changes.until(() => distinctValues(allRecords(all)).size >= produced.length, CONSUME_TIMEOUT_MS, `all ${produced.length} records`, () => describeJoins(all));
      // When the survivors first consumed a record of each partition the child owned, after the kill.
      const resumedAtMs = Math.max(
        ...childPartitions.map((partition) => Math.min(...survivors.flatMap((member) => member.records.filter((record) => record.partition === partition && record.atMs >= killAtMs).map((record) => record.atMs)))),
      );

      // Evicted by the session timeout, not by a leave: the broker logged its expiry.
      const expiry = await broker.waitForLine((line) => line.includes('member expired') && line.includes(childMemberId), 1_000, lineIndexAtKill);
      expect(expiry).toContain('reason="session-timeout"');
      const killToEvictedMs = lineTimeMs(expiry) - killAtMs;
      // The session runs from the child's last heartbeat, at most one interval (plus a fetch wait) before the kill.
      expect(killToEvictedMs).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS - 500);
      expect(killToEvictedMs).toBeLessThanOrEqual(SESSION_TIMEOUT_MS + 2_000);

      // The survivors settled in a later generation that covers every partition, without the child.
      const afterKill = await waitForSettled(changes, survivors, PARTITIONS, SETTLE_TIMEOUT_MS, withChild + 1);
      expect(lastJoin(child)!.generationId).toBe(withChild);
      expect(child.problems, 'commit failures or crashes of the child before the kill').toEqual([]);
      expect(ownershipProblems(all, PARTITIONS)).toEqual([]);

      // Nothing lost.
      const records = allRecords(all);
      const seen = distinctValues(records);
      expect(produced.filter((value) => !seen.has(value))).toEqual([]);
      // Duplicates: only records the child printed and had not committed, on its partitions.
      const repeated = [...duplicates(records).values()];
      for (const list of repeated) {
        expect(list).toHaveLength(2);
        expect(list.map((record) => record.member).sort()).toContain('child');
        const record = list[0]!;
        expect(childPartitions).toContain(record.partition);
        expect(record.offset).toBeGreaterThanOrEqual(child.committed.get(record.partition) ?? 0);
      }
      expect(repeated.length).toBeLessThanOrEqual(COMMIT_EVERY);
      const uncommittedAtKill = child.records.filter((record) => record.offset >= (child.committed.get(record.partition) ?? 0)).length;
      console.log(
        `SIGKILL failover: child member owned partitions [${childPartitions.join(',')}] in generation ${withChild}; evicted ${killToEvictedMs} ms after the kill ` +
          `(session timeout ${SESSION_TIMEOUT_MS} ms, heartbeat ${HEARTBEAT_INTERVAL_MS} ms); survivors settled in generation ${afterKill} and consumed its partitions ` +
          `${resumedAtMs - killAtMs} ms after the kill; ${produced.length} records produced, ${seen.size} consumed, 0 lost, ` +
          `${repeated.length} duplicates (child's uncommitted records at the kill: ${uncommittedAtKill}; window: ${COMMIT_EVERY} records)`,
      );
      expect(repeated.length).toBeLessThanOrEqual(uncommittedAtKill);
    } finally {
      await stopAll(all);
    }
  });

  it('a static member (kcat, group.instance.id) restarted within its session timeout gets its assignment back without a rebalance: same generation, no new join for the other member', async () => {
    const topic = 'groups-static';
    const groupId = 'static';
    const INSTANCE_ID = 'static-kcat';
    await createTopic(broker, topic, PARTITIONS);
    const changes = new Changes();
    // kafkajs's round robin under librdkafka's protocol name, so kcat and kafkajs share a protocol.
    const roundrobin: import('kafkajs').PartitionAssigner = (config) => {
      const inner = kafkajs.PartitionAssigners.roundRobin(config);
      return {
        name: 'roundrobin',
        version: 0,
        assign: (group) => inner.assign(group),
        protocol: ({ topics }) => ({ name: 'roundrobin', metadata: kafkajs.AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) }),
      };
    };
    const dynamic = new KafkajsMember({ broker, groupId, topic, name: 'dynamic', changes, partitionAssigners: [roundrobin] });
    const kcatProperties = {
      'group.instance.id': INSTANCE_ID,
      'session.timeout.ms': '10000',
      'heartbeat.interval.ms': '500',
      'partition.assignment.strategy': 'roundrobin',
      'auto.offset.reset': 'earliest',
    };
    const first = new KcatMember({ broker, groupId, topic, name: 'kcat-1', changes, properties: kcatProperties });
    const second = new KcatMember({ broker, groupId, topic, name: 'kcat-2', changes, properties: kcatProperties });
    const describeStatic = async (): Promise<{ state: string; memberId: string; partitions: number[]; members: number }> =>
      withAdmin(broker, async (admin) => {
        const { groups } = await admin.describeGroups([groupId]);
        const group = groups[0]!;
        const member = group.members.find((entry) => entry.memberId.startsWith(`${INSTANCE_ID}-`));
        const assignment = member === undefined ? null : kafkajs.AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
        return { state: group.state, memberId: member?.memberId ?? '', partitions: [...(assignment?.assignment[topic] ?? [])].sort((a, b) => a - b), members: group.members.length };
      });
    try {
      await startAll([dynamic]);
      const alone = await waitForSettled(changes, [dynamic], PARTITIONS, SETTLE_TIMEOUT_MS);
      first.start();
      await changes.until(() => dynamic.generationId > alone && first.assignedLines.length > 0, SETTLE_TIMEOUT_MS, 'kcat to join', () => `${describeJoins([dynamic])}\n${first.stderrLines.join('\n')}`);
      const generation = dynamic.generationId;
      const dynamicPartitions = lastJoin(dynamic)!.partitions;
      const staticBefore = await describeStatic();
      expect(staticBefore.state).toBe('Stable');
      expect(staticBefore.members).toBe(2);
      expect(staticBefore.partitions).toEqual([...Array(PARTITIONS).keys()].filter((partition) => !dynamicPartitions.includes(partition)));

      await withProducer(broker, (producer) => produce(producer, topic, 'one', new Array<number>(PARTITIONS).fill(1)));
      await changes.until(() => first.records.length >= staticBefore.partitions.length && dynamic.records.length >= dynamicPartitions.length, CONSUME_TIMEOUT_MS, 'both members to consume', () => `${describeJoins([dynamic, first])}\n${first.stderrLines.join('\n')}\n${JSON.stringify(staticBefore)}`);
      expect([...new Set(first.records.map((record) => record.partition))].sort()).toEqual(staticBefore.partitions);

      // Crash and restart the static member.
      const lineIndex = broker.lineCount;
      const joinsBefore = dynamic.joins.length;
      await first.kill('SIGKILL');
      second.start();
      await changes.until(() => second.assignedLines.length > 0, SETTLE_TIMEOUT_MS, 'the restarted kcat to get an assignment', () => second.stderrLines.join('\n'));
      const staticAfter = await describeStatic();
      expect(staticAfter.state).toBe('Stable');
      expect(staticAfter.members).toBe(2);
      expect(staticAfter.memberId).not.toBe(staticBefore.memberId);
      expect(staticAfter.partitions).toEqual(staticBefore.partitions);

      // The restarted member consumes its old partitions; the other member keeps its generation.
      const heartbeatsBefore = dynamic.heartbeats.length;
      const produced = await withProducer(broker, (producer) => produce(producer, topic, 'two', new Array<number>(PARTITIONS).fill(1)));
      await changes.until(
        () =>
          produced.every((value) => [...second.records, ...dynamic.records].some((record) => record.value === value)) && dynamic.heartbeats.length >= heartbeatsBefore + 3,
        CONSUME_TIMEOUT_MS,
        'the records after the restart, and heartbeats of the other member',
        () => `${describeJoins([dynamic, second])}\n${second.stderrLines.join('\n')}`,
      );
      expect([...new Set(second.records.filter((record) => record.value.startsWith('two-')).map((record) => record.partition))].sort()).toEqual(staticBefore.partitions);
      expect(dynamic.joins.length).toBe(joinsBefore);
      expect(dynamic.generationId).toBe(generation);
      expect(new Set(dynamic.heartbeats.slice(heartbeatsBefore))).toEqual(new Set([generation]));
      const groupLines = broker.lines.slice(lineIndex).filter((line) => line.includes(`groupId="${groupId}"`));
      expect(groupLines.some((line) => line.includes('static member replaced'))).toBe(true);
      expect(groupLines.filter((line) => line.includes('preparing rebalance') || line.includes('join phase complete'))).toEqual([]);
    } finally {
      await stopAll([dynamic, first, second]);
    }
  });
});
