// Parley as a library: `import { Machine } from "parley"`. The same VM description as
// `parley run --config` and the REST API (src/vmm/schema.ts, docs/openapi.json).
export { Machine, DEFAULT_APPEND, DEFAULT_APPEND_HVC, type MachineOptions } from "./vmm/machine.ts";
export type { MachineExit } from "./machine/virt.ts";
export type { Ledger } from "./machine/ledger.ts";
export {
  VmConfig,
  parseVmConfig,
  describeZodError,
  ConfigError,
  RequestError,
  type VmConfigInput,
  type BootSource,
  type MachineConfig,
  type Drive,
  type NetworkInterface,
  type Vsock,
  type Balloon,
  type Entropy,
  type RateLimiter,
  type TokenBucket,
  type Coalescing,
  type BalloonStats,
  type InstanceState,
  type SnapshotCreateParams,
  type SnapshotLoadParams,
  type MigrateParams,
} from "./vmm/schema.ts";
export { startApiServer, type ApiServer, type ApiServerOptions } from "./vmm/api-server.ts";
export { MachineController, type VmmController } from "./vmm/controller.ts";
/** Persistent translations for `MachineOptions.jitCache`: a directory, or a store of your own. */
export { DirectoryTranslationCache, DEFAULT_JIT_CACHE_DIR } from "./host/node/jit-cache.ts";
export type { TranslationCache } from "./cpu/jit/translation-cache.ts";
