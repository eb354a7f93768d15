// The data directory lock (engine/log/directoryLock.ts) is an flock the kernel drops when its
// holder dies: a second opener is refused with the holder's pid while it lives, and the next one
// gets the directory at once after a kill -9, even while the dead holder is an unreaped zombie;
// a pid written in the file holds nothing by itself. Holders run in child processes (the compiled
// dist/, as the broker does).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryLockedError, LOCK_FILE, lockDirectory } from '../engine/log/directoryLock.js';
import { REPO_ROOT, withTimeout } from './support/brokerProcess.js';
import { temporaryDirectory } from './support/logs.js';
import { waitFor } from './support/waitFor.js';

const HOLDER_SCRIPT = `
  const { lockDirectory } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/engine/log/directoryLock.js'))});
  await lockDirectory(process.argv[1], 'test directory');
  process.stdout.write('locked ' + process.pid + '\\n');
  setInterval(() => undefined, 60_000);
`;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function freshDir(): Promise<string> {
  const dir = await temporaryDirectory();
  cleanups.push(dir.remove);
  return dir.path;
}

/** Resolves with the holder's pid once it printed that it holds the lock. */
function holderPid(child: ChildProcess): Promise<number> {
  let output = '';
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const locked = /locked (\d+)/.exec(output);
        if (locked !== null) resolve(Number(locked[1]));
      });
      child.once('exit', (code) => reject(new Error(`the holder exited (${code}) before it locked: ${output}`)));
    }),
    20_000,
    () => `the holder to lock the directory (output so far: ${JSON.stringify(output)})`,
  );
}

/** Open file descriptors of a process; 0 when it has none or is gone. */
function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

describe('the data directory lock', () => {
  it('refuses a second opener while another process holds it, naming that process', async () => {
    const dir = await freshDir();
    const holder = spawn(process.execPath, ['--input-type=module', '-e', HOLDER_SCRIPT, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => {
      holder.kill('SIGKILL');
    });
    const pid = await holderPid(holder);
    const refused = lockDirectory(dir, 'data directory');
    await expect(refused).rejects.toBeInstanceOf(DirectoryLockedError);
    await expect(refused).rejects.toThrow(`data directory ${dir} is in use by process ${pid}`);
  });

  it('is free at once after its holder is killed with SIGKILL, while the holder is still an unreaped zombie', async () => {
    const dir = await freshDir();
    // The holder's parent is a shell that then becomes `sleep`, which never reaps it: killed, the
    // holder stays a zombie, which a pid check would take for a live owner.
    const script = `${JSON.stringify(process.execPath)} --input-type=module -e "$HOLDER" "$DIR" & exec sleep 60`;
    const parent = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HOLDER: HOLDER_SCRIPT, DIR: dir } });
    cleanups.push(async () => {
      parent.kill('SIGKILL');
    });
    const pid = await holderPid(parent);
    process.kill(pid, 'SIGKILL');
    // Dead: a zombie whose every thread has exited, so it holds no file (its fd table is gone).
    await waitFor(() => ({ state: processState(pid), files: openFiles(pid) }), {
      until: ({ state, files }) => state === 'Z' && files === 0,
      timeoutMs: 10_000,
      intervalMs: 5,
      what: `the killed holder ${pid} to be a zombie without files`,
    });
    expect(processState(pid)).toBe('Z');
    const unlock = await lockDirectory(dir, 'data directory');
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(String(process.pid));
    await unlock();
  });

  it('takes a directory whose lock file names a live process that does not hold the lock', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, LOCK_FILE), '1'); // init: alive, and not the holder of anything here
    const unlock = await lockDirectory(dir, 'data directory');
    await expect(lockDirectory(dir, 'data directory')).rejects.toThrow('is already open in this process');
    await unlock();
    const again = await lockDirectory(dir, 'data directory');
    await again();
  });
});
