// What every command shares: exit codes, the outcome a command reports, the usage error, the
// connection flags and flag checks, error-to-line reporting and drained writes to stdout.
// Commands import from here and never from one another; main.ts imports the commands.
import type { Argv } from 'yargs';
import type { Acks } from '../client/index.js';
import { MAX_REQUEST_TIMEOUT_MS } from '../common/limits.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const DEFAULT_BOOTSTRAP_SERVER = '127.0.0.1:9092';
export const DEFAULT_TIMEOUT_MS = 30_000;

/** A command's way to say how it ended without calling process.exit (which would cut stdout short). */
export interface CommandOutcome {
  exitCode: number;
}

/** A bad flag value found in a handler (yargs checked only the flags' types): exit 2, one line. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

export interface ConnectionArguments {
  'bootstrap-server': string;
  'timeout-ms': number;
}

/** Adds --bootstrap-server and --timeout-ms. */
export function withConnectionOptions<T>(argv: Argv<T>): Argv<T & ConnectionArguments> {
  return argv
    .option('bootstrap-server', { type: 'string', default: DEFAULT_BOOTSTRAP_SERVER, describe: 'a broker to bootstrap from, host:port (comma-separated for several)' })
    .option('timeout-ms', { type: 'number', default: DEFAULT_TIMEOUT_MS, describe: 'upper bound on each request and on connecting' }) as Argv<T & ConnectionArguments>;
}

/** `host:port[,host:port...]` checked, as the client's bootstrapServers. */
export function bootstrapServers(value: string): string[] {
  const servers = value.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
  if (servers.length === 0) throw new CliUsageError('--bootstrap-server must be host:port');
  for (const server of servers) {
    const match = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(server);
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || !Number.isInteger(port) || port < 1 || port > 65_535) throw new CliUsageError(`--bootstrap-server must be host:port, got ${JSON.stringify(server)}`);
  }
  return servers;
}

export function checkTimeout(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_REQUEST_TIMEOUT_MS) throw new CliUsageError(`--timeout-ms must be a positive integer, got ${String(value)}`);
  return value;
}

/** An integer flag in [min, max]; undefined passes through. */
export function integerFlag(flag: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new CliUsageError(`--${flag} must be an integer in [${min}, ${max}], got ${String(value)}`);
  return value;
}

/** `key=value` pairs (each may also be comma-separated when `splitCommas`) into a map. */
export function parsePairs(flag: string, pairs: readonly string[], splitCommas = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of pairs) {
    for (const pair of splitCommas ? item.split(',') : [item]) {
      const separator = pair.indexOf('=');
      if (separator <= 0) throw new CliUsageError(`--${flag} expects key=value, got ${JSON.stringify(pair)}`);
      out[pair.slice(0, separator).trim()] = pair.slice(separator + 1);
    }
  }
  return out;
}

/** --acks 0|1|all (-1 is all), as produce and replay --to-topic take it. */
export function parseAcks(value: string): Acks {
  if (value === '0') return 0;
  if (value === '1') return 1;
  if (value === 'all' || value === '-1') return 'all';
  throw new CliUsageError(`--acks must be 0, 1 or all, got ${JSON.stringify(value)}`);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs a handler body: a CliUsageError exits 2 with one line, any other error exits 1 with one
 * line (both prefixed with the command's name).
 */
export async function runHandler(outcome: CommandOutcome, name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const usage = error instanceof CliUsageError;
    process.stderr.write(`tidelog ${name}: ${messageOf(error).split('\n')[0]}\n`);
    outcome.exitCode = usage ? EXIT_USAGE : EXIT_FAILURE;
  }
}

/** Writes to stdout, waiting for drain when its buffer is full. */
export function writeOut(text: string): Promise<void> | undefined {
  if (process.stdout.write(text)) return undefined;
  return new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}
