// Verification of a partition directory on a worker thread: the engine of `tidelog inspect verify`
// (the whole directory) and of the broker's background check (its sealed segments only). Reads
// only; the report comes back as plain data.
import { verifyPartitionDir, type VerifyReport } from '../../log/verification/partitionVerifier.js';

export interface VerifySegmentsInput {
  /** A partition directory. */
  dir: string;
  /** Offsets may skip (compacted topics). */
  allowOffsetGaps: boolean;
  /** Check only these segments (by base offset); without it, every segment of the directory. */
  segmentBaseOffsets?: number[];
  /** Read window for segment files; default partitionVerifier's. */
  readChunkBytes?: number;
}

export type VerifySegmentsOutput = VerifyReport;

/** `signal`: the task's cancel; checked before reading (the verifier itself runs to its end). */
export async function runVerifySegments(input: VerifySegmentsInput, signal?: AbortSignal): Promise<VerifySegmentsOutput> {
  signal?.throwIfAborted();
  return verifyPartitionDir(input.dir, {
    allowOffsetGaps: input.allowOffsetGaps,
    ...(input.segmentBaseOffsets === undefined ? {} : { segmentBaseOffsets: input.segmentBaseOffsets }),
    ...(input.readChunkBytes === undefined ? {} : { readChunkBytes: input.readChunkBytes }),
  });
}
