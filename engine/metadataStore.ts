// Cluster metadata the broker must not lose: topics (name, id, partition count, config overrides)
// and the producer-id allocation. One interface, two backends: an embedded file store for a
// single node (cluster/embeddedMetadataStore.ts) and etcd for a cluster (later). Every write is
// durable when its promise resolves.

export interface TopicRecord {
  name: string;
  /** Kafka's topic id, a UUID string. */
  topicId: string;
  partitions: number;
  /** Topic config overrides by Kafka name; defaults are not stored. */
  configs: Record<string, string>;
  createdAtMs: number;
}

export interface MetadataSnapshot {
  topics: TopicRecord[];
  /** The next producer id never handed out. */
  nextProducerId: number;
}

export interface MetadataStore {
  load(): Promise<MetadataSnapshot>;
  /** Creates or replaces a topic record. */
  putTopic(topic: TopicRecord): Promise<void>;
  deleteTopic(name: string): Promise<void>;
  /** Reserves `count` producer ids; they are never handed out again, even after a crash. */
  reserveProducerIds(count: number): Promise<{ first: number; last: number }>;
  close(): Promise<void>;
}

/** Keeps everything in memory: for tests, and for brokers that need nothing to survive. */
export class MemoryMetadataStore implements MetadataStore {
  private readonly topics = new Map<string, TopicRecord>();
  private nextProducerId = 0;

  load(): Promise<MetadataSnapshot> {
    return Promise.resolve({ topics: [...this.topics.values()].map((topic) => structuredClone(topic)), nextProducerId: this.nextProducerId });
  }

  putTopic(topic: TopicRecord): Promise<void> {
    this.topics.set(topic.name, structuredClone(topic));
    return Promise.resolve();
  }

  deleteTopic(name: string): Promise<void> {
    this.topics.delete(name);
    return Promise.resolve();
  }

  reserveProducerIds(count: number): Promise<{ first: number; last: number }> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
    const first = this.nextProducerId;
    this.nextProducerId += count;
    return Promise.resolve({ first, last: first + count - 1 });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
