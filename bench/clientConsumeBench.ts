// The consume benchmark: the bundled consumer against kafkajs 2.2.4, one broker child process on
// loopback, the same run, the same records. N records of 100 bytes (no keys) are produced to one
// partition with the bundled producer (acks=1), then read from offset 0 to N by:
//   kafkajs eachMessage  kafkajs's consumer as users run it: a group member (a new group per pass,
//                        fromBeginning), consumer.run({eachMessage}), 8 MiB fetches, maxWait 100 ms;
//                        timed from its first message (the group join is not counted)
//   kafkajs fetch        its consumer's fetch path alone, as bench/loadBench.ts drives it (the
//                        private Cluster + Broker.fetch, then its Batch per partition answer; one
//                        fetch in flight): kafkajs without its consumer runner, a stricter baseline
//   tidelog records()    the bundled consumer, `for await (const record of consumer.records())`
//                        (a record object per record: bigint offset, key/value/header views)
//   tidelog batches()    the bundled consumer, `consumer.batches()` read with a RecordCursor (no
//                        record objects)
// Each reader checks every offset (0, 1, 2, ...) and sums the value bytes. One warm-up pass of
// WARMUP_RECORDS per reader first (JIT). Then ROUNDS rounds, each running every reader once in a
// rotated order, so a noisy neighbour slows all readers alike; a ratio is taken within a round and
// reported as median with min and max over the rounds. Writes bench/results/client-consume-latest.json.
//
// Run: npm run build && node dist/bench/clientConsumeBench.js [--quick]
import { startBrokerChild } from './brokerChild.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type * as KafkaJs from 'kafkajs';
import { createConsumer } from '../client/consumer/consumer.js';
import { createProducer } from '../client/producer.js';
import { RecordCursor } from '../client/recordDecoder.js';
import { median } from './benchStats.js';
import { createKafkaJsClient, createKafkaJsFetchReader, loadKafkaJs, type KafkaJsFetchReader, type KafkaJsModule } from './kafkajsBaseline.js';

const VALUE_BYTES = 100;
/** The topic has one partition, this one. */
const PARTITION = 0;
const PARTITIONS = 1;
const FETCH_MAX_BYTES = 8 * 1024 * 1024;
const FETCH_MAX_WAIT_MS = 100;
const PRODUCE_RECORDS_PER_SEND = 1_000;
const PRODUCE_SENDS_IN_FLIGHT = 16;
/** Warm-up reads (JIT): short ones leave the bundled path half-optimised; kafkajs gets the same. */
const WARMUP_RECORDS = 500_000;
const READ_MAX_MS = 120_000;
const IDLE_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;

const PLANS = {
  quick: { label: 'quick', records: 500_000, rounds: 3 },
  full: { label: 'full', records: 2_000_000, rounds: 5 },
} as const;
const GROUP_JOIN_TIMEOUT_MS = 30_000;
type Plan = (typeof PLANS)[keyof typeof PLANS];

export interface ClientConsumeBenchOptions {
  quick?: boolean;
  /** Where the JSON goes; default bench/results/client-consume-latest.json in the checkout. */
  outPath?: string;
  out?: (line: string) => void;
  progress?: (line: string) => void;
}

const READERS = ['kafkajs eachMessage', 'kafkajs fetch', 'tidelog records()', 'tidelog batches()'] as const;
type ReaderName = (typeof READERS)[number];

export interface ClientConsumeRow {
  reader: ReaderName;
  round: number;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  payloadMbPerSecond: number;
  clientCpuSeconds: number;
}

export interface ClientConsumeBenchReport {
  startedAt: string;
  plan: Plan;
  machine: { cpus: number; node: string };
  shape: { valueBytes: number; partitions: 1; fetchMaxBytes: number; produceRecordsPerSecond: number };
  /** Every reader's pass in every round, in the order run. */
  rows: ClientConsumeRow[];
  /** Per reader: the median records/s over the rounds. */
  medians: Record<ReaderName, number>;
  /** tidelog records() / kafkajs eachMessage, per round: the per-record target (at least 5x). */
  ratio: RatioSpread;
  /** tidelog batches() / kafkajs eachMessage. */
  batchesRatio: RatioSpread;
  /** tidelog records() / kafkajs's bare fetch path (no consumer runner). */
  recordsToFetchPathRatio: RatioSpread;
  batchesToFetchPathRatio: RatioSpread;
}

