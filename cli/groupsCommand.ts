// `tidelog groups list|describe|reset-offsets|delete` over the bundled admin client
// (client/admin.ts). Every subcommand takes --bootstrap-server and --timeout-ms; list, describe and
// reset-offsets take --json for scripts. Exit codes: 0 success, 1 a failed or refused request (the
// broker down, an unknown group, a group with active members), 2 bad usage (one line on stderr).
//
// reset-offsets follows kafka-consumer-groups: it only shows the plan unless --execute is given
// (--dry-run says so explicitly), and it is refused while the group has members, since a running
// consumer would overwrite the new offsets with its next commit.
import type { Argv, CommandModule } from 'yargs';
import { ErrorCode } from '../protocol/errors.js';
import { KafkaProtocolError, createAdmin, type Admin, type GroupDescription, type ResetResult, type ResetTarget } from '../client/index.js';
import { CliUsageError, bootstrapServers, checkTimeout, runHandler, withConnectionOptions, type CommandOutcome, type ConnectionArguments } from './plumbing.js';

const MAX_GROUPS_PER_DELETE = 1_000;
/** groups list describes groups whose state ListGroups did not give, up to this many... */
const MAX_GROUPS_DESCRIBED_FOR_STATE = 1_000;
/** ...with this many DescribeGroups in flight. */
const DESCRIBE_CONCURRENCY = 8;

interface JsonArgument extends ConnectionArguments {
  json: boolean;
}
interface DescribeArguments extends JsonArgument {
  group: string;
}
interface DeleteArguments extends ConnectionArguments {
  groups: string[];
}
interface ResetArguments extends JsonArgument {
  group: string;
  topic: string;
  'to-earliest': boolean | undefined;
  'to-latest': boolean | undefined;
  'to-offset': number | undefined;
  'to-datetime': string | undefined;
  'shift-by': number | undefined;
  'dry-run': boolean | undefined;
  execute: boolean | undefined;
}

async function withAdmin<T>(args: ConnectionArguments, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = createAdmin({ bootstrapServers: bootstrapServers(args['bootstrap-server']), clientId: 'tidelog-cli', requestTimeoutMs: checkTimeout(args['timeout-ms']) });
  try {
    return await use(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function checkGroupName(group: string): string {
  if (group.length === 0) throw new CliUsageError('a group id must not be empty');
  return group;
}

/** Rows as columns aligned by padding (the last column is not padded). */
export function formatTable(rows: ReadonlyArray<readonly string[]>): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd() + '\n').join('');
}

function offsetText(offset: bigint | null): string {
  return offset === null || offset < 0n ? '-' : offset.toString();
}

function offsetNumber(offset: bigint | null): number | null {
  return offset === null || offset < 0n ? null : Number(offset);
}

/** An unknown group is described as Dead with nothing in it: report it as missing. */
function exists(description: GroupDescription): boolean {
  return !(description.state === 'Dead' && description.members.length === 0 && description.offsets.length === 0);
}

/** The describe table: one row per partition (kafka-consumer-groups --describe), then the members. */
export function describeText(description: GroupDescription): string {
  const members = new Map(description.members.map((member) => [member.memberId, member]));
  const lines = [
    `Group: ${description.groupId}\tState: ${description.state}\tProtocol: ${description.protocol || '-'}\tMembers: ${description.members.length}\tTotal lag: ${description.totalLag}\n`,
    '\n',
  ];
  if (description.offsets.length === 0) {
    lines.push('(no committed offsets and no assigned partitions)\n');
  } else {
    const rows = [['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID']];
    for (const p of description.offsets) {
      const member = p.memberId === null ? undefined : members.get(p.memberId);
      rows.push([p.topic, String(p.partition), offsetText(p.committedOffset), offsetText(p.logEndOffset), p.lag === null ? '-' : p.lag.toString(), p.memberId ?? '-', member?.clientHost ?? '-', member?.clientId ?? '-']);
    }
    lines.push(formatTable(rows));
  }
  if (description.members.length > 0) {
    const rows = [['CONSUMER-ID', 'INSTANCE-ID', 'HOST', 'CLIENT-ID', 'ASSIGNMENT']];
    for (const member of description.members) {
      const assignment = member.assignment.map((tp) => `${tp.topic}-${tp.partition}`).join(',');
      rows.push([member.memberId, member.groupInstanceId ?? '-', member.clientHost, member.clientId, assignment.length > 0 ? assignment : '-']);
    }
    lines.push('\n', formatTable(rows));
  }
  return lines.join('');
}

/** The --json form: offsets and lags as numbers (null where unknown). */
export function describeJson(description: GroupDescription): object {
  return {
    groupId: description.groupId,
    state: description.state,
    protocolType: description.protocolType,
    protocol: description.protocol,
    members: description.members.map((member) => ({ ...member })),
    offsets: description.offsets.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      committedOffset: offsetNumber(p.committedOffset),
      logEndOffset: offsetNumber(p.logEndOffset),
      lag: offsetNumber(p.lag),
      memberId: p.memberId,
    })),
    totalLag: Number(description.totalLag),
  };
}

