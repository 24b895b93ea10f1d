/* plexus cxl: the Fabric Manager of a lab's CXL switches (docs/cxl.md,
 * docs/cxl-fmapi.md). The coordinator serves the FM API: each subcommand
 * here builds the CXL specification's CCI request (fabric/cxl-switch/
 * fmapi.h), sends it in a TOOL, and decodes the CCI response, so what
 * travels is exactly what an FM would send a switch.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coordinator/topology.h"
#include "fabric/cxl-switch/fmapi.h"
#include "fabric/cxl-switch/switch.h"
#include "toolctx.h"
#include "fabric/core/text.h"

static const char help_cxl[] =
    "usage: plexus [--json] cxl COMMAND [ARGS] [--lab LAB]\n"
    "\n"
    "The Fabric Manager of the lab's CXL switches. Each switch upstream port is a\n"
    "virtual CXL switch (VCS) with its guest; its vPPBs take logical devices (LDs)\n"
    "of the switch's memory pools. The coordinator answers the CXL specification's\n"
    "FM API commands (Identify Switch Device, Get Physical Port State, Get Virtual\n"
    "CXL Switch Info, Bind/Unbind vPPB, Get LD Info, Get/Set LD Allocations).\n"
    "\n"
    "commands:\n"
    "  switches                        every switch: ports, vPPBs, pools, guests\n"
    "  ports SWITCH                    physical ports, and each VCS's vPPBs with\n"
    "                                  what they are bound to\n"
    "  bind SWITCH GUEST|VCS VPPB POOL LD\n"
    "                                  bind LD of POOL to the vPPB; a guest sees it\n"
    "                                  from its next start (its node copies the LD's\n"
    "                                  data to the guest's host first)\n"
    "  unbind SWITCH GUEST|VCS VPPB    unbind; the guest must be stopped (its node\n"
    "                                  has written the LD's data back to the pool)\n"
    "  lds SWITCH POOL                 the pool's LDs and their allocations\n"
    "  alloc SWITCH POOL LD SIZE       set an unbound LD's allocation (a multiple\n"
    "                                  of 256M, like 512M or 1G; 0M frees it): the\n"
    "                                  memory a guest bound to it gets. The pool's\n"
    "                                  capacity bounds the sum\n"
    "  sync SWITCH POOL LD             bring the copies of a shared LD (bound to\n"
    "                                  two or more vPPBs) in step now, without\n"
    "                                  waiting for the pool's sync: period. Done\n"
    "                                  means: every host of the switch has sent\n"
    "                                  what changed in its copy to the pool's node,\n"
    "                                  and the pool's node its own changes to every\n"
    "                                  host; the pool's node passes each host's on\n"
    "                                  as it arrives, so another host has them one\n"
    "                                  transfer later (docs/cxl.md, Shared LDs)\n"
    "\n"
    "options:\n"
    "  --lab LAB   the lab (default: the local lab, else the only lab)\n"
    "  --json      machine-readable output\n"
    "\n"
    "examples:\n"
    "  plexus cxl switches\n"
    "  plexus cxl unbind fabric host1 0\n"
    "  plexus cxl bind fabric host2 0 pool0 3\n"
    "  plexus --json cxl lds fabric pool0\n"
    "  plexus cxl sync fabric pool0 0\n"
    "\n"
    "exit status: 0 success, 1 the command failed (the return code of the CCI\n"
    "response, or why it could not be sent), 2 bad usage.\n";

typedef struct fmctx {
    px_toolctx x;
    bool json;
    json_t *list; /* `cxl list`: switches, pools, guests */
    uint8_t tag;
    uint8_t rsp[PX_WIRE_MAX_STR / 2];
    size_t rsp_len;
    px_cci_hdr h;
} fmctx;

