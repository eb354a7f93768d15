// Running out of file descriptors is an operating condition, not a bug: every partition log keeps
// its active segment open, so a broker with many partitions meets the process limit (ulimit -n)
// long before memory. Where that can happen (creating partitions, starting, accepting), the raw
// EMFILE/ENFILE is turned into an error that names the limit and what to change, so the operator
// reads "the process limit is 1024 open files" rather than a path and an errno.
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { StorageError } from './errors.js';

/** The process's "Max open files" limits; null for a limit that is unlimited or unreadable. */
export interface OpenFilesLimit {
  soft: number | null;
  hard: number | null;
}

const LIMITS_FILE = '/proc/self/limits';
const OPEN_FILES_LINE = /^Max open files\s+(\S+)\s+(\S+)\s+files\s*$/m;

/** Parses the text of /proc/<pid>/limits; null when it has no "Max open files" line. */
export function parseOpenFilesLimit(limitsText: string): OpenFilesLimit | null {
  const match = OPEN_FILES_LINE.exec(limitsText);
  if (match === null) return null;
  return { soft: limitValue(match[1]!), hard: limitValue(match[2]!) };
}

function limitValue(text: string): number | null {
  if (!/^\d+$/.test(text)) return null; // "unlimited"
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/**
 * This process's open-files limits from /proc/self/limits, or null where there is no such file
 * (not Linux). A process out of descriptors cannot open the file to read them, exactly when they
 * are wanted, so the last successful reading (one is taken when this module loads) stands in.
 */
export function readOpenFilesLimit(limitsFile = LIMITS_FILE): OpenFilesLimit | null {
  const fresh = readLimitsFile(limitsFile);
  if (limitsFile !== LIMITS_FILE) return fresh;
  if (fresh !== null) lastKnownLimit = fresh;
  return fresh ?? lastKnownLimit;
}

function readLimitsFile(limitsFile: string): OpenFilesLimit | null {
  try {
    return parseOpenFilesLimit(readFileSync(limitsFile, 'utf8'));
  } catch {
    return null;
  }
}

let lastKnownLimit: OpenFilesLimit | null = readLimitsFile(LIMITS_FILE);

/** log.write.handles.max where the open-files limit is unknown or unlimited. */
export const FALLBACK_WRITE_HANDLES = 4096;
const MIN_DEFAULT_WRITE_HANDLES = 64;
const MAX_DEFAULT_WRITE_HANDLES = 1_000_000;

/**
 * The default of log.write.handles.max: half the soft open-files limit, the other half left for
 * reads, connections and transient files. A fixed 4,096 made 10,000 partitions written in turn
 * close and reopen a handle on nearly every write (spread produce fell to a third), while the
 * process could hold them all.
 */
export function defaultWriteHandles(limit: OpenFilesLimit | null = readOpenFilesLimit()): number {
  if (limit === null || limit.soft === null) return FALLBACK_WRITE_HANDLES;
  return Math.min(MAX_DEFAULT_WRITE_HANDLES, Math.max(MIN_DEFAULT_WRITE_HANDLES, Math.floor(limit.soft / 2)));
}

/** log.read.handles.max where the open-files limit allows it (the read-handle cache's size so far). */
export const FALLBACK_READ_HANDLES = 512;
const MIN_DEFAULT_READ_HANDLES = 16;

/**
 * The default of log.read.handles.max: 512, but no more than an eighth of the soft open-files
 * limit, so that with the write handles' half a limit of 1,024 still leaves room for connections.
 */
export function defaultReadHandles(limit: OpenFilesLimit | null = readOpenFilesLimit()): number {
  if (limit === null || limit.soft === null) return FALLBACK_READ_HANDLES;
  return Math.min(FALLBACK_READ_HANDLES, Math.max(MIN_DEFAULT_READ_HANDLES, Math.floor(limit.soft / 8)));
}

/**
 * EMFILE (this process's limit) or ENFILE (the system's), or null for any other error. Wrappers
 * are looked through by `cause`, and by message: an error that crossed a thread (a recovery scan
 * on the worker pool) comes back as text, with Node's "EMFILE: too many open files" in it.
 */
export function descriptorErrorCode(error: unknown): 'EMFILE' | 'ENFILE' | null {
  // Bounded: an error chain is short, and a cycle must not hang us.
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code === 'EMFILE' || code === 'ENFILE') return code;
    const named = DESCRIPTOR_ERROR_TEXT.exec(current.message);
    if (named !== null) return (named[1] ?? named[2]) as 'EMFILE' | 'ENFILE';
    current = current.cause;
  }
  return null;
}

