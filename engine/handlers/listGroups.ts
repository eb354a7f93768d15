// ListGroups (16), v0-2: every group this coordinator knows.
import { decodeListGroupsRequest, type ListGroupsRequest } from '../../protocol/generated/listGroupsRequest.js';
import { encodeListGroupsResponse, type ListGroupsResponse } from '../../protocol/generated/listGroupsResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const listGroupsHandler = defineHandler<ListGroupsRequest, ListGroupsResponse>({
  apiKey: ApiKey.ListGroups,
  decode: decodeListGroupsRequest,
  encode: encodeListGroupsResponse,
  async handle(_request, _version, context) {
    await context.services.groups.ensureReady();
    const listed = context.services.groups.coordinator.listGroups();
    return { throttleTimeMs: 0, errorCode: listed.errorCode, groups: listed.groups.map((group) => ({ groupId: group.groupId, protocolType: group.protocolType, groupState: group.state })) };
  },
  errorResponse: (_request, _version, errorCode) => ({ throttleTimeMs: 0, errorCode, groups: [] }),
});
