// National Semiconductor PC16550D-compatible UART ("16550A"), as Linux's 8250 driver
// (drivers/tty/serial/8250/8250_port.c) and OpenSBI's uart8250 drive it. Register and bit names
// are the datasheet's; the bit constants carry the names of Linux's include/uapi/linux/serial_reg.h.
//
// Register map (byte registers, reg-shift 0), PC16550D datasheet table "UART Register Addresses":
//   off  DLAB=0 read / write    DLAB=1
//   0    RBR / THR              DLL
//   1    IER                    DLM
//   2    IIR / FCR
//   3    LCR      4 MCR      5 LSR      6 MSR      7 SCR
//
// Timing model: the virtual wire is infinitely fast. A byte written to THR leaves at once, so THR
// and the transmitter are always empty (LSR.THRE = LSR.TEMT = 1) by the time the guest looks
// again. Host input waits in a bounded host-side queue and moves into the 16-byte RX FIFO as
// room appears, so it is never overrun. Because no further character can arrive while the host
// queue is empty, the character-timeout condition (datasheet: data below the trigger level and
// no FIFO activity for 4 character times) is taken to have elapsed as soon as the FIFO holds
// fewer bytes than the trigger level.
import type { MmioAccess, MmioDevice } from "./mmio-device.ts";
import { bytesToHex, SnapshotError, stateArray, stateBool, stateBytes, stateEnum, stateInt, stateObject, stateRecord, type VersionedState } from "../platform/persist.ts";

// Register offsets.
export const UART_RX = 0; // RBR
export const UART_TX = 0; // THR
export const UART_DLL = 0;
export const UART_IER = 1;
export const UART_DLM = 1;
export const UART_IIR = 2;
export const UART_FCR = 2;
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;
const UART_REGISTER_COUNT = 8;

// IER: interrupt enables. Bits 7:4 are hard-wired 0 on a 16550A (the 8250 driver's autoconfig
// writes 0x0f and expects exactly 0x0f back, and probes bit 6 to detect XScale UARTs).
export const UART_IER_RDI = 0x01;
export const UART_IER_THRI = 0x02;
export const UART_IER_RLSI = 0x04;
export const UART_IER_MSI = 0x08;
const IER_MASK = 0x0f;

// IIR: interrupt identification; bits 7:6 are both set while the FIFOs are enabled.
export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_MSI = 0x00;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_IIR_RX_TIMEOUT = 0x0c;
export const UART_IIR_FIFO_ENABLED_16550A = 0xc0;

// FCR: FIFO control (write-only).
export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
export const UART_FCR_CLEAR_XMIT = 0x04;
export const UART_FCR_DMA_SELECT = 0x08;
export const UART_FCR_TRIGGER_MASK = 0xc0;
/** RX trigger levels selected by FCR bits 7:6 (datasheet table "FIFO Control Register"). */
const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;
export const UART_FIFO_SIZE = 16;

// LCR
export const UART_LCR_DLAB = 0x80;

// MCR: bits 7:5 are 0 on a 16550A.
export const UART_MCR_DTR = 0x01;
export const UART_MCR_RTS = 0x02;
export const UART_MCR_OUT1 = 0x04;
export const UART_MCR_OUT2 = 0x08;
export const UART_MCR_LOOP = 0x10;
const MCR_MASK = 0x1f;

// LSR
export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_PE = 0x04;
export const UART_LSR_FE = 0x08;
export const UART_LSR_BI = 0x10;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;
export const UART_LSR_FIFOE = 0x80;
/** Error bits: they raise the line-status interrupt and clear when LSR is read. */
const LSR_ERROR_BITS = UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI;

// MSR: current modem inputs in bits 7:4, changes since the last MSR read in bits 3:0.
export const UART_MSR_DCTS = 0x01;
export const UART_MSR_DDSR = 0x02;
export const UART_MSR_TERI = 0x04;
export const UART_MSR_DDCD = 0x08;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_RI = 0x40;
export const UART_MSR_DCD = 0x80;
/** Modem inputs when not in loopback: a terminal that is present and ready (as on QEMU). */
const HOST_MODEM_INPUTS = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;

