/* plexus — topology loader: entry points, top level, hosts, names, guests.
 * Nets and attachments are in topology_nets.c, whole-model checks in
 * topology_validate.c. */
#include "coordinator/topology_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"name", "version", "defaults",  "kinds",  "nodes",
                                       "nets", "hosts",   "placement", "faults", NULL};
/* kinds take the same keys but "kind": they do not nest. */
static const char *const guest_keys[] = {"kind",        "cpus",    "memory", "image",
                                         "accelerator", "restart", "nics",   "can",
                                         "ivshmem",     "cxl",     NULL};
static const char *const *const kind_keys = &guest_keys[1];
static const char *const host_keys[] = {"address", "cpus", "memory", "labels", NULL};
static const char *const image_keys[] = {"kernel", "initrd", "append", "disk", NULL};
static const char *const accel_words[] = {"auto", "kvm", "tcg", NULL};
static const char *const restart_words[] = {"no", "on-failure", "always", NULL};
static const char *const builtin_images[] = {"tiny", NULL};

#define GUEST_CPUS_MAX   255u
#define GUEST_MEM_MIN    (16ull << 20)
#define GUEST_MEM_MAX    (1ull << 40)
#define GUEST_MEM_DEF    (256ull << 20)
#define HOST_CPUS_MAX    4096u
#define HOST_MEM_MIN     (64ull << 20)
#define HOST_MEM_MAX     (64ull << 40)
#define HOST_ADDRESS_MAX 261u /* 253-byte DNS name, brackets, ":65535" */

/* ---- names ---- */

static int tname_cmp(const void *a, const void *b)
{
    return strcmp(((const tname *)a)->name, ((const tname *)b)->name);
}

const tname *pxt_find(const tname *idx, uint32_t n, const char *name)
{
    if (!idx || n == 0)
        return NULL;
    tname key = {.name = name};
    return bsearch(&key, idx, n, sizeof(*idx), tname_cmp);
}

static px_err add_name(tname *idx, uint32_t *n, const char *name, px_topo_obj type, uint32_t i,
                       tnode *at)
{
    idx[*n] = (tname){name, {type, i}, at};
    (*n)++;
    return PX_OK;
}

/* The closest existing name of the wanted type, for "did you mean". */
static const char *near_name(const tname *idx, uint32_t n, const char *name, px_topo_obj want)
{
    const char *words[2] = {NULL, NULL};
    const char *best = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (want != PX_TOPO_OBJ_NONE && idx[i].ref.type != want)
            continue;
        words[0] = idx[i].name;
        if (pxt_suggest(name, words) && (!best || strcmp(idx[i].name, best) < 0))
            best = idx[i].name;
    }
    return best;
}

static px_err unknown_ref(tctx *c, const tnode *n, const char *role, const char *expect,
                          const char *near)
{
    if (near)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "unknown %s \"%s\"; expected %s (hint: did you mean \"%s\"?)", role, n->str,
                        expect, near);
    return pxt_fail(c, n, PX_E_CONFIG, "unknown %s \"%s\"; expected %s", role, n->str, expect);
}

px_err pxt_resolve_net(tctx *c, const tnode *n, px_topo_obj want, const char *role,
                       px_topo_ref *out)
{
    char name[PX_TOPO_NAME_MAX];
    px_err err = pxt_get_name(c, n, role, name);
    if (err)
        return err;
    char expect[128];
    snprintf(expect, sizeof(expect), "the name of %s defined under nets",
             want == PX_TOPO_OBJ_NONE ? "a net" : pxt_obj_a(want));
    const tname *f = pxt_find(c->names, c->n_names, name);
    if (!f || f->ref.type == PX_TOPO_OBJ_GUEST)
        return unknown_ref(c, n, role, expect, near_name(c->names, c->n_names, name, want));
    if (want != PX_TOPO_OBJ_NONE && f->ref.type != want)
        return pxt_fail(c, n, PX_E_CONFIG, "%s \"%s\" is %s, not %s; expected %s", role, name,
                        pxt_obj_a(f->ref.type), pxt_obj_a(want), expect);
    *out = f->ref;
    return PX_OK;
}

