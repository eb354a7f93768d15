// Crash-safe replacement of sealed segments by their cleaned version, by file suffixes (Kafka's
// scheme). Every rename of the cleaner happens here; start-up recovery is the only code that
// finishes or undoes a half-done swap.
//
//   1. the worker writes  <B>.log.cleaned  <B>.index.cleaned  <B>.timeindex.cleaned
//                         <B>.cleaner-manifest.cleaned   {"baseOffset":B,"replacedBaseOffsets":[...]}
//      and fsyncs each. `.cleaned` files are never read; a crash here leaves the old segments.
//   2. promote: the indexes and the manifest become `.swap`, then the log does, then the directory
//      is fsynced. `<B>.log.swap` existing is the commit point: from then on the clean is complete.
//   3. the partition log renames the replaced segments to `.deleted` (reads in flight keep their
//      handles) and install renames the `.swap` files to their final names, log last, and removes
//      the manifest.
//
// Recovery at open: `.cleaned` files are removed (the clean never committed); for each
// `<B>.log.swap`, the segments its manifest names are removed and the swap is installed (step 3
// again, idempotent); `.swap` files without a `<B>.log.swap` (step 2 cut short) are removed. So a
// crash at any step leaves either the old segments or the cleaned ones, never a mix of one group.
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory } from '../../../segments/checkpointFile.js';
import { LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, segmentFileName, segmentPath } from '../../../segments/segmentNames.js';
import type { Logger } from '../../logger.js';

export const CLEANED_SUFFIX = '.cleaned';
export const SWAP_SUFFIX = '.swap';
export const MANIFEST_SUFFIX = '.cleaner-manifest';
const SEGMENT_SUFFIXES = [LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX] as const;
const SWAPPED_LOG = /^(\d{20})\.log\.swap$/;

export interface SwapManifest {
  baseOffset: number;
  /** Base offsets of the sealed segments the cleaned segment replaces (B itself included). */
  replacedBaseOffsets: number[];
}

export interface CleanedFiles {
  log: string;
  offsetIndex: string;
  timeIndex: string;
  manifest: string;
}

export function cleanedFiles(dir: string, baseOffset: number): CleanedFiles {
  return {
    log: segmentPath(dir, baseOffset, LOG_SUFFIX + CLEANED_SUFFIX),
    offsetIndex: segmentPath(dir, baseOffset, OFFSET_INDEX_SUFFIX + CLEANED_SUFFIX),
    timeIndex: segmentPath(dir, baseOffset, TIME_INDEX_SUFFIX + CLEANED_SUFFIX),
    manifest: segmentPath(dir, baseOffset, MANIFEST_SUFFIX + CLEANED_SUFFIX),
  };
}

export function encodeManifest(manifest: SwapManifest): Buffer {
  return Buffer.from(JSON.stringify(manifest), 'utf8');
}

function decodeManifest(text: string, path: string): SwapManifest {
  const parsed = JSON.parse(text) as Partial<SwapManifest>;
  const bases = parsed.replacedBaseOffsets;
  if (!Number.isSafeInteger(parsed.baseOffset) || !Array.isArray(bases) || !bases.every((base) => Number.isSafeInteger(base) && base >= 0)) {
    throw new Error(`cleaner manifest ${path} is malformed: ${text.slice(0, 200)}`);
  }
  return { baseOffset: parsed.baseOffset!, replacedBaseOffsets: bases };
}

/** Step 2: makes the cleaned files of segment B the committed swap (the log file last). */
export async function promoteCleanedToSwap(dir: string, baseOffset: number): Promise<void> {
  for (const suffix of [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, MANIFEST_SUFFIX, LOG_SUFFIX]) {
    const path = segmentPath(dir, baseOffset, suffix);
    await rename(path + CLEANED_SUFFIX, path + SWAP_SUFFIX);
  }
  await fsyncDirectory(dir);
}

/** Step 3's renames: the swap files take their final names (the log last), then the manifest goes. */
export async function installSwap(dir: string, baseOffset: number): Promise<void> {
  for (const suffix of [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX]) {
    const path = segmentPath(dir, baseOffset, suffix);
    await rename(path + SWAP_SUFFIX, path);
  }
  await fsyncDirectory(dir);
  await rm(segmentPath(dir, baseOffset, MANIFEST_SUFFIX + SWAP_SUFFIX), { force: true });
}

/** Removes every `.cleaned` file of a partition directory (a clean that failed or was cut short). */
export async function removeCleanedFiles(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith(CLEANED_SUFFIX)) continue;
    await rm(join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

export interface SwapRecoveryReport {
  cleanedFilesRemoved: number;
  swapsCompleted: number;
  swapFilesRemoved: number;
}

/**
 * Start-up recovery of a partition directory, before its segments are listed: finishes committed
 * swaps and removes the files of uncommitted ones (see the top of this file).
 */
export async function recoverInterruptedSwaps(dir: string, logger: Logger): Promise<SwapRecoveryReport> {
  const report: SwapRecoveryReport = { cleanedFilesRemoved: await removeCleanedFiles(dir), swapsCompleted: 0, swapFilesRemoved: 0 };
  for (const name of await readdir(dir)) {
    const match = SWAPPED_LOG.exec(name);
    if (match === null) continue;
    const baseOffset = Number(match[1]);
    const manifestPath = segmentPath(dir, baseOffset, MANIFEST_SUFFIX + SWAP_SUFFIX);
    let manifest: SwapManifest;
    try {
      manifest = decodeManifest(await readFile(manifestPath, 'utf8'), manifestPath);
    } catch (error) {
      // The manifest is renamed before the log, so this is damage, not an interrupted step: the
      // cleaned log is complete, but which segments it replaces is unknown. Keep the old ones.
      logger.error('cleaned segment has no readable manifest; keeping the old segments and dropping the swap', { dir, baseOffset, error: String(error) });
      for (const suffix of [...SEGMENT_SUFFIXES, MANIFEST_SUFFIX]) await rm(segmentPath(dir, baseOffset, suffix + SWAP_SUFFIX), { force: true });
      continue;
    }
    for (const replaced of manifest.replacedBaseOffsets) {
      if (replaced === baseOffset) continue; // the rename below replaces B's files in one step
      for (const suffix of SEGMENT_SUFFIXES) await rm(segmentPath(dir, replaced, suffix), { force: true });
    }
    for (const suffix of [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX]) {
      // A crash inside installSwap may have moved an index already; the log is what commits.
      const swapped = segmentPath(dir, baseOffset, suffix + SWAP_SUFFIX);
      await rename(swapped, segmentPath(dir, baseOffset, suffix)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
    await rename(segmentPath(dir, baseOffset, LOG_SUFFIX + SWAP_SUFFIX), segmentPath(dir, baseOffset, LOG_SUFFIX));
    await fsyncDirectory(dir);
    await rm(manifestPath, { force: true });
    report.swapsCompleted++;
    logger.warn('completed a compaction swap interrupted by a crash', { dir, segment: segmentFileName(baseOffset, LOG_SUFFIX), replacedSegments: manifest.replacedBaseOffsets.join(',') });
  }
  for (const name of await readdir(dir)) {
    if (!name.endsWith(SWAP_SUFFIX)) continue;
    await rm(join(dir, name), { force: true });
    report.swapFilesRemoved++;
  }
  if (report.cleanedFilesRemoved + report.swapFilesRemoved > 0) {
    logger.warn('removed the files of a compaction that did not commit', { dir, cleanedFiles: report.cleanedFilesRemoved, swapFiles: report.swapFilesRemoved });
  }
  return report;
}
