import { readdir, stat } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import { InvalidRecordsError, OffsetOutOfRangeError } from '../engine/errors.js';
import { CRC_OFFSET, computeBatchCrc, decodeRecords, encodeBatch, readBatchHeader } from '../segments/recordBatch.js';
import { SeededRandom } from './support/random.js';
import { resolveLogConfig } from '../engine/log/logConfig.js';
import { OFFSET_GAPS_MARKER } from '../segments/segmentNames.js';
import { verifyPartitionDir } from '../engine/log/verification/partitionVerifier.js';
import { labelledBatch, openTestLog, readAll, splitBatches, temporaryDirectory, useFreshLogs, type TestLog } from './support/logs.js';

const { cleanups, freshLog } = useFreshLogs();

function offsetsOf(batch: Buffer): { base: number; last: number } {
  const header = readBatchHeader(batch);
  return { base: header.baseOffset, last: header.baseOffset + header.lastOffsetDelta };
}

describe('PartitionLog append and read', () => {
  it('assigns consecutive offsets by rewriting only baseOffset and the leader epoch', async () => {
    const { log } = await freshLog();
    const first = labelledBatch('a', 3, 1000);
    const original = Buffer.from(first);
    const result = await log.append(first);
    expect(result).toMatchObject({ baseOffset: 0, lastOffset: 2 });
    const second = await log.append(labelledBatch('b', 5, 2000));
    expect(second).toMatchObject({ baseOffset: 3, lastOffset: 7 });
    expect(log.logEndOffset).toBe(8);

    const [stored] = splitBatches((await log.read(0, 1 << 20)).records);
    // Bytes 0-7 (baseOffset) and 12-15 (epoch) may change; everything the CRC covers may not.
    expect(stored!.subarray(16)).toEqual(original.subarray(16));
    expect(stored!.subarray(8, 12)).toEqual(original.subarray(8, 12));
    expect(decodeRecords(stored!).map((r) => r.value?.toString())).toEqual(['a-0', 'a-1', 'a-2']);
  });

  it('returns whole batches up to maxBytes, but always at least one whole batch', async () => {
    const { log } = await freshLog();
    for (let i = 0; i < 10; i++) await log.append(labelledBatch(`b${i}`, 10, 1000, { valueBytes: 100 }));
    const batchSize = splitBatches((await log.read(0, 1)).records)[0]!.length;
    expect((await log.read(0, 1)).records.length).toBe(batchSize);
    const three = (await log.read(0, batchSize * 3 + Math.floor(batchSize / 2))).records;
    expect(splitBatches(three)).toHaveLength(3);
    // A read starting inside a batch returns that batch (clients skip the earlier records).
    const inside = splitBatches((await log.read(15, 1)).records);
    expect(offsetsOf(inside[0]!)).toEqual({ base: 10, last: 19 });
  });

  it('answers offsets outside [logStart, logEnd] with OffsetOutOfRangeError and the end with nothing', async () => {
    const { log } = await freshLog();
    await log.append(labelledBatch('x', 4, 1000));
    await expect(log.read(5, 100)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    await expect(log.read(-1, 100)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect((await log.read(4, 100)).records.length).toBe(0);
  });

  it('keeps the order of concurrent appends equal to the order of the calls', async () => {
    const { log } = await freshLog({ flush: { mode: 'every-append' } });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(labelledBatch(`c${i}`, 2, 1000 + i))));
    results.forEach((result, i) => expect(result.baseOffset).toBe(i * 2));
    const values = (await readAll(log)).flatMap((batch) => decodeRecords(batch).map((r) => r.value!.toString()));
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => [`c${i}-0`, `c${i}-1`]).flat());
    expect(log.recoveryPoint).toBe(100);
  });

  it('flush policy "interval" moves the recovery point to the log end on its timer, "os" only on flush()', async () => {
    const interval = await freshLog({ flush: { mode: 'interval', intervalMs: 10 } });
    await interval.log.append(labelledBatch('i', 4, 1000));
    expect(interval.log.recoveryPoint).toBe(0);
    await vi.waitFor(() => expect(interval.log.recoveryPoint).toBe(4), { timeout: 5000, interval: 5 });
    const os = await freshLog({ flush: { mode: 'os' } });
    await os.log.append(labelledBatch('o', 4, 1000));
    expect(os.log.recoveryPoint).toBe(0);
    await os.log.flush();
    expect(os.log.recoveryPoint).toBe(4);
  });

  it('stamps LogAppendTime batches with the broker clock and a recomputed CRC', async () => {
    const { log, clock } = await freshLog({ messageTimestampType: 'LogAppendTime' });
    const result = await log.append(labelledBatch('t', 2, 5));
    expect(result.logAppendTimeMs).toBe(clock.nowMs());
    const [stored] = splitBatches((await log.read(0, 1000)).records);
    const header = readBatchHeader(stored!);
    expect(header.maxTimestamp).toBe(clock.nowMs());
    expect(header.attributes & 0x08).toBe(0x08);
    expect(computeBatchCrc(stored!)).toBe(header.crc);
  });
});

