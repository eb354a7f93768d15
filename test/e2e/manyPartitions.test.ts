// Issue 18, point 5: a broker with thousands of partitions (4 topics x 500) restarts cleanly, and
// after SIGKILL, with every acknowledged record readable.
//
// Records go out with acks=1 in multi-partition Produce requests (one request a topic a batch
// round, raw through BrokerConnection: a client per partition would be far slower), and the test
// keeps exactly what each Produce response acknowledged (partition, baseOffset, values). The
// default flush policy leaves flushing to the OS; a SIGKILL is not a power loss, so every
// acknowledged write is in the page cache and must survive it. After each restart one Fetch a
// topic (every partition from offset 0, raw, each batch CRC-checked) must return exactly the
// acknowledged records at their offsets, high watermark = acknowledged count, nothing beyond.
//
// The start log's summary line (engine/log/logManager.ts openLogs: `INFO opened partition logs
// partitions= scanned= segmentsScanned= bytesScanned= truncated= cleanShutdown= ms=`) says which
// kind of start it was. The restart bound below is a hang detector, not a speed target.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../client/admin.js';
import { ApiKey, BrokerConnection } from '../../client/connection.js';
import { ErrorCode, errorCodeName } from '../../protocol/errors.js';
import { decodeFetchResponse, decodeProduceResponse, encodeFetchRequest, encodeProduceRequest, type FetchRequest, type ProduceRequest } from '../../protocol/generated/index.js';
import { checkBatch, decodeRecords, encodeBatch } from '../../segments/recordBatch.js';
import { BrokerProcess } from '../support/brokerProcess.js';

const TOPIC_COUNT = 4;
const PARTITIONS_PER_TOPIC = 500;
const PARTITION_COUNT = TOPIC_COUNT * PARTITIONS_PER_TOPIC;
const TOPICS = Array.from({ length: TOPIC_COUNT }, (_, i) => `many-${i}`);
/** Hang detector for every start of the broker (spawn to "broker started", log recovery included). */
const RESTART_BOUND_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
const PRODUCE_TIMEOUT_MS = 30_000;
/** Kafka's consumer defaults; every partition here holds a few hundred bytes, so one round suffices. */
const FETCH_MAX_BYTES = 50 * 1024 * 1024;
const FETCH_PARTITION_MAX_BYTES = 1024 * 1024;
/** Fetch rounds until every partition reached its high watermark; more means the broker made no progress. */
const MAX_FETCH_ROUNDS = 20;
/** Problems shown in a failed assertion (their total is in the message). */
const SHOWN_PROBLEMS = 20;
const SETUP_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 2 * RESTART_BOUND_MS;

const partitionKey = (topic: string, partition: number): string => `${topic}-${partition}`;
const splitKey = (key: string): [string, number] => {
  const at = key.lastIndexOf('-');
  return [key.slice(0, at), Number(key.slice(at + 1))];
};

/** Every acknowledged value by partition and offset, filled in from Produce responses only. */
class AcknowledgedRecords {
  private readonly byPartition = new Map<string, Array<string | undefined>>();
  /** Offsets a response acknowledged a second time: a broker bug, reported at verification. */
  readonly doubleAcknowledged: string[] = [];
  total = 0;

  acknowledge(topic: string, partition: number, baseOffset: number, values: readonly string[]): void {
    const key = partitionKey(topic, partition);
    let log = this.byPartition.get(key);
    if (log === undefined) this.byPartition.set(key, (log = []));
    values.forEach((value, i) => {
      if (log[baseOffset + i] !== undefined) this.doubleAcknowledged.push(`${key}@${baseOffset + i}`);
      log[baseOffset + i] = value;
    });
    this.total += values.length;
  }

  /** The acknowledged values of a partition by offset (holes as undefined). */
  of(topic: string, partition: number): ReadonlyArray<string | undefined> {
    return this.byPartition.get(partitionKey(topic, partition)) ?? [];
  }
}

