// Compaction against a broker process: a SIGKILL right after each step of the swap
// (TIDELOG_TEST_CRASH_AT makes the broker kill itself there) leaves a log that opens and reads the
// records of before or after the clean; consumers (kafkajs and the bundled one) read across the
// offset gaps a clean leaves; __consumer_offsets is compacted and still restores the latest
// committed offsets after a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { createConsumer } from '../../client/consumer/consumer.js';
import { CRASH_AT_ENV, CRASH_STEPS } from '../../engine/log/compaction/crashPoints.js';
import { BrokerProcess, kafkaFor, kafkajs, waitUntil, withRawClient, withTimeout } from '../support/brokerProcess.js';
import { adminCommit, committedOffsets, withAdmin } from './support/groupMembers.js';
import { waitFor } from '../support/waitFor.js';

const TOPIC = 'table';
const KEYS = 40;
const RECORDS = 2000;
const CLEAN_TIMEOUT_MS = 30_000;
/** log.roll.ms of the __consumer_offsets test, and how many of its commits share a segment. */
const ROLL_MS = 100;
const COMMITS_PER_SEGMENT = 10;
/** Nothing is cleanable while this lag holds (records are younger than an hour). */
const HOLD_LAG_MS = String(60 * 60 * 1000);

interface Seen {
  offset: number;
  key: string;
  value: string | null;
}

let broker: BrokerProcess | null = null;
afterEach(async () => {
  delete process.env[CRASH_AT_ENV];
  await broker?.cleanup();
  broker = null;
});

function topicConfigs(minCompactionLagMs: string): Array<{ name: string; value: string }> {
  return [
    { name: 'cleanup.policy', value: 'compact' },
    // Small segments: the active one (never cleaned) holds at most ~100 records.
    { name: 'segment.bytes', value: '2048' },
    { name: 'min.cleanable.dirty.ratio', value: '0.01' },
    { name: 'min.compaction.lag.ms', value: minCompactionLagMs },
  ];
}

async function createCompactedTopic(target: BrokerProcess, minCompactionLagMs: string): Promise<void> {
  await withAdmin(target, async (admin) => {
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1, replicationFactor: 1, configEntries: topicConfigs(minCompactionLagMs) }], waitForLeaders: true });
  });
}

/**
 * RECORDS records over KEYS keys (values name their index); the last 200 use only ten keys, so
 * most keys' latest record lies in the cleaned part; the last five records are tombstones.
 */
async function produceTable(target: BrokerProcess): Promise<void> {
  const producer = kafkaFor(target).producer();
  await producer.connect();
  try {
    for (let start = 0; start < RECORDS; start += 50) {
      const messages = Array.from({ length: 50 }, (_, i) => {
        const index = start + i;
        const tombstone = index >= RECORDS - 5;
        const key = index >= RECORDS - 200 ? index % 10 : index % KEYS;
        return { key: `key-${key}`, value: tombstone ? null : `value-${index}` };
      });
      await producer.send({ topic: TOPIC, messages });
    }
  } finally {
    await producer.disconnect();
  }
}

async function readTable(target: BrokerProcess): Promise<Seen[]> {
  const records = await withRawClient(target, (client) => client.fetchAllRecords(TOPIC, 0));
  return records.map((record) => ({ offset: record.offset, key: record.key!.toString(), value: record.value === null ? null : record.value.toString() }));
}

function latestByKey(records: readonly Seen[]): Map<string, Seen> {
  return new Map(records.map((record) => [record.key, record]));
}

const asText = (record: Seen): string => `${record.offset}:${record.key}=${record.value}`;

