// The benchmark behind `tidelog bench partitions` (issue 18): what a partition costs one broker as
// the count grows. For each count (default 100, 1,000, 10,000, 50,000; --quick 100 and 1,000;
// --partitions to choose), against a broker child process on a fresh temporary data directory
// (removed after the count):
//
//   first start    spawn on the empty directory (not reported)
//   create         topics of at most PARTITIONS_PER_TOPIC partitions, TOPICS_PER_CREATE_REQUEST a
//                  CreateTopics request, through the bundled admin client, until every partition
//                  has a leader; then the 1-partition topic `one` (not timed)
//   clean stop     SIGTERM to exit
//   clean start    spawn to the broker answering Metadata for all topics (each partition with a
//                  leader); RSS and open files (/proc/<pid>/fd) then; Metadata for all topics
//                  METADATA_SAMPLES times: median and max time, response bytes
//   traffic        Produce, raw requests on one connection, REQUESTS_IN_FLIGHT in flight, acks=1:
//                  one record a partition a request (SINGLE_PARTITIONS_PER_REQUEST partitions a
//                  request), and batched (BATCHED_RECORDS_PER_PARTITION records a partition,
//                  BATCHED_PARTITIONS_PER_REQUEST partitions a request). Each runs whole passes
//                  over every partition until phaseMs passed, then the same total of records goes
//                  to `one` in requests of the same record count. Consume: Fetch (Kafka's consumer
//                  defaults: 1 MiB a partition, 50 MiB a response) of every record back, over all
//                  partitions, then from `one`.
//   crash start    kill -9 of that broker, then spawn to answering Metadata for all topics; RSS,
//                  open files, peak RSS
//   final stop     SIGTERM to exit of the recovered broker
//
// Before the counts, an empty broker is started and stopped BASELINE_RUNS times: the costs per
// partition are net of its medians (start, stop, RSS). Every phase has a time bound that grows
// with the count (phaseBounds; --phase-timeout-ms replaces them all): a phase past its bound, or
// failing, kills the broker and is recorded with the broker's log tail; the rest of that count is
// not measured and larger counts are skipped (they would take longer still). The report (schema in
// bench/partitionsReport.ts) is rewritten after every count: latest.json, latest.md and
// cost-per-partition.svg in the output directory.
//
// The broker is spawned here, not through bench/brokerChild.ts's startBrokerChild: that one bounds
// a start at 30 s and a stop at 30 s (then SIGKILL) and has no kill -9, while a start here may take
// minutes at 50,000 partitions and is measured from the spawn.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { createAdmin } from '../client/admin.js';
import { BrokerConnection } from '../client/connection.js';
import { ErrorCode, errorCodeName } from '../protocol/errors.js';
import { FRAME_SIZE_BYTES } from '../protocol/frame.js';
import { ApiKey } from '../protocol/generated/apiSchemas.js';
import {
  decodeFetchResponse,
  decodeMetadataResponse,
  decodeProduceResponse,
  encodeFetchRequest,
  encodeMetadataRequest,
  encodeProduceRequest,
  type FetchRequest,
  type MetadataResponse,
  type ProduceRequest,
} from '../protocol/generated/index.js';
import { BASE_OFFSET_OFFSET, BATCH_HEADER_BYTES, BATCH_LENGTH_OFFSET, LAST_OFFSET_DELTA_OFFSET, LOG_OVERHEAD, RECORD_COUNT_OFFSET, encodeBatch, readInt64AsNumber } from '../segments/recordBatch.js';
import { benchSinks, writeJsonReport, type BenchSinks } from './benchRun.js';
import { loadAverages, machineFacts, median, statusKb } from './benchStats.js';
import { withTimeout } from './brokerChild.js';
import {
  comparisonOf,
  emptyCountRow,
  perPartitionCost,
  renderCostChart,
  renderMarkdown,
  round,
  targetChecks,
  throughputOf,
  type Comparison,
  type CountRow,
  type EmptyBrokerBaseline,
  type PartitionsReport,
  type PartitionsSettings,
  type PhaseBounds,
  type PhaseFailure,
  type Throughput,
} from './partitionsReport.js';

const KIB = 1024;
const MIB = 1024 * KIB;
export const DEFAULT_COUNTS: readonly number[] = [100, 1_000, 10_000, 50_000];
export const QUICK_COUNTS: readonly number[] = [100, 1_000];
/** --partitions takes counts up to this. */
export const MAX_PARTITION_COUNT = 100_000;
export const DEFAULT_PHASE_MS = 5_000;
export const QUICK_PHASE_MS = 2_000;
/** --phase-ms and --phase-timeout-ms bounds. */
export const MAX_PHASE_MS = 600_000;
export const MAX_PHASE_TIMEOUT_MS = 3_600_000;

