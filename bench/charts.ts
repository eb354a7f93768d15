// SVG charts of the end-to-end matrix, written as text (no chart library): a line chart over a
// categorical x axis and a grouped bar chart with a log y axis. Pure: returns strings.
//
// Every series is one <g class="series" data-series="NAME"> so a reader (or a test) can find it;
// every text is XML-escaped.
import { formatBinaryBytes, pointLabel, samePoint, BASE_POINT, type MatrixPoint } from './matrixPlan.js';
import type { MatrixRow } from './matrixReport.js';

const MIN_WIDTH = 880;
const PLOT_HEIGHT = 322;
const MARGIN = { top: 48, right: 200, bottom: 90, left: 90 };
/** Room under the plot for category labels turned 35 degrees (matrix point labels are long). */
const TURNED_LABELS_BOTTOM = 150;
const TURNED_LABELS_LEFT = 160;
/** Categories beyond this many, or labels wider than their category, get turned labels. */
const MAX_UPRIGHT_CATEGORIES = 6;
/** A rough width of one character of the 12 px sans-serif labels. */
const LABEL_CHAR_WIDTH_PX = 7;
/** Bar charts grow wider with their bars, so no bar gets thinner than this. */
const MIN_BAR_WIDTH = 7;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const Y_TICKS = 5;
/** Bars of a group take this share of the group's width. */
const GROUP_FILL = 0.8;

export interface ChartSeries {
  name: string;
  /** One value per category; null: not measured. */
  values: ReadonlyArray<number | null>;
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly ChartSeries[];
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** 1234567 -> "1.23M", 4500 -> "4.5k", 0.25 -> "0.25". */
export function formatAxisNumber(value: number): string {
  const abs = Math.abs(value);
  const trim = (text: string): string => text.replace(/\.?0+$/, '');
  if (abs >= 1e9) return `${trim((value / 1e9).toFixed(2))}G`;
  if (abs >= 1e6) return `${trim((value / 1e6).toFixed(2))}M`;
  if (abs >= 1e3) return `${trim((value / 1e3).toFixed(2))}k`;
  if (abs >= 1 || abs === 0) return trim(value.toFixed(2));
  return String(Number(value.toPrecision(2)));
}

/** The smallest of 1, 2, 2.5, 5, 10 times a power of ten that is >= value (1 for value <= 0). */
export function niceCeiling(value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value * (1 - 1e-12)) return step * power;
  }
  return 10 * power;
}

/** Where the plot sits: chosen per chart from its categories (and bars). */
interface Layout {
  width: number;
  height: number;
  bottom: number;
  turnedLabels: boolean;
  plotLeft: number;
  plotRight: number;
  plotTop: number;
  plotBottom: number;
}

function layoutFor(labels: readonly string[], minPlotWidth: number): Layout {
  const categories = Math.max(labels.length, 1);
  const uprightPlotWidth = Math.max(MIN_WIDTH - MARGIN.left - MARGIN.right, minPlotWidth);
  const longestLabelPx = Math.max(0, ...labels.map((label) => label.length)) * LABEL_CHAR_WIDTH_PX;
  const turnedLabels = labels.length > MAX_UPRIGHT_CATEGORIES || longestLabelPx > uprightPlotWidth / categories;
  const bottom = turnedLabels ? TURNED_LABELS_BOTTOM : MARGIN.bottom;
  // Turned labels run down to the left of their category: the first ones need room there.
  const left = turnedLabels ? TURNED_LABELS_LEFT : MARGIN.left;
  const width = Math.max(MIN_WIDTH, left + MARGIN.right + minPlotWidth);
  const height = MARGIN.top + PLOT_HEIGHT + bottom;
  return { width, height, bottom, turnedLabels, plotLeft: left, plotRight: width - MARGIN.right, plotTop: MARGIN.top, plotBottom: MARGIN.top + PLOT_HEIGHT };
}

