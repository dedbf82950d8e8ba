// Live migration: the running machine's state and memory go to a Parley waiting at `destination`
// (PUT /migrate, `parley migrate`), which continues the guest.
import type { Machine, MachineOptions } from "./machine.ts";

/** Sends the machine to `destination`; when it resolves, the guest runs there and this machine has stopped. */
export async function migrateMachine(_machine: Machine, _destination: string): Promise<void> {
  throw new Error("not implemented yet");
}

/** Waits at `source` for a migrating machine and returns it, running. */
export async function receiveIncoming(_source: string, _options: MachineOptions = {}): Promise<Machine> {
  throw new Error("not implemented yet");
}
