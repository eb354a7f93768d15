// kcat (librdkafka 2.0.2) at volume: 100,000 keyed lines into a 4-partition topic come back from
// `kcat -C -e` exactly once each, every key on one partition, each key's sequence in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, kafkaFor, kcat, withRawClient } from '../support/brokerProcess.js';
import { SeededRandom } from '../support/random.js';

const TOPIC = 'bulk-keyed';
const PARTITIONS = 4;
const KEYS = 100;
const PER_KEY = 1_000;
const TOTAL = KEYS * PER_KEY;
const SEED = 0x5eed_0100;

/** `key:key/seq` lines; keys interleave at random (seeded) but each key's seq counts up. */
function keyedLines(random: SeededRandom): string {
  const next = new Array<number>(KEYS).fill(0);
  const open = Array.from({ length: KEYS }, (_, key) => key);
  const lines: string[] = [];
  while (open.length > 0) {
    const slot = random.int(0, open.length - 1);
    const key = open[slot]!;
    lines.push(`key-${key}:key-${key}/${next[key]!}`);
    next[key]!++;
    if (next[key] === PER_KEY) open.splice(slot, 1);
  }
  return lines.join('\n') + '\n';
}

describe('kcat -P of 100,000 keyed lines, kcat -C -e', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it(`every one of ${TOTAL} lines is read exactly once, each key on one partition with its sequence in order (seed ${SEED})`, async () => {
    await kcat(broker, ['-P', '-t', TOPIC, '-K', ':'], { input: keyedLines(new SeededRandom(SEED)), timeoutMs: 90_000 });

    const highWatermarks = await withRawClient(broker, async (client) => {
      const marks: number[] = [];
      for (let partition = 0; partition < PARTITIONS; partition++) marks.push(Number((await client.listOffsets(TOPIC, partition, -1n)).offset));
      return marks;
    });
    expect(highWatermarks.reduce((a, b) => a + b, 0)).toBe(TOTAL);

    const consumed = await kcat(broker, ['-C', '-t', TOPIC, '-o', 'beginning', '-e', '-q', '-f', '%p|%o|%k|%s\\n'], { timeoutMs: 90_000 });
    const lines = consumed.stdout.toString('utf8').split('\n').filter((line) => line.length > 0);
    expect(lines.length).toBe(TOTAL);

    const seen = new Set<string>();
    const lastSequence = new Map<string, number>();
    const partitionOfKey = new Map<string, number>();
    const lastOffset = new Map<number, number>();
    const problems: string[] = [];
    for (const line of lines) {
      const [partitionText, offsetText, key, value] = line.split('|') as [string, string, string, string];
      const partition = Number(partitionText);
      const offset = Number(offsetText);
      if (seen.has(value)) problems.push(`duplicate ${value}`);
      seen.add(value);
      const [valueKey, sequenceText] = value.split('/') as [string, string];
      if (valueKey !== key) problems.push(`record ${value} has key ${key}`);
      const sequence = Number(sequenceText);
      if (sequence !== (lastSequence.get(key) ?? -1) + 1) problems.push(`${key}: ${sequence} after ${lastSequence.get(key) ?? 'nothing'}`);
      lastSequence.set(key, sequence);
      if ((partitionOfKey.get(key) ?? partition) !== partition) problems.push(`${key} on partitions ${partitionOfKey.get(key)} and ${partition}`);
      partitionOfKey.set(key, partition);
      if (offset !== (lastOffset.get(partition) ?? -1) + 1) problems.push(`partition ${partition}: offset ${offset} after ${lastOffset.get(partition) ?? 'nothing'}`);
      lastOffset.set(partition, offset);
    }
    expect(problems.slice(0, 20)).toEqual([]);
    expect(seen.size).toBe(TOTAL);
    expect(lastSequence.size).toBe(KEYS);
    for (const sequence of lastSequence.values()) expect(sequence).toBe(PER_KEY - 1);
    // 100 keys hash onto all 4 partitions.
    expect(new Set(partitionOfKey.values()).size).toBe(PARTITIONS);
  });
});
