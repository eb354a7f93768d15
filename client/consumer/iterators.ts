// The iterators records() and batches() return. Hand-written (not async generators) so a buffered
// record costs one resolved promise.
//
// keyDeserializer/valueDeserializer (records() only; batches() stay raw) turn each non-null key and
// value into the application's type as the record is handed out. One that throws makes the
// iterator throw KafkaRecordDeserializationError (topic, partition, offset); the position stays at
// that record and the partition is fetched again from there, so the user decides: seek past it
// (offset + 1) or fix the deserializer.
import { RecordCursor, type ConsumerRecord, type RecordBatch } from '../recordDecoder.js';
import type { Deserializer } from '../serializers.js';
import { KafkaRecordDeserializationError } from './errors.js';
import type { FetchPipeline } from './fetchPipeline.js';
import { advance, type PartitionState } from './positions.js';
import type { Chunk } from './prefetchBuffer.js';

/** Records handed out by an iterator between two turns of the event loop. */
const YIELD_EVERY_RECORDS = 1024;

/**
 * The fetched chunks an iterator walks, one at a time: its decoded batches in order, then the
 * partition's position moves past the chunk, then an error found in it (a corrupt batch) is
 * thrown, after the good batches before it were handed out.
 */
class ChunkWalker {
  chunk: Chunk | null = null;
  private batches: RecordBatch[] = [];
  private batchIndex = 0;
  private pendingError: Error | null = null;

  constructor(private readonly pipeline: FetchPipeline) {}

  nextBatch(): RecordBatch | undefined {
    return this.batches[this.batchIndex++];
  }

  /** The current chunk is used up: move its partition past it and report its error, if any. */
  finishChunk(): void {
    const chunk = this.chunk!;
    advance(chunk.state, chunk.epoch, chunk.nextOffset);
    this.chunk = null;
    if (this.pendingError !== null) {
      const error = this.pendingError;
      this.pendingError = null;
      throw error;
    }
  }

  /** Forgets the current chunk (its partition was sought or paused meanwhile). */
  drop(): void {
    this.chunk = null;
  }

  /** The iteration ends early: what was not handed out is fetched again by the next iterator. */
  release(): void {
    if (this.chunk !== null && this.pipeline.isCurrent(this.chunk, this.chunk.epoch)) this.pipeline.rewind(this.chunk.state);
    this.chunk = null;
  }

  /** Takes and decodes the next fetched chunk; false when none is ready. */
  loadNext(): boolean {
    const next = this.pipeline.takeChunk();
    if (next === null) return false;
    if (next instanceof Error) throw next;
    const decoded = this.pipeline.decodeChunk(next);
    this.chunk = next;
    this.batches = decoded.batches;
    this.batchIndex = 0;
    this.pendingError = decoded.error;
    if (decoded.error !== null) next.nextOffset = decoded.batches.length > 0 ? decoded.batches[decoded.batches.length - 1]!.lastOffset + 1 : next.fetchOffset;
    next.epoch = next.state.epoch; // decodeChunk bumps the epoch on a corrupt batch
    return true;
  }
}

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

/**
 * One record per next(). The fast path (the next record of the batch being read, its partition
 * not sought, paused or unassigned meanwhile: same epoch) costs a cursor step, the record object
 * and one resolved promise; everything else (next batch, next chunk, waiting, yielding to the
 * event loop) is in nextGeneral.
 */
export class RecordIterator<K, V> implements AsyncIterableIterator<ConsumerRecord<K, V>> {
  private readonly cursor = new RecordCursor();
  private readonly walker: ChunkWalker;
  /** The partition of the batch the cursor reads, and the epoch of its chunk; null between batches. */
  private state: PartitionState | null = null;
  private epoch = 0;
  private untilYield = YIELD_EVERY_RECORDS;
  private done = false;
  private readonly deserializing: boolean;