px_err pxt_resolve_guest(tctx *c, const tnode *n, const char *role, uint32_t *out)
{
    char name[PX_TOPO_NAME_MAX];
    px_err err = pxt_get_name(c, n, role, name);
    if (err)
        return err;
    const tname *f = pxt_find(c->names, c->n_names, name);
    if (!f)
        return unknown_ref(c, n, role, "a guest defined under nodes",
                           near_name(c->names, c->n_names, name, PX_TOPO_OBJ_GUEST));
    if (f->ref.type != PX_TOPO_OBJ_GUEST)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "%s \"%s\" is a %s, not a guest; expected a guest defined under nodes",
                        role, name, px_topo_obj_str(f->ref.type));
    *out = f->ref.index;
    return PX_OK;
}

px_err pxt_resolve_host(tctx *c, const tnode *n, const char *role, uint32_t *out)
{
    char name[PX_TOPO_NAME_MAX];
    px_err err = pxt_get_name(c, n, role, name);
    if (err)
        return err;
    if (c->t->n_hosts == 0)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "%s \"%s\" names a host but the topology has no hosts; expected a hosts: "
                        "section defining it",
                        role, name);
    const tname *f = pxt_find(c->host_names, c->n_host_names, name);
    if (!f)
        return unknown_ref(c, n, role, "a host defined under hosts",
                           near_name(c->host_names, c->n_host_names, name, PX_TOPO_OBJ_NONE));
    *out = f->ref.index;
    return PX_OK;
}

/* Guests and nets share one namespace: a pin or a fault names either. */
static px_err index_names(tctx *c)
{
    px_topo *t = c->t;
    uint32_t total = t->n_guests + (c->nets ? c->nets->n : 0);
    c->names = px_tarena_array(&c->tree, total ? total : 1, sizeof(*c->names));
    if (!c->names)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < t->n_guests; i++)
        add_name(c->names, &c->n_names, t->guests[i].name, PX_TOPO_OBJ_GUEST, i,
                 c->nodes->kids[2 * i]);
    for (uint32_t i = 0; c->nets && i < c->nets->n; i++) {
        tnode *k = c->nets->kids[2 * i];
        add_name(c->names, &c->n_names, k->str, c->net_refs[i].type, c->net_refs[i].index, k);
    }
    qsort(c->names, c->n_names, sizeof(*c->names), tname_cmp);
    for (uint32_t i = 1; i < c->n_names; i++) {
        const tname *a = &c->names[i - 1], *b = &c->names[i];
        if (strcmp(a->name, b->name) != 0)
            continue;
        /* Duplicates inside nodes or nets were caught already: this is a
         * guest and a net. Report the one written later. */
        const tname *late = a, *early = b;
        if (b->at->line > a->at->line || (b->at->line == a->at->line && b->at->col > a->at->col)) {
            late = b;
            early = a;
        }
        return pxt_fail(c, late->at, PX_E_CONFIG,
                        "%s \"%s\" has the same name as the %s at %u:%u; expected names unique "
                        "across nodes and nets",
                        late->ref.type == PX_TOPO_OBJ_GUEST ? "guest" : "net", late->name,
                        early->ref.type == PX_TOPO_OBJ_GUEST ? "guest" : "net", early->at->line,
                        early->at->col);
    }
    return PX_OK;
}

/* ---- hosts ---- */

static px_err parse_address(tctx *c, const tnode *n, char **out)
{
    static const char expect[] = "a host name or IP address, optionally with :port";
    px_err err = pxt_get_str(c, n, "address", out);
    if (err)
        return err;
    bool ok = n->len > 0 && n->len <= HOST_ADDRESS_MAX;
    for (uint32_t i = 0; ok && i < n->len; i++) {
        char ch = n->str[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             strchr(".-_:[]", ch);
    }
    if (!ok)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid address \"%.64s\"; expected %s", n->str,
                        expect);
    return PX_OK;
}

