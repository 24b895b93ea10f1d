/* pxcan: configure and use a SocketCAN interface inside a plexus test guest.
 *
 *   pxcan up IF [BITRATE [DBITRATE]] [-r RESTART_MS]
 *   pxcan down IF
 *   pxcan show IF
 *   pxcan send IF [-n COUNT] FRAME...
 *   pxcan recv IF|any [-n COUNT] [-t TIMEOUT_MS] [-e] [-o] [-x]
 *   pxcan print [-x] FRAME...  (parse only, print as recv would: for tests)
 *
 * Built static (gcc -static) by scripts/guest-image.sh and run only inside
 * guests: the host kernel of this project's CI has no AF_CAN. Busybox `ip`
 * cannot set CAN bit timing, and a CAN controller refuses to come up without
 * it, hence `up`. Debian's libsocketcan (0.0.12) has no CAN FD data bit
 * timing and libmnl ships no static library, so the few rtnetlink messages
 * needed are built here by hand.
 *
 * FRAME is cansend syntax: 123#DEADBEEF (classic, 3 hex digits = standard
 * ID, 8 = extended), 123#R or 123#R4 (remote request, optional length),
 * 123##1DEADBEEF (CAN FD: one hex digit of flags, 1 = BRS, 2 = ESI, then up
 * to 64 data bytes; the length is padded with zeros to a valid FD length;
 * CANFD_FDF is set, as cansend does). Data bytes may be separated by '.'.
 *
 * recv prints one line per frame in candump's format and exits 0 after COUNT
 * frames, or 1 when TIMEOUT_MS passes first (0 when no COUNT was given).
 * -x adds candump -x's direction and FD flags: "  can0  RX B -  123  [64] ..."
 * (RX or TX for an own frame seen with -o; B = BRS, E = ESI, '-' = clear).
 * Exit status: 0 success, 1 failure (the message says which step), 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/netlink.h>
#include <linux/can/raw.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define NL_BUF_SIZE 8192

struct nl_msg {
    union {
        struct nlmsghdr h;
        char buf[NL_BUF_SIZE];
    } u;
};

static void usage(void)
{
    fprintf(stderr, "usage: pxcan up IF [BITRATE [DBITRATE]] [-r RESTART_MS]\n"
                    "       pxcan down IF\n"
                    "       pxcan show IF\n"
                    "       pxcan send IF [-n COUNT] FRAME...   (123#DEADBEEF, 123#R, "
                    "123##1DEADBEEF)\n"
                    "       pxcan recv IF|any [-n COUNT] [-t TIMEOUT_MS] [-e] [-o] [-x]\n"
                    "       pxcan print [-x] FRAME...\n");
    exit(2);
}

/* Parses a decimal number in [0, max]; exits with a usage message otherwise. */
static unsigned long parse_num(const char *what, const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "pxcan: %s: '%s' is not a number in 0..%lu\n", what, s, max);
        exit(2);
    }
    return v;
}

static int if_index(const char *ifname)
{
    unsigned idx = if_nametoindex(ifname);
    if (idx == 0) {
        fprintf(stderr, "pxcan: %s: no such interface (%s)\n", ifname, strerror(errno));
        exit(1);
    }
    return (int)idx;
}

/* ---- rtnetlink ---------------------------------------------------------- */

static struct ifinfomsg *nl_init(struct nl_msg *m, int type, int flags, int ifindex)
{
    memset(m, 0, sizeof(*m));
    m->u.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    m->u.h.nlmsg_type = (unsigned short)type;
    m->u.h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | flags);
    m->u.h.nlmsg_seq = 1;
    struct ifinfomsg *ifi = NLMSG_DATA(&m->u.h);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    return ifi;
}

/* Appends one attribute; the buffer is sized for far more than this tool
 * ever sends, so running out is a programming error. */
static struct rtattr *nl_put(struct nl_msg *m, int type, const void *data, size_t len)
{
    size_t off = NLMSG_ALIGN(m->u.h.nlmsg_len);
    if (off + RTA_SPACE(len) > sizeof(m->u.buf)) {
        fprintf(stderr, "pxcan: internal error: netlink message too long\n");
        exit(1);
    }
    struct rtattr *rta = (struct rtattr *)(m->u.buf + off);
    rta->rta_type = (unsigned short)type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(rta), data, len);
    m->u.h.nlmsg_len = (unsigned)(off + RTA_SPACE(len));
    return rta;
}

