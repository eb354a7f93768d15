// `tidelog replay` end to end: the bundled client's replay() and the compiled CLI against a broker
// child process (run `npm run build` first), plus the ScanRecords handler in this process, where
// the worker pool's counters show the scan ran on a worker thread.
import { spawn } from 'node:child_process';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin, createConsumer, createProducer, replay, type ConsumerRecord, type ProducerRecord, type ReplayOptions } from '../client/index.js';
import { ErrorCode } from '../protocol/errors.js';
import { decodeScanRecordsResponse, encodeScanRecordsRequest, type ScanRecordsRequest, type ScanRecordsResponse } from '../protocol/generated/index.js';
import { decodeRecords, encodeBatch } from '../segments/recordBatch.js';
import { BrokerProcess, TIDELOG_BIN, expectSuccess, runTidelog, waitUntil, withTimeout, type ProcessResult } from './support/brokerProcess.js';
import { sendRequest, startInProcessBroker } from './support/inProcessBroker.js';

const CLI_TIMEOUT_MS = 60_000;
const BASE_TIME = 1_700_000_000_000;
let broker: BrokerProcess;

/** What was produced, with the offset the broker gave it. */
interface Sent {
  offset: number;
  key: string;
  value: string;
  headers: Array<{ key: string; value: string }>;
  timestamp: number;
}

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'group.initial.rebalance.delay.ms': '0' } });
});

afterAll(async () => {
  await broker?.cleanup();
});

async function createTopic(topic: string, partitions = 1, configs: Record<string, string> = { 'segment.bytes': '4096' }): Promise<void> {
  const admin = createAdmin({ bootstrapServers: [broker.address] });
  try {
    await admin.createTopics([{ topic, partitions, configs }]);
  } finally {
    await admin.close();
  }
}

/** Record i: key k<i%4>, a header "kind" (odd/even) on every other record, timestamps 1 s apart. */
function recordFor(i: number): Omit<Sent, 'offset'> {
  return {
    key: `k${i % 4}`,
    value: `value-${i}-${'x'.repeat(i % 50)}`,
    headers: i % 2 === 0 ? [{ key: 'kind', value: i % 4 === 0 ? 'four' : 'two' }] : [],
    timestamp: BASE_TIME + i * 1000,
  };
}

async function produce(topic: string, count: number, first = 0): Promise<Sent[]> {
  const producer = createProducer({ bootstrapServers: [broker.address], acks: 'all', lingerMs: 0 });
  try {
    const sent: Sent[] = [];
    // Several sends so the log holds many batches (and, with small segments, many segments).
    for (let start = first; start < first + count; start += 25) {
      const chunk = Array.from({ length: Math.min(25, first + count - start) }, (_, j) => recordFor(start + j));
      const records: ProducerRecord[] = chunk.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp, partition: 0 }));
      const metadata = await producer.send(topic, records);
      chunk.forEach((r, j) => sent.push({ ...r, offset: Number(metadata[j]!.offset) }));
    }
    return sent;
  } finally {
    await producer.close();
  }
}

function asSent(record: ConsumerRecord): Sent {
  return {
    offset: Number(record.offset),
    key: record.key?.toString('utf8') ?? '',
    value: record.value?.toString('utf8') ?? '',
    headers: record.headers.map((h) => ({ key: h.key, value: h.value?.toString('utf8') ?? '' })),
    timestamp: record.timestamp,
  };
}

async function collect(options: Omit<ReplayOptions, 'bootstrapServers'>): Promise<{ records: Sent[]; stats: ReturnType<typeof replay>['stats'] }> {
  const iterator = replay({ bootstrapServers: [broker.address], ...options });
  const records: Sent[] = [];
  for await (const record of iterator) records.push(asSent(record));
  return { records, stats: iterator.stats };
}

function tidelog(args: readonly string[]): Promise<ProcessResult> {
  return runTidelog([...args, '--bootstrap-server', broker.address], { timeoutMs: CLI_TIMEOUT_MS });
}

