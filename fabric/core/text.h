/* plexus — small text helpers: "did you mean" for the parsers, and the
 * keys fabric services name their objects by on the wire. */
#ifndef PX_CORE_TEXT_H
#define PX_CORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Levenshtein distance between a and b; 99 when either is longer than 64
 * characters (too long to be a typo of a keyword). */
unsigned px_edit_distance(const char *a, const char *b);

/* FNV-1a 64 over "LAB\0NAME": the wire key of a lab's net (a CAN bus, an
 * Ethernet segment); the separator keeps ("ab","c") apart from ("a","bc"). */
uint64_t px_net_key(const char *lab, const char *name);

/* The value of hex digit c (either case), -1 for any other character. */
int px_hex_digit(char c);

/* n bytes as 2n lowercase hex digits and a NUL into out (cap >= 2n + 1;
 * less is written, whole bytes only, when it is not). */
void px_hex_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* 2n hex digits s[0..len) into n bytes: false for an odd length, a
 * character that is not a hex digit, or more than cap bytes. */
bool px_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n);

#endif
