// Which part of a compacted log a clean covers, and how dirty the log is (pure: no I/O).
//
//   logStart ... [clean: cleaned before] firstDirty ... [cleanable] cleanableEnd ... [uncleanable] active
//
// firstDirty is the cleaner checkpoint (where the last clean's key map ended). cleanableEnd is the
// base of the first segment holding a record younger than min.compaction.lag.ms, else the base
// of the active segment: the active segment is never cleaned, nor a segment reaching the high
// watermark (Kafka bounds the cleaner by it too). The dirty ratio is
// cleanable bytes / (clean + cleanable bytes), counted in whole segments as Kafka does.
// Every sealed segment below cleanableEnd is rewritten (so older duplicates and tombstones in the
// clean part go too); the worker groups them into cleaned segments by output size.

export interface SegmentFacts {
  baseOffset: number;
  /** Base offset of the segment after it (the active one's, for the last sealed segment). */
  nextBaseOffset: number;
  sizeBytes: number;
  /** Largest record timestamp, -1 when unknown. */
  largestTimestamp: number;
}

export interface PlanInput {
  /** Sealed segments, oldest first. */
  sealed: readonly SegmentFacts[];
  logStartOffset: number;
  /** The cleaner checkpoint, or null when this log was never cleaned. */
  checkpointOffset: number | null;
  nowMs: number;
  minCompactionLagMs: number;
  highWatermark: number;
}

export interface CleaningPlan {
  firstDirtyOffset: number;
  cleanableEndOffset: number;
  cleanBytes: number;
  cleanableBytes: number;
  /** cleanable / (clean + cleanable); 0 when there is nothing to clean. */
  dirtyRatio: number;
  /** Segments to rewrite, consecutive, oldest first. */
  segments: Array<{ baseOffset: number; nextBaseOffset: number; sizeBytes: number }>;
}

export function planCleaning(input: PlanInput): CleaningPlan {
  // Segments wholly below the log start are retention's to delete.
  const live = input.sealed.filter((segment) => segment.nextBaseOffset > input.logStartOffset);
  const empty: CleaningPlan = { firstDirtyOffset: input.logStartOffset, cleanableEndOffset: input.logStartOffset, cleanBytes: 0, cleanableBytes: 0, dirtyRatio: 0, segments: [] };
  if (live.length === 0) return empty;
  const sealedEnd = live[live.length - 1]!.nextBaseOffset;
  const lowest = Math.max(input.logStartOffset, live[0]!.baseOffset);
  let firstDirty = input.checkpointOffset ?? lowest;
  // A checkpoint past the sealed end belongs to an earlier incarnation of the log (deleted topic,
  // truncation): start over.
  if (firstDirty < lowest || firstDirty > sealedEnd) firstDirty = lowest;
  let cleanableEnd = sealedEnd;
  if (input.minCompactionLagMs > 0) {
    const youngest = input.nowMs - input.minCompactionLagMs;
    const young = live.find((segment) => segment.largestTimestamp > youngest);
    if (young !== undefined) cleanableEnd = young.baseOffset;
  }
  const unacknowledged = live.find((segment) => segment.nextBaseOffset > input.highWatermark);
  if (unacknowledged !== undefined) cleanableEnd = Math.min(cleanableEnd, unacknowledged.baseOffset);
  let cleanBytes = 0;
  let cleanableBytes = 0;
  for (const segment of live) {
    if (segment.nextBaseOffset <= firstDirty) cleanBytes += segment.sizeBytes;
    else if (segment.baseOffset < cleanableEnd) cleanableBytes += segment.sizeBytes;
  }
  if (cleanableEnd <= firstDirty || cleanableBytes === 0) return { ...empty, firstDirtyOffset: firstDirty, cleanableEndOffset: Math.max(cleanableEnd, firstDirty), cleanBytes };
  const segments = live.filter((segment) => segment.baseOffset < cleanableEnd).map(({ baseOffset, nextBaseOffset, sizeBytes }) => ({ baseOffset, nextBaseOffset, sizeBytes }));
  return { firstDirtyOffset: firstDirty, cleanableEndOffset: cleanableEnd, cleanBytes, cleanableBytes, dirtyRatio: cleanableBytes / (cleanBytes + cleanableBytes), segments };
}
