/* plexus — libFuzzer target: the ivshmem client-side decoder
 * (devices/ivshmem/proto.h), which every message from an ivshmem server
 * goes through in a host program.
 *
 * Input: byte 0 is max_vectors as given to px_ivshm_dec_init (0 and values
 * over 64 included: they mean 64). Then messages, each one op byte:
 *   bit 0     the message carries an fd (a real one: a dup of /dev/null)
 *   bits 1-2  how the value follows: 0 one signed byte (-128..127: the
 *             version, -1, small IDs), 1 two bytes LE (any ID), 2 eight
 *             bytes LE (anything), 3 none: the own ID once known (else 0)
 *
 * Properties checked on every message, against a reference model written
 * from proto.h alone:
 *   - accepted or rejected exactly as the model says; after a rejection
 *     everything is rejected, always with an explanation;
 *   - the event (kind, peer, vector) is the model's; px_ivshm_dec_ready
 *     agrees with it;
 *   - fds: an accepted message with an fd hands exactly that fd back in the
 *     event; one without hands back -1. The target closes what it gets back
 *     or what was rejected, and at the end the lowest free fd number is the
 *     one it was at the start: the decoder kept none.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/ivshmem/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

enum { M_VERSION, M_ID, M_SHM, M_READY, M_FAILED };

typedef struct model {
    int state;
    uint16_t own;
    uint32_t max;
    uint8_t cnt[PX_IVSHM_MAX_PEERS];
} model;

static px_ivshm_dec dec;
static model mod;

/* The model's verdict: false = rejected; else the event it expects. */
static bool model_feed(model *m, int64_t v, bool fd, px_ivshm_ev *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = PX_IVSHM_EV_NONE;
    bool ok = false;
    switch (m->state) {
    case M_VERSION:
        ok = v == 0 && !fd;
        if (ok)
            m->state = M_ID;
        break;
    case M_ID:
        ok = !fd && v >= 0 && v <= 65535;
        if (ok) {
            m->own = (uint16_t)v;
            m->state = M_SHM;
            ev->kind = PX_IVSHM_EV_ID;
            ev->peer = m->own;
        }
        break;
    case M_SHM:
        ok = v == -1 && fd;
        if (ok) {
            m->state = M_READY;
            ev->kind = PX_IVSHM_EV_SHM;
        }
        break;
    case M_READY:
        if (v < 0 || v > 65535)
            break;
        if (fd) {
            ok = m->cnt[v] < m->max;
            if (ok) {
                ev->kind = PX_IVSHM_EV_PEER_FD;
                ev->peer = (uint16_t)v;
                ev->vector = m->cnt[v]++;
            }
        } else {
            ok = v != m->own && m->cnt[v] > 0;
            if (ok) {
                m->cnt[v] = 0;
                ev->kind = PX_IVSHM_EV_PEER_GONE;
                ev->peer = (uint16_t)v;
            }
        }
        break;
    default:
        break;
    }
    if (!ok)
        m->state = M_FAILED;
    return ok;
}

static int devnull = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (devnull < 0) {
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(devnull >= 0);
    }
    if (size < 1)
        return 0;
    int first = dup(devnull);
    CHECK(first >= 0);
    close(first);

    uint32_t maxv = data[0];
    px_ivshm_dec_init(&dec, maxv);
    memset(&mod, 0, sizeof(mod));
    mod.max = maxv == 0 || maxv > PX_IVSHM_MAX_VECTORS ? PX_IVSHM_MAX_VECTORS : maxv;
    CHECK(!px_ivshm_dec_ready(&dec));

    size_t i = 1;
    while (i < size) {
        uint8_t op = data[i++];
        bool has_fd = op & 1;
        int64_t v = 0;
        switch ((op >> 1) & 3) {
        case 0:
            if (i + 1 > size)
                goto out;
            v = (int8_t)data[i];
            i += 1;
            break;
        case 1:
            if (i + 2 > size)
                goto out;
            v = data[i] | (int64_t)data[i + 1] << 8;
            i += 2;
            break;
        case 2: {
            if (i + 8 > size)
                goto out;
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--)
                u = u << 8 | data[i + k];
            v = (int64_t)u;
            i += 8;
            break;
        }
        default:
            v = mod.state >= M_SHM ? mod.own : 0;
            break;
        }

        int fd = -1;
        if (has_fd) {
            fd = dup(devnull);
            CHECK(fd >= 0);
        }
        px_ivshm_ev want, got;
        px_errmsg em;
        em.text[0] = '\0';
        bool ok = model_feed(&mod, v, has_fd, &want);
        px_err err = px_ivshm_dec_feed(&dec, v, fd, &got, &em);
        if (!ok) {
            CHECK(err == PX_E_PROTO);
            CHECK(em.text[0] != '\0');
            if (fd >= 0)
                close(fd);
        } else {
            CHECK(err == PX_OK);
            CHECK(got.kind == want.kind);
            if (got.kind == PX_IVSHM_EV_ID || got.kind == PX_IVSHM_EV_PEER_FD ||
                got.kind == PX_IVSHM_EV_PEER_GONE)
                CHECK(got.peer == want.peer);
            if (got.kind == PX_IVSHM_EV_PEER_FD)
                CHECK(got.vector == want.vector && got.vector < mod.max);
            CHECK(got.fd == fd);
            if (got.fd >= 0)
                close(got.fd);
        }
        CHECK(px_ivshm_dec_ready(&dec) == (mod.state == M_READY));
    }

out:;
    int last = dup(devnull);
    CHECK(last == first);
    close(last);
    return 0;
}