export const PARTITIONS_PER_TOPIC = 1_000;
const TOPICS_PER_CREATE_REQUEST = 10;
const VALUE_BYTES = 100;
const SINGLE_PARTITIONS_PER_REQUEST = 1_000;
const BATCHED_RECORDS_PER_PARTITION = 20;
const BATCHED_PARTITIONS_PER_REQUEST = 100;
const REQUESTS_IN_FLIGHT = 4;
/** Kafka's consumer defaults: fetch.max.bytes and max.partition.fetch.bytes. */
const FETCH_MAX_BYTES = 50 * MIB;
const FETCH_PARTITION_MAX_BYTES = 1 * MIB;
/** A Fetch waits this long for data at most; rounds that bring nothing, at most MAX_IDLE_FETCH_ROUNDS in a row. */
const FETCH_MAX_WAIT_MS = 100;
const MAX_IDLE_FETCH_ROUNDS = 100;
const METADATA_SAMPLES = 5;
const BASELINE_RUNS = 3;
/** The topic of 1 partition every spread phase is compared with. */
const ONE_PARTITION_TOPIC = 'one';
/** Time bounds: a base plus a share per partition (phaseBounds). */
const START_BOUND_BASE_MS = 60_000;
const START_BOUND_PER_PARTITION_MS = 10;
const CREATE_BOUND_BASE_MS = 60_000;
const CREATE_BOUND_PER_PARTITION_MS = 10;
const STOP_BOUND_BASE_MS = 30_000;
const STOP_BOUND_PER_PARTITION_MS = 5;
const METADATA_BOUND_BASE_MS = 30_000;
const METADATA_BOUND_PER_PARTITION_MS = 2;
const TRAFFIC_BOUND_BASE_MS = 60_000;
const TRAFFIC_BOUND_PER_PARTITION_MS = 2;
const TRAFFIC_BOUND_PHASES = 4;
/** How often a starting broker is asked for Metadata until it serves every partition. */
const METADATA_POLL_MS = 20;
const CONNECT_TIMEOUT_MS = 10_000;
/** The longest a request may wait, whatever the phase's bound. */
const MAX_REQUEST_TIMEOUT_MS = 600_000;
const PRODUCE_TIMEOUT_MS = 30_000;
/** After SIGKILL: the exit must come within this; then the phase's work must end within WORK_SETTLE_MS. */
const KILL_WAIT_MS = 10_000;
const WORK_SETTLE_MS = 10_000;
const BROKER_LOG_LINES_KEPT = 200;
const LOG_TAIL_LINES = 40;
const CLIENT_ID = 'tidelog-bench-partitions';

export const PARTITIONS_SETTINGS: PartitionsSettings = {
  partitionsPerTopic: PARTITIONS_PER_TOPIC,
  topicsPerCreateRequest: TOPICS_PER_CREATE_REQUEST,
  valueBytes: VALUE_BYTES,
  singlePartitionsPerRequest: SINGLE_PARTITIONS_PER_REQUEST,
  batchedRecordsPerPartition: BATCHED_RECORDS_PER_PARTITION,
  batchedPartitionsPerRequest: BATCHED_PARTITIONS_PER_REQUEST,
  requestsInFlight: REQUESTS_IN_FLIGHT,
  fetchMaxBytes: FETCH_MAX_BYTES,
  fetchPartitionMaxBytes: FETCH_PARTITION_MAX_BYTES,
  metadataSamples: METADATA_SAMPLES,
  baselineRuns: BASELINE_RUNS,
};

