// Kafka's "cooperative-sticky" assignor, for incremental cooperative rebalancing (KIP-429).
//
// With the cooperative protocol a member keeps its partitions while the group rebalances and
// says which it owns in its subscription (ConsumerProtocolSubscription v1+ ownedPartitions, with
// v2+ generationId). The leader then:
//   1. Takes the claims: a member keeps a partition by claim only if it is of the highest
//      generation seen (a member without a generation counts as -1, so its claims count only
//      while nobody has a newer one: the owned partitions of an older generation were handed out
//      since). A partition claimed by two such members is taken from both (neither keeps it in
//      this generation).
//   2. Balances and sticks: every member keeps what it owns as far as balance allows.
//      - Identical subscriptions: partition counts differ by at most one; the members owning the
//        most keep the larger shares; the rest is dealt to the members with the fewest.
//      - Differing subscriptions: owned partitions are kept, the rest is dealt most constrained
//        partition first to the eligible member with the fewest, then partitions move from a
//        member to an eligible one with at least two fewer until none can.
//   3. Withholds moves: a partition given to a member that does not keep it by claim, while
//      another member claims it (of any generation: it may still be fetching it), is not given in
//      this generation; it is only taken from its owner, which rejoins at once after giving it
//      up, and the follow-up rebalance hands it out (two members never fetch it at once). So the
//      assignment passes the Java leader's check: no partition is both added to one member and
//      revoked from another.
//
// The result is the same for the same input (sorted by member id, topic and partition), so any
// of our members that leads computes the same assignment. The rules are Kafka's, the choices
// (which partitions stay, ties) are ours: a Java leader may pick other, equally valid, ones.
import type { Assignor, GroupAssignment, MemberSubscription } from './types.js';

/** Generation of a subscription without one (ConsumerProtocolSubscription v0 and v1). */
const NO_GENERATION = -1;
/** The Java client's cooperative-sticky user data before subscription v2: one int32, the generation. */
const GENERATION_USER_DATA_BYTES = 4;

interface MemberState {
  readonly memberId: string;
  readonly topics: ReadonlySet<string>;
  /** Partition ids it owns and keeps if balance allows (valid claims on its subscribed topics). */
  owned: number[];
  readonly assigned: Set<number>;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`cooperative-sticky assignor bug: ${message}`);
}

/**
 * The generation a member's owned partitions belong to: subscription v2+ says it; before v2,
 * clients put it in the user data, the Java client as one int32, librdkafka (2.0) in the sticky
 * assignor's layout ([topic string, [partition int32]] previous assignment, then int32).
 */
export function subscriptionGeneration(member: MemberSubscription): number {
  if (member.generationId !== undefined) return member.generationId;
  const userData = member.userData;
  if (userData === undefined || userData === null) return NO_GENERATION;
  if (userData.length === GENERATION_USER_DATA_BYTES) return userData.readInt32BE(0);
  return stickyUserDataGeneration(userData) ?? NO_GENERATION;
}

/** The trailing generation of sticky-assignor user data; null unless the bytes are exactly that layout. */
function stickyUserDataGeneration(userData: Buffer): number | null {
  let offset = 0;
  const fits = (bytes: number): boolean => bytes >= 0 && offset + bytes <= userData.length;
  if (!fits(4)) return null;
  const topics = userData.readInt32BE(offset);
  offset += 4;
  for (let i = 0; i < topics; i++) {
    if (!fits(2)) return null;
    const nameBytes = userData.readInt16BE(offset);
    offset += 2;
    if (!fits(nameBytes + 4)) return null;
    offset += nameBytes;
    const partitions = userData.readInt32BE(offset);
    offset += 4;
    if (!fits(partitions * 4)) return null;
    offset += partitions * 4;
  }
  return offset + 4 === userData.length ? userData.readInt32BE(offset) : null;
}

/**
 * Assigns as the cooperative-sticky assignor does (steps 1-3 above). `cooperative: false` skips
 * step 3 (every member gave up its partitions before rejoining).
 */
