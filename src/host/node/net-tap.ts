// A virtio-net backend on a Linux TAP interface: the guest's frames appear on a host network
// interface (bridge it, route it, or give it an address). Needs root or CAP_NET_ADMIN to create
// the interface, or a persistent TAP made beforehand for the user running Parley
// (`ip tuntap add dev NAME mode tap user USER`).
//
// Node has no API for /dev/net/tun, so the libc calls go through the `koffi` FFI package:
// open(2) the clone device, ioctl(2) TUNSETIFF with IFF_TAP | IFF_NO_PI (no packet-information
// prefix, so each read(2)/write(2) is exactly one Ethernet frame), then read(2)/write(2)/close(2).
// The descriptor is non-blocking. Reception waits in poll(2) on the TAP descriptor and an eventfd
// (to wake it on close) through a koffi asynchronous call, which runs on a libuv threadpool
// thread: the event loop never blocks, at the cost of one threadpool thread while receiving. The
// frames are then read on the main thread until EAGAIN (bounded per round). libuv joins its
// threadpool when the process exits, so a poll(2) without end would hang exit: the poll has a
// timeout (POLL_TIMEOUT_MS), and a process 'exit' listener wakes it at once through the eventfd. write(2) to a TAP
// never blocks for long: the kernel queues or drops the frame, and we count failures.

import { countDrop, newNetBackendCounters, type NetBackend, type NetBackendCounters } from "../../virtio/net/backend.ts";

// <fcntl.h>, <linux/if_tun.h>, <poll.h>, <sys/eventfd.h> (Linux, all architectures Node runs on).
const O_RDWR = 0o2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
/** _IOW('T', 202, int) */
export const TUNSETIFF = 0x400454ca;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
const POLLIN = 0x001;
/** Upper bound on one poll(2), so that process exit never waits longer than this for the thread. */
const POLL_TIMEOUT_MS = 500;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
/** IFNAMSIZ: interface names hold 15 bytes plus NUL. */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq) on 64-bit Linux: ifr_name[16] then a 24-byte union (ifr_flags first). */
const IFREQ_SIZE = 40;
/** Largest frame a TAP can hand us: 64 KiB MTU plus Ethernet and VLAN headers, rounded up. */
const READ_BUFFER = 65536 + 64;

const ERRNO: Record<string, number> = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOBUFS: 105,
  EBADFD: 77,
};

interface Libc {
  open(path: string, flags: number): number;
  ioctl(fd: number, request: number, ifreq: Uint8Array): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  write(fd: number, buf: Uint8Array, count: number): number;
  close(fd: number): number;
  eventfd(initval: number, flags: number): number;
  /** poll(2) on a worker thread with a timeout in ms; calls back with its result. */
  pollAsync(fds: number[], timeoutMs: number, callback: (error: unknown, result: number) => void): void;
  errno(): number;
}

let libcPromise: Promise<Libc> | undefined;

/** Loads koffi and declares the libc functions once per process. */
function loadLibc(): Promise<Libc> {
  libcPromise ??= (async () => {
    let koffi: typeof import("koffi");
    try {
      const mod = (await import("koffi")) as unknown as { default?: typeof import("koffi") } & typeof import("koffi");
      koffi = mod.default ?? mod;
    } catch (e) {
      libcPromise = undefined;
      throw new Error(`TAP networking needs the koffi package (npm install koffi): ${(e as Error).message}`);
    }
    const lib = koffi.load("libc.so.6");
    const open = lib.func("int open(const char *path, int flags, ...)");
    const ioctl = lib.func("int ioctl(int fd, unsigned long request, ...)");
    const read = lib.func("long read(int fd, void *buf, unsigned long count)");
    const write = lib.func("long write(int fd, const void *buf, unsigned long count)");
    const close = lib.func("int close(int fd)");
    const eventfd = lib.func("int eventfd(unsigned int initval, int flags)");
    const pollfd = koffi.struct({ fd: "int", events: "short", revents: "short" });
    const poll = lib.func("poll", "int", [koffi.pointer(pollfd), "unsigned long", "int"]);
    return {
      open: (path, flags) => open(path, flags) as number,
      ioctl: (fd, request, ifreq) => ioctl(fd, request, "uint8_t *", ifreq) as number,
      read: (fd, buf, count) => Number(read(fd, buf, count)),
      write: (fd, buf, count) => Number(write(fd, buf, count)),
      close: (fd) => close(fd) as number,
      eventfd: (initval, flags) => eventfd(initval, flags) as number,
      pollAsync: (fds, timeoutMs, callback) =>
        poll.async(
          fds.map((fd) => ({ fd, events: POLLIN, revents: 0 })),
          fds.length,
          timeoutMs,
          callback,
        ),
      errno: () => koffi.errno(),
    };
  })();
  return libcPromise;
}

