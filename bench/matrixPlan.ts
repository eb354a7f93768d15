// Which points the end-to-end matrix (`tidelog bench`) measures. Pure: no I/O.
//
// The axes are partitions (1, 4, 16, 64), segment.bytes (1 MiB, 16 MiB, 128 MiB, 1 GiB),
// record size (100 B, 1 KiB, 10 KiB) and acks (1; all with flush.messages=1, an fsync per append).
// Their cross product is 96 points, each measured four times (two clients, produce and consume):
// over an hour. The default run instead varies one axis at a time around a base point
// (4 partitions, 16 MiB segments, 1 KiB records, acks=1) and adds the full record size x acks grid
// at 1 partition (16 MiB segments): 15 points. `--full` runs the cross product; `--quick` runs the
// point of the targets (1 partition, 16 MiB segments, 100 B, acks=1) and that point with
// acks=all, with 4 partitions and with 1 MiB segments.

export type AcksSetting = 1 | 'all';
export type MatrixMode = 'quick' | 'default' | 'full';

export interface MatrixPoint {
  partitions: number;
  segmentBytes: number;
  recordBytes: number;
  acks: AcksSetting;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

export const MATRIX_AXES = {
  partitions: [1, 4, 16, 64],
  segmentBytes: [1 * MIB, 16 * MIB, 128 * MIB, 1 * GIB],
  recordBytes: [100, 1 * KIB, 10 * KIB],
  acks: [1, 'all'] as AcksSetting[],
} as const;

export const BASE_POINT: Readonly<MatrixPoint> = { partitions: 4, segmentBytes: 16 * MIB, recordBytes: 1 * KIB, acks: 1 };

/** The point of the targets: 100-byte records to one partition with acks=1. */
export const TARGET_POINT: Readonly<MatrixPoint> = { partitions: 1, segmentBytes: 16 * MIB, recordBytes: 100, acks: 1 };

const QUICK_POINTS: readonly MatrixPoint[] = [
  TARGET_POINT,
  { ...TARGET_POINT, acks: 'all' },
  { ...TARGET_POINT, partitions: 4 },
  { ...TARGET_POINT, segmentBytes: 1 * MIB },
];

export const MATRIX_DESCRIPTIONS: Record<MatrixMode, string> = {
  quick:
    '4 points with 100-byte records: 1 partition, 16 MiB segments, acks=1 (the target row); the same with acks=all (flush.messages=1); with 4 partitions; with 1 MiB segments.',
  default:
    'one axis varied at a time around the base point (4 partitions, 16 MiB segments, 1 KiB records, acks=1), plus the full record size x acks grid at 1 partition and 16 MiB segments: 15 points (the two overlap at 1 partition, 1 KiB, acks=1). --full runs the whole 4 x 4 x 3 x 2 cross product (96 points).',
  full: 'the whole cross product of partitions x segment.bytes x record size x acks: 96 points.',
};

export function samePoint(a: MatrixPoint, b: MatrixPoint): boolean {
  return a.partitions === b.partitions && a.segmentBytes === b.segmentBytes && a.recordBytes === b.recordBytes && a.acks === b.acks;
}

/** The points of a mode, without duplicates, in the order they run. */
export function matrixPoints(mode: MatrixMode): MatrixPoint[] {
  if (mode === 'quick') return QUICK_POINTS.map((point) => ({ ...point }));
  const points: MatrixPoint[] = [];
  const add = (point: MatrixPoint): void => {
    if (!points.some((existing) => samePoint(existing, point))) points.push(point);
  };
  if (mode === 'full') {
    for (const partitions of MATRIX_AXES.partitions) {
      for (const segmentBytes of MATRIX_AXES.segmentBytes) {
        for (const recordBytes of MATRIX_AXES.recordBytes) {
          for (const acks of MATRIX_AXES.acks) add({ partitions, segmentBytes, recordBytes, acks });
        }
      }
    }
    return points;
  }
  add({ ...BASE_POINT });
  for (const partitions of MATRIX_AXES.partitions) add({ ...BASE_POINT, partitions });
  for (const segmentBytes of MATRIX_AXES.segmentBytes) add({ ...BASE_POINT, segmentBytes });
  for (const recordBytes of MATRIX_AXES.recordBytes) add({ ...BASE_POINT, recordBytes });
  for (const acks of MATRIX_AXES.acks) add({ ...BASE_POINT, acks });
  for (const recordBytes of MATRIX_AXES.recordBytes) {
    for (const acks of MATRIX_AXES.acks) add({ ...BASE_POINT, partitions: 1, recordBytes, acks });
  }
  return points;
}

/** 1024 -> "1 KiB", 16777216 -> "16 MiB", 100 -> "100 B". */
export function formatBinaryBytes(bytes: number): string {
  for (const [unit, size] of [['GiB', GIB], ['MiB', MIB], ['KiB', KIB]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

/** "1 partition, 16 MiB segments, 100 B records, acks=1" in short: "p1 seg 16 MiB rec 100 B acks=1". */
export function pointLabel(point: MatrixPoint): string {
  return `p${point.partitions} seg ${formatBinaryBytes(point.segmentBytes)} rec ${formatBinaryBytes(point.recordBytes)} acks=${point.acks}`;
}
