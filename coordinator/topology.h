/* plexus — the topology model and its YAML loader.
 *
 * A topology file (docs/topology.md is the reference) describes guests
 * ("nodes"), the fabric objects they attach to ("nets": CAN buses, Ethernet
 * segments, ivshmem regions, CXL switches and pools), optional hosts with
 * their capacity, placement constraints, impairments and faults.
 *
 * px_topo_load_file() / px_topo_load_buffer() parse it with libyaml, apply
 * inheritance (node value > kind value > defaults > built-in default), parse
 * units, resolve every name to an index and validate the result. What comes
 * back is plain data: arrays of structs, references as indices into those
 * arrays (PX_TOPO_NONE when absent), fixed-size name buffers and a few owned
 * strings. Nothing points into the YAML text, so the model outlives the
 * buffer it was loaded from and can be walked field by field by an encoder.
 *
 * Errors: the loader stops at the FIRST problem and describes it in the
 * px_errmsg as "FILE:LINE:COL: what is wrong; expected WHAT" (LINE and COL
 * 1-based, pointing at the offending key or value), sometimes followed by
 * " (hint: ...)". The return code says the class: PX_E_CONFIG for anything
 * wrong in the file, PX_E_TOOBIG when a limit below is exceeded, PX_E_IO /
 * PX_E_NOTFOUND when the file cannot be read, PX_E_NOMEM.
 *
 * Every size a hostile file could inflate is bounded by a constant below and
 * checked before the memory for it is allocated. YAML aliases are rejected
 * (no expansion bombs); anchors alone are harmless and ignored.
 */
#ifndef PX_TOPOLOGY_H
#define PX_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/can-bus/gateway.h"
#include "fabric/core/err.h"

/* Limits. A file that exceeds one gets PX_E_TOOBIG at the place it does. */
#define PX_TOPO_NAME_MAX        64u        /* buffer size: names are 1..63 characters */
#define PX_TOPO_MAX_FILE        (1u << 20) /* bytes of YAML */
#define PX_TOPO_MAX_YAML_NODES  100000u    /* scalars + lists + maps in the document */
#define PX_TOPO_MAX_DEPTH       16u        /* nesting of lists/maps */
#define PX_TOPO_MAX_STRING      4096u      /* bytes in any scalar (paths, append line) */
#define PX_TOPO_MAX_GUESTS      4096u
#define PX_TOPO_MAX_KINDS       256u
#define PX_TOPO_MAX_NETS        1024u /* all net types together */
#define PX_TOPO_MAX_HOSTS       256u
#define PX_TOPO_MAX_ATTACH      32u   /* entries in one attachment list of one guest */
#define PX_TOPO_MAX_LABELS      32u   /* per host */
#define PX_TOPO_MAX_VLANS       4094u /* per segment */
#define PX_TOPO_MAX_FORWARDS    256u  /* per NAT uplink */
#define PX_TOPO_MAX_FAULTS      1024u
#define PX_TOPO_MAX_CONSTRAINTS 4096u /* pins, colocate groups, anti_affinity groups (each) */
#define PX_TOPO_MAX_GROUP       256u  /* guests in one colocate / anti_affinity group */
#define PX_TOPO_MAX_CXL_PORTS   32u   /* upstream ports of one CXL switch */
#define PX_TOPO_MAX_CXL_LDS     256u  /* logical devices in one CXL pool */
#define PX_TOPO_MAX_GATEWAYS    64u   /* gateways from one CAN bus */
#define PX_TOPO_MAX_HOST_IFS    16u   /* host CAN interfaces on one bus */
#define PX_TOPO_IFNAME_MAX      16u   /* a Linux interface name, with its NUL */
#define PX_TOPO_CXL_SYNC_DEF_NS 1000000000ull /* a cxl_pool's `sync:` when not given: 1 s */

/* "No reference" for every uint32_t index field below. */
#define PX_TOPO_NONE UINT32_MAX

/* Where something was written: 1-based line and column, 0 when synthesised. */
typedef struct px_topo_mark {
    uint32_t line;
    uint32_t col;
} px_topo_mark;

typedef enum px_topo_accel {
    PX_TOPO_ACCEL_AUTO = 0, /* kvm when /dev/kvm works (the node decides), else tcg */
    PX_TOPO_ACCEL_KVM,
    PX_TOPO_ACCEL_TCG
} px_topo_accel;

