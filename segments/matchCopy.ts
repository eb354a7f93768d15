// The LZ77 copy both LZ4 and zstd decoders execute: repeat `length` bytes that start `offset`
// bytes back in the output. The source may overlap the destination (offset < length), which
// repeats the last `offset` bytes as a pattern: typed-array copyWithin is a memmove, not that, so
// overlapping copies go byte by byte when short and in doubling chunks when long.

/** Below this a copy goes byte by byte (cheaper than a copyWithin call). */
export const SHORT_COPY_BYTES = 64;

/** Copies out[op - offset, ...) to out[op, op + length) with LZ77 semantics; returns op + length. */
export function copyMatch(out: Uint8Array, op: number, offset: number, length: number): number {
  let from = op - offset;
  const end = op + length;
  if (length < SHORT_COPY_BYTES) {
    while (op < end) out[op++] = out[from++]!;
    return end;
  }
  if (offset >= length) {
    out.copyWithin(op, from, from + length);
    return end;
  }
  // The output from `from` on is periodic: copy ever longer runs of it, each source range ending
  // where its destination starts.
  while (op < end) {
    const chunk = Math.min(op - from, end - op);
    out.copyWithin(op, from, from + chunk);
    op += chunk;
  }
  return end;
}
