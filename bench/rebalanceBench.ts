// The rebalance benchmark: how long a consumer group of kafkajs 2.2.4 members is without an owner
// for some partitions, against a broker child process on loopback.
//
//   kill -> evicted    a member in a child process is SIGKILLed; until the broker logs its expiry
//                      ("member expired ... reason=session-timeout"), by the log line's timestamp
//   kill -> resumed    ... until the survivors have consumed a record, in a later generation, on
//                      every partition the killed member owned (records keep arriving meanwhile)
//   join -> settled    a new member starts (connect, subscribe, run) while two members consume;
//                      until all three joined one new generation covering every partition, and
//                      each has consumed a record in it
//
// The same join, measured with members of the bundled consumer (client/consumer/consumer.ts subscribe()),
// once with the eager protocol (assignors ['range']) and once with incremental cooperative
// rebalancing (['cooperative-sticky'], KIP-429), on the same topic in the same run, alternating
// repetition by repetition so machine noise hits both:
//   join -> settled    as above (cooperative takes two generations: the first moves nothing to
//                      the joiner, the follow-up hands it the partitions the others gave up)
//   longest gap        the longest time, from the last record consumed before the join to the
//                      settled generation's first record of every partition, between two records
//                      consumed of one partition, over the partitions an existing member owns
//                      before and after (eager: they stop too; cooperative: they keep flowing),
//                      and over every partition
// With records every PRODUCE_INTERVAL_MS and fetches waiting up to FETCH_MAX_WAIT_MS, a partition
// that keeps flowing shows a gap of about that much.
//
// Both events (the kill, the join) are triggered the moment the group reached its steady state,
// i.e. just after every member synced and reset its heartbeat timer: the survivors' heartbeats
// then fall in step with the killed member's, and a joiner is noticed only at the existing
// members' next heartbeat, one full interval later (the worst heartbeat phase for a join).
//
// Each repetition uses a group of its own on one 6-partition topic, starting at the log end, and
// a producer that sends one record to every partition every PRODUCE_INTERVAL_MS while it runs.
// Beside each row: the members' session timeout, rebalance timeout and heartbeat interval, and the
// broker's group.initial.rebalance.delay.ms. Times are wall-clock milliseconds (Date.now(), which
// the broker's log timestamps also use), median and max over the repetitions.
//
// The killed member runs this module's runBenchMember() in a child process (`node -e` importing
// this file), printing JSON lines; the survivors and the joining member run in this process.
// Every wait is bounded; every loop stops at a count or a deadline. The table goes to `out`
// (stdout), progress lines to `progress` (stderr), the JSON to `outPath`.
import { startBrokerChild, withTimeout, type BrokerChild } from './brokerChild.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type * as KafkaJs from 'kafkajs';
import type { AssignorName, RebalanceProtocol } from '../client/assignors.js';
import { createConsumer, type Consumer } from '../client/consumer/consumer.js';
import { median } from './benchStats.js';
import { loadKafkaJs } from './kafkajsBaseline.js';

// ---------------------------------------------------------------------------------------------
// Limits and shapes (all in one place)

const PARTITIONS = 6;
const TOPIC = 'rebalance-bench';
/** One record per partition per tick while a repetition runs. */
const PRODUCE_INTERVAL_MS = 10;
/** stderr lines of a member process kept for error reports. */
const MEMBER_LOG_LINES_KEPT = 200;
/** Broker settings: Kafka's defaults except these (short sessions allowed; no initial delay). */
const BROKER_CONFIGS: Readonly<Record<string, string>> = {
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '1000',
  'offsets.topic.num.partitions': '3',
};
/** How long a group may take to reach its steady state before a measurement starts. */
const SETTLE_TIMEOUT_MS = 30_000;
/** Past the session and rebalance timeouts, how long a measured phase may take before it counts as failed. */
const MEASURE_SLACK_MS = 15_000;
const MEMBER_STOP_TIMEOUT_MS = 15_000;
const CHILD_EXIT_TIMEOUT_MS = 10_000;
/** kafkajs long-poll: it heartbeats between fetches, so this bounds how late it notices a rebalance. */
const FETCH_MAX_WAIT_MS = 100;
/** Never run longer than this, whatever a plan says. */
const MAX_RUN_MS = 900_000;
/** The bundled consumer's rows: the eager protocol and incremental cooperative rebalancing. */
const BUNDLED_PROTOCOLS: ReadonlyArray<{ protocol: RebalanceProtocol; assignors: AssignorName[] }> = [
  { protocol: 'eager', assignors: ['range'] },
  { protocol: 'cooperative', assignors: ['cooperative-sticky'] },
];
/** How often a bundled member's generation is looked at (it has no events): the join times in its ledger are this late at most. */
const GENERATION_POLL_MS = 5;
/** Members consuming before the join (the joiner makes one more). */
const EXISTING_MEMBERS = 2;

interface MemberTimings {
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
}

