// One process per directory: `<dir>/.lock` holds the owner's pid, created exclusively. A lock
// whose process is gone is taken over; a set of directories locked by this process catches a
// second opener inside the same process, which the pid alone cannot tell apart.
import { open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const LOCK_FILE = '.lock';

export class DirectoryLockedError extends Error {
  override readonly name = 'DirectoryLockedError';
}

const lockedInThisProcess = new Set<string>();

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Locks `dir` for this process; returns the unlock function. `what` names the owner in errors. */
export async function lockDirectory(dir: string, what: string): Promise<() => Promise<void>> {
  const key = resolve(dir);
  if (lockedInThisProcess.has(key)) throw new DirectoryLockedError(`${what} ${dir} is already open in this process`);
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      lockedInThisProcess.add(key);
      return async () => {
        lockedInThisProcess.delete(key);
        await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processIsAlive(owner)) {
      throw new DirectoryLockedError(`${what} ${dir} is in use by process ${owner}`);
    }
    await rm(path, { force: true }); // left by a process that died
  }
  throw new DirectoryLockedError(`could not lock ${what} ${dir}`);
}
