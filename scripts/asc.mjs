// Runs the AssemblyScript compiler (node_modules/assemblyscript) with one repair to the Binaryen
// it drives. AssemblyScript 0.28 builds `atomic.fence` with Binaryen's C API as it was before
// fences carried a memory order; the Binaryen in use reads the extra argument as the order and
// gets "unordered", which its validator rejects ("Atomic fence cannot be unordered"). The
// fence the wasm threads proposal defines is sequentially consistent, so make every one that.
import binaryen from "binaryen";

const buildFence = binaryen._BinaryenAtomicFence;
binaryen._BinaryenAtomicFence = (module, ...rest) => {
  const fence = buildFence(module, ...rest);
  binaryen._BinaryenAtomicFenceSetOrder(fence, binaryen._BinaryenMemoryOrderSeqCst());
  return fence;
};

const asc = await import("assemblyscript/asc");
const { error } = await asc.main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
if (error) process.exitCode = 1;