static px_err parse_host(tctx *c, uint32_t i)
{
    px_topo_host *h = &c->t->hosts[i];
    tnode *key = c->hosts->kids[2 * i], *v = c->hosts->kids[2 * i + 1];
    char what[PX_TOPO_NAME_MAX + 16];
    snprintf(what, sizeof(what), "host \"%s\"", key->str);
    memcpy(h->name, key->str, key->len + 1);
    h->mark = pxt_mark(key);
    px_err err = pxt_check_map(c, v, what, host_keys);
    if (err)
        return err;
    tnode *a = pxt_map_get(v, "address");
    if (a && (err = parse_address(c, a, &h->address)))
        return err;
    tnode *cpus = pxt_map_get(v, "cpus"), *mem = pxt_map_get(v, "memory");
    if (!cpus || !mem)
        return pxt_fail(c, key, PX_E_CONFIG, "%s has no %s; expected %s", what,
                        !cpus ? "cpus" : "memory",
                        !cpus ? "cpus: N (the vCPUs it may run)"
                              : "memory: SIZE (what its guests may use, like 16G)");
    uint64_t u;
    if ((err = pxt_get_uint(c, cpus, "cpus", 1, HOST_CPUS_MAX, &u)))
        return err;
    h->cpus = (uint32_t)u;
    if ((err = pxt_get_size(c, mem, "memory", HOST_MEM_MIN, HOST_MEM_MAX, &h->memory)))
        return err;
    tnode *labels = pxt_map_get(v, "labels");
    if (!labels)
        return PX_OK;
    if ((err = pxt_check_name_map(c, labels, "labels", "label", PX_TOPO_MAX_LABELS)))
        return err;
    if (pxt_is_null(labels))
        return PX_OK;
    h->labels = px_tarena_array(c->t->arena, labels->n, sizeof(*h->labels));
    if (!h->labels && labels->n)
        return pxt_nomem(c);
    for (uint32_t j = 0; j < labels->n; j++) {
        memcpy(h->labels[j].key, labels->kids[2 * j]->str, labels->kids[2 * j]->len + 1);
        if ((err = pxt_get_name(c, labels->kids[2 * j + 1], "label value", h->labels[j].value)))
            return err;
    }
    h->n_labels = labels->n;
    return PX_OK;
}

static px_err parse_hosts(tctx *c)
{
    px_err err = pxt_check_name_map(c, c->hosts, "hosts", "host", PX_TOPO_MAX_HOSTS);
    if (err || pxt_is_null(c->hosts))
        return err;
    px_topo *t = c->t;
    uint32_t n = c->hosts->n;
    t->hosts = px_tarena_array(t->arena, n, sizeof(*t->hosts));
    c->host_names = px_tarena_array(&c->tree, n ? n : 1, sizeof(*c->host_names));
    if ((n && !t->hosts) || !c->host_names)
        return pxt_nomem(c);
    t->n_hosts = n;
    for (uint32_t i = 0; i < n; i++) {
        if ((err = parse_host(c, i)))
            return err;
        add_name(c->host_names, &c->n_host_names, t->hosts[i].name, PX_TOPO_OBJ_HOST, i,
                 c->hosts->kids[2 * i]);
    }
    qsort(c->host_names, c->n_host_names, sizeof(*c->host_names), tname_cmp);
    return PX_OK;
}

/* ---- guests, kinds, defaults ---- */

/* A guest setting comes from the first of: the node, its kind, defaults. */
tnode *pxt_chain_get(const tnode *const *chain, const char *key)
{
    for (int i = 0; i < 3; i++) {
        tnode *v = chain[i] ? pxt_map_get(chain[i], key) : NULL;
        if (v)
            return v;
    }
    return NULL;
}

