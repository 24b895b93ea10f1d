/* plexus — CAN bus keys and member ids. See proto.h. */
#include "fabric/can-bus/proto.h"

#include "fabric/core/text.h"

uint64_t px_can_bus_key(const char *lab, const char *bus)
{
    return px_net_key(lab, bus);
}

uint32_t px_can_member_id(const char *name)
{
    uint32_t h = 0x811c9dc5u;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 0x01000193u;
    return h ? h : 1; /* 0 means "none" on the wire */
}
