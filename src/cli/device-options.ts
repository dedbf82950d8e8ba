// Parsing of the device options `--disk`, `--net`, `--rng`, `--balloon`, `--vsock` and `--share`, written
// as comma-separated key=value lists in the style of QEMU and cloud-hypervisor:
//   --disk path=disk.img,readonly=on,id=data
//   --disk path=vm1.qcow2,format=qcow2       --disk path=debian.img,snapshot=on
//   --net socket=listen:/tmp/net0.sock,mac=52:54:00:12:34:56
//   --net user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53   (hostfwd repeats)
//   --rng rate=1048576          --vsock cid=3,uds=/tmp/vsock.sock
//   --share path=/srv/data,tag=data,readonly=on
//   --disk path=disk.img,coalesce=16/200us   (interrupt coalescing, also on --net)
// Each flag becomes the same object a VM description (`--config`) or the API holds
// (src/vmm/schema.ts), so all three end in one validated VmConfig. These functions check the
// flag's own syntax; the schema checks the result.
import { z } from "zod";
import { UsageError } from "./options.ts";
import { Coalescing, MountTag, describeZodError, HostForward, safeParseWith, parseMac, UserBackend, type Balloon, type Drive, type Entropy, type NetworkInterface, type Share, type Vsock } from "../vmm/schema.ts";

/** Splits on single commas; ",," stands for a literal comma inside a value (as in QEMU). */
function splitItems(text: string): string[] {
  const items: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ",") current += text[i];
    else if (text[i + 1] === ",") {
      current += ",";
      i++;
    } else {
      items.push(current);
      current = "";
    }
  }
  items.push(current);
  return items;
}

/**
 * Splits "a=1,b=2" into pairs; a bare word (e.g. "on") becomes { "": word }. A key may be given
 * once, except those named in `repeatable`, whose values are collected in order into `repeated`.
 */
export function parseKeyValues(text: string, option: string): Record<string, string>;
export function parseKeyValues<K extends string>(text: string, option: string, repeatable: readonly K[]): { values: Record<string, string>; repeated: Record<K, string[]> };
export function parseKeyValues(text: string, option: string, repeatable?: readonly string[]): Record<string, string> | { values: Record<string, string>; repeated: Record<string, string[]> } {
  const out: Record<string, string> = {};
  const repeated: Record<string, string[]> = Object.fromEntries((repeatable ?? []).map((k) => [k, []]));
  if (text.trim() !== "") {
    for (const part of splitItems(text)) {
      const eq = part.indexOf("=");
      const key = eq < 0 ? "" : part.slice(0, eq).trim();
      const value = eq < 0 ? part.trim() : part.slice(eq + 1).trim();
      if (eq >= 0 && key === "") throw new UsageError(`${option}: "${part}" has no key before "="`);
      if (Object.hasOwn(repeated, key)) {
        repeated[key].push(value);
        continue;
      }
      if (key in out) throw new UsageError(`${option}: "${key || value}" is given twice in "${text}"`);
      out[key] = value;
    }
  }
  return repeatable ? { values: out, repeated } : out;
}

const onOff = z.enum(["on", "off"], { message: "must be on or off" }).transform((v) => v === "on");

/** Turns zod's complaint into one line naming the option and the key. */
function check<T>(schema: z.ZodType<T>, value: unknown, option: string, text: string): T {
  const result = safeParseWith(schema, value);
  if (result.success) return result.data;
  throw new UsageError(`${option} ${text}: ${describeZodError(result.error)}`);
}

/**
 * Interrupt coalescing, `coalesce=N/T`: one used-buffer interrupt per N completions, or T after
 * the first waiting completion, whichever comes first. T takes a unit, us or ms (16/200us,
 * 64/1ms); `off` (the default) is 1/0us, an interrupt for every completion.
 */
export function parseCoalesce(text: string): Coalescing {
  if (text === "off") return { max_completions: 1, max_delay_us: 0 };
  const m = /^(\d+)\/(\d+)(us|ms)$/.exec(text);
  if (!m) throw new Error("must be N/Tus or N/Tms (at most N completions or T per interrupt), e.g. 16/200us, or off");
  // The ranges are the schema's; its messages in the flag's own terms (N completions, T the delay).
  const result = safeParseWith(Coalescing, { max_completions: Number(m[1]), max_delay_us: Number(m[2]) * (m[3] === "ms" ? 1000 : 1) });
  if (result.success) return result.data;
  throw new Error(
    describeZodError(result.error)
      .replace(/^max_completions: /, "N ")
      .replace(/^max_delay_us: must be at most (\d+)$/, "T must be at most $1us")
      .replace(/^max_delay_us: /, "T: "),
  );
}