typedef enum px_topo_restart {
    PX_TOPO_RESTART_NO = 0,
    PX_TOPO_RESTART_ON_FAILURE,
    PX_TOPO_RESTART_ALWAYS
} px_topo_restart;

typedef enum px_topo_image_type {
    PX_TOPO_IMAGE_BUILTIN = 0, /* builtin:NAME, a guest image plexus ships */
    PX_TOPO_IMAGE_KERNEL,      /* direct kernel boot */
    PX_TOPO_IMAGE_DISK         /* boot from a disk image */
} px_topo_image_type;

typedef enum px_topo_nic_model {
    PX_TOPO_NIC_VIRTIO = 0, /* virtio-net-pci */
    PX_TOPO_NIC_E1000,
    PX_TOPO_NIC_E1000E,
    PX_TOPO_NIC_RTL8139
} px_topo_nic_model;

/* How QEMU's NIC reaches the node (docs/ethernet.md). */
typedef enum px_topo_nic_port {
    PX_TOPO_NIC_STREAM = 0, /* -netdev stream, QEMU the server: survives node restarts */
    PX_TOPO_NIC_DGRAM       /* -netdev dgram: one datagram per frame */
} px_topo_nic_port;

typedef enum px_topo_can_ctrl {
    PX_TOPO_CAN_KVASER_PCI = 0, /* SJA1000, classic CAN only */
    PX_TOPO_CAN_CTUCAN_PCI      /* CTU CAN FD */
} px_topo_can_ctrl;

/* How a guest's CAN controller reaches its node (docs/can-bus.md, "Attach
 * paths"). Every controller of one guest uses the same one: the shim takes
 * over every PF_CAN socket of the QEMU it is loaded into. */
typedef enum px_topo_can_attach {
    PX_TOPO_CAN_ATTACH_SHIM = 0, /* LD_PRELOAD shim, a SEQPACKET socket: works everywhere */
    PX_TOPO_CAN_ATTACH_VXCAN     /* a vxcan pair per controller: needs AF_CAN and vxcan */
} px_topo_can_attach;

typedef enum px_topo_can_mode {
    PX_TOPO_CAN_IDEAL = 0, /* ordered, unpaced */
    PX_TOPO_CAN_TIMED      /* paced to the bit rate, arbitrated by ID */
} px_topo_can_mode;

typedef enum px_topo_eth_mode {
    PX_TOPO_ETH_SWITCH = 0, /* learning bridge */
    PX_TOPO_ETH_HUB         /* every frame to every port */
} px_topo_eth_mode;

typedef enum px_topo_proto { PX_TOPO_PROTO_TCP = 0, PX_TOPO_PROTO_UDP } px_topo_proto;

/* What a px_topo_ref points at; the index is into the matching array. */
typedef enum px_topo_obj {
    PX_TOPO_OBJ_NONE = 0,
    PX_TOPO_OBJ_GUEST,       /* t->guests */
    PX_TOPO_OBJ_CAN_BUS,     /* t->can_buses */
    PX_TOPO_OBJ_ETH_SEGMENT, /* t->eth_segments */
    PX_TOPO_OBJ_IVSHMEM,     /* t->ivshmem */
    PX_TOPO_OBJ_CXL_SWITCH,  /* t->cxl_switches */
    PX_TOPO_OBJ_CXL_POOL,    /* t->cxl_pools */
    PX_TOPO_OBJ_HOST         /* t->hosts */
} px_topo_obj;

typedef struct px_topo_ref {
    px_topo_obj type;
    uint32_t index;
} px_topo_ref;

/* netem-like link impairment. Probabilities in parts per million
 * (1% = 10000), times in nanoseconds, rate in bit/s (0 = unlimited). */
/* Which frames of a NIC an impairment applies to, seen from the guest:
 * egress = frames it sends (like netem on the guest's own interface). */
typedef enum px_topo_direction {
    PX_TOPO_DIR_EGRESS = 0,
    PX_TOPO_DIR_INGRESS,
    PX_TOPO_DIR_BOTH
} px_topo_direction;

typedef struct px_topo_impair {
    bool set; /* false: no impairment block was given */
    uint64_t delay_ns;
    uint64_t jitter_ns;
    uint32_t loss_ppm;
    uint32_t duplicate_ppm;
    uint32_t corrupt_ppm;
    uint32_t reorder_ppm; /* share of frames that skip the delay (netem's reorder) */
    uint32_t loss_burst;  /* mean length of a loss burst in frames; 0: independent losses */
    uint64_t rate_bps;
    px_topo_direction direction; /* a NIC's: which way it applies (nets: both) */
} px_topo_impair;

