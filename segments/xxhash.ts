// xxHash, the checksums of the LZ4 frame format (XXH32: header, block and content checksums) and
// of the zstd frame format (XXH64, low 32 bits stored as the content checksum).
//
// Both run over a byte range of a Uint8Array with seed 0 (the only seed either format uses;
// xxh32 takes others for completeness). XXH64 needs 64-bit multiplies: they are done on 32-bit
// halves with 16-bit partial products, which keeps every intermediate exact in a double and
// runs several times faster than BigInt. The test suite checks both against a BigInt reference.

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME32_4 = 0x27d4eb2f;
const PRIME32_5 = 0x165667b1;

/** XXH32 of data[start, end). */
export function xxh32(data: Uint8Array, start: number, end: number, seed = 0): number {
  const length = end - start;
  let p = start;
  let h: number;
  if (length >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
    let v2 = (seed + PRIME32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME32_1) | 0;
    const limit = end - 16;
    while (p <= limit) {
      v1 = lane32(v1, p32(data, p));
      v2 = lane32(v2, p32(data, p + 4));
      v3 = lane32(v3, p32(data, p + 8));
      v4 = lane32(v4, p32(data, p + 12));
      p += 16;
    }
    h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
  } else {
    h = seed + PRIME32_5;
  }
  h = (h + length) | 0;
  while (p + 4 <= end) {
    h = Math.imul(rotl32(h + Math.imul(p32(data, p), PRIME32_3), 17), PRIME32_4);
    p += 4;
  }
  while (p < end) {
    h = Math.imul(rotl32(h + Math.imul(data[p]!, PRIME32_5), 11), PRIME32_1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, PRIME32_2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME32_3);
  h ^= h >>> 16;
  return h >>> 0;
}

function p32(data: Uint8Array, p: number): number {
  return data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16) | (data[p + 3]! << 24);
}

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function lane32(v: number, input: number): number {
  return Math.imul(rotl32(v + Math.imul(input, PRIME32_2), 13), PRIME32_1);
}

// XXH64 on 64-bit values held as (high, low) uint32 pairs, in locals or in a small Uint32Array
// (slot i the high half, slot i + 1 the low half). Math.imul gives the low half of a 32x32-bit
// product, mulHigh32 the high half.
const P1_HI = 0x9e3779b1, P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d, P2_LO = 0x27d4eb4f;
const P3_HI = 0x165667b1, P3_LO = 0x9e3779f9;
const P4_HI = 0x85ebca77, P4_LO = 0xc2b2ae63;
const P5_HI = 0x27d4eb2f, P5_LO = 0x165667c5;

// Slots of the working array: four lanes, the hash, and a scratch value.
const V1 = 0, V2 = 2, V3 = 4, V4 = 6, H = 8, T = 10;

/** High 32 bits of the product of two uint32: b split in 16-bit halves keeps each part exact. */
function mulHigh32(a: number, b: number): number {
  return Math.floor((a * (b >>> 16) + Math.floor((a * (b & 0xffff)) / 0x10000)) / 0x10000);
}

/** w[i] = w[i] * (bHi, bLo) mod 2^64 */
function mulInto(w: Uint32Array, i: number, bHi: number, bLo: number): void {
  const aHi = w[i]!, aLo = w[i + 1]!;
  w[i] = mulHigh32(aLo, bLo) + Math.imul(aHi, bLo) + Math.imul(aLo, bHi);
  w[i + 1] = Math.imul(aLo, bLo);
}

/** w[i] = w[i] + (bHi, bLo) mod 2^64 */
function addInto(w: Uint32Array, i: number, bHi: number, bLo: number): void {
  const sum = w[i + 1]! + bLo;
  w[i] = w[i]! + bHi + (sum > 0xffffffff ? 1 : 0);
  w[i + 1] = sum;
}

/** w[i] = rotl(w[i], r), 0 < r < 32 */
function rotlInto(w: Uint32Array, i: number, r: number): void {
  const aHi = w[i]!, aLo = w[i + 1]!;
  w[i] = (aHi << r) | (aLo >>> (32 - r));
  w[i + 1] = (aLo << r) | (aHi >>> (32 - r));
}

