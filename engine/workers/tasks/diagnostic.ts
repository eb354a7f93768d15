// A task that does nothing useful on purpose: it lets the pool's own behaviour (results, thrown
// errors, hung threads, time limits, retries) be checked and measured without touching a log.
// `tidelog` never schedules it on its own.

export interface DiagnosticInput {
  /** echo: return the payload; throw: fail with the payload as the message; spin: busy-loop on the thread for ms; sleep: wait ms without blocking. */
  action: 'echo' | 'throw' | 'spin' | 'sleep';
  payload?: string;
  ms?: number;
}

export interface DiagnosticOutput {
  payload: string;
  threadId: number;
}

export async function runDiagnostic(input: DiagnosticInput, threadId: number): Promise<DiagnosticOutput> {
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
      await new Promise<void>((resolve) => setTimeout(resolve, input.ms ?? 0));
      return { payload, threadId };
  }
}