static void nl_nest_end(struct nl_msg *m, struct rtattr *nest)
{
    nest->rta_len = (unsigned short)(m->u.buf + m->u.h.nlmsg_len - (char *)nest);
}

static int nl_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        fprintf(stderr, "pxcan: netlink socket: %s\n", strerror(errno));
        exit(1);
    }
    int one = 1;
    /* Extended acks carry the kernel's reason text ("bitrate error", ...). */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    return fd;
}

/* Prints the extended-ack message of an NLMSG_ERROR, if the kernel sent one. */
static void nl_print_ext_ack(const struct nlmsghdr *h)
{
    const struct nlmsgerr *e = NLMSG_DATA(h);
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
        return;
    size_t off = sizeof(*e);
    if (!(h->nlmsg_flags & NLM_F_CAPPED))
        off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
    size_t total = h->nlmsg_len - NLMSG_HDRLEN;
    if (off >= total)
        return;
    const struct rtattr *a = (const struct rtattr *)((const char *)e + off);
    size_t left = total - off;
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == NLMSGERR_ATTR_MSG && RTA_PAYLOAD(a) > 0)
            fprintf(stderr, "pxcan: kernel says: %.*s\n", (int)RTA_PAYLOAD(a),
                    (const char *)RTA_DATA(a));
    }
}

/* Sends m and waits for its answer. With reply != NULL the first
 * non-error message is copied there (a GET); otherwise an ack is expected.
 * Returns 0 or a positive errno. */
static int nl_talk(int fd, struct nl_msg *m, struct nl_msg *reply)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, m->u.buf, m->u.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return errno;
    for (;;) {
        static struct nl_msg in;
        ssize_t n = recv(fd, in.u.buf, sizeof(in.u.buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = &in.u.h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != m->u.h.nlmsg_seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                    return EPROTO;
                if (e->error == 0)
                    return reply ? EPROTO : 0;
                nl_print_ext_ack(h);
                return -e->error;
            }
            if (reply) {
                memcpy(reply->u.buf, h, h->nlmsg_len);
                return 0;
            }
        }
    }
}

static void set_flags(int nl, const char *ifname, int ifindex, unsigned up)
{
    struct nl_msg m;
    struct ifinfomsg *ifi = nl_init(&m, RTM_NEWLINK, NLM_F_ACK, ifindex);
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = up ? IFF_UP : 0;
    int err = nl_talk(nl, &m, NULL);
    if (err) {
        fprintf(stderr, "pxcan: %s: setting the link %s: %s\n", ifname, up ? "up" : "down",
                strerror(err));
        if (up && err == EINVAL)
            fprintf(stderr,
                    "pxcan: hint: a CAN controller needs a bit rate first: "
                    "pxcan up %s BITRATE\n",
                    ifname);
        exit(1);
    }
}

