// Parsing of the device options `--disk`, `--net`, `--rng`, `--balloon` and `--vsock`, written
// as comma-separated key=value lists in the style of QEMU and cloud-hypervisor:
//   --disk path=disk.img,readonly=on,id=data
//   --net socket=listen:/tmp/net0.sock,mac=52:54:00:12:34:56
//   --rng rate=1048576          --vsock cid=3,uds=/tmp/vsock.sock
//   --disk path=disk.img,coalesce=16/200us   (interrupt coalescing, also on --net)
// Pure functions: the result is a checked configuration, or a UsageError saying what to fix.
import { z } from "zod";
import { UsageError } from "./options.ts";
import { checkCoalesce, type VirtioCoalesce } from "../virtio/transport/mmio.ts";

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

/** Splits "a=1,b=2" into pairs; a bare word (e.g. "on") becomes { "": word }. */
export function parseKeyValues(text: string, option: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === "") return out;
  for (const part of splitItems(text)) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? "" : part.slice(0, eq).trim();
    const value = eq < 0 ? part.trim() : part.slice(eq + 1).trim();
    if (key in out) throw new UsageError(`${option}: "${key || value}" is given twice in "${text}"`);
    if (eq >= 0 && key === "") throw new UsageError(`${option}: "${part}" has no key before "="`);
    out[key] = value;
  }
  return out;
}

const onOff = z.enum(["on", "off"], { message: "must be on or off" }).transform((v) => v === "on");

/** Turns zod's complaint into one line naming the option and the key. */
function check<T>(schema: z.ZodType<T>, value: unknown, option: string, text: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    throw new UsageError(`${option} ${text}: unknown key ${issue.keys.map((k) => `"${k}"`).join(", ")}`);
  }
  throw new UsageError(`${option} ${text}: ${key ? `${key} ` : ""}${issue.message}`);
}

/**
 * Interrupt coalescing, `coalesce=N/T`: one used-buffer interrupt per N completions, or T after
 * the first waiting completion, whichever comes first. T takes a unit, us or ms (16/200us,
 * 64/1ms); `off` (the default) is 1/0us, an interrupt for every completion.
 */
export function parseCoalesce(text: string): VirtioCoalesce {
  if (text === "off") return { maxCompletions: 1, maxDelayUs: 0 };
  const m = /^(\d+)\/(\d+)(us|ms)$/.exec(text);
  if (!m) throw new Error("must be N/Tus or N/Tms (at most N completions or T per interrupt), e.g. 16/200us, or off");
  const coalesce = { maxCompletions: Number(m[1]), maxDelayUs: Number(m[2]) * (m[3] === "ms" ? 1000 : 1) };
  try {
    checkCoalesce(coalesce);
  } catch (err) {
    // In the option's own terms: N completions, T the delay.
    throw new Error(
      (err as Error).message
        .replace(/^interrupt coalescing: /, "")
        .replace("maxCompletions", "N")
        .replace(/maxDelayUs must be between 0 and 10000000 microseconds/, "T must be at most 10000000us")
        .replace("maxDelayUs", "T"),
    );
  }
  return coalesce;
}

const coalesceSchema = z.string().transform((text, ctx) => {
  try {
    return parseCoalesce(text);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

export interface DiskConfig {
  path: string;
  readOnly: boolean;
  id: string;
  /** Interrupt coalescing of the disk's virtio-mmio transport; absent: none. */
  coalesce?: VirtioCoalesce;
}

const diskSchema = z
  .object({
    path: z.string({ message: "is required (path=FILE)" }).min(1, "must name a file"),
    readonly: onOff.optional(),
    id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,20}$/, "must be 1-20 letters, digits, '.', '_' or '-' (virtio-blk IDs are 20 bytes)")
      .optional(),
    coalesce: coalesceSchema.optional(),
  })
  .strict();

export function parseDiskOption(text: string, index: number): DiskConfig {
  const v = check(diskSchema, parseKeyValues(text, "--disk"), "--disk", text);
  return { path: v.path, readOnly: v.readonly ?? false, id: v.id ?? `disk${index}`, ...(v.coalesce ? { coalesce: v.coalesce } : {}) };
}

export type NetConfig = (
  | { kind: "tap"; ifname: string; mac?: Uint8Array }
  | { kind: "socket-listen"; path: string; mac?: Uint8Array }
  | { kind: "socket-connect"; path: string; mac?: Uint8Array }
) & { coalesce?: VirtioCoalesce };

/** "52:54:00:12:34:56" -> bytes; a multicast (group bit) address is refused, as a NIC's own MAC must be unicast. */
export function parseMac(text: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(text)) throw new Error("must look like 52:54:00:12:34:56");
  const bytes = Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
  if (bytes[0] & 1) throw new Error("is a multicast address (the first byte's low bit is set); use a unicast one such as 52:54:00:...");
  return bytes;
}

