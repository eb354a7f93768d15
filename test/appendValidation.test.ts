// Append validation at the log (engine/log/appendValidation.ts through PartitionLog.append): the
// regression that made a partition unreadable, call order kept when some appends validate
// asynchronously, the decompression budget under many bombs, header normalisation, and the read
// side for batches an older version stored without validation.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { withCompressedArea } from '../bench/benchRun.js';
import { AppendValidator, appendPolicyOf, decompressedBatchLimit } from '../engine/log/appendValidation.js';
import { DecompressionBudget } from '../engine/log/decompressionBudget.js';
import { InvalidRecordsError, InvalidStoredBatchError, ValidationBusyError } from '../engine/errors.js';
import { resolveLogConfig } from '../engine/log/logConfig.js';
import { PartitionLog } from '../engine/log/partitionLog.js';
import { verifyPartitionDir } from '../engine/log/verification/partitionVerifier.js';
import {
  ATTRIBUTES_OFFSET,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  RECORD_COUNT_OFFSET,
  computeBatchCrc,
  decodeRecords,
  encodeBatch,
  readBatchHeader,
  writeInt64FromNumber,
} from '../segments/recordBatch.js';
import { RECORDS_VALIDATED_MARKER } from '../segments/segmentNames.js';
import { labelledBatch, openTestLog, readAll, temporaryDirectory, testResources, useFreshLogs, type TestLog } from './support/logs.js';
import { ManualClock } from '../engine/clock.js';
import { MemoryLogger } from '../engine/logger.js';

const T0 = 1_700_000_000_000;
const { cleanups, freshLog } = useFreshLogs();

/** Rewrites header fields of a batch and fixes its CRC, so only the contents are wrong. */
function withHeader(batch: Buffer, change: (batch: Buffer) => void): Buffer {
  const copy = Buffer.from(batch);
  change(copy);
  copy.writeUInt32BE(computeBatchCrc(copy), CRC_OFFSET);
  return copy;
}

/** A one-record batch whose records area is replaced by `area` (compressed or not), with a correct CRC. */
function batchAround(area: Buffer, codec: number): Buffer {
  return withCompressedArea(encodeBatch([{ key: Buffer.from('k'), value: Buffer.from('v'), timestamp: T0 }]), codec, area);
}

async function refusal(promise: Promise<unknown>): Promise<InvalidRecordsError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InvalidRecordsError);
  return error as InvalidRecordsError;
}

