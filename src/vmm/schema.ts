// The VM description: one schema for the three doors into a machine — the JSON file of
// `parley run --config`, the REST API on `--api-sock`, and the library's Machine.create. The
// command-line flags are parsed into the same objects. Field names follow Firecracker's API
// (src/firecracker/swagger/firecracker.yaml) wherever Parley has the same thing, so Firecracker's
// clients and habits carry over; Parley's own settings sit beside them with the same style.
//
// Every schema here is plain JSON in and plain JSON out (no transforms), so that the validated
// configuration can be stored inside snapshots as it is, and the OpenAPI document can be
// generated from the same definitions (scripts/openapi.ts).
import { z } from "zod";
import { coreLayout } from "../cpu/core-layout.ts";
import { MOUNT_TAG_PATTERN } from "../virtio/9p/spec.ts";

/** Harts a machine can have: the code-holder map has a bit per hart in a u32 (src/cpu/core-layout.ts). */
export const MAX_VCPUS = 32;
export const DEFAULT_MEM_SIZE_MIB = 512;
/** Longest interrupt-coalescing delay (src/virtio/transport/coalesce.ts checkCoalesce). */
export const MAX_COALESCE_DELAY_US = 10_000_000;
/** Virtio-blk serial numbers are 20 bytes (virtio spec 5.2.6, VIRTIO_BLK_T_GET_ID). */
const DEVICE_ID = /^[A-Za-z0-9_.-]{1,20}$/;

const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.number().int("must be a whole number").min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

// ---- rate limiters and coalescing (Firecracker's RateLimiter and TokenBucket) ----------------

/**
 * A token bucket: `size` tokens (bytes or operations), refilled completely every `refill_time`
 * milliseconds; `one_time_burst` extra tokens are spent first and never come back. A size or
 * refill_time of 0 disables the bucket (Firecracker's convention).
 */
export const TokenBucket = z
  .object({
    size: wholeNumber(0),
    one_time_burst: wholeNumber(0).optional(),
    refill_time: wholeNumber(0),
  })
  .strict();
export type TokenBucket = z.infer<typeof TokenBucket>;

export const RateLimiter = z
  .object({
    bandwidth: TokenBucket.optional(),
    ops: TokenBucket.optional(),
  })
  .strict();
export type RateLimiter = z.infer<typeof RateLimiter>;

/**
 * Interrupt coalescing of a device's virtio-mmio transport: one used-buffer interrupt per
 * `max_completions` completions, or `max_delay_us` after the first waiting one, whichever is
 * first. {1, 0} is off: an interrupt for every completion.
 */
export const Coalescing = z
  .object({
    max_completions: wholeNumber(1),
    max_delay_us: wholeNumber(0, MAX_COALESCE_DELAY_US),
  })
  .strict()
  .refine((c) => c.max_completions === 1 || c.max_delay_us > 0, {
    message: "more than one completion per interrupt needs a delay bound (max_delay_us > 0), or the last completions would wait forever",
    path: ["max_delay_us"],
  });
export type Coalescing = z.infer<typeof Coalescing>;

// ---- the parts of a VM description -------------------------------------------------------------

export const BootSource = z
  .object({
    kernel_image_path: z.string().min(1, "must name a file").optional(),
    initrd_path: z.string().min(1, "must name a file").optional(),
    boot_args: z.string().max(4096, "must be at most 4096 characters").optional(),
    /** "none": Parley is the SBI implementation; "opensbi": Debian's OpenSBI in emulated M-mode; or a fw_dynamic binary. */
    firmware: z.string().min(1, 'must be "none", "opensbi" or a file').default("none"),
  })
  .strict();
export type BootSource = z.infer<typeof BootSource>;

export const MachineConfig = z
  .object({
    vcpu_count: wholeNumber(1, MAX_VCPUS).default(1),
    mem_size_mib: wholeNumber(1, 4096).default(DEFAULT_MEM_SIZE_MIB),
    /** Host threads for the harts (1..vcpu_count); fewer threads than harts overcommit them. */
    host_threads: wholeNumber(1, MAX_VCPUS).optional(),
    /** Offer Zawrs (WRS.NTO/STO), so a hart waiting on a lock yields its host thread. */
    zawrs: z.boolean().default(true),
    /** Pause-loop exiting window in instructions; 0 is off. Default: the machine's (4096 with several harts). */
    pause_loop_window: wholeNumber(0, 1_000_000_000).optional(),
    /** SBI suspend idle states in the device tree. Default: on without firmware. */
    idle_states: z.boolean().optional(),
    /** Offer the Sstc extension (stimecmp). */
    sstc: z.boolean().default(true),
    /** The console: a 16550 UART (ttyS0) or virtio-console (hvc0). */
    console: z.enum(["uart", "hvc"], { message: 'must be "uart" or "hvc"' }).default("uart"),
    /** A virtio-input keyboard, through which the host sends Ctrl-Alt-Del (SendCtrlAltDel); false frees its virtio slot. */
    keyboard: z.boolean().default(true),
    /** The RISC-V to WebAssembly translator; default: $PARLEY_JIT, else on. */
    jit: z.enum(["on", "off", "eager"], { message: 'must be "on", "off" or "eager"' }).optional(),
  })
  .strict();
