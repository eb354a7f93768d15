// Log compaction through PartitionLog and the LogCleaner, with the compactLog task on a real
// worker pool (dist/ must be built): what survives a clean, the cleaner's thresholds, passes when
// the key map is small, failures, corrupt input, and the start-up recovery of every swap step.
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../protocol/errors.js';
import { encodeProduceRequest } from '../protocol/generated/produceRequest.js';
import { decodeProduceResponse } from '../protocol/generated/produceResponse.js';
import { LogCleaner, type CleanerTarget, type CompactionSettings } from '../engine/log/compaction/logCleaner.js';
import { planCleaning } from '../engine/log/compaction/cleaningPlan.js';
import { KeyOffsetMap, MIN_MAP_BYTES, hashKey } from '../engine/log/compaction/keyOffsetMap.js';
import { promoteCleanedToSwap } from '../engine/log/compaction/segmentSwap.js';
import { maxIndexEntries } from '../engine/log/logConfig.js';
import { MemoryLogger } from '../engine/logger.js';
import { runCompactLog } from '../engine/log/compaction/compactLog.js';
import { WorkerPool } from '../engine/workers/workerPool.js';
import { decodeRecords, encodeBatch } from '../segments/recordBatch.js';
import { OFFSET_GAPS_MARKER, segmentPath } from '../segments/segmentNames.js';
import { brokerConfigFromProperties } from '../engine/brokerConfig.js';
import { sendRequest, startInProcessBroker } from './support/inProcessBroker.js';
import { openTestLog, readAll, temporaryDirectory, type TestLog } from './support/logs.js';
import { SeededRandom } from './support/random.js';

interface Written {
  key: string;
  value: string | null;
  timestamp: number;
}

interface Read {
  offset: number;
  key: string;
  value: string | null;
}

const HOUR_MS = 60 * 60 * 1000;
/** A high watermark past every segment of a plan's input: no bound from it. */
const NO_BOUND = Number.MAX_SAFE_INTEGER;

let root: { path: string; remove: () => Promise<void> };
let pool: WorkerPool;
const opened: TestLog[] = [];

beforeEach(async () => {
  root = await temporaryDirectory('tidelog-compaction-');
  pool = new WorkerPool({ threads: 1, logger: new MemoryLogger() });
});

afterEach(async () => {
  for (const test of opened.splice(0)) await test.log.close();
  await pool.close();
  await root.remove();
});

async function compactedLog(segmentBytes: number, name = 'log'): Promise<TestLog> {
  const test = await openTestLog(join(root.path, name), { cleanupPolicy: 'compact', segmentBytes, maxMessageBytes: Math.min(segmentBytes, 1024 * 1024) });
  opened.push(test);
  return test;
}

/** Appends records in batches of `perBatch`; the i-th record written gets offset startOffset + i. */
async function append(test: TestLog, records: readonly Written[], perBatch = 100): Promise<void> {
  for (let i = 0; i < records.length; i += perBatch) {
    const slice = records.slice(i, i + perBatch);
    await test.log.append(encodeBatch(slice.map((record) => ({ key: Buffer.from(record.key), value: record.value === null ? null : Buffer.from(record.value), timestamp: record.timestamp }))));
  }
}

/** Rolls the active segment by appending one record after segment.ms has passed, so everything before it is sealed. */
async function sealActive(test: TestLog, key = 'tail'): Promise<void> {
  const config = test.log.config;
  test.log.reconfigure({ ...config, segmentMs: 1 });
  test.clock.advance(2);
  await append(test, [{ key, value: 'x', timestamp: test.clock.nowMs() }]);
  test.log.reconfigure(config);
}

async function readRecords(test: TestLog): Promise<Read[]> {
  const out: Read[] = [];
  for (const batch of await readAll(test.log)) {
    for (const record of decodeRecords(batch)) out.push({ offset: record.offset, key: record.key!.toString(), value: record.value === null ? null : record.value.toString() });
  }
  return out;
}