describe('a SIGKILL at each step of the swap', () => {
  for (const step of CRASH_STEPS) {
    it(`${step}: the log reopens and reads the records of before or after the clean`, async () => {
      process.env[CRASH_AT_ENV] = step;
      broker = await BrokerProcess.start({ configs: { 'log.cleaner.backoff.ms': '100' } });
      delete process.env[CRASH_AT_ENV]; // the running child has it; a restart will not
      await createCompactedTopic(broker, HOLD_LAG_MS);
      await produceTable(broker);
      const before = await readTable(broker);
      expect(before).toHaveLength(RECORDS);

      // Lift the lag: the next cleaner round cleans, and the broker kills itself after `step`.
      const crashLine = broker.lineCount;
      await withAdmin(broker, (admin) => admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: TOPIC, configEntries: topicConfigs('0') }] }));
      await broker.waitForLine((line) => line.includes(`${CRASH_AT_ENV}=${step}`), CLEAN_TIMEOUT_MS, crashLine);
      const status = await broker.waitForExit(10_000, `the broker to SIGKILL itself after ${step}`);
      expect(status.signal).toBe('SIGKILL');

      const recoveryLine = broker.lineCount;
      await broker.restart();
      const after = await readTable(broker);
      const recovery = broker.lines.slice(recoveryLine).join('\n');
      if (step === 'after-cleaned') expect(recovery).toMatch(/removed the files of a compaction that did not commit/);
      if (step === 'after-swap-rename' || step === 'after-old-deleted') expect(recovery).toMatch(/completed a compaction swap interrupted by a crash/);

      // Nothing invented, nothing lost that a reader could tell: every record read is one of the
      // records before, in order, and each key's latest value (tombstones included) is there.
      for (let i = 1; i < after.length; i++) expect(after[i]!.offset).toBeGreaterThan(after[i - 1]!.offset);
      const beforeTexts = new Set(before.map(asText));
      expect(after.map(asText).filter((text) => !beforeTexts.has(text))).toEqual([]);
      expect(latestByKey(after)).toEqual(latestByKey(before));
      // Killed before the commit point, the log reads exactly as before; killed after it, the
      // first cleaned group is in (later groups swap one by one, so they may still read as before).
      if (step === 'after-cleaned') expect(after).toEqual(before);
      else expect(after.length).toBeLessThan(before.length);

      // The checkpoint moves only after the whole clean: the cleaner cleans again, to the same result.
      await broker.waitForLine(/INFO cleaned log .*topic="?table/, CLEAN_TIMEOUT_MS, recoveryLine);
      const final = await readTable(broker);
      expect(final.length).toBeLessThan(RECORDS / 4);
      expect(latestByKey(final)).toEqual(latestByKey(before));
    }, 90_000);
  }
});

describe('reading a compacted topic', () => {
  it('kafkajs and the bundled consumer read every surviving record across the offset gaps', async () => {
    broker = await BrokerProcess.start({ configs: { 'log.cleaner.backoff.ms': '100', 'group.initial.rebalance.delay.ms': '0' } });
    await createCompactedTopic(broker, HOLD_LAG_MS);
    await produceTable(broker);
    const cleaned = broker.lineCount;
    await withAdmin(broker, (admin) => admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: TOPIC, configEntries: topicConfigs('0') }] }));
    await broker.waitForLine(/INFO cleaned log .*topic="?table/, CLEAN_TIMEOUT_MS, cleaned);
    const survivors = await readTable(broker);
    expect(survivors.length).toBeLessThan(RECORDS / 4);
    expect(survivors.at(-1)!.offset - survivors[0]!.offset + 1).toBeGreaterThan(survivors.length); // there are gaps

    const kafka = kafkaFor(broker);
    const consumer = kafka.consumer({ groupId: 'readers', sessionTimeout: 10_000 });
    const seenByKafkajs: Seen[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      let done: () => void = () => undefined;
      const complete = new Promise<void>((resolve) => (done = resolve));
      await consumer.run({
        eachMessage: async ({ message }) => {
          seenByKafkajs.push({ offset: Number(message.offset), key: message.key!.toString(), value: message.value === null ? null : message.value.toString() });
          if (seenByKafkajs.length >= survivors.length) done();
        },
      });
      await withTimeout(complete, CLEAN_TIMEOUT_MS, 'kafkajs to read every surviving record');
    } finally {
      await consumer.disconnect();
    }
    expect(seenByKafkajs.map(asText)).toEqual(survivors.map(asText));

    const bundled = createConsumer({ bootstrapServers: [broker.address], autoOffsetReset: 'earliest', maxWaitMs: 100 });
    const seenByBundled: Seen[] = [];
    try {
      bundled.assign([{ topic: TOPIC, partition: 0 }]);
      for await (const record of bundled.records({ idleTimeoutMs: 3_000 })) {
        seenByBundled.push({ offset: Number(record.offset), key: record.key!.toString('utf8'), value: record.value === null ? null : record.value.toString('utf8') });
        if (seenByBundled.length >= survivors.length) break;
      }
    } finally {
      await bundled.close();
    }
    expect(seenByBundled.map(asText)).toEqual(survivors.map(asText));
  }, 90_000);
});

