// OffsetFetch (9), v1-4: committed offsets of a group (all of them when topics is null, v2+);
// a partition without a commit answers -1 with no error, as Kafka does. Lag is what clients
// compute from these and ListOffsets.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeOffsetFetchRequest, type OffsetFetchRequest } from '../../protocol/generated/offsetFetchRequest.js';
import { encodeOffsetFetchResponse, type OffsetFetchResponse, type OffsetFetchResponseTopic } from '../../protocol/generated/offsetFetchResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const offsetFetchHandler = defineHandler<OffsetFetchRequest, OffsetFetchResponse>({
  apiKey: ApiKey.OffsetFetch,
  decode: decodeOffsetFetchRequest,
  encode: encodeOffsetFetchResponse,
  async handle(request, _version, context) {
    const { offsets } = context.services.groups;
    await context.services.groups.ensureReady();
    const groupId = request.groupId ?? '';
    let topics: OffsetFetchResponseTopic[];
    if (request.topics === null || request.topics === undefined) {
      const byTopic = new Map<string, OffsetFetchResponseTopic>();
      for (const entry of offsets.allCommitted(groupId)) {
        let topic = byTopic.get(entry.topic);
        if (topic === undefined) byTopic.set(entry.topic, (topic = { name: entry.topic, partitions: [] }));
        topic.partitions.push({ partitionIndex: entry.partition, committedOffset: BigInt(entry.offset), committedLeaderEpoch: entry.leaderEpoch, metadata: entry.metadata, errorCode: ErrorCode.NONE });
      }
      topics = [...byTopic.values()];
    } else {
      topics = request.topics.map((topic) => ({
        name: topic.name,
        partitions: topic.partitionIndexes.map((partitionIndex) => {
          const committed = offsets.committed(groupId, topic.name, partitionIndex);
          return committed === undefined
            ? { partitionIndex, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: ErrorCode.NONE }
            : { partitionIndex, committedOffset: BigInt(committed.offset), committedLeaderEpoch: committed.leaderEpoch, metadata: committed.metadata, errorCode: ErrorCode.NONE };
        }),
      }));
    }
    return { throttleTimeMs: 0, topics, errorCode: ErrorCode.NONE };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    errorCode,
    topics: (request.topics ?? []).map((topic) => ({ name: topic.name, partitions: topic.partitionIndexes.map((partitionIndex) => ({ partitionIndex, committedOffset: -1n, metadata: '', errorCode })) })),
  }),
});
