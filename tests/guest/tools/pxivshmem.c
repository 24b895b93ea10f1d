/* pxivshmem: see an ivshmem-doorbell device from inside a plexus test guest
 * without a driver (built into the image by scripts/guest-image.sh).
 *
 *   pxivshmem [-d BDF] [-S DIR] info                 id N size BYTES bdf BDF
 *   pxivshmem [-d BDF] [-S DIR] arm
 *   pxivshmem [-d BDF] [-S DIR] ring PEER VECTOR
 *   pxivshmem [-d BDF] [-S DIR] wait VECTOR TIMEOUT_MS
 *   pxivshmem [-d BDF] [-S DIR] pending
 *
 * The device is the first PCI function with vendor 0x1af4, device 0x1110
 * (in name order) under DIR (default /sys/bus/pci/devices), or -d BDF
 * (0000:00:04.0; the domain may be left out). -S points at another
 * directory of the same shape: the host-side tests build a fake device
 * there out of plain files (config, resource0..2, vendor, device).
 *
 * QEMU delivers a doorbell only as MSI-X, and drops it while MSI-X is
 * disabled. `arm` enables the device (command register: memory space and
 * bus master) and MSI-X (the capability's Message Control bit 15), masking
 * every vector first: the table entries' message addresses are 0, and an
 * unmasked vector would send an MSI there. A doorbell to a masked vector
 * sets its pending bit in the PBA, and the bit stays set (nothing clears
 * it while the vector is masked), so one vector tells one event per boot.
 *
 *   info     the own peer ID (BAR0 IVPosition), the region size (BAR2)
 *   ring     write BAR0 Doorbell = PEER << 16 | VECTOR (PEER 0..65535,
 *            VECTOR 0..255: QEMU uses the low 8 bits)
 *   wait     arm if not armed, then poll VECTOR's pending bit until it is
 *            set ("vector V pending", exit 0) or TIMEOUT_MS passes
 *            ("timeout", exit 1)
 *   pending  the PBA words ("pba 0x...") and the pending vectors
 *            ("pending 1 3" or "pending none")
 *
 * Region contents: pxpoke -f DIR/BDF/resource2 (BAR2 is the region).
 * Exit status: 0 success, 1 failure (the message says which step), 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110
#define REG_IVPOSITION 8
#define REG_DOORBELL   12
#define BAR0_MIN_SIZE  16

#define PCI_COMMAND       0x04
#define PCI_COMMAND_MEM   0x0002
#define PCI_COMMAND_BM    0x0004
#define PCI_STATUS        0x06
#define PCI_STATUS_CAPS   0x0010
#define PCI_CAP_PTR       0x34
#define PCI_CAP_ID_MSIX   0x11
#define PCI_CFG_SIZE      256
#define MSIX_CTRL         2 /* Message Control, from the capability */
#define MSIX_CTRL_ENABLE  0x8000
#define MSIX_CTRL_QSIZE   0x07ff
#define MSIX_TABLE        4 /* Table offset | BIR */
#define MSIX_PBA          8 /* PBA offset | BIR */
#define MSIX_ENTRY_SIZE   16
#define MSIX_ENTRY_VCTRL  12
#define MSIX_VCTRL_MASKED 0x1
#define MAX_CAPS          48 /* (256 - 64) / 4: more means a loop */
#define POLL_NS           200000

struct dev {
    char dir[512]; /* DIR/BDF */
    const char *bdf;
    uint8_t cfg[PCI_CFG_SIZE];
    unsigned msix;    /* offset of the MSI-X capability */
    unsigned nvec;    /* table size */
    unsigned tbl_bar; /* BIR of the table */
    uint32_t tbl_off; /* its offset in that BAR */
    unsigned pba_bar; /* BIR of the PBA */
    uint32_t pba_off; /* its offset in that BAR */
};

struct map {
    volatile uint8_t *base; /* what the caller asked for */
    void *page;             /* the whole mapping */
    size_t len;
};

static void usage(void)
{
    fprintf(stderr, "usage: pxivshmem [-d BDF] [-S DIR] info\n"
                    "       pxivshmem [-d BDF] [-S DIR] arm\n"
                    "       pxivshmem [-d BDF] [-S DIR] ring PEER VECTOR\n"
                    "       pxivshmem [-d BDF] [-S DIR] wait VECTOR TIMEOUT_MS\n"
                    "       pxivshmem [-d BDF] [-S DIR] pending\n");
    exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxivshmem: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Parses a decimal number in [0, max]; exits with a usage message otherwise. */
static unsigned long parse_num(const char *what, const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "pxivshmem: %s: '%s' is not a number in 0..%lu\n", what, s, max);
        exit(2);
    }
    return v;
}

