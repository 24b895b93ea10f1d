/* plexus-coordinator: the state journal.
 *
 * One JSON document (jansson), replaced atomically on every change (write,
 * fsync, rename, fsync dir: px_write_file_atomic). JSON because operators
 * read it when something goes wrong; it is a file, not a protocol. On start
 * the coordinator reloads labs and nodes; nodes come back as "unknown" until
 * they re-register (and are declared lost if they do not within the
 * heartbeat limit), and labs keep their plans so guests are not restarted.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"

#define JOURNAL_VERSION 1
#define JOURNAL_MAX     (64u << 20)

static json_t *u32_array(const uint32_t *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *lab_to_json(const px_lab *lab)
{
    json_t *hosts = json_array();
    for (uint32_t h = 0; h < lab->plan.n_hosts; h++)
        json_array_append_new(hosts, json_pack("{s:s, s:i, s:I, s:i, s:I}", "name",
                                               lab->plan.hosts[h].name, "cpus",
                                               (int)lab->plan.hosts[h].cpus, "mem_mb",
                                               (json_int_t)lab->plan.hosts[h].mem_mb, "state",
                                               (int)lab->hosts[h].state, "acked_epoch",
                                               (json_int_t)lab->hosts[h].acked_epoch));
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:s%, s:o, s:o, s:o, s:o, s:o, s:I, s:i, "
                     "s:o}",
                     "name", lab->name, "source", lab->source, "policy", lab->policy, "state",
                     (int)lab->state, "message", lab->message, "epoch", (json_int_t)lab->epoch,
                     "topology", lab->text, lab->text_len, "hosts", hosts, "guest_host",
                     u32_array(lab->plan.guest_host, lab->plan.n_guests), "net_home",
                     u32_array(lab->plan.net_home, lab->plan.n_nets), "net_span",
                     u32_array(lab->plan.net_span, lab->plan.n_nets), "net_members",
                     u32_array(lab->plan.net_members, lab->plan.n_nets), "cut",
                     (json_int_t)lab->plan.cut, "method", (int)lab->plan.method, "cxl",
                     px_lab_cxl_to_json(lab));
}

px_err px_journal_save(px_coord *c)
{
    json_t *labs = json_array(), *nodes = json_array();
    for (uint32_t i = 0; i < c->n_labs; i++)
        json_array_append_new(labs, lab_to_json(c->labs[i]));
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const px_cnode *n = &c->nodes[i];
        json_t *feat = json_array();
        for (uint32_t f = 0; f < n->n_features; f++)
            json_array_append_new(feat, json_string(n->features[f]));
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:o}", "name", n->name,
                                        "key", n->key, "data_endpoint", n->data_ep, "data_key",
                                        n->data_key, "cpus", (int)n->cpus, "mem_mb",
                                        (json_int_t)n->mem_mb, "id", (int)n->id, "features", feat));
    }
    json_t *root = json_pack("{s:i, s:i, s:o, s:o}", "version", JOURNAL_VERSION, "next_node_id",
                             (int)c->next_node_id, "nodes", nodes, "labs", labs);
    char *text = root ? json_dumps(root, JSON_INDENT(1)) : NULL;
    json_decref(root);
    if (!text) {
        PX_ERROR("journal", "cannot serialise state", NULL);
        return PX_E_NOMEM;
    }
    px_errmsg em = {{0}};
    px_err err = px_write_file_atomic(c->journal_path, text, strlen(text), 0600, &em);
    free(text);
    if (err)
        PX_ERROR("journal", "cannot write state", "detail=\"%s\"", em.text);
    return err;
}

static px_err load_u32s(json_t *a, uint32_t **out, uint32_t *n, uint32_t limit)
{
    if (!json_is_array(a))
        return PX_E_CONFIG;
    size_t len = json_array_size(a);
    *out = calloc(len + 1, sizeof(uint32_t));
    if (!*out)
        return PX_E_NOMEM;
    for (size_t i = 0; i < len; i++) {
        json_int_t v = json_integer_value(json_array_get(a, i));
        if (v < 0 || (uint64_t)v >= limit)
            return PX_E_CONFIG;
        (*out)[i] = (uint32_t)v;
    }
    *n = (uint32_t)len;
    return PX_OK;
}

static px_err lab_from_json(px_coord *c, json_t *j, px_lab **out, px_errmsg *em)
{
    const char *name, *source, *policy, *message, *text;
    size_t text_len;
    int state, method;
    json_int_t epoch, cut;
    json_t *hosts, *gh, *nh, *ns, *nm;
    json_error_t je;
    if (json_unpack_ex(j, &je, 0,
                       "{s:s, s:s, s:s, s:i, s:s, s:I, s:s%, s:o, s:o, s:o, s:o, s:o, "
                       "s:I, s:i}",
                       "name", &name, "source", &source, "policy", &policy, "state", &state,
                       "message", &message, "epoch", &epoch, "topology", &text, &text_len, "hosts",
                       &hosts, "guest_host", &gh, "net_home", &nh, "net_span", &ns, "net_members",
                       &nm, "cut", &cut, "method", &method) != 0)
        return px_errmsg_set(em, PX_E_CONFIG, "journal %s: lab entry: %s", c->journal_path,
                             je.text);
    px_lab *lab = calloc(1, sizeof(*lab));
    if (!lab)
        return PX_E_NOMEM;
    snprintf(lab->name, sizeof(lab->name), "%s", name);
    snprintf(lab->source, sizeof(lab->source), "%s", source);
    snprintf(lab->policy, sizeof(lab->policy), "%s", policy);
    snprintf(lab->message, sizeof(lab->message), "%s", message);
    lab->state = (px_lab_state)state;
    lab->epoch = (uint64_t)epoch;
    lab->text = malloc(text_len + 1);
    px_err err = PX_E_NOMEM;
    if (!lab->text)
        goto fail;
    memcpy(lab->text, text, text_len);
    lab->text[text_len] = '\0';
    lab->text_len = text_len;
    px_lab_plan *p = &lab->plan;
    size_t nhosts = json_array_size(hosts);
    p->hosts = calloc(nhosts + 1, sizeof(*p->hosts));
    lab->hosts = calloc(nhosts + 1, sizeof(*lab->hosts));
    if (!p->hosts || !lab->hosts)
        goto fail;
    p->n_hosts = (uint32_t)nhosts;
    for (size_t h = 0; h < nhosts; h++) {
        const char *hn;
        int cpus, hs;
        json_int_t mem, acked;
        if (json_unpack(json_array_get(hosts, h), "{s:s, s:i, s:I, s:i, s:I}", "name", &hn, "cpus",
                        &cpus, "mem_mb", &mem, "state", &hs, "acked_epoch", &acked) != 0) {
            err = px_errmsg_set(em, PX_E_CONFIG, "journal %s: lab %s: bad host entry",
                                c->journal_path, name);
            goto fail;
        }
        snprintf(p->hosts[h].name, sizeof(p->hosts[h].name), "%s", hn);
        p->hosts[h].cpus = (uint32_t)cpus;
        p->hosts[h].mem_mb = (uint64_t)mem;
        lab->hosts[h].state = (px_host_state)hs;
        lab->hosts[h].acked_epoch = (uint64_t)acked;
    }
    uint32_t n1 = 0, n2 = 0;
    err = load_u32s(gh, &p->guest_host, &p->n_guests, p->n_hosts);
    if (!err)
        err = load_u32s(nh, &p->net_home, &p->n_nets, p->n_hosts);
    if (!err)
        err = load_u32s(ns, &p->net_span, &n1, UINT32_MAX);
    if (!err)
        err = load_u32s(nm, &p->net_members, &n2, UINT32_MAX);
    if (err) {
        px_errmsg_set(em, err, "journal %s: lab %s: bad plan arrays", c->journal_path, name);
        goto fail;
    }
    p->cut = (uint64_t)cut;
    p->method = (px_place_method)method;
    err = px_lab_restore(c, lab, em);
    if (err)
        goto fail;
    /* The net list is rebuilt from the topology in the same order. */
    p->nets = calloc(p->n_nets + 1, sizeof(*p->nets));
    p->net_weight = calloc(p->n_nets + 1, sizeof(*p->net_weight));
    if (!p->nets || !p->net_weight || n1 != p->n_nets || n2 != p->n_nets ||
        px_plan_net_count(lab->topo) != p->n_nets) {
        err = px_errmsg_set(em, PX_E_CONFIG, "journal %s: lab %s: net arrays disagree",
                            c->journal_path, name);
        goto fail;
    }
    px_plan_list_nets(lab->topo, p->nets, p->net_weight);
    /* The CXL switches as the FM API left them (a journal without "cxl":
     * the topology's start bindings, made when first needed). */
    err = px_lab_cxl_from_json(lab, json_object_get(j, "cxl"), em);
    if (err) {
        px_errmsg_prefix(em, "journal %s", c->journal_path);
        goto fail;
    }
    *out = lab;
    return PX_OK;