const coalesceSchema = z.string().transform((text, ctx) => {
  try {
    return parseCoalesce(text);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

const diskSchema = z
  .object({
    path: z.string({ message: "is required (path=FILE)" }).min(1, "must name a file"),
    readonly: onOff.optional(),
    root: onOff.optional(),
    id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,20}$/, "must be 1-20 letters, digits, '.', '_' or '-' (virtio-blk IDs are 20 bytes)")
      .optional(),
    coalesce: coalesceSchema.optional(),
    format: z.enum(["raw", "qcow2"], { message: "must be raw or qcow2" }).optional(),
    snapshot: onOff.optional(),
  })
  .strict();

/** `--disk` number `index` (from 0) as a drive of the VM description; its ID defaults to diskINDEX. */
export function parseDiskOption(text: string, index: number): Drive {
  const v = check(diskSchema, parseKeyValues(text, "--disk"), "--disk", text);
  return {
    drive_id: v.id ?? `disk${index}`,
    path_on_host: v.path,
    is_read_only: v.readonly ?? false,
    is_root_device: v.root ?? false,
    ...(v.format ? { format: v.format } : {}),
    ...(v.snapshot !== undefined ? { snapshot: v.snapshot } : {}),
    ...(v.coalesce ? { coalescing: v.coalesce } : {}),
  };
}

const macSchema = z.string().superRefine((text, ctx) => {
  try {
    parseMac(text);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
  }
});

const HOSTFWD_SYNTAX = "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, e.g. tcp:127.0.0.1:2222-:22";

/**
 * One `hostfwd=` of `--net user`, in QEMU's syntax `[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`
 * (the protocol defaults to tcp, an empty host address means every address of the host; an IPv6
 * host address goes in brackets). The guest address must stay empty: passt forwards to the
 * guest's one address, whichever it uses.
 */
export function parseHostForward(text: string): HostForward {
  const m = /^([^:]*):(\[[^\]]*\]|[^:[\]-]*):([^-:]*)-(\[[^\]]*\]|[^:[\]-]*):([^:]*)$/.exec(text);
  if (!m) throw new Error(`"${text}" must be ${HOSTFWD_SYNTAX}`);
  const [, protocolText, hostText, hostPortText, guestText, guestPortText] = m;
  const protocol = protocolText === "" ? "tcp" : protocolText;
  if (protocol !== "tcp" && protocol !== "udp") throw new Error(`"${text}": the protocol must be tcp or udp, not "${protocol}"`);
  const port = (what: string, value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new Error(`"${text}": the ${what} port must be a number from 1 to 65535, not "${value}"`);
    return Number(value);
  };
  const forward: HostForward = { protocol, host_port: port("host", hostPortText), guest_port: port("guest", guestPortText) };
  if (guestText !== "") {
    throw new Error(`"${text}": the guest address cannot be chosen (passt forwards to the address the guest has); leave it out: ...-:${guestPortText}`);
  }
  const host = hostText.startsWith("[") ? hostText.slice(1, -1) : hostText;
  if (host !== "") {
    const checked = safeParseWith(HostForward, { ...forward, host_address: host });
    if (!checked.success) throw new Error(`"${text}": the host address ${describeZodError(checked.error).replace(/^host_address: /, "")}`);
    forward.host_address = host;
  }
  return forward;
}

const netSchema = z
  .object({
    /** The bare word `user`. */
    "": z.literal("user", { message: 'unknown word; the user backend is written "user"' }).optional(),
    tap: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be an interface name of 1-15 characters").optional(),
    socket: z
      .string()
      .regex(/^(listen|connect):.+$/, "must be listen:PATH or connect:PATH")
      .optional(),
    mac: macSchema.optional(),
    id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,20}$/, "must be 1-20 letters, digits, '.', '_' or '-'")
      .optional(),
    coalesce: coalesceSchema.optional(),
  })
  .strict()
  .refine((v) => [v[""], v.tap, v.socket].filter((b) => b !== undefined).length === 1, {
    message: "needs exactly one backend: user, tap=NAME or socket=listen:PATH|connect:PATH",
  });

