// Produce validation under load, against a broker process: 20,000 invalid Produce frames from the
// seeded stream of test/support/invalidBatches.ts (every rule of the contract, every codec, the
// bombs and oversized batches among them) over 4 connections at once, several requests in flight
// on each, interleaved with valid batches whose acknowledged offsets are recorded. Every answer is
// checked as it comes (the exact refusal code; v8: an errorMessage and the record errors). Then:
// the broker is alive, its RSS (sampled every 200 ms) stayed under 300 MB, it logged no ERROR, and
// the log holds exactly the acknowledged records (key, value, headers, timestamp, offset), read by
// kcat and, for a topic of uncompressed and gzip batches only (all kafkajs 2.2.4 decodes), by a
// kafkajs consumer: nothing refused was written.
//
// Flipped bytes in formats without a checksum may decode (see invalidBatches.ts); they are left
// out here (the in-process suite covers them), so that every invalid frame must be refused.
// Replay another run with TIDELOG_PRODUCE_FUZZ_SEED=<seed> (the seed is in the test name).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompressedBatchLimit } from '../../engine/log/appendValidation.js';
import { ErrorCode } from '../../protocol/errors.js';
import { encodeProduceRequest } from '../../protocol/generated/produceRequest.js';
import { decodeProduceResponse, type ProduceResponsePartitionProduceResponse } from '../../protocol/generated/produceResponse.js';
import { BrokerProcess, RawKafkaClient, kafkaFor, withTimeout } from '../support/brokerProcess.js';
import { validBatchWithRecords, type GoodRecord } from '../support/batchDraft.js';
import type { CaseCodec } from '../support/codecFrames.js';
import { DEFAULT_MAX_MESSAGE_BYTES, STRICT_TIMESTAMP_BEFORE_MAX_MS, invalidBatchStream, type CaseTopic, type InvalidBatchCase } from '../support/invalidBatches.js';
import { SeededRandom } from '../support/random.js';
import { kcatConsume, type ReadRecord } from './records.js';

const SEED = Number(process.env.TIDELOG_PRODUCE_FUZZ_SEED ?? 0x0f22_7e57);
const INVALID_FRAMES = 20_000;
/** One valid batch for every this many invalid frames. */
const INVALID_PER_VALID = 8;
const CONNECTIONS = 4;
const IN_FLIGHT_PER_CONNECTION = 4;
/** Bombs and batches over max.message.bytes, as a share of the invalid frames. */
const HEAVY_SHARE = 0.004;
/** The fuzz loop stops here even if frames are left (and the test then fails). */
const FUZZ_BUDGET_MS = 50_000;
const REQUEST_TIMEOUT_MS = 15_000;
const RSS_LIMIT_BYTES = 300 * 1024 * 1024;
const READ_BACK_TIMEOUT_MS = 30_000;
const MAX_REPORTED_PROBLEMS = 20;

/** Topics by what they hold; each default-topic case goes to one of the first two at random. */
const TOPICS = {
  /** Valid batches of every codec, read back by kcat. */
  allCodecs: { name: 'fuzz-all-codecs', partitions: 2, configs: {}, codecs: ['none', 'gzip', 'snappy', 'snappy-xerial', 'lz4', 'zstd'] as CaseCodec[] },
  /** Valid batches kafkajs 2.2.4 can decode (none and gzip), read back by kcat and kafkajs. */
  kafkajsReadable: { name: 'fuzz-none-gzip', partitions: 2, configs: {}, codecs: ['none', 'gzip'] as CaseCodec[] },
  compacted: { name: 'fuzz-compacted', partitions: 1, configs: { 'cleanup.policy': 'compact' }, codecs: ['none', 'gzip', 'lz4', 'zstd'] as CaseCodec[] },
  strictTimestamps: { name: 'fuzz-strict-timestamps', partitions: 1, configs: { 'message.timestamp.before.max.ms': String(STRICT_TIMESTAMP_BEFORE_MAX_MS) }, codecs: ['none', 'snappy', 'snappy-xerial'] as CaseCodec[] },
} as const;
type TopicSpec = (typeof TOPICS)[keyof typeof TOPICS];