describe('append validation at the log', () => {
  it('refuses a batch claiming 2^31-1 records while holding one, under the default flush policy, and every later append stays readable', async () => {
    const { log, config } = await freshLog();
    expect(config.flush.mode).toBe('os');
    await log.append(labelledBatch('before', 3, T0));
    const liar = withHeader(labelledBatch('liar', 1, T0), (batch) => {
      batch.writeInt32BE(0x7fffffff - 1, LAST_OFFSET_DELTA_OFFSET);
      batch.writeInt32BE(0x7fffffff, RECORD_COUNT_OFFSET);
    });
    const error = await refusal(log.append(liar));
    expect(error.kafkaErrorCode).toBe(87);
    expect(log.logEndOffset).toBe(3);
    for (let i = 0; i < 1000; i++) await log.append(labelledBatch(`after${i}`, 2, T0 + i));
    const values = (await readAll(log)).flatMap((batch) => decodeRecords(batch).map((record) => record.value!.toString()));
    expect(values).toHaveLength(3 + 2000);
    expect(values.slice(0, 4)).toEqual(['before-0', 'before-1', 'before-2', 'after0-0']);
    expect(values.at(-1)).toBe('after999-1');
  });

  it('gives offsets in call order when an earlier append validates asynchronously (gzip) and a later one at once', async () => {
    const { log } = await freshLog();
    const compressed = encodeBatch(Array.from({ length: 50 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(100, i), timestamp: T0 })), { compression: 'gzip' });
    const plain = labelledBatch('plain', 5, T0);
    const [first, second, third] = await Promise.all([log.append(compressed), log.append(plain), log.append(labelledBatch('late', 1, T0))]);
    expect([first.baseOffset, second.baseOffset, third.baseOffset]).toEqual([0, 50, 55]);
  });

  it('keeps an idempotent producer in sequence when its pipelined batches mix gzip and plain ones', async () => {
    const { log } = await freshLog();
    const appends: Array<Promise<unknown>> = [];
    let sequence = 0;
    for (let i = 0; i < 20; i++) {
      const records = Array.from({ length: 3 }, (_, r) => ({ key: Buffer.from(`k${r}`), value: Buffer.from(`v${i}-${r}`), timestamp: T0 }));
      appends.push(log.append(encodeBatch(records, { producerId: 7, producerEpoch: 0, baseSequence: sequence, compression: i % 3 === 0 ? 'gzip' : 'none' })));
      sequence += 3;
    }
    const results = (await Promise.all(appends)) as Array<{ baseOffset: number }>;
    expect(results.map((result) => result.baseOffset)).toEqual(Array.from({ length: 20 }, (_, i) => i * 3));
  });

  it('refuses a keyless record on a compacted topic with its index, and a record an hour and more ahead', async () => {
    const compacted = await freshLog({ cleanupPolicy: 'compact' });
    const keyless = encodeBatch([{ key: Buffer.from('a'), value: null, timestamp: T0 }, { key: null, value: Buffer.from('x'), timestamp: T0 }]);
    const keylessError = await refusal(compacted.log.append(keyless));
    expect({ code: keylessError.kafkaErrorCode, records: keylessError.recordErrors.map((record) => record.batchIndex) }).toEqual({ code: 87, records: [1] });

    const { log, clock } = await freshLog();
    const future = encodeBatch([{ key: null, value: null, timestamp: clock.nowMs() }, { key: null, value: null, timestamp: clock.nowMs() + 3_600_001 }]);
    const futureError = await refusal(log.append(future));
    expect({ code: futureError.kafkaErrorCode, records: futureError.recordErrors.map((record) => record.batchIndex) }).toEqual({ code: 32, records: [1] });
    await log.append(encodeBatch([{ key: null, value: null, timestamp: clock.nowMs() + 3_600_000 }]));
    expect(log.logEndOffset).toBe(1);
  });

  it('sets a CreateTime batch header to its true maximum timestamp, with a CRC that matches', async () => {
    const { log } = await freshLog();
    const lying = withHeader(labelledBatch('t', 3, T0), (batch) => writeInt64FromNumber(batch, MAX_TIMESTAMP_OFFSET, T0 + 99_999));
    await log.append(lying);
    const [stored] = await readAll(log);
    expect(readBatchHeader(stored!).maxTimestamp).toBe(T0 + 2);
    expect(stored!.readUInt32BE(CRC_OFFSET)).toBe(computeBatchCrc(stored!));
  });

  it('clears a LogAppendTime flag a client set on a CreateTime topic, as Kafka rewrites it, with a CRC that matches', async () => {
    const { log } = await freshLog();
    const flagged = withHeader(labelledBatch('f', 2, T0), (batch) => batch.writeInt16BE(0x08, ATTRIBUTES_OFFSET));
    await log.append(flagged);
    const [stored] = await readAll(log);
    expect({ attributes: readBatchHeader(stored!).attributes, maxTimestamp: readBatchHeader(stored!).maxTimestamp, crcMatches: stored!.readUInt32BE(CRC_OFFSET) === computeBatchCrc(stored!) }).toEqual({ attributes: 0, maxTimestamp: T0 + 1, crcMatches: true });
  });

  it('rolls by the offsets a batch will really get: an append that would pass 2^31 offsets from the segment base goes to a new segment', async () => {
    // A compacted log may hold offset gaps (a follower or the cleaner writes them), so its next
    // offset can sit just under 2^31 above its active segment's base.
    const { log } = await freshLog({ cleanupPolicy: 'compact' });
    const nearEnd = 2 ** 31 - 5;
    const copy = encodeBatch([{ key: Buffer.from('k'), value: Buffer.from('far'), timestamp: T0 }], { baseOffset: nearEnd, partitionLeaderEpoch: 0 });
    await log.appendWithOffsets(encodeBatch([{ key: Buffer.from('k'), value: Buffer.from('first'), timestamp: T0 }], { baseOffset: 0, partitionLeaderEpoch: 0 }));
    await log.appendWithOffsets(copy);
    expect(log.segmentCount).toBe(1);
    // Let the writer go idle, so the append may take the lone-append path that decides on its own.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Ten records at nearEnd + 1: their last offset is 2^31 + 5 above the base, past a 32-bit relative offset.
    const result = await log.append(labelledBatch('ten', 10, T0));
    expect(result).toMatchObject({ baseOffset: nearEnd + 1, lastOffset: nearEnd + 10 });
    expect(log.segmentCount).toBe(2);
    const read = await log.read(nearEnd + 1, 1024 * 1024);
    expect(decodeRecords(read.records).map((record) => record.value!.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `ten-${i}`));
  });

  it('refuses gzip bombs with MESSAGE_TOO_LARGE while never reserving more than the budget, and stays usable', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const budget = new DecompressionBudget({ capacityBytes: 2 * decompressedBatchLimit(1024 * 1024), maxWaiters: 100 });
    const log = await PartitionLog.open({ dir: dir.path, config: resolveLogConfig(), resources: testResources(), clock: new ManualClock(), logger: new MemoryLogger(), recoveryPoint: 0, cleanShutdown: true, validator: new AppendValidator({ budget }) });
    cleanups.push(() => log.close());
    const bomb = batchAround(gzipSync(Buffer.alloc(64 * 1024 * 1024)), 1);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => log.append(Buffer.from(bomb)).then(() => 'accepted', (error: unknown) => (error as InvalidRecordsError).kafkaErrorCode)));
    expect(outcomes).toEqual(Array(8).fill(10));
    expect(budget.peakReservedBytes).toBeLessThanOrEqual(budget.capacityBytes);
    expect(budget.reserved).toBe(0);
    await log.append(labelledBatch('ok', 1, T0));
    expect(log.logEndOffset).toBe(1);
  });

  it('refuses undecodable gzip, an unknown codec and a control batch; nothing of them is written', async () => {
    const { log } = await freshLog();
    const garbage = batchAround(Buffer.from('definitely not gzip'), 1);
    const unknownCodec = withHeader(labelledBatch('u', 1, T0), (batch) => batch.writeInt16BE(5, ATTRIBUTES_OFFSET));
    const control = withHeader(labelledBatch('c', 1, T0), (batch) => batch.writeInt16BE(0x20, ATTRIBUTES_OFFSET));
    expect([(await refusal(log.append(garbage))).kafkaErrorCode, (await refusal(log.append(unknownCodec))).kafkaErrorCode, (await refusal(log.append(control))).kafkaErrorCode]).toEqual([2, 2, 87]);
    expect(log.logEndOffset).toBe(0);
  });
});

