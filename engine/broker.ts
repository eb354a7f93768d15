// One broker's request handling, without sockets: a request frame in, a response frame out.
// The dispatcher reads the header, checks the API and version against what we advertise, hands
// the body to that API's handler (engine/handlers/, one file per API) and encodes the answer.
//
// Malformed input is never fatal: an undecodable header or body raises MalformedRequestError,
// and the connection owner closes that one connection. An unsupported ApiVersions version gets
// error 35 in the v0 shape (so librdkafka falls back); other unsupported APIs or versions are
// refused the same way Kafka refuses them, by closing the connection.
import { ADVERTISED_APIS } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/errors.js';
import { beginFrame, endFrame } from '../protocol/frame.js';
import { ApiKey } from '../protocol/generated/apiSchemas.js';
import { encodeApiVersionsResponse } from '../protocol/generated/apiVersionsResponse.js';
import { readRequestHeader, responseHeaderVersion, writeResponseHeader, type ParsedRequestHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter, ProtocolDecodeError } from '../protocol/wire.js';
import type { BrokerConfig } from './brokerConfig.js';
import { checkBrokerConfigRelations } from './configRelations.js';
import { systemClock, type Clock } from './clock.js';
import { apiVersionsBody, apiVersionsHandler } from './handlers/apiVersions.js';
import { fetchHandler } from './handlers/fetch.js';
import type { ApiHandler, BrokerServices, HandlerContext, RequestContext } from './handlers/handler.js';
import { initProducerIdHandler } from './handlers/initProducerId.js';
import { listOffsetsHandler } from './handlers/listOffsets.js';
import { metadataHandler } from './handlers/metadata.js';
import { produceHandler } from './handlers/produce.js';
import { scanRecordsHandler } from './handlers/scanRecords.js';
import { adminHandlers } from './handlers/admin.js';
import { groupHandlers } from './handlers/groups.js';
import { GroupService } from './groups/groupService.js';
import { isExpectedError, kafkaErrorCodeOf } from './kafkaErrors.js';
import { WorkerPool } from './workers/workerPool.js';
import { AppendValidator } from './log/appendValidation.js';
import { DecompressionBudget } from './log/decompressionBudget.js';
import { LogManager } from './log/logManager.js';
import { streamLogger, type Logger } from './logger.js';
import type { MetadataStore } from './metadataStore.js';
import { ProducerIdAllocator } from './producerIds.js';
import { TopicManager } from './topicManager.js';
import { topicSettings, type TopicSettings } from './topicConfig.js';
import { VerificationScheduler, type VerificationCounters, type VerifiedPartition } from './log/verification/verificationScheduler.js';
import { RetentionManager, type RetainedPartition } from './log/retention.js';
import { LogCleaner, type CleanerTarget } from './log/compaction/logCleaner.js';

export type { RequestContext } from './handlers/handler.js';

/** The request could not be decoded: close the connection it came on. */
export class MalformedRequestError extends Error {
  override readonly name = 'MalformedRequestError';
}

export interface BrokerResponse {
  /** One whole response frame, size prefix included. */
  chunks: Buffer[];
  /** Call once the socket wrote the chunks (or died): the encoder's buffer is reused after. */
  release(): void;
}

/** Encoders kept for reuse; more than this many responses in flight allocate fresh ones. */
const MAX_POOLED_WRITERS = 64;

export interface BrokerOptions {
  config: BrokerConfig;
  metadataStore: MetadataStore;
  clock?: Clock;
  logger?: Logger;
  /**
   * false: produced batches get header checks only, as before record validation existed. Only the
   * validation benchmark's baseline sets it; no config or flag reaches it.
   */
  recordValidation?: boolean;
}

export class Broker {
  private readonly handlers = new Map<number, ApiHandler<unknown, unknown>>();
  private readonly advertised = new Map(ADVERTISED_APIS.map((api) => [api.apiKey, api]));
  private readonly writers: ByteWriter[] = [];
  private stopped = false;
  /** Deletes old segments every log.retention.check.interval.ms; set by start(). */
  private retention: RetentionManager | null = null;
  /** Compacts logs whose cleanup.policy includes compact (log.cleaner.enable); set by start(). */
  private cleaner: LogCleaner | null = null;
  /** Reads sealed segments back every log.verify.interval.ms; set by start(). */
  private verifier: VerificationScheduler | null = null;

  private constructor(
    readonly services: BrokerServices,
    readonly logs: LogManager,
    private readonly stopping: AbortController,
  ) {
    const all = [apiVersionsHandler, metadataHandler, produceHandler, fetchHandler, listOffsetsHandler, initProducerIdHandler, scanRecordsHandler, ...adminHandlers, ...groupHandlers];
    for (const handler of all) {
      if (this.handlers.has(handler.apiKey)) throw new Error(`two handlers for API key ${handler.apiKey}`);
      this.handlers.set(handler.apiKey, handler);
    }
    for (const api of ADVERTISED_APIS) {
      if (!this.handlers.has(api.apiKey)) throw new Error(`API ${api.name} (${api.apiKey}) is advertised but has no handler`);
    }
  }

