// Kafka's text checkpoint files (recovery-point-offset-checkpoint, log-start-offset-checkpoint,
// leader-epoch-checkpoint):
//
//   line 1   version (0)
//   line 2   number of entries N
//   N lines  entry fields separated by single spaces
//
// Written whole to `<name>.tmp`, fsynced, renamed over the old file, then the directory is
// fsynced: a crash leaves either the old or the new checkpoint, never a mix.
import { close as closeFd, open as openFd, read as readFd } from 'node:fs';
import { open, rename } from 'node:fs/promises';
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
    text = (await readWholeFile(path)).toString('utf8');
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

/**
 * A whole file, read with raw descriptors: open, reads until a short one, close, and no stat. Opening
 * 10,000 partitions reads three small files each; promises' readFile costs a FileHandle and a stat
 * on top. Throws ENOENT and the like as readFile does.
 */
export async function readWholeFile(path: string): Promise<Buffer> {
  const fd = await new Promise<number>((resolve, reject) => openFd(path, 'r', (error, opened) => (error === null ? resolve(opened) : reject(error))));
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (let size = SMALL_FILE_READ_BYTES; ; size = Math.min(size * 2, MAX_READ_CHUNK_BYTES)) {
      const chunk = Buffer.allocUnsafe(size);
      const bytesRead = await new Promise<number>((resolve, reject) => readFd(fd, chunk, 0, size, total, (error, read) => (error === null ? resolve(read) : reject(error))));
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      // A regular file reads short only at its end: no extra read to find it.
      if (bytesRead < size) break;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
  }
}

const SMALL_FILE_READ_BYTES = 4096;
const MAX_READ_CHUNK_BYTES = 8 * 1024 * 1024;

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
