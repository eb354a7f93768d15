// The end-to-end matrix behind `tidelog bench` (no suite): one broker child process on a free
// port, and for every matrix point (bench/matrixPlan.ts) the bundled client and kafkajs 2.2.4
// measured through the same rows in the same run, interleaved (produce of both, then consume of
// both, the first client alternating from point to point) so machine noise hits both.
//
// Per point: two topics with the point's partitions and topic configs (segment.bytes;
// flush.messages=1 with acks=all; file.delete.delay.ms=0 so the point's data is gone when its
// topics are deleted after it). Then:
//   produce   each client writes its own topic for produceMs (or maxRecords): sendsInFlight
//             concurrent send calls of recordsPerSend records each; latency is per send call
//   consume   each client reads the topic the bundled producer wrote, from offset 0 on every
//             partition, until it has read what was produced (or maxRecords, or consumeMs),
//             checking every offset. tidelog: consumer.batches() read with a RecordCursor, the
//             consumer's fastest public path. kafkajs: its consumer's fetch path without a group
//             (as bench/loadBench.ts: private Cluster + Broker.fetch + consumer Batch), all
//             partitions in one fetch, one fetch in flight
// Broker CPU seconds (/proc/<pid>/stat) and peak RSS (VmRSS sampled from /proc/<pid>/status)
// come from the broker child itself.
//
// Writes latest.json, latest.md and three SVG charts to the output directory; prints the
// Markdown and the target checks (PASS/FAIL) to stdout; progress on stderr.
import { startBrokerChild, type BrokerChild } from './brokerChild.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as KafkaJs from 'kafkajs';
import { createAdmin, type Admin } from '../client/admin.js';
import { createConsumer } from '../client/consumer/consumer.js';
import { createProducer } from '../client/producer.js';
import { RecordCursor } from '../client/recordDecoder.js';
import { clockTicks, loadAverages, machineFacts, processCpuSeconds, statusKb } from './benchStats.js';
import { matrixCharts } from './charts.js';
import { MATRIX_DESCRIPTIONS, TARGET_POINT, matrixPoints, pointLabel, type MatrixMode, type MatrixPoint } from './matrixPlan.js';
import { formatTargetCheck, ratios, renderMarkdown, reportProblems, targetChecks, type BenchClient, type MatrixReport, type MatrixRow } from './matrixReport.js';
import { LatencyRecorder, type LatencySummary } from './percentiles.js';
import { OffsetCheck, createKafkaJsClient, createKafkaJsFetchReader, loadKafkaJs, type KafkaJsFetchReader, type KafkaJsModule } from './kafkajsBaseline.js';

// ---------------------------------------------------------------------------------------------
// Limits and settings (all in one place)

const KIB = 1024;
const MIB = 1024 * KIB;
const MB = 1_000_000;

/**
 * tidelog producer: records per sendRaw call (as bench/clientBench.ts for 100-byte records),
 * bounded by bytes so that large records do not queue megabytes in the client per send: its
 * batches are batch.size whatever a send holds, and the per-send latency stays a latency.
 */
const TIDELOG_MAX_RECORDS_PER_SEND = 1_000;
const TIDELOG_SEND_BYTES = 256 * KIB;
const TIDELOG_SENDS_IN_FLIGHT = 16;
/**
 * kafkajs producer, tuned as bench/loadBench.ts measured it: 500 records a send (its per-send
 * grouping is quadratic in the send's size), 4 sends in flight. A send becomes one batch per
 * partition, so its bytes stay well under max.message.bytes (1 MiB) and the smallest segment.
 */
const KAFKAJS_MAX_RECORDS_PER_SEND = 500;
const KAFKAJS_SEND_BYTES = 512 * KIB;
const KAFKAJS_SENDS_IN_FLIGHT = 4;

export const MATRIX_DEFAULTS = { batchSize: 64 * KIB, lingerMs: 5 } as const;
/** batch.size must fit max.message.bytes (1048588) and the smallest segment.bytes of the matrix. */
export const MAX_MATRIX_BATCH_SIZE = 1 * MIB;
export const MIN_MATRIX_BATCH_SIZE = 1 * KIB;
export const MAX_MATRIX_LINGER_MS = 1_000;
/** No phase runs longer than this, whatever the flags say. */
export const MAX_PHASE_MS = 120_000;
/** A produce phase writes at most this many payload bytes (disk: the point's topics are deleted after it). */
const MAX_PHASE_PAYLOAD_BYTES = 2_000_000_000;

