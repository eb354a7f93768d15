// Structured log lines: one line per event, `level message key=value ...`, to stderr by default.
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function format(level: string, message: string, fields: Record<string, unknown> | undefined): string {
  let line = `${new Date().toISOString()} ${level} ${message}`;
  if (fields !== undefined) {
    for (const [key, value] of Object.entries(fields)) line += ` ${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
  }
  return line + '\n';
}

export function streamLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  return {
    info: (message, fields) => write(format('INFO', message, fields)),
    warn: (message, fields) => write(format('WARN', message, fields)),
    error: (message, fields) => write(format('ERROR', message, fields)),
  };
}

/** Keeps lines in memory; tests assert on what was logged. */
export class MemoryLogger implements Logger {
  readonly lines: Array<{ level: 'info' | 'warn' | 'error'; message: string; fields: Record<string, unknown> }> = [];
  info(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'error', message, fields });
  }
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
