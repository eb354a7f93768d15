// Heartbeat (12), v0-3: renews the member's session; REBALANCE_IN_PROGRESS tells it to rejoin.
import { decodeHeartbeatRequest, type HeartbeatRequest } from '../../protocol/generated/heartbeatRequest.js';
import { encodeHeartbeatResponse, type HeartbeatResponse } from '../../protocol/generated/heartbeatResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const heartbeatHandler = defineHandler<HeartbeatRequest, HeartbeatResponse>({
  apiKey: ApiKey.Heartbeat,
  decode: decodeHeartbeatRequest,
  encode: encodeHeartbeatResponse,
  async handle(request, _version, context) {
    await context.services.groups.ensureReady();
    const result = await context.services.groups.coordinator.heartbeat({
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId ?? null,
    });
    return { throttleTimeMs: 0, errorCode: result.errorCode };
  },
  errorResponse: (_request, _version, errorCode) => ({ throttleTimeMs: 0, errorCode }),
});