static px_err parse_image(tctx *c, const tnode *n, px_topo_image *img)
{
    static const char expect[] =
        "builtin:tiny, a mapping {kernel, initrd, append} or a mapping {disk}";
    px_err err;
    if (n->type == TN_SCALAR && !pxt_is_null(n)) {
        const char *name = strncmp(n->str, "builtin:", 8) == 0 ? n->str + 8 : NULL;
        unsigned which;
        for (which = 0; name && builtin_images[which]; which++)
            if (strcmp(name, builtin_images[which]) == 0)
                break;
        if (!name || !builtin_images[which])
            return pxt_fail(c, n, PX_E_CONFIG,
                            "invalid image \"%.64s\"; expected %s (hint: a disk is written "
                            "image: {disk: PATH})",
                            n->str, expect);
        img->type = PX_TOPO_IMAGE_BUILTIN;
        snprintf(img->builtin, sizeof(img->builtin), "%s", builtin_images[which]);
        return PX_OK;
    }
    if (n->type != TN_MAP)
        return pxt_fail(c, n, PX_E_CONFIG, "wrong type for image: got %s; expected %s",
                        pxt_kind_str(n), expect);
    if ((err = pxt_check_map(c, n, "image", image_keys)))
        return err;
    tnode *kk = NULL, *dk = NULL, *ik = NULL, *ak = NULL;
    tnode *kernel = pxt_map_get_key(n, "kernel", &kk), *disk = pxt_map_get_key(n, "disk", &dk);
    tnode *initrd = pxt_map_get_key(n, "initrd", &ik), *append = pxt_map_get_key(n, "append", &ak);
    if (kernel && disk)
        return pxt_fail(c, dk, PX_E_CONFIG, "image has both kernel and disk; expected one of them");
    if (!kernel && !disk)
        return pxt_fail(c, n, PX_E_CONFIG, "image has neither kernel nor disk; expected %s",
                        expect);
    if (disk && (initrd || append))
        return pxt_fail(c, initrd ? ik : ak, PX_E_CONFIG,
                        "%s applies to kernel images only; expected a disk image with disk: alone",
                        initrd ? "initrd" : "append");
    if (disk) {
        img->type = PX_TOPO_IMAGE_DISK;
        err = pxt_get_str(c, disk, "disk", &img->disk);
        if (!err && !img->disk[0])
            err = pxt_fail(c, disk, PX_E_CONFIG, "empty disk path; expected a file path");
        return err;
    }
    img->type = PX_TOPO_IMAGE_KERNEL;
    if ((err = pxt_get_str(c, kernel, "kernel", &img->kernel)))
        return err;
    if (!img->kernel[0])
        return pxt_fail(c, kernel, PX_E_CONFIG, "empty kernel path; expected a file path");
    if (initrd && (err = pxt_get_str(c, initrd, "initrd", &img->initrd)))
        return err;
    if (append && (err = pxt_get_str(c, append, "append", &img->append)))
        return err;
    return PX_OK;
}

/* Fill g from the chain. Used for real guests and, with a one-element
 * chain, to check kinds and defaults where they are written even when no
 * guest uses them. */
