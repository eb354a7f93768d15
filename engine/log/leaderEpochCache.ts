// The leader epoch of every offset range of a partition, persisted as Kafka's
// `leader-epoch-checkpoint` (version 0, count, then `epoch startOffset` lines).
//
// The log stamps each appended batch with the current epoch (bytes 12-15, outside the CRC), so
// this cache is also what lets a read tell a rotted epoch field from a real one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointText, parseCheckpoint, readCheckpoint, writeCheckpoint } from '../../segments/checkpointFile.js';

export const LEADER_EPOCH_CHECKPOINT = 'leader-epoch-checkpoint';

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

export class LeaderEpochCache {
  private constructor(
    private readonly path: string,
    private entries: EpochEntry[],
  ) {}

  /** The cache of a directory without a checkpoint file (nothing read). */
  static empty(dir: string): LeaderEpochCache {
    return new LeaderEpochCache(join(dir, LEADER_EPOCH_CHECKPOINT), []);
  }

  static async load(dir: string): Promise<LeaderEpochCache> {
    const path = join(dir, LEADER_EPOCH_CHECKPOINT);
    return LeaderEpochCache.fromRows(path, (await readCheckpoint(path, 2)) ?? []);
  }

  /** load() with a blocking read, for a worker thread's recovery task. */
  static loadBlocking(dir: string): LeaderEpochCache {
    const path = join(dir, LEADER_EPOCH_CHECKPOINT);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new LeaderEpochCache(path, []);
      throw error;
    }
    return LeaderEpochCache.fromRows(path, parseCheckpoint(text, path, 2) ?? []);
  }

  private static fromRows(path: string, rows: string[][]): LeaderEpochCache {
    const entries = rows.map(([epoch, startOffset]) => ({ epoch: Number(epoch), startOffset: Number(startOffset) }));
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const previous = entries[i - 1];
      if (!Number.isSafeInteger(entry.epoch) || !Number.isSafeInteger(entry.startOffset) || entry.epoch < 0 || entry.startOffset < 0) {
        throw new Error(`${path}: entry ${i} is not two non-negative integers`);
      }
      if (previous !== undefined && (entry.epoch <= previous.epoch || entry.startOffset < previous.startOffset)) {
        throw new Error(`${path}: entry ${i} does not increase`);
      }
    }
    return new LeaderEpochCache(path, entries);
  }

  get latestEpoch(): number | null {
    return this.entries[this.entries.length - 1]?.epoch ?? null;
  }

  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  list(): readonly EpochEntry[] {
    return this.entries;
  }

  /** The epoch of the batch starting at `offset`, or null when the cache does not cover it. */
  epochFor(offset: number): number | null {
    let low = 0;
    let high = this.entries.length - 1;
    let found: EpochEntry | null = null;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const entry = this.entries[middle]!;
      if (entry.startOffset <= offset) {
        found = entry;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found?.epoch ?? null;
  }

  /** Records that `epoch` starts at `startOffset`; persists before returning. */
  async assign(epoch: number, startOffset: number): Promise<void> {
    const latest = this.entries[this.entries.length - 1];
    if (latest !== undefined && epoch === latest.epoch) return;
    if (latest !== undefined && (epoch < latest.epoch || startOffset < latest.startOffset)) {
      throw new Error(`leader epoch ${epoch}@${startOffset} goes backwards from ${latest.epoch}@${latest.startOffset}`);
    }
    this.entries = [...this.entries, { epoch, startOffset }];
    await this.persist();
  }

  /** Forgets epochs that start at or after `offset` (the log was truncated there). */
  async truncateFromEnd(offset: number): Promise<void> {
    const kept = this.entries.filter((entry) => entry.startOffset < offset);
    if (kept.length === this.entries.length) return;
    this.entries = kept;
    await this.persist();
  }

  /**
   * The first epoch of a log that has no checkpoint file yet, in memory only: the caller writes
   * checkpointText() to the returned path later (LogState.deferWrite).
   */
  assignFirstInMemory(epoch: number, startOffset: number): string {
    if (this.entries.length > 0) throw new Error(`${this.path} has entries already`);
    this.entries = [{ epoch, startOffset }];
    return this.path;
  }

  /** The checkpoint file's contents for the entries now. */
  checkpointText(): string {
    return checkpointText(this.entries.map((entry) => [entry.epoch, entry.startOffset]));
  }

  private async persist(): Promise<void> {
    await writeCheckpoint(this.path, this.entries.map((entry) => [entry.epoch, entry.startOffset]));
  }
}