/** How libuv words the two errors (uv_strerror), as they appear in an error's message. */
const DESCRIPTOR_ERROR_TEXT = /\b(EMFILE): too many open files\b|\b(ENFILE): file table overflow\b/;

const MAX_CAUSE_DEPTH = 8;

const OPEN_DESCRIPTORS_DIR = '/proc/self/fd';

/**
 * Descriptors a creation must leave free beside one per new partition log: the logs it opens at
 * once hold a few transient files each (32 at a time), a log that closes writes its indexes
 * through a new file, and connections, the metadata journal and checkpoints need theirs.
 */
export const DESCRIPTOR_HEADROOM = 128;

/** Descriptors a newly created partition log keeps: its active segment's write handle. */
export const DESCRIPTORS_PER_NEW_PARTITION = 1;

/**
 * Open descriptors of this process (the entries of /proc/self/fd, less the one reading them), or
 * null where that cannot be read. Asynchronous: at 50,000 partitions the listing takes tens of ms.
 */
export async function openDescriptorCount(descriptorsDir = OPEN_DESCRIPTORS_DIR): Promise<number | null> {
  try {
    return Math.max(0, (await readdir(descriptorsDir)).length - 1);
  } catch {
    return null;
  }
}

/**
 * Throws a StorageError naming the limit when `needed` more descriptors (one per partition log to
 * open) plus DESCRIPTOR_HEADROOM do not fit under the soft limit: refusing before the first open
 * leaves nothing to undo, whereas undoing a creation that ran out halfway itself needs
 * descriptors. Does nothing where the limit or the count cannot be read.
 */
export async function checkDescriptorRoom(needed: number, what: string, limit: OpenFilesLimit | null = readOpenFilesLimit(), open: number | null = null): Promise<void> {
  const soft = limit?.soft ?? null;
  if (soft === null) return;
  const opened = open ?? (await openDescriptorCount());
  if (opened === null || opened + needed + DESCRIPTOR_HEADROOM <= soft) return;
  throw new StorageError(
    `not enough file descriptors: ${what} needs about ${needed} more open files (one per partition log) and ${DESCRIPTOR_HEADROOM} to spare, ` +
      `and this process has ${opened} open; ${processLimitText(limit)}; ${REMEDY}`,
  );
}

const REMEDY = 'raise it, or lower log.write.handles.max and log.read.handles.max (segment files held open)';

function processLimitText(limit: OpenFilesLimit | null): string {
  const soft = limit?.soft ?? null;
  const hard = limit?.hard ?? null;
  if (soft === null) return 'the process limit is unknown or unlimited (ulimit -n)';
  return `the process limit is ${soft} open files (ulimit -n; hard limit ${hard === null ? 'unlimited' : hard})`;
}

/** What to tell the operator, e.g. "out of file descriptors (EMFILE): the process limit is 1024 open files (ulimit -n; hard limit 524288); ...". */
export function describeDescriptorExhaustion(code: 'EMFILE' | 'ENFILE', limit: OpenFilesLimit | null): string {
  if (code === 'ENFILE') return `out of file descriptors (ENFILE): the system-wide limit is reached (fs.file-max); ${processLimitText(limit)}; ${REMEDY}`;
  return `out of file descriptors (EMFILE): ${processLimitText(limit)}; ${REMEDY}`;
}

/**
 * A StorageError (KAFKA_STORAGE_ERROR) naming the open-files limit for an EMFILE/ENFILE anywhere
 * in `error`'s cause chain; null for any other error. `what` says what was being done.
 */
export function descriptorExhaustionError(error: unknown, what: string, limit: OpenFilesLimit | null = readOpenFilesLimit()): StorageError | null {
  const code = descriptorErrorCode(error);
  if (code === null) return null;
  return new StorageError(`${what} failed: ${describeDescriptorExhaustion(code, limit)}`, { cause: error });
}