/** Why `name` cannot be a Linux interface name, or undefined when it can. */
export function tapNameProblem(name: string): string | undefined {
  if (name.length === 0) return "the TAP interface name is empty";
  if (Buffer.byteLength(name) >= IFNAMSIZ) return `the TAP interface name "${name}" is longer than ${IFNAMSIZ - 1} bytes`;
  if (name === "." || name === ".." || /[/:\s]/.test(name)) return `"${name}" is not a valid interface name (no '/', ':' or spaces)`;
  return undefined;
}

/** struct ifreq for TUNSETIFF: the name and ifr_flags = IFF_TAP | IFF_NO_PI. */
export function buildTunSetIffRequest(name: string): Uint8Array {
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(new TextEncoder().encode(name).subarray(0, IFNAMSIZ - 1), 0);
  const flags = IFF_TAP | IFF_NO_PI;
  ifr[IFNAMSIZ] = flags & 0xff;
  ifr[IFNAMSIZ + 1] = flags >> 8;
  return ifr;
}

/** The interface name the kernel wrote back into struct ifreq (it expands patterns like tap%d). */
export function ifreqName(ifr: Uint8Array): string {
  const end = ifr.subarray(0, IFNAMSIZ).indexOf(0);
  return new TextDecoder().decode(ifr.subarray(0, end < 0 ? IFNAMSIZ : end));
}

function errnoName(errno: number): string {
  return Object.keys(ERRNO).find((k) => ERRNO[k] === errno) ?? `errno ${errno}`;
}

export interface TapBackendOptions {
  /** Where errors go; default stderr with a "parley: " prefix. */
  log?: (message: string) => void;
  /** Frames read per poll round before yielding to the event loop; default 64. */
  readBatch?: number;
}

const defaultLog = (message: string) => {
  process.stderr.write(`parley: ${message}\n`);
};

/** A TAP interface as a NetBackend. Create with openTapBackend. */
export class TapNetBackend implements NetBackend {
  readonly counters: NetBackendCounters = newNetBackendCounters();
  readonly linkUp = true;
  private handler: ((frame: Uint8Array) => void) | undefined;
  private paused = false;
  private closed = false;
  private polling = false;
  private pollDone: (() => void) | undefined;
  private pollFailures = 0;
  private readonly readBuffer = new Uint8Array(READ_BUFFER);
  private readonly readBatch: number;
  private readonly log: (message: string) => void;
  private loggedWriteError = false;
  private readonly onExit = () => this.wake();

  /** @internal Use openTapBackend. */
  constructor(
    private readonly libc: Libc,
    private readonly fd: number,
    private readonly wakeFd: number,
    /** The interface's name as the kernel reports it. */
    readonly name: string,
    options: TapBackendOptions,
  ) {
    this.readBatch = Math.max(1, options.readBatch ?? 64);
    this.log = options.log ?? defaultLog;
  }

  get description(): string {
    return `tap ${this.name}${this.closed ? " (closed)" : ""}`;
  }

  send(frame: Uint8Array): void {
    if (this.closed) {
      countDrop(this.counters.sendDrops, "closed");
      return;
    }
    const n = this.libc.write(this.fd, frame, frame.length);
    if (n === frame.length) {
      this.counters.framesSent++;
      this.counters.bytesSent += frame.length;
      return;
    }
    if (n >= 0) {
      countDrop(this.counters.sendDrops, "short-write");
      return;
    }
    const errno = this.libc.errno();
    if (errno === ERRNO.EAGAIN || errno === ERRNO.ENOBUFS || errno === ERRNO.ENOMEM) countDrop(this.counters.sendDrops, "congested");
    else if (errno === ERRNO.EIO) countDrop(this.counters.sendDrops, "interface-down"); // the TAP is not up
    else {
      countDrop(this.counters.sendDrops, "write-error");
      if (!this.loggedWriteError) {
        this.loggedWriteError = true;
        this.log(`tap ${this.name}: write failed (${errnoName(errno)}); dropping frames`);
      }
    }
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }

  pauseReceive(): void {
    this.paused = true;
  }