export interface PartitionsBenchOptions {
  /** Partition counts, ascending (parsePartitionCounts). */
  counts: readonly number[];
  mode: PartitionsReport['meta']['mode'];
  /** The least time each throughput phase runs. */
  phaseMs: number;
  /** Replaces every phase's scaled bound; null: scaled. */
  phaseTimeoutMs: number | null;
  outDir: string;
  brokerEntry: string;
  note: string | null;
  out?: (text: string) => void;
  progress?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// The plan

/** Parses --partitions: a comma-separated list of distinct counts, returned ascending. */
export function parsePartitionCounts(text: string): number[] {
  const parts = text.split(',').map((part) => part.trim());
  const counts = parts.map((part) => (/^\d+$/.test(part) ? Number(part) : Number.NaN));
  if (counts.some((count) => !Number.isSafeInteger(count) || count < 1 || count > MAX_PARTITION_COUNT)) {
    throw new RangeError(`--partitions must be a comma-separated list of integers in [1, ${MAX_PARTITION_COUNT}], got ${JSON.stringify(text)}`);
  }
  if (new Set(counts).size !== counts.length) throw new RangeError(`--partitions names a count twice: ${JSON.stringify(text)}`);
  return [...counts].sort((a, b) => a - b);
}

export interface TopicLayout {
  name: string;
  partitions: number;
}

/** `partitions` as topics of PARTITIONS_PER_TOPIC partitions, the last one holding the rest. */
export function topicLayout(partitions: number): TopicLayout[] {
  if (!Number.isSafeInteger(partitions) || partitions < 1) throw new RangeError(`a partition count must be a positive integer, got ${partitions}`);
  const topics: TopicLayout[] = [];
  for (let first = 0; first < partitions; first += PARTITIONS_PER_TOPIC) {
    topics.push({ name: `spread-${String(topics.length).padStart(3, '0')}`, partitions: Math.min(PARTITIONS_PER_TOPIC, partitions - first) });
  }
  return topics;
}

/** Each phase kind's time bound at `partitions` (0: the empty broker), or `override` for all. */
export function phaseBounds(partitions: number, phaseMs: number, override: number | null): PhaseBounds {
  if (override !== null) return { start: override, create: override, stop: override, metadata: override, traffic: override };
  return {
    start: START_BOUND_BASE_MS + START_BOUND_PER_PARTITION_MS * partitions,
    create: CREATE_BOUND_BASE_MS + CREATE_BOUND_PER_PARTITION_MS * partitions,
    stop: STOP_BOUND_BASE_MS + STOP_BOUND_PER_PARTITION_MS * partitions,
    metadata: METADATA_BOUND_BASE_MS + METADATA_BOUND_PER_PARTITION_MS * partitions,
    traffic: TRAFFIC_BOUND_BASE_MS + TRAFFIC_BOUND_PHASES * phaseMs + TRAFFIC_BOUND_PER_PARTITION_MS * partitions,
  };
}

// ---------------------------------------------------------------------------------------------
// The broker process

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One broker process: its stderr read for its whole life (a full pipe would stall it), the newest lines kept. */
class BenchBroker {
  readonly spawnedAtMs = performance.now();
  readonly listener: Promise<{ host: string; port: number }>;
  readonly exit: Promise<ExitStatus>;
  warnLines = 0;
  errorLines = 0;
  private status: ExitStatus | null = null;
  private readonly lines: string[] = [];
  private readonly child: ChildProcess;

  constructor(entry: string, dataDir: string) {
    this.child = spawn(process.execPath, [entry, 'broker', 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.exit = new Promise<ExitStatus>((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      });
    });
    this.listener = new Promise((resolve, reject) => {
      createInterface({ input: this.child.stderr! }).on('line', (line) => {
        this.lines.push(line);
        if (this.lines.length > BROKER_LOG_LINES_KEPT) this.lines.shift();
        if (/^\S+ WARN /.test(line)) this.warnLines++;
        if (/^\S+ ERROR /.test(line)) this.errorLines++;
        const match = / INFO broker started .*listener="([^"]+):(\d+)"/.exec(line);
        if (match !== null) resolve({ host: match[1]!, port: Number(match[2]) });
      });
      void this.exit.then((status) => reject(new Error(`the broker exited (${JSON.stringify(status)}) before it started`)));
      this.child.once('error', reject);
    });
    // Whoever awaits the listener sees a failure; a broker never asked for it must not leave it unhandled.
    this.listener.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): boolean {
    return this.status !== null;
  }

  tail(count: number): string {
    return `broker log (last ${Math.min(count, this.lines.length)} lines):\n${this.lines.slice(-count).join('\n')}`;
  }

  /** The newest kept line matching `pattern`, without its timestamp. */
  lastLine(pattern: RegExp): string | null {
    for (let index = this.lines.length - 1; index >= 0; index--) {
      const line = this.lines[index]!;
      if (pattern.test(line)) return line.slice(line.indexOf(' ') + 1);
    }
    return null;
  }

  terminate(): void {
    if (!this.exited) this.child.kill('SIGTERM');
  }

  /** SIGKILL, and its exit within KILL_WAIT_MS. */
  async kill(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGKILL');
    await withTimeout(this.exit, KILL_WAIT_MS, `broker pid ${this.pid} to exit after SIGKILL`);
  }
}

async function openFileCount(pid: number): Promise<number | null> {
  return readdir(`/proc/${pid}/fd`).then(
    (entries) => entries.length,
    () => null,
  );
}

/** The soft "Max open files" of a process, from /proc/<pid>/limits. */
async function openFileLimit(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/limits`, 'utf8').catch(() => '');
  const match = /^Max open files\s+(\d+)/m.exec(text);
  return match === null ? null : Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// Phases

interface Abort {
  aborted: boolean;
}

class PhaseError extends Error {
  constructor(readonly failure: PhaseFailure) {
    super(`${failure.phase}: ${failure.message}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function abortedError(): Error {
  return new Error('aborted: the phase is over');
}

/**
 * Runs `work` within `boundMs`. Past the bound, or when the work fails, the broker is killed, the
 * work is awaited (bounded; it ends once its connection drops) and a PhaseError says what
 * happened, with the broker's log tail.
 */
async function runPhase<T>(phase: string, boundMs: number, broker: BenchBroker | null, work: (abort: Abort) => Promise<T>): Promise<T> {
  const abort: Abort = { aborted: false };
  const settled = work(abort).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), boundMs);
  });
  const first = await Promise.race([settled, timedOut]);
  clearTimeout(timer);
  if (first !== 'timeout' && first.ok) return first.value;
  abort.aborted = true;
  const logTail = broker === null ? null : broker.tail(LOG_TAIL_LINES);
  if (broker !== null) await broker.kill();
  await withTimeout(settled, WORK_SETTLE_MS, `the ${phase} phase to end`).catch(() => undefined);
  const message = first === 'timeout' ? `did not finish within ${boundMs} ms` : messageOf(first.error);
  throw new PhaseError({ phase, kind: first === 'timeout' ? 'timeout' : 'error', boundMs, message, logTail });
}

