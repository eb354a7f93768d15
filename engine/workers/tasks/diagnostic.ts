// A task that does nothing useful on purpose: it lets the pool's own behaviour (results, thrown
// errors, hung threads, time limits, retries) be checked and measured without touching a log.
// `tidelog` never schedules it on its own.

export interface DiagnosticInput {
  /**
   * echo: return the payload; throw: fail with the payload as the message; spin: busy-loop on the
   * thread for ms, deaf to cancels (a hung task); sleep: wait ms without blocking, ended early by a cancel.
   */
  action: 'echo' | 'throw' | 'spin' | 'sleep';
  payload?: string;
  ms?: number;
}

export interface DiagnosticOutput {
  payload: string;
  threadId: number;
}

export async function runDiagnostic(input: DiagnosticInput, threadId: number, signal: AbortSignal): Promise<DiagnosticOutput> {
  const payload = input.payload ?? '';
  switch (input.action) {
    case 'echo':
      return { payload, threadId };
    case 'throw':
      throw new Error(payload || 'diagnostic failure');
    case 'spin': {
      const until = Date.now() + (input.ms ?? 0);
      while (Date.now() < until) {
        // Blocks this worker thread, as a runaway scan would; only termination stops it.
      }
      return { payload, threadId };
    }
    case 'sleep':
      await new Promise<void>((resolve, reject) => {
        const onCancel = (): void => {
          clearTimeout(timer);
          reject(signal.reason as Error);
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onCancel);
          resolve();
        }, input.ms ?? 0);
        if (signal.aborted) onCancel();
        else signal.addEventListener('abort', onCancel, { once: true });
      });
      return { payload, threadId };
  }
}