const PHASE_TIMES: Record<MatrixMode, { warmupMs: number; produceMs: number; consumeMs: number }> = {
  quick: { warmupMs: 2_000, produceMs: 4_000, consumeMs: 4_000 },
  default: { warmupMs: 3_000, produceMs: 5_000, consumeMs: 5_000 },
  full: { warmupMs: 3_000, produceMs: 5_000, consumeMs: 5_000 },
};

const FETCH_MAX_BYTES = 8 * MIB;
const FETCH_MAX_WAIT_MS = 100;
const REQUEST_TIMEOUT_MS = 30_000;
const CONNECTION_TIMEOUT_MS = 5_000;
/** A consume phase ends after this long without data (the log end was reached early). */
const CONSUME_IDLE_TIMEOUT_MS = 5_000;
const RSS_SAMPLE_INTERVAL_MS = 100;
const PROGRESS_REDRAW_MS = 500;

export interface MatrixBenchOptions {
  mode: MatrixMode;
  /** Where latest.json, latest.md and the SVGs go (created). */
  outDir: string;
  /** bin/tidelog.js of this checkout: the broker child runs `node <brokerEntry> broker start ...`. */
  brokerEntry: string;
  batchSize?: number;
  lingerMs?: number;
  warmupMs?: number;
  produceMs?: number;
  consumeMs?: number;
  /** Records per phase at most (a small number makes a smoke run). */
  maxRecords?: number;
  note?: string | null;
  out?: (text: string) => void;
  /** Progress goes here; a bar when it is a TTY, a line per row otherwise. */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

interface Settings {
  batchSize: number;
  lingerMs: number;
  warmupMs: number;
  produceMs: number;
  consumeMs: number;
  maxRecords: number;
}

// ---------------------------------------------------------------------------------------------
// Entry point

export async function runMatrixBench(options: MatrixBenchOptions): Promise<MatrixReport> {
  const times = PHASE_TIMES[options.mode];
  const settings: Settings = {
    batchSize: options.batchSize ?? MATRIX_DEFAULTS.batchSize,
    lingerMs: options.lingerMs ?? MATRIX_DEFAULTS.lingerMs,
    warmupMs: options.warmupMs ?? times.warmupMs,
    produceMs: options.produceMs ?? times.produceMs,
    consumeMs: options.consumeMs ?? times.consumeMs,
    maxRecords: options.maxRecords ?? Number.MAX_SAFE_INTEGER,
  };
  checkSettings(settings);
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const points = matrixPoints(options.mode);
  const progress = new MatrixProgress(points.length * 4, options.progressStream ?? process.stderr);
  const kafkajs = loadKafkaJs('tidelog bench');
  const clockTicksPerSecond = await clockTicks();
  const startedAt = new Date();
  const loadAverageAtStart = loadAverages();
  const started = performance.now();
  // Fail before minutes of measuring, not after, when the results cannot be written.
  await mkdir(options.outDir, { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-matrix-'));
  const rows: MatrixRow[] = [];
  let brokerSummary: MatrixReport['meta']['broker'] = { peakRssMb: null, warnLines: 0, errorLines: 0 };
  try {
    const broker = await startBrokerChild(options.brokerEntry, join(dir, 'data'), { progress: (line) => progress.note(line) });
    try {
      const context = await openContext(broker, kafkajs, settings, clockTicksPerSecond, progress);
      try {
        if (settings.warmupMs > 0) {
          progress.note(`warm-up (${settings.warmupMs} ms a phase, not recorded)`);
          await runPoint(context, { ...TARGET_POINT }, 'warmup', ['tidelog', 'kafkajs'], { ...settings, produceMs: settings.warmupMs, consumeMs: settings.warmupMs }, () => undefined);
        }
        for (const [index, point] of points.entries()) {
          const order: BenchClient[] = index % 2 === 0 ? ['tidelog', 'kafkajs'] : ['kafkajs', 'tidelog'];
          await runPoint(context, point, `m${index}`, order, settings, (row) => {
            rows.push(row);
            progress.rowDone(row);
          });
        }
      } finally {
        await context.close();
      }
      brokerSummary = { peakRssMb: await peakRssMb(broker.pid), warnLines: broker.warnLines(), errorLines: broker.errorLines() };
    } catch (error) {
      // The phase's error is the one to report; a failed stop after it is only noted.
      await broker.stop().catch((stopError: unknown) => progress.note(`stopping the broker after an error failed too: ${String(stopError)}`));
      throw error;
    }
    await broker.stop();
  } finally {
    progress.finish();
    await rm(dir, { recursive: true, force: true });
  }

  const report: MatrixReport = {
    rows,
    meta: {
      date: startedAt.toISOString(),
      mode: options.mode,
      matrix: MATRIX_DESCRIPTIONS[options.mode],
      node: process.version,
      kafkajsVersion: kafkajs.version,
      machine: machineFacts(loadAverageAtStart),
      note: options.note ?? null,
      durationSec: (performance.now() - started) / 1000,
      measured: MEASURED,
      settings: {
        tidelogBatchSize: settings.batchSize,
        tidelogLingerMs: settings.lingerMs,
        tidelogRecordsPerSend: `min(${TIDELOG_MAX_RECORDS_PER_SEND}, ${TIDELOG_SEND_BYTES} / recordBytes)`,
        tidelogSendsInFlight: TIDELOG_SENDS_IN_FLIGHT,
        kafkajsRecordsPerSend: `min(${KAFKAJS_MAX_RECORDS_PER_SEND}, ${KAFKAJS_SEND_BYTES} / recordBytes)`,
        kafkajsSendsInFlight: KAFKAJS_SENDS_IN_FLIGHT,
        warmupMs: settings.warmupMs,
        produceMs: settings.produceMs,
        consumeMs: settings.consumeMs,
        maxRecordsPerPhase: settings.maxRecords,
        fetchMaxBytes: FETCH_MAX_BYTES,
      },
      broker: brokerSummary,
      ratios: ratios(rows),
      targets: targetChecks(rows),
    },
  };
  const problems = reportProblems(report);
  if (problems.length > 0) throw new Error(`the matrix report does not match its schema:\n${problems.slice(0, 20).join('\n')}`);
  const markdown = renderMarkdown(report);
  await writeFile(join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(options.outDir, 'latest.md'), markdown);
  for (const chart of matrixCharts(rows)) await writeFile(join(options.outDir, chart.fileName), chart.svg);
  out(markdown);
  out(`\n${report.meta.targets.map(formatTargetCheck).join('\n')}\n`);
  return report;
}

const MEASURED: Record<string, string> = {
  'produce records/s, MB/s': 'records acknowledged / wall seconds of the phase (after a warm-up and one untimed priming send per topic); MB = 10^6 bytes of record values',
  'produce latency (p50/p99/p999)':
    'per send call, on the client: from calling tidelog producer.sendRaw / kafkajs producer.send with recordsPerSend records to its promise resolving with all of them acknowledged, with sendsInFlight calls outstanding, so it includes time queued in the client (linger, buffer.memory) as well as the broker round trip; nearest-rank percentiles over every send of the phase',
  'consume records/s, MB/s':
    'both clients read the topic the bundled producer just wrote, from offset 0 on every partition, checking each offset, until everything produced (or maxRecords) is read; timed from after connect to the last record. tidelog: consumer.batches() read with a RecordCursor (its fastest public path, no record objects). kafkajs: its consumer fetch path without a group (private Cluster + Broker.fetch + consumer Batch), all partitions in one fetch, one fetch in flight',
  'fetch sizes': `both consumers: ${FETCH_MAX_BYTES / MIB} MiB a fetch and a partition, max wait ${FETCH_MAX_WAIT_MS} ms`,
  'broker CPU s': 'utime + stime of the broker child from /proc/<pid>/stat, before and after the phase',
  'broker RSS MB': `the largest VmRSS of /proc/<pid>/status sampled every ${RSS_SAMPLE_INTERVAL_MS} ms during the phase (MB = 10^6)`,
  'acks=all': 'the topic has flush.messages=1 (an fsync before each acknowledgement; concurrent appends share one); tidelog idempotence on (its default with acks=all), kafkajs idempotence off',
  partitioning: 'null keys: tidelog sticky partitioning (its default), kafkajs round robin per record',
  'batch size, linger': 'tidelog: the producer batch.size and linger.ms (--batch-size, --linger-ms). kafkajs has neither: each send() goes out at once as one batch per partition, so its row shows the bytes of one send and linger 0',
};

function checkSettings(settings: Settings): void {
  const check = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  };
  check('batchSize', settings.batchSize, MIN_MATRIX_BATCH_SIZE, MAX_MATRIX_BATCH_SIZE);
  check('lingerMs', settings.lingerMs, 0, MAX_MATRIX_LINGER_MS);
  check('warmupMs', settings.warmupMs, 0, MAX_PHASE_MS);
  check('produceMs', settings.produceMs, 1, MAX_PHASE_MS);
  check('consumeMs', settings.consumeMs, 1, MAX_PHASE_MS);
  check('maxRecords', settings.maxRecords, 1, Number.MAX_SAFE_INTEGER);
}

// ---------------------------------------------------------------------------------------------
// One point

interface Context {
  broker: BrokerChild;
  admin: Admin;
  kafkajs: KafkaJsModule;
  kafka: KafkaJs.Kafka;
  settings: Settings;
  clockTicksPerSecond: number;
  progress: MatrixProgress;
  close(): Promise<void>;
}

async function openContext(broker: BrokerChild, kafkajs: KafkaJsModule, settings: Settings, clockTicksPerSecond: number, progress: MatrixProgress): Promise<Context> {
  const admin = createAdmin({ bootstrapServers: [broker.address], requestTimeoutMs: REQUEST_TIMEOUT_MS, clientId: 'tidelog-bench-matrix' });
  const kafka = createKafkaJsClient(kafkajs.module, { clientId: 'tidelog-bench-matrix', brokers: [broker.address], connectionTimeoutMs: CONNECTION_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  return { broker, admin, kafkajs, kafka, settings, clockTicksPerSecond, progress, close: () => admin.close() };
}

/**
 * kafkajs clients of one point: kafkajs keeps refreshing the metadata of every topic it has used
 * and fails once one is deleted, so each point connects its own (untimed) and disconnects them
 * before its topics go.
 */
interface KafkaJsClients {
  producer: KafkaJs.Producer;
  reader: KafkaJsFetchReader;
}

async function withKafkaJsClients<T>(context: Context, use: (clients: KafkaJsClients) => Promise<T>): Promise<T> {
  let next = 0;
  const roundRobin: KafkaJs.ICustomPartitioner = () => ({ partitionMetadata }) => next++ % partitionMetadata.length;
  const producer = context.kafka.producer({ createPartitioner: roundRobin, allowAutoTopicCreation: false, idempotent: false });
  const reader = createKafkaJsFetchReader(context.kafkajs, context.kafka, { fetchMaxBytes: FETCH_MAX_BYTES, fetchMaxWaitMs: FETCH_MAX_WAIT_MS });
  await producer.connect();
  try {
    await reader.connect();
    try {
      return await use({ producer, reader });
    } finally {
      await reader.disconnect();
    }
  } finally {
    await producer.disconnect();
  }
}

async function runPoint(context: Context, point: MatrixPoint, name: string, order: readonly BenchClient[], settings: Settings, onRow: (row: MatrixRow) => void): Promise<void> {
  const topics: Record<BenchClient, string> = { tidelog: `${name}-tidelog`, kafkajs: `${name}-kafkajs` };
  const configs: Record<string, string> = { 'segment.bytes': String(point.segmentBytes), 'file.delete.delay.ms': '0' };
  if (point.acks === 'all') configs['flush.messages'] = '1';
  await context.admin.createTopics(order.map((client) => ({ topic: topics[client], partitions: point.partitions, configs })));
  try {
    await withKafkaJsClients(context, async (kafkajs) => {
      const maxRecords = Math.min(settings.maxRecords, Math.floor(MAX_PHASE_PAYLOAD_BYTES / point.recordBytes));
      let producedByTidelog = 0;
      for (const client of order) {
        context.progress.phase(`${client} produce ${pointLabel(point)}`);
        const measured = client === 'tidelog' ? await produceTidelog(context, point, topics.tidelog, maxRecords, settings) : await produceKafkaJs(context, kafkajs.producer, point, topics.kafkajs, maxRecords, settings);
        if (client === 'tidelog') producedByTidelog = measured.inTopic;
        onRow(toRow(point, client, 'produce', measured, settings));
      }
      const toRead = Math.min(producedByTidelog, maxRecords);
      for (const client of order) {
        context.progress.phase(`${client} consume ${pointLabel(point)}`);
        const measured = client === 'tidelog' ? await consumeTidelog(context, point, topics.tidelog, toRead, settings) : await consumeKafkaJs(context, kafkajs.reader, point, topics.tidelog, toRead, settings);
        onRow(toRow(point, client, 'consume', measured, settings));
      }
    });
  } finally {
    await context.admin.deleteTopics(order.map((client) => topics[client]));
  }
}

interface PhaseCount {
  records: number;
  payloadBytes: number;
  /** Produce: records in the topic afterwards (the priming send included). */
  inTopic: number;
  latency: LatencySummary | null;
  recordsPerSend: number | null;
  sendsInFlight: number | null;
  /** When the last record was handled (closing a client is not timed). */
  endedAt: number;
  wanted: number;
}

interface Measured extends PhaseCount {
  seconds: number;
  brokerCpuSec: number;
  brokerRssMb: number | null;
  clientCpuSec: number;
}

function toRow(point: MatrixPoint, client: BenchClient, op: MatrixRow['op'], measured: Measured, settings: Settings): MatrixRow {
  if (measured.records === 0) throw new Error(`${client} ${op} ${pointLabel(point)}: no records in ${measured.seconds.toFixed(1)} s`);
  const perSend = measured.recordsPerSend;
  return {
    client,
    op,
    recordBytes: point.recordBytes,
    partitions: point.partitions,
    segmentBytes: point.segmentBytes,
    acks: point.acks,
    recordsPerSec: measured.records / measured.seconds,
    mbPerSec: measured.payloadBytes / MB / measured.seconds,
    p50Ms: measured.latency?.p50Ms ?? null,
    p99Ms: measured.latency?.p99Ms ?? null,
    p999Ms: measured.latency?.p999Ms ?? null,
    records: measured.records,
    seconds: measured.seconds,
    stoppedBy: measured.records >= measured.wanted ? 'count' : 'time',
    brokerCpuSec: measured.brokerCpuSec,
    brokerRssMb: measured.brokerRssMb,
    clientCpuSec: measured.clientCpuSec,
    batchSize: op === 'consume' ? null : client === 'tidelog' ? settings.batchSize : (perSend ?? 0) * point.recordBytes,
    lingerMs: op === 'consume' ? null : client === 'tidelog' ? settings.lingerMs : 0,
    recordsPerSend: perSend,
    sendsInFlight: measured.sendsInFlight,
  };
}

/** Runs a phase between two readings of the broker's and this process's CPU time, sampling the broker's RSS. */
async function measure(context: Context, phase: (ready: () => void) => Promise<PhaseCount>): Promise<Measured> {
  const pid = context.broker.pid;
  // The broker's CPU is read around the whole phase, connects included (small; both clients pay them).
  const brokerBefore = await processCpuSeconds(pid, context.clockTicksPerSecond);
  let clientBefore = process.cpuUsage();
  let before = performance.now();
  const ready = (): void => {
    clientBefore = process.cpuUsage();
    before = performance.now();
  };
  const rss = new RssSampler(pid);
  let counted: PhaseCount;
  try {
    counted = await phase(ready);
  } finally {
    await rss.stop();
  }
  const seconds = (counted.endedAt - before) / 1000;
  const client = process.cpuUsage(clientBefore);
  const brokerAfter = await processCpuSeconds(pid, context.clockTicksPerSecond);
  return { ...counted, seconds, brokerCpuSec: brokerAfter - brokerBefore, brokerRssMb: rss.peakMb, clientCpuSec: (client.user + client.system) / 1e6 };
}

// ---------------------------------------------------------------------------------------------
// Producing

function valueFor(recordBytes: number, index: number): Buffer {
  return Buffer.alloc(recordBytes, 0x61 + (index % 26));
}

/**
 * `sendsInFlight` senders share the record budget: each claims up to recordsPerSend records,
 * sends them and awaits the acknowledgement, until the budget is claimed or the deadline passed.
 */
async function sendLoop(send: (count: number) => Promise<void>, recordsPerSend: number, sendsInFlight: number, maxRecords: number, maxMs: number, latency: LatencyRecorder): Promise<{ records: number; endedAt: number }> {
  const deadline = performance.now() + Math.min(maxMs, MAX_PHASE_MS);
  let claimed = 0;
  let acknowledged = 0;
  const sender = async (): Promise<void> => {
    while (claimed < maxRecords && performance.now() < deadline) {
      const count = Math.min(recordsPerSend, maxRecords - claimed);
      claimed += count;
      const sentAt = performance.now();
      await send(count);
      latency.record(performance.now() - sentAt);
      acknowledged += count;
    }
  };
  await Promise.all(Array.from({ length: sendsInFlight }, sender));
  return { records: acknowledged, endedAt: performance.now() };
}

function recordsPerSendFor(recordBytes: number, maxRecords: number, sendBytes: number): number {
  return Math.max(1, Math.min(maxRecords, Math.floor(sendBytes / recordBytes)));
}

async function produceTidelog(context: Context, point: MatrixPoint, topic: string, maxRecords: number, settings: Settings): Promise<Measured> {
  const producer = createProducer({
    bootstrapServers: [context.broker.address],
    clientId: 'tidelog-bench-matrix',
    acks: point.acks === 'all' ? 'all' : 1,
    batchSize: settings.batchSize,
    lingerMs: settings.lingerMs,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    retries: 0,
  });
  const recordsPerSend = recordsPerSendFor(point.recordBytes, TIDELOG_MAX_RECORDS_PER_SEND, TIDELOG_SEND_BYTES);
  const records = Array.from({ length: recordsPerSend }, (_, i) => ({ value: valueFor(point.recordBytes, i) }));
  try {
    await producer.connect();
    await producer.sendRaw(topic, records); // metadata and connections, untimed
    return await measure(context, async () => {
      const latency = new LatencyRecorder();
      const sent = await sendLoop(async (count) => void (await producer.sendRaw(topic, count === records.length ? records : records.slice(0, count))), recordsPerSend, TIDELOG_SENDS_IN_FLIGHT, maxRecords, settings.produceMs, latency);
      return { records: sent.records, payloadBytes: sent.records * point.recordBytes, inTopic: sent.records + records.length, latency: latency.summary(), recordsPerSend, sendsInFlight: TIDELOG_SENDS_IN_FLIGHT, endedAt: sent.endedAt, wanted: maxRecords };
    });
  } finally {
    await producer.close();
  }
}

async function produceKafkaJs(context: Context, producer: KafkaJs.Producer, point: MatrixPoint, topic: string, maxRecords: number, settings: Settings): Promise<Measured> {
  const acks = point.acks === 'all' ? -1 : 1;
  const recordsPerSend = recordsPerSendFor(point.recordBytes, KAFKAJS_MAX_RECORDS_PER_SEND, KAFKAJS_SEND_BYTES);
  const messages: KafkaJs.Message[] = Array.from({ length: recordsPerSend }, (_, i) => ({ value: valueFor(point.recordBytes, i) }));
  const send = async (count: number): Promise<void> => {
    const answers = await producer.send({ topic, acks, messages: count === messages.length ? messages : messages.slice(0, count) });
    const failed = answers.find((answer) => answer.errorCode !== 0);
    if (failed !== undefined) throw new Error(`kafkajs produce to ${topic} answered ${JSON.stringify(failed)}`);
  };
  await send(recordsPerSend); // metadata, untimed
  return measure(context, async () => {
    const latency = new LatencyRecorder();
    const sent = await sendLoop(send, recordsPerSend, KAFKAJS_SENDS_IN_FLIGHT, maxRecords, settings.produceMs, latency);
    return { records: sent.records, payloadBytes: sent.records * point.recordBytes, inTopic: sent.records + recordsPerSend, latency: latency.summary(), recordsPerSend, sendsInFlight: KAFKAJS_SENDS_IN_FLIGHT, endedAt: sent.endedAt, wanted: maxRecords };
  });
}

// ---------------------------------------------------------------------------------------------
// Consuming

async function consumeTidelog(context: Context, point: MatrixPoint, topic: string, wanted: number, settings: Settings): Promise<Measured> {
  const consumer = createConsumer({
    bootstrapServers: [context.broker.address],
    clientId: 'tidelog-bench-matrix',
    maxBytes: FETCH_MAX_BYTES,
    maxPartitionBytes: FETCH_MAX_BYTES,
    maxWaitMs: FETCH_MAX_WAIT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  try {
    return await measure(context, async (ready) => {
      consumer.assign(Array.from({ length: point.partitions }, (_, partition) => ({ topic, partition, offset: 0 })));
      await consumer.connect();
      ready();
      const deadline = performance.now() + Math.min(settings.consumeMs, MAX_PHASE_MS);
      const offsets = new OffsetCheck(topic, point.partitions);
      const cursor = new RecordCursor();
      let records = 0;
      let payloadBytes = 0;
      outer: for await (const batch of consumer.batches({ idleTimeoutMs: CONSUME_IDLE_TIMEOUT_MS })) {
        cursor.reset(batch);
        while (cursor.next()) {
          offsets.next(batch.partition, cursor.offset);
          records++;
          payloadBytes += Math.max(cursor.valueLength, 0);
          if (records >= wanted) break outer;
        }
        if (performance.now() > deadline) break;
      }
      return { records, payloadBytes, inTopic: 0, latency: null, recordsPerSend: null, sendsInFlight: null, endedAt: performance.now(), wanted };
    });
  } finally {
    await consumer.close();
  }
}

async function consumeKafkaJs(context: Context, reader: KafkaJsFetchReader, point: MatrixPoint, topic: string, wanted: number, settings: Settings): Promise<Measured> {
  return measure(context, async (ready) => {
    // ready() once it has the topic's leader, as the bundled consumer's timing starts after connect()
    const read = await reader.read(topic, point.partitions, wanted, Math.min(settings.consumeMs, MAX_PHASE_MS), ready);
    return { ...read, inTopic: 0, latency: null, recordsPerSend: null, sendsInFlight: null, wanted };
  });
}

// ---------------------------------------------------------------------------------------------
// The broker process, from /proc

async function peakRssMb(pid: number): Promise<number | null> {
  const kb = await statusKb(pid, 'VmHWM');
  return kb === null ? null : (kb * 1024) / MB;
}

/** The largest VmRSS seen, read every RSS_SAMPLE_INTERVAL_MS (one read at a time). */
class RssSampler {
  private peakKb: number | null = null;
  private reading: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), RSS_SAMPLE_INTERVAL_MS);
  }

  get peakMb(): number | null {
    return this.peakKb === null ? null : (this.peakKb * 1024) / MB;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.reading;
    this.sample();
    await this.reading;
  }

  private sample(): void {
    this.reading = this.reading.then(async () => {
      const kb = await statusKb(this.pid, 'VmRSS');
      if (kb !== null && (this.peakKb === null || kb > this.peakKb)) this.peakKb = kb;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Progress on stderr: a bar redrawn in place on a TTY, one plain line per row otherwise

class MatrixProgress {
  private done = 0;
  private current = 'starting';
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout | null;
  private readonly tty: boolean;

  constructor(private readonly total: number, private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }) {
    this.tty = stream.isTTY === true;
    this.timer = this.tty ? setInterval(() => this.draw(), PROGRESS_REDRAW_MS) : null;
    this.timer?.unref();
  }

  phase(label: string): void {
    this.current = label;
    this.draw();
  }

  rowDone(row: MatrixRow): void {
    this.done++;
    const latency = row.p99Ms === null ? '' : `, p50 ${row.p50Ms?.toFixed(2)} ms p99 ${row.p99Ms.toFixed(2)} ms`;
    const line = `row ${this.done}/${this.total} ${row.client} ${row.op} ${pointLabel(row)}: ${Math.round(row.recordsPerSec).toLocaleString('en-US')} rec/s, ${row.mbPerSec.toFixed(1)} MB/s${latency}`;
    if (this.tty) this.draw();
    else this.stream.write(`[${this.elapsed()}] ${line}\n`);
  }

  /** A line of its own (broker start, warm-up), above the bar on a TTY. */
  note(line: string): void {
    if (this.tty) this.stream.write(`\r\u001b[K${line}\n`);
    else this.stream.write(`[${this.elapsed()}] ${line}\n`);
    this.draw();
  }

  finish(): void {
    if (this.timer !== null) clearInterval(this.timer);
    if (this.tty) this.stream.write('\r\u001b[K');
  }

  private elapsed(): string {
    const seconds = Math.floor((performance.now() - this.started) / 1000);
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  }

  private draw(): void {
    if (!this.tty) return;
    const width = 24;
    const filled = Math.round((this.done / Math.max(this.total, 1)) * width);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total} rows ${this.elapsed()}  ${this.current}`;
    const columns = Math.max(20, (this.stream.columns ?? 80) - 1);
    this.stream.write(`\r\u001b[K${line.slice(0, columns)}`);
  }
}
