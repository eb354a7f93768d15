// The load benchmark behind `tidelog bench load`: a broker child process on loopback, driven by
// kafkajs 2.2.4, the baseline the bundled client (issue 5) has to beat by 5x.
//
//   produce, acks=1, flush=os         100-byte values, null keys, CLIENT_SETTINGS.recordsPerSend
//                                      records a send, .sendsInFlight sends in flight, one partition
//   consume the same records back      kafkajs's own Fetch path (see "Consuming" below)
//   produce, acks=-1, flush.messages=1 the same producer on a group-commit topic
//
// For each phase: records/s, MB/s of payload (value bytes, MB = 10^6), and CPU seconds per GB of
// payload (GB = 10^9) of the broker process (utime + stime from /proc/<pid>/stat, before and
// after the phase) and of this process (process.cpuUsage), which runs the client only. Both
// processes share this machine's CPUs, so a CPU-bound client slows the broker's numbers too.
//
// kafkajs as fast as it reasonably goes (each choice measured on the 2-CPU bench VM; see
// CLIENT_SETTINGS): Buffer values (no string encoding), one shared message array (kafkajs copies,
// never mutates), a partitioner that returns partition 0, no compression, no idempotence, TCP_NODELAY
// on its sockets (its socketFactory option), logging off, several sends in flight on the one
// connection; fetches of CLIENT_SETTINGS.fetchMaxBytes, not the consumer's 1 MiB per partition.
//
// Consuming: consumer groups are not served yet, so the kafkajs consumer cannot run. We use the
// Cluster kafkajs builds for its consumer (the client's private factory, same options) and its
// Broker.fetch: kafkajs negotiates the Fetch version, encodes the request and decodes the
// response with its record batch decoder, exactly as its consumer does; each partition's answer
// then goes through kafkajs's consumer Batch (offset filter, control records, aborted
// transactions), one fetch in flight, as the consumer's fetch loop does per partition.
//
// Every loop stops at a count or a deadline, whichever comes first. The table goes to `out`
// (stdout), progress lines to `progress` (stderr), the JSON to `outPath`.
import { startBrokerChild, type BrokerChild } from './brokerChild.js';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as KafkaJs from 'kafkajs';
import { clockTicks, peakRssBytes, processCpuSeconds } from './benchStats.js';
import { createKafkaJsClient, createKafkaJsFetchReader, loadKafkaJs, type KafkaJsFetchReader, type KafkaJsModule } from './kafkajsBaseline.js';

// ---------------------------------------------------------------------------------------------
// Limits and shapes (all in one place)

const MB = 1_000_000;
const GB = 1_000_000_000;
const MIB = 1024 * 1024;
/** Every record: a 100-byte value, no key, no headers. */
const VALUE_BYTES = 100;
/** Every topic has one partition, this one. */
const PARTITION = 0;
const PARTITIONS = 1;

/**
 * The kafkajs client as configured for speed. Measured on the 2-CPU bench VM (quick runs, acks=1,
 * client CPU seconds per GB of payload): 200-500 records a send cost 72-79, 1000 cost 80-88, 2000
 * 97, 4000 118, because kafkajs groups a send's messages by partition with an array spread
 * per message (src/producer/groupMessagesPerPartition.js, quadratic in the send's size). Broker CPU
 * per GB goes the other way (a cost per request); 500 is where the client stops getting cheaper.
 * 1, 2, 4 and 8 sends in flight: 4 and 8 alike, fewer slower (107k, 110k, 126k, 130k records/s
 * at 1000 a send). Fetches of 1, 8 and 32 MiB cost the client the same; 1 MiB (the consumer's
 * default per partition) cost the broker about twice as much per GB.
 */
const CLIENT_SETTINGS = {
  /** Records per producer.send (one record batch of about 55 KB). */
  recordsPerSend: 500,
  /** producer.send calls awaiting their acknowledgement at once, on the one connection. */
  sendsInFlight: 4,
  /** Fetch maxBytes, for the request and for the partition (the consumer defaults to 10 MiB and 1 MiB). */
  fetchMaxBytes: 8 * MIB,
  /** Only reached when the consumer has caught up with the log end. */
  fetchMaxWaitMs: 100,
  tcpNoDelay: true,
} as const;

