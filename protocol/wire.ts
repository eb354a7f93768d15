// Kafka wire primitives: a bounds-checked reader and a reusable, growing writer.
//
// Encodings (all multi-byte integers big-endian):
//   int8/16/32/64, uint16, uint32   fixed width, two's complement; int64 is a bigint here
//   float64                         IEEE 754 double
//   bool                            1 byte, 0 = false, anything else = true (Kafka reads != 0)
//   uuid                            16 raw bytes; here a lowercase 8-4-4-4-12 hex string
//   string / nullable string        int16 length N (-1 = null), then N UTF-8 bytes (N <= 32767)
//   bytes / nullable bytes          int32 length N (-1 = null), then N bytes
//   array / nullable array          int32 count N (-1 = null), then N elements
//   unsigned varint                 LEB128, 7 bits per byte, low group first, at most 5 bytes (uint32)
//   varint / varlong                zigzag, then LEB128; at most 5 / 10 bytes
//   compact string/bytes/array      unsigned varint N + 1 (0 = null), then the data
//   tagged-field section            uvarint count, then per field: uvarint tag, uvarint size, size bytes
//
// Reading never trusts a length: every read checks the bytes left first and throws a
// ProtocolDecodeError naming the offset. An array count is checked against the smallest size an
// element can have, so a frame claiming 2^31 elements fails before anything is allocated.
//
// Bytes returned by the reader: `readBytes*` copy (the result may outlive the frame), while
// `readBytesView*` and `readRecords*` return views into the frame buffer (zero-copy; the caller
// must not keep them past the frame's life if the frame buffer is reused).
//
// The writer keeps one buffer across messages (`reset()` rewinds it), grows it by doubling, and
// hands large raw byte fields (record batches) through as separate chunks instead of copying them.

import { INT32_MAX, INT32_MIN, UINT32_MAX } from '../common/limits.js';

export class ProtocolDecodeError extends Error {
  override readonly name = 'ProtocolDecodeError';

  constructor(
    message: string,
    /** Byte offset in the frame buffer where decoding failed. */
    readonly offset: number,
  ) {
    super(message);
  }
}

export class ProtocolEncodeError extends Error {
  override readonly name = 'ProtocolEncodeError';
}

/** Longest string Kafka accepts, compact or not (Java's Short.MAX_VALUE). */
export const MAX_STRING_BYTES = 0x7fff;
/** The nil uuid ("no id"). */
export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
/** Shared zero-length buffer used as the default of non-nullable bytes fields. */
export const EMPTY_BYTES: Buffer = Buffer.alloc(0);

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