export type UartRegisterName = "RBR" | "THR" | "DLL" | "DLM" | "IER" | "IIR" | "FCR" | "LCR" | "MCR" | "LSR" | "MSR" | "SCR";

/** Interrupt conditions, in the datasheet's priority order. */
export type UartInterrupt = "line-status" | "rx-data" | "rx-timeout" | "thr-empty" | "modem-status";

/**
 * IIR priority table (PC16550D table "Interrupt Control Functions"). The first row whose
 * condition holds and whose IER bit is set is what IIR reports and what drives the IRQ line.
 */
export const IIR_PRIORITY_TABLE: readonly {
  interrupt: UartInterrupt;
  priority: number; // 1 = highest
  iir: number;
  enabledBy: number; // IER bit
  source: string;
  resetBy: string;
}[] = [
  { interrupt: "line-status", priority: 1, iir: UART_IIR_RLSI, enabledBy: UART_IER_RLSI, source: "overrun, parity, framing error or break", resetBy: "reading LSR" },
  { interrupt: "rx-data", priority: 2, iir: UART_IIR_RDI, enabledBy: UART_IER_RDI, source: "RX data at or above the trigger level (or in RBR with FIFOs off)", resetBy: "reading RBR until below the trigger level" },
  { interrupt: "rx-timeout", priority: 2, iir: UART_IIR_RX_TIMEOUT, enabledBy: UART_IER_RDI, source: "RX data below the trigger level with no more arriving", resetBy: "reading RBR" },
  { interrupt: "thr-empty", priority: 3, iir: UART_IIR_THRI, enabledBy: UART_IER_THRI, source: "THR empty", resetBy: "reading IIR when it is the source, or writing THR" },
  { interrupt: "modem-status", priority: 4, iir: UART_IIR_MSI, enabledBy: UART_IER_MSI, source: "CTS, DSR, RI or DCD changed", resetBy: "reading MSR" },
];

/** Which conditions are active: a pure function of the UART state the table looks at. */
export function activeInterruptConditions(s: {
  lsr: number;
  rxCount: number;
  fifoEnabled: boolean;
  rxTrigger: number;
  thrInterruptPending: boolean;
  msr: number;
}): Record<UartInterrupt, boolean> {
  const level = s.fifoEnabled ? s.rxTrigger : 1;
  return {
    "line-status": (s.lsr & LSR_ERROR_BITS) !== 0,
    "rx-data": s.rxCount >= level,
    "rx-timeout": s.fifoEnabled && s.rxCount > 0 && s.rxCount < level,
    "thr-empty": s.thrInterruptPending,
    "modem-status": (s.msr & 0x0f) !== 0,
  };
}

/** The IIR interrupt ID (bits 3:0) for the given conditions and IER. */
export function identifyInterrupt(conditions: Record<UartInterrupt, boolean>, ier: number): (typeof IIR_PRIORITY_TABLE)[number] | undefined {
  return IIR_PRIORITY_TABLE.find((row) => conditions[row.interrupt] && (ier & row.enabledBy) !== 0);
}

export interface UartCounters {
  /** Bytes the guest read from RBR. */
  bytesIn: number;
  /** Bytes the guest transmitted to the host (not counting loopback). */
  bytesOut: number;
  /** Bytes accepted into the host-side input queue. */
  hostBytesQueued: number;
  /** Host bytes refused because the host-side queue was full. */
  hostOverflow: number;
  /** Bytes the guest threw away with FCR "clear receiver". */
  rxDiscarded: number;
  /** Overrun errors (only loopback traffic can overrun: host input is flow-controlled). */
  overruns: number;
  /** Rising edges of the IRQ line. */
  interrupts: number;
  reads: Record<UartRegisterName, number>;
  writes: Record<UartRegisterName, number>;
}

