// The bundled admin client end to end: a broker child process (dist/; run `npm run build` first,
// as npm test does), every admin call against it including its Kafka errors, and a consumer
// group (a kafkajs 2.2.4 member, records from the bundled producer) described with its lag and
// reset while active (refused) and once empty.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin, KafkaGroupActiveError, type Admin, type GroupDescription } from '../client/admin.js';
import { KafkaConfigError, KafkaProtocolError, KafkaRequestTimeoutError } from '../client/errors.js';
import { createProducer } from '../client/producer.js';
import { BrokerProcess, kafkaFor, withTimeout } from './support/brokerProcess.js';

const GROUP_TIMEOUT_MS = 30_000;
let broker: BrokerProcess;
let admin: Admin;

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'group.initial.rebalance.delay.ms': '0', 'num.partitions': '1' } });
  admin = createAdmin({ bootstrapServers: [broker.address], clientId: 'admin-test', requestTimeoutMs: 10_000 });
});

afterAll(async () => {
  await admin?.close();
  await broker?.cleanup();
});

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => null,
    (error: unknown) => error as Error,
  );
  if (outcome === null) throw new Error('expected a rejection, the call succeeded');
  return outcome;
}

async function expectKafkaError(promise: Promise<unknown>, codeName: string, messagePart?: string): Promise<KafkaProtocolError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(KafkaProtocolError);
  const kafkaError = error as KafkaProtocolError;
  expect(kafkaError.codeName).toBe(codeName);
  if (messagePart !== undefined) expect(kafkaError.message).toContain(messagePart);
  return kafkaError;
}

async function produce(topic: string, perPartition: readonly number[], timestamp?: (i: number) => number): Promise<void> {
  const producer = createProducer({ bootstrapServers: [broker.address], acks: 1 });
  try {
    const records = perPartition.flatMap((count, partition) =>
      Array.from({ length: count }, (_, i) => ({ partition, value: `v-${partition}-${i}`, ...(timestamp !== undefined ? { timestamp: timestamp(i) } : {}) })),
    );
    await producer.send(topic, records);
  } finally {
    await producer.close();
  }
}

describe('topics', () => {
  it('creates topics with partitions and configs, lists and describes them; validateOnly creates nothing', async () => {
    await admin.createTopics([{ topic: 'adm-topic-a', partitions: 3, replicationFactor: 1, configs: { 'retention.ms': '60000' } }, { topic: 'adm-topic-b' }]);
    await admin.createTopics([{ topic: 'adm-topic-validate', partitions: 2 }], { validateOnly: true });
    const names = await admin.listTopics();
    expect(names).toEqual(expect.arrayContaining(['adm-topic-a', 'adm-topic-b']));
    expect(names).not.toContain('adm-topic-validate');
    expect([...names].sort()).toEqual(names);

    const [a, b] = await admin.describeTopics(['adm-topic-a', 'adm-topic-b']);
    expect(a!.name).toBe('adm-topic-a');
    expect(a!.partitions.map((p) => p.partition)).toEqual([0, 1, 2]);
    for (const partition of a!.partitions) {
      expect(partition.leader).toBeGreaterThanOrEqual(0);
      expect(partition.replicas).toEqual([partition.leader]);
      expect(partition.isr).toEqual([partition.leader]);
      expect(partition.error).toBe('NONE');
    }
    expect(a!.configs['retention.ms']).toMatchObject({ value: '60000', source: 'DYNAMIC_TOPIC_CONFIG', isDefault: false });
    expect(b!.partitions).toHaveLength(1); // num.partitions=1
    expect(b!.configs['retention.ms']?.isDefault).toBe(true);
  });

  it('reports TOPIC_ALREADY_EXISTS, INVALID_CONFIG with the valid range, and unknown topics by Kafka error name', async () => {
    await admin.createTopics([{ topic: 'adm-exists' }]);
    await expectKafkaError(admin.createTopics([{ topic: 'adm-exists' }]), 'TOPIC_ALREADY_EXISTS', 'adm-exists');
    const invalid = await expectKafkaError(admin.createTopics([{ topic: 'adm-bad-config', configs: { 'retention.ms': '-2' } }]), 'INVALID_CONFIG', '[-1, 9223372036854775807]');
    expect(invalid.retriable).toBe(false);
    await expectKafkaError(admin.createTopics([{ topic: 'adm-bad-segment', configs: { 'segment.bytes': '1' } }]), 'INVALID_CONFIG', '[14, 2147483647]');
    expect(await admin.listTopics()).not.toContain('adm-bad-config');
    await expectKafkaError(admin.describeTopics(['adm-missing']), 'UNKNOWN_TOPIC_OR_PARTITION', 'adm-missing');
    await expectKafkaError(admin.deleteTopics(['adm-missing']), 'UNKNOWN_TOPIC_OR_PARTITION');
    await expectKafkaError(admin.listOffsets('adm-missing', 'latest'), 'UNKNOWN_TOPIC_OR_PARTITION');
    await expectKafkaError(admin.createPartitions('adm-missing', 3), 'UNKNOWN_TOPIC_OR_PARTITION');
    expect(await rejection(admin.createTopics([]))).toBeInstanceOf(KafkaConfigError);
    expect(await rejection(admin.createTopics([{ topic: 'adm-x', partitions: 0 }]))).toBeInstanceOf(KafkaConfigError);
  });

  it('raises the partition count and refuses to lower it', async () => {
    await admin.createTopics([{ topic: 'adm-grow', partitions: 2 }]);
    await admin.createPartitions('adm-grow', 5);
    const [described] = await admin.describeTopics(['adm-grow']);
    expect(described!.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3, 4]);
    expect((await admin.listOffsets('adm-grow', 'latest')).map((p) => p.partition)).toEqual([0, 1, 2, 3, 4]);
    await expectKafkaError(admin.createPartitions('adm-grow', 3), 'INVALID_PARTITIONS', 'has 5 partitions');
  });

  it('deletes topics', async () => {
    await admin.createTopics([{ topic: 'adm-doomed' }]);
    await admin.deleteTopics(['adm-doomed']);
    expect(await admin.listTopics()).not.toContain('adm-doomed');
    await expectKafkaError(admin.describeTopics(['adm-doomed']), 'UNKNOWN_TOPIC_OR_PARTITION');
  });
});

