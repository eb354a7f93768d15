// `tidelog topics|produce|consume` end to end: the compiled CLI (`node bin/tidelog.js`, run `npm
// run build` first) against a broker child process, read back with kcat and with the CLI itself;
// and the progress line (cli/progress.ts) on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatProgress, ProgressLine, REDRAW_INTERVAL_MS, type ProgressStream } from '../cli/progress.js';
import { createProducer } from '../client/index.js';
import { BrokerProcess, REPO_ROOT, TIDELOG_BIN, expectSuccess, kcat, runProcess, runTidelog, withTimeout, type ExitStatus, type ProcessResult } from './support/brokerProcess.js';

const CLI_TIMEOUT_MS = 30_000;
/** How long a CLI run may take to end after its broker went away (with --timeout-ms 2000). */
const BROKER_GONE_EXIT_BOUND_MS = 20_000;
let broker: BrokerProcess;

/**
 * A CLI run that outlives one call: stdin stays open for writes, stdout is watched as it arrives,
 * signals can be sent. Every one is killed in afterEach if a test left it running.
 */
class CliRun {
  static readonly live = new Set<CliRun>();
  stdout = '';
  stderr = '';
  readonly exited: Promise<ExitStatus>;
  private readonly child: ChildProcess;
  private readonly stdoutListeners = new Set<() => void>();

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [TIDELOG_BIN, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    CliRun.live.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      for (const listener of [...this.stdoutListeners]) listener();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.once('close', (code, signal) => {
        CliRun.live.delete(this);
        resolve({ code, signal });
      });
    });
  }

  get stdoutLines(): string[] {
    return this.stdout.split('\n').filter((line) => line.length > 0);
  }

  /** Resolves once stdout holds at least `count` lines. */
  waitForLines(count: number, timeoutMs = CLI_TIMEOUT_MS): Promise<void> {
    let listener: (() => void) | undefined;
    const enough = new Promise<void>((resolve) => {
      listener = () => {
        if (this.stdoutLines.length >= count) resolve();
      };
      this.stdoutListeners.add(listener);
      listener();
    });
    return withTimeout(enough, timeoutMs, `${count} lines on stdout (have: ${JSON.stringify(this.stdout.slice(-500))}, stderr: ${this.stderr})`).finally(() => this.stdoutListeners.delete(listener!));
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  waitForExit(timeoutMs = CLI_TIMEOUT_MS): Promise<ExitStatus> {
    return withTimeout(this.exited, timeoutMs, `the CLI to exit (stderr: ${this.stderr})`);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

function tidelog(args: readonly string[], input?: string): Promise<ProcessResult> {
  return runTidelog([...args, '--bootstrap-server', broker.address], { timeoutMs: CLI_TIMEOUT_MS, ...(input !== undefined ? { input } : {}) });
}

async function ok(args: readonly string[], input?: string): Promise<ProcessResult> {
  return expectSuccess(await tidelog(args, input), `tidelog ${args.join(' ')}`);
}

function stdoutLines(result: ProcessResult): string[] {
  return result.stdout.toString('utf8').split('\n').filter((line) => line.length > 0);
}

function stderrLines(result: ProcessResult): string[] {
  return result.stderr.split('\n').filter((line) => line.length > 0);
}

beforeAll(async () => {
  broker = await BrokerProcess.start({ configs: { 'group.initial.rebalance.delay.ms': '0' } });
});

afterAll(async () => {
  await broker?.cleanup();
});

afterEach(async () => {
  for (const run of [...CliRun.live]) {
    run.kill();
    await run.exited;
  }
});

describe('tidelog topics', () => {
  it('creates, lists, describes, alters and deletes a topic', async () => {
    await ok(['topics', 'create', 'admin-topic', '--partitions', '3', '--config', 'retention.ms=123456']);
    expect(JSON.parse((await ok(['topics', 'list', '--json'])).stdout.toString('utf8'))).toContain('admin-topic');
    expect(stdoutLines(await ok(['topics', 'list']))).toContain('admin-topic');

    const described = JSON.parse((await ok(['topics', 'describe', 'admin-topic', '--json'])).stdout.toString('utf8')) as {
      name: string;
      partitions: Array<{ partition: number; leader: number }>;
      configs: Record<string, string | null>;
    };
    expect(described.name).toBe('admin-topic');
    expect(described.partitions.map((p) => p.partition)).toEqual([0, 1, 2]);
    for (const p of described.partitions) expect(p.leader).toBeGreaterThanOrEqual(0);
    expect(described.configs['retention.ms']).toBe('123456');
    const text = (await ok(['topics', 'describe', 'admin-topic'])).stdout.toString('utf8');
    expect(text).toMatch(/PartitionCount: 3/);
    expect(text).toMatch(/Partition: 2\tLeader: \d+/);

    await ok(['topics', 'alter-config', 'admin-topic', '--set', 'cleanup.policy=compact', '--delete', 'retention.ms']);
    const altered = JSON.parse((await ok(['topics', 'describe', 'admin-topic', '--json'])).stdout.toString('utf8')) as { configs: Record<string, string | null> };
    expect(altered.configs['cleanup.policy']).toBe('compact');
    expect(altered.configs['retention.ms']).not.toBe('123456');

    await ok(['topics', 'delete', 'admin-topic']);
    expect(stdoutLines(await ok(['topics', 'list']))).not.toContain('admin-topic');
    const missing = await tidelog(['topics', 'describe', 'admin-topic']);
    expect(missing.code).toBe(1);
    expect(stderrLines(missing)).toHaveLength(1);
  });
});

describe('tidelog produce and consume', () => {
  it('produces lines with keys and headers that kcat and tidelog consume read back', async () => {
    await ok(['topics', 'create', 'lines', '--partitions', '1']);
    const produced = await ok(['produce', 'lines', '--key-separator', ':', '--headers', 'source=cli,kind=test'], 'k1:v1\nk2:v2 with: colon\nk3:v3\n');
    expect(produced.stderr).toMatch(/3 records sent to lines/);

    const viaKcat = await kcat(broker, ['-C', '-t', 'lines', '-o', 'beginning', '-e', '-q', '-f', '%k|%s|%h\n']);
    expect(stdoutLines(viaKcat)).toEqual(['k1|v1|source=cli,kind=test', 'k2|v2 with: colon|source=cli,kind=test', 'k3|v3|source=cli,kind=test']);

    const consumed = await ok(['consume', 'lines', '--from-beginning', '--max-messages', '3', '--format', 'json']);
    const records = stdoutLines(consumed).map((line) => JSON.parse(line) as { partition: number; offset: number; key: string; value: string; headers: Record<string, string> });
    expect(records.map((r) => [r.offset, r.key, r.value])).toEqual([
      [0, 'k1', 'v1'],
      [1, 'k2', 'v2 with: colon'],
      [2, 'k3', 'v3'],
    ]);
    expect(records[0]!.headers).toEqual({ source: 'cli', kind: 'test' });

    const values = await ok(['consume', 'lines', '--from-beginning', '--idle-timeout-ms', '1000']);
    expect(stdoutLines(values)).toEqual(['v1', 'v2 with: colon', 'v3']);
    const fromOffset = await ok(['consume', 'lines', '--partition', '0', '--offset', '2', '--max-messages', '1']);
    expect(stdoutLines(fromOffset)).toEqual(['v3']);
  });

  it('--json-lines skips a malformed line by default and stops at it with --on-error fail', async () => {
    await ok(['topics', 'create', 'jsonl', '--partitions', '1']);
    const input = '{"key":"a","value":"plain"}\n{"value":{"n":1},"headers":{"h":"x"}}\nnot json at all\n{"key":"c","value":"after"}\n';
    const skipped = await ok(['produce', 'jsonl', '--json-lines'], input);
    expect(skipped.stderr).toMatch(/line 3/);
    expect(skipped.stderr).toMatch(/3 records sent to jsonl, 1 malformed line skipped/);

    const failed = await tidelog(['produce', 'jsonl', '--json-lines', '--on-error', 'fail'], input);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/line 3: not JSON/);

    const consumed = await ok(['consume', 'jsonl', '--from-beginning', '--idle-timeout-ms', '1000', '--format', 'json']);
    const records = stdoutLines(consumed).map((line) => JSON.parse(line) as { key: string | null; value: string; headers: Record<string, string> });
    // First run: 3 records; second run: the 2 before the malformed line, nothing after it.
    expect(records.map((r) => r.value)).toEqual(['plain', '{"n":1}', 'after', 'plain', '{"n":1}']);
    expect(records[1]!.headers).toEqual({ h: 'x' });
  });

  it('consume --group resumes where the previous run stopped', async () => {
    await ok(['topics', 'create', 'grouped', '--partitions', '2']);
    await ok(['produce', 'grouped', '--key-separator', '=', '--acks', '1'], Array.from({ length: 10 }, (_, i) => `key-${i}=value-${i}`).join('\n') + '\n');
    const first = stdoutLines(await ok(['consume', 'grouped', '--group', 'cli-group', '--from-beginning', '--max-messages', '4']));
    expect(first).toHaveLength(4);
    const second = stdoutLines(await ok(['consume', 'grouped', '--group', 'cli-group', '--from-beginning', '--idle-timeout-ms', '1500']));
    expect(second).toHaveLength(6);
    expect([...first, ...second].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `value-${i}`).sort());
    const third = stdoutLines(await ok(['consume', 'grouped', '--group', 'cli-group', '--idle-timeout-ms', '1000']));
    expect(third).toEqual([]);
  });
});

