// CRC-32C (Castagnoli), the checksum Kafka's record batch v2 carries over bytes 21..end.
//
// The native implementation (@node-rs/crc32, a prebuilt binary shipped through npm) measured
// 5.3 GB/s on 16 KiB buffers on this machine kind against 0.79 GB/s for the pure-JS crc-32 package.
// Every append and every read checks a CRC, so the fast path matters; the JS package stays as the
// fallback for platforms without a prebuilt binary.
import { createRequire } from 'node:module';
import CRC32C from 'crc-32/crc32c.js';

type Crc32cFunction = (data: Uint8Array) => number;

function jsCrc32c(data: Uint8Array): number {
  return CRC32C.buf(data) >>> 0;
}

function loadNative(): Crc32cFunction | null {
  try {
    const require = createRequire(import.meta.url);
    const native = require('@node-rs/crc32') as { crc32c: (input: Buffer, initial?: number) => number };
    return (data: Uint8Array): number =>
      native.crc32c(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)) >>> 0;
  } catch {
    return null;
  }
}

const nativeCrc32c = loadNative();

/** Which implementation is in use, for benchmarks and diagnostics. */
export const crc32cImplementation: 'native' | 'js' = nativeCrc32c === null ? 'js' : 'native';

/** CRC-32C of `data`, as an unsigned 32-bit number. */
export const crc32c: Crc32cFunction = nativeCrc32c ?? jsCrc32c;

/** The pure-JS implementation, exported so tests can prove both agree. */
export const crc32cPortable: Crc32cFunction = jsCrc32c;
