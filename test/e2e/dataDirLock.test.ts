// Two brokers on one data directory: the second is refused while the first lives, naming it; and
// a broker killed with SIGKILL leaves nothing behind that keeps the next start out, even when that
// start comes at once, before anyone has waited for the dead process (issue 18: a pid lock refused
// such a start while the killed broker was not yet reaped).
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BROKER_START_TIMEOUT_MS, BrokerProcess, REPO_ROOT, TIDELOG_BIN, runTidelog, withTimeout } from '../support/brokerProcess.js';

describe('one broker per data directory', () => {
  it('refuses a second broker on a held data directory, then lets the next one start at once after a SIGKILL', async () => {
    const first = await BrokerProcess.start();
    try {
      const startArgs = ['broker', 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', first.dataDir];
      const refused = await runTidelog(startArgs, { timeoutMs: BROKER_START_TIMEOUT_MS });
      expect(refused.timedOut).toBe(false);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`is in use by process ${first.pid}`);

      // Killed, and the next broker spawned in the same turn: no wait for the exit or the reaping.
      process.kill(first.pid, 'SIGKILL');
      const next = spawn(process.execPath, [TIDELOG_BIN, ...startArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const started = new Promise<void>((resolve, reject) => {
        const collect = (chunk: Buffer): void => {
          output += chunk.toString('utf8');
          if (/INFO broker started /.test(output)) resolve();
        };
        next.stdout.on('data', collect);
        next.stderr.on('data', collect);
        next.once('exit', (code, signal) => reject(new Error(`the next broker exited (${code ?? signal}) before it started:\n${output}`)));
      });
      try {
        await withTimeout(started, BROKER_START_TIMEOUT_MS, () => `the next broker to start after the SIGKILL; its output:\n${output}`);
        expect(output).not.toContain('in use by');
      } finally {
        const exited = new Promise((resolve) => next.once('exit', resolve));
        next.kill('SIGTERM');
        await withTimeout(exited, BROKER_START_TIMEOUT_MS, 'the next broker to stop');
      }
    } finally {
      await first.cleanup();
    }
  });
});
