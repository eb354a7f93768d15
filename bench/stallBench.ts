// The benchmark behind `tidelog bench stall`: how long the broker's event loop stalls while it
// validates hostile produce requests (zip bombs of every codec, undecodable compressed areas,
// 1 MiB batches of the smallest records), beside the same measurement under valid traffic, in
// one run. Produce requests go to an in-process broker (Broker.handleFrame, validation on, its
// worker pool and decompression budget as configured by default) REQUESTS_IN_FLIGHT at a time;
// perf_hooks' monitorEventLoopDelay samples the loop meanwhile. The issue's target: no stall over
// 50 ms. Each phase stops at a request count or a deadline, whichever comes first.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { Broker } from '../engine/broker.js';
import { defaultBrokerConfig } from '../engine/brokerConfig.js';
import { silentLogger } from '../engine/logger.js';
import { MemoryMetadataStore } from '../engine/metadataStore.js';
import { ApiKey } from '../protocol/generated/apiSchemas.js';
import { encodeProduceRequest } from '../protocol/generated/produceRequest.js';
import { decodeProduceResponse } from '../protocol/generated/produceResponse.js';
import { readResponseHeader, responseHeaderVersion, writeRequestHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import { CompressionCodec, compress } from '../segments/compression.js';
import { CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET, computeBatchCrc, encodeBatch } from '../segments/recordBatch.js';
import { benchSinks, boundedLoop, withCompressedArea, writeJsonReport } from './benchRun.js';
import { loadAverages, machineFacts, type MachineFacts } from './benchStats.js';

const MIB = 1024 * 1024;
const PRODUCE_VERSION = 8;
const REQUESTS_IN_FLIGHT = 8;
/** The issue's bound on a stall of the event loop. */
export const STALL_TARGET_MS = 50;

export interface StallPlan {
  label: 'default' | 'quick' | 'tiny';
  msPerPhase: number;
  maxRequestsPerPhase: number;
}
export const DEFAULT_STALL_PLAN: StallPlan = { label: 'default', msPerPhase: 20_000, maxRequestsPerPhase: 50_000 };
export const QUICK_STALL_PLAN: StallPlan = { label: 'quick', msPerPhase: 6_000, maxRequestsPerPhase: 20_000 };

export interface PhaseResult {
  phase: 'valid' | 'hostile';
  requests: number;
  seconds: number;
  /** Partition error code -> how many answers carried it. */
  answers: Record<string, number>;
  loopDelayMs: { p50: number; p99: number; max: number };
  peakRssBytes: number;
}

export interface StallReport {
  meta: { date: string; plan: StallPlan['label']; machine: MachineFacts; node: string; requestsInFlight: number; produceVersion: number; targetMs: number; hostileKinds: string[] };
  phases: PhaseResult[];
  target: { maxLoopDelayMs: number; pass: boolean };
}

/** One produce request's batch of each hostile kind; every one must be refused. */
function hostileBatches(): Array<{ kind: string; batch: Buffer }> {
  const oneRecord = encodeBatch([{ key: Buffer.from('k'), value: Buffer.from('v'), timestamp: Date.now() }]);
  const plain = (area: Buffer, codec: number): Buffer => withCompressedArea(oneRecord, codec, area);
  const zeros = (bytes: number): Buffer => Buffer.alloc(bytes);
  // A zstd frame of RLE blocks: 4 bytes of input per 128 KiB of output, 1 GiB declared.
  const zstdRle = (): Buffer => {
    const blocks = 8192;
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x40]); // single segment, 4-byte content size 1 GiB
    header.writeUInt32LE(blocks * 128 * 1024, 5);
    const parts = [header];
    for (let i = 0; i < blocks; i++) {
      const last = i === blocks - 1 ? 1 : 0;
      const blockHeader = last | (1 << 1) | ((128 * 1024) << 3);
      parts.push(Buffer.from([blockHeader & 0xff, (blockHeader >> 8) & 0xff, (blockHeader >> 16) & 0xff, 0]));
    }
    return Buffer.concat(parts);
  };
  // The most records 1 MiB holds: empty keys and values, one byte each of the rest.
  const tiny = encodeBatch(Array.from({ length: 140_000 }, () => ({ key: null, value: null, timestamp: Date.now() })));
  tiny.writeInt32BE(0, LAST_OFFSET_DELTA_OFFSET); // contents now contradict the header
  tiny.writeUInt32BE(computeBatchCrc(tiny), CRC_OFFSET);
  return [
    { kind: 'gzip bomb (64 MiB of zeros)', batch: plain(gzipSync(zeros(64 * MIB)), CompressionCodec.gzip) },
    { kind: 'lz4 bomb (64 MiB of zeros)', batch: plain(compress(CompressionCodec.lz4, zeros(64 * MIB)), CompressionCodec.lz4) },
    { kind: 'snappy bomb (20 MiB of zeros)', batch: plain(compress(CompressionCodec.snappy, zeros(20 * MIB)), CompressionCodec.snappy) },
    { kind: 'zstd bomb (RLE blocks, 1 GiB declared)', batch: plain(zstdRle(), CompressionCodec.zstd) },
    { kind: 'gzip garbage', batch: plain(Buffer.concat([gzipSync(zeros(1024)).subarray(0, 10), Buffer.alloc(200_000, 0x5a)]), CompressionCodec.gzip) },
    { kind: 'lz4 frame cut short', batch: plain(compress(CompressionCodec.lz4, Buffer.alloc(300_000, 0x61)).subarray(0, 1000), CompressionCodec.lz4) },
    { kind: '140,000 empty records whose header says 1', batch: tiny },
  ];
}