/** Runs task(0..count-1), `width` at a time; the first failure stops new tasks and is thrown once all ended. */
async function inParallel(count: number, width: number, abort: Abort, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < count && failure === null && !abort.aborted) {
      const index = next++;
      try {
        await task(index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, () => worker()));
  if (failure !== null) throw (failure as { error: unknown }).error;
  if (abort.aborted) throw abortedError();
}

function requestTimeoutMs(boundMs: number): number {
  return Math.max(1, Math.min(boundMs, MAX_REQUEST_TIMEOUT_MS));
}

async function metadataOfAll(connection: BrokerConnection, timeoutMs: number): Promise<{ response: MetadataResponse; bytes: number }> {
  let bytes = 0;
  const response = await connection.request(
    ApiKey.Metadata,
    (writer, version) => encodeMetadataRequest(writer, version, { topics: null, allowAutoTopicCreation: false }),
    (reader, version) => {
      bytes = reader.end + FRAME_SIZE_BYTES;
      return decodeMetadataResponse(reader, version);
    },
    { timeoutMs },
  );
  return { response, bytes };
}

/** Every expected topic there, with its partitions, each with a leader. */
function servesAll(response: MetadataResponse, expected: ReadonlyMap<string, number>): boolean {
  let found = 0;
  for (const topic of response.topics) {
    const partitions = expected.get(topic.name ?? '');
    if (partitions === undefined) continue;
    if (topic.errorCode !== ErrorCode.NONE || topic.partitions.length !== partitions) return false;
    if (!topic.partitions.every((partition) => partition.errorCode === ErrorCode.NONE && partition.leaderId >= 0)) return false;
    found++;
  }
  return found === expected.size;
}

interface StartedBroker {
  broker: BenchBroker;
  address: string;
  connection: BrokerConnection;
  ms: number;
}

/** Spawns a broker and waits until it answers Metadata for all of `expected`; ms counts from the spawn. */
async function startPhase(phase: string, entry: string, dataDir: string, expected: ReadonlyMap<string, number>, boundMs: number, spawned: (broker: BenchBroker) => void): Promise<StartedBroker> {
  const broker = new BenchBroker(entry, dataDir);
  spawned(broker);
  return runPhase(phase, boundMs, broker, async (abort) => {
    const { host, port } = await broker.listener;
    const connection = await BrokerConnection.connect({ host, port, clientId: CLIENT_ID, connectTimeoutMs: CONNECT_TIMEOUT_MS, requestTimeoutMs: requestTimeoutMs(boundMs) });
    try {
      while (!servesAll((await metadataOfAll(connection, requestTimeoutMs(boundMs))).response, expected)) {
        if (abort.aborted) throw abortedError();
        await new Promise<void>((resolve) => setTimeout(resolve, METADATA_POLL_MS));
      }
      return { broker, address: `${host}:${port}`, connection, ms: performance.now() - broker.spawnedAtMs };
    } catch (error) {
      connection.destroy();
      throw error;
    }
  });
}

/** Closes the connection, SIGTERM, and the broker's exit with code 0; ms from the signal to the exit. */
async function stopPhase(phase: string, started: StartedBroker, boundMs: number): Promise<number> {
  await started.connection.close();
  const signalled = performance.now();
  await runPhase(phase, boundMs, started.broker, async () => {
    started.broker.terminate();
    const status = await started.broker.exit;
    if (status.code !== 0) throw new Error(`the broker exited with ${JSON.stringify(status)}`);
  });
  return performance.now() - signalled;
}

// ---------------------------------------------------------------------------------------------
// Traffic

interface ProduceSlot {
  request: ProduceRequest;
  records: number;
  bytes: number;
}

function produceRequest(topicData: ProduceRequest['topicData']): ProduceRequest {
  return { transactionalId: null, acks: 1, timeoutMs: PRODUCE_TIMEOUT_MS, topicData };
}

function batchOf(records: number): Buffer {
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  return encodeBatch(Array.from({ length: records }, () => ({ key: null, value })));
}

