/* plexus — how a node's fabric service (CAN buses, Ethernet segments)
 * reaches the rest of the node: the data plane to other nodes and to tools,
 * peers' keys, and admitting a tool's key. The node fills one in
 * (px_node_svc_io, node/agent.h); services only call it. */
#ifndef PX_CORE_SVCIO_H
#define PX_CORE_SVCIO_H

#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"
#include "fabric/core/transport.h"

typedef struct px_svc_io {
    /* Bytes (whole envelopes) to node `node`'s data plane. */
    px_err (*to_node)(void *ud, const char *node, const uint8_t *data, size_t len);
    /* Bytes to a tool connected to this node's data-plane server. */
    px_err (*to_peer)(void *ud, const px_peer *peer, const uint8_t *data, size_t len);
    /* The data-plane public key (Z85) of node `node`, NULL if unknown. */
    const char *(*node_key)(void *ud, const char *node);
    /* Admit a tool's public key on this node's data plane. */
    px_err (*admit)(void *ud, const char *key_z85);
    void *ud;
    const char *self;     /* this node's name */
    const char *data_ep;  /* this node's data endpoint (for tools) */
    const char *data_key; /* and its public key */
} px_svc_io;

/* What a service's tool command answers (a TOOL_REPLY's fields). */
typedef struct px_svc_reply {
    px_err code;
    char text[4000];
    char json[4000];
    char endpoint[256]; /* a data endpoint to stream from/to, if any */
    char key[64];       /* and its public key */
} px_svc_reply;

#endif
