/* plexus CLI: what the fabric tool commands (can, link, capture) share:
 * finding the coordinator and the lab, relaying a TOOL and printing the
 * merged reply. See toolctx.h. */
#include "toolctx.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned n = *p < 0x80             ? 0
                     : (*p & 0xE0) == 0xC0 ? 1
                     : (*p & 0xF0) == 0xE0 ? 2
                     : (*p & 0xF8) == 0xF0 ? 3
                                           : 4;
        if (n == 4 || (n == 1 && *p < 0xC2))
            return false;
        for (unsigned i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

/* A name or argument the wire will carry: non-empty, short enough, UTF-8. */
int px_toolctx_check(const px_toolctx *x, const char *what, const char *s, size_t max)
{
    if (!*s)
        return px_cli_usage(x->cli, x->cmd, "%s is empty", what);
    if (strlen(s) > max)
        return px_cli_usage(x->cli, x->cmd, "%s '%.40s...' is longer than %zu bytes", what, s, max);
    if (!utf8_ok(s))
        return px_cli_usage(x->cli, x->cmd, "%s is not UTF-8 text", what);
    return PX_EXIT_OK;
}

/* Which lab: --lab, else the local lab's, else the coordinator's only one. */
static int pick_lab(px_toolctx *x)
{
    if (x->t.lab[0]) {
        snprintf(x->lab, sizeof(x->lab), "%s", x->t.lab);
        return PX_EXIT_OK;
    }
    px_msg_request rq = {.op = px_str_c("status")};
    px_ctl_reply r;
    px_errmsg em = {{0}};
    if (px_ctl_request(x->ctl, &rq, 5000, &r, &em) != PX_OK)
        return px_cli_fail(x->cli, x->cmd, NULL, "%s", em.text);
    const px_msg_reply *rep = &r.msg->body.reply;
    int rc = PX_EXIT_OK;
    if (rep->n_labs == 1) {
        px_str_copy(x->lab, sizeof(x->lab), rep->labs[0].name);
    } else if (rep->n_labs == 0) {
        rc = px_cli_fail(x->cli, x->cmd, "start one with 'plexus up FILE'",
                         "the coordinator runs no lab");
    } else {
        char names[512] = "";
        size_t l = 0;
        for (uint32_t i = 0; i < rep->n_labs && l < sizeof(names); i++)
            l += (size_t)snprintf(names + l, sizeof(names) - l, "%s%.*s", i ? ", " : "",
                                  (int)rep->labs[i].name.len, rep->labs[i].name.ptr);
        rc = px_cli_fail(x->cli, x->cmd, "name one with --lab LAB",
                         "the coordinator runs %u labs: %s", rep->n_labs, names);
    }
    px_ctl_reply_fini(&r);
    return rc;
}

int px_toolctx_open(px_toolctx *x, px_cli *cli, const char *cmd, const char *lab)
{
    memset(x, 0, sizeof(*x));
    x->cli = cli;
    snprintf(x->cmd, sizeof(x->cmd), "%s", cmd);
    if (lab) {
        int rc = px_toolctx_check(x, "LAB", lab, PX_WIRE_MAX_NAME);
        if (rc)
            return rc;
    }
    int rc = px_cli_target(cli, x->cmd, lab, &x->t);
    if (rc)
        return rc;
    if (lab)
        snprintf(x->t.lab, sizeof(x->t.lab), "%s", lab);
    px_errmsg em = {{0}};
    if (px_ctl_open(&x->t, &x->ctl, &em) != PX_OK)
        return px_cli_fail(cli, x->cmd, NULL, "%s", em.text);
    rc = pick_lab(x);
    if (rc) {
        px_ctl_close(x->ctl);
        x->ctl = NULL;
    }
    return rc;
}

void px_toolctx_close(px_toolctx *x)
{
    px_ctl_close(x->ctl);
    x->ctl = NULL;
}

/* Send TOOL {lab, net, [tool, sub, args...]}; *r holds the merged reply. */
int px_toolctx_tool(px_toolctx *x, const char *net, const char *tool, const char *sub,
                    char *const *args, uint32_t n, bool json, px_ctl_reply *r)
{
    px_msg_tool t = {.lab = px_str_c(x->lab), .net = px_str_c(net), .json = json ? 1u : 0u};
    t.args[t.n_args++] = px_str_c(tool);
    t.args[t.n_args++] = px_str_c(sub);
    for (uint32_t i = 0; i < n && t.n_args < PX_WIRE_MAX_TOOL_ARGS; i++)
        t.args[t.n_args++] = px_str_c(args[i]);
    px_errmsg em = {{0}};
    if (px_ctl_tool(x->ctl, &t, PX_TOOLCTX_TIMEOUT_MS, r, &em) != PX_OK)
        return px_cli_fail(x->cli, x->cmd, NULL, "%s", em.text);
    return PX_EXIT_OK;
}

/* What a node-side failure means, as a hint. */
const char *px_toolctx_hint(int32_t code)
{
    switch (code) {
    case PX_E_TIMEOUT:
        return "'plexus nodes' shows which nodes are up";
    case PX_E_NOTFOUND:
        return "'plexus status' lists the labs and their guests";
    case PX_E_AGAIN:
        return "try again in a moment";
    default:
        return NULL;
    }
}

/* The merged reply on stdout, or the failure on stderr. */
int px_toolctx_print(const px_toolctx *x, const px_msg_tool_reply *rep, bool json)
{
    if (json)
        printf("%.*s\n", (int)rep->json.len, rep->json.len ? rep->json.ptr : "[]");
    if (rep->code != PX_OK)
        return px_cli_fail(x->cli, x->cmd, px_toolctx_hint(rep->code), "%.*s",
                           (int)rep->message.len, rep->message.ptr ? rep->message.ptr : "");
    if (!json && rep->message.len)
        printf("%.*s\n", (int)rep->message.len, rep->message.ptr);
    return PX_EXIT_OK;
}

int px_toolctx_options(px_cli *cli, const char *cmd, const char *help, int argc, char **argv,
                       const char **lab, bool *json)
{
    static const struct option opts[] = {{"lab", required_argument, NULL, 'L'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *json = cli->json;
    *lab = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return PX_EXIT_OK;
        } else if (c == 'L') {
            *lab = optarg;
        } else if (c == 'J') {
            *json = true;
        } else {
            return px_cli_usage(cli, cmd, "bad option");
        }
    }
    return -1;
}
