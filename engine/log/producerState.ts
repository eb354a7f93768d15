// Idempotent producer state of one partition: for every producer id, its epoch and the sequence
// ranges of its last five batches with the offsets they got. This is what turns a producer's
// retry into "here is your original offset" instead of a duplicate record.
//
// Rules (Kafka's, for producerId >= 0; producerId -1 skips all of this):
//   - an older epoch than the one we know            -> INVALID_PRODUCER_EPOCH (47)
//   - a newer epoch must start again at sequence 0   -> else OUT_OF_ORDER_SEQUENCE_NUMBER (45)
//   - an unknown producer must start at sequence 0   -> else OUT_OF_ORDER_SEQUENCE_NUMBER (45)
//   - a batch equal to one of the last five          -> duplicate: answer with its original offsets
//   - otherwise baseSequence must be lastSequence + 1 (wrapping from 2^31-1 to 0) -> else 45
//
// The state is derived from batch headers alone (producerId, epoch, baseSequence,
// lastOffsetDelta), so it can be rebuilt by scanning the log; snapshots (`<offset>.snapshot`,
// msgpackr) taken at segment rolls bound how far back that scan must go.
import { pack, unpack } from 'msgpackr';
import type { BatchHeader } from '../../segments/recordBatch.js';
import { INT32_MAX } from '../../common/limits.js';

/** Kafka keeps this many batches per producer for duplicate detection (max.in.flight 5). */
export const PRODUCER_BATCHES_REMEMBERED = 5;
/** Producers remembered per partition; the least recently active is forgotten past this. */
export const MAX_PRODUCERS_PER_PARTITION = 100_000;
const SNAPSHOT_VERSION = 1;

export interface ProducerBatch {
  firstSequence: number;
  lastSequence: number;
  baseOffset: number;
  lastOffset: number;
}

interface ProducerEntry {
  epoch: number;
  batches: ProducerBatch[];
  lastAppendMs: number;
}

export class ProducerSequenceError extends Error {
  override readonly name = 'ProducerSequenceError';
  constructor(
    readonly kafkaErrorCode: 45 | 47,
    message: string,
  ) {
    super(message);
  }
}

export type SequenceCheck = { kind: 'append' } | { kind: 'duplicate'; batch: ProducerBatch };

function nextSequence(sequence: number, delta: number): number {
  const next = sequence + delta;
  return next > INT32_MAX ? next - INT32_MAX - 1 : next;
}

export class ProducerStateManager {
  private readonly producers = new Map<number, ProducerEntry>();

  get producerCount(): number {
    return this.producers.size;
  }

  /** Decides what to do with a batch; throws ProducerSequenceError when it must be refused. */
  check(header: Pick<BatchHeader, 'producerId' | 'producerEpoch' | 'baseSequence' | 'lastOffsetDelta'>): SequenceCheck {
    if (header.producerId < 0) return { kind: 'append' };
    const entry = this.producers.get(header.producerId);
    const lastSequence = nextSequence(header.baseSequence, header.lastOffsetDelta);
    if (entry === undefined || header.producerEpoch > entry.epoch) {
      if (header.baseSequence !== 0) {
        throw new ProducerSequenceError(45, `producer ${header.producerId} epoch ${header.producerEpoch} must start at sequence 0, got ${header.baseSequence}`);
      }
      return { kind: 'append' };
    }
    if (header.producerEpoch < entry.epoch) {
      throw new ProducerSequenceError(47, `producer ${header.producerId} epoch ${header.producerEpoch} is older than ${entry.epoch}`);
    }
    const duplicate = entry.batches.find((batch) => batch.firstSequence === header.baseSequence && batch.lastSequence === lastSequence);
    if (duplicate !== undefined) return { kind: 'duplicate', batch: duplicate };
    const last = entry.batches[entry.batches.length - 1];
    const expected = last === undefined ? 0 : nextSequence(last.lastSequence, 1);
    if (header.baseSequence !== expected) {
      throw new ProducerSequenceError(45, `producer ${header.producerId} sent sequence ${header.baseSequence}, expected ${expected}`);
    }
    return { kind: 'append' };
  }

  /** Records a batch that got offsets [baseOffset, lastOffset]. Checks must have passed first. */
  record(header: Pick<BatchHeader, 'producerId' | 'producerEpoch' | 'baseSequence' | 'lastOffsetDelta'>, baseOffset: number, nowMs: number): void {
    if (header.producerId < 0) return;
    let entry = this.producers.get(header.producerId);
    if (entry === undefined || header.producerEpoch > entry.epoch) {
      entry = { epoch: header.producerEpoch, batches: [], lastAppendMs: nowMs };
    }
    entry.batches.push({
      firstSequence: header.baseSequence,
      lastSequence: nextSequence(header.baseSequence, header.lastOffsetDelta),
      baseOffset,
      lastOffset: baseOffset + header.lastOffsetDelta,
    });
    if (entry.batches.length > PRODUCER_BATCHES_REMEMBERED) entry.batches.shift();
    entry.lastAppendMs = nowMs;
    // Re-insert so Map order is least recently active first.
    this.producers.delete(header.producerId);
    this.producers.set(header.producerId, entry);
    if (this.producers.size > MAX_PRODUCERS_PER_PARTITION) {
      const oldest = this.producers.keys().next().value;
      if (oldest !== undefined) this.producers.delete(oldest);
    }
  }

  /** Forgets batches at or after `offset` (the log was truncated or a write was rewound). */
  truncateFrom(offset: number): void {
    for (const [producerId, entry] of this.producers) {
      entry.batches = entry.batches.filter((batch) => batch.baseOffset < offset);
      if (entry.batches.length === 0) this.producers.delete(producerId);
    }
  }

  /** Producers whose last append is older than `beforeMs` are forgotten (producer.id.expiration.ms). */
  expire(beforeMs: number): number {
    let removed = 0;
    for (const [producerId, entry] of this.producers) {
      if (entry.lastAppendMs < beforeMs) {
        this.producers.delete(producerId);
        removed++;
      }
    }
    return removed;
  }

  /** The state of batches below `belowOffset` as bytes for a `<offset>.snapshot` file. */
  toSnapshot(belowOffset: number): Buffer {
    const producers: Array<[number, number, number, ProducerBatch[]]> = [];
    for (const [producerId, entry] of this.producers) {
      const batches = entry.batches.filter((batch) => batch.lastOffset < belowOffset);
      if (batches.length > 0) producers.push([producerId, entry.epoch, entry.lastAppendMs, batches]);
    }
    return pack({ version: SNAPSHOT_VERSION, producers });
  }

  static fromSnapshot(bytes: Buffer): ProducerStateManager {
    const decoded = unpack(bytes) as { version?: unknown; producers?: unknown };
    if (decoded.version !== SNAPSHOT_VERSION || !Array.isArray(decoded.producers)) throw new Error('producer state snapshot has an unknown layout');
    const manager = new ProducerStateManager();
    for (const row of decoded.producers as unknown[]) {
      if (!Array.isArray(row) || row.length !== 4) throw new Error('producer state snapshot row is malformed');
      const [producerId, epoch, lastAppendMs, batches] = row as [number, number, number, ProducerBatch[]];
      if (!Number.isSafeInteger(producerId) || !Number.isInteger(epoch) || !Array.isArray(batches)) throw new Error('producer state snapshot row is malformed');
      manager.producers.set(producerId, { epoch, lastAppendMs, batches: batches.slice(-PRODUCER_BATCHES_REMEMBERED) });
    }
    return manager;
  }
}