export type ElementReader<T> = (reader: ByteReader, version: number) => T;
export type ElementWriter<T> = (writer: ByteWriter, version: number, value: T) => void;

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class ByteReader {
  readonly buffer: Buffer;
  /** Next byte to read. */
  position: number;
  /** One past the last byte this reader may read. */
  readonly end: number;

  constructor(buffer: Buffer, start = 0, end: number = buffer.length) {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > buffer.length || start > end) {
      throw new RangeError(`bad reader window [${start}, ${end}) over ${buffer.length} bytes`);
    }
    this.buffer = buffer;
    this.position = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  fail(message: string, offset: number = this.position): never {
    throw new ProtocolDecodeError(message, offset);
  }

  /** Throws unless `bytes` more bytes are available. */
  need(bytes: number, what: string): void {
    if (this.end - this.position < bytes) {
      this.fail(`truncated ${what}: needs ${bytes} bytes at offset ${this.position}, ${this.end - this.position} left`);
    }
  }

  /** Throws unless every byte has been consumed. */
  expectEnd(what = 'message'): void {
    if (this.position !== this.end) this.fail(`${this.end - this.position} unexpected bytes after the ${what}`);
  }

  skip(bytes: number): void {
    this.need(bytes, 'skipped bytes');
    this.position += bytes;
  }

  // ---- fixed-width numbers -------------------------------------------------------------------

  readInt8(): number {
    this.need(1, 'int8');
    const byte = this.buffer[this.position++]!;
    return (byte << 24) >> 24;
  }

  readUint8(): number {
    this.need(1, 'uint8');
    return this.buffer[this.position++]!;
  }

  readInt16(): number {
    this.need(2, 'int16');
    const b = this.buffer;
    const p = this.position;
    this.position = p + 2;
    return ((b[p]! << 24) | (b[p + 1]! << 16)) >> 16;
  }

  readUint16(): number {
    this.need(2, 'uint16');
    const b = this.buffer;
    const p = this.position;
    this.position = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  readInt32(): number {
    this.need(4, 'int32');
    const b = this.buffer;
    const p = this.position;
    this.position = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  readUint32(): number {
    return this.readInt32() >>> 0;
  }

  readInt64(): bigint {
    this.need(8, 'int64');
    const value = this.buffer.readBigInt64BE(this.position);
    this.position += 8;
    return value;
  }

  readFloat64(): number {
    this.need(8, 'float64');
    const value = this.buffer.readDoubleBE(this.position);
    this.position += 8;
    return value;
  }

  readBool(): boolean {
    this.need(1, 'bool');
    return this.buffer[this.position++] !== 0;
  }

  readUuid(): string {
    this.need(16, 'uuid');
    const b = this.buffer;
    const p = this.position;
    this.position = p + 16;
    let text = '';
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) text += '-';
      text += HEX[b[p + i]!]!;
    }
    return text;
  }

  // ---- varints -------------------------------------------------------------------------------

  /** LEB128, at most 5 bytes, value in [0, 2^32). */
  readUnsignedVarint(): number {
    const b = this.buffer;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.position >= this.end) this.fail(`truncated unsigned varint at offset ${this.position}`);
      const byte = b[this.position++]!;
      if (i === 4) {
        if (byte > 0x0f) this.fail('unsigned varint overflows 32 bits', this.position - 1);
        return value + byte * 2 ** 28;
      }
      value |= (byte & 0x7f) << (7 * i);
      if ((byte & 0x80) === 0) return value >>> 0;
    }
    return this.fail('unreachable');
  }

  /** Zigzag LEB128, 32-bit. */
  readVarint(): number {
    const unsigned = this.readUnsignedVarint();
    return (unsigned >>> 1) ^ -(unsigned & 1);
  }

  /** Zigzag LEB128, 64-bit, as a bigint. */
  readVarlong(): bigint {
    const b = this.buffer;
    let value = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.position >= this.end) this.fail(`truncated varlong at offset ${this.position}`);
      const byte = b[this.position++]!;
      if (i === 9 && byte > 0x01) this.fail('varlong overflows 64 bits', this.position - 1);
      value |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return (value >> 1n) ^ -(value & 1n);
    }
    return this.fail('varlong longer than 10 bytes');
  }

  // ---- strings -------------------------------------------------------------------------------

  private readUtf8(length: number, what: string): string {
    this.need(length, what);
    const b = this.buffer;
    const start = this.position;
    const end = start + length;
    this.position = end;
    if (length <= 32) {
      // Short ASCII strings (topic names, client ids) decode faster without the native call.
      let text = '';
      for (let i = start; i < end; i++) {
        const c = b[i]!;
        if (c >= 0x80) return b.toString('utf8', start, end);
        text += String.fromCharCode(c);
      }
      return text;
    }
    return b.toString('utf8', start, end);
  }

  readString(): string {
    const at = this.position;
    const length = this.readInt16();
    if (length < 0) this.fail(length === -1 ? 'null in a non-nullable string' : `negative string length ${length}`, at);
    return this.readUtf8(length, 'string');
  }

  readNullableString(): string | null {
    const at = this.position;
    const length = this.readInt16();
    if (length === -1) return null;
    if (length < 0) this.fail(`negative string length ${length}`, at);
    return this.readUtf8(length, 'string');
  }

  readCompactString(): string {
    const at = this.position;
    const lengthPlusOne = this.readUnsignedVarint();
    if (lengthPlusOne === 0) this.fail('null in a non-nullable compact string', at);
    if (lengthPlusOne - 1 > MAX_STRING_BYTES) this.fail(`compact string length ${lengthPlusOne - 1} exceeds ${MAX_STRING_BYTES}`, at);
    return this.readUtf8(lengthPlusOne - 1, 'compact string');
  }

  readCompactNullableString(): string | null {
    const at = this.position;
    const lengthPlusOne = this.readUnsignedVarint();
    if (lengthPlusOne === 0) return null;
    if (lengthPlusOne - 1 > MAX_STRING_BYTES) this.fail(`compact string length ${lengthPlusOne - 1} exceeds ${MAX_STRING_BYTES}`, at);
    return this.readUtf8(lengthPlusOne - 1, 'compact string');
  }

  // ---- bytes ---------------------------------------------------------------------------------

  private bytesLength(nullable: boolean, compact: boolean): number {
    const at = this.position;
    let length: number;
    if (compact) {
      length = this.readUnsignedVarint() - 1;
    } else {
      length = this.readInt32();
    }
    if (length === -1) {
      if (!nullable) this.fail('null in non-nullable bytes', at);
      return -1;
    }
    if (length < 0) this.fail(`negative bytes length ${length}`, at);
    this.need(length, 'bytes');
    return length;
  }

  private view(length: number): Buffer {
    const start = this.position;
    this.position = start + length;
    return this.buffer.subarray(start, start + length);
  }

  private copy(length: number): Buffer {
    if (length === 0) return EMPTY_BYTES;
    const start = this.position;
    this.position = start + length;
    return Buffer.from(this.buffer.subarray(start, start + length));
  }

  /** Copies: the result stays valid after the frame buffer is reused. */
  readBytes(): Buffer {
    return this.copy(this.bytesLength(false, false));
  }

  readNullableBytes(): Buffer | null {
    const length = this.bytesLength(true, false);
    return length < 0 ? null : this.copy(length);
  }

  readCompactBytes(): Buffer {
    return this.copy(this.bytesLength(false, true));
  }

  readCompactNullableBytes(): Buffer | null {
    const length = this.bytesLength(true, true);
    return length < 0 ? null : this.copy(length);
  }

  /** Zero-copy: a view into the frame buffer. */
  readBytesView(): Buffer {
    return this.view(this.bytesLength(false, false));
  }

  readNullableBytesView(): Buffer | null {
    const length = this.bytesLength(true, false);
    return length < 0 ? null : this.view(length);
  }

  readCompactBytesView(): Buffer {
    return this.view(this.bytesLength(false, true));
  }

  readCompactNullableBytesView(): Buffer | null {
    const length = this.bytesLength(true, true);
    return length < 0 ? null : this.view(length);
  }

  /** A `records` field: raw record batches, a view into the frame buffer, never decoded here. */
  readRecords(): Buffer | null {
    return this.readNullableBytesView();
  }

  readCompactRecords(): Buffer | null {
    return this.readCompactNullableBytesView();
  }

  // ---- arrays --------------------------------------------------------------------------------

  private checkCount(count: number, minElementBytes: number, at: number): void {
    const min = minElementBytes < 1 ? 1 : minElementBytes;
    if (count * min > this.end - this.position) {
      this.fail(
        `array claims ${count} elements of at least ${min} bytes each, but only ${this.end - this.position} bytes are left`,
        at,
      );
    }
  }

  /** int32 count; -1 (null) is an error. The count is checked against the bytes left. */
  readArrayLength(minElementBytes: number): number {
    const at = this.position;
    const count = this.readInt32();
    if (count < 0) this.fail(count === -1 ? 'null in a non-nullable array' : `negative array length ${count}`, at);
    this.checkCount(count, minElementBytes, at);
    return count;
  }

  /** int32 count; returns -1 for null. */
  readNullableArrayLength(minElementBytes: number): number {
    const at = this.position;
    const count = this.readInt32();
    if (count === -1) return -1;
    if (count < 0) this.fail(`negative array length ${count}`, at);
    this.checkCount(count, minElementBytes, at);
    return count;
  }

  readCompactArrayLength(minElementBytes: number): number {
    const at = this.position;
    const countPlusOne = this.readUnsignedVarint();
    if (countPlusOne === 0) this.fail('null in a non-nullable compact array', at);
    this.checkCount(countPlusOne - 1, minElementBytes, at);
    return countPlusOne - 1;
  }

  readCompactNullableArrayLength(minElementBytes: number): number {
    const at = this.position;
    const countPlusOne = this.readUnsignedVarint();
    if (countPlusOne === 0) return -1;
    this.checkCount(countPlusOne - 1, minElementBytes, at);
    return countPlusOne - 1;
  }

  private elements<T>(count: number, read: ElementReader<T>, version: number): T[] {
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(read(this, version));
    return items;
  }

  readArray<T>(read: ElementReader<T>, version: number, minElementBytes: number): T[] {
    return this.elements(this.readArrayLength(minElementBytes), read, version);
  }

  readNullableArray<T>(read: ElementReader<T>, version: number, minElementBytes: number): T[] | null {
    const count = this.readNullableArrayLength(minElementBytes);
    return count < 0 ? null : this.elements(count, read, version);
  }

  readCompactArray<T>(read: ElementReader<T>, version: number, minElementBytes: number): T[] {
    return this.elements(this.readCompactArrayLength(minElementBytes), read, version);
  }

  readCompactNullableArray<T>(read: ElementReader<T>, version: number, minElementBytes: number): T[] | null {
    const count = this.readCompactNullableArrayLength(minElementBytes);
    return count < 0 ? null : this.elements(count, read, version);
  }

  /** A nullable struct field: int8 -1 for null, 1 followed by the struct otherwise. */
  readNullableStruct<T>(read: ElementReader<T>, version: number): T | null {
    return this.readInt8() < 0 ? null : read(this, version);
  }

  // ---- tagged fields -------------------------------------------------------------------------

  /** Reads a tagged-field section's count (each field needs at least 2 bytes: tag and size). */
  readTaggedFieldCount(): number {
    const at = this.position;
    const count = this.readUnsignedVarint();
    this.checkCount(count, 2, at);
    return count;
  }

  /**
   * Reads one tagged field's header and returns the offset where its data ends. The caller decodes
   * a known tag and then calls `endTaggedField`, or skips an unknown one with `skipTo`.
   */
  readTaggedFieldHeader(): { tag: number; end: number } {
    const tag = this.readUnsignedVarint();
    const size = this.readUnsignedVarint();
    this.need(size, `tagged field ${tag}`);
    return { tag, end: this.position + size };
  }

  /** Throws unless a known tagged field's decoder consumed exactly its declared size. */
  endTaggedField(tag: number, end: number): void {
    if (this.position !== end) {
      this.fail(`tagged field ${tag} should end at offset ${end} but its value ended at ${this.position}`);
    }
  }

  skipTo(end: number): void {
    if (end < this.position || end > this.end) this.fail(`cannot skip to offset ${end}`);
    this.position = end;
  }

  /** Skips a whole tagged-field section (every tag unknown). */
  skipTaggedFields(): void {
    for (let count = this.readTaggedFieldCount(); count > 0; count--) {
      this.skipTo(this.readTaggedFieldHeader().end);
    }
  }
}

