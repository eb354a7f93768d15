// Retention (engine/log/retention.ts) over real partition logs in a LogManager, with a manual clock:
// which segments go by time and by size, that the active segment and compact-only logs stay, that
// the log start offset moves, is checkpointed and survives a restart, that deletion is two-step
// (a reader holding a deleted segment's handle still reads it), and how it combines with
// DeleteRecords' log start offset.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../engine/clock.js';
import { OffsetOutOfRangeError } from '../engine/errors.js';
import { resolveLogConfig, type LogConfig } from '../engine/log/logConfig.js';
import { MemoryLogger } from '../engine/logger.js';
import { LOG_START_OFFSET_CHECKPOINT, LogManager } from '../engine/log/logManager.js';
import type { PartitionLog } from '../engine/log/partitionLog.js';
import { RetentionManager, segmentsToDelete, type RetentionOutcome } from '../engine/log/retention.js';
import { readCheckpoint } from '../segments/checkpointFile.js';
import { checkBatch, decodeRecords } from '../segments/recordBatch.js';
import { LOG_SUFFIX, segmentPath } from '../segments/segmentNames.js';
import { waitUntil } from './support/brokerProcess.js';
import { waitFor } from './support/waitFor.js';
import { labelledBatch, splitBatches, temporaryDirectory } from './support/logs.js';

const T0 = 1_700_000_000_000;
const TOPIC = 'events';
const RECORDS_PER_BATCH = 10;
/** Batch i holds records with timestamps T0 + i * BATCH_SPACING_MS + 0..9. */
const BATCH_SPACING_MS = 1000;
const VALUE_BYTES = 200;

const batch = (i: number): Buffer => labelledBatch(`b${i}`, RECORDS_PER_BATCH, T0 + i * BATCH_SPACING_MS, { valueBytes: VALUE_BYTES });
const BATCH_BYTES = batch(0).length;
const largestTimestampOf = (i: number): number => T0 + i * BATCH_SPACING_MS + RECORDS_PER_BATCH - 1;