/** w[i] = rotl(w[i] + input * P2, 31) * P1, the step of each lane (input is a uint32 pair). */
function roundInto(w: Uint32Array, i: number, inHi: number, inLo: number): void {
  const productHi = mulHigh32(inLo, P2_LO) + Math.imul(inHi, P2_LO) + Math.imul(inLo, P2_HI);
  const productLo = Math.imul(inLo, P2_LO) >>> 0;
  const sumLo = w[i + 1]! + productLo;
  const sumHi = (w[i]! + productHi + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
  const rotHi = (sumHi << 31) | ((sumLo >>> 0) >>> 1);
  const rotLo = ((sumLo >>> 0) << 31) | (sumHi >>> 1);
  w[i] = mulHigh32(rotLo >>> 0, P1_LO) + Math.imul(rotHi, P1_LO) + Math.imul(rotLo, P1_HI);
  w[i + 1] = Math.imul(rotLo, P1_LO);
}

/** w[H] = (w[H] ^ round(0, w[lane])) * P1 + P4 */
function mergeLane(w: Uint32Array, lane: number): void {
  w[T] = 0;
  w[T + 1] = 0;
  roundInto(w, T, w[lane]!, w[lane + 1]!);
  w[H] = w[H]! ^ w[T]!;
  w[H + 1] = w[H + 1]! ^ w[T + 1]!;
  mulInto(w, H, P1_HI, P1_LO);
  addInto(w, H, P4_HI, P4_LO);
}

/** The low 32 bits of XXH64(data[start, end), seed 0): what a zstd frame stores as its checksum. */
export function xxh64Low32(data: Uint8Array, start: number, end: number): number {
  return xxh64Words(data, start, end)[H + 1]!;
}

/** XXH64(data[start, end), seed 0) as a bigint (tests and tools; zstd needs only the low half). */
export function xxh64(data: Uint8Array, start: number, end: number): bigint {
  const w = xxh64Words(data, start, end);
  return (BigInt(w[H]!) << 32n) | BigInt(w[H + 1]!);
}

function xxh64Words(data: Uint8Array, start: number, end: number): Uint32Array {
  const w = new Uint32Array(12);
  const length = end - start;
  let p = start;
  if (length >= 32) {
    // Seed 0: v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1 (mod 2^64). The stripe loop is the hot
    // part: the lanes live in locals and each lane's step (what roundInto does) is written out.
    let v1Hi = 0x60ea27ee, v1Lo = 0xadc0b5d6, v2Hi = P2_HI, v2Lo = P2_LO;
    let v3Hi = 0, v3Lo = 0, v4Hi = 0x61c8864e, v4Lo = 0x7a143579;
    let inLo: number, inHi: number, sumLo: number, sumHi: number, rotHi: number, rotLo: number;
    const limit = end - 32;
    while (p <= limit) {
      // lane 1
      inLo = p32(data, p) >>> 0;
      inHi = p32(data, p + 4) >>> 0;
      sumLo = v1Lo + (Math.imul(inLo, P2_LO) >>> 0);
      sumHi = (v1Hi + mulHigh32(inLo, P2_LO) + Math.imul(inHi, P2_LO) + Math.imul(inLo, P2_HI) + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
      sumLo >>>= 0;
      rotHi = ((sumHi << 31) | (sumLo >>> 1)) >>> 0;
      rotLo = ((sumLo << 31) | (sumHi >>> 1)) >>> 0;
      v1Hi = (mulHigh32(rotLo, P1_LO) + Math.imul(rotHi, P1_LO) + Math.imul(rotLo, P1_HI)) >>> 0;
      v1Lo = Math.imul(rotLo, P1_LO) >>> 0;
      // lane 2
      inLo = p32(data, p + 8) >>> 0;
      inHi = p32(data, p + 12) >>> 0;
      sumLo = v2Lo + (Math.imul(inLo, P2_LO) >>> 0);
      sumHi = (v2Hi + mulHigh32(inLo, P2_LO) + Math.imul(inHi, P2_LO) + Math.imul(inLo, P2_HI) + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
      sumLo >>>= 0;
      rotHi = ((sumHi << 31) | (sumLo >>> 1)) >>> 0;
      rotLo = ((sumLo << 31) | (sumHi >>> 1)) >>> 0;
      v2Hi = (mulHigh32(rotLo, P1_LO) + Math.imul(rotHi, P1_LO) + Math.imul(rotLo, P1_HI)) >>> 0;
      v2Lo = Math.imul(rotLo, P1_LO) >>> 0;
      // lane 3
      inLo = p32(data, p + 16) >>> 0;
      inHi = p32(data, p + 20) >>> 0;
      sumLo = v3Lo + (Math.imul(inLo, P2_LO) >>> 0);
      sumHi = (v3Hi + mulHigh32(inLo, P2_LO) + Math.imul(inHi, P2_LO) + Math.imul(inLo, P2_HI) + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
      sumLo >>>= 0;
      rotHi = ((sumHi << 31) | (sumLo >>> 1)) >>> 0;
      rotLo = ((sumLo << 31) | (sumHi >>> 1)) >>> 0;
      v3Hi = (mulHigh32(rotLo, P1_LO) + Math.imul(rotHi, P1_LO) + Math.imul(rotLo, P1_HI)) >>> 0;
      v3Lo = Math.imul(rotLo, P1_LO) >>> 0;
      // lane 4
      inLo = p32(data, p + 24) >>> 0;
      inHi = p32(data, p + 28) >>> 0;
      sumLo = v4Lo + (Math.imul(inLo, P2_LO) >>> 0);
      sumHi = (v4Hi + mulHigh32(inLo, P2_LO) + Math.imul(inHi, P2_LO) + Math.imul(inLo, P2_HI) + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
      sumLo >>>= 0;
      rotHi = ((sumHi << 31) | (sumLo >>> 1)) >>> 0;
      rotLo = ((sumLo << 31) | (sumHi >>> 1)) >>> 0;
      v4Hi = (mulHigh32(rotLo, P1_LO) + Math.imul(rotHi, P1_LO) + Math.imul(rotLo, P1_HI)) >>> 0;
      v4Lo = Math.imul(rotLo, P1_LO) >>> 0;
      p += 32;
    }
    w[V1] = v1Hi; w[V1 + 1] = v1Lo; w[V2] = v2Hi; w[V2 + 1] = v2Lo;
    w[V3] = v3Hi; w[V3 + 1] = v3Lo; w[V4] = v4Hi; w[V4 + 1] = v4Lo;
    for (const [lane, r] of [[V1, 1], [V2, 7], [V3, 12], [V4, 18]] as const) {
      w[T] = w[lane]!;
      w[T + 1] = w[lane + 1]!;
      rotlInto(w, T, r);
      addInto(w, H, w[T]!, w[T + 1]!);
    }
    for (const lane of [V1, V2, V3, V4]) mergeLane(w, lane);
  } else {
    w[H] = P5_HI;
    w[H + 1] = P5_LO;
  }
  addInto(w, H, Math.floor(length / 0x100000000), length >>> 0);
  while (p + 8 <= end) {
    w[T] = 0;
    w[T + 1] = 0;
    roundInto(w, T, p32(data, p + 4) >>> 0, p32(data, p) >>> 0);
    w[H] = w[H]! ^ w[T]!;
    w[H + 1] = w[H + 1]! ^ w[T + 1]!;
    rotlInto(w, H, 27);
    mulInto(w, H, P1_HI, P1_LO);
    addInto(w, H, P4_HI, P4_LO);
    p += 8;
  }
  if (p + 4 <= end) {
    w[T] = 0;
    w[T + 1] = p32(data, p);
    mulInto(w, T, P1_HI, P1_LO);
    w[H] = w[H]! ^ w[T]!;
    w[H + 1] = w[H + 1]! ^ w[T + 1]!;
    rotlInto(w, H, 23);
    mulInto(w, H, P2_HI, P2_LO);
    addInto(w, H, P3_HI, P3_LO);
    p += 4;
  }
  while (p < end) {
    w[T] = 0;
    w[T + 1] = data[p]!;
    mulInto(w, T, P5_HI, P5_LO);
    w[H] = w[H]! ^ w[T]!;
    w[H + 1] = w[H + 1]! ^ w[T + 1]!;
    rotlInto(w, H, 11);
    mulInto(w, H, P1_HI, P1_LO);
    p++;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  w[H + 1] = w[H + 1]! ^ (w[H]! >>> 1);
  mulInto(w, H, P2_HI, P2_LO);
  w[H + 1] = w[H + 1]! ^ ((w[H + 1]! >>> 29) | (w[H]! << 3));
  w[H] = w[H]! ^ (w[H]! >>> 29);
  mulInto(w, H, P3_HI, P3_LO);
  w[H + 1] = w[H + 1]! ^ w[H]!;
  return w;
}