  static async start(options: BrokerOptions): Promise<Broker> {
    const clock = options.clock ?? systemClock;
    const logger = options.logger ?? streamLogger();
    const { config } = options;
    checkBrokerConfigRelations(config);
    const snapshot = await options.metadataStore.load();
    const workers = new WorkerPool({ threads: config.workerThreads, maxQueue: config.workerQueueMax, taskTimeoutMs: config.workerTaskTimeoutMs, maxHeapMb: config.workerMaxHeapMb, logger });
    let topics: TopicManager | null = null;
    // The stored topics' log configs while their logs open, before the topic manager has loaded them.
    let startupConfigs: Map<string, TopicSettings['log']> | null = null;
    const logs = await LogManager.open({
      dataDir: options.config.dataDir,
      clock,
      logger,
      checkpointIntervalMs: options.config.checkpointIntervalMs,
      maxOpenWriteHandles: config.logWriteHandlesMax,
      maxOpenSegmentHandles: config.logReadHandlesMax,
      openExistingLogs: false,
      configFor: (topic) => startupConfigs?.get(topic) ?? topics!.logConfigOf(topic),
      workers,
      validator: new AppendValidator({
        workers,
        checkRecords: options.recordValidation ?? true,
        budget: new DecompressionBudget({ capacityBytes: config.produceDecompressionBufferBytes, maxWaiters: config.produceDecompressionMaxWaiting }),
      }),
    });
    try {
      // Open the stored topics' existing logs as many at once as the pool has threads, so
      // partitions recovering from an unclean stop scan in parallel; the topic manager then finds
      // them open (and creates any that are missing).
      startupConfigs = new Map(snapshot.topics.map((record) => [record.name, topicSettings(record.configs, config.topicDefaults).log]));
      const stored = new Map(snapshot.topics.map((record) => [record.name, record.partitions]));
      await logs.openLogs(logs.directoriesFound.filter(({ topic, partition }) => partition < (stored.get(topic) ?? 0)));
      startupConfigs = null;
      topics = new TopicManager(options.metadataStore, logs, options.config, clock, logger);
      await topics.load(snapshot.topics);
    } catch (error) {
      await logs.close().catch(() => undefined);
      await workers.close();
      throw error;
    }
    const groups = new GroupService(topics, options.config, clock, logger);
    try {
      await groups.start();
    } catch (error) {
      await groups.close().catch(() => undefined);
      await logs.close().catch(() => undefined);
      await workers.close();
      throw error;
    }
    const stopping = new AbortController();
    const services: BrokerServices = { config: options.config, topics, groups, producerIds: new ProducerIdAllocator(options.metadataStore), workers, clock, logger, stopping: stopping.signal };
    const broker = new Broker(services, logs, stopping);
    broker.retention = new RetentionManager({
      partitions: () => retainedPartitions(topics),
      checkpoint: () => logs.checkpoint(),
      checkIntervalMs: config.retentionCheckIntervalMs,
      clock,
      logger,
    });
    broker.retention.start();
    if (config.logCleanerEnable) {
      broker.cleaner = await LogCleaner.open({
        dataDir: config.dataDir,
        targets: () => cleanerTargets(topics),
        workers,
        clock,
        logger,
        backoffMs: config.logCleanerBackoffMs,
        mapBudgetBytes: config.logCleanerDedupeBufferBytes,
        threads: config.logCleanerThreads,
        ioMaxBytesPerSecond: config.logCleanerIoMaxBytesPerSecond,
      });
      broker.cleaner.start();
    }
    broker.verifier = new VerificationScheduler({ partitions: () => verifiedPartitions(topics), workers, intervalMs: config.verifyIntervalMs, logger });
    broker.verifier.start();
    return broker;
  }

  /** What the background verification of sealed segments has done so far. */
  verificationCounters(): VerificationCounters | null {
    return this.verifier?.counters() ?? null;
  }

  get topics(): TopicManager {
    return this.services.topics;
  }