/** `--format json` output lines as Sent records. */
function jsonRecords(result: ProcessResult): Sent[] {
  return result.stdout
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const parsed = JSON.parse(line) as { offset: number; key: string; value: string; headers: Record<string, string>; timestamp: number };
      return { offset: parsed.offset, key: parsed.key, value: parsed.value, headers: Object.entries(parsed.headers).map(([key, value]) => ({ key, value })), timestamp: parsed.timestamp };
    });
}

describe('replay() through ScanRecords', () => {
  let sent: Sent[];
  beforeAll(async () => {
    await createTopic('replay-range');
    sent = await produce('replay-range', 300);
  });

  it('returns exactly the records of [from, to) across several segments, in order', async () => {
    expect((await readdir(join(broker.dataDir, 'replay-range-0'))).filter((name) => name.endsWith('.log')).length).toBeGreaterThan(3);
    const want = sent.filter((r) => r.offset >= 40 && r.offset < 260);
    // Small requests, so the range takes several scans, each starting where the last one ended.
    const scanned = await collect({ topic: 'replay-range', from: { offset: 40 }, toOffset: 260, scan: 'scan', maxBytesPerRequest: 2048 });
    expect(scanned.records).toEqual(want);
    expect(scanned.stats.scanRequests).toBeGreaterThan(3);
    expect(scanned.stats.fetchRequests).toBe(0);
    // Unfiltered, 'auto' reads through Fetch: the same records.
    const fetched = await collect({ topic: 'replay-range', from: { offset: 40 }, toOffset: 260 });
    expect(fetched.records).toEqual(want);
    expect(fetched.stats.scanRequests).toBe(0);
  });

  it('filters by key, keeping original offsets', async () => {
    const { records, stats } = await collect({ topic: 'replay-range', from: { offset: 0 }, filter: { key: 'k2' } });
    expect(stats.scanRequests).toBeGreaterThan(0);
    expect(stats.fetchRequests).toBe(0);
    expect(records).toEqual(sent.filter((r) => r.key === 'k2'));
    expect(records.map((r) => r.offset)).toEqual(sent.filter((r) => r.key === 'k2').map((r) => r.offset));
  });

  it('follows a filtered range through ScanRecords: records produced later arrive, and aborting ends the iteration', async () => {
    await createTopic('replay-follow-scan');
    const early = await produce('replay-follow-scan', 8);
    const stop = new AbortController();
    const iterator = replay({ bootstrapServers: [broker.address], topic: 'replay-follow-scan', from: { offset: 0 }, filter: { key: 'k1' }, follow: true, followWaitMs: 50, signal: stop.signal });
    const got: Sent[] = [];
    const reading = (async () => {
      for await (const record of iterator) got.push(asSent(record));
    })();
    await waitUntil(() => got.length >= 2, 20_000, 'the early k1 records');
    const later = await produce('replay-follow-scan', 8, 8);
    await waitUntil(() => got.length >= 4, 20_000, 'the later k1 records');
    stop.abort();
    await withTimeout(reading, 10_000, 'the iteration to end after abort');
    expect(got).toEqual([...early, ...later].filter((r) => r.key === 'k1'));
    expect(iterator.stats.scanRequests).toBeGreaterThan(1);
    expect(iterator.stats.fetchRequests).toBe(0);
  });

  it('the Fetch fallback yields the same records for every filter', async () => {
    const cases: Array<Omit<ReplayOptions, 'bootstrapServers'>> = [
      { topic: 'replay-range', from: { offset: 13 }, toOffset: 201, scan: 'scan' },
      { topic: 'replay-range', from: { offset: 0 }, filter: { key: 'k1' } },
      { topic: 'replay-range', from: { offset: 0 }, filter: { header: { name: 'kind', value: 'four' } } },
      { topic: 'replay-range', from: { timestampMs: BASE_TIME + 100_500 }, filter: { toTimestampMs: BASE_TIME + 200_000 } },
    ];
    for (const options of cases) {
      const scanned = await collect(options);
      const fetched = await collect({ ...options, scan: 'fetch' });
      expect(scanned.stats.scanRequests).toBeGreaterThan(0);
      expect(fetched.records).toEqual(scanned.records);
      expect(fetched.records.length).toBeGreaterThan(0);
      expect(fetched.stats.scanRequests).toBe(0);
      expect(fetched.stats.fetchRequests).toBeGreaterThan(0);
    }
  });
});

