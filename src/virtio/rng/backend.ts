// What the entropy device needs from its host besides time (an injected HostClock,
// src/platform/clock.ts): randomness. Injected so the device model runs the same in Node, in a
// browser and in tests.

/** Fills `bytes` with random bytes (at most 65536 per call, the Web Crypto limit). */
export type EntropySource = (bytes: Uint8Array) => void;

/** Web Crypto as every JavaScript host offers it (Node 20, browsers, workers). */
interface WebCrypto {
  crypto: { getRandomValues(bytes: Uint8Array): Uint8Array };
}

/** Web Crypto's getRandomValues (globalThis.crypto). */
export const defaultEntropySource: EntropySource = (bytes) => {
  (globalThis as unknown as WebCrypto).crypto.getRandomValues(bytes);
};

// The token bucket that limits the device is the common one of src/virtio/rate-limiter.ts.
export { TokenBucket } from "../rate-limiter.ts";
