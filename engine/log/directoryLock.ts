// One process per directory: `<dir>/.lock` is held with flock(2) (exclusive, non-blocking) for as
// long as its owner has it open. The kernel drops the lock when the process dies, however it dies
// (kill -9, the OOM killer, a container stopped), so a dead owner never blocks the next start and
// no PID is trusted: an unreaped zombie or a PID reused after a container restart holds nothing.
// The file also carries the holder's pid, read only to name the holder in the refusal. The file
// is never deleted: an opener that raced the unlink would lock an orphaned inode while the next
// opener created a new file, and both would believe they held the directory.
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

export const LOCK_FILE = '.lock';

export class DirectoryLockedError extends Error {
  override readonly name = 'DirectoryLockedError';
}

interface FlockBinding {
  flockSync(fd: number, flags: 'exnb' | 'un'): number;
}
// A maintained fork of fs-ext with prebuilt binaries (no compiler or download at install); CommonJS.
const { flockSync } = createRequire(import.meta.url)('fs-ext-extra-prebuilt') as FlockBinding;

/** flock(2) answers these when another open file description holds the lock. */
const HELD_ELSEWHERE = new Set(['EAGAIN', 'EWOULDBLOCK']);

/** Directories locked by this process: a second opener here gets a clearer message than flock's. */
const lockedInThisProcess = new Set<string>();

/** Locks `dir` for this process; returns the unlock function. `what` names the owner in errors. */
export async function lockDirectory(dir: string, what: string): Promise<() => Promise<void>> {
  const key = resolve(dir);
  if (lockedInThisProcess.has(key)) throw new DirectoryLockedError(`${what} ${dir} is already open in this process`);
  const path = join(dir, LOCK_FILE);
  // Opened without truncation: the pid inside belongs to the holder until the lock is ours.
  const handle = await open(path, 'a+');
  try {
    await takeLock(handle);
  } catch (error) {
    await handle.close();
    if (!HELD_ELSEWHERE.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
    throw new DirectoryLockedError(`${what} ${dir} is in use by ${/^\d+$/.test(holder) ? `process ${holder}` : 'another process'} (it holds the lock on ${path}; waited ${LOCK_WAIT_MS} ms)`);
  }
  try {
    await handle.truncate(0);
    await handle.writeFile(String(process.pid));
    await handle.sync();
  } catch (error) {
    await release(handle);
    throw error;
  }
  lockedInThisProcess.add(key);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    lockedInThisProcess.delete(key);
    await release(handle);
  };
}

/**
 * How long a held lock is waited for before the refusal. A process killed a moment ago keeps its
 * files (and so its lock) until its last thread has exited, which for a Node process with worker
 * threads can take a few milliseconds after kill -9 returns: a restart at once must not fail then.
 */
const LOCK_WAIT_MS = 2_000;
const LOCK_RETRY_MS = 25;

/** flock(LOCK_EX | LOCK_NB), tried again while another holds it, for up to LOCK_WAIT_MS. */
async function takeLock(handle: FileHandle): Promise<void> {
  const deadline = performance.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      flockSync(handle.fd, 'exnb');
      return;
    } catch (error) {
      if (!HELD_ELSEWHERE.has((error as NodeJS.ErrnoException).code ?? '') || performance.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
  }
}

async function release(handle: FileHandle): Promise<void> {
  try {
    flockSync(handle.fd, 'un');
  } finally {
    // Closing drops the lock too; the explicit unlock only makes the moment certain.
    await handle.close();
  }
}
