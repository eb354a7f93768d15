// Types for the pure-JavaScript compression libraries that ship none (used by compression.ts).
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
  const lz4: { compress: typeof compress; decompress: typeof decompress; decompressBound: typeof decompressBound };
  export default lz4;
}