static px_err parse_guest_fields(tctx *c, px_topo_guest *g, const tnode *const *chain,
                                 const char *who, const tnode *at)
{
    px_err err;
    uint64_t u;
    tnode *v;
    g->cpus = 1;
    if ((v = pxt_chain_get(chain, "cpus"))) {
        if ((err = pxt_get_uint(c, v, "cpus", 1, GUEST_CPUS_MAX, &u)))
            return err;
        g->cpus = (uint32_t)u;
    }
    g->memory = GUEST_MEM_DEF;
    if ((v = pxt_chain_get(chain, "memory")) &&
        (err = pxt_get_size(c, v, "memory", GUEST_MEM_MIN, GUEST_MEM_MAX, &g->memory)))
        return err;
    unsigned e;
    if ((v = pxt_chain_get(chain, "accelerator"))) {
        if ((err = pxt_get_enum(c, v, "accelerator", accel_words, &e)))
            return err;
        g->accel = (px_topo_accel)e;
    }
    if ((v = pxt_chain_get(chain, "restart"))) {
        if ((err = pxt_get_enum(c, v, "restart", restart_words, &e)))
            return err;
        g->restart = (px_topo_restart)e;
    }
    if ((v = pxt_chain_get(chain, "image"))) {
        if ((err = parse_image(c, v, &g->image)))
            return err;
    } else if (c->real_guest) {
        return pxt_fail(c, at, PX_E_CONFIG,
                        "%s has no image; expected image: builtin:tiny, {kernel: PATH} or "
                        "{disk: PATH} on the node, its kind or defaults",
                        who);
    }
    return pxt_parse_attachments(c, g, chain);
}

static px_err resolve_kind(tctx *c, const tnode *n, const tnode **kind_map, char *name_out)
{
    px_err err = pxt_get_name(c, n, "kind", name_out);
    if (err)
        return err;
    const tname *f = pxt_find(c->kind_names, c->n_kind_names, name_out);
    if (!f) {
        if (c->n_kind_names == 0)
            return pxt_fail(c, n, PX_E_CONFIG,
                            "unknown kind \"%s\"; expected a kind defined under kinds (there "
                            "is no kinds: section)",
                            name_out);
        return unknown_ref(c, n, "kind", "a kind defined under kinds",
                           near_name(c->kind_names, c->n_kind_names, name_out, PX_TOPO_OBJ_NONE));
    }
    *kind_map = c->kinds->kids[2 * f->ref.index + 1];
    return PX_OK;
}

static px_err parse_templates(tctx *c)
{
    px_err err;
    px_topo_guest scratch;
    if ((err = pxt_check_name_map(c, c->kinds, "kinds", "kind", PX_TOPO_MAX_KINDS)))
        return err;
    uint32_t n = pxt_is_null(c->kinds) ? 0 : c->kinds->n;
    c->kind_names = px_tarena_array(&c->tree, n ? n : 1, sizeof(*c->kind_names));
    if (!c->kind_names)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < n; i++)
        add_name(c->kind_names, &c->n_kind_names, c->kinds->kids[2 * i]->str, PX_TOPO_OBJ_NONE, i,
                 c->kinds->kids[2 * i]);
    qsort(c->kind_names, c->n_kind_names, sizeof(*c->kind_names), tname_cmp);

    c->real_guest = false;
    if (c->defaults) {
        if ((err = pxt_check_map(c, c->defaults, "defaults", guest_keys)))
            return err;
        tnode *k = pxt_map_get(c->defaults, "kind");
        const tnode *km;
        if (k && (err = resolve_kind(c, k, &km, scratch.kind)))
            return err;
        const tnode *chain[3] = {c->defaults, NULL, NULL};
        memset(&scratch, 0, sizeof(scratch));
        if ((err = parse_guest_fields(c, &scratch, chain, "defaults", c->defaults)))
            return err;
    }
    for (uint32_t i = 0; i < n; i++) {
        tnode *key = c->kinds->kids[2 * i], *v = c->kinds->kids[2 * i + 1];
        char who[PX_TOPO_NAME_MAX + 16];
        snprintf(who, sizeof(who), "kind \"%s\"", key->str);
        if ((err = pxt_check_map(c, v, who, kind_keys)))
            return err;
        const tnode *chain[3] = {v, NULL, NULL};
        memset(&scratch, 0, sizeof(scratch));
        if ((err = parse_guest_fields(c, &scratch, chain, who, key)))
            return err;
    }
    return PX_OK;
}