/** `--net` number `index` (from 0) as a network interface of the VM description; its ID defaults to netINDEX. */
export function parseNetOption(text: string, index: number): NetworkInterface {
  const { values, repeated } = parseKeyValues(text, "--net", ["hostfwd"]);
  const v = check(netSchema, values, "--net", text);
  const common = { iface_id: v.id ?? `net${index}`, ...(v.mac ? { guest_mac: v.mac.toLowerCase() } : {}), ...(v.coalesce ? { coalescing: v.coalesce } : {}) };
  if (v[""] === undefined && repeated.hostfwd.length > 0) throw new UsageError(`--net ${text}: hostfwd= belongs to the user backend (--net user,hostfwd=...)`);
  if (v[""] !== undefined) {
    const host_forwards = repeated.hostfwd.map((spec) => {
      try {
        return parseHostForward(spec);
      } catch (err) {
        throw new UsageError(`--net ${text}: hostfwd: ${(err as Error).message}`);
      }
    });
    // The interface's own checks (a port forwarded twice) in the flag's terms.
    const user = safeParseWith(UserBackend, { host_forwards });
    if (!user.success) {
      const why = describeZodError(user.error)
        .replace(/^host_forwards\[\d+\]\.host_port: /, "")
        .replace(/host_forwards\[(\d+)\]/, (_, i: string) => `hostfwd number ${Number(i) + 1}`);
      throw new UsageError(`--net ${text}: hostfwd: ${why}`);
    }
    return { ...common, user: user.data };
  }
  if (v.tap !== undefined) return { ...common, host_dev_name: v.tap };
  const [mode, ...rest] = v.socket!.split(":");
  return { ...common, socket: { socket_path: rest.join(":"), mode: mode as "listen" | "connect" } };
}

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number of ${what}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n > 0, `must be a positive number of ${what}`);

const rngSchema = z.object({ rate: positiveInt("bytes per second").optional(), burst: positiveInt("bytes").optional() }).strict();

/** virtio-rng's defaults (src/virtio/rng/device.ts): 1 MiB/s, a 64 KiB bucket. */
const RNG_DEFAULT_RATE = 1 << 20;
const RNG_DEFAULT_BURST = 64 << 10;

/**
 * `--rng [rate=R][,burst=B]` as a token bucket: B bytes refilled every B/R seconds, rounded to the
 * millisecond (Firecracker's refill_time unit), at least 1 ms.
 */
export function parseRngOption(text: string | true): Entropy {
  if (text === true) return {};
  const v = check(rngSchema, parseKeyValues(text, "--rng"), "--rng", text);
  if (v.rate === undefined && v.burst === undefined) return {};
  const rate = v.rate ?? RNG_DEFAULT_RATE;
  const size = v.burst ?? RNG_DEFAULT_BURST;
  return { rate_limiter: { bandwidth: { size, refill_time: Math.max(1, Math.round((size * 1000) / rate)) } } };
}

const vsockSchema = z
  .object({
    // CIDs 0-2 are reserved (hypervisor, local, host); the guest needs 3 or more (virtio spec 5.10.4).
    cid: positiveInt("context id").refine((n) => n >= 3 && n <= 0xffff_ffff, "must be between 3 and 4294967295 (0-2 are reserved)"),
    uds: z.string({ message: "is required (uds=PATH)" }).min(1, "must name a Unix socket path"),
  })
  .strict();

export function parseVsockOption(text: string): Vsock {
  const v = check(vsockSchema, parseKeyValues(text, "--vsock"), "--vsock", text);
  return { guest_cid: v.cid, uds_path: v.uds };
}

const shareSchema = z
  .object({
    path: z.string({ message: "is required (path=DIR)" }).min(1, "must name a directory"),
    tag: z.string({ message: "is required (tag=NAME, what the guest mounts)" }).pipe(MountTag),
    readonly: onOff.optional(),
  })
  .strict();

/** `--share path=DIR,tag=NAME[,readonly=on]` as a share of the VM description. */
export function parseShareOption(text: string): Share {
  const v = check(shareSchema, parseKeyValues(text, "--share"), "--share", text);
  return { path_on_host: v.path, mount_tag: v.tag, is_read_only: v.readonly ?? false };
}

const MIB = 1 << 20;
const balloonSchema = z
  .object({
    target: z
      .string()
      .regex(/^\d+[KMG]?$/i, "must be a size such as 256M")
      .transform((t) => Number(t.replace(/[KMG]$/i, "")) * ({ K: 1024, M: MIB, G: 1 << 30 }[t.slice(-1).toUpperCase()] ?? 1))
      .refine((bytes) => bytes % MIB === 0, "must be a whole number of MiB (the balloon's target is in MiB)")
      .optional(),
  })
  .strict();

/** The statistics timer `--balloon` has always had (the device's default): 5 seconds. */
const BALLOON_FLAG_STATS_INTERVAL_S = 5;

export function parseBalloonOption(text: string | true): Balloon {
  const v = text === true ? {} : check(balloonSchema, parseKeyValues(text, "--balloon"), "--balloon", text);
  return { amount_mib: (v.target ?? 0) / MIB, deflate_on_oom: true, stats_polling_interval_s: BALLOON_FLAG_STATS_INTERVAL_S };
}