/** One pass over every partition: requests of `partitionsPerRequest` partitions of one topic, one batch of `recordsPerBatch` each. */
function spreadSlots(topics: readonly TopicLayout[], partitionsPerRequest: number, recordsPerBatch: number): ProduceSlot[] {
  const batch = batchOf(recordsPerBatch);
  const slots: ProduceSlot[] = [];
  for (const topic of topics) {
    for (let first = 0; first < topic.partitions; first += partitionsPerRequest) {
      const count = Math.min(partitionsPerRequest, topic.partitions - first);
      const partitionData = Array.from({ length: count }, (_, i) => ({ index: first + i, records: batch }));
      slots.push({ request: produceRequest([{ name: topic.name, partitionData }]), records: count * recordsPerBatch, bytes: count * batch.length });
    }
  }
  return slots;
}

/** `total` records to the 1-partition topic, `perRequest` records a request (one batch). */
function onePartitionSlots(total: number, perRequest: number): ProduceSlot[] {
  const slotOf = (records: number): ProduceSlot => {
    const batch = batchOf(records);
    return { request: produceRequest([{ name: ONE_PARTITION_TOPIC, partitionData: [{ index: 0, records: batch }] }]), records, bytes: batch.length };
  };
  const full = slotOf(perRequest);
  const slots: ProduceSlot[] = Array.from({ length: Math.floor(total / perRequest) }, () => full);
  if (total % perRequest > 0) slots.push(slotOf(total % perRequest));
  return slots;
}

async function produce(connection: BrokerConnection, request: ProduceRequest, timeoutMs: number): Promise<void> {
  const response = await connection.request(ApiKey.Produce, (writer, version) => encodeProduceRequest(writer, version, request), decodeProduceResponse, { timeoutMs });
  for (const topic of response.responses) {
    for (const partition of topic.partitionResponses) {
      if (partition.errorCode !== ErrorCode.NONE) throw new Error(`Produce to ${topic.name}-${partition.index}: ${errorCodeName(partition.errorCode)}${partition.errorMessage ? ` (${partition.errorMessage})` : ''}`);
    }
  }
}

async function sendAll(connection: BrokerConnection, slots: readonly ProduceSlot[], abort: Abort, timeoutMs: number): Promise<void> {
  await inParallel(slots.length, REQUESTS_IN_FLIGHT, abort, (index) => produce(connection, slots[index]!.request, timeoutMs));
}

function totals(slots: readonly ProduceSlot[]): { records: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  for (const slot of slots) {
    records += slot.records;
    bytes += slot.bytes;
  }
  return { records, bytes };
}

/**
 * Whole passes over every partition until phaseMs passed, then the same records to `one` in
 * requests of the spread phase's largest record count. Returns the comparison and the passes.
 */
async function produceComparison(connection: BrokerConnection, topics: readonly TopicLayout[], recordsPerBatch: number, partitionsPerRequest: number, phaseMs: number, abort: Abort, timeoutMs: number): Promise<{ comparison: Comparison; passes: number }> {
  const slots = spreadSlots(topics, partitionsPerRequest, recordsPerBatch);
  const pass = totals(slots);
  const started = performance.now();
  let passes = 0;
  do {
    await sendAll(connection, slots, abort, timeoutMs);
    passes++;
  } while (performance.now() - started < phaseMs);
  const spread = throughputOf(passes * pass.records, passes * pass.bytes, passes * slots.length, (performance.now() - started) / 1000);
  const oneSlots = onePartitionSlots(spread.records, Math.max(...slots.map((slot) => slot.records)));
  const oneStarted = performance.now();
  await sendAll(connection, oneSlots, abort, timeoutMs);
  const one = totals(oneSlots);
  const onePartition = throughputOf(one.records, one.bytes, oneSlots.length, (performance.now() - oneStarted) / 1000);
  return { comparison: comparisonOf(spread, onePartition), passes };
}