/* The hex number in a sysfs attribute such as vendor ("0x1af4\n"); -1 if
 * it cannot be read. */
static long read_hex_attr(const char *dir, const char *name)
{
    char path[600], buf[32];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 16);
    if (errno || end == buf || (*end && *end != '\n'))
        return -1;
    return v;
}

static int is_ivshmem(const char *dir)
{
    return read_hex_attr(dir, "vendor") == IVSHMEM_VENDOR &&
           read_hex_attr(dir, "device") == IVSHMEM_DEVICE;
}

/* Finds the device (the first in name order, or bdf) and reads its config
 * space; exits when there is none. */
static void find_dev(struct dev *d, const char *root, const char *bdf)
{
    static char name[256];
    if (bdf) {
        /* "00:04.0" is domain 0000's */
        int has_domain = strchr(bdf, ':') != strrchr(bdf, ':');
        snprintf(name, sizeof(name), "%s%s", has_domain ? "" : "0000:", bdf);
        snprintf(d->dir, sizeof(d->dir), "%s/%s", root, name);
        struct stat st;
        if (stat(d->dir, &st) != 0)
            die("%s: %s", d->dir, strerror(errno));
        if (!is_ivshmem(d->dir))
            die("%s is not an ivshmem device (vendor 0x%04x device 0x%04x)", d->dir, IVSHMEM_VENDOR,
                IVSHMEM_DEVICE);
    } else {
        struct dirent **ents;
        int n = scandir(root, &ents, NULL, alphasort);
        if (n < 0)
            die("%s: %s", root, strerror(errno));
        name[0] = '\0';
        for (int i = 0; i < n; i++) {
            if (!name[0] && ents[i]->d_name[0] != '.') {
                snprintf(d->dir, sizeof(d->dir), "%s/%s", root, ents[i]->d_name);
                if (is_ivshmem(d->dir))
                    snprintf(name, sizeof(name), "%s", ents[i]->d_name);
            }
            free(ents[i]);
        }
        free(ents);
        if (!name[0])
            die("no ivshmem device (vendor 0x%04x device 0x%04x) under %s", IVSHMEM_VENDOR,
                IVSHMEM_DEVICE, root);
        snprintf(d->dir, sizeof(d->dir), "%s/%s", root, name);
    }
    d->bdf = name;
}

static int open_attr(const struct dev *d, const char *name, int flags)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", d->dir, name);
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    return fd;
}

/* Reads the config space and finds the MSI-X capability and its table and
 * PBA. Reading past 64 bytes of a real device's config needs root. */
static void read_config(struct dev *d)
{
    int fd = open_attr(d, "config", O_RDONLY);
    ssize_t n = pread(fd, d->cfg, sizeof(d->cfg), 0);
    close(fd);
    if (n != (ssize_t)sizeof(d->cfg))
        die("%s/config: read %zd of %d bytes%s", d->dir, n, PCI_CFG_SIZE,
            n == 64 ? " (not root?)" : "");
    uint16_t status = (uint16_t)(d->cfg[PCI_STATUS] | d->cfg[PCI_STATUS + 1] << 8);
    if (!(status & PCI_STATUS_CAPS))
        die("%s has no capability list", d->bdf);
    unsigned at = d->cfg[PCI_CAP_PTR] & ~3u;
    for (int i = 0; at; i++) {
        if (i == MAX_CAPS || at < 0x40 || at > PCI_CFG_SIZE - 12)
            die("%s: the capability list is broken (entry %d at 0x%x)", d->bdf, i, at);
        if (d->cfg[at] == PCI_CAP_ID_MSIX)
            break;
        at = d->cfg[at + 1] & ~3u;
    }
    if (!at)
        die("%s has no MSI-X capability", d->bdf);
    d->msix = at;
    uint16_t ctrl = (uint16_t)(d->cfg[at + MSIX_CTRL] | d->cfg[at + MSIX_CTRL + 1] << 8);
    d->nvec = (ctrl & MSIX_CTRL_QSIZE) + 1u;
    uint32_t t, p;
    memcpy(&t, d->cfg + at + MSIX_TABLE, 4);
    memcpy(&p, d->cfg + at + MSIX_PBA, 4);
    d->tbl_bar = t & 7;
    d->tbl_off = t & ~7u;
    d->pba_bar = p & 7;
    d->pba_off = p & ~7u;
    if (d->tbl_bar > 5 || d->pba_bar > 5)
        die("%s: MSI-X table or PBA in BAR %u/%u", d->bdf, d->tbl_bar, d->pba_bar);
}

