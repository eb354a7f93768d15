// The `tidelog` command line. Each command lives in its own module; this file only wires them
// into yargs and turns outcomes into exit codes: 0 success, 1 failure, 2 bad usage.
import yargs from 'yargs';
import { benchCommand } from './benchCommand.js';
import { brokerCommand } from './brokerCommand.js';
import { consumeCommand } from './consumeCommand.js';
import { groupsCommand } from './groupsCommand.js';
import { inspectCommand } from './inspectCommand.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CommandOutcome } from './plumbing.js';
import { produceCommand } from './produceCommand.js';
import { replayCommand } from './replayCommand.js';
import { topicsCommand } from './topicsCommand.js';

/** Bad flags or arguments: reported in one line with exit code 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

export async function main(argv: string[]): Promise<number> {
  const outcome: CommandOutcome = { exitCode: EXIT_OK };
  const parser = yargs(argv)
    .scriptName('tidelog')
    .usage('$0 <command> [options]')
    .command(inspectCommand(outcome))
    .command(benchCommand(outcome))
    .command(brokerCommand(outcome))
    .command(topicsCommand(outcome))
    .command(produceCommand(outcome))
    .command(consumeCommand(outcome))
    .command(replayCommand(outcome))
    .command(groupsCommand(outcome))
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((message, error) => {
      // Throwing here stops yargs before any handler runs with arguments it refused.
      if (error !== undefined && error !== null) throw error;
      throw new UsageError(message);
    })
    .exitProcess(false);
  try {
    await parser.parseAsync();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`tidelog: ${message}\n`);
    return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
  return outcome.exitCode;
}
