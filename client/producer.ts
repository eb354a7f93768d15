// The bundled producer.
//
//   send(topic, records) -> partition (explicit, murmur2 of the key, or sticky) -> the partition's
//   open BatchBuilder (records encoded in place into a pooled buffer) -> sealed when full, at
//   lingerMs, or on flush (header + one CRC; sequence numbers fixed here) -> drain: per round, one
//   ready batch per partition, grouped by leader, one Produce request per broker -> acknowledgement
//   hands every record its offset; the buffer goes back to the pool.
//
// Limits: bufferMemory bytes of batch buffers (send() waits for room), maxInFlightPerPartition
// batches per partition (at most 5 with idempotence, so the broker's five-batch duplicate window
// covers every retry), the connection's in-flight requests, deliveryTimeoutMs per batch.
//
// Idempotence (default when acks is 'all'): InitProducerId once, per-partition sequences assigned
// when a batch is sealed and never changed; a batch that fails retriably goes back into its
// partition's queue in sequence order, so a retry is the same bytes at the same sequence and the
// broker answers a duplicate with the original offsets.
import { ErrorCode } from '../protocol/errors.js';
import {
  decodeInitProducerIdResponse,
  decodeProduceResponse,
  encodeInitProducerIdRequest,
  encodeProduceRequest,
  type ProduceRequestTopicProduceData,
  type ProduceResponse,
} from '../protocol/generated/index.js';
import { RECORDS_OFFSET } from '../segments/recordBatch.js';
import { BatchBuilder, PRODUCER_COMPRESSIONS, type ProducerCompression, HEADER_OVERHEAD_BOUND_BYTES, RECORD_OVERHEAD_BOUND_BYTES, byteLengthOf, headersSize, type BatchOwner, type RecordHeaders } from './batchBuilder.js';
import { Cluster, type TopicMetadata } from './cluster.js';
import { ApiKey, type BrokerConnection } from './connection.js';
import { KafkaClosedError, KafkaConfigError, KafkaConnectionError, KafkaDeliveryError, KafkaProtocolError, isRetriable } from './errors.js';
import { StickyPartitioner, partitionForKey } from './partitioner.js';
import { resolveSerializer, type Serializer, type SerializerName } from './serializers.js';
import { INT32_MAX, MAX_REQUEST_TIMEOUT_MS, MAX_TIMER_DELAY_MS } from '../common/limits.js';

export type Acks = 0 | 1 | -1 | 'all';
/** Bytes and strings go as they are; other values through keySerializer / valueSerializer. */
export type RecordKey = unknown;
/** null is a null value (a tombstone on a compacted topic); other values as for RecordKey. */
export type RecordValue = unknown;

export interface ProducerRecord {
  key?: RecordKey;
  value: RecordValue;
  headers?: RecordHeaders;
  /** Milliseconds since the epoch; default: when send() was called. */
  timestamp?: number;
  /** Overrides the partitioner. */
  partition?: number;
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** -1n with acks=0 (the broker does not answer). */
  offset: bigint;
}

export interface ProducerOptions {
  bootstrapServers: readonly string[];
  clientId?: string;
  /** Default 'all' (-1). */
  acks?: Acks;
  /** Default 5. */
  lingerMs?: number;
  /** Bytes per batch buffer. Default 64 KiB. */
  batchSize?: number;
  /** Bytes of batch buffers in all. Default 32 MiB. */
  bufferMemory?: number;
  /** Codec of each batch's records. Default 'none'. */
  compression?: ProducerCompression;
  /** Default true when acks is 'all', else false; true with acks 0 or 1 is refused (as Kafka does). */
  idempotence?: boolean;
  /** Produce timeout and per-request timeout. Default 30 s. */
  requestTimeoutMs?: number;
  /** A batch not acknowledged within this time fails. Default 120 s. */
  deliveryTimeoutMs?: number;
  /** Attempts after the first. Default 2^31 - 1 (bounded by deliveryTimeoutMs). */
  retries?: number;
  /** First retry backoff, doubled per attempt up to retryBackoffMaxMs. Default 100 / 1000. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Default 5 (the most idempotence allows). */
  maxInFlightPerPartition?: number;
  connectTimeoutMs?: number;
  /** How values become bytes. Default 'auto': bytes and strings as they are, other values msgpack. */
  valueSerializer?: SerializerName | 'auto' | Serializer;
  /** How keys become bytes. Default 'auto', as for values. */
  keySerializer?: SerializerName | 'auto' | Serializer;
  /** For tests: the random source of the sticky partitioner. */
  random?: () => number;
}

