/* plexus-node — the per-host agent.
 *
 * Registers with the coordinator (HELLO, REGISTER with capacity, features
 * and the labs it still runs), heartbeats, applies plans and reports each
 * plan's outcome (STATUS). Survives coordinator restarts: the control
 * channel reconnects by itself with back-off and the agent registers again
 * on every new connection, reporting its labs so that nothing is restarted.
 *
 * Data plane: a SERVER channel that peer nodes connect to; the allow-list is
 * the data keys of the nodes named in this node's plans. Fabric services
 * plug in on top of it (CAN, Ethernet, ivshmem, CXL: later issues).
 *
 * One libuv loop; nothing here blocks except creating and removing the
 * per-lab runtime directories.
 */
#ifndef PX_NODE_AGENT_H
#define PX_NODE_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "coordinator/topology.h"
#include "fabric/core/svcio.h"
#include "fabric/core/transport.h"
#include "node/accel.h"
#include "node/guest.h"
#include "node/mesh.h"
#include "fabric/core/wire.h"

#define PX_NODE_MAX_LABS   64u
#define PX_NODE_MAX_GUESTS 1024u

typedef struct px_node_opts {
    const char *name;
    const char *coordinator;     /* endpoint */
    const char *coordinator_key; /* Z85 public key */
    px_keypair key;              /* this node's key pair (control and data plane) */
    const char *data_listen;     /* data-plane bind endpoint, e.g. tcp://10.0.0.2:7700 */
    const char *runtime_dir;     /* private runtime root (created 0700) */
    uint32_t cpus;               /* capacity offered; 0 = online CPUs x 4 */
    uint64_t mem_mb;             /* 0 = physical memory / 2 */
    const char *qemu;            /* QEMU binary; NULL = qemu-system-x86_64 */
    const char *image_dir;       /* built-in guest images: DIR/NAME/{vmlinuz,initrd.img} */
    const char *can_shim;        /* libpxcanshim.so for guests with CAN controllers */
    const char *cache_dir;       /* where the KVM probe result is kept; NULL = none */
    uint32_t stop_timeout_ms;    /* graceful guest stop before quit; 0 = 3000 */
    bool dry_run;                /* apply plans but start no QEMU: guests stay "planned" */
} px_node_opts;

typedef struct px_node_guest {
    char name[64];
    uint32_t index; /* in the lab's topology, PX_TOPO_NONE if not there */
    px_guest *g;    /* NULL until created (or if it could not be) */
    char state[16]; /* used while g is NULL */
    char detail[256];
} px_node_guest;

struct px_node;

typedef struct px_node_lab {
    struct px_node *node;
    char name[64];
    uint64_t epoch;
    char dir[4096]; /* runtime directory of this lab on this node, 0700 */
    px_topo *topo;
    uint32_t n_guests;
    px_node_guest *guests;
    char (*vxcan)[16]; /* vxcan pairs made for it (node ends), node/can.c */
    uint32_t n_vxcan;
    bool ready;    /* applied: guest changes are reported */
    bool stopping; /* teardown: removed once no QEMU runs */
    uint64_t stop_epoch;
} px_node_lab;

typedef enum px_node_accel {
    PX_NODE_ACCEL_UNKNOWN, /* the KVM probe has not answered yet */
    PX_NODE_ACCEL_KVM,
    PX_NODE_ACCEL_TCG,
} px_node_accel;

typedef struct px_node {
    uv_loop_t *loop;
    px_transport *tp;
    px_chan *ctl;          /* CLIENT to the coordinator */
    px_chan *data;         /* SERVER for peer nodes */
    px_mesh mesh;          /* CLIENT links to peer nodes */
    struct px_cansvc *can; /* CAN buses (fabric/can-bus/service.h) */
    struct px_ethsvc *eth; /* Ethernet segments (fabric/eth-hub/service.h) */
    struct px_shmsvc *shm; /* ivshmem regions (fabric/shm/service.h) */
    struct px_node_cxl *cxlst; /* CXL pools and LDs (node/cxl.h) */
    uv_timer_t hb;
    px_node_opts opts;
    char name[64];
    char runtime[4096];
    uint32_t cpus;
    uint64_t mem_mb;
    uint32_t n_features;
    char features[8][32];
    bool registered;
    uint32_t node_id;
    uint32_t hb_ms;
    uint64_t start_ms;
    px_node_accel accel;
    char accel_why[256];
    px_accel_probe *probe;
    px_node_lab *labs[PX_NODE_MAX_LABS];
    uint32_t n_labs;
    px_wbuf out;
    uint64_t seq;
    px_msg *scratch;
    bool closing;
    unsigned pending_close;
} px_node;

/* Start: open the channels and begin registering. On error nothing is left
 * open. opts strings must outlive the node. */
px_err px_node_start(px_node *n, uv_loop_t *loop, const px_node_opts *opts, px_errmsg *em);

/* Begin shutdown: a stopped node's guests are gone, so its lab runtime
 * directories are removed; the loop ends once the handles have closed. */
void px_node_stop(px_node *n);

void px_node_fini(px_node *n);

/* What the node's fabric services send and admit through
 * (fabric/core/svcio.h): the mesh, the data-plane server, its keys. */
void px_node_svc_io(px_node *n, px_svc_io *io);

/* Start the guests of l that can start now (after their CXL LDs arrived). */
void px_node_lab_start(px_node *n, px_node_lab *l);
/* Tell the coordinator about l's guests again (a state only the node
 * knows changed). */
void px_node_lab_changed(px_node *n, px_node_lab *l);

#endif