describe('AppendValidator on the event loop', () => {
  it('walks a bounded number of records in-line per turn of the event loop; a larger burst is walked on later turns, with the same verdicts', async () => {
    const validator = new AppendValidator();
    const policy = appendPolicyOf(resolveLogConfig({ maxMessageBytes: 2 * 1024 * 1024 }));
    // 16,000 small records (about 1 MiB): one such walk is about 0.4 ms, a turn takes some 12.
    const batch = encodeBatch(Array.from({ length: 16_000 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(50, i), timestamp: T0 })));
    // A turn that already walked something (a previous test's batches) must not count here.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const results = Array.from({ length: 40 }, () => validator.validate(Buffer.from(batch), policy, T0));
    const deferred = results.filter((result) => result instanceof Promise).length;
    expect(deferred).toBeGreaterThanOrEqual(20);
    const settled = await Promise.all(results.map((result) => Promise.resolve(result)));
    expect(settled.every((batches) => batches.length === 1 && batches[0]!.lastOffsetDelta === 15_999)).toBe(true);
  });
});

describe('DecompressionBudget', () => {
  it('grants in arrival order, lets an oversized reservation run alone, and refuses past its waiters', async () => {
    const budget = new DecompressionBudget({ capacityBytes: 100, maxWaiters: 2 });
    const order: string[] = [];
    const first = await budget.reserve(60);
    const second = budget.reserve(60).then((release) => (order.push('second'), release));
    const huge = budget.reserve(500).then((release) => (order.push('huge'), release));
    await expect(budget.reserve(1)).rejects.toBeInstanceOf(ValidationBusyError);
    first();
    (await second)();
    (await huge)();
    expect(order).toEqual(['second', 'huge']);
    expect(budget.reserved).toBe(0);
    expect(budget.peakReservedBytes).toBe(500);
  });
});

