// The assigned partitions and each one's position, fetch offset, epoch and pause flag.
//
// Seeks bump the partition's epoch: answers and chunks of an older epoch are dropped (by whoever
// holds them: this module knows nothing of fetching).
import { KafkaConfigError } from '../errors.js';
import type { TopicPartition } from '../types.js';
import { INT32_MAX } from '../../common/limits.js';

export type OffsetInput = bigint | number;

export interface TopicPartitionOffset extends TopicPartition {
  /** Start here; without it, autoOffsetReset decides. */
  offset?: OffsetInput;
}

const MAX_ASSIGNED_PARTITIONS = 100_000;

export interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  /** Next offset handed to the user; -1 while a reset (ListOffsets) is pending. */
  position: number;
  /** Next offset to fetch. */
  fetchOffset: number;
  paused: boolean;
  epoch: number;
  fetching: boolean;
  resetting: boolean;
  /** Set by a 'none' out-of-range or a corrupt batch: not fetched until a seek. */
  failed: Error | null;
  backoffUntilMs: number;
  backoffMs: number;
  assigned: boolean;
}

export function keyOf(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

export class PartitionPositions {
  private readonly partitions = new Map<string, PartitionState>();

  get size(): number {
    return this.partitions.size;
  }

  values(): IterableIterator<PartitionState> {
    return this.partitions.values();
  }

  has(topic: string, partition: number): boolean {
    return this.partitions.has(keyOf(topic, partition));
  }

  stateOf(topic: string, partition: number): PartitionState {
    const state = this.partitions.get(keyOf(topic, partition));
    if (state === undefined) throw new KafkaConfigError(`${keyOf(topic, partition)} is not assigned`);
    return state;
  }

  /**
   * Replaces the assigned set (offsets are not applied here). Partitions kept keep their state;
   * returns those no longer assigned, their epoch bumped so what was fetched for them is stale.
   */
  replace(partitions: readonly TopicPartitionOffset[]): PartitionState[] {
    if (!Array.isArray(partitions)) throw new KafkaConfigError('assign() takes an array of {topic, partition, offset?}');
    if (partitions.length > MAX_ASSIGNED_PARTITIONS) throw new KafkaConfigError(`at most ${MAX_ASSIGNED_PARTITIONS} partitions can be assigned, got ${partitions.length}`);
    const next = new Map<string, PartitionState>();
    for (const entry of partitions) {
      checkTopicPartition(entry);
      const key = keyOf(entry.topic, entry.partition);
      if (next.has(key)) throw new KafkaConfigError(`${key} is assigned twice`);
      const state = this.partitions.get(key) ?? newState(entry.topic, entry.partition, key);
      next.set(key, state);
    }
    const removed: PartitionState[] = [];
    for (const [key, state] of this.partitions) {
      if (next.has(key)) continue;
      state.assigned = false;
      state.epoch++;
      removed.push(state);
    }
    this.partitions.clear();
    for (const [key, state] of next) {
      state.assigned = true;
      this.partitions.set(key, state);
    }
    return removed;
  }

  assignment(): TopicPartition[] {
    return [...this.partitions.values()].map((state) => ({ topic: state.topic, partition: state.partition }));
  }

  paused(): TopicPartition[] {
    return [...this.partitions.values()].filter((state) => state.paused).map((state) => ({ topic: state.topic, partition: state.partition }));
  }

  /** The offset of the next record the iterators will hand out; null while it is being reset. */
  position(topic: string, partition: number): bigint | null {
    const state = this.stateOf(topic, partition);
    return state.position < 0 ? null : BigInt(state.position);
  }
}

/** Position and fetch offset move to `offset`; a failure or backoff of the partition is forgotten. */
export function seekState(state: PartitionState, offset: OffsetInput): void {
  const value = typeof offset === 'bigint' ? Number(offset) : offset;
  if (!Number.isSafeInteger(value) || value < 0) throw new KafkaConfigError(`offset must be a non-negative integer, got ${String(offset)}`);
  state.epoch++;
  state.position = value;
  state.fetchOffset = value;
  state.failed = null;
  state.resetting = false;
  state.backoffMs = 0;
  state.backoffUntilMs = 0;
}

/** What was fetched beyond the position is forgotten: the next fetch starts there. */
export function rewindState(state: PartitionState): void {
  state.epoch++;
  if (state.position >= 0) state.fetchOffset = state.position;
}

/** The position moves forward to `position`, unless the partition was sought since `epoch`. */
export function advance(state: PartitionState, epoch: number, position: number): void {
  if (state.epoch === epoch && position > state.position) state.position = position;
}

function newState(topic: string, partition: number, key: string): PartitionState {
  return { topic, partition, key, position: -1, fetchOffset: -1, paused: false, epoch: 0, fetching: false, resetting: false, failed: null, backoffUntilMs: 0, backoffMs: 0, assigned: true };
}

function checkTopicPartition(entry: TopicPartition): void {
  if (typeof entry !== 'object' || entry === null || typeof entry.topic !== 'string' || entry.topic.length === 0) throw new KafkaConfigError('each partition needs a non-empty topic string');
  if (!Number.isInteger(entry.partition) || entry.partition < 0 || entry.partition > INT32_MAX) throw new KafkaConfigError(`partition must be a non-negative integer, got ${String(entry.partition)}`);
}
