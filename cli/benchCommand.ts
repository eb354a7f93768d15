// `tidelog bench <storage|load|client|client-consume|rebalance> [--quick] [--out path]`: runs a benchmark suite and prints its
// Markdown table and writes its JSON:
//   storage  bench/storageBench.ts, the partition log beside plain fs baselines
//   load     bench/loadBench.ts, a broker child process driven by kafkajs over loopback
// It reports; it does not judge: a missed target still exits 0. Only an error (the run could not
// finish) sets exit code 1.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { runClientBench } from '../bench/clientBench.js';
import { runClientConsumeBench } from '../bench/clientConsumeBench.js';
import { runLoadBench } from '../bench/loadBench.js';
import { runRebalanceBench } from '../bench/rebalanceBench.js';
import { runStorageBench } from '../bench/storageBench.js';
import type { CommandOutcome } from './main.js';

/** Mirrors EXIT_FAILURE in main.ts; imported by value it would make a cycle main.ts -> here -> main.ts. */
const EXIT_FAILURE = 1;
const SUITES = ['storage', 'load', 'client', 'client-consume', 'rebalance'] as const;
/** Where each suite writes its JSON unless --out says otherwise, relative to the checkout. */
const DEFAULT_RESULTS_PATHS: Record<(typeof SUITES)[number], string> = {
  storage: join('bench', 'results', 'storage-latest.json'),
  load: join('bench', 'results', 'load-latest.json'),
  client: join('bench', 'results', 'client-latest.json'),
  'client-consume': join('bench', 'results', 'client-consume-latest.json'),
  rebalance: join('bench', 'results', 'rebalance-latest.json'),
};
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
        .option('quick', { type: 'boolean', default: false, describe: 'a shorter run, under 40 s (storage: fewer iterations, logs of 1e4-1e6 records; load: about 8 s per phase)' })
        .option('out', { type: 'string', describe: `where to write the JSON results (default <checkout>/${DEFAULT_RESULTS_PATHS.storage} or ${DEFAULT_RESULTS_PATHS.load})` }),
    handler: async (args) => {
      // main.ts's fail() records usage errors without throwing, so yargs still calls this handler
      // after a failed `choices` check: run nothing then, and main reports the usage error.
      if (!(SUITES as readonly string[]).includes(args.suite)) return;
      const root = packageRoot();
      const outPath = args.out === undefined ? join(root, DEFAULT_RESULTS_PATHS[args.suite]) : resolve(args.out);
      try {
        if (args.suite === 'load') await runLoadBench({ quick: args.quick, outPath, brokerEntry: join(root, 'bin', 'tidelog.js') });
        else if (args.suite === 'client') await runClientBench({ quick: args.quick, outPath });
        else if (args.suite === 'client-consume') await runClientConsumeBench({ quick: args.quick, outPath });
        else if (args.suite === 'rebalance') await runRebalanceBench({ quick: args.quick, outPath, brokerEntry: join(root, 'bin', 'tidelog.js') });
        else await runStorageBench({ quick: args.quick, outPath });
      } catch (error) {
        process.stderr.write(`tidelog bench ${args.suite}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        outcome.exitCode = EXIT_FAILURE;
      }
    },
  };
}
