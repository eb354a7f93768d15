// Fetching for the consumer: one Fetch in flight per leader broker, for every assigned, unpaused,
// positioned partition with no fetch outstanding. Each answer is walked (headers only) to move
// fetchOffset and kept raw in the prefetch buffer; the next Fetch goes out at once (pipelining)
// while heldBytes is below prefetchMaxBytes. The iterators take chunks from here and move
// positions through here, so a seek, pause or rewind drops the partition's chunks and starts the
// next fetch.
//
// Bounds: heldBytes <= prefetchMaxBytes + one response (maxBytes) per broker; every request has a
// timeout (requestTimeoutMs, plus maxWaitMs for Fetch); retriable errors refresh metadata and back
// off (retryBackoffMs doubling to retryBackoffMaxMs). OFFSET_OUT_OF_RANGE resets the position per
// autoOffsetReset ('none': the iterator throws KafkaOffsetOutOfRangeError and the partition waits
// for a seek). A corrupt batch makes the iterator throw KafkaCorruptRecordError after the records
// before it; the partition then waits for a seek.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeFetchResponse, encodeFetchRequest, type FetchRequestTopic, type FetchResponse } from '../../protocol/generated/index.js';
import type { Cluster } from '../cluster.js';
import { ApiKey, type BrokerConnection } from '../connection.js';
import { KafkaClientError, KafkaClosedError, KafkaProtocolError, isRetriable } from '../errors.js';
import { decodeFetchedBatches, scanFetchedRecords, type RecordBatch } from '../recordDecoder.js';
import type { TopicPartition } from '../types.js';
import { KafkaOffsetOutOfRangeError } from './errors.js';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, listOffsets } from './offsetLookup.js';
import type { ConsumerSettings } from './options.js';
import { rewindState, seekState, type OffsetInput, type PartitionPositions, type PartitionState, type TopicPartitionOffset } from './positions.js';
import type { Chunk, PrefetchBuffer } from './prefetchBuffer.js';

export class FetchPipeline {
  private readonly fetchingNodes = new Set<number>();
  private readonly nodeBackoffUntilMs = new Map<number, number>();
  private pumpScheduled = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAtMs = 0;
  private readonly operations = new Set<Promise<void>>();
  /** Connections Fetches went out on: close() drops them instead of waiting out long polls. */
  private readonly fetchConnections = new Set<BrokerConnection>();
  private closed = false;