export interface Uart16550Options {
  /** Bytes the guest transmits. */
  output: (bytes: Uint8Array) => void;
  /** The interrupt output (level). */
  irq: (asserted: boolean) => void;
  /** Bound on host input waiting for the guest (default 64 KiB). */
  hostQueueLimit?: number;
  name?: string;
}

/** Register names by offset for the exit ledger (DLAB clear), loads and stores. */
const LEDGER_LOAD_NAMES: readonly UartRegisterName[] = ["RBR", "IER", "IIR", "LCR", "MCR", "LSR", "MSR", "SCR"];
const LEDGER_STORE_NAMES: readonly UartRegisterName[] = ["THR", "IER", "FCR", "LCR", "MCR", "LSR", "MSR", "SCR"];

/** Marks an RX FIFO entry that arrived from the host rather than through loopback. */
const FROM_HOST = 0x100;

const registerCounts = (): Record<UartRegisterName, number> => ({
  RBR: 0, THR: 0, DLL: 0, DLM: 0, IER: 0, IIR: 0, FCR: 0, LCR: 0, MCR: 0, LSR: 0, MSR: 0, SCR: 0,
});

/**
 * The UART's registers, FIFO and the host input not yet in it. Derived values are not saved: the
 * modem inputs follow from MCR (loopback wiring or the host's terminal), LSR.DR/THRE/TEMT from the
 * FIFO, and the IRQ line from everything (restoreState drives it).
 */
export interface Uart16550State extends VersionedState {
  version: 1;
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  dll: number;
  dlm: number;
  /** LSR error bits (OE, PE, FE, BI) not yet read. */
  lsrErrors: number;
  /** MSR delta bits 3:0 not yet read. */
  msrDeltas: number;
  fifoEnabled: boolean;
  rxTrigger: "1" | "4" | "8" | "14";
  /** RX FIFO, oldest first: each entry's byte and whether it came from the host (vs loopback). */
  rxFifo: { byte: number; fromHost: boolean }[];
  /** What an empty RBR keeps returning. */
  rbr: number;
  thrInterruptPending: boolean;
  /** Host input waiting for room in the FIFO, as hex. */
  hostInput: string;
}

const UART_STATE_VERSIONS = [1] as const;
const RX_TRIGGER_NAMES = RX_TRIGGER_LEVELS.map(String) as Uart16550State["rxTrigger"][];

export class Uart16550 implements MmioDevice {
  readonly name: string;
  readonly counters: UartCounters = {
    bytesIn: 0,
    bytesOut: 0,
    hostBytesQueued: 0,
    hostOverflow: 0,
    rxDiscarded: 0,
    overruns: 0,
    interrupts: 0,
    reads: registerCounts(),
    writes: registerCounts(),
  };

  // Programmer-visible state.
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  /** LSR bits other than DR/THRE/TEMT, which are derived. */
  private lsrErrors = 0;
  /** MSR delta bits 3:0; bits 7:4 are derived from the modem inputs. */
  private msrDeltas = 0;
  private modemInputs = HOST_MODEM_INPUTS;
  private fifoEnabled = false;
  private rxTrigger: number = RX_TRIGGER_LEVELS[0];
  /** Received characters; those that came from the host carry FROM_HOST so a FIFO reset can return them. */
  private readonly rxFifo: number[] = [];
  /** The last byte read from RBR: what an empty RBR keeps returning. */
  private rbr = 0;
  /** THRE interrupt latch: set when THR empties (or THRI is enabled while it is empty). */
  private thrInterruptPending = false;
  private irqLine = false;

  // Host side.
  private readonly output: (bytes: Uint8Array) => void;
  private readonly irq: (asserted: boolean) => void;
  private readonly hostQueueLimit: number;
  private readonly hostQueue: Uint8Array[] = [];
  private hostHead = 0; // read position in hostQueue[0]
  private hostQueued = 0;

  constructor(options: Uart16550Options) {
    this.output = options.output;
    this.irq = options.irq;
    this.hostQueueLimit = options.hostQueueLimit ?? 64 * 1024;
    this.name = options.name ?? "uart0";
  }