describe('PartitionLog indexes', () => {
  it('finds the same batch through the sparse index as a linear scan, for random offsets (seed 21)', async () => {
    const random = new SeededRandom(21);
    const { log } = await freshLog({ segmentBytes: 256 * 1024, indexIntervalBytes: 512 });
    const batches: Array<{ base: number; last: number }> = [];
    for (let i = 0; i < 600; i++) {
      const result = await log.append(labelledBatch(`r${i}`, random.int(1, 20), 1000 + i, { valueBytes: random.int(1, 200) }));
      batches.push({ base: result.baseOffset, last: result.lastOffset });
    }
    expect(log.segmentCount).toBeGreaterThan(2);
    for (let probe = 0; probe < 500; probe++) {
      const offset = random.int(0, log.logEndOffset - 1);
      const expected = batches.find((b) => b.base <= offset && offset <= b.last)!;
      const [first] = splitBatches((await log.read(offset, 1)).records);
      expect(offsetsOf(first!)).toEqual(expected);
    }
  });

  it('finds the first record at or after a timestamp like a linear scan, for random timestamps (seed 22)', async () => {
    const random = new SeededRandom(22);
    const { log } = await freshLog({ segmentBytes: 64 * 1024, indexIntervalBytes: 256 });
    const all: Array<{ offset: number; timestamp: number }> = [];
    for (let i = 0; i < 300; i++) {
      const records = Array.from({ length: random.int(1, 8) }, () => ({ key: null, value: random.bytes(random.int(10, 200)), timestamp: 10_000 + i * 10 + random.int(-30, 30) }));
      const result = await log.append(encodeBatch(records));
      records.forEach((record, j) => all.push({ offset: result.baseOffset + j, timestamp: record.timestamp }));
    }
    for (let probe = 0; probe < 300; probe++) {
      const target = random.int(9_900, 13_100);
      const expected = all.find((r) => r.timestamp >= target) ?? null;
      expect(await log.readByTimestamp(target)).toEqual(expected);
    }
  });
});