describe('__consumer_offsets', () => {
  it('is compacted: many commits of one group shrink to the latest per key, and a restart restores the latest offsets', async () => {
    broker = await BrokerProcess.start({
      configs: {
        'log.cleaner.backoff.ms': '100',
        'log.cleaner.min.cleanable.ratio': '0.01',
        'offsets.topic.num.partitions': '1',
        // Segments roll ROLL_MS after their first append, so commits spread over many segments.
        'log.roll.ms': String(ROLL_MS),
      },
    });
    await withAdmin(broker, (admin) => admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 1 }], waitForLeaders: true }));
    const commits = 40;
    // The active segment rolls at the first append ROLL_MS or more after its own first append:
    // commits go in groups, and before each next group that much time has passed since the
    // previous group's first commit, so each group lands in a segment of its own. A wall-clock condition
    // on the broker process's roll rule (no clock can be injected into a child process, and no
    // event announces that a roll is due).
    const rollDue = (sinceMs: number): Promise<void> => waitUntil(() => Date.now() - sinceMs > ROLL_MS, 10_000, `${ROLL_MS} ms to pass since ${sinceMs}, for the roll`);
    // Taken when a group's first commit is acknowledged, so after the broker stamped the segment.
    let groupStartedAtMs = 0;
    for (let offset = 1; offset <= commits; offset++) {
      const firstOfGroup = offset % COMMITS_PER_SEGMENT === 1;
      if (firstOfGroup && offset > 1) await rollDue(groupStartedAtMs);
      await adminCommit(broker, 'billing', 'orders', new Map([[0, offset]]));
      if (firstOfGroup) groupStartedAtMs = Date.now();
    }
    // One more commit once a roll is due seals the segment holding the last group.
    await rollDue(groupStartedAtMs);
    const fromLine = broker.lineCount;
    await adminCommit(broker, 'billing', 'orders', new Map([[0, commits + 1]]));
    await broker.waitForLine(/INFO cleaned log .*topic="?__consumer_offsets/, CLEAN_TIMEOUT_MS, fromLine);

    const recordsPerKey = async (): Promise<Map<string, number>> => {
      const stored = await withRawClient(broker!, (client) => client.fetchAllRecords('__consumer_offsets', 0));
      const byKey = new Map<string, number>();
      for (const record of stored) byKey.set(record.key!.toString('hex'), (byKey.get(record.key!.toString('hex')) ?? 0) + 1);
      return byKey;
    };
    // One key (billing, orders, 0): once every sealed segment is cleaned, its latest record in
    // the sealed part plus the one in the active segment.
    // The cleaner may take a few rounds (log.cleaner.backoff.ms apart) after its first "cleaned"
    // line; its progress is only visible in the stored records.
    const byKey = await waitFor(recordsPerKey, {
      until: (counts) => [...counts.values()][0]! <= 2,
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'the cleaner to leave at most 2 records of the one __consumer_offsets key',
      describe: (counts) => `records per key ${JSON.stringify([...counts])}`,
    });
    expect(byKey.size).toBe(1);
    expect([...byKey.values()][0]).toBeLessThanOrEqual(2);

    await broker.stop();
    await broker.restart();
    const restored = await withAdmin(broker, (admin) => committedOffsets(admin, 'billing', 'orders'));
    expect(restored.get(0)).toBe(commits + 1);
  }, 90_000);
});