/** One batch of `count` records; the values name where they were sent, with varied lengths. */
function valuesFor(topic: string, partition: number, round: string, batch: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${topic}/${partition}/${round}/b${batch}/${i}/${'v'.repeat((partition * 13 + batch * 7 + i) % 60)}`);
}

/**
 * Sends batch round after batch round; each round is one acks=1 Produce request a topic (those
 * requests in flight together) holding one batch for every partition `recordsIn` gives records
 * in that round (0: none). Records every acknowledged (partition, baseOffset, values).
 */
async function produceRounds(connection: BrokerConnection, round: string, batchRounds: number, recordsIn: (partition: number, batch: number) => number, acked: AcknowledgedRecords): Promise<void> {
  for (let batch = 0; batch < batchRounds; batch++) {
    await Promise.all(
      TOPICS.map(async (topic) => {
        const sent = new Map<number, string[]>();
        for (let partition = 0; partition < PARTITIONS_PER_TOPIC; partition++) {
          const count = recordsIn(partition, batch);
          if (count > 0) sent.set(partition, valuesFor(topic, partition, round, batch, count));
        }
        if (sent.size === 0) return;
        const request: ProduceRequest = {
          transactionalId: null,
          acks: 1,
          timeoutMs: PRODUCE_TIMEOUT_MS,
          topicData: [{ name: topic, partitionData: [...sent].map(([index, values]) => ({ index, records: encodeBatch(values.map((value) => ({ key: Buffer.from(`k${index}`), value: Buffer.from(value) }))) })) }],
        };
        const response = await connection.request(ApiKey.Produce, (writer, version) => encodeProduceRequest(writer, version, request), decodeProduceResponse, { timeoutMs: REQUEST_TIMEOUT_MS });
        const answers = response.responses.filter((t) => t.name === topic).flatMap((t) => t.partitionResponses);
        expect(answers.map((answer) => answer.index).sort((a, b) => a - b), `Produce to ${topic} (${round}, batch ${batch}) answered every partition sent`).toEqual([...sent.keys()]);
        for (const answer of answers) {
          if (answer.errorCode !== ErrorCode.NONE) throw new Error(`Produce to ${partitionKey(topic, answer.index)} (${round}, batch ${batch}): ${errorCodeName(answer.errorCode)} ${answer.errorMessage ?? ''}`);
          acked.acknowledge(topic, answer.index, Number(answer.baseOffset), sent.get(answer.index)!);
        }
      }),
    );
  }
}

interface PartitionRead {
  highWatermark: number;
  logStartOffset: number;
  records: Array<{ offset: number; value: string | null }>;
}

/**
 * Every record of every partition from offset 0 to its high watermark: one Fetch a topic for all
 * of its partitions not read to their end yet, rounds until none is left. Each batch must pass
 * checkBatch (length, magic, CRC).
 */
async function readEveryPartition(connection: BrokerConnection): Promise<Map<string, PartitionRead>> {
  const reads = new Map<string, PartitionRead>();
  await Promise.all(
    TOPICS.map(async (topic) => {
      const next = new Array<number>(PARTITIONS_PER_TOPIC).fill(0);
      const done = new Array<boolean>(PARTITIONS_PER_TOPIC).fill(false);
      for (let round = 0; done.includes(false); round++) {
        if (round >= MAX_FETCH_ROUNDS) throw new Error(`Fetch from ${topic}: partitions ${done.flatMap((d, p) => (d ? [] : [p])).slice(0, 10).join(', ')} still short of their high watermark after ${MAX_FETCH_ROUNDS} rounds`);
        const partitions = done.flatMap((d, partition) => (d ? [] : [{ partition, currentLeaderEpoch: -1, fetchOffset: BigInt(next[partition]!), logStartOffset: -1n, partitionMaxBytes: FETCH_PARTITION_MAX_BYTES }]));
        const request: FetchRequest = { replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: FETCH_MAX_BYTES, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [{ topic, partitions }], forgottenTopicsData: [], rackId: '' };
        const response = await connection.request(ApiKey.Fetch, (writer, version) => encodeFetchRequest(writer, version, request), decodeFetchResponse, { timeoutMs: REQUEST_TIMEOUT_MS });
        if ((response.errorCode ?? ErrorCode.NONE) !== ErrorCode.NONE) throw new Error(`Fetch from ${topic}: ${errorCodeName(response.errorCode!)}`);
        for (const data of response.responses.filter((t) => t.topic === topic).flatMap((t) => t.partitions)) {
          const key = partitionKey(topic, data.partitionIndex);
          if (data.errorCode !== ErrorCode.NONE) throw new Error(`Fetch from ${key} at ${next[data.partitionIndex]}: ${errorCodeName(data.errorCode)}`);
          let read = reads.get(key);
          if (read === undefined) reads.set(key, (read = { highWatermark: -1, logStartOffset: -1, records: [] }));
          read.highWatermark = Number(data.highWatermark);
          read.logStartOffset = Number(data.logStartOffset ?? -1n);
          const bytes = data.records ?? Buffer.alloc(0);
          for (let position = 0; position < bytes.length; ) {
            const check = checkBatch(bytes, position, bytes.length, { maxBatchBytes: 0x7fffffff });
            if (!check.ok) {
              if (check.problem === 'truncated') break; // a cut last batch (KIP-74): read again next round
              throw new Error(`Fetch from ${key}: bad batch at byte ${position}: ${check.problem} (${check.detail})`);
            }
            for (const record of decodeRecords(bytes, position)) {
              if (record.offset >= next[data.partitionIndex]!) read.records.push({ offset: record.offset, value: record.value?.toString('utf8') ?? null });
            }
            next[data.partitionIndex] = Math.max(next[data.partitionIndex]!, check.header.baseOffset + check.header.lastOffsetDelta + 1);
            position += check.size;
          }
          if (next[data.partitionIndex]! >= read.highWatermark) done[data.partitionIndex] = true;
        }
      }
    }),
  );
  return reads;
}

/**
 * Every partition holds exactly its acknowledged records: value v at its acknowledged offset,
 * offsets 0..n-1 with no gap, no duplicate and nothing past them, high watermark n.
 */
function expectExactlyTheAcknowledgedRecords(reads: ReadonlyMap<string, PartitionRead>, acked: AcknowledgedRecords): void {
  const problems: string[] = acked.doubleAcknowledged.map((where) => `offset acknowledged twice: ${where}`);
  let readRecords = 0;
  for (const topic of TOPICS) {
    for (let partition = 0; partition < PARTITIONS_PER_TOPIC; partition++) {
      const key = partitionKey(topic, partition);
      const expected = acked.of(topic, partition);
      const read = reads.get(key);
      if (read === undefined) {
        problems.push(`${key}: not in any Fetch response`);
        continue;
      }
      readRecords += read.records.length;
      if (expected.includes(undefined)) problems.push(`${key}: the acknowledged offsets have a hole (${expected.findIndex((value) => value === undefined)})`);
      if (read.highWatermark !== expected.length) problems.push(`${key}: high watermark ${read.highWatermark}, ${expected.length} records acknowledged`);
      if (read.logStartOffset !== 0) problems.push(`${key}: log start offset ${read.logStartOffset}, expected 0`);
      const offsets = read.records.map((record) => record.offset);
      if (offsets.join(',') !== expected.map((_, offset) => offset).join(',')) problems.push(`${key}: offsets read [${offsets.join(',')}], acknowledged 0..${expected.length - 1}`);
      for (const record of read.records) {
        if (record.offset < expected.length && record.value !== expected[record.offset]) problems.push(`${key}@${record.offset}: read ${JSON.stringify(record.value)}, acknowledged ${JSON.stringify(expected[record.offset])}`);
      }
    }
  }
  expect(problems.slice(0, SHOWN_PROBLEMS), `${problems.length} problems in ${PARTITION_COUNT} partitions`).toEqual([]);
  expect(readRecords).toBe(acked.total);
}

interface OpenSummary {
  partitions: number;
  scanned: number;
  segmentsScanned: number;
  bytesScanned: number;
  truncated: number;
  cleanShutdown: boolean;
  ms: number;
}

const OPEN_SUMMARY_LINE = / INFO opened partition logs /;

/** The `opened partition logs` line of the broker's current run, as fields (exactly one per start). */
function openSummaryOfThisRun(broker: BrokerProcess): OpenSummary {
  const lines = broker.runLines().filter((line) => OPEN_SUMMARY_LINE.test(line));
  expect(lines, `one "opened partition logs" line in this run\n${broker.stderrTail()}`).toHaveLength(1);
  const line = lines[0]!;
  const fields = new Map([...line.matchAll(/ (\w+)=(\S+)/g)].map((match) => [match[1]!, match[2]!]));
  const count = (name: string): number => {
    const text = fields.get(name);
    if (text === undefined || !/^\d+$/.test(text)) throw new Error(`no whole-number field ${name}= in ${JSON.stringify(line)}`);
    return Number(text);
  };
  const clean = fields.get('cleanShutdown');
  if (clean !== 'true' && clean !== 'false') throw new Error(`no boolean field cleanShutdown= in ${JSON.stringify(line)}`);
  return {
    partitions: count('partitions'),
    scanned: count('scanned'),
    segmentsScanned: count('segmentsScanned'),
    bytesScanned: count('bytesScanned'),
    truncated: count('truncated'),
    cleanShutdown: clean === 'true',
    ms: count('ms'),
  };
}

async function connectTo(broker: BrokerProcess): Promise<BrokerConnection> {
  return BrokerConnection.connect({ host: '127.0.0.1', port: broker.port, clientId: 'tidelog-e2e-many-partitions', requestTimeoutMs: REQUEST_TIMEOUT_MS });
}

/** Reads every partition over a fresh connection, closed afterwards. */
async function readAll(broker: BrokerProcess): Promise<Map<string, PartitionRead>> {
  const connection = await connectTo(broker);
  try {
    return await readEveryPartition(connection);
  } finally {
    connection.destroy();
  }
}

/** Runs `use` over a fresh connection, closed afterwards. */
async function withConnection(broker: BrokerProcess, use: (connection: BrokerConnection) => Promise<void>): Promise<void> {
  const connection = await connectTo(broker);
  try {
    await use(connection);
  } finally {
    connection.destroy();
  }
}

/** Restarts on the same data directory; fails if the start takes longer than the hang detector. */
async function restartWithinBound(broker: BrokerProcess): Promise<number> {
  const startedMs = performance.now();
  await broker.restart();
  const tookMs = performance.now() - startedMs;
  expect(tookMs, `restart took ${Math.round(tookMs)} ms`).toBeLessThan(RESTART_BOUND_MS);
  return tookMs;
}

describe(`a broker with ${PARTITION_COUNT.toLocaleString('en-US')} partitions (${TOPIC_COUNT} topics x ${PARTITIONS_PER_TOPIC})`, () => {
  let broker: BrokerProcess | undefined;
  const acked = new AcknowledgedRecords();

  beforeAll(async () => {
    broker = await BrokerProcess.start({ startTimeoutMs: RESTART_BOUND_MS });
    const admin = createAdmin({ bootstrapServers: [broker.address], clientId: 'tidelog-e2e-many-partitions', requestTimeoutMs: SETUP_TIMEOUT_MS });
    try {
      await admin.createTopics(TOPICS.map((topic) => ({ topic, partitions: PARTITIONS_PER_TOPIC })));
    } finally {
      await admin.close();
    }
    // Every partition: 1 to 3 records; every 4th partition gets 3 batches.
    await withConnection(broker, (connection) => produceRounds(connection, 'first', 3, (partition, batch) => (batch === 0 || partition % 4 === 0 ? 1 + ((partition + batch) % 3) : 0), acked));
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.cleanup();
  });

  it(
    'clean restart (SIGTERM, exit 0): the start opens every partition without a recovery scan, and every acknowledged record is read back at its offset',
    async () => {
      const b = broker!;
      await b.stop(); // throws unless the exit code is 0
      expect(await b.waitForExit(1_000)).toEqual({ code: 0, signal: null });
      expect(existsSync(join(b.dataDir, 'clean-shutdown'))).toBe(true);

      await restartWithinBound(b);
      const summary = openSummaryOfThisRun(b);
      expect(summary).toMatchObject({ cleanShutdown: true, scanned: 0, segmentsScanned: 0, bytesScanned: 0, truncated: 0 });
      expect(summary.partitions).toBeGreaterThanOrEqual(PARTITION_COUNT);
      expectExactlyTheAcknowledgedRecords(await readAll(b), acked);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'SIGKILL after acks=1 produces: the restart recovers every partition, every acknowledged record of both rounds is read back at its offset and nothing else, and appends continue at the acknowledged log end',
    async () => {
      const b = broker!;
      await b.ensureRunning();
      // Every partition: 2 more records; every 6th gets 2 more batches.
      await withConnection(b, (connection) => produceRounds(connection, 'second', 3, (partition, batch) => (batch === 0 || partition % 6 === 0 ? 2 : 0), acked));

      expect(await b.kill()).toEqual({ code: null, signal: 'SIGKILL' });
      expect(existsSync(join(b.dataDir, 'clean-shutdown'))).toBe(false);
      await restartWithinBound(b);
      const summary = openSummaryOfThisRun(b);
      expect(summary.cleanShutdown).toBe(false);
      expect(summary.partitions).toBeGreaterThanOrEqual(PARTITION_COUNT);
      // No Produce was in flight at the kill, so no log had a torn tail to cut.
      expect(summary.truncated).toBe(0);
      expectExactlyTheAcknowledgedRecords(await readAll(b), acked);

      // The recovered log end is where the next append lands, in every partition.
      const before = new Map(TOPICS.flatMap((topic) => Array.from({ length: PARTITIONS_PER_TOPIC }, (_, p) => [partitionKey(topic, p), acked.of(topic, p).length] as const)));
      await withConnection(b, (connection) => produceRounds(connection, 'after-kill', 1, () => 1, acked));
      // One record a partition, acknowledged at the old log end: the log grows by exactly one (an
      // offset acknowledged twice is reported by the read-back below).
      const misplaced = [...before].filter(([key, length]) => acked.of(...splitKey(key)).length !== length + 1).map(([key]) => key);
      expect(misplaced.slice(0, SHOWN_PROBLEMS), `${misplaced.length} partitions where the append after recovery did not land at the log end`).toEqual([]);
      expectExactlyTheAcknowledgedRecords(await readAll(b), acked);
    },
    TEST_TIMEOUT_MS,
  );
});