  /**
   * Host input. Returns how many bytes were accepted; the rest did not fit in the host-side
   * queue and are counted in counters.hostOverflow (the caller may retry them later).
   */
  receive(bytes: Uint8Array): number {
    const room = Math.max(0, this.hostQueueLimit - this.hostQueued);
    const accepted = Math.min(room, bytes.length);
    if (accepted > 0) {
      this.hostQueue.push(bytes.slice(0, accepted)); // copy: the caller may reuse its buffer
      this.hostQueued += accepted;
      this.counters.hostBytesQueued += accepted;
    }
    this.counters.hostOverflow += bytes.length - accepted;
    this.refill();
    this.updateIrq();
    return accepted;
  }

  /** Host bytes not yet in the RX FIFO. */
  get hostQueueLength(): number {
    return this.hostQueued;
  }

  /** The line rate the guest programmed, for a given input clock (3.6864 MHz on virt). */
  baudRate(clockHz: number): number | undefined {
    const divisor = (this.dlm << 8) | this.dll;
    return divisor === 0 ? undefined : clockHz / (16 * divisor);
  }

  private get rxCapacity(): number {
    return this.fifoEnabled ? UART_FIFO_SIZE : 1;
  }

  /**
   * Moves host bytes into the RX FIFO while it has room. In loopback the wire is disconnected.
   * Host input waits in the host queue until the guest's driver has enabled the receive-data
   * interrupt: Linux's 8250 startup clears the FIFOs and reads RBR with IER = 0 to flush stale
   * data, which would silently eat whatever a user typed (or piped) before the port was opened.
   */
  private refill(): void {
    if ((this.mcr & UART_MCR_LOOP) !== 0 || (this.ier & UART_IER_RDI) === 0) return;
    while (this.hostQueued > 0 && this.rxFifo.length < this.rxCapacity) {
      const chunk = this.hostQueue[0];
      this.rxFifo.push(chunk[this.hostHead++] | FROM_HOST);
      this.hostQueued--;
      if (this.hostHead === chunk.length) {
        this.hostQueue.shift();
        this.hostHead = 0;
      }
    }
  }

  /** A character arriving at the receiver from the loopback path: may overrun. */
  private receiveFromWire(byte: number): void {
    if (this.rxFifo.length < this.rxCapacity) {
      this.rxFifo.push(byte);
      return;
    }
    // Datasheet: with FIFOs on, the character in the shift register is lost and the FIFO is
    // kept; in 16450 mode the new character overwrites RBR.
    if (!this.fifoEnabled) this.rxFifo[0] = byte;
    this.lsrErrors |= UART_LSR_OE;
    this.counters.overruns++;
  }

  private lsr(): number {
    let v = this.lsrErrors | UART_LSR_THRE | UART_LSR_TEMT;
    if (this.rxFifo.length > 0) v |= UART_LSR_DR;
    return v;
  }

  private msr(): number {
    return this.modemInputs | this.msrDeltas;
  }

  private current(): (typeof IIR_PRIORITY_TABLE)[number] | undefined {
    const conditions = activeInterruptConditions({
      lsr: this.lsr(),
      rxCount: this.rxFifo.length,
      fifoEnabled: this.fifoEnabled,
      rxTrigger: this.rxTrigger,
      thrInterruptPending: this.thrInterruptPending,
      msr: this.msr(),
    });
    return identifyInterrupt(conditions, this.ier);
  }

  private updateIrq(): void {
    const asserted = this.current() !== undefined;
    if (asserted === this.irqLine) return;
    this.irqLine = asserted;
    if (asserted) this.counters.interrupts++;
    this.irq(asserted);
  }