const KAFKAJS_REQUEST_TIMEOUT_MS = 30_000;
const KAFKAJS_CONNECTION_TIMEOUT_MS = 5_000;
const KAFKAJS_KEEP_ALIVE_MS = 60_000;
/** No loop of this benchmark may run longer than this, whatever a plan says. */
const MAX_LOOP_MS = 120_000;

interface Plan {
  label: 'full' | 'quick';
  /** Produced and consumed on a topic of their own before anything is measured (JIT, buffers). */
  warmupRecords: number;
  warmupMs: number;
  produceMaxRecords: number;
  produceMaxMs: number;
  consumeMaxMs: number;
  groupCommitMaxRecords: number;
  groupCommitMaxMs: number;
}

// Sized for kafkajs's ~150k records/s here: full about 100 s in all, quick about 25 s.
const FULL_PLAN: Plan = {
  label: 'full',
  warmupRecords: 200_000,
  warmupMs: 10_000,
  produceMaxRecords: 10_000_000,
  produceMaxMs: 45_000,
  consumeMaxMs: 60_000,
  groupCommitMaxRecords: 6_000_000,
  groupCommitMaxMs: 30_000,
};

const QUICK_PLAN: Plan = {
  label: 'quick',
  warmupRecords: 50_000,
  warmupMs: 4_000,
  produceMaxRecords: 2_000_000,
  produceMaxMs: 10_000,
  consumeMaxMs: 12_000,
  groupCommitMaxRecords: 1_500_000,
  groupCommitMaxMs: 8_000,
};

// ---------------------------------------------------------------------------------------------
// Report shapes

export interface LoadRow {
  name: string;
  phase: 'produce' | 'consume';
  topic: string;
  acks: number | null;
  flush: 'os' | 'every-append';
  records: number;
  payloadBytes: number;
  seconds: number;
  recordsPerSecond: number;
  payloadMbPerSecond: number;
  brokerCpuSeconds: number;
  brokerCpuSecondsPerGb: number;
  clientCpuSeconds: number;
  clientCpuSecondsPerGb: number;
  /** Which bound ended the phase: its record count or its deadline. */
  stoppedBy: 'count' | 'time';
  /** Bytes of the partition's .log files after the phase (produce rows). */
  logBytes?: number;
}

export interface LoadBenchReport {
  machine: { cpus: number; node: string; clockTicksPerSecond: number };
  startedAt: string;
  plan: Plan;
  client: { library: 'kafkajs'; version: string; consumePath: string; settings: typeof CLIENT_SETTINGS };
  broker: { peakRssBytes: number | null; warnLines: number; errorLines: number };
  rows: LoadRow[];
}

