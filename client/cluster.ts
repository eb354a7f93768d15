// The client's view of a cluster: bootstrap servers, a metadata cache (topic -> partitions ->
// leader), one BrokerConnection per broker (replaced when it fails). Metadata of a topic is
// fetched on first use and again when a caller reports a retriable error (refreshTopic).
import { ErrorCode } from '../protocol/errors.js';
import { decodeMetadataResponse, encodeMetadataRequest, type MetadataResponse } from '../protocol/generated/index.js';
import { ApiKey, BrokerConnection, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from './connection.js';
import { KafkaClosedError, KafkaConfigError, KafkaConnectionError, KafkaProtocolError, isRetriable } from './errors.js';

export interface ClusterOptions {
  /** `host:port` strings. */
  bootstrapServers: readonly string[];
  clientId?: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  maxInFlightRequests?: number;
  requiredApis?: readonly number[];
  /** Let Metadata create topics the broker does not know (auto.create.topics.enable). Default true. */
  allowAutoTopicCreation?: boolean;
  /** How long topic metadata waits for leaders before failing. Default requestTimeoutMs. */
  metadataWaitMs?: number;
}

export interface TopicMetadata {
  name: string;
  /** Leader node id per partition index (-1: no leader known). */
  leaders: Int32Array;
}

interface BrokerAddress {
  host: string;
  port: number;
}

const METADATA_RETRY_BACKOFF_MS = 50;
const METADATA_MAX_BACKOFF_MS = 1_000;

export function parseBrokerAddress(text: string): BrokerAddress {
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  const port = colon < 0 ? 9092 : Number(text.slice(colon + 1));
  if (host.length === 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new KafkaConfigError(`bad broker address ${JSON.stringify(text)}: expected host:port`);
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

export class Cluster {
  private readonly bootstrap: BrokerAddress[];
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, TopicMetadata>();
  private readonly connections = new Map<string, Promise<BrokerConnection>>();
  private readonly refreshes = new Map<string, Promise<TopicMetadata>>();
  private closed = false;

  constructor(private readonly options: ClusterOptions) {
    if (!Array.isArray(options.bootstrapServers) || options.bootstrapServers.length === 0) {
      throw new KafkaConfigError('bootstrapServers must be a non-empty array of "host:port" strings');
    }
    this.bootstrap = options.bootstrapServers.map(parseBrokerAddress);
  }

  get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** A connection to any broker: a known one, else the first bootstrap server that answers. */
  async anyConnection(): Promise<BrokerConnection> {
    for (const key of this.connections.keys()) {
      const connection = await this.connections.get(key)!.catch(() => null);
      if (connection !== null && !connection.closed) return connection;
    }
    const errors: string[] = [];
    const candidates = [...this.brokers.values(), ...this.bootstrap];
    for (const address of candidates) {
      try {
        return await this.connectionTo(address);
      } catch (error) {
        errors.push(`${address.host}:${address.port}: ${(error as Error).message}`);
        if (!isRetriable(error)) throw error;
      }
    }
    throw new KafkaConnectionError(`no broker reachable: ${errors.join('; ')}`);
  }

  /** The connection to a broker by node id (from metadata). */
  async connectionToNode(nodeId: number): Promise<BrokerConnection> {
    const address = this.brokers.get(nodeId);
    if (address === undefined) throw new KafkaConnectionError(`broker ${nodeId} is not in the metadata`);
    return this.connectionTo(address);
  }

  /** Cached topic metadata, or undefined when it was never fetched. */
  cachedTopic(topic: string): TopicMetadata | undefined {
    return this.topics.get(topic);
  }

  /** Topic metadata from the cache, fetched when missing. */
  topic(topic: string): Promise<TopicMetadata> {
    const cached = this.topics.get(topic);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.refreshTopic(topic);
  }

  /** Fetches a topic's metadata again (concurrent callers share one fetch). */
  refreshTopic(topic: string): Promise<TopicMetadata> {
    const running = this.refreshes.get(topic);
    if (running !== undefined) return running;
    const refresh = this.fetchTopic(topic).finally(() => this.refreshes.delete(topic));
    this.refreshes.set(topic, refresh);
    return refresh;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map(async (pending) => {
      const connection = await pending.catch(() => null);
      if (connection !== null) await connection.close();
    }));
  }

  private async fetchTopic(topic: string): Promise<TopicMetadata> {
    const deadline = Date.now() + (this.options.metadataWaitMs ?? this.requestTimeoutMs);
    let backoffMs = METADATA_RETRY_BACKOFF_MS;
    let lastError: Error | null = null;
    for (;;) {
      if (this.closed) throw new KafkaClosedError('the client is closed');
      try {
        const connection = await this.anyConnection();
        const response = await connection.request(
          ApiKey.Metadata,
          (writer, version) => encodeMetadataRequest(writer, version, { topics: [{ name: topic }], allowAutoTopicCreation: this.options.allowAutoTopicCreation ?? true }),
          decodeMetadataResponse,
        );
        const metadata = this.absorb(response, topic);
        if (metadata !== null) return metadata;
        lastError = new KafkaProtocolError(ErrorCode.LEADER_NOT_AVAILABLE, `metadata of topic ${topic}`);
      } catch (error) {
        if (!isRetriable(error)) throw error;
        lastError = error as Error;
      }
      if (Date.now() + backoffMs > deadline) throw lastError;
      await new Promise<void>((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, METADATA_MAX_BACKOFF_MS);
    }
  }

  /** Stores brokers and the topic; null when the topic is not ready yet (retriable error, no leader). */
  private absorb(response: MetadataResponse, topic: string): TopicMetadata | null {
    for (const broker of response.brokers) this.brokers.set(broker.nodeId, { host: broker.host, port: broker.port });
    const entry = response.topics.find((t) => t.name === topic);
    if (entry === undefined) return null;
    if (entry.errorCode !== ErrorCode.NONE) {
      const error = new KafkaProtocolError(entry.errorCode, `metadata of topic ${topic}`);
      if (!error.retriable) throw error;
      return null;
    }
    if (entry.partitions.length === 0) return null;
    const leaders = new Int32Array(entry.partitions.length).fill(-1);
    for (const partition of entry.partitions) {
      if (partition.partitionIndex < 0 || partition.partitionIndex >= leaders.length) continue;
      if (partition.errorCode === ErrorCode.NONE || partition.errorCode === ErrorCode.REPLICA_NOT_AVAILABLE) leaders[partition.partitionIndex] = partition.leaderId;
    }
    if (leaders.some((leader) => leader < 0 || !this.brokers.has(leader))) return null;
    const metadata: TopicMetadata = { name: topic, leaders };
    this.topics.set(topic, metadata);
    return metadata;
  }

  private async connectionTo(address: BrokerAddress): Promise<BrokerConnection> {
    if (this.closed) throw new KafkaClosedError('the client is closed');
    const key = `${address.host}:${address.port}`;
    const existing = this.connections.get(key);
    if (existing !== undefined) {
      const connection = await existing.catch(() => null);
      if (connection !== null && !connection.closed) return connection;
      if (this.connections.get(key) === existing) this.connections.delete(key);
      const again = this.connections.get(key);
      if (again !== undefined) return again;
    }
    const opening = BrokerConnection.connect({
      host: address.host,
      port: address.port,
      clientId: this.options.clientId ?? 'tidelog-client',
      connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: this.requestTimeoutMs,
      ...(this.options.maxInFlightRequests !== undefined ? { maxInFlightRequests: this.options.maxInFlightRequests } : {}),
      requiredApis: this.options.requiredApis ?? [],
    });
    this.connections.set(key, opening);
    try {
      return await opening;
    } catch (error) {
      if (this.connections.get(key) === opening) this.connections.delete(key);
      throw error;
    }
  }
}