  /** Recomputes the modem inputs after an MCR change and latches the MSR deltas. */
  private updateModemInputs(): void {
    const inputs = modemInputsFor(this.mcr);
    const changed = inputs ^ this.modemInputs;
    if (changed & UART_MSR_CTS) this.msrDeltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) this.msrDeltas |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD) this.msrDeltas |= UART_MSR_DDCD;
    // TERI flags the trailing edge only: RI going from on to off.
    if (changed & this.modemInputs & UART_MSR_RI) this.msrDeltas |= UART_MSR_TERI;
    this.modemInputs = inputs;
  }

  /**
   * The register an access reaches now, divisor latch included (what the 16550's own counters
   * use). registerName() below names offsets for the bus's exit ledger without the DLAB state.
   */
  private currentRegister(offset: number, isWrite: boolean): UartRegisterName {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case UART_RX:
        return dlab ? "DLL" : isWrite ? "THR" : "RBR";
      case UART_IER:
        return dlab ? "DLM" : "IER";
      case UART_IIR:
        return isWrite ? "FCR" : "IIR";
      case UART_LCR:
        return "LCR";
      case UART_MCR:
        return "MCR";
      case UART_LSR:
        return "LSR";
      case UART_MSR:
        return "MSR";
      default:
        return "SCR";
    }
  }

  /**
   * For the exit ledger, which counts by offset: offset 0 is RBR/THR and offset 1 IER even
   * while LCR.DLAB selects the divisor latch (a few accesses at baud-rate setup; counters.reads
   * and counters.writes tell them apart).
   */
  registerName(offset: number, access: MmioAccess): UartRegisterName | undefined {
    if (!Number.isInteger(offset) || offset < 0 || offset >= UART_REGISTER_COUNT) return undefined;
    return (access === "store" ? LEDGER_STORE_NAMES : LEDGER_LOAD_NAMES)[offset];
  }

  /** Byte registers only: wider or out-of-range accesses fault. */
  load(offset: number, size: number): number | bigint | undefined {
    if (size !== 1 || offset < 0 || offset >= UART_REGISTER_COUNT) return undefined;
    const reg = this.currentRegister(offset, false);
    this.counters.reads[reg]++;
    let value: number;
    switch (reg) {
      case "RBR":
        if (this.rxFifo.length > 0) {
          this.rbr = this.rxFifo.shift()! & 0xff;
          this.counters.bytesIn++;
          this.refill();
        }
        value = this.rbr;
        break;
      case "DLL":
        value = this.dll;
        break;
      case "DLM":
        value = this.dlm;
        break;
      case "IER":
        value = this.ier;
        break;
      case "IIR": {
        const row = this.current();
        value = (row ? row.iir : UART_IIR_NO_INT) | (this.fifoEnabled ? UART_IIR_FIFO_ENABLED_16550A : 0);
        // Reading IIR acknowledges a THRE interrupt, but only when it is the one reported.
        if (row?.interrupt === "thr-empty") this.thrInterruptPending = false;
        break;
      }
      case "LCR":
        value = this.lcr;
        break;
      case "MCR":
        value = this.mcr;
        break;
      case "LSR":
        value = this.lsr();
        this.lsrErrors = 0;
        break;
      case "MSR":
        value = this.msr();
        this.msrDeltas = 0;
        break;
      default:
        value = this.scr;
    }
    this.updateIrq();
    return value;
  }

  store(offset: number, size: number, value: number | bigint): boolean {
    if (size !== 1 || offset < 0 || offset >= UART_REGISTER_COUNT) return false;
    const v = Number(value) & 0xff;
    const reg = this.currentRegister(offset, true);
    this.counters.writes[reg]++;
    switch (reg) {
      case "THR":
        this.transmit(v);
        break;
      case "DLL":
        this.dll = v;
        break;
      case "DLM":
        this.dlm = v;
        break;
      case "IER": {
        const enabling = (v & ~this.ier & UART_IER_THRI) !== 0;
        this.ier = v & IER_MASK;
        // A 16550 raises THRE as soon as the interrupt is enabled with THR empty; the 8250
        // driver's startup test (UART_BUG_THRE) depends on it. THR is always empty here.
        if (enabling) this.thrInterruptPending = true;
        if ((this.ier & UART_IER_THRI) === 0) this.thrInterruptPending = false;
        this.refill(); // held host input flows once the receive interrupt is on
        break;
      }
      case "FCR":
        this.writeFcr(v);
        break;
      case "LCR":
        this.lcr = v;
        break;
      case "MCR": {
        const wasLoop = (this.mcr & UART_MCR_LOOP) !== 0;
        this.mcr = v & MCR_MASK;
        this.updateModemInputs();
        if (wasLoop && (this.mcr & UART_MCR_LOOP) === 0) this.refill(); // wire reconnected
        break;
      }
      case "LSR":
      case "MSR":
        break; // read-only (factory test registers on real parts): writes are ignored
      default:
        this.scr = v;
    }
    this.updateIrq();
    return true;
  }

  private transmit(byte: number): void {
    // Writing THR clears a pending THRE interrupt; the byte then leaves at once, THR is empty
    // again and THRE is raised anew (datasheet: the interrupt is set when THR empties).
    this.thrInterruptPending = false;
    if ((this.mcr & UART_MCR_LOOP) !== 0) {
      this.receiveFromWire(byte); // loopback: SOUT is held marking, TX feeds RX internally
    } else {
      this.counters.bytesOut++;
      this.output(Uint8Array.of(byte));
    }
    this.thrInterruptPending = true;
  }

  private writeFcr(v: number): void {
    const enable = (v & UART_FCR_ENABLE_FIFO) !== 0;
    if (enable !== this.fifoEnabled) {
      // Datasheet: changing FCR0 clears both FIFOs.
      this.clearReceiver();
      this.fifoEnabled = enable;
    }
    // The other bits are only written while FCR0 is (being) set.
    if (enable) {
      if (v & UART_FCR_CLEAR_RCVR) this.clearReceiver();
      // UART_FCR_CLEAR_XMIT: the transmitter is always empty. DMA mode select has no effect.
      this.rxTrigger = RX_TRIGGER_LEVELS[(v & UART_FCR_TRIGGER_MASK) >> 6];
    }
    this.refill();
  }

  saveState(): Uart16550State {
    const hostInput = new Uint8Array(this.hostQueued);
    let at = 0;
    this.hostQueue.forEach((chunk, i) => {
      const rest = i === 0 ? chunk.subarray(this.hostHead) : chunk;
      hostInput.set(rest, at);
      at += rest.length;
    });
    return {
      version: 1,
      ier: this.ier,
      lcr: this.lcr,
      mcr: this.mcr,
      scr: this.scr,
      dll: this.dll,
      dlm: this.dlm,
      lsrErrors: this.lsrErrors,
      msrDeltas: this.msrDeltas,
      fifoEnabled: this.fifoEnabled,
      rxTrigger: String(this.rxTrigger) as Uart16550State["rxTrigger"],
      rxFifo: this.rxFifo.map((c) => ({ byte: c & 0xff, fromHost: (c & FROM_HOST) !== 0 })),
      rbr: this.rbr,
      thrInterruptPending: this.thrInterruptPending,
      hostInput: bytesToHex(hostInput),
    };
  }

  /**
   * Checks the whole state, applies it, and drives the IRQ line to match (whatever it was). Host
   * input beyond this UART's hostQueueLimit is refused: the configuration differs.
   */
  restoreState(state: unknown): void {
    const where = this.name;
    const s = stateObject(state, where, UART_STATE_VERSIONS);
    const byte = (field: string, mask = 0xff) => {
      const v = stateInt(s[field], `${where}.${field}`, 0, 0xff);
      if ((v & ~mask) !== 0) throw new SnapshotError(`${where}.${field}: 0x${v.toString(16)} sets bits the register does not have`);
      return v;
    };
    const ier = byte("ier", IER_MASK);
    const lcr = byte("lcr");
    const mcr = byte("mcr", MCR_MASK);
    const scr = byte("scr");
    const dll = byte("dll");
    const dlm = byte("dlm");
    const lsrErrors = byte("lsrErrors", LSR_ERROR_BITS);
    const msrDeltas = byte("msrDeltas", 0x0f);
    const rbr = byte("rbr");
    const fifoEnabled = stateBool(s.fifoEnabled, `${where}.fifoEnabled`);
    const rxTrigger = Number(stateEnum(s.rxTrigger, `${where}.rxTrigger`, RX_TRIGGER_NAMES));
    const thrInterruptPending = stateBool(s.thrInterruptPending, `${where}.thrInterruptPending`);
    const fifo = stateArray(s.rxFifo, `${where}.rxFifo`);
    const capacity = fifoEnabled ? UART_FIFO_SIZE : 1;
    if (fifo.length > capacity) throw new SnapshotError(`${where}.rxFifo: ${fifo.length} entries do not fit a receiver of ${capacity}`);
    const rxFifo = fifo.map((entry, i) => {
      const e = stateRecord(entry, `${where}.rxFifo[${i}]`);
      const b = stateInt(e.byte, `${where}.rxFifo[${i}].byte`, 0, 0xff);
      return stateBool(e.fromHost, `${where}.rxFifo[${i}].fromHost`) ? b | FROM_HOST : b;
    });
    const hostInput = stateBytes(s.hostInput, `${where}.hostInput`);
    if (hostInput.length > this.hostQueueLimit) throw new SnapshotError(`${where}.hostInput: ${hostInput.length} bytes exceed this UART's host queue of ${this.hostQueueLimit}`);

    this.ier = ier;
    this.lcr = lcr;
    this.mcr = mcr;
    this.scr = scr;
    this.dll = dll;
    this.dlm = dlm;
    this.lsrErrors = lsrErrors;
    this.msrDeltas = msrDeltas;
    this.modemInputs = modemInputsFor(mcr);
    this.fifoEnabled = fifoEnabled;
    this.rxTrigger = rxTrigger;
    this.rxFifo.splice(0, this.rxFifo.length, ...rxFifo);
    this.rbr = rbr;
    this.thrInterruptPending = thrInterruptPending;
    this.hostQueue.length = 0;
    this.hostHead = 0;
    this.hostQueued = hostInput.length;
    if (hostInput.length > 0) this.hostQueue.push(hostInput);
    this.irqLine = this.current() !== undefined;
    this.irq(this.irqLine);
  }

  private clearReceiver(): void {
    // Host input the guest never read goes back to the host queue: the host side of the wire has
    // flow control, so a reset (Linux toggles the FIFO enable in set_termios after opening the
    // port) must not eat what the user typed. Loopback characters are discarded as on hardware.
    const fromHost = this.rxFifo.filter((c) => (c & FROM_HOST) !== 0).map((c) => c & 0xff);
    this.counters.rxDiscarded += this.rxFifo.length - fromHost.length;
    this.rxFifo.length = 0;
    if (fromHost.length) {
      if (this.hostHead > 0) {
        this.hostQueue[0] = this.hostQueue[0].subarray(this.hostHead);
        this.hostHead = 0;
      }
      this.hostQueue.unshift(Uint8Array.from(fromHost));
      this.hostQueued += fromHost.length;
    }
  }
}

/** The modem inputs MSR bits 7:4 show for an MCR value: the host's terminal, or the loopback wiring. */
function modemInputsFor(mcr: number): number {
  if ((mcr & UART_MCR_LOOP) === 0) return HOST_MODEM_INPUTS;
  // Loopback wiring (datasheet, MCR bit 4): RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
  let inputs = 0;
  if (mcr & UART_MCR_RTS) inputs |= UART_MSR_CTS;
  if (mcr & UART_MCR_DTR) inputs |= UART_MSR_DSR;
  if (mcr & UART_MCR_OUT1) inputs |= UART_MSR_RI;
  if (mcr & UART_MCR_OUT2) inputs |= UART_MSR_DCD;
  return inputs;
}