function frame(spec: ChartSpec, layout: Layout, body: string[], yTicks: Array<{ value: number; y: number }>, legend: 'line' | 'bar'): string {
  const { width, height, plotLeft, plotRight, plotTop, plotBottom } = layout;
  const parts = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`,
    `<g class="y-axis">`,
  ];
  for (const tick of yTicks) {
    parts.push(`<line x1="${plotLeft}" y1="${tick.y.toFixed(1)}" x2="${plotRight}" y2="${tick.y.toFixed(1)}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${plotLeft - 8}" y="${(tick.y + 4).toFixed(1)}" text-anchor="end">${escapeXml(formatAxisNumber(tick.value))}</text>`);
  }
  parts.push(
    `<text transform="translate(20 ${(plotTop + plotBottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
    `</g>`,
    `<line x1="${plotLeft}" y1="${plotBottom}" x2="${plotRight}" y2="${plotBottom}" stroke="#333333"/>`,
    `<line x1="${plotLeft}" y1="${plotTop}" x2="${plotLeft}" y2="${plotBottom}" stroke="#333333"/>`,
    `<text x="${(plotLeft + plotRight) / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    ...body,
    `<g class="legend">`,
  );
  spec.series.forEach((series, index) => {
    const y = plotTop + 10 + index * 20;
    const color = PALETTE[index % PALETTE.length]!;
    if (legend === 'line') {
      parts.push(`<line x1="${plotRight + 16}" y1="${y}" x2="${plotRight + 40}" y2="${y}" stroke="${color}" stroke-width="3"${series.dashed === true ? ' stroke-dasharray="6 3"' : ''}/>`);
    } else {
      parts.push(`<rect x="${plotRight + 16}" y="${y - 6}" width="24" height="12" fill="${color}"${series.dashed === true ? ' fill-opacity="0.6"' : ''}/>`);
    }
    parts.push(`<text x="${plotRight + 46}" y="${y + 4}">${escapeXml(series.name)}</text>`);
  });
  parts.push(`</g>`, `</svg>`, '');
  return parts.join('\n');
}

/** Category labels under the x axis at each category's x; turned when there are many. */
function xLabels(categories: readonly string[], layout: Layout, xOf: (index: number) => number): string[] {
  const y = layout.plotBottom + 18;
  return [
    `<g class="x-axis">`,
    ...categories.map((label, index) => {
      const x = xOf(index).toFixed(1);
      return layout.turnedLabels
        ? `<text transform="translate(${x} ${y - 6}) rotate(-35)" text-anchor="end" font-size="10">${escapeXml(label)}</text>`
        : `<text x="${x}" y="${y}" text-anchor="middle">${escapeXml(label)}</text>`;
    }),
    `</g>`,
  ];
}

/** Lines over categories, linear y axis from 0. */
export function renderLineChart(spec: ChartSpec): string {
  const layout = layoutFor(spec.categories, 0);
  const { plotLeft, plotRight, plotTop, plotBottom } = layout;
  const values = spec.series.flatMap((series) => series.values.filter((value): value is number => value !== null));
  const yMax = niceCeiling(Math.max(0, ...values));
  const yOf = (value: number): number => plotBottom - (value / yMax) * (plotBottom - plotTop);
  const step = (plotRight - plotLeft) / Math.max(spec.categories.length, 1);
  const xOf = (index: number): number => plotLeft + step * (index + 0.5);
  const body = xLabels(spec.categories, layout, xOf);
  spec.series.forEach((series, seriesIndex) => {
    const color = PALETTE[seriesIndex % PALETTE.length]!;
    body.push(`<g class="series" data-series="${escapeXml(series.name)}" stroke="${color}" fill="${color}">`);
    // A gap (null) ends a line; each run of measured points is one polyline.
    let run: string[] = [];
    const flush = (): void => {
      if (run.length > 1) body.push(`<polyline fill="none" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="6 3"' : ''} points="${run.join(' ')}"/>`);
      run = [];
    };
    series.values.forEach((value, index) => {
      if (value === null) return flush();
      const [x, y] = [xOf(index).toFixed(1), yOf(value).toFixed(1)];
      run.push(`${x},${y}`);
      body.push(`<circle cx="${x}" cy="${y}" r="3.5"><title>${escapeXml(`${series.name} at ${spec.categories[index] ?? index}: ${formatAxisNumber(value)}`)}</title></circle>`);
    });
    flush();
    body.push(`</g>`);
  });
  const ticks = Array.from({ length: Y_TICKS + 1 }, (_, i) => ({ value: (yMax * i) / Y_TICKS, y: yOf((yMax * i) / Y_TICKS) }));
  return frame(spec, layout, body, ticks, 'line');
}

/** Bars per category and series, log10 y axis (latencies span orders of magnitude). */
export function renderLogBarChart(spec: ChartSpec): string {
  const categories = Math.max(spec.categories.length, 1);
  const layout = layoutFor(spec.categories, (categories * Math.max(spec.series.length, 1) * MIN_BAR_WIDTH) / GROUP_FILL);
  const { plotLeft, plotRight, plotTop, plotBottom } = layout;
  const values = spec.series.flatMap((series) => series.values.filter((value): value is number => value !== null && value > 0));
  const lowPower = values.length === 0 ? -1 : Math.floor(Math.log10(Math.min(...values)));
  const highPower = Math.max(lowPower + 1, values.length === 0 ? 0 : Math.ceil(Math.log10(Math.max(...values))));
  const yOf = (value: number): number => {
    const clamped = Math.max(value, 10 ** lowPower);
    return plotBottom - ((Math.log10(clamped) - lowPower) / (highPower - lowPower)) * (plotBottom - plotTop);
  };
  const groupWidth = (plotRight - plotLeft) / categories;
  const barWidth = (groupWidth * GROUP_FILL) / Math.max(spec.series.length, 1);
  const xOf = (index: number): number => plotLeft + groupWidth * (index + 0.5);
  const body = xLabels(spec.categories, layout, xOf);
  spec.series.forEach((series, seriesIndex) => {
    const color = PALETTE[seriesIndex % PALETTE.length]!;
    body.push(`<g class="series" data-series="${escapeXml(series.name)}" fill="${color}"${series.dashed === true ? ' fill-opacity="0.6"' : ''}>`);
    series.values.forEach((value, index) => {
      if (value === null) return;
      const x = plotLeft + groupWidth * index + (groupWidth * (1 - GROUP_FILL)) / 2 + barWidth * seriesIndex;
      const y = yOf(value);
      body.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(plotBottom - y).toFixed(1)}"><title>${escapeXml(`${series.name} at ${spec.categories[index] ?? index}: ${formatAxisNumber(value)}`)}</title></rect>`);
    });
    body.push(`</g>`);
  });
  const ticks = [];
  for (let power = lowPower; power <= highPower; power++) ticks.push({ value: 10 ** power, y: yOf(10 ** power) });
  return frame(spec, layout, body, ticks, 'bar');
}