/* A TOOL {net, "cxl", sub, args}; the reply's JSON parsed into *out. */
static int tool(fmctx *f, const char *net, const char *sub, char *const *args, uint32_t n,
                json_t **out)
{
    px_ctl_reply r;
    int rc = px_toolctx_tool(&f->x, net, "cxl", sub, args, n, true, &r);
    if (rc)
        return rc;
    const px_msg_tool_reply *rep = &r.msg->body.tool_reply;
    if (rep->code != PX_OK) {
        rc = px_toolctx_print(&f->x, rep, false);
        px_ctl_reply_fini(&r);
        return rc;
    }
    json_error_t je;
    *out = json_loadb((const char *)rep->json.ptr, rep->json.len, 0, &je);
    if (rep->message.len)
        fprintf(stderr, "%.*s\n", (int)rep->message.len, rep->message.ptr);
    px_ctl_reply_fini(&r);
    if (!*out)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "the coordinator's answer is not JSON");
    return 0;
}

/* One FM API command: request payload pl[0..plen) to TARGET ("switch" or
 * a pool) of SWITCH; the response header in f->h, the whole message in
 * f->rsp. Non-zero (printed) when it could not be had or its return code
 * is not Success. */
static int fm(fmctx *f, const char *sw, const char *target, uint16_t opcode, const uint8_t *pl,
              size_t plen)
{
    uint8_t req[1024];
    size_t qlen;
    if (px_cci_request(opcode, ++f->tag, pl, plen, req, sizeof(req), &qlen) != PX_OK)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "cannot encode the %s request",
                           px_fm_opcode_name(opcode));
    char hex[2 * sizeof(req) + 1];
    px_hex_encode(req, qlen, hex, sizeof(hex));
    char *args[2] = {(char *)target, hex};
    json_t *o = NULL;
    int rc = tool(f, sw, "fm", args, 2, &o);
    if (rc)
        return rc;
    const char *rh = json_string_value(json_object_get(o, "rsp"));
    bool good = rh && px_hex_decode(rh, strlen(rh), f->rsp, sizeof(f->rsp), &f->rsp_len);
    json_decref(o);
    if (!good)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL,
                           "the coordinator's answer holds no CCI response");
    px_errmsg em = {{0}};
    if (px_cci_decode(f->rsp, f->rsp_len, &f->h, &em) != PX_OK)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "bad CCI response to %s: %s",
                           px_fm_opcode_name(opcode), em.text);
    if (f->h.category != PX_CCI_CAT_RESPONSE || f->h.tag != f->tag || f->h.opcode != opcode)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "the CCI response does not answer %s",
                           px_fm_opcode_name(opcode));
    if (f->h.rc != PX_CCI_SUCCESS)
        return px_cli_fail(f->x.cli, f->x.cmd,
                           "'plexus cxl ports' and 'plexus cxl lds' show the state",
                           "%s: %s (0x%02x): %s", px_fm_opcode_name(opcode),
                           px_cci_rc_name(f->h.rc), f->h.rc, px_cxlsw_vs_name(f->h.vendor_status));
    return 0;
}

static const uint8_t *payload(const fmctx *f)
{
    return f->rsp + PX_CCI_HDR_LEN;
}

static json_t *find_switch(fmctx *f, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(f->list, "switches"), i,
                       s) if (strcmp(json_string_value(json_object_get(s, "name")), name) ==
                              0) return s;
    return NULL;
}

static int need_switch(fmctx *f, const char *name, json_t **out)
{
    if (!(*out = find_switch(f, name)))
        return px_cli_fail(f->x.cli, f->x.cmd, "'plexus cxl switches' lists them",
                           "no CXL switch %s in lab %s", name, f->x.lab);
    return 0;
}

/* GUEST or a VCS number on switch s. */
static int vcs_of(fmctx *f, json_t *s, const char *who, uint32_t *vcs)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(s, "guests"), i,
                       g) if (strcmp(json_string_value(json_object_get(g, "guest")), who) == 0)
    {
        *vcs = (uint32_t)json_integer_value(json_object_get(g, "vcs"));
        return 0;
    }
    char *end;
    unsigned long v = strtoul(who, &end, 10);
    if (*who && !*end && v < (unsigned long)json_integer_value(json_object_get(s, "ports"))) {
        *vcs = (uint32_t)v;
        return 0;
    }
    return px_cli_fail(f->x.cli, f->x.cmd, "'plexus cxl switches' shows the guests on each port",
                       "'%s' is neither a guest on switch %s nor one of its port numbers", who,
                       json_string_value(json_object_get(s, "name")));
}

