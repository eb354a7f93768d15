// OffsetDelete (47), v0: deletes committed offsets of some partitions of a group. Allowed while
// the group is empty; with members, GROUP_SUBSCRIBED_TO_TOPIC (a member may still use them).
import { ErrorCode } from '../../protocol/errors.js';
import { decodeOffsetDeleteRequest, type OffsetDeleteRequest } from '../../protocol/generated/offsetDeleteRequest.js';
import { encodeOffsetDeleteResponse, type OffsetDeleteResponse } from '../../protocol/generated/offsetDeleteResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

function answer(request: OffsetDeleteRequest, errorCode: number, partitionError: number): OffsetDeleteResponse {
  return {
    errorCode,
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => ({ name: topic.name, partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, errorCode: partitionError })) })),
  };
}

export const offsetDeleteHandler = defineHandler<OffsetDeleteRequest, OffsetDeleteResponse>({
  apiKey: ApiKey.OffsetDelete,
  decode: decodeOffsetDeleteRequest,
  encode: encodeOffsetDeleteResponse,
  async handle(request, _version, context) {
    const { groups } = context.services;
    await groups.ensureReady();
    const description = groups.coordinator.describeGroup(request.groupId);
    if (description.state === 'Dead' && groups.offsets.allCommitted(request.groupId).length === 0) return answer(request, ErrorCode.GROUP_ID_NOT_FOUND, ErrorCode.NONE);
    if (!groups.coordinator.isEmpty(request.groupId)) return answer(request, ErrorCode.NONE, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC);
    await groups.offsets.deleteOffsets(request.groupId, request.topics.flatMap((topic) => topic.partitions.map((partition) => ({ topic: topic.name, partition: partition.partitionIndex }))));
    return answer(request, ErrorCode.NONE, ErrorCode.NONE);
  },
  errorResponse: (request, _version, errorCode) => answer(request, errorCode, ErrorCode.NONE),
});
