// Partition assignors of the classic consumer group protocol ("consumer" protocol type). The group
// leader decodes every member's subscription (int16 version + ConsumerProtocolSubscription), runs
// the assignor the coordinator chose, and sends each member its ConsumerProtocolAssignment bytes
// (int16 version + body) in SyncGroup. The names are Kafka's ('range', 'roundrobin',
// 'cooperative-sticky'), so members of other clients (the Java client, librdkafka) that list the
// same assignor share a group with ours.
//
// Rebalance protocol, as the Java client decides it: a member rebalances cooperatively (keeps its
// partitions while rejoining, and says which it owns in its subscription) only when every
// assignor it lists supports it; ['cooperative-sticky', 'range'] is eager, whichever the
// coordinator picks, since range would hand out partitions their owners still fetch. That is
// Kafka's upgrade path: first list both, then drop the eager one.
import { decodeConsumerProtocolAssignment, encodeConsumerProtocolAssignment } from '../protocol/generated/consumerProtocolAssignment.js';
import { decodeConsumerProtocolSubscription, encodeConsumerProtocolSubscription } from '../protocol/generated/consumerProtocolSubscription.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import { KafkaConfigError } from './errors.js';
import { cooperativeStickyAssignor } from './stickyAssignor.js';
import type { Assignor, AssignorName, GroupAssignment, MemberSubscription, RebalanceProtocol, TopicPartition } from './types.js';

/** Highest ConsumerProtocol version we read; newer ones only append fields. */
const CONSUMER_PROTOCOL_MAX_VERSION = 3;
/** The version we write: v0 (topics + user data) is read by every client. */
const CONSUMER_PROTOCOL_WRITE_VERSION = 0;
/** The version a cooperative member writes: v2 adds owned partitions (v1) and their generation. */
const CONSUMER_PROTOCOL_OWNERSHIP_VERSION = 2;

// Defined in types.ts (stickyAssignor.ts, groupMembership.ts and consumer/ share them); still
// importable from here.
export type { Assignor, AssignorName, GroupAssignment, MemberSubscription, RebalanceProtocol } from './types.js';

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

export const BUILTIN_ASSIGNORS: Readonly<Record<AssignorName, Assignor>> = { range: rangeAssignor, roundrobin: roundRobinAssignor, 'cooperative-sticky': cooperativeStickyAssignor };

const BUILTIN_NAMES = "'range', 'roundrobin', 'cooperative-sticky'";
const PROTOCOLS: ReadonlySet<string> = new Set<RebalanceProtocol>(['eager', 'cooperative']);

/** Assignors by name or object, checked (known names, no duplicates, at least one). */
export function resolveAssignors(list: ReadonlyArray<AssignorName | Assignor>): Assignor[] {
  if (!Array.isArray(list) || list.length === 0) throw new KafkaConfigError(`assignors must be a non-empty array of ${BUILTIN_NAMES} or Assignor objects`);
  const out: Assignor[] = [];
  for (const entry of list) {
    const assignor = typeof entry === 'string' ? (Object.hasOwn(BUILTIN_ASSIGNORS, entry) ? BUILTIN_ASSIGNORS[entry as AssignorName] : undefined) : entry;
    if (assignor === undefined || assignor === null || typeof assignor.name !== 'string' || typeof assignor.assign !== 'function') {
      throw new KafkaConfigError(`unknown assignor ${JSON.stringify(entry)}: expected ${BUILTIN_NAMES} or an Assignor object`);
    }
    const protocols = assignor.supportedProtocols ?? ['eager'];
    if (!Array.isArray(protocols) || protocols.length === 0 || protocols.some((p) => !PROTOCOLS.has(p))) {
      throw new KafkaConfigError(`assignor ${assignor.name}: supportedProtocols must be a non-empty array of 'eager' and 'cooperative'`);
    }
    if (out.some((known) => known.name === assignor.name)) throw new KafkaConfigError(`assignor ${assignor.name} is listed twice`);
    out.push(assignor);
  }
  return out;
}

/** The protocol a member with these assignors rebalances by: cooperative only if all support it. */
export function rebalanceProtocolOf(assignors: readonly Assignor[]): RebalanceProtocol {
  const cooperative = assignors.length > 0 && assignors.every((assignor) => (assignor.supportedProtocols ?? ['eager']).includes('cooperative'));
  return cooperative ? 'cooperative' : 'eager';
}

// ---------------------------------------------------------------------------------------------
// ConsumerProtocol bytes

/** What a cooperative member owns while it rejoins, and the generation that gave it. */
export interface Ownership {
  ownedPartitions: readonly TopicPartition[];
  generationId: number;
}

/** v0 (topics, user data), or v2 (and owned partitions, generation) when `ownership` is given. */
export function encodeSubscription(topics: readonly string[], userData: Buffer | null = null, ownership?: Ownership): Buffer {
  const writer = new ByteWriter();
  if (ownership === undefined) {
    writer.writeInt16(CONSUMER_PROTOCOL_WRITE_VERSION);
    encodeConsumerProtocolSubscription(writer, CONSUMER_PROTOCOL_WRITE_VERSION, { topics: [...topics], userData });
    return writer.toBuffer();
  }
  writer.writeInt16(CONSUMER_PROTOCOL_OWNERSHIP_VERSION);
  encodeConsumerProtocolSubscription(writer, CONSUMER_PROTOCOL_OWNERSHIP_VERSION, {
    topics: [...topics],
    userData,
    ownedPartitions: groupByTopic(ownership.ownedPartitions).map(([topic, partitions]) => ({ topic, partitions })),
    generationId: ownership.generationId,
  });
  return writer.toBuffer();
}

export interface DecodedSubscription {
  topics: string[];
  userData: Buffer | null;
  /** Present from v1 on. */
  ownedPartitions?: TopicPartition[];
  /** Present from v2 on. */
  generationId?: number;
}

/** A member's JoinGroup metadata; throws on bytes that are not a consumer subscription. */
export function decodeSubscription(metadata: Buffer): DecodedSubscription {
  const reader = new ByteReader(metadata);
  const version = reader.readInt16();
  if (version < 0) throw new KafkaConfigError(`bad consumer subscription version ${version}`);
  const decoded = decodeConsumerProtocolSubscription(reader, Math.min(version, CONSUMER_PROTOCOL_MAX_VERSION));
  const out: DecodedSubscription = { topics: decoded.topics, userData: decoded.userData };
  if (version >= 1) out.ownedPartitions = (decoded.ownedPartitions ?? []).flatMap((entry) => entry.partitions.map((partition) => ({ topic: entry.topic, partition })));
  if (version >= 2 && decoded.generationId !== undefined) out.generationId = decoded.generationId;
  return out;
}

/** [topic, ascending partitions] sorted by topic. */
function groupByTopic(partitions: readonly TopicPartition[]): Array<[string, number[]]> {
  const byTopic = new Map<string, number[]>();
  for (const tp of partitions) {
    let list = byTopic.get(tp.topic);
    if (list === undefined) byTopic.set(tp.topic, (list = []));
    list.push(tp.partition);
  }
  return [...byTopic].sort(([a], [b]) => compareIds(a, b)).map(([topic, list]) => [topic, list.sort((x, y) => x - y)]);
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