/** The one target named by the flags; a usage error unless exactly one is given. */
export function resetTarget(args: Pick<ResetArguments, 'to-earliest' | 'to-latest' | 'to-offset' | 'to-datetime' | 'shift-by'>): ResetTarget {
  const given: ResetTarget[] = [];
  if (args['to-earliest'] === true) given.push('earliest');
  if (args['to-latest'] === true) given.push('latest');
  const offset = args['to-offset'];
  if (offset !== undefined) {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new CliUsageError(`--to-offset must be a non-negative integer, got ${String(offset)}`);
    given.push({ offset });
  }
  const datetime = args['to-datetime'];
  if (datetime !== undefined) {
    // Date.parse takes many shapes; only ISO 8601 (a time zone or Z is optional: local time then).
    const timestampMs = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(datetime) ? Date.parse(datetime) : NaN;
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new CliUsageError(`--to-datetime must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z, got ${JSON.stringify(datetime)}`);
    given.push({ timestampMs });
  }
  const shiftBy = args['shift-by'];
  if (shiftBy !== undefined) {
    if (!Number.isSafeInteger(shiftBy)) throw new CliUsageError(`--shift-by must be an integer, got ${String(shiftBy)}`);
    given.push({ shiftBy });
  }
  if (given.length !== 1) throw new CliUsageError('give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO, --shift-by N');
  return given[0]!;
}

function resetText(results: readonly ResetResult[]): string {
  const rows = [['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET']];
  for (const r of results) rows.push([r.topic, String(r.partition), offsetText(r.previousOffset), r.newOffset.toString()]);
  return formatTable(rows);
}

export function groupsCommand(outcome: CommandOutcome): CommandModule<object, object> {
  return {
    command: 'groups',
    describe: 'list, describe and delete consumer groups and reset their offsets',
    builder: (argv: Argv<object>): Argv<object> =>
      argv
        .command(listCommand(outcome))
        .command(describeCommand(outcome))
        .command(resetOffsetsCommand(outcome))
        .command(deleteCommand(outcome))
        .demandCommand(1, 'name a groups command: list, describe, reset-offsets, delete'),
    handler: () => undefined,
  };
}

function jsonOption<T>(argv: Argv<T>): Argv<T & JsonArgument> {
  return withConnectionOptions(argv).option('json', { type: 'boolean', default: false, describe: 'print JSON' }) as Argv<T & JsonArgument>;
}

function listCommand(outcome: CommandOutcome): CommandModule<object, JsonArgument> {
  return {
    command: 'list',
    describe: 'list the consumer groups with their state',
    builder: (argv: Argv<object>): Argv<JsonArgument> => jsonOption(argv),
    handler: (args) =>
      runHandler(outcome, 'groups list', async () => {
        const groups = await withAdmin(args, async (admin) => {
          const listed = await admin.listGroups();
          // ListGroups before v4 carries no state: ask each group's coordinator, a few at a time.
          const stateless = listed.filter((g) => g.state === '').slice(0, MAX_GROUPS_DESCRIBED_FOR_STATE);
          for (let i = 0; i < stateless.length; i += DESCRIBE_CONCURRENCY) {
            await Promise.all(stateless.slice(i, i + DESCRIBE_CONCURRENCY).map(async (g) => {
              g.state = (await admin.describeGroup(g.groupId)).state;
            }));
          }
          return listed;
        });
        if (args.json) process.stdout.write(`${JSON.stringify(groups)}\n`);
        else if (groups.length > 0) process.stdout.write(formatTable([['GROUP', 'STATE', 'PROTOCOL-TYPE'], ...groups.map((g) => [g.groupId, g.state || '-', g.protocolType || '-'])]));
      }),
  };
}

function describeCommand(outcome: CommandOutcome): CommandModule<object, DescribeArguments> {
  return {
    command: 'describe <group>',
    describe: 'show a group\'s members, assignment, committed offsets, log end offsets and lag',
    builder: (argv: Argv<object>): Argv<DescribeArguments> =>
      jsonOption(argv.positional('group', { type: 'string', demandOption: true, describe: 'the group id' })) as Argv<DescribeArguments>,
    handler: (args) =>
      runHandler(outcome, 'groups describe', async () => {
        const description = await withAdmin(args, (admin) => admin.describeGroup(checkGroupName(args.group)));
        if (!exists(description)) throw new Error(`group ${args.group} does not exist`);
        process.stdout.write(args.json ? `${JSON.stringify(describeJson(description))}\n` : describeText(description));
      }),
  };
}