export interface LoadBenchOptions {
  quick: boolean;
  /** Where the JSON goes; its directory is created. */
  outPath: string;
  /** bin/tidelog.js of this checkout: the broker child runs `node <brokerEntry> broker start ...`. */
  brokerEntry: string;
  /** Receives the Markdown table. */
  out?: (text: string) => void;
  /** Receives one line per step. */
  progress?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Entry point

export async function runLoadBench(options: LoadBenchOptions): Promise<LoadBenchReport> {
  const plan = options.quick ? QUICK_PLAN : FULL_PLAN;
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const startedMs = performance.now();
  const progressSink = options.progress ?? ((line: string) => void process.stderr.write(line + '\n'));
  const progress = (line: string): void => progressSink(`[bench ${((performance.now() - startedMs) / 1000).toFixed(1)}s] ${line}`);
  const kafkajs = loadKafkaJs('bench load');
  const clockTicksPerSecond = await clockTicks();
  // Fail before a minute of measuring, not after, when the results cannot be written.
  await mkdir(dirname(options.outPath), { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-load-'));
  const report: LoadBenchReport = {
    machine: { cpus: cpus().length, node: process.version, clockTicksPerSecond },
    startedAt: new Date().toISOString(),
    plan,
    client: { library: 'kafkajs', version: kafkajs.version, consumePath: 'kafkajs Cluster + Broker.fetch + consumer Batch (no consumer group)', settings: CLIENT_SETTINGS },
    broker: { peakRssBytes: null, warnLines: 0, errorLines: 0 },
    rows: [],
  };
  progress(`${plan.label} run in ${dir}, kafkajs ${kafkajs.version}`);
  try {
    const broker = await startBroker(options.brokerEntry, join(dir, 'data'), progress);
    try {
      const context: Context = { plan, kafkajs, broker, clockTicksPerSecond, progress };
      report.rows.push(...(await runPhases(context)));
      report.broker.peakRssBytes = await peakRssBytes(broker.pid);
    } catch (error) {
      // The phase's error is the one to report; a failed stop after it is only logged.
      await broker.stop().catch((stopError: unknown) => progress(`stopping the broker after an error failed too: ${String(stopError)}`));
      throw error;
    }
    await broker.stop();
    report.broker.warnLines = broker.warnLines();
    report.broker.errorLines = broker.errorLines();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await writeFile(options.outPath, JSON.stringify(report, null, 2) + '\n');
  out(formatTable(report));
  progress(`done; JSON written to ${options.outPath}`);
  return report;
}

interface Context {
  plan: Plan;
  kafkajs: KafkaJsModule;
  broker: BrokerProcess;
  clockTicksPerSecond: number;
  progress: (line: string) => void;
}

async function runPhases(context: Context): Promise<LoadRow[]> {
  const { plan, broker, progress } = context;
  const kafka = createKafkaJsClient(context.kafkajs.module, {
    clientId: 'tidelog-bench-load',
    brokers: [`${broker.host}:${broker.port}`],
    connectionTimeoutMs: KAFKAJS_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: KAFKAJS_REQUEST_TIMEOUT_MS,
    keepAliveMs: KAFKAJS_KEEP_ALIVE_MS,
  });
  const topics = { warmup: 'load-warmup', plain: 'load-acks1', groupCommit: 'load-group-commit' };
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topics.warmup, numPartitions: 1 },
        { topic: topics.plain, numPartitions: 1 },
        { topic: topics.groupCommit, numPartitions: 1, configEntries: [{ name: 'flush.messages', value: '1' }] },
      ],
    });
    // The group-commit row means nothing unless the topic really flushes every append.
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: context.kafkajs.module.ConfigResourceTypes.TOPIC, name: topics.groupCommit, configNames: ['flush.messages'] }],
    });
    const flushMessages = described.resources[0]?.configEntries.find((entry) => entry.configName === 'flush.messages')?.configValue;
    if (flushMessages !== '1') throw new Error(`${topics.groupCommit} has flush.messages=${String(flushMessages)}, not 1`);
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({
    createPartitioner: () => () => PARTITION,
    allowAutoTopicCreation: false,
    idempotent: false,
  });
  const consumer = createFetchConsumer(context.kafkajs, kafka);
  await producer.connect();
  try {
    await consumer.connect();
    try {
      const warmProduce = await produce(producer, topics.warmup, 1, { maxCount: plan.warmupRecords, maxMs: plan.warmupMs });
      const warmConsume = await consumer.consume(topics.warmup, warmProduce.records, plan.warmupMs);
      progress(`warm-up: ${warmProduce.records} records produced, ${warmConsume.records} consumed`);

      const rows: LoadRow[] = [];
      const produced = await measure(context, () => produce(producer, topics.plain, 1, { maxCount: plan.produceMaxRecords, maxMs: plan.produceMaxMs }));
      rows.push(row('produce, acks=1, flush=os', 'produce', topics.plain, 1, 'os', produced, plan.produceMaxRecords, await broker.logBytes(topics.plain)));
      progress(describe(rows[rows.length - 1]!));

      const consumed = await measure(context, () => consumer.consume(topics.plain, produced.records, plan.consumeMaxMs));
      rows.push(row('consume from offset 0 (the records above)', 'consume', topics.plain, null, 'os', consumed, produced.records));
      progress(describe(rows[rows.length - 1]!));

      const grouped = await measure(context, () => produce(producer, topics.groupCommit, -1, { maxCount: plan.groupCommitMaxRecords, maxMs: plan.groupCommitMaxMs }));
      rows.push(row('produce, acks=-1, flush.messages=1 (group commit)', 'produce', topics.groupCommit, -1, 'every-append', grouped, plan.groupCommitMaxRecords, await broker.logBytes(topics.groupCommit)));
      progress(describe(rows[rows.length - 1]!));
      return rows;
    } finally {
      await consumer.disconnect();
    }
  } finally {
    await producer.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring a phase

interface PhaseCount {
  records: number;
  payloadBytes: number;
}

interface Measured extends PhaseCount {
  seconds: number;
  brokerCpuSeconds: number;
  clientCpuSeconds: number;
}

/** Runs a phase between two readings of both processes' CPU time and the wall clock. */
async function measure(context: Context, phase: () => Promise<PhaseCount>): Promise<Measured> {
  const brokerBefore = await processCpuSeconds(context.broker.pid, context.clockTicksPerSecond);
  const clientBefore = process.cpuUsage();
  const before = performance.now();
  const counted = await phase();
  const seconds = (performance.now() - before) / 1000;
  const client = process.cpuUsage(clientBefore);
  const brokerAfter = await processCpuSeconds(context.broker.pid, context.clockTicksPerSecond);
  return { ...counted, seconds, brokerCpuSeconds: brokerAfter - brokerBefore, clientCpuSeconds: (client.user + client.system) / 1e6 };
}

function row(name: string, phase: LoadRow['phase'], topic: string, acks: number | null, flush: LoadRow['flush'], measured: Measured, wanted: number, logBytes?: number): LoadRow {
  if (measured.records === 0) throw new Error(`${name}: no records in ${measured.seconds.toFixed(1)} s`);
  const gigabytes = measured.payloadBytes / GB;
  const result: LoadRow = {
    name,
    phase,
    topic,
    acks,
    flush,
    records: measured.records,
    payloadBytes: measured.payloadBytes,
    seconds: measured.seconds,
    recordsPerSecond: measured.records / measured.seconds,
    payloadMbPerSecond: measured.payloadBytes / MB / measured.seconds,
    brokerCpuSeconds: measured.brokerCpuSeconds,
    brokerCpuSecondsPerGb: measured.brokerCpuSeconds / gigabytes,
    clientCpuSeconds: measured.clientCpuSeconds,
    clientCpuSecondsPerGb: measured.clientCpuSeconds / gigabytes,
    stoppedBy: measured.records >= wanted ? 'count' : 'time',
  };
  if (logBytes !== undefined) result.logBytes = logBytes;
  return result;
}

function describe(row: LoadRow): string {
  return `${row.name}: ${row.records} records in ${row.seconds.toFixed(1)} s, ${formatNumber(row.recordsPerSecond)} records/s, ${row.payloadMbPerSecond.toFixed(1)} MB/s, broker ${row.brokerCpuSecondsPerGb.toFixed(1)} CPU s/GB, client ${row.clientCpuSecondsPerGb.toFixed(1)} CPU s/GB`;
}

// ---------------------------------------------------------------------------------------------
// Producing

interface LoopLimit {
  maxCount: number;
  maxMs: number;
}

function checkLimit(limit: LoopLimit): void {
  if (!Number.isSafeInteger(limit.maxCount) || limit.maxCount < 1 || !(limit.maxMs > 0 && limit.maxMs <= MAX_LOOP_MS)) {
    throw new RangeError(`loop limits must be finite and positive: ${JSON.stringify(limit)}`);
  }
}

/**
 * CLIENT_SETTINGS.sendsInFlight senders share the count: each claims up to .recordsPerSend records, sends and
 * awaits them, until the count is claimed or the deadline passed. A send in flight at the deadline
 * finishes (kafkajs's request timeout bounds it) and is counted.
 */
async function produce(producer: KafkaJs.Producer, topic: string, acks: 1 | -1, limit: LoopLimit): Promise<PhaseCount> {
  checkLimit(limit);
  const messages: KafkaJs.Message[] = Array.from({ length: CLIENT_SETTINGS.recordsPerSend }, (_, i) => ({ value: Buffer.alloc(VALUE_BYTES, 0x61 + (i % 26)) }));
  const deadline = performance.now() + limit.maxMs;
  let claimed = 0;
  let acknowledged = 0;
  const sender = async (): Promise<void> => {
    while (claimed < limit.maxCount && performance.now() < deadline) {
      const count = Math.min(CLIENT_SETTINGS.recordsPerSend, limit.maxCount - claimed);
      claimed += count;
      const metadata = await producer.send({ topic, acks, messages: count === messages.length ? messages : messages.slice(0, count) });
      const partition = metadata[0];
      if (metadata.length !== 1 || partition === undefined || partition.errorCode !== 0) throw new Error(`produce to ${topic} answered ${JSON.stringify(metadata)}`);
      acknowledged += count;
    }
  };
  await Promise.all(Array.from({ length: CLIENT_SETTINGS.sendsInFlight }, sender));
  return { records: acknowledged, payloadBytes: acknowledged * VALUE_BYTES };
}

// ---------------------------------------------------------------------------------------------
// Consuming through kafkajs's Fetch path (no consumer group; bench/kafkajsBaseline.ts)

interface FetchConsumer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Reads `topic` partition 0 from offset 0 until `count` records or `maxMs`; checks the offsets are 0, 1, 2, ... */
  consume(topic: string, count: number, maxMs: number): Promise<PhaseCount>;
}