export interface RatioSpread {
  median: number;
  min: number;
  max: number;
  perRound: number[];
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function runClientConsumeBench(options: ClientConsumeBenchOptions = {}): Promise<ClientConsumeBenchReport> {
  const plan = options.quick === true ? PLANS.quick : PLANS.full;
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const baseline = loadKafkaJs('bench client-consume');
  const kafkajs = baseline.module;
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-consume-bench-'));
  // kafkajs eachMessage joins a group per pass: no initial rebalance delay, a small offsets topic.
  const broker = await startBrokerChild(join(REPO_ROOT, 'bin', 'tidelog.js'), join(dir, 'data'), { configs: { 'group.initial.rebalance.delay.ms': '0', 'offsets.topic.num.partitions': '1' } });
  progress(`${plan.label} consume bench, broker on ${broker.address}`);
  try {
    const topic = 'client-consume-bench';
    const producedAt = performance.now();
    await produce(broker.address, topic, plan.records);
    const produceRecordsPerSecond = plan.records / ((performance.now() - producedAt) / 1000);
    progress(`produced ${plan.records} records (${Math.round(produceRecordsPerSecond)} records/s)`);

    const kafkaReader = await kafkajsReader(baseline, broker.address);
    const rows: ClientConsumeRow[] = [];
    try {
      let group = 0;
      const passes: Record<ReaderName, (count: number, ready: () => void) => Promise<PhaseCount>> = {
        'kafkajs eachMessage': (count, ready) => kafkajsEachMessage(kafkajs, broker.address, topic, `bench-${group++}`, count, ready),
        // No ready(): its timing includes the metadata look-up, as it always has.
        'kafkajs fetch': (count) => kafkaReader.read(topic, PARTITIONS, count, READ_MAX_MS),
        'tidelog records()': (count, ready) => readRecords(broker.address, topic, count, ready),
        'tidelog batches()': (count, ready) => readBatches(broker.address, topic, count, ready),
      };
      for (const reader of READERS) await passes[reader](WARMUP_RECORDS, () => undefined);
      for (let round = 0; round < plan.rounds; round++) {
        for (let i = 0; i < READERS.length; i++) {
          const reader = READERS[(round + i) % READERS.length]!;
          const row = await measure(reader, round, (ready) => passes[reader](plan.records, ready));
          if (row.records !== plan.records) throw new Error(`${reader} read ${row.records} of ${plan.records} records within ${READ_MAX_MS} ms`);
          rows.push(row);
          progress(`round ${round + 1}/${plan.rounds} ${reader}: ${Math.round(row.recordsPerSecond)} records/s`);
        }
      }
    } finally {
      await kafkaReader.disconnect();
    }

    const rate = (reader: ReaderName, round: number): number => rows.find((row) => row.reader === reader && row.round === round)!.recordsPerSecond;
    const spread = (numerator: ReaderName, denominator: ReaderName): RatioSpread => {
      const perRound = Array.from({ length: plan.rounds }, (_, round) => rate(numerator, round) / rate(denominator, round));
      return { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound), perRound };
    };
    const medians = Object.fromEntries(READERS.map((reader) => [reader, median(rows.filter((row) => row.reader === reader).map((row) => row.recordsPerSecond))])) as Record<ReaderName, number>;
    const report: ClientConsumeBenchReport = {
      startedAt: new Date().toISOString(),
      plan,
      machine: { cpus: cpus().length, node: process.version },
      shape: { valueBytes: VALUE_BYTES, partitions: 1, fetchMaxBytes: FETCH_MAX_BYTES, produceRecordsPerSecond },
      rows,
      medians,
      ratio: spread('tidelog records()', 'kafkajs eachMessage'),
      batchesRatio: spread('tidelog batches()', 'kafkajs eachMessage'),
      recordsToFetchPathRatio: spread('tidelog records()', 'kafkajs fetch'),
      batchesToFetchPathRatio: spread('tidelog batches()', 'kafkajs fetch'),
    };
    for (const reader of READERS) {
      const mine = rows.filter((row) => row.reader === reader);
      const cpuSeconds = median(mine.map((row) => row.clientCpuSeconds));
      const seconds = median(mine.map((row) => row.seconds));
      out(`${reader.padEnd(20)} ${Math.round(medians[reader]).toLocaleString('en-US').padStart(11)} records/s (median of ${mine.length})  client CPU ${cpuSeconds.toFixed(2)} s in ${seconds.toFixed(2)} s`);
    }
    const show = (name: string, ratio: RatioSpread): string => `${name} ${ratio.median.toFixed(2)}x (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)})`;
    out(`${show('tidelog records() / kafkajs eachMessage', report.ratio)}; ${show('batches()', report.batchesRatio)}`);
    out(`${show('tidelog records() / kafkajs fetch path', report.recordsToFetchPathRatio)}; ${show('batches()', report.batchesToFetchPathRatio)}`);
    out(`(${plan.records} records per pass, ${plan.rounds} interleaved rounds, 1 partition, ${VALUE_BYTES}-byte values; median (min-max) of per-round ratios)`);
    const outPath = options.outPath ?? join(REPO_ROOT, 'bench', 'results', 'client-consume-latest.json');
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface PhaseCount {
  records: number;
  payloadBytes: number;
  /** When the last record was read (close() is not timed, as kafkajs's disconnect is not). */
  endedAt?: number;
}

/** Times `phase` from its start, or from when it calls ready() (after connecting), to its end. */
async function measure(reader: ReaderName, round: number, phase: (ready: () => void) => Promise<PhaseCount>): Promise<ClientConsumeRow> {
  let cpuBefore = process.cpuUsage();
  let before = performance.now();
  const ready = (): void => {
    cpuBefore = process.cpuUsage();
    before = performance.now();
  };
  const { records, payloadBytes, endedAt } = await phase(ready);
  const seconds = ((endedAt ?? performance.now()) - before) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { reader, round, records, seconds, recordsPerSecond: records / seconds, payloadMbPerSecond: payloadBytes / 1e6 / seconds, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function produce(address: string, topic: string, count: number): Promise<void> {
  const producer = createProducer({ bootstrapServers: [address], acks: 1, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  const records = Array.from({ length: PRODUCE_RECORDS_PER_SEND }, (_, i) => ({ value: Buffer.alloc(VALUE_BYTES, 0x61 + (i % 26)), partition: PARTITION }));
  let next = 0;
  const sender = async (): Promise<void> => {
    while (next < count) {
      next += PRODUCE_RECORDS_PER_SEND;
      await producer.sendRaw(topic, records);
    }
  };
  try {
    await Promise.all(Array.from({ length: PRODUCE_SENDS_IN_FLIGHT }, sender));
  } finally {
    await producer.close();
  }
}

function consumerFor(address: string) {
  return createConsumer({ bootstrapServers: [address], maxBytes: FETCH_MAX_BYTES, maxPartitionBytes: FETCH_MAX_BYTES, maxWaitMs: FETCH_MAX_WAIT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS });
}

async function readRecords(address: string, topic: string, count: number, ready: () => void = () => undefined): Promise<PhaseCount> {
  const consumer = consumerFor(address);
  const deadline = performance.now() + READ_MAX_MS;
  let expected = 0;
  let payloadBytes = 0;
  let endedAt = 0;
  try {
    consumer.assign([{ topic, partition: PARTITION, offset: 0 }]);
    await consumer.connect(); // kafkajs's cluster is connected before its timing starts too
    ready();
    for await (const record of consumer.records({ idleTimeoutMs: IDLE_TIMEOUT_MS })) {
      // Number(): bigint arithmetic per record would allocate (the kafkajs loop parses its string offsets the same way).
      if (Number(record.offset) !== expected) throw new Error(`${topic}-${PARTITION}: expected offset ${expected}, got ${record.offset}`);
      expected++;
      payloadBytes += record.value?.length ?? 0;
      if (expected === count || (expected % 10_000 === 0 && performance.now() > deadline)) break;
    }
    endedAt = performance.now();
  } finally {
    await consumer.close();
  }
  return { records: expected, payloadBytes, endedAt };
}

async function readBatches(address: string, topic: string, count: number, ready: () => void = () => undefined): Promise<PhaseCount> {
  const consumer = consumerFor(address);
  const deadline = performance.now() + READ_MAX_MS;
  const cursor = new RecordCursor();
  let expected = 0;
  let payloadBytes = 0;
  let endedAt = 0;
  try {
    consumer.assign([{ topic, partition: PARTITION, offset: 0 }]);
    await consumer.connect();
    ready();
    outer: for await (const batch of consumer.batches({ idleTimeoutMs: IDLE_TIMEOUT_MS })) {
      cursor.reset(batch);
      while (cursor.next()) {
        if (cursor.offset !== expected) throw new Error(`${topic}-${PARTITION}: expected offset ${expected}, got ${cursor.offset}`);
        expected++;
        payloadBytes += Math.max(cursor.valueLength, 0);
        if (expected === count) break outer;
      }
      if (performance.now() > deadline) break;
    }
    endedAt = performance.now();
  } finally {
    await consumer.close();
  }
  return { records: expected, payloadBytes, endedAt };
}

// ---------------------------------------------------------------------------------------------
// kafkajs's consumer as users run it

async function kafkajsEachMessage(kafkajs: typeof KafkaJs, address: string, topic: string, groupId: string, count: number, ready: () => void): Promise<PhaseCount> {
  const kafka = createKafkaJsClient(kafkajs, { clientId: 'tidelog-consume-bench', brokers: [address], requestTimeoutMs: REQUEST_TIMEOUT_MS });
  const consumer = kafka.consumer({ groupId, maxBytes: FETCH_MAX_BYTES, maxBytesPerPartition: FETCH_MAX_BYTES, maxWaitTimeInMs: FETCH_MAX_WAIT_MS, readUncommitted: false });
  let expected = 0;
  let payloadBytes = 0;
  let endedAt = 0;
  let failure: Error | null = null;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const deadline = performance.now() + GROUP_JOIN_TIMEOUT_MS + READ_MAX_MS;
  const timer = setTimeout(finish, GROUP_JOIN_TIMEOUT_MS + READ_MAX_MS);
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (expected >= count) return;
        if (expected === 0) ready(); // the group is joined and the first fetch is in
        if (partition !== PARTITION || Number(message.offset) !== expected) {
          failure ??= new Error(`${topic}-${partition}: expected offset ${expected}, got ${message.offset}`);
          finish();
          return;
        }
        expected++;
        payloadBytes += message.value?.length ?? 0;
        if (expected === count || performance.now() > deadline) {
          endedAt = performance.now();
          finish();
        }
      },
    });
    await finished;
    if (failure !== null) throw failure;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return { records: expected, payloadBytes, endedAt };
}

// ---------------------------------------------------------------------------------------------
// kafkajs's consumer fetch path (bench/kafkajsBaseline.ts), one connected reader for every pass

async function kafkajsReader(kafkajs: KafkaJsModule, address: string): Promise<KafkaJsFetchReader> {
  const kafka = createKafkaJsClient(kafkajs.module, { clientId: 'tidelog-consume-bench', brokers: [address], requestTimeoutMs: REQUEST_TIMEOUT_MS });
  const reader = createKafkaJsFetchReader(kafkajs, kafka, { fetchMaxBytes: FETCH_MAX_BYTES, fetchMaxWaitMs: FETCH_MAX_WAIT_MS });
  await reader.connect();
  return reader;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  runClientConsumeBench({ quick: process.argv.includes('--quick') }).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
