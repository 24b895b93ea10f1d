/* plexus — the forwarding database of a learning bridge.
 *
 * Which port a station is behind, keyed on (VLAN id, MAC address), learnt
 * from the source addresses of frames as they arrive; what the segment asks
 * for every frame's destination (unknown: flood). The table is bounded: a
 * guest spraying random source addresses fills it and then only pushes out
 * the stations seen least recently (counted as evicted); it never makes the
 * table grow or fail.
 *
 * Ageing: an entry not seen for longer than the ageing time is as good as
 * gone for px_fdb_lookup and px_fdb_learn at once; px_fdb_expire removes
 * such entries for real (the caller runs it from a timer, e.g. every
 * second), and so does px_fdb_learn when it needs the room.
 *
 * Times are the caller's CLOCK_MONOTONIC nanoseconds and must not go
 * backwards from call to call: the table keeps its entries in the order
 * they were last seen, and that order is what eviction and px_fdb_expire
 * go by.
 *
 * Cost: learn and lookup are O(1) on average (open addressing, linear
 * probing, at most half the slots used, no tombstones) and never allocate;
 * learning a known station on its known port only stamps the time and
 * moves it to the front of the recency list. All memory is allocated by
 * px_fdb_new. The hash is keyed (px_fdb_new_seeded), so a guest cannot
 * choose addresses that all land in one probe run.
 *
 * No I/O, no clock, no callbacks. Not thread-safe: one table, one thread.
 */
#ifndef PX_ETH_FDB_H
#define PX_ETH_FDB_H

#include <stdbool.h>
#include <stdint.h>

#include "fabric/core/err.h"

#define PX_FDB_NONE              UINT32_MAX
#define PX_FDB_DEFAULT_ENTRIES   4096u
#define PX_FDB_MAX_ENTRIES       (1u << 22)               /* px_fdb_new refuses more */
#define PX_FDB_DEFAULT_AGEING_NS (300ull * 1000000000ull) /* 802.1D's 300 s */

typedef struct px_fdb px_fdb;

typedef struct px_fdb_entry {
    uint16_t vid;
    uint8_t mac[6];
    uint32_t port;
    uint64_t seen_ns; /* last learnt */
} px_fdb_entry;

typedef struct px_fdb_stats {
    uint64_t learned; /* entries created (also: an aged entry learnt again) */
    uint64_t moved;   /* a known station seen on another port */
    uint64_t evicted; /* pushed out by a new station while the table was full */
    uint64_t expired; /* removed after the ageing time */
    uint32_t entries; /* held now (aged ones not yet expired included) */
} px_fdb_stats;

/* A table of at most max_entries stations (0: PX_FDB_DEFAULT_ENTRIES) that
 * ages them after ageing_ns (0: PX_FDB_DEFAULT_AGEING_NS). px_fdb_new keys
 * the hash with addresses (as random as the address space layout, no
 * more); a caller with a real random seed (getrandom) passes it to
 * px_fdb_new_seeded instead. PX_E_TOOBIG past
 * PX_FDB_MAX_ENTRIES, PX_E_NOMEM; *out is NULL then. Free with px_fdb_free. */
px_err px_fdb_new(uint32_t max_entries, uint64_t ageing_ns, px_fdb **out);
px_err px_fdb_new_seeded(uint32_t max_entries, uint64_t ageing_ns, uint64_t seed, px_fdb **out);

/* NULL is allowed. */
void px_fdb_free(px_fdb *f);

/* Change the ageing time (0: PX_FDB_DEFAULT_AGEING_NS); applies to every
 * entry from the next call on. */
void px_fdb_set_ageing(px_fdb *f, uint64_t ageing_ns);

/* Learn that (vid, mac) is behind port at now. Group (multicast/broadcast)
 * source MACs are ignored (return false), and so is port PX_FDB_NONE.
 * Returns true when the entry is new (or had aged) or moved to another
 * port; false when it was known on that port (only its time is updated).
 * Full table: the least recently seen entry is evicted (counted in
 * stats.evicted, or stats.expired if it had aged anyway). */
bool px_fdb_learn(px_fdb *f, uint16_t vid, const uint8_t mac[6], uint32_t port, uint64_t now_ns);

/* The port, or PX_FDB_NONE when unknown or not seen for longer than the
 * ageing time. Group MACs are never known. */
uint32_t px_fdb_lookup(const px_fdb *f, uint16_t vid, const uint8_t mac[6], uint64_t now_ns);

/* Forget every station behind port (the port went away or its link went
 * down). O(entries). Not counted in the stats. */
void px_fdb_flush_port(px_fdb *f, uint32_t port);

/* Forget every station. The stats' counters keep counting. */
void px_fdb_flush(px_fdb *f);

/* Remove the entries not seen for longer than the ageing time; returns how
 * many (also added to stats.expired). O(removed). */
uint32_t px_fdb_expire(px_fdb *f, uint64_t now_ns);

/* Copy up to max entries to out, sorted by vid, then mac (bytewise); when
 * the table holds more than max, the first max in that order. Aged
 * entries not yet expired are included (seen_ns tells). Returns how many
 * were written. O(entries log max); for the CLI, not the data path. */
uint32_t px_fdb_dump(const px_fdb *f, px_fdb_entry *out, uint32_t max);

void px_fdb_stats_get(const px_fdb *f, px_fdb_stats *out);

#endif
