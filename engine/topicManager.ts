// Topics of one broker: names, ids, partition counts and config overrides (kept in the metadata
// store), and the partition logs behind them (kept by the LogManager). Every change is written
// to the metadata store before it takes effect, so a restart sees what clients were told.
import { randomUUID } from 'node:crypto';
import { MAX_TOPIC_NAME_LENGTH } from '../common/limits.js';
import type { BrokerConfig } from './brokerConfig.js';
import type { Clock } from './clock.js';
import { checkTopicConfigRelations } from './configRelations.js';
import { ConfigError } from './errors.js';
import { checkDescriptorRoom, descriptorExhaustionError, DESCRIPTORS_PER_NEW_PARTITION } from './fileDescriptors.js';
import type { LogManager } from './log/logManager.js';
import type { Logger } from './logger.js';
import type { MetadataStore, TopicRecord } from './metadataStore.js';
import type { PartitionLog } from './log/partitionLog.js';
import { ErrorCode } from '../protocol/errors.js';
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
  /** max.broker.partitions would be passed. */
  POLICY_VIOLATION: ErrorCode.POLICY_VIOLATION,
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

/** What a creation does, for the refusal's message: "creating 6 partitions for topic t". */
interface PartitionChange {
  verb: 'creating' | 'adding';
  preposition: 'for' | 'to';
  topic: string;
}

export type IncrementalConfigOp = { name: string; op: 'set'; value: string } | { name: string; op: 'delete' } | { name: string; op: 'append' | 'subtract'; value: string };

