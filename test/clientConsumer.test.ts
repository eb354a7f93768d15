// The bundled consumer end to end: a broker child process (dist/; run `npm run build` first, as
// npm test does), records written by the bundled producer, kafkajs and kcat read back exactly;
// seeks, pause/resume, OFFSET_OUT_OF_RANGE resets, the prefetch bound. The broker checks every
// CRC it serves, so a corrupt batch is made by a TCP proxy (it rewrites Metadata answers so the
// client comes back to it) that flips the last byte of one Fetch response; the decoder is also
// tested directly, and so is the connection's frame assembly (socket reads into frame buffers).
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, KafkaOffsetOutOfRangeError, type Consumer, type ConsumerOptions } from '../client/consumer/consumer.js';
import { FrameAssembler } from '../client/connection.js';
import { KafkaConfigError } from '../client/errors.js';
import { createProducer } from '../client/producer.js';
import { batchRecords, decodeFetchedBatches, decodeFetchedRecords, KafkaCorruptRecordError, RecordCursor, scanFetchedRecords, type ConsumerRecord } from '../client/recordDecoder.js';
import { decodeMetadataResponse, encodeMetadataResponse } from '../protocol/generated/index.js';
import { readResponseHeader, responseHeaderVersion, writeResponseHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import { CRC_OFFSET, encodeBatch } from '../segments/recordBatch.js';
import { BrokerProcess, kafkaFor, kafkajs, kcat, createTopic } from './support/brokerProcess.js';
import { kcatConsume } from './e2e/records.js';
import { SeededRandom } from './support/random.js';
import { waitFor } from './support/waitFor.js';

const IDLE_MS = 1_500;
/** How long a fetcher that runs ahead may take to fill its prefetch buffer. */
const PREFETCH_TIMEOUT_MS = 10_000;
let broker: BrokerProcess;
const consumers: Consumer[] = [];

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'num.partitions': '1' } });
});

afterAll(async () => {
  await Promise.all(consumers.map((consumer) => consumer.close()));
  await broker?.cleanup();
});

function consumer(options: Partial<ConsumerOptions> = {}): Consumer {
  const created = createConsumer({ bootstrapServers: [broker.address], maxWaitMs: 100, requestTimeoutMs: 5_000, ...options });
  consumers.push(created);
  return created;
}

/** Reads until `count` records (or IDLE_MS without data). */
async function take(source: Consumer, count: number, idleTimeoutMs = IDLE_MS): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  if (count === 0) return out;
  for await (const record of source.records({ idleTimeoutMs })) {
    out.push(record);
    if (out.length >= count) break;
  }
  return out;
}

interface Plain {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Array<[string, string | null]>;
}

function plain(record: ConsumerRecord): Plain {
  return {
    offset: Number(record.offset),
    timestamp: record.timestamp,
    key: record.key?.toString('utf8') ?? null,
    value: record.value?.toString('utf8') ?? null,
    headers: record.headers.map((header) => [header.key, header.value?.toString('utf8') ?? null]),
  };
}

async function produceValues(topic: string, count: number, options: { partition?: number; timestamp?: (i: number) => number; valueBytes?: number } = {}): Promise<void> {
  const producer = createProducer({ bootstrapServers: [broker.address], acks: 1 });
  try {
    const records = Array.from({ length: count }, (_, i) => ({
      value: options.valueBytes === undefined ? `v${i}` : Buffer.alloc(options.valueBytes, 0x61 + (i % 26)),
      partition: options.partition ?? 0,
      ...(options.timestamp !== undefined ? { timestamp: options.timestamp(i) } : {}),
    }));
    await producer.send(topic, records);
  } finally {
    await producer.close();
  }
}

