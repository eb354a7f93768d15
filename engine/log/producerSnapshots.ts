// Producer-state snapshot files of one partition directory: `<offset, 20 digits>.snapshot`, the
// state of every idempotent producer as of that offset (ProducerStateManager.toSnapshot). The
// writer writes one at each roll and at close; recovery (logRecovery.ts) loads the newest one at
// or below the log end and replays the batch headers after it.
import { readdir, rm } from 'node:fs/promises';
import { writeFileSynced } from '../../segments/logSegment.js';
import { segmentPath } from '../../segments/segmentNames.js';
import type { ProducerStateManager } from './producerState.js';

export const SNAPSHOT_SUFFIX = '.snapshot';

/** Producer-state snapshots kept per partition; older ones are removed at each roll. */
const SNAPSHOTS_KEPT = 2;

/**
 * Snapshots producer state as of `offset` (a new segment's base, or the log end at close) and
 * drops old snapshots. Written even when empty: it bounds the scan at the next open.
 */
export async function writeProducerSnapshot(dir: string, producers: ProducerStateManager, offset: number): Promise<void> {
  await writeFileSynced(segmentPath(dir, offset, SNAPSHOT_SUFFIX), producers.toSnapshot(offset));
  const older = (await readdir(dir))
    .filter((name) => name.endsWith(SNAPSHOT_SUFFIX))
    .map((name) => Number(name.slice(0, -SNAPSHOT_SUFFIX.length)))
    .filter((snapshot) => Number.isSafeInteger(snapshot))
    .sort((a, b) => b - a)
    .slice(SNAPSHOTS_KEPT);
  for (const snapshot of older) await rm(segmentPath(dir, snapshot, SNAPSHOT_SUFFIX), { force: true });
}
