// Size-prefixed framing. Every Kafka message on a TCP stream is `int32 size` followed by `size`
// bytes (header + body); the size does not count its own 4 bytes.
//
// Writing: `beginFrame` reserves the prefix, the caller encodes header and body, `endFrame` patches
// the size in. Reading: `FrameReader` takes socket chunks of any size and returns whole frames,
// refusing a negative size or one above its limit before buffering any of it.

import { type ByteWriter, ProtocolDecodeError } from './wire.js';
import { INT32_MAX } from '../common/limits.js';

export const FRAME_SIZE_BYTES = 4;
/** Kafka's socket.request.max.bytes default (100 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;

/** Reserves the size prefix; returns its offset for `endFrame`. */
export function beginFrame(writer: ByteWriter): number {
  const start = writer.length;
  writer.writeInt32(0);
  return start;
}

/** Writes the frame's size into the prefix reserved by `beginFrame`; returns that size. */
export function endFrame(writer: ByteWriter, start: number): number {
  const size = writer.length - start - FRAME_SIZE_BYTES;
  writer.patchInt32(start, size);
  return size;
}

/** Encodes one whole frame: the prefix, then whatever `content` writes. */
export function writeFrame(writer: ByteWriter, content: (writer: ByteWriter) => void): number {
  const start = beginFrame(writer);
  content(writer);
  return endFrame(writer, start);
}

/**
 * Splits a byte stream into frames. A frame that arrived inside one chunk is returned as a view of
 * that chunk (no copy); one spread over several chunks is copied into a new buffer once.
 */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  /** Read position in chunks[0]. */
  private head = 0;
  private buffered = 0;
  /** Bytes consumed from the stream so far, for error offsets. */
  private consumed = 0;

  constructor(readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > INT32_MAX) {
      throw new RangeError(`maxFrameBytes must be an integer in [1, 2^31), got ${maxFrameBytes}`);
    }
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete frame without its size prefix, or undefined until more bytes arrive.
   * Throws ProtocolDecodeError for a negative or oversized size; the stream is then unusable.
   */
  next(): Buffer | undefined {
    if (this.buffered < FRAME_SIZE_BYTES) return undefined;
    const size = this.peekInt32();
    if (size < 0 || size > this.maxFrameBytes) {
      throw new ProtocolDecodeError(`frame size ${size} is outside [0, ${this.maxFrameBytes}]`, this.consumed);
    }
    if (this.buffered < FRAME_SIZE_BYTES + size) return undefined;
    this.advance(FRAME_SIZE_BYTES);
    return this.take(size);
  }

  private peekInt32(): number {
    const first = this.chunks[0]!;
    if (first.length - this.head >= 4) return first.readInt32BE(this.head);
    const bytes = Buffer.allocUnsafe(4);
    let filled = 0;
    let chunkIndex = 0;
    let at = this.head;
    while (filled < 4) {
      const chunk = this.chunks[chunkIndex]!;
      const n = Math.min(4 - filled, chunk.length - at);
      chunk.copy(bytes, filled, at, at + n);
      filled += n;
      chunkIndex++;
      at = 0;
    }
    return bytes.readInt32BE(0);
  }

  private advance(bytes: number): void {
    let rest = bytes;
    while (rest > 0) {
      const first = this.chunks[0]!;
      const available = first.length - this.head;
      if (available > rest) {
        this.head += rest;
        break;
      }
      rest -= available;
      this.chunks.shift();
      this.head = 0;
    }
    this.buffered -= bytes;
    this.consumed += bytes;
  }

  private take(size: number): Buffer {
    const first = this.chunks[0];
    if (size === 0 || first === undefined) return Buffer.alloc(0);
    if (first.length - this.head >= size) {
      const frame = first.subarray(this.head, this.head + size);
      this.advance(size);
      return frame;
    }
    const frame = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.chunks[0]!;
      const n = Math.min(size - filled, chunk.length - this.head);
      chunk.copy(frame, filled, this.head, this.head + n);
      filled += n;
      this.advance(n);
    }
    return frame;
  }
}