function createFetchConsumer(kafkajs: KafkaJsModule, kafka: KafkaJs.Kafka): FetchConsumer {
  const reader: KafkaJsFetchReader = createKafkaJsFetchReader(kafkajs, kafka, { fetchMaxBytes: CLIENT_SETTINGS.fetchMaxBytes, fetchMaxWaitMs: CLIENT_SETTINGS.fetchMaxWaitMs });
  return {
    connect: () => reader.connect(),
    disconnect: () => reader.disconnect(),
    async consume(topic, count, maxMs) {
      checkLimit({ maxCount: Math.max(count, 1), maxMs });
      const { records, payloadBytes } = await reader.read(topic, PARTITIONS, count, maxMs);
      return { records, payloadBytes };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The broker child process

interface BrokerProcess extends BrokerChild {
  /** Bytes of the .log files of `topic` partition 0. */
  logBytes(topic: string): Promise<number>;
}

async function startBroker(entry: string, dataDir: string, progress: (line: string) => void): Promise<BrokerProcess> {
  const child = await startBrokerChild(entry, dataDir, { progress });
  return { ...child, logBytes: (topic) => logFileBytes(join(dataDir, `${topic}-${PARTITION}`)) };
}

async function logFileBytes(partitionDir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(partitionDir)) {
    if (name.endsWith('.log')) bytes += (await stat(join(partitionDir, name))).size;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatTable(report: LoadBenchReport): string {
  const settings = report.client.settings;
  const lines = [
    `Load benchmark (${report.plan.label}), ${report.startedAt}: ${report.machine.cpus} CPUs shared by broker and client, Node ${report.machine.node}, kafkajs ${report.client.version} ` +
      `(${settings.recordsPerSend} records a send, ${settings.sendsInFlight} sends in flight, fetch max ${settings.fetchMaxBytes / MIB} MiB). ` +
      `Records carry 100-byte values; MB/s and GB count payload bytes (10^6, 10^9). CPU cores = CPU seconds / wall seconds.`,
    '',
    '| Phase | Records | Stopped by | Seconds | Records/s | MB/s | Broker CPU s/GB | Client CPU s/GB | Broker CPU cores | Client CPU cores |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of report.rows) {
    lines.push(
      `| ${row.name} | ${row.records.toLocaleString('en-US')} | ${row.stoppedBy} | ${row.seconds.toFixed(1)} | ${formatNumber(row.recordsPerSecond)} | ${formatNumber(row.payloadMbPerSecond)} | ${formatNumber(row.brokerCpuSecondsPerGb)} | ${formatNumber(row.clientCpuSecondsPerGb)} | ${(row.brokerCpuSeconds / row.seconds).toFixed(2)} | ${(row.clientCpuSeconds / row.seconds).toFixed(2)} |`,
    );
  }
  const logNotes = report.rows
    .filter((row) => row.logBytes !== undefined)
    .map((row) => `${row.topic}: ${formatNumber(row.logBytes! / MB)} MB of log for ${formatNumber(row.payloadBytes / MB)} MB of payload`);
  lines.push('', `Broker: peak RSS ${report.broker.peakRssBytes === null ? 'unknown' : `${formatNumber(report.broker.peakRssBytes / MB)} MB`}, ${report.broker.warnLines} WARN and ${report.broker.errorLines} ERROR log lines. ${logNotes.join('; ')}.`);
  return lines.join('\n') + '\n';
}
