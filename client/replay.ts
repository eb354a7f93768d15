// Replay of a range of a topic: every record from a start offset (or the first at a timestamp) up
// to an end offset, optionally filtered by key, header and timestamp range, as an async iterator of
// ConsumerRecord in offset order per partition (partitions take turns, one chunk each).
//
// Two ways to read, same records:
//   ScanRecords   tidelog's own API (32000), used for filtered replays when the partition leader
//                 advertises it: the broker filters in a worker thread and sends only matching
//                 records, with their original offsets, so a sparse filter over a large range
//                 moves few bytes and never holds the broker's event loop.
//   Fetch         any Kafka broker, `scan: 'fetch'`, and unfiltered replays (`scan: 'auto'`):
//                 whole batches straight from the log, filtered here. With nothing to filter,
//                 Fetch's zero-copy path is the cheaper one; `scan: 'scan'` forces ScanRecords.
//
// The end: `toOffset` (exclusive) if given, else the log end offset when the replay started; with
// `follow`, no end: new records are read as they arrive until `signal` aborts (then the iterator
// simply ends). A start below the log start offset (retention deleted it) starts at the log start.
import { ErrorCode } from '../protocol/errors.js';
import { decodeFetchResponse, encodeFetchRequest, type FetchResponse } from '../protocol/generated/index.js';
import { decodeScanRecordsResponse, encodeScanRecordsRequest, type ScanRecordsResponse } from '../protocol/generated/index.js';
import { createAdmin, type Admin } from './admin.js';
import { Cluster } from './cluster.js';
import { ApiKey, type BrokerConnection } from './connection.js';
import { KafkaClientError, KafkaConfigError, KafkaProtocolError, isRetriable } from './errors.js';
import { decodeFetchedRecords, scanFetchedRecords, type ConsumerRecord } from './recordDecoder.js';

export interface ReplayFilter {
  /** Only records with exactly this key (a string is compared as its UTF-8 bytes). */
  key?: Buffer | string;
  /** Only records carrying a header of this name (and, with `value`, this value). */
  header?: { name: string; value?: Buffer | string };
  /** Only records with timestamp >= this (ms since the epoch). */
  fromTimestampMs?: number;
  /** Only records with timestamp < this (ms since the epoch). */
  toTimestampMs?: number;
}

export interface ReplayOptions {
  bootstrapServers: readonly string[];
  topic: string;
  /** Default: every partition of the topic. */
  partitions?: readonly number[];
  /** Where each partition starts: an offset, or the first record at or after a time (which also filters out earlier records). */
  from: { offset: number | bigint } | { timestampMs: number };
  /** Exclusive end offset (every partition). Default: the log end when the replay starts. */
  toOffset?: number | bigint;
  /** Keep reading new records after the end until `signal` aborts. */
  follow?: boolean;
  filter?: ReplayFilter;
  /**
   * 'auto' (default): ScanRecords for filtered replays where the broker advertises it, else Fetch.
   * 'fetch': always Fetch. 'scan': ScanRecords wherever the broker advertises it, filters or not.
   */
  scan?: 'auto' | 'fetch' | 'scan';
  /** Ends the replay (the iterator finishes after the chunk in hand). */
  signal?: AbortSignal;
  clientId?: string;
  /** Per request, and the bound on retrying one chunk. Default 30 s. */
  requestTimeoutMs?: number;
  /** Bytes asked for per request. Default 1 MiB. */
  maxBytesPerRequest?: number;
  /** With follow: how long a Fetch waits for new data, and the pause between ScanRecords polls when caught up. Default 500 ms. */
  followWaitMs?: number;
}

export interface ReplayStats {
  /** Records looked at (matching or not), as far as they were counted: by the broker for ScanRecords, here for Fetch. */
  recordsScanned: number;
  /** Records handed out. */
  recordsMatched: number;
  bytesScanned: number;
  /** Requests answered through ScanRecords and through Fetch. */
  scanRequests: number;
  fetchRequests: number;
}