// ---------------------------------------------------------------------------------------------
// The matrix's three charts

type Axis = 'partitions' | 'segmentBytes';

export const THROUGHPUT_SERIES = ['tidelog produce', 'kafkajs produce', 'tidelog consume', 'kafkajs consume'] as const;
export const LATENCY_SERIES = ['tidelog p50', 'tidelog p99', 'tidelog p999', 'kafkajs p50', 'kafkajs p99', 'kafkajs p999'] as const;

function otherAxesKey(row: MatrixPoint, axis: Axis): string {
  const rest: MatrixPoint = { ...row, [axis]: 0 };
  return pointLabel(rest);
}

/**
 * The rows that vary `axis` with the other axes fixed: of all such slices the one with the most
 * distinct values on the axis (the base point's slice on a tie).
 */
export function axisSlice(rows: readonly MatrixRow[], axis: Axis): { rows: MatrixRow[]; fixed: MatrixPoint | null } {
  const slices = new Map<string, MatrixRow[]>();
  for (const row of rows) {
    const key = otherAxesKey(row, axis);
    slices.set(key, [...(slices.get(key) ?? []), row]);
  }
  let best: MatrixRow[] = [];
  let bestWidth = 0;
  const baseKey = otherAxesKey(BASE_POINT, axis);
  for (const [key, slice] of slices) {
    const width = new Set(slice.map((row) => row[axis])).size;
    if (width > bestWidth || (width === bestWidth && key === baseKey)) {
      best = slice;
      bestWidth = width;
    }
  }
  const first = best[0];
  return { rows: best, fixed: first === undefined ? null : { ...first } };
}

function throughputChart(rows: readonly MatrixRow[], axis: Axis): string {
  const { rows: slice, fixed } = axisSlice(rows, axis);
  const axisValues = [...new Set(slice.map((row) => row[axis]))].sort((a, b) => a - b);
  const series = THROUGHPUT_SERIES.map((name) => {
    const [client, op] = name.split(' ') as [MatrixRow['client'], MatrixRow['op']];
    return {
      name,
      dashed: client === 'kafkajs',
      values: axisValues.map((value) => slice.find((row) => row.client === client && row.op === op && row[axis] === value)?.recordsPerSec ?? null),
    };
  });
  const fixedText =
    fixed === null ? 'no rows' : axis === 'partitions' ? `segments ${formatBinaryBytes(fixed.segmentBytes)}, ${formatBinaryBytes(fixed.recordBytes)} records, acks=${fixed.acks}` : `${fixed.partitions} partition(s), ${formatBinaryBytes(fixed.recordBytes)} records, acks=${fixed.acks}`;
  return renderLineChart({
    title: `Throughput against ${axis === 'partitions' ? 'partitions' : 'segment.bytes'} (${fixedText})`,
    xLabel: axis === 'partitions' ? 'partitions' : 'segment.bytes',
    yLabel: 'records/s',
    categories: axisValues.map((value) => (axis === 'partitions' ? String(value) : formatBinaryBytes(value))),
    series,
  });
}

function latencyChart(rows: readonly MatrixRow[]): string {
  const produceRows = rows.filter((row) => row.op === 'produce');
  const points: MatrixPoint[] = [];
  for (const row of produceRows) if (!points.some((point) => samePoint(point, row))) points.push(row);
  const series = LATENCY_SERIES.map((name) => {
    const [client, percentile] = name.split(' ') as [MatrixRow['client'], 'p50' | 'p99' | 'p999'];
    const field = `${percentile}Ms` as const;
    return { name, dashed: client === 'kafkajs', values: points.map((point) => produceRows.find((row) => row.client === client && samePoint(row, point))?.[field] ?? null) };
  });
  return renderLogBarChart({
    title: 'Produce latency per send (call to acknowledgement)',
    xLabel: 'matrix point',
    yLabel: 'ms (log scale)',
    categories: points.map(pointLabel),
    series,
  });
}

/** File name -> SVG text. */
export function matrixCharts(rows: readonly MatrixRow[]): Array<{ fileName: string; svg: string }> {
  return [
    { fileName: 'throughput-vs-partitions.svg', svg: throughputChart(rows, 'partitions') },
    { fileName: 'throughput-vs-segment-bytes.svg', svg: throughputChart(rows, 'segmentBytes') },
    { fileName: 'latency-percentiles.svg', svg: latencyChart(rows) },
  ];
}