const macSchema = z.string().transform((text, ctx) => {
  try {
    return parseMac(text);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

const netSchema = z
  .object({
    tap: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be an interface name of 1-15 characters").optional(),
    socket: z
      .string()
      .regex(/^(listen|connect):.+$/, "must be listen:PATH or connect:PATH")
      .optional(),
    mac: macSchema.optional(),
    coalesce: coalesceSchema.optional(),
  })
  .strict()
  .refine((v) => (v.tap === undefined) !== (v.socket === undefined), { message: "needs exactly one backend: tap=NAME or socket=listen:PATH|connect:PATH" });

export function parseNetOption(text: string): NetConfig {
  const v = check(netSchema, parseKeyValues(text, "--net"), "--net", text);
  const coalesce = v.coalesce ? { coalesce: v.coalesce } : {};
  if (v.tap !== undefined) return { kind: "tap", ifname: v.tap, mac: v.mac, ...coalesce };
  const [mode, ...rest] = v.socket!.split(":");
  const path = rest.join(":");
  return mode === "listen" ? { kind: "socket-listen", path, mac: v.mac, ...coalesce } : { kind: "socket-connect", path, mac: v.mac, ...coalesce };
}

export interface RngConfig {
  /** Bytes per second; undefined means unlimited. */
  rate?: number;
  /** Token-bucket depth in bytes. */
  burst?: number;
}

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number of ${what}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n > 0, `must be a positive number of ${what}`);

const rngSchema = z.object({ rate: positiveInt("bytes per second").optional(), burst: positiveInt("bytes").optional() }).strict();

export function parseRngOption(text: string | true): RngConfig {
  if (text === true) return {};
  return check(rngSchema, parseKeyValues(text, "--rng"), "--rng", text);
}

export interface VsockConfig {
  cid: number;
  uds: string;
}

const vsockSchema = z
  .object({
    // CIDs 0-2 are reserved (hypervisor, local, host); the guest needs 3 or more (virtio spec 5.10.4).
    cid: positiveInt("context id").refine((n) => n >= 3 && n <= 0xffff_ffff, "must be between 3 and 4294967295 (0-2 are reserved)"),
    uds: z.string({ message: "is required (uds=PATH)" }).min(1, "must name a Unix socket path"),
  })
  .strict();

export function parseVsockOption(text: string): VsockConfig {
  const v = check(vsockSchema, parseKeyValues(text, "--vsock"), "--vsock", text);
  return { cid: v.cid, uds: v.uds };
}

export interface BalloonConfig {
  /** Initial target: how much memory the balloon should take from the guest (0: none). */
  targetBytes: number;
}

const balloonSchema = z
  .object({
    target: z
      .string()
      .regex(/^\d+[KMG]?$/i, "must be a size such as 256M")
      .transform((t) => Number(t.replace(/[KMG]$/i, "")) * ({ K: 1024, M: 1 << 20, G: 1 << 30 }[t.slice(-1).toUpperCase()] ?? 1))
      .optional(),
  })
  .strict();

export function parseBalloonOption(text: string | true): BalloonConfig {
  if (text === true) return { targetBytes: 0 };
  const v = check(balloonSchema, parseKeyValues(text, "--balloon"), "--balloon", text);
  return { targetBytes: v.target ?? 0 };
}
