export * from "./spec.ts";
export * from "./device.ts";