export function stickyAssign(members: readonly MemberSubscription[], partitionCounts: ReadonlyMap<string, number>, cooperative: boolean): GroupAssignment {
  const sortedMembers = [...members].sort((a, b) => compareStrings(a.memberId, b.memberId));
  check(new Set(sortedMembers.map((m) => m.memberId)).size === sortedMembers.length, 'a member id appears twice');

  // Every partition of every subscribed, existing topic gets an id, in (topic, partition) order.
  const topics = [...new Set(sortedMembers.flatMap((m) => m.topics))].filter((t) => (partitionCounts.get(t) ?? 0) > 0).sort(compareStrings);
  const firstIdOfTopic = new Map<string, number>();
  const topicOfId: string[] = [];
  const partitionOfId: number[] = [];
  for (const topic of topics) {
    firstIdOfTopic.set(topic, topicOfId.length);
    const count = partitionCounts.get(topic)!;
    for (let partition = 0; partition < count; partition++) {
      topicOfId.push(topic);
      partitionOfId.push(partition);
    }
  }
  const idOf = (topic: string, partition: number): number | undefined => {
    const first = firstIdOfTopic.get(topic);
    return first === undefined || !Number.isInteger(partition) || partition < 0 || partition >= partitionCounts.get(topic)! ? undefined : first + partition;
  };

  // 1. Claims. holders: who may be fetching a partition now; currentClaims: how many members of
  // the highest generation claim it.
  const maxGeneration = sortedMembers.reduce((max, m) => Math.max(max, subscriptionGeneration(m)), NO_GENERATION);
  const holders = new Map<number, string[]>();
  const currentClaims = new Map<number, number>();
  const states: MemberState[] = sortedMembers.map((m) => {
    const state: MemberState = { memberId: m.memberId, topics: new Set(m.topics.filter((t) => firstIdOfTopic.has(t))), owned: [], assigned: new Set() };
    const current = subscriptionGeneration(m) === maxGeneration;
    const claimed = new Set<number>();
    for (const tp of m.ownedPartitions ?? []) {
      const id = idOf(tp.topic, tp.partition);
      if (id === undefined || claimed.has(id)) continue;
      claimed.add(id);
      let list = holders.get(id);
      if (list === undefined) holders.set(id, (list = []));
      list.push(m.memberId);
      if (!current) continue;
      currentClaims.set(id, (currentClaims.get(id) ?? 0) + 1);
      if (state.topics.has(tp.topic)) state.owned.push(id);
    }
    return state;
  });
  for (const state of states) {
    state.owned = state.owned.filter((id) => currentClaims.get(id) === 1).sort((a, b) => a - b);
  }

  // 2. Balanced and sticky.
  const identical = states.every((s) => s.topics.size === states[0]!.topics.size && [...s.topics].every((t) => states[0]!.topics.has(t)));
  if (states.length > 0 && topicOfId.length > 0) {
    if (identical) assignIdentical(states, topicOfId.length);
    else assignGeneral(states, topicOfId);
  }

  // 3. A partition moving while another member may still fetch it is withheld until that member gave it up.
  if (cooperative) {
    for (const state of states) {
      const kept = new Set(state.owned);
      for (const id of state.assigned) {
        if (!kept.has(id) && (holders.get(id) ?? []).some((holder) => holder !== state.memberId)) state.assigned.delete(id);
      }
    }
  }

  const out: GroupAssignment = new Map();
  const given = new Set<number>();
  for (const state of states) {
    const byTopic = new Map<string, number[]>();
    for (const id of [...state.assigned].sort((a, b) => a - b)) {
      check(!given.has(id), `${topicOfId[id]}-${partitionOfId[id]} assigned twice`);
      given.add(id);
      const topic = topicOfId[id]!;
      let list = byTopic.get(topic);
      if (list === undefined) byTopic.set(topic, (list = []));
      list.push(partitionOfId[id]!);
    }
    out.set(state.memberId, byTopic);
  }
  if (!cooperative) check(states.length === 0 || given.size === topicOfId.length, 'a partition was left out');
  return out;
}

/**
 * Same topics for all: with P partitions over N members, P % N members get floor(P/N) + 1 and
 * the others floor(P/N). The members owning the most keep the larger shares.
 */
