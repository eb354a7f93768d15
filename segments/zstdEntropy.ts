// The entropy coding layer of zstd (RFC 8878 section 4): backward bitstreams, FSE tables and
// Huffman tables, as zstdFrame.ts uses them for literals and sequences. Every check libzstd makes
// on these structures is made here, so a table or stream libzstd refuses is refused.
//
// Backward bitstream: the writer appends bits low-to-high and ends with a 1 bit, then zero bits
// up to the byte boundary; the reader starts at that marker bit and reads towards the first
// byte. A stream must not be empty, its last byte must not be 0, and (for Huffman streams and the
// sequences stream) it must be consumed exactly: reading past its start is corruption.
//
// FSE table description (read forward, little-endian bits): accuracy log = low 4 bits + 5, then
// one probability per symbol with a variable bit count (value - 1; value 0 = "less than 1"),
// probability 0 followed by 2-bit repeat flags for further zero probabilities, until the
// probabilities sum to 1 << accuracy log exactly.
//
// Huffman table description: one header byte; < 128: that many bytes of FSE-compressed weights
// (accuracy log <= 6, two interleaved states); >= 128: (byte - 127) 4-bit weights. The last
// symbol's weight is implied by completing the sum to a power of two; at most 11 bits a code.
import { CorruptCompressionError } from './compressionErrors.js';

const CODEC = 'zstd';

export function corrupt(reason: string): CorruptCompressionError {
  return new CorruptCompressionError(CODEC, reason);
}

/** Index of the highest set bit of a positive integer < 2^32. */
export function highBit(value: number): number {
  return 31 - Math.clz32(value);
}

/** `count` (<= 24) bits of data starting `bitPosition` bits after data[byteStart], little-endian. */
function bitsAt(data: Uint8Array, byteStart: number, bitPosition: number, count: number): number {
  const at = byteStart + (bitPosition >>> 3);
  const word = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24);
  return (word >>> (bitPosition & 7)) & ((1 << count) - 1);
}

/**
 * Reads a backward bitstream data[start, end). `position` counts the bits not yet read; it going
 * below 0 means the stream was over-read (reads past the start return 0).
 */
export class BackwardBitReader {
  position: number;

  constructor(private readonly data: Uint8Array, private readonly start: number, end: number, what: string) {
    if (end <= start) throw corrupt(`${what} is empty`);
    const last = data[end - 1]!;
    if (last === 0) throw corrupt(`${what} ends in a zero byte (no end marker)`);
    this.position = (end - 1 - start) * 8 + highBit(last);
  }

  read(count: number): number {
    if (count === 0) return 0;
    this.position -= count;
    const position = this.position;
    if (position < 0) return 0;
    if (count <= 24) return bitsAt(this.data, this.start, position, count);
    return bitsAt(this.data, this.start, position, 24) + bitsAt(this.data, this.start, position + 24, count - 24) * 0x1000000;
  }
}

// FSE -------------------------------------------------------------------------------------------

/** An FSE decoding table: for each state, its symbol, and how to reach the next state. */
export interface FseTable {
  accuracyLog: number;
  symbol: Uint8Array;
  bits: Uint8Array;
  base: Uint16Array;
}

/** The one-state table of RLE mode: always `symbol`, no bits read. */
export function rleFseTable(symbol: number): FseTable {
  return { accuracyLog: 0, symbol: Uint8Array.of(symbol), bits: new Uint8Array(1), base: new Uint16Array(1) };
}

/** Builds the decoding table of a normalized distribution (probability -1 = "less than 1"). */
export function buildFseTable(probabilities: ArrayLike<number>, symbolCount: number, accuracyLog: number): FseTable {
  const size = 1 << accuracyLog;
  const symbol = new Uint8Array(size);
  const bits = new Uint8Array(size);
  const base = new Uint16Array(size);
  const next = new Uint16Array(symbolCount);
  let highThreshold = size - 1;
  for (let s = 0; s < symbolCount; s++) {
    const probability = probabilities[s]!;
    if (probability === -1) {
      symbol[highThreshold--] = s;
      next[s] = 1;
    } else {
      next[s] = probability;
    }
  }
  const step = (size >>> 1) + (size >>> 3) + 3;
  const mask = size - 1;
  let position = 0;
  for (let s = 0; s < symbolCount; s++) {
    const probability = probabilities[s]!;
    for (let i = 0; i < probability; i++) {
      symbol[position] = s;
      do position = (position + step) & mask;
      while (position > highThreshold);
    }
  }
  if (position !== 0) throw corrupt('FSE distribution does not fill its table');
  for (let state = 0; state < size; state++) {
    const s = symbol[state]!;
    const nextState = next[s]!++;
    const nbBits = accuracyLog - highBit(nextState);
    bits[state] = nbBits;
    base[state] = (nextState << nbBits) - size;
  }
  return { accuracyLog, symbol, bits, base };
}

