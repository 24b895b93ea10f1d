/* plexus — CAN bus keys and member ids. See proto.h. */
#include "fabric/can-bus/proto.h"

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x100000001b3ull

static uint64_t fnv64(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * FNV64_PRIME;
    return h;
}

uint64_t px_can_bus_key(const char *lab, const char *bus)
{
    uint64_t h = fnv64(FNV64_OFFSET, lab);
    h = (h ^ 0u) * FNV64_PRIME; /* the separator: ("ab","c") != ("a","bc") */
    return fnv64(h, bus);
}

uint32_t px_can_member_id(const char *name)
{
    uint32_t h = 0x811c9dc5u;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 0x01000193u;
    return h ? h : 1; /* 0 means "none" on the wire */
}
