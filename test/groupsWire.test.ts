import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../protocol/errors.js';
import { encodeConsumerProtocolAssignment } from '../protocol/generated/consumerProtocolAssignment.js';
import { encodeConsumerProtocolSubscription } from '../protocol/generated/consumerProtocolSubscription.js';
import { encodeJoinGroupRequest, type JoinGroupRequest } from '../protocol/generated/joinGroupRequest.js';
import { decodeJoinGroupResponse } from '../protocol/generated/joinGroupResponse.js';
import { encodeOffsetCommitRequest } from '../protocol/generated/offsetCommitRequest.js';
import { decodeOffsetCommitResponse } from '../protocol/generated/offsetCommitResponse.js';
import { encodeSyncGroupRequest } from '../protocol/generated/syncGroupRequest.js';
import { decodeSyncGroupResponse } from '../protocol/generated/syncGroupResponse.js';
import { ByteWriter } from '../protocol/wire.js';
import { sendRequest, startInProcessBroker, type InProcessBroker } from './support/inProcessBroker.js';

let started: InProcessBroker;
beforeEach(async () => {
  started = await startInProcessBroker({ groupInitialRebalanceDelayMs: 0, groupMinSessionTimeoutMs: 1000, offsetsTopicPartitions: 3 });
  await started.broker.topics.create('orders', 4, -1, {});
});
afterEach(async () => {
  await started.stop();
});

function subscription(topics: string[]): Buffer {
  const writer = new ByteWriter();
  writer.writeInt16(0);
  encodeConsumerProtocolSubscription(writer, 0, { topics, userData: null });
  return writer.toBuffer();
}

function assignment(partitions: number[]): Buffer {
  const writer = new ByteWriter();
  writer.writeInt16(0);
  encodeConsumerProtocolAssignment(writer, 0, { assignedPartitions: [{ topic: 'orders', partitions }], userData: null });
  return writer.toBuffer();
}

const join = (request: JoinGroupRequest) => sendRequest(started.broker, 11, 5, encodeJoinGroupRequest, decodeJoinGroupResponse, request);

function joinRequest(memberId: string, metadata: Buffer): JoinGroupRequest {
  return { groupId: 'wire-group', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId, groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata }] };
}

describe('consumer group requests over the wire protocol', () => {
  it('a member commits what it owns or what nobody owns (KIP-429 revoked partitions); a partition another member owns gets ILLEGAL_GENERATION', async () => {
    const firstTry = await join(joinRequest('', subscription(['orders'])));
    expect(firstTry!.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    const a = firstTry!.memberId;
    expect(await join(joinRequest(a, subscription(['orders'])))).toMatchObject({ errorCode: 0, generationId: 1, leader: a });
    const sync = (generationId: number, memberId: string, assignments: Array<{ memberId: string; assignment: Buffer }>) =>
      sendRequest(started.broker, 14, 3, encodeSyncGroupRequest, decodeSyncGroupResponse, { groupId: 'wire-group', generationId, memberId, groupInstanceId: null, assignments });
    expect((await sync(1, a, [{ memberId: a, assignment: assignment([0, 1, 2, 3]) }]))!.errorCode).toBe(0);

    // A second member joins: the rebalance completes once the first rejoins.
    const secondTry = await join(joinRequest('', subscription(['orders'])));
    const b = secondTry!.memberId;
    const bJoined = join(joinRequest(b, subscription(['orders'])));
    const aRejoined = await join(joinRequest(a, subscription(['orders'])));
    expect(aRejoined).toMatchObject({ errorCode: 0, generationId: 2, leader: a });
    expect((await bJoined)!.errorCode).toBe(0);
    // Cooperative hand-over: partition 3 moves from a to b, so it is withheld for this generation.
    const bSynced = sync(2, b, []);
    expect((await sync(2, a, [{ memberId: a, assignment: assignment([0, 1]) }, { memberId: b, assignment: assignment([2]) }]))!.errorCode).toBe(0);
    expect((await bSynced)!.errorCode).toBe(0);

    const commit = await sendRequest(started.broker, 8, 5, encodeOffsetCommitRequest, decodeOffsetCommitResponse, {
      groupId: 'wire-group',
      generationIdOrMemberEpoch: 2,
      memberId: a,
      groupInstanceId: null,
      topics: [{ name: 'orders', partitions: [0, 1, 2, 3].map((partitionIndex) => ({ partitionIndex, committedOffset: 7n, committedMetadata: null })) }],
    });
    expect(commit!.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([0, 0, ErrorCode.ILLEGAL_GENERATION, 0]);
    const committed = (partition: number) => started.broker.services.groups.offsets.committed('wire-group', 'orders', partition)?.offset;
    expect([0, 1, 2, 3].map(committed)).toEqual([7, 7, undefined, 7]);
  });

  it('a consumer-protocol JoinGroup whose metadata is not a subscription gets INCONSISTENT_GROUP_PROTOCOL', async () => {
    const garbage = Buffer.from([0x00, 0x00, 0xff, 0xff, 0xff, 0x7f]);
    const answer = await join(joinRequest('', garbage));
    expect(answer!.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(started.broker.services.groups.coordinator.describeGroup('wire-group').members).toHaveLength(0);
  });
});