describe('tidelog replay', () => {
  let sent: Sent[];
  beforeAll(async () => {
    await createTopic('replay-cli');
    sent = await produce('replay-cli', 120);
  });

  it('--from-timestamp starts at the first record at or after T', async () => {
    const from = BASE_TIME + 70_500;
    const result = expectSuccess(await tidelog(['replay', 'replay-cli', '--from-timestamp', String(from), '--format', 'json']), 'replay --from-timestamp');
    expect(jsonRecords(result)).toEqual(sent.filter((r) => r.timestamp >= from));
    expect(result.stderr).toMatch(/replay: \d+ records read, 49 matched/);
  });

  it('--filter-key prints exactly that key, with original offsets; --to-offset ends the range', async () => {
    const result = expectSuccess(await tidelog(['replay', 'replay-cli', '--from-offset', '5', '--to-offset', '100', '--filter-key', 'k3', '--json']), 'replay --filter-key');
    expect(jsonRecords(result)).toEqual(sent.filter((r) => r.key === 'k3' && r.offset >= 5 && r.offset < 100));
    expect(JSON.parse(result.stderr.trim().split('\n').pop()!)).toMatchObject({ recordsMatched: 24, recordsWritten: 0 });
    const viaFetch = expectSuccess(await tidelog(['replay', 'replay-cli', '--from-offset', '5', '--to-offset', '100', '--filter-key', 'k3', '--json', '--use-fetch']), 'replay --use-fetch');
    expect(viaFetch.stdout.toString('utf8')).toBe(result.stdout.toString('utf8'));
  });

  it('--filter-header name=value and name alone', async () => {
    const byValue = expectSuccess(await tidelog(['replay', 'replay-cli', '--from-offset', '0', '--filter-header', 'kind=two', '--format', 'json']), 'replay --filter-header');
    expect(jsonRecords(byValue)).toEqual(sent.filter((r) => r.headers.some((h) => h.key === 'kind' && h.value === 'two')));
    const byName = expectSuccess(await tidelog(['replay', 'replay-cli', '--from-offset', '0', '--filter-header', 'kind', '--format', 'kcat-like']), 'replay --filter-header name');
    const lines = byName.stdout.toString('utf8').trim().split('\n');
    expect(lines).toHaveLength(60);
    expect(lines[0]).toBe(`replay-cli [0] @ 0: key=k0 headers=kind=four ${sent[0]!.value}`);
  });

  it('--to-topic copies keys, values, headers and timestamps exactly, and summarises on stderr', async () => {
    const result = expectSuccess(await tidelog(['replay', 'replay-cli', '--from-offset', '10', '--to-offset', '90', '--to-topic', 'replay-copy']), 'replay --to-topic');
    expect(result.stdout.toString('utf8')).toBe('');
    expect(result.stderr).toMatch(/replay: 80 records read, 80 matched, 80 written to replay-copy/);
    const { records } = await collect({ topic: 'replay-copy', from: { offset: 0 } });
    const want = sent.filter((r) => r.offset >= 10 && r.offset < 90);
    expect(records).toHaveLength(want.length);
    records.forEach((copy, i) => {
      const original = want[i]!;
      expect({ ...copy, offset: 0 }).toEqual({ ...original, offset: 0 });
    });
  });

  it('exits 2 with one line on bad usage', async () => {
    const cases: string[][] = [
      ['replay', 'replay-cli'],
      ['replay', 'replay-cli', '--from-offset', '1', '--from-timestamp', '5'],
      ['replay', 'replay-cli', '--from-offset', '-3'],
      ['replay', 'replay-cli', '--from-offset', '9', '--to-offset', '2'],
      ['replay', 'replay-cli', '--from-offset', '0', '--format', 'yaml'],
      ['replay', 'replay-cli', '--from-offset', '0', '--filter-header', '=x'],
      ['replay', 'replay-cli', '--from-offset', '0', '--follow', '--to-topic', 'replay-cli'],
    ];
    for (const args of cases) {
      const result = await tidelog(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stdout.toString('utf8')).toBe('');
    }
  });

  it('exits 1 for a topic that does not exist', async () => {
    const result = await tidelog(['replay', 'replay-no-such-topic', '--from-offset', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/UNKNOWN_TOPIC_OR_PARTITION/);
  });

  it('--follow prints records produced after it started and stops on SIGINT with exit 0', async () => {
    await createTopic('replay-follow');
    await produce('replay-follow', 3);
    const child = spawn(process.execPath, [TIDELOG_BIN, 'replay', 'replay-follow', '--from-offset', '0', '--follow', '--bootstrap-server', broker.address], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      const lines = (): string[] => stdout.split('\n').filter((line) => line.length > 0);
      await waitUntil(() => lines().length >= 3, 20_000, 'the first three records');
      const later = await produce('replay-follow', 4, 3);
      await waitUntil(() => lines().length >= 7, 20_000, 'the records produced later');
      expect(lines()).toEqual([...[0, 1, 2].map((i) => recordFor(i).value), ...later.map((r) => r.value)]);
      child.kill('SIGINT');
      expect(await withTimeout(exited, 20_000, 'replay --follow to exit after SIGINT')).toBe(0);
      expect(stderr).toMatch(/7 matched/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('reports a corrupt batch in the range as an error (exit 1) and prints only the records before it', async () => {
    await createTopic('replay-corrupt', 1, {});
    const sentHere = await produce('replay-corrupt', 100);
    const path = join(broker.dataDir, 'replay-corrupt-0', '00000000000000000000.log');
    // Flip the last byte of the batch holding offset 60 (its records area, covered by the CRC).
    const handle = await open(path, 'r+');
    let victimBase = -1;
    try {
      const { size } = await handle.stat();
      const content = Buffer.alloc(size);
      await handle.read(content, 0, size, 0);
      let position = 0;
      while (position < size) {
        const base = Number(content.readBigInt64BE(position));
        const batchSize = content.readInt32BE(position + 8) + 12;
        if (base + content.readInt32BE(position + 23) >= 60) {
          victimBase = base;
          await handle.write(Buffer.from([content[position + batchSize - 1]! ^ 0xff]), 0, 1, position + batchSize - 1);
          break;
        }
        position += batchSize;
      }
    } finally {
      await handle.close();
    }
    expect(victimBase).toBeGreaterThan(0);
    // Filtered: ScanRecords names the batch; the worker never returns its bytes.
    const filtered = await tidelog(['replay', 'replay-corrupt', '--from-offset', '0', '--filter-header', 'kind', '--format', 'json']);
    expect(filtered.code).toBe(1);
    expect(filtered.stderr).toMatch(/CORRUPT_MESSAGE.*corrupt batch .*crc-mismatch/);
    expect(jsonRecords(filtered)).toEqual(sentHere.filter((r) => r.offset < victimBase && r.headers.length > 0));
    await broker.waitForLine(/ERROR scan met a corrupt batch/);
    // Unfiltered (through Fetch): the broker refuses to serve the batch too.
    const plain = await tidelog(['replay', 'replay-corrupt', '--from-offset', '0', '--format', 'json']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/KAFKA_STORAGE_ERROR/);
    expect(jsonRecords(plain)).toEqual(sentHere.filter((r) => r.offset < victimBase));
  });
});

describe('a large replay and the broker', () => {
  it('stays responsive: a produce/fetch round trip completes while a filtered scan reads the whole topic', async () => {
    await createTopic('replay-big', 1, {});
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 1 });
    const value = Buffer.alloc(200, 0x62);
    try {
      for (let round = 0; round < 50; round++) {
        await producer.send('replay-big', Array.from({ length: 2000 }, (_, i) => ({ key: `big-${i % 100}`, value, partition: 0 })));
      }
    } finally {
      await producer.close();
    }
    await createTopic('replay-ping', 1, {});
    const scanning = collect({ topic: 'replay-big', from: { offset: 0 }, filter: { key: 'no-such-key' } });
    // While the scan runs: produce one record and read it back.
    const pingProducer = createProducer({ bootstrapServers: [broker.address], acks: 'all' });
    const consumer = createConsumer({ bootstrapServers: [broker.address], autoOffsetReset: 'earliest' });
    try {
      await pingProducer.send('replay-ping', [{ key: 'p', value: 'ping', partition: 0 }]);
      consumer.assign([{ topic: 'replay-ping', partition: 0, offset: 0 }]);
      const roundTrip = (async () => {
        for await (const record of consumer.records({ idleTimeoutMs: 20_000 })) return record.value?.toString();
        return undefined;
      })();
      expect(await withTimeout(roundTrip, 30_000, 'a produce/fetch round trip during the scan')).toBe('ping');
    } finally {
      await consumer.close();
      await pingProducer.close();
    }
    const { records, stats } = await scanning;
    expect(records).toEqual([]);
    expect(stats.recordsScanned).toBe(100_000);
    expect(stats.scanRequests).toBeGreaterThan(0);
  }, 120_000);
});

describe('ScanRecords in the broker (this process)', () => {
  const request = (overrides: Partial<ScanRecordsRequest>): ScanRecordsRequest => ({
    topic: 'events',
    partitionIndex: 0,
    startOffset: 0n,
    endOffset: -1n,
    keyFilter: null,
    headerName: null,
    headerValue: null,
    fromTimestamp: -1n,
    toTimestamp: -1n,
    maxBytes: 1 << 20,
    maxRecords: 1000,
    ...overrides,
  });

  it('runs the scan on a worker thread and answers Kafka error codes for bad requests', async () => {
    const started = await startInProcessBroker();
    try {
      const { broker: inProcess } = started;
      await inProcess.topics.create('events', 1, -1, {});
      const log = inProcess.topics.partition('events', 0)!.log;
      for (let i = 0; i < 10; i++) {
        await log.append(encodeBatch([{ key: Buffer.from(`key-${i % 3}`), value: Buffer.from(`v${i}`), timestamp: BASE_TIME + i }]));
      }
      const scan = (overrides: Partial<ScanRecordsRequest>): Promise<ScanRecordsResponse | null> =>
        sendRequest(inProcess, 32000, 0, encodeScanRecordsRequest, decodeScanRecordsResponse, request(overrides));
      const before = inProcess.services.workers.counters().completed;
      const answer = (await scan({ keyFilter: Buffer.from('key-1') }))!;
      expect(inProcess.services.workers.counters().completed).toBe(before + 1);
      expect(answer).toMatchObject({ errorCode: ErrorCode.NONE, nextOffset: 10n, logEndOffset: 10n, recordsScanned: 10n });
      expect(decodeRecords(answer.records!).map((r) => r.offset)).toEqual([1]);
      const all = [];
      let position = 0;
      while (position < answer.records!.length) {
        all.push(...decodeRecords(answer.records!, position));
        position += answer.records!.readInt32BE(position + 8) + 12;
      }
      expect(all.map((r) => [r.offset, r.value?.toString()])).toEqual([[1, 'v1'], [4, 'v4'], [7, 'v7']]);

      expect((await scan({ topic: 'missing' }))!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      expect((await scan({ partitionIndex: 3 }))!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      expect((await scan({ startOffset: 11n }))!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
      expect((await scan({ startOffset: 5n, endOffset: 2n }))!.errorCode).toBe(ErrorCode.INVALID_REQUEST);
      expect((await scan({ maxBytes: 0 }))!.errorCode).toBe(ErrorCode.INVALID_REQUEST);
      const empty = (await scan({ startOffset: 10n }))!;
      expect(empty).toMatchObject({ errorCode: ErrorCode.NONE, nextOffset: 10n });
      expect(empty.records!.length).toBe(0);
    } finally {
      await started.stop();
    }
  });
});
