/* plexus — names shared by the Ethernet segment service, its tools and the
 * CLI (docs/ethernet.md). */
#ifndef PX_ETHHUB_PROTO_H
#define PX_ETHHUB_PROTO_H

#include <stdint.h>

#include "fabric/core/text.h"

/* The segment key in ETH messages (fabric/core/text.h). */
static inline uint64_t px_eth_seg_key(const char *lab, const char *seg)
{
    return px_net_key(lab, seg);
}

#endif
