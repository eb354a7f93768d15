import { afterEach, describe, expect, it } from 'vitest';
import { defaultBrokerConfig } from '../engine/brokerConfig.js';
import { ManualClock } from '../engine/clock.js';
import { CONSUMER_OFFSETS_TOPIC, OffsetStore, javaStringHashCode } from '../engine/groups/offsetStore.js';
import { LogManager } from '../engine/log/logManager.js';
import { MemoryLogger } from '../engine/logger.js';
import { MemoryMetadataStore } from '../engine/metadataStore.js';
import { TopicManager } from '../engine/topicManager.js';
import { temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openStore(dataDir: string, metadata: MemoryMetadataStore, clock: ManualClock): Promise<{ store: OffsetStore; close: () => Promise<void>; topics: TopicManager }> {
  const config = { ...defaultBrokerConfig(), dataDir };
  const logger = new MemoryLogger();
  let topics: TopicManager | null = null;
  const logs = await LogManager.open({ dataDir, logger, clock, openExistingLogs: false, configFor: (topic) => topics!.logConfigOf(topic) });
  topics = new TopicManager(metadata, logs, config, clock, logger);
  await topics.load((await metadata.load()).topics);
  const store = new OffsetStore(topics, { numPartitions: 5, topicConfigs: { 'cleanup.policy': 'compact' } }, clock, logger);
  await store.start();
  return { store, topics, close: () => logs.close() };
}

describe('OffsetStore', () => {
  it("places groups as Kafka does: abs(String.hashCode) modulo the partition count", () => {
    expect(javaStringHashCode('hello')).toBe(99162322);
    expect(javaStringHashCode('')).toBe(0);
    expect(javaStringHashCode('polygenelubricants')).toBe(-2147483648);
  });

  it('keeps committed offsets and group metadata across a restart, read back from __consumer_offsets', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const metadata = new MemoryMetadataStore();
    const clock = new ManualClock();
    const first = await openStore(dir.path, metadata, clock);
    expect(first.topics.get(CONSUMER_OFFSETS_TOPIC)?.partitions).toBe(5);
    expect(first.topics.get(CONSUMER_OFFSETS_TOPIC)?.settings.log.cleanupPolicy).toBe('compact');
    await first.store.commit('orders-app', [
      { topic: 'orders', partition: 0, offset: 42, leaderEpoch: 0, metadata: '' },
      { topic: 'orders', partition: 1, offset: 7, leaderEpoch: -1, metadata: 'note' },
    ]);
    await first.store.commit('orders-app', [{ topic: 'orders', partition: 0, offset: 50, leaderEpoch: 0, metadata: '' }]);
    await first.store.commit('billing', [{ topic: 'orders', partition: 0, offset: 3, leaderEpoch: 0, metadata: '' }]);
    await first.store.storeGroupMetadata('orders-app', { protocolType: 'consumer', generation: 4, protocol: 'range', leader: 'm1', currentStateTimestamp: -1n, members: [] });
    await first.store.deleteOffsets('billing');
    await first.close();

    const second = await openStore(dir.path, metadata, clock);
    expect(second.store.committed('orders-app', 'orders', 0)).toMatchObject({ offset: 50, leaderEpoch: 0 });
    expect(second.store.committed('orders-app', 'orders', 1)).toMatchObject({ offset: 7, metadata: 'note', leaderEpoch: -1 });
    expect(second.store.committed('billing', 'orders', 0)).toBeUndefined();
    expect(second.store.storedGroups().get('orders-app')).toMatchObject({ generation: 4, protocol: 'range', leader: 'm1' });
    // Every record of a group sits in the one partition Kafka would use.
    const partition = second.store.partitionFor('orders-app');
    for (let p = 0; p < 5; p++) {
      const log = second.topics.partition(CONSUMER_OFFSETS_TOPIC, p)!.log;
      if (p === partition) expect(log.logEndOffset).toBeGreaterThanOrEqual(4);
    }
    await second.close();
  });

  it('expires the offsets of groups that stayed empty past the retention, and only those', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const clock = new ManualClock();
    const { store, close } = await openStore(dir.path, new MemoryMetadataStore(), clock);
    await store.commit('idle', [{ topic: 't', partition: 0, offset: 1, leaderEpoch: -1, metadata: '' }]);
    await store.commit('busy', [{ topic: 't', partition: 0, offset: 1, leaderEpoch: -1, metadata: '' }]);
    clock.advance(8 * 24 * 60 * 60 * 1000);
    await store.commit('recent', [{ topic: 't', partition: 0, offset: 1, leaderEpoch: -1, metadata: '' }]);
    const expired = await store.expireOffsets(7 * 24 * 60 * 60 * 1000, (group) => group !== 'busy');
    expect(expired).toBe(1);
    expect(store.committed('idle', 't', 0)).toBeUndefined();
    expect(store.committed('busy', 't', 0)).toBeDefined();
    expect(store.committed('recent', 't', 0)).toBeDefined();
    await close();
  });
});
