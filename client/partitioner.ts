// Partitioning as Kafka's Java client does it, so a key lands on the same partition whichever
// client wrote it: toPositive(murmur2(keyBytes)) % partitionCount (kafkajs's DefaultPartitioner
// since 2.0 does the same). Records without a key stick to one partition until a batch of that
// partition is sent, then move to another one (sticky partitioning, KIP-480).

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), seed 0x9747b28c, as int32. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2]! << 16;
  if (rest >= 2) h ^= data[whole + 1]! << 8;
  if (rest >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner picks for a key. */
export function partitionForKey(key: Uint8Array, partitionCount: number): number {
  return (murmur2(key) & 0x7fffffff) % partitionCount;
}

/** Sticky choice for records without a key: one partition per topic until onBatchSent. */
export class StickyPartitioner {
  private readonly current = new Map<string, number>();

  constructor(private readonly random: () => number = Math.random) {}

  partition(topic: string, partitionCount: number): number {
    const chosen = this.current.get(topic);
    if (chosen !== undefined && chosen < partitionCount) return chosen;
    const next = Math.floor(this.random() * partitionCount);
    this.current.set(topic, next);
    return next;
  }

  /** A batch of `partition` was sent: move the topic's sticky partition elsewhere. */
  onBatchSent(topic: string, partition: number, partitionCount: number): void {
    if (this.current.get(topic) !== partition || partitionCount <= 1) return;
    const next = Math.floor(this.random() * (partitionCount - 1));
    this.current.set(topic, next >= partition ? next + 1 : next);
  }
}
