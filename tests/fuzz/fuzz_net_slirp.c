/* plexus — libFuzzer target: the NAT uplink (devices/net/slirp.h) taking
 * frames from guests. Every frame a guest puts on a NAT segment reaches
 * px_slirp_input: the uplink's own address learning (ARP and IPv4 senders)
 * and then libslirp's parsers (ARP, IPv4, ICMP, UDP, TCP, DHCP, DNS).
 *
 * Input: a sequence of frames, each a 2-byte big-endian length and that
 * many bytes (a short or cut frame is passed as it is). Every frame goes to
 * one uplink (10.0.2.0/24, a port forward waiting for the guest MAC
 * 52:54:00:12:34:56, so a learnt address moves a forward), then the loop
 * runs once without blocking, so answers and timers run too.
 *
 * Checked: nothing crashes or trips the sanitizers; every frame the uplink
 * sends is a whole Ethernet frame from its gateway MAC; a learnt address
 * is inside the subnet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "devices/net/slirp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const uint8_t guest[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static uint8_t gw[6];

static void out(void *ud, const uint8_t *f, size_t len)
{
    (void)ud;
    CHECK(len >= 14 && len <= 65535);
    CHECK(memcmp(f + 6, gw, 6) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static px_slirp *s;
    if (!s) {
        uv_loop_init(&loop);
        px_slirp_opts o = {.net = 0x0a000200u, .prefix = 24, .name = "fuzz", .out = out};
        CHECK(px_slirp_open(&loop, &o, &s, NULL) == PX_OK);
        px_slirp_gateway_mac(s, gw);
        /* A high port nobody else uses here; a failure to listen is fine. */
        px_slirp_fwd_add(s, false, 47123, guest, 80, NULL);
    }
    size_t off = 0;
    while (off + 2 <= size) {
        size_t n = ((size_t)data[off] << 8) | data[off + 1];
        off += 2;
        if (n > size - off)
            n = size - off;
        px_slirp_input(s, data + off, n);
        off += n;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    uint32_t ip;
    if (px_slirp_lease(s, guest, &ip))
        CHECK((ip & 0xffffff00u) == 0x0a000200u);
    return 0;
}