  /**
   * Handles one request frame (without its size prefix). Resolves to the response frame, or null
   * when none is sent; rejects with MalformedRequestError for input that cannot be decoded.
   */
  async handleFrame(frame: Buffer, context: RequestContext): Promise<BrokerResponse | null> {
    const reader = new ByteReader(frame);
    let header: ParsedRequestHeader;
    try {
      header = readRequestHeader(reader);
    } catch (error) {
      throw new MalformedRequestError(`unreadable request header: ${(error as Error).message}`);
    }
    const api = this.advertised.get(header.apiKey);
    const handler = this.handlers.get(header.apiKey);
    if (api === undefined || handler === undefined || header.apiVersion < api.minVersion || header.apiVersion > api.maxVersion || header.headerVersion === null) {
      if (header.apiKey === ApiKey.ApiVersions) return this.unsupportedApiVersions(header.correlationId);
      throw new MalformedRequestError(`unsupported API key ${header.apiKey} version ${header.apiVersion}`);
    }
    let request: unknown;
    try {
      request = handler.decode(reader, header.apiVersion);
      if (reader.remaining !== 0) throw new ProtocolDecodeError(`${reader.remaining} bytes after the request body`, reader.position);
    } catch (error) {
      if (error instanceof ProtocolDecodeError) throw new MalformedRequestError(`${api.name} v${header.apiVersion}: ${error.message}`);
      throw error;
    }
    const handlerContext: HandlerContext = { ...context, clientId: header.clientId, services: this.services };
    let response: unknown;
    try {
      response = this.stopped ? handler.errorResponse(request, header.apiVersion, ErrorCode.NOT_LEADER_OR_FOLLOWER) : await handler.handle(request, header.apiVersion, handlerContext);
    } catch (error) {
      // Handlers answer expected conditions themselves; whatever escapes is reported to the client
      // as a server error for everything it asked, and logged with its stack when unexpected.
      if (!isExpectedError(error)) this.services.logger.error('request failed', { api: api.name, version: header.apiVersion, clientId: header.clientId, error: (error as Error).stack ?? String(error) });
      response = handler.errorResponse(request, header.apiVersion, kafkaErrorCodeOf(error));
    }
    if (response === null) return null;
    return this.encodeResponse(header, (writer) => handler.encode(writer, header.apiVersion, response));
  }

  private unsupportedApiVersions(correlationId: number): BrokerResponse {
    // Error 35 in the v0 layout, with our ranges, so a client can retry with a version we have.
    return this.encodeResponse({ apiKey: ApiKey.ApiVersions, apiVersion: 0, correlationId }, (writer) =>
      encodeApiVersionsResponse(writer, 0, { ...apiVersionsBody(), errorCode: ErrorCode.UNSUPPORTED_VERSION }),
    );
  }

  private encodeResponse(header: Pick<ParsedRequestHeader, 'apiKey' | 'apiVersion' | 'correlationId'>, body: (writer: ByteWriter) => void): BrokerResponse {
    const writer = this.writers.pop() ?? new ByteWriter();
    const start = beginFrame(writer);
    writeResponseHeader(writer, header.correlationId, responseHeaderVersion(header.apiKey, header.apiVersion));
    body(writer);
    endFrame(writer, start);
    const chunks = writer.finish();
    let released = false;
    return {
      chunks,
      release: () => {
        if (released) return;
        released = true;
        writer.reset();
        if (this.writers.length < MAX_POOLED_WRITERS) this.writers.push(writer);
      },
    };
  }

  /**
   * Answers every waiting request now, as Kafka completes delayed operations at shutdown: parked
   * JoinGroup/SyncGroup requests (NOT_COORDINATOR, so clients find the next coordinator) and
   * Fetch long polls. Call it before waiting for in-flight requests to finish.
   */
  beginShutdown(): void {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    this.services.groups.coordinator.close();
  }

  /**
   * Flushes every log, writes checkpoints and the clean-shutdown marker. The metadata store stays
   * open: whoever opened it closes it.
   */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.beginShutdown();
    this.stopped = true;
    // Background tasks first: they only read sealed segments and write files of their own, which
    // start-up recovery removes when a task was cut short.
    await this.retention?.stop();
    await this.verifier?.stop();
    await this.cleaner?.close();
    await this.services.workers.close();
    // What the background work cost over the broker's life, for the operator reading the log.
    const { threads, completed, failed, timedOut, cancelled, retried, rejected, taskTimeMs } = this.services.workers.counters();
    this.services.logger.info('worker pool stopped', { threads, completed, failed, timedOut, cancelled, retried, rejected, taskTimeMs: Math.round(taskTimeMs) });
    await this.services.groups.close();
    await this.logs.close();
  }
}

/** Every open partition, with its topic's retention limits. */
function* retainedPartitions(topics: TopicManager): Generator<RetainedPartition> {
  for (const { topic, partition } of topics.openPartitions()) {
    const { retentionMs, retentionBytes } = topic.settings.retention;
    yield { topic: topic.name, partition: partition.index, log: partition.log, get highWatermark() { return partition.highWatermark; }, retentionMs, retentionBytes };
  }
}

/** Every open partition log, for the background verification. */
function* verifiedPartitions(topics: TopicManager): Generator<VerifiedPartition> {
  for (const { topic, partition } of topics.openPartitions()) yield { topic: topic.name, partition: partition.index, log: partition.log };
}

/** Every open partition of a compacted topic, with its topic's compaction settings (the broker's targets). */
function* cleanerTargets(topics: TopicManager): Generator<CleanerTarget> {
  for (const { topic, partition } of topics.openPartitions()) {
    if (!topic.settings.log.cleanupPolicy.includes('compact')) continue;
    const { deleteRetentionMs, minCompactionLagMs, minCleanableDirtyRatio } = topic.settings.retention;
    yield { topic: topic.name, partition: partition.index, log: partition.log, get highWatermark() { return partition.highWatermark; }, settings: { deleteRetentionMs, minCompactionLagMs, minCleanableDirtyRatio } };
  }
}
