// One produced batch's compressed records area, decompressed (within a hard bound) and checked on
// a worker thread, so neither the inflation nor the walk runs on the event loop. Only the verdict
// comes back: the decompressed bytes never cross threads.
import { checkRecordsArea, type AreaVerdict, type RecordsRules } from '../../../segments/recordsCheck.js';

export interface ValidateRecordsInput {
  /** Compression codec id (attributes bits 0-2). */
  codec: number;
  /** The compressed records area, copied to its own buffer. */
  data: Uint8Array;
  /** Decompressed bytes allowed; past it the batch is refused. */
  limitBytes: number;
  rules: RecordsRules;
}

export type ValidateRecordsOutput = AreaVerdict;

export async function runValidateRecords(input: ValidateRecordsInput): Promise<ValidateRecordsOutput> {
  return checkRecordsArea(input.codec, input.data, input.limitBytes, input.rules);
}