describe('configs', () => {
  it('describes, sets and deletes topic configs (IncrementalAlterConfigs); an invalid value names its range', async () => {
    await admin.createTopics([{ topic: 'adm-configs' }]);
    const before = await admin.describeConfigs('adm-configs');
    expect(before['retention.ms']).toMatchObject({ isDefault: true, source: 'DEFAULT_CONFIG' });
    expect(before['cleanup.policy']?.value).toBe('delete');

    await admin.alterConfigs('adm-configs', { set: { 'retention.ms': '7000', 'segment.bytes': '1048576' } });
    const set = await admin.describeConfigs('adm-configs');
    expect(set['retention.ms']).toMatchObject({ value: '7000', isDefault: false, source: 'DYNAMIC_TOPIC_CONFIG' });
    expect(set['segment.bytes']?.value).toBe('1048576');

    await admin.alterConfigs('adm-configs', { delete: ['retention.ms'] });
    const deleted = await admin.describeConfigs('adm-configs');
    expect(deleted['retention.ms']).toMatchObject({ value: before['retention.ms']!.value, isDefault: true });
    expect(deleted['segment.bytes']?.value).toBe('1048576');

    await expectKafkaError(admin.alterConfigs('adm-configs', { set: { 'retention.ms': '-2' } }), 'INVALID_CONFIG', 'retention.ms must be in [-1, 9223372036854775807], got -2');
    await expectKafkaError(admin.alterConfigs('adm-configs', { set: { 'segment.bytes': '1' } }), 'INVALID_CONFIG', '[14, 2147483647]');
    await expectKafkaError(admin.describeConfigs('adm-no-such-topic'), 'UNKNOWN_TOPIC_OR_PARTITION');
    expect(await rejection(admin.alterConfigs('adm-configs', {}))).toBeInstanceOf(KafkaConfigError);
  });
});

describe('offsets and records', () => {
  it('lists earliest, latest and by-timestamp offsets per partition, and deletes records', async () => {
    const topic = 'adm-offsets';
    await admin.createTopics([{ topic, partitions: 2 }]);
    const base = Date.now() - 100_000;
    await produce(topic, [10, 3], (i) => base + i * 1_000);

    expect(await admin.listOffsets(topic, 'earliest')).toMatchObject([{ partition: 0, offset: 0n }, { partition: 1, offset: 0n }]);
    expect(await admin.listOffsets(topic, 'latest')).toMatchObject([{ partition: 0, offset: 10n }, { partition: 1, offset: 3n }]);
    const byTime = await admin.listOffsets(topic, base + 5_000);
    expect(byTime[0]).toEqual({ partition: 0, offset: 5n, timestamp: base + 5_000 });
    expect(byTime[1]!.offset).toBe(-1n); // no record that late in partition 1
    expect(await rejection(admin.listOffsets(topic, -5))).toBeInstanceOf(KafkaConfigError);

    expect(await admin.deleteRecords(topic, { 0: 4 })).toEqual({ 0: 4n });
    expect(await admin.deleteRecords(topic, { 1: -1 })).toEqual({ 1: 3n });
    expect(await admin.listOffsets(topic, 'earliest')).toMatchObject([{ partition: 0, offset: 4n }, { partition: 1, offset: 3n }]);
    await expectKafkaError(admin.deleteRecords(topic, { 0: 50 }), 'OFFSET_OUT_OF_RANGE');
    await expectKafkaError(admin.deleteRecords(topic, { 7: 1 }), 'UNKNOWN_TOPIC_OR_PARTITION');
  });
});

