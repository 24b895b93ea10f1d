/* plexus — libpxcanshim.so: QEMU's can-host-socketcan without AF_CAN.
 *
 * Loaded with LD_PRELOAD into an unmodified QEMU. A PF_CAN/SOCK_RAW/CAN_RAW
 * socket() becomes a SOCK_SEQPACKET AF_UNIX socket; SIOCGIFINDEX/SIOCGIFMTU,
 * setsockopt(SOL_CAN_RAW) and bind() are answered here, and bind() connects
 * the socket to the node's socket for that interface:
 *   PLEXUS_CAN_SOCKET_DIR=D   if=NAME -> D/NAME.sock (one per interface)
 *   PLEXUS_CAN_SOCKET=P       every interface -> P
 * read()/write() on such a socket translate between QEMU's qemu_can_frame
 * (16 bytes classic, 72 FD with flag 0x10) and the node's 72-byte
 * px_can_frame messages (devices/can/frame.h). Every other call, and every
 * other fd, goes straight to libc. With neither variable set the shim does
 * nothing at all. docs/can-shim.md has the whole story.
 *
 * A node can never crash QEMU through this: messages are size-checked and
 * validated before anything is copied, bad ones are dropped and counted.
 * When the node's socket goes away the fd is parked on an eventfd that
 * never becomes readable, so QEMU's read handler (which would otherwise
 * spin on EOF, forwarding a stale frame every time) falls silent; writes are
 * then dropped and counted. Counters are printed to stderr when the socket
 * is closed or QEMU exits, if any frame was dropped.
 */
/* Before any include: meson's -D_FILE_OFFSET_BITS=64 would turn our fcntl
 * definition into a second fcntl64. Both are defined below. */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE /* its inline read() wrapper would clash with ours */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/raw.h>

#include "devices/can/frame.h"

#define SHIM_MAX_FD       65536 /* fds at or above are never CAN sockets */
#define SHIM_MAX_SOCKS    64    /* CAN sockets open at once */
#define SHIM_MAX_IFS      64    /* interface names handed an ifindex */
#define SHIM_IFINDEX_BASE 7000  /* fake ifindex of interface slot 0 */
#define SHIM_MAX_DRAIN    64    /* bad messages skipped in one read() */
#define SHIM_MAX_FILTERS  512   /* as Linux's CAN_RAW_FILTER_MAX */
#define SHIM_PREFIX       "plexus-can-shim: "
#define SHIM_SEND_FLAGS   (MSG_NOSIGNAL | MSG_DONTWAIT)
/* How long a write waits for room when the node's socket is full: the bus
 * is busy (the node stops reading a controller whose window is full), so
 * the guest's transmission waits, as on a real bus, for up to this long;
 * then the frame is dropped and counted. Bounded so that QEMU (whose vCPU
 * holds its big lock during the write) stays responsive. */
#define SHIM_SEND_WAIT_MS  5
#define SHIM_RECV_BUF_SIZE 128 /* > PX_CAN_FRAME_SIZE: a longer message reads as too long */

typedef int (*socket_fn)(int, int, int);
typedef int (*close_fn)(int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*fcntl_fn)(int, int, ...);

static struct {
    socket_fn socket;
    close_fn close;
    read_fn read;
    write_fn write;
    setsockopt_fn setsockopt;
    ioctl_fn ioctl;
    bind_fn bind;
    dup_fn dup;
    dup2_fn dup2;
    dup3_fn dup3;
    fcntl_fn fcntl;
    fcntl_fn fcntl64;
} real;