typedef struct px_topo_image {
    px_topo_image_type type;
    char builtin[PX_TOPO_NAME_MAX]; /* BUILTIN: the NAME of builtin:NAME */
    char *kernel;                   /* KERNEL: path, never NULL */
    char *initrd;                   /* KERNEL: path or NULL */
    char *append;                   /* KERNEL: command line or NULL */
    char *disk;                     /* DISK: path, never NULL */
} px_topo_image;

/* Attachments. Paths in images are as written; relative ones are relative
 * to px_topo.base_dir. */
typedef struct px_topo_nic {
    uint32_t segment; /* t->eth_segments */
    uint8_t mac[6];
    bool mac_generated; /* no mac: given, the loader derived a stable one */
    px_topo_nic_model model;
    uint16_t vlan; /* access VLAN 1..4094, 0 = trunk (guest tags its own frames) */
    px_topo_nic_port port;
    px_topo_impair impair;
    px_topo_mark mark;
} px_topo_nic;

typedef struct px_topo_canif {
    uint32_t bus; /* t->can_buses */
    px_topo_can_ctrl controller;
    px_topo_can_attach attach;
    px_topo_mark mark;
} px_topo_canif;

typedef struct px_topo_shmif {
    uint32_t region; /* t->ivshmem */
    px_topo_mark mark;
} px_topo_shmif;

typedef struct px_topo_cxlif {
    uint32_t sw;    /* t->cxl_switches */
    uint32_t port;  /* upstream port on that switch, 0..ports-1 */
    bool port_auto; /* the loader picked the port (lowest free) */
    uint32_t pool;  /* t->cxl_pools or PX_TOPO_NONE: LDs bound at start */
    uint32_t lds;   /* how many LDs of pool are bound at start */
    px_topo_mark mark;
} px_topo_cxlif;

typedef struct px_topo_guest {
    char name[PX_TOPO_NAME_MAX];
    char kind[PX_TOPO_NAME_MAX]; /* "" when none */
    uint32_t cpus;
    uint64_t memory; /* bytes */
    px_topo_image image;
    px_topo_accel accel;
    px_topo_restart restart;
    px_topo_nic *nics;
    uint32_t n_nics;
    px_topo_canif *cans;
    uint32_t n_cans;
    px_topo_shmif *shms;
    uint32_t n_shms;
    px_topo_cxlif *cxls;
    uint32_t n_cxls;
    px_topo_mark mark; /* the guest's name under nodes: */
} px_topo_guest;

/* A cangw-like route from a CAN bus to another (fabric/can-bus/gateway.h):
 * rule.src_bus is the bus it is written under, rule.dst_bus its `to:`
 * (both indices into t->can_buses, never equal); filter, modifications,
 * fd and hops as parsed (defaults: every frame, unchanged, classic only,
 * 1 hop). */
typedef struct px_topo_can_gateway {
    px_cangw_rule rule;
    px_topo_mark mark; /* the list item */
} px_topo_can_gateway;

/* A SocketCAN interface of a host (real CAN hardware) that is a member of
 * a bus: `host_interfaces: [{host: H, interface: IF}]`. host indexes
 * t->hosts; ifname is a valid Linux name (1..15 characters, no '/', ':' or
 * space, not "." or ".."); no pair twice on one bus. */
typedef struct px_topo_hostif {
    uint32_t host;
    char ifname[PX_TOPO_IFNAME_MAX];
    px_topo_mark mark; /* the list item */
} px_topo_hostif;
typedef px_topo_hostif px_topo_can_hostif;

typedef struct px_topo_can_bus {
    char name[PX_TOPO_NAME_MAX];
    uint64_t bitrate;      /* bit/s, arbitration phase */
    uint64_t data_bitrate; /* bit/s, FD data phase; 0 when !fd */
    bool fd;
    px_topo_can_mode mode;
    px_topo_impair impair;
    px_topo_can_gateway *gateways; /* frames of this bus routed to others */
    uint32_t n_gateways;
    px_topo_can_hostif *host_ifs; /* host CAN interfaces that are members */
    uint32_t n_host_ifs;
    px_topo_mark mark;
} px_topo_can_bus;