function topicsFor(kind: CaseTopic): readonly TopicSpec[] {
  if (kind === 'compacted') return [TOPICS.compacted];
  if (kind === 'strictTimestamps') return [TOPICS.strictTimestamps];
  return [TOPICS.allCodecs, TOPICS.kafkajsReadable];
}

// ---------------------------------------------------------------------------------------------
// The plan: a deterministic sequence of frames (which connection sends which is up to timing)

interface InvalidItem {
  kind: 'invalid';
  testCase: InvalidBatchCase;
  topic: string;
  partition: number;
  version: number;
  acks: number;
}

interface ValidItem {
  kind: 'valid';
  batch: Buffer;
  records: GoodRecord[];
  topic: string;
  partition: number;
  version: number;
  acks: number;
}

type Item = InvalidItem | ValidItem;

function* plan(seed: number, limitBytes: number): Generator<Item, void, undefined> {
  const rng = new SeededRandom(seed);
  const cases = invalidBatchStream(seed, { decompressedLimitBytes: limitBytes, heavyProbability: HEAVY_SHARE, refusedOnly: true });
  const specs = Object.values(TOPICS);
  for (let sent = 0; sent < INVALID_FRAMES; ) {
    if (rng.bool(1 / (INVALID_PER_VALID + 1))) {
      const spec = rng.pick(specs);
      const { batch, records } = validBatchWithRecords(rng, rng.pick(spec.codecs), { keyed: true, textual: true });
      yield { kind: 'valid', batch, records, topic: spec.name, partition: rng.int(0, spec.partitions - 1), version: rng.int(3, 8), acks: rng.pick([-1, 1]) };
      continue;
    }
    const testCase = cases.next().value;
    const spec = rng.pick(topicsFor(testCase.topic ?? 'default'));
    yield { kind: 'invalid', testCase, topic: spec.name, partition: rng.int(0, spec.partitions - 1), version: rng.int(3, 8), acks: rng.pick([-1, 1]) };
    sent++;
  }
}

// ---------------------------------------------------------------------------------------------
// Checking answers

function produceRequest(client: RawKafkaClient, item: Item): Promise<ProduceResponsePartitionProduceResponse> {
  const records = item.kind === 'valid' ? item.batch : item.testCase.batch;
  return client
    .request(
      0,
      item.version,
      (writer, version) => encodeProduceRequest(writer, version, { transactionalId: null, acks: item.acks, timeoutMs: 10_000, topicData: [{ name: item.topic, partitionData: [{ index: item.partition, records }] }] }),
      decodeProduceResponse,
      REQUEST_TIMEOUT_MS,
    )
    .then((response) => {
      const answer = response.responses[0]?.partitionResponses[0];
      if (answer === undefined) throw new Error(`Produce answered without ${item.topic}-${item.partition}`);
      return answer;
    });
}

/** What is wrong with the answer to an invalid frame, or null. */
function refusalProblem(item: InvalidItem, answer: ProduceResponsePartitionProduceResponse): string | null {
  const testCase = item.testCase;
  const codes = [testCase.expected, ...(testCase.alsoAcceptable ?? [])];
  const where = `${testCase.name} (v${item.version} acks=${item.acks}, ${item.topic}-${item.partition})`;
  if (!codes.includes(answer.errorCode)) return `${where}: error ${answer.errorCode} (${answer.errorMessage ?? 'no message'}), expected ${codes.join(' or ')}`;
  if (item.version < 8) return null;
  if (typeof answer.errorMessage !== 'string' || answer.errorMessage.length === 0) return `${where}: no errorMessage`;
  const indexes = (answer.recordErrors ?? []).map((error) => error.batchIndex);
  const allowed =
    testCase.recordIndex !== undefined
      ? [[testCase.recordIndex]]
      : testCase.possibleRecordIndex !== undefined
        ? [[], [testCase.possibleRecordIndex]]
        : [[]];
  if (!allowed.some((expected) => expected.length === indexes.length && expected.every((index, i) => index === indexes[i]))) {
    return `${where}: recordErrors ${JSON.stringify(indexes)}, expected ${allowed.map((expected) => JSON.stringify(expected)).join(' or ')}`;
  }
  return null;
}

