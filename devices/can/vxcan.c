/* plexus — vxcan pairs through rtnetlink. See vxcan.h. */
#include "devices/can/vxcan.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/vxcan.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

static bool name_ok(const char *s)
{
    return s && *s && strlen(s) < IFNAMSIZ;
}

/* libnl's error (negative NLE_*) as px_err, once, here. */
static px_err from_nl(int nle)
{
    switch (nle < 0 ? -nle : nle) {
    case NLE_OPNOTSUPP:
    case NLE_AF_NOSUPPORT:
        return PX_E_UNSUPP;
    case NLE_EXIST:
        return PX_E_EXISTS;
    case NLE_PERM:
        return PX_E_AUTH;
    case NLE_NOMEM:
        return PX_E_NOMEM;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
        return PX_E_NOTFOUND;
    default:
        return PX_E_IO;
    }
}

static px_err sock_open(struct nl_sock **out, const char *what, px_errmsg *em)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return px_errmsg_set(em, PX_E_NOMEM, "%s: out of memory", what);
    int r = nl_connect(sk, NETLINK_ROUTE);
    if (r < 0) {
        nl_socket_free(sk);
        return px_errmsg_set(em, from_nl(r), "%s: cannot open a netlink socket: %s", what,
                             nl_geterror(r));
    }
    *out = sk;
    return PX_OK;
}

/* RTM_NEWLINK kind vxcan with VXCAN_INFO_PEER { ifinfomsg, IFLA_IFNAME }. */
static int new_pair(struct nl_sock *sk, const char *name, const char *peer)
{
    struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    if (!m)
        return -NLE_NOMEM;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nlattr *info, *data, *pi;
    int r = -NLE_NOMEM;
    if (nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
        nla_put_string(m, IFLA_IFNAME, name) < 0 || !(info = nla_nest_start(m, IFLA_LINKINFO)) ||
        nla_put_string(m, IFLA_INFO_KIND, "vxcan") < 0 ||
        !(data = nla_nest_start(m, IFLA_INFO_DATA)) || !(pi = nla_nest_start(m, VXCAN_INFO_PEER)) ||
        nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
        nla_put_string(m, IFLA_IFNAME, peer) < 0)
        goto out;
    nla_nest_end(m, pi);
    nla_nest_end(m, data);
    nla_nest_end(m, info);
    r = nl_send_auto(sk, m);
    if (r >= 0)
        r = nl_wait_for_ack(sk);
out:
    nlmsg_free(m);
    return r;
}

static int set_up(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *cur = NULL, *chg = rtnl_link_alloc();
    if (!chg)
        return -NLE_NOMEM;
    int r = rtnl_link_get_kernel(sk, 0, name, &cur);
    if (r >= 0) {
        rtnl_link_set_flags(chg, IFF_UP);
        r = rtnl_link_change(sk, cur, chg, 0);
    }
    if (cur)
        rtnl_link_put(cur);
    rtnl_link_put(chg);
    return r;
}

static int del_link(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        return -NLE_NOMEM;
    rtnl_link_set_name(l, name);
    int r = rtnl_link_delete(sk, l);
    rtnl_link_put(l);
    return r;
}

px_err px_vxcan_create(const char *name, const char *peer, px_errmsg *em)
{
    if (!name_ok(name) || !name_ok(peer))
        return px_errmsg_set(em, PX_E_CONFIG,
                             "vxcan pair %s/%s: interface names must be 1 to %d characters",
                             name ? name : "", peer ? peer : "", IFNAMSIZ - 1);
    char what[64];
    snprintf(what, sizeof(what), "vxcan pair %s/%s", name, peer);
    struct nl_sock *sk;
    px_err err = sock_open(&sk, what, em);
    if (err)
        return err;
    int r = new_pair(sk, name, peer);
    if (r < 0) {
        err = from_nl(r);
        if (err == PX_E_UNSUPP)
            px_errmsg_set(em, err,
                          "%s: this host's kernel has no vxcan (RTM_NEWLINK kind vxcan: %s); "
                          "attach: vxcan needs AF_CAN and the vxcan module (modprobe vxcan), "
                          "else use attach: shim",
                          what, nl_geterror(r));
        else if (err == PX_E_EXISTS)
            px_errmsg_set(em, err,
                          "%s: an interface of that name exists already (another lab on this "
                          "node, or a stale pair: ip link del %s)",
                          what, name);
        else if (err == PX_E_AUTH)
            px_errmsg_set(em, err, "%s: not permitted (%s); plexus-node needs CAP_NET_ADMIN", what,
                          nl_geterror(r));
        else
            px_errmsg_set(em, err, "%s: cannot create: %s", what, nl_geterror(r));
        goto close_sock;
    }
    const char *failed = name;
    if ((r = set_up(sk, name)) < 0 || (failed = peer, r = set_up(sk, peer)) < 0) {
        err =
            px_errmsg_set(em, from_nl(r), "%s: cannot set %s up: %s", what, failed, nl_geterror(r));
        del_link(sk, name);
    }
close_sock:
    nl_socket_free(sk);
    return err;
}

px_err px_vxcan_delete(const char *name, px_errmsg *em)
{
    if (!name_ok(name))
        return px_errmsg_set(em, PX_E_CONFIG, "vxcan %s: bad interface name", name ? name : "");
    char what[64];
    snprintf(what, sizeof(what), "vxcan %s", name);
    struct nl_sock *sk;
    px_err err = sock_open(&sk, what, em);
    if (err)
        return err;
    int r = del_link(sk, name);
    if (r < 0 && from_nl(r) != PX_E_NOTFOUND)
        err = px_errmsg_set(em, from_nl(r), "%s: cannot delete: %s", what, nl_geterror(r));
    nl_socket_free(sk);
    return err;
}

bool px_vxcan_exists(const char *name)
{
    return name_ok(name) && if_nametoindex(name) != 0;
}

bool px_af_can_available(char *why, size_t cap)
{
    int fd = socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
    if (fd < 0) {
        if (why && cap)
            snprintf(why, cap, "socket(PF_CAN) fails with %s", strerror(errno));
        return false;
    }
    close(fd);
    if (why && cap)
        *why = '\0';
    return true;
}
