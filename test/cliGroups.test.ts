// `tidelog groups list|describe|reset-offsets|delete` end to end: the compiled CLI (`node
// bin/tidelog.js`, run `npm run build` first) against a broker child process, with groups made by
// the bundled consumer and by kafkajs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, type Consumer } from '../client/index.js';
import { BrokerProcess, expectSuccess, kafkaFor, runTidelog, waitUntil, withTimeout, type ProcessResult } from './support/brokerProcess.js';

const CLI_TIMEOUT_MS = 30_000;
const CONSUME_TIMEOUT_MS = 20_000;
let broker: BrokerProcess;

function tidelog(args: readonly string[], input?: string): Promise<ProcessResult> {
  return runTidelog([...args, '--bootstrap-server', broker.address], { timeoutMs: CLI_TIMEOUT_MS, ...(input !== undefined ? { input } : {}) });
}

async function ok(args: readonly string[], input?: string): Promise<ProcessResult> {
  return expectSuccess(await tidelog(args, input), `tidelog ${args.join(' ')}`);
}

function stdoutText(result: ProcessResult): string {
  return result.stdout.toString('utf8');
}

function stderrLines(result: ProcessResult): string[] {
  return result.stderr.split('\n').filter((line) => line.length > 0);
}

interface DescribedGroup {
  groupId: string;
  state: string;
  members: Array<{ memberId: string; clientId: string; assignment: Array<{ topic: string; partition: number }> }>;
  offsets: Array<{ topic: string; partition: number; committedOffset: number | null; logEndOffset: number | null; lag: number | null; memberId: string | null }>;
  totalLag: number;
}

async function describeGroup(group: string): Promise<DescribedGroup> {
  return JSON.parse(stdoutText(await ok(['groups', 'describe', group, '--json']))) as DescribedGroup;
}

/** Committed offset per partition of `topic` (null: none). */
async function committed(group: string, topic: string): Promise<Array<number | null>> {
  const described = await describeGroup(group);
  return described.offsets.filter((p) => p.topic === topic).sort((a, b) => a.partition - b.partition).map((p) => p.committedOffset);
}

async function logEnds(group: string, topic: string): Promise<number[]> {
  const described = await describeGroup(group);
  return described.offsets.filter((p) => p.topic === topic).sort((a, b) => a.partition - b.partition).map((p) => p.logEndOffset ?? -1);
}

function keyedLines(from: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `key-${from + i}=value-${from + i}`).join('\n') + '\n';
}

/** A bundled consumer in `group` that has read `count` records and committed them. */
async function groupMember(group: string, topic: string, count: number): Promise<Consumer> {
  const consumer = createConsumer({ bootstrapServers: [broker.address], clientId: `member-of-${group}`, autoOffsetReset: 'earliest' });
  consumer.subscribe([topic], { groupId: group, autoCommit: false });
  let read = 0;
  await withTimeout(
    (async () => {
      for await (const record of consumer.records()) {
        expect(record.topic).toBe(topic);
        if (++read >= count) break;
      }
    })(),
    CONSUME_TIMEOUT_MS,
    `${count} records read by a member of ${group}`,
  );
  await consumer.commit();
  return consumer;
}

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'group.initial.rebalance.delay.ms': '0' } });
  await ok(['topics', 'create', 'orders', '--partitions', '2']);
  // Keys spread the records over both partitions.
  await ok(['produce', 'orders', '--key-separator', '=', '--acks', 'all'], keyedLines(0, 10));
});

afterAll(async () => {
  await broker?.cleanup();
});