static int cmd_up(int argc, char **argv)
{
    long restart_ms = -1;
    int c;
    while ((c = getopt(argc, argv, "r:")) != -1) {
        if (c == 'r')
            restart_ms = (long)parse_num("restart-ms", optarg, UINT32_MAX);
        else
            usage();
    }
    if (argc - optind < 1 || argc - optind > 3)
        usage();
    const char *ifname = argv[optind];
    uint32_t bitrate = 0, dbitrate = 0;
    if (argc - optind >= 2)
        bitrate = (uint32_t)parse_num("bitrate", argv[optind + 1], 1000000);
    if (argc - optind == 3)
        dbitrate = (uint32_t)parse_num("data bitrate", argv[optind + 2], 20000000);
    if (argc - optind >= 2 && bitrate == 0)
        usage();
    if (argc - optind == 3 && dbitrate == 0)
        usage();

    int ifindex = if_index(ifname);
    int nl = nl_open();
    set_flags(nl, ifname, ifindex, 0); /* bit timing cannot change while up */

    if (bitrate || restart_ms >= 0) {
        struct nl_msg m;
        nl_init(&m, RTM_NEWLINK, NLM_F_ACK, ifindex);
        struct rtattr *linkinfo = nl_put(&m, IFLA_LINKINFO, NULL, 0);
        nl_put(&m, IFLA_INFO_KIND, "can", 3);
        struct rtattr *data = nl_put(&m, IFLA_INFO_DATA, NULL, 0);
        if (bitrate) {
            /* FD off unless a data bit rate is given: a classic-only
             * controller accepts the cleared bit, an FD one is reset. */
            struct can_ctrlmode cm = {.mask = CAN_CTRLMODE_FD,
                                      .flags = dbitrate ? CAN_CTRLMODE_FD : 0};
            nl_put(&m, IFLA_CAN_CTRLMODE, &cm, sizeof(cm));
            /* Only the bit rate: the kernel computes the segments
             * (CONFIG_CAN_CALC_BITTIMING, as `ip link ... bitrate` does). */
            struct can_bittiming bt = {.bitrate = bitrate};
            nl_put(&m, IFLA_CAN_BITTIMING, &bt, sizeof(bt));
            if (dbitrate) {
                struct can_bittiming dbt = {.bitrate = dbitrate};
                nl_put(&m, IFLA_CAN_DATA_BITTIMING, &dbt, sizeof(dbt));
            }
        }
        if (restart_ms >= 0) {
            uint32_t ms = (uint32_t)restart_ms;
            nl_put(&m, IFLA_CAN_RESTART_MS, &ms, sizeof(ms));
        }
        nl_nest_end(&m, data);
        nl_nest_end(&m, linkinfo);
        int err = nl_talk(nl, &m, NULL);
        if (err) {
            fprintf(stderr, "pxcan: %s: setting bit timing (bitrate %u%s): %s\n", ifname, bitrate,
                    dbitrate ? ", FD" : "", strerror(err));
            if (err == EOPNOTSUPP)
                fprintf(stderr, "pxcan: hint: %s\n",
                        dbitrate ? "this controller may not support CAN FD"
                                 : "virtual CAN (vcan, vxcan) has no bit timing: pxcan up IF");
            exit(1);
        }
    }
    set_flags(nl, ifname, ifindex, 1);
    close(nl);
    return 0;
}

static int cmd_down(int argc, char **argv)
{
    if (argc != 2)
        usage();
    int nl = nl_open();
    set_flags(nl, argv[1], if_index(argv[1]), 0);
    close(nl);
    return 0;
}

static const char *can_state_name(uint32_t s)
{
    static const char *const names[] = {"ERROR-ACTIVE", "ERROR-WARNING", "ERROR-PASSIVE",
                                        "BUS-OFF",      "STOPPED",       "SLEEPING"};
    return s < sizeof(names) / sizeof(names[0]) ? names[s] : "UNKNOWN";
}

static int cmd_show(int argc, char **argv)
{
    if (argc != 2)
        usage();
    const char *ifname = argv[1];
    int nl = nl_open();
    static struct nl_msg m, reply;
    nl_init(&m, RTM_GETLINK, 0, if_index(ifname));
    int err = nl_talk(nl, &m, &reply);
    close(nl);
    if (err || reply.u.h.nlmsg_type != RTM_NEWLINK ||
        reply.u.h.nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
        fprintf(stderr, "pxcan: %s: reading link: %s\n", ifname, strerror(err ? err : EPROTO));
        return 1;
    }
    const struct ifinfomsg *ifi = NLMSG_DATA(&reply.u.h);
    printf("%s: %s", ifname, (ifi->ifi_flags & IFF_UP) ? "UP" : "DOWN");

    size_t left = reply.u.h.nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
    for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == IFLA_MTU && RTA_PAYLOAD(a) >= 4)
            printf(" mtu %u", *(const uint32_t *)RTA_DATA(a));
        if (a->rta_type != IFLA_LINKINFO)
            continue;
        size_t l2 = RTA_PAYLOAD(a);
        for (const struct rtattr *b = RTA_DATA(a); RTA_OK(b, l2); b = RTA_NEXT(b, l2)) {
            if (b->rta_type == IFLA_INFO_KIND)
                printf(" kind %.*s", (int)strnlen(RTA_DATA(b), RTA_PAYLOAD(b)),
                       (const char *)RTA_DATA(b));
            if (b->rta_type != IFLA_INFO_DATA)
                continue;
            size_t l3 = RTA_PAYLOAD(b);
            for (const struct rtattr *c = RTA_DATA(b); RTA_OK(c, l3); c = RTA_NEXT(c, l3)) {
                const void *p = RTA_DATA(c);
                size_t n = RTA_PAYLOAD(c);
                if (c->rta_type == IFLA_CAN_STATE && n >= 4) {
                    printf(" state %s", can_state_name(*(const uint32_t *)p));
                } else if (c->rta_type == IFLA_CAN_CTRLMODE && n >= sizeof(struct can_ctrlmode)) {
                    const struct can_ctrlmode *cm = p;
                    printf(" ctrlmode 0x%x%s", cm->flags,
                           (cm->flags & CAN_CTRLMODE_FD) ? " fd" : "");
                } else if (c->rta_type == IFLA_CAN_RESTART_MS && n >= 4) {
                    printf(" restart-ms %u", *(const uint32_t *)p);
                } else if ((c->rta_type == IFLA_CAN_BITTIMING ||
                            c->rta_type == IFLA_CAN_DATA_BITTIMING) &&
                           n >= sizeof(struct can_bittiming)) {
                    const struct can_bittiming *bt = p;
                    if (bt->bitrate)
                        printf(" %s %u sample-point %u.%03u",
                               c->rta_type == IFLA_CAN_BITTIMING ? "bitrate" : "dbitrate",
                               bt->bitrate, bt->sample_point / 1000, bt->sample_point % 1000);
                } else if (c->rta_type == IFLA_CAN_BERR_COUNTER &&
                           n >= sizeof(struct can_berr_counter)) {
                    const struct can_berr_counter *bc = p;
                    printf(" berr-counter tx %u rx %u", bc->txerr, bc->rxerr);
                } else if (c->rta_type == IFLA_CAN_CLOCK && n >= sizeof(struct can_clock)) {
                    printf(" clock %u", ((const struct can_clock *)p)->freq);
                }
            }
        }
    }
    printf("\n");
    return 0;
}

