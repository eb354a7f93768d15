// The "consumer" protocol type's member metadata and assignments (Kafka's ConsumerProtocol):
// int16 version, then ConsumerProtocolSubscription / ConsumerProtocolAssignment. Newer versions
// only append fields, so bytes of a version past ours are read as our latest.
import { decodeConsumerProtocolAssignment } from '../../protocol/generated/consumerProtocolAssignment.js';
import { decodeConsumerProtocolSubscription } from '../../protocol/generated/consumerProtocolSubscription.js';
import { ByteReader } from '../../protocol/wire.js';

export const CONSUMER_PROTOCOL_TYPE = 'consumer';
const LATEST_VERSION = 3;

/** Whether `metadata` is a well-formed consumer subscription. */
export function isValidSubscription(metadata: Buffer): boolean {
  try {
    const reader = new ByteReader(metadata);
    const version = reader.readInt16();
    if (version < 0) return false;
    decodeConsumerProtocolSubscription(reader, Math.min(version, LATEST_VERSION));
    return true;
  } catch {
    return false;
  }
}

/**
 * The partitions an assignment gives, as "topic\0partition" keys; an empty buffer assigns nothing;
 * null when the bytes are not a consumer assignment.
 */
export function assignedPartitions(assignment: Buffer): Set<string> | null {
  if (assignment.length === 0) return new Set();
  try {
    const reader = new ByteReader(assignment);
    const version = reader.readInt16();
    if (version < 0) return null;
    const decoded = decodeConsumerProtocolAssignment(reader, Math.min(version, LATEST_VERSION));
    return new Set(decoded.assignedPartitions.flatMap((entry) => entry.partitions.map((partition) => `${entry.topic}\u0000${partition}`)));
  } catch {
    return null;
  }
}