// ---- element readers for arrays of primitives ------------------------------------------------

export const readInt8Element = (reader: ByteReader): number => reader.readInt8();
export const readInt16Element = (reader: ByteReader): number => reader.readInt16();
export const readInt32Element = (reader: ByteReader): number => reader.readInt32();
export const readInt64Element = (reader: ByteReader): bigint => reader.readInt64();
export const readUint16Element = (reader: ByteReader): number => reader.readUint16();
export const readUint32Element = (reader: ByteReader): number => reader.readUint32();
export const readFloat64Element = (reader: ByteReader): number => reader.readFloat64();
export const readBoolElement = (reader: ByteReader): boolean => reader.readBool();
export const readUuidElement = (reader: ByteReader): string => reader.readUuid();
export const readStringElement = (reader: ByteReader): string => reader.readString();
export const readCompactStringElement = (reader: ByteReader): string => reader.readCompactString();

// ---- writer ----------------------------------------------------------------------------------

export interface ByteWriterOptions {
  /** First buffer size, also the size it returns to after a reset when it grew past `maxRetainedBytes`. */
  initialBytes?: number;
  /** A buffer larger than this is dropped at `reset()`, so one huge message does not pin memory. */
  maxRetainedBytes?: number;
  /** Raw byte fields (records) at least this long are passed through as chunks, not copied. */
  rawChunkMinBytes?: number;
}