describe('consumer reads back what other clients wrote', () => {
  it('bundled producer, plain and gzip: keys, null keys and values, headers, timestamps, offsets exact', async () => {
    for (const compression of ['none', 'gzip'] as const) {
      const topic = `consume-bundled-${compression}`;
      const producer = createProducer({ bootstrapServers: [broker.address], compression, lingerMs: 1, batchSize: 4096 });
      const base = 1_700_000_000_000;
      const expected: Plain[] = [];
      const records = Array.from({ length: 500 }, (_, i) => {
        const key = i % 7 === 0 ? null : `key-${i}`;
        const value = i % 11 === 0 ? null : `value-${i}-${'x'.repeat(i % 50)}`;
        const headers = i % 3 === 0 ? [] : [{ key: 'h', value: `a${i}` }, { key: 'h', value: null }, { key: 'ünï', value: Buffer.from([0, 1, 2]).toString('latin1') }];
        expected.push({ offset: i, timestamp: base + i * 1000, key, value, headers: headers.map((h) => [h.key, h.value]) });
        return { key, value, headers, timestamp: base + i * 1000, partition: 0 };
      });
      const sent = await producer.send(topic, records);
      await producer.close();
      expect(sent.map((m) => m.offset)).toEqual(records.map((_, i) => BigInt(i)));

      const reader = consumer({ autoOffsetReset: 'earliest' });
      reader.assign([{ topic, partition: 0 }]);
      const read = await take(reader, 500);
      expect(read.map(plain)).toEqual(expected);
      expect(read.every((r) => r.topic === topic && r.partition === 0 && typeof r.offset === 'bigint')).toBe(true);
      expect(reader.position(topic, 0)).toBe(500n);
      await reader.close();
    }
  });

  it('kafkajs producer (plain and gzip, headers, null keys)', async () => {
    const topic = 'consume-kafkajs';
    const kafka = kafkaFor(broker);
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    const base = 1_710_000_000_000;
    const expected: Plain[] = [];
    try {
      for (const compression of [kafkajs.CompressionTypes.None, kafkajs.CompressionTypes.GZIP]) {
        const messages = Array.from({ length: 200 }, (_, i) => {
          const n = expected.length;
          const key = n % 5 === 0 ? null : `k${n}`;
          const headers = n % 2 === 0 ? { trace: `t${n}`, other: 'o' } : {};
          expected.push({ offset: n, timestamp: base + n, key, value: `kafkajs-${n}`, headers: Object.entries(headers).map(([k, v]) => [k, v]) });
          void i;
          return { key, value: `kafkajs-${n}`, headers, timestamp: String(base + n), partition: 0 };
        });
        await producer.send({ topic, compression, messages });
      }
    } finally {
      await producer.disconnect();
    }
    const reader = consumer({ autoOffsetReset: 'earliest' });
    reader.assign([{ topic, partition: 0 }]);
    expect((await take(reader, 400)).map(plain)).toEqual(expected);
  });

  it('kcat producer (gzip, a header, keys, NULL values from empty lines)', async () => {
    const topic = 'consume-kcat';
    await createTopic(broker, topic);
    const lines = Array.from({ length: 300 }, (_, i) => (i % 10 === 0 ? `key${i}:` : `key${i}:value-${i}`));
    await kcat(broker, ['-P', '-t', topic, '-p', '0', '-K', ':', '-Z', '-z', 'gzip', '-H', 'source=kcat'], { input: lines.join('\n') + '\n' });
    const byKcat = await kcatConsume(broker, topic, 'beginning');
    const reader = consumer({ autoOffsetReset: 'earliest' });
    reader.assign([{ topic, partition: 0 }]);
    const read = await take(reader, 300);
    expect(read).toHaveLength(300);
    expect(read.map((r) => Number(r.offset))).toEqual(byKcat.map((r) => r.offset));
    expect(read.map((r) => r.timestamp)).toEqual(byKcat.map((r) => r.timestamp));
    expect(read.map((r) => r.key?.toString())).toEqual(lines.map((line) => line.split(':')[0]));
    expect(read.map((r) => r.value?.toString() ?? null)).toEqual(lines.map((line, i) => (i % 10 === 0 ? null : line.split(':')[1])));
    expect(read.every((r) => r.headers.length === 1 && r.headers[0]!.key === 'source' && r.headers[0]!.value?.toString() === 'kcat')).toBe(true);
  });
});

