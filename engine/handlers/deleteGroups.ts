// DeleteGroups (42), v0-1: an empty group goes, with its committed offsets (tombstones in
// __consumer_offsets); NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND when unknown.
import { decodeDeleteGroupsRequest, type DeleteGroupsRequest } from '../../protocol/generated/deleteGroupsRequest.js';
import { encodeDeleteGroupsResponse, type DeleteGroupsResponse } from '../../protocol/generated/deleteGroupsResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const deleteGroupsHandler = defineHandler<DeleteGroupsRequest, DeleteGroupsResponse>({
  apiKey: ApiKey.DeleteGroups,
  decode: decodeDeleteGroupsRequest,
  encode: encodeDeleteGroupsResponse,
  async handle(request, _version, context) {
    await context.services.groups.ensureReady();
    const { groups } = context.services;
    const results = await Promise.all(request.groupsNames.map(async (groupId) => ({ groupId, errorCode: await groups.deleteGroup(groupId) })));
    return { throttleTimeMs: 0, results };
  },
  errorResponse: (request, _version, errorCode) => ({ throttleTimeMs: 0, results: request.groupsNames.map((groupId) => ({ groupId, errorCode })) }),
});