/* One CAN socket (an open file description: dup'd fds share it). */
typedef struct shim_sock {
    bool used;
    bool fd_frames; /* CAN_RAW_FD_FRAMES was set */
    bool bound;
    bool parked; /* the node's socket is gone; the fds are on an eventfd */
    int refs;    /* fds that map here */
    char ifname[IFNAMSIZ];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" until bind */
    unsigned long rx_bad[PX_CAN_STATUS_COUNT];              /* node -> QEMU, dropped, by reason */
    unsigned long tx_bad[PX_CAN_STATUS_COUNT];              /* QEMU -> node, refused, by reason */
    unsigned long tx_full;                                  /* node socket full: dropped */
    unsigned long tx_gone;                                  /* node gone: dropped */
    unsigned long rx_ok, tx_ok;
    bool warned_rx, warned_tx;
} shim_sock;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static shim_sock socks[SHIM_MAX_SOCKS];
static char ifnames[SHIM_MAX_IFS][IFNAMSIZ]; /* ifindex SHIM_IFINDEX_BASE + i */
/* fd -> 1 + index into socks, 0 for any fd that is not ours. Read without
 * the lock on every read()/write() in the process, so it must be cheap. */
static _Atomic unsigned char fd_sock[SHIM_MAX_FD];

_Static_assert(SHIM_MAX_SOCKS < 255, "fd_sock holds 1 + index in a byte");

static void resolve(void)
{
    real.socket = (socket_fn)dlsym(RTLD_NEXT, "socket");
    real.close = (close_fn)dlsym(RTLD_NEXT, "close");
    real.read = (read_fn)dlsym(RTLD_NEXT, "read");
    real.write = (write_fn)dlsym(RTLD_NEXT, "write");
    real.setsockopt = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
    real.ioctl = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
    real.bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    real.dup = (dup_fn)dlsym(RTLD_NEXT, "dup");
    real.dup2 = (dup2_fn)dlsym(RTLD_NEXT, "dup2");
    real.dup3 = (dup3_fn)dlsym(RTLD_NEXT, "dup3");
    real.fcntl = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl");
    real.fcntl64 = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl64");
    if (!real.fcntl64)
        real.fcntl64 = real.fcntl;
}

#define REAL(fn) (pthread_once(&once, resolve), real.fn)

static int sock_of(int fd)
{
    if (fd < 0 || fd >= SHIM_MAX_FD)
        return -1;
    return (int)atomic_load_explicit(&fd_sock[fd], memory_order_acquire) - 1;
}

/* Caller holds lock. */
static void track(int fd, int s)
{
    socks[s].refs++;
    atomic_store_explicit(&fd_sock[fd], (unsigned char)(s + 1), memory_order_release);
}

static void report(const shim_sock *k)
{
    unsigned long rx = 0, tx = k->tx_full + k->tx_gone;
    for (int i = 0; i < PX_CAN_STATUS_COUNT; i++) {
        rx += k->rx_bad[i];
        tx += k->tx_bad[i];
    }
    if (!rx && !tx)
        return;
    fprintf(stderr,
            SHIM_PREFIX "%s: %lu frames in, %lu out; dropped %lu from the node "
                        "(size %lu, len %lu, flags %lu, id %lu, reserved %lu, fd-off %lu), "
                        "%lu to it (invalid %lu, socket full %lu, node gone %lu)\n",
            k->ifname, k->rx_ok, k->tx_ok, rx, k->rx_bad[PX_CAN_BAD_SIZE],
            k->rx_bad[PX_CAN_BAD_LEN], k->rx_bad[PX_CAN_BAD_FLAGS], k->rx_bad[PX_CAN_BAD_ID],
            k->rx_bad[PX_CAN_BAD_RESERVED], k->rx_bad[PX_CAN_FD_DISABLED], tx,
            tx - k->tx_full - k->tx_gone, k->tx_full, k->tx_gone);
}

/* Caller holds lock. Forgets fd; the last fd of a socket frees its slot. */
static void untrack(int fd)
{
    int s = sock_of(fd);
    if (s < 0)
        return;
    atomic_store_explicit(&fd_sock[fd], 0, memory_order_release);
    if (--socks[s].refs == 0) {
        report(&socks[s]);
        memset(&socks[s], 0, sizeof(socks[s]));
    }
}