static px_err register_guests(tctx *c)
{
    px_topo *t = c->t;
    px_err err = pxt_check_name_map(c, c->nodes, "nodes", "guest", PX_TOPO_MAX_GUESTS);
    if (err)
        return err;
    if (pxt_is_null(c->nodes) || c->nodes->n == 0)
        return pxt_fail(c, c->nodes_key, PX_E_CONFIG,
                        "the topology has no guests; expected at least one entry under nodes");
    t->guests = px_tarena_array(t->arena, c->nodes->n, sizeof(*t->guests));
    if (!t->guests)
        return pxt_nomem(c);
    t->n_guests = c->nodes->n;
    for (uint32_t i = 0; i < t->n_guests; i++) {
        tnode *key = c->nodes->kids[2 * i];
        memcpy(t->guests[i].name, key->str, key->len + 1);
        t->guests[i].mark = pxt_mark(key);
    }
    return PX_OK;
}

static px_err parse_guests(tctx *c)
{
    px_topo *t = c->t;
    px_err err;
    c->real_guest = true;
    for (uint32_t i = 0; i < t->n_guests; i++) {
        px_topo_guest *g = &t->guests[i];
        tnode *key = c->nodes->kids[2 * i], *v = c->nodes->kids[2 * i + 1];
        char who[PX_TOPO_NAME_MAX + 16];
        snprintf(who, sizeof(who), "guest \"%s\"", g->name);
        if ((err = pxt_check_map(c, v, who, guest_keys)))
            return err;
        const tnode *node_map = pxt_is_null(v) ? NULL : v;
        const tnode *kind_map = NULL;
        tnode *k = pxt_map_get(node_map, "kind");
        if (!k)
            k = pxt_map_get(c->defaults, "kind");
        if (k && (err = resolve_kind(c, k, &kind_map, g->kind)))
            return err;
        const tnode *chain[3] = {node_map, kind_map, c->defaults};
        c->guest_index = i;
        if ((err = parse_guest_fields(c, g, chain, who, key)))
            return err;
    }
    return PX_OK;
}

/* ---- top level ---- */

static px_err parse_top(tctx *c)
{
    px_topo *t = c->t;
    tnode *root = c->root;
    px_err err;
    if (!root || pxt_is_null(root))
        return pxt_fail_at(c, root ? pxt_mark(root) : (px_topo_mark){1, 1}, PX_E_CONFIG,
                           "the file is empty; expected a mapping with at least name and nodes");
    if (root->type != TN_MAP)
        return pxt_fail(c, root, PX_E_CONFIG,
                        "the document is %s; expected a mapping with at least name and nodes",
                        pxt_kind_str(root));
    if ((err = pxt_check_map(c, root, "the topology", top_keys)))
        return err;
    tnode *name = pxt_map_get(root, "name");
    if (!name)
        return pxt_fail(c, root, PX_E_CONFIG, "the topology has no name; expected name: LAB-NAME");
    if ((err = pxt_get_name(c, name, "name", t->name)))
        return err;
    tnode *version = pxt_map_get(root, "version");
    uint64_t u;
    if (version && (err = pxt_get_uint(c, version, "version", 1, 1, &u)))
        return err;

    c->defaults = pxt_map_get(root, "defaults");
    c->kinds = pxt_map_get(root, "kinds");
    c->nodes = pxt_map_get_key(root, "nodes", &c->nodes_key);
    c->nets = pxt_map_get(root, "nets");
    c->hosts = pxt_map_get_key(root, "hosts", &c->hosts_key);
    c->placement = pxt_map_get(root, "placement");
    c->faults = pxt_map_get(root, "faults");
    if (pxt_is_null(c->defaults))
        c->defaults = NULL;
    if (!c->nodes)
        return pxt_fail(c, root, PX_E_CONFIG,
                        "the topology has no nodes; expected nodes: with at least one guest");

    if ((err = parse_hosts(c)))
        return err;
    if ((err = pxt_parse_nets(c)))
        return err;
    if ((err = register_guests(c)))
        return err;
    if ((err = index_names(c)))
        return err;
    if ((err = pxt_parse_net_details(c)))
        return err;
    if ((err = parse_templates(c)))
        return err;
    if ((err = parse_guests(c)))
        return err;
    return pxt_validate(c);
}