/** Reads every record of `topics` from offset 0 up to `endOffset` of each partition. */
async function consumeAll(connection: BrokerConnection, topics: readonly TopicLayout[], endOffset: number, abort: Abort, timeoutMs: number): Promise<Throughput> {
  const offsets = topics.map((topic) => new Float64Array(topic.partitions));
  let records = 0;
  let bytes = 0;
  let requests = 0;
  let idleRounds = 0;
  const started = performance.now();
  const fetchTopic = async (topicIndex: number): Promise<boolean> => {
    const topic = topics[topicIndex]!;
    const next = offsets[topicIndex]!;
    const partitions = [];
    for (let partition = 0; partition < topic.partitions; partition++) {
      if (next[partition]! < endOffset) partitions.push({ partition, fetchOffset: BigInt(next[partition]!), partitionMaxBytes: FETCH_PARTITION_MAX_BYTES, logStartOffset: -1n, currentLeaderEpoch: -1 });
    }
    const request: FetchRequest = { replicaId: -1, maxWaitMs: FETCH_MAX_WAIT_MS, minBytes: 1, maxBytes: FETCH_MAX_BYTES, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [{ topic: topic.name, partitions }], forgottenTopicsData: [], rackId: '' };
    const response = await connection.request(ApiKey.Fetch, (writer, version) => encodeFetchRequest(writer, version, request), decodeFetchResponse, { timeoutMs: timeoutMs + FETCH_MAX_WAIT_MS });
    requests++;
    if (response.errorCode !== undefined && response.errorCode !== ErrorCode.NONE) throw new Error(`Fetch from ${topic.name}: ${errorCodeName(response.errorCode)}`);
    let progressed = false;
    for (const topicResponse of response.responses) {
      for (const data of topicResponse.partitions) {
        if (data.errorCode !== ErrorCode.NONE) throw new Error(`Fetch from ${topic.name}-${data.partitionIndex}: ${errorCodeName(data.errorCode)}`);
        const buffer = data.records;
        let position = 0;
        while (buffer !== null && buffer.length - position >= BATCH_HEADER_BYTES) {
          const size = buffer.readInt32BE(position + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
          if (size > buffer.length - position) break; // a cut last batch: fetched again next round
          next[data.partitionIndex] = readInt64AsNumber(buffer, position + BASE_OFFSET_OFFSET) + buffer.readInt32BE(position + LAST_OFFSET_DELTA_OFFSET) + 1;
          records += buffer.readInt32BE(position + RECORD_COUNT_OFFSET);
          bytes += size;
          position += size;
          progressed = true;
        }
      }
    }
    return progressed;
  };
  for (;;) {
    const pending = topics.map((_, index) => index).filter((index) => offsets[index]!.some((offset) => offset < endOffset));
    if (pending.length === 0) break;
    let progressed = false;
    await inParallel(pending.length, REQUESTS_IN_FLIGHT, abort, async (index) => {
      if (await fetchTopic(pending[index]!)) progressed = true;
    });
    idleRounds = progressed ? 0 : idleRounds + 1;
    if (idleRounds > MAX_IDLE_FETCH_ROUNDS) {
      const stuck = pending.map((index) => ({ topic: topics[index]!.name, partition: offsets[index]!.findIndex((offset) => offset < endOffset) }))[0]!;
      throw new Error(`consume made no progress in ${MAX_IDLE_FETCH_ROUNDS} rounds: ${stuck.topic}-${stuck.partition} at offset ${offsets[pending[0]!]![stuck.partition]} of ${endOffset}`);
    }
  }
  return throughputOf(records, bytes, requests, (performance.now() - started) / 1000);
}

// ---------------------------------------------------------------------------------------------
// The empty broker and one count

interface RunContext {
  entry: string;
  phaseMs: number;
  phaseTimeoutMs: number | null;
  sinks: BenchSinks;
}

const ms = (value: number): string => `${Math.round(value).toLocaleString('en-US')} ms`;

async function measureBaseline(context: RunContext): Promise<EmptyBrokerBaseline> {
  const bounds = phaseBounds(0, context.phaseMs, context.phaseTimeoutMs);
  const starts: number[] = [];
  const stops: number[] = [];
  const rss: number[] = [];
  const fds: number[] = [];
  let fdLimit: number | null = null;
  let failure: PhaseFailure | null = null;
  for (let run = 0; run < BASELINE_RUNS && failure === null; run++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'tidelog-bench-partitions-'));
    let live: BenchBroker | null = null;
    try {
      const started = await startPhase('empty broker start', context.entry, dataDir, new Map(), bounds.start, (broker) => (live = broker));
      starts.push(started.ms);
      const rssKb = await statusKb(started.broker.pid, 'VmRSS');
      if (rssKb !== null) rss.push(rssKb);
      const openFiles = await openFileCount(started.broker.pid);
      if (openFiles !== null) fds.push(openFiles);
      fdLimit ??= await openFileLimit(started.broker.pid);
      stops.push(await stopPhase('empty broker stop', started, bounds.stop));
      context.sinks.progress(`empty broker ${run + 1}/${BASELINE_RUNS}: start ${ms(starts.at(-1)!)}, stop ${ms(stops.at(-1)!)}, RSS ${rssKb ?? '?'} kB, ${openFiles ?? '?'} open files`);
    } catch (error) {
      if (!(error instanceof PhaseError)) throw error;
      failure = error.failure;
      context.sinks.progress(`empty broker: ${error.message}`);
    } finally {
      await (live as BenchBroker | null)?.kill();
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const medianOrNull = (values: number[]): number | null => (values.length === 0 ? null : round(median(values), 1));
  return { runs: BASELINE_RUNS, startMs: medianOrNull(starts), stopMs: medianOrNull(stops), rssKb: medianOrNull(rss), openFds: medianOrNull(fds), fdLimit, failure };
}

/** Measures one count into `row` (phases in the file header's order); a PhaseError ends it with its failure. */
async function runCount(row: CountRow, context: RunContext): Promise<void> {
  const { entry, phaseMs, sinks } = context;
  const bounds = row.boundsMs;
  const label = `${row.partitions.toLocaleString('en-US')} partitions`;
  const topics = topicLayout(row.partitions);
  const expected = new Map(topics.map((topic) => [topic.name, topic.partitions]));
  const dataDir = await mkdtemp(join(tmpdir(), 'tidelog-bench-partitions-'));
  const brokers: BenchBroker[] = [];
  const spawned = (broker: BenchBroker): void => void brokers.push(broker);
  const connections: BrokerConnection[] = [];
  try {
    let started = await startPhase('first start', entry, dataDir, new Map(), bounds.start, spawned);
    connections.push(started.connection);
    const createMs = await runPhase('create', bounds.create, started.broker, async () => {
      const admin = createAdmin({ bootstrapServers: [started.address], clientId: CLIENT_ID, requestTimeoutMs: requestTimeoutMs(bounds.create) });
      try {
        const createStarted = performance.now();
        for (let first = 0; first < topics.length; first += TOPICS_PER_CREATE_REQUEST) {
          await admin.createTopics(topics.slice(first, first + TOPICS_PER_CREATE_REQUEST).map((topic) => ({ topic: topic.name, partitions: topic.partitions })));
        }
        const took = performance.now() - createStarted;
        await admin.createTopics([{ topic: ONE_PARTITION_TOPIC, partitions: 1 }]);
        return took;
      } finally {
        await admin.close();
      }
    });
    row.createMs = round(createMs, 1);
    expected.set(ONE_PARTITION_TOPIC, 1);
    sinks.progress(`${label}: created ${topics.length} topic(s) in ${ms(row.createMs)}`);

    row.cleanStopMs = round(await stopPhase('clean stop', started, bounds.stop), 1);
    started = await startPhase('clean start', entry, dataDir, expected, bounds.start, spawned);
    connections.push(started.connection);
    row.cleanStartMs = round(started.ms, 1);
    row.rssKbAfterStart = await statusKb(started.broker.pid, 'VmRSS');
    row.openFdsAfterStart = await openFileCount(started.broker.pid);
    row.startLog.clean = started.broker.lastLine(/ INFO opened partition logs /);
    sinks.progress(`${label}: clean stop ${ms(row.cleanStopMs)}, clean start ${ms(row.cleanStartMs)}, RSS ${row.rssKbAfterStart ?? '?'} kB, ${row.openFdsAfterStart ?? '?'} open files`);

    const connection = started.connection;
    const metadata = await runPhase('metadata', bounds.metadata, started.broker, async (abort) => {
      const times: number[] = [];
      let bytes = 0;
      for (let sample = 0; sample < METADATA_SAMPLES && !abort.aborted; sample++) {
        const sent = performance.now();
        const answer = await metadataOfAll(connection, requestTimeoutMs(bounds.metadata));
        times.push(performance.now() - sent);
        if (!servesAll(answer.response, expected)) throw new Error('a Metadata answer left out a topic or a leader');
        bytes = answer.bytes;
      }
      return { times, bytes };
    });
    row.metadataMs = round(median(metadata.times));
    row.metadataMaxMs = round(Math.max(...metadata.times));
    row.metadataBytes = metadata.bytes;
    sinks.progress(`${label}: Metadata of all topics ${row.metadataMs} ms (max ${row.metadataMaxMs}), ${row.metadataBytes} bytes`);

    const trafficTimeoutMs = requestTimeoutMs(bounds.traffic);
    const single = await runPhase('produce one record a partition', bounds.traffic, started.broker, (abort) => produceComparison(connection, topics, 1, SINGLE_PARTITIONS_PER_REQUEST, phaseMs, abort, trafficTimeoutMs));
    row.produceOnePerPartition = single.comparison;
    sinks.progress(`${label}: produce 1 record a partition: ${describe(single.comparison)}`);
    const batched = await runPhase('produce batched', bounds.traffic, started.broker, (abort) => produceComparison(connection, topics, BATCHED_RECORDS_PER_PARTITION, BATCHED_PARTITIONS_PER_REQUEST, phaseMs, abort, trafficTimeoutMs));
    row.produceBatched = batched.comparison;
    sinks.progress(`${label}: produce ${BATCHED_RECORDS_PER_PARTITION} records a partition: ${describe(batched.comparison)}`);
    const endOffset = single.passes + batched.passes * BATCHED_RECORDS_PER_PARTITION;
    const oneEndOffset = single.comparison.onePartition.records + batched.comparison.onePartition.records;
    row.consume = await runPhase('consume', bounds.traffic, started.broker, async (abort) => {
      const spread = await consumeAll(connection, topics, endOffset, abort, trafficTimeoutMs);
      const onePartition = await consumeAll(connection, [{ name: ONE_PARTITION_TOPIC, partitions: 1 }], oneEndOffset, abort, trafficTimeoutMs);
      return comparisonOf(spread, onePartition);
    });
    sinks.progress(`${label}: consume: ${describe(row.consume)}`);

    connection.destroy();
    await runPhase('kill -9', KILL_WAIT_MS + WORK_SETTLE_MS, started.broker, () => started.broker.kill());
    started = await startPhase('start after kill -9', entry, dataDir, expected, bounds.start, spawned);
    connections.push(started.connection);
    row.crashStartMs = round(started.ms, 1);
    row.rssKbAfterCrashStart = await statusKb(started.broker.pid, 'VmRSS');
    row.openFdsAfterCrashStart = await openFileCount(started.broker.pid);
    row.startLog.crash = started.broker.lastLine(/ INFO opened partition logs /);
    row.peakRssKb = await statusKb(started.broker.pid, 'VmHWM');
    row.finalStopMs = round(await stopPhase('stop after traffic', started, bounds.stop), 1);
    sinks.progress(`${label}: start after kill -9 ${ms(row.crashStartMs)}, RSS ${row.rssKbAfterCrashStart ?? '?'} kB, ${row.openFdsAfterCrashStart ?? '?'} open files; stop after traffic ${ms(row.finalStopMs)}`);
    row.outcome = 'complete';
  } catch (error) {
    if (!(error instanceof PhaseError)) throw error;
    row.failure = error.failure;
    row.outcome = error.failure.kind === 'timeout' ? 'timed out' : 'failed';
    sinks.progress(`${label}: ${row.outcome} in ${error.failure.phase}: ${error.failure.message}`);
  } finally {
    for (const connection of connections) connection.destroy();
    for (const broker of brokers) await broker.kill();
    row.brokerWarnLines = brokers.reduce((sum, broker) => sum + broker.warnLines, 0);
    row.brokerErrorLines = brokers.reduce((sum, broker) => sum + broker.errorLines, 0);
    await rm(dataDir, { recursive: true, force: true });
  }
}

function describe(comparison: Comparison): string {
  const { spread, onePartition } = comparison;
  return `${spread.recordsPerSec.toLocaleString('en-US')} records/s spread (${spread.records.toLocaleString('en-US')} records, ${spread.requests} requests), ${onePartition.recordsPerSec.toLocaleString('en-US')} on 1 partition: ${comparison.ratio}x`;
}

// ---------------------------------------------------------------------------------------------
// The run

export const REPORT_FILES = { json: 'latest.json', markdown: 'latest.md', chart: 'cost-per-partition.svg' } as const;

async function writeReport(outDir: string, report: PartitionsReport): Promise<string> {
  await writeJsonReport(join(outDir, REPORT_FILES.json), report);
  const markdown = renderMarkdown(report);
  await writeFile(join(outDir, REPORT_FILES.markdown), markdown);
  await writeFile(join(outDir, REPORT_FILES.chart), renderCostChart(report.counts));
  return markdown;
}

export async function runPartitionsBench(options: PartitionsBenchOptions): Promise<PartitionsReport> {
  const sinks = benchSinks(options, performance.now());
  const loadAtStart = loadAverages();
  await mkdir(options.outDir, { recursive: true });
  const context: RunContext = { entry: options.brokerEntry, phaseMs: options.phaseMs, phaseTimeoutMs: options.phaseTimeoutMs, sinks };
  const report: PartitionsReport = {
    meta: { date: new Date().toISOString(), node: process.version, machine: machineFacts(loadAtStart), mode: options.mode, counts: [...options.counts], phaseMs: options.phaseMs, phaseTimeoutMs: options.phaseTimeoutMs, note: options.note },
    settings: PARTITIONS_SETTINGS,
    baseline: await measureBaseline(context),
    counts: options.counts.map((count) => emptyCountRow(count, topicLayout(count).length, phaseBounds(count, options.phaseMs, options.phaseTimeoutMs))),
    targets: [],
  };
  let skipBecause = report.baseline.failure === null ? null : `the empty broker ${report.baseline.failure.kind === 'timeout' ? 'timed out' : 'failed'} in ${report.baseline.failure.phase}`;
  for (const row of report.counts) {
    if (skipBecause !== null) {
      row.skippedBecause = skipBecause;
      continue;
    }
    await runCount(row, context);
    row.perPartition = perPartitionCost(row, report.baseline);
    if (row.failure !== null) skipBecause = `${row.partitions.toLocaleString('en-US')} partitions ${row.outcome} in ${row.failure.phase}`;
    report.targets = targetChecks(report.counts);
    await writeReport(options.outDir, report);
  }
  report.targets = targetChecks(report.counts);
  const markdown = await writeReport(options.outDir, report);
  sinks.out(markdown);
  sinks.progress(`wrote ${join(options.outDir, REPORT_FILES.json)}, ${REPORT_FILES.markdown} and ${REPORT_FILES.chart}`);
  return report;
}