describe('consumer groups', () => {
  const topic = 'adm-group-topic';
  const groupId = 'adm-group';

  function committedOf(description: GroupDescription): Array<[number, bigint | null, bigint, bigint | null]> {
    return description.offsets.filter((o) => o.topic === topic).map((o) => [o.partition, o.committedOffset, o.logEndOffset, o.lag]);
  }

  it('describes members, assignments, committed offsets and lag; refuses a reset while members are active; resets an empty group; deletes it', async () => {
    await admin.createTopics([{ topic, partitions: 2 }]);
    await produce(topic, [5, 5]);

    const consumer = kafkaFor(broker, { clientId: 'adm-member' }).consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500 });
    let consumed = 0;
    let running = true;
    // kafkajs reports each acknowledged OffsetCommit (after the join: a commit needs a generation).
    const committedByPartition = new Map<number, string>();
    let allCommitted!: () => void;
    const everythingCommitted = new Promise<void>((resolve) => (allCommitted = resolve));
    consumer.on(consumer.events.COMMIT_OFFSETS, (event) => {
      for (const entry of event.payload.topics) {
        if (entry.topic !== topic) continue;
        // kafkajs hands the partition over as a string here, whatever its type says.
        for (const { partition, offset } of entry.partitions) committedByPartition.set(Number(partition), offset);
      }
      if (committedByPartition.get(0) === '5' && committedByPartition.get(1) === '5') allCommitted();
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async () => {
          consumed++;
        },
      });
      await withTimeout(everythingCommitted, GROUP_TIMEOUT_MS, () => `the kafkajs member to commit offset 5 on both partitions (consumed ${consumed}; committed ${JSON.stringify([...committedByPartition])})`);
      let described: GroupDescription = await admin.describeGroup(groupId);
      expect(described.totalLag).toBe(0n);
      expect(described).toMatchObject({ groupId, state: 'Stable', protocolType: 'consumer', protocol: 'RoundRobinAssigner' });
      expect(described.members).toHaveLength(1);
      const member = described.members[0]!;
      expect(member).toMatchObject({ clientId: 'adm-member', groupInstanceId: null });
      expect(member.clientHost).toContain('127.0.0.1');
      expect(member.assignment).toEqual([{ topic, partition: 0 }, { topic, partition: 1 }]);
      expect(committedOf(described)).toEqual([[0, 5n, 5n, 0n], [1, 5n, 5n, 0n]]);
      expect(described.offsets.every((o) => o.memberId === member.memberId)).toBe(true);
      expect((await admin.listGroups()).find((g) => g.groupId === groupId)).toMatchObject({ groupId, protocolType: 'consumer' });

      const active = await rejection(admin.resetGroupOffsets(groupId, topic, 'earliest'));
      expect(active).toBeInstanceOf(KafkaGroupActiveError);
      expect(active).toMatchObject({ name: 'KafkaGroupActiveError', codeName: 'UNKNOWN_MEMBER_ID', groupId, retriable: false });
      expect(active.message).toContain('active members');
      await expectKafkaError(admin.deleteGroups([groupId]), 'NON_EMPTY_GROUP');
      // A dry run is computed whatever the group's state, and commits nothing.
      expect(await admin.resetGroupOffsets(groupId, topic, 'earliest', { dryRun: true })).toEqual([
        { topic, partition: 0, previousOffset: 5n, newOffset: 0n },
        { topic, partition: 1, previousOffset: 5n, newOffset: 0n },
      ]);

      // The member's LeaveGroup ends a rebalance without members: the coordinator logs the group
      // Empty right after the transition.
      const leftAt = broker.lineCount;
      await consumer.disconnect();
      running = false;
      await broker.waitForLine((line) => line.includes(' INFO group is empty ') && line.includes(`groupId=${JSON.stringify(groupId)}`), GROUP_TIMEOUT_MS, leftAt);
      described = await admin.describeGroup(groupId);
      expect(described.state).toBe('Empty');
      expect(described.members).toEqual([]);

      // Lag grows as records arrive with no member consuming them.
      await produce(topic, [3, 1]);
      described = await admin.describeGroup(groupId);
      expect(committedOf(described)).toEqual([[0, 5n, 8n, 3n], [1, 5n, 6n, 1n]]);
      expect(described.totalLag).toBe(4n);
      expect(described.offsets.every((o) => o.memberId === null)).toBe(true);

      expect(await admin.resetGroupOffsets(groupId, topic, 'earliest')).toEqual([
        { topic, partition: 0, previousOffset: 5n, newOffset: 0n },
        { topic, partition: 1, previousOffset: 5n, newOffset: 0n },
      ]);
      expect(committedOf(await admin.describeGroup(groupId))).toEqual([[0, 0n, 8n, 8n], [1, 0n, 6n, 6n]]);

      await admin.resetGroupOffsets(groupId, topic, { shiftBy: 2 });
      expect(committedOf(await admin.describeGroup(groupId))).toEqual([[0, 2n, 8n, 6n], [1, 2n, 6n, 4n]]);
      await admin.resetGroupOffsets(groupId, topic, { shiftBy: -10 }); // clamped to the earliest
      expect(committedOf(await admin.describeGroup(groupId)).map((row) => row[1])).toEqual([0n, 0n]);
      await admin.resetGroupOffsets(groupId, topic, { offset: 7 }); // clamped to the log end of partition 1
      expect(committedOf(await admin.describeGroup(groupId)).map((row) => row[1])).toEqual([7n, 6n]);
      await admin.resetGroupOffsets(groupId, topic, { timestampMs: Date.now() + 3_600_000 }); // after every record: the log end
      expect(committedOf(await admin.describeGroup(groupId)).map((row) => row[1])).toEqual([8n, 6n]);
      await admin.resetGroupOffsets(groupId, topic, { timestampMs: 0 });
      expect(committedOf(await admin.describeGroup(groupId)).map((row) => row[1])).toEqual([0n, 0n]);
      await admin.resetGroupOffsets(groupId, topic, 'latest');
      const latest = await admin.describeGroup(groupId);
      expect(committedOf(latest)).toEqual([[0, 8n, 8n, 0n], [1, 6n, 6n, 0n]]);
      expect(latest.totalLag).toBe(0n);
      expect(await rejection(admin.resetGroupOffsets(groupId, topic, { shiftBy: 1.5 }))).toBeInstanceOf(KafkaConfigError);

      await admin.deleteGroups([groupId]);
      expect((await admin.listGroups()).map((g) => g.groupId)).not.toContain(groupId);
      const gone = await admin.describeGroup(groupId);
      expect(gone).toMatchObject({ state: 'Dead', members: [], offsets: [] });
      await expectKafkaError(admin.deleteGroups([groupId]), 'GROUP_ID_NOT_FOUND');
    } finally {
      if (running) await consumer.disconnect().catch(() => undefined);
    }
  }, 90_000);

  it('a reset of a group without offsets creates them; shiftBy without a committed offset is refused', async () => {
    const fresh = 'adm-fresh-group';
    await admin.createTopics([{ topic: 'adm-fresh', partitions: 1 }]);
    await produce('adm-fresh', [4]);
    expect(await rejection(admin.resetGroupOffsets(fresh, 'adm-fresh', { shiftBy: 1 }))).toBeInstanceOf(KafkaConfigError);
    expect(await admin.resetGroupOffsets(fresh, 'adm-fresh', { offset: 1 })).toEqual([{ topic: 'adm-fresh', partition: 0, previousOffset: null, newOffset: 1n }]);
    const described = await admin.describeGroup(fresh);
    expect(described).toMatchObject({ state: 'Empty', members: [], totalLag: 3n });
    expect(described.offsets).toEqual([{ topic: 'adm-fresh', partition: 0, committedOffset: 1n, logEndOffset: 4n, lag: 3n, memberId: null }]);
    expect((await admin.listGroups()).map((g) => g.groupId)).toContain(fresh);
    await admin.deleteGroups([fresh]);
  });
});

describe('timeouts and lifecycle', () => {
  it('every call has a deadline: a broker that never answers makes it reject with KafkaRequestTimeoutError', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const stuck = createAdmin({ bootstrapServers: [`127.0.0.1:${port}`], requestTimeoutMs: 300 });
    try {
      const started = Date.now();
      expect(await rejection(stuck.listTopics())).toBeInstanceOf(KafkaRequestTimeoutError);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await stuck.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses bad options and calls after close()', async () => {
    expect(() => createAdmin({ bootstrapServers: [] })).toThrow(KafkaConfigError);
    expect(() => createAdmin({ bootstrapServers: ['127.0.0.1:1'], requestTimeoutMs: 0 })).toThrow(KafkaConfigError);
    const closing = createAdmin({ bootstrapServers: [broker.address] });
    expect(await closing.listTopics()).toContain('adm-topic-a');
    await closing.close();
    expect((await rejection(closing.listTopics())).name).toBe('KafkaClosedError');
  });
});
