// The three ways decoding a compressed records area can fail. They live apart from
// compression.ts so the codec files (snappyBlock.ts, lz4Frame.ts, zstdFrame.ts) can throw them
// without importing the dispatcher that imports them; compression.ts re-exports all three.

/** A codec id we do not decode (5, 6, 7, ...): the batch is stored and served unchanged. */
export class UnsupportedCompressionError extends Error {
  override readonly name = 'UnsupportedCompressionError';
  constructor(readonly codec: string) {
    super(`records compressed with ${codec} cannot be decoded here (the batch is stored and served unchanged)`);
  }
}

/** A compressed area that does not decode: names the codec and what is wrong. */
export class CorruptCompressionError extends Error {
  override readonly name = 'CorruptCompressionError';
  constructor(readonly codec: string, reason: string) {
    super(`${codec} records area does not decode: ${reason}`);
  }
}

/**
 * A compressed area that would decode to more than the caller's limit (a "zip bomb", or simply
 * too big). Thrown before more than about `limit` bytes are allocated or produced. Deliberately
 * not a CorruptCompressionError: the bytes may be valid, the caller maps it to its own error.
 */
export class DecompressionLimitError extends Error {
  override readonly name = 'DecompressionLimitError';
  constructor(readonly codec: string, readonly limit: number, detail?: string) {
    super(`${codec} records area decompresses to more than ${limit} bytes${detail === undefined ? '' : `: ${detail}`}`);
  }
}
