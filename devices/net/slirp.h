/* plexus — the NAT uplink of an Ethernet segment (libslirp).
 *
 * One libslirp stack per segment, QEMU user-mode layout: for network N/p
 * the gateway is N+2 (it also reaches the node's own loopback: a guest
 * connecting to N+2:PORT reaches 127.0.0.1:PORT on the node), DNS is N+3,
 * and DHCP hands out N+15 .. N+30 (libslirp serves 16 clients). IPv4 only.
 * The gateway's MAC is 52:55 followed by N+2 (libslirp's convention).
 *
 * Driven by the caller's libuv loop: libslirp's sockets are watched
 * through one epoll set of this module's own (a uv_poll on it), filled
 * right before each poll (uv_prepare) and handed back right after it
 * (uv_check), with a uv_timer for libslirp's TCP timers. libslirp is not
 * thread-safe: loop thread only.
 *
 * Host port forwards go to a guest by MAC: its IPv4 address is learnt from
 * the uplink's own DHCP ACKs (yiaddr + chaddr) and from ARP / IPv4 frames
 * the guest sends inside the subnet; the forward is installed in libslirp
 * when the address is known and moved when it changes. Until then nothing
 * listens on the host port (connections are refused).
 */
#ifndef PX_NET_SLIRP_H
#define PX_NET_SLIRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fabric/core/err.h"

typedef struct px_slirp px_slirp;

#define PX_SLIRP_MAX_FWDS   256u       /* port forwards per uplink */
#define PX_SLIRP_MAX_LEASES 256u       /* MAC → IPv4 addresses remembered (oldest replaced) */
#define PX_SLIRP_OUTQ_MAX   (1u << 20) /* bytes of frames held for delivery (see out) */

/* A frame from the uplink onto the segment; f is valid only during the
 * call. Runs from loop callbacks only: frames produced inside
 * px_slirp_input (ARP and DHCP replies, ACKs) are held and delivered right
 * after the loop's next poll, so out never runs inside a px_slirp_* call. */
typedef void (*px_slirp_out_cb)(void *ud, const uint8_t *f, size_t len);

typedef struct px_slirp_opts {
    uint32_t net;     /* IPv4 network, host byte order, e.g. 10.0.2.0 (host bits zero) */
    uint8_t prefix;   /* 8..27 (the DHCP range N+15 .. N+30 must fit the subnet) */
    const char *name; /* for logs */
    px_slirp_out_cb out;
    void *ud;
} px_slirp_opts;

typedef struct px_slirp_stats {
    uint64_t rx;           /* frames from the segment handed to libslirp */
    uint64_t rx_ignored;   /* frames from the segment not for the uplink (unicast elsewhere) */
    uint64_t rx_fragments; /* IPv4 fragments, dropped (libslirp 4.7 cannot take them safely) */
    uint64_t tx;           /* frames from the uplink onto the segment */
    uint64_t tx_dropped;   /* frames held over PX_SLIRP_OUTQ_MAX, dropped */
    uint64_t guest_errors; /* libslirp's "guest misbehaved" reports (logged) */
} px_slirp_stats;

/* Create the stack on loop. PX_E_CONFIG (em says why) for a bad network or
 * prefix; PX_E_IO if libslirp or the epoll set cannot be created. No
 * callback runs inside. o->name is copied. */
px_err px_slirp_open(uv_loop_t *loop, const px_slirp_opts *o, px_slirp **out, px_errmsg *em);

/* A frame from the segment (any destination: frames unicast to another
 * MAC are ignored; broadcast, multicast and frames to the uplink's MACs go
 * to libslirp). Learns guest addresses (see above). Never blocks. */
void px_slirp_input(px_slirp *s, const uint8_t *f, size_t len);

/* Port forward host:host_port (all host addresses) -> the guest owning mac,
 * port guest_port. PX_E_EXISTS if (udp, host_port) is forwarded already;
 * PX_E_IO (em: "port 8080 on this host is in use" and a hint) if the port
 * cannot be listened on; PX_E_TOOBIG past PX_SLIRP_MAX_FWDS. A forward for a
 * guest whose address is not known yet is checked by a trial bind and
 * installed when the address is learnt (a failure then is logged, shown as
 * not active, and tried again at the guest's next DHCP ACK). */
px_err px_slirp_fwd_add(px_slirp *s, bool udp, uint16_t host_port, const uint8_t mac[6],
                        uint16_t guest_port, px_errmsg *em);

/* Remove a forward (added by px_slirp_fwd_add). PX_E_NOTFOUND if none. */
px_err px_slirp_fwd_del(px_slirp *s, bool udp, uint16_t host_port);

typedef struct px_slirp_fwd_info {
    bool udp;
    uint16_t host_port, guest_port;
    uint8_t mac[6];
    uint32_t guest_ip; /* host byte order; 0 while unknown */
    bool active;       /* installed in libslirp: the host port is listening */
} px_slirp_fwd_info;

/* Copy up to max forwards into out (in the order added); returns how many
 * there are in all. */
uint32_t px_slirp_fwds(const px_slirp *s, px_slirp_fwd_info *out, uint32_t max);

/* The address learnt for mac (host byte order); false if none. */
bool px_slirp_lease(const px_slirp *s, const uint8_t mac[6], uint32_t *ip);

/* The uplink's gateway MAC (52:55 + N+2). */
void px_slirp_gateway_mac(const px_slirp *s, uint8_t mac[6]);

void px_slirp_stats_get(const px_slirp *s, px_slirp_stats *out);

/* Tear down libslirp (its host sockets close now) and the loop handles; no
 * callback after it returns; memory freed once libuv has closed the
 * handles. NULL is ignored. Not from inside out. */
void px_slirp_close(px_slirp *s);

#endif
