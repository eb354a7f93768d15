// DescribeGroups (15), v0-2: state, protocol, members with their metadata and assignment (both
// only while Stable, as Kafka shows them). An unknown group is "Dead" with no error below v6.
import { decodeDescribeGroupsRequest, type DescribeGroupsRequest } from '../../protocol/generated/describeGroupsRequest.js';
import { encodeDescribeGroupsResponse, type DescribeGroupsResponse } from '../../protocol/generated/describeGroupsResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const describeGroupsHandler = defineHandler<DescribeGroupsRequest, DescribeGroupsResponse>({
  apiKey: ApiKey.DescribeGroups,
  decode: decodeDescribeGroupsRequest,
  encode: encodeDescribeGroupsResponse,
  async handle(request, _version, context) {
    await context.services.groups.ensureReady();
    const { coordinator } = context.services.groups;
    return {
      throttleTimeMs: 0,
      groups: request.groups.map((groupId) => {
        const group = coordinator.describeGroup(groupId);
        return {
          errorCode: group.errorCode,
          groupId,
          groupState: group.state,
          protocolType: group.protocolType,
          protocolData: group.protocolName,
          members: group.members.map((member) => ({
            memberId: member.memberId,
            groupInstanceId: member.groupInstanceId,
            clientId: member.clientId,
            clientHost: member.clientHost,
            memberMetadata: member.metadata,
            memberAssignment: member.assignment,
          })),
        };
      }),
    };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    groups: request.groups.map((groupId) => ({ errorCode, groupId, groupState: '', protocolType: '', protocolData: '', members: [] })),
  }),
});