const KIB = 1024;
const MIB = 1024 * 1024;
export const PRODUCER_DEFAULTS = {
  acks: -1 as Acks,
  lingerMs: 5,
  batchSize: 64 * KIB,
  bufferMemory: 32 * MIB,
  requestTimeoutMs: 30_000,
  deliveryTimeoutMs: 120_000,
  retries: INT32_MAX,
  retryBackoffMs: 100,
  retryBackoffMaxMs: 1_000,
  maxInFlightPerPartition: 5,
} as const;
const MAX_IDEMPOTENT_IN_FLIGHT = 5;
const MAX_BATCH_SIZE = 64 * MIB;
const MAX_LINGER_MS = 60_000;
/** Kafka sequences are int32 and wrap to 0. */
const SEQUENCE_WRAP = 0x80000000;

// ---------------------------------------------------------------------------------------------
// Pieces

/** Strings and bytes need no serializer call on the hot path; null stays null (no bytes). */
function toBytes(value: unknown, serializer: Serializer): string | Uint8Array | null {
  if (value === null || value === undefined) return null;
  if (serializer.name === 'auto' && (typeof value === 'string' || value instanceof Uint8Array)) return value;
  return serializer.serialize(value);
}

/** The offsets of one send() call, filled in as its batches are acknowledged. */
class SendTracker implements BatchOwner {
  readonly partitions: Int32Array;
  readonly offsets: Float64Array;
  /** Records not yet acknowledged, plus one while send() is still appending. */
  private remaining: number;
  private settled = false;
  readonly promise: Promise<SendTracker>;
  private resolveFn!: (value: SendTracker) => void;
  private rejectFn!: (error: Error) => void;

  constructor(readonly topic: string, count: number) {
    this.partitions = new Int32Array(count);
    this.offsets = new Float64Array(count);
    this.remaining = count + 1;
    this.promise = new Promise<SendTracker>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  acknowledge(index: number, offset: number): void {
    this.offsets[index] = offset;
    if (--this.remaining === 0) this.settle();
  }

  /** Called once every record was handed to a batch. */
  appended(): void {
    if (--this.remaining === 0) this.settle();
  }

  fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(error);
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveFn(this);
  }
}

