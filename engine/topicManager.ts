// Topics of one broker: names, ids, partition counts and config overrides (kept in the metadata
// store), and the partition logs behind them (kept by the LogManager). Every change is written
// to the metadata store before it takes effect, so a restart sees what clients were told.
import { randomUUID } from 'node:crypto';
import { MAX_TOPIC_NAME_LENGTH } from '../common/limits.js';
import type { BrokerConfig } from './brokerConfig.js';
import type { Clock } from './clock.js';
import { checkTopicConfigRelations } from './configRelations.js';
import { ConfigError } from './errors.js';
import type { LogManager } from './log/logManager.js';
import type { Logger } from './logger.js';
import type { MetadataStore, TopicRecord } from './metadataStore.js';
import type { PartitionLog } from './log/partitionLog.js';
import { Partition } from './partition/partition.js';
import { TOPIC_CONFIGS, topicSettings, validateTopicConfigs, type ConfigMap, type TopicSettings } from './topicConfig.js';

/** Kafka error codes topic operations answer with. */
export const TopicErrorCode = {
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_TOPIC_EXCEPTION: 17,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REQUEST: 42,
  INVALID_CONFIG: 40,
} as const;

export class TopicError extends Error {
  override readonly name = 'TopicError';
  constructor(
    readonly kafkaErrorCode: number,
    message: string,
  ) {
    super(message);
  }
}

export { MAX_TOPIC_NAME_LENGTH };
/** Partitions one topic may have: each is a directory, an open file and memory. */
export const MAX_PARTITIONS_PER_TOPIC = 10_000;
const LEGAL_TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;
/** Internal topics (the group coordinator's offsets) are marked so in Metadata. */
export const INTERNAL_TOPICS = new Set(['__consumer_offsets', '__transaction_state']);

/** Why `name` is not a valid topic name, or null (Kafka's rules). */
export function invalidTopicName(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return `topic name cannot be "${name}"`;
  if (name.length > MAX_TOPIC_NAME_LENGTH) return `topic name is longer than ${MAX_TOPIC_NAME_LENGTH} characters`;
  if (!LEGAL_TOPIC_NAME.test(name)) return `topic name ${JSON.stringify(name)} has characters other than ASCII letters, digits, '.', '_' and '-'`;
  return null;
}

export interface Topic {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: number;
  readonly configs: Readonly<Record<string, string>>;
  readonly settings: TopicSettings;
}

export type IncrementalConfigOp = { name: string; op: 'set'; value: string } | { name: string; op: 'delete' } | { name: string; op: 'append' | 'subtract'; value: string };

export class TopicManager {
  private readonly topics = new Map<string, Topic>();
  /** Partitions handed out so far, by topic and index; each wraps the log open for it. */
  private readonly partitions = new Map<string, Partition>();
  /** Topics being created or deleted right now: a second request for the same name waits its turn. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: MetadataStore,
    private readonly logs: LogManager,
    private readonly config: BrokerConfig,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Opens the logs of every topic the store knows; reports partition directories nobody owns. */
  async load(records: readonly TopicRecord[]): Promise<void> {
    for (const record of records) {
      const topic = this.topicFrom(record);
      this.topics.set(record.name, topic);
      await this.logs.createLogs(record.name, Array.from({ length: record.partitions }, (_, partition) => partition));
    }
    for (const { topic, partition } of this.logs.directoriesFound) {
      const known = this.topics.get(topic);
      if (known === undefined || partition >= known.partitions) {
        this.logger.warn('partition directory belongs to no topic; left untouched', { topic, partition, dataDir: this.logs.dataDir });
      }
    }
  }