  constructor(
    private readonly settings: ConsumerSettings<unknown, unknown>,
    private readonly cluster: Cluster,
    private readonly positions: PartitionPositions,
    private readonly buffer: PrefetchBuffer,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  checkOpen(): void {
    if (this.closed) throw new KafkaClosedError('the consumer is closed');
  }

  /** Errors that are not one partition's (a group's) reach the iterators here too. */
  fail(error: Error): void {
    this.buffer.fail(error);
  }

  replaceAssignment(partitions: readonly TopicPartitionOffset[]): void {
    for (const state of this.positions.replace(partitions)) this.buffer.drop(state);
    for (const entry of partitions) {
      if (entry.offset !== undefined) this.seek(entry.topic, entry.partition, entry.offset);
    }
    this.schedulePump();
  }

  seek(topic: string, partition: number, offset: OffsetInput): void {
    this.checkOpen();
    const state = this.positions.stateOf(topic, partition);
    seekState(state, offset);
    this.buffer.drop(state);
    this.schedulePump();
  }

  async seekByTimestamp(partitions: readonly TopicPartition[] | undefined, timestamp: bigint): Promise<void> {
    this.checkOpen();
    const states = partitions === undefined ? [...this.positions.values()] : partitions.map((entry) => this.positions.stateOf(entry.topic, entry.partition));
    if (states.length === 0) return;
    const epochs = states.map((state) => state.epoch);
    const deadline = Date.now() + this.settings.requestTimeoutMs;
    let backoffMs = this.settings.retryBackoffMs;
    for (;;) {
      try {
        const offsets = await listOffsets(this.cluster, this.settings.isolationLevel, states, timestamp);
        for (let i = 0; i < states.length; i++) {
          const state = states[i]!;
          if (state.epoch === epochs[i] && state.assigned) this.seek(state.topic, state.partition, offsets[i]!);
        }
        return;
      } catch (error) {
        if (!isRetriable(error) || this.closed || Date.now() + backoffMs > deadline) throw error;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, this.settings.retryBackoffMaxMs);
    }
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const entry of partitions) {
      const state = this.positions.stateOf(entry.topic, entry.partition);
      state.paused = true;
      this.rewind(state);
    }
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const entry of partitions) this.positions.stateOf(entry.topic, entry.partition).paused = false;
    this.schedulePump();
    this.buffer.wake();
  }

  async connect(): Promise<void> {
    this.checkOpen();
    await this.cluster.anyConnection();
    for (const topic of new Set([...this.positions.values()].map((state) => state.topic))) {
      const metadata = await this.cluster.topic(topic);
      for (const nodeId of new Set(metadata.leaders)) this.fetchConnections.add(await this.cluster.connectionToNode(nodeId));
    }
  }

  /** Stops fetching and wakes the iterators (they end); settled() waits for what is still running. */
  close(): void {
    this.closed = true;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.buffer.wake();
    this.buffer.clear();
    for (const connection of this.fetchConnections) connection.destroy(new KafkaClosedError('the consumer is closed'));
    this.fetchConnections.clear();
  }

  async settled(): Promise<void> {
    await Promise.all([...this.operations]);
  }

  // -------------------------------------------------------------------------------------------
  // For the iterators

  /** A chunk to read (its state current), an error to throw, or null (nothing yet). */
  takeChunk(): Chunk | Error | null {
    const next = this.buffer.take();
    if (next !== null && !(next instanceof Error)) this.schedulePump(); // room for the next fetch
    return next;
  }

  /** Checks and inflates a chunk's batches; a corrupt batch stops its partition. */
  decodeChunk(chunk: Chunk): { batches: RecordBatch[]; error: Error | null } {
    const state = chunk.state;
    let decoded: { batches: RecordBatch[]; error: Error | null };
    try {
      decoded = decodeFetchedBatches(state.topic, state.partition, chunk.records, chunk.fetchOffset, this.settings.checkCrcs);
    } catch (error) {
      decoded = { batches: [], error: error as Error };
    }
    if (decoded.error !== null) {
      // The partition restarts from the bad batch only after a seek past it.
      const badOffset = decoded.batches.length > 0 ? decoded.batches[decoded.batches.length - 1]!.lastOffset + 1 : chunk.fetchOffset;
      state.epoch++;
      state.fetchOffset = badOffset;
      state.failed = decoded.error;
      this.buffer.drop(state);
      return { batches: decoded.batches, error: decoded.error };
    }
    return { batches: decoded.batches, error: null };
  }

  /** Forgets what was fetched beyond the position: the next fetch starts there. */
  rewind(state: PartitionState): void {
    rewindState(state);
    this.buffer.drop(state);
    this.schedulePump();
  }

  isCurrent(chunk: Chunk, epoch: number): boolean {
    return chunk.state.epoch === epoch && chunk.state.assigned && !this.closed;
  }

  /** Resolves when data, an error or close() arrives, or after timeoutMs. */
  waitForData(timeoutMs: number | undefined): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.schedulePump();
    return this.buffer.wait(timeoutMs);
  }

  // -------------------------------------------------------------------------------------------

  private track(operation: Promise<void>): void {
    this.operations.add(operation);
    void operation.finally(() => this.operations.delete(operation));
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private wakeAt(atMs: number): void {
    if (this.closed) return;
    if (this.wakeTimer !== null && this.wakeAtMs <= atMs) return;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.schedulePump();
    }, Math.max(atMs - Date.now(), 1));
  }

  /** Starts resets and fetches that may start now. Never throws. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    let earliest = Infinity;
    const byNode = new Map<number, PartitionState[]>();
    const resets: PartitionState[] = [];
    const missingTopics = new Set<string>();
    for (const state of this.positions.values()) {
      if (state.failed !== null || state.fetching || state.resetting) continue;
      if (state.backoffUntilMs > now) {
        earliest = Math.min(earliest, state.backoffUntilMs);
        continue;
      }
      if (state.position < 0) {
        resets.push(state);
        continue;
      }
      if (state.paused) continue;
      const metadata = this.cluster.cachedTopic(state.topic);
      if (metadata === undefined) {
        missingTopics.add(state.topic);
        continue;
      }
      const leader = metadata.leaders[state.partition];
      if (leader === undefined) {
        this.failPartition(state, new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${state.key}: topic ${state.topic} has ${metadata.leaders.length} partitions`));
        continue;
      }
      let list = byNode.get(leader);
      if (list === undefined) byNode.set(leader, (list = []));
      list.push(state);
    }
    for (const topic of missingTopics) this.track(this.loadMetadata(topic));
    if (resets.length > 0) this.track(this.resetPositions(resets));
    if (this.buffer.heldBytes < this.settings.prefetchMaxBytes) {
      for (const [nodeId, states] of byNode) {
        if (this.fetchingNodes.has(nodeId)) continue;
        const until = this.nodeBackoffUntilMs.get(nodeId) ?? 0;
        if (until > now) {
          earliest = Math.min(earliest, until);
          continue;
        }
        this.track(this.fetch(nodeId, states));
      }
    }
    if (earliest !== Infinity) this.wakeAt(earliest);
  }

  private failPartition(state: PartitionState, error: Error): void {
    state.failed = error;
    this.buffer.fail(error);
  }

  private backoff(state: PartitionState): void {
    state.backoffMs = state.backoffMs === 0 ? this.settings.retryBackoffMs : Math.min(state.backoffMs * 2, this.settings.retryBackoffMaxMs);
    state.backoffUntilMs = Date.now() + state.backoffMs;
    this.wakeAt(state.backoffUntilMs);
  }

  private async loadMetadata(topic: string): Promise<void> {
    try {
      await this.cluster.refreshTopic(topic);
    } catch (error) {
      if (this.closed) return;
      if (!isRetriable(error)) {
        for (const state of this.positions.values()) if (state.topic === topic) this.failPartition(state, error as Error);
        return;
      }
      for (const state of this.positions.values()) if (state.topic === topic) this.backoff(state);
    }
    this.schedulePump();
  }

  private async fetch(nodeId: number, states: PartitionState[]): Promise<void> {
    const { maxPartitionBytes, maxWaitMs, minBytes, maxBytes, isolationLevel, requestTimeoutMs } = this.settings;
    this.fetchingNodes.add(nodeId);
    const epochs = states.map((state) => state.epoch);
    const offsets = states.map((state) => state.fetchOffset);
    for (const state of states) state.fetching = true;
    let response: FetchResponse;
    try {
      const connection = await this.cluster.connectionToNode(nodeId);
      if (!this.fetchConnections.has(connection)) {
        for (const old of this.fetchConnections) if (old.closed) this.fetchConnections.delete(old);
        this.fetchConnections.add(connection);
      }
      const topics: FetchRequestTopic[] = [];
      for (let i = 0; i < states.length; i++) {
        const state = states[i]!;
        let topic = topics.find((t) => t.topic === state.topic);
        if (topic === undefined) topics.push((topic = { topic: state.topic, partitions: [] }));
        topic.partitions.push({ partition: state.partition, fetchOffset: BigInt(offsets[i]!), partitionMaxBytes: maxPartitionBytes, logStartOffset: -1n, currentLeaderEpoch: -1 });
      }
      const request = { replicaId: -1, maxWaitMs, minBytes, maxBytes, isolationLevel, sessionId: 0, sessionEpoch: -1, topics, forgottenTopicsData: [], rackId: '' };
      response = await connection.request(ApiKey.Fetch, (writer, version) => encodeFetchRequest(writer, version, request), decodeFetchResponse, {
        timeoutMs: requestTimeoutMs + maxWaitMs,
      });
      if (response.errorCode !== undefined && response.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(response.errorCode, `Fetch from broker ${nodeId}`);
      this.nodeBackoffUntilMs.delete(nodeId);
    } catch (error) {
      for (const state of states) state.fetching = false;
      this.fetchingNodes.delete(nodeId);
      if (this.closed) return;
      if (!isRetriable(error)) {
        for (const state of states) this.failPartition(state, error as Error);
        return;
      }
      for (const state of states) this.backoff(state);
      for (const topic of new Set(states.map((state) => state.topic))) this.track(this.loadMetadata(topic));
      return;
    }
    this.fetchingNodes.delete(nodeId);
    for (const state of states) state.fetching = false;
    if (this.closed) return;
    let arrived = false;
    for (const topicResponse of response.responses) {
      for (const data of topicResponse.partitions) {
        const index = states.findIndex((s) => s.topic === topicResponse.topic && s.partition === data.partitionIndex);
        if (index < 0) continue;
        const state = states[index]!;
        const fetchOffset = offsets[index]!;
        if (state.epoch !== epochs[index] || !state.assigned) continue; // sought or unassigned meanwhile
        if (data.errorCode === ErrorCode.NONE) {
          state.backoffMs = 0;
          const records = data.records;
          if (records === null || records.length === 0) continue;
          const scan = scanFetchedRecords(records, fetchOffset);
          if (scan.batchCount === 0) {
            // KIP-74 always returns one whole batch; a cut first batch means a bad length.
            this.failPartition(state, new KafkaClientError(`${state.key}: the Fetch at offset ${fetchOffset} returned ${records.length} bytes without a whole batch (maxPartitionBytes ${maxPartitionBytes})`, false));
            continue;
          }
          const bytes = scan.completeBytes;
          this.buffer.push({ state, epoch: state.epoch, fetchOffset, records: records.subarray(0, bytes), nextOffset: scan.nextOffset, bytes });
          state.fetchOffset = scan.nextOffset;
          arrived = true;
        } else if (data.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
          if (this.settings.autoOffsetReset === 'none') {
            this.failPartition(state, new KafkaOffsetOutOfRangeError(state.topic, state.partition, fetchOffset));
          } else {
            state.epoch++;
            this.buffer.drop(state);
            state.position = -1; // reset by the next pump
          }
        } else {
          const error = new KafkaProtocolError(data.errorCode, `Fetch of ${state.key} at offset ${fetchOffset}`);
          if (error.retriable) {
            this.backoff(state);
            this.track(this.loadMetadata(state.topic));
          } else {
            this.failPartition(state, error);
          }
        }
      }
    }
    if (arrived) this.buffer.wake();
    this.schedulePump();
  }

  /** autoOffsetReset for partitions without a position. */
  private async resetPositions(states: PartitionState[]): Promise<void> {
    const autoOffsetReset = this.settings.autoOffsetReset;
    if (autoOffsetReset === 'none') {
      for (const state of states) this.failPartition(state, new KafkaOffsetOutOfRangeError(state.topic, state.partition, null));
      return;
    }
    const timestamp = autoOffsetReset === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP;
    const epochs = states.map((state) => state.epoch);
    for (const state of states) state.resetting = true;
    try {
      const offsets = await listOffsets(this.cluster, this.settings.isolationLevel, states, timestamp);
      for (let i = 0; i < states.length; i++) {
        const state = states[i]!;
        state.resetting = false;
        if (state.epoch !== epochs[i]) continue;
        const offset = offsets[i]!;
        state.epoch++;
        state.position = offset;
        state.fetchOffset = offset;
        state.backoffMs = 0;
      }
    } catch (error) {
      for (const state of states) state.resetting = false;
      if (this.closed) return;
      if (!isRetriable(error)) {
        for (const state of states) this.failPartition(state, error as Error);
        return;
      }
      for (const state of states) this.backoff(state);
    }
    this.schedulePump();
  }
}
