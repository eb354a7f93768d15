// Partition (engine/partition/): a log with its replica state. What consumers may see is bounded
// by the high watermark, acks=-1 waits for it, and the rule that sets it (the smallest log end
// over the ISR) is the one replication will use: followers are simulated here by reporting
// their log ends the way issue 13's follower fetches will.
import { describe, expect, it } from 'vitest';
import { ReplicationTimeoutError } from '../engine/errors.js';
import { Partition } from '../engine/partition/partition.js';
import { ReplicaState } from '../engine/partition/replicaState.js';
import { encodeBatch } from '../segments/recordBatch.js';
import { labelledBatch, useFreshLogs } from './support/logs.js';

const { freshLog } = useFreshLogs();
const T0 = 1_700_000_000_000;

/** A partition led by replica 0 with replica 1 in its ISR, so the high watermark waits for 1. */
async function twoReplicaPartition(): Promise<Partition> {
  const { log } = await freshLog();
  return new Partition('orders', 0, log, { isr: [0, 1] });
}

describe('a single-node partition', () => {
  it('has its high watermark at the log end once appends are acknowledged, and answers acks=-1 then', async () => {
    const { log } = await freshLog();
    const partition = new Partition('orders', 0, log);
    expect(partition.highWatermark).toBe(0);
    const result = await partition.appendAsLeader(labelledBatch('a', 3, T0), -1, 1_000);
    expect(result).toMatchObject({ baseOffset: 0, lastOffset: 2 });
    expect(partition.highWatermark).toBe(3);
    expect(partition.logEndOffset).toBe(3);
    expect((await partition.read(0, 1 << 20)).highWatermark).toBe(3);
  });

  it('under flush-per-append never shows records that are not synced yet: the high watermark stays at or below the recovery point', async () => {
    const { log } = await freshLog({ flush: { mode: 'every-append' } });
    const partition = new Partition('orders', 0, log);
    const samples: Array<{ highWatermark: number; recoveryPoint: number; logEnd: number }> = [];
    let appending = true;
    const sample = (): void => {
      samples.push({ highWatermark: partition.highWatermark, recoveryPoint: log.recoveryPoint, logEnd: log.logEndOffset });
      if (appending) setImmediate(sample);
    };
    sample();
    const appends = Array.from({ length: 40 }, (_, i) => partition.appendAsLeader(labelledBatch(`b${i}`, 5, T0), -1, 5_000));
    await Promise.all(appends);
    appending = false;
    for (const seen of samples) expect(seen.highWatermark).toBeLessThanOrEqual(seen.recoveryPoint);
    // The log end ran ahead of the mark while a group waited for its fdatasync: the two differ.
    expect(samples.some((seen) => seen.logEnd > seen.highWatermark)).toBe(true);
    expect(partition.highWatermark).toBe(200);
  });
});

describe('the high watermark over an ISR of two', () => {
  it('does not move past what the follower has, so reads, timestamp lookups and acks=1 appends stop below it', async () => {
    const partition = await twoReplicaPartition();
    const result = await partition.appendAsLeader(encodeBatch([{ key: null, value: Buffer.from('x'), timestamp: T0 }, { key: null, value: Buffer.from('y'), timestamp: T0 + 5 }], { baseTimestamp: T0 }), 1, 1_000);
    expect(result.lastOffset).toBe(1);
    expect(partition.logEndOffset).toBe(2);
    expect(partition.highWatermark).toBe(0);
    expect((await partition.read(0, 1 << 20)).records.length).toBe(0);
    expect(await partition.offsetForTimestamp(T0)).toBeNull();
    await expect(partition.deleteRecordsBelow(1)).rejects.toThrow('outside 0..0');

    partition.updateFollowerEnd(1, 2);
    expect(partition.highWatermark).toBe(2);
    expect((await partition.read(0, 1 << 20)).records.length).toBeGreaterThan(0);
    expect(await partition.offsetForTimestamp(T0 + 1)).toEqual({ offset: 1, timestamp: T0 + 5 });
  });

  it('answers acks=-1 only when the follower reports the append, and wakes high-watermark listeners then', async () => {
    const partition = await twoReplicaPartition();
    let answered = false;
    const append = partition.appendAsLeader(labelledBatch('a', 4, T0), -1, 10_000).then((result) => {
      answered = true;
      return result;
    });
    const moved = new Promise<number>((resolve) => partition.onHighWatermarkAdvance(() => resolve(partition.highWatermark)));
    // Let the local append finish: the answer still waits for the follower.
    while (partition.logEndOffset < 4) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);

    partition.updateFollowerEnd(1, 2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    expect(await moved).toBe(2);

    partition.updateFollowerEnd(1, 4);
    expect(await append).toMatchObject({ baseOffset: 0, lastOffset: 3 });
    expect(partition.highWatermark).toBe(4);
  });

  it('fails acks=-1 with REQUEST_TIMED_OUT when the follower does not catch up in time, keeping the records', async () => {
    const partition = await twoReplicaPartition();
    const refused = partition.appendAsLeader(labelledBatch('a', 2, T0), -1, 20);
    await expect(refused).rejects.toBeInstanceOf(ReplicationTimeoutError);
    await expect(refused).rejects.toMatchObject({ kafkaErrorCode: 7 });
    expect(partition.logEndOffset).toBe(2);
    expect(partition.highWatermark).toBe(0);
  });
});

describe('ReplicaState', () => {
  it('keeps the leader in its ISR and never moves the high watermark backwards', () => {
    expect(() => new ReplicaState({ leaderEpoch: 0, highWatermark: 0, isr: [1, 2] })).toThrow('must be in its own ISR');
    const state = new ReplicaState({ leaderEpoch: 3, highWatermark: 0, isr: [0, 1] });
    state.updateFollowerEnd(1, 10);
    expect(state.advance(8)).toBe(true);
    expect(state.highWatermark).toBe(8);
    state.updateFollowerEnd(1, 5);
    expect(state.advance(8)).toBe(false);
    expect(state.highWatermark).toBe(8);
    expect(state.leaderEpoch).toBe(3);
    expect(() => state.updateFollowerEnd(0, 1)).toThrow('does not report to itself');
  });
});
