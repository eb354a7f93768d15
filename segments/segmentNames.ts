// Segment file names: the segment's base offset as 20 zero-padded decimal digits plus a suffix,
// so sorting names sorts segments by offset (Kafka's convention).
import { join } from 'node:path';

export const LOG_SUFFIX = '.log';
export const OFFSET_INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
export const DELETED_SUFFIX = '.deleted';
const BASE_OFFSET_DIGITS = 20;
const SEGMENT_FILE = /^(\d{20})\.(log|index|timeindex)$/;

export function segmentFileName(baseOffset: number, suffix: string): string {
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) throw new RangeError(`segment base offset must be a non-negative safe integer, got ${baseOffset}`);
  return `${String(baseOffset).padStart(BASE_OFFSET_DIGITS, '0')}${suffix}`;
}

export function segmentPath(dir: string, baseOffset: number, suffix: string): string {
  return join(dir, segmentFileName(baseOffset, suffix));
}

/** The base offset and kind of a segment file name, or null for other files. */
export function parseSegmentFileName(name: string): { baseOffset: number; kind: 'log' | 'index' | 'timeindex' } | null {
  const match = SEGMENT_FILE.exec(name);
  if (match === null) return null;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { baseOffset, kind: match[2] as 'log' | 'index' | 'timeindex' };
}

/**
 * Present in a partition directory once its log may hold offset gaps (its cleanup.policy included
 * compact at some point). Gaps left by compaction stay when the policy later changes to delete,
 * so recovery, reads and verification keep allowing them, across restarts too.
 */
export const OFFSET_GAPS_MARKER = 'offset-gaps-allowed';

const PARTITION_DIR = /^(.+)-(\d+)$/;

/** "orders-3" -> { topic: "orders", partition: 3 } (topic names may contain '-'); null for any other name. */
export function parsePartitionDirName(name: string): { topic: string; partition: number } | null {
  const match = PARTITION_DIR.exec(name);
  return match === null ? null : { topic: match[1]!, partition: Number(match[2]) };
}

/**
 * Holds one offset: every batch at or above it passed the broker's append validation (records,
 * lengths, compression). Batches below it were written by a version that did not validate them,
 * so reads check their records before serving them. Written when a log without it is opened.
 */
export const RECORDS_VALIDATED_MARKER = 'records-validated-from';