typedef struct px_topo_forward {
    px_topo_proto proto;
    uint16_t listen; /* port on the host running the NAT uplink */
    uint32_t guest;  /* t->guests; has a NIC on this segment */
    uint16_t port;   /* port in the guest */
    px_topo_mark mark;
} px_topo_forward;

typedef struct px_topo_nat {
    bool enabled;
    uint32_t subnet; /* IPv4 network address, host byte order */
    uint8_t prefix;  /* prefix length */
    px_topo_forward *forwards;
    uint32_t n_forwards;
} px_topo_nat;

typedef struct px_topo_eth_segment {
    char name[PX_TOPO_NAME_MAX];
    px_topo_eth_mode mode;
    uint16_t *vlans; /* sorted; n_vlans == 0: any VLAN */
    uint32_t n_vlans;
    uint32_t mtu;
    px_topo_nat nat;
    px_topo_impair impair;
    px_topo_hostif *taps; /* `taps:` TAP interfaces of hosts that are ports */
    uint32_t n_taps;
    px_topo_mark mark;
} px_topo_eth_segment;

typedef struct px_topo_ivshmem {
    char name[PX_TOPO_NAME_MAX];
    uint64_t size; /* bytes, a power of two */
    uint32_t vectors;
    uint64_t sync_ns; /* periodic contents sync between hosts; 0 = at doorbells only */
    uint32_t *hosts;  /* `hosts:` t->hosts serving the region to host programs */
    uint32_t n_hosts;
    px_topo_mark mark;
} px_topo_ivshmem;

typedef struct px_topo_cxl_switch {
    char name[PX_TOPO_NAME_MAX];
    uint32_t ports;
    px_topo_mark mark;
} px_topo_cxl_switch;

typedef struct px_topo_cxl_pool {
    char name[PX_TOPO_NAME_MAX];
    uint32_t sw;       /* t->cxl_switches */
    uint64_t capacity; /* bytes, multiple of ld_size */
    uint64_t ld_size;  /* bytes, multiple of 256 MiB */
    uint32_t n_lds;    /* capacity / ld_size */
    uint64_t sync_ns;  /* `sync:` period of its shared LDs between hosts (docs/cxl.md) */
    px_topo_mark mark;
} px_topo_cxl_pool;

typedef struct px_topo_label {
    char key[PX_TOPO_NAME_MAX];
    char value[PX_TOPO_NAME_MAX];
} px_topo_label;

typedef struct px_topo_host {
    char name[PX_TOPO_NAME_MAX];
    char *address; /* "host", "host:port" or "[v6]:port"; NULL when not given */
    uint32_t cpus;
    uint64_t memory;
    px_topo_label *labels;
    uint32_t n_labels;
    px_topo_mark mark;
} px_topo_host;

typedef struct px_topo_pin {
    px_topo_ref what; /* a guest or a net */
    uint32_t host;    /* t->hosts */
    px_topo_mark mark;
} px_topo_pin;

typedef struct px_topo_group {
    uint32_t *guests; /* t->guests, at least 2, no repeats */
    uint32_t n;
    px_topo_mark mark;
} px_topo_group;

typedef struct px_topo_placement {
    px_topo_pin *pins;
    uint32_t n_pins;
    px_topo_group *colocate; /* each group on one host */
    uint32_t n_colocate;
    px_topo_group *anti_affinity; /* each group on pairwise different hosts */
    uint32_t n_anti_affinity;
    uint32_t headroom_cpus;   /* kept free on every host */
    uint64_t headroom_memory; /* bytes kept free on every host */
} px_topo_placement;

typedef enum px_topo_fault_type {
    PX_TOPO_FAULT_LINK_DOWN = 0, /* net, optionally one guest's attachment */
    PX_TOPO_FAULT_KILL,          /* guest process killed; restart policy applies */
    PX_TOPO_FAULT_PAUSE,         /* guest vCPUs stopped */
    PX_TOPO_FAULT_CAN_ERROR,     /* error frames on a CAN bus */
    PX_TOPO_FAULT_CAN_BUS_OFF,   /* one guest's controller goes bus-off */
    PX_TOPO_FAULT_IMPAIR         /* impairment applied to a net or one attachment */
} px_topo_fault_type;

