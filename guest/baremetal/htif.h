/*
 * Host-Target Interface (HTIF) as implemented by Spike, QEMU's spike machine
 * and Parley's run-elf: the guest posts a command in `tohost`, the host answers
 * in `fromhost`. Only the console-write and exit commands are used.
 */
#ifndef PARLEY_HTIF_H
#define PARLEY_HTIF_H

#include <stdint.h>

extern volatile uint64_t tohost;
extern volatile uint64_t fromhost;

/* Writes one byte to the host console and waits for the host to acknowledge it. */
void htif_putchar(char ch);
void htif_puts(const char *s);
/* Stops the machine; the host's exit status becomes `code`. */
__attribute__((noreturn)) void htif_exit(int code);

#endif