export const DEFAULT_WRITER_INITIAL_BYTES = 64 * 1024;
export const DEFAULT_WRITER_MAX_RETAINED_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RAW_CHUNK_MIN_BYTES = 8 * 1024;

/**
 * Encodes into one buffer that is reused from message to message. Output is a list of chunks:
 * views of the writer's own buffer interleaved with large raw buffers (record batches) that were
 * passed through without copying. Every view returned by `finish()` is valid until `reset()`; the
 * owner must not reset while a socket is still writing them (or must use `toBuffer()`, a copy).
 *
 * Offsets used by `patchInt32` and `beginSized`/`endSized` are logical: bytes since the last reset.
 */
export class ByteWriter {
  private buffer: Buffer;
  private position = 0;
  /** Start in `buffer` of the bytes not yet moved into `chunks`. */
  private chunkStart = 0;
  private readonly chunks: Buffer[] = [];
  /** Parallel to `chunks`: false for raw buffers passed through (never written to). */
  private readonly chunkOwned: boolean[] = [];
  private chunkedBytes = 0;
  private sizedDepth = 0;
  private readonly initialBytes: number;
  private readonly maxRetainedBytes: number;
  private readonly rawChunkMinBytes: number;

  constructor(options: ByteWriterOptions = {}) {
    this.initialBytes = options.initialBytes ?? DEFAULT_WRITER_INITIAL_BYTES;
    this.maxRetainedBytes = options.maxRetainedBytes ?? DEFAULT_WRITER_MAX_RETAINED_BYTES;
    this.rawChunkMinBytes = options.rawChunkMinBytes ?? DEFAULT_RAW_CHUNK_MIN_BYTES;
    if (!Number.isInteger(this.initialBytes) || this.initialBytes < 16) {
      throw new RangeError(`initialBytes must be an integer >= 16, got ${this.initialBytes}`);
    }
    if (!(this.maxRetainedBytes >= this.initialBytes)) {
      throw new RangeError(`maxRetainedBytes (${this.maxRetainedBytes}) must be >= initialBytes (${this.initialBytes})`);
    }
    if (!(this.rawChunkMinBytes >= 1)) throw new RangeError(`rawChunkMinBytes must be >= 1, got ${this.rawChunkMinBytes}`);
    this.buffer = Buffer.allocUnsafeSlow(this.initialBytes);
  }