/* ---- frames ------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Smallest valid CAN FD payload length >= len (len <= 64). */
static uint8_t fd_len_round(size_t len)
{
    static const uint8_t sizes[] = {12, 16, 20, 24, 32, 48, 64};
    if (len <= 8)
        return (uint8_t)len;
    for (size_t i = 0; i < sizeof(sizes); i++)
        if (len <= sizes[i])
            return sizes[i];
    return 64;
}

/* Parses cansend syntax into f. Returns the frame size to write
 * (CAN_MTU or CANFD_MTU), or 0 with a message on stderr. */
static size_t parse_frame(const char *s, struct canfd_frame *f)
{
    memset(f, 0, sizeof(*f));
    const char *hash = strchr(s, '#');
    if (!hash || (hash - s != 3 && hash - s != 8)) {
        fprintf(stderr,
                "pxcan: '%s': expected 3 (standard) or 8 (extended) hex digits, "
                "then '#'\n",
                s);
        return 0;
    }
    uint32_t id = 0;
    for (const char *p = s; p < hash; p++) {
        int v = hexval(*p);
        if (v < 0) {
            fprintf(stderr, "pxcan: '%s': bad hex digit '%c' in the ID\n", s, *p);
            return 0;
        }
        id = (id << 4) | (uint32_t)v;
    }
    if (hash - s == 3) {
        if (id > CAN_SFF_MASK) {
            fprintf(stderr, "pxcan: '%s': standard ID above 7FF\n", s);
            return 0;
        }
    } else {
        if (id > CAN_EFF_MASK) {
            fprintf(stderr, "pxcan: '%s': extended ID above 1FFFFFFF\n", s);
            return 0;
        }
        id |= CAN_EFF_FLAG;
    }
    f->can_id = id;

    const char *p = hash + 1;
    int fd = 0;
    size_t max = CAN_MAX_DLEN;
    if (*p == 'R' || *p == 'r') {
        f->can_id |= CAN_RTR_FLAG;
        p++;
        if (*p >= '0' && *p <= '8' && p[1] == '\0')
            f->len = (uint8_t)(*p - '0');
        else if (*p != '\0') {
            fprintf(stderr, "pxcan: '%s': after 'R' only a length 0..8 may follow\n", s);
            return 0;
        }
        return CAN_MTU;
    }
    if (*p == '#') {
        int v = hexval(p[1]);
        if (v < 0) {
            fprintf(stderr, "pxcan: '%s': CAN FD needs one hex flags digit after '##'\n", s);
            return 0;
        }
        /* FDF marks an FD frame in the frame itself (Linux >= 6.0 sets it
         * on every CANFD_MTU write anyway). */
        f->flags = (uint8_t)((v & (CANFD_BRS | CANFD_ESI)) | CANFD_FDF);
        fd = 1;
        max = CANFD_MAX_DLEN;
        p += 2;
    }
    size_t len = 0;
    while (*p) {
        if (*p == '.') {
            p++;
            continue;
        }
        int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "pxcan: '%s': data must be pairs of hex digits\n", s);
            return 0;
        }
        if (len == max) {
            fprintf(stderr, "pxcan: '%s': more than %zu data bytes\n", s, max);
            return 0;
        }
        f->data[len++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (!fd) {
        f->len = (uint8_t)len;
        return CAN_MTU;
    }
    f->len = fd_len_round(len); /* padding bytes stay zero */
    return CANFD_MTU;
}

