// What the benches read about the machine and about a process (from /proc, Linux), and how they
// sum up samples.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { arch, cpus, loadavg, platform, totalmem } from 'node:os';

/** CLK_TCK when `getconf` cannot tell (Linux has used 100 for decades). */
const DEFAULT_CLOCK_TICKS_PER_SECOND = 100;
const GETCONF_TIMEOUT_MS = 5_000;
const MB = 1_000_000;

/** The machine a report was measured on, as its meta.machine says it. */
export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  totalMemoryMb: number;
  platform: string;
  arch: string;
  /** The 1, 5 and 15 minute load averages when the run started: the machine may be shared. */
  loadAverageAtStart: number[];
}

/** The 1, 5 and 15 minute load averages now, to two decimals. */
export function loadAverages(): number[] {
  return loadavg().map((load) => Number(load.toFixed(2)));
}

/** This machine, with the load averages taken (loadAverages()) when the run started. */
export function machineFacts(loadAverageAtStart: number[]): MachineFacts {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', totalMemoryMb: Math.round(totalmem() / MB), platform: platform(), arch: arch(), loadAverageAtStart };
}

/** utime + stime of a process in seconds, from /proc/<pid>/stat (fields 14 and 15). */
export async function processCpuSeconds(pid: number, ticksPerSecond: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: count from after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime)) throw new Error(`unreadable /proc/${pid}/stat: ${text.slice(0, 200)}`);
  return (utime + stime) / ticksPerSecond;
}

/** A kB field of /proc/<pid>/status (VmRSS: resident now; VmHWM: the peak), or null where /proc does not say. */
export async function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return match === null ? null : Number(match[1]);
}

/** The process's peak resident set (VmHWM) in bytes, or null where /proc does not say. */
export async function peakRssBytes(pid: number): Promise<number | null> {
  const kb = await statusKb(pid, 'VmHWM');
  return kb === null ? null : kb * 1024;
}

/** CLK_TCK, the unit of /proc/<pid>/stat's times. */
export function clockTicks(): Promise<number> {
  return new Promise((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: GETCONF_TIMEOUT_MS }, (error, stdout) => {
      const ticks = Number(String(stdout).trim());
      resolve(error === null && Number.isSafeInteger(ticks) && ticks > 0 ? ticks : DEFAULT_CLOCK_TICKS_PER_SECOND);
    });
  });
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