function assignIdentical(states: MemberState[], partitionCount: number): void {
  const minQuota = Math.floor(partitionCount / states.length);
  let largerSharesLeft = partitionCount % states.length;
  const byOwned = [...states].sort((a, b) => b.owned.length - a.owned.length || compareStrings(a.memberId, b.memberId));
  for (const state of byOwned) {
    const limit = largerSharesLeft > 0 ? minQuota + 1 : minQuota;
    for (const id of state.owned.slice(0, limit)) state.assigned.add(id);
    if (state.assigned.size === minQuota + 1) largerSharesLeft--;
  }
  // Dealing each remaining partition to the member with the fewest fills every member to
  // minQuota before any gets one more, and no member holds more than minQuota + 1.
  const taken = new Set(states.flatMap((s) => [...s.assigned]));
  for (let id = 0; id < partitionCount; id++) {
    if (!taken.has(id)) fewest(states).assigned.add(id);
  }
  for (const state of states) check(state.assigned.size === minQuota || state.assigned.size === minQuota + 1, `${state.memberId} holds ${state.assigned.size} of ${partitionCount}`);
}

/** Differing subscriptions: keep owned, deal the rest, then move partitions while it evens counts out. */
function assignGeneral(states: MemberState[], topicOfId: readonly string[]): void {
  const subscribers = new Map<string, MemberState[]>();
  for (const state of states) {
    for (const topic of state.topics) {
      let list = subscribers.get(topic);
      if (list === undefined) subscribers.set(topic, (list = []));
      list.push(state);
    }
  }
  for (const state of states) for (const id of state.owned) state.assigned.add(id);
  const taken = new Set(states.flatMap((s) => [...s.assigned]));
  const unassigned = topicOfId.map((_, id) => id).filter((id) => !taken.has(id));
  // Most constrained first: a partition few members can take goes before one anybody can.
  unassigned.sort((a, b) => subscribers.get(topicOfId[a]!)!.length - subscribers.get(topicOfId[b]!)!.length || a - b);
  for (const id of unassigned) fewest(subscribers.get(topicOfId[id]!)!).assigned.add(id);

  // Each move lowers the sum of squared counts by at least 2, which starts at most P², so the
  // loop ends; the limit only guards against a bug.
  const moveLimit = topicOfId.length * topicOfId.length;
  for (let moves = 0; ; moves++) {
    check(moves <= moveLimit, 'balancing does not end');
    if (!moveOne(states, subscribers, topicOfId)) break;
  }
}

/** Moves one partition from a member to an eligible member with at least two fewer; false if none can. */
function moveOne(states: readonly MemberState[], subscribers: ReadonlyMap<string, MemberState[]>, topicOfId: readonly string[]): boolean {
  const byCount = [...states].sort((a, b) => b.assigned.size - a.assigned.size || compareStrings(a.memberId, b.memberId));
  for (const from of byCount) {
    const targets = new Map<string, MemberState | null>(); // per topic: where one of its partitions may go
    let best: { id: number; to: MemberState } | null = null;
    const owned = new Set(from.owned);
    for (const id of from.assigned) {
      const topic = topicOfId[id]!;
      let to = targets.get(topic);
      if (to === undefined) {
        const candidate = fewest(subscribers.get(topic)!);
        to = from.assigned.size - candidate.assigned.size >= 2 ? candidate : null;
        targets.set(topic, to);
      }
      if (to === null) continue;
      // Prefer a partition it did not own (that one moves for free), then the lowest.
      if (best === null || Number(owned.has(id)) - Number(owned.has(best.id)) < 0 || (owned.has(id) === owned.has(best.id) && id < best.id)) best = { id, to };
    }
    if (best !== null) {
      from.assigned.delete(best.id);
      best.to.assigned.add(best.id);
      return true;
    }
  }
  return false;
}

/** The member with the fewest partitions (ties: the first, i.e. the lowest member id). */
function fewest(candidates: readonly MemberState[]): MemberState {
  let best = candidates[0]!;
  for (const state of candidates) if (state.assigned.size < best.assigned.size) best = state;
  return best;
}

/**
 * Kafka's CooperativeStickyAssignor under its protocol name. It supports both rebalance
 * protocols: under eager, members give everything up before rejoining and own nothing.
 */
export const cooperativeStickyAssignor: Assignor = {
  name: 'cooperative-sticky',
  supportedProtocols: ['cooperative', 'eager'],
  assign(members, partitionCounts) {
    return stickyAssign(members, partitionCounts, true);
  },
};
