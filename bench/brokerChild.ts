// A tidelog broker as a child process for the benchmarks: started on a free port with a data
// directory of the caller's, its log lines kept (the newest ones) and watched, stopped with SIGTERM
// and, past a bound, SIGKILL. The whole stderr is read for the child's lifetime: a full pipe
// would stall the broker.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const BROKER_START_TIMEOUT_MS = 30_000;
const BROKER_STOP_TIMEOUT_MS = 30_000;
const BROKER_KILL_WAIT_MS = 5_000;
const BROKER_LOG_LINES_KEPT = 200;

export interface BrokerChild {
  pid: number;
  host: string;
  port: number;
  /** host:port */
  address: string;
  dataDir: string;
  /** Lines logged so far (kept or not). */
  lineCount(): number;
  /** The first line at index >= fromIndex that matches, waiting up to timeoutMs. */
  waitForLine(matches: (line: string) => boolean, timeoutMs: number, fromIndex: number): Promise<string>;
  tail(lines: number): string;
  warnLines(): number;
  errorLines(): number;
  /** SIGTERM, then SIGKILL after a bound; throws unless it exited with code 0. */
  stop(): Promise<void>;
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  return withTimeout(exited, ms, 'exit').then(
    () => true,
    () => false,
  );
}

export async function startBrokerChild(
  entry: string,
  dataDir: string,
  options: { configs?: Readonly<Record<string, string>>; progress?: (line: string) => void } = {},
): Promise<BrokerChild> {
  const progress = options.progress ?? (() => undefined);
  const args = [entry, 'broker', 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
  for (const [key, value] of Object.entries(options.configs ?? {})) args.push('--config', `${key}=${value}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  /** The newest BROKER_LOG_LINES_KEPT lines; `dropped` counts the older ones. */
  const lines: string[] = [];
  let dropped = 0;
  let warnLines = 0;
  let errorLines = 0;
  const listeners = new Set<() => void>();
  const state: { exit: { code: number | null; signal: NodeJS.Signals | null } | null } = { exit: null };
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      state.exit = { code, signal };
      resolve();
    });
  });
  const tail = (count: number): string => `broker log (last ${count} lines):\n${lines.slice(-count).join('\n')}`;
  const listening = new Promise<{ host: string; port: number }>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      lines.push(line);
      if (lines.length > BROKER_LOG_LINES_KEPT) {
        lines.shift();
        dropped++;
      }
      if (/^\S+ WARN /.test(line)) warnLines++;
      if (/^\S+ ERROR /.test(line)) errorLines++;
      const match = / INFO broker started .*listener="([^"]+):(\d+)"/.exec(line);
      if (match !== null) resolve({ host: match[1]!, port: Number(match[2]) });
      for (const listener of [...listeners]) listener();
    });
    void exited.then(() => reject(new Error(`the broker exited (${JSON.stringify(state.exit)}) before it started:\n${tail(40)}`)));
    child.once('error', reject);
  });
  const stop = async (): Promise<void> => {
    if (state.exit !== null) return;
    child.kill('SIGTERM');
    if (await exitsWithin(exited, BROKER_STOP_TIMEOUT_MS)) return;
    progress(`the broker did not stop within ${BROKER_STOP_TIMEOUT_MS} ms of SIGTERM; killing pid ${child.pid}`);
    child.kill('SIGKILL');
    if (!(await exitsWithin(exited, BROKER_KILL_WAIT_MS))) throw new Error(`the broker (pid ${child.pid}) survived SIGKILL`);
  };
  let listener: { host: string; port: number };
  try {
    listener = await withTimeout(listening, BROKER_START_TIMEOUT_MS, 'the broker to start');
  } catch (error) {
    await stop();
    throw error;
  }
  const address = `${listener.host}:${listener.port}`;
  progress(`broker pid ${child.pid} listening on ${address}`);
  return {
    pid: child.pid!,
    host: listener.host,
    port: listener.port,
    address,
    dataDir,
    lineCount: () => dropped + lines.length,
    waitForLine: async (matches, timeoutMs, fromIndex) => {
      const find = (): string | undefined => lines.slice(Math.max(0, fromIndex - dropped)).find(matches);
      const found = find();
      if (found !== undefined) return found;
      let onLine: (() => void) | undefined;
      try {
        return await withTimeout(
          new Promise<string>((resolve) => {
            onLine = () => {
              const line = find();
              if (line !== undefined) resolve(line);
            };
            listeners.add(onLine);
          }),
          timeoutMs,
          'a broker log line',
        );
      } finally {
        if (onLine !== undefined) listeners.delete(onLine);
      }
    },
    tail,
    warnLines: () => warnLines,
    errorLines: () => errorLines,
    stop: async () => {
      await stop();
      if (state.exit?.code !== 0) throw new Error(`the broker exited with ${JSON.stringify(state.exit)}:\n${tail(40)}`);
    },
  };
}