__attribute__((destructor)) static void shim_fini(void)
{
    pthread_mutex_lock(&lock);
    for (int s = 0; s < SHIM_MAX_SOCKS; s++)
        if (socks[s].used)
            report(&socks[s]);
    pthread_mutex_unlock(&lock);
}

/* Caller holds lock. Puts every fd of socket s on one eventfd that is
 * never written: poll() never reports it, so QEMU stops reading. The fd
 * numbers (and their close-on-exec bits) stay as QEMU knows them. */
static void park(int s, const char *why)
{
    if (socks[s].parked)
        return;
    socks[s].parked = true;
    fprintf(stderr, SHIM_PREFIX "%s: node socket %s %s; frames to it are dropped from now on\n",
            socks[s].ifname, socks[s].path, why);
    int quiet = eventfd(0, EFD_CLOEXEC);
    if (quiet < 0)
        return; /* reads still fail with ENOTCONN below; QEMU warns, no more */
    for (int fd = 0; fd < SHIM_MAX_FD; fd++) {
        if (sock_of(fd) != s)
            continue;
        int fdflags = REAL(fcntl)(fd, F_GETFD);
        (void)REAL(dup3)(quiet, fd, fdflags > 0 && (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0);
    }
    REAL(close)(quiet);
}

/* Shim configuration from the environment: which socket IFNAME maps to.
 * Returns 0 and fills path, or -1 with errno (ENODEV, ENAMETOOLONG). */
static int node_path(const char *ifname, char *path, size_t cap)
{
    const char *dir = getenv("PLEXUS_CAN_SOCKET_DIR");
    const char *one = getenv("PLEXUS_CAN_SOCKET");
    int n;
    if (dir && *dir) {
        /* The name becomes a file name: letters, digits, - _ . only, and
         * not a dot file (no "..", no hidden files). */
        if (!ifname[0] || ifname[0] == '.')
            goto nodev;
        for (const char *c = ifname; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
                goto nodev;
        n = snprintf(path, cap, "%s/%s.sock", dir, ifname);
    } else if (one && *one) {
        n = snprintf(path, cap, "%s", one);
    } else {
        goto nodev;
    }
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
nodev:
    errno = ENODEV;
    return -1;
}

static bool shim_enabled(void)
{
    const char *dir = getenv("PLEXUS_CAN_SOCKET_DIR");
    const char *one = getenv("PLEXUS_CAN_SOCKET");
    return (dir && *dir) || (one && *one);
}

int socket(int domain, int type, int protocol)
{
    if (domain != PF_CAN || (type & 0xf) != SOCK_RAW || protocol != CAN_RAW || !shim_enabled())
        return REAL(socket)(domain, type, protocol);

    int fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | (type & (SOCK_CLOEXEC | SOCK_NONBLOCK)), 0);
    if (fd < 0)
        return -1;
    if (fd >= SHIM_MAX_FD) {
        REAL(close)(fd);
        errno = EMFILE;
        return -1;
    }
    pthread_mutex_lock(&lock);
    int s = 0;
    while (s < SHIM_MAX_SOCKS && socks[s].used)
        s++;
    if (s == SHIM_MAX_SOCKS) {
        pthread_mutex_unlock(&lock);
        REAL(close)(fd);
        errno = ENOBUFS;
        return -1;
    }
    memset(&socks[s], 0, sizeof(socks[s]));
    socks[s].used = true;
    track(fd, s);
    pthread_mutex_unlock(&lock);
    return fd;
}

int close(int fd)
{
    if (sock_of(fd) >= 0) {
        pthread_mutex_lock(&lock);
        untrack(fd);
        pthread_mutex_unlock(&lock);
    }
    return REAL(close)(fd);
}

/* Caller holds lock. newfd now refers to what oldfd does. */
static int dup_result(int oldfd, int newfd)
{
    int s = sock_of(oldfd);
    if (newfd < 0 || s < 0)
        return newfd;
    if (newfd >= SHIM_MAX_FD) {
        REAL(close)(newfd);
        errno = EMFILE;
        return -1;
    }
    track(newfd, s);
    return newfd;
}

int dup(int oldfd)
{
    if (sock_of(oldfd) < 0)
        return REAL(dup)(oldfd);
    pthread_mutex_lock(&lock);
    int r = dup_result(oldfd, REAL(dup)(oldfd));
    pthread_mutex_unlock(&lock);
    return r;
}

static int dup23(int oldfd, int newfd, int flags, bool three)
{
    if (sock_of(oldfd) < 0 && sock_of(newfd) < 0)
        return three ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
    pthread_mutex_lock(&lock);
    int r = three ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
    if (r >= 0 && oldfd != newfd) {
        untrack(newfd); /* closed by the dup */
        r = dup_result(oldfd, r);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int dup2(int oldfd, int newfd)
{
    return dup23(oldfd, newfd, 0, false);
}

int dup3(int oldfd, int newfd, int flags)
{
    return dup23(oldfd, newfd, flags, true);
}

/* glibc passes fcntl's third argument on as a pointer-sized word; so do we. */
static int fcntl_common(fcntl_fn fn, int fd, int cmd, void *arg)
{
    if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || sock_of(fd) < 0)
        return fn(fd, cmd, arg);
    pthread_mutex_lock(&lock);
    int r = dup_result(fd, fn(fd, cmd, arg));
    pthread_mutex_unlock(&lock);
    return r;
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}

int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)
{
    int s = sock_of(fd);
    if (s < 0 || level != SOL_CAN_RAW)
        return REAL(setsockopt)(fd, level, optname, optval, optlen);
    /* Accepted as Linux accepts them. Filters are not applied: the node
     * delivers the whole bus, which is what QEMU asks for (one pass-all
     * filter, every error class). */
    switch (optname) {
    case CAN_RAW_FILTER:
        if (optlen % sizeof(struct can_filter) ||
            optlen > SHIM_MAX_FILTERS * sizeof(struct can_filter))
            goto inval;
        return 0;
    case CAN_RAW_ERR_FILTER:
        if (optlen != sizeof(can_err_mask_t))
            goto inval;
        return 0;
    case CAN_RAW_LOOPBACK:
    case CAN_RAW_RECV_OWN_MSGS:
    case CAN_RAW_JOIN_FILTERS:
        if (optlen != sizeof(int))
            goto inval;
        return 0;
    case CAN_RAW_FD_FRAMES: {
        int on;
        if (optlen != sizeof(int) || !optval)
            goto inval;
        memcpy(&on, optval, sizeof(on));
        pthread_mutex_lock(&lock);
        socks[s].fd_frames = on != 0;
        pthread_mutex_unlock(&lock);
        return 0;
    }
    default:
        errno = ENOPROTOOPT;
        return -1;
    }
inval:
    errno = EINVAL;
    return -1;
}

/* SIOCGIFINDEX: the name gets a fake index if its node socket exists (in
 * PLEXUS_CAN_SOCKET_DIR mode), so a wrong if= fails at QEMU start with
 * "No such device", as it would on a host without that interface. */
static int ioctl_ifindex(int s, struct ifreq *ifr)
{
    char name[IFNAMSIZ], path[sizeof(socks[0].path)];
    struct stat st;
    memcpy(name, ifr->ifr_name, IFNAMSIZ);
    name[IFNAMSIZ - 1] = '\0';
    if (node_path(name, path, sizeof(path)) < 0)
        return -1;
    if (getenv("PLEXUS_CAN_SOCKET_DIR") && getenv("PLEXUS_CAN_SOCKET_DIR")[0] &&
        (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))) {
        errno = ENODEV;
        return -1;
    }
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < SHIM_MAX_IFS && ifnames[i][0] && strcmp(ifnames[i], name) != 0)
        i++;
    if (i == SHIM_MAX_IFS) {
        pthread_mutex_unlock(&lock);
        errno = ENODEV;
        return -1;
    }
    memcpy(ifnames[i], name, IFNAMSIZ);
    memcpy(socks[s].ifname, name, IFNAMSIZ);
    pthread_mutex_unlock(&lock);
    ifr->ifr_ifindex = SHIM_IFINDEX_BASE + i;
    return 0;
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int s = sock_of(fd);
    if (s < 0 || (request != SIOCGIFINDEX && request != SIOCGIFMTU) || !arg)
        return REAL(ioctl)(fd, request, arg);
    struct ifreq *ifr = arg;
    if (request == SIOCGIFINDEX)
        return ioctl_ifindex(s, ifr);
    /* SIOCGIFMTU: CAN FD capable unless PLEXUS_CAN_MTU=16 says classic. */
    const char *mtu = getenv("PLEXUS_CAN_MTU");
    ifr->ifr_mtu = (mtu && strcmp(mtu, "16") == 0) ? (int)PX_CAN_MTU : (int)PX_CANFD_MTU;
    return 0;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    int s = sock_of(fd);
    if (s < 0)
        return REAL(bind)(fd, addr, len);
    const struct sockaddr_can *ca = (const struct sockaddr_can *)addr;
    if (!addr || len < offsetof(struct sockaddr_can, can_ifindex) + sizeof(ca->can_ifindex) ||
        ca->can_family != AF_CAN) {
        errno = EINVAL;
        return -1;
    }
    int i = ca->can_ifindex - SHIM_IFINDEX_BASE;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char name[IFNAMSIZ];

    pthread_mutex_lock(&lock);
    bool bound = socks[s].bound;
    if (i >= 0 && i < SHIM_MAX_IFS && ifnames[i][0])
        memcpy(name, ifnames[i], IFNAMSIZ);
    else
        name[0] = '\0';
    pthread_mutex_unlock(&lock);
    if (bound) {
        errno = EINVAL;
        return -1;
    }
    if (!name[0]) {
        errno = ENODEV; /* ifindex 0 (all interfaces) or not one of ours */
        return -1;
    }
    if (node_path(name, un.sun_path, sizeof(un.sun_path)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0)
        return -1;

    pthread_mutex_lock(&lock);
    socks[s].bound = true;
    memcpy(socks[s].ifname, name, IFNAMSIZ);
    memcpy(socks[s].path, un.sun_path, sizeof(socks[s].path));
    pthread_mutex_unlock(&lock);
    return 0;
}