fail:
    px_lab_free(lab);
    return err;
}

px_err px_journal_load(px_coord *c, px_errmsg *em)
{
    char *text;
    size_t len;
    px_err err = px_read_file(c->journal_path, JOURNAL_MAX, &text, &len, em);
    if (err == PX_E_NOTFOUND)
        return PX_OK; /* first start */
    if (err)
        return err;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!root)
        return px_errmsg_set(em, PX_E_CONFIG, "%s:%d:%d: %s (move the file away to start afresh)",
                             c->journal_path, je.line, je.column, je.text);
    int version = 0, next_id = 0;
    json_t *nodes = NULL, *labs = NULL;
    if (json_unpack_ex(root, &je, 0, "{s:i, s:i, s:o, s:o}", "version", &version, "next_node_id",
                       &next_id, "nodes", &nodes, "labs", &labs) != 0 ||
        version != JOURNAL_VERSION) {
        err = px_errmsg_set(em, PX_E_CONFIG, "%s: not a version %d coordinator journal: %s",
                            c->journal_path, JOURNAL_VERSION, je.text);
        goto out;
    }
    c->next_node_id = (uint32_t)next_id;
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v)
    {
        if (c->n_nodes == PX_COORD_MAX_NODES)
            break;
        px_cnode *n = &c->nodes[c->n_nodes];
        memset(n, 0, sizeof(*n));
        const char *name, *key, *dep, *dkey;
        int cpus, id;
        json_int_t mem;
        json_t *feat;
        if (json_unpack(v, "{s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:o}", "name", &name, "key", &key,
                        "data_endpoint", &dep, "data_key", &dkey, "cpus", &cpus, "mem_mb", &mem,
                        "id", &id, "features", &feat) != 0)
            continue;
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->key, sizeof(n->key), "%s", key);
        snprintf(n->data_ep, sizeof(n->data_ep), "%s", dep);
        snprintf(n->data_key, sizeof(n->data_key), "%s", dkey);
        n->cpus = (uint32_t)cpus;
        n->mem_mb = (uint64_t)mem;
        n->id = (uint32_t)id;
        n->state = PX_NODE_UNKNOWN;
        size_t fi;
        json_t *fv;
        json_array_foreach(feat, fi, fv)
        {
            if (n->n_features < PX_WIRE_MAX_FEATURES && json_is_string(fv))
                snprintf(n->features[n->n_features++], PX_NAME, "%s", json_string_value(fv));
        }
        c->n_nodes++;
    }
    json_array_foreach(labs, i, v)
    {
        if (c->n_labs == PX_COORD_MAX_LABS)
            break;
        px_lab *lab = NULL;
        err = lab_from_json(c, v, &lab, em);
        if (err)
            goto out;
        c->labs[c->n_labs++] = lab;
    }
    PX_INFO("journal", "state restored", "labs=%u nodes=%u", c->n_labs, c->n_nodes);
    err = PX_OK;
out:
    json_decref(root);
    return err;
}
