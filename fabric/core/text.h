/* plexus — small text helpers shared by the parsers that say "did you mean". */
#ifndef PX_CORE_TEXT_H
#define PX_CORE_TEXT_H

/* Levenshtein distance between a and b; 99 when either is longer than 64
 * characters (too long to be a typo of a keyword). */
unsigned px_edit_distance(const char *a, const char *b);

#endif
