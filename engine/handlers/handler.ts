// The contract of one API's handler: decode -> engine call -> encode. A handler module holds no
// business logic of its own beyond mapping the request onto engine calls and the outcome onto
// Kafka's response fields and error codes.
import type { WorkerPool } from '../workers/workerPool.js';
import type { ByteReader, ByteWriter } from '../../protocol/wire.js';
import type { BrokerConfig } from '../brokerConfig.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { ProducerIdAllocator } from '../producerIds.js';
import type { GroupService } from '../groups/groupService.js';
import type { TopicManager } from '../topicManager.js';

/** Where a request came from; `signal` aborts when its connection closes. */
export interface RequestContext {
  connectionId: number;
  remoteAddress: string;
  signal: AbortSignal;
}

/** What handlers may use. */
export interface BrokerServices {
  config: BrokerConfig;
  topics: TopicManager;
  groups: GroupService;
  producerIds: ProducerIdAllocator;
  /** Threads for heavy scans (compaction, retention, verification, filtered replay). */
  workers: WorkerPool;
  clock: Clock;
  logger: Logger;
  /** Aborts when the broker begins to stop: waiting requests answer at once. */
  stopping: AbortSignal;
}

export interface HandlerContext extends RequestContext {
  clientId: string | null;
  services: BrokerServices;
}

export interface ApiHandler<Request, Response> {
  readonly apiKey: number;
  decode(reader: ByteReader, version: number): Request;
  encode(writer: ByteWriter, version: number, response: Response): void;
  /** null means no response at all (Produce with acks=0). */
  handle(request: Request, version: number, context: HandlerContext): Promise<Response | null>;
  /** The response that reports `errorCode` for everything the request asked about. */
  errorResponse(request: Request, version: number, errorCode: number): Response;
}

/** Erases a handler's message types for the dispatch table, keeping them checked at definition. */
export function defineHandler<Request, Response>(handler: ApiHandler<Request, Response>): ApiHandler<unknown, unknown> {
  return handler as unknown as ApiHandler<unknown, unknown>;
}
