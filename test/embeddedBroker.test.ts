// The embedded broker users import from the package ('tidelog/broker', the compiled export):
// two in one process at once, each serving kafkajs, kcat and the bundled client; Kafka-named
// configs apply, an unknown one is refused; stop() removes its temporary directory and is
// idempotent; a directory the caller gave is kept.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type EmbeddedBroker } from 'tidelog/broker';
import { createConsumer, createProducer } from 'tidelog/client';
import { kafkajs, kcat } from './support/brokerProcess.js';
import { temporaryDirectory } from './support/logs.js';

const started: EmbeddedBroker[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const broker of started.splice(0)) await broker.stop();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function embedded(options: Parameters<typeof startBroker>[0] = {}): Promise<EmbeddedBroker> {
  const broker = await startBroker(options);
  started.push(broker);
  return broker;
}

describe("startBroker from 'tidelog/broker'", () => {
  it('runs two brokers in one process, each serving kafkajs, kcat and the bundled client, with Kafka-named configs', async () => {
    const [first, second] = await Promise.all([embedded({ configs: { 'num.partitions': 3 } }), embedded()]);
    expect(first.port).not.toBe(second.port);
    expect(first.dataDir).not.toBe(second.dataDir);
    expect(first.bootstrapServers).toBe(`127.0.0.1:${first.port}`);

    // kafkajs on the first: auto-created with num.partitions=3, then read back.
    const kafka = new kafkajs.Kafka({ clientId: 'embedded-test', brokers: [first.bootstrapServers], logLevel: kafkajs.logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'events', messages: [{ key: 'a', value: 'one' }, { key: 'b', value: 'two' }] });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: ['events'] });
    await admin.disconnect();
    expect(metadata.topics[0]!.partitions).toHaveLength(3);

    // kcat on the second.
    await kcat(second.bootstrapServers, ['-P', '-t', 'lines', '-K', ':'], { input: 'k1:hello\nk2:world\n' });
    const consumed = await kcat(second.bootstrapServers, ['-C', '-t', 'lines', '-o', 'beginning', '-e', '-f', '%k=%s\\n']);
    expect(consumed.stdout.toString('utf8').trim().split('\n')).toEqual(['k1=hello', 'k2=world']);

    // The bundled client on the first again: what kafkajs wrote, and one more record.
    const bundled = createProducer({ bootstrapServers: [first.bootstrapServers] });
    await bundled.send('events', [{ key: 'c', value: 'three' }]);
    await bundled.close();
    const consumer = createConsumer({ bootstrapServers: [first.bootstrapServers] });
    consumer.assign([0, 1, 2].map((partition) => ({ topic: 'events', partition, offset: 0 })));
    const values: string[] = [];
    for await (const record of consumer.records({ idleTimeoutMs: 1_000 })) values.push(String(record.value));
    await consumer.close();
    expect(values.sort()).toEqual(['one', 'three', 'two']);
  });

  it('removes its temporary directory at stop, stops once however often asked, and keeps a directory the caller gave', async () => {
    const temporary = await startBroker();
    expect(existsSync(temporary.dataDir)).toBe(true);
    await Promise.all([temporary.stop(), temporary.stop()]);
    expect(existsSync(temporary.dataDir)).toBe(false);

    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const kept = await startBroker({ dataDir: dir.path });
    await kept.stop();
    expect(existsSync(dir.path)).toBe(true);
  });

  it('refuses a config name it does not know, and a bad value, before binding anything', async () => {
    await expect(startBroker({ configs: { 'no.such.config': 1 } })).rejects.toThrow(/unknown broker config no\.such\.config/);
    await expect(startBroker({ configs: { 'num.partitions': 0 } })).rejects.toThrow(/num\.partitions/);
  });
});
