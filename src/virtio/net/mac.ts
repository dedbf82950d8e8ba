// Ethernet (IEEE 802) MAC addresses for the network device's config-space `mac` (virtio spec v1.3
// 5.1.4); the command line's parseMac is in src/cli/device-options.ts. Pure functions; randomMac
// takes its random source from the Web Crypto API, which both Node and browsers provide, or from
// the caller.
import { defaultEntropySource, type EntropySource } from "../rng/backend.ts";

/** "52:54:00:12:34:56". */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Why a MAC cannot be a NIC's own address, or undefined when it can. */
export function macProblem(mac: Uint8Array): string | undefined {
  if (!(mac instanceof Uint8Array) || mac.length !== 6) return "a MAC address has 6 bytes";
  if (mac[0] & 1) return `${formatMac(mac)} is a multicast address (the low bit of the first byte is set)`;
  if (mac.every((b) => b === 0)) return "00:00:00:00:00:00 is not a valid MAC address";
  return undefined;
}

/**
 * A random unicast MAC with the prefix QEMU uses for its NICs, 52:54:00 (locally administered,
 * bit 1 of the first byte), so that two Parley machines on one link do not collide.
 */
export function randomMac(fill: EntropySource = defaultEntropySource): Uint8Array {
  const tail = new Uint8Array(3);
  fill(tail);
  return Uint8Array.from([0x52, 0x54, 0x00, tail[0], tail[1], tail[2]]);
}