static int pool_port(fmctx *f, json_t *s, const char *pool, uint32_t *port, uint32_t *lds)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(s, "pools"), i,
                       p) if (strcmp(json_string_value(json_object_get(p, "name")), pool) == 0)
    {
        *port = (uint32_t)json_integer_value(json_object_get(p, "port"));
        *lds = (uint32_t)json_integer_value(json_object_get(p, "lds"));
        return 0;
    }
    return px_cli_fail(f->x.cli, f->x.cmd, "'plexus cxl switches' lists the pools",
                       "switch %s has no pool %s", json_string_value(json_object_get(s, "name")),
                       pool);
}

static bool num(const char *s, unsigned long max, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max || *s == '-')
        return false;
    *out = (uint32_t)v;
    return true;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s)
        printf("%s\n", s);
    free(s);
}

static int cmd_switches(fmctx *f)
{
    json_t *out = json_array();
    size_t i;
    json_t *s;
    int rc = 0;
    if (!f->json)
        printf("%-16s %-6s %-6s %-7s %-6s %s\n", "SWITCH", "PORTS", "VCS", "VPPBS", "BOUND",
               "POOLS (port: LDs x size)");
    json_array_foreach(json_object_get(f->list, "switches"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        px_fm_identify_sw id;
        if ((rc = fm(f, name, "switch", PX_FM_IDENTIFY_SWITCH, NULL, 0)))
            break;
        if (px_fm_identify_sw_decode(payload(f), f->h.payload_len, &id) != PX_OK) {
            rc = px_cli_fail(f->x.cli, f->x.cmd, NULL, "bad Identify Switch Device response");
            break;
        }
        json_t *row = json_deep_copy(s);
        json_object_set_new(row, "phys_ports", json_integer(id.n_phys_ports));
        json_object_set_new(row, "vcs", json_integer(id.n_vcs));
        json_object_set_new(row, "total_vppbs", json_integer(id.total_vppbs));
        json_object_set_new(row, "bound_vppbs", json_integer(id.bound_vppbs));
        json_array_append_new(out, row);
        if (f->json)
            continue;
        char pools[512] = "";
        size_t off = 0, k;
        json_t *p;
        json_array_foreach(json_object_get(s, "pools"), k, p) if (off < sizeof(pools)) off +=
            (size_t)snprintf(pools + off, sizeof(pools) - off,
                             "%s%s (%" JSON_INTEGER_FORMAT ": %" JSON_INTEGER_FORMAT
                             " x %" JSON_INTEGER_FORMAT "M)",
                             k ? ", " : "", json_string_value(json_object_get(p, "name")),
                             json_integer_value(json_object_get(p, "port")),
                             json_integer_value(json_object_get(p, "lds")),
                             json_integer_value(json_object_get(p, "ld_size")) >> 20);
        printf("%-16s %-6u %-6u %-7u %-6u %s\n", name, id.n_phys_ports, id.n_vcs, id.total_vppbs,
               id.bound_vppbs, pools);
    }
    if (!rc && f->json)
        print_json(out);
    json_decref(out);
    return rc;
}

static const char *port_state(uint8_t st)
{
    switch (st) {
    case PX_FM_PORT_DISABLED:
        return "disabled";
    case PX_FM_PORT_BINDING:
        return "binding";
    case PX_FM_PORT_UNBINDING:
        return "unbinding";
    case PX_FM_PORT_DSP:
        return "downstream";
    case PX_FM_PORT_USP:
        return "upstream";
    case PX_FM_PORT_FABRIC:
        return "fabric";
    default:
        return "invalid";
    }
}

static const char *dev_type(uint8_t t)
{
    switch (t) {
    case PX_FM_DEV_NONE:
        return "none";
    case PX_FM_DEV_PCIE:
        return "pcie";
    case PX_FM_DEV_TYPE1:
        return "type1";
    case PX_FM_DEV_TYPE2:
        return "type2";
    case PX_FM_DEV_TYPE3_SLD:
        return "type3-sld";
    case PX_FM_DEV_TYPE3_MLD:
        return "type3-mld";
    default:
        return "?";
    }
}

/* Get Physical Port State of every port of switch s into *out (a JSON
 * array), printing a table unless --json. */
static int phys_ports(fmctx *f, const char *swname, json_t *s, json_t **out)
{
    uint32_t n = (uint32_t)json_integer_value(json_object_get(s, "ports")) +
                 (uint32_t)json_array_size(json_object_get(s, "pools"));
    static px_fm_port_state_req q;
    q.n_ports = 0;
    for (uint32_t p = 0; p < n && p < PX_FM_LIST_MAX; p++)
        q.ports[q.n_ports++] = (uint8_t)p;
    uint8_t pl[PX_FM_LIST_MAX + 1];
    size_t plen;
    int rc;
    if (px_fm_port_state_req_encode(&q, pl, sizeof(pl), &plen) != PX_OK)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "cannot encode Get Physical Port State");
    if ((rc = fm(f, swname, "switch", PX_FM_GET_PORT_STATE, pl, plen)))
        return rc;
    static px_fm_port_info info[PX_FM_LIST_MAX];
    size_t ni = 0;
    if (px_fm_port_state_rsp_decode(payload(f), f->h.payload_len, info, PX_FM_LIST_MAX, &ni) !=
        PX_OK)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "bad Get Physical Port State response");
    *out = json_array();
    if (!f->json)
        printf("%-5s %-11s %-10s %-4s %s\n", "PORT", "STATE", "DEVICE", "LDS", "WHAT");
    for (size_t i = 0; i < ni; i++) {
        char what[96] = "-";
        size_t k;
        json_t *x;
        json_array_foreach(json_object_get(s, "guests"), k,
                           x) if (json_integer_value(json_object_get(x, "vcs")) == info[i].port_id)
            snprintf(what, sizeof(what), "guest %s",
                     json_string_value(json_object_get(x, "guest")));
        json_array_foreach(json_object_get(s, "pools"), k,
                           x) if (json_integer_value(json_object_get(x, "port")) == info[i].port_id)
            snprintf(what, sizeof(what), "pool %s", json_string_value(json_object_get(x, "name")));
        json_array_append_new(*out, json_pack("{s:i,s:s,s:s,s:i,s:s}", "port", info[i].port_id,
                                              "state", port_state(info[i].config_state), "device",
                                              dev_type(info[i].dev_type), "lds", info[i].ld_count,
                                              "what", what));
        if (!f->json)
            printf("%-5u %-11s %-10s %-4u %s\n", info[i].port_id, port_state(info[i].config_state),
                   dev_type(info[i].dev_type), info[i].ld_count, what);
    }
    if (!f->json)
        printf("\n");
    return 0;
}

