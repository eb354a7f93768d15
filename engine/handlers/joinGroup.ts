// JoinGroup (11), v0-5: parked until the rebalance completes (the coordinator decides when).
// v0 has no rebalance timeout (the session timeout stands in); v4+ uses the MEMBER_ID_REQUIRED
// handshake (KIP-394); v5 carries the static member's group.instance.id.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeJoinGroupRequest, type JoinGroupRequest } from '../../protocol/generated/joinGroupRequest.js';
import { encodeJoinGroupResponse, type JoinGroupResponse } from '../../protocol/generated/joinGroupResponse.js';
import { CONSUMER_PROTOCOL_TYPE, isValidSubscription } from '../groups/consumerProtocol.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const joinGroupHandler = defineHandler<JoinGroupRequest, JoinGroupResponse>({
  apiKey: ApiKey.JoinGroup,
  decode: decodeJoinGroupRequest,
  encode: encodeJoinGroupResponse,
  async handle(request, version, context) {
    await context.services.groups.ensureReady();
    if (request.protocolType === CONSUMER_PROTOCOL_TYPE && request.protocols.some((protocol) => !isValidSubscription(protocol.metadata))) {
      // Every client of the consumer protocol type sends ConsumerProtocol subscriptions; bytes
      // that are not one cannot be assigned from.
      context.services.logger.warn('JoinGroup refused: malformed consumer subscription', { groupId: request.groupId, clientId: context.clientId });
      return { throttleTimeMs: 0, errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL, generationId: -1, protocolName: '', leader: '', memberId: request.memberId, members: [] };
    }
    const result = await context.services.groups.coordinator.joinGroup({
      groupId: request.groupId,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId ?? null,
      clientId: context.clientId ?? '',
      clientHost: context.remoteAddress,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: version >= 1 ? (request.rebalanceTimeoutMs ?? request.sessionTimeoutMs) : request.sessionTimeoutMs,
      protocolType: request.protocolType,
      protocols: request.protocols,
      requireKnownMemberId: version >= 4,
    });
    return {
      throttleTimeMs: 0,
      errorCode: result.errorCode,
      generationId: result.generationId,
      // Before v7 the protocol name is not nullable.
      protocolName: result.protocolName ?? '',
      leader: result.leaderId,
      memberId: result.memberId,
      members: result.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId, metadata: member.metadata })),
    };
  },
  errorResponse: (request, _version, errorCode) => ({ throttleTimeMs: 0, errorCode, generationId: -1, protocolName: '', leader: '', memberId: request.memberId, members: [] }),
});
