// The client benchmark: the bundled producer against kafkajs 2.2.4, one broker child process on
// loopback, the same run. 100-byte values, no keys, one partition, acks=1, for a fixed time each
// (after a warm-up each). kafkajs is tuned as bench/loadBench.ts tunes it (500 records a send, 4
// sends in flight, partition 0 chosen directly, no idempotence, TCP_NODELAY, no retries, logging
// off). The bundled producer runs with its defaults except acks=1 (lingerMs 5, batchSize 64 KiB;
// idempotence is off with acks=1, as in Kafka), fed by sendRaw calls of 1,000 records, at most
// BUNDLED_SENDS_IN_FLIGHT at once (bufferMemory bounds what it buffers anyway).
//
// Prints records/s of each and the ratio; writes bench/results/client-latest.json.
import { startBrokerChild } from './brokerChild.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type * as KafkaJs from 'kafkajs';
import { createProducer } from '../client/producer.js';

const VALUE_BYTES = 100;
const KAFKAJS_RECORDS_PER_SEND = 500;
const KAFKAJS_SENDS_IN_FLIGHT = 4;
const BUNDLED_RECORDS_PER_SEND = 1_000;
const BUNDLED_SENDS_IN_FLIGHT = 16;
const REQUEST_TIMEOUT_MS = 30_000;

const PLANS = {
  quick: { label: 'quick', warmupMs: 1_500, measureMs: 5_000 },
  full: { label: 'full', warmupMs: 5_000, measureMs: 20_000 },
} as const;

export interface ClientBenchOptions {
  quick?: boolean;
  /** Where the JSON goes; default bench/results/client-latest.json in the checkout. */
  outPath?: string;
  out?: (line: string) => void;
  progress?: (line: string) => void;
}

export interface ClientBenchRow {
  client: 'kafkajs' | 'tidelog';
  records: number;
  seconds: number;
  recordsPerSecond: number;
  payloadMbPerSecond: number;
  clientCpuSeconds: number;
}

export interface ClientBenchReport {
  startedAt: string;
  plan: (typeof PLANS)[keyof typeof PLANS];
  machine: { cpus: number; node: string };
  shape: { valueBytes: number; partitions: 1; acks: 1 };
  rows: ClientBenchRow[];
  /** tidelog records/s divided by kafkajs records/s. */
  ratio: number;
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function runClientBench(options: ClientBenchOptions = {}): Promise<ClientBenchReport> {
  const plan = options.quick === true ? PLANS.quick : PLANS.full;
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const require = createRequire(import.meta.url);
  const kafkajs = require('kafkajs') as typeof KafkaJs;
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-client-bench-'));
  const broker = await startBrokerChild(join(REPO_ROOT, 'bin', 'tidelog.js'), join(dir, 'data'));
  progress(`${plan.label} client bench, broker on ${broker.address}`);
  try {
    const rows: ClientBenchRow[] = [];
    rows.push(await benchKafkajs(kafkajs, broker.address, plan, progress));
    rows.push(await benchBundled(broker.address, plan, progress));
    const [kafkajsRow, bundledRow] = rows as [ClientBenchRow, ClientBenchRow];
    const report: ClientBenchReport = {
      startedAt: new Date().toISOString(),
      plan,
      machine: { cpus: cpus().length, node: process.version },
      shape: { valueBytes: VALUE_BYTES, partitions: 1, acks: 1 },
      rows,
      ratio: bundledRow.recordsPerSecond / kafkajsRow.recordsPerSecond,
    };
    for (const row of rows) {
      out(`${row.client.padEnd(8)} ${Math.round(row.recordsPerSecond).toLocaleString('en-US').padStart(11)} records/s  ${row.payloadMbPerSecond.toFixed(1)} MB/s  client CPU ${row.clientCpuSeconds.toFixed(1)} s in ${row.seconds.toFixed(1)} s`);
    }
    out(`tidelog / kafkajs: ${report.ratio.toFixed(2)}x (1 partition, acks=1, ${VALUE_BYTES}-byte values)`);
    const outPath = options.outPath ?? join(REPO_ROOT, 'bench', 'results', 'client-latest.json');
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

type Plan = (typeof PLANS)[keyof typeof PLANS];

async function benchKafkajs(kafkajs: typeof KafkaJs, address: string, plan: Plan, progress: (line: string) => void): Promise<ClientBenchRow> {
  const kafka = new kafkajs.Kafka({
    clientId: 'tidelog-client-bench',
    brokers: [address],
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: 0 },
    logLevel: kafkajs.logLevel.NOTHING,
    socketFactory: ({ host, port, onConnect }: KafkaJs.ISocketFactoryArgs): Socket => connect({ host, port, noDelay: true }, onConnect),
  });
  const topic = 'client-bench-kafkajs';
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ createPartitioner: () => () => 0, allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const messages: KafkaJs.Message[] = Array.from({ length: KAFKAJS_RECORDS_PER_SEND }, (_, i) => ({ value: Buffer.alloc(VALUE_BYTES, 0x61 + (i % 26)) }));
  const run = async (ms: number): Promise<number> => {
    const deadline = performance.now() + ms;
    let acknowledged = 0;
    const sender = async (): Promise<void> => {
      while (performance.now() < deadline) {
        await producer.send({ topic, acks: 1, messages });
        acknowledged += messages.length;
      }
    };
    await Promise.all(Array.from({ length: KAFKAJS_SENDS_IN_FLIGHT }, sender));
    return acknowledged;
  };
  try {
    await run(plan.warmupMs);
    const row = await measure('kafkajs', () => run(plan.measureMs));
    progress(`kafkajs: ${Math.round(row.recordsPerSecond)} records/s`);
    return row;
  } finally {
    await producer.disconnect();
  }
}

async function benchBundled(address: string, plan: Plan, progress: (line: string) => void): Promise<ClientBenchRow> {
  const producer = createProducer({ bootstrapServers: [address], acks: 1, requestTimeoutMs: REQUEST_TIMEOUT_MS, retries: 0 });
  const topic = 'client-bench-tidelog';
  const records = Array.from({ length: BUNDLED_RECORDS_PER_SEND }, (_, i) => ({ value: Buffer.alloc(VALUE_BYTES, 0x61 + (i % 26)), partition: 0 }));
  const run = async (ms: number): Promise<number> => {
    const deadline = performance.now() + ms;
    let acknowledged = 0;
    const sender = async (): Promise<void> => {
      while (performance.now() < deadline) {
        await producer.sendRaw(topic, records);
        acknowledged += records.length;
      }
    };
    await Promise.all(Array.from({ length: BUNDLED_SENDS_IN_FLIGHT }, sender));
    return acknowledged;
  };
  try {
    await producer.connect();
    await run(plan.warmupMs);
    const row = await measure('tidelog', () => run(plan.measureMs));
    progress(`tidelog: ${Math.round(row.recordsPerSecond)} records/s`);
    return row;
  } finally {
    await producer.close();
  }
}

async function measure(client: ClientBenchRow['client'], phase: () => Promise<number>): Promise<ClientBenchRow> {
  const cpuBefore = process.cpuUsage();
  const before = performance.now();
  const records = await phase();
  const seconds = (performance.now() - before) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    client,
    records,
    seconds,
    recordsPerSecond: records / seconds,
    payloadMbPerSecond: (records * VALUE_BYTES) / 1e6 / seconds,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

