// LeaveGroup (13), v0-1: one member leaves (v3+ batches are not advertised); the group rebalances.
import { decodeLeaveGroupRequest, type LeaveGroupRequest } from '../../protocol/generated/leaveGroupRequest.js';
import { encodeLeaveGroupResponse, type LeaveGroupResponse } from '../../protocol/generated/leaveGroupResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const leaveGroupHandler = defineHandler<LeaveGroupRequest, LeaveGroupResponse>({
  apiKey: ApiKey.LeaveGroup,
  decode: decodeLeaveGroupRequest,
  encode: encodeLeaveGroupResponse,
  async handle(request, version, context) {
    await context.services.groups.ensureReady();
    // Before v3 the request names one member by id; the decoder fills `members` with [] there.
    const members = version >= 3 ? (request.members ?? []) : [{ memberId: request.memberId ?? '', groupInstanceId: null }];
    const result = await context.services.groups.coordinator.leaveGroup({ groupId: request.groupId, members: members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId })) });
    // v0-2 answer for the single member at the top level.
    const errorCode = result.errorCode !== 0 ? result.errorCode : (result.members[0]?.errorCode ?? 0);
    return { throttleTimeMs: 0, errorCode };
  },
  errorResponse: (_request, _version, errorCode) => ({ throttleTimeMs: 0, errorCode }),
});
