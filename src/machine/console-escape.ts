// QEMU-style escape sequences on the console input: Ctrl-A x quits, Ctrl-A Ctrl-A sends a
// literal Ctrl-A, Ctrl-A h prints help. Everything else goes to the guest unchanged, so Ctrl-C,
// Ctrl-Z and the rest reach the guest's terminal.
const CTRL_A = 0x01;

export type EscapeCommand = "quit" | "help";

export const ESCAPE_HELP = "\r\nParley console: Ctrl-A x  quit    Ctrl-A Ctrl-A  send Ctrl-A    Ctrl-A h  this help\r\n";

export class EscapeFilter {
  private pendingEscape = false;

  /** Splits input into bytes for the guest and console commands, in order. */
  feed(input: Uint8Array): { forward: Uint8Array; commands: EscapeCommand[] } {
    const forward: number[] = [];
    const commands: EscapeCommand[] = [];
    for (const byte of input) {
      if (this.pendingEscape) {
        this.pendingEscape = false;
        if (byte === 0x78 /* x */ || byte === 0x58 /* X */) commands.push("quit");
        else if (byte === 0x68 /* h */ || byte === 0x3f /* ? */) commands.push("help");
        else if (byte === CTRL_A) forward.push(CTRL_A);
        // Any other key after Ctrl-A is swallowed, as in QEMU.
      } else if (byte === CTRL_A) {
        this.pendingEscape = true;
      } else {
        forward.push(byte);
      }
    }
    return { forward: Uint8Array.from(forward), commands };
  }
}