interface Fixture {
  dataDir: string;
  logs: LogManager;
  log: PartitionLog;
  clock: ManualClock;
  logger: MemoryLogger;
  retention: RetentionManager;
  limits: { retentionMs: number; retentionBytes: number };
  reopen(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * A log of `batches` batches of equal size, one per segment: segments 0..batches-2 are sealed and
 * the last batch sits in the active segment. Segment i starts at offset i * RECORDS_PER_BATCH.
 */
async function fixture(batches: number, limits: { retentionMs?: number; retentionBytes?: number }, config: Partial<LogConfig> = {}): Promise<Fixture> {
  const dir = await temporaryDirectory('tidelog-retention-');
  cleanups.push(dir.remove);
  const clock = new ManualClock(T0);
  const logger = new MemoryLogger();
  // One batch fits a segment, two do not: every append after the first rolls.
  const logConfig = resolveLogConfig({ segmentBytes: Math.floor(BATCH_BYTES * 1.5), fileDeleteDelayMs: 0, ...config });
  const state = { limits: { retentionMs: limits.retentionMs ?? -1, retentionBytes: limits.retentionBytes ?? -1 } } as Fixture;
  const open = async (): Promise<void> => {
    state.logs = await LogManager.open({ dataDir: dir.path, clock, logger, configFor: () => logConfig, checkpointIntervalMs: 3_600_000 });
    state.log = await state.logs.getOrCreateLog(TOPIC, 0);
    state.retention = new RetentionManager({
      partitions: () => [{ topic: TOPIC, partition: 0, log: state.log, get highWatermark() { return state.log.durableEndOffset; }, ...state.limits }],
      checkpoint: () => state.logs.checkpoint(),
      checkIntervalMs: 3_600_000,
      clock,
      logger,
    });
  };
  await open();
  Object.assign(state, {
    dataDir: dir.path,
    clock,
    logger,
    reopen: async () => {
      await state.retention.stop();
      await state.logs.close();
      await open();
    },
  });
  cleanups.push(async () => {
    await state.retention.stop();
    await state.logs.close();
  });
  for (let i = 0; i < batches; i++) await state.log.append(batch(i));
  expect(state.log.segmentBaseOffsets()).toEqual(Array.from({ length: batches }, (_, i) => i * RECORDS_PER_BATCH));
  return state;
}

async function firstValue(log: PartitionLog, offset: number): Promise<string | undefined> {
  const [first] = splitBatches((await log.read(offset, 1 << 20)).records);
  return first === undefined ? undefined : decodeRecords(first)[0]!.value?.toString().split('-')[0];
}

function deletionLines(logger: MemoryLogger): Array<Record<string, unknown>> {
  return logger.lines.filter((line) => line.message === 'deleted segments below log start').map((line) => line.fields);
}

describe('retention by time', () => {
  it('deletes exactly the oldest sealed segments whose largest timestamp is older than retention.ms', async () => {
    // now - largest: segment 0 is 9_991 ms old, 1 is 8_991, 2 is 7_991: with 8_500, two go.
    const f = await fixture(6, { retentionMs: 8_500 });
    f.clock.advance(10_000);
    const outcomes = await f.retention.runOnce();
    expect(outcomes).toEqual([{ topic: TOPIC, partition: 0, reason: 'time', segmentsDeleted: 2, bytesDeleted: 2 * BATCH_BYTES, logStartOffset: 2 * RECORDS_PER_BATCH }]);
    expect(f.log.segmentBaseOffsets()).toEqual([20, 30, 40, 50]);
    expect(f.log.logStartOffset).toBe(20);
    expect(await firstValue(f.log, 20)).toBe('b2');
    await expect(f.log.read(19, 1024)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    // One line for the round, with what it deleted, the new start and why.
    expect(deletionLines(f.logger)).toEqual([expect.objectContaining({ segments: 2, bytes: 2 * BATCH_BYTES, logStartOffset: 20, reason: 'retention time' })]);

    // Exactly at the limit is not older than it (Kafka: now - largest > retention.ms).
    f.clock.advance(largestTimestampOf(2) + 8_500 - f.clock.nowMs());
    expect(await f.retention.runOnce()).toEqual([]);
    f.clock.advance(1);
    expect((await f.retention.runOnce()).map((outcome) => outcome.logStartOffset)).toEqual([30]);
  });

  it('never deletes the active segment, even when every record is older than retention.ms', async () => {
    const f = await fixture(4, { retentionMs: 1_000 });
    f.clock.advance(365 * 24 * 3_600_000);
    const outcomes = await f.retention.runOnce();
    expect(outcomes.map(({ segmentsDeleted, logStartOffset }) => ({ segmentsDeleted, logStartOffset }))).toEqual([{ segmentsDeleted: 3, logStartOffset: 30 }]);
    expect(f.log.segmentBaseOffsets()).toEqual([30]);
    expect(await firstValue(f.log, 30)).toBe('b3');
    // A second round finds nothing more to take, and appends continue after the kept segment.
    expect(await f.retention.runOnce()).toEqual([]);
    await f.log.append(batch(4));
    expect(f.log.segmentBaseOffsets()).toEqual([30, 40]);
  });

  it('stops at the first segment young enough: a newer segment protects older ones after it', async () => {
    const f = await fixture(2, { retentionMs: 5_000 });
    // Segment 2 gets a record stamped far in the future, segment 3 an old one.
    await f.log.append(labelledBatch('future', RECORDS_PER_BATCH, T0 + 1_000_000, { valueBytes: VALUE_BYTES }));
    await f.log.append(batch(3));
    await f.log.append(batch(4));
    f.clock.advance(100_000);
    const outcomes = await f.retention.runOnce();
    expect(outcomes.map((outcome) => outcome.logStartOffset)).toEqual([20]);
    expect(f.log.segmentBaseOffsets()).toEqual([20, 30, 40]);
  });

  it('finds the largest timestamps of segments sealed before a restart (from their time indexes)', async () => {
    const f = await fixture(5, { retentionMs: 8_500 });
    await f.reopen();
    f.clock.advance(10_000);
    expect((await f.retention.runOnce()).map((outcome) => outcome.logStartOffset)).toEqual([20]);
    expect(f.log.segmentBaseOffsets()).toEqual([20, 30, 40]);
  });
});

describe('retention by size', () => {
  it('deletes exactly the oldest segments that keep the partition at or above retention.bytes', async () => {
    // Six segments of BATCH_BYTES: with a limit of 3.5 segments, two go and four stay.
    const f = await fixture(6, { retentionBytes: Math.floor(3.5 * BATCH_BYTES) });
    expect(f.log.sizeBytes).toBe(6 * BATCH_BYTES);
    const outcomes = await f.retention.runOnce();
    expect(outcomes).toEqual([{ topic: TOPIC, partition: 0, reason: 'size', segmentsDeleted: 2, bytesDeleted: 2 * BATCH_BYTES, logStartOffset: 20 }]);
    expect(f.log.sizeBytes).toBe(4 * BATCH_BYTES);
    expect(f.log.segmentBaseOffsets()).toEqual([20, 30, 40, 50]);
    expect(deletionLines(f.logger)).toEqual([expect.objectContaining({ segments: 2, logStartOffset: 20, reason: 'retention size' })]);
  });

  it('keeps a partition exactly at retention.bytes and never deletes the active segment for size', async () => {
    const f = await fixture(6, { retentionBytes: 3 * BATCH_BYTES });
    await f.retention.runOnce();
    expect(f.log.sizeBytes).toBe(3 * BATCH_BYTES);
    expect(f.log.segmentBaseOffsets()).toEqual([30, 40, 50]);

    f.limits.retentionBytes = 0;
    await f.retention.runOnce();
    expect(f.log.segmentBaseOffsets()).toEqual([50]);
    expect(f.log.logStartOffset).toBe(50);
  });

  it('reports time+size when size takes more segments than time does', async () => {
    const f = await fixture(6, { retentionMs: 9_000, retentionBytes: 2 * BATCH_BYTES });
    f.clock.advance(10_000); // time alone takes segment 0; size takes four
    const [outcome] = await f.retention.runOnce();
    expect(outcome).toMatchObject({ reason: 'time+size', segmentsDeleted: 4, logStartOffset: 40 });
  });
});

describe('retention and cleanup.policy', () => {
  it('leaves a compact-only log untouched, however old and large', async () => {
    const f = await fixture(5, { retentionMs: 0, retentionBytes: 0 }, { cleanupPolicy: 'compact' });
    f.clock.advance(10_000_000);
    expect(await f.retention.runOnce()).toEqual([]);
    expect(f.log.segmentBaseOffsets()).toEqual([0, 10, 20, 30, 40]);
    expect(f.log.logStartOffset).toBe(0);
  });

  it('applies to compact,delete logs', async () => {
    const f = await fixture(5, { retentionMs: 0 }, { cleanupPolicy: 'compact,delete' });
    f.clock.advance(10_000_000);
    expect((await f.retention.runOnce()).map((outcome) => outcome.logStartOffset)).toEqual([40]);
  });

  it('does nothing when neither limit is set (-1)', async () => {
    const f = await fixture(5, {});
    f.clock.advance(10_000_000);
    expect(await f.retention.runOnce()).toEqual([]);
    expect(f.log.segmentCount).toBe(5);
  });
});

describe('the log start offset', () => {
  it('is checkpointed after the round and survives a restart', async () => {
    const f = await fixture(5, { retentionMs: 8_500 });
    f.clock.advance(10_000);
    await f.retention.runOnce();
    expect(f.log.logStartOffset).toBe(20);
    const rows = await readCheckpoint(join(f.dataDir, LOG_START_OFFSET_CHECKPOINT), 3);
    expect(rows).toEqual([[TOPIC, '0', '20']]);

    await f.reopen();
    expect(f.log.logStartOffset).toBe(20);
    expect(f.log.segmentBaseOffsets()).toEqual([20, 30, 40]);
    expect(await firstValue(f.log, 20)).toBe('b2');
    await expect(f.log.read(0, 1024)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
  });

  it('stays where DeleteRecords put it, and moves past it only to a later segment base', async () => {
    const f = await fixture(6, { retentionMs: 8_500 });
    // DeleteRecords to the middle of segment 2: segments 0 and 1 go, the start is 23.
    await f.log.deleteSegmentsBelow(23);
    expect(f.log.segmentBaseOffsets()).toEqual([20, 30, 40, 50]);
    f.clock.advance(10_000); // time would take segments 0 and 1 only: already gone
    expect(await f.retention.runOnce()).toEqual([]);
    expect(f.log.logStartOffset).toBe(23);

    f.clock.advance(1_000); // now segment 2 is old too
    expect((await f.retention.runOnce()).map((outcome) => outcome.logStartOffset)).toEqual([30]);
    expect(f.log.segmentBaseOffsets()).toEqual([30, 40, 50]);
  });

  it('never moves past the high watermark', () => {
    const segments = [0, 1, 2].map((i) => ({ nextBaseOffset: (i + 1) * 10, sizeBytes: 100, largestTimestampMs: 0 }));
    const limits = { retentionMs: 0, retentionBytes: 0 };
    expect(segmentsToDelete(segments, 400, 30, limits, 1_000).count).toBe(3);
    expect(segmentsToDelete(segments, 400, 25, limits, 1_000)).toEqual({ count: 2, byTime: 2, bySize: 2 });
    expect(segmentsToDelete(segments, 400, 9, limits, 1_000).count).toBe(0);
  });
});

describe('two-step deletion', () => {
  it('renames files to .deleted, removes them after file.delete.delay.ms, and a reader holding a handle still reads', async () => {
    const f = await fixture(4, { retentionMs: 8_500 }, { fileDeleteDelayMs: 1_500 });
    const partitionDir = join(f.dataDir, `${TOPIC}-0`);
    const segment0 = segmentPath(partitionDir, 0, LOG_SUFFIX);
    // A read in flight: it holds segment 0's read handle, as PartitionLog.read does while it reads.
    const inFlight = await f.logs.resources.handles.acquire(segment0);
    try {
      f.clock.advance(10_000);
      const outcomes: RetentionOutcome[] = await f.retention.runOnce();
      expect(outcomes.map((outcome) => outcome.segmentsDeleted)).toEqual([2]);

      const names = await readdir(partitionDir);
      for (const base of ['00000000000000000000', '00000000000000000010']) {
        expect(names).toContain(`${base}.log.deleted`);
        expect(names).not.toContain(`${base}.log`);
      }
      // The removal runs on a real timer (file.delete.delay.ms; PartitionLog does not take it from
      // the injected clock) and announces nothing: watch the directory.
      await waitFor(async () => (await readdir(partitionDir)).filter((name) => name.endsWith('.deleted')), {
        until: (deleted) => deleted.length === 0,
        timeoutMs: 10_000,
        intervalMs: 20,
        what: 'the .deleted segment files to be removed after file.delete.delay.ms',
        describe: (deleted) => `still on disk: ${deleted.join(', ')}`,
      });

      // The files are gone by name, but the reader's handle still reads the whole segment.
      const bytes = Buffer.alloc(BATCH_BYTES);
      const { bytesRead } = await inFlight.handle.read(bytes, 0, BATCH_BYTES, 0);
      expect(bytesRead).toBe(BATCH_BYTES);
      const check = checkBatch(bytes, 0, bytesRead, { maxBatchBytes: BATCH_BYTES });
      expect(check.ok).toBe(true);
      expect(decodeRecords(bytes).map((record) => record.value?.toString().split('-')[0])).toEqual(Array(RECORDS_PER_BATCH).fill('b0'));
    } finally {
      inFlight.release();
    }
  });
});

describe('the retention schedule', () => {
  it('refuses a check interval out of range, naming the range', () => {
    const options = { partitions: () => [], checkpoint: async () => undefined, clock: new ManualClock(), logger: new MemoryLogger() };
    expect(() => new RetentionManager({ ...options, checkIntervalMs: 0 })).toThrow(/log\.retention\.check\.interval\.ms must be an integer in \[1, /);
  });

  it('runs rounds by itself every check interval once started, and stops', async () => {
    const f = await fixture(4, { retentionMs: 1_000 });
    f.clock.advance(100_000);
    const timed = new RetentionManager({
      partitions: () => [{ topic: TOPIC, partition: 0, log: f.log, get highWatermark() { return f.log.durableEndOffset; }, ...f.limits }],
      checkpoint: () => f.logs.checkpoint(),
      checkIntervalMs: 20,
      clock: f.clock,
      logger: f.logger,
    });
    timed.start();
    try {
      await waitUntil(() => f.log.logStartOffset === 30, 10_000, 'a timed retention round');
    } finally {
      await timed.stop();
    }
    expect(f.log.segmentBaseOffsets()).toEqual([30]);
  });
});