describe('tidelog consume: stopping and starting points', () => {
  it('stops cleanly on SIGINT: exit 0, everything read is printed, and with --group committed', async () => {
    await ok(['topics', 'create', 'sigint', '--partitions', '1']);
    await ok(['produce', 'sigint'], 'one\ntwo\nthree\n');

    const grouped = new CliRun(['consume', 'sigint', '--group', 'sigint-group', '--from-beginning', '--bootstrap-server', broker.address]);
    await grouped.waitForLines(3);
    grouped.signal('SIGINT');
    expect(await grouped.waitForExit()).toEqual({ code: 0, signal: null });
    expect(grouped.stdoutLines).toEqual(['one', 'two', 'three']);
    expect(grouped.stderr).toBe('');
    const described = JSON.parse((await ok(['groups', 'describe', 'sigint-group', '--json'])).stdout.toString('utf8')) as { members: unknown[]; offsets: Array<{ topic: string; partition: number; committedOffset: number | null }> };
    expect(described.members).toEqual([]);
    expect(described.offsets).toEqual([expect.objectContaining({ topic: 'sigint', partition: 0, committedOffset: 3 })]);

    const assigned = new CliRun(['consume', 'sigint', '--from-beginning', '--bootstrap-server', broker.address]);
    await assigned.waitForLines(3);
    assigned.signal('SIGINT');
    expect(await assigned.waitForExit()).toEqual({ code: 0, signal: null });
    expect(assigned.stdoutLines).toEqual(['one', 'two', 'three']);
  });

  it('--timestamp T starts at the first record at or after T', async () => {
    await ok(['topics', 'create', 'stamped', '--partitions', '1']);
    const producer = createProducer({ bootstrapServers: [broker.address], acks: 'all' });
    const baseMs = Date.now() - 60_000;
    try {
      await producer.send('stamped', [0, 1, 2, 3].map((i) => ({ value: `at-${i}`, timestamp: baseMs + i * 1_000 })));
    } finally {
      await producer.close();
    }
    const from = async (timestampMs: number): Promise<string[]> => stdoutLines(await ok(['consume', 'stamped', '--timestamp', String(timestampMs), '--idle-timeout-ms', '1000']));
    expect(await from(baseMs)).toEqual(['at-0', 'at-1', 'at-2', 'at-3']);
    expect(await from(baseMs + 2_000)).toEqual(['at-2', 'at-3']);
    expect(await from(baseMs + 1_500)).toEqual(['at-2', 'at-3']);
    expect(await from(baseMs + 3_001)).toEqual([]);
  });
});