static uint16_t cfg16(const struct dev *d, unsigned off)
{
    return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

static void write_cfg16(struct dev *d, unsigned off, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    int fd = open_attr(d, "config", O_WRONLY);
    if (pwrite(fd, b, 2, off) != 2)
        die("%s/config: writing 0x%04x at 0x%x: %s", d->dir, v, off, strerror(errno));
    close(fd);
    memcpy(d->cfg + off, b, 2);
}

/* Maps [off, off + len) of BAR bar (its resource file); exits when the
 * BAR is smaller. */
static struct map map_bar(const struct dev *d, unsigned bar, uint64_t off, uint64_t len,
                          int writable)
{
    char name[16];
    snprintf(name, sizeof(name), "resource%u", bar);
    int fd = open_attr(d, name, (writable ? O_RDWR : O_RDONLY) | O_SYNC);
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < off + len)
        die("%s/%s: 0x%" PRIx64 " bytes at 0x%" PRIx64 " are beyond its end (0x%jx)", d->dir, name,
            len, off, (uintmax_t)st.st_size);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = off & ~(page - 1);
    size_t maplen = (size_t)((off + len - start + page - 1) & ~(page - 1));
    void *p =
        mmap(NULL, maplen, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, (off_t)start);
    if (p == MAP_FAILED)
        die("mapping %s/%s: %s", d->dir, name, strerror(errno));
    close(fd);
    struct map m = {(volatile uint8_t *)p + (off - start), p, maplen};
    return m;
}

static uint64_t bar_size(const struct dev *d, unsigned bar)
{
    char name[16];
    snprintf(name, sizeof(name), "resource%u", bar);
    int fd = open_attr(d, name, O_RDONLY);
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("%s/%s: %s", d->dir, name, strerror(errno));
    close(fd);
    return (uint64_t)st.st_size;
}

/* BAR0 answers only with memory space on (SeaBIOS turns it on; a kernel
 * without a driver leaves it as it is). */
static void enable_memory(struct dev *d)
{
    int fd = open_attr(d, "config", O_RDONLY);
    ssize_t n = pread(fd, d->cfg, 8, 0);
    close(fd);
    if (n != 8)
        die("%s/config: read %zd of 8 bytes", d->dir, n);
    uint16_t cmd = cfg16(d, PCI_COMMAND);
    if (!(cmd & PCI_COMMAND_MEM))
        write_cfg16(d, PCI_COMMAND, cmd | PCI_COMMAND_MEM);
}

static int armed(const struct dev *d)
{
    uint16_t need = PCI_COMMAND_MEM | PCI_COMMAND_BM;
    return (cfg16(d, PCI_COMMAND) & need) == need &&
           (cfg16(d, d->msix + MSIX_CTRL) & MSIX_CTRL_ENABLE);
}

/* Memory space first (the table is in a BAR), then every vector masked,
 * then MSI-X on: never a moment with an unmasked vector enabled. */
static void arm(struct dev *d)
{
    uint16_t cmd = cfg16(d, PCI_COMMAND);
    uint16_t want = cmd | PCI_COMMAND_MEM | PCI_COMMAND_BM;
    if (want != cmd)
        write_cfg16(d, PCI_COMMAND, want);
    struct map t = map_bar(d, d->tbl_bar, d->tbl_off, (uint64_t)d->nvec * MSIX_ENTRY_SIZE, 1);
    for (unsigned v = 0; v < d->nvec; v++) {
        volatile uint32_t *vc =
            (volatile uint32_t *)(t.base + (size_t)v * MSIX_ENTRY_SIZE + MSIX_ENTRY_VCTRL);
        uint32_t x = *vc;
        if (!(x & MSIX_VCTRL_MASKED)) {
            *vc = x | MSIX_VCTRL_MASKED;
            if (!(*vc & MSIX_VCTRL_MASKED))
                die("%s: vector %u does not stay masked", d->bdf, v);
        }
    }
    munmap(t.page, t.len);
    uint16_t ctrl = cfg16(d, d->msix + MSIX_CTRL);
    if (!(ctrl & MSIX_CTRL_ENABLE))
        write_cfg16(d, d->msix + MSIX_CTRL, ctrl | MSIX_CTRL_ENABLE);
}

