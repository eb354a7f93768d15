// `tidelog bench [suite]`: with no suite (or `matrix`) the end-to-end matrix of bench/matrixBench.ts
// (the bundled client and kafkajs against a broker child, over partitions, segment.bytes, record
// size and acks; JSON, Markdown and SVG charts into --out-dir). Named suites print their Markdown
// table and write their JSON:
//   storage         bench/storageBench.ts, the partition log beside plain fs baselines
//   load            bench/loadBench.ts, a broker child process driven by kafkajs over loopback
//   client          bench/clientBench.ts, bundled producer against kafkajs
//   client-consume  bench/clientConsumeBench.ts, bundled consumer against kafkajs
//   rebalance       bench/rebalanceBench.ts, consumer group rebalance times
//   compaction      bench/compactionBench.ts, produce latency while a compacted topic is cleaned
//   validation      bench/validationBench.ts, produce requests and appends with record validation beside header checks only
//   stall           bench/stallBench.ts, the event loop's longest stall under hostile produce requests beside valid ones
//   embedded        bench/embeddedBench.ts, startBroker() to the first acknowledged record
//   partitions      bench/partitionsBench.ts, what a partition costs one broker child as the count
//                   grows (create, stop, start, start after kill -9, RSS, open files, Metadata,
//                   throughput spread over all partitions beside 1 partition); like the matrix it
//                   writes a directory (--out-dir: latest.json, latest.md, cost-per-partition.svg)
// It reports; it does not judge: a missed target still exits 0. Only an error (the run could not
// finish) sets exit code 1; bad flags exit 2.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { runClientBench } from '../bench/clientBench.js';
import { runClientConsumeBench } from '../bench/clientConsumeBench.js';
import { parseSize, runCompactionBench } from '../bench/compactionBench.js';
import { runLoadBench } from '../bench/loadBench.js';
import { MATRIX_DEFAULTS, MAX_MATRIX_BATCH_SIZE, MAX_MATRIX_LINGER_MS, MAX_PHASE_MS, MIN_MATRIX_BATCH_SIZE, runMatrixBench } from '../bench/matrixBench.js';
import { runRebalanceBench } from '../bench/rebalanceBench.js';
import { runStorageBench } from '../bench/storageBench.js';
import { markdownPathOf, runValidationBench } from '../bench/validationBench.js';
import { runStallBench } from '../bench/stallBench.js';
import { runEmbeddedBench } from '../bench/embeddedBench.js';
import { DEFAULT_COUNTS, DEFAULT_PHASE_MS, MAX_PHASE_MS as MAX_PARTITIONS_PHASE_MS, MAX_PHASE_TIMEOUT_MS, QUICK_COUNTS, QUICK_PHASE_MS, parsePartitionCounts, runPartitionsBench } from '../bench/partitionsBench.js';
import { EXIT_FAILURE, EXIT_USAGE, type CommandOutcome } from './plumbing.js';

const SUITES = ['matrix', 'storage', 'load', 'client', 'client-consume', 'rebalance', 'compaction', 'validation', 'stall', 'embedded', 'partitions'] as const;
type Suite = (typeof SUITES)[number];
/** Where the matrix writes latest.json, latest.md and its SVGs unless --out-dir says otherwise. */
const DEFAULT_MATRIX_DIR = join('bench', 'results');
/** Where the partitions suite writes latest.json, latest.md and its SVG unless --out-dir says otherwise. */
const DEFAULT_PARTITIONS_DIR = join('bench', 'results', 'partitions');
/** Suites that write a directory (--out-dir) instead of one JSON file (--out). */
type DirectorySuite = 'matrix' | 'partitions';
/** Where each suite writes its JSON unless --out says otherwise, relative to the checkout. */
const DEFAULT_RESULTS_PATHS: Record<Exclude<Suite, DirectorySuite>, string> = {
  storage: join('bench', 'results', 'storage-latest.json'),
  load: join('bench', 'results', 'load-latest.json'),
  client: join('bench', 'results', 'client-latest.json'),
  'client-consume': join('bench', 'results', 'client-consume-latest.json'),
  rebalance: join('bench', 'results', 'rebalance-latest.json'),
  compaction: join('bench', 'results', 'compaction.json'),
  validation: join('bench', 'results', 'validation.json'),
  stall: join('bench', 'results', 'stall.json'),
  embedded: join('bench', 'results', 'embedded.json'),
};
/** How many directories up from this module to look for package.json (dist/cli -> root is 2). */
const MAX_PACKAGE_ROOT_DEPTH = 4;

interface BenchArguments {
  suite: Suite | undefined;
  quick: boolean;
  full: boolean;
  out: string | undefined;
  'out-dir': string | undefined;
  'batch-size': number | undefined;
  'linger-ms': number | undefined;
  'warmup-ms': number | undefined;
  'produce-ms': number | undefined;
  'consume-ms': number | undefined;
  'max-records': number | undefined;
  note: string | undefined;
  size: string | undefined;
  partitions: string | undefined;
  'phase-ms': number | undefined;
  'phase-timeout-ms': number | undefined;
}

