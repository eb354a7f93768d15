// kafkajs 2.2.4 as the baseline of the benches (load, client-consume, the matrix, rebalance):
// loading it (a devDependency, so only when a suite runs, not when the CLI starts), a client set up
// for measuring, and its consumer's fetch path driven without a consumer group.
//
// The fetch path: kafkajs's consumer builds a Cluster with the client's private factory and calls
// Broker.fetch, which negotiates the Fetch version, encodes the request and decodes the response
// with kafkajs's record batch decoder; each partition's answer then goes through its consumer
// Batch (offset filter, control records, aborted transactions). The reader here does the same with
// every asked partition in one fetch and one fetch in flight, as the consumer's fetch loop does.
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type * as KafkaJs from 'kafkajs';

/** Fetches in a row that return nothing before a reader gives up (each waits up to its maxWaitMs). */
const MAX_EMPTY_FETCHES = 50;
const READ_COMMITTED = 1;
/** kafkajs's default metadata.max.age (src/index.js DEFAULT_METADATA_MAX_AGE). */
const METADATA_MAX_AGE_MS = 300_000;

export interface KafkaJsModule {
  module: typeof KafkaJs;
  version: string;
  Batch: KafkaJsBatchConstructor;
}

/** Loads kafkajs; `suite` names who needs it in the error ('bench load', 'tidelog bench', ...). */
export function loadKafkaJs(suite: string): KafkaJsModule {
  const require = createRequire(import.meta.url);
  try {
    const module = require('kafkajs') as typeof KafkaJs;
    const { version } = require('kafkajs/package.json') as { version: string };
    const Batch = require('kafkajs/src/consumer/batch') as KafkaJsBatchConstructor;
    return { module, version, Batch };
  } catch (error) {
    throw new Error(`${suite} needs kafkajs (a devDependency; run npm install in the checkout): ${error instanceof Error ? error.message : String(error)}`);
  }
}

export interface KafkaJsClientOptions {
  clientId: string;
  brokers: string[];
  requestTimeoutMs: number;
  /** kafkajs's connectionTimeout; its own default (1 s) when absent. */
  connectionTimeoutMs?: number;
  /** TCP keep-alive on the client's sockets after this idle time; off when absent. */
  keepAliveMs?: number;
}

/**
 * A kafkajs client for measuring: no retries (the bench owns its bounds; a retry would hide an
 * error inside a measurement), logging off, TCP_NODELAY on its sockets as the broker and the
 * bundled client set it.
 */
export function createKafkaJsClient(kafkajs: typeof KafkaJs, options: KafkaJsClientOptions): KafkaJs.Kafka {
  return new kafkajs.Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.connectionTimeoutMs !== undefined ? { connectionTimeout: options.connectionTimeoutMs } : {}),
    requestTimeout: options.requestTimeoutMs,
    retry: { retries: 0 },
    logLevel: kafkajs.logLevel.NOTHING,
    socketFactory: noDelaySocketFactory(options.keepAliveMs),
  });
}

/** kafkajs's socketFactory with TCP_NODELAY set (and keep-alive after keepAliveMs, if given). */
export function noDelaySocketFactory(keepAliveMs?: number): KafkaJs.ISocketFactory {
  return ({ host, port, onConnect }: KafkaJs.ISocketFactoryArgs): Socket => {
    const socket = connect({ host, port, noDelay: true }, onConnect);
    if (keepAliveMs !== undefined) socket.setKeepAlive(true, keepAliveMs);
    return socket;
  };
}

// ---------------------------------------------------------------------------------------------
// The consumer's fetch path, without a group

/** The parts of kafkajs's private Cluster and Broker (src/cluster, src/broker) the reader uses. */
interface KafkaJsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>;
  findBroker(request: { nodeId: number }): Promise<KafkaJsBroker>;
}

interface KafkaJsFetchMessage {
  offset: string;
  value: Buffer | null;
}

interface KafkaJsFetchPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  messages: KafkaJsFetchMessage[];
}

interface KafkaJsBroker {
  fetch(request: {
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; fetchOffset: string; maxBytes: number }> }>;
    rackId: string;
  }): Promise<{ responses: Array<{ topicName: string; partitions: KafkaJsFetchPartition[] }> }>;
}

/** kafkajs's consumer Batch (src/consumer/batch.js): what its fetch loop builds from each partition's answer. */
type KafkaJsBatchConstructor = new (topic: string, fetchedOffset: string, partitionData: KafkaJsFetchPartition) => { messages: KafkaJsFetchMessage[] };

type ClusterFactory = (options: { metadataMaxAge: number; allowAutoTopicCreation: boolean; maxInFlightRequests: number | null; isolationLevel: number; instrumentationEmitter: null }) => KafkaJsCluster;

export interface KafkaJsFetchSettings {
  /** Fetch maxBytes, for the request and for each partition. */
  fetchMaxBytes: number;
  /** Only reached when the reader has caught up with the log end. */
  fetchMaxWaitMs: number;
}

export interface KafkaJsRead {
  records: number;
  payloadBytes: number;
  /** When the last record was read (disconnecting is not timed). */
  endedAt: number;
}

