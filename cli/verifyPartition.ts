// The verifier moved below the CLI (engine/log/verification/partitionVerifier.ts), where the broker's
// background check and the worker threads can use it too; these names stay importable from here.
export {
  DEFAULT_READ_CHUNK_BYTES,
  MAX_PROBLEMS_PER_FILE,
  MAX_READ_CHUNK_BYTES,
  MIN_READ_CHUNK_BYTES,
  VerifyPathError as InspectPathError,
  errorMessage,
  partitionDirectoriesIn,
  resolveReadChunkBytes,
  scanSegmentFile,
  verifyPartitionDir,
  type ScanEnd,
  type ScanItem,
  type ScannedBatch,
  type ScannedProblem,
  type SegmentSummary,
  type VerifyNotice,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyProblemKind,
  type VerifyReport,
} from '../engine/log/verification/partitionVerifier.js';