typedef struct px_topo_fault {
    char name[PX_TOPO_NAME_MAX]; /* given, or "fault-N" (N = position, from 1) */
    px_topo_fault_type type;
    uint64_t at_ns;       /* after the lab is up */
    uint64_t duration_ns; /* 0 = until the lab is torn down */
    uint64_t every_ns;    /* 0 = once; else repeats, duration_ns < every_ns */
    uint32_t guest;       /* t->guests or PX_TOPO_NONE */
    px_topo_ref net;      /* CAN bus / Ethernet segment or PX_TOPO_OBJ_NONE */
    px_topo_impair impair;
    px_topo_mark mark;
} px_topo_fault;

typedef struct px_topo_arena px_topo_arena;

typedef struct px_topo {
    char name[PX_TOPO_NAME_MAX];
    char *source;   /* file name as given to the loader (for messages) */
    char *base_dir; /* directory relative image paths are resolved against */

    px_topo_guest *guests;
    uint32_t n_guests;

    px_topo_can_bus *can_buses;
    uint32_t n_can_buses;
    px_topo_eth_segment *eth_segments;
    uint32_t n_eth_segments;
    px_topo_ivshmem *ivshmem;
    uint32_t n_ivshmem;
    px_topo_cxl_switch *cxl_switches;
    uint32_t n_cxl_switches;
    px_topo_cxl_pool *cxl_pools;
    uint32_t n_cxl_pools;

    px_topo_host *hosts; /* n_hosts == 0: no hosts section (local mode decides) */
    uint32_t n_hosts;
    px_topo_placement placement;

    px_topo_fault *faults;
    uint32_t n_faults;

    px_topo_arena *arena; /* private: owns everything above */
} px_topo;

/* Load a topology file. On success *out is a new model the caller frees
 * with px_topo_free(); on failure *out is NULL and em (if not NULL) says
 * what and where. Blocks on reading the file (at most PX_TOPO_MAX_FILE
 * bytes); no other side effects. Relative image paths stay relative;
 * base_dir is the file's directory. */
px_err px_topo_load_file(const char *path, px_topo **out, px_errmsg *em);

/* Same from memory. `name` is used in messages and as px_topo.source; the
 * buffer is only read during the call (need not be NUL-terminated) and
 * base_dir is ".". Never blocks. Safe on arbitrary bytes. */
px_err px_topo_load_buffer(const char *name, const char *buf, size_t len, px_topo **out,
                           px_errmsg *em);

/* Frees t and everything it owns. NULL is allowed. */
void px_topo_free(px_topo *t);

/* Lookups by name; PX_TOPO_NONE / false when absent. Linear: for tools and
 * tests, not for hot paths. */
uint32_t px_topo_find_guest(const px_topo *t, const char *name);
uint32_t px_topo_find_host(const px_topo *t, const char *name);
bool px_topo_find_net(const px_topo *t, const char *name, px_topo_ref *out);

/* Does guest g attach to net (a CAN bus, Ethernet segment, ivshmem region
 * or CXL switch)? False for any other kind of reference. */
bool px_topo_guest_on_net(const px_topo_guest *g, px_topo_ref net);

/* Name of a net object (any px_topo_ref of a net or guest or host type);
 * "" for PX_TOPO_OBJ_NONE or an index out of range. */
const char *px_topo_ref_name(const px_topo *t, px_topo_ref ref);

/* The spelling the topology file uses for each enum value (static). */
const char *px_topo_accel_str(px_topo_accel a);
const char *px_topo_restart_str(px_topo_restart r);
const char *px_topo_nic_model_str(px_topo_nic_model m);

/* An impairment given as key/value strings, with the keys, units and
 * checks of a topology's `impair:` mapping: kv = {"delay", "50ms", "loss",
 * "1%", ...}, n_pairs pairs. nic: a NIC's (`direction` allowed, default
 * egress). Used by `plexus link set`; em names the bad key or value. */
/* A size as the topology writes it ("512M", "1G"), for CLI arguments;
 * em says what is wrong (the location is "argument"). */
px_err px_topo_size_parse(const char *s, uint64_t min, uint64_t max, uint64_t *out, px_errmsg *em);

px_err px_topo_impair_parse(const char *const *kv, uint32_t n_pairs, bool nic, px_topo_impair *out,
                            px_errmsg *em);
const char *px_topo_can_ctrl_str(px_topo_can_ctrl c);
const char *px_topo_can_attach_str(px_topo_can_attach a);
const char *px_topo_obj_str(px_topo_obj o);
const char *px_topo_fault_type_str(px_topo_fault_type f);

#endif
