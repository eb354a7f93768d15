// The Kafka wire codec: primitives, framing, headers, the advertised API table, error codes and
// the generated message codecs. Knows nothing of sockets, topics or storage.

export * from './wire.js';
export * from './frame.js';
export * from './headers.js';
export * from './apis.js';
export * from './errors.js';
export * from './generated/index.js';
