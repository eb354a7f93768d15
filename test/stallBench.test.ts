// bench/stallBench.ts on a tiny plan: the hostile phase's batches are all refused with the codes
// the issue names (bombs MESSAGE_TOO_LARGE, undecodable areas CORRUPT_MESSAGE, contents
// INVALID_RECORD), the valid phase's all accepted, and the report carries the loop-delay figures.
// Timing itself is the benchmark's business, not asserted here.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runStallBench, STALL_TARGET_MS, type StallReport } from '../bench/stallBench.js';
import { temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('tidelog bench stall', () => {
  it('refuses every hostile batch with its code, accepts every valid one, and writes the report', async () => {
    const dir = await temporaryDirectory();
    cleanups.push(dir.remove);
    const outPath = join(dir.path, 'stall.json');
    let table = '';
    const report = await runStallBench({ plan: { label: 'tiny', msPerPhase: 3_000, maxRequestsPerPhase: 56 }, outPath, out: (text) => (table += text), progress: () => undefined });
    const [valid, hostile] = report.phases;
    expect(valid).toMatchObject({ phase: 'valid', requests: 56, answers: { '0': 56 } });
    expect(hostile!.phase).toBe('hostile');
    expect(Object.keys(hostile!.answers).sort()).toEqual(['10', '2', '87']);
    expect(Object.values(hostile!.answers).reduce((sum, count) => sum + count, 0)).toBe(hostile!.requests);
    expect(report.target).toEqual({ maxLoopDelayMs: hostile!.loopDelayMs.max, pass: hostile!.loopDelayMs.max <= STALL_TARGET_MS });
    expect(JSON.parse(await readFile(outPath, 'utf8')) as StallReport).toEqual(report);
    expect(table).toContain('event loop under hostile produce requests');
  }, 60_000);
});
