// A broker node end to end in this process: the embedded metadata store, the listener and the
// broker, driven by kafkajs.
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { installSignalHandlers, startBrokerNode, type BrokerNode } from '../server/brokerNode.js';
import { defaultBrokerConfig, type BrokerConfig } from '../engine/brokerConfig.js';
import { MemoryLogger } from '../engine/logger.js';
import { temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDir(): Promise<string> {
  const dir = await temporaryDirectory('tidelog-node-');
  cleanups.push(dir.remove);
  return dir.path;
}

/** Port 0 with the advertised address following the listener, as `tidelog broker start` sets it. */
function nodeConfig(dir: string, overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return { ...defaultBrokerConfig(), dataDir: dir, port: 0, advertisedHost: '', advertisedPort: 0, ...overrides };
}

async function startNode(config: BrokerConfig): Promise<{ node: BrokerNode; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const node = await startBrokerNode({ config, logger, shutdownGraceMs: 5_000 });
  cleanups.push(() => node.stop());
  return { node, logger };
}

function kafkaFor(node: BrokerNode): Kafka {
  return new Kafka({ clientId: 'broker-node-test', brokers: [`127.0.0.1:${node.port}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
}

describe('startBrokerNode', () => {
  it('binds port 0, exposes the bound port and advertises it, so a Kafka client can work through it', async () => {
    const { node, logger } = await startNode(nodeConfig(await dataDir()));
    expect(node.port).toBeGreaterThan(0);
    expect(node.config).toMatchObject({ port: node.port, advertisedHost: '127.0.0.1', advertisedPort: node.port });
    const started = logger.lines.filter((line) => line.message === 'broker started');
    expect(started).toHaveLength(1);
    expect(started[0]!.fields).toMatchObject({ nodeId: 0, listener: `127.0.0.1:${node.port}`, advertisedListener: `127.0.0.1:${node.port}` });

    const admin = kafkaFor(node).admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster.brokers).toEqual([{ nodeId: 0, host: '127.0.0.1', port: node.port }]);
      await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 2 }] });
      const producer = kafkaFor(node).producer();
      await producer.connect();
      const [result] = await producer.send({ topic: 'orders', messages: [{ key: 'k', value: 'v', partition: 1 }] });
      await producer.disconnect();
      expect(result).toMatchObject({ topicName: 'orders', partition: 1, errorCode: 0, baseOffset: '0' });
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps an explicit advertised address', async () => {
    const { node } = await startNode(nodeConfig(await dataDir(), { advertisedHost: 'broker.example', advertisedPort: 19092 }));
    expect(node.config).toMatchObject({ advertisedHost: 'broker.example', advertisedPort: 19092, port: node.port });
  });

  it('stops gracefully (logged), and a node restarted on the same data dir has its topics and records', async () => {
    const dir = await dataDir();
    const first = await startNode(nodeConfig(dir));
    const admin = kafkaFor(first.node).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'audit', numPartitions: 3 }] });
    const producer = kafkaFor(first.node).producer();
    await producer.connect();
    await producer.send({ topic: 'audit', messages: [{ value: 'a', partition: 2 }, { value: 'b', partition: 2 }] });
    await producer.disconnect();
    await admin.disconnect();

    const stopping = first.node.stop();
    expect(first.node.stop()).toBe(stopping);
    await stopping;
    await first.node.stopped;
    expect(first.logger.lines.filter((line) => line.message === 'broker stopped')).toHaveLength(1);
    const poolLines = first.logger.lines.filter((line) => line.message === 'worker pool stopped');
    expect(poolLines).toHaveLength(1);
    expect(poolLines[0]!.fields).toMatchObject({ failed: 0, timedOut: 0, rejected: 0 });
    expect(typeof poolLines[0]!.fields.completed).toBe('number');

    const second = await startNode(nodeConfig(dir));
    const again = kafkaFor(second.node).admin();
    await again.connect();
    try {
      expect(await again.listTopics()).toEqual(['audit']);
      const offsets = await again.fetchTopicOffsets('audit');
      expect(offsets.find((entry) => entry.partition === 2)).toMatchObject({ high: '2' });
    } finally {
      await again.disconnect();
    }
  });

  it('refuses a second node on a data dir in use, and leaves the first one serving', async () => {
    const dir = await dataDir();
    const { node } = await startNode(nodeConfig(dir));
    await expect(startBrokerNode({ config: nodeConfig(dir), logger: new MemoryLogger() })).rejects.toMatchObject({ reason: 'locked' });
    const admin = kafkaFor(node).admin();
    await admin.connect();
    expect(await admin.listTopics()).toEqual([]);
    await admin.disconnect();
  });

  it('releases the data dir when the listener cannot bind, so a later start succeeds', async () => {
    const dir = await dataDir();
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as { port: number };
    try {
      await expect(startBrokerNode({ config: nodeConfig(dir, { port }), logger: new MemoryLogger() })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      blocker.close();
    }
    const { node } = await startNode(nodeConfig(dir));
    expect(node.port).toBeGreaterThan(0);
  });
});

describe('installSignalHandlers', () => {
  it('stops gracefully and exits 0 on the first signal; exits 1 at once on a second', async () => {
    const { node } = await startNode(nodeConfig(await dataDir()));
    const exits: number[] = [];
    const exited = new Promise<void>((resolve) => {
      const remove = installSignalHandlers(node, {
        logger: new MemoryLogger(),
        signals: ['SIGUSR2'],
        exit: (code) => {
          exits.push(code);
          if (code === 0) {
            remove();
            resolve();
          }
        },
      });
      cleanups.push(async () => remove());
    });
    process.emit('SIGUSR2', 'SIGUSR2');
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(exits).toEqual([1]); // the second signal does not wait for the stop
    await exited;
    expect(exits).toEqual([1, 0]); // (a real process would have ended at the 1)
    await node.stopped;
  });
});
