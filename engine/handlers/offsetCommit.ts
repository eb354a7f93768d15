// OffsetCommit (8), v2-5: the coordinator decides whether this member may commit now (generation,
// member id, instance id, rebalance state; generation -1 with no member id is an admin commit,
// allowed only while the group is empty, which is how offsets are reset). Accepted offsets are
// appended to __consumer_offsets in one batch and acknowledged once written.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeOffsetCommitRequest, type OffsetCommitRequest } from '../../protocol/generated/offsetCommitRequest.js';
import { encodeOffsetCommitResponse, type OffsetCommitResponse } from '../../protocol/generated/offsetCommitResponse.js';
import { MAX_OFFSET_METADATA_BYTES, type OffsetToCommit } from '../groups/offsetStore.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import { assignedPartitions, CONSUMER_PROTOCOL_TYPE } from '../groups/consumerProtocol.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type HandlerContext } from './handler.js';

function everyPartition(request: OffsetCommitRequest, errorCode: number): OffsetCommitResponse {
  return { throttleTimeMs: 0, topics: request.topics.map((topic) => ({ name: topic.name, partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, errorCode })) })) };
}

/**
 * In a Stable consumer group: the partitions assigned to members other than the committing one;
 * else null (no check). A member may commit a partition it owns or one nobody owns: under
 * incremental cooperative rebalancing (KIP-429) a member commits the partitions it just gave up,
 * which are withheld from everyone for one generation. A partition another member owns means the
 * committer's view of ownership is stale (a zombie): it must rejoin.
 */
function partitionsOwnedByOthers(context: HandlerContext, request: OffsetCommitRequest): Set<string> | null {
  const memberId = request.memberId ?? '';
  if (memberId === '' || (request.generationIdOrMemberEpoch ?? -1) < 0) return null;
  const group = context.services.groups.coordinator.describeGroup(request.groupId);
  if (group.state !== 'Stable' || group.protocolType !== CONSUMER_PROTOCOL_TYPE) return null;
  const others = new Set<string>();
  for (const member of group.members) {
    if (member.memberId === memberId) continue;
    // An assignment that does not decode claims nothing we could check against.
    for (const key of assignedPartitions(member.assignment) ?? []) others.add(key);
  }
  return others;
}

export const offsetCommitHandler = defineHandler<OffsetCommitRequest, OffsetCommitResponse>({
  apiKey: ApiKey.OffsetCommit,
  decode: decodeOffsetCommitRequest,
  encode: encodeOffsetCommitResponse,
  async handle(request, _version, context) {
    const { groups, topics } = context.services;
    await groups.ensureReady();
    const verdict = groups.coordinator.validateCommit(request.groupId, request.generationIdOrMemberEpoch ?? -1, request.memberId ?? '', request.groupInstanceId ?? null);
    if (verdict !== ErrorCode.NONE) return everyPartition(request, verdict);
    const accepted: OffsetToCommit[] = [];
    const errors = new Map<string, number>();
    const ownedByOthers = partitionsOwnedByOthers(context, request);
    for (const topic of request.topics) {
      for (const partition of topic.partitions) {
        const key = `${topic.name}\u0000${partition.partitionIndex}`;
        const metadata = partition.committedMetadata ?? '';
        if (topics.partition(topic.name, partition.partitionIndex) === undefined) errors.set(key, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        else if (ownedByOthers !== null && ownedByOthers.has(key)) errors.set(key, ErrorCode.ILLEGAL_GENERATION);
        else if (Buffer.byteLength(metadata, 'utf8') > MAX_OFFSET_METADATA_BYTES) errors.set(key, ErrorCode.OFFSET_METADATA_TOO_LARGE);
        // Kafka stores any offset, the -1/-2 sentinels of admin resets included; only values a
        // number cannot hold exactly are refused here.
        else if (partition.committedOffset < BigInt(Number.MIN_SAFE_INTEGER) || partition.committedOffset > BigInt(Number.MAX_SAFE_INTEGER)) errors.set(key, ErrorCode.INVALID_COMMIT_OFFSET_SIZE);
        else accepted.push({ topic: topic.name, partition: partition.partitionIndex, offset: Number(partition.committedOffset), leaderEpoch: partition.committedLeaderEpoch ?? -1, metadata });
      }
    }
    let writeError: number = ErrorCode.NONE;
    try {
      if (accepted.length > 0) await groups.offsets.commit(request.groupId, accepted);
    } catch (error) {
      writeError = kafkaErrorCodeOf(error);
      context.services.logger.error('storing committed offsets failed', { groupId: request.groupId, error: String(error) });
      // Kafka answers a failed offsets write with a retriable coordinator error.
      if (writeError === ErrorCode.UNKNOWN_SERVER_ERROR || writeError === ErrorCode.KAFKA_STORAGE_ERROR) writeError = ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((topic) => ({
        name: topic.name,
        partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, errorCode: errors.get(`${topic.name}\u0000${partition.partitionIndex}`) ?? writeError })),
      })),
    };
  },
  errorResponse: (request, _version, errorCode) => everyPartition(request, errorCode),
});
