// The bundled producer end to end: a broker child process (dist/), records read back by kcat and
// by a raw Fetch client. Run `npm run build` first (npm test does).
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerConnection, ApiKey } from '../client/connection.js';
import { Cluster } from '../client/cluster.js';
import { KafkaDeliveryError, KafkaProtocolError, KafkaRequestTimeoutError, KafkaUnsupportedApiError } from '../client/errors.js';
import { partitionForKey } from '../client/partitioner.js';
import { createProducer, type ProducerRecord } from '../client/producer.js';
import { ErrorCode, errorCodeName } from '../protocol/errors.js';
import { BrokerProcess, waitUntil, withRawClient } from './support/brokerProcess.js';
import { byPartition, fromDecoded, kcatConsume, type ReadRecord } from './e2e/records.js';
import { waitFor } from './support/waitFor.js';

const PARTITIONS = 4;
let broker: BrokerProcess;

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'num.partitions': String(PARTITIONS) } });
});

afterAll(async () => {
  await broker?.cleanup();
});

async function readAll(topic: string, partitions: number): Promise<ReadRecord[]> {
  return withRawClient(broker, async (client) => {
    const all: ReadRecord[] = [];
    for (let p = 0; p < partitions; p++) all.push(...(await client.fetchAllRecords(topic, p)).map((record) => fromDecoded(p, record)));
    return all;
  });
}

describe('client connection', () => {
  it('negotiates min(schema max, broker max) per API and refuses an API the broker lacks', async () => {
    const connection = await BrokerConnection.connect({ host: '127.0.0.1', port: broker.port, requiredApis: [ApiKey.Produce] });
    try {
      expect(connection.versionOf(ApiKey.Produce)).toBe(8); // tidelog advertises 0-8, the schema 0-11
      expect(connection.versionOf(ApiKey.Metadata)).toBe(4);
      expect(connection.versionOf(ApiKey.InitProducerId)).toBe(1);
      expect(() => connection.versionOf(26)).toThrow(KafkaUnsupportedApiError); // EndTxn: not advertised
    } finally {
      await connection.close();
    }
    await expect(BrokerConnection.connect({ host: '127.0.0.1', port: broker.port, requiredApis: [26] })).rejects.toThrow(/lacks APIs this client needs: EndTxn \(not served\)/);
  });

  it('a request the broker never answers times out with KafkaRequestTimeoutError', async () => {
    const server: Server = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const started = Date.now();
      await expect(BrokerConnection.connect({ host: '127.0.0.1', port, requestTimeoutMs: 200 })).rejects.toThrow(KafkaRequestTimeoutError);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      server.close();
    }
  });

  it('a Kafka error code surfaces as KafkaProtocolError with its name and retriable flag', async () => {
    const cluster = new Cluster({ bootstrapServers: [broker.address], requestTimeoutMs: 2_000 });
    try {
      const error = await cluster.topic('bad topic name!').then(() => null, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(KafkaProtocolError);
      const protocolError = error as KafkaProtocolError;
      expect(protocolError.code).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
      expect(protocolError.codeName).toBe(errorCodeName(ErrorCode.INVALID_TOPIC_EXCEPTION));
      expect(protocolError.retriable).toBe(false);
    } finally {
      await cluster.close();
    }
  });
});

