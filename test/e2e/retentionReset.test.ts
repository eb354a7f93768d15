// Retention in a broker process (dist/; `npm run build` first): a topic with small segments and
// retention.ms of a minute gets records stamped an hour ago (CreateTime), so every segment is
// expired as soon as it is sealed. The broker's retention rounds (every 100 ms here) delete all
// sealed segments and keep the active one; a Fetch below the new log start offset answers
// OFFSET_OUT_OF_RANGE, and consumers follow their reset policy: the bundled consumer with
// 'earliest' restarts at the new log start, 'latest' at the end, 'none' fails with
// KafkaOffsetOutOfRangeError; kafkajs with fromBeginning restarts at the log start.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, KafkaOffsetOutOfRangeError, type Consumer } from '../../client/consumer/consumer.js';
import type { ConsumerRecord } from '../../client/recordDecoder.js';
import { createProducer } from '../../client/producer.js';
import { ErrorCode } from '../../protocol/errors.js';
import { parseSegmentFileName } from '../../segments/segmentNames.js';
import { BrokerProcess, kafkaFor, kafkajs, withRawClient, withTimeout } from '../support/brokerProcess.js';
import { waitFor } from '../support/waitFor.js';

const TOPIC = 'retained';
const RECORDS = 300;
const RECORDS_PER_SEND = 10;
const HOUR_MS = 3_600_000;
const WAIT_MS = 20_000;
const IDLE_MS = 1_500;

let broker: BrokerProcess;
const consumers: Consumer[] = [];
/** The log start offset once retention has taken every sealed segment; the log end then. */
let logStart = 0;
let logEnd = 0;

function consumer(autoOffsetReset: 'earliest' | 'latest' | 'none'): Consumer {
  const created = createConsumer({ bootstrapServers: [broker.address], autoOffsetReset, maxWaitMs: 100, requestTimeoutMs: 5_000 });
  consumers.push(created);
  return created;
}

async function take(source: Consumer, count: number, idleTimeoutMs = IDLE_MS): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  if (count === 0) return out;
  for await (const record of source.records({ idleTimeoutMs })) {
    out.push(record);
    if (out.length >= count) break;
  }
  return out;
}

async function segmentBases(): Promise<number[]> {
  const names = await readdir(join(broker.dataDir, `${TOPIC}-0`));
  return names.flatMap((name) => {
    const parsed = parseSegmentFileName(name);
    return parsed?.kind === 'log' ? [parsed.baseOffset] : [];
  });
}

async function offsets(): Promise<{ start: number; end: number }> {
  return withRawClient(broker, async (client) => ({
    start: Number((await client.listOffsets(TOPIC, 0, -2n)).offset),
    end: Number((await client.listOffsets(TOPIC, 0, -1n)).offset),
  }));
}

beforeAll(async () => {
  broker = await BrokerProcess.start({
    configs: { 'num.partitions': '1', 'log.retention.check.interval.ms': '100', 'log.segment.delete.delay.ms': '100', 'group.initial.rebalance.delay.ms': '0' },
  });
  const admin = kafkaFor(broker).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 1, configEntries: [{ name: 'segment.bytes', value: '4096' }, { name: 'retention.ms', value: '60000' }] }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  const producer = createProducer({ bootstrapServers: [broker.address], acks: 'all' });
  try {
    const old = Date.now() - HOUR_MS;
    for (let sent = 0; sent < RECORDS; sent += RECORDS_PER_SEND) {
      const records = Array.from({ length: RECORDS_PER_SEND }, (_, i) => ({ key: `k${sent + i}`, value: `value-${sent + i}-${'x'.repeat(100)}`, timestamp: old + sent + i, partition: 0 }));
      await producer.send(TOPIC, records);
    }
  } finally {
    await producer.close();
  }
  // Every sealed segment is an hour old: retention leaves only the active one. Its rounds run in
  // the broker process (log.retention.check.interval.ms) and the files go after
  // log.segment.delete.delay.ms: the end state shows on disk and in ListOffsets, so poll those.
  const retained = await waitFor(async () => ({ bases: await segmentBases(), current: await offsets() }), {
    until: ({ bases, current }) => bases.length === 1 && current.start === bases[0],
    timeoutMs: WAIT_MS,
    intervalMs: 50,
    what: 'retention to leave one segment, the log start at its base',
    describe: ({ bases, current }) => `segments ${bases.join(',')}, offsets ${JSON.stringify(current)}`,
  });
  logStart = retained.current.start;
  logEnd = retained.current.end;
}, 60_000);

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.close()));
  await broker?.cleanup();
});