static px_err load(const char *name, const char *dir, const char *buf, size_t len, px_topo **out,
                   px_errmsg *em)
{
    tctx c = {.file = name, .em = em};
    px_err err = PX_E_NOMEM;
    px_topo *t = calloc(1, sizeof(*t));
    if (!t)
        goto fail_nomem;
    t->arena = calloc(1, sizeof(*t->arena));
    if (!t->arena)
        goto fail_free_topo;
    c.t = t;
    t->source = px_tarena_strdup(t->arena, name);
    t->base_dir = px_tarena_strdup(t->arena, dir);
    if (!t->source || !t->base_dir)
        goto fail_free_topo;
    err = pxt_yaml_parse(&c, buf, len);
    if (!err)
        err = parse_top(&c);
    free(c.macs);
    px_tarena_fini(&c.tree);
    if (err)
        goto fail_free_topo;
    *out = t;
    return PX_OK;

fail_free_topo:
    px_topo_free(t);
fail_nomem:
    if (err == PX_E_NOMEM)
        pxt_nomem(&c);
    return err;
}

px_err px_topo_load_buffer(const char *name, const char *buf, size_t len, px_topo **out,
                           px_errmsg *em)
{
    if (!out || (!buf && len))
        return px_errmsg_set(em, PX_E_INVAL, "px_topo_load_buffer: NULL argument");
    *out = NULL;
    return load(name ? name : "<buffer>", ".", buf ? buf : "", len, out, em);
}

px_err px_topo_load_file(const char *path, px_topo **out, px_errmsg *em)
{
    if (!out || !path)
        return px_errmsg_set(em, PX_E_INVAL, "px_topo_load_file: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return px_errmsg_set(em, e == ENOENT ? PX_E_NOTFOUND : px_err_from_errno(e),
                             "%s: cannot open: %s; expected a readable topology file", path,
                             strerror(e));
    }
    /* One byte more than the limit tells "too big" from "exactly at it". */
    px_err err = PX_OK;
    char *buf = malloc(PX_TOPO_MAX_FILE + 1);
    if (!buf) {
        err = px_errmsg_set(em, PX_E_NOMEM, "%s: out of memory", path);
        goto out_close;
    }
    size_t len = fread(buf, 1, PX_TOPO_MAX_FILE + 1, f);
    if (ferror(f)) {
        int e = errno;
        err = px_errmsg_set(em, px_err_from_errno(e), "%s: cannot read: %s", path, strerror(e));
        goto out_free;
    }
    if (len > PX_TOPO_MAX_FILE) {
        err = px_errmsg_set(em, PX_E_TOOBIG,
                            "%s: file is larger than %u bytes; expected a "
                            "smaller topology",
                            path, PX_TOPO_MAX_FILE);
        goto out_free;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    err = load(path, dir, buf, len, out, em);
out_free:
    free(buf);
out_close:
    fclose(f);
    return err;
}

void px_topo_free(px_topo *t)
{
    if (!t)
        return;
    if (t->arena) {
        px_tarena_fini(t->arena);
        free(t->arena);
    }
    free(t);
}

/* ---- lookups and names ---- */

uint32_t px_topo_find_guest(const px_topo *t, const char *name)
{
    for (uint32_t i = 0; t && name && i < t->n_guests; i++)
        if (strcmp(t->guests[i].name, name) == 0)
            return i;
    return PX_TOPO_NONE;
}

uint32_t px_topo_find_host(const px_topo *t, const char *name)
{
    for (uint32_t i = 0; t && name && i < t->n_hosts; i++)
        if (strcmp(t->hosts[i].name, name) == 0)
            return i;
    return PX_TOPO_NONE;
}

