#include "htif.h"

#include <stdio.h>
#include <stdlib.h>

#define HTIF_DEV_CONSOLE 1ULL
#define HTIF_CMD_WRITE 1ULL

void htif_putchar(char ch) {
  tohost = (HTIF_DEV_CONSOLE << 56) | (HTIF_CMD_WRITE << 48) | (uint8_t)ch;
  /* Waiting for the acknowledgement keeps writes from overtaking each other:
     the host may not have consumed the previous command otherwise. */
  while (fromhost == 0) {
  }
  fromhost = 0;
}

void htif_puts(const char *s) {
  while (*s) htif_putchar(*s++);
}

void htif_exit(int code) {
  /* Bit 0 marks the exit command; the status is in the remaining bits. */
  tohost = ((uint64_t)(uint32_t)code << 1) | 1;
  for (;;) {
  }
}

void _exit(int code) { htif_exit(code); }

/* picolibc's tinystdio talks to devices through per-FILE callbacks. */
static int htif_stdio_put(char ch, FILE *file) {
  (void)file;
  htif_putchar(ch);
  return (unsigned char)ch;
}

/* There is no console input for these programs; reads see end-of-file. */
static int htif_stdio_get(FILE *file) {
  (void)file;
  return _FDEV_EOF;
}

static FILE htif_stdio = FDEV_SETUP_STREAM(htif_stdio_put, htif_stdio_get, NULL, _FDEV_SETUP_RW);

FILE *const stdin = &htif_stdio;
FILE *const stdout = &htif_stdio;
FILE *const stderr = &htif_stdio;

/* Deliberately avoids printf: the trap may have come from inside libc. */
static void put_hex(uint64_t v) {
  htif_puts("0x");
  for (int shift = 60; shift >= 0; shift -= 4) htif_putchar("0123456789abcdef"[(v >> shift) & 15]);
}

__attribute__((noreturn)) void __bm_trap_report(uint64_t mcause, uint64_t mepc, uint64_t mtval) {
  htif_puts("\ntrap: mcause=");
  put_hex(mcause);
  htif_puts(" mepc=");
  put_hex(mepc);
  htif_puts(" mtval=");
  put_hex(mtval);
  htif_puts("\n");
  htif_exit(3);
}