  constructor(
    private readonly pipeline: FetchPipeline,
    private readonly idleTimeoutMs: number | undefined,
    private readonly keyDeserializer: Deserializer<K> | null,
    private readonly valueDeserializer: Deserializer<V> | null,
  ) {
    this.walker = new ChunkWalker(pipeline);
    this.deserializing = keyDeserializer !== null || valueDeserializer !== null;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    const state = this.state;
    if (state !== null && state.epoch === this.epoch && --this.untilYield > 0 && !this.pipeline.isClosed) {
      try {
        if (this.cursor.next()) return Promise.resolve({ value: this.take(state), done: false });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.nextGeneral();
  }

  return(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    this.done = true;
    this.state = null;
    this.walker.release();
    return Promise.resolve(DONE);
  }

  private nextGeneral(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    if (this.done) return Promise.resolve(DONE);
    if (this.untilYield <= 0) {
      // Buffered records resolve at once, so a loop over them runs in microtasks only: without a
      // turn of the event loop now and then, no socket data is read and no next Fetch is sent
      // while a chunk is consumed, which would undo the pipelining.
      this.untilYield = YIELD_EVERY_RECORDS;
      return new Promise((resolve) => setImmediate(() => resolve(this.next())));
    }
    try {
      const record = this.nextBuffered();
      if (record !== null) return Promise.resolve({ value: record, done: false });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.nextSlow();
  }

  private async nextSlow(): Promise<IteratorResult<ConsumerRecord<K, V>>> {
    for (;;) {
      if (this.done || this.pipeline.isClosed) return DONE;
      const record = this.nextBuffered();
      if (record !== null) return { value: record, done: false };
      if (!(await this.pipeline.waitForData(this.idleTimeoutMs))) return DONE;
    }
  }

  /** The next record already fetched, or null; throws a partition's error in its turn. */
  private nextBuffered(): ConsumerRecord<K, V> | null {
    const pipeline = this.pipeline;
    const walker = this.walker;
    for (;;) {
      const state = this.state;
      if (state !== null) {
        if (state.epoch === this.epoch && !pipeline.isClosed && this.cursor.next()) return this.take(state);
        this.state = null;
      }
      const chunk = walker.chunk;
      if (chunk !== null) {
        if (pipeline.isCurrent(chunk, chunk.epoch) && !chunk.state.paused) {
          const batch = walker.nextBatch();
          if (batch !== undefined) {
            this.cursor.reset(batch);
            this.state = chunk.state;
            this.epoch = chunk.epoch;
            continue;
          }
          walker.finishChunk();
          continue;
        }
        walker.drop();
      }
      if (!walker.loadNext()) return null;
    }
  }

  /** The cursor's record, handed out: the partition's position moves past it. */
  private take(state: PartitionState): ConsumerRecord<K, V> {
    const cursor = this.cursor;
    const offset = cursor.offset;
    const record = this.deserializing ? this.deserialized(state) : (cursor.record(state.topic, state.partition) as ConsumerRecord<unknown, unknown> as ConsumerRecord<K, V>);
    if (offset >= state.position) state.position = offset + 1;
    return record;
  }

  /** The record with its key and value deserialized; on failure the position stays at it. */
  private deserialized(state: PartitionState): ConsumerRecord<K, V> {
    const cursor = this.cursor;
    const rawKey = cursor.key();
    const rawValue = cursor.value();
    let field: 'key' | 'value' = 'key';
    let format = '';
    try {
      let key: K | null = null;
      if (rawKey !== null) {
        if (this.keyDeserializer === null) key = rawKey as unknown as K;
        else {
          format = this.keyDeserializer.name;
          key = this.keyDeserializer.deserialize(rawKey);
        }
      }
      field = 'value';
      let value: V | null = null;
      if (rawValue !== null) {
        if (this.valueDeserializer === null) value = rawValue as unknown as V;
        else {
          format = this.valueDeserializer.name;
          value = this.valueDeserializer.deserialize(rawValue);
        }
      }
      return { topic: state.topic, partition: state.partition, offset: BigInt(cursor.offset), timestamp: cursor.timestamp, key, value, headers: cursor.headers() };
    } catch (error) {
      // Fetched again from this record by the next read: it is not skipped unless the user seeks past it.
      this.state = null;
      this.pipeline.rewind(state);
      throw new KafkaRecordDeserializationError(state.topic, state.partition, cursor.offset, field, format, error);
    }
  }
}

export class BatchIterator implements AsyncIterableIterator<RecordBatch> {
  private readonly walker: ChunkWalker;
  private sinceYield = 0;
  private done = false;

  constructor(private readonly pipeline: FetchPipeline, private readonly idleTimeoutMs: number | undefined) {
    this.walker = new ChunkWalker(pipeline);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<RecordBatch>> {
    for (;;) {
      if (this.done || this.pipeline.isClosed) return { value: undefined, done: true };
      const batch = this.nextBuffered();
      if (batch !== null) {
        this.sinceYield += batch.recordCount;
        if (this.sinceYield >= YIELD_EVERY_RECORDS) {
          this.sinceYield = 0; // a turn of the event loop: see RecordIterator.next
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        return { value: batch, done: false };
      }
      if (!(await this.pipeline.waitForData(this.idleTimeoutMs))) return { value: undefined, done: true };
    }
  }

  return(): Promise<IteratorResult<RecordBatch>> {
    this.done = true;
    this.walker.release();
    return Promise.resolve({ value: undefined, done: true });
  }

  private nextBuffered(): RecordBatch | null {
    const pipeline = this.pipeline;
    const walker = this.walker;
    for (;;) {
      const chunk = walker.chunk;
      if (chunk !== null) {
        const state = chunk.state;
        if (pipeline.isCurrent(chunk, chunk.epoch) && !state.paused) {
          const batch = walker.nextBatch();
          if (batch !== undefined) {
            // The position moves past the batch as it is handed out (the whole batch is the user's).
            advance(state, chunk.epoch, batch.lastOffset + 1);
            return batch;
          }
          walker.finishChunk();
          continue;
        }
        walker.drop();
      }
      if (!walker.loadNext()) return null;
    }
  }
}
