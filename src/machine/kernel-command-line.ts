// The kernel command lines Parley boots Debian's kernel with by default, one per console: the
// 16550 (ttyS0) or virtio-console (hvc0); earlycon=sbi prints through SBI DBCN until the console
// driver is up. Used by the VMM, the web page's machine worker and the benchmarks alike.

/** The default kernel command line (console on the 16550 UART). */
export const DEFAULT_APPEND = "console=ttyS0 earlycon=sbi";
/** The default kernel command line with the console on virtio-console. */
export const DEFAULT_APPEND_HVC = "console=hvc0 earlycon=sbi";
