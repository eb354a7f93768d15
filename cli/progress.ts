// Progress of long CLI runs (produce from a stream, consume): one status line on stderr, redrawn
// in place a few times per second, and only when stderr is a terminal. Piped or redirected stderr
// gets nothing from here, so scripts see exactly the lines they saw before.
//
// formatProgress is a pure function (tested on its own); ProgressLine owns the timer and the
// terminal line, and does nothing at all off a TTY.

/** What a run reports at a redraw. */
export interface ProgressSnapshot {
  records: number;
  /** Bytes of those records (consume: keys and values; produce: the input lines). */
  bytes: number;
  /** Records not yet read (consume) when known; null or absent when not. */
  lagRecords?: number | null;
}

export interface ProgressFigures extends ProgressSnapshot {
  elapsedMs: number;
  /** Rate over about the last second (not since the start, which hides stalls). */
  recordsPerSec: number;
  bytesPerSec: number;
}

/** Redraws per second stay at or below 1000 / REDRAW_INTERVAL_MS. */
export const REDRAW_INTERVAL_MS = 250;
/** Redraws the rate is measured over (about one second). */
const RATE_WINDOW_REDRAWS = 4;
/** A status line never wraps: a wrapped line cannot be redrawn in place with '\r'. */
const FALLBACK_COLUMNS = 80;
const MB = 1_000_000;
const CLEAR_TO_END_OF_LINE = '\u001b[K';

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function megabytes(bytes: number): string {
  const mb = bytes / MB;
  return mb < 10 ? mb.toFixed(2) : mb < 100 ? mb.toFixed(1) : mb.toFixed(0);
}

function duration(elapsedMs: number): string {
  const seconds = Math.floor(elapsedMs / 1000);
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes}m${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`;
}

/** `orders: 12,345 records, 1.23 MB, 4,567 rec/s, 0.45 MB/s, lag 89, 3s` (fits 80 columns for short labels) */
export function formatProgress(label: string, figures: ProgressFigures): string {
  const parts = [
    `${count(figures.records)} record${figures.records === 1 ? '' : 's'}`,
    `${megabytes(figures.bytes)} MB`,
    `${count(figures.recordsPerSec)} rec/s`,
    `${megabytes(figures.bytesPerSec)} MB/s`,
  ];
  if (figures.lagRecords !== undefined && figures.lagRecords !== null) parts.push(`lag ${count(figures.lagRecords)}`);
  parts.push(duration(figures.elapsedMs));
  return `${label}: ${parts.join(', ')}`;
}

/** The part of a terminal stream ProgressLine uses (process.stderr, or a fake in tests). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

export interface ProgressClock {
  now(): number;
}

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  clock?: ProgressClock;
  /** A further condition besides a TTY (consume: stdout is not that same terminal). */
  onlyIf?: boolean;
}

/**
 * One status line redrawn every REDRAW_INTERVAL_MS from `sample`. Off a TTY, start/stop do
 * nothing and sample is never called.
 */
export class ProgressLine {
  readonly enabled: boolean;
  private timer: NodeJS.Timeout | null = null;
  private startedAtMs = 0;
  /** The last RATE_WINDOW_REDRAWS samples, oldest first: the rate is measured from the oldest. */
  private window: Array<{ atMs: number; records: number; bytes: number }> = [];
  private drawn = false;

  private readonly stream: ProgressStream;
  private readonly clock: ProgressClock;

  constructor(
    private readonly label: string,
    private readonly sample: () => ProgressSnapshot,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.clock = options.clock ?? Date;
    this.enabled = this.stream.isTTY === true && options.onlyIf !== false;
  }

  start(): void {
    if (!this.enabled || this.timer !== null) return;
    this.startedAtMs = this.clock.now();
    this.window = [{ atMs: this.startedAtMs, records: 0, bytes: 0 }];
    this.timer = setInterval(() => this.redraw(), REDRAW_INTERVAL_MS);
    // The status line must never keep a finished command alive.
    this.timer.unref();
  }

  /** Stops redrawing and erases the line, so the command's own last line prints cleanly. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.drawn) this.stream.write(`\r${CLEAR_TO_END_OF_LINE}`);
    this.drawn = false;
  }

  /** Writes a whole line of the command's own to the stream without garbling the status line. */
  print(text: string): void {
    if (this.drawn) this.stream.write(`\r${CLEAR_TO_END_OF_LINE}`);
    this.drawn = false;
    this.stream.write(text);
  }

  private redraw(): void {
    const snapshot = this.sample();
    const now = this.clock.now();
    const oldest = this.window[0] ?? { atMs: this.startedAtMs, records: 0, bytes: 0 };
    const intervalSec = Math.max(now - oldest.atMs, 1) / 1000;
    const line = formatProgress(this.label, {
      ...snapshot,
      elapsedMs: now - this.startedAtMs,
      recordsPerSec: (snapshot.records - oldest.records) / intervalSec,
      bytesPerSec: (snapshot.bytes - oldest.bytes) / intervalSec,
    });
    this.window.push({ atMs: now, records: snapshot.records, bytes: snapshot.bytes });
    if (this.window.length > RATE_WINDOW_REDRAWS) this.window.shift();
    // A pseudo-terminal without a size reports 0 columns.
    const columns = this.stream.columns !== undefined && this.stream.columns > 0 ? this.stream.columns : FALLBACK_COLUMNS;
    this.stream.write(`\r${line.slice(0, Math.max(columns - 1, 1))}${CLEAR_TO_END_OF_LINE}`);
    this.drawn = true;
  }
}
