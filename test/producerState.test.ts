import { afterEach, describe, expect, it } from 'vitest';
import { ProducerSequenceError, ProducerStateManager } from '../engine/log/producerState.js';
import { decodeRecords, encodeBatch } from '../segments/recordBatch.js';
import { labelledBatch, openTestLog, readAll, temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function header(producerId: number, producerEpoch: number, baseSequence: number, count: number) {
  return { producerId, producerEpoch, baseSequence, lastOffsetDelta: count - 1 };
}

function idempotentBatch(producerId: number, epoch: number, sequence: number, values: string[]): Buffer {
  return encodeBatch(values.map((value) => ({ key: null, value: Buffer.from(value), timestamp: 1_700_000_000_000 })), { producerId, producerEpoch: epoch, baseSequence: sequence });
}

describe('ProducerStateManager', () => {
  it('accepts sequences in order, recognises each of the last five batches as duplicates, and refuses gaps', () => {
    const state = new ProducerStateManager();
    let offset = 0;
    for (let sequence = 0; sequence < 30; sequence += 3) {
      expect(state.check(header(7, 0, sequence, 3))).toEqual({ kind: 'append' });
      state.record(header(7, 0, sequence, 3), offset, 0);
      offset += 3;
    }
    // The last five batches (sequences 15..29) are remembered with their offsets.
    expect(state.check(header(7, 0, 27, 3))).toEqual({ kind: 'duplicate', batch: { firstSequence: 27, lastSequence: 29, baseOffset: 27, lastOffset: 29 } });
    expect(state.check(header(7, 0, 15, 3))).toMatchObject({ kind: 'duplicate' });
    expect(() => state.check(header(7, 0, 12, 3))).toThrow(ProducerSequenceError);
    expect(() => state.check(header(7, 0, 31, 1))).toThrow(expect.objectContaining({ kafkaErrorCode: 45 }) as Error);
  });

  it('refuses an older epoch, and makes a newer epoch start at sequence 0', () => {
    const state = new ProducerStateManager();
    state.record(header(1, 3, 0, 1), 0, 0);
    expect(() => state.check(header(1, 2, 1, 1))).toThrow(expect.objectContaining({ kafkaErrorCode: 47 }) as Error);
    expect(() => state.check(header(1, 4, 5, 1))).toThrow(expect.objectContaining({ kafkaErrorCode: 45 }) as Error);
    expect(state.check(header(1, 4, 0, 1))).toEqual({ kind: 'append' });
    expect(() => state.check(header(2, 0, 9, 1))).toThrow(expect.objectContaining({ kafkaErrorCode: 45 }) as Error);
    expect(state.check(header(-1, -1, -1, 1))).toEqual({ kind: 'append' });
  });

  it('wraps the sequence from 2^31-1 to 0', () => {
    const state = new ProducerStateManager();
    state.record(header(3, 0, 0x7fffffff - 1, 2), 0, 0);
    expect(state.check(header(3, 0, 0, 5))).toEqual({ kind: 'append' });
  });

  it('survives a snapshot round trip, keeping only batches below the snapshot offset', () => {
    const state = new ProducerStateManager();
    state.record(header(5, 0, 0, 2), 0, 0);
    state.record(header(5, 0, 2, 2), 2, 0);
    const restored = ProducerStateManager.fromSnapshot(state.toSnapshot(2));
    expect(restored.check(header(5, 0, 0, 2))).toMatchObject({ kind: 'duplicate', batch: { baseOffset: 0 } });
    expect(restored.check(header(5, 0, 2, 2))).toEqual({ kind: 'append' });
  });
});

describe('idempotent appends to a PartitionLog', () => {
  it('answers a retried batch with its original offsets and writes it once', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const { log } = await openTestLog(dir.path);
    const first = await log.append(idempotentBatch(11, 0, 0, ['a', 'b']));
    const retry = await log.append(idempotentBatch(11, 0, 0, ['a', 'b']));
    expect(retry).toMatchObject({ baseOffset: first.baseOffset, lastOffset: first.lastOffset });
    // A retry that arrives while the original is still queued waits for the original.
    const [original, concurrentRetry] = await Promise.all([log.append(idempotentBatch(11, 0, 2, ['c'])), log.append(idempotentBatch(11, 0, 2, ['c']))]);
    expect(concurrentRetry).toMatchObject({ baseOffset: original.baseOffset });
    expect((await readAll(log)).flatMap((b) => decodeRecords(b).map((r) => r.value!.toString()))).toEqual(['a', 'b', 'c']);
    await expect(log.append(idempotentBatch(11, 0, 9, ['gap']))).rejects.toMatchObject({ kafkaErrorCode: 45 });
    await log.close();
  });

  it('rebuilds producer state after a crash from the batches recovery scanned, producer batches or not', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const first = await openTestLog(dir.path);
    await first.log.append(labelledBatch('plain', 1, 1000));
    const offsets: number[] = [];
    for (let sequence = 0; sequence < 4; sequence++) offsets.push((await first.log.append(idempotentBatch(31, 0, sequence, [`v${sequence}`]))).baseOffset);
    // No close: the process died with no snapshot past offset 0, so recovery scans the segment.
    const again = await openTestLog(dir.path, {}, { cleanShutdown: false, recoveryPoint: 0 });
    expect(again.log.recovery?.segmentsScanned).toBe(1);
    expect(await again.log.append(idempotentBatch(31, 0, 3, ['v3']))).toMatchObject({ baseOffset: offsets[3] });
    await expect(again.log.append(idempotentBatch(31, 0, 9, ['gap']))).rejects.toMatchObject({ kafkaErrorCode: 45 });
    await again.log.close();
    await first.log.close().catch(() => undefined);
  });

  it('rebuilds producer state after a restart, from a snapshot at a roll and a scan after it', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const first = await openTestLog(dir.path, { segmentBytes: 300 });
    let sequence = 0;
    const offsets: number[] = [];
    for (let i = 0; i < 12; i++) {
      offsets.push((await first.log.append(idempotentBatch(21, 0, sequence, [`v${i}`]))).baseOffset);
      sequence++;
    }
    expect(first.log.segmentCount).toBeGreaterThan(2);
    await first.log.close();
    for (const cleanShutdown of [true, false]) {
      const again = await openTestLog(dir.path, { segmentBytes: 300 }, { cleanShutdown, recoveryPoint: 0 });
      // The last batch is still known: its retry is a duplicate, the next sequence is accepted.
      expect(await again.log.append(idempotentBatch(21, 0, 11, ['v11']))).toMatchObject({ baseOffset: offsets[11] });
      await expect(again.log.append(idempotentBatch(21, 0, 20, ['gap']))).rejects.toMatchObject({ kafkaErrorCode: 45 });
      await again.log.close();
    }
  });
});