describe('retention in a broker process', () => {
  it('deleted every sealed segment by time, kept the active one, and logged each round', async () => {
    expect(logStart).toBeGreaterThan(0);
    expect(logEnd).toBe(RECORDS);
    expect(logStart).toBeLessThan(logEnd);
    const rounds = broker.lines.filter((line) => line.includes('deleted segments below log start') && line.includes('reason="retention time"'));
    expect(rounds.length).toBeGreaterThan(0);
    expect(rounds.every((line) => /\bsegments=\d+ bytes=\d+/.test(line) && /\blogStartOffset=\d+/.test(line))).toBe(true);
  });

  it('answers a Fetch below the new log start with OFFSET_OUT_OF_RANGE and the log start offset', async () => {
    const answer = await withRawClient(broker, (client) => client.fetch(TOPIC, 0, 0n));
    expect(answer.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    expect(Number(answer.logStartOffset)).toBe(logStart);
  });

  it("resets a bundled consumer with 'earliest' to the new log start, which then reads on to the end", async () => {
    const reader = consumer('earliest');
    reader.assign([{ topic: TOPIC, partition: 0, offset: 0 }]);
    const read = await take(reader, logEnd - logStart);
    expect(read.map((record) => Number(record.offset))).toEqual(Array.from({ length: logEnd - logStart }, (_, i) => logStart + i));
    expect(read[0]!.value?.toString()).toBe(`value-${logStart}-${'x'.repeat(100)}`);
  });

  it("fails a bundled consumer with 'none' with KafkaOffsetOutOfRangeError", async () => {
    const reader = consumer('none');
    reader.assign([{ topic: TOPIC, partition: 0, offset: 0 }]);
    const failure = await take(reader, 1).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(KafkaOffsetOutOfRangeError);
    expect((failure as Error).message).toContain(`offset 0 is out of range for ${TOPIC}-0`);
  });

  it('resets kafkajs with fromBeginning from a committed offset below the log start to the log start', async () => {
    const groupId = 'retention-kafkajs';
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.setOffsets({ groupId, topic: TOPIC, partitions: [{ partition: 0, offset: '0' }] });
    } finally {
      await admin.disconnect();
    }
    const resets: string[] = [];
    const kafka = new kafkajs.Kafka({
      clientId: 'retention-e2e',
      brokers: [broker.address],
      logLevel: kafkajs.logLevel.ERROR,
      logCreator: () => (entry) => void resets.push(entry.log.message),
      retry: { retries: 3, initialRetryTime: 50, maxRetryTime: 1_000 },
    });
    const kafkaConsumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await kafkaConsumer.connect();
    const offsetsRead: number[] = [];
    let done!: () => void;
    const allRead = new Promise<void>((resolve) => (done = resolve));
    try {
      await kafkaConsumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await kafkaConsumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          offsetsRead.push(Number(message.offset));
          if (offsetsRead.length === logEnd - logStart) done();
        },
      });
      await withTimeout(allRead, WAIT_MS, 'kafkajs to read from the log start');
    } finally {
      await kafkaConsumer.disconnect();
    }
    expect(offsetsRead).toEqual(Array.from({ length: logEnd - logStart }, (_, i) => logStart + i));
    expect(resets).toContain('Offset out of range, resetting to default offset');
  });

  it("moves a bundled consumer with 'latest' to the end, where it reads what is produced next", async () => {
    const reader = consumer('latest');
    reader.assign([{ topic: TOPIC, partition: 0, offset: 0 }]);
    expect(await take(reader, 1, 500)).toEqual([]);
    expect(reader.position(TOPIC, 0)).toBe(BigInt(logEnd));
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 'all' });
    try {
      await producer.send(TOPIC, [{ key: 'fresh', value: 'fresh', partition: 0 }]);
    } finally {
      await producer.close();
    }
    const [record] = await take(reader, 1);
    expect(Number(record!.offset)).toBe(logEnd);
    expect(record!.value?.toString()).toBe('fresh');
  });
});
