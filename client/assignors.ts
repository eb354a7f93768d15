// Partition assignors of the classic consumer group protocol ("consumer" protocol type). The group
// leader decodes every member's subscription (int16 version + ConsumerProtocolSubscription), runs
// the assignor the coordinator chose, and sends each member its ConsumerProtocolAssignment bytes
// (int16 version + body) in SyncGroup. The names are Kafka's ('range', 'roundrobin'), so members
// of other clients (the Java client, librdkafka) that list the same assignor share a group with
// ours. Eager protocol only: cooperative-sticky is not implemented.
import { decodeConsumerProtocolAssignment, encodeConsumerProtocolAssignment } from '../protocol/generated/consumerProtocolAssignment.js';
import { decodeConsumerProtocolSubscription, encodeConsumerProtocolSubscription } from '../protocol/generated/consumerProtocolSubscription.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import type { TopicPartition } from './consumer.js';
import { KafkaConfigError } from './errors.js';

/** Highest ConsumerProtocol version we read; newer ones only append fields. */
const CONSUMER_PROTOCOL_MAX_VERSION = 3;
/** The version we write: v0 (topics + user data) is read by every client. */
const CONSUMER_PROTOCOL_WRITE_VERSION = 0;

export interface MemberSubscription {
  memberId: string;
  topics: readonly string[];
  userData?: Buffer | null;
}

/** memberId -> topic -> partitions (ascending). Every member appears, possibly with nothing. */
export type GroupAssignment = Map<string, Map<string, number[]>>;

export interface Assignor {
  /** The protocol name sent in JoinGroup. */
  readonly name: string;
  /**
   * Assigns the partitions of the subscribed topics; `partitionCounts` holds the partition count of
   * every topic some member subscribes to and that exists (others are skipped).
   */
  assign(members: readonly MemberSubscription[], partitionCounts: ReadonlyMap<string, number>): GroupAssignment;
}

export type AssignorName = 'range' | 'roundrobin';

function emptyAssignment(members: readonly MemberSubscription[]): GroupAssignment {
  const out: GroupAssignment = new Map();
  for (const member of members) out.set(member.memberId, new Map());
  return out;
}

