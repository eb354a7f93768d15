// The benchmark behind `tidelog bench embedded`: how long a test waits for an embedded broker,
// from startBroker() to the first acknowledged record (the bundled producer, acks=1, a topic
// created by that first send), then how long stop() takes. Repeated ROUNDS times in one process,
// a fresh temporary data directory each time; median, p90 and max. Target: median under 100 ms.
import { performance } from 'node:perf_hooks';
import { createProducer } from '../client/index.js';
import { startBroker } from '../server/embeddedBroker.js';
import { benchSinks, writeJsonReport } from './benchRun.js';
import { loadAverages, machineFacts, median, type MachineFacts } from './benchStats.js';

export const COLD_START_TARGET_MS = 100;
const ROUNDS = 20;
const QUICK_ROUNDS = 5;

export interface EmbeddedBenchReport {
  meta: { date: string; rounds: number; machine: MachineFacts; node: string; targetMs: number };
  startToFirstAckMs: { median: number; p90: number; max: number; all: number[] };
  stopMs: { median: number; max: number };
  target: { medianMs: number; pass: boolean };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

export async function runEmbeddedBench(options: { quick?: boolean; outPath: string; out?: (text: string) => void; progress?: (line: string) => void }): Promise<EmbeddedBenchReport> {
  const rounds = options.quick === true ? QUICK_ROUNDS : ROUNDS;
  const sinks = benchSinks(options, performance.now());
  const loadAtStart = loadAverages();
  const firstAck: number[] = [];
  const stops: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const broker = await startBroker();
    try {
      const producer = createProducer({ bootstrapServers: [broker.bootstrapServers], acks: 1 });
      try {
        await producer.send('cold-start', [{ key: 'k', value: 'first' }]);
      } finally {
        await producer.close();
      }
      firstAck.push(performance.now() - started);
    } finally {
      const stopping = performance.now();
      await broker.stop();
      stops.push(performance.now() - stopping);
    }
    sinks.progress(`embedded round ${round + 1}/${rounds}: first ack after ${round2(firstAck.at(-1)!)} ms, stop ${round2(stops.at(-1)!)} ms`);
  }
  const sorted = [...firstAck].sort((a, b) => a - b);
  const report: EmbeddedBenchReport = {
    meta: { date: new Date().toISOString(), rounds, machine: machineFacts(loadAtStart), node: process.version, targetMs: COLD_START_TARGET_MS },
    startToFirstAckMs: { median: round2(median(firstAck)), p90: round2(sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.9) - 1)]!), max: round2(sorted.at(-1)!), all: firstAck.map(round2) },
    stopMs: { median: round2(median(stops)), max: round2(Math.max(...stops)) },
    target: { medianMs: round2(median(firstAck)), pass: median(firstAck) < COLD_START_TARGET_MS },
  };
  await writeJsonReport(options.outPath, report);
  sinks.out(
    `startBroker() to the first acknowledged record, ${rounds} rounds: median ${report.startToFirstAckMs.median} ms, p90 ${report.startToFirstAckMs.p90} ms, max ${report.startToFirstAckMs.max} ms; stop() median ${report.stopMs.median} ms\n` +
      `${report.target.pass ? 'PASS' : 'FAIL'} cold start median ${report.target.medianMs} ms (target < ${COLD_START_TARGET_MS} ms)\n`,
  );
  return report;
}
