// Base extension (EID 0x10), SBI spec v2.0 chapter 4: version, implementation identity,
// extension probing and the machine id CSRs. Every function "must always succeed" (no errors
// are defined), so only an unknown FID fails, in the dispatcher.
import { decodeSbiId } from "./params.ts";
import { sbiOk, type SbiExtension, type SbiFunction } from "./types.ts";

export const SBI_EXT_BASE = 0x10;

export const SBI_EXT_BASE_GET_SPEC_VERSION = 0;
export const SBI_EXT_BASE_GET_IMP_ID = 1;
export const SBI_EXT_BASE_GET_IMP_VERSION = 2;
export const SBI_EXT_BASE_PROBE_EXT = 3;
export const SBI_EXT_BASE_GET_MVENDORID = 4;
export const SBI_EXT_BASE_GET_MARCHID = 5;
export const SBI_EXT_BASE_GET_MIMPID = 6;

/**
 * §4.1: minor version in bits 0..23, major in bits 24..30, bit 31 and above zero. Parley
 * implements v2.0. Linux compares it against 0.1 (to choose legacy vs v0.2+ calls: with 2.0 it
 * probes TIME/sPI/RFNC and uses them) and against 0.3 (needed before it uses SRST and HSM suspend).
 */
export const SBI_SPEC_VERSION_MAJOR = 2n;
export const SBI_SPEC_VERSION_MINOR = 0n;
export const SBI_SPEC_VERSION = (SBI_SPEC_VERSION_MAJOR << 24n) | SBI_SPEC_VERSION_MINOR;

/**
 * §4.2 and the table "SBI Implementation IDs": ids 0..11 are assigned (BBL, OpenSBI, Xvisor,
 * KVM, RustSBI, Diosix, Coffer, Xen, PolarFire HSS, coreboot, oreboot, bhyve). Parley is not
 * (yet) in that registry, so it uses ASCII "PARL" -- far above the small sequential numbers
 * the registry hands out, so it cannot be mistaken for another implementation. Linux only
 * prints it ("SBI implementation ID=0x5041524c Version=0x1"); mainline keys no behaviour off it
 * (out-of-tree paravirt-spinlock patches test for KVM's id 3, which Parley deliberately is not:
 * it offers none of KVM's vendor extensions).
 */
export const PARLEY_SBI_IMPL_ID = 0x5041_524cn;

/** §4.3 leaves the encoding to the implementation; Parley uses major << 16 | minor (like OpenSBI): 0.1. */
export const PARLEY_SBI_IMPL_VERSION = (0n << 16n) | 1n;

const functions = new Map<number, SbiFunction>([
  [SBI_EXT_BASE_GET_SPEC_VERSION, { name: "get_spec_version", handler: () => sbiOk(SBI_SPEC_VERSION) }],
  [SBI_EXT_BASE_GET_IMP_ID, { name: "get_impl_id", handler: () => sbiOk(PARLEY_SBI_IMPL_ID) }],
  [SBI_EXT_BASE_GET_IMP_VERSION, { name: "get_impl_version", handler: () => sbiOk(PARLEY_SBI_IMPL_VERSION) }],
  [
    SBI_EXT_BASE_PROBE_EXT,
    {
      name: "probe_extension",
      // §4.4: 0 when the EID is not available, else 1 or another extension-defined non-zero
      // value. Linux treats any value > 0 as present (sbi_probe_extension() > 0 in sbi_init).
      handler: (call, host, registry) => {
        const extension = registry.findExtension(decodeSbiId(call.args[0]));
        return sbiOk(extension === undefined ? 0n : (extension.probe?.(host) ?? 1n));
      },
    },
  ],
  // §4.5-4.7: any value legal for the CSR; 0 always is. Linux uses these to pick vendor errata
  // (SiFive, T-Head, Andes alternatives) and shows them in /proc/cpuinfo, so the host should
  // report 0 unless it really models a vendor's core.
  [SBI_EXT_BASE_GET_MVENDORID, { name: "get_mvendorid", handler: (_call, host) => sbiOk(host.mvendorid) }],
  [SBI_EXT_BASE_GET_MARCHID, { name: "get_marchid", handler: (_call, host) => sbiOk(host.marchid) }],
  [SBI_EXT_BASE_GET_MIMPID, { name: "get_mimpid", handler: (_call, host) => sbiOk(host.mimpid) }],
]);

export const baseExtension: SbiExtension = { eid: SBI_EXT_BASE, name: "BASE", functions };