static int can_open(const char *ifname, int *ifindex_out)
{
    int s = socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
    if (s < 0) {
        fprintf(stderr, "pxcan: CAN socket: %s (is the can_raw module loaded?)\n", strerror(errno));
        exit(1);
    }
    int ifindex = strcmp(ifname, "any") == 0 ? 0 : if_index(ifname);
    int one = 1;
    if (setsockopt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof(one)) < 0) {
        fprintf(stderr, "pxcan: CAN_RAW_FD_FRAMES: %s\n", strerror(errno));
        exit(1);
    }
    struct sockaddr_can addr = {.can_family = AF_CAN, .can_ifindex = ifindex};
    if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "pxcan: %s: bind: %s\n", ifname, strerror(errno));
        exit(1);
    }
    *ifindex_out = ifindex;
    return s;
}

static int cmd_send(int argc, char **argv)
{
    unsigned long count = 1;
    int c;
    while ((c = getopt(argc, argv, "n:")) != -1) {
        if (c == 'n')
            count = parse_num("count", optarg, ULONG_MAX);
        else
            usage();
    }
    if (argc - optind < 2)
        usage();
    const char *ifname = argv[optind];
    int nframes = argc - optind - 1;
    struct canfd_frame *frames = calloc((size_t)nframes, sizeof(*frames));
    size_t *sizes = calloc((size_t)nframes, sizeof(*sizes));
    if (!frames || !sizes) {
        fprintf(stderr, "pxcan: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nframes; i++) {
        sizes[i] = parse_frame(argv[optind + 1 + i], &frames[i]);
        if (sizes[i] == 0)
            return 2;
    }
    int ifindex;
    int s = can_open(ifname, &ifindex);
    for (unsigned long k = 0; k < count; k++) {
        for (int i = 0; i < nframes;) {
            ssize_t n = write(s, &frames[i], sizes[i]);
            if (n == (ssize_t)sizes[i]) {
                i++;
                continue;
            }
            if (n < 0 && errno == ENOBUFS) {
                /* The device queue is full: wait for room instead of dropping. */
                struct pollfd p = {.fd = s, .events = POLLOUT};
                (void)poll(&p, 1, 10);
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            fprintf(stderr, "pxcan: %s: send %s: %s\n", ifname, argv[optind + 1 + i],
                    n < 0 ? strerror(errno) : "short write");
            if (n < 0 && errno == EINVAL && sizes[i] == CANFD_MTU)
                fprintf(stderr,
                        "pxcan: hint: is %s in FD mode (pxcan up %s BITRATE "
                        "DBITRATE)?\n",
                        ifname, ifname);
            return 1;
        }
    }
    close(s);
    free(frames);
    free(sizes);
    return 0;
}

/* One candump line. dir ("RX"/"TX") adds candump -x's direction and FD
 * flags (B = BRS, E = ESI) after the interface name; NULL leaves them out. */
static void print_frame(const char *ifname, const struct canfd_frame *f, size_t size,
                        const char *dir)
{
    char line[64 * 3 + 80];
    int n = snprintf(line, sizeof(line), "  %s", ifname);
    if (dir)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "  %s %c %c", dir,
                      (size == CANFD_MTU && (f->flags & CANFD_BRS)) ? 'B' : '-',
                      (size == CANFD_MTU && (f->flags & CANFD_ESI)) ? 'E' : '-');
    if (f->can_id & CAN_ERR_FLAG)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "  %08X",
                      f->can_id & (CAN_ERR_MASK | CAN_ERR_FLAG));
    else if (f->can_id & CAN_EFF_FLAG)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "  %08X", f->can_id & CAN_EFF_MASK);
    else
        n += snprintf(line + n, sizeof(line) - (size_t)n, "  %03X", f->can_id & CAN_SFF_MASK);
    unsigned len = f->len;
    if (size == CANFD_MTU) {
        if (len > CANFD_MAX_DLEN)
            len = CANFD_MAX_DLEN;
        n += snprintf(line + n, sizeof(line) - (size_t)n, "  [%02u] ", len);
    } else {
        if (len > CAN_MAX_DLEN)
            len = CAN_MAX_DLEN;
        n += snprintf(line + n, sizeof(line) - (size_t)n, "   [%u] ", len);
    }
    if (f->can_id & CAN_RTR_FLAG) {
        snprintf(line + n, sizeof(line) - (size_t)n, " remote request");
    } else {
        for (unsigned i = 0; i < len; i++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %02X", f->data[i]);
        if (f->can_id & CAN_ERR_FLAG)
            snprintf(line + n, sizeof(line) - (size_t)n, "   ERRORFRAME");
    }
    printf("%s\n", line);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_recv(int argc, char **argv)
{
    unsigned long count = 0;
    long timeout = -1;
    int errframes = 0, own = 0, extra = 0;
    int c;
    while ((c = getopt(argc, argv, "n:t:eox")) != -1) {
        if (c == 'n')
            count = parse_num("count", optarg, ULONG_MAX);
        else if (c == 't')
            timeout = (long)parse_num("timeout", optarg, INT_MAX);
        else if (c == 'e')
            errframes = 1;
        else if (c == 'o')
            own = 1;
        else if (c == 'x')
            extra = 1;
        else
            usage();
    }
    if (argc - optind != 1)
        usage();
    const char *ifname = argv[optind];
    int ifindex;
    int s = can_open(ifname, &ifindex);
    if (errframes) {
        can_err_mask_t mask = CAN_ERR_MASK;
        if (setsockopt(s, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &mask, sizeof(mask)) < 0) {
            fprintf(stderr, "pxcan: CAN_RAW_ERR_FILTER: %s\n", strerror(errno));
            return 1;
        }
    }
    if (own && setsockopt(s, SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &own, sizeof(own)) < 0) {
        fprintf(stderr, "pxcan: CAN_RAW_RECV_OWN_MSGS: %s\n", strerror(errno));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    long long deadline = timeout >= 0 ? now_ms() + timeout : 0;
    unsigned long got = 0;
    while (count == 0 || got < count) {
        int wait = -1;
        if (timeout >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                break;
            wait = (int)left;
        }
        struct pollfd p = {.fd = s, .events = POLLIN};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "pxcan: poll: %s\n", strerror(errno));
            return 1;
        }
        if (r == 0)
            break;
        struct canfd_frame f;
        struct sockaddr_can from;
        struct iovec iov = {.iov_base = &f, .iov_len = sizeof(f)};
        struct msghdr mh = {
            .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(s, &mh, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "pxcan: %s: receive: %s\n", ifname, strerror(errno));
            return 1;
        }
        if (n != CAN_MTU && n != CANFD_MTU)
            continue;
        char name[IF_NAMESIZE] = "?";
        if (ifindex == 0 &&
            mh.msg_namelen >= offsetof(struct sockaddr_can, can_ifindex) + sizeof(int))
            (void)if_indextoname((unsigned)from.can_ifindex, name);
        /* can_raw marks the socket's own frames (-o) with MSG_DONTROUTE. */
        const char *dir = !extra ? NULL : (mh.msg_flags & MSG_DONTROUTE) ? "TX" : "RX";
        print_frame(ifindex ? ifname : name, &f, (size_t)n, dir);
        got++;
    }
    close(s);
    if (count && got < count) {
        fprintf(stderr, "pxcan: %s: timeout after %lu of %lu frames\n", ifname, got, count);
        return 1;
    }
    return 0;
}

/* Parses and prints frames without a socket, so the parser and the printer
 * can be tested on a host without AF_CAN. */
static int cmd_print(int argc, char **argv)
{
    int extra = argc > 1 && strcmp(argv[1], "-x") == 0;
    if (argc < 2 + extra)
        usage();
    for (int i = 1 + extra; i < argc; i++) {
        struct canfd_frame f;
        size_t size = parse_frame(argv[i], &f);
        if (size == 0)
            return 2;
        print_frame("-", &f, size, extra ? "TX" : NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (strcmp(cmd, "up") == 0)
        return cmd_up(argc, argv);
    if (strcmp(cmd, "down") == 0)
        return cmd_down(argc, argv);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(argc, argv);
    if (strcmp(cmd, "send") == 0)
        return cmd_send(argc, argv);
    if (strcmp(cmd, "recv") == 0)
        return cmd_recv(argc, argv);
    if (strcmp(cmd, "print") == 0)
        return cmd_print(argc, argv);
    usage();
    return 2;
}
