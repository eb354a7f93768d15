// Committed offsets and group metadata, kept in the internal compacted topic __consumer_offsets
// with Kafka's own record layout, so the topic is readable by Kafka tools:
//
//   key   = int16 key version, then OffsetCommitKey (v1: group, topic, partition)
//                                or GroupMetadataKey (v2: group)
//   value = int16 value version, then OffsetCommitValue (v3) or GroupMetadataValue (v3);
//           a null value (tombstone) deletes the key
//
// A group's records all go to partition abs(javaHashCode(groupId)) % offsets.topic.num.partitions,
// as Kafka places them. Memory holds the latest value of every key; the log is the durable copy,
// read back in full at start. A commit is acknowledged once its batch is appended under the
// topic's flush policy.
import { ByteReader, ByteWriter } from '../../protocol/wire.js';
import { decodeGroupMetadataKey, encodeGroupMetadataKey } from '../../protocol/generated/groupMetadataKey.js';
import { decodeGroupMetadataValue, encodeGroupMetadataValue, type GroupMetadataValue } from '../../protocol/generated/groupMetadataValue.js';
import { decodeOffsetCommitKey, encodeOffsetCommitKey } from '../../protocol/generated/offsetCommitKey.js';
import { decodeOffsetCommitValue, encodeOffsetCommitValue } from '../../protocol/generated/offsetCommitValue.js';
import { decodeRecords, encodeBatch, LOG_OVERHEAD, type RecordInput } from '../../segments/recordBatch.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { TopicManager } from '../topicManager.js';

export const CONSUMER_OFFSETS_TOPIC = '__consumer_offsets';
const OFFSET_KEY_VERSION = 1;
const GROUP_KEY_VERSION = 2;
const OFFSET_VALUE_VERSION = 3;
const GROUP_VALUE_VERSION = 3;
/** Bytes read per step while loading a partition at start. */
const LOAD_READ_BYTES = 4 * 1024 * 1024;
/** offsets.commit.timeout.ms (Kafka's default): how long a commit waits for the in-sync replicas. */
const OFFSETS_COMMIT_TIMEOUT_MS = 5_000;
/** Committed metadata strings longer than this are refused (Kafka: offset.metadata.max.bytes). */
export const MAX_OFFSET_METADATA_BYTES = 4096;

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  commitTimestampMs: number;
}

export interface OffsetToCommit {
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string;
}

export interface OffsetStoreOptions {
  numPartitions: number;
  /** Topic config overrides of __consumer_offsets (compaction, segment size). */
  topicConfigs: Record<string, string>;
}

/** Java's String.hashCode over UTF-16 code units, which Kafka uses to place groups. */
export function javaStringHashCode(value: string): number {
  let hash = 0;
  for (let i = 0; i < value.length; i++) hash = (Math.imul(hash, 31) + value.charCodeAt(i)) | 0;
  return hash;
}

function topicPartitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class OffsetStore {
  /** groupId -> "topic\0partition" -> committed offset. */
  private readonly offsets = new Map<string, Map<string, CommittedOffset & { topic: string; partition: number }>>();
  private readonly groupMetadata = new Map<string, GroupMetadataValue>();

  constructor(
    private readonly topics: TopicManager,
    private readonly options: OffsetStoreOptions,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    if (!Number.isInteger(options.numPartitions) || options.numPartitions < 1) throw new RangeError(`offsets.topic.num.partitions must be a positive integer, got ${options.numPartitions}`);
  }

  partitionFor(groupId: string): number {
    // Kafka's Utils.abs maps MIN_VALUE to 0 rather than overflowing.
    const hash = javaStringHashCode(groupId);
    return (hash === -0x80000000 ? 0 : Math.abs(hash)) % this.partitionCount();
  }

  private partitionCount(): number {
    return this.topics.get(CONSUMER_OFFSETS_TOPIC)?.partitions ?? this.options.numPartitions;
  }

  /** Creates the topic when missing and loads every record of it. */
  async start(): Promise<void> {
    if (this.topics.get(CONSUMER_OFFSETS_TOPIC) === undefined) {
      await this.topics.create(CONSUMER_OFFSETS_TOPIC, this.options.numPartitions, -1, this.options.topicConfigs);
    }
    const count = this.partitionCount();
    let records = 0;
    for (let partition = 0; partition < count; partition++) records += await this.loadPartition(partition);
    this.logger.info('loaded consumer offsets', { partitions: count, records, groups: new Set([...this.offsets.keys(), ...this.groupMetadata.keys()]).size });
  }

  private async loadPartition(partition: number): Promise<number> {
    const offsets = this.topics.partition(CONSUMER_OFFSETS_TOPIC, partition);
    if (offsets === undefined) throw new Error(`${CONSUMER_OFFSETS_TOPIC}-${partition} has no log`);
    let offset = offsets.logStartOffset;
    let applied = 0;
    while (offset < offsets.highWatermark) {
      const { records } = await offsets.read(offset, LOAD_READ_BYTES);
      if (records.length === 0) break;
      let position = 0;
      while (position < records.length) {
        const size = records.readInt32BE(position + 8) + LOG_OVERHEAD;
        const batch = records.subarray(position, position + size);
        for (const record of decodeRecords(batch)) {
          this.apply(record.key, record.value);
          applied++;
          offset = record.offset + 1;
        }
        // Batches emptied by compaction still move the offset on.
        offset = Math.max(offset, Number(batch.readBigInt64BE(0)) + batch.readInt32BE(23) + 1);
        position += size;
      }
    }
    return applied;
  }

  /** Applies one record of the topic to memory (at load, and after each append). */
  private apply(key: Buffer | null, value: Buffer | null): void {
    if (key === null || key.length < 2) return;
    const reader = new ByteReader(key);
    const keyVersion = reader.readInt16();
    if (keyVersion === 0 || keyVersion === 1) {
      const { group, topic, partition } = decodeOffsetCommitKey(reader, keyVersion);
      const id = topicPartitionKey(topic, partition);
      if (value === null) {
        this.offsets.get(group)?.delete(id);
        if (this.offsets.get(group)?.size === 0) this.offsets.delete(group);
        return;
      }
      const valueReader = new ByteReader(value);
      const valueVersion = valueReader.readInt16();
      const decoded = decodeOffsetCommitValue(valueReader, valueVersion);
      let group_ = this.offsets.get(group);
      if (group_ === undefined) this.offsets.set(group, (group_ = new Map()));
      group_.set(id, { topic, partition, offset: Number(decoded.offset), leaderEpoch: decoded.leaderEpoch ?? -1, metadata: decoded.metadata, commitTimestampMs: Number(decoded.commitTimestamp) });
    } else if (keyVersion === 2) {
      const { group } = decodeGroupMetadataKey(reader, keyVersion);
      if (value === null) {
        this.groupMetadata.delete(group);
        return;
      }
      const valueReader = new ByteReader(value);
      const valueVersion = valueReader.readInt16();
      this.groupMetadata.set(group, decodeGroupMetadataValue(valueReader, valueVersion));
    }
    // Other key versions (transaction log records) do not belong here; ignored.
  }

  private static offsetKey(groupId: string, topic: string, partition: number): Buffer {
    const writer = new ByteWriter({ initialBytes: 256 });
    writer.writeInt16(OFFSET_KEY_VERSION);
    encodeOffsetCommitKey(writer, OFFSET_KEY_VERSION, { group: groupId, topic, partition });
    return writer.toBuffer();
  }

  private static groupKey(groupId: string): Buffer {
    const writer = new ByteWriter({ initialBytes: 128 });
    writer.writeInt16(GROUP_KEY_VERSION);
    encodeGroupMetadataKey(writer, GROUP_KEY_VERSION, { group: groupId });
    return writer.toBuffer();
  }

  /** Appends records to the group's partition, then applies them to memory. */
  private async write(groupId: string, records: RecordInput[]): Promise<void> {
    if (records.length === 0) return;
    const offsets = this.topics.partition(CONSUMER_OFFSETS_TOPIC, this.partitionFor(groupId));
    if (offsets === undefined) throw new Error(`${CONSUMER_OFFSETS_TOPIC} is not loaded`);
    // As Kafka's coordinator: acks=-1, so a commit is answered only once every in-sync replica has it.
    await offsets.appendAsLeader(encodeBatch(records, { baseTimestamp: this.clock.nowMs() }), -1, OFFSETS_COMMIT_TIMEOUT_MS);
    for (const record of records) this.apply(record.key, record.value);
  }

  /** Durably records committed offsets of a group (one batch, all or nothing). */
  async commit(groupId: string, offsets: readonly OffsetToCommit[]): Promise<void> {
    const now = this.clock.nowMs();
    const records = offsets.map((entry): RecordInput => {
      const writer = new ByteWriter({ initialBytes: 128 });
      writer.writeInt16(OFFSET_VALUE_VERSION);
      encodeOffsetCommitValue(writer, OFFSET_VALUE_VERSION, { offset: BigInt(entry.offset), leaderEpoch: entry.leaderEpoch, metadata: entry.metadata, commitTimestamp: BigInt(now) });
      return { key: OffsetStore.offsetKey(groupId, entry.topic, entry.partition), value: writer.toBuffer(), timestamp: now };
    });
    await this.write(groupId, records);
  }

  /** The committed offset of one partition, or undefined. */
  committed(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.offsets.get(groupId)?.get(topicPartitionKey(topic, partition));
  }

  /** Every committed offset of a group. */
  allCommitted(groupId: string): Array<CommittedOffset & { topic: string; partition: number }> {
    return [...(this.offsets.get(groupId)?.values() ?? [])];
  }

  groupsWithOffsets(): string[] {
    return [...this.offsets.keys()];
  }

  /** Deletes committed offsets (all of the group's, or the listed partitions) with tombstones. */
  async deleteOffsets(groupId: string, which?: ReadonlyArray<{ topic: string; partition: number }>): Promise<number> {
    const targets = which ?? this.allCommitted(groupId);
    const records = targets
      .filter((target) => this.committed(groupId, target.topic, target.partition) !== undefined)
      .map((target): RecordInput => ({ key: OffsetStore.offsetKey(groupId, target.topic, target.partition), value: null, timestamp: this.clock.nowMs() }));
    await this.write(groupId, records);
    return records.length;
  }

  /** Records a group's membership after a rebalance (null deletes it). */
  async storeGroupMetadata(groupId: string, value: GroupMetadataValue | null): Promise<void> {
    let encoded: Buffer | null = null;
    if (value !== null) {
      const writer = new ByteWriter({ initialBytes: 1024 });
      writer.writeInt16(GROUP_VALUE_VERSION);
      encodeGroupMetadataValue(writer, GROUP_VALUE_VERSION, value);
      encoded = writer.toBuffer();
    }
    await this.write(groupId, [{ key: OffsetStore.groupKey(groupId), value: encoded, timestamp: this.clock.nowMs() }]);
  }

  storedGroups(): Map<string, GroupMetadataValue> {
    return new Map(this.groupMetadata);
  }

  /**
   * Removes the offsets of groups that have been empty past the retention (offsets.retention.minutes),
   * judged by their newest commit. Returns how many offsets were deleted.
   */
  async expireOffsets(retentionMs: number, isEmpty: (groupId: string) => boolean): Promise<number> {
    const cutoff = this.clock.nowMs() - retentionMs;
    let expired = 0;
    for (const groupId of this.groupsWithOffsets()) {
      if (!isEmpty(groupId)) continue;
      const entries = this.allCommitted(groupId);
      if (entries.length === 0 || Math.max(...entries.map((entry) => entry.commitTimestampMs)) > cutoff) continue;
      expired += await this.deleteOffsets(groupId);
      if (this.groupMetadata.has(groupId)) await this.storeGroupMetadata(groupId, null);
      this.logger.info('expired offsets of an empty group', { groupId, offsets: entries.length });
    }
    return expired;
  }
}
