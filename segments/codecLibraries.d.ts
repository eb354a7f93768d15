// Types for the pure-JavaScript compression libraries that ship none (compression.ts and
// lz4Frame.ts use them to encode; the tests also decode with them, as references).
declare module 'snappyjs' {
  function compress(input: Uint8Array): Uint8Array;
  function uncompress(input: Uint8Array, maxLength?: number): Uint8Array;
  const snappy: { compress: typeof compress; uncompress: typeof uncompress };
  export default snappy;
}

declare module 'lz4js' {
  function compress(input: Uint8Array, maxSize?: number): Uint8Array;
  function decompress(input: Uint8Array, maxSize?: number): Uint8Array;
  function decompressBound(input: Uint8Array): number;
  /** Compresses src[sIndex, sIndex + sLength) as one LZ4 block into dst from 0; returns its size (0: nothing matched). */
  function compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
  const lz4: { compress: typeof compress; decompress: typeof decompress; decompressBound: typeof decompressBound; compressBlock: typeof compressBlock };
  export default lz4;
}