const DEFAULT_MAX_BYTES_PER_REQUEST = 1024 * 1024;
const MAX_BYTES_PER_REQUEST_LIMIT = 64 * 1024 * 1024;
const MAX_RECORDS_PER_REQUEST = 100_000;
const DEFAULT_FOLLOW_WAIT_MS = 500;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const RETRY_BACKOFF_MS = 100;
const RETRY_BACKOFF_MAX_MS = 2_000;
const MAX_PARTITIONS = 100_000;
const MAX_STALLS = 5;
/** Attempts at a chunk the broker answered KAFKA_STORAGE_ERROR (on tidelog, a corrupt batch: asking again reads the same bytes). */
const MAX_STORAGE_ERROR_ATTEMPTS = 3;

interface PartitionRange {
  partition: number;
  next: number;
  /** Exclusive; Infinity with follow and no toOffset. */
  end: number;
  /** Reads in a row that returned nothing and did not advance (only Fetch can, if the log shrank). */
  stalls: number;
}

interface Chunk {
  records: ConsumerRecord[];
  next: number;
}

/** The filter in the broker's terms (bytes) and as a test on decoded records. */
interface ResolvedFilter {
  key: Buffer | null;
  headerName: string | null;
  headerValue: Buffer | null;
  fromTimestampMs: number;
  toTimestampMs: number;
}