function resetOffsetsCommand(outcome: CommandOutcome): CommandModule<object, ResetArguments> {
  return {
    command: 'reset-offsets',
    describe: 'show (or with --execute, commit) new offsets of an inactive group for a topic',
    builder: (argv: Argv<object>): Argv<ResetArguments> =>
      jsonOption(argv)
        .option('group', { type: 'string', demandOption: true, describe: 'the group id' })
        .option('topic', { type: 'string', demandOption: true, describe: 'the topic whose offsets to reset (every partition)' })
        .option('to-earliest', { type: 'boolean', describe: 'the first offset still in the log' })
        .option('to-latest', { type: 'boolean', describe: 'the log end (skip everything there now)' })
        .option('to-offset', { type: 'number', describe: 'this offset (clamped to the log\'s range)' })
        .option('to-datetime', { type: 'string', describe: 'the first record at or after this ISO 8601 time' })
        .option('shift-by', { type: 'number', describe: 'move the committed offset by N (negative: back)' })
        .option('dry-run', { type: 'boolean', describe: 'only show the new offsets (the default)' })
        .option('execute', { type: 'boolean', describe: 'commit the new offsets' })
        .conflicts('dry-run', 'execute') as unknown as Argv<ResetArguments>,
    handler: (args) =>
      runHandler(outcome, 'groups reset-offsets', async () => {
        const group = checkGroupName(args.group);
        if (args.topic.length === 0) throw new CliUsageError('--topic must not be empty');
        const target = resetTarget(args);
        const execute = args.execute === true;
        const results = await withAdmin(args, async (admin) => {
          // Checked for the dry run too (as Kafka does): a plan for an active group could not be applied.
          const description = await admin.describeGroup(group);
          if (description.members.length > 0) {
            throw new Error(`cannot reset offsets of group ${group}: it has ${description.members.length} active member${description.members.length === 1 ? '' : 's'} (state ${description.state}); stop its consumers first`);
          }
          return admin.resetGroupOffsets(group, args.topic, target, { dryRun: !execute }).catch((error: unknown) => {
            if (error instanceof KafkaProtocolError && error.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) throw new Error(`topic ${args.topic} does not exist`);
            throw error;
          });
        });
        if (args.json) {
          process.stdout.write(`${JSON.stringify({ groupId: group, executed: execute, offsets: results.map((r) => ({ topic: r.topic, partition: r.partition, previousOffset: offsetNumber(r.previousOffset), newOffset: Number(r.newOffset) })) })}\n`);
        } else {
          process.stdout.write(resetText(results));
        }
        process.stderr.write(execute ? `tidelog groups reset-offsets: committed new offsets of group ${group} for ${args.topic}\n` : 'tidelog groups reset-offsets: dry run, nothing committed; add --execute to commit these offsets\n');
      }),
  };
}

function deleteCommand(outcome: CommandOutcome): CommandModule<object, DeleteArguments> {
  return {
    command: 'delete <groups..>',
    describe: 'delete groups that have no members (their committed offsets go too)',
    builder: (argv: Argv<object>): Argv<DeleteArguments> =>
      withConnectionOptions(argv.positional('groups', { type: 'string', array: true, demandOption: true, describe: 'the group ids' })) as Argv<DeleteArguments>,
    handler: (args) =>
      runHandler(outcome, 'groups delete', async () => {
        const groups = args.groups.map(String);
        if (groups.length > MAX_GROUPS_PER_DELETE) throw new CliUsageError(`at most ${MAX_GROUPS_PER_DELETE} groups per delete`);
        for (const group of groups) checkGroupName(group);
        await withAdmin(args, async (admin) => {
          // One at a time so that the message names the group that could not be deleted.
          for (const group of groups) {
            try {
              await admin.deleteGroups([group]);
            } catch (error) {
              if (error instanceof KafkaProtocolError && error.code === ErrorCode.NON_EMPTY_GROUP) throw new Error(`cannot delete group ${group}: it has active members; stop its consumers first`);
              if (error instanceof KafkaProtocolError && error.code === ErrorCode.GROUP_ID_NOT_FOUND) throw new Error(`group ${group} does not exist`);
              throw error;
            }
            process.stdout.write(`deleted group ${group}\n`);
          }
        });
      }),
  };
}