static bool peer_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static bool gone_errno(int e)
{
    return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ECONNREFUSED;
}

/* One frame for QEMU, skipping (and counting) up to SHIM_MAX_DRAIN bad
 * messages. A read that finds only bad ones fails with EAGAIN: QEMU warns
 * and waits for the next poll (returning 0 would make it forward a stale
 * frame). */
static ssize_t shim_read(int s, int fd, void *buf, size_t count)
{
    unsigned char msg[SHIM_RECV_BUF_SIZE];
    unsigned char out[PX_CANFD_MTU];
    int flags = 0;

    if (count < PX_CAN_MTU) {
        errno = EINVAL;
        return -1;
    }
    for (int tries = 0; tries < SHIM_MAX_DRAIN; tries++, flags = MSG_DONTWAIT) {
        pthread_mutex_lock(&lock);
        bool parked = socks[s].parked, fd_frames = socks[s].fd_frames, bound = socks[s].bound;
        pthread_mutex_unlock(&lock);
        if (parked || !bound) {
            errno = ENOTCONN;
            return -1;
        }
        ssize_t n = recv(fd, msg, sizeof(msg), flags);
        if (n < 0 || (n == 0 && peer_gone(fd))) {
            int e = n < 0 ? errno : ECONNRESET;
            if (gone_errno(e) || n == 0) {
                pthread_mutex_lock(&lock);
                park(s, n == 0 ? "closed" : strerror(e));
                pthread_mutex_unlock(&lock);
            }
            errno = e;
            return -1;
        }
        px_can_frame f;
        px_can_status st = px_can_from_wire(msg, (size_t)n, &f);
        size_t len = 0;
        if (st == PX_CAN_OK)
            len = px_can_to_qemu(&f, fd_frames, out, sizeof(out), &st);
        pthread_mutex_lock(&lock);
        if (st != PX_CAN_OK) {
            socks[s].rx_bad[st]++;
            if (!socks[s].warned_rx && st != PX_CAN_FD_DISABLED)
                fprintf(stderr,
                        SHIM_PREFIX "%s: dropped a %zd-byte message from the node: %s "
                                    "(further drops are only counted)\n",
                        socks[s].ifname, n, px_can_status_str(st));
            socks[s].warned_rx = socks[s].warned_rx || st != PX_CAN_FD_DISABLED;
            pthread_mutex_unlock(&lock);
            continue;
        }
        socks[s].rx_ok++;
        pthread_mutex_unlock(&lock);
        if (len > count) {
            errno = EINVAL; /* an FD frame for a 16-byte buffer */
            return -1;
        }
        memcpy(buf, out, len);
        return (ssize_t)len;
    }
    errno = EAGAIN;
    return -1;
}