/**
 * Reads an FSE table description from data[start, end) (libzstd's FSE_readNCount). Returns the
 * table and the position after the description.
 */
export function readFseTable(data: Uint8Array, start: number, end: number, maxSymbol: number, maxAccuracyLog: number, what: string): { table: FseTable; next: number } {
  const availableBits = (end - start) * 8;
  let bit = 0;
  const read = (count: number): number => {
    const value = bitsAt(data, start, bit, count);
    bit += count;
    return value;
  };
  if (availableBits < 4) throw corrupt(`${what} table description is empty`);
  const accuracyLog = read(4) + 5;
  if (accuracyLog > maxAccuracyLog) throw corrupt(`${what} table accuracy log ${accuracyLog} exceeds ${maxAccuracyLog}`);
  const probabilities = new Int16Array(maxSymbol + 1);
  let remaining = (1 << accuracyLog) + 1;
  let threshold = 1 << accuracyLog;
  let nbBits = accuracyLog + 1;
  let symbol = 0;
  let previousZero = false;
  for (;;) {
    if (previousZero) {
      let repeat: number;
      do {
        repeat = read(2);
        symbol += repeat;
        if (bit > availableBits) throw corrupt(`${what} table description runs past its input`);
      } while (repeat === 3);
      if (symbol > maxSymbol) throw corrupt(`${what} table describes symbol ${symbol}, above ${maxSymbol}`);
    }
    const max = 2 * threshold - 1 - remaining;
    let count: number;
    const low = bitsAt(data, start, bit, nbBits - 1);
    if (low < max) {
      count = low;
      bit += nbBits - 1;
    } else {
      count = bitsAt(data, start, bit, nbBits);
      if (count >= threshold) count -= max;
      bit += nbBits;
    }
    count--;
    remaining -= count < 0 ? -count : count;
    probabilities[symbol++] = count;
    previousZero = count === 0;
    if (remaining < threshold) {
      if (remaining <= 1) break;
      nbBits = highBit(remaining) + 1;
      threshold = 1 << (nbBits - 1);
    }
    if (bit > availableBits) throw corrupt(`${what} table description runs past its input`);
    if (symbol > maxSymbol) throw corrupt(`${what} table describes more than ${maxSymbol + 1} symbols`);
  }
  if (remaining !== 1) throw corrupt(`${what} table probabilities do not sum to ${1 << accuracyLog}`);
  if (bit > availableBits) throw corrupt(`${what} table description runs past its input`);
  return { table: buildFseTable(probabilities, symbol, accuracyLog), next: start + ((bit + 7) >>> 3) };
}

// Huffman -------------------------------------------------------------------------------------

export const HUFFMAN_MAX_BITS = 11;
const HUFFMAN_WEIGHTS_MAX_ACCURACY_LOG = 6;
const HUFFMAN_MAX_ENCODED_WEIGHTS = 255;

/** A Huffman decoding table indexed by the next `maxBits` bits of the stream. */
export interface HuffmanTable {
  maxBits: number;
  symbol: Uint8Array;
  bits: Uint8Array;
}

