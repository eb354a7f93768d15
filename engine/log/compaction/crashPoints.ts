// Fault injection for the swap's crash tests: when TIDELOG_TEST_CRASH_AT names a step, the
// process SIGKILLs itself right after that step, as a power cut or OOM kill would stop it.
// Inactive unless the variable is set; nothing else reads it.
export const CRASH_STEPS = ['after-cleaned', 'after-swap-rename', 'after-old-deleted', 'after-replace'] as const;
export type CrashStep = (typeof CRASH_STEPS)[number];

export const CRASH_AT_ENV = 'TIDELOG_TEST_CRASH_AT';

export function crashPoint(step: CrashStep): void {
  if (process.env[CRASH_AT_ENV] !== step) return;
  process.stderr.write(`tidelog: ${CRASH_AT_ENV}=${step}: killing the process\n`);
  process.kill(process.pid, 'SIGKILL');
}
