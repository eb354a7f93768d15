// kcat's metadata listing and its start offsets against a broker process: -L, -o beginning,
// -o -N (the last N of each partition) and -o s@<timestamp> (ListOffsets by time), each checked
// against exactly the records produced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, kafkaFor, kcat, recordsOf, waitUntil, withRawClient } from '../support/brokerProcess.js';
import { byPartition, kcatConsume, type ReadRecord } from './records.js';

const TOPIC = 'kcat-offsets';
const EMPTY_TOPIC = 'kcat-listed-empty';
/** Records per partition in the first and the second produce phase. */
const PHASE_ONE = [25, 15];
const PHASE_TWO = [20, 8];

function phaseLines(partition: number, phase: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `p${partition}-${phase}-${i}`);
}

describe('kcat -L and kcat -C start offsets', () => {
  let broker: BrokerProcess;
  /** Between the two phases: above every phase-one timestamp, at or below every phase-two one. */
  let boundaryMs = 0;

  async function produce(partition: number, lines: readonly string[]): Promise<void> {
    await kcat(broker, ['-P', '-t', TOPIC, '-p', String(partition), '-K', ':'], { input: lines.map((line) => `k${partition}:${line}`).join('\n') + '\n' });
  }

  beforeAll(async () => {
    broker = await BrokerProcess.start();
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }, { topic: EMPTY_TOPIC, numPartitions: 3 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    for (const [partition, count] of PHASE_ONE.entries()) await produce(partition, phaseLines(partition, 'one', count));
    // The boundary comes from what the broker stored, so no record of phase one can sit at or after it.
    const phaseOneMaxTimestamp = await withRawClient(broker, async (client) => {
      let max = 0;
      for (let partition = 0; partition < PHASE_ONE.length; partition++) {
        for (const record of recordsOf((await client.fetchAllBatches(TOPIC, partition)).batches)) max = Math.max(max, record.timestamp);
      }
      return max;
    });
    boundaryMs = phaseOneMaxTimestamp + 1;
    // kcat stamps phase two with its wall clock (another process: no clock to inject).
    await waitUntil(() => Date.now() >= boundaryMs, 5_000, 'the wall clock to pass the phase boundary');
    for (const [partition, count] of PHASE_TWO.entries()) await produce(partition, phaseLines(partition, 'two', count));
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  function expectValues(records: readonly ReadRecord[], expected: ReadonlyArray<readonly string[]>): void {
    const partitions = byPartition(records);
    expect([...partitions.keys()]).toEqual(expected.map((_, partition) => partition).filter((partition) => expected[partition]!.length > 0));
    for (const [partition, list] of partitions) expect(list.map((record) => record.value), `partition ${partition}`).toEqual(expected[partition]);
    expect(records.length).toBe(expected.reduce((sum, list) => sum + list.length, 0));
  }

  const allValues = (partition: number): string[] => [...phaseLines(partition, 'one', PHASE_ONE[partition]!), ...phaseLines(partition, 'two', PHASE_TWO[partition]!)];

  it('kcat -L lists this broker as the controller and every topic with its partitions led by it', async () => {
    const result = await kcat(broker, ['-L', '-J']);
    const metadata = JSON.parse(result.stdout.toString('utf8')) as {
      controllerid: number;
      brokers: Array<{ id: number; name: string }>;
      topics: Array<{ topic: string; partitions: Array<{ partition: number; leader: number; replicas: Array<{ id: number }>; isrs: Array<{ id: number }> }> }>;
    };
    expect(metadata.brokers).toEqual([{ id: 0, name: broker.address }]);
    expect(metadata.controllerid).toBe(0);
    const topics = new Map(metadata.topics.map((topic) => [topic.topic, topic.partitions]));
    expect([...topics.keys()].sort()).toEqual([TOPIC, EMPTY_TOPIC].sort());
    for (const [name, count] of [[TOPIC, 2], [EMPTY_TOPIC, 3]] as const) {
      const partitions = [...topics.get(name)!].sort((a, b) => a.partition - b.partition);
      expect(partitions).toEqual(Array.from({ length: count }, (_, partition) => ({ partition, leader: 0, replicas: [{ id: 0 }], isrs: [{ id: 0 }] })));
    }
    // The plain-text listing names the same broker.
    const text = (await kcat(broker, ['-L'])).stdout.toString('utf8');
    expect(text).toContain(`broker 0 at ${broker.address} (controller)`);
    expect(text).toContain(`topic "${TOPIC}" with 2 partitions:`);
  });

  it('-o beginning returns every record of every partition, in produce order', async () => {
    const records = await kcatConsume(broker, TOPIC, 'beginning');
    expectValues(records, [allValues(0), allValues(1)]);
    for (const record of records) expect(record.key).toBe(`k${record.partition}`);
  });

  it('-o -10 returns exactly the last 10 records of each partition', async () => {
    const records = await kcatConsume(broker, TOPIC, '-10');
    expectValues(records, [allValues(0).slice(-10), allValues(1).slice(-10)]);
  });

  it('-o s@<timestamp between the phases> returns exactly the second phase of each partition', async () => {
    const records = await kcatConsume(broker, TOPIC, `s@${boundaryMs}`);
    expectValues(records, [phaseLines(0, 'two', PHASE_TWO[0]!), phaseLines(1, 'two', PHASE_TWO[1]!)]);
    for (const record of records) expect(record.timestamp).toBeGreaterThanOrEqual(boundaryMs);
    // kcat -Q asks ListOffsets the same question: the first offset of phase two per partition.
    const query = await kcat(broker, ['-Q', '-t', `${TOPIC}:0:${boundaryMs}`, '-t', `${TOPIC}:1:${boundaryMs}`]);
    const text = query.stdout.toString('utf8');
    expect(text).toContain(`${TOPIC} [0] offset ${PHASE_ONE[0]}`);
    expect(text).toContain(`${TOPIC} [1] offset ${PHASE_ONE[1]}`);
  });

  it('-o s@<timestamp after every record> returns nothing and exits at the end', async () => {
    const records = await kcatConsume(broker, TOPIC, `s@${Date.now() + 3_600_000}`);
    expect(records).toEqual([]);
  });
});