describe('PartitionLog segments', () => {
  it('rolls a new segment when the next batch would pass segment.bytes', async () => {
    const { log } = await freshLog({ segmentBytes: 4096 });
    const batch = labelledBatch('s', 10, 1000, { valueBytes: 100 });
    const perSegment = Math.floor(4096 / batch.length);
    for (let i = 0; i < perSegment * 3; i++) await log.append(Buffer.from(batch));
    expect(log.segmentBaseOffsets()).toEqual([0, perSegment * 10, perSegment * 20]);
    for (const name of (await readdir(log.dir)).filter((n) => n.endsWith('.log'))) {
      expect((await stat(`${log.dir}/${name}`)).size).toBeLessThanOrEqual(4096);
    }
  });

  it('rolls when segment.ms has passed since the segment first got data, driven by the clock', async () => {
    const { log, clock } = await freshLog({ segmentMs: 60_000 });
    await log.append(labelledBatch('t', 1, 1000));
    clock.advance(59_999);
    await log.append(labelledBatch('t', 1, 1000));
    expect(log.segmentCount).toBe(1);
    clock.advance(1);
    await log.append(labelledBatch('t', 1, 1000));
    expect(log.segmentBaseOffsets()).toEqual([0, 2]);
  });

  it('rolls when the offset index is full', async () => {
    const { log } = await freshLog({ segmentIndexBytes: 24, indexIntervalBytes: 0 });
    for (let i = 0; i < 10; i++) await log.append(labelledBatch('i', 1, 1000));
    expect(log.segmentCount).toBeGreaterThan(2);
    expect((await readAll(log)).length).toBe(10);
  });

  it('reopens after a clean close with the same offsets, bytes and segments', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const first = await openTestLog(dir.path, { segmentBytes: 2048 });
    for (let i = 0; i < 40; i++) await first.log.append(labelledBatch(`o${i}`, 3, 1000 + i, { valueBytes: 30 }));
    const before = await readAll(first.log);
    const segments = first.log.segmentBaseOffsets();
    await first.log.close();
    const second = await openTestLog(dir.path, { segmentBytes: 2048 }, { cleanShutdown: true });
    cleanups.push(() => second.log.close());
    expect(second.log.logEndOffset).toBe(120);
    expect(second.log.segmentBaseOffsets()).toEqual(segments);
    expect(await readAll(second.log)).toEqual(before);
    const appended = await second.log.append(labelledBatch('after', 1, 5000));
    expect(appended.baseOffset).toBe(120);
  });

  it('truncateTo removes the batch holding the offset and everything after, across segments', async () => {
    const { log } = await freshLog({ segmentBytes: 1024 });
    for (let i = 0; i < 30; i++) await log.append(labelledBatch(`t${i}`, 2, 1000, { valueBytes: 40 }));
    await log.truncateTo(21); // inside the batch [20, 21]
    expect(log.logEndOffset).toBe(20);
    const batches = await readAll(log);
    expect(offsetsOf(batches[batches.length - 1]!).last).toBe(19);
    expect((await log.append(labelledBatch('new', 1, 1000))).baseOffset).toBe(20);
    expect(offsetsOf((await readAll(log)).at(-1)!)).toEqual({ base: 20, last: 20 });
  });

  it('deleteSegmentsBelow moves the log start, deletes whole sealed segments only and never the active one', async () => {
    const { log } = await freshLog({ segmentBytes: 1024 });
    for (let i = 0; i < 30; i++) await log.append(labelledBatch(`d${i}`, 2, 1000, { valueBytes: 40 }));
    const bases = log.segmentBaseOffsets();
    const target = bases[2]! + 1;
    const outcome = await log.deleteSegmentsBelow(target);
    expect(outcome.segmentsDeleted).toBe(2);
    expect(log.logStartOffset).toBe(target);
    expect(log.segmentBaseOffsets()).toEqual(bases.slice(2));
    await expect(log.read(target - 1, 100)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect((await log.read(target, 100)).records.length).toBeGreaterThan(0);
    await log.deleteSegmentsBelow(log.logEndOffset + 100);
    expect(log.segmentBaseOffsets()).toEqual([bases.at(-1)]);
    expect(log.logStartOffset).toBe(log.logEndOffset);
    const names = await readdir(log.dir);
    expect(names.filter((n) => n.endsWith('.log'))).toHaveLength(1);
  });
});

