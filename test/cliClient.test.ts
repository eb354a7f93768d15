// `tidelog topics|produce|consume` end to end: the compiled CLI (`node bin/tidelog.js`, run `npm
// run build` first) against a broker child process, read back with kcat and with the CLI itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, expectSuccess, kcat, runTidelog, type ProcessResult } from './support/brokerProcess.js';

const CLI_TIMEOUT_MS = 30_000;
let broker: BrokerProcess;

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