static uint64_t pba_word(const struct map *pba, unsigned i)
{
    /* two 32-bit reads: QEMU's PBA takes 4- and 8-byte accesses, a fake
     * file any, and 32 bits is what every MSI-X implementation must take */
    volatile uint32_t *w = (volatile uint32_t *)(pba->base + 8 * (size_t)i);
    return (uint64_t)w[0] | (uint64_t)w[1] << 32;
}

static struct map map_pba(const struct dev *d)
{
    return map_bar(d, d->pba_bar, d->pba_off, 8 * (((uint64_t)d->nvec + 63) / 64), 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *root = "/sys/bus/pci/devices", *bdf = NULL;
    int c;
    while ((c = getopt(argc, argv, "+d:S:")) != -1) {
        if (c == 'd')
            bdf = optarg;
        else if (c == 'S')
            root = optarg;
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 1)
        usage();
    const char *cmd = argv[0];
    unsigned long peer = 0, vector = 0, timeout_ms = 0;
    if (strcmp(cmd, "ring") == 0 && argc == 3) {
        peer = parse_num("peer", argv[1], 65535);
        vector = parse_num("vector", argv[2], 255);
    } else if (strcmp(cmd, "wait") == 0 && argc == 3) {
        vector = parse_num("vector", argv[1], 2047);
        timeout_ms = parse_num("timeout", argv[2], 86400000);
    } else if (!((strcmp(cmd, "info") == 0 || strcmp(cmd, "arm") == 0 ||
                  strcmp(cmd, "pending") == 0) &&
                 argc == 1)) {
        usage();
    }

    struct dev d;
    memset(&d, 0, sizeof(d));
    find_dev(&d, root, bdf);

    if (strcmp(cmd, "info") == 0 || strcmp(cmd, "ring") == 0)
        enable_memory(&d);
    if (strcmp(cmd, "info") == 0) {
        struct map r = map_bar(&d, 0, 0, BAR0_MIN_SIZE, 0);
        uint32_t id = *(volatile uint32_t *)(r.base + REG_IVPOSITION);
        printf("id %" PRIu32 " size %" PRIu64 " bdf %s\n", id, bar_size(&d, 2), d.bdf);
        return 0;
    }
    if (strcmp(cmd, "ring") == 0) {
        struct map r = map_bar(&d, 0, 0, BAR0_MIN_SIZE, 1);
        *(volatile uint32_t *)(r.base + REG_DOORBELL) = (uint32_t)(peer << 16 | vector);
        return 0;
    }

    read_config(&d);
    if (strcmp(cmd, "arm") == 0) {
        arm(&d);
        return 0;
    }
    if (strcmp(cmd, "pending") == 0) {
        struct map p = map_pba(&d);
        printf("pba");
        for (unsigned i = 0; i < (d.nvec + 63) / 64; i++)
            printf(" 0x%016" PRIx64, pba_word(&p, i));
        printf("\npending");
        int any = 0;
        for (unsigned v = 0; v < d.nvec; v++)
            if (pba_word(&p, v / 64) >> (v % 64) & 1) {
                printf(" %u", v);
                any = 1;
            }
        printf("%s\n", any ? "" : " none");
        return 0;
    }
    /* wait */
    if (vector >= d.nvec) {
        fprintf(stderr, "pxivshmem: vector %lu: %s has vectors 0..%u\n", vector, d.bdf, d.nvec - 1);
        return 2;
    }
    if (!armed(&d))
        arm(&d);
    struct map p = map_pba(&d);
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        if (pba_word(&p, (unsigned)vector / 64) >> (vector % 64) & 1) {
            printf("vector %lu pending\n", vector);
            return 0;
        }
        if (now_ns() >= deadline)
            break;
        struct timespec ts = {0, POLL_NS};
        nanosleep(&ts, NULL);
    }
    printf("timeout\n");
    return 1;
}