describe('consumer positions', () => {
  const topic = 'consume-seek';
  const base = 1_720_000_000_000;

  beforeAll(async () => {
    await produceValues(topic, 1000, { timestamp: (i) => base + i * 10 });
  });

  it('seek, seekToBeginning, seekToEnd, seekToTimestamp and position()', async () => {
    const reader = consumer({ autoOffsetReset: 'latest' });
    reader.assign([{ topic, partition: 0, offset: 250n }]);
    expect(reader.position(topic, 0)).toBe(250n);
    let read = await take(reader, 10);
    expect(read.map((r) => Number(r.offset))).toEqual(Array.from({ length: 10 }, (_, i) => 250 + i));
    expect(reader.position(topic, 0)).toBe(260n);

    reader.seek(topic, 0, 900);
    read = await take(reader, 5);
    expect(read.map((r) => Number(r.offset))).toEqual([900, 901, 902, 903, 904]);

    await reader.seekToBeginning();
    expect(reader.position(topic, 0)).toBe(0n);
    expect(Number((await take(reader, 1))[0]!.offset)).toBe(0);

    await reader.seekToTimestamp(base + 5005); // first record at or after: offset 501 (base + 5010)
    expect(reader.position(topic, 0)).toBe(501n);
    read = await take(reader, 1);
    expect(read[0]!.timestamp).toBe(base + 5010);

    await reader.seekToTimestamp(base + 10 ** 9); // after every record: the log end
    expect(reader.position(topic, 0)).toBe(1000n);

    await reader.seekToEnd();
    expect(reader.position(topic, 0)).toBe(1000n);
    expect(await take(reader, 1, 300)).toEqual([]);
    await produceValues(topic, 1, { timestamp: () => base + 20_000 });
    expect((await take(reader, 1)).map((r) => Number(r.offset))).toEqual([1000]);
  });

  it('a partition without an offset starts per autoOffsetReset (earliest, latest, none)', async () => {
    const earliest = consumer({ autoOffsetReset: 'earliest' });
    earliest.assign([{ topic, partition: 0 }]);
    expect(Number((await take(earliest, 1))[0]!.offset)).toBe(0);

    const latest = consumer({ autoOffsetReset: 'latest' });
    latest.assign([{ topic, partition: 0 }]);
    expect(await take(latest, 1, 500)).toEqual([]);
    expect(latest.position(topic, 0)).toBe(1001n);

    const none = consumer({ autoOffsetReset: 'none' });
    none.assign([{ topic, partition: 0 }]);
    await expect(take(none, 1)).rejects.toThrow(KafkaOffsetOutOfRangeError);
  });

  it('breaking out of an iteration loses nothing: the next iteration continues at position()', async () => {
    const reader = consumer();
    reader.assign([{ topic, partition: 0, offset: 0 }]);
    const first = await take(reader, 7);
    const second = await take(reader, 5);
    expect([...first, ...second].map((r) => Number(r.offset))).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('batches() hands out whole batches; a RecordCursor reads them without record objects', async () => {
    const reader = consumer();
    reader.assign([{ topic, partition: 0, offset: 3 }]);
    const cursor = new RecordCursor();
    const offsets: number[] = [];
    for await (const batch of reader.batches({ idleTimeoutMs: IDLE_MS })) {
      cursor.reset(batch);
      while (cursor.next()) offsets.push(cursor.offset);
      if (offsets.length >= 900) break;
    }
    expect(offsets.slice(0, 900)).toEqual(Array.from({ length: 900 }, (_, i) => 3 + i));
  });
});

describe('consumer flow control', () => {
  it('pause stops a partition, resume continues where it stopped; the other partition flows', async () => {
    const topic = 'consume-pause';
    await createTopic(broker, topic, 2);
    await produceValues(topic, 100, { partition: 0 });
    await produceValues(topic, 100, { partition: 1 });
    const reader = consumer();
    reader.assign([{ topic, partition: 0, offset: 0 }, { topic, partition: 1, offset: 0 }]);
    reader.pause([{ topic, partition: 0 }]);
    expect(reader.paused()).toEqual([{ topic, partition: 0 }]);
    const onlyOne = await take(reader, 200, 800);
    expect(onlyOne).toHaveLength(100);
    expect(onlyOne.every((r) => r.partition === 1)).toBe(true);
    reader.resume([{ topic, partition: 0 }]);
    const rest = await take(reader, 100);
    expect(rest.map((r) => `${r.partition}:${r.offset}`)).toEqual(Array.from({ length: 100 }, (_, i) => `0:${i}`));

    // Paused mid-way: records after the pause point come only after resume, none lost or repeated.
    reader.seek(topic, 0, 0);
    const head = await take(reader, 10);
    reader.pause([{ topic, partition: 0 }]);
    expect(await take(reader, 1, 300)).toEqual([]);
    reader.resume([{ topic, partition: 0 }]);
    const tail = await take(reader, 90);
    expect([...head, ...tail].map((r) => Number(r.offset))).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('holds at most prefetchMaxBytes + one response of unconsumed data', async () => {
    const topic = 'consume-prefetch';
    const count = 20_000;
    await produceValues(topic, count, { valueBytes: 200 });
    const prefetchMaxBytes = 256 * 1024;
    const maxBytes = 64 * 1024;
    const reader = consumer({ prefetchMaxBytes, maxBytes, maxPartitionBytes: maxBytes });
    reader.assign([{ topic, partition: 0, offset: 0 }]);
    let read = 0;
    let next = 0;
    for await (const record of reader.records({ idleTimeoutMs: IDLE_MS })) {
      expect(Number(record.offset)).toBe(next++);
      read++;
      // A slow reader: it stops and lets the fetcher run ahead until the bound stops it (held bytes
      // at prefetchMaxBytes). Not near the end, where less than that is left to fetch.
      if (read % 2000 === 0 && (count - read) * 200 > prefetchMaxBytes) {
        await waitFor(() => reader.heldBytes, { until: (held) => held >= prefetchMaxBytes, timeoutMs: PREFETCH_TIMEOUT_MS, what: `the fetcher to fill the prefetch buffer after ${read} records read (heldBytes)` });
      }
      expect(reader.heldBytes).toBeLessThanOrEqual(prefetchMaxBytes + maxBytes);
      if (read === count) break;
    }
    expect(read).toBe(count);
    expect(reader.maxHeldBytes).toBeGreaterThan(prefetchMaxBytes / 2); // it did prefetch
    expect(reader.maxHeldBytes).toBeLessThanOrEqual(prefetchMaxBytes + maxBytes);
  });

  it('OFFSET_OUT_OF_RANGE after DeleteRecords resets per autoOffsetReset', async () => {
    const topic = 'consume-deleted';
    await produceValues(topic, 100);
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    try {
      await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs looks the leader up in its cache
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '60' }] });
    } finally {
      await admin.disconnect();
    }
    const earliest = consumer({ autoOffsetReset: 'earliest' });
    earliest.assign([{ topic, partition: 0, offset: 10 }]);
    const read = await take(earliest, 40);
    expect(read.map((r) => Number(r.offset))).toEqual(Array.from({ length: 40 }, (_, i) => 60 + i));

    const latest = consumer({ autoOffsetReset: 'latest' });
    latest.assign([{ topic, partition: 0, offset: 10 }]);
    expect(await take(latest, 1, 500)).toEqual([]);
    expect(latest.position(topic, 0)).toBe(100n);

    const none = consumer({ autoOffsetReset: 'none' });
    none.assign([{ topic, partition: 0, offset: 10 }]);
    const error = await take(none, 1).then(() => null, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(KafkaOffsetOutOfRangeError);
    expect((error as Error).message).toMatch(/offset 10 is out of range for consume-deleted-0/);
    none.seek(topic, 0, 95); // a seek clears the failure
    expect((await take(none, 5)).map((r) => Number(r.offset))).toEqual([95, 96, 97, 98, 99]);
  });

  it('close() ends a waiting iteration; calls against a dead address fail within their timeout', async () => {
    const reader = consumer();
    reader.assign([{ topic: 'consume-seek', partition: 0, offset: 1_000_000 }]);
    const waiting = take(reader, 1, 60_000);
    // Waiting for real: the offset was out of range, reset to the log end, and nothing comes.
    await waitFor(() => reader.position('consume-seek', 0), { until: (position) => position !== null && position < 1_000_000n, timeoutMs: 10_000, what: 'the consumer to reset its out-of-range position to the log end' });
    await reader.close();
    expect(await waiting).toEqual([]);

    const dead = createConsumer({ bootstrapServers: ['127.0.0.1:1'], requestTimeoutMs: 500, connectTimeoutMs: 500 });
    dead.assign([{ topic: 'x', partition: 0 }]);
    const started = Date.now();
    await expect(dead.seekToEnd()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(10_000);
    await dead.close();
  });

  it('options are validated with precise messages', () => {
    expect(() => createConsumer({ bootstrapServers: [broker.address], prefetchMaxBytes: 0 })).toThrow(new KafkaConfigError('prefetchMaxBytes must be an integer in [1, 1099511627776], got 0'));
    expect(() => createConsumer({ bootstrapServers: [broker.address], autoOffsetReset: 'oldest' as 'earliest' })).toThrow(/autoOffsetReset must be 'earliest', 'latest' or 'none', got oldest/);
    const reader = consumer();
    reader.assign([{ topic: 't', partition: 0 }]);
    expect(() => reader.seek('t', 1, 0)).toThrow(/t-1 is not assigned/);
    expect(() => reader.seek('t', 0, -1)).toThrow(/offset must be a non-negative integer/);
    expect(() => reader.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 0 }])).toThrow(/assigned twice/);
  });
});