  /** Bytes written since the last reset. */
  get length(): number {
    return this.chunkedBytes + this.position - this.chunkStart;
  }

  /** Rewinds to empty, keeping the buffer for the next message (unless it grew too large). */
  reset(): this {
    if (this.sizedDepth !== 0) throw new ProtocolEncodeError('reset() inside a sized region');
    if (this.buffer.length > this.maxRetainedBytes) this.buffer = Buffer.allocUnsafeSlow(this.initialBytes);
    this.position = 0;
    this.chunkStart = 0;
    this.chunks.length = 0;
    this.chunkOwned.length = 0;
    this.chunkedBytes = 0;
    return this;
  }

  /** The encoded bytes as chunks (views valid until `reset()`), for `socket.writev`/cork. */
  finish(): Buffer[] {
    if (this.sizedDepth !== 0) throw new ProtocolEncodeError('finish() inside a sized region');
    const out = this.chunks.slice();
    if (this.position > this.chunkStart) out.push(this.buffer.subarray(this.chunkStart, this.position));
    return out;
  }

  /** The encoded bytes as one new buffer (a copy; independent of the writer). */
  toBuffer(): Buffer {
    const parts = this.finish();
    const out = Buffer.allocUnsafe(this.length);
    let at = 0;
    for (const part of parts) at += part.copy(out, at);
    return out;
  }

  private ensure(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    const pending = this.position - this.chunkStart;
    let size = this.buffer.length * 2;
    while (size < pending + bytes) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    // Earlier chunks keep referencing the old buffer; only the pending tail moves.
    this.buffer.copy(next, 0, this.chunkStart, this.position);
    this.buffer = next;
    this.chunkStart = 0;
    this.position = pending;
  }

  private physical(logical: number, width: number): { buffer: Buffer; at: number } {
    if (logical >= this.chunkedBytes) {
      const at = this.chunkStart + logical - this.chunkedBytes;
      if (at + width > this.position) throw new ProtocolEncodeError(`offset ${logical} is past the written bytes`);
      return { buffer: this.buffer, at };
    }
    let base = 0;
    for (const [index, chunk] of this.chunks.entries()) {
      if (logical < base + chunk.length) {
        if (logical - base + width > chunk.length || this.chunkOwned[index] !== true) {
          throw new ProtocolEncodeError(`offset ${logical} is not inside bytes this writer wrote`);
        }
        return { buffer: chunk, at: logical - base };
      }
      base += chunk.length;
    }
    throw new ProtocolEncodeError(`offset ${logical} is past the written bytes`);
  }

  /** Overwrites 4 bytes written earlier (a size prefix reserved with `writeInt32(0)`). */
  patchInt32(logical: number, value: number): void {
    checkInt(value, INT32_MIN, INT32_MAX, 'int32');
    const { buffer, at } = this.physical(logical, 4);
    buffer.writeInt32BE(value, at);
  }

  // ---- fixed-width numbers -------------------------------------------------------------------

  writeInt8(value: number): void {
    if ((value << 24) >> 24 !== value) checkInt(value, -0x80, 0x7f, 'int8');
    this.ensure(1);
    this.buffer[this.position++] = value & 0xff;
  }