describe('PartitionLog refuses bad input and keeps what it has', () => {
  async function expectRefused(log: TestLog['log'], records: Buffer, reason: string): Promise<void> {
    const before = await readAll(log);
    const end = log.logEndOffset;
    const error = await log.append(records).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRecordsError);
    expect((error as InvalidRecordsError).reason).toBe(reason);
    expect(log.logEndOffset).toBe(end);
    expect(await readAll(log)).toEqual(before);
  }

  it('refuses a wrong magic byte, disagreeing lengths, a failing CRC and an empty set', async () => {
    const { log } = await freshLog();
    await log.append(labelledBatch('keep', 3, 1000));
    const legacy = labelledBatch('m', 1, 1000);
    legacy[16] = 1;
    await expectRefused(log, legacy, 'unsupported-magic');
    const badMagic = labelledBatch('m', 1, 1000);
    badMagic[16] = 7;
    await expectRefused(log, badMagic, 'corrupt');
    const longer = labelledBatch('l', 2, 1000);
    longer.writeInt32BE(longer.readInt32BE(8) + 5, 8);
    await expectRefused(log, longer, 'corrupt');
    const trailing = Buffer.concat([labelledBatch('ok', 1, 1000), Buffer.from([1, 2, 3])]);
    await expectRefused(log, trailing, 'corrupt');
    const crc = labelledBatch('c', 2, 1000);
    crc[crc.length - 1]! ^= 0xff;
    await expectRefused(log, crc, 'corrupt');
    await expectRefused(log, Buffer.alloc(0), 'empty');
  });

  it('refuses a CRC-corrupt append among concurrent ones; the others keep contiguous offsets and their bytes', async () => {
    for (const flush of [{ mode: 'os' as const }, { mode: 'every-append' as const }]) {
      const { log } = await freshLog({ flush });
      const appends = Array.from({ length: 12 }, (_, i) => {
        const batch = labelledBatch(`g${i}`, 2, 1000 + i);
        if (i === 5) batch[batch.length - 1]! ^= 0x40;
        return log.append(batch).then((result) => ({ i, result }), (error: unknown) => ({ i, error }));
      });
      const outcomes = await Promise.all(appends);
      const refused = outcomes.filter((o) => 'error' in o);
      expect(refused.map((o) => o.i)).toEqual([5]);
      expect((refused[0] as { error: unknown }).error).toMatchObject({ name: 'InvalidRecordsError', reason: 'corrupt' });
      const accepted = outcomes.filter((o): o is { i: number; result: Awaited<ReturnType<typeof log.append>> } => 'result' in o);
      expect(accepted.map((o) => o.result.baseOffset)).toEqual(accepted.map((_, k) => k * 2));
      const values = (await readAll(log)).flatMap((batch) => decodeRecords(batch).map((r) => r.value!.toString()));
      expect(values).toEqual(accepted.flatMap((o) => [`g${o.i}-0`, `g${o.i}-1`]));
      expect(log.logEndOffset).toBe(22);
    }
  });

  it('a lone corrupt append (CRC checked before anything is written) leaves the file as it was and its offset unused', async () => {
    const { log } = await freshLog();
    await log.append(labelledBatch('keep', 3, 1000));
    const sizeBefore = (await stat(`${log.dir}/00000000000000000000.log`)).size;
    const bad = labelledBatch('bad', 2, 1000);
    bad[bad.length - 3]! ^= 0x10;
    await expect(log.append(bad)).rejects.toMatchObject({ name: 'InvalidRecordsError', reason: 'corrupt' });
    expect((await stat(`${log.dir}/00000000000000000000.log`)).size).toBe(sizeBefore);
    expect(log.logEndOffset).toBe(3);
    expect(await log.append(labelledBatch('next', 1, 1000))).toMatchObject({ baseOffset: 3 });
  });

  it('appends called right behind a lone corrupt one are not held up by it: only the corrupt one is refused', async () => {
    const { log } = await freshLog();
    const bad = labelledBatch('bad', 2, 1000);
    // A value byte (the last record's "1"): well-formed records, so only the CRC can tell.
    bad[bad.length - 2]! ^= 0x01;
    const outcomes = await Promise.allSettled([log.append(bad), log.append(labelledBatch('q1', 1, 1000)), log.append(labelledBatch('q2', 1, 1000))]);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { name: 'InvalidRecordsError', reason: 'corrupt' } });
    expect(outcomes[1]).toMatchObject({ status: 'fulfilled', value: { baseOffset: 0 } });
    expect(outcomes[2]).toMatchObject({ status: 'fulfilled', value: { baseOffset: 1 } });
    expect((await readAll(log)).flatMap((b) => decodeRecords(b).map((r) => r.value!.toString()))).toEqual(['q1-0', 'q2-0']);
  });

  it('refuses a batch over max.message.bytes, even as the second batch of a set', async () => {
    const { log } = await freshLog({ maxMessageBytes: 500 });
    await log.append(labelledBatch('keep', 1, 1000));
    const big = labelledBatch('big', 4, 1000, { valueBytes: 200 });
    await expectRefused(log, Buffer.concat([labelledBatch('small', 1, 1000), big]), 'too-large');
  });

  it('refuses kept offsets that go backwards or leave a gap, and negative offset deltas', async () => {
    const { log } = await freshLog();
    await log.append(labelledBatch('keep', 3, 1000));
    const backwards = encodeBatch([{ key: null, value: Buffer.from('x') }], { baseOffset: 1, partitionLeaderEpoch: 0 });
    await expect(log.appendWithOffsets(backwards)).rejects.toMatchObject({ reason: 'offsets-out-of-order' });
    const gap = encodeBatch([{ key: null, value: Buffer.from('x') }], { baseOffset: 9, partitionLeaderEpoch: 0 });
    await expect(log.appendWithOffsets(gap)).rejects.toMatchObject({ reason: 'offsets-out-of-order' });
    const negative = labelledBatch('n', 2, 1000);
    negative.writeInt32BE(-1, 23);
    negative.writeUInt32BE(computeBatchCrc(negative), CRC_OFFSET);
    // A well-framed batch whose offset range is impossible: Kafka's InvalidRecordException.
    await expectRefused(log, negative, 'invalid-record');
    const next = encodeBatch([{ key: null, value: Buffer.from('x') }], { baseOffset: 3, partitionLeaderEpoch: 0 });
    expect(await log.appendWithOffsets(next)).toMatchObject({ baseOffset: 3, lastOffset: 3 });
  });
});

