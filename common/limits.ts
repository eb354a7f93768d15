// Numeric limits that several layers share, each defined once and named for what it bounds. Two
// limits may be the same number with different meanings (a segment's byte size and an int32
// field): both are named, the narrower one defined from the other, so a reader sees why.
//
// This module imports nothing: protocol/ and segments/ import it too. How configs relate to these
// limits (segment.bytes must fit an index position, ...) is checked where configs are resolved:
// engine/log/logConfig.ts, engine/topicConfig.ts, engine/brokerConfig.ts.

// ---- integer widths -----------------------------------------------------------------------------

/** The largest int32 (Java's Integer.MAX_VALUE): Kafka's int32 wire fields and its `int` configs. */
export const INT32_MAX = 2 ** 31 - 1;
/** The smallest int32. */
export const INT32_MIN = -(2 ** 31);
/** The largest uint32 (unsigned varints, u32 fields). */
export const UINT32_MAX = 2 ** 32 - 1;

// ---- the on-disk formats (segments/) ------------------------------------------------------------

/**
 * The largest byte position inside a segment's .log file, and so its largest size: offset and
 * time index entries hold a position as an int32, as Kafka's do. segment.bytes may not exceed it.
 */
export const MAX_SEGMENT_BYTES = INT32_MAX;
/** The largest offset of a segment relative to its base: index entries hold it as an int32. */
export const MAX_RELATIVE_OFFSET = INT32_MAX;

// ---- time ---------------------------------------------------------------------------------------

/**
 * The longest delay setTimeout honours: Node stores it in an int32 and fires after 1 ms when given
 * more. Longer waits are taken in hops, or refused as options.
 */
export const MAX_TIMER_DELAY_MS = INT32_MAX;
/** The largest timeout a Kafka request carries (its timeout fields are int32 milliseconds). */
export const MAX_REQUEST_TIMEOUT_MS = INT32_MAX;

// ---- the wire protocol --------------------------------------------------------------------------

/** Kafka's longest topic name, in characters (topic names are ASCII). */
export const MAX_TOPIC_NAME_LENGTH = 249;
/** Room allowed for a Produce request's client id and transactional id together (the wire allows 32767 each; clients send tens). */
const PRODUCE_ID_ALLOWANCE_BYTES = 1024;
/**
 * A Produce request frame's bytes besides its one record batch: the v1 request header and the
 * body's fixed fields (36 bytes for Produce v3-8; the flexible versions are smaller), a topic name
 * of MAX_TOPIC_NAME_LENGTH, and PRODUCE_ID_ALLOWANCE_BYTES. socket.request.max.bytes must leave
 * this much beside max.message.bytes, or a batch a topic accepts could never arrive.
 */
export const PRODUCE_REQUEST_OVERHEAD_BYTES = 36 + MAX_TOPIC_NAME_LENGTH + PRODUCE_ID_ALLOWANCE_BYTES;