/** The latest record per key of what was written, with the offset it got (first written at `firstOffset`). */
function latestByKey(records: readonly Written[], firstOffset = 0): Map<string, Read> {
  const latest = new Map<string, Read>();
  records.forEach((record, index) => latest.set(record.key, { offset: firstOffset + index, key: record.key, value: record.value }));
  return latest;
}

function expectStrictlyIncreasing(records: readonly Read[]): void {
  for (let i = 1; i < records.length; i++) expect(records[i]!.offset).toBeGreaterThan(records[i - 1]!.offset);
}

async function cleanerFor(test: TestLog, settings: CompactionSettings, options: { mapBudgetBytes?: number; taskTimeoutMs?: number; logger?: MemoryLogger } = {}): Promise<{ cleaner: LogCleaner; target: CleanerTarget; logger: MemoryLogger }> {
  const logger = options.logger ?? new MemoryLogger();
  const target: CleanerTarget = { topic: 'table', partition: 0, log: test.log, get highWatermark() { return test.log.durableEndOffset; }, settings };
  const cleaner = await LogCleaner.open({
    dataDir: root.path,
    targets: () => [target],
    workers: pool,
    clock: test.clock,
    logger,
    backoffMs: 60_000,
    mapBudgetBytes: options.mapBudgetBytes ?? 16 * 1024 * 1024,
    threads: 1,
    ...(options.taskTimeoutMs === undefined ? {} : { taskTimeoutMs: options.taskTimeoutMs }),
  });
  return { cleaner, target, logger };
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => /\.(log|index|timeindex)(\.|$)/.test(name)).sort();
}