interface Plan {
  label: 'full' | 'quick';
  repetitions: number;
  timings: MemberTimings[];
}

const QUICK_PLAN: Plan = {
  label: 'quick',
  repetitions: 3,
  timings: [{ sessionTimeoutMs: 3_000, rebalanceTimeoutMs: 10_000, heartbeatIntervalMs: 300 }],
};

const FULL_PLAN: Plan = {
  label: 'full',
  repetitions: 5,
  timings: [
    { sessionTimeoutMs: 3_000, rebalanceTimeoutMs: 10_000, heartbeatIntervalMs: 300 },
    { sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 30_000, heartbeatIntervalMs: 1_000 },
  ],
};

export type RebalanceMeasurement = 'kill -> evicted' | 'kill -> resumed' | 'join -> settled';

export interface RebalanceRow extends MemberTimings {
  measurement: RebalanceMeasurement;
  initialRebalanceDelayMs: number;
  samplesMs: number[];
  medianMs: number;
  maxMs: number;
}

export interface SampleSummary {
  samplesMs: number[];
  medianMs: number;
  maxMs: number;
}

/** A member of the bundled consumer joining EXISTING_MEMBERS others, under one rebalance protocol. */
export interface BundledJoinRow extends MemberTimings {
  measurement: 'join -> settled';
  client: 'tidelog';
  protocol: RebalanceProtocol;
  assignors: AssignorName[];
  existingMembers: number;
  partitions: number;
  initialRebalanceDelayMs: number;
  settled: SampleSummary;
  /** Per repetition: the longest gap between two records consumed of one partition an existing member kept. */
  retainedPartitionGap: SampleSummary;
  /** Per repetition: the longest such gap over every partition (those that moved included). */
  anyPartitionGap: SampleSummary;
  /** Per repetition: how many partitions an existing member kept. */
  retainedPartitions: number[];
  /** Per repetition: generations from the one before the join to the settled one. */
  generations: number[];
}

export interface RebalanceBenchReport {
  /** loadAverageAtStart: the machine may be shared (1, 5 and 15 minute load averages). */
  machine: { cpus: number; node: string; loadAverageAtStart: number[] };
  startedAt: string;
  plan: Plan;
  client: { library: 'kafkajs'; version: string; fetchMaxWaitMs: number };
  broker: { configs: Readonly<Record<string, string>>; warnLines: number; errorLines: number };
  rows: RebalanceRow[];
  /** The bundled consumer's members (fetch max wait as kafkajs's; auto-commit on, its default). */
  bundledClient: { library: 'tidelog'; fetchMaxWaitMs: number; produceIntervalMs: number };
  bundledJoinRows: BundledJoinRow[];
}