  writeInt16(value: number): void {
    if ((value << 16) >> 16 !== value) checkInt(value, -0x8000, 0x7fff, 'int16');
    this.ensure(2);
    const b = this.buffer;
    const p = this.position;
    b[p] = (value >>> 8) & 0xff;
    b[p + 1] = value & 0xff;
    this.position = p + 2;
  }

  writeUint16(value: number): void {
    if ((value & 0xffff) !== value) checkInt(value, 0, 0xffff, 'uint16');
    this.ensure(2);
    const b = this.buffer;
    const p = this.position;
    b[p] = value >>> 8;
    b[p + 1] = value & 0xff;
    this.position = p + 2;
  }

  writeInt32(value: number): void {
    if ((value | 0) !== value) checkInt(value, INT32_MIN, INT32_MAX, 'int32');
    this.ensure(4);
    const b = this.buffer;
    const p = this.position;
    b[p] = value >>> 24;
    b[p + 1] = (value >>> 16) & 0xff;
    b[p + 2] = (value >>> 8) & 0xff;
    b[p + 3] = value & 0xff;
    this.position = p + 4;
  }

  writeUint32(value: number): void {
    if (value >>> 0 !== value) checkInt(value, 0, UINT32_MAX, 'uint32');
    this.writeInt32(value | 0);
  }

  writeInt64(value: bigint): void {
    if (typeof value !== 'bigint' || value < MIN_INT64 || value > MAX_INT64) {
      throw new ProtocolEncodeError(`int64 out of range or not a bigint: ${String(value)}`);
    }
    this.ensure(8);
    this.buffer.writeBigInt64BE(value, this.position);
    this.position += 8;
  }

  writeFloat64(value: number): void {
    if (typeof value !== 'number') throw new ProtocolEncodeError(`float64 is not a number: ${String(value)}`);
    this.ensure(8);
    this.buffer.writeDoubleBE(value, this.position);
    this.position += 8;
  }

  writeBool(value: boolean): void {
    this.ensure(1);
    this.buffer[this.position++] = value ? 1 : 0;
  }

  writeUuid(value: string): void {
    if (typeof value !== 'string' || value.length !== 36) throw new ProtocolEncodeError(`not a uuid: ${String(value)}`);
    this.ensure(16);
    const b = this.buffer;
    let p = this.position;
    for (let i = 0; i < 36; ) {
      if (i === 8 || i === 13 || i === 18 || i === 23) {
        if (value.charCodeAt(i) !== 0x2d) throw new ProtocolEncodeError(`not a uuid: ${value}`);
        i++;
        continue;
      }
      const high = hexValue(value.charCodeAt(i));
      const low = hexValue(value.charCodeAt(i + 1));
      if (high < 0 || low < 0) throw new ProtocolEncodeError(`not a uuid: ${value}`);
      b[p++] = (high << 4) | low;
      i += 2;
    }
    this.position = p;
  }

  // ---- varints -------------------------------------------------------------------------------

