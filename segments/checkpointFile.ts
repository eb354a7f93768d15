// Kafka's text checkpoint files (recovery-point-offset-checkpoint, log-start-offset-checkpoint,
// leader-epoch-checkpoint):
//
//   line 1   version (0)
//   line 2   number of entries N
//   N lines  entry fields separated by single spaces
//
// Written whole to `<name>.tmp`, fsynced, renamed over the old file, then the directory is
// fsynced: a crash leaves either the old or the new checkpoint, never a mix.
import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export const CHECKPOINT_VERSION = 0;

export class CheckpointFormatError extends Error {
  override readonly name = 'CheckpointFormatError';
}

export function checkpointText(entries: readonly (readonly (string | number)[])[]): string {
  return [String(CHECKPOINT_VERSION), String(entries.length), ...entries.map((fields) => fields.join(' '))].join('\n') + '\n';
}

export async function writeCheckpoint(path: string, entries: readonly (readonly (string | number)[])[]): Promise<void> {
  const text = checkpointText(entries);
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await fsyncDirectory(dirname(path));
}

/** The entries of a checkpoint file, or null when it does not exist. Throws on a malformed file. */
export async function readCheckpoint(path: string, fieldsPerEntry: number): Promise<string[][] | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return parseCheckpoint(text, path, fieldsPerEntry);
}

/** The entries of a checkpoint file's text (null when empty); throws on a malformed one. */
export function parseCheckpoint(text: string, path: string, fieldsPerEntry: number): string[][] | null {
  // A file written in place whose sync a crash forestalled (LogState.deferWrite) may be empty.
  if (text.length === 0) return null;
  const lines = text.split('\n').filter((line) => line.length > 0);
  if (lines[0] !== String(CHECKPOINT_VERSION)) throw new CheckpointFormatError(`${path}: unsupported version line ${JSON.stringify(lines[0])}`);
  const count = Number(lines[1]);
  if (!Number.isInteger(count) || count < 0 || lines.length !== count + 2) {
    throw new CheckpointFormatError(`${path}: declares ${lines[1]} entries but has ${lines.length - 2}`);
  }
  return lines.slice(2).map((line, index) => {
    const fields = line.split(' ');
    if (fields.length !== fieldsPerEntry) throw new CheckpointFormatError(`${path}: entry ${index} has ${fields.length} fields, expected ${fieldsPerEntry}`);
    return fields;
  });
}

/** Syncs a file's data through a handle of its own (fdatasync syncs the file, whoever wrote it). */
export async function syncFileData(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