bool px_topo_find_net(const px_topo *t, const char *name, px_topo_ref *out)
{
    static const px_topo_obj types[] = {PX_TOPO_OBJ_CAN_BUS, PX_TOPO_OBJ_ETH_SEGMENT,
                                        PX_TOPO_OBJ_IVSHMEM, PX_TOPO_OBJ_CXL_SWITCH,
                                        PX_TOPO_OBJ_CXL_POOL};
    for (size_t k = 0; t && name && k < sizeof(types) / sizeof(types[0]); k++) {
        for (uint32_t i = 0;; i++) {
            const char *n = px_topo_ref_name(t, (px_topo_ref){types[k], i});
            if (!*n)
                break;
            if (strcmp(n, name) == 0) {
                if (out)
                    *out = (px_topo_ref){types[k], i};
                return true;
            }
        }
    }
    return false;
}

const char *px_topo_ref_name(const px_topo *t, px_topo_ref r)
{
    if (!t)
        return "";
    switch (r.type) {
    case PX_TOPO_OBJ_GUEST:
        return r.index < t->n_guests ? t->guests[r.index].name : "";
    case PX_TOPO_OBJ_CAN_BUS:
        return r.index < t->n_can_buses ? t->can_buses[r.index].name : "";
    case PX_TOPO_OBJ_ETH_SEGMENT:
        return r.index < t->n_eth_segments ? t->eth_segments[r.index].name : "";
    case PX_TOPO_OBJ_IVSHMEM:
        return r.index < t->n_ivshmem ? t->ivshmem[r.index].name : "";
    case PX_TOPO_OBJ_CXL_SWITCH:
        return r.index < t->n_cxl_switches ? t->cxl_switches[r.index].name : "";
    case PX_TOPO_OBJ_CXL_POOL:
        return r.index < t->n_cxl_pools ? t->cxl_pools[r.index].name : "";
    case PX_TOPO_OBJ_HOST:
        return r.index < t->n_hosts ? t->hosts[r.index].name : "";
    default:
        return "";
    }
}

const char *px_topo_accel_str(px_topo_accel a)
{
    return (unsigned)a < 3 ? accel_words[a] : "?";
}

const char *px_topo_restart_str(px_topo_restart r)
{
    return (unsigned)r < 3 ? restart_words[r] : "?";
}

const char *pxt_obj_a(px_topo_obj o)
{
    static const char *const names[] = {"nothing",        "a guest",    "a can_bus",
                                        "an eth_segment", "an ivshmem", "a cxl_switch",
                                        "a cxl_pool",     "a host"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

const char *px_topo_obj_str(px_topo_obj o)
{
    static const char *const names[] = {"none",    "guest",      "can_bus",  "eth_segment",
                                        "ivshmem", "cxl_switch", "cxl_pool", "host"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

bool px_topo_guest_on_net(const px_topo_guest *g, px_topo_ref r)
{
    switch (r.type) {
    case PX_TOPO_OBJ_CAN_BUS:
        for (uint32_t i = 0; i < g->n_cans; i++)
            if (g->cans[i].bus == r.index)
                return true;
        return false;
    case PX_TOPO_OBJ_ETH_SEGMENT:
        for (uint32_t i = 0; i < g->n_nics; i++)
            if (g->nics[i].segment == r.index)
                return true;
        return false;
    case PX_TOPO_OBJ_IVSHMEM:
        for (uint32_t i = 0; i < g->n_shms; i++)
            if (g->shms[i].region == r.index)
                return true;
        return false;
    case PX_TOPO_OBJ_CXL_SWITCH:
        for (uint32_t i = 0; i < g->n_cxls; i++)
            if (g->cxls[i].sw == r.index)
                return true;
        return false;
    default:
        return false;
    }
}