  resumeReceive(): void {
    if (!this.paused) return;
    this.paused = false;
    // Frames may be waiting already; read them outside the caller's stack.
    setImmediate(() => {
      if (this.paused || this.closed) return;
      this.drain();
      this.arm();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.polling) {
      const done = new Promise<void>((resolve) => (this.pollDone = resolve));
      this.wake();
      await done;
    }
    process.off("exit", this.onExit);
    // A non-persistent TAP disappears when its last descriptor closes.
    this.libc.close(this.fd);
    this.libc.close(this.wakeFd);
  }

  /** @internal Starts reception. */
  start(): void {
    process.on("exit", this.onExit);
    this.arm();
  }

  /** Ends a pending poll(2) now (eventfd write). */
  private wake(): void {
    const one = new Uint8Array(8);
    one[0] = 1;
    this.libc.write(this.wakeFd, one, 8);
  }

  /** Waits (off the main thread) until the TAP is readable or close() wakes us. */
  private arm(): void {
    if (this.polling || this.paused || this.closed) return;
    this.polling = true;
    this.libc.pollAsync([this.fd, this.wakeFd], POLL_TIMEOUT_MS, (error, result) => {
      this.polling = false;
      if (this.closed) {
        this.pollDone?.();
        return;
      }
      if (error || result < 0) {
        // EINTR is the only expected failure; give up after a run of others.
        if (++this.pollFailures > 100) {
          this.log(`tap ${this.name}: poll failed repeatedly (${error ?? "errno"}); reception stopped`);
          return;
        }
      } else {
        this.pollFailures = 0;
        if (result > 0) this.drain();
      }
      this.arm();
    });
  }

  /** Reads frames until EAGAIN, a pause, or the batch limit. */
  private drain(): void {
    for (let i = 0; i < this.readBatch && !this.paused && !this.closed; i++) {
      const n = this.libc.read(this.fd, this.readBuffer, this.readBuffer.length);
      if (n < 0) {
        const errno = this.libc.errno();
        if (errno === ERRNO.EINTR) continue;
        if (errno !== ERRNO.EAGAIN) {
          countDrop(this.counters.receiveDrops, "read-error");
          this.log(`tap ${this.name}: read failed (${errnoName(errno)})`);
        }
        return;
      }
      if (n === 0) return;
      const frame = this.readBuffer.slice(0, n);
      this.counters.framesReceived++;
      this.counters.bytesReceived += n;
      if (this.handler) this.handler(frame);
      else countDrop(this.counters.receiveDrops, "no-receiver");
    }
  }
}

/**
 * Opens (creating it if needed) the TAP interface `name` (at most 15 bytes; a pattern such as
 * "tap%d" lets the kernel choose, see backend.name). The interface starts down: bring it up and
 * configure it on the host (`ip link set NAME up`, add it to a bridge, give it an address).
 * Rejects with an error that says what to do when /dev/net/tun is missing, permission is
 * lacking, or the name is taken.
 */
export async function openTapBackend(name: string, options: TapBackendOptions = {}): Promise<TapNetBackend> {
  if (process.platform !== "linux") throw new Error(`TAP networking needs Linux (this is ${process.platform}); use --net socket=... instead`);
  const problem = tapNameProblem(name);
  if (problem) throw new Error(`tap: ${problem}`);
  const libc = await loadLibc();

  const fd = libc.open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const errno = libc.errno();
    if (errno === ERRNO.ENOENT || errno === ERRNO.ENODEV) {
      throw new Error("tap: /dev/net/tun does not exist; load the tun driver (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)");
    }
    if (errno === ERRNO.EACCES || errno === ERRNO.EPERM) {
      throw new Error(`tap: cannot open /dev/net/tun: permission denied; TAP networking needs root or CAP_NET_ADMIN (or use --net socket=...)`);
    }
    throw new Error(`tap: cannot open /dev/net/tun (${errnoName(errno)})`);
  }

  const ifr = buildTunSetIffRequest(name);
  if (libc.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const errno = libc.errno();
    libc.close(fd);
    if (errno === ERRNO.EPERM || errno === ERRNO.EACCES) {
      throw new Error(
        `tap: not permitted to create or attach TAP interface ${name}; run Parley as root, give node CAP_NET_ADMIN ` +
          `(setcap cap_net_admin+ep "$(command -v node)"), or create it for your user first: ip tuntap add dev ${name} mode tap user "$USER"`,
      );
    }
    if (errno === ERRNO.EBUSY) throw new Error(`tap: interface ${name} is busy (another process has it open)`);
    if (errno === ERRNO.EINVAL) throw new Error(`tap: cannot use ${name} as a TAP interface (it exists as a different kind of interface, or the name is invalid)`);
    throw new Error(`tap: TUNSETIFF on ${name} failed (${errnoName(errno)})`);
  }
  const actual = ifreqName(ifr);

  const wakeFd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd < 0) {
    const errno = libc.errno();
    libc.close(fd);
    throw new Error(`tap: eventfd failed (${errnoName(errno)})`);
  }
  const backend = new TapNetBackend(libc, fd, wakeFd, actual, options);
  backend.start();
  return backend;
}