/** Batch buffers of batchSize bytes, reused; bufferMemory bounds every buffer held. */
class BufferPool {
  private readonly free: Buffer[] = [];
  private allocatedBytes = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly batchSize: number, readonly totalBytes: number) {}

  get heldBytes(): number {
    return this.allocatedBytes;
  }

  tryAllocate(size: number): Buffer | null {
    if (size === this.batchSize) {
      const reused = this.free.pop();
      if (reused !== undefined) return reused;
    }
    while (this.allocatedBytes + size > this.totalBytes && this.free.length > 0) {
      this.allocatedBytes -= this.free.pop()!.length;
    }
    if (this.allocatedBytes + size > this.totalBytes) return null;
    this.allocatedBytes += size;
    return Buffer.allocUnsafeSlow(size);
  }

  release(buffer: Buffer): void {
    if (buffer.length === this.batchSize) this.free.push(buffer);
    else this.allocatedBytes -= buffer.length;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter();
  }

  waitForRoom(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every waiter (close, failures): they re-check their state. */
  wakeAll(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

class PartitionQueue {
  open: BatchBuilder | null = null;
  /** Sealed, waiting to be sent, in sequence order. */
  readonly ready: BatchBuilder[] = [];
  inFlight = 0;
  nextSequence = 0;
  backoffUntilMs = 0;

  constructor(readonly topic: string, readonly partition: number) {}
}

interface TopicState {
  metadata: TopicMetadata;
  queues: PartitionQueue[];
}

// ---------------------------------------------------------------------------------------------

export function createProducer(options: ProducerOptions): Producer {
  return new Producer(options);
}

export class Producer {
  private readonly acks: -1 | 0 | 1;
  private readonly lingerMs: number;
  private readonly batchSize: number;
  private readonly compression: ProducerCompression;
  private readonly idempotent: boolean;
  private readonly requestTimeoutMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly retries: number;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;
  private readonly maxInFlightPerPartition: number;
  private readonly keySerializer: Serializer;
  private readonly valueSerializer: Serializer;
  private readonly cluster: Cluster;
  private readonly pool: BufferPool;
  private readonly sticky: StickyPartitioner;
  private readonly topics = new Map<string, TopicState>();
  private readonly openQueues = new Set<PartitionQueue>();
  private readonly readyQueues = new Set<PartitionQueue>();
  private readonly nodeConnections = new Map<number, BrokerConnection>();
  private producerId = -1;
  private producerEpoch = -1;
  private connecting: Promise<void> | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private drainScheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryTimerAtMs = 0;
  /** Batches created and not yet acknowledged or failed. */
  private outstandingBatches = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(options: ProducerOptions) {
    const acks = options.acks ?? PRODUCER_DEFAULTS.acks;
    if (acks !== 0 && acks !== 1 && acks !== -1 && acks !== 'all') throw new KafkaConfigError(`acks must be 0, 1, -1 or 'all', got ${String(acks)}`);
    this.acks = acks === 'all' ? -1 : acks;
    this.lingerMs = checkInteger('lingerMs', options.lingerMs ?? PRODUCER_DEFAULTS.lingerMs, 0, MAX_LINGER_MS);
    this.batchSize = checkInteger('batchSize', options.batchSize ?? PRODUCER_DEFAULTS.batchSize, RECORDS_OFFSET + 64, MAX_BATCH_SIZE);
    const bufferMemory = checkInteger('bufferMemory', options.bufferMemory ?? PRODUCER_DEFAULTS.bufferMemory, this.batchSize, 2 ** 40);
    const compression = options.compression ?? 'none';
    if (!PRODUCER_COMPRESSIONS.includes(compression)) throw new KafkaConfigError(`compression must be one of ${PRODUCER_COMPRESSIONS.join(', ')}; got ${String(compression)}`);
    this.compression = compression;
    try {
      this.keySerializer = resolveSerializer(options.keySerializer);
      this.valueSerializer = resolveSerializer(options.valueSerializer);
    } catch (error) {
      throw new KafkaConfigError((error as Error).message);
    }
    if (options.idempotence === true && this.acks !== -1) throw new KafkaConfigError(`idempotence needs acks 'all' (-1), got acks ${String(acks)}`);
    this.idempotent = options.idempotence ?? this.acks === -1;
    this.requestTimeoutMs = checkInteger('requestTimeoutMs', options.requestTimeoutMs ?? PRODUCER_DEFAULTS.requestTimeoutMs, 1, MAX_REQUEST_TIMEOUT_MS);
    this.deliveryTimeoutMs = checkInteger('deliveryTimeoutMs', options.deliveryTimeoutMs ?? PRODUCER_DEFAULTS.deliveryTimeoutMs, 1, MAX_TIMER_DELAY_MS);
    this.retries = checkInteger('retries', options.retries ?? PRODUCER_DEFAULTS.retries, 0, INT32_MAX);
    this.retryBackoffMs = checkInteger('retryBackoffMs', options.retryBackoffMs ?? PRODUCER_DEFAULTS.retryBackoffMs, 0, MAX_TIMER_DELAY_MS);
    this.retryBackoffMaxMs = checkInteger('retryBackoffMaxMs', options.retryBackoffMaxMs ?? PRODUCER_DEFAULTS.retryBackoffMaxMs, this.retryBackoffMs, MAX_TIMER_DELAY_MS);
    const maxInFlight = this.idempotent ? MAX_IDEMPOTENT_IN_FLIGHT : 1024;
    this.maxInFlightPerPartition = checkInteger('maxInFlightPerPartition', options.maxInFlightPerPartition ?? PRODUCER_DEFAULTS.maxInFlightPerPartition, 1, maxInFlight);
    this.cluster = new Cluster({
      bootstrapServers: options.bootstrapServers,
      clientId: options.clientId ?? 'tidelog-producer',
      requestTimeoutMs: this.requestTimeoutMs,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      requiredApis: this.idempotent ? [ApiKey.Produce, ApiKey.InitProducerId] : [ApiKey.Produce],
      metadataWaitMs: Math.min(this.deliveryTimeoutMs, this.requestTimeoutMs),
    });
    this.pool = new BufferPool(this.batchSize, bufferMemory);
    this.sticky = new StickyPartitioner(options.random);
  }

  get isIdempotent(): boolean {
    return this.idempotent;
  }

  /** Bytes of batch buffers held (pooled or in use); never above bufferMemory. */
  get bufferedBytes(): number {
    return this.pool.heldBytes;
  }

  /** Drops every broker connection at once, as a network failure would (for fault tests). */
  dropConnectionsForTesting(): number {
    let dropped = 0;
    for (const connection of this.nodeConnections.values()) {
      if (connection.closed) continue;
      connection.destroy(new KafkaConnectionError(`connection to ${connection.address} dropped`));
      dropped++;
    }
    return dropped;
  }

  /** Connects and (when idempotent) obtains a producer id. send() calls it when needed. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new KafkaClosedError('the producer is closed'));
    this.connecting ??= this.initialize().catch((error: unknown) => {
      this.connecting = null;
      throw error;
    });
    return this.connecting;
  }

  /** Sends records to one topic; resolves with each record's partition and offset, in order. */
  async send(topic: string, records: readonly ProducerRecord[]): Promise<RecordMetadata[]> {
    const tracker = await this.sendRaw(topic, records);
    const out = new Array<RecordMetadata>(records.length);
    for (let i = 0; i < records.length; i++) out[i] = { topic, partition: tracker.partitions[i]!, offset: BigInt(tracker.offsets[i]!) };
    return out;
  }

  async sendOne(topic: string, record: ProducerRecord): Promise<RecordMetadata> {
    const tracker = await this.sendRaw(topic, [record]);
    return { topic, partition: tracker.partitions[0]!, offset: BigInt(tracker.offsets[0]!) };
  }

  /**
   * The allocation-light form of send(): resolves with parallel arrays (partition and offset per
   * record; offsets are exact, Kafka offsets stay far below 2^53).
   */
  async sendRaw(topic: string, records: readonly ProducerRecord[]): Promise<{ topic: string; partitions: Int32Array; offsets: Float64Array }> {
    if (this.closed) throw new KafkaClosedError('the producer is closed');
    if (this.connecting === null || this.producerId === -1 && this.idempotent) await this.connect();
    let state = this.topics.get(topic);
    if (state === undefined) state = await this.topicState(topic);
    const tracker = new SendTracker(topic, records.length);
    const partitionCount = state.queues.length;
    const now = Date.now();
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const key = toBytes(record.key ?? null, this.keySerializer);
      const value = toBytes(record.value, this.valueSerializer);
      let partition: number;
      if (record.partition !== undefined) {
        partition = record.partition;
        if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount) {
          throw new KafkaConfigError(`record ${i}: partition ${partition} is not in [0, ${partitionCount}) of topic ${topic}`);
        }
      } else if (key === null) {
        partition = this.sticky.partition(topic, partitionCount);
      } else {
        partition = partitionForKey(typeof key === 'string' ? Buffer.from(key, 'utf8') : key, partitionCount);
      }
      if (value !== null && typeof value !== 'string' && !(value instanceof Uint8Array)) {
        throw new KafkaConfigError(`record ${i}: value must be a Buffer, a string or null`);
      }
      const keyLength = byteLengthOf(key);
      const valueLength = byteLengthOf(value);
      const headers = record.headers;
      const headersBytes = headers === undefined ? 1 : headersSize(headers);
      const timestamp = record.timestamp ?? now;
      tracker.partitions[i] = partition;
      const queue = state.queues[partition]!;
      for (;;) {
        if (this.closed) throw new KafkaClosedError('the producer was closed during send()');
        let batch = queue.open;
        if (batch !== null && batch.append(key, keyLength, value, valueLength, headers, headersBytes, timestamp, tracker, i)) break;
        if (batch !== null) this.sealOpen(queue);
        const needed = RECORDS_OFFSET + RECORD_OVERHEAD_BOUND_BYTES + Math.max(keyLength, 0) + Math.max(valueLength, 0) + headersBytes + HEADER_OVERHEAD_BOUND_BYTES;
        if (needed > this.pool.totalBytes) throw new KafkaConfigError(`record ${i} needs ${needed} bytes, more than bufferMemory (${this.pool.totalBytes})`);
        const buffer = this.pool.tryAllocate(needed <= this.batchSize ? this.batchSize : needed);
        if (buffer === null) {
          this.scheduleDrain();
          await this.pool.waitForRoom();
          continue;
        }
        batch = new BatchBuilder(topic, partition, buffer, timestamp);
        this.outstandingBatches++;
        queue.open = batch;
        this.openQueues.add(queue);
        this.armLinger();
      }
    }
    tracker.appended();
    return tracker.promise;
  }

  /** Seals every open batch and resolves when every batch so far is acknowledged or failed. */
  async flush(): Promise<void> {
    for (const queue of this.openQueues) this.sealOpen(queue);
    this.openQueues.clear();
    this.scheduleDrain();
    if (this.outstandingBatches === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes, then closes every connection. Later sends reject with KafkaClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
      if (this.retryTimer !== null) clearTimeout(this.retryTimer);
      this.pool.wakeAll();
      await this.cluster.close();
    }
  }

  // -------------------------------------------------------------------------------------------

  private async initialize(): Promise<void> {
    const connection = await this.cluster.anyConnection();
    if (!this.idempotent) return;
    const deadline = Date.now() + this.deliveryTimeoutMs;
    let backoffMs = this.retryBackoffMs;
    for (;;) {
      const response = await connection.request(
        ApiKey.InitProducerId,
        (writer, version) => encodeInitProducerIdRequest(writer, version, { transactionalId: null, transactionTimeoutMs: INT32_MAX, producerId: -1n, producerEpoch: -1 }),
        decodeInitProducerIdResponse,
      );
      if (response.errorCode === ErrorCode.NONE) {
        const id = Number(response.producerId);
        if (!Number.isSafeInteger(id) || id < 0) throw new KafkaProtocolError(ErrorCode.UNKNOWN_SERVER_ERROR, `InitProducerId answered producer id ${response.producerId}`);
        this.producerId = id;
        this.producerEpoch = response.producerEpoch;
        return;
      }
      const error = new KafkaProtocolError(response.errorCode, 'InitProducerId');
      if (!error.retriable || Date.now() + backoffMs > deadline) throw error;
      await new Promise<void>((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, this.retryBackoffMaxMs);
    }
  }

  private async topicState(topic: string): Promise<TopicState> {
    const metadata = await this.cluster.topic(topic);
    const existing = this.topics.get(topic);
    if (existing !== undefined) return existing;
    const queues: PartitionQueue[] = [];
    for (let p = 0; p < metadata.leaders.length; p++) queues.push(new PartitionQueue(topic, p));
    const state: TopicState = { metadata, queues };
    this.topics.set(topic, state);
    return state;
  }

  private sealOpen(queue: PartitionQueue): void {
    const batch = queue.open;
    if (batch === null) return;
    queue.open = null;
    let baseSequence = -1;
    if (this.idempotent) {
      baseSequence = queue.nextSequence;
      queue.nextSequence = (queue.nextSequence + batch.recordCount) % SEQUENCE_WRAP;
    }
    batch.seal(this.producerId, this.producerEpoch, baseSequence, this.compression);
    if (this.compression !== 'none') this.pool.release(batch.buffer); // the compressed copy is sent
    queue.ready.push(batch);
    this.readyQueues.add(queue);
    const state = this.topics.get(queue.topic);
    if (state !== undefined) this.sticky.onBatchSent(queue.topic, queue.partition, state.queues.length);
    this.scheduleDrain();
  }

  private armLinger(): void {
    if (this.lingerTimer !== null) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      for (const queue of this.openQueues) this.sealOpen(queue);
      this.openQueues.clear();
    }, this.lingerMs);
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Sends what may be sent: per round one batch per partition, one request per leader. */
  private drain(): void {
    const now = Date.now();
    let earliestBackoffMs = Infinity;
    for (;;) {
      const byNode = new Map<number, BatchBuilder[]>();
      for (const queue of this.readyQueues) {
        if (queue.ready.length === 0) {
          this.readyQueues.delete(queue);
          continue;
        }
        if (queue.inFlight >= this.maxInFlightPerPartition) continue;
        if (queue.backoffUntilMs > now) {
          earliestBackoffMs = Math.min(earliestBackoffMs, queue.backoffUntilMs);
          continue;
        }
        const batch = queue.ready.shift()!;
        queue.inFlight++;
        const leader = this.topics.get(queue.topic)!.metadata.leaders[queue.partition]!;
        let list = byNode.get(leader);
        if (list === undefined) byNode.set(leader, (list = []));
        list.push(batch);
      }
      if (byNode.size === 0) break;
      for (const [nodeId, batches] of byNode) void this.sendBatches(nodeId, batches);
    }
    if (earliestBackoffMs !== Infinity) this.wakeAt(earliestBackoffMs);
  }

  private wakeAt(atMs: number): void {
    if (this.retryTimer !== null && this.retryTimerAtMs <= atMs) return;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimerAtMs = atMs;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.scheduleDrain();
    }, Math.max(atMs - Date.now(), 0));
  }

  /** One Produce request to one broker; never rejects (every batch ends in done, retry or fail). */
  private async sendBatches(nodeId: number, batches: BatchBuilder[]): Promise<void> {
    let response: ProduceResponse | undefined;
    try {
      let connection = this.nodeConnections.get(nodeId);
      if (connection === undefined || connection.closed) {
        connection = await this.cluster.connectionToNode(nodeId);
        this.nodeConnections.set(nodeId, connection);
      }
      const topicData: ProduceRequestTopicProduceData[] = [];
      for (const batch of batches) {
        let entry = topicData.find((t) => t.name === batch.topic);
        if (entry === undefined) topicData.push((entry = { name: batch.topic, partitionData: [] }));
        entry.partitionData.push({ index: batch.partition, records: batch.bytes });
      }
      const request = { transactionalId: null, acks: this.acks, timeoutMs: this.requestTimeoutMs, topicData };
      response = await connection.request(ApiKey.Produce, (writer, version) => encodeProduceRequest(writer, version, request), decodeProduceResponse, {
        expectResponse: this.acks !== 0,
        timeoutMs: this.requestTimeoutMs + 5_000,
      });
    } catch (error) {
      for (const batch of batches) this.retryOrFail(batch, error as Error);
      return;
    }
    if (this.acks === 0 || response === undefined) {
      for (const batch of batches) this.complete(batch, -1);
      return;
    }
    for (const batch of batches) {
      const answer = response.responses.find((t) => t.name === batch.topic)?.partitionResponses.find((p) => p.index === batch.partition);
      if (answer === undefined) {
        this.retryOrFail(batch, new KafkaConnectionError(`Produce response without ${batch.topic}-${batch.partition}`));
      } else if (answer.errorCode === ErrorCode.NONE) {
        this.complete(batch, Number(answer.baseOffset));
      } else if (answer.errorCode === ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
        this.complete(batch, -1); // written before, its offsets are no longer known to the broker
      } else {
        const error = new KafkaProtocolError(answer.errorCode, `Produce to ${batch.topic}-${batch.partition}`, answer.errorMessage ?? null);
        this.retryOrFail(batch, error);
      }
    }
  }

  private complete(batch: BatchBuilder, baseOffset: number): void {
    const owners = batch.owners;
    const indexes = batch.ownerIndexes;
    const count = batch.recordCount;
    if (baseOffset < 0) {
      for (let d = 0; d < count; d++) owners[d]!.acknowledge(indexes[d]!, -1);
    } else {
      for (let d = 0; d < count; d++) owners[d]!.acknowledge(indexes[d]!, baseOffset + d);
    }
    this.finishBatch(batch);
  }

  private retryOrFail(batch: BatchBuilder, error: Error): void {
    const queue = this.topics.get(batch.topic)!.queues[batch.partition]!;
    batch.attempts++;
    const retriable = isRetriable(error) || (this.idempotent && error instanceof KafkaProtocolError && error.code === ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const elapsedMs = Date.now() - batch.createdMs;
    if (!retriable || this.closed || batch.attempts > this.retries || elapsedMs >= this.deliveryTimeoutMs) {
      const why = !retriable ? 'a non-retriable error' : batch.attempts > this.retries ? `${batch.attempts} attempts` : `deliveryTimeoutMs (${this.deliveryTimeoutMs} ms)`;
      const failure = new KafkaDeliveryError(`${batch.recordCount} records to ${batch.topic}-${batch.partition} failed after ${why}: ${error.message}`, { cause: error });
      for (const owner of new Set(batch.owners)) owner.fail(failure);
      this.finishBatch(batch);
      return;
    }
    queue.inFlight--;
    // Back in sequence order (idempotent), else at the front: a retry goes before newer batches.
    let at = 0;
    if (this.idempotent) while (at < queue.ready.length && queue.ready[at]!.baseSequence < batch.baseSequence) at++;
    queue.ready.splice(at, 0, batch);
    this.readyQueues.add(queue);
    const backoffMs = Math.min(this.retryBackoffMs * 2 ** Math.min(batch.attempts - 1, 20), this.retryBackoffMaxMs);
    queue.backoffUntilMs = Math.max(queue.backoffUntilMs, Date.now() + backoffMs);
    if (error instanceof KafkaConnectionError || (error instanceof KafkaProtocolError && error.retriable)) {
      void this.cluster.refreshTopic(batch.topic).then(
        (metadata) => {
          const state = this.topics.get(batch.topic);
          if (state !== undefined && metadata.leaders.length === state.queues.length) state.metadata = metadata;
        },
        () => undefined, // the next attempt reports what is wrong
      );
    }
    this.wakeAt(queue.backoffUntilMs);
  }

  private finishBatch(batch: BatchBuilder): void {
    const queue = this.topics.get(batch.topic)!.queues[batch.partition]!;
    queue.inFlight--;
    if (this.compression === 'none') this.pool.release(batch.buffer);
    this.outstandingBatches--;
    if (queue.ready.length > 0) this.scheduleDrain();
    if (this.outstandingBatches === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new KafkaConfigError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