export interface KafkaJsFetchReader {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /**
   * Reads partitions 0 .. partitions-1 of `topic` from offset 0 until `wanted` records in all,
   * every partition's end, or maxMs; checks that each partition's offsets come as 0, 1, 2, ...
   * Calls ready() once it has the topic's metadata and leader (a caller may start timing there).
   */
  read(topic: string, partitions: number, wanted: number, maxMs: number, ready?: () => void): Promise<KafkaJsRead>;
}

export function createKafkaJsFetchReader(kafkajs: KafkaJsModule, kafka: KafkaJs.Kafka, settings: KafkaJsFetchSettings): KafkaJsFetchReader {
  // The Kafka client keeps its cluster factory under a private symbol; kafka.consumer() calls it
  // with these options (isolation level read_committed is the consumer's default).
  const factorySymbol = Object.getOwnPropertySymbols(kafka).find((symbol) => symbol.description === 'private:Kafka:createCluster');
  const factory = factorySymbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[factorySymbol];
  if (typeof factory !== 'function') throw new Error(`kafkajs ${kafkajs.version}: the client's private cluster factory was not found; this bench needs kafkajs 2.2.x`);
  const cluster = (factory as ClusterFactory).call(kafka, { metadataMaxAge: METADATA_MAX_AGE_MS, allowAutoTopicCreation: false, maxInFlightRequests: null, isolationLevel: READ_COMMITTED, instrumentationEmitter: null });
  const { fetchMaxBytes, fetchMaxWaitMs } = settings;
  return {
    connect: () => cluster.connect(),
    disconnect: () => cluster.disconnect(),
    async read(topic, partitions, wanted, maxMs, ready) {
      if (!Number.isSafeInteger(partitions) || partitions < 1 || !Number.isSafeInteger(wanted) || wanted < 0 || !(maxMs > 0 && Number.isFinite(maxMs))) {
        throw new RangeError(`kafkajs reader: partitions, wanted and maxMs must be finite and positive, got ${partitions}, ${wanted}, ${maxMs}`);
      }
      await cluster.addTargetTopic(topic);
      const leaders = new Set(cluster.findTopicPartitionMetadata(topic).map((partition) => partition.leader));
      const [leader] = leaders;
      if (leaders.size !== 1 || leader === undefined) throw new Error(`${topic}: expected one leader for all partitions, got ${[...leaders].join(', ')}`);
      const broker = await cluster.findBroker({ nodeId: leader });
      ready?.();
      const deadline = performance.now() + maxMs;
      const offsets = new OffsetCheck(topic, partitions);
      /** Partitions whose end was seen (an empty answer at the high watermark). */
      const ended = new Set<number>();
      let records = 0;
      let payloadBytes = 0;
      let emptyFetches = 0;
      while (records < wanted && ended.size < partitions && performance.now() < deadline && emptyFetches < MAX_EMPTY_FETCHES) {
        const wantedPartitions = [];
        for (let partition = 0; partition < partitions; partition++) {
          if (!ended.has(partition)) wantedPartitions.push({ partition, fetchOffset: String(offsets.position(partition)), maxBytes: fetchMaxBytes });
        }
        const { responses } = await broker.fetch({ isolationLevel: READ_COMMITTED, maxWaitTime: fetchMaxWaitMs, minBytes: 1, maxBytes: fetchMaxBytes, topics: [{ topic, partitions: wantedPartitions }], rackId: '' });
        let fetched = 0;
        for (const partitionData of responses[0]?.partitions ?? []) {
          if (partitionData.errorCode !== 0 || partitionData.partition < 0 || partitionData.partition >= partitions) {
            throw new Error(`fetch of ${topic}-${partitionData.partition} answered ${JSON.stringify({ ...partitionData, messages: partitionData.messages.length })}`);
          }
          const fetchOffset = String(offsets.position(partitionData.partition));
          const messages = new kafkajs.Batch(topic, fetchOffset, partitionData).messages;
          if (messages.length === 0 && Number(partitionData.highWatermark) <= offsets.position(partitionData.partition)) ended.add(partitionData.partition);
          for (const message of messages) {
            offsets.next(partitionData.partition, Number(message.offset));
            records++;
            fetched++;
            payloadBytes += message.value?.length ?? 0;
            if (records >= wanted) break;
          }
          if (records >= wanted) break;
        }
        emptyFetches = fetched === 0 ? emptyFetches + 1 : 0;
      }
      return { records, payloadBytes, endedAt: performance.now() };
    },
  };
}

/** Checks that each partition's offsets come as 0, 1, 2, ... */
export class OffsetCheck {
  private readonly expected: Float64Array;

  constructor(
    private readonly topic: string,
    partitions: number,
  ) {
    this.expected = new Float64Array(partitions);
  }

  next(partition: number, offset: number): void {
    const expected = this.expected[partition];
    if (expected !== offset) throw new Error(`${this.topic}-${partition}: expected offset ${expected}, got ${offset}`);
    this.expected[partition] = offset + 1;
  }

  position(partition: number): number {
    return this.expected[partition]!;
  }
}