export type MachineConfig = z.infer<typeof MachineConfig>;
/** PATCH /machine-config: any of the fields. */
export const PartialMachineConfig = MachineConfig.partial();

export const Drive = z
  .object({
    drive_id: z.string().regex(DEVICE_ID, "must be 1-20 letters, digits, '.', '_' or '-' (virtio-blk IDs are 20 bytes)"),
    path_on_host: z.string().min(1, "must name a file"),
    is_read_only: z.boolean().default(false),
    /**
     * Boot from this disk (Firecracker's field): the kernel command line gets
     * root=/dev/disk/by-id/virtio-DRIVE_ID and rw (ro for a read-only drive), unless boot_args
     * already name a root.
     */
    is_root_device: z.boolean().default(false),
    /** The image's format; absent: probed from its first bytes (a probed raw image may not be made to look like qcow2). */
    format: z.enum(["raw", "qcow2"], { message: 'must be "raw" or "qcow2"' }).optional(),
    /** Writes go to a temporary overlay deleted when Parley exits; the image is never changed. */
    snapshot: z.boolean().optional(),
    rate_limiter: RateLimiter.optional(),
    coalescing: Coalescing.optional(),
  })
  .strict();
export type Drive = z.infer<typeof Drive>;

/** "52:54:00:12:34:56" -> bytes; a multicast (group bit) address is refused, as a NIC's own MAC must be unicast. */
export function parseMac(text: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(text)) throw new Error("must look like 52:54:00:12:34:56");
  const bytes = Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
  if (bytes[0] & 1) throw new Error("is a multicast address (the first byte's low bit is set); use a unicast one such as 52:54:00:...");
  return bytes;
}

const GuestMac = z.string().superRefine((text, ctx) => {
  try {
    parseMac(text);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
  }
});

/** Parley's network backend without privileges: a stream socket carrying length-prefixed frames. */
export const SocketBackend = z
  .object({
    socket_path: z.string().min(1, "must name a Unix socket path"),
    mode: z.enum(["listen", "connect"], { message: 'must be "listen" or "connect"' }),
  })
  .strict();

/** A TCP or UDP port on the host forwarded to the guest (QEMU's hostfwd). */
export const HostForward = z
  .object({
    protocol: z.enum(["tcp", "udp"], { message: 'must be "tcp" or "udp"' }),
    /** The host address to bind, e.g. 127.0.0.1; absent: every address of the host. */
    host_address: z
      .string()
      .refine((text) => z.ipv4().safeParse(text).success || z.ipv6().safeParse(text).success, "must be an IPv4 or IPv6 address such as 127.0.0.1")
      .optional(),
    host_port: wholeNumber(1, 65535),
    guest_port: wholeNumber(1, 65535),
  })
  .strict();
export type HostForward = z.infer<typeof HostForward>;

/**
 * Networking without privileges through passt (src/host/node/net-passt.ts): the guest gets DHCP,
 * DNS and outbound TCP and UDP through the host's own sockets, and host ports forwarded to it.
 */
