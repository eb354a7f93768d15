// SyncGroup (14), v0-3: the leader hands in every member's assignment; each member is answered
// with its own once the leader's arrives (the coordinator parks followers until then).
import { decodeSyncGroupRequest, type SyncGroupRequest } from '../../protocol/generated/syncGroupRequest.js';
import { encodeSyncGroupResponse, type SyncGroupResponse } from '../../protocol/generated/syncGroupResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const syncGroupHandler = defineHandler<SyncGroupRequest, SyncGroupResponse>({
  apiKey: ApiKey.SyncGroup,
  decode: decodeSyncGroupRequest,
  encode: encodeSyncGroupResponse,
  async handle(request, _version, context) {
    await context.services.groups.ensureReady();
    const result = await context.services.groups.coordinator.syncGroup({
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId ?? null,
      protocolType: request.protocolType ?? null,
      protocolName: request.protocolName ?? null,
      assignments: request.assignments,
    });
    return { throttleTimeMs: 0, errorCode: result.errorCode, assignment: result.assignment };
  },
  errorResponse: (_request, _version, errorCode) => ({ throttleTimeMs: 0, errorCode, assignment: Buffer.alloc(0) }),
});
