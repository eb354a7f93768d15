// ListOffsets for the consumer: where a partition starts or ends, or its first record at or after
// a timestamp, asked of each partition's leader. Used by autoOffsetReset and the seekTo* calls.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeListOffsetsResponse, encodeListOffsetsRequest, type ListOffsetsResponse } from '../../protocol/generated/index.js';
import type { Cluster } from '../cluster.js';
import { ApiKey, type BrokerConnection } from '../connection.js';
import { KafkaProtocolError } from '../errors.js';
import type { PartitionState } from './positions.js';

export const LATEST_TIMESTAMP = -1n;
export const EARLIEST_TIMESTAMP = -2n;

/** ListOffsets for each partition at its leader; the log end for a timestamp after every record. */
export async function listOffsets(cluster: Cluster, isolationLevel: 0 | 1, states: readonly PartitionState[], timestamp: bigint): Promise<number[]> {
  const byNode = new Map<number, number[]>();
  for (let i = 0; i < states.length; i++) {
    const state = states[i]!;
    const metadata = await cluster.topic(state.topic);
    const leader = metadata.leaders[state.partition];
    if (leader === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${state.key}: topic ${state.topic} has ${metadata.leaders.length} partitions`);
    let list = byNode.get(leader);
    if (list === undefined) byNode.set(leader, (list = []));
    list.push(i);
  }
  const offsets = new Array<number>(states.length).fill(-1);
  const latest: number[] = [];
  await Promise.all([...byNode].map(async ([nodeId, indexes]) => {
    const connection = await cluster.connectionToNode(nodeId);
    const response = await listOffsetsAt(connection, isolationLevel, indexes.map((i) => states[i]!), timestamp);
    for (const i of indexes) {
      const state = states[i]!;
      const answer = response.topics.find((t) => t.name === state.topic)?.partitions.find((p) => p.partitionIndex === state.partition);
      if (answer === undefined) throw new KafkaProtocolError(ErrorCode.UNKNOWN_SERVER_ERROR, `ListOffsets answered without ${state.key}`);
      if (answer.errorCode !== ErrorCode.NONE) {
        const error = new KafkaProtocolError(answer.errorCode, `ListOffsets of ${state.key}`);
        if (error.retriable) void cluster.refreshTopic(state.topic).catch(() => undefined);
        throw error;
      }
      const offset = Number(answer.offset ?? -1n);
      if (offset < 0) latest.push(i);
      else offsets[i] = offset;
    }
  }));
  if (latest.length > 0) {
    const ends = await listOffsets(cluster, isolationLevel, latest.map((i) => states[i]!), LATEST_TIMESTAMP);
    latest.forEach((i, j) => (offsets[i] = ends[j]!));
  }
  return offsets;
}

function listOffsetsAt(connection: BrokerConnection, isolationLevel: 0 | 1, states: readonly PartitionState[], timestamp: bigint): Promise<ListOffsetsResponse> {
  const topics: Array<{ name: string; partitions: Array<{ partitionIndex: number; timestamp: bigint; currentLeaderEpoch: number }> }> = [];
  for (const state of states) {
    let topic = topics.find((t) => t.name === state.topic);
    if (topic === undefined) topics.push((topic = { name: state.topic, partitions: [] }));
    topic.partitions.push({ partitionIndex: state.partition, timestamp, currentLeaderEpoch: -1 });
  }
  const request = { replicaId: -1, isolationLevel, topics };
  return connection.request(ApiKey.ListOffsets, (writer, version) => encodeListOffsetsRequest(writer, version, request), decodeListOffsetsResponse);
}