describe('batches stored before append validation', () => {
  /** A log holding good, bad, good batches, written past validation, then reopened without its marker (as an older version left it). */
  async function legacyLog(): Promise<{ opened: TestLog; badOffset: number }> {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const first = await openTestLog(dir.path);
    const good = labelledBatch('good', 2, T0);
    // Five records declared, two present: its CRC is right, its records do not decode.
    const bad = withHeader(labelledBatch('bad', 2, T0), (batch) => batch.writeInt32BE(5, RECORD_COUNT_OFFSET));
    const bytes = (batch: Buffer, baseOffset: number): Buffer => {
      const copy = Buffer.from(batch);
      writeInt64FromNumber(copy, 0, baseOffset);
      copy.writeInt32BE(0, 12); // the leader epoch, outside the CRC
      return copy;
    };
    // appendWithOffsets checks framing and CRC only, as a follower's copy does: the stand-in for an old version's append.
    const badRecordCount = withHeader(bad, (batch) => batch.writeInt32BE(5, LAST_OFFSET_DELTA_OFFSET));
    await first.log.appendWithOffsets(bytes(good, 0));
    await first.log.appendWithOffsets(bytes(badRecordCount, 2));
    await first.log.appendWithOffsets(bytes(labelledBatch('later', 2, T0), 8));
    await first.log.close();
    await rm(join(dir.path, RECORDS_VALIDATED_MARKER));
    const opened = await openTestLog(dir.path);
    cleanups.push(() => opened.log.close());
    return { opened, badOffset: 2 };
  }

  it('serves the valid batches before a bad one, answers CORRUPT_MESSAGE at it, reports it once, and verify finds it', async () => {
    const { opened, badOffset } = await legacyLog();
    const { log, logger, dir } = opened;
    const before = await log.read(0, 1024 * 1024);
    expect(decodeRecords(before.records).map((record) => record.value!.toString())).toEqual(['good-0', 'good-1']);
    expect(before.records.length).toBe(labelledBatch('good', 2, T0).length);
    for (let i = 0; i < 3; i++) await expect(log.read(badOffset, 1024 * 1024)).rejects.toBeInstanceOf(InvalidStoredBatchError);
    const reports = logger.lines.filter((entry) => entry.level === 'error' && entry.message.includes('does not decode'));
    expect(reports).toHaveLength(1);
    expect(reports[0]!.fields).toMatchObject({ offset: badOffset, file: expect.stringContaining('.log') as unknown });
    const verify = await verifyPartitionDir(dir);
    expect(verify.problems.map((problem) => ({ problem: problem.problem, baseOffset: problem.baseOffset }))).toEqual([{ problem: 'invalid-records', baseOffset: badOffset }]);
  });

  it('trusts what is appended after the marker was written, and keeps checking below it after a restart', async () => {
    const { opened, badOffset } = await legacyLog();
    await opened.log.append(labelledBatch('new', 1, T0));
    const dir = opened.dir;
    await opened.log.close();
    const reopened = await openTestLog(dir);
    cleanups.push(() => reopened.log.close());
    await expect(reopened.log.read(badOffset, 1024)).rejects.toBeInstanceOf(InvalidStoredBatchError);
    expect(decodeRecords((await reopened.log.read(10, 1024)).records).map((record) => record.value!.toString())).toEqual(['new-0']);
  });
});

describe('policy', () => {
  it('follows the topic config: keys on compacted topics, timestamps only under CreateTime', () => {
    expect(appendPolicyOf(resolveLogConfig({ cleanupPolicy: 'compact,delete' })).requireKeys).toBe(true);
    expect(appendPolicyOf(resolveLogConfig()).timestampAfterMaxMs).toBe(3_600_000);
    expect(decompressedBatchLimit(1024 * 1024 + 12)).toBe(16 * (1024 * 1024 + 12));
    expect(decompressedBatchLimit(1000)).toBe(8 * 1024 * 1024);
  });
});
