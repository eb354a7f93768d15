// `tidelog bench storage [--quick] [--out path]`: runs the storage benchmark (bench/storageBench.ts),
// prints its Markdown table and writes its JSON. It reports; it does not judge: a missed target
// still exits 0. Only an error (the run could not finish) sets exit code 1.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { runStorageBench } from '../bench/storageBench.js';
import type { CommandOutcome } from './main.js';

/** Mirrors EXIT_FAILURE in main.ts; imported by value it would make a cycle main.ts -> here -> main.ts. */
const EXIT_FAILURE = 1;
const SUITES = ['storage'] as const;
const DEFAULT_RESULTS_PATH = join('bench', 'results', 'storage-latest.json');
/** How many directories up from this module to look for package.json (dist/cli -> root is 2). */
const MAX_PACKAGE_ROOT_DEPTH = 4;

interface BenchArguments {
  suite: (typeof SUITES)[number];
  quick: boolean;
  out: string | undefined;
}

/** The checkout root (where package.json is), so the default results path does not depend on the cwd. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth <= MAX_PACKAGE_ROOT_DEPTH; depth++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export function benchCommand(outcome: CommandOutcome): CommandModule<object, BenchArguments> {
  return {
    command: 'bench <suite>',
    describe: 'run a benchmark suite: prints a Markdown table, writes JSON results',
    builder: (argv: Argv<object>): Argv<BenchArguments> =>
      argv
        .positional('suite', { choices: SUITES, demandOption: true, describe: 'which suite to run' })
        .option('quick', { type: 'boolean', default: false, describe: 'fewer iterations, logs of 1e4-1e6 records, a smaller recovery log (under 40 s)' })
        .option('out', { type: 'string', describe: `where to write the JSON results (default <checkout>/${DEFAULT_RESULTS_PATH})` }),
    handler: async (args) => {
      // main.ts's fail() records usage errors without throwing, so yargs still calls this handler
      // after a failed `choices` check: run nothing then, and main reports the usage error.
      if (!(SUITES as readonly string[]).includes(args.suite)) return;
      const outPath = args.out === undefined ? join(packageRoot(), DEFAULT_RESULTS_PATH) : resolve(args.out);
      try {
        await runStorageBench({ quick: args.quick, outPath });
      } catch (error) {
        process.stderr.write(`tidelog bench ${args.suite}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        outcome.exitCode = EXIT_FAILURE;
      }
    },
  };
}
