// Produce validation, in process (a Broker with no sockets, requests through the generated codecs):
// every invalid batch of the seeded generator (test/support/invalidBatches.ts: every rule of the
// contract broken in turn, for uncompressed batches and every codec, plus the bombs) is sent in
// Produce v8 and v7 with acks -1 and 1, and must be refused whole with its error code (v8: an
// errorMessage, and the offending record in recordErrors where the refusal is about one), the
// partition's log end must not move, and a valid batch sent right after must land exactly there.
// Then the regression of the issue, a request with a good and a bad partition, an invalid batch
// among concurrent valid appends to one partition, control cases (what must be accepted), and the
// generator's own checks against its reference validator.
//
// Replay another run with TIDELOG_PRODUCE_SEED=<seed> (the seed is in the describe names).
import { decompress as zstdDecompress } from 'fzstd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompressedBatchLimit } from '../engine/log/appendValidation.js';
import { ErrorCode } from '../protocol/errors.js';
import { encodeApiVersionsRequest } from '../protocol/generated/apiVersionsRequest.js';
import { decodeApiVersionsResponse } from '../protocol/generated/apiVersionsResponse.js';
import { encodeFetchRequest } from '../protocol/generated/fetchRequest.js';
import { decodeFetchResponse } from '../protocol/generated/fetchResponse.js';
import { encodeInitProducerIdRequest } from '../protocol/generated/initProducerIdRequest.js';
import { decodeInitProducerIdResponse } from '../protocol/generated/initProducerIdResponse.js';
import { encodeListOffsetsRequest } from '../protocol/generated/listOffsetsRequest.js';
import { decodeListOffsetsResponse } from '../protocol/generated/listOffsetsResponse.js';
import { encodeProduceRequest } from '../protocol/generated/produceRequest.js';
import { decodeProduceResponse, type ProduceResponsePartitionProduceResponse } from '../protocol/generated/produceResponse.js';
import {
  BASE_SEQUENCE_OFFSET,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  MAGIC_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORD_COUNT_OFFSET,
  checkBatch,
  computeBatchCrc,
  decodeRecords,
  writeInt64FromNumber,
} from '../segments/recordBatch.js';
import { sendRequest, startInProcessBroker, type InProcessBroker } from './support/inProcessBroker.js';
import { batchOfExactSize, goodRecords, validBatch, validBatchWithRecords, type GoodRecord } from './support/batchDraft.js';
import { CASE_CODECS, codecId, zstdFrame, type CaseCodec } from './support/codecFrames.js';
import {
  BROKEN_FIELDS,
  DEFAULT_MAX_MESSAGE_BYTES,
  STRICT_TIMESTAMP_BEFORE_MAX_MS,
  invalidBatchCases,
  invalidBatchStream,
  type CaseTopic,
  type InvalidBatchCase,
} from './support/invalidBatches.js';
import { SeededRandom } from './support/random.js';
import { referenceVerdict } from './support/referenceValidator.js';

const SEED = Number(process.env.TIDELOG_PRODUCE_SEED ?? 0x0b5e_55ed);
const LIMIT_BYTES = decompressedBatchLimit(DEFAULT_MAX_MESSAGE_BYTES);
const CASES = invalidBatchCases(SEED, { decompressedLimitBytes: LIMIT_BYTES });

const TOPICS: Readonly<Record<CaseTopic, string>> = { default: 'plain', compacted: 'compacted', strictTimestamps: 'strict' };
const APPEND_TIME_TOPIC = 'append-time';
const MIXED_TOPIC = 'mixed';
const REGRESSION_TOPIC = 'regression';

interface Mode {
  version: number;
  acks: number;
}
const MODES: readonly Mode[] = [
  { version: 8, acks: -1 },
  { version: 8, acks: 1 },
  { version: 7, acks: -1 },
  { version: 7, acks: 1 },
];
const modeName = (mode: Mode): string => `v${mode.version} acks=${mode.acks}`;

let started: InProcessBroker;

beforeAll(async () => {
  started = await startInProcessBroker();
  const topics = started.broker.topics;
  await topics.create(TOPICS.default, 1, -1, {});
  await topics.create(TOPICS.compacted, 1, -1, { 'cleanup.policy': 'compact' });
  await topics.create(TOPICS.strictTimestamps, 1, -1, { 'message.timestamp.before.max.ms': String(STRICT_TIMESTAMP_BEFORE_MAX_MS) });
  await topics.create(APPEND_TIME_TOPIC, 1, -1, { 'message.timestamp.type': 'LogAppendTime' });
  await topics.create(MIXED_TOPIC, 2, -1, {});
  // The regression topic keeps every default, the flush policy included.
  await topics.create(REGRESSION_TOPIC, 1, -1, {});
});