function add(assignment: GroupAssignment, memberId: string, topic: string, partition: number): void {
  const topics = assignment.get(memberId)!;
  let list = topics.get(topic);
  if (list === undefined) topics.set(topic, (list = []));
  list.push(partition);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Kafka's RangeAssignor: per topic, the members subscribed to it sorted by member id; with n
 * partitions and c members, member i gets floor(n/c) contiguous partitions, and the first n % c
 * members one more.
 */
export const rangeAssignor: Assignor = {
  name: 'range',
  assign(members, partitionCounts) {
    const out = emptyAssignment(members);
    const topics = [...new Set(members.flatMap((member) => member.topics))].sort(compareIds);
    for (const topic of topics) {
      const count = partitionCounts.get(topic);
      if (count === undefined || count <= 0) continue;
      const subscribed = members.filter((member) => member.topics.includes(topic)).map((member) => member.memberId).sort(compareIds);
      const per = Math.floor(count / subscribed.length);
      const extra = count % subscribed.length;
      subscribed.forEach((memberId, i) => {
        const start = per * i + Math.min(i, extra);
        const length = per + (i < extra ? 1 : 0);
        for (let p = start; p < start + length; p++) add(out, memberId, topic, p);
      });
    }
    return out;
  },
};

/**
 * Kafka's RoundRobinAssignor: every partition of every subscribed topic, sorted by topic then
 * partition, dealt in turn to the members sorted by member id, skipping members not subscribed
 * to the partition's topic.
 */
export const roundRobinAssignor: Assignor = {
  name: 'roundrobin',
  assign(members, partitionCounts) {
    const out = emptyAssignment(members);
    const sorted = [...members].sort((a, b) => compareIds(a.memberId, b.memberId));
    if (sorted.length === 0) return out;
    const topics = [...new Set(members.flatMap((member) => member.topics))].sort(compareIds);
    let next = 0;
    for (const topic of topics) {
      const count = partitionCounts.get(topic);
      if (count === undefined || count <= 0) continue;
      for (let partition = 0; partition < count; partition++) {
        // Some member subscribes to this topic (it came from a subscription), so this ends.
        while (!sorted[next % sorted.length]!.topics.includes(topic)) next++;
        add(out, sorted[next % sorted.length]!.memberId, topic, partition);
        next++;
      }
    }
    return out;
  },
};

export const BUILTIN_ASSIGNORS: Readonly<Record<AssignorName, Assignor>> = { range: rangeAssignor, roundrobin: roundRobinAssignor };

/** Assignors by name or object, checked (known names, no duplicates, at least one). */
export function resolveAssignors(list: ReadonlyArray<AssignorName | Assignor>): Assignor[] {
  if (!Array.isArray(list) || list.length === 0) throw new KafkaConfigError("assignors must be a non-empty array of 'range', 'roundrobin' or Assignor objects");
  const out: Assignor[] = [];
  for (const entry of list) {
    const assignor = typeof entry === 'string' ? BUILTIN_ASSIGNORS[entry as AssignorName] : entry;
    if (assignor === undefined || typeof assignor.name !== 'string' || typeof assignor.assign !== 'function') {
      throw new KafkaConfigError(`unknown assignor ${JSON.stringify(entry)}: expected 'range', 'roundrobin' or an Assignor object`);
    }
    if (out.some((known) => known.name === assignor.name)) throw new KafkaConfigError(`assignor ${assignor.name} is listed twice`);
    out.push(assignor);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ConsumerProtocol bytes

export function encodeSubscription(topics: readonly string[], userData: Buffer | null = null): Buffer {
  const writer = new ByteWriter();
  writer.writeInt16(CONSUMER_PROTOCOL_WRITE_VERSION);
  encodeConsumerProtocolSubscription(writer, CONSUMER_PROTOCOL_WRITE_VERSION, { topics: [...topics], userData });
  return writer.toBuffer();
}

/** A member's JoinGroup metadata; throws on bytes that are not a consumer subscription. */
export function decodeSubscription(metadata: Buffer): { topics: string[]; userData: Buffer | null } {
  const reader = new ByteReader(metadata);
  const version = reader.readInt16();
  if (version < 0) throw new KafkaConfigError(`bad consumer subscription version ${version}`);
  const decoded = decodeConsumerProtocolSubscription(reader, Math.min(version, CONSUMER_PROTOCOL_MAX_VERSION));
  return { topics: decoded.topics, userData: decoded.userData };
}

export function encodeAssignment(topics: ReadonlyMap<string, readonly number[]>, userData: Buffer | null = null): Buffer {
  const writer = new ByteWriter();
  writer.writeInt16(CONSUMER_PROTOCOL_WRITE_VERSION);
  const assignedPartitions = [...topics].sort(([a], [b]) => compareIds(a, b)).map(([topic, partitions]) => ({ topic, partitions: [...partitions].sort((x, y) => x - y) }));
  encodeConsumerProtocolAssignment(writer, CONSUMER_PROTOCOL_WRITE_VERSION, { assignedPartitions, userData });
  return writer.toBuffer();
}

/** The partitions of a SyncGroup assignment (an empty buffer assigns nothing). */
export function decodeAssignment(assignment: Buffer): TopicPartition[] {
  if (assignment.length === 0) return [];
  const reader = new ByteReader(assignment);
  const version = reader.readInt16();
  if (version < 0) throw new KafkaConfigError(`bad consumer assignment version ${version}`);
  const decoded = decodeConsumerProtocolAssignment(reader, Math.min(version, CONSUMER_PROTOCOL_MAX_VERSION));
  return decoded.assignedPartitions.flatMap((entry) => entry.partitions.map((partition) => ({ topic: entry.topic, partition })));
}