describe('tidelog groups with a bundled consumer', () => {
  it('lists and describes an active group (members, assignment, committed and end offsets, lag), refuses to reset or delete it, then resets, and deletes it once it is empty', async () => {
    const member = await groupMember('billing', 'orders', 10);
    let closed = false;
    try {
      const listed = JSON.parse(stdoutText(await ok(['groups', 'list', '--json']))) as Array<{ groupId: string; state: string; protocolType: string }>;
      expect(listed).toContainEqual({ groupId: 'billing', state: 'Stable', protocolType: 'consumer' });
      expect(stdoutText(await ok(['groups', 'list']))).toMatch(/^billing\s+Stable\s+consumer$/m);

      // Five more records: the member has not read them, so the lag is 5.
      await ok(['produce', 'orders', '--key-separator', '=', '--acks', 'all'], keyedLines(10, 5));
      const described = await describeGroup('billing');
      expect(described.state).toBe('Stable');
      expect(described.members).toHaveLength(1);
      const [only] = described.members;
      expect(only!.clientId).toBe('member-of-billing');
      expect(only!.assignment.map((tp) => `${tp.topic}-${tp.partition}`).sort()).toEqual(['orders-0', 'orders-1']);
      expect(described.offsets.map((p) => p.partition)).toEqual([0, 1]);
      for (const p of described.offsets) {
        expect(p.memberId).toBe(only!.memberId);
        expect(p.lag).toBe(p.logEndOffset! - p.committedOffset!);
      }
      expect(described.offsets.reduce((sum, p) => sum + p.committedOffset!, 0)).toBe(10);
      expect(described.offsets.reduce((sum, p) => sum + p.logEndOffset!, 0)).toBe(15);
      expect(described.totalLag).toBe(5);

      const text = stdoutText(await ok(['groups', 'describe', 'billing']));
      expect(text).toMatch(/^Group: billing\tState: Stable\t.*Members: 1\tTotal lag: 5$/m);
      expect(text).toMatch(/^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+CONSUMER-ID\s+HOST\s+CLIENT-ID$/m);
      for (const p of described.offsets) {
        expect(text).toMatch(new RegExp(`^orders\\s+${p.partition}\\s+${p.committedOffset}\\s+${p.logEndOffset}\\s+${p.lag}\\s+${only!.memberId}\\s+\\S+\\s+member-of-billing$`, 'm'));
      }
      expect(text).toMatch(new RegExp(`^${only!.memberId}\\s+-\\s+\\S+\\s+member-of-billing\\s+orders-0,orders-1$`, 'm'));

      const before = await committed('billing', 'orders');
      for (const mode of [[], ['--execute']]) {
        const refused = await tidelog(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-earliest', ...mode]);
        expect(refused.code).toBe(1);
        expect(stderrLines(refused)).toEqual([expect.stringMatching(/cannot reset offsets of group billing: it has 1 active member \(state Stable\)/)]);
        expect(stdoutText(refused)).toBe('');
      }
      const notDeleted = await tidelog(['groups', 'delete', 'billing']);
      expect(notDeleted.code).toBe(1);
      expect(stderrLines(notDeleted)).toEqual([expect.stringMatching(/cannot delete group billing: it has active members/)]);
      expect(await committed('billing', 'orders')).toEqual(before);

      await member.close();
      closed = true;
      expect((await describeGroup('billing')).state).toBe('Empty');

      // Without --execute (and with --dry-run): the plan is shown, nothing is committed.
      for (const mode of [[], ['--dry-run']]) {
        const plan = await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-earliest', ...mode]);
        expect(stdoutText(plan)).toMatch(/^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+NEW-OFFSET$/m);
        expect(stdoutText(plan)).toMatch(new RegExp(`^orders\\s+0\\s+${before[0]}\\s+0$`, 'm'));
        expect(stdoutText(plan)).toMatch(new RegExp(`^orders\\s+1\\s+${before[1]}\\s+0$`, 'm'));
        expect(plan.stderr).toMatch(/dry run, nothing committed; add --execute/);
        expect(await committed('billing', 'orders')).toEqual(before);
      }
      const planJson = JSON.parse(stdoutText(await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-latest', '--json']))) as { executed: boolean; offsets: Array<{ partition: number; previousOffset: number; newOffset: number }> };
      expect(planJson.executed).toBe(false);
      const ends = await logEnds('billing', 'orders');
      expect(planJson.offsets.map((o) => [o.partition, o.previousOffset, o.newOffset])).toEqual([
        [0, before[0], ends[0]],
        [1, before[1], ends[1]],
      ]);
      expect(await committed('billing', 'orders')).toEqual(before);

      // --execute commits; each target in turn.
      await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-earliest', '--execute']);
      expect(await committed('billing', 'orders')).toEqual([0, 0]);
      await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-latest', '--execute']);
      expect(await committed('billing', 'orders')).toEqual(ends);
      expect((await describeGroup('billing')).totalLag).toBe(0);
      await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--shift-by', '-2', '--execute']);
      expect(await committed('billing', 'orders')).toEqual(ends.map((end) => Math.max(end - 2, 0)));
      // An explicit offset is clamped to each partition's range.
      await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-offset', '3', '--execute']);
      expect(await committed('billing', 'orders')).toEqual(ends.map((end) => Math.min(3, end)));
      // A time after every record: the log end.
      await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-datetime', new Date(Date.now() + 3_600_000).toISOString(), '--execute']);
      expect(await committed('billing', 'orders')).toEqual(ends);
      // A time before every record: the first offset.
      await ok(['groups', 'reset-offsets', '--group', 'billing', '--topic', 'orders', '--to-datetime', '2001-01-01T00:00:00Z', '--execute']);
      expect(await committed('billing', 'orders')).toEqual([0, 0]);

      const deleted = await ok(['groups', 'delete', 'billing']);
      expect(stdoutText(deleted)).toBe('deleted group billing\n');
      expect((JSON.parse(stdoutText(await ok(['groups', 'list', '--json']))) as Array<{ groupId: string }>).map((g) => g.groupId)).not.toContain('billing');
      const gone = await tidelog(['groups', 'describe', 'billing']);
      expect(gone.code).toBe(1);
      expect(stderrLines(gone)).toEqual(['tidelog groups describe: group billing does not exist']);
      const again = await tidelog(['groups', 'delete', 'billing']);
      expect(again.code).toBe(1);
      expect(stderrLines(again)).toEqual(['tidelog groups delete: group billing does not exist']);
    } finally {
      if (!closed) await member.close();
    }
  });

  it('--to-datetime resets to the first record at or after that time', async () => {
    await ok(['topics', 'create', 'timed', '--partitions', '1']);
    await ok(['produce', 'timed'], 'early-1\nearly-2\nearly-3\n');
    // A millisecond strictly after every early record and before every late one. The CLI stamps
    // records with its own wall clock (another process: no clock to inject), so wait for it to pass.
    const boundaryMs = Date.now() + 1;
    await waitUntil(() => Date.now() > boundaryMs, 1_000, 'the clock to pass the boundary');
    await ok(['produce', 'timed'], 'late-1\nlate-2\n');
    const member = await groupMember('timed-group', 'timed', 5);
    await member.close();
    const plan = JSON.parse(stdoutText(await ok(['groups', 'reset-offsets', '--group', 'timed-group', '--topic', 'timed', '--to-datetime', new Date(boundaryMs).toISOString(), '--execute', '--json']))) as { executed: boolean; offsets: Array<{ partition: number; previousOffset: number; newOffset: number }> };
    expect(plan).toEqual({ groupId: 'timed-group', executed: true, offsets: [{ topic: 'timed', partition: 0, previousOffset: 5, newOffset: 3 }] });
    expect(await committed('timed-group', 'timed')).toEqual([3]);
    // The group resumes at the first late record.
    const resumed = await ok(['consume', 'timed', '--group', 'timed-group', '--idle-timeout-ms', '1500']);
    expect(stdoutText(resumed)).toBe('late-1\nlate-2\n');
  });
});

describe('tidelog groups with a kafkajs consumer', () => {
  it('describes a kafkajs member and refuses to reset its group until it leaves', async () => {
    const kafka = kafkaFor(broker, { clientId: 'kafkajs-audit' });
    const consumer = kafka.consumer({ groupId: 'audit', sessionTimeout: 10_000, heartbeatInterval: 500 });
    await consumer.connect();
    let disconnected = false;
    try {
      await consumer.subscribe({ topic: 'orders', fromBeginning: true });
      let seen = 0;
      let allSeen: () => void = () => undefined;
      const readAll = new Promise<void>((resolve) => (allSeen = resolve));
      await consumer.run({
        eachMessage: async () => {
          if (++seen >= 15) allSeen();
        },
      });
      await withTimeout(readAll, CONSUME_TIMEOUT_MS, 'kafkajs to read 15 records');

      const described = await describeGroup('audit');
      expect(described.state).toBe('Stable');
      expect(described.members).toHaveLength(1);
      expect(described.members[0]!.clientId).toBe('kafkajs-audit');
      expect(described.members[0]!.assignment.map((tp) => `${tp.topic}-${tp.partition}`).sort()).toEqual(['orders-0', 'orders-1']);

      const refused = await tidelog(['groups', 'reset-offsets', '--group', 'audit', '--topic', 'orders', '--to-earliest', '--execute']);
      expect(refused.code).toBe(1);
      expect(stderrLines(refused)).toEqual([expect.stringMatching(/cannot reset offsets of group audit: it has 1 active member/)]);

      await consumer.disconnect();
      disconnected = true;
      // kafkajs commits what it read before leaving.
      expect((await committed('audit', 'orders')).reduce((sum: number, offset) => sum + (offset ?? 0), 0)).toBe(15);
      await ok(['groups', 'reset-offsets', '--group', 'audit', '--topic', 'orders', '--to-earliest', '--execute']);
      expect(await committed('audit', 'orders')).toEqual([0, 0]);
      await ok(['groups', 'delete', 'audit']);
    } finally {
      if (!disconnected) await consumer.disconnect();
    }
  });
});

describe('tidelog groups usage', () => {
  it.each([
    [['groups']],
    [['groups', 'describe']],
    [['groups', 'delete']],
    [['groups', 'describe', 'g', '--bogus']],
    [['groups', 'reset-offsets', '--topic', 'orders', '--to-earliest']],
    [['groups', 'reset-offsets', '--group', 'g', '--to-earliest']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders', '--to-earliest', '--to-latest']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders', '--to-offset', '-1']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders', '--to-offset', 'ten']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders', '--shift-by', '1.5']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders', '--to-datetime', 'yesterday']],
    [['groups', 'reset-offsets', '--group', 'g', '--topic', 'orders', '--to-latest', '--dry-run', '--execute']],
    [['groups', 'reset-offsets', '--group', '', '--topic', 'orders', '--to-latest']],
  ])('%j exits 2 with one line', async (args) => {
    const result = await tidelog(args);
    expect(result.code).toBe(2);
    expect(stderrLines(result)).toHaveLength(1);
    expect(stdoutText(result)).toBe('');
  });

  it('every groups command has --help', async () => {
    for (const command of [['groups'], ['groups', 'list'], ['groups', 'describe'], ['groups', 'reset-offsets'], ['groups', 'delete']]) {
      const result = await runTidelog([...command, '--help'], { timeoutMs: CLI_TIMEOUT_MS });
      expect(result.code).toBe(0);
      expect(stdoutText(result)).toMatch(/--bootstrap-server|Commands:/);
    }
  });

  it('a broker that is down fails with one line and exit 1', async () => {
    const result = await runTidelog(['groups', 'list', '--bootstrap-server', '127.0.0.1:1', '--timeout-ms', '2000'], { timeoutMs: CLI_TIMEOUT_MS });
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(stderrLines(result)).toEqual([expect.stringMatching(/^tidelog groups list: .*(reachable|ECONNREFUSED|did not finish)/)]);
  });
});