afterAll(async () => {
  await started?.stop();
});

// ---------------------------------------------------------------------------------------------
// Requests

async function produce(topic: string, partitions: ReadonlyArray<{ index: number; records: Buffer }>, mode: Mode): Promise<ProduceResponsePartitionProduceResponse[]> {
  const response = await sendRequest(started.broker, 0, mode.version, encodeProduceRequest, decodeProduceResponse, {
    transactionalId: null,
    acks: mode.acks,
    timeoutMs: 5_000,
    topicData: [{ name: topic, partitionData: partitions.map((partition) => ({ index: partition.index, records: partition.records })) }],
  });
  const answers = response?.responses.find((answer) => answer.name === topic)?.partitionResponses;
  if (answers === undefined) throw new Error(`Produce ${modeName(mode)} answered without topic ${topic}`);
  return partitions.map((partition) => {
    const answer = answers.find((candidate) => candidate.index === partition.index);
    if (answer === undefined) throw new Error(`Produce ${modeName(mode)} answered without ${topic}-${partition.index}`);
    return answer;
  });
}

async function produceOne(topic: string, records: Buffer, mode: Mode = MODES[0]!, partition = 0): Promise<ProduceResponsePartitionProduceResponse> {
  const [answer] = await produce(topic, [{ index: partition, records }], mode);
  return answer!;
}

/** The log end offset by ListOffsets (latest). */
async function logEnd(topic: string, partition = 0): Promise<number> {
  const response = await sendRequest(started.broker, 2, 2, encodeListOffsetsRequest, decodeListOffsetsResponse, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp: -1n }] }],
  });
  const answer = response?.topics[0]?.partitions[0];
  if (answer === undefined || answer.errorCode !== ErrorCode.NONE) throw new Error(`ListOffsets ${topic}-${partition}: ${JSON.stringify(answer)}`);
  return Number(answer.offset);
}