describe('offset gaps of a compacted log', () => {
  it('stay allowed after the policy changes to delete, across reconfigure, an unclean restart and verification', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const gapped = (base: number, label: string) => encodeBatch([{ key: Buffer.from(label), value: Buffer.from(label) }], { baseOffset: base, partitionLeaderEpoch: 0 });

    const compacted = await openTestLog(dir.path, { cleanupPolicy: 'compact' });
    expect(compacted.log.offsetsContiguous).toBe(false);
    expect(await readdir(dir.path)).toContain(OFFSET_GAPS_MARKER);
    await compacted.log.appendWithOffsets(gapped(0, 'a'));
    await compacted.log.appendWithOffsets(gapped(5, 'b')); // a gap, as compaction leaves
    // The topic goes back to delete: appends stay contiguous from here, the old gap stays valid.
    compacted.log.reconfigure(resolveLogConfig({ fileDeleteDelayMs: 0, cleanupPolicy: 'delete' }));
    expect(compacted.log.offsetsContiguous).toBe(false);
    await compacted.log.append(labelledBatch('c', 2, 1000));
    await compacted.log.close();

    // Reopened under delete after an unclean stop, from recovery point 0: nothing is truncated.
    const reopened = await openTestLog(dir.path, { cleanupPolicy: 'delete' }, { cleanShutdown: false, recoveryPoint: 0 });
    cleanups.push(() => reopened.log.close());
    expect(reopened.log.offsetsContiguous).toBe(false);
    expect(reopened.log.logEndOffset).toBe(8);
    expect((await readAll(reopened.log)).map((batch) => offsetsOf(batch))).toEqual([{ base: 0, last: 0 }, { base: 5, last: 5 }, { base: 6, last: 7 }]);
    expect(reopened.logger.lines.filter((line) => line.level === 'warn')).toEqual([]);
    const report = await verifyPartitionDir(dir.path);
    expect(report.allowOffsetGaps).toBe(true);
    expect(report.problems).toEqual([]);
  });

  it('a log that was never compacted has no marker and refuses gaps', async () => {
    const { log, dir } = await freshLog({ cleanupPolicy: 'delete' });
    expect(log.offsetsContiguous).toBe(true);
    expect(await readdir(dir)).not.toContain(OFFSET_GAPS_MARKER);
    await log.append(labelledBatch('a', 2, 1000));
    const gap = encodeBatch([{ key: null, value: Buffer.from('x') }], { baseOffset: 9, partitionLeaderEpoch: 0 });
    await expect(log.appendWithOffsets(gap)).rejects.toMatchObject({ reason: 'offsets-out-of-order' });
  });
});

