/* plexus — names shared by the Ethernet segment service, its tools and the
 * CLI (docs/ethernet.md). */
#ifndef PX_ETHHUB_PROTO_H
#define PX_ETHHUB_PROTO_H

#include <stdint.h>

/* The segment key in ETH messages: FNV-1a 64 over "LAB\0SEGMENT", never 0. */
static inline uint64_t px_eth_seg_key(const char *lab, const char *seg)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = lab; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    h = (h ^ 0u) * 0x100000001b3ull;
    for (const char *p = seg; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h ? h : 1;
}

#endif
