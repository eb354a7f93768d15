// The consume benchmark: the bundled consumer against kafkajs 2.2.4, one broker child process on
// loopback, the same run, the same records. N records of 100 bytes (no keys) are produced to one
// partition with the bundled producer (acks=1), then read from offset 0 to N by:
//   kafkajs          its consumer's fetch path, as bench/loadBench.ts drives it (the private
//                    Cluster + Broker.fetch: kafkajs's request encoding and record batch decoding,
//                    then its consumer Batch per partition answer; one fetch in flight, 8 MiB
//                    fetches, maxWait 100 ms); consumer groups are not used
//   tidelog records  the bundled consumer, `for await (const record of consumer.records())`
//                    (a record object per record: bigint offset, key/value/header views)
//   tidelog batches  the bundled consumer, `consumer.batches()` read with a RecordCursor (no
//                    record objects)
// Each reader checks every offset (0, 1, 2, ...) and sums the value bytes. One warm-up pass of
// WARMUP_RECORDS per reader first (JIT). Prints records/s and the ratios; writes
// bench/results/client-consume-latest.json.
//
// Run: npm run build && node dist/bench/clientConsumeBench.js [--quick]
import { startBrokerChild } from './brokerChild.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type * as KafkaJs from 'kafkajs';
import { createConsumer } from '../client/consumer.js';
import { createProducer } from '../client/producer.js';
import { RecordCursor } from '../client/recordDecoder.js';

const VALUE_BYTES = 100;
const PARTITION = 0;
const FETCH_MAX_BYTES = 8 * 1024 * 1024;
const FETCH_MAX_WAIT_MS = 100;
const PRODUCE_RECORDS_PER_SEND = 1_000;
const PRODUCE_SENDS_IN_FLIGHT = 16;
/** Warm-up reads (JIT): short ones leave the bundled path half-optimised; kafkajs gets the same. */
const WARMUP_RECORDS = 500_000;
const READ_MAX_MS = 120_000;
const IDLE_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;
const READ_COMMITTED = 1;
const METADATA_MAX_AGE_MS = 300_000;

const PLANS = {
  quick: { label: 'quick', records: 500_000 },
  full: { label: 'full', records: 2_000_000 },
} as const;
type Plan = (typeof PLANS)[keyof typeof PLANS];

export interface ClientConsumeBenchOptions {
  quick?: boolean;
  /** Where the JSON goes; default bench/results/client-consume-latest.json in the checkout. */
  outPath?: string;
  out?: (line: string) => void;
  progress?: (line: string) => void;
}