interface Acknowledged {
  topic: string;
  partition: number;
  offset: number;
  record: GoodRecord;
}

/** A record in the shape kcat's output is parsed into (text fields). */
function asRead(entry: Acknowledged): ReadRecord {
  return {
    partition: entry.partition,
    offset: entry.offset,
    timestamp: entry.record.timestamp,
    key: entry.record.key?.toString('latin1') ?? '',
    value: entry.record.value?.toString('latin1') ?? '',
    headers: entry.record.headers.map((header) => [header.key.toString('latin1'), header.value?.toString('latin1') ?? '']),
  };
}

const byPosition = (a: { partition: number; offset: number }, b: { partition: number; offset: number }): number => a.partition - b.partition || a.offset - b.offset;

// ---------------------------------------------------------------------------------------------

describe('Produce validation under load (broker process)', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: { 'group.initial.rebalance.delay.ms': '0' } });
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: Object.values(TOPICS).map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
        })),
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it(
    `${INVALID_FRAMES} invalid frames (seed ${SEED}) over ${CONNECTIONS} connections among valid batches: each refused as the contract says, the broker alive, RSS under 300 MB, no ERROR, and exactly the acknowledged records read back by kcat and kafkajs`,
    { timeout: FUZZ_BUDGET_MS + 4 * READ_BACK_TIMEOUT_MS },
    async () => {
      const limitBytes = decompressedBatchLimit(DEFAULT_MAX_MESSAGE_BYTES);
      const firstLine = broker.lineCount;

      const rssBeforeBytes = await broker.rssBytes();

      const items = plan(SEED, limitBytes);
      const acknowledged: Acknowledged[] = [];
      /** The first problems in full, and how many there were of each kind. */
      const problems: string[] = [];
      const problemCounts = new Map<string, number>();
      const report = (kind: string, problem: string): void => {
        problemCounts.set(kind, (problemCounts.get(kind) ?? 0) + 1);
        if (problems.length < MAX_REPORTED_PROBLEMS) problems.push(problem);
      };
      const counts = { invalid: 0, valid: 0, heavy: 0 };
      const startedAt = Date.now();
      const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => RawKafkaClient.connect(broker.port)));

      /** One of the concurrent request loops: takes the next item of the shared plan until none is left. */
      async function lane(client: RawKafkaClient): Promise<void> {
        for (let next = items.next(); !next.done; next = items.next()) {
          if (Date.now() - startedAt > FUZZ_BUDGET_MS) return;
          const item = next.value;
          let answer: ProduceResponsePartitionProduceResponse;
          try {
            answer = await produceRequest(client, item);
          } catch (error) {
            report('no answer', `${item.kind === 'valid' ? 'a valid batch' : item.testCase.name}: no answer (${(error as Error).message})`);
            return;
          }
          if (item.kind === 'valid') {
            counts.valid++;
            if (answer.errorCode !== ErrorCode.NONE) {
              report('valid batch refused', `a valid batch to ${item.topic}-${item.partition} (v${item.version}) was refused: error ${answer.errorCode} (${answer.errorMessage})`);
              continue;
            }
            item.records.forEach((record, i) => acknowledged.push({ topic: item.topic, partition: item.partition, offset: Number(answer.baseOffset) + i, record }));
          } else {
            counts.invalid++;
            if (item.testCase.heavy === true) counts.heavy++;
            const problem = refusalProblem(item, answer);
            if (problem !== null) report(item.testCase.field, problem);
          }
        }
      }

      try {
        await Promise.all(clients.flatMap((client) => Array.from({ length: IN_FLIGHT_PER_CONNECTION }, () => lane(client))));
      } finally {
        for (const client of clients) client.close();
      }
      // The kernel's own high-water mark: every spike counts, not only those a sampler happened to see.
      const rssMaxBytes = await broker.peakRssBytes();
      const fuzzMs = Date.now() - startedAt;
      console.log(
        `produce fuzz (seed ${SEED}): ${counts.invalid} invalid frames (${counts.heavy} bombs or oversized) and ${counts.valid} valid batches in ${fuzzMs} ms; ` +
          `broker RSS ${(rssBeforeBytes / 1048576).toFixed(1)} MiB before, ${(rssMaxBytes / 1048576).toFixed(1)} MiB max`,
      );

      expect({ problemsByKind: Object.fromEntries(problemCounts), first: problems }, `seed ${SEED}`).toEqual({ problemsByKind: {}, first: [] });
      expect(counts.invalid, `every invalid frame sent within ${FUZZ_BUDGET_MS} ms`).toBe(INVALID_FRAMES);
      expect(counts.heavy, 'bombs and oversized batches were among them').toBeGreaterThan(20);
      expect(broker.isAlive()).toBe(true);
      expect(rssMaxBytes, `broker RSS max ${rssMaxBytes} bytes`).toBeLessThan(RSS_LIMIT_BYTES);
      const errorLines = broker.lines.slice(firstLine).filter((line) => / ERROR |\(bug\)|^\s+at /.test(line));
      expect(errorLines.slice(0, 5)).toEqual([]);

      // The log holds exactly what was acknowledged: every offset from 0 to the log end.
      for (const spec of Object.values(TOPICS)) {
        const mine = acknowledged.filter((entry) => entry.topic === spec.name).sort(byPosition);
        for (let partition = 0; partition < spec.partitions; partition++) {
          const offsets = mine.filter((entry) => entry.partition === partition).map((entry) => entry.offset);
          expect(offsets, `${spec.name}-${partition}: acknowledged offsets`).toEqual(offsets.map((_, i) => i));
        }
        const read = await kcatConsume(broker, spec.name, 'beginning', [], READ_BACK_TIMEOUT_MS);
        expect(read.sort(byPosition), `${spec.name} read by kcat`).toEqual(mine.map(asRead));
      }

      // kafkajs (a client nobody here wrote) reads the topic of none and gzip batches.
      const expectedByKafkajs = acknowledged.filter((entry) => entry.topic === TOPICS.kafkajsReadable.name).map(asRead).sort(byPosition);
      const seen: ReadRecord[] = [];
      const consumer = kafkaFor(broker).consumer({ groupId: `fuzz-readers-${SEED}`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: TOPICS.kafkajsReadable.name, fromBeginning: true });
        let done: () => void = () => undefined;
        const complete = new Promise<void>((resolve) => (done = resolve));
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const headers: Array<[string, string]> = Object.entries(message.headers ?? {}).flatMap(([key, value]) =>
              (Array.isArray(value) ? value : [value]).map((one): [string, string] => [key, one === undefined ? '' : one.toString('latin1')]),
            );
            seen.push({ partition, offset: Number(message.offset), timestamp: Number(message.timestamp), key: message.key?.toString('latin1') ?? '', value: message.value?.toString('latin1') ?? '', headers });
            if (seen.length >= expectedByKafkajs.length) done();
          },
        });
        await withTimeout(complete, READ_BACK_TIMEOUT_MS, `kafkajs to read ${expectedByKafkajs.length} records`);
      } finally {
        await consumer.disconnect();
      }
      // kafkajs groups headers by key: compare them as sorted pairs.
      const sortHeaders = (record: ReadRecord): ReadRecord => ({ ...record, headers: [...record.headers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0) || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)) });
      expect(seen.sort(byPosition).map(sortHeaders), 'read by kafkajs').toEqual(expectedByKafkajs.map(sortHeaders));
    },
  );
});