describe('connection frame assembly', () => {
  /** Feeds `stream` to the assembler as socket reads of random sizes into the buffers it hands out. */
  function feed(assembler: FrameAssembler, stream: Buffer, random: SeededRandom, inPlace: { reads: number }): void {
    const reused = assembler.readBuffer(); // nothing in progress yet: the shared read buffer
    let at = 0;
    while (at < stream.length) {
      const target = assembler.readBuffer();
      const bytes = Math.min(target.length, stream.length - at, random.int(1, 200_000));
      stream.copy(target, 0, at, at + bytes);
      if (target !== reused) inPlace.reads++;
      assembler.received(bytes, target);
      at += bytes;
    }
  }

  function framed(body: Buffer): Buffer {
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    return Buffer.concat([size, body]);
  }

  it('returns every frame whole and unaliased, small ones copied out, big ones read in place, for any read sizes (seed 7)', () => {
    const random = new SeededRandom(7);
    const bodies = Array.from({ length: 60 }, (_, i) => {
      if (i % 5 === 0) return Buffer.alloc(random.int(300_000, 1_500_000), random.bytes(997)); // big: a repeated random pattern
      return i % 7 === 0 ? Buffer.alloc(0) : random.bytes(random.int(4, 5_000));
    });
    const frames: Buffer[] = [];
    const assembler = new FrameAssembler(64 * 1024 * 1024);
    assembler.listen((frame) => frames.push(frame), (error) => {
      throw error;
    });
    const inPlace = { reads: 0 };
    feed(assembler, Buffer.concat(bodies.map(framed)), random, inPlace);
    // Compared only after everything was read: a frame left as a view of the reused read buffer
    // would have been overwritten by later reads.
    expect(frames.length).toBe(bodies.length);
    frames.forEach((frame, i) => expect(frame.equals(bodies[i]!), `frame ${i} (${bodies[i]!.length} bytes)`).toBe(true));
    expect(inPlace.reads).toBeGreaterThan(0);
  });

  it('a negative or oversized frame size is reported once and nothing more is handed out', () => {
    for (const size of [-1, 1025]) {
      const frames: Buffer[] = [];
      const errors: Error[] = [];
      const assembler = new FrameAssembler(1024);
      assembler.listen((frame) => frames.push(frame), (error) => errors.push(error));
      const bad = Buffer.alloc(4);
      bad.writeInt32BE(size);
      feed(assembler, Buffer.concat([framed(Buffer.from('ok')), bad, framed(Buffer.from('after'))]), new SeededRandom(1), { reads: 0 });
      expect(frames.map(String)).toEqual(['ok']);
      expect(errors.map((error) => error.message)).toEqual([`frame size ${size} is outside [0, 1024] (stream byte 6)`]);
    }
  });
});

