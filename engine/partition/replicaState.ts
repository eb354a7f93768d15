// The replica side of one partition, as its leader sees it: the leader epoch, the in-sync replica
// set, how far each follower has copied the log, and the high watermark those give. On a single
// node the leader is the only replica, so the high watermark is the log's durable end; issue 13's
// followers report their log end offsets here and the same rule covers them.

/** The broker id of a replica that is this broker (a single node is always replica 0). */
export const LOCAL_REPLICA_ID = 0;

export class ReplicaState {
  private epoch: number;
  private readonly inSync: Set<number>;
  /** Log end offsets followers reported (their fetch offsets), by replica id. */
  private readonly followerEnds = new Map<number, number>();
  private watermark: number;

  constructor(options: { leaderEpoch: number; highWatermark: number; isr?: readonly number[]; localReplicaId?: number }) {
    const local = options.localReplicaId ?? LOCAL_REPLICA_ID;
    this.localReplicaId = local;
    this.epoch = options.leaderEpoch;
    this.inSync = new Set(options.isr ?? [local]);
    if (!this.inSync.has(local)) throw new RangeError(`the leader ${local} must be in its own ISR ${[...this.inSync].join(',')}`);
    this.watermark = options.highWatermark;
  }

  readonly localReplicaId: number;

  get leaderEpoch(): number {
    return this.epoch;
  }

  get highWatermark(): number {
    return this.watermark;
  }

  /** Records how far a follower has copied the log (the offset it fetches from next). */
  updateFollowerEnd(replicaId: number, logEndOffset: number): void {
    if (replicaId === this.localReplicaId) throw new RangeError('the leader does not report to itself');
    if (!Number.isSafeInteger(logEndOffset) || logEndOffset < 0) throw new RangeError(`a follower's log end must be a non-negative offset, got ${logEndOffset}`);
    this.followerEnds.set(replicaId, logEndOffset);
  }

  /**
   * Moves the high watermark to the smallest log end over the ISR (the leader's counted as its
   * durable end), never backwards. Returns whether it moved.
   */
  advance(localDurableEnd: number): boolean {
    let candidate = localDurableEnd;
    for (const replica of this.inSync) {
      if (replica === this.localReplicaId) continue;
      candidate = Math.min(candidate, this.followerEnds.get(replica) ?? 0);
    }
    if (candidate <= this.watermark) return false;
    this.watermark = candidate;
    return true;
  }
}
