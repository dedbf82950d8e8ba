// Connects the guest console to the process's terminal: raw mode on a TTY (so Ctrl-C and friends
// reach the guest), Ctrl-A escapes, and piped input that does not end the guest at EOF.
import { EscapeFilter, ESCAPE_HELP } from "../../machine/console-escape.ts";

export interface ConsoleAttachment {
  detach(): void;
}

export function attachConsole(opts: {
  onInput: (bytes: Uint8Array) => void;
  onQuit: () => void;
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
}): ConsoleAttachment {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stdout;
  const isTty = Boolean(input.isTTY);
  const filter = new EscapeFilter();
  const onData = (chunk: Buffer) => {
    // Escapes only make sense for a person at a terminal; piped bytes go through untouched.
    if (!isTty) {
      opts.onInput(new Uint8Array(chunk));
      return;
    }
    const { forward, commands } = filter.feed(new Uint8Array(chunk));
    if (forward.length) opts.onInput(forward);
    for (const command of commands) {
      if (command === "quit") opts.onQuit();
      else output.write(ESCAPE_HELP);
    }
  };
  if (isTty) input.setRawMode(true);
  input.on("data", onData);
  input.resume();
  const restore = () => {
    if (isTty) input.setRawMode(false);
  };
  process.on("exit", restore);
  return {
    detach() {
      input.off("data", onData);
      input.pause();
      restore();
      process.off("exit", restore);
    },
  };
}