describe('batches from other Kafka encoders', () => {
  it('are stored and served byte for byte, except the offset and epoch fields the log assigns', async () => {
    const { readFile, readdir: list } = await import('node:fs/promises');
    const fixtures = new URL('./fixtures/batches/', import.meta.url);
    const names = (await list(fixtures)).filter((name) => name.endsWith('.bin')).sort();
    expect(names.length).toBeGreaterThanOrEqual(10);
    // The fixtures carry the wall-clock time of their capture; this log's clock is a fixed one.
    const { log } = await freshLog({ messageTimestampAfterMaxMs: Number.MAX_SAFE_INTEGER });
    const originals: Buffer[] = [];
    for (const name of names) {
      const bytes = await readFile(new URL(name, fixtures));
      originals.push(Buffer.from(bytes));
      await log.append(bytes);
    }
    const stored = await readAll(log);
    expect(stored).toHaveLength(originals.length);
    let expectedBase = 0;
    stored.forEach((batch, i) => {
      const original = originals[i]!;
      expect(batch.length).toBe(original.length);
      expect(batch.subarray(8, 12)).toEqual(original.subarray(8, 12));
      expect(batch.subarray(16)).toEqual(original.subarray(16));
      expect(readBatchHeader(batch).baseOffset).toBe(expectedBase);
      expectedBase += readBatchHeader(original).lastOffsetDelta + 1;
    });
  });
});

describe('rotted index files', () => {
  it('an index entry moved off its batch is detected, the index rebuilt from the log, and the read served', async () => {
    const { open: openFile } = await import('node:fs/promises');
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const first = await openTestLog(dir.path, { segmentBytes: 4000, indexIntervalBytes: 100 });
    for (let i = 0; i < 30; i++) await first.log.append(labelledBatch(`x${i}`, 3, 1000, { valueBytes: 30 }));
    const expected = await readAll(first.log);
    await first.log.close();
    for (const shift of [1, -1]) {
      const handle = await openFile(`${dir.path}/00000000000000000000.index`, 'r+');
      const entry = Buffer.alloc(4);
      await handle.read(entry, 0, 4, 4);
      entry.writeInt32BE(entry.readInt32BE(0) + shift, 0);
      await handle.write(entry, 0, 4, 4);
      await handle.close();
      const second = await openTestLog(dir.path, { segmentBytes: 4000, indexIntervalBytes: 100 }, { cleanShutdown: true });
      expect(await readAll(second.log, 300)).toEqual(expected);
      expect(second.resources.notices.some((n) => n.startsWith('rebuilding segment indexes'))).toBe(true);
      await second.log.close();
    }
  });
});

describe('indexes loaded from disk', () => {
  it('grow from a 0-byte index file (a segment closed before its first index entry)', async () => {
    const { OffsetIndex } = await import('../segments/offsetIndex.js');
    const { TimeIndex } = await import('../segments/timeIndex.js');
    const offsets = new OffsetIndex(100, 1000, Buffer.alloc(0));
    const times = new TimeIndex(100, 1000, Buffer.alloc(0));
    for (let i = 0; i < 200; i++) {
      offsets.append(100 + i * 10, i * 4096);
      times.maybeAppend(1000 + i, 100 + i * 10);
    }
    expect(offsets.entryCount).toBe(200);
    expect(times.entryCount).toBe(200);
    expect(offsets.lookup(155)).toEqual({ offset: 150, position: 5 * 4096 });
  });
});
