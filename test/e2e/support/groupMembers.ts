// Consumer group members for the e2e group suites, each keeping a ledger of what it saw:
//   KafkajsMember  a kafkajs 2.2.4 consumer in this process
//   ChildMember    the same consumer in a child process (groupMemberChild.mjs), to SIGKILL
//   KcatMember     `kcat -G` (librdkafka), long-running, optionally a static member
// Every join is recorded with its generation and assignment, every record with the member and
// the generation it was consumed in. kafkajs's GROUP_JOIN payload carries no generation id: it is
// taken from kafkajs's own debug log "Received assignment", which the same join logs just before
// it emits GROUP_JOIN (one Kafka client per member, so the log belongs to that member). The leader
// also logs "Group assignment", the whole assignment it hands the coordinator, kept per generation.
//
// Waiting is event-driven: every ledger change calls Changes.notify(), and Changes.until()
// re-checks its condition then, with a bound; its timeout error describes the state at that moment.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { kafkajs, REPO_ROOT, withTimeout, WaitTimeoutError, type BrokerProcess } from '../../support/brokerProcess.js';

type KafkaJs = typeof import('kafkajs');
type Kafka = InstanceType<KafkaJs['Kafka']>;
type Consumer = ReturnType<Kafka['consumer']>;
type Producer = ReturnType<Kafka['producer']>;
type Admin = ReturnType<Kafka['admin']>;
type PartitionAssigner = import('kafkajs').PartitionAssigner;

const CHILD_SCRIPT = fileURLToPath(new URL('./groupMemberChild.mjs', import.meta.url));

/** Broker configs for group tests: no initial rebalance delay, short sessions allowed, few offsets partitions. */
export const GROUP_BROKER_CONFIGS: Readonly<Record<string, string>> = {
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '1000',
  'offsets.topic.num.partitions': '3',
};

/** How long a member may take to connect, or to disconnect (leave the group) before it is abandoned. */
export const MEMBER_CONNECT_TIMEOUT_MS = 15_000;
export const MEMBER_STOP_TIMEOUT_MS = 15_000;
/** How long a killed child may take to be reaped. */
const CHILD_KILL_TIMEOUT_MS = 10_000;
/** Lines of a child's stderr kept for error messages. */
const CHILD_STDERR_LINES_KEPT = 50;

// ---------------------------------------------------------------------------------------------
// Waiting on ledger changes

export class Changes {
  private readonly checks = new Set<() => void>();

  notify(): void {
    for (const check of [...this.checks]) check();
  }