ssize_t read(int fd, void *buf, size_t count)
{
    int s = sock_of(fd);
    if (s < 0)
        return REAL(read)(fd, buf, count);
    return shim_read(s, fd, buf, count);
}

/* Linux semantics for what QEMU wrote (EINVAL for a wrong size or a bad
 * frame, as a raw CAN socket says); the node's queue being full or gone
 * drops the frame and reports success, so QEMU does not warn per frame. */
static ssize_t shim_write(int s, int fd, const void *buf, size_t count)
{
    px_can_frame f;
    px_can_status st = px_can_from_qemu(buf, count, &f);

    pthread_mutex_lock(&lock);
    bool parked = socks[s].parked, fd_frames = socks[s].fd_frames, bound = socks[s].bound;
    if (st == PX_CAN_OK && (f.flags & PX_CANFD_FDF) && !fd_frames)
        st = PX_CAN_FD_DISABLED;
    if (st != PX_CAN_OK)
        socks[s].tx_bad[st]++;
    else if (parked)
        socks[s].tx_gone++;
    pthread_mutex_unlock(&lock);
    if (!bound) {
        errno = ENOTCONN;
        return -1;
    }
    if (st != PX_CAN_OK) {
        errno = EINVAL;
        return -1;
    }
    if (parked)
        return (ssize_t)count;

    ssize_t n = send(fd, &f, sizeof(f), SHIM_SEND_FLAGS);
    int e = errno;
    if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, SHIM_SEND_WAIT_MS) > 0)
            n = send(fd, &f, sizeof(f), SHIM_SEND_FLAGS);
        e = errno;
    }
    pthread_mutex_lock(&lock);
    if (n == (ssize_t)sizeof(f)) {
        socks[s].tx_ok++;
    } else if (n < 0 && gone_errno(e)) {
        socks[s].tx_gone++;
        park(s, strerror(e));
    } else {
        socks[s].tx_full++;
        if (!socks[s].warned_tx)
            fprintf(stderr, SHIM_PREFIX "%s: node socket full, dropping frames (%s)\n",
                    socks[s].ifname, n < 0 ? strerror(e) : "short send");
        socks[s].warned_tx = true;
    }
    pthread_mutex_unlock(&lock);
    return (ssize_t)count;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    int s = sock_of(fd);
    if (s < 0)
        return REAL(write)(fd, buf, count);
    return shim_write(s, fd, buf, count);
}
