// The `parley` command.
import { Command, CommanderError } from "commander";
import { existsSync } from "node:fs";
import { ElfError } from "../platform/elf.ts";
import { runElfFile } from "../host/node/run-elf.ts";
import { buildDemo } from "../host/node/guest-programs.ts";
import { parsePositiveInteger, parseSize, UsageError } from "./options.ts";
import { formatStats } from "./stats.ts";

/** Exit code for bad input from the user (file, option), distinct from a guest's own exit codes. */
const EXIT_USAGE = 2;

const program = new Command();
program
  .name("parley")
  .description("A paravirtualizing RISC-V (RV64GC) hypervisor in TypeScript and WebAssembly")
  .version("0.1.0")
  .showHelpAfterError("(run `parley --help` for usage)")
  .exitOverride();

program
  .command("run-elf")
  .description("run a bare-metal RV64 ELF program in M-mode; HTIF tohost/fromhost serve console and exit")
  .argument("<file>", "ELF executable (RV64, little-endian, loaded at its physical addresses)")
  .option("--max-insns <n>", "stop after about N instructions (exit code 124 if the program has not exited)")
  .option("--memory <size>", "guest RAM size, e.g. 128M", "128M")
  .option("--stats", "print instructions retired, traps by cause and MIPS to stderr at exit")
  .action(async (file: string, opts: { maxInsns?: string; memory: string; stats?: boolean }) => {
    const maxInsns = opts.maxInsns === undefined ? undefined : parsePositiveInteger(opts.maxInsns, "--max-insns");
    const ramSize = parseSize(opts.memory, "--memory");
    if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
    const result = await runElfFile(file, { maxInsns, ramSize, onOutput: (text) => process.stdout.write(text) });
    if (opts.stats) {
      process.stderr.write(
        formatStats({ instructions: result.instret, seconds: result.seconds, trapCounts: result.trapCounts, mmioExits: result.mmioExits }) + "\n",
      );
    }
    if (result.stopReason === "instruction-limit") {
      process.stderr.write(`parley: stopped after ${result.instret} instructions (--max-insns) before the program exited\n`);
      process.exitCode = 124;
    } else {
      process.exitCode = result.exitCode;
    }
  });

program
  .command("start")
  .description("run the default guest (until the Linux boot lands: the bare-metal demo program)")
  .option("--stats", "print run statistics at exit")
  .action(async (opts: { stats?: boolean }) => {
    process.stderr.write("parley: building the demo guest with the riscv64 cross compiler (cached after the first run)\n");
    const elf = await buildDemo();
    const result = await runElfFile(elf, { onOutput: (text) => process.stdout.write(text) });
    if (opts.stats) {
      process.stderr.write(
        formatStats({ instructions: result.instret, seconds: result.seconds, trapCounts: result.trapCounts, mmioExits: result.mmioExits }) + "\n",
      );
    }
    process.exitCode = result.exitCode;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (err instanceof UsageError || err instanceof ElfError) {
    process.stderr.write(`parley: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else {
    process.stderr.write(`parley: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