static int cmd_ports(fmctx *f, const char *swname)
{
    json_t *s, *phys = NULL;
    int rc = need_switch(f, swname, &s);
    if (!rc)
        rc = phys_ports(f, swname, s, &phys);
    if (rc) {
        json_decref(phys);
        return rc;
    }
    uint32_t nv = (uint32_t)json_integer_value(json_object_get(s, "ports"));
    uint32_t nvppb = (uint32_t)json_integer_value(json_object_get(s, "vppbs"));
    px_fm_vcs_info_req q = {.start_vppb = 0, .vppb_limit = (uint8_t)nvppb, .n_vcs = 0};
    for (uint32_t v = 0; v < nv && v < PX_FM_LIST_MAX; v++)
        q.vcs[q.n_vcs++] = (uint8_t)v;
    uint8_t pl[512];
    size_t plen;
    static px_fm_vcs_block blocks[PX_FM_LIST_MAX];
    size_t nb = 0;
    if (px_fm_vcs_info_req_encode(&q, pl, sizeof(pl), &plen) != PX_OK)
        rc = px_cli_fail(f->x.cli, f->x.cmd, NULL, "cannot encode Get Virtual CXL Switch Info");
    else if (!(rc = fm(f, swname, "switch", PX_FM_GET_VCS_INFO, pl, plen)) &&
             px_fm_vcs_info_rsp_decode(payload(f), f->h.payload_len, 0, (uint8_t)nvppb, blocks,
                                       PX_FM_LIST_MAX, &nb) != PX_OK)
        rc = px_cli_fail(f->x.cli, f->x.cmd, NULL, "bad Get Virtual CXL Switch Info response");
    if (rc) {
        json_decref(phys);
        return rc;
    }
    json_t *out = json_array();
    if (!f->json)
        printf("%-5s %-16s %-5s %-22s\n", "VCS", "GUEST", "VPPB", "BOUND TO");
    for (size_t b = 0; b < nb; b++) {
        const char *guest = "-";
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(s, "guests"), i,
                           g) if (json_integer_value(json_object_get(g, "vcs")) == blocks[b].vcs_id)
            guest = json_string_value(json_object_get(g, "guest"));
        for (uint32_t e = 0; e < blocks[b].n_entries; e++) {
            const px_fm_vppb_info *vi = &blocks[b].entries[e];
            const char *pool = NULL;
            json_t *p;
            json_array_foreach(json_object_get(s, "pools"), i,
                               p) if (json_integer_value(json_object_get(p, "port")) == vi->port)
                pool = json_string_value(json_object_get(p, "name"));
            bool bound = vi->status == PX_FM_VPPB_BOUND_LD || vi->status == PX_FM_VPPB_BOUND_PORT;
            json_t *row = json_pack("{s:i,s:s,s:i,s:b}", "vcs", blocks[b].vcs_id, "guest", guest,
                                    "vppb", (int)e, "bound", bound);
            if (bound) {
                json_object_set_new(row, "port", json_integer(vi->port));
                json_object_set_new(row, "pool", json_string(pool ? pool : "?"));
                json_object_set_new(row, "ld", json_integer(vi->ld));
            }
            json_array_append_new(out, row);
            if (f->json)
                continue;
            char what[64] = "-";
            if (bound)
                snprintf(what, sizeof(what), "%s LD %u (port %u)", pool ? pool : "?", vi->ld,
                         vi->port);
            printf("%-5u %-16s %-5u %s\n", blocks[b].vcs_id, guest, e, what);
        }
    }
    if (f->json) {
        json_t *o = json_pack("{s:o,s:o}", "physical", phys, "vppbs", out);
        print_json(o);
        json_decref(o);
    } else {
        json_decref(phys);
        json_decref(out);
    }
    return 0;
}