  /** Resolves once `condition` holds (checked now and at every notify); rejects after timeoutMs with describe()'s text. */
  async until(condition: () => boolean, timeoutMs: number, what: string, describe: () => string = () => ''): Promise<void> {
    if (condition()) return;
    let check: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        check = () => {
          if (condition()) resolve();
        };
        this.checks.add(check);
        timer = setTimeout(() => reject(new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}\n${describe()}`)), timeoutMs);
      });
    } finally {
      if (check !== undefined) this.checks.delete(check);
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Ledgers

export interface ConsumedRecord {
  member: string;
  partition: number;
  offset: number;
  value: string;
  /** The member's generation when it consumed the record. */
  generationId: number;
  atMs: number;
}

export interface JoinRecord {
  member: string;
  memberId: string;
  generationId: number;
  /** Partitions of the test's topic, sorted. */
  partitions: number[];
  atMs: number;
}

/** What the leader handed the coordinator in one generation: member id -> partitions. */
export interface LeaderAssignment {
  member: string;
  generationId: number;
  byMemberId: Map<string, number[]>;
}

/** What every kind of member exposes to the checks below. */
export interface MemberLedger {
  readonly name: string;
  readonly records: readonly ConsumedRecord[];
  readonly joins: readonly JoinRecord[];
  readonly leaderAssignments: readonly LeaderAssignment[];
}

function sortedPartitions(assignment: Readonly<Record<string, readonly number[]>> | undefined, topic: string): number[] {
  return [...(assignment?.[topic] ?? [])].sort((a, b) => a - b);
}

/** The member's latest join, if any. */
export function lastJoin(member: MemberLedger): JoinRecord | undefined {
  return member.joins[member.joins.length - 1];
}

/**
 * The generation all `members` last joined, when they agree and their partitions are disjoint and
 * cover 0..partitionCount-1; else null.
 */
export function settledGeneration(members: readonly MemberLedger[], partitionCount: number): number | null {
  const latest = members.map(lastJoin);
  if (latest.some((join) => join === undefined)) return null;
  const generations = new Set(latest.map((join) => join!.generationId));
  if (generations.size !== 1) return null;
  const owned = latest.flatMap((join) => join!.partitions);
  if (owned.length !== partitionCount || new Set(owned).size !== partitionCount) return null;
  return [...generations][0]!;
}

/** Waits until `members` settle in one generation with every partition owned once; returns it. */
export async function waitForSettled(changes: Changes, members: readonly MemberLedger[], partitionCount: number, timeoutMs: number, minGeneration = 0): Promise<number> {
  let settled: number | null = null;
  await changes.until(
    () => {
      settled = settledGeneration(members, partitionCount);
      return settled !== null && settled >= minGeneration;
    },
    timeoutMs,
    `${members.length} members to settle on ${partitionCount} partitions (generation >= ${minGeneration})`,
    () => describeJoins(members),
  );
  return settled!;
}

export function describeJoins(members: readonly MemberLedger[]): string {
  return members
    .map((member) => `${member.name}: ${member.joins.map((join) => `g${join.generationId}[${join.partitions.join(',')}]`).join(' ') || 'no join'}, ${member.records.length} records`)
    .join('\n');
}

/**
 * Every generation any member joined, with who owned what: generation -> member name -> partitions.
 * A member that joined a generation twice (a retried join) counts with its last assignment.
 */
export function generations(members: readonly MemberLedger[]): Map<number, Map<string, number[]>> {
  const byGeneration = new Map<number, Map<string, number[]>>();
  for (const member of members) {
    for (const join of member.joins) {
      let owners = byGeneration.get(join.generationId);
      if (owners === undefined) byGeneration.set(join.generationId, (owners = new Map()));
      owners.set(member.name, join.partitions);
    }
  }
  return new Map([...byGeneration].sort((a, b) => a[0] - b[0]));
}

/**
 * Ownership problems across every generation: a partition two members were given in the same
 * generation; a leader assignment that gives a partition to no member or to two; a member whose
 * assignment differs from what the leader handed in for it. Empty when all is well.
 */
export function ownershipProblems(members: readonly MemberLedger[], partitionCount: number): string[] {
  const problems: string[] = [];
  for (const [generationId, owners] of generations(members)) {
    const ownerOf = new Map<number, string>();
    for (const [name, partitions] of owners) {
      for (const partition of partitions) {
        const other = ownerOf.get(partition);
        if (other !== undefined) problems.push(`generation ${generationId}: partition ${partition} owned by ${other} and ${name}`);
        ownerOf.set(partition, name);
      }
    }
  }
  const leaderByGeneration = new Map<number, LeaderAssignment>();
  for (const member of members) for (const assignment of member.leaderAssignments) leaderByGeneration.set(assignment.generationId, assignment);
  for (const [generationId, assignment] of leaderByGeneration) {
    const counts = new Array<number>(partitionCount).fill(0);
    for (const partitions of assignment.byMemberId.values()) for (const partition of partitions) counts[partition] = (counts[partition] ?? 0) + 1;
    counts.forEach((count, partition) => {
      if (count !== 1) problems.push(`generation ${generationId}: leader ${assignment.member} assigned partition ${partition} ${count} times`);
    });
    for (const member of members) {
      for (const join of member.joins.filter((entry) => entry.generationId === generationId)) {
        const handed = assignment.byMemberId.get(join.memberId) ?? [];
        if (handed.join(',') !== join.partitions.join(',')) problems.push(`generation ${generationId}: ${member.name} received [${join.partitions}] but the leader assigned it [${handed}]`);
      }
    }
  }
  return problems;
}

export function allRecords(members: readonly MemberLedger[]): ConsumedRecord[] {
  return members.flatMap((member) => member.records);
}

/** Values seen more than once across members, with how often. */
export function duplicates(records: readonly ConsumedRecord[]): Map<string, ConsumedRecord[]> {
  const byValue = new Map<string, ConsumedRecord[]>();
  for (const record of records) {
    const list = byValue.get(record.value) ?? [];
    list.push(record);
    byValue.set(record.value, list);
  }
  return new Map([...byValue].filter(([, list]) => list.length > 1));
}

export function distinctValues(records: readonly ConsumedRecord[]): Set<string> {
  return new Set(records.map((record) => record.value));
}

// ---------------------------------------------------------------------------------------------
// kafkajs members in this process

export interface KafkajsMemberOptions {
  broker: BrokerProcess;
  groupId: string;
  topic: string;
  /** Names the member in ledgers and in its client id. */
  name: string;
  changes: Changes;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Fetch long-poll: kafkajs heartbeats between fetches, so this bounds how late it notices a rebalance. */
  maxWaitTimeMs?: number;
  fromBeginning?: boolean;
  /**
   * 'auto': kafkajs commits after each batch. 'each-record': the member commits every record's
   * offset before it counts the record as consumed (a failed commit throws, kafkajs rejoins and the
   * record is redelivered), so its ledger holds exactly what it committed. 'none': never commits.
   */
  commit?: 'auto' | 'each-record' | 'none';
  partitionAssigners?: PartitionAssigner[];
}

export class KafkajsMember implements MemberLedger {
  readonly name: string;
  readonly records: ConsumedRecord[] = [];
  readonly joins: JoinRecord[] = [];
  readonly leaderAssignments: LeaderAssignment[] = [];
  /** Generation ids of successful heartbeats, in order. */
  readonly heartbeats: number[] = [];
  readonly crashes: string[] = [];
  readonly consumer: Consumer;
  private receivedGenerationId = -1;
  private running = false;

  constructor(private readonly options: KafkajsMemberOptions) {
    this.name = options.name;
    const kafka = new kafkajs.Kafka({
      clientId: `e2e-${options.name}`,
      brokers: [options.broker.address],
      connectionTimeout: 5_000,
      requestTimeout: 10_000,
      retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
      logLevel: kafkajs.logLevel.DEBUG,
      logCreator: () => (entry) => this.onLog(entry.log),
    });
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 6_000,
      rebalanceTimeout: options.rebalanceTimeoutMs ?? 10_000,
      heartbeatInterval: options.heartbeatIntervalMs ?? 200,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 100,
      retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
      ...(options.partitionAssigners === undefined ? {} : { partitionAssigners: options.partitionAssigners }),
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.joins.push({
        member: this.name,
        memberId: event.payload.memberId,
        generationId: this.receivedGenerationId,
        partitions: sortedPartitions(event.payload.memberAssignment, options.topic),
        atMs: Date.now(),
      });
      options.changes.notify();
    });
    this.consumer.on(this.consumer.events.HEARTBEAT, (event) => {
      this.heartbeats.push(event.payload.groupGenerationId);
      options.changes.notify();
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      this.crashes.push(String(event.payload.error));
      options.changes.notify();
    });
  }

  /** The generation of the member's latest join (-1 before it joined). */
  get generationId(): number {
    return lastJoin(this)?.generationId ?? -1;
  }

  get memberId(): string | null {
    return lastJoin(this)?.memberId ?? null;
  }

  private onLog(log: { message: string; [key: string]: unknown }): void {
    if (log.message === 'Received assignment' && typeof log.generationId === 'number') {
      this.receivedGenerationId = log.generationId;
    } else if (log.message === 'Group assignment' && typeof log.generationId === 'number' && Array.isArray(log.assignment)) {
      const byMemberId = new Map<string, number[]>();
      for (const entry of log.assignment as Array<{ memberId: string; memberAssignment: Buffer }>) {
        const decoded = kafkajs.AssignerProtocol.MemberAssignment.decode(entry.memberAssignment);
        byMemberId.set(entry.memberId, sortedPartitions(decoded?.assignment, this.options.topic));
      }
      this.leaderAssignments.push({ member: this.name, generationId: log.generationId, byMemberId });
    }
  }

  async start(): Promise<void> {
    const { consumer, options } = this;
    await withTimeout(consumer.connect(), MEMBER_CONNECT_TIMEOUT_MS, `${this.name} to connect`);
    await consumer.subscribe({ topic: options.topic, fromBeginning: options.fromBeginning ?? true });
    const commit = options.commit ?? 'auto';
    await consumer.run({
      autoCommit: commit === 'auto',
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        if (commit === 'each-record') await consumer.commitOffsets([{ topic: options.topic, partition, offset: String(offset + 1) }]);
        this.records.push({ member: this.name, partition, offset, value: message.value?.toString('utf8') ?? '', generationId: this.generationId, atMs: Date.now() });
        options.changes.notify();
      },
    });
    this.running = true;
  }

  /** Leaves the group and disconnects; bounded (a member whose broker is gone is abandoned). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await withTimeout(this.consumer.disconnect(), MEMBER_STOP_TIMEOUT_MS, `${this.name} to disconnect`).catch(() => undefined);
  }
}

export async function startAll(members: readonly KafkajsMember[]): Promise<void> {
  await Promise.all(members.map((member) => member.start()));
}

export async function stopAll(members: ReadonlyArray<{ stop(): Promise<unknown> }>): Promise<void> {
  await Promise.all(members.map((member) => member.stop()));
}

// ---------------------------------------------------------------------------------------------
// Child processes: the child-process kafkajs member and kcat -G

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const running of liveChildren) running.kill('SIGKILL');
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** A long-running child whose stdout is read line by line; owns the process until it is reaped. */
abstract class ChildLines {
  readonly stderrLines: string[] = [];
  protected child: ChildProcess | null = null;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;

  protected spawnChild(command: string, args: readonly string[]): void {
    if (this.child !== null) throw new Error(`${command} is already running`);
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    track(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = null;
        resolve({ code, signal });
      });
    });
    child.once('error', (error) => this.onStderrLine(`spawn error: ${error.message}`));
    // A SIGKILL may cut the last line short; readline hands it over at 'close' and parsers skip it.
    createInterface({ input: child.stdout! }).on('line', (line) => this.onStdoutLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => this.onStderrLine(line));
  }

  protected onStderrLine(line: string): void {
    this.stderrLines.push(line);
    if (this.stderrLines.length > CHILD_STDERR_LINES_KEPT) this.stderrLines.shift();
  }

  protected abstract onStdoutLine(line: string): void;

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error('the child is not running');
    return pid;
  }

  /** Sends `signal` and waits until the process is reaped. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === null || this.exited === null) return;
    child.kill(signal);
    await withTimeout(this.exited, CHILD_KILL_TIMEOUT_MS, `pid ${child.pid} to exit after ${signal}`);
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
  }
}

export interface ChildMemberOptions {
  broker: BrokerProcess;
  groupId: string;
  topic: string;
  name: string;
  changes: Changes;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs?: number;
  maxWaitTimeMs?: number;
  /** Records between the member's commits: the most it can have consumed but not committed. */
  commitEvery: number;
}

/** groupMemberChild.mjs: a kafkajs member in its own process, reporting through JSON lines. */
export class ChildMember extends ChildLines implements MemberLedger {
  readonly name: string;
  readonly records: ConsumedRecord[] = [];
  readonly joins: JoinRecord[] = [];
  readonly leaderAssignments: LeaderAssignment[] = [];
  /** Committed offsets as the child reported them: partition -> next offset. */
  readonly committed = new Map<number, number>();
  readonly problems: string[] = [];

  constructor(private readonly options: ChildMemberOptions) {
    super();
    this.name = options.name;
  }

  start(): void {
    const { options } = this;
    const args = {
      brokers: [options.broker.address],
      groupId: options.groupId,
      topic: options.topic,
      clientId: `e2e-${options.name}`,
      sessionTimeoutMs: options.sessionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      rebalanceTimeoutMs: options.rebalanceTimeoutMs ?? 10_000,
      maxWaitTimeMs: options.maxWaitTimeMs ?? 100,
      commitEvery: options.commitEvery,
    };
    this.spawnChild(process.execPath, [CHILD_SCRIPT, JSON.stringify(args)]);
  }

  get memberId(): string | null {
    return lastJoin(this)?.memberId ?? null;
  }

  protected onStdoutLine(line: string): void {
    let event: { type?: unknown; [key: string]: unknown };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return; // a line cut short by SIGKILL
    }
    const generationId = lastJoin(this)?.generationId ?? -1;
    switch (event.type) {
      case 'join':
        this.joins.push({
          member: this.name,
          memberId: String(event.memberId),
          generationId: Number(event.generationId),
          partitions: sortedPartitions(event.assignment as Record<string, number[]>, this.options.topic),
          atMs: Date.now(),
        });
        break;
      case 'record':
        this.records.push({ member: this.name, partition: Number(event.partition), offset: Number(event.offset), value: String(event.value), generationId, atMs: Date.now() });
        break;
      case 'commit':
        for (const entry of event.offsets as Array<{ partition: number; offset: number }>) this.committed.set(entry.partition, entry.offset);
        break;
      case 'commit-failed':
      case 'crash':
        this.problems.push(`${String(event.type)}: ${String(event.error)}`);
        break;
    }
    this.options.changes.notify();
  }
}

export interface KcatMemberOptions {
  broker: BrokerProcess;
  groupId: string;
  topic: string;
  name: string;
  changes: Changes;
  /** Extra librdkafka properties, each passed as -X key=value. */
  properties?: Readonly<Record<string, string>>;
}

/** kcat -G -u (unbuffered: a pipe would otherwise hold its lines): prints `partition|offset|value` per record; its rebalance messages go to stderr. */
export class KcatMember extends ChildLines implements MemberLedger {
  readonly name: string;
  readonly records: ConsumedRecord[] = [];
  readonly joins: JoinRecord[] = [];
  readonly leaderAssignments: LeaderAssignment[] = [];
  /** kcat's stderr lines that report an assignment ("% Group ... rebalanced ... assigned: ..."). */
  readonly assignedLines: string[] = [];

  constructor(private readonly options: KcatMemberOptions) {
    super();
    this.name = options.name;
  }

  start(): void {
    const { options } = this;
    const args = ['-b', options.broker.address, '-G', options.groupId, '-u', '-f', '%p|%o|%s\\n'];
    for (const [key, value] of Object.entries(options.properties ?? {})) args.push('-X', `${key}=${value}`);
    args.push(options.topic);
    this.spawnChild('kcat', args);
  }

  protected onStdoutLine(line: string): void {
    const [partition, offset, ...value] = line.split('|');
    if (partition === undefined || offset === undefined || value.length === 0) return;
    this.records.push({ member: this.name, partition: Number(partition), offset: Number(offset), value: value.join('|'), generationId: -1, atMs: Date.now() });
    this.options.changes.notify();
  }

  protected override onStderrLine(line: string): void {
    super.onStderrLine(line);
    if (/rebalanced .*assigned:/.test(line)) {
      this.assignedLines.push(line);
      this.options.changes.notify();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Producing, admin, the admin commit

/**
 * Waits for the broker to log that `groupId` became Empty (a rebalance that ended without
 * members), at or after line `fromLineIndex`. Members that leave make a group Empty at once;
 * members whose leave is lost are removed when their session expires.
 */
export async function waitForGroupEmpty(broker: BrokerProcess, groupId: string, fromLineIndex: number, timeoutMs: number): Promise<void> {
  await broker.waitForLine((line) => line.includes(' INFO group is empty ') && line.includes(`groupId=${JSON.stringify(groupId)}`), timeoutMs, fromLineIndex);
}


export function kafkaClient(broker: BrokerProcess, clientId = 'e2e-groups'): Kafka {
  return new kafkajs.Kafka({
    clientId,
    brokers: [broker.address],
    logLevel: kafkajs.logLevel.NOTHING,
    connectionTimeout: 5_000,
    requestTimeout: 10_000,
    retry: { retries: 3, initialRetryTime: 50, maxRetryTime: 1_000 },
  });
}

export async function withAdmin<T>(broker: BrokerProcess, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient(broker, 'e2e-groups-admin').admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(broker: BrokerProcess, topic: string, numPartitions: number): Promise<void> {
  await withAdmin(broker, async (admin) => {
    await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  });
}

/** A value that names where it was sent: `<label>-p<partition>-<index>`. */
export function recordValue(label: string, partition: number, index: number): string {
  return `${label}-p${partition}-${index}`;
}

/** Sends counts[p] records to each partition p (acks=-1), in one send; returns the values. */
export async function produce(producer: Producer, topic: string, label: string, counts: readonly number[]): Promise<string[]> {
  const messages = counts.flatMap((count, partition) => Array.from({ length: count }, (_, index) => ({ partition, value: recordValue(label, partition, index) })));
  if (messages.length > 0) await producer.send({ topic, acks: -1, messages });
  return messages.map((message) => message.value);
}

export async function withProducer<T>(broker: BrokerProcess, use: (producer: Producer) => Promise<T>): Promise<T> {
  const producer = kafkaClient(broker, 'e2e-groups-producer').producer();
  await producer.connect();
  try {
    return await use(producer);
  } finally {
    await producer.disconnect();
  }
}

/** Committed offsets of a group for one topic (kafkajs admin.fetchOffsets): partition -> offset (-1 = none). */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, number>> {
  const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map((fetched?.partitions ?? []).map((entry) => [entry.partition, Number(entry.offset)]));
}

/** Log end offsets of a topic (kafkajs admin.fetchTopicOffsets): partition -> high watermark. */
export async function logEndOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((entry) => [entry.partition, Number(entry.high)]));
}

interface KafkajsBroker {
  offsetCommit(request: { groupId: string; groupGenerationId: number; memberId: string; topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> }): Promise<unknown>;
}

interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(group: { groupId: string }): Promise<KafkajsBroker>;
}

/**
 * The commit an admin tool sends (Kafka's AdminClient.alterConsumerGroupOffsets, which
 * kafka-consumer-groups --reset-offsets uses): OffsetCommit with generation -1 and no member id,
 * sent through kafkajs's own coordinator connection so the error is the one kafkajs surfaces.
 * kafkajs has no public API for it; its cluster comes from the client's private factory.
 */
export async function adminCommit(broker: BrokerProcess, groupId: string, topic: string, offsets: ReadonlyMap<number, number>): Promise<void> {
  const kafka = kafkaClient(broker, 'e2e-groups-admin-commit');
  const factorySymbol = Object.getOwnPropertySymbols(kafka).find((symbol) => symbol.description === 'private:Kafka:createCluster');
  const factory = factorySymbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[factorySymbol];
  if (typeof factory !== 'function') throw new Error(`kafkajs: the client's private cluster factory was not found`);
  const cluster = (factory as (options: object) => KafkajsCluster).call(kafka, { metadataMaxAge: 300_000, allowAutoTopicCreation: false, maxInFlightRequests: null, instrumentationEmitter: null });
  await cluster.connect();
  try {
    const coordinator = await cluster.findGroupCoordinator({ groupId });
    await coordinator.offsetCommit({
      groupId,
      groupGenerationId: -1,
      memberId: '',
      topics: [{ topic, partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: String(offset) })) }],
    });
  } finally {
    await cluster.disconnect();
  }
}