describe('record decoder', () => {
  const records = [
    { key: Buffer.from('a'), value: Buffer.from('one'), headers: [{ key: 'h', value: Buffer.from('1') }], timestamp: 1000 },
    { key: null, value: null, timestamp: 1500 },
    { key: Buffer.from('c'), value: Buffer.alloc(0), headers: [{ key: 'x', value: null }], timestamp: 999 },
  ];

  it('reads plain and gzip batches, skips control batches and records before the fetch offset, ignores a cut tail', () => {
    const first = encodeBatch(records, { baseOffset: 10 });
    const control = encodeBatch([{ key: Buffer.from([0, 0, 0, 0]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }], { baseOffset: 13, control: true, transactional: true });
    const gzip = encodeBatch(records, { baseOffset: 14, compression: 'gzip' });
    const tail = encodeBatch(records, { baseOffset: 17 });
    const response = Buffer.concat([first, control, gzip, tail.subarray(0, tail.length - 5)]);

    expect(scanFetchedRecords(response, 11)).toEqual({ nextOffset: 17, completeBytes: first.length + control.length + gzip.length, batchCount: 3 });
    const read = decodeFetchedRecords('t', 0, response, 11);
    expect(read.map((r) => Number(r.offset))).toEqual([11, 12, 14, 15, 16]);
    expect(read.map((r) => r.timestamp)).toEqual([1500, 999, 1000, 1500, 999]);
    expect(read[2]!.key?.toString()).toBe('a');
    expect(read[2]!.headers.map((h) => [h.key, h.value?.toString()])).toEqual([['h', '1']]);
    expect(read[3]!.key).toBeNull();
    expect(read[3]!.value).toBeNull();
    expect(read[4]!.value).toEqual(Buffer.alloc(0));
    expect(read[4]!.headers).toEqual([{ key: 'x', value: null }]);
    // Zero-copy: an uncompressed value is a view of the response.
    expect(read[0]!.value === null || read[0]!.value.buffer === response.buffer || read[0]!.value.length === 0).toBe(true);
    const { batches } = decodeFetchedBatches('t', 0, response, 0);
    expect(batches.map((b) => [b.baseOffset, b.lastOffset, b.recordCount])).toEqual([[10, 12, 3], [14, 16, 3]]);
    expect(batchRecords(batches[0]!).map((r) => r.value?.buffer === response.buffer)).toEqual([true, false, true]);
  });

  it('a bad CRC is reported clearly, after the good batches before it', () => {
    const good = encodeBatch(records, { baseOffset: 0 });
    const bad = encodeBatch(records, { baseOffset: 3 });
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    const response = Buffer.concat([good, bad]);
    const result = decodeFetchedBatches('orders', 2, response, 0);
    expect(result.batches).toHaveLength(1);
    expect(result.error).toBeInstanceOf(KafkaCorruptRecordError);
    expect(result.error!.message).toMatch(/^corrupt record batch in orders-2 at offset 3: CRC-32C mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
    expect(result.error!.retriable).toBe(false);
    expect(() => decodeFetchedRecords('orders', 2, response, 0)).toThrow(KafkaCorruptRecordError);
    // A bad stored CRC field is caught the same way.
    const badField = Buffer.from(good);
    badField.writeUInt32BE((badField.readUInt32BE(CRC_OFFSET) + 1) >>> 0, CRC_OFFSET);
    expect(decodeFetchedBatches('orders', 2, badField, 0).error?.message).toMatch(/at offset 0: CRC-32C mismatch/);
  });

  it('a record running past its batch is a KafkaCorruptRecordError, not a RangeError', () => {
    const batch = encodeBatch(records, { baseOffset: 0 });
    const { batches } = decodeFetchedBatches('t', 0, batch, 0, true);
    const broken = { ...batches[0]!, records: batches[0]!.records.subarray(0, 6) };
    expect(() => batchRecords(broken)).toThrow(KafkaCorruptRecordError);
  });
});

// ---------------------------------------------------------------------------------------------
// A corrupting proxy: frames pass through; Metadata answers name the proxy as the broker; the
// first Fetch response holding several batches gets its last byte (inside the last batch of the
// single partition's records) flipped.

interface CorruptingProxy {
  port: number;
  corrupted: () => boolean;
  close(): Promise<void>;
}

async function startCorruptingProxy(target: () => number, corrupt = true): Promise<CorruptingProxy> {
  let corrupted = !corrupt;
  let proxyPort = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: target() });
    sockets.add(client).add(upstream);
    const fetchIds = new Set<number>();
    const metadataVersions = new Map<number, number>();
    let requestBytes = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      requestBytes = Buffer.concat([requestBytes, chunk]);
      while (requestBytes.length >= 4 && requestBytes.length >= 4 + requestBytes.readInt32BE(0)) {
        const size = requestBytes.readInt32BE(0);
        const apiKey = requestBytes.readInt16BE(4);
        if (apiKey === 1) fetchIds.add(requestBytes.readInt32BE(8)); // apiKey, apiVersion, correlationId
        if (apiKey === 3) metadataVersions.set(requestBytes.readInt32BE(8), requestBytes.readInt16BE(6));
        upstream.write(requestBytes.subarray(0, 4 + size));
        requestBytes = requestBytes.subarray(4 + size);
      }
    });
    let responseBytes = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      responseBytes = Buffer.concat([responseBytes, chunk]);
      while (responseBytes.length >= 4 && responseBytes.length >= 4 + responseBytes.readInt32BE(0)) {
        const size = responseBytes.readInt32BE(0);
        let frame: Buffer = Buffer.from(responseBytes.subarray(0, 4 + size));
        responseBytes = responseBytes.subarray(4 + size);
        const correlationId = frame.readInt32BE(4);
        const metadataVersion = metadataVersions.get(correlationId);
        if (metadataVersion !== undefined) {
          metadataVersions.delete(correlationId);
          const headerVersion = responseHeaderVersion(3, metadataVersion);
          const reader = new ByteReader(frame, 4);
          readResponseHeader(reader, headerVersion);
          const metadata = decodeMetadataResponse(reader, metadataVersion);
          for (const broker of metadata.brokers) broker.port = proxyPort;
          const writer = new ByteWriter();
          writer.writeInt32(0);
          writeResponseHeader(writer, correlationId, headerVersion);
          encodeMetadataResponse(writer, metadataVersion, metadata);
          frame = writer.toBuffer();
          frame.writeInt32BE(frame.length - 4, 0);
        }
        if (fetchIds.delete(correlationId) && !corrupted && size > 2_000) {
          frame[frame.length - 1] = frame[frame.length - 1]! ^ 0xff;
          corrupted = true;
        }
        client.write(frame);
      }
    });
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxyPort = (server.address() as { port: number }).port;
  return {
    port: proxyPort,
    corrupted: () => corrupt && corrupted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('consumer and a corrupt batch on the wire', () => {
  it('hands out the records before it, then throws KafkaCorruptRecordError; a seek past it continues', async () => {
    let brokerPort = 0;
    const proxy = await startCorruptingProxy(() => brokerPort);
    const corruptBroker = await BrokerProcess.start();
    brokerPort = corruptBroker.port;
    try {
      const topic = 'consume-corrupt';
      const producer = createProducer({ bootstrapServers: [corruptBroker.address], acks: 1 }); // direct: not through the proxy
      for (let b = 0; b < 4; b++) await producer.send(topic, Array.from({ length: 50 }, (_, i) => ({ value: `batch${b}-record${i}-${'p'.repeat(40)}`, partition: 0 })));
      await producer.close();

      const reader = createConsumer({ bootstrapServers: [`127.0.0.1:${proxy.port}`], maxWaitMs: 100, requestTimeoutMs: 5_000 });
      consumers.push(reader);
      reader.assign([{ topic, partition: 0, offset: 0 }]);
      const seen: number[] = [];
      let caught: unknown = null;
      try {
        for await (const record of reader.records({ idleTimeoutMs: IDLE_MS })) seen.push(Number(record.offset));
      } catch (error) {
        caught = error;
      }
      expect(proxy.corrupted()).toBe(true);
      expect(caught).toBeInstanceOf(KafkaCorruptRecordError);
      expect((caught as Error).message).toMatch(/^corrupt record batch in consume-corrupt-0 at offset 150: CRC-32C mismatch/);
      expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => i)); // the three good batches first
      expect(reader.position(topic, 0)).toBe(150n);
      // The partition waits for a seek; past the bad batch the data flows (not corrupted again).
      expect(await take(reader, 1, 300)).toEqual([]);
      reader.seek(topic, 0, 150);
      expect((await take(reader, 50)).map((r) => r.value?.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `batch3-record${i}-${'p'.repeat(40)}`));
      await reader.close();
    } finally {
      await corruptBroker.cleanup();
      await proxy.close();
    }
  });
});