export interface RebalanceBenchOptions {
  quick: boolean;
  /** Where the JSON goes (default <checkout>/bench/results/rebalance-latest.json); its directory is created. */
  outPath?: string;
  /** bin/tidelog.js of this checkout (default: found from this module). */
  brokerEntry?: string;
  /** Receives the Markdown table. */
  out?: (text: string) => void;
  /** Receives one line per step. */
  progress?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Entry point

export async function runRebalanceBench(options: RebalanceBenchOptions): Promise<RebalanceBenchReport> {
  const plan = options.quick ? QUICK_PLAN : FULL_PLAN;
  const root = packageRoot();
  const outPath = options.outPath ?? join(root, 'bench', 'results', 'rebalance-latest.json');
  const brokerEntry = options.brokerEntry ?? join(root, 'bin', 'tidelog.js');
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const startedMs = Date.now();
  const progressSink = options.progress ?? ((line: string) => void process.stderr.write(line + '\n'));
  const progress = (line: string): void => progressSink(`[bench ${((Date.now() - startedMs) / 1000).toFixed(1)}s] ${line}`);
  const deadlineMs = startedMs + MAX_RUN_MS;
  const kafkajs = loadKafkaJs('bench rebalance');
  await mkdir(dirname(outPath), { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-rebalance-'));
  const report: RebalanceBenchReport = {
    machine: { cpus: cpus().length, node: process.version, loadAverageAtStart: loadavg().map((load) => Number(load.toFixed(2))) },
    startedAt: new Date().toISOString(),
    plan,
    client: { library: 'kafkajs', version: kafkajs.version, fetchMaxWaitMs: FETCH_MAX_WAIT_MS },
    broker: { configs: BROKER_CONFIGS, warnLines: 0, errorLines: 0 },
    rows: [],
    bundledClient: { library: 'tidelog', fetchMaxWaitMs: FETCH_MAX_WAIT_MS, produceIntervalMs: PRODUCE_INTERVAL_MS },
    bundledJoinRows: [],
  };
  progress(`${plan.label} run in ${dir}, kafkajs ${kafkajs.version}`);
  try {
    const broker = await startBrokerChild(brokerEntry, join(dir, 'data'), { configs: BROKER_CONFIGS, progress });
    try {
      const context: Context = { kafkajs: kafkajs.module, broker, progress, deadlineMs, nextGroup: 0 };
      await createTopic(context);
      const initialRebalanceDelayMs = Number(BROKER_CONFIGS['group.initial.rebalance.delay.ms']);
      for (const timings of plan.timings) {
        const evicted: number[] = [];
        const resumed: number[] = [];
        const settled: number[] = [];
        for (let repetition = 0; repetition < plan.repetitions; repetition++) {
          const kill = await measureKill(context, timings);
          evicted.push(kill.evictedMs);
          resumed.push(kill.resumedMs);
          progress(`${describeTimings(timings)} kill #${repetition + 1}: evicted after ${kill.evictedMs} ms, resumed after ${kill.resumedMs} ms`);
        }
        for (let repetition = 0; repetition < plan.repetitions; repetition++) {
          const joined = await measureJoin(context, (groupId, name, changes) => new Member(context, groupId, name, timings, changes), timings);
          settled.push(joined.settledMs);
          progress(`${describeTimings(timings)} join #${repetition + 1}: settled after ${joined.settledMs} ms`);
        }
        report.rows.push(row('kill -> evicted', timings, initialRebalanceDelayMs, evicted));
        report.rows.push(row('kill -> resumed', timings, initialRebalanceDelayMs, resumed));
        report.rows.push(row('join -> settled', timings, initialRebalanceDelayMs, settled));
        const bundled = BUNDLED_PROTOCOLS.map(() => [] as BundledJoin[]);
        for (let repetition = 0; repetition < plan.repetitions; repetition++) {
          for (const [index, { protocol, assignors }] of BUNDLED_PROTOCOLS.entries()) {
            const joined = await measureBundledJoin(context, timings, assignors);
            bundled[index]!.push(joined);
            progress(
              `${describeTimings(timings)} tidelog ${protocol} join #${repetition + 1}: settled after ${joined.settledMs} ms in ${joined.generations} generation(s), ` +
                `longest gap ${joined.retainedGapMs} ms on the ${joined.retainedPartitions} partitions kept, ${joined.anyGapMs} ms on any`,
            );
          }
        }
        for (const [index, { protocol, assignors }] of BUNDLED_PROTOCOLS.entries()) report.bundledJoinRows.push(bundledRow(protocol, assignors, timings, initialRebalanceDelayMs, bundled[index]!));
      }
    } catch (error) {
      await broker.stop().catch((stopError: unknown) => progress(`stopping the broker after an error failed too: ${String(stopError)}`));
      throw error;
    }
    await broker.stop();
    report.broker.warnLines = broker.warnLines();
    report.broker.errorLines = broker.errorLines();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await writeFile(outPath, JSON.stringify(report, null, 2) + '\n');
  out(formatTable(report));
  progress(`done; JSON written to ${outPath}`);
  return report;
}

interface Context {
  kafkajs: typeof KafkaJs;
  broker: BrokerChild;
  progress: (line: string) => void;
  deadlineMs: number;
  nextGroup: number;
}

function describeTimings(timings: MemberTimings): string {
  return `session ${timings.sessionTimeoutMs} ms, rebalance ${timings.rebalanceTimeoutMs} ms, heartbeat ${timings.heartbeatIntervalMs} ms:`;
}

function summary(samplesMs: number[]): SampleSummary {
  return { samplesMs, medianMs: median(samplesMs), maxMs: Math.max(...samplesMs) };
}

function row(measurement: RebalanceMeasurement, timings: MemberTimings, initialRebalanceDelayMs: number, samplesMs: number[]): RebalanceRow {
  return { measurement, ...timings, initialRebalanceDelayMs, ...summary(samplesMs) };
}

function bundledRow(protocol: RebalanceProtocol, assignors: AssignorName[], timings: MemberTimings, initialRebalanceDelayMs: number, joins: readonly BundledJoin[]): BundledJoinRow {
  return {
    measurement: 'join -> settled',
    client: 'tidelog',
    protocol,
    assignors,
    existingMembers: EXISTING_MEMBERS,
    partitions: PARTITIONS,
    ...timings,
    initialRebalanceDelayMs,
    settled: summary(joins.map((joined) => joined.settledMs)),
    retainedPartitionGap: summary(joins.map((joined) => joined.retainedGapMs)),
    anyPartitionGap: summary(joins.map((joined) => joined.anyGapMs)),
    retainedPartitions: joins.map((joined) => joined.retainedPartitions),
    generations: joins.map((joined) => joined.generations),
  };
}

// ---------------------------------------------------------------------------------------------
// The two measurements

/** SIGKILL of a child-process member: until the broker evicts it, and until its partitions are consumed again. */
async function measureKill(context: Context, timings: MemberTimings): Promise<{ evictedMs: number; resumedMs: number }> {
  const groupId = `kill-${context.nextGroup++}`;
  const changes = new Changes();
  const survivors = [new Member(context, groupId, 'a', timings, changes), new Member(context, groupId, 'b', timings, changes)];
  const child = new ChildMember(context, groupId, timings, changes);
  const producer = await startProducer(context);
  try {
    await Promise.all(survivors.map((member) => member.start()));
    await child.start();
    const members: Ledger[] = [...survivors, child];
    const generation = await waitForSteady(changes, members, SETTLE_TIMEOUT_MS, context);
    const childPartitions = child.partitionsIn(generation);
    const expiryLine = `memberId=${JSON.stringify(child.memberId)}`;
    const lineIndex = context.broker.lineCount();

    const killAtMs = Date.now();
    await child.kill();
    const boundMs = timings.sessionTimeoutMs + timings.rebalanceTimeoutMs + MEASURE_SLACK_MS;
    // Resumed: a survivor consumed a record, in a generation after the child's, on each of its partitions.
    const resumedAt = (): number | null => {
      let latest = 0;
      for (const partition of childPartitions) {
        const first = Math.min(...survivors.map((member) => member.firstRecordAfter(generation, partition) ?? Infinity));
        if (!Number.isFinite(first)) return null;
        latest = Math.max(latest, first);
      }
      return latest;
    };
    await changes.until(() => resumedAt() !== null, boundMs, `the survivors of ${groupId} to consume partitions ${childPartitions.join(',')}`, context);
    const expiry = await context.broker.waitForLine((line) => line.includes(' member expired ') && line.includes(expiryLine), 1_000, lineIndex);
    if (!expiry.includes('reason="session-timeout"')) throw new Error(`${groupId}: the killed member left for another reason: ${expiry}`);
    return { evictedMs: lineTimeMs(expiry) - killAtMs, resumedMs: resumedAt()! - killAtMs };
  } finally {
    await child.kill();
    await Promise.all(survivors.map((member) => member.stop()));
    await producer.stop();
  }
}

interface JoinResult {
  settledMs: number;
  /** The generation before the join and the settled one. */
  before: number;
  settled: number;
  existing: readonly Ledger[];
}

/**
 * A third member starts while two consume: until all three consume in one new generation. With a
 * FlowWatch, its gaps count from the join, and it is frozen once every partition was consumed in
 * the settled generation (so no partition's gap is still open).
 */
async function measureJoin(context: Context, newMember: MemberFactory, timings: MemberTimings, flow?: FlowWatch): Promise<JoinResult> {
  const groupId = `join-${context.nextGroup++}`;
  const changes = new Changes();
  const first = Array.from({ length: EXISTING_MEMBERS }, (_, index) => newMember(groupId, String.fromCharCode(0x61 + index), changes));
  const joiner = newMember(groupId, 'joiner', changes);
  const all = [...first, joiner];
  const producer = await startProducer(context);
  try {
    await Promise.all(first.map((member) => member.start()));
    const before = await waitForSteady(changes, first, SETTLE_TIMEOUT_MS, context);
    const joinAtMs = Date.now();
    flow?.arm(joinAtMs);
    await joiner.start();
    const boundMs = timings.rebalanceTimeoutMs + MEASURE_SLACK_MS;
    let settled = 0;
    let settledAtMs = 0;
    await changes.until(
      () => {
        const generation = steadyGeneration(all);
        if (generation === null || generation <= before) return false;
        settled = generation;
        settledAtMs = Math.max(...all.map((member) => firstRecordIn(member, generation)!));
        return true;
      },
      boundMs,
      `${groupId} to settle with the new member`,
      context,
    );
    if (flow !== undefined) {
      const allConsumed = (): boolean => Array.from({ length: PARTITIONS }, (_, partition) => partition).every((partition) => all.some((member) => member.firstRecords.has(`${settled}/${partition}`)));
      await changes.until(allConsumed, MEASURE_SLACK_MS, `${groupId} to consume every partition in generation ${settled}`, context);
      flow.freeze();
    }
    return { settledMs: settledAtMs - joinAtMs, before, settled, existing: first };
  } finally {
    await Promise.all(all.map((member) => member.stop()));
    await producer.stop();
  }
}

interface BundledJoin {
  settledMs: number;
  generations: number;
  retainedPartitions: number;
  retainedGapMs: number;
  anyGapMs: number;
}

/** measureJoin with members of the bundled consumer, and the longest gaps in consumption. */
async function measureBundledJoin(context: Context, timings: MemberTimings, assignors: AssignorName[]): Promise<BundledJoin> {
  const flow = new FlowWatch();
  const joined = await measureJoin(context, (groupId, name, changes) => new BundledMember(context, groupId, name, timings, assignors, changes, flow), timings, flow);
  const retained: number[] = [];
  for (const member of joined.existing) {
    const kept = new Set(member.joins.get(joined.settled) ?? []);
    retained.push(...(member.joins.get(joined.before) ?? []).filter((partition) => kept.has(partition)));
  }
  const all = Array.from({ length: PARTITIONS }, (_, partition) => partition);
  // Range keeps some partitions with their owner whatever the member ids; cooperative-sticky keeps most.
  if (retained.length === 0) throw new Error(`${assignors.join(',')}: no existing member kept a partition (generations ${joined.before} -> ${joined.settled})`);
  return {
    settledMs: joined.settledMs,
    generations: joined.settled - joined.before,
    retainedPartitions: retained.length,
    retainedGapMs: flow.longestGapMs(retained),
    anyGapMs: flow.longestGapMs(all),
  };
}

/**
 * Per partition, the longest time between two records consumed of it (by any member of the
 * group), between arm() and freeze(); the first gap runs from the last record before arm() (or
 * from arm(), for a partition not consumed yet).
 */
class FlowWatch {
  private readonly lastAtMs = new Float64Array(PARTITIONS).fill(-1);
  private readonly longestMs = new Float64Array(PARTITIONS);
  private state: 'idle' | 'armed' | 'frozen' = 'idle';

  arm(atMs: number): void {
    if (this.state !== 'idle') throw new Error(`FlowWatch armed when ${this.state}`);
    this.state = 'armed';
    for (let partition = 0; partition < PARTITIONS; partition++) if (this.lastAtMs[partition]! < 0) this.lastAtMs[partition] = atMs;
  }

  consumed(partition: number, atMs: number): void {
    if (this.state === 'frozen' || partition < 0 || partition >= PARTITIONS) return;
    if (this.state === 'armed') this.longestMs[partition] = Math.max(this.longestMs[partition]!, atMs - this.lastAtMs[partition]!);
    this.lastAtMs[partition] = atMs;
  }

  freeze(): void {
    if (this.state !== 'armed') throw new Error(`FlowWatch frozen when ${this.state}`);
    this.state = 'frozen';
  }

  longestGapMs(partitions: readonly number[]): number {
    if (this.state !== 'frozen') throw new Error('FlowWatch read before freeze()');
    return Math.max(...partitions.map((partition) => this.longestMs[partition]!));
  }
}

// ---------------------------------------------------------------------------------------------
// Members and their ledgers

/** What the measurements read from a member: its joins, and when it first consumed in a generation. */
interface Ledger {
  readonly name: string;
  /** generation -> partitions received, in join order. */
  readonly joins: Map<number, number[]>;
  /** `${generation}/${partition}` -> when the member first consumed a record of it in that generation. */
  readonly firstRecords: Map<string, number>;
}

function lastGeneration(member: Ledger): number | null {
  let last: number | null = null;
  for (const generation of member.joins.keys()) last = generation;
  return last;
}

/**
 * The generation every member last joined, if they agree, own every partition once between them,
 * and each has consumed a record in it; else null.
 */
function steadyGeneration(members: readonly Ledger[]): number | null {
  const generations = new Set(members.map(lastGeneration));
  if (generations.size !== 1) return null;
  const generation = [...generations][0];
  if (generation === null || generation === undefined) return null;
  const owned = members.flatMap((member) => member.joins.get(generation) ?? []);
  if (owned.length !== PARTITIONS || new Set(owned).size !== PARTITIONS) return null;
  const consuming = members.every((member) => [...member.firstRecords.keys()].some((key) => key.startsWith(`${generation}/`)));
  return consuming ? generation : null;
}

async function waitForSteady(changes: Changes, members: readonly Ledger[], timeoutMs: number, context: Context): Promise<number> {
  let generation: number | null = null;
  await changes.until(
    () => {
      generation = steadyGeneration(members);
      return generation !== null;
    },
    timeoutMs,
    `members ${members.map((member) => member.name).join(', ')} to consume in one generation`,
    context,
  );
  return generation!;
}

/** When `ledger`'s member first consumed a record, of any partition, in `generation`. */
function firstRecordIn(ledger: Ledger, generation: number): number | undefined {
  let first: number | undefined;
  for (const [key, atMs] of ledger.firstRecords) if (key.startsWith(`${generation}/`)) first = Math.min(first ?? Infinity, atMs);
  return first;
}

function recordFirst(ledger: Ledger, generation: number, partition: number): void {
  const key = `${generation}/${partition}`;
  if (!ledger.firstRecords.has(key)) ledger.firstRecords.set(key, Date.now());
}

/** A member the join measurement starts and stops. */
interface GroupMember extends Ledger {
  start(): Promise<void>;
  stop(): Promise<void>;
}

type MemberFactory = (groupId: string, name: string, changes: Changes) => GroupMember;

/** A kafkajs member in this process. Its generation comes from kafkajs's debug log "Received assignment" (GROUP_JOIN carries none). */
class Member implements GroupMember {
  readonly joins = new Map<number, number[]>();
  readonly firstRecords = new Map<string, number>();
  private readonly consumer: KafkaJs.Consumer;
  private receivedGenerationId = -1;
  private generationId = -1;
  private running = false;

  constructor(
    context: Context,
    groupId: string,
    readonly name: string,
    timings: MemberTimings,
    private readonly changes: Changes,
  ) {
    const kafka = new context.kafkajs.Kafka({
      clientId: `rebalance-bench-${name}`,
      brokers: [context.broker.address],
      connectionTimeout: 5_000,
      requestTimeout: 10_000,
      retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
      logLevel: context.kafkajs.logLevel.DEBUG,
      logCreator: () => (entry) => {
        if (entry.log.message === 'Received assignment' && typeof entry.log.generationId === 'number') this.receivedGenerationId = entry.log.generationId;
      },
    });
    this.consumer = kafka.consumer({
      groupId,
      sessionTimeout: timings.sessionTimeoutMs,
      rebalanceTimeout: timings.rebalanceTimeoutMs,
      heartbeatInterval: timings.heartbeatIntervalMs,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.generationId = this.receivedGenerationId;
      this.joins.set(this.generationId, [...(event.payload.memberAssignment[TOPIC] ?? [])].sort((a, b) => a - b));
      this.changes.notify();
    });
  }

  async start(): Promise<void> {
    this.running = true;
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: TOPIC, fromBeginning: false });
    await this.consumer.run({
      eachMessage: async ({ partition }) => {
        recordFirst(this, this.generationId, partition);
        this.changes.notify();
      },
    });
  }

  partitionsIn(generation: number): number[] {
    return this.joins.get(generation) ?? [];
  }

  /** When this member first consumed `partition` in a generation after `generation`. */
  firstRecordAfter(generation: number, partition: number): number | undefined {
    let first: number | undefined;
    for (const [key, atMs] of this.firstRecords) {
      const [g, p] = key.split('/').map(Number) as [number, number];
      if (g > generation && p === partition) first = Math.min(first ?? Infinity, atMs);
    }
    return first;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await withTimeout(this.consumer.disconnect(), MEMBER_STOP_TIMEOUT_MS, `member ${this.name} to disconnect`).catch(() => undefined);
  }
}

/**
 * A member of the bundled consumer in this process: subscribe() with the given assignors, records()
 * read as they come. Its generation and assignment are read from consumer.groupMembership, which
 * has no events: on each record and every GENERATION_POLL_MS.
 */
class BundledMember implements GroupMember {
  readonly joins = new Map<number, number[]>();
  readonly firstRecords = new Map<string, number>();
  private readonly consumer: Consumer;
  private loop: Promise<void> = Promise.resolve();
  private poll: NodeJS.Timeout | null = null;
  private assignmentsSeen = 0;
  private running = false;

  constructor(
    context: Context,
    private readonly groupId: string,
    readonly name: string,
    private readonly timings: MemberTimings,
    private readonly assignors: AssignorName[],
    private readonly changes: Changes,
    private readonly flow: FlowWatch,
  ) {
    this.consumer = createConsumer({ bootstrapServers: [context.broker.address], clientId: `rebalance-bench-tidelog-${name}`, maxWaitMs: FETCH_MAX_WAIT_MS, requestTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
  }

  async start(): Promise<void> {
    this.running = true;
    const { sessionTimeoutMs, rebalanceTimeoutMs, heartbeatIntervalMs } = this.timings;
    this.consumer.subscribe([TOPIC], { groupId: this.groupId, sessionTimeoutMs, rebalanceTimeoutMs, heartbeatIntervalMs, assignors: this.assignors });
    this.poll = setInterval(() => this.lookAtGeneration(), GENERATION_POLL_MS);
    this.loop = this.consume();
  }

  private lookAtGeneration(): void {
    const group = this.consumer.groupMembership;
    if (group === null || group.assignmentsReceived === this.assignmentsSeen) return;
    this.assignmentsSeen = group.assignmentsReceived;
    const partitions = group.assignment().filter((tp) => tp.topic === TOPIC).map((tp) => tp.partition);
    this.joins.set(group.generationId, partitions.sort((a, b) => a - b));
    this.changes.notify();
  }

  private async consume(): Promise<void> {
    try {
      for await (const record of this.consumer.records()) {
        const atMs = Date.now();
        this.flow.consumed(record.partition, atMs);
        this.lookAtGeneration();
        const key = `${this.consumer.groupMembership?.generationId ?? -1}/${record.partition}`;
        if (this.firstRecords.has(key)) continue;
        this.firstRecords.set(key, atMs);
        this.changes.notify();
      }
    } catch (error) {
      if (this.running) this.changes.fail(new Error(`member ${this.name} of ${this.groupId} failed: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.poll !== null) clearInterval(this.poll);
    // close() commits, leaves the group and ends the records() loop.
    await withTimeout(this.consumer.close(), MEMBER_STOP_TIMEOUT_MS, `member ${this.name} to close`).catch(() => undefined);
    await withTimeout(this.loop, MEMBER_STOP_TIMEOUT_MS, `member ${this.name}'s records() to end`).catch(() => undefined);
  }
}

interface ChildMemberArguments extends MemberTimings {
  brokers: string[];
  groupId: string;
  topic: string;
  clientId: string;
  fetchMaxWaitMs: number;
}

/** The same kafkajs member in a child process (runBenchMember), reporting through JSON lines. */
class ChildMember implements Ledger {
  readonly name = 'child';
  readonly joins = new Map<number, number[]>();
  readonly firstRecords = new Map<string, number>();
  memberId = '';
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private readonly stderrLines: string[] = [];

  constructor(
    private readonly context: Context,
    private readonly groupId: string,
    private readonly timings: MemberTimings,
    private readonly changes: Changes,
  ) {}

  async start(): Promise<void> {
    const args: ChildMemberArguments = {
      ...this.timings,
      brokers: [this.context.broker.address],
      groupId: this.groupId,
      topic: TOPIC,
      clientId: 'rebalance-bench-child',
      fetchMaxWaitMs: FETCH_MAX_WAIT_MS,
    };
    const source = `const bench = await import(${JSON.stringify(import.meta.url)}); await bench.runBenchMember(${JSON.stringify(JSON.stringify(args))});`;
    // stdin stays open and unused: the child exits when it closes (this process ended).
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      if (this.child === child) this.child = null;
      this.changes.notify();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderrLines.push(line);
      if (this.stderrLines.length > MEMBER_LOG_LINES_KEPT) this.stderrLines.shift();
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  }

  partitionsIn(generation: number): number[] {
    return this.joins.get(generation) ?? [];
  }

  private onLine(line: string): void {
    let event: { type?: string; generationId?: number; memberId?: string; partitions?: number[]; partition?: number };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return; // cut short by the kill
    }
    if (event.type === 'join' && event.generationId !== undefined) {
      this.memberId = event.memberId ?? '';
      this.joins.set(event.generationId, event.partitions ?? []);
    } else if (event.type === 'first' && event.generationId !== undefined && event.partition !== undefined) {
      recordFirst(this, event.generationId, event.partition);
    }
    this.changes.notify();
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill('SIGKILL');
    await withTimeout(this.exited, CHILD_EXIT_TIMEOUT_MS, `the child member (pid ${child.pid}) to die`);
  }
}

/**
 * The child-process member: a kafkajs consumer that prints `{"type":"join",...}` for each join and
 * `{"type":"first",...}` for the first record of each partition in each generation. Runs until
 * killed, or until its stdin closes (the parent is gone).
 */
export async function runBenchMember(argumentsJson: string): Promise<void> {
  const args = JSON.parse(argumentsJson) as ChildMemberArguments;
  const { module: kafkajs } = loadKafkaJs('bench rebalance');
  const emit = (event: object): void => void process.stdout.write(JSON.stringify(event) + '\n');
  let receivedGenerationId = -1;
  let generationId = -1;
  const seen = new Set<string>();
  const kafka = new kafkajs.Kafka({
    clientId: args.clientId,
    brokers: args.brokers,
    connectionTimeout: 5_000,
    requestTimeout: 10_000,
    retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
    logLevel: kafkajs.logLevel.DEBUG,
    logCreator: () => (entry) => {
      if (entry.log.message === 'Received assignment' && typeof entry.log.generationId === 'number') receivedGenerationId = entry.log.generationId;
    },
  });
  const consumer = kafka.consumer({
    groupId: args.groupId,
    sessionTimeout: args.sessionTimeoutMs,
    rebalanceTimeout: args.rebalanceTimeoutMs,
    heartbeatInterval: args.heartbeatIntervalMs,
    maxWaitTimeInMs: args.fetchMaxWaitMs,
    retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
  });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    generationId = receivedGenerationId;
    emit({ type: 'join', generationId, memberId: event.payload.memberId, partitions: [...(event.payload.memberAssignment[args.topic] ?? [])].sort((a, b) => a - b) });
  });
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0));
  await consumer.connect();
  await consumer.subscribe({ topic: args.topic, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ partition }) => {
      const key = `${generationId}/${partition}`;
      if (seen.has(key)) return;
      seen.add(key);
      emit({ type: 'first', generationId, partition });
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Waiting on changes, bounded

class Changes {
  private readonly checks = new Set<() => void>();
  private failure: Error | null = null;

  notify(): void {
    for (const check of [...this.checks]) check();
  }

  /** A member failed: every wait, now and later, rejects with `error`. */
  fail(error: Error): void {
    this.failure ??= error;
    this.notify();
  }

  async until(condition: () => boolean, timeoutMs: number, what: string, context: Context): Promise<void> {
    if (Date.now() + timeoutMs > context.deadlineMs) timeoutMs = Math.max(0, context.deadlineMs - Date.now());
    if (this.failure !== null) throw this.failure;
    if (condition()) return;
    let check: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        check = () => {
          if (this.failure !== null) reject(this.failure);
          else if (condition()) resolve();
        };
        this.checks.add(check);
        timer = setTimeout(() => reject(new Error(`rebalance bench: timed out after ${timeoutMs} ms waiting for ${what}\n${context.broker.tail(20)}`)), timeoutMs);
      });
    } finally {
      if (check !== undefined) this.checks.delete(check);
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Topic and producer

async function createTopic(context: Context): Promise<void> {
  const admin = adminClient(context).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

function adminClient(context: Context): KafkaJs.Kafka {
  return new context.kafkajs.Kafka({
    clientId: 'rebalance-bench',
    brokers: [context.broker.address],
    logLevel: context.kafkajs.logLevel.NOTHING,
    connectionTimeout: 5_000,
    requestTimeout: 10_000,
    retry: { retries: 3, initialRetryTime: 50, maxRetryTime: 1_000 },
  });
}

/** Sends one record to every partition every PRODUCE_INTERVAL_MS until stopped (or the run's deadline). */
async function startProducer(context: Context): Promise<{ stop(): Promise<void> }> {
  const producer = adminClient(context).producer();
  await producer.connect();
  let sequence = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  let failure: unknown = null;
  const timer = setInterval(() => {
    if (Date.now() > context.deadlineMs) return clearInterval(timer);
    // One send at a time: a slow acknowledgement skips ticks instead of queueing sends.
    inFlight = inFlight.then(() =>
      producer
        .send({ topic: TOPIC, acks: 1, messages: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, value: String(sequence++) })) })
        .catch((error: unknown) => void (failure ??= error)),
    );
  }, PRODUCE_INTERVAL_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await inFlight;
      await producer.disconnect();
      if (failure !== null) context.progress(`a produce failed during the repetition: ${String(failure)}`);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The broker child process

/** The broker's log time of a line (its first field, an ISO timestamp). */
function lineTimeMs(line: string): number {
  const time = Date.parse(line.slice(0, line.indexOf(' ')));
  if (Number.isNaN(time)) throw new Error(`no timestamp at the start of ${JSON.stringify(line)}`);
  return time;
}

// ---------------------------------------------------------------------------------------------
// Helpers and the table

/** The checkout root (where package.json is), whether this runs from bench/ or dist/bench/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth <= 4; depth++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export function formatTable(report: RebalanceBenchReport): string {
  const header = '| measurement | session timeout ms | rebalance timeout ms | heartbeat ms | group.initial.rebalance.delay.ms | runs | median ms | max ms | samples ms |';
  const rule = '|---|---:|---:|---:|---:|---:|---:|---:|---|';
  const rows = report.rows.map(
    (row) =>
      `| ${row.measurement} | ${row.sessionTimeoutMs} | ${row.rebalanceTimeoutMs} | ${row.heartbeatIntervalMs} | ${row.initialRebalanceDelayMs} | ${row.samplesMs.length} | ${Math.round(row.medianMs)} | ${Math.round(row.maxMs)} | ${row.samplesMs.join(', ')} |`,
  );
  const bundledHeader =
    '| bundled consumer join | assignors | session timeout ms | rebalance timeout ms | heartbeat ms | runs | settled median ms | settled max ms | generations | partitions kept | longest gap on kept partitions, median / max ms | longest gap on any partition, median / max ms |';
  const bundledRule = '|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|';
  const bundledRows = report.bundledJoinRows.map(
    (row) =>
      `| ${row.protocol} | ${row.assignors.join(', ')} | ${row.sessionTimeoutMs} | ${row.rebalanceTimeoutMs} | ${row.heartbeatIntervalMs} | ${row.settled.samplesMs.length} | ${Math.round(row.settled.medianMs)} | ${Math.round(row.settled.maxMs)} | ` +
      `${row.generations.join(', ')} | ${row.retainedPartitions.join(', ')} | ${Math.round(row.retainedPartitionGap.medianMs)} / ${Math.round(row.retainedPartitionGap.maxMs)} | ${Math.round(row.anyPartitionGap.medianMs)} / ${Math.round(row.anyPartitionGap.maxMs)} |`,
  );
  return [
    `Rebalance bench (${report.plan.label}), kafkajs ${report.client.version}, ${PARTITIONS} partitions, 3 members (one SIGKILLed / one joining), fetch max wait ${report.client.fetchMaxWaitMs} ms, ${report.machine.cpus} CPUs (load average ${report.machine.loadAverageAtStart.join(', ')} at the start), node ${report.machine.node}`,
    '',
    header,
    rule,
    ...rows,
    '',
    `The bundled consumer: a member joins ${EXISTING_MEMBERS} others (group.initial.rebalance.delay.ms ${BROKER_CONFIGS['group.initial.rebalance.delay.ms']}, a record per partition every ${report.bundledClient.produceIntervalMs} ms, fetch max wait ${report.bundledClient.fetchMaxWaitMs} ms); ` +
      'a gap is the longest time between two records consumed of one partition, from the last one before the join until every partition was consumed in the settled generation.',
    '',
    bundledHeader,
    bundledRule,
    ...bundledRows,
    '',
  ].join('\n');
}