  writeUnsignedVarint(value: number): void {
    if (value >>> 0 !== value) checkInt(value, 0, UINT32_MAX, 'unsigned varint');
    this.ensure(5);
    const b = this.buffer;
    let p = this.position;
    let rest = value >>> 0;
    while (rest >= 0x80) {
      b[p++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    b[p++] = rest;
    this.position = p;
  }

  writeVarint(value: number): void {
    if ((value | 0) !== value) checkInt(value, INT32_MIN, INT32_MAX, 'varint');
    this.writeUnsignedVarint(((value << 1) ^ (value >> 31)) >>> 0);
  }

  writeVarlong(value: bigint): void {
    if (typeof value !== 'bigint' || value < MIN_INT64 || value > MAX_INT64) {
      throw new ProtocolEncodeError(`varlong out of range or not a bigint: ${String(value)}`);
    }
    let rest = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
    this.ensure(10);
    const b = this.buffer;
    let p = this.position;
    while (rest >= 0x80n) {
      b[p++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    b[p++] = Number(rest);
    this.position = p;
  }

  // ---- strings -------------------------------------------------------------------------------

  /** Writes UTF-8 at `at` (room already ensured); returns the byte count. */
  private utf8At(value: string, at: number): number {
    const n = value.length;
    if (n <= 32) {
      const b = this.buffer;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        b[at + i] = c;
      }
      if (i === n) return n;
    }
    return this.buffer.write(value, at, 'utf8');
  }

  writeString(value: string): void {
    if (typeof value !== 'string') throw new ProtocolEncodeError(`null or non-string in a non-nullable string: ${String(value)}`);
    // UTF-8 needs at least one byte per UTF-16 unit, so this length is already too long.
    if (value.length > MAX_STRING_BYTES) throw new ProtocolEncodeError(`string of ${value.length} characters exceeds ${MAX_STRING_BYTES} bytes`);
    this.ensure(2 + value.length * 3);
    const length = this.utf8At(value, this.position + 2);
    if (length > MAX_STRING_BYTES) throw new ProtocolEncodeError(`string of ${length} bytes exceeds ${MAX_STRING_BYTES}`);
    this.buffer[this.position] = length >>> 8;
    this.buffer[this.position + 1] = length & 0xff;
    this.position += 2 + length;
  }

  writeNullableString(value: string | null): void {
    if (value === null) this.writeInt16(-1);
    else this.writeString(value);
  }

  writeCompactString(value: string): void {
    if (typeof value !== 'string') throw new ProtocolEncodeError(`null or non-string in a non-nullable string: ${String(value)}`);
    if (value.length > MAX_STRING_BYTES) throw new ProtocolEncodeError(`string of ${value.length} characters exceeds ${MAX_STRING_BYTES} bytes`);
    if (value.length * 3 + 1 < 0x80) {
      // Room for the longest UTF-8 form and a one-byte length prefix.
      this.ensure(1 + value.length * 3);
      const length = this.utf8At(value, this.position + 1);
      this.buffer[this.position] = length + 1;
      this.position += 1 + length;
      return;
    }
    const length = Buffer.byteLength(value, 'utf8');
    if (length > MAX_STRING_BYTES) throw new ProtocolEncodeError(`string of ${length} bytes exceeds ${MAX_STRING_BYTES}`);
    this.writeUnsignedVarint(length + 1);
    this.ensure(length);
    this.position += this.buffer.write(value, this.position, 'utf8');
  }

  writeCompactNullableString(value: string | null): void {
    if (value === null) this.writeUnsignedVarint(0);
    else this.writeCompactString(value);
  }

  // ---- bytes ---------------------------------------------------------------------------------

  /** Copies raw bytes, or passes a large buffer through as its own chunk (outside sized regions). */
  writeRaw(data: Uint8Array): void {
    const length = data.length;
    if (length >= this.rawChunkMinBytes && this.sizedDepth === 0) {
      if (this.position > this.chunkStart) {
        this.chunks.push(this.buffer.subarray(this.chunkStart, this.position));
        this.chunkOwned.push(true);
        this.chunkedBytes += this.position - this.chunkStart;
        this.chunkStart = this.position;
      }
      this.chunks.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, length));
      this.chunkOwned.push(false);
      this.chunkedBytes += length;
      return;
    }
    this.ensure(length);
    this.buffer.set(data, this.position);
    this.position += length;
  }

  writeBytes(value: Uint8Array): void {
    if (value === null || typeof value !== 'object') throw new ProtocolEncodeError('null in non-nullable bytes');
    this.writeInt32(value.length);
    this.writeRaw(value);
  }

  writeNullableBytes(value: Uint8Array | null): void {
    if (value === null) this.writeInt32(-1);
    else this.writeBytes(value);
  }

  writeCompactBytes(value: Uint8Array): void {
    if (value === null || typeof value !== 'object') throw new ProtocolEncodeError('null in non-nullable bytes');
    this.writeUnsignedVarint(value.length + 1);
    this.writeRaw(value);
  }

  writeCompactNullableBytes(value: Uint8Array | null): void {
    if (value === null) this.writeUnsignedVarint(0);
    else this.writeCompactBytes(value);
  }

  writeRecords(value: Uint8Array | null): void {
    this.writeNullableBytes(value);
  }

  writeCompactRecords(value: Uint8Array | null): void {
    this.writeCompactNullableBytes(value);
  }

  // ---- arrays --------------------------------------------------------------------------------

  writeArray<T>(items: readonly T[], write: ElementWriter<T>, version: number): void {
    if (!Array.isArray(items)) throw new ProtocolEncodeError('null in a non-nullable array');
    this.writeInt32(items.length);
    for (const item of items) write(this, version, item);
  }

  writeNullableArray<T>(items: readonly T[] | null, write: ElementWriter<T>, version: number): void {
    if (items === null) this.writeInt32(-1);
    else this.writeArray(items, write, version);
  }

  writeCompactArray<T>(items: readonly T[], write: ElementWriter<T>, version: number): void {
    if (!Array.isArray(items)) throw new ProtocolEncodeError('null in a non-nullable array');
    this.writeUnsignedVarint(items.length + 1);
    for (const item of items) write(this, version, item);
  }

  writeCompactNullableArray<T>(items: readonly T[] | null, write: ElementWriter<T>, version: number): void {
    if (items === null) this.writeUnsignedVarint(0);
    else this.writeCompactArray(items, write, version);
  }

  /** A nullable struct field: int8 -1 for null, 1 followed by the struct otherwise. */
  writeNullableStruct<T>(value: T | null, write: ElementWriter<T>, version: number): void {
    if (value === null) {
      this.writeInt8(-1);
    } else {
      this.writeInt8(1);
      write(this, version, value);
    }
  }

  // ---- tagged fields -------------------------------------------------------------------------

  /** A tagged-field section with no fields: one zero byte. */
  writeEmptyTaggedFields(): void {
    this.ensure(1);
    this.buffer[this.position++] = 0;
  }

  /**
   * Starts a region whose byte length will be written in front of it as an unsigned varint
   * (a tagged field's size). Returns the logical start for `endSized`.
   */
  beginSized(): number {
    this.sizedDepth++;
    return this.length;
  }

  endSized(start: number): void {
    if (this.sizedDepth === 0) throw new ProtocolEncodeError('endSized() without beginSized()');
    this.sizedDepth--;
    const size = this.length - start;
    const prefix = unsignedVarintSize(size);
    this.ensure(prefix);
    // Raw chunks are never cut inside a sized region, so the region is contiguous in `buffer`.
    const from = this.chunkStart + start - this.chunkedBytes;
    this.buffer.copyWithin(from + prefix, from, this.position);
    const end = this.position + prefix;
    this.position = from;
    this.writeUnsignedVarint(size);
    this.position = end;
  }
}

// ---- element writers for arrays of primitives ------------------------------------------------

export const writeInt8Element = (writer: ByteWriter, _version: number, value: number): void => writer.writeInt8(value);
export const writeInt16Element = (writer: ByteWriter, _version: number, value: number): void => writer.writeInt16(value);
export const writeInt32Element = (writer: ByteWriter, _version: number, value: number): void => writer.writeInt32(value);
export const writeInt64Element = (writer: ByteWriter, _version: number, value: bigint): void => writer.writeInt64(value);
export const writeUint16Element = (writer: ByteWriter, _version: number, value: number): void => writer.writeUint16(value);
export const writeUint32Element = (writer: ByteWriter, _version: number, value: number): void => writer.writeUint32(value);
export const writeFloat64Element = (writer: ByteWriter, _version: number, value: number): void => writer.writeFloat64(value);
export const writeBoolElement = (writer: ByteWriter, _version: number, value: boolean): void => writer.writeBool(value);
export const writeUuidElement = (writer: ByteWriter, _version: number, value: string): void => writer.writeUuid(value);
export const writeStringElement = (writer: ByteWriter, _version: number, value: string): void => writer.writeString(value);
export const writeCompactStringElement = (writer: ByteWriter, _version: number, value: string): void =>
  writer.writeCompactString(value);

// ---- helpers used by generated code ----------------------------------------------------------

export function unsignedVarintSize(value: number): number {
  let bytes = 1;
  let rest = value >>> 0;
  while (rest >= 0x80) {
    rest >>>= 7;
    bytes++;
  }
  return bytes;
}

/** Throws ProtocolEncodeError when a nullable-typed field holds null in a version where it is not nullable. */
export function nonNull<T>(value: T | null, field: string, version: number): T {
  if (value === null) throw new ProtocolEncodeError(`${field} cannot be null in version ${version}`);
  return value;
}

/** Decoding: the version comes from the wire, so an unknown one is a decode error. */
export function checkDecodeVersion(message: string, version: number, min: number, max: number, reader: ByteReader): void {
  if (!Number.isInteger(version) || version < min || version > max) {
    reader.fail(`${message} version ${version} is not in ${min}-${max}`);
  }
}

export function checkEncodeVersion(message: string, version: number, min: number, max: number): void {
  if (!Number.isInteger(version) || version < min || version > max) {
    throw new ProtocolEncodeError(`${message} version ${version} is not in ${min}-${max}`);
  }
}

function checkInt(value: number, min: number, max: number, type: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ProtocolEncodeError(`${type} out of range: ${String(value)}`);
  }
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  return -1;
}
