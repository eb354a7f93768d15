// Bounded waiting for a condition that no event announces: state in another process (a broker
// child), on disk, or in-process state the product reports no event for. Prefer awaiting the
// event itself wherever there is one (a child's 'exit', a broker log line via
// BrokerProcess.waitForLine, a client callback or instrumentation event); use this otherwise.
//
// It re-checks on a short interval and, at the deadline, fails naming what did not happen and
// the last value (or error) it saw, so a timeout says where things stood. A fixed sleep followed
// by an assertion is never a substitute: it is either too short on a loaded machine or wasted time.

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

export interface WaitForOptions<T> {
  /** What is awaited, read after "waiting for": e.g. 'the group to become Empty'. */
  what: string;
  timeoutMs: number;
  /** Pause between checks. Default DEFAULT_INTERVAL_MS. */
  intervalMs?: number;
  /** When an observed value ends the wait. Default: the value is truthy. */
  until?: (value: T) => boolean;
  /** How the last value is shown in the timeout error. Default: JSON, bigints as strings. */
  describe?: (value: T) => string;
}

export const DEFAULT_INTERVAL_MS = 10;
/** A deadline beyond this is a mistake (a test timeout is far shorter). */
const MAX_TIMEOUT_MS = 10 * 60 * 1000;

/** JSON of `value` with bigints as strings, cut to a readable length. */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 2_000 ? `${text.slice(0, 2_000)}... (${text.length} chars)` : text;
}

/**
 * Calls `observe` until `until(value)` holds and returns that value; an `observe` that throws is
 * retried (its last error is reported). Rejects with WaitTimeoutError after timeoutMs, also when
 * one `observe` call itself never settles.
 */
export async function waitFor<T>(observe: () => T | Promise<T>, options: WaitForOptions<T>): Promise<T> {
  const { what, timeoutMs, intervalMs = DEFAULT_INTERVAL_MS } = options;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) throw new RangeError(`waitFor timeoutMs must be an integer in [1, ${MAX_TIMEOUT_MS}], got ${timeoutMs}`);
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > timeoutMs) throw new RangeError(`waitFor intervalMs must be an integer in [1, timeoutMs], got ${intervalMs}`);
  const until = options.until ?? ((value: T) => Boolean(value));
  const describe = options.describe ?? describeValue;

  let last = 'nothing observed yet';
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), timeoutMs);
  });
  const fail = (): never => {
    throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}; last observed: ${last}`);
  };
  try {
    for (;;) {
      let outcome: { value: T } | 'expired';
      try {
        outcome = await Promise.race([Promise.resolve(observe()).then((value) => ({ value })), expired]);
      } catch (error) {
        last = `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
        if ((await Promise.race([pause(intervalMs), expired])) === 'expired') return fail();
        continue;
      }
      if (outcome === 'expired') return fail();
      if (until(outcome.value)) return outcome.value;
      last = describe(outcome.value);
      if ((await Promise.race([pause(intervalMs), expired])) === 'expired') return fail();
    }
  } finally {
    clearTimeout(timer);
  }
}

function pause(ms: number): Promise<'paused'> {
  return new Promise((resolve) => setTimeout(() => resolve('paused'), ms));
}