static int cmd_bind(fmctx *f, bool bind, char **a, int n)
{
    json_t *s;
    int rc;
    if ((rc = need_switch(f, a[0], &s)))
        return rc;
    uint32_t vcs = 0, vppb = 0, port = 0, lds = 0, ld = 0;
    if ((rc = vcs_of(f, s, a[1], &vcs)))
        return rc;
    if (!num(a[2], 254, &vppb))
        return px_cli_usage(f->x.cli, f->x.cmd, "VPPB '%s' is not a number", a[2]);
    uint8_t pl[8];
    size_t plen;
    if (bind) {
        if ((rc = pool_port(f, s, a[3], &port, &lds)))
            return rc;
        if (!num(a[4], 0xfffe, &ld))
            return px_cli_usage(f->x.cli, f->x.cmd, "LD '%s' is not a number", a[4]);
        px_fm_bind_req q = {
            .vcs = (uint8_t)vcs, .vppb = (uint8_t)vppb, .port = (uint8_t)port, .ld = (uint16_t)ld};
        px_fm_bind_req_encode(&q, pl, sizeof(pl), &plen);
    } else {
        px_fm_unbind_req q = {
            .vcs = (uint8_t)vcs, .vppb = (uint8_t)vppb, .option = PX_FM_UNBIND_MANAGED};
        px_fm_unbind_req_encode(&q, pl, sizeof(pl), &plen);
    }
    (void)n;
    if ((rc = fm(f, a[0], "switch", bind ? PX_FM_BIND_VPPB : PX_FM_UNBIND_VPPB, pl, plen)))
        return rc;
    if (f->json) {
        json_t *o = json_pack("{s:s,s:s,s:i,s:i}", "op", bind ? "bind" : "unbind", "switch", a[0],
                              "vcs", (int)vcs, "vppb", (int)vppb);
        if (bind) {
            json_object_set_new(o, "pool", json_string(a[3]));
            json_object_set_new(o, "ld", json_integer(ld));
        }
        print_json(o);
        json_decref(o);
    } else if (bind) {
        printf("bound %s LD %u to vPPB %u of VCS %u (%s); it takes effect when the guest next "
               "starts\n",
               a[3], ld, vppb, vcs, a[1]);
    } else {
        printf("unbound vPPB %u of VCS %u (%s)\n", vppb, vcs, a[1]);
    }
    return 0;
}