/** Every whole batch from `fromOffset` to the high watermark, by Fetch; a fetch error throws. */
async function fetchBatches(topic: string, partition: number, fromOffset: number): Promise<Buffer[]> {
  const batches: Buffer[] = [];
  let offset = fromOffset;
  for (let round = 0; round < 10_000; round++) {
    const response = await sendRequest(started.broker, 1, 11, encodeFetchRequest, decodeFetchResponse, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 8 * 1024 * 1024,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: BigInt(offset), logStartOffset: -1n, partitionMaxBytes: 4 * 1024 * 1024 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    const data = response?.responses[0]?.partitions[0];
    if (data === undefined || data.errorCode !== ErrorCode.NONE) throw new Error(`Fetch ${topic}-${partition} at ${offset}: error ${data?.errorCode}`);
    if (offset >= Number(data.highWatermark)) return batches;
    const records = data.records ?? Buffer.alloc(0);
    let position = 0;
    while (position < records.length) {
      const check = checkBatch(records, position, records.length, { maxBatchBytes: 0x7fffffff });
      if (!check.ok && check.problem === 'truncated') break;
      if (!check.ok) throw new Error(`Fetch ${topic}-${partition} at ${offset}: ${check.problem} (${check.detail})`);
      if (check.header.baseOffset + check.header.lastOffsetDelta >= offset) {
        batches.push(Buffer.from(records.subarray(position, position + check.size)));
        offset = check.header.baseOffset + check.header.lastOffsetDelta + 1;
      }
      position += check.size;
    }
  }
  throw new Error(`Fetch ${topic}-${partition}: too many rounds`);
}

/** A batch as stored and served: everything from the magic byte on (base offset and leader epoch are the log's). */
const asServed = (batch: Buffer): string => batch.subarray(MAGIC_OFFSET).toString('hex');

function errorLinesSince(index: number): string[] {
  return started.logger.lines.slice(index).filter((line) => line.level === 'error').map((line) => `${line.message} ${JSON.stringify(line.fields)}`);
}

// ---------------------------------------------------------------------------------------------
// One invalid case in every mode

interface Outcome {
  mode: string;
  errorCode: number;
  /** v8: 'present' for a non-empty message; otherwise the value. */
  errorMessage: string;
  recordErrors: number[] | 'n/a';
  logEndMovedBy: number;
  /** The valid batch sent right after: its answer and where it landed, relative to the log end before it. */
  goodBatch: string;
}

function describeMessage(message: string | null | undefined): string {
  return typeof message === 'string' && message.length > 0 ? 'present' : String(message);
}

/** What the case allows for this outcome (the outcome itself where the case leaves a choice). */
function expectedOutcome(testCase: InvalidBatchCase, mode: Mode, actual: Outcome, batchRecords: number): Outcome {
  const v8 = mode.version >= 8;
  const accepted = testCase.mayBeAccepted === true && actual.errorCode === ErrorCode.NONE;
  if (accepted) {
    return { mode: actual.mode, errorCode: ErrorCode.NONE, errorMessage: v8 ? 'null' : 'n/a', recordErrors: v8 ? [] : 'n/a', logEndMovedBy: batchRecords, goodBatch: 'error 0 at +0' };
  }
  const errorCode = (testCase.alsoAcceptable ?? []).includes(actual.errorCode) ? actual.errorCode : testCase.expected;
  let recordErrors: number[] | 'n/a' = 'n/a';
  if (v8) {
    if (testCase.recordIndex !== undefined) recordErrors = [testCase.recordIndex];
    else if (testCase.possibleRecordIndex !== undefined) {
      const possible = testCase.possibleRecordIndex;
      const allowed = Array.isArray(actual.recordErrors) && (actual.recordErrors.length === 0 || (actual.recordErrors.length === 1 && actual.recordErrors[0] === possible));
      recordErrors = allowed ? actual.recordErrors : [possible];
    } else if (testCase.mayBeAccepted === true && Array.isArray(actual.recordErrors) && actual.recordErrors.length <= 1) {
      recordErrors = actual.recordErrors; // a flip may break any record
    } else recordErrors = [];
  }
  return { mode: actual.mode, errorCode, errorMessage: v8 ? 'present' : 'n/a', recordErrors, logEndMovedBy: 0, goodBatch: 'error 0 at +0' };
}

async function expectRefusedEverywhere(testCase: InvalidBatchCase, rng: SeededRandom): Promise<void> {
  const topic = TOPICS[testCase.topic ?? 'default'];
  const firstLine = started.logger.lines.length;
  const start = await logEnd(topic);
  const expectedServed: string[] = [];
  const actual: Outcome[] = [];
  const expected: Outcome[] = [];
  const claimedRecords = testCase.batch.length >= RECORD_COUNT_OFFSET + 4 ? testCase.batch.readInt32BE(LAST_OFFSET_DELTA_OFFSET) + 1 : 0;
  for (const mode of MODES) {
    const before = await logEnd(topic);
    const answer = await produceOne(topic, testCase.batch, mode);
    const after = await logEnd(topic);
    const good = validBatch(rng, rng.pick(CASE_CODECS), { keyed: true });
    const goodAnswer = await produceOne(topic, good, mode);
    const outcome: Outcome = {
      mode: modeName(mode),
      errorCode: answer.errorCode,
      errorMessage: mode.version >= 8 ? describeMessage(answer.errorMessage) : 'n/a',
      recordErrors: mode.version >= 8 ? (answer.recordErrors ?? []).map((error) => error.batchIndex) : 'n/a',
      logEndMovedBy: after - before,
      goodBatch: `error ${goodAnswer.errorCode} at +${Number(goodAnswer.baseOffset) - after}`,
    };
    actual.push(outcome);
    expected.push(expectedOutcome(testCase, mode, outcome, claimedRecords));
    if (answer.errorCode === ErrorCode.NONE) expectedServed.push(asServed(testCase.batch));
    expectedServed.push(asServed(good));
  }
  const codes = new Set(actual.map((outcome) => outcome.errorCode));
  expect({ outcomes: actual, sameAnswerInEveryMode: codes.size === 1 }, testCase.name).toEqual({ outcomes: expected, sameAnswerInEveryMode: true });
  // Nothing of a refused batch was written: from the old log end on, the log holds exactly the
  // valid batches (and a flipped batch that decoded, byte for byte as sent).
  const served = (await fetchBatches(topic, 0, start)).map(asServed);
  expect(served, `${testCase.name}: the batches from offset ${start} on`).toEqual(expectedServed);
  expect(errorLinesSince(firstLine), `${testCase.name}: ERROR lines`).toEqual([]);
}

function casesByField(cases: readonly InvalidBatchCase[]): Array<[string, InvalidBatchCase[]]> {
  const groups = new Map<string, InvalidBatchCase[]>();
  for (const testCase of cases) groups.set(testCase.field, [...(groups.get(testCase.field) ?? []), testCase]);
  return [...groups.entries()];
}

describe(`Produce refuses every invalid batch whole (seed ${SEED}; v8 and v7, acks -1 and 1)`, () => {
  for (const [field, cases] of casesByField(CASES)) {
    describe(field, () => {
      // '%s' of the name (not '$name', which vitest cuts at 40 characters).
      it.each(cases.map((testCase) => [testCase.name, testCase] as const))('%s', async (_name, testCase) => {
        await expectRefusedEverywhere(testCase, new SeededRandom(SEED ^ CASES.indexOf(testCase)));
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The regression of the issue, and a request with a good and a bad partition

/**
 * A one-record batch that claims 2^31-1 records (valid CRC): lastOffsetDelta 2^31-1 as the issue
 * states it (then recordCount is not lastOffsetDelta + 1 either), or 2^31-2, a header consistent
 * in itself whose only lie is the record count: that one the broker used to accept, moving the log
 * end by 2^31-1 past what the segment's index can address.
 */
function claimsMaxRecords(rng: SeededRandom, lastOffsetDelta: number): Buffer {
  const batch = validBatch(rng, 'none', { count: 1 });
  batch.writeInt32BE(lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  batch.writeInt32BE(0x7fffffff, RECORD_COUNT_OFFSET);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}

interface Sent {
  offset: number;
  record: GoodRecord;
}

function readable(record: { key: Buffer | null; value: Buffer | null; headers: ReadonlyArray<{ key: string | Buffer; value: Buffer | null }>; timestamp: number }): string {
  const hex = (bytes: Buffer | null): string => (bytes === null ? 'null' : bytes.toString('hex'));
  return `${hex(record.key)}|${hex(record.value)}|${record.headers.map((header) => `${header.key.toString()}=${hex(header.value)}`).join(',')}|${record.timestamp}`;
}

const REGRESSION_VARIANTS = [
  { name: 'lastOffsetDelta and recordCount 2^31-1', lastOffsetDelta: 0x7fffffff },
  { name: 'recordCount 2^31-1 = lastOffsetDelta + 1', lastOffsetDelta: 0x7ffffffe },
];

describe(`the regression: a one-record batch claiming 2^31-1 records, on a default-flush topic (seed ${SEED})`, () => {
  it.each(REGRESSION_VARIANTS.map((variant) => [variant.name, variant] as const))(
    '%s: refused with INVALID_RECORD before and among 1,000 good appends, which all read back by Fetch',
    { timeout: 120_000 },
    async (_name, variant) => {
      const rng = new SeededRandom(SEED ^ variant.lastOffsetDelta);
      const firstLine = started.logger.lines.length;
      const start = await logEnd(REGRESSION_TOPIC);
      const sent: Sent[] = [];
      const refusals: string[] = [];
      const goodFailures: string[] = [];
      const good = async (): Promise<void> => {
        const { batch, records } = validBatchWithRecords(rng, rng.pick(CASE_CODECS), { keyed: rng.bool(0.5) });
        const answer = await produceOne(REGRESSION_TOPIC, batch, rng.pick(MODES));
        if (answer.errorCode !== ErrorCode.NONE) goodFailures.push(`error ${answer.errorCode} (${answer.errorMessage ?? 'no message'})`);
        else records.forEach((record, i) => sent.push({ offset: Number(answer.baseOffset) + i, record }));
      };
      const bad = async (mode: Mode): Promise<void> => {
        const answer = await produceOne(REGRESSION_TOPIC, claimsMaxRecords(rng, variant.lastOffsetDelta), mode);
        refusals.push(`${modeName(mode)}: error ${answer.errorCode}`);
      };

      for (const mode of MODES) await bad(mode);
      for (let i = 0; i < 500; i++) await good();
      // Once more racing good appends (queued behind the writer, not alone), and once to an idle log.
      await Promise.all([bad(MODES[0]!), ...Array.from({ length: 20 }, () => good()), bad(MODES[2]!)]);
      for (let i = 0; i < 480; i++) await good();
      await bad(MODES[1]!);

      sent.sort((a, b) => a.offset - b.offset);
      const readBack = await fetchBatches(REGRESSION_TOPIC, 0, start).then(
        (batches) => batches.flatMap((batch) => decodeRecords(batch)).map((record) => `${record.offset}|${readable(record)}`),
        (error: unknown) => [`read failed: ${(error as Error).message}`],
      );
      expect({
        refusals,
        goodFailures,
        goodOffsets: `${sent[0]?.offset}..${sent.at(-1)?.offset} (${sent.length} records)`,
        logEnd: await logEnd(REGRESSION_TOPIC),
        readBack,
        errorLines: errorLinesSince(firstLine),
      }).toEqual({
        refusals: [...MODES, MODES[0]!, MODES[2]!, MODES[1]!].map((mode) => `${modeName(mode)}: error ${ErrorCode.INVALID_RECORD}`),
        goodFailures: [],
        goodOffsets: `${start}..${start + sent.length - 1} (${sent.length} records)`,
        logEnd: start + sent.length,
        readBack: sent.map((entry) => `${entry.offset}|${readable(entry.record)}`),
        errorLines: [],
      });
    },
  );
});

/** One case per expected error code, and one per rule of the compressed ones (default topic, never possibly accepted). */
function oneCasePerCode(): InvalidBatchCase[] {
  const picked = new Map<number | string, InvalidBatchCase>();
  for (const testCase of CASES) {
    if ((testCase.topic ?? 'default') !== 'default' || testCase.mayBeAccepted === true) continue;
    if (testCase.field.startsWith('compressed area') && !picked.has(testCase.field)) picked.set(testCase.field, testCase);
    if (!picked.has(testCase.expected)) picked.set(testCase.expected, testCase);
  }
  return [...picked.values()];
}

describe(`a request with a good and a bad partition (seed ${SEED})`, () => {
  it.each(oneCasePerCode().map((testCase) => [testCase.name, testCase] as const))('only the bad partition is refused: %s', async (_name, testCase) => {
    const rng = new SeededRandom(SEED ^ 0x3a3a);
    for (const mode of MODES) {
      for (const badIndex of [0, 1]) {
        const goodIndex = 1 - badIndex;
        const ends = [await logEnd(MIXED_TOPIC, 0), await logEnd(MIXED_TOPIC, 1)];
        const good = validBatch(rng, rng.pick(CASE_CODECS));
        const goodEntry = { index: goodIndex, records: good };
        const badEntry = { index: badIndex, records: testCase.batch };
        const order = rng.bool(0.5) ? [goodEntry, badEntry] : [badEntry, goodEntry];
        const answers = await produce(MIXED_TOPIC, order, mode);
        const goodAnswer = answers[order.indexOf(goodEntry)];
        const badAnswer = answers[order.indexOf(badEntry)];
        const after = [await logEnd(MIXED_TOPIC, 0), await logEnd(MIXED_TOPIC, 1)];
        const v8 = mode.version >= 8;
        expect(
          {
            good: { errorCode: goodAnswer!.errorCode, baseOffset: Number(goodAnswer!.baseOffset), errorMessage: v8 ? String(goodAnswer!.errorMessage) : 'n/a', logEnd: after[goodIndex] },
            bad: { errorCode: badAnswer!.errorCode, errorMessage: v8 ? describeMessage(badAnswer!.errorMessage) : 'n/a', logEnd: after[badIndex] },
          },
          `${modeName(mode)}, bad batch on partition ${badIndex}`,
        ).toEqual({
          good: { errorCode: ErrorCode.NONE, baseOffset: ends[goodIndex], errorMessage: v8 ? 'null' : 'n/a', logEnd: ends[goodIndex]! + good.readInt32BE(RECORD_COUNT_OFFSET) },
          bad: { errorCode: testCase.expected, errorMessage: v8 ? 'present' : 'n/a', logEnd: ends[badIndex] },
        });
      }
    }
  });
});

/** The first case of every rule (never possibly accepted). */
function oneCasePerField(): InvalidBatchCase[] {
  const picked = new Map<string, InvalidBatchCase>();
  for (const testCase of CASES) if (testCase.mayBeAccepted !== true && !picked.has(testCase.field)) picked.set(testCase.field, testCase);
  return [...picked.values()];
}

describe(`an invalid batch among concurrent valid appends to the same partition (seed ${SEED})`, () => {
  it.each(oneCasePerField().map((testCase) => [testCase.name, testCase] as const))('only the invalid batch is refused: %s', async (_name, testCase) => {
    const rng = new SeededRandom(SEED ^ 0xc0c0);
    const topic = TOPICS[testCase.topic ?? 'default'];
    const firstLine = started.logger.lines.length;
    // Sent without waiting for answers: the invalid batch first (to an idle partition, so the
    // writer may take it at once), then among the valid ones; versions and acks mixed.
    for (const badAt of [0, 2]) {
      const start = await logEnd(topic);
      const goods = Array.from({ length: 4 }, () => validBatch(rng, rng.pick(CASE_CODECS), { keyed: true }));
      const sent = [...goods];
      sent.splice(badAt, 0, testCase.batch);
      const answers = await Promise.all(sent.map((batch, i) => produceOne(topic, batch, MODES[i % MODES.length]!)));
      const goodAnswers = answers.filter((_, i) => i !== badAt);
      expect({ bad: answers[badAt]!.errorCode, goods: goodAnswers.map((answer) => `error ${answer.errorCode} (${answer.errorMessage ?? 'no message'})`) }, `invalid batch sent as request ${badAt + 1} of 5`).toEqual({
        bad: testCase.expected,
        goods: goods.map(() => 'error 0 (no message)'),
      });
      // The log from the old end holds exactly the valid batches, in the order of their offsets.
      const byOffset = goods.map((batch, i) => ({ batch, offset: Number(goodAnswers[i]!.baseOffset) })).sort((a, b) => a.offset - b.offset);
      expect((await fetchBatches(topic, 0, start)).map(asServed)).toEqual(byOffset.map((entry) => asServed(entry.batch)));
    }
    expect(errorLinesSince(firstLine)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Control cases: what must be accepted

describe('valid batches are accepted (control cases)', () => {
  it('Produce v8 is advertised', async () => {
    const response = await sendRequest(started.broker, 18, 2, encodeApiVersionsRequest, decodeApiVersionsResponse, {});
    expect(response?.apiKeys.find((api) => api.apiKey === 0)).toMatchObject({ minVersion: 0, maxVersion: 8 });
  });

  const controls: Array<{ name: string; codec: CaseCodec; topic: CaseTopic }> = CASE_CODECS.flatMap((codec) =>
    (['default', 'compacted', 'strictTimestamps'] as const).map((topic) => ({ name: `${codec} on the ${topic} topic`, codec, topic })),
  );
  it.each(controls.map((control) => [control.name, control] as const))('a valid batch, %s, in every mode: accepted at the log end, no message, no record errors, served byte for byte', async (_name, { codec, topic }) => {
    const rng = new SeededRandom(SEED ^ codecId(codec) ^ topic.length);
    const name = TOPICS[topic];
    const start = await logEnd(name);
    const sent: string[] = [];
    for (const mode of MODES) {
      const batch = validBatch(rng, codec, { keyed: topic === 'compacted' });
      const end = await logEnd(name);
      const answer = await produceOne(name, batch, mode);
      expect({ errorCode: answer.errorCode, baseOffset: Number(answer.baseOffset), errorMessage: answer.errorMessage ?? null, recordErrors: answer.recordErrors ?? [] }, modeName(mode)).toEqual({
        errorCode: ErrorCode.NONE,
        baseOffset: end,
        errorMessage: null,
        recordErrors: [],
      });
      sent.push(asServed(batch));
    }
    expect((await fetchBatches(name, 0, start)).map(asServed)).toEqual(sent);
  });

  it('a record 2 days old is accepted where message.timestamp.before.max.ms keeps its default (no bound)', async () => {
    const rng = new SeededRandom(SEED ^ 0x2d);
    const records = goodRecords(rng, { count: 3 });
    records[1]!.timestamp = Date.now() - 2 * 86_400_000;
    expect((await produceOne(TOPICS.default, validBatch(rng, 'none', { records }))).errorCode).toBe(ErrorCode.NONE);
  });

  it('a record 50 minutes ahead is accepted (message.timestamp.after.max.ms is one hour)', async () => {
    const rng = new SeededRandom(SEED ^ 0x50);
    const records = goodRecords(rng, { count: 2 });
    records[0]!.timestamp = Date.now() + 50 * 60_000;
    for (const topic of [TOPICS.default, TOPICS.strictTimestamps]) expect((await produceOne(topic, validBatch(rng, 'gzip', { records }))).errorCode, topic).toBe(ErrorCode.NONE);
  });

  it('a LogAppendTime topic does not check timestamps: 30 days ahead and 400 days behind are accepted', async () => {
    const rng = new SeededRandom(SEED ^ 0x1a7);
    for (const shift of [30 * 86_400_000, -400 * 86_400_000]) {
      const records = goodRecords(rng, { count: 2 });
      records[1]!.timestamp = Date.now() + shift;
      for (const mode of MODES) {
        const answer = await produceOne(APPEND_TIME_TOPIC, validBatch(rng, rng.pick(CASE_CODECS), { records }), mode);
        expect({ errorCode: answer.errorCode, stamped: answer.logAppendTimeMs !== -1n }, `${modeName(mode)}, shift ${shift}`).toEqual({ errorCode: ErrorCode.NONE, stamped: true });
      }
    }
  });

  it(`a batch of exactly max.message.bytes (${DEFAULT_MAX_MESSAGE_BYTES}) is accepted; one byte more is MESSAGE_TOO_LARGE`, async () => {
    const rng = new SeededRandom(SEED ^ 0x10000c);
    const end = await logEnd(TOPICS.default);
    expect((await produceOne(TOPICS.default, batchOfExactSize(rng, DEFAULT_MAX_MESSAGE_BYTES + 1))).errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect(await logEnd(TOPICS.default)).toBe(end);
    expect(await produceOne(TOPICS.default, batchOfExactSize(rng, DEFAULT_MAX_MESSAGE_BYTES))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: BigInt(end) });
  });

  it('an idempotent batch (producer id from InitProducerId, epoch and sequence from 0) is accepted', async () => {
    const init = await sendRequest(started.broker, 22, 1, encodeInitProducerIdRequest, decodeInitProducerIdResponse, { transactionalId: null, transactionTimeoutMs: 60_000 });
    expect(init?.errorCode).toBe(ErrorCode.NONE);
    const rng = new SeededRandom(SEED ^ 0x1d);
    let sequence = 0;
    for (const codec of CASE_CODECS) {
      const batch = validBatch(rng, codec);
      writeInt64FromNumber(batch, PRODUCER_ID_OFFSET, Number(init!.producerId));
      batch.writeInt16BE(init!.producerEpoch, PRODUCER_EPOCH_OFFSET);
      batch.writeInt32BE(sequence, BASE_SEQUENCE_OFFSET);
      batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
      sequence += batch.readInt32BE(RECORD_COUNT_OFFSET);
      expect((await produceOne(TOPICS.default, batch)).errorCode, codec).toBe(ErrorCode.NONE);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The generator's own checks (no broker): each case breaks its rule and nothing else

describe(`the invalid batch generator (seed ${SEED})`, () => {
  const verdictOf = (testCase: InvalidBatchCase, nowMs: number): ReturnType<typeof referenceVerdict> =>
    referenceVerdict(testCase.batch, { topic: testCase.topic ?? 'default', nowMs, limitBytes: LIMIT_BYTES });

  /** Where the reference validator disagrees with what a case expects (empty: it agrees). */
  function disagreements(cases: Iterable<InvalidBatchCase>, nowMs: number): string[] {
    const problems: string[] = [];
    for (const testCase of cases) {
      const verdict = verdictOf(testCase, nowMs);
      if (verdict === null) {
        problems.push(`${testCase.name}: beyond the reference validator`);
        continue;
      }
      if (testCase.mayBeAccepted === true && verdict.code === ErrorCode.NONE) continue;
      const codes = [testCase.expected, ...(testCase.alsoAcceptable ?? [])];
      const index = testCase.recordIndex ?? testCase.possibleRecordIndex;
      if (!codes.includes(verdict.code) || (testCase.mayBeAccepted !== true && verdict.recordIndex !== index)) {
        problems.push(`${testCase.name}: reference says ${verdict.code} at record ${verdict.recordIndex} (${verdict.reason}); case expects ${codes.join(' or ')} at record ${index}`);
      }
    }
    return problems;
  }

  it('every listed case is refused by the reference validator with its code and record', () => {
    expect(disagreements(CASES, Date.now()).slice(0, 20)).toEqual([]);
  });

  it('20,000 cases of the stream agree with the reference validator too, and the stream replays from its seed', () => {
    const nowMs = Date.now();
    const options = { decompressedLimitBytes: LIMIT_BYTES, nowMs: () => nowMs, heavyProbability: 0 };
    const stream = invalidBatchStream(SEED, options);
    const drawn = Array.from({ length: 20_000 }, () => stream.next().value);
    expect(disagreements(drawn, nowMs).slice(0, 20)).toEqual([]);
    const again = invalidBatchStream(SEED, options);
    for (const testCase of drawn.slice(0, 500)) {
      const replayed = again.next().value;
      expect({ name: replayed.name, batch: replayed.batch.toString('hex') }).toEqual({ name: testCase.name, batch: testCase.batch.toString('hex') });
    }
  });

  it('every CRC is right except in the cases of the crc rule', () => {
    const wrong = CASES.filter((testCase) => {
      const batch = testCase.batch;
      if (batch.length < RECORD_COUNT_OFFSET + 4 || batch.readInt32BE(8) + 12 !== batch.length) return false; // cut or overlong: no whole batch to sum
      return batch.readUInt32BE(CRC_OFFSET) !== computeBatchCrc(batch);
    });
    expect(new Set(wrong.map((testCase) => testCase.field))).toEqual(new Set(['crc']));
    expect(wrong.length).toBe(CASES.filter((testCase) => testCase.field === 'crc').length);
  });

  it('breaks every rule of the contract, for every codec it applies to, with unique names', () => {
    const contract = [
      'batchLength smaller than a batch header',
      'batchLength past the bytes present (truncated)',
      'magic 3 or more, or negative',
      'magic 0 or 1 (legacy message format)',
      'crc',
      'compression codec id 5, 6 or 7',
      'compressed area truncated',
      'compressed area is garbage',
      'compressed area with flipped bytes',
      'batch over max.message.bytes',
      'compressed area decompresses past the limit (bomb)',
      'recordCount 0 or negative',
      'recordCount not lastOffsetDelta + 1',
      'lastOffsetDelta negative',
      'fewer records than recordCount',
      'bytes left over after recordCount records',
      'record length negative',
      'record length past the records area',
      'record offset deltas not 0, 1, 2, ...',
      'varint longer than 5 bytes',
      'keyLength below -1',
      "keyLength past the record's end",
      'valueLength below -1',
      "valueLength past the record's end",
      'headerCount negative',
      'headerCount more than the bytes allow',
      'header with a null key',
      "header keyLength past the record's end",
      "header valueLength past the record's end",
      'unexplained bytes after the headers',
      'control flag set by a client',
      'transactional flag without a producer id',
      'producer id with a negative baseSequence',
      'producer id with a negative producerEpoch',
      'producerId below -1',
      'delete horizon flag set',
      'keyless record on a compacted topic',
      'timestamp ahead of message.timestamp.after.max.ms',
      'timestamp behind message.timestamp.before.max.ms',
    ];
    const fields = new Set(CASES.map((testCase) => testCase.field));
    expect(contract.filter((field) => !fields.has(field))).toEqual([]);
    for (const field of BROKEN_FIELDS) {
      const codecs = new Set(CASES.filter((testCase) => testCase.field === field).map((testCase) => testCase.codec));
      const expectedCodecs = field === 'compression codec id 5, 6 or 7' ? ['none'] : field.startsWith('compressed area') ? CASE_CODECS.filter((codec) => codec !== 'none') : CASE_CODECS;
      expect([...codecs].sort(), field).toEqual([...expectedCodecs].sort());
    }
    for (const codec of CASE_CODECS) expect(CASES.some((testCase) => testCase.field === 'batch over max.message.bytes' && testCase.codec === codec), codec).toBe(true);
    expect(new Set(CASES.map((testCase) => testCase.name)).size).toBe(CASES.length);
  });

  it('the bombs are under max.message.bytes compressed, and each codec has one', () => {
    const bombs = CASES.filter((testCase) => testCase.field === 'compressed area decompresses past the limit (bomb)');
    expect(new Set(bombs.map((bomb) => bomb.codec))).toEqual(new Set(CASE_CODECS.filter((codec) => codec !== 'none')));
    for (const bomb of bombs) expect(bomb.batch.length, bomb.name).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES);
  });

  it('hand-made zstd frames (Raw and RLE blocks, every Frame_Content_Size width) decode with fzstd', () => {
    const rng = new SeededRandom(SEED ^ 0x28b52ffd);
    for (let i = 0; i < 300; i++) {
      const data = Buffer.concat([rng.bytes(rng.int(0, 300)), Buffer.alloc(rng.int(0, 300_000), rng.int(0, 255)), rng.bytes(rng.int(0, 70_000)), Buffer.alloc(rng.int(0, 40), 7)]);
      expect(Buffer.from(zstdDecompress(zstdFrame(data, rng))).equals(data), `frame ${i} of ${data.length} bytes`).toBe(true);
    }
  });

  it('valid batches of every codec decode with the segment codec and pass the reference validator', () => {
    const rng = new SeededRandom(SEED ^ 0x7a1d);
    const nowMs = Date.now();
    for (let i = 0; i < 200; i++) {
      for (const codec of CASE_CODECS) {
        const { batch, records } = validBatchWithRecords(rng, codec, { keyed: true, nowMs });
        expect(decodeRecords(batch).map(readable), codec).toEqual(records.map(readable));
        for (const topic of ['default', 'compacted', 'strictTimestamps'] as const) {
          expect(referenceVerdict(batch, { topic, nowMs, limitBytes: LIMIT_BYTES }), `${codec} on ${topic}`).toEqual({ code: ErrorCode.NONE, reason: 'accepted' });
        }
      }
    }
  });
});
