// The group and offset APIs until the group coordinator exists (issue 4): every request is
// answered with COORDINATOR_NOT_AVAILABLE (retriable), except ListGroups, which truthfully lists
// no groups. Clients see a proper Kafka error, never a dropped connection.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeDeleteGroupsRequest, type DeleteGroupsRequest } from '../../protocol/generated/deleteGroupsRequest.js';
import { encodeDeleteGroupsResponse, type DeleteGroupsResponse } from '../../protocol/generated/deleteGroupsResponse.js';
import { decodeDescribeGroupsRequest, type DescribeGroupsRequest } from '../../protocol/generated/describeGroupsRequest.js';
import { encodeDescribeGroupsResponse, type DescribeGroupsResponse } from '../../protocol/generated/describeGroupsResponse.js';
import { decodeFindCoordinatorRequest, type FindCoordinatorRequest } from '../../protocol/generated/findCoordinatorRequest.js';
import { encodeFindCoordinatorResponse, type FindCoordinatorResponse } from '../../protocol/generated/findCoordinatorResponse.js';
import { decodeHeartbeatRequest, type HeartbeatRequest } from '../../protocol/generated/heartbeatRequest.js';
import { encodeHeartbeatResponse, type HeartbeatResponse } from '../../protocol/generated/heartbeatResponse.js';
import { decodeJoinGroupRequest, type JoinGroupRequest } from '../../protocol/generated/joinGroupRequest.js';
import { encodeJoinGroupResponse, type JoinGroupResponse } from '../../protocol/generated/joinGroupResponse.js';
import { decodeLeaveGroupRequest, type LeaveGroupRequest } from '../../protocol/generated/leaveGroupRequest.js';
import { encodeLeaveGroupResponse, type LeaveGroupResponse } from '../../protocol/generated/leaveGroupResponse.js';
import { decodeListGroupsRequest, type ListGroupsRequest } from '../../protocol/generated/listGroupsRequest.js';
import { encodeListGroupsResponse, type ListGroupsResponse } from '../../protocol/generated/listGroupsResponse.js';
import { decodeOffsetCommitRequest, type OffsetCommitRequest } from '../../protocol/generated/offsetCommitRequest.js';
import { encodeOffsetCommitResponse, type OffsetCommitResponse } from '../../protocol/generated/offsetCommitResponse.js';
import { decodeOffsetFetchRequest, type OffsetFetchRequest } from '../../protocol/generated/offsetFetchRequest.js';
import { encodeOffsetFetchResponse, type OffsetFetchResponse } from '../../protocol/generated/offsetFetchResponse.js';
import { decodeSyncGroupRequest, type SyncGroupRequest } from '../../protocol/generated/syncGroupRequest.js';
import { encodeSyncGroupResponse, type SyncGroupResponse } from '../../protocol/generated/syncGroupResponse.js';
import { defineHandler } from './handler.js';

const UNAVAILABLE = ErrorCode.COORDINATOR_NOT_AVAILABLE;

function unavailable<Request, Response>(apiKey: number, decode: (reader: import('../../protocol/wire.js').ByteReader, version: number) => Request, encode: (writer: import('../../protocol/wire.js').ByteWriter, version: number, response: Response) => void, respond: (request: Request, errorCode: number) => Response) {
  return defineHandler<Request, Response>({
    apiKey,
    decode,
    encode,
    handle: (request) => Promise.resolve(respond(request, UNAVAILABLE)),
    errorResponse: (request, _version, errorCode) => respond(request, errorCode),
  });
}

export const unavailableGroupHandlers = [
  unavailable<FindCoordinatorRequest, FindCoordinatorResponse>(10, decodeFindCoordinatorRequest, encodeFindCoordinatorResponse, (_request, errorCode) => ({
    throttleTimeMs: 0,
    errorCode,
    errorMessage: 'the group coordinator is not available yet',
    nodeId: -1,
    host: '',
    port: -1,
  })),
  unavailable<JoinGroupRequest, JoinGroupResponse>(11, decodeJoinGroupRequest, encodeJoinGroupResponse, (request, errorCode) => ({
    throttleTimeMs: 0,
    errorCode,
    generationId: -1,
    protocolName: null,
    leader: '',
    memberId: request.memberId,
    members: [],
  })),
  unavailable<HeartbeatRequest, HeartbeatResponse>(12, decodeHeartbeatRequest, encodeHeartbeatResponse, (_request, errorCode) => ({ throttleTimeMs: 0, errorCode })),
  unavailable<LeaveGroupRequest, LeaveGroupResponse>(13, decodeLeaveGroupRequest, encodeLeaveGroupResponse, (_request, errorCode) => ({ throttleTimeMs: 0, errorCode })),
  unavailable<SyncGroupRequest, SyncGroupResponse>(14, decodeSyncGroupRequest, encodeSyncGroupResponse, (_request, errorCode) => ({ throttleTimeMs: 0, errorCode, assignment: Buffer.alloc(0) })),
  unavailable<DescribeGroupsRequest, DescribeGroupsResponse>(15, decodeDescribeGroupsRequest, encodeDescribeGroupsResponse, (request, errorCode) => ({
    throttleTimeMs: 0,
    groups: request.groups.map((groupId) => ({ errorCode, groupId, groupState: '', protocolType: '', protocolData: '', members: [] })),
  })),
  unavailable<ListGroupsRequest, ListGroupsResponse>(16, decodeListGroupsRequest, encodeListGroupsResponse, () => ({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups: [] })),
  unavailable<OffsetCommitRequest, OffsetCommitResponse>(8, decodeOffsetCommitRequest, encodeOffsetCommitResponse, (request, errorCode) => ({
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => ({ name: topic.name, partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, errorCode })) })),
  })),
  unavailable<OffsetFetchRequest, OffsetFetchResponse>(9, decodeOffsetFetchRequest, encodeOffsetFetchResponse, (_request, errorCode) => ({ throttleTimeMs: 0, topics: [], errorCode })),
  unavailable<DeleteGroupsRequest, DeleteGroupsResponse>(42, decodeDeleteGroupsRequest, encodeDeleteGroupsResponse, (request, errorCode) => ({
    throttleTimeMs: 0,
    results: request.groupsNames.map((groupId) => ({ groupId, errorCode })),
  })),
];
