/* plexus — an ordered send queue to one node. See outq.h. */
#include "fabric/core/outq.h"

#include <stdlib.h>
#include <string.h>

struct px_outq_msg {
    px_outq_msg *next;
    size_t len;
    uint8_t data[];
};

static px_err hold(px_outq *q, const uint8_t *data, size_t len, size_t max)
{
    if (q->bytes + len > max)
        return PX_E_TOOBIG;
    px_outq_msg *m = malloc(sizeof(*m) + len);
    if (!m)
        return PX_E_NOMEM;
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->bytes += len;
    return PX_E_AGAIN;
}

px_err px_outq_send(px_outq *q, const px_svc_io *io, const char *node, const uint8_t *data,
                    size_t len, size_t max)
{
    if (!q->head) {
        px_err err = io->to_node(io->ud, node, data, len);
        if (err != PX_E_AGAIN)
            return err;
    }
    return hold(q, data, len, max);
}

bool px_outq_flush(px_outq *q, const px_svc_io *io, const char *node, uint64_t *dropped)
{
    while (q->head) {
        px_err err = io->to_node(io->ud, node, q->head->data, q->head->len);
        if (err == PX_E_AGAIN)
            return true;
        if (err != PX_OK && dropped)
            (*dropped)++;
        px_outq_msg *m = q->head;
        q->head = m->next;
        if (!q->head)
            q->tail = NULL;
        q->bytes -= m->len;
        free(m);
    }
    return false;
}

void px_outq_clear(px_outq *q)
{
    while (q->head) {
        px_outq_msg *m = q->head;
        q->head = m->next;
        free(m);
    }
    q->tail = NULL;
    q->bytes = 0;
}