  private topicFrom(record: TopicRecord): Topic {
    return { name: record.name, topicId: record.topicId, partitions: record.partitions, configs: { ...record.configs }, settings: topicSettings(record.configs, this.config.topicDefaults) };
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  list(): Topic[] {
    return [...this.topics.values()];
  }

  /** The log config a partition of `topic` opens with (used by the LogManager). */
  logConfigOf(topic: string): TopicSettings['log'] {
    const known = this.topics.get(topic);
    return (known?.settings ?? topicSettings({}, this.config.topicDefaults)).log;
  }

  /** A partition of a known topic with its log open, or undefined. */
  partition(topic: string, index: number): Partition | undefined {
    const log = this.partitionLog(topic, index);
    if (log === undefined) return undefined;
    const key = partitionKey(topic, index);
    const known = this.partitions.get(key);
    // A topic deleted and created again has a new log: its partition starts afresh.
    if (known !== undefined && known.log === log) return known;
    const created = new Partition(topic, index, log);
    this.partitions.set(key, created);
    return created;
  }

  /** Every partition of every topic whose log is open, in topic order. */
  *openPartitions(): Generator<{ topic: Topic; partition: Partition }> {
    for (const topic of this.topics.values()) {
      for (let index = 0; index < topic.partitions; index++) {
        const partition = this.partition(topic.name, index);
        if (partition !== undefined) yield { topic, partition };
      }
    }
  }

  private partitionLog(topic: string, partition: number): PartitionLog | undefined {
    const known = this.topics.get(topic);
    if (known === undefined || partition < 0 || partition >= known.partitions) return undefined;
    return this.logs.getLog(topic, partition);
  }

  /** Runs operations on one topic name one at a time. */
  private async exclusive<T>(name: string, operation: () => Promise<T>): Promise<T> {
    while (this.busy.has(name)) await this.busy.get(name)!.catch(() => undefined);
    const running = operation();
    this.busy.set(name, running);
    try {
      return await running;
    } finally {
      this.busy.delete(name);
    }
  }

  /**
   * Creates a topic. partitions/replicationFactor of -1 mean the broker defaults. Throws
   * TopicError with Kafka's code for every refusal; with validateOnly, checks and returns.
   */
  async create(name: string, partitions: number, replicationFactor: number, configs: ConfigMap, options: { validateOnly?: boolean } = {}): Promise<Topic> {
    const invalidName = invalidTopicName(name);
    if (invalidName !== null) throw new TopicError(TopicErrorCode.INVALID_TOPIC_EXCEPTION, invalidName);
    const count = partitions === -1 ? this.config.numPartitions : partitions;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS_PER_TOPIC) {
      throw new TopicError(TopicErrorCode.INVALID_PARTITIONS, `number of partitions must be in [1, ${MAX_PARTITIONS_PER_TOPIC}], got ${partitions}`);
    }
    const replicas = replicationFactor === -1 ? this.config.defaultReplicationFactor : replicationFactor;
    if (replicas !== 1) {
      throw new TopicError(TopicErrorCode.INVALID_REPLICATION_FACTOR, `replication factor must be 1 on a single broker, got ${replicationFactor}`);
    }
    const overrides = this.checkedConfigs(configs);
    return this.exclusive(name, async () => {
      if (this.topics.has(name)) throw new TopicError(TopicErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
      const record: TopicRecord = { name, topicId: randomUUID(), partitions: count, configs: overrides, createdAtMs: this.clock.nowMs() };
      const topic = this.topicFrom(record);
      if (options.validateOnly === true) return topic;
      await this.store.putTopic(record);
      this.topics.set(name, topic);
      await this.logs.createLogs(name, Array.from({ length: count }, (_, partition) => partition));
      this.logger.info('created topic', { topic: name, partitions: count, configs: JSON.stringify(overrides) });
      return topic;
    });
  }

  private checkedConfigs(configs: ConfigMap): Record<string, string> {
    try {
      validateTopicConfigs(configs);
      // Also check they combine with the broker defaults into a valid log config that fits the broker's.
      checkTopicConfigRelations(topicSettings(configs, this.config.topicDefaults).log, this.config);
    } catch (error) {
      if (error instanceof ConfigError) throw new TopicError(TopicErrorCode.INVALID_CONFIG, error.message);
      throw error;
    }
    return { ...configs };
  }

  async delete(name: string): Promise<void> {
    await this.exclusive(name, async () => {
      const topic = this.topics.get(name);
      if (topic === undefined) throw new TopicError(TopicErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
      await this.store.deleteTopic(name);
      this.topics.delete(name);
      for (let partition = 0; partition < topic.partitions; partition++) {
        this.partitions.delete(partitionKey(name, partition));
        await this.logs.removeLog(name, partition);
      }
      this.logger.info('deleted topic', { topic: name, partitions: topic.partitions });
    });
  }

  /** Raises a topic's partition count to `total` (Kafka never lowers it). */
  async addPartitions(name: string, total: number, options: { validateOnly?: boolean } = {}): Promise<Topic> {
    return this.exclusive(name, async () => {
      const topic = this.topics.get(name);
      if (topic === undefined) throw new TopicError(TopicErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
      if (!Number.isInteger(total) || total <= topic.partitions || total > MAX_PARTITIONS_PER_TOPIC) {
        throw new TopicError(TopicErrorCode.INVALID_PARTITIONS, `topic ${name} has ${topic.partitions} partitions; the new count must be in [${topic.partitions + 1}, ${MAX_PARTITIONS_PER_TOPIC}], got ${total}`);
      }
      const record: TopicRecord = { name, topicId: topic.topicId, partitions: total, configs: { ...topic.configs }, createdAtMs: this.clock.nowMs() };
      const updated = this.topicFrom(record);
      if (options.validateOnly === true) return updated;
      await this.store.putTopic(record);
      this.topics.set(name, updated);
      await this.logs.createLogs(name, Array.from({ length: total - topic.partitions }, (_, i) => topic.partitions + i));
      this.logger.info('added partitions', { topic: name, from: topic.partitions, to: total });
      return updated;
    });
  }

  /** Replaces a topic's overrides (AlterConfigs semantics: unspecified configs return to defaults). */
  async replaceConfigs(name: string, configs: ConfigMap, options: { validateOnly?: boolean } = {}): Promise<Topic> {
    return this.applyConfigs(name, () => ({ ...configs }), options);
  }

  /** Applies set/delete/append/subtract operations (IncrementalAlterConfigs semantics). */
  async alterConfigs(name: string, operations: readonly IncrementalConfigOp[], options: { validateOnly?: boolean } = {}): Promise<Topic> {
    return this.applyConfigs(
      name,
      (current) => {
        const next = { ...current };
        for (const operation of operations) {
          if (!TOPIC_CONFIGS.has(operation.name)) throw new TopicError(TopicErrorCode.INVALID_CONFIG, `unknown topic config ${operation.name}`);
          if (operation.op === 'set') next[operation.name] = operation.value;
          else if (operation.op === 'delete') delete next[operation.name];
          else {
            // Only list-valued configs take append/subtract; cleanup.policy is the one we have.
            if (operation.name !== 'cleanup.policy') throw new TopicError(TopicErrorCode.INVALID_CONFIG, `${operation.name} is not a list; ${operation.op} applies to cleanup.policy only`);
            const current = next[operation.name] ?? this.config.topicDefaults['log.cleanup.policy'] ?? 'delete';
            const items = new Set(current.split(',').map((item) => item.trim()).filter((item) => item.length > 0));
            for (const value of operation.value.split(',')) {
              if (operation.op === 'append') items.add(value.trim());
              else items.delete(value.trim());
            }
            next[operation.name] = [...items].join(',');
          }
        }
        return next;
      },
      options,
    );
  }

  private async applyConfigs(name: string, change: (current: Record<string, string>) => Record<string, string>, options: { validateOnly?: boolean }): Promise<Topic> {
    return this.exclusive(name, async () => {
      const topic = this.topics.get(name);
      if (topic === undefined) throw new TopicError(TopicErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} does not exist`);
      const configs = this.checkedConfigs(change({ ...topic.configs }));
      const record: TopicRecord = { name, topicId: topic.topicId, partitions: topic.partitions, configs, createdAtMs: this.clock.nowMs() };
      const updated = this.topicFrom(record);
      if (options.validateOnly === true) return updated;
      await this.store.putTopic(record);
      this.topics.set(name, updated);
      for (let partition = 0; partition < topic.partitions; partition++) this.logs.getLog(name, partition)?.reconfigure(updated.settings.log);
      this.logger.info('altered topic configs', { topic: name, configs: JSON.stringify(configs) });
      return updated;
    });
  }
}

function partitionKey(topic: string, index: number): string {
  return `${topic}\u0000${index}`;
}