function validBatch(): Buffer {
  const now = Date.now();
  return encodeBatch(Array.from({ length: 136 }, (_, i) => ({ key: Buffer.from(`key${i}`), value: Buffer.alloc(100, i), timestamp: now + i })));
}

function produceFrame(topic: string, batch: Buffer, correlationId: number): Buffer {
  const writer = new ByteWriter();
  writeRequestHeader(writer, { apiKey: ApiKey.Produce, apiVersion: PRODUCE_VERSION, correlationId, clientId: 'tidelog-bench-stall' });
  encodeProduceRequest(writer, PRODUCE_VERSION, { transactionalId: null, acks: 1, timeoutMs: 30_000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] });
  return writer.toBuffer();
}

async function runPhase(broker: Broker, phase: PhaseResult['phase'], batches: readonly Buffer[], plan: StallPlan, progress: (line: string) => void): Promise<PhaseResult> {
  const answers: Record<string, number> = {};
  let peakRssBytes = process.memoryUsage().rss;
  let correlationId = 0;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const controller = new AbortController();
  const deadline = Date.now() + plan.msPerPhase;
  let sent = 0;
  delay.enable();
  const started = performance.now();
  const connection = async (connectionId: number): Promise<void> => {
    await boundedLoop({ maxCount: plan.maxRequestsPerPhase, maxMs: plan.msPerPhase }, async () => {
      if (sent >= plan.maxRequestsPerPhase || Date.now() >= deadline) return 'stop';
      const batch = batches[sent % batches.length]!;
      sent++;
      const id = ++correlationId;
      const response = await broker.handleFrame(produceFrame(`stall-${phase}`, Buffer.from(batch), id), { connectionId, remoteAddress: '127.0.0.1:1', signal: controller.signal });
      if (response === null) throw new Error('a Produce request with acks=1 got no response');
      try {
        const reader = new ByteReader(Buffer.concat(response.chunks));
        reader.readInt32();
        readResponseHeader(reader, responseHeaderVersion(ApiKey.Produce, PRODUCE_VERSION));
        const code = String(decodeProduceResponse(reader, PRODUCE_VERSION).responses[0]?.partitionResponses[0]?.errorCode ?? 'missing');
        answers[code] = (answers[code] ?? 0) + 1;
      } finally {
        response.release();
      }
      if (sent % 64 === 0) peakRssBytes = Math.max(peakRssBytes, process.memoryUsage().rss);
      return 'continue';
    });
  };
  await Promise.all(Array.from({ length: REQUESTS_IN_FLIGHT }, (_, i) => connection(i + 1)));
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  const ms = (nanoseconds: number): number => Math.round(nanoseconds / 1e4) / 100;
  const result: PhaseResult = { phase, requests: sent, seconds, answers, loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) }, peakRssBytes };
  progress(`stall ${phase}: ${sent} requests in ${seconds.toFixed(1)} s, loop delay p50 ${result.loopDelayMs.p50} ms, p99 ${result.loopDelayMs.p99} ms, max ${result.loopDelayMs.max} ms, answers ${JSON.stringify(answers)}`);
  return result;
}