export interface ClientConsumeRow {
  reader: 'kafkajs' | 'tidelog records()' | 'tidelog batches()';
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
  rows: ClientConsumeRow[];
  /** tidelog records() records/s divided by kafkajs records/s. */
  ratio: number;
  /** tidelog batches() records/s divided by kafkajs records/s. */
  batchesRatio: number;
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function runClientConsumeBench(options: ClientConsumeBenchOptions = {}): Promise<ClientConsumeBenchReport> {
  const plan = options.quick === true ? PLANS.quick : PLANS.full;
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const require = createRequire(import.meta.url);
  const kafkajs = require('kafkajs') as typeof KafkaJs;
  const Batch = require('kafkajs/src/consumer/batch') as KafkaJsBatchConstructor;
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-consume-bench-'));
  const broker = await startBrokerChild(join(REPO_ROOT, 'bin', 'tidelog.js'), join(dir, 'data'));
  progress(`${plan.label} consume bench, broker on ${broker.address}`);
  try {
    const topic = 'client-consume-bench';
    const producedAt = performance.now();
    await produce(broker.address, topic, plan.records);
    const produceRecordsPerSecond = plan.records / ((performance.now() - producedAt) / 1000);
    progress(`produced ${plan.records} records (${Math.round(produceRecordsPerSecond)} records/s)`);

    const kafkaReader = await kafkajsReader(kafkajs, Batch, broker.address);
    const rows: ClientConsumeRow[] = [];
    try {
      await kafkaReader.read(topic, WARMUP_RECORDS);
      rows.push(await measure('kafkajs', () => kafkaReader.read(topic, plan.records)));
    } finally {
      await kafkaReader.disconnect();
    }
    progress(`kafkajs: ${Math.round(rows[0]!.recordsPerSecond)} records/s`);
    await readRecords(broker.address, topic, WARMUP_RECORDS);
    rows.push(await measure('tidelog records()', (ready) => readRecords(broker.address, topic, plan.records, ready)));
    progress(`tidelog records(): ${Math.round(rows[1]!.recordsPerSecond)} records/s`);
    await readBatches(broker.address, topic, WARMUP_RECORDS);
    rows.push(await measure('tidelog batches()', (ready) => readBatches(broker.address, topic, plan.records, ready)));
    progress(`tidelog batches(): ${Math.round(rows[2]!.recordsPerSecond)} records/s`);

    const [kafkaRow, recordsRow, batchesRow] = rows as [ClientConsumeRow, ClientConsumeRow, ClientConsumeRow];
    const report: ClientConsumeBenchReport = {
      startedAt: new Date().toISOString(),
      plan,
      machine: { cpus: cpus().length, node: process.version },
      shape: { valueBytes: VALUE_BYTES, partitions: 1, fetchMaxBytes: FETCH_MAX_BYTES, produceRecordsPerSecond },
      rows,
      ratio: recordsRow.recordsPerSecond / kafkaRow.recordsPerSecond,
      batchesRatio: batchesRow.recordsPerSecond / kafkaRow.recordsPerSecond,
    };
    for (const row of rows) {
      out(`${row.reader.padEnd(18)} ${Math.round(row.recordsPerSecond).toLocaleString('en-US').padStart(11)} records/s  ${row.payloadMbPerSecond.toFixed(1)} MB/s  client CPU ${row.clientCpuSeconds.toFixed(2)} s in ${row.seconds.toFixed(2)} s`);
    }
    out(`tidelog records() / kafkajs: ${report.ratio.toFixed(2)}x; tidelog batches() / kafkajs: ${report.batchesRatio.toFixed(2)}x (${plan.records} records, 1 partition, ${VALUE_BYTES}-byte values)`);
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
async function measure(reader: ClientConsumeRow['reader'], phase: (ready: () => void) => Promise<PhaseCount>): Promise<ClientConsumeRow> {
  let cpuBefore = process.cpuUsage();
  let before = performance.now();
  const ready = (): void => {
    cpuBefore = process.cpuUsage();
    before = performance.now();
  };
  const { records, payloadBytes, endedAt } = await phase(ready);
  const seconds = ((endedAt ?? performance.now()) - before) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { reader, records, seconds, recordsPerSecond: records / seconds, payloadMbPerSecond: payloadBytes / 1e6 / seconds, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
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
// kafkajs's consumer fetch path, driven as bench/loadBench.ts drives it

interface KafkaJsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>;
  findBroker(request: { nodeId: number }): Promise<KafkaJsBroker>;
}

interface KafkaJsFetchPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  messages: Array<{ offset: string; value: Buffer | null }>;
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

type KafkaJsBatchConstructor = new (topic: string, fetchedOffset: string, partitionData: KafkaJsFetchPartition) => { messages: Array<{ offset: string; value: Buffer | null }> };
type ClusterFactory = (options: { metadataMaxAge: number; allowAutoTopicCreation: boolean; maxInFlightRequests: number | null; isolationLevel: number; instrumentationEmitter: null }) => KafkaJsCluster;

async function kafkajsReader(kafkajs: typeof KafkaJs, Batch: KafkaJsBatchConstructor, address: string): Promise<{ read(topic: string, count: number): Promise<PhaseCount>; disconnect(): Promise<void> }> {
  const kafka = new kafkajs.Kafka({
    clientId: 'tidelog-consume-bench',
    brokers: [address],
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: 0 },
    logLevel: kafkajs.logLevel.NOTHING,
    socketFactory: ({ host, port, onConnect }: KafkaJs.ISocketFactoryArgs): Socket => connect({ host, port, noDelay: true }, onConnect),
  });
  const factorySymbol = Object.getOwnPropertySymbols(kafka).find((symbol) => symbol.description === 'private:Kafka:createCluster');
  const factory = factorySymbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[factorySymbol];
  if (typeof factory !== 'function') throw new Error('kafkajs: the private cluster factory was not found; this bench needs kafkajs 2.2.x');
  const cluster = (factory as ClusterFactory).call(kafka, { metadataMaxAge: METADATA_MAX_AGE_MS, allowAutoTopicCreation: false, maxInFlightRequests: null, isolationLevel: READ_COMMITTED, instrumentationEmitter: null });
  await cluster.connect();
  return {
    disconnect: () => cluster.disconnect(),
    async read(topic, count) {
      await cluster.addTargetTopic(topic);
      const leader = cluster.findTopicPartitionMetadata(topic).find((partition) => partition.partitionId === PARTITION)?.leader;
      if (leader === undefined) throw new Error(`no leader for ${topic}-${PARTITION}`);
      const broker = await cluster.findBroker({ nodeId: leader });
      const deadline = performance.now() + READ_MAX_MS;
      let nextOffset = 0;
      let payloadBytes = 0;
      while (nextOffset < count && performance.now() < deadline) {
        const fetchOffset = String(nextOffset);
        const { responses } = await broker.fetch({
          isolationLevel: READ_COMMITTED,
          maxWaitTime: FETCH_MAX_WAIT_MS,
          minBytes: 1,
          maxBytes: FETCH_MAX_BYTES,
          topics: [{ topic, partitions: [{ partition: PARTITION, fetchOffset, maxBytes: FETCH_MAX_BYTES }] }],
          rackId: '',
        });
        const partitionData = responses[0]?.partitions[0];
        if (partitionData === undefined || partitionData.errorCode !== 0) throw new Error(`fetch of ${topic}-${PARTITION} at ${fetchOffset} answered ${JSON.stringify(responses).slice(0, 500)}`);
        const messages = new Batch(topic, fetchOffset, partitionData).messages;
        if (messages.length === 0) break;
        for (const message of messages) {
          if (Number(message.offset) !== nextOffset) throw new Error(`${topic}-${PARTITION}: expected offset ${nextOffset}, got ${message.offset}`);
          nextOffset++;
          payloadBytes += message.value?.length ?? 0;
          if (nextOffset === count) break;
        }
      }
      return { records: nextOffset, payloadBytes };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The broker child process (as bench/clientBench.ts starts it)


if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  runClientConsumeBench({ quick: process.argv.includes('--quick') }).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
