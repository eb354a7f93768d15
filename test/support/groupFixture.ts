// A broker child process set up for fast consumer-group tests (no initial rebalance delay, 1 s
// minimum session), and bundled-client members of its groups that are closed with it.
import { afterAll, beforeAll } from 'vitest';
import { createConsumer, type Consumer, type SubscribeOptions } from '../../client/consumer/consumer.js';
import type { TopicPartition } from '../../client/types.js';
import { BrokerProcess, waitUntil } from './brokerProcess.js';

export const GROUP_OPTIONS: Omit<SubscribeOptions, 'groupId'> = { sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 5_000, heartbeatIntervalMs: 100, autoCommitIntervalMs: 200 };
export const GROUP_WAIT_MS = 20_000;

export const partitionKey = (tp: TopicPartition): string => `${tp.topic}-${tp.partition}`;

export interface GroupFixture {
  /** The broker of the enclosing describe block (started in its beforeAll). */
  broker(): BrokerProcess;
  /** A bundled consumer subscribed to `topic` in `groupId`, reading from the earliest offset. */
  member(topic: string, groupId: string, options?: Partial<SubscribeOptions>): Consumer;
  /** Closes `consumer` with the others at the end, for consumers made without member(). */
  adopt(consumer: Consumer): Consumer;
  /** Closes one member now (it leaves its group). */
  close(consumer: Consumer): Promise<void>;
  /** Closes every member made so far. */
  closeAll(): Promise<void>;
  /** Waits until the members' assignments are non-empty, disjoint, of one generation, and cover the topic. */
  waitForSplit(members: readonly Consumer[], topic: string, partitions: number): Promise<void>;
}

/** Registers beforeAll/afterAll in the calling describe block. */
export function useGroupBroker(options: { maxWaitMs: number }): GroupFixture {
  let broker: BrokerProcess | undefined;
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    broker = await BrokerProcess.start({ configs: { 'group.initial.rebalance.delay.ms': '0', 'group.min.session.timeout.ms': '1000' } });
  });

  afterAll(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.close()));
    await broker?.cleanup();
  });

  const started = (): BrokerProcess => {
    if (broker === undefined) throw new Error('the group broker is not started yet (use it inside a test)');
    return broker;
  };

  return {
    broker: started,
    member(topic, groupId, subscribeOptions = {}) {
      const consumer = createConsumer({ bootstrapServers: [started().address], autoOffsetReset: 'earliest', maxWaitMs: options.maxWaitMs, requestTimeoutMs: 5_000 });
      consumers.push(consumer);
      consumer.subscribe([topic], { groupId, ...GROUP_OPTIONS, ...subscribeOptions });
      return consumer;
    },
    adopt(consumer) {
      consumers.push(consumer);
      return consumer;
    },
    async close(consumer) {
      const at = consumers.indexOf(consumer);
      if (at >= 0) consumers.splice(at, 1);
      await consumer.close();
    },
    async closeAll() {
      await Promise.all(consumers.splice(0).map((consumer) => consumer.close()));
    },
    async waitForSplit(members, topic, partitions) {
      await waitUntil(() => {
        const all = members.map((m) => m.assignment().map(partitionKey));
        if (all.some((list) => list.length === 0)) return false;
        const keys = all.flat();
        const generations = new Set(members.map((m) => m.groupMembership!.generationId));
        return generations.size === 1 && keys.length === partitions && new Set(keys).size === partitions && keys.every((k) => k.startsWith(`${topic}-`));
      }, GROUP_WAIT_MS, `${members.length} members to split ${partitions} partitions of ${topic}`);
    },
  };
}