static int cmd_lds(fmctx *f, const char *swname, const char *pool)
{
    json_t *s;
    int rc;
    uint32_t port, lds;
    if ((rc = need_switch(f, swname, &s)) || (rc = pool_port(f, s, pool, &port, &lds)))
        return rc;
    if ((rc = fm(f, swname, pool, PX_FM_GET_LD_INFO, NULL, 0)))
        return rc;
    px_fm_ld_info info;
    if (px_fm_ld_info_decode(payload(f), f->h.payload_len, &info) != PX_OK)
        return px_cli_fail(f->x.cli, f->x.cmd, NULL, "bad Get LD Info response");
    json_t *rows = json_array();
    /* In pages of 64 LDs: a reply holds a few KiB. */
    for (uint32_t start = 0; start < info.ld_count; start += 64) {
        uint8_t pl[2];
        size_t plen;
        px_fm_get_ld_alloc_req q = {.start_ld = (uint8_t)start, .limit = 64};
        px_fm_get_ld_alloc_req_encode(&q, pl, sizeof(pl), &plen);
        if ((rc = fm(f, swname, pool, PX_FM_GET_LD_ALLOC, pl, plen)))
            break;
        static px_fm_get_ld_alloc_rsp a;
        if (px_fm_get_ld_alloc_rsp_decode(payload(f), f->h.payload_len, &a) != PX_OK) {
            rc = px_cli_fail(f->x.cli, f->x.cmd, NULL, "bad Get LD Allocations response");
            break;
        }
        uint64_t gran = 256ull << (20 + a.granularity);
        for (uint32_t k = 0; k < a.n; k++)
            json_array_append_new(
                rows, json_pack("{s:i,s:I}", "ld", (int)(a.start_ld + k), "bytes",
                                (json_int_t)((a.ld[k].range1 + a.ld[k].range2) * gran)));
        if (a.n == 0)
            break;
    }
    if (!rc) {
        if (f->json) {
            json_t *o = json_pack("{s:s,s:s,s:I,s:i,s:O}", "switch", swname, "pool", pool, "memory",
                                  (json_int_t)info.memory_size, "ld_count", (int)info.ld_count,
                                  "lds", rows);
            print_json(o);
            json_decref(o);
        } else {
            printf("pool %s of %s: %" PRIu64 " MiB, %u LDs\n%-5s %s\n", pool, swname,
                   info.memory_size >> 20, info.ld_count, "LD", "ALLOCATED");
            size_t i;
            json_t *r;
            json_array_foreach(rows, i, r)
                printf("%-5" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT "M\n",
                       json_integer_value(json_object_get(r, "ld")),
                       json_integer_value(json_object_get(r, "bytes")) >> 20);
        }
    }
    json_decref(rows);
    return rc;
}

static int cmd_alloc(fmctx *f, char **a)
{
    json_t *s;
    int rc;
    uint32_t port, lds, ld;
    if ((rc = need_switch(f, a[0], &s)) || (rc = pool_port(f, s, a[1], &port, &lds)))
        return rc;
    if (!num(a[2], 254, &ld))
        return px_cli_usage(f->x.cli, f->x.cmd, "LD '%s' is not a number", a[2]);
    uint64_t bytes;
    px_errmsg em = {{0}};
    if (px_topo_size_parse(a[3], 0, 64ull << 40, &bytes, &em) != PX_OK || bytes % (256ull << 20))
        return px_cli_usage(f->x.cli, f->x.cmd, "SIZE '%s' is not a multiple of 256M (%s)", a[3],
                            em.text[0] ? em.text : "like 256M, 512M, 1G");
    static px_fm_set_ld_alloc q;
    q = (px_fm_set_ld_alloc){.n = 1, .start_ld = (uint8_t)ld};
    q.ld[0].range1 = bytes / (256ull << 20);
    uint8_t pl[64];
    size_t plen;
    px_fm_set_ld_alloc_encode(&q, pl, sizeof(pl), &plen);
    if ((rc = fm(f, a[0], a[1], PX_FM_SET_LD_ALLOC, pl, plen)))
        return rc;
    if (f->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:I}", "op", "alloc", "switch", a[0], "pool", a[1],
                              "ld", (int)ld, "allocated", (json_int_t)bytes);
        print_json(o);
        json_decref(o);
    } else {
        printf("LD %u of %s: %" PRIu64 "M allocated; a guest bound to it gets that much memory "
               "from its next start\n",
               ld, a[1], bytes >> 20);
    }
    return 0;
}

