// Variable-length integers as Kafka records use them: zigzag, then LEB128 (7 bits per byte, least
// significant group first, high bit set while more bytes follow).
//
// varint: 32-bit values, at most 5 bytes. varlong: 64-bit values, at most 10 bytes. Varlongs are
// decoded into JS numbers and refused when outside the safe-integer range: record timestamp
// deltas and offset deltas never come near 2^53, and a value that does is a corrupt record.

import { INT32_MAX, INT32_MIN } from '../common/limits.js';

export class VarintError extends Error {
  override readonly name = 'VarintError';
}

export interface DecodedNumber {
  value: number;
  /** Position just past the encoded bytes. */
  next: number;
}

export function varintSize(value: number): number {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  let bytes = 1;
  while (zigzag >= 0x80) {
    zigzag >>>= 7;
    bytes++;
  }
  return bytes;
}

/** Writes a zigzag varint (32-bit) at `position`; returns the position after it. */
export function writeVarint(buffer: Buffer, position: number, value: number): number {
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    throw new VarintError(`varint out of int32 range: ${value}`);
  }
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  while (zigzag >= 0x80) {
    buffer[position++] = (zigzag & 0x7f) | 0x80;
    zigzag >>>= 7;
  }
  buffer[position++] = zigzag;
  return position;
}

export function readVarint(buffer: Uint8Array, position: number, end: number = buffer.length): DecodedNumber {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (position >= end) throw new VarintError('varint runs past the end of its buffer');
    const byte = buffer[position++]!;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) {
      if (i === 4 && byte > 0x0f) throw new VarintError('varint overflows 32 bits');
      const unsigned = result >>> 0;
      return { value: (unsigned >>> 1) ^ -(unsigned & 1), next: position };
    }
    shift += 7;
  }
  throw new VarintError('varint longer than 5 bytes');
}

export function varlongSize(value: number): number {
  let rest = Math.floor((value < 0 ? -value - 1 : value) / 64);
  let bytes = 1;
  while (rest > 0) {
    rest = Math.floor(rest / 128);
    bytes++;
  }
  return bytes;
}

/** Writes a zigzag varlong at `position`; returns the position after it. */
export function writeVarlong(buffer: Buffer, position: number, value: number): number {
  if (!Number.isSafeInteger(value)) throw new VarintError(`varlong outside the safe integer range: ${value}`);
  // Zigzag is 2 * magnitude + sign, which can pass 2^53: emit its low 7 bits from the magnitude's
  // low 6 bits and the sign, then continue with the magnitude shifted by 6, all exact arithmetic.
  const sign = value < 0 ? 1 : 0;
  const magnitude = value < 0 ? -value - 1 : value;
  let low7 = (magnitude % 64) * 2 + sign;
  let rest = Math.floor(magnitude / 64);
  while (rest > 0) {
    buffer[position++] = low7 | 0x80;
    low7 = rest % 128;
    rest = Math.floor(rest / 128);
  }
  buffer[position++] = low7;
  return position;
}

export function readVarlong(buffer: Uint8Array, position: number, end: number = buffer.length): DecodedNumber {
  let low = 0; // first 28 bits, combined exactly
  let high = 0; // remaining bits as a float multiple of 2^28
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (position >= end) throw new VarintError('varlong runs past the end of its buffer');
    const byte = buffer[position++]!;
    if (shift < 28) low |= (byte & 0x7f) << shift;
    else high += (byte & 0x7f) * 2 ** (shift - 28);
    if ((byte & 0x80) === 0) {
      // Halve before combining: the zigzag form is twice the magnitude and may pass 2^53 itself.
      const magnitude = high * 2 ** 27 + ((low >>> 0) >>> 1);
      const value = (low & 1) === 0 ? magnitude : -magnitude - 1;
      if (!Number.isSafeInteger(value)) throw new VarintError('varlong outside the safe integer range');
      return { value, next: position };
    }
    shift += 7;
  }
  throw new VarintError('varlong longer than 10 bytes');
}
