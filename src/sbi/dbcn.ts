// Debug Console extension (EID 0x4442434E "DBCN"), SBI spec v2.0 chapter 12.
import { sharedMemoryInRam } from "./params.ts";
import {
  SBI_ERR_FAILED,
  SBI_ERR_INVALID_PARAM,
  sbiFail,
  sbiOk,
  type SbiCall,
  type SbiExtension,
  type SbiFunction,
  type SbiHost,
  type SbiResult,
} from "./types.ts";

export const SBI_EXT_DBCN = 0x4442_434e;
export const SBI_EXT_DBCN_CONSOLE_WRITE = 0;
export const SBI_EXT_DBCN_CONSOLE_READ = 1;
export const SBI_EXT_DBCN_CONSOLE_WRITE_BYTE = 2;

/**
 * Most bytes moved by one console_write/console_read. num_bytes is guest-chosen (up to 2^64-1),
 * and the host must not allocate or copy that much on the guest's behalf. Both calls are
 * "non-blocking" and may do "partial/no writes" (§12.1) / return fewer bytes than asked
 * (§12.2), reporting the count in sbiret.value, so capping is conforming. One page matches
 * what Linux asks for anyway: sbi_debug_console_write() never crosses a page boundary, and
 * its callers (earlycon, hvc_riscv_sbi) loop on short writes.
 */
export const DBCN_MAX_CHUNK = 4096;

/**
 * Validates (num_bytes, base_addr_lo, base_addr_hi) per §3.2: the whole range the guest named
 * must be accessible RAM, even though at most DBCN_MAX_CHUNK bytes of it are used. §12.1/12.2
 * list SBI_ERR_INVALID_PARAM for a range that fails the §3.2 requirements. Returns the byte
 * count to move now, or undefined when the range is invalid.
 */
function chunk(call: SbiCall, host: SbiHost): number | undefined {
  const [numBytes, lo, hi] = call.args;
  if (!sharedMemoryInRam(host.ramRegions, numBytes, lo, hi)) return undefined;
  return Number(numBytes < BigInt(DBCN_MAX_CHUNK) ? numBytes : BigInt(DBCN_MAX_CHUNK));
}

/** §12.1 sbi_debug_console_write(num_bytes, base_addr_lo, base_addr_hi): bytes written in value. */
function consoleWrite(call: SbiCall, host: SbiHost): SbiResult {
  const length = chunk(call, host);
  if (length === undefined) return sbiFail(SBI_ERR_INVALID_PARAM);
  if (length === 0) return sbiOk(0n);
  const bytes = host.readGuest(call.args[1], length);
  if (bytes === undefined) return sbiFail(SBI_ERR_FAILED);
  const written = host.consoleWrite(bytes);
  return sbiOk(BigInt(Math.max(0, Math.min(written, bytes.length))));
}

/** §12.2 sbi_debug_console_read(num_bytes, base_addr_lo, base_addr_hi): bytes read in value, 0 if none. */
function consoleRead(call: SbiCall, host: SbiHost): SbiResult {
  const length = chunk(call, host);
  if (length === undefined) return sbiFail(SBI_ERR_INVALID_PARAM);
  if (length === 0) return sbiOk(0n);
  const input = host.consoleRead(length);
  const bytes = input.length > length ? input.subarray(0, length) : input;
  if (bytes.length > 0 && !host.writeGuest(call.args[1], bytes)) return sbiFail(SBI_ERR_FAILED);
  return sbiOk(BigInt(bytes.length));
}

/**
 * §12.3 sbi_debug_console_write_byte(uint8_t byte): blocking, value 0. Only the low 8 bits of a0
 * are the byte (§3: narrower data uses only its own bits). A console that refuses the byte is
 * the spec's "I/O error", SBI_ERR_FAILED.
 */
function consoleWriteByte(call: SbiCall, host: SbiHost): SbiResult {
  const byte = Number(call.args[0] & 0xffn);
  return host.consoleWrite(Uint8Array.of(byte)) >= 1 ? sbiOk(0n) : sbiFail(SBI_ERR_FAILED);
}

const functions = new Map<number, SbiFunction>([
  [SBI_EXT_DBCN_CONSOLE_WRITE, { name: "console_write", handler: consoleWrite }],
  [SBI_EXT_DBCN_CONSOLE_READ, { name: "console_read", handler: consoleRead }],
  [SBI_EXT_DBCN_CONSOLE_WRITE_BYTE, { name: "console_write_byte", handler: consoleWriteByte }],
]);

export const dbcnExtension: SbiExtension = { eid: SBI_EXT_DBCN, name: "DBCN", functions };