describe('consumer and a broker restart', () => {
  it('retriable connection errors: reconnects with backoff and continues at its position', async () => {
    let brokerPort = 0;
    const proxy = await startCorruptingProxy(() => brokerPort, false);
    const restarting = await BrokerProcess.start();
    brokerPort = restarting.port;
    try {
      const topic = 'consume-restart';
      const send = async (from: number, count: number): Promise<void> => {
        const producer = createProducer({ bootstrapServers: [restarting.address], acks: 'all' });
        await producer.send(topic, Array.from({ length: count }, (_, i) => ({ value: `r${from + i}`, partition: 0 })));
        await producer.close();
      };
      await send(0, 100);
      const reader = createConsumer({ bootstrapServers: [`127.0.0.1:${proxy.port}`], maxWaitMs: 100, requestTimeoutMs: 2_000, retryBackoffMs: 20, retryBackoffMaxMs: 200 });
      consumers.push(reader);
      reader.assign([{ topic, partition: 0, offset: 0 }]);
      const first = await take(reader, 100);
      await restarting.stop();
      const during = take(reader, 50, 20_000); // waits through the outage
      await restarting.restart();
      brokerPort = restarting.port;
      await send(100, 50);
      const second = await during;
      expect([...first, ...second].map((r) => r.value?.toString())).toEqual(Array.from({ length: 150 }, (_, i) => `r${i}`));
      expect(reader.position(topic, 0)).toBe(150n);
      await reader.close();
    } finally {
      await restarting.cleanup();
      await proxy.close();
    }
  });
});