export const UserBackend = z
  .object({
    host_forwards: z.array(HostForward).max(64, "at most 64 forwarded ports").default([]),
  })
  .strict()
  .superRefine((user, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, f] of user.host_forwards.entries()) {
      const key = `${f.protocol} ${f.host_address ?? "*"} ${f.host_port}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        ctx.addIssue({ code: "custom", path: ["host_forwards", i, "host_port"], message: `${f.protocol} port ${f.host_port} is already forwarded by host_forwards[${earlier}]` });
      } else seen.set(key, i);
    }
  });
export type UserBackend = z.infer<typeof UserBackend>;

export const NetworkInterface = z
  .object({
    iface_id: z.string().regex(DEVICE_ID, "must be 1-20 letters, digits, '.', '_' or '-'"),
    /** A TAP device (Firecracker's backend). */
    host_dev_name: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be an interface name of 1-15 characters").optional(),
    socket: SocketBackend.optional(),
    /** User-mode networking through passt: no root, no TAP. */
    user: UserBackend.optional(),
    guest_mac: GuestMac.optional(),
    rx_rate_limiter: RateLimiter.optional(),
    tx_rate_limiter: RateLimiter.optional(),
    coalescing: Coalescing.optional(),
  })
  .strict()
  .refine((n) => [n.host_dev_name, n.socket, n.user].filter((b) => b !== undefined).length === 1, {
    message: "needs exactly one backend: host_dev_name (a TAP device), socket {socket_path, mode} or user {host_forwards}",
  });
export type NetworkInterface = z.infer<typeof NetworkInterface>;

export const Vsock = z
  .object({
    // CIDs 0-2 are reserved (hypervisor, local, host); the guest needs 3 or more (virtio spec 5.10.4).
    guest_cid: wholeNumber(3, 0xffff_ffff),
    uds_path: z.string().min(1, "must name a Unix socket path"),
  })
  .strict();
export type Vsock = z.infer<typeof Vsock>;

/** A virtio-9p mount tag: what the guest names in `mount -t 9p TAG` (the device's own rule). */
export const MountTag = z.string().regex(MOUNT_TAG_PATTERN, "must be 1-31 letters, digits, '_', '.' or '-'");

/** A host folder shared with the guest over virtio-9p (`mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR`). */
export const Share = z
  .object({
    path_on_host: z.string().min(1, "must name a directory"),
    /** The mount tag the guest names (virtio_9p_config.tag). */
    mount_tag: MountTag,
    is_read_only: z.boolean().default(false),
  })
  .strict();
export type Share = z.infer<typeof Share>;

export const Balloon = z
  .object({
    /** Target: how much memory the balloon should take from the guest. */
    amount_mib: wholeNumber(0, 4096),
    /** Accepted for Firecracker's clients; Parley's balloon always offers VIRTIO_BALLOON_F_DEFLATE_ON_OOM. */
    deflate_on_oom: z.boolean().default(true),
    /** How often the guest is asked for fresh statistics; 0 disables the statistics timer. */
    stats_polling_interval_s: wholeNumber(0, 86_400).default(0),
    /** Accepted for Firecracker's clients; Parley's balloon always offers free page reporting. */
    free_page_reporting: z.boolean().optional(),
  })
  .strict();
export type Balloon = z.infer<typeof Balloon>;

/** virtio-rng's limiter is a byte rate: operations are not limited. */
export const Entropy = z
  .object({
    rate_limiter: z.object({ bandwidth: TokenBucket.optional() }).strict().optional(),
  })
  .strict();
export type Entropy = z.infer<typeof Entropy>;

export const Metrics = z
  .object({
    /** Serve the ledger in Prometheus text format on 127.0.0.1:port/metrics. */
    port: wholeNumber(1, 65535).optional(),
  })
  .strict();
export type Metrics = z.infer<typeof Metrics>;

// ---- the whole description ---------------------------------------------------------------------

function duplicates(ids: readonly string[]): number[] {
  return ids.flatMap((id, i) => (ids.indexOf(id) < i ? [i] : []));
}

export const VmConfig = z
  .object({
    "boot-source": BootSource.default({ firmware: "none" }),
    "machine-config": MachineConfig.default({ vcpu_count: 1, mem_size_mib: DEFAULT_MEM_SIZE_MIB, zawrs: true, sstc: true, console: "uart", keyboard: true }),
    drives: z.array(Drive).max(16, "at most 16 drives").default([]),
    "network-interfaces": z.array(NetworkInterface).max(8, "at most 8 network interfaces").default([]),
    vsock: Vsock.optional(),
    shares: z.array(Share).max(8, "at most 8 shares").optional(),
    balloon: Balloon.optional(),
    entropy: Entropy.optional(),
    metrics: Metrics.optional(),
  })
  .strict()
  .superRefine((vm, ctx) => {
    for (const i of duplicates(vm.drives.map((d) => d.drive_id))) {
      ctx.addIssue({ code: "custom", path: ["drives", i, "drive_id"], message: `"${vm.drives[i].drive_id}" is used by an earlier drive` });
    }
    const roots = vm.drives.flatMap((d, i) => (d.is_root_device ? [i] : []));
    for (const i of roots.slice(1)) {
      ctx.addIssue({ code: "custom", path: ["drives", i, "is_root_device"], message: `only one drive can be the root device; drives[${roots[0]}] already is` });
    }
    const nets = vm["network-interfaces"];
    for (const i of duplicates(nets.map((n) => n.iface_id))) {
      ctx.addIssue({ code: "custom", path: ["network-interfaces", i, "iface_id"], message: `"${nets[i].iface_id}" is used by an earlier interface` });
    }
    // passt hands every guest interface the host's own address and routes; two such interfaces
    // would give the guest one address twice. More forwarded ports go into the one interface.
    const users = nets.flatMap((n, i) => (n.user ? [i] : []));
    for (const i of users.slice(1)) {
      ctx.addIssue({ code: "custom", path: ["network-interfaces", i, "user"], message: `only one interface may use the user backend (network-interfaces[${users[0]}] does); add more host_forwards to that one instead` });
    }
    const shares = vm.shares ?? [];
    for (const i of duplicates(shares.map((s) => s.mount_tag))) {
      ctx.addIssue({ code: "custom", path: ["shares", i, "mount_tag"], message: `"${shares[i].mount_tag}" is used by an earlier share` });
    }
    const machine = vm["machine-config"];
    if (machine.host_threads !== undefined && machine.host_threads > machine.vcpu_count) {
      ctx.addIssue({ code: "custom", path: ["machine-config", "host_threads"], message: `must be at most vcpu_count (${machine.vcpu_count})` });
    }
    // Every hart has a region of its own beside guest RAM in one wasm32 memory.
    if (machine.vcpu_count > 1) {
      try {
        coreLayout({ harts: machine.vcpu_count, ramSize: machine.mem_size_mib * 2 ** 20 });
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        ctx.addIssue({ code: "custom", path: ["machine-config", "mem_size_mib"], message: `${machine.mem_size_mib} MiB with ${machine.vcpu_count} harts: ${err.message}` });
      }
    }
    if (vm.balloon && vm.balloon.amount_mib > machine.mem_size_mib) {
      ctx.addIssue({ code: "custom", path: ["balloon", "amount_mib"], message: `must be at most mem_size_mib (${machine.mem_size_mib})` });
    }
  });
/** A validated VM description, with every default filled in: JSON-safe, stored in snapshots as it is. */
export type VmConfig = z.infer<typeof VmConfig>;
/** What a user may write: the defaults are optional. */
export type VmConfigInput = z.input<typeof VmConfig>;

// ---- API request bodies that are not parts of the description ----------------------------------

export const InstanceActionInfo = z
  .object({ action_type: z.enum(["InstanceStart", "SendCtrlAltDel", "FlushMetrics"], { message: 'must be "InstanceStart", "SendCtrlAltDel" or "FlushMetrics"' }) })
  .strict();

export const VmState = z.object({ state: z.enum(["Paused", "Resumed"], { message: 'must be "Paused" or "Resumed"' }) }).strict();

export const SnapshotCreateParams = z
  .object({
    snapshot_path: z.string().min(1, "must name a file"),
    mem_file_path: z.string().min(1, "must name a file"),
    snapshot_type: z.enum(["Full"], { message: 'must be "Full" (Parley has no diff snapshots)' }).default("Full"),
  })
  .strict();
export type SnapshotCreateParams = z.infer<typeof SnapshotCreateParams>;

export const SnapshotLoadParams = z
  .object({
    snapshot_path: z.string().min(1, "must name a file"),
    mem_file_path: z.string().min(1, "must name a file"),
    resume_vm: z.boolean().default(false),
  })
  .strict();
export type SnapshotLoadParams = z.infer<typeof SnapshotLoadParams>;

export const MigrateParams = z
  .object({
    /** Where the receiving Parley listens: a Unix socket path, or tcp:HOST:PORT. */
    destination: z.string().min(1, "must name the receiving end (a Unix socket path or tcp:HOST:PORT)"),
  })
  .strict();
export type MigrateParams = z.infer<typeof MigrateParams>;

/** PUT /snapshot/create's answer: what was written and how long it took. */
export const SnapshotCreateReport = z.object({
  snapshot_path: z.string(),
  mem_file_path: z.string(),
  state_bytes: z.number().int().nonnegative(),
  memory_bytes: z.number().int().nonnegative(),
  pages_written: z.number().int().nonnegative(),
  pages_skipped: z.number().int().nonnegative(),
  state_ms: z.number().nonnegative(),
  memory_ms: z.number().nonnegative(),
});
export type SnapshotCreateReport = z.infer<typeof SnapshotCreateReport>;

/** PUT /migrate's answer: the guest runs at the destination. Times in ms. */
export const MigrationReportBody = z.object({
  total_ms: z.number().nonnegative(),
  downtime_ms: z.number().nonnegative(),
  rounds: z.number().int().nonnegative(),
  bytes_sent: z.number().int().nonnegative(),
  pages_sent: z.number().int().nonnegative(),
  final_pages: z.number().int().nonnegative(),
  destination_restore_ms: z.number().nonnegative().nullable(),
});
export type MigrationReportBody = z.infer<typeof MigrationReportBody>;

export const BalloonUpdate = z.object({ amount_mib: wholeNumber(0, 4096) }).strict();
export const BalloonStatsUpdate = z.object({ stats_polling_interval_s: wholeNumber(0, 86_400) }).strict();

export const PartialDrive = z
  .object({
    drive_id: z.string().regex(DEVICE_ID, "must be 1-20 letters, digits, '.', '_' or '-'"),
    rate_limiter: RateLimiter.optional(),
    coalescing: Coalescing.optional(),
  })
  .strict();
export type PartialDrive = z.infer<typeof PartialDrive>;

export const PartialNetworkInterface = z
  .object({
    iface_id: z.string().regex(DEVICE_ID, "must be 1-20 letters, digits, '.', '_' or '-'"),
    rx_rate_limiter: RateLimiter.optional(),
    tx_rate_limiter: RateLimiter.optional(),
    coalescing: Coalescing.optional(),
    /** Parley's: take the link down (the guest sees carrier loss) or up again. */
    link_up: z.boolean().optional(),
  })
  .strict();
export type PartialNetworkInterface = z.infer<typeof PartialNetworkInterface>;

// ---- responses -----------------------------------------------------------------------------------

export const InstanceState = z.enum(["Not started", "Running", "Paused", "Stopped"]);
export type InstanceState = z.infer<typeof InstanceState>;

export const InstanceInfo = z
  .object({
    id: z.string(),
    state: InstanceState,
    vmm_version: z.string(),
    app_name: z.string(),
  })
  .strict();
export type InstanceInfo = z.infer<typeof InstanceInfo>;

export const BalloonStats = z
  .object({
    target_pages: wholeNumber(0),
    actual_pages: wholeNumber(0),
    target_mib: wholeNumber(0),
    actual_mib: wholeNumber(0),
    swap_in: wholeNumber(0).optional(),
    swap_out: wholeNumber(0).optional(),
    major_faults: wholeNumber(0).optional(),
    minor_faults: wholeNumber(0).optional(),
    free_memory: wholeNumber(0).optional(),
    total_memory: wholeNumber(0).optional(),
    available_memory: wholeNumber(0).optional(),
    disk_caches: wholeNumber(0).optional(),
    hugetlb_allocations: wholeNumber(0).optional(),
    hugetlb_failures: wholeNumber(0).optional(),
  })
  .strict();
export type BalloonStats = z.infer<typeof BalloonStats>;

export const ApiError = z.object({ fault_message: z.string() }).strict();

// ---- errors that name the field ------------------------------------------------------------------

/** ["drives", 0, "path_on_host"] -> "drives[0].path_on_host". */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += (out ? "." : "") + String(key);
  }
  return out;
}

/**
 * One line for zod's first complaint, naming the field by its JSON path: "drives[0].is_read_only:
 * must be a boolean, not string".
 */
export function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = (extra: PropertyKey[] = []) => {
    const path = formatPath([...issue.path, ...extra]);
    return path ? `${path}: ` : "";
  };
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.length === 1 ? `${where([issue.keys[0]])}unknown field` : `${where()}unknown fields ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    default:
      return `${where()}${issue.message}`;
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** Our wording for zod's type complaints, which know whether the field was missing. */
const typeMessages: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== "invalid_type") return undefined;
  if (issue.input === undefined) return "is required";
  const got = issue.input === null ? "null" : Array.isArray(issue.input) ? "an array" : typeof issue.input;
  return `must be ${article(issue.expected)}, not ${got}`;
};

/** A user's input refused: the message names the field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A request the machine refuses in its present state or configuration (no balloon, not running, ...). */
export class RequestError extends Error {
  override name = "RequestError";
}

/** schema.safeParse with our wording for type errors (see describeZodError). */
export function safeParseWith<S extends z.ZodType>(schema: S, input: unknown): z.ZodSafeParseResult<z.infer<S>> {
  return schema.safeParse(input, { error: typeMessages }) as z.ZodSafeParseResult<z.infer<S>>;
}

/** Validates `input` against `schema`, or throws a ConfigError naming the field. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, prefix = ""): z.infer<S> {
  const result = safeParseWith(schema, input);
  if (result.success) return result.data;
  const message = describeZodError(result.error);
  throw new ConfigError(prefix ? `${prefix}: ${message}` : message);
}

export function parseVmConfig(input: unknown): VmConfig {
  return parseWith(VmConfig, input);
}