describe('tidelog produce: acks, files, formats, malformed lines', () => {
  it('--acks 0 exits 0 and the records arrive', async () => {
    await ok(['topics', 'create', 'unacknowledged', '--partitions', '1']);
    const values = Array.from({ length: 200 }, (_, i) => `fire-${i}`);
    const produced = await ok(['produce', 'unacknowledged', '--acks', '0'], values.join('\n') + '\n');
    expect(produced.stderr).toBe('tidelog produce: 200 records sent to unacknowledged\n');
    expect(stdoutLines(await ok(['consume', 'unacknowledged', '--from-beginning', '--max-messages', '200']))).toEqual(values);
  });

  it('--format kcat-like prints what kcat prints with the same format', async () => {
    await ok(['topics', 'create', 'kcat-shape', '--partitions', '1']);
    await ok(['produce', 'kcat-shape', '--key-separator', ':', '--headers', 'a=1,b=2'], 'k1:v1\nk2:value two\n');
    const lines = stdoutLines(await ok(['consume', 'kcat-shape', '--from-beginning', '--max-messages', '2', '--format', 'kcat-like']));
    expect(lines).toEqual(['kcat-shape [0] @ 0: key=k1 headers=a=1,b=2 v1', 'kcat-shape [0] @ 1: key=k2 headers=a=1,b=2 value two']);
    const viaKcat = await kcat(broker, ['-C', '-t', 'kcat-shape', '-o', 'beginning', '-e', '-q', '-f', '%t [%p] @ %o: key=%k headers=%h %s\n']);
    expect(stdoutLines(viaKcat)).toEqual(lines);
    // Without a key or headers.
    await ok(['produce', 'kcat-shape'], 'bare\n');
    expect(stdoutLines(await ok(['consume', 'kcat-shape', '--offset', '2', '--max-messages', '1', '--format', 'kcat-like']))).toEqual(['kcat-shape [0] @ 2: key= bare']);
  });

  it('--file reads the records from a file; a missing file fails with one line', async () => {
    await ok(['topics', 'create', 'from-file', '--partitions', '1']);
    const dir = await mkdtemp(join(tmpdir(), 'tidelog-cli-'));
    try {
      const file = join(dir, 'records.txt');
      await writeFile(file, 'first\r\nsecond\nthird without a final newline');
      const produced = await ok(['produce', 'from-file', '--file', file]);
      expect(produced.stderr).toBe('tidelog produce: 3 records sent to from-file\n');
      expect(stdoutLines(await ok(['consume', 'from-file', '--from-beginning', '--max-messages', '3']))).toEqual(['first', 'second', 'third without a final newline']);

      const missing = await tidelog(['produce', 'from-file', '--file', join(dir, 'absent.txt')]);
      expect(missing.code).toBe(1);
      expect(stderrLines(missing)).toEqual([expect.stringMatching(/^tidelog produce: --file .*absent\.txt: .*ENOENT/)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a line without the key separator is reported with its line number, then skipped or fatal per --on-error', async () => {
    await ok(['topics', 'create', 'separated', '--partitions', '1']);
    const input = 'a:1\n\nno separator here\nb:2\n';
    const skipped = await ok(['produce', 'separated', '--key-separator', ':', '--on-error', 'skip'], input);
    expect(stderrLines(skipped)).toEqual(['tidelog produce: skipped line 2: no key separator ":"', 'tidelog produce: skipped line 3: no key separator ":"', 'tidelog produce: 2 records sent to separated, 2 malformed lines skipped']);
    const failed = await tidelog(['produce', 'separated', '--key-separator', ':', '--on-error', 'fail'], input);
    expect(failed.code).toBe(1);
    expect(stderrLines(failed)).toEqual(['tidelog produce: line 2: no key separator ":" (1 record sent to separated)']);
    expect(stdoutLines(await ok(['consume', 'separated', '--from-beginning', '--idle-timeout-ms', '1000']))).toEqual(['1', '2', '1']);
  });
});

describe('tidelog progress', () => {
  it('formats records, MB, rate, lag and elapsed time', () => {
    expect(formatProgress('consume orders', { records: 12_345, bytes: 1_234_567, elapsedMs: 3_400, recordsPerSec: 4_567.4, bytesPerSec: 456_789, lagRecords: 89 })).toBe(
      'consume orders: 12,345 records, 1.23 MB, 4,567 rec/s, 0.46 MB/s, lag 89, 3s',
    );
    expect(formatProgress('produce t', { records: 1, bytes: 150_000_000, elapsedMs: 125_000, recordsPerSec: 0, bytesPerSec: 0, lagRecords: null })).toBe('produce t: 1 record, 150 MB, 0 rec/s, 0.00 MB/s, 2m05s');
    expect(formatProgress('produce t', { records: 2_000_000, bytes: 25_500_000, elapsedMs: 999, recordsPerSec: 1_234_567, bytesPerSec: 12_345_678 })).toBe('produce t: 2,000,000 records, 25.5 MB, 1,234,567 rec/s, 12.3 MB/s, 0s');
  });

  it('writes nothing, and never samples, when the stream is not a terminal', () => {
    vi.useFakeTimers();
    try {
      const writes: string[] = [];
      const sample = vi.fn(() => ({ records: 1, bytes: 1 }));
      const line = new ProgressLine('consume t', sample, { stream: { isTTY: false, columns: 80, write: (text) => writes.push(text) > 0 } });
      expect(line.enabled).toBe(false);
      line.start();
      vi.advanceTimersByTime(10 * REDRAW_INTERVAL_MS);
      line.stop();
      expect(writes).toEqual([]);
      expect(sample).not.toHaveBeenCalled();
      // A TTY that the command rules out (onlyIf false) is as quiet.
      const ruledOut = new ProgressLine('consume t', sample, { stream: { isTTY: true, columns: 80, write: (text) => writes.push(text) > 0 }, onlyIf: false });
      ruledOut.start();
      vi.advanceTimersByTime(10 * REDRAW_INTERVAL_MS);
      ruledOut.stop();
      expect(writes).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('on a terminal redraws one line in place at most every REDRAW_INTERVAL_MS, no wider than the terminal, and erases it on stop', () => {
    vi.useFakeTimers();
    try {
      let nowMs = 0;
      let records = 0;
      const writes: string[] = [];
      const stream: ProgressStream & { columns: number } = { isTTY: true, columns: 200, write: (text) => writes.push(text) > 0 };
      const line = new ProgressLine('consume t', () => ({ records, bytes: records * 100, lagRecords: 5 }), { stream, clock: { now: () => nowMs } });
      line.start();
      // One second in steps of half a redraw interval: four redraws, not eight.
      for (let step = 0; step < 8; step++) {
        records += 1_000;
        nowMs += REDRAW_INTERVAL_MS / 2;
        vi.advanceTimersByTime(REDRAW_INTERVAL_MS / 2);
      }
      expect(writes).toHaveLength(1000 / REDRAW_INTERVAL_MS);
      for (const text of writes) {
        expect(text.startsWith('\r')).toBe(true);
        expect(text).not.toContain('\n');
      }
      // The rate is measured over the last second: 8,000 records in 1 s.
      expect(writes.at(-1)).toBe('\rconsume t: 8,000 records, 0.80 MB, 8,000 rec/s, 0.80 MB/s, lag 5, 1s\u001b[K');

      stream.columns = 20;
      nowMs += REDRAW_INTERVAL_MS;
      vi.advanceTimersByTime(REDRAW_INTERVAL_MS);
      expect(writes.at(-1)).toBe('\rconsume t: 8,000 re\u001b[K');

      line.print('a line of the command\n');
      expect(writes.slice(-2)).toEqual(['\r\u001b[K', 'a line of the command\n']);
      line.stop();
      const count = writes.length;
      vi.advanceTimersByTime(10 * REDRAW_INTERVAL_MS);
      expect(writes).toHaveLength(count);
    } finally {
      vi.useRealTimers();
    }
  });

  it('is absent from piped stderr, and shown on a terminal', async () => {
    await ok(['topics', 'create', 'watched', '--partitions', '1']);
    const values = Array.from({ length: 20_000 }, (_, i) => `watched-${i}`);
    const produced = await ok(['produce', 'watched'], values.join('\n') + '\n');
    expect(produced.stderr).toBe('tidelog produce: 20000 records sent to watched\n');
    const consumed = await ok(['consume', 'watched', '--from-beginning', '--idle-timeout-ms', '1500']);
    expect(consumed.stderr).toBe('');
    expect(stdoutLines(consumed)).toHaveLength(values.length);

    // On a pseudo-terminal (script(1)), stdout to /dev/null: the status line on stderr. The run
    // lasts at least the idle timeout after the last record, so the final count is drawn.
    const command = `'${process.execPath}' '${TIDELOG_BIN}' consume watched --from-beginning --idle-timeout-ms 1500 --bootstrap-server ${broker.address} > /dev/null`;
    const onTerminal = await runProcess('script', ['-qfec', command, '/dev/null'], { timeoutMs: CLI_TIMEOUT_MS });
    expect(onTerminal.code).toBe(0);
    const output = onTerminal.stdout.toString('utf8');
    expect(output).toMatch(/\rconsume watched: [\d,]+ records?, [\d.]+ MB, [\d,]+ rec\/s, [\d.]+ MB\/s, /);
    expect(output).toContain('consume watched: 20,000 records');
    expect(output).toMatch(/lag 0, \d+s/);
  });
});

describe('a broker that goes away mid-run', () => {
  it('makes produce and consume retry, then fail with a clear error and exit 1 within a bounded time', async () => {
    const doomed = await BrokerProcess.start();
    try {
      const address = doomed.address;
      expectSuccess(await runTidelog(['topics', 'create', 'doomed', '--partitions', '1', '--bootstrap-server', address], { timeoutMs: CLI_TIMEOUT_MS }), 'topics create doomed');
      const producer = new CliRun(['produce', 'doomed', '--timeout-ms', '2000', '--linger-ms', '0', '--bootstrap-server', address]);
      const consumer = new CliRun(['consume', 'doomed', '--from-beginning', '--timeout-ms', '2000', '--bootstrap-server', address]);
      producer.write('before-1\nbefore-2\n');
      // Produced while stdin stays open, and read back.
      await consumer.waitForLines(2);
      await doomed.kill();
      // More input for a broker that is gone; stdin stays open, so only the failure can end the run.
      producer.write('after-1\n');
      const [producerExit, consumerExit] = await Promise.all([producer.waitForExit(BROKER_GONE_EXIT_BOUND_MS), consumer.waitForExit(BROKER_GONE_EXIT_BOUND_MS)]);

      expect(producerExit).toEqual({ code: 1, signal: null });
      expect(producer.stderr.split('\n').filter((line) => line.length > 0)).toEqual([
        expect.stringMatching(/^tidelog produce: .*failed after deliveryTimeoutMs \(2000 ms\): .*ECONNREFUSED.* \(\d+ records? sent to doomed\)$/),
      ]);
      expect(consumerExit).toEqual({ code: 1, signal: null });
      expect(consumer.stdoutLines).toEqual(['before-1', 'before-2']);
      expect(consumer.stderr.split('\n').filter((line) => line.length > 0)).toEqual([
        expect.stringMatching(/^tidelog consume: the broker went away \(127\.0\.0\.1:\d+\): still unreachable after retrying for 2000 ms: .*ECONNREFUSED/),
      ]);
    } finally {
      await doomed.cleanup();
    }
  });
});

describe('tidelog usage and failures', () => {
  it.each([
    [['produce', 'x', '--bogus']],
    [['produce', 'x', '--acks', '3']],
    [['produce', 'x', '--on-error', 'maybe']],
    [['consume', 'x', '--format', 'xml']],
    [['consume', 'x', '--max-messages', '-1']],
    [['consume', 'x', '--group', 'g', '--partition', '0']],
    [['topics', 'create', 'x', '--partitions', '0']],
    [['topics', 'create', 'x', '--config', 'novalue']],
    [['topics', 'alter-config', 'x']],
    [['topics']],
    [['no-such-command']],
    [['produce', 'x', '--linger-ms', '-1']],
    [['produce', 'x', '--json-lines', '--key-separator', ':']],
    [['consume', 'x', '--timestamp', 'yesterday']],
    [['consume', 'x', '--offset', '1', '--timestamp', '5']],
    [['consume', 'x', '--partition', '-1']],
  ])('%j exits 2 with one line', async (args) => {
    const result = await tidelog(args);
    expect(result.code).toBe(2);
    expect(stderrLines(result)).toHaveLength(1);
  });

  it('every new command has --help', async () => {
    for (const command of [['topics'], ['topics', 'create'], ['produce'], ['consume']]) {
      const result = await runTidelog([...command, '--help'], { timeoutMs: CLI_TIMEOUT_MS });
      expect(result.code).toBe(0);
      expect(result.stdout.toString('utf8')).toMatch(/--bootstrap-server|Commands:/);
    }
  });

  it('produce to a broker that is down fails with a clear error within a bounded time', async () => {
    const started = Date.now();
    const result = await runTidelog(['produce', 'anything', '--bootstrap-server', '127.0.0.1:1', '--timeout-ms', '5000'], { input: 'one\ntwo\n', timeoutMs: CLI_TIMEOUT_MS });
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no broker reachable/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