/** Flags only the matrix reads, with their valid integer ranges. */
const MATRIX_INTEGER_FLAGS: ReadonlyArray<[keyof BenchArguments & string, number, number]> = [
  ['batch-size', MIN_MATRIX_BATCH_SIZE, MAX_MATRIX_BATCH_SIZE],
  ['linger-ms', 0, MAX_MATRIX_LINGER_MS],
  ['warmup-ms', 0, MAX_PHASE_MS],
  ['produce-ms', 1, MAX_PHASE_MS],
  ['consume-ms', 1, MAX_PHASE_MS],
  ['max-records', 1, Number.MAX_SAFE_INTEGER],
];

/** Flags only the partitions suite reads, with their valid integer ranges. */
const PARTITIONS_INTEGER_FLAGS: ReadonlyArray<[keyof BenchArguments & string, number, number]> = [
  ['phase-ms', 1, MAX_PARTITIONS_PHASE_MS],
  ['phase-timeout-ms', 1, MAX_PHASE_TIMEOUT_MS],
];

/** Why these flags cannot run together (a usage error, exit 2), or true. */
function checkBenchArguments(args: BenchArguments): true | string {
  const matrix = args.suite === undefined || args.suite === 'matrix';
  if (args.full && args.quick) return '--full and --quick exclude each other';
  if (args.size !== undefined && args.suite !== 'compaction') return '--size is for the compaction suite';
  if (args.size !== undefined) {
    try {
      parseSize(args.size);
    } catch (error) {
      return (error as Error).message;
    }
  }
  if (args.full && !matrix) return `--full is for the matrix (tidelog bench with no suite), not for ${args.suite}`;
  const partitions = args.suite === 'partitions';
  if (args.out !== undefined && matrix) return 'the matrix writes a directory: use --out-dir, not --out';
  if (args.out !== undefined && partitions) return 'the partitions suite writes a directory: use --out-dir, not --out';
  if (args['out-dir'] !== undefined && !matrix && !partitions) return `--out-dir is for the matrix; ${args.suite} takes --out`;
  if (args.partitions !== undefined) {
    if (!partitions) return `--partitions is for the partitions suite, not for ${args.suite ?? 'the matrix'}`;
    if (args.quick) return '--partitions and --quick exclude each other';
    try {
      parsePartitionCounts(args.partitions);
    } catch (error) {
      return (error as Error).message;
    }
  }
  for (const [flag, min, max] of PARTITIONS_INTEGER_FLAGS) {
    const value = args[flag];
    if (value === undefined) continue;
    if (!partitions) return `--${flag} is for the partitions suite, not for ${args.suite ?? 'the matrix'}`;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) return `--${flag} must be an integer in [${min}, ${max}], got ${String(value)}`;
  }
  for (const [flag, min, max] of MATRIX_INTEGER_FLAGS) {
    const value = args[flag];
    if (value === undefined) continue;
    if (!matrix) return `--${flag} is for the matrix (tidelog bench with no suite), not for ${args.suite}`;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) return `--${flag} must be an integer in [${min}, ${max}], got ${String(value)}`;
  }
  return true;
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
    command: 'bench [suite]',
    describe: 'run the end-to-end matrix (no suite) or a named suite: prints Markdown, writes JSON (and the matrix SVG charts)',
    builder: (argv: Argv<object>): Argv<BenchArguments> =>
      argv
        .positional('suite', { choices: SUITES, describe: 'which suite to run (default: matrix)' })
        .option('quick', { type: 'boolean', default: false, describe: 'a shorter run (matrix: 4 points of 100-byte records incl. 1 partition acks=1, under 2 min; suites: under 40 s; partitions: 100 and 1,000 partitions)' })
        .option('full', { type: 'boolean', default: false, describe: 'matrix: the whole cross product (96 points, over an hour) instead of one axis at a time around a base point' })
        .option('out', { type: 'string', describe: `suites: where to write the JSON results (default <checkout>/${DEFAULT_RESULTS_PATHS.storage}, ${DEFAULT_RESULTS_PATHS.load}, ...; validation also writes its Markdown beside it, ${markdownPathOf(DEFAULT_RESULTS_PATHS.validation)})` })
        .option('out-dir', { type: 'string', describe: `matrix and partitions: where to write latest.json, latest.md and the SVG charts (default <checkout>/${DEFAULT_MATRIX_DIR}, <checkout>/${DEFAULT_PARTITIONS_DIR})` })
        .option('batch-size', { type: 'number', describe: `matrix: the bundled producer's batch.size in bytes (default ${MATRIX_DEFAULTS.batchSize})` })
        .option('linger-ms', { type: 'number', describe: `matrix: the bundled producer's linger.ms (default ${MATRIX_DEFAULTS.lingerMs})` })
        .option('warmup-ms', { type: 'number', describe: 'matrix: warm-up time per client and operation before the first point' })
        .option('produce-ms', { type: 'number', describe: 'matrix: time each produce phase runs (quick 4000, else 5000)' })
        .option('consume-ms', { type: 'number', describe: 'matrix: the longest a consume phase runs (quick 4000, else 5000)' })
        .option('max-records', { type: 'number', describe: 'matrix: records per phase at most (a small number makes a smoke run)' })
        .option('size', { type: 'string', describe: 'compaction: bytes of the compacted topic, e.g. 256MiB (default 1GiB; --quick 64MiB)' })
        .option('partitions', { type: 'string', describe: `partitions: the partition counts, comma-separated (default ${DEFAULT_COUNTS.join(',')}; --quick ${QUICK_COUNTS.join(',')}); leave out 50000 to skip that point` })
        .option('phase-ms', { type: 'number', describe: `partitions: the least time each throughput phase runs (default ${DEFAULT_PHASE_MS}; --quick ${QUICK_PHASE_MS})` })
        .option('phase-timeout-ms', { type: 'number', describe: 'partitions: one time bound for every phase, instead of bounds that grow with the count (a phase past it is recorded as timed out)' })
        .option('note', { type: 'string', describe: 'matrix and partitions: free text kept in the results meta (e.g. "shared machine")' }),
    handler: async (args) => {
      // main.ts's fail() records usage errors without throwing, so yargs still calls this handler
      // after a failed `choices` check: run nothing then, and main reports the usage error.
      if (args.suite !== undefined && !(SUITES as readonly string[]).includes(args.suite)) return;
      const suite: Suite = args.suite ?? 'matrix';
      const usageProblem = checkBenchArguments(args);
      if (usageProblem !== true) {
        process.stderr.write(`tidelog: ${usageProblem}\n`);
        outcome.exitCode = EXIT_USAGE;
        return;
      }
      const root = packageRoot();
      try {
        if (suite === 'matrix') {
          await runMatrixBench({
            mode: args.full ? 'full' : args.quick ? 'quick' : 'default',
            outDir: args['out-dir'] === undefined ? join(root, DEFAULT_MATRIX_DIR) : resolve(args['out-dir']),
            brokerEntry: join(root, 'bin', 'tidelog.js'),
            ...(args['batch-size'] !== undefined ? { batchSize: args['batch-size'] } : {}),
            ...(args['linger-ms'] !== undefined ? { lingerMs: args['linger-ms'] } : {}),
            ...(args['warmup-ms'] !== undefined ? { warmupMs: args['warmup-ms'] } : {}),
            ...(args['produce-ms'] !== undefined ? { produceMs: args['produce-ms'] } : {}),
            ...(args['consume-ms'] !== undefined ? { consumeMs: args['consume-ms'] } : {}),
            ...(args['max-records'] !== undefined ? { maxRecords: args['max-records'] } : {}),
            note: args.note ?? null,
          });
          return;
        }
        if (suite === 'partitions') {
          const counts = args.partitions === undefined ? (args.quick ? QUICK_COUNTS : DEFAULT_COUNTS) : parsePartitionCounts(args.partitions);
          await runPartitionsBench({
            counts,
            mode: args.partitions !== undefined ? 'chosen' : args.quick ? 'quick' : 'default',
            phaseMs: args['phase-ms'] ?? (args.quick ? QUICK_PHASE_MS : DEFAULT_PHASE_MS),
            phaseTimeoutMs: args['phase-timeout-ms'] ?? null,
            outDir: args['out-dir'] === undefined ? join(root, DEFAULT_PARTITIONS_DIR) : resolve(args['out-dir']),
            brokerEntry: join(root, 'bin', 'tidelog.js'),
            note: args.note ?? null,
          });
          return;
        }
        const outPath = args.out === undefined ? join(root, DEFAULT_RESULTS_PATHS[suite]) : resolve(args.out);
        if (suite === 'load') await runLoadBench({ quick: args.quick, outPath, brokerEntry: join(root, 'bin', 'tidelog.js') });
        else if (suite === 'client') await runClientBench({ quick: args.quick, outPath });
        else if (suite === 'client-consume') await runClientConsumeBench({ quick: args.quick, outPath });
        else if (suite === 'compaction') await runCompactionBench({ quick: args.quick, outPath, brokerEntry: join(root, 'bin', 'tidelog.js'), ...(args.size === undefined ? {} : { sizeBytes: parseSize(args.size) }) });
        else if (suite === 'rebalance') await runRebalanceBench({ quick: args.quick, outPath, brokerEntry: join(root, 'bin', 'tidelog.js') });
        else if (suite === 'validation') await runValidationBench({ quick: args.quick, outPath });
        else if (suite === 'stall') await runStallBench({ quick: args.quick, outPath });
        else if (suite === 'embedded') await runEmbeddedBench({ quick: args.quick, outPath });
        else await runStorageBench({ quick: args.quick, outPath });
      } catch (error) {
        process.stderr.write(`tidelog bench ${suite}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        outcome.exitCode = EXIT_FAILURE;
      }
    },
  };
}