function bytesOf(value: Buffer | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function offsetNumber(name: string, value: number | bigint): number {
  const number = typeof value === 'bigint' ? Number(value) : value;
  if (!Number.isSafeInteger(number) || number < 0) throw new KafkaConfigError(`${name} must be a non-negative integer offset, got ${String(value)}`);
  return number;
}

function timestampNumber(name: string, value: number | undefined): number {
  if (value === undefined) return -1;
  if (!Number.isSafeInteger(value) || value < 0) throw new KafkaConfigError(`${name} must be a non-negative integer (ms since the epoch), got ${value}`);
  return value;
}

function resolveFilter(options: ReplayOptions): ResolvedFilter {
  const filter = options.filter ?? {};
  if (filter.header !== undefined && (typeof filter.header.name !== 'string' || filter.header.name.length === 0)) throw new KafkaConfigError('filter.header.name must be a non-empty string');
  const fromFilter = timestampNumber('filter.fromTimestampMs', filter.fromTimestampMs);
  const fromStart = 'timestampMs' in options.from ? timestampNumber('from.timestampMs', options.from.timestampMs) : -1;
  const toTimestampMs = timestampNumber('filter.toTimestampMs', filter.toTimestampMs);
  return {
    key: filter.key === undefined ? null : bytesOf(filter.key),
    headerName: filter.header?.name ?? null,
    headerValue: filter.header?.value === undefined ? null : bytesOf(filter.header.value),
    fromTimestampMs: Math.max(fromFilter, fromStart),
    toTimestampMs,
  };
}

/** The same test the broker's scan applies, for records read through Fetch. */
function recordMatches(record: ConsumerRecord, filter: ResolvedFilter): boolean {
  if (filter.fromTimestampMs >= 0 && record.timestamp < filter.fromTimestampMs) return false;
  if (filter.toTimestampMs >= 0 && record.timestamp >= filter.toTimestampMs) return false;
  if (filter.key !== null && (record.key === null || !filter.key.equals(record.key))) return false;
  if (filter.headerName === null) return true;
  return record.headers.some((header) => header.key === filter.headerName && (filter.headerValue === null || (header.value !== null && filter.headerValue.equals(header.value))));
}

/** An async iterator of the replayed records, with counters the caller may read at any time. */
export class Replay implements AsyncIterableIterator<ConsumerRecord> {
  readonly stats: ReplayStats = { recordsScanned: 0, recordsMatched: 0, bytesScanned: 0, scanRequests: 0, fetchRequests: 0 };
  private readonly generator: AsyncGenerator<ConsumerRecord, void, undefined>;

  constructor(private readonly options: ReplayOptions) {
    if (typeof options.topic !== 'string' || options.topic.length === 0) throw new KafkaConfigError('topic must be a non-empty string');
    if (options.scan !== undefined && options.scan !== 'auto' && options.scan !== 'fetch' && options.scan !== 'scan') throw new KafkaConfigError(`scan must be 'auto', 'fetch' or 'scan', got ${JSON.stringify(options.scan)}`);
    const maxBytes = options.maxBytesPerRequest ?? DEFAULT_MAX_BYTES_PER_REQUEST;
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_BYTES_PER_REQUEST_LIMIT) throw new KafkaConfigError(`maxBytesPerRequest must be an integer in [1, ${MAX_BYTES_PER_REQUEST_LIMIT}], got ${maxBytes}`);
    if ('offset' in options.from) offsetNumber('from.offset', options.from.offset);
    if (options.toOffset !== undefined) offsetNumber('toOffset', options.toOffset);
    this.generator = this.run(resolveFilter(options), maxBytes);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ConsumerRecord> {
    return this;
  }

  async next(): Promise<IteratorResult<ConsumerRecord>> {
    const result = await this.generator.next();
    return result.done === true ? { done: true, value: undefined } : result;
  }

  async return(): Promise<IteratorResult<ConsumerRecord>> {
    await this.generator.return(undefined);
    return { done: true, value: undefined };
  }

  private async *run(filter: ResolvedFilter, maxBytes: number): AsyncGenerator<ConsumerRecord, void, undefined> {
    const options = this.options;
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const clientId = options.clientId ?? 'tidelog-replay';
    const admin = createAdmin({ bootstrapServers: options.bootstrapServers, clientId, requestTimeoutMs });
    const cluster = new Cluster({ bootstrapServers: options.bootstrapServers, clientId, requestTimeoutMs, allowAutoTopicCreation: false });
    try {
      const ranges = await this.plan(admin);
      const reader = new ChunkReader(cluster, admin, options, filter, maxBytes, this.stats);
      const followWaitMs = options.followWaitMs ?? DEFAULT_FOLLOW_WAIT_MS;
      const aborted = (): boolean => options.signal?.aborted === true;
      let active = ranges.filter((range) => range.next < range.end);
      while (active.length > 0 && !aborted()) {
        let progressed = false;
        for (const range of active) {
          if (aborted()) return;
          const chunk = await reader.read(range);
          if (chunk.next > range.next) progressed = true;
          if (options.follow !== true && chunk.next === range.next && chunk.records.length === 0) {
            if (++range.stalls > MAX_STALLS) throw new KafkaClientError(`${options.topic}-${range.partition}: nothing readable at offset ${range.next}, below the end ${range.end}; was the log truncated?`, false);
            await sleep(RETRY_BACKOFF_MS, options.signal);
          } else {
            range.stalls = 0;
          }
          range.next = chunk.next;
          for (const record of chunk.records) {
            this.stats.recordsMatched++;
            yield record;
          }
        }
        active = active.filter((range) => range.next < range.end);
        // Caught up while following: Fetch already waited at the broker; ScanRecords polls.
        if (!progressed && options.follow === true && reader.lastWasScan) await sleep(followWaitMs, options.signal);
      }
    } finally {
      await Promise.all([admin.close().catch(() => undefined), cluster.close().catch(() => undefined)]);
    }
  }

  /** Each partition's start and end, from ListOffsets (earliest, latest, or by timestamp). */
  private async plan(admin: Admin): Promise<PartitionRange[]> {
    const options = this.options;
    const [description] = await admin.describeTopics([options.topic]);
    const all = (description?.partitions ?? []).map((p) => p.partition).sort((a, b) => a - b);
    let partitions = all;
    if (options.partitions !== undefined) {
      if (options.partitions.length > MAX_PARTITIONS) throw new KafkaConfigError(`at most ${MAX_PARTITIONS} partitions`);
      for (const partition of options.partitions) {
        if (!all.includes(partition)) throw new KafkaConfigError(`topic ${options.topic} has no partition ${partition} (it has ${all.length})`);
      }
      partitions = [...new Set(options.partitions)].sort((a, b) => a - b);
    }
    const byPartition = async (spec: 'earliest' | 'latest' | number): Promise<Map<number, number>> =>
      new Map((await admin.listOffsets(options.topic, spec)).map((answer) => [answer.partition, Number(answer.offset)]));
    const earliest = await byPartition('earliest');
    const latest = await byPartition('latest');
    const byTime = 'timestampMs' in options.from ? await byPartition(options.from.timestampMs) : null;
    const toOffset = options.toOffset === undefined ? null : offsetNumber('toOffset', options.toOffset);
    return partitions.map((partition) => {
      const logStart = earliest.get(partition) ?? 0;
      const logEnd = latest.get(partition) ?? 0;
      let start: number;
      if (byTime !== null) {
        const found = byTime.get(partition) ?? -1;
        start = found < 0 ? logEnd : found; // -1: no record that recent yet
      } else {
        start = Math.max(offsetNumber('from.offset', (options.from as { offset: number | bigint }).offset), logStart);
      }
      // Without follow, the end is the log end as of now, whatever toOffset asks beyond it.
      const end = options.follow === true ? (toOffset ?? Infinity) : Math.min(toOffset ?? logEnd, logEnd);
      return { partition, next: start, end, stalls: 0 };
    });
  }
}

/** Reads one chunk of one partition's range, through ScanRecords or Fetch, with retries. */
class ChunkReader {
  lastWasScan = false;
  private readonly wantsScan: boolean;

  constructor(
    private readonly cluster: Cluster,
    private readonly admin: Admin,
    private readonly options: ReplayOptions,
    private readonly filter: ResolvedFilter,
    private readonly maxBytes: number,
    private readonly stats: ReplayStats,
  ) {
    const filtering = filter.key !== null || filter.headerName !== null || filter.fromTimestampMs >= 0 || filter.toTimestampMs >= 0;
    this.wantsScan = options.scan === 'scan' || (options.scan !== 'fetch' && filtering);
  }

  async read(range: PartitionRange): Promise<Chunk> {
    const deadline = Date.now() + (this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    let backoffMs = RETRY_BACKOFF_MS;
    let storageErrors = 0;
    for (;;) {
      try {
        const connection = await this.leaderConnection(range.partition);
        const useScan = this.wantsScan && connection.supports(ApiKey.ScanRecords);
        this.lastWasScan = useScan;
        return useScan ? await this.scan(connection, range) : await this.fetch(connection, range);
      } catch (error) {
        if (error instanceof KafkaProtocolError && error.code === ErrorCode.OFFSET_OUT_OF_RANGE && (await this.skipToLogStart(range))) continue;
        if (error instanceof KafkaProtocolError && error.code === ErrorCode.KAFKA_STORAGE_ERROR && ++storageErrors >= MAX_STORAGE_ERROR_ATTEMPTS) throw error;
        if (!isRetriable(error) || Date.now() + backoffMs > deadline || this.options.signal?.aborted === true) throw error;
        await sleep(backoffMs, this.options.signal);
        backoffMs = Math.min(backoffMs * 2, RETRY_BACKOFF_MAX_MS);
        await this.cluster.refreshTopic(this.options.topic).catch(() => undefined);
      }
    }
  }

  private async leaderConnection(partition: number): Promise<BrokerConnection> {
    const metadata = await this.cluster.topic(this.options.topic);
    const leader = metadata.leaders[partition];
    if (leader === undefined || leader < 0) throw new KafkaProtocolError(ErrorCode.LEADER_NOT_AVAILABLE, `${this.options.topic}-${partition}`);
    return this.cluster.connectionToNode(leader);
  }

  /** Retention moved the log start past our position: the records there are gone, go on from the start. */
  private async skipToLogStart(range: PartitionRange): Promise<boolean> {
    const [answer] = (await this.admin.listOffsets(this.options.topic, 'earliest')).filter((a) => a.partition === range.partition);
    const logStart = answer === undefined ? -1 : Number(answer.offset);
    if (logStart <= range.next) return false;
    range.next = Math.min(logStart, range.end);
    return true;
  }

  private async scan(connection: BrokerConnection, range: PartitionRange): Promise<Chunk> {
    const { topic } = this.options;
    const f = this.filter;
    const request = {
      topic,
      partitionIndex: range.partition,
      startOffset: BigInt(range.next),
      endOffset: range.end === Infinity ? -1n : BigInt(range.end),
      keyFilter: f.key,
      headerName: f.headerName,
      headerValue: f.headerValue,
      fromTimestamp: BigInt(f.fromTimestampMs),
      toTimestamp: BigInt(f.toTimestampMs),
      maxBytes: this.maxBytes,
      maxRecords: MAX_RECORDS_PER_REQUEST,
    };
    const response: ScanRecordsResponse = await connection.request(ApiKey.ScanRecords, (writer, version) => encodeScanRecordsRequest(writer, version, request), decodeScanRecordsResponse);
    this.stats.scanRequests++;
    if (response.errorCode !== ErrorCode.NONE) {
      const error = new KafkaProtocolError(response.errorCode, `ScanRecords of ${topic}-${range.partition} at offset ${range.next}`, response.errorMessage);
      // Kafka calls CORRUPT_MESSAGE retriable (a network flip); here it is a batch that rotted on
      // disk, and asking again reads the same bytes.
      if (response.errorCode === ErrorCode.CORRUPT_MESSAGE) throw new KafkaClientError(error.message, false);
      throw error;
    }
    this.stats.recordsScanned += Number(response.recordsScanned);
    this.stats.bytesScanned += Number(response.bytesScanned);
    const next = Number(response.nextOffset);
    if (!Number.isSafeInteger(next) || next < range.next) throw new KafkaClientError(`ScanRecords of ${topic}-${range.partition} answered next offset ${response.nextOffset} for a scan from ${range.next}`, false);
    const records = decodeFetchedRecords(topic, range.partition, response.records, range.next).filter((record) => Number(record.offset) < range.end);
    return { records, next };
  }

  private async fetch(connection: BrokerConnection, range: PartitionRange): Promise<Chunk> {
    const { topic } = this.options;
    const follow = this.options.follow === true;
    const maxWaitMs = follow ? (this.options.followWaitMs ?? DEFAULT_FOLLOW_WAIT_MS) : 0;
    const request = {
      replicaId: -1,
      maxWaitMs,
      minBytes: follow ? 1 : 0,
      maxBytes: this.maxBytes,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic, partitions: [{ partition: range.partition, fetchOffset: BigInt(range.next), partitionMaxBytes: this.maxBytes, logStartOffset: -1n, currentLeaderEpoch: -1 }] }],
      forgottenTopicsData: [],
      rackId: '',
    };
    const timeoutMs = (this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) + maxWaitMs;
    const response: FetchResponse = await connection.request(ApiKey.Fetch, (writer, version) => encodeFetchRequest(writer, version, request), decodeFetchResponse, { timeoutMs });
    this.stats.fetchRequests++;
    if (response.errorCode !== undefined && response.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(response.errorCode, `Fetch of ${topic}-${range.partition}`);
    const data = response.responses.find((t) => t.topic === topic)?.partitions.find((p) => p.partitionIndex === range.partition);
    if (data === undefined) throw new KafkaClientError(`Fetch of ${topic}-${range.partition} answered without that partition`, true);
    if (data.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(data.errorCode, `Fetch of ${topic}-${range.partition} at offset ${range.next}`);
    const scanned = scanFetchedRecords(data.records, range.next);
    if (scanned.batchCount === 0) return { records: [], next: range.next };
    const whole = data.records!.subarray(0, scanned.completeBytes);
    const inRange = decodeFetchedRecords(topic, range.partition, whole, range.next).filter((record) => Number(record.offset) < range.end);
    this.stats.recordsScanned += inRange.length;
    this.stats.bytesScanned += whole.length;
    return { records: inRange.filter((record) => recordMatches(record, this.filter)), next: Math.min(scanned.nextOffset, range.end) };
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Replays a range of a topic: see the top of this file. */
export function replay(options: ReplayOptions): Replay {
  return new Replay(options);
}