/** Reads a Huffman table description from data[start, end). */
export function readHuffmanTable(data: Uint8Array, start: number, end: number): { table: HuffmanTable; next: number } {
  if (start >= end) throw corrupt('Huffman table description is empty');
  const header = data[start]!;
  const weights = new Uint8Array(256);
  let count: number;
  let next: number;
  if (header >= 128) {
    count = header - 127;
    next = start + 1 + ((count + 1) >>> 1);
    if (next > end) throw corrupt('Huffman weights run past the literals section');
    for (let i = 0; i < count; i++) {
      const byte = data[start + 1 + (i >>> 1)]!;
      weights[i] = i % 2 === 0 ? byte >>> 4 : byte & 15;
    }
  } else {
    next = start + 1 + header;
    if (next > end) throw corrupt('Huffman weights run past the literals section');
    count = decodeFseWeights(data, start + 1, next, weights);
  }
  let total = 0;
  const rankCount = new Uint32Array(HUFFMAN_MAX_BITS + 2);
  for (let i = 0; i < count; i++) {
    const weight = weights[i]!;
    if (weight > HUFFMAN_MAX_BITS) throw corrupt(`Huffman weight ${weight} above ${HUFFMAN_MAX_BITS}`);
    rankCount[weight]!++;
    total += (1 << weight) >>> 1;
  }
  if (total === 0) throw corrupt('Huffman weights are all zero');
  const maxBits = highBit(total) + 1;
  if (maxBits > HUFFMAN_MAX_BITS) throw corrupt(`Huffman codes need ${maxBits} bits, above ${HUFFMAN_MAX_BITS}`);
  const rest = (1 << maxBits) - total;
  if ((rest & (rest - 1)) !== 0) throw corrupt('Huffman weights do not complete to a power of two');
  const lastWeight = highBit(rest) + 1;
  weights[count] = lastWeight;
  rankCount[lastWeight]!++;
  if (rankCount[1]! < 2 || (rankCount[1]! & 1) !== 0) throw corrupt('Huffman weights have an odd or too small count of weight 1');
  const symbolCount = count + 1;
  const size = 1 << maxBits;
  const symbol = new Uint8Array(size);
  const bits = new Uint8Array(size);
  let position = 0;
  for (let weight = 1; weight <= maxBits; weight++) {
    const entries = 1 << (weight - 1);
    const codeBits = maxBits + 1 - weight;
    for (let s = 0; s < symbolCount; s++) {
      if (weights[s] !== weight) continue;
      symbol.fill(s, position, position + entries);
      bits.fill(codeBits, position, position + entries);
      position += entries;
    }
  }
  return { table: { maxBits, symbol, bits }, next };
}

/** Decodes FSE-compressed Huffman weights from data[start, end) into `weights`; returns their count. */
function decodeFseWeights(data: Uint8Array, start: number, end: number, weights: Uint8Array): number {
  const { table, next } = readFseTable(data, start, end, 255, HUFFMAN_WEIGHTS_MAX_ACCURACY_LOG, 'Huffman weights');
  const reader = new BackwardBitReader(data, next, end, 'Huffman weights stream');
  let state1 = reader.read(table.accuracyLog);
  let state2 = reader.read(table.accuracyLog);
  if (reader.position < 0) throw corrupt('Huffman weights stream too short for its two initial states');
  let count = 0;
  for (;;) {
    if (count > HUFFMAN_MAX_ENCODED_WEIGHTS - 2) throw corrupt('more than 255 Huffman weights');
    weights[count++] = table.symbol[state1]!;
    state1 = table.base[state1]! + reader.read(table.bits[state1]!);
    if (reader.position < 0) {
      weights[count++] = table.symbol[state2]!;
      return count;
    }
    if (count > HUFFMAN_MAX_ENCODED_WEIGHTS - 2) throw corrupt('more than 255 Huffman weights');
    weights[count++] = table.symbol[state2]!;
    state2 = table.base[state2]! + reader.read(table.bits[state2]!);
    if (reader.position < 0) {
      weights[count++] = table.symbol[state1]!;
      return count;
    }
  }
}

/**
 * Decodes the Huffman stream data[start, end) into out[outStart, outStart + count). The stream
 * must be consumed exactly.
 */
export function decodeHuffmanStream(data: Uint8Array, start: number, end: number, table: HuffmanTable, out: Uint8Array, outStart: number, count: number): void {
  if (end <= start) throw corrupt('Huffman stream is empty');
  const last = data[end - 1]!;
  if (last === 0) throw corrupt('Huffman stream ends in a zero byte (no end marker)');
  let position = (end - 1 - start) * 8 + highBit(last);
  const { maxBits, symbol, bits } = table;
  const mask = (1 << maxBits) - 1;
  const outEnd = outStart + count;
  let op = outStart;
  // While a full code's worth of bits remains, peek maxBits bits directly.
  while (op < outEnd && position >= maxBits) {
    const p = position - maxBits;
    const at = start + (p >>> 3);
    const word = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24);
    const index = (word >>> (p & 7)) & mask;
    out[op++] = symbol[index]!;
    position -= bits[index]!;
  }
  // The last codes: the missing low bits of the peek are zeros below the stream's start.
  while (op < outEnd) {
    if (position < 0) throw corrupt('Huffman stream over-read');
    const index = position === 0 ? 0 : (bitsAt(data, start, 0, position) << (maxBits - position)) & mask;
    out[op++] = symbol[index]!;
    position -= bits[index]!;
  }
  if (position !== 0) throw corrupt(position < 0 ? 'Huffman stream over-read' : `Huffman stream has ${position} bits left over`);
}