describe('client producer', () => {
  it('100,000 keyed records with headers and timestamps read back by kcat and a raw Fetch, per-key order kept', async () => {
    const topic = 'client-bulk';
    const keys = 97;
    const count = 100_000;
    const baseTimestamp = 1_700_000_000_000;
    const producer = createProducer({ bootstrapServers: [broker.address] });
    expect(producer.isIdempotent).toBe(true);
    const sent: ProducerRecord[] = [];
    for (let i = 0; i < count; i++) {
      const key = `key-${i % keys}`;
      sent.push({ key, value: `v-${key}-${Math.floor(i / keys)}`, headers: { seq: String(i), kind: i % 2 === 0 ? 'even' : 'odd' }, timestamp: baseTimestamp + i });
    }
    try {
      const sends = [];
      for (let i = 0; i < count; i += 1000) sends.push(producer.send(topic, sent.slice(i, i + 1000)));
      const results = (await Promise.all(sends)).flat();
      expect(results).toHaveLength(count);
      for (let i = 0; i < count; i++) expect(results[i]!.partition).toBe(partitionForKey(Buffer.from(sent[i]!.key as string), PARTITIONS));
    } finally {
      await producer.close();
    }
    const check = (records: ReadRecord[], reader: string): void => {
      expect(records, reader).toHaveLength(count);
      const lastSeqOfKey = new Map<string, number>();
      for (const [partition, list] of byPartition(records)) {
        list.forEach((record, index) => expect(record.offset).toBe(index));
        for (const record of list) {
          expect(partitionForKey(Buffer.from(record.key), PARTITIONS)).toBe(partition);
          const seq = Number(record.headers.find(([name]) => name === 'seq')?.[1]);
          const original = sent[seq]!;
          expect(record.key).toBe(original.key);
          expect(record.value).toBe(original.value);
          expect(record.timestamp).toBe(original.timestamp);
          expect(record.headers).toEqual([['seq', String(seq)], ['kind', seq % 2 === 0 ? 'even' : 'odd']]);
          const previous = lastSeqOfKey.get(record.key) ?? -1;
          expect(seq, `order of ${record.key}`).toBeGreaterThan(previous);
          lastSeqOfKey.set(record.key, seq);
        }
      }
    };
    check(await kcatConsume(broker, topic, 'beginning', [], 90_000), 'kcat');
    check(await readAll(topic, PARTITIONS), 'raw fetch');
  });

  it.each([
    { acks: 0 as const, idempotence: false },
    { acks: 1 as const, idempotence: false },
    { acks: 'all' as const, idempotence: false },
    { acks: 'all' as const, idempotence: true },
  ])('acks=$acks idempotence=$idempotence delivers every record once, with offsets (none for acks=0)', async ({ acks, idempotence }) => {
    const topic = `client-acks-${acks}-${idempotence}`;
    const producer = createProducer({ bootstrapServers: [broker.address], acks, idempotence, lingerMs: 1, batchSize: 4096 });
    const records = Array.from({ length: 5_000 }, (_, i) => ({ value: Buffer.from(`value-${i}`), partition: 1 }));
    let offsets: bigint[];
    try {
      offsets = (await producer.send(topic, records)).map((r) => r.offset);
    } finally {
      await producer.close();
    }
    if (acks === 0) expect(new Set(offsets)).toEqual(new Set([-1n]));
    else expect(offsets).toEqual(records.map((_, i) => BigInt(i)));
    const read = await withRawClient(broker, async (client) => {
      // acks=0: nothing says when the appends are done; wait for the log end to reach them.
      await waitFor(async () => (await client.listOffsets(topic, 1, -1n)).offset ?? -1n, {
        until: (end) => end >= BigInt(records.length),
        timeoutMs: 10_000,
        what: `the log end of ${topic}-1 to reach ${records.length}`,
        describe: (end) => `log end ${end}`,
      });
      return client.fetchAllRecords(topic, 1);
    });
    expect(read.map((r) => r.value?.toString())).toEqual(records.map((r) => r.value.toString()));
  });

  it('gzip batches read back by kcat', async () => {
    const topic = 'client-gzip';
    const producer = createProducer({ bootstrapServers: [broker.address], compression: 'gzip' });
    try {
      await producer.send(topic, Array.from({ length: 2_000 }, (_, i) => ({ key: 'k', value: `gz-${i}`.repeat(5) })));
    } finally {
      await producer.close();
    }
    const read = await kcatConsume(broker, topic, 'beginning');
    expect(read.map((r) => r.value)).toEqual(Array.from({ length: 2_000 }, (_, i) => `gz-${i}`.repeat(5)));
  });

  it('idempotent retries after connections drop mid-flight write every record exactly once, in order', async () => {
    const topic = 'client-idempotent-retry';
    const producer = createProducer({ bootstrapServers: [broker.address], lingerMs: 0, batchSize: 8 * 1024, retryBackoffMs: 10 });
    const total = 60_000;
    let drops = 0;
    try {
      await producer.sendOne(topic, { value: 'v-0', partition: 2 });
      const sends: Promise<unknown>[] = [];
      for (let start = 1; start < total; start += 500) {
        const records = Array.from({ length: Math.min(500, total - start) }, (_, i) => ({ value: `v-${start + i}`, partition: 2 }));
        sends.push(producer.send(topic, records));
        if (start % 10_000 === 1) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          drops += producer.dropConnectionsForTesting();
        }
      }
      await Promise.all(sends);
    } finally {
      await producer.close();
    }
    expect(drops).toBeGreaterThan(0);
    const read = await readAll(topic, PARTITIONS);
    expect(read.map((r) => r.value)).toEqual(Array.from({ length: total }, (_, i) => `v-${i}`));
  });

  it('bufferMemory bounds the buffers: send() waits for room while the broker is paused', async () => {
    const topic = 'client-buffer-memory';
    const batchSize = 16 * 1024;
    const bufferMemory = 4 * batchSize;
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 1, lingerMs: 0, batchSize, bufferMemory });
    try {
      await producer.sendOne(topic, { value: 'warm', partition: 0 });
      process.kill(broker.pid, 'SIGSTOP');
      let sent: Promise<unknown>;
      try {
        // About 330 KB of records: five times what bufferMemory holds.
        sent = producer.send(topic, Array.from({ length: 3_000 }, () => ({ value: Buffer.alloc(100, 7), partition: 0 })));
        await waitUntil(() => producer.bufferedBytes === bufferMemory, 5_000, 'the buffers to fill');
        for (let i = 0; i < 20; i++) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          expect(producer.bufferedBytes).toBeLessThanOrEqual(bufferMemory);
        }
      } finally {
        process.kill(broker.pid, 'SIGCONT');
      }
      await sent;
      expect(producer.bufferedBytes).toBeLessThanOrEqual(bufferMemory);
    } finally {
      await producer.close();
    }
    const read = await readAll(topic, 1);
    expect(read).toHaveLength(3_001);
  });

  it('a broker that goes away makes send() retry, then fail with KafkaDeliveryError within deliveryTimeoutMs', async () => {
    const doomed = await BrokerProcess.start();
    const producer = createProducer({ bootstrapServers: [doomed.address], acks: 1, requestTimeoutMs: 1_000, deliveryTimeoutMs: 3_000, retryBackoffMs: 50, connectTimeoutMs: 500 });
    try {
      await producer.sendOne('client-doomed', { value: 'before' });
      await doomed.kill();
      const started = Date.now();
      const error = await producer.sendOne('client-doomed', { value: 'after' }).then(() => null, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(KafkaDeliveryError);
      expect((error as Error).message).toMatch(/client-doomed-0 failed after deliveryTimeoutMs \(3000 ms\)/);
      expect(Date.now() - started).toBeLessThan(3_000 + 2_500);
    } finally {
      await producer.close().catch(() => undefined);
      await doomed.cleanup();
    }
  });
});
