// Public entry point of the guest image builder (`parley image build`).
export { buildGuestImage, cachedGuestImage, readGuestImage, GUEST_MODULES, type GuestImage, type BuildImageOptions } from "./build.ts";
export { ImageBuildError, SUITE, ARCH } from "./apt.ts";