/* TOOL "cxl-sync" POOL LD to the switch's nodes (relayed by the
 * coordinator to each node that has the switch): each answers once it has
 * sent its changes. */
static int cmd_sync(fmctx *f, char **a)
{
    json_t *s;
    int rc;
    uint32_t port, lds, ld;
    if ((rc = need_switch(f, a[0], &s)) || (rc = pool_port(f, s, a[1], &port, &lds)))
        return rc;
    if (!num(a[2], lds ? lds - 1 : 0, &ld))
        return px_cli_usage(f->x.cli, f->x.cmd, "LD '%s' is not one of pool %s's LDs (0..%u)", a[2],
                            a[1], lds ? lds - 1 : 0);
    px_ctl_reply r;
    if ((rc = px_toolctx_tool(&f->x, a[0], "cxl-sync", a[1], &a[2], 1, f->json, &r)))
        return rc;
    rc = px_toolctx_print(&f->x, &r.msg->body.tool_reply, f->json);
    px_ctl_reply_fini(&r);
    return rc;
}

static int run(px_cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(help_cxl, argc < 2 ? stderr : stdout);
        return argc < 2 ? PX_EXIT_USAGE : PX_EXIT_OK;
    }
    static const struct {
        const char *name;
        int args;
        const char *usage;
    } subs[] = {{"switches", 0, ""},
                {"ports", 1, "SWITCH"},
                {"bind", 5, "SWITCH GUEST|VCS VPPB POOL LD"},
                {"unbind", 3, "SWITCH GUEST|VCS VPPB"},
                {"lds", 2, "SWITCH POOL"},
                {"alloc", 4, "SWITCH POOL LD SIZE"},
                {"sync", 3, "SWITCH POOL LD"}};
    const char *sub = argv[1];
    size_t k = 0;
    while (k < sizeof(subs) / sizeof(subs[0]) && strcmp(subs[k].name, sub) != 0)
        k++;
    if (k == sizeof(subs) / sizeof(subs[0]))
        return px_cli_usage(
            cli, "cxl", "unknown command '%s' (switches, ports, bind, unbind, lds, alloc, sync)",
            sub);
    static fmctx f;
    memset(&f, 0, sizeof(f));
    snprintf(f.x.cmd, sizeof(f.x.cmd), "cxl %s", sub);
    const char *lab;
    argc--;
    argv++;
    int rc = px_toolctx_options(cli, f.x.cmd, help_cxl, argc, argv, &lab, &f.json);
    if (rc >= 0)
        return rc;
    if (argc - optind != subs[k].args)
        return px_cli_usage(cli, f.x.cmd, "expected %s",
                            subs[k].usage[0] ? subs[k].usage : "no arguments");
    char **a = argv + optind;
    char cmd[24];
    snprintf(cmd, sizeof(cmd), "%s", f.x.cmd);
    rc = px_toolctx_open(&f.x, cli, cmd, lab);
    if (rc)
        return rc;
    if (!(rc = tool(&f, "-", "list", NULL, 0, &f.list))) {
        if (k == 0)
            rc = cmd_switches(&f);
        else if (k == 1)
            rc = cmd_ports(&f, a[0]);
        else if (k == 2 || k == 3)
            rc = cmd_bind(&f, k == 2, a, subs[k].args);
        else if (k == 4)
            rc = cmd_lds(&f, a[0], a[1]);
        else if (k == 5)
            rc = cmd_alloc(&f, a);
        else
            rc = cmd_sync(&f, a);
    }
    json_decref(f.list);
    px_toolctx_close(&f.x);
    return rc;
}

const px_cli_cmd px_cmd_cxl = {
    .name = "cxl",
    .summary = "the Fabric Manager of CXL switches: switches, ports, bind, unbind, lds, alloc; "
               "sync shared LDs",
    .help = help_cxl,
    .run = run,
    .own_help = true,
};