describe('compaction of a log', () => {
  it('100,000 records over 1,000 keys leave exactly the latest value per key, offsets preserved; tombstones go after delete.retention.ms (seed 6)', async () => {
    const random = new SeededRandom(6);
    const test = await compactedLog(512 * 1024);
    const written: Written[] = [];
    for (let i = 0; i < 99_950; i++) written.push({ key: `key-${random.int(0, 999)}`, value: `value-${i}`, timestamp: test.clock.nowMs() });
    for (let k = 0; k < 50; k++) written.push({ key: `key-${k}`, value: null, timestamp: test.clock.nowMs() });
    await append(test, written);
    await sealActive(test);
    const segmentsBefore = test.log.segmentCount;
    const bytesBefore = test.log.sizeBytes;
    const settings = { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0.5 };
    const { cleaner } = await cleanerFor(test, settings);

    const report = await cleaner.cleanOnce();
    expect(report?.outcome).toBe('cleaned');
    const expected = latestByKey(written);
    expect(expected.size).toBe(1000);
    const survivors = (await readRecords(test)).filter((record) => record.key !== 'tail');
    expectStrictlyIncreasing(survivors);
    // Exactly one record per key, the latest, at the offset it was written at; tombstones stay for now.
    expect(survivors).toEqual([...expected.values()].sort((a, b) => a.offset - b.offset));
    expect(survivors.filter((record) => record.value === null)).toHaveLength(50);
    expect(test.log.sizeBytes).toBeLessThan(bytesBefore / 10);
    expect(cleaner.checkpointOf('table', 0)).toBe(test.log.segmentBaseOffsets().at(-1));
    // The log now has gaps: its directory says so, so a later delete policy or restart keeps them valid.
    expect(await readdir(test.dir)).toContain(OFFSET_GAPS_MARKER);

    // delete.retention.ms later, the next clean (it needs something dirty) drops the tombstones.
    test.clock.advance(HOUR_MS + 1);
    const more: Written[] = [{ key: 'key-999', value: 'late', timestamp: test.clock.nowMs() }];
    await append(test, more);
    await sealActive(test, 'tail-2');
    settings.minCleanableDirtyRatio = 0;
    expect((await cleaner.cleanOnce())?.outcome).toBe('cleaned');
    const after = (await readRecords(test)).filter((record) => !record.key.startsWith('tail'));
    expectStrictlyIncreasing(after);
    const live = new Map([...expected].filter(([, record]) => record.value !== null));
    live.set('key-999', { offset: after.find((record) => record.key === 'key-999')!.offset, key: 'key-999', value: 'late' });
    expect(after.filter((record) => record.value === null)).toEqual([]);
    expect(new Map(after.map((record) => [record.key, record]))).toEqual(live);
    expect(after).toHaveLength(live.size);
    // Segments cleaned small are grouped into one (each full input segment could not be, at first).
    expect(test.log.segmentCount).toBeLessThan(segmentsBefore);

    // What was swapped in is what a restart reads.
    const dir = test.dir;
    await test.log.close();
    opened.splice(opened.indexOf(test), 1);
    const reopened = await openTestLog(dir, { cleanupPolicy: 'compact', segmentBytes: 512 * 1024 }, { clock: test.clock });
    opened.push(reopened);
    expect((await readRecords(reopened)).filter((record) => !record.key.startsWith('tail'))).toEqual(after);
  });

  it('honours min.cleanable.dirty.ratio: a log below it is left alone until the ratio is lowered', async () => {
    const test = await compactedLog(8 * 1024);
    const first: Written[] = Array.from({ length: 4000 }, (_, i) => ({ key: `k${i % 2000}`, value: `a${i}`, timestamp: test.clock.nowMs() }));
    await append(test, first);
    await sealActive(test);
    const settings = { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0.5 };
    const { cleaner, target } = await cleanerFor(test, settings);
    expect((await cleaner.cleanOnce())?.outcome).toBe('cleaned');

    // A large clean part and a small dirty one: the ratio is under 0.5.
    const second: Written[] = Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `b${i}`, timestamp: test.clock.nowMs() }));
    await append(test, second);
    await sealActive(test, 'tail-2');
    const plan = await cleaner.planFor(target);
    expect(plan.cleanableBytes).toBeGreaterThan(0);
    expect(plan.dirtyRatio).toBeLessThan(0.5);
    const before = await readRecords(test);
    expect(await cleaner.cleanOnce()).toBeNull();
    expect(await readRecords(test)).toEqual(before);

    settings.minCleanableDirtyRatio = plan.dirtyRatio;
    const report = await cleaner.cleanOnce();
    expect(report?.outcome).toBe('cleaned');
    const values = new Map((await readRecords(test)).map((record) => [record.key, record.value]));
    for (let i = 0; i < 2000; i++) expect(values.get(`k${i}`)).toBe(i < 30 ? `b${i}` : `a${i + 2000}`);
  });

  it('honours min.compaction.lag.ms: records younger than the lag stay, with their duplicates', async () => {
    const test = await compactedLog(8 * 1024);
    const oldTimestamp = test.clock.nowMs() - 3 * HOUR_MS;
    const old: Written[] = Array.from({ length: 2000 }, (_, i) => ({ key: `k${i % 10}`, value: `old${i}`, timestamp: oldTimestamp }));
    const young: Written[] = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 10}`, value: `young${i}`, timestamp: test.clock.nowMs() }));
    await append(test, old);
    test.log.reconfigure({ ...test.log.config, segmentMs: 1 });
    test.clock.advance(2);
    await append(test, young.slice(0, 1)); // rolls: the young records start a segment
    test.log.reconfigure({ ...test.log.config, segmentMs: 7 * 24 * HOUR_MS });
    await append(test, young.slice(1));
    await sealActive(test);
    const firstYoungBase = test.log.segmentBaseOffsets().find((base) => base >= 2000)!;
    expect(firstYoungBase).toBe(2000);

    const { cleaner } = await cleanerFor(test, { deleteRetentionMs: HOUR_MS, minCompactionLagMs: HOUR_MS, minCleanableDirtyRatio: 0.1 });
    const report = await cleaner.cleanOnce();
    expect(report?.outcome).toBe('cleaned');
    expect(report?.outcome === 'cleaned' && report.nextDirtyOffset).toBe(firstYoungBase);
    const records = (await readRecords(test)).filter((record) => record.key !== 'tail');
    const oldPart = records.filter((record) => record.offset < firstYoungBase);
    const youngPart = records.filter((record) => record.offset >= firstYoungBase);
    // The old part is compacted against itself only; every young record is still there.
    expect(oldPart).toEqual([...latestByKey(old).values()].sort((a, b) => a.offset - b.offset));
    expect(youngPart.map((record) => record.value)).toEqual(young.map((record) => record.value));
  });

  it('splits a clean into passes when the key map is too small for the dirty range, with a log line, and ends exact', async () => {
    const test = await compactedLog(64 * 1024);
    const written: Written[] = [];
    for (let round = 0; round < 2; round++) for (let k = 0; k < 10_000; k++) written.push({ key: `key-${k}`, value: `r${round}-${k}`, timestamp: test.clock.nowMs() });
    await append(test, written);
    await sealActive(test);
    const { cleaner, logger } = await cleanerFor(test, { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0 }, { mapBudgetBytes: MIN_MAP_BYTES });
    const first = await cleaner.cleanOnce();
    expect(first?.outcome === 'cleaned' && first.splitIntoPasses).toBe(true);
    expect(logger.lines.some((line) => line.message.startsWith('compaction split into passes'))).toBe(true);
    for (let pass = 0; pass < 20 && (await cleaner.cleanOnce()) !== null; pass++);
    const survivors = (await readRecords(test)).filter((record) => record.key !== 'tail');
    expectStrictlyIncreasing(survivors);
    expect(survivors).toEqual([...latestByKey(written).values()].sort((a, b) => a.offset - b.offset));
  });

  it('rewritten batches keep their base offset, last offset and record timestamps; control batches stay', async () => {
    const test = await compactedLog(4096);
    const t0 = test.clock.nowMs();
    await test.log.append(encodeBatch([
      { key: Buffer.from('a'), value: Buffer.from('1'), timestamp: t0 },
      { key: Buffer.from('b'), value: Buffer.from('1'), timestamp: t0 + 5 },
      { key: Buffer.from('a'), value: Buffer.from('2'), timestamp: t0 + 9 },
    ]));
    await test.log.appendWithOffsets(encodeBatch([{ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }], { baseOffset: 3, control: true, partitionLeaderEpoch: 0 }));
    await sealActive(test);
    const { cleaner } = await cleanerFor(test, { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0 });
    expect((await cleaner.cleanOnce())?.outcome).toBe('cleaned');
    const batches = await readAll(test.log);
    const first = decodeRecords(batches[0]!);
    expect(batches[0]!.readBigInt64BE(0)).toBe(0n);
    expect(batches[0]!.readInt32BE(23)).toBe(2); // lastOffsetDelta kept: the batch still ends at offset 2
    expect(first.map((record) => [record.offset, record.key!.toString(), record.value!.toString(), record.timestamp])).toEqual([
      [1, 'b', '1', t0 + 5],
      [2, 'a', '2', t0 + 9],
    ]);
    expect(batches[1]!.readInt16BE(21) & 0x20).toBe(0x20); // the control batch is still there
  });
});

describe('cleaner failures', () => {
  async function dirtyLog(): Promise<{ test: TestLog; before: Read[] }> {
    const test = await compactedLog(8 * 1024);
    await append(test, Array.from({ length: 2000 }, (_, i) => ({ key: `k${i % 50}`, value: `v${i}`, timestamp: test.clock.nowMs() })));
    await sealActive(test);
    return { test, before: await readRecords(test) };
  }

  it('a task that hangs past its time limit is reported, leaves no cleaned files, and the log is cleaned on a later try', async () => {
    const { test, before } = await dirtyLog();
    const settings = { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0.5 };
    const { cleaner, logger } = await cleanerFor(test, settings, { taskTimeoutMs: 1 });
    const report = await cleaner.cleanOnce();
    expect(report?.outcome).toBe('failed');
    expect(logger.lines.filter((line) => line.level === 'error').map((line) => line.message)).toEqual(['compaction failed; the log is tried again after the backoff']);
    expect((await readdir(test.dir)).filter((name) => name.endsWith('.cleaned') || name.endsWith('.swap'))).toEqual([]);
    expect(await readRecords(test)).toEqual(before);

    const retry = await cleanerFor(test, settings);
    expect((await retry.cleaner.cleanOnce())?.outcome).toBe('cleaned');
    expect((await readRecords(test)).filter((record) => record.key !== 'tail')).toHaveLength(50);
  });

  it('a task that throws (a batch larger than the key map) is reported and changes nothing', async () => {
    const test = await compactedLog(1024 * 1024);
    await append(test, Array.from({ length: 4000 }, (_, i) => ({ key: `k${i}`, value: 'v', timestamp: test.clock.nowMs() })), 4000);
    await sealActive(test);
    const before = await readRecords(test);
    const { cleaner } = await cleanerFor(test, { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0.5 }, { mapBudgetBytes: MIN_MAP_BYTES });
    const report = await cleaner.cleanOnce();
    expect(report?.outcome).toBe('failed');
    expect(report?.outcome === 'failed' && report.reason).toMatch(/log\.cleaner\.dedupe\.buffer\.size .* holds no whole batch/);
    expect(await readRecords(test)).toEqual(before);
    expect((await readdir(test.dir)).filter((name) => name.endsWith('.cleaned'))).toEqual([]);
  });

  it('a corrupt batch stops cleaning of that partition with a report naming file and position, and leaves the data untouched', async () => {
    const { test } = await dirtyLog();
    const victim = segmentPath(test.dir, test.log.segmentBaseOffsets()[1]!, '.log');
    const bytes = await readFile(victim);
    bytes[200] = bytes[200]! ^ 0xff;
    await writeFile(victim, bytes);
    await test.log.flush(); // rolled segments' indexes are on disk before the listing
    const filesBefore = await segmentFiles(test.dir);
    const { cleaner, logger } = await cleanerFor(test, { deleteRetentionMs: HOUR_MS, minCompactionLagMs: 0, minCleanableDirtyRatio: 0.5 });
    const report = await cleaner.cleanOnce();
    expect(report?.outcome).toBe('corrupt');
    const error = logger.lines.find((line) => line.level === 'error')!;
    expect(error.message).toMatch(/corrupt batch; cleaning of this partition stops/);
    expect(error.fields).toMatchObject({ file: victim, topic: 'table', partition: 0 });
    expect(await segmentFiles(test.dir)).toEqual(filesBefore);
    expect(await readFile(victim)).toEqual(bytes);
    expect(await cleaner.cleanOnce()).toBeNull();
  });
});

describe('swap recovery at open', () => {
  /** A log with dirty sealed segments and the cleaned files of one group written beside them. */
  async function cleanedButNotSwapped(): Promise<{ test: TestLog; before: Read[]; after: Read[]; replaced: number[]; base: number }> {
    const test = await compactedLog(16 * 1024);
    const written = Array.from({ length: 3000 }, (_, i) => ({ key: `k${i % 40}`, value: `v${i}`, timestamp: test.clock.nowMs() }));
    await append(test, written);
    await sealActive(test);
    const before = await readRecords(test);
    const sealed = await test.log.sealedSegments();
    const segments = sealed.map((segment) => ({ baseOffset: segment.baseOffset, nextBaseOffset: segment.nextBaseOffset, sizeBytes: segment.sizeBytes }));
    expect(segments.length).toBeGreaterThan(1);
    const output = await runCompactLog({
      dir: test.dir,
      segments,
      dirtySegments: segments,
      segmentBytes: test.log.config.segmentBytes,
      ioMaxBytesPerSecond: 0,
      firstDirtyOffset: 0,
      cleanableEndOffset: sealed.at(-1)!.nextBaseOffset,
      mapBudgetBytes: MIN_MAP_BYTES,
      tombstoneHorizonMs: 0,
      indexIntervalBytes: test.log.config.indexIntervalBytes,
      maxIndexEntries: maxIndexEntries(test.log.config),
    });
    // 40 keys clean down to one small segment: every input segment is replaced by one output.
    expect(output.outcome === 'cleaned' && output.groups.map((group) => group.replacedBaseOffsets)).toEqual([segments.map((segment) => segment.baseOffset)]);
    const tail = before.filter((record) => record.key === 'tail');
    const after = [...[...latestByKey(written).values()].sort((a, b) => a.offset - b.offset), ...tail];
    await test.log.close();
    opened.splice(opened.indexOf(test), 1);
    return { test, before, after, replaced: segments.map((segment) => segment.baseOffset), base: segments[0]!.baseOffset };
  }

  async function reopen(test: TestLog): Promise<{ records: Read[]; files: string[] }> {
    const reopened = await openTestLog(test.dir, { cleanupPolicy: 'compact', segmentBytes: 16 * 1024 }, { cleanShutdown: false, recoveryPoint: 0 });
    opened.push(reopened);
    return { records: await readRecords(reopened), files: await readdir(test.dir) };
  }

  it('cleaned files not yet promoted are removed and never read: the old records stay', async () => {
    const { test, before } = await cleanedButNotSwapped();
    const { records, files } = await reopen(test);
    expect(records).toEqual(before);
    expect(files.filter((name) => /\.(cleaned|swap)$/.test(name))).toEqual([]);
  });

  it('a swap cut short while promoting (an index already .swap, the log still .cleaned) is undone', async () => {
    const { test, before, base } = await cleanedButNotSwapped();
    await rename(segmentPath(test.dir, base, '.index.cleaned'), segmentPath(test.dir, base, '.index.swap'));
    const { records, files } = await reopen(test);
    expect(records).toEqual(before);
    expect(files.filter((name) => /\.(cleaned|swap)$/.test(name))).toEqual([]);
  });

  it('a committed swap (the log .swap) is completed: the cleaned records are read', async () => {
    const { test, after, base } = await cleanedButNotSwapped();
    await promoteCleanedToSwap(test.dir, base);
    const { records, files } = await reopen(test);
    expect(records).toEqual(after);
    expect(files.filter((name) => /\.(cleaned|swap|cleaner-manifest)$/.test(name))).toEqual([]);
  });

  it('a swap cut short after the old segments were renamed .deleted and one index installed is completed', async () => {
    const { test, after, base, replaced } = await cleanedButNotSwapped();
    await promoteCleanedToSwap(test.dir, base);
    for (const old of replaced) for (const suffix of ['.log', '.index', '.timeindex']) await rename(segmentPath(test.dir, old, suffix), segmentPath(test.dir, old, `${suffix}.deleted`)).catch(() => undefined);
    await rename(segmentPath(test.dir, base, '.index.swap'), segmentPath(test.dir, base, '.index'));
    const { records } = await reopen(test);
    expect(records).toEqual(after);
  });
});

describe('cleaner broker configs', () => {
  it("log.cleaner.io.max.bytes.per.second takes Kafka's double form; its default (Double.MAX_VALUE) means no limit", () => {
    expect(brokerConfigFromProperties({ 'log.cleaner.io.max.bytes.per.second': '1.7976931348623157E308' }).config.logCleanerIoMaxBytesPerSecond).toBe(Number.MAX_SAFE_INTEGER);
    expect(brokerConfigFromProperties({ 'log.cleaner.io.max.bytes.per.second': '52428800' }).config.logCleanerIoMaxBytesPerSecond).toBe(52_428_800);
    expect(brokerConfigFromProperties({ 'log.cleaner.io.max.bytes.per.second': '5.0E7' }).config.logCleanerIoMaxBytesPerSecond).toBe(50_000_000);
    for (const value of ['1000', 'fast', '']) {
      expect(() => brokerConfigFromProperties({ 'log.cleaner.io.max.bytes.per.second': value })).toThrow(/log.cleaner.io.max.bytes.per.second must be a number of bytes per second of at least 1048576/);
    }
  });
});

describe('the key offset map', () => {
  it('keeps the largest offset per key and refuses new keys once full, never existing ones', () => {
    const map = new KeyOffsetMap(MIN_MAP_BYTES);
    const hash = (text: string): ReturnType<typeof hashKey> => {
      const bytes = Buffer.from(text);
      return hashKey(bytes, 0, bytes.length);
    };
    for (let i = 0; i < map.capacity; i++) expect(map.put(hash(`key-${i}`), i)).toBe(true);
    expect(map.put(hash('one too many'), 1)).toBe(false);
    expect(map.get(hash('one too many'))).toBe(-1);
    expect(map.put(hash('key-7'), 100_000)).toBe(true);
    expect(map.put(hash('key-7'), 5)).toBe(true);
    expect(map.get(hash('key-7'))).toBe(100_000);
    expect(map.get(hash('key-8'))).toBe(8);
  });

  it('plans nothing without sealed segments; plans the sealed ones below the first uncleanable offset, with the dirty ratio in whole segments', () => {
    expect(planCleaning({ sealed: [], logStartOffset: 0, checkpointOffset: null, nowMs: 0, minCompactionLagMs: 0, highWatermark: NO_BOUND }).segments).toEqual([]);
    const plan = planCleaning({
      sealed: [
        { baseOffset: 0, nextBaseOffset: 10, sizeBytes: 600, largestTimestamp: 1 },
        { baseOffset: 10, nextBaseOffset: 20, sizeBytes: 300, largestTimestamp: 1 },
        { baseOffset: 20, nextBaseOffset: 30, sizeBytes: 300, largestTimestamp: 1 },
      ],
      logStartOffset: 0,
      checkpointOffset: 10,
      nowMs: 100,
      minCompactionLagMs: 0,
      highWatermark: NO_BOUND,
    });
    expect(plan.segments.map((segment) => segment.baseOffset)).toEqual([0, 10, 20]);
    expect(plan.cleanableEndOffset).toBe(30);
    expect(plan.dirtyRatio).toBeCloseTo(600 / 1200);
    const lagged = planCleaning({
      sealed: [
        { baseOffset: 0, nextBaseOffset: 10, sizeBytes: 600, largestTimestamp: 1 },
        { baseOffset: 10, nextBaseOffset: 20, sizeBytes: 300, largestTimestamp: 95 },
      ],
      logStartOffset: 0,
      checkpointOffset: null,
      nowMs: 100,
      minCompactionLagMs: 10,
      highWatermark: NO_BOUND,
    });
    expect(lagged.cleanableEndOffset).toBe(10);
    expect(lagged.segments.map((segment) => segment.baseOffset)).toEqual([0]);
  });

  it('never plans a segment that reaches the high watermark: records above it are not acknowledged yet', () => {
    const sealed = [
      { baseOffset: 0, nextBaseOffset: 10, sizeBytes: 600, largestTimestamp: 1 },
      { baseOffset: 10, nextBaseOffset: 20, sizeBytes: 300, largestTimestamp: 1 },
    ];
    const bounded = planCleaning({ sealed, logStartOffset: 0, checkpointOffset: null, nowMs: 100, minCompactionLagMs: 0, highWatermark: 15 });
    expect(bounded.cleanableEndOffset).toBe(10);
    expect(bounded.segments.map((segment) => segment.baseOffset)).toEqual([0]);
    const atTheEnd = planCleaning({ sealed, logStartOffset: 0, checkpointOffset: null, nowMs: 100, minCompactionLagMs: 0, highWatermark: 20 });
    expect(atTheEnd.segments.map((segment) => segment.baseOffset)).toEqual([0, 10]);
  });
});

describe('produce to a compacted topic', () => {
  it('refuses records without a key with INVALID_RECORD, and takes keyed ones', async () => {
    const started = await startInProcessBroker();
    try {
      await started.broker.topics.create('table', 1, -1, { 'cleanup.policy': 'compact' });
      const produce = async (key: Buffer | null): Promise<number> => {
        const records = encodeBatch([{ key: Buffer.from('k'), value: Buffer.from('v') }, { key, value: Buffer.from('v') }]);
        const response = await sendRequest(started.broker, 0, 7, encodeProduceRequest, decodeProduceResponse, { transactionalId: null, acks: 1, timeoutMs: 5000, topicData: [{ name: 'table', partitionData: [{ index: 0, records }] }] });
        return response!.responses[0]!.partitionResponses[0]!.errorCode;
      };
      expect(await produce(null)).toBe(ErrorCode.INVALID_RECORD);
      expect(await produce(Buffer.from('k2'))).toBe(ErrorCode.NONE);
      expect(started.broker.topics.partition('table', 0)!.log.logEndOffset).toBe(2);
    } finally {
      await started.stop();
    }
  });
});