export interface StallBenchOptions {
  quick?: boolean;
  plan?: StallPlan;
  outPath: string;
  out?: (text: string) => void;
  progress?: (line: string) => void;
}

export async function runStallBench(options: StallBenchOptions): Promise<StallReport> {
  const plan = options.plan ?? (options.quick === true ? QUICK_STALL_PLAN : DEFAULT_STALL_PLAN);
  const sinks = benchSinks(options, performance.now());
  const loadAtStart = loadAverages();
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-bench-stall-'));
  const hostile = hostileBatches();
  const broker = await Broker.start({ config: { ...defaultBrokerConfig(), dataDir: dir, autoCreateTopics: true }, metadataStore: new MemoryMetadataStore(), logger: silentLogger });
  let phases: PhaseResult[];
  try {
    phases = [await runPhase(broker, 'valid', [validBatch()], plan, sinks.progress), await runPhase(broker, 'hostile', hostile.map((entry) => entry.batch), plan, sinks.progress)];
  } finally {
    await broker.shutdown();
    await rm(dir, { recursive: true, force: true });
  }
  const hostilePhase = phases[1]!;
  if ((hostilePhase.answers['0'] ?? 0) > 0) throw new Error(`the broker accepted ${hostilePhase.answers['0']} hostile batches`);
  const report: StallReport = {
    meta: { date: new Date().toISOString(), plan: plan.label, machine: machineFacts(loadAtStart), node: process.version, requestsInFlight: REQUESTS_IN_FLIGHT, produceVersion: PRODUCE_VERSION, targetMs: STALL_TARGET_MS, hostileKinds: hostile.map((entry) => entry.kind) },
    phases,
    target: { maxLoopDelayMs: hostilePhase.loopDelayMs.max, pass: hostilePhase.loopDelayMs.max <= STALL_TARGET_MS },
  };
  await writeJsonReport(options.outPath, report);
  sinks.out(
    [
      '| Phase | Requests | Seconds | Loop delay p50 ms | p99 ms | max ms | Answers (error code: count) | Peak RSS MB |',
      '|---|---:|---:|---:|---:|---:|---|---:|',
      ...phases.map((phase) => `| ${phase.phase} | ${phase.requests} | ${phase.seconds.toFixed(1)} | ${phase.loopDelayMs.p50} | ${phase.loopDelayMs.p99} | ${phase.loopDelayMs.max} | ${Object.entries(phase.answers).map(([code, count]) => `${code}: ${count}`).join(', ')} | ${(phase.peakRssBytes / 1e6).toFixed(0)} |`),
      '',
      `${report.target.pass ? 'PASS' : 'FAIL'} event loop under hostile produce requests: max delay ${report.target.maxLoopDelayMs} ms (target <= ${STALL_TARGET_MS} ms; under valid traffic ${phases[0]!.loopDelayMs.max} ms)`,
      '',
    ].join('\n'),
  );
  return report;
}
