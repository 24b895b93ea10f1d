/* plexus — small text helpers: "did you mean" for the parsers, and the
 * keys fabric services name their objects by on the wire. */
#ifndef PX_CORE_TEXT_H
#define PX_CORE_TEXT_H

#include <stdint.h>

/* Levenshtein distance between a and b; 99 when either is longer than 64
 * characters (too long to be a typo of a keyword). */
unsigned px_edit_distance(const char *a, const char *b);

/* FNV-1a 64 over "LAB\0NAME": the wire key of a lab's net (a CAN bus, an
 * Ethernet segment); the separator keeps ("ab","c") apart from ("a","bc"). */
uint64_t px_net_key(const char *lab, const char *name);

#endif