export class TopicManager {
  private readonly topics = new Map<string, Topic>();
  /** Partitions handed out so far, by topic and index; each wraps the log open for it. */
  private readonly partitions = new Map<string, Partition>();
  /** Topics being created or deleted right now: a second request for the same name waits its turn. */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Partitions of all topics in `topics`, kept with it: what max.broker.partitions counts. */
  private partitionTotal = 0;
  /**
   * Partitions of creations past the limit check and not finished yet. Creations of different
   * names run at once, so each reserves its partitions when it passes the check, and two of them
   * cannot both pass on the same room.
   */
  private reservedPartitions = 0;

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
      this.setTopic(topic);
      await this.logs.createLogs(record.name, Array.from({ length: record.partitions }, (_, partition) => partition));
    }
    if (this.partitionTotal > this.config.maxBrokerPartitions) {
      // Kept: the limit governs creation only (as KIP-578 has it), never data already there.
      this.logger.warn('this broker holds more partitions than max.broker.partitions; new topics and partitions will be refused', { partitions: this.partitionTotal, maxBrokerPartitions: this.config.maxBrokerPartitions });
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

  /** Records a topic (new, or with a new partition count) and keeps the broker's partition count. */
  private setTopic(topic: Topic): void {
    this.partitionTotal += topic.partitions - (this.topics.get(topic.name)?.partitions ?? 0);
    this.topics.set(topic.name, topic);
  }

  private removeTopic(name: string): void {
    const known = this.topics.get(name);
    if (known === undefined) return;
    this.partitionTotal -= known.partitions;
    this.topics.delete(name);
  }

  /** Partitions of every topic this broker holds (internal ones included). */
  get partitionCount(): number {
    return this.partitionTotal;
  }

  /**
   * Refuses (POLICY_VIOLATION) `added` more partitions when they would take this broker past
   * max.broker.partitions, counting those that creations running now have reserved.
   */
  private checkBrokerPartitionLimit(added: number, change: PartitionChange): void {
    const current = this.partitionTotal + this.reservedPartitions;
    const limit = this.config.maxBrokerPartitions;
    if (current + added <= limit) return;
    throw new TopicError(
      TopicErrorCode.POLICY_VIOLATION,
      `${change.verb} ${formatCount(added)} partitions ${change.preposition} topic ${change.topic} would bring this broker to ${formatCount(current + added)} partitions ` +
        `(it has ${formatCount(current)}), above max.broker.partitions=${formatCount(limit)}`,
    );
  }

  /**
   * Checks both limits on `added` new partitions: max.broker.partitions (POLICY_VIOLATION) and the
   * open-files limit (KAFKA_STORAGE_ERROR, naming it; each new log keeps a file open).
   */
  private async checkPartitionRoom(added: number, change: PartitionChange): Promise<void> {
    this.checkBrokerPartitionLimit(added, change);
    // Logs other creations are opening right now will take their descriptors too.
    const newHandles = this.logs.descriptorsForNewLogs(added + this.reservedPartitions);
    await checkDescriptorRoom(newHandles * DESCRIPTORS_PER_NEW_PARTITION, `${change.verb} ${formatCount(added)} partitions ${change.preposition} topic ${change.topic}`);
    // The descriptor count was awaited: look at the partition count again.
    this.checkBrokerPartitionLimit(added, change);
  }

  /** Checks the limits and holds the room for `added` partitions while `work` runs. */
  private async withPartitionRoom<T>(added: number, change: PartitionChange, work: () => Promise<T>): Promise<T> {
    await this.checkPartitionRoom(added, change);
    this.reservedPartitions += added;
    try {
      return await work();
    } finally {
      this.reservedPartitions -= added;
    }
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
      const created = await this.addPartitionLogs(
        { verb: 'creating', preposition: 'for', topic: name },
        Array.from({ length: count }, (_, partition) => partition),
        options,
        {
          apply: async () => {
            await this.store.putTopic(record);
            this.setTopic(topic);
          },
          // Nothing of a topic whose logs could not all be made stays: not its logs, not its record.
          restore: () => this.removeTopic(name),
          undoWhat: `topic ${name}`,
          undoStore: () => this.store.deleteTopic(name),
        },
      );
      if (created) this.logger.info('created topic', { topic: name, partitions: count, configs: JSON.stringify(overrides) });
      return topic;
    });
  }

  /**
   * The shared path of CreateTopics and CreatePartitions: the limits checked (only that, under
   * validateOnly), the room held, the record change applied, then the new partitions' logs made.
   * When they cannot all be made, the record change is undone and the logs made so far go; the
   * error names what failed. Returns whether the change was applied (false under validateOnly).
   */
  private async addPartitionLogs(
    change: PartitionChange,
    partitions: readonly number[],
    options: { validateOnly?: boolean },
    record: { apply(): Promise<void>; restore(): void; undoWhat: string; undoStore(): Promise<void> },
  ): Promise<boolean> {
    if (options.validateOnly === true) {
      await this.checkPartitionRoom(partitions.length, change);
      return false;
    }
    await this.withPartitionRoom(partitions.length, change, async () => {
      await record.apply();
      try {
        await this.logs.createLogs(change.topic, partitions);
      } catch (error) {
        record.restore();
        await this.undo(record.undoWhat, [record.undoStore, () => this.removeCreatedLogs(change.topic, partitions)]);
        throw creationError(error, `creating ${partitions.length} partition logs of topic ${change.topic}`);
      }
    });
    return true;
  }

  /** Closes and deletes the logs of these partitions (those that exist) and forgets their Partitions. */
  private async removeLogs(name: string, partitions: readonly number[]): Promise<void> {
    for (const partition of partitions) {
      this.partitions.delete(partitionKey(name, partition));
      await this.logs.removeLog(name, partition);
    }
  }

  /**
   * Closes and deletes the logs a failed creation made. Out of descriptors, closing a log (which
   * writes its indexes) can fail for want of one: every log is tried, and those that failed are
   * tried once more after the others have given theirs back. Throws the first failure left.
   */
  private async removeCreatedLogs(name: string, partitions: readonly number[]): Promise<void> {
    let pending = [...partitions];
    let failure: { error: unknown } | null = null;
    for (let pass = 0; pass < UNDO_PASSES && pending.length > 0; pass++) {
      const failed: number[] = [];
      failure = null;
      for (const partition of pending) {
        this.partitions.delete(partitionKey(name, partition));
        try {
          // Closed here first: a log whose close fails stays with the LogManager for the next pass.
          await this.logs.getLog(name, partition)?.close();
          await this.logs.removeLog(name, partition);
        } catch (error) {
          failed.push(partition);
          failure ??= { error };
        }
      }
      pending = failed;
    }
    if (failure !== null) throw (failure as { error: unknown }).error;
  }

  /**
   * Undoes a failed creation, step by step. A step that fails is logged and the next still runs
   * (the broker keeps serving; a restart finds what is left: a directory of no topic is reported
   * and left alone); the creation's own error is what the client hears.
   */
  private async undo(what: string, steps: ReadonlyArray<() => Promise<void>>): Promise<void> {
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        this.logger.error(`undoing the failed creation of ${what} failed in part`, { error: error instanceof Error ? error.message : String(error) });
      }
    }
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
      this.removeTopic(name);
      await this.removeLogs(name, Array.from({ length: topic.partitions }, (_, partition) => partition));
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
      const added = total - topic.partitions;
      const applied = await this.addPartitionLogs(
        { verb: 'adding', preposition: 'to', topic: name },
        Array.from({ length: added }, (_, i) => topic.partitions + i),
        options,
        {
          apply: async () => {
            await this.store.putTopic(record);
            this.setTopic(updated);
          },
          // The topic goes back to its old partition count; the new partitions' logs go.
          restore: () => this.setTopic(topic),
          undoWhat: `the new partitions of topic ${name}`,
          undoStore: () => this.store.putTopic({ ...record, partitions: topic.partitions, createdAtMs: this.clock.nowMs() }),
        },
      );
      if (applied) this.logger.info('added partitions', { topic: name, from: topic.partitions, to: total });
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
      this.setTopic(updated);
      for (let partition = 0; partition < topic.partitions; partition++) this.logs.getLog(name, partition)?.reconfigure(updated.settings.log);
      this.logger.info('altered topic configs', { topic: name, configs: JSON.stringify(configs) });
      return updated;
    });
  }
}

/** Passes over the logs of a failed creation when closing them runs out of descriptors. */
const UNDO_PASSES = 2;

/** A creation's failure as the client hears it: out of descriptors is named with the limit. */
function creationError(error: unknown, what: string): unknown {
  return descriptorExhaustionError(error, what) ?? error;
}

/** 100000 -> "100,000": limits and counts are read by people. */
function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

function partitionKey(topic: string, index: number): string {
  return `${topic}\u0000${index}`;
}
