/* pxpoke: read, write, fill and verify physical memory inside a plexus test
 * guest: ivshmem BAR2, CXL windows, any MMIO no driver has claimed.
 *
 *   pxpoke [-f FILE] read ADDR [WIDTH]
 *   pxpoke [-f FILE] write ADDR WIDTH VALUE
 *   pxpoke [-f FILE] fill ADDR LEN PATTERN
 *   pxpoke [-f FILE] verify ADDR LEN PATTERN
 *   pxpoke [-f FILE] dump ADDR LEN
 *
 * ADDR, LEN and VALUE take C syntax (0x..., decimal); LEN may end in K, M or
 * G (powers of 1024). WIDTH is 8, 16, 32 or 64 bits (default 32). ADDR is a
 * physical address in /dev/mem, or an offset into FILE with -f (a PCI
 * resource file such as /sys/bus/pci/devices/0000:00:04.0/resource2, or a
 * plain file on a host, for tests).
 *
 * PATTERN decides the 64-bit little-endian word at every 8-byte-aligned
 * address A of the range (bytes of a partial word at either end take their
 * own byte of that word):
 *   VALUE       every word is VALUE
 *   addr        every word is A (catches misplaced and aliased writes)
 *   addr:SEED   every word is A XOR SEED (a different run, a different image)
 * A is the physical address (or the file offset with -f).
 *
 * Accesses are single volatile loads and stores of the given width; fill and
 * verify use 64-bit accesses for whole aligned words, bytes at the edges.
 * verify prints the first mismatches and the count, and exits 1 on any.
 * Exit status: 0 success, 1 failure (mapping, mismatch), 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REPORTED_MISMATCHES 8

struct map {
    volatile uint8_t *base; /* mapping of [page_start, page_start + map_len) */
    uint64_t page_start;
    size_t map_len;
    uint64_t addr; /* first byte the caller asked for */
};

struct pattern {
    int by_addr; /* 0: constant value; 1: address XOR value */
    uint64_t value;
};

static void usage(void)
{
    fprintf(stderr, "usage: pxpoke [-f FILE] read ADDR [8|16|32|64]\n"
                    "       pxpoke [-f FILE] write ADDR 8|16|32|64 VALUE\n"
                    "       pxpoke [-f FILE] fill ADDR LEN PATTERN\n"
                    "       pxpoke [-f FILE] verify ADDR LEN PATTERN\n"
                    "       pxpoke [-f FILE] dump ADDR LEN\n"
                    "PATTERN: VALUE | addr | addr:SEED   LEN: N[K|M|G]\n");
    exit(2);
}

static uint64_t parse_u64(const char *what, const char *s, int allow_suffix)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || s[0] == '-') {
        fprintf(stderr, "pxpoke: %s: '%s' is not a number\n", what, s);
        exit(2);
    }
    if (allow_suffix && *end && end[1] == '\0') {
        unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
        if (shift && v <= (UINT64_MAX >> shift)) {
            v <<= shift;
            end++;
        }
    }
    if (*end) {
        fprintf(stderr, "pxpoke: %s: '%s' is not a number\n", what, s);
        exit(2);
    }
    return v;
}

static unsigned parse_width(const char *s)
{
    if (strcmp(s, "8") == 0 || strcmp(s, "16") == 0 || strcmp(s, "32") == 0 || strcmp(s, "64") == 0)
        return (unsigned)atoi(s);
    fprintf(stderr, "pxpoke: width '%s': expected 8, 16, 32 or 64\n", s);
    exit(2);
}

static struct pattern parse_pattern(const char *s)
{
    struct pattern p = {0, 0};
    if (strcmp(s, "addr") == 0) {
        p.by_addr = 1;
    } else if (strncmp(s, "addr:", 5) == 0) {
        p.by_addr = 1;
        p.value = parse_u64("pattern seed", s + 5, 0);
    } else {
        p.value = parse_u64("pattern", s, 0);
    }
    return p;
}

static uint64_t pattern_word(const struct pattern *p, uint64_t word_addr)
{
    return p->by_addr ? word_addr ^ p->value : p->value;
}

/* Maps [addr, addr + len) of path; exits with a message on failure. O_SYNC
 * makes /dev/mem mappings uncached, which MMIO needs. */
static struct map map_range(const char *path, uint64_t addr, uint64_t len, int writable)
{
    struct map m;
    if (len == 0 || addr + len < addr) {
        fprintf(stderr, "pxpoke: empty or wrapping range 0x%" PRIx64 "+0x%" PRIx64 "\n", addr, len);
        exit(2);
    }
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    m.page_start = addr & ~(page - 1);
    uint64_t end = (addr + len + page - 1) & ~(page - 1);
    if (end < addr || end - m.page_start > SIZE_MAX) {
        fprintf(stderr, "pxpoke: range too large\n");
        exit(2);
    }
    m.map_len = (size_t)(end - m.page_start);
    m.addr = addr;
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "pxpoke: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    /* A mapping past the end of a file (or a sysfs resource file, whose size
     * is the BAR's) would fault on access instead of failing here. */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && addr + len > (uint64_t)st.st_size) {
        fprintf(stderr,
                "pxpoke: 0x%" PRIx64 "+0x%" PRIx64 " is beyond the end of %s (0x%jx bytes)\n", addr,
                len, path, (uintmax_t)st.st_size);
        close(fd);
        exit(1);
    }
    void *p = mmap(NULL, m.map_len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd,
                   (off_t)m.page_start);
    if (p == MAP_FAILED) {
        fprintf(stderr, "pxpoke: mapping %s at 0x%" PRIx64 " (+0x%zx): %s\n", path, m.page_start,
                m.map_len, strerror(errno));
        if (errno == EPERM && strcmp(path, "/dev/mem") == 0)
            fprintf(stderr, "pxpoke: hint: STRICT_DEVMEM refuses RAM and ranges a driver "
                            "has claimed (see /proc/iomem)\n");
        close(fd);
        exit(1);
    }
    close(fd);
    m.base = p;
    return m;
}

static volatile void *at(const struct map *m, uint64_t addr)
{
    return m->base + (addr - m->page_start);
}

static uint64_t load(const struct map *m, uint64_t addr, unsigned width)
{
    volatile void *p = at(m, addr);
    switch (width) {
    case 8:
        return *(volatile uint8_t *)p;
    case 16:
        return *(volatile uint16_t *)p;
    case 32:
        return *(volatile uint32_t *)p;
    default:
        return *(volatile uint64_t *)p;
    }
}

static void store(const struct map *m, uint64_t addr, unsigned width, uint64_t v)
{
    volatile void *p = at(m, addr);
    switch (width) {
    case 8:
        *(volatile uint8_t *)p = (uint8_t)v;
        break;
    case 16:
        *(volatile uint16_t *)p = (uint16_t)v;
        break;
    case 32:
        *(volatile uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(volatile uint64_t *)p = v;
        break;
    }
}

static void check_aligned(uint64_t addr, unsigned width)
{
    if (addr % (width / 8)) {
        fprintf(stderr, "pxpoke: 0x%" PRIx64 " is not aligned for a %u-bit access\n", addr, width);
        exit(2);
    }
}

/* One fill or verify pass over [m->addr, m->addr + len). */
struct walk {
    const struct map *m;
    struct pattern p;
    unsigned reported; /* mismatches printed so far */
};

typedef uint64_t (*access_fn)(struct walk *w, uint64_t a, unsigned width, uint64_t expected);

/* Visits the range as whole aligned 64-bit words and single edge bytes,
 * calling fn with what the pattern puts at each; returns the sum of fn's
 * results. */
static uint64_t walk_range(struct walk *w, uint64_t len, access_fn fn)
{
    uint64_t sum = 0;
    uint64_t a = w->m->addr, end = w->m->addr + len;
    while (a < end) {
        uint64_t word = a & ~(uint64_t)7;
        uint64_t v = pattern_word(&w->p, word);
        if (a == word && end - a >= 8) {
            sum += fn(w, a, 64, v);
            a += 8;
        } else {
            sum += fn(w, a, 8, (v >> (8 * (a - word))) & 0xff);
            a++;
        }
    }
    return sum;
}

static uint64_t do_fill(struct walk *w, uint64_t a, unsigned width, uint64_t expected)
{
    store(w->m, a, width, expected);
    return 0;
}

/* Returns the number of bytes that differ, so the count means the same
 * thing whatever the access width; prints the first few. */
static uint64_t do_verify(struct walk *w, uint64_t a, unsigned width, uint64_t expected)
{
    uint64_t got = load(w->m, a, width);
    if (got == expected)
        return 0;
    uint64_t n = 0;
    for (unsigned i = 0; i < width / 8; i++) {
        uint64_t g = (got >> (8 * i)) & 0xff, e = (expected >> (8 * i)) & 0xff;
        if (g == e)
            continue;
        n++;
        if (w->reported++ < MAX_REPORTED_MISMATCHES)
            printf("mismatch at 0x%" PRIx64 ": expected 0x%02" PRIx64 ", got 0x%02" PRIx64 "\n",
                   a + i, e, g);
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *path = "/dev/mem";
    int c;
    while ((c = getopt(argc, argv, "+f:")) != -1) {
        if (c == 'f')
            path = optarg;
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 2)
        usage();
    const char *cmd = argv[0];
    uint64_t addr = parse_u64("address", argv[1], 0);

    if (strcmp(cmd, "read") == 0 && (argc == 2 || argc == 3)) {
        unsigned width = argc == 3 ? parse_width(argv[2]) : 32;
        check_aligned(addr, width);
        struct map m = map_range(path, addr, width / 8, 0);
        printf("0x%0*" PRIx64 "\n", (int)(width / 4), load(&m, addr, width));
        return 0;
    }
    if (strcmp(cmd, "write") == 0 && argc == 4) {
        unsigned width = parse_width(argv[2]);
        uint64_t v = parse_u64("value", argv[3], 0);
        if (width < 64 && v >> width) {
            fprintf(stderr, "pxpoke: value %s does not fit in %u bits\n", argv[3], width);
            return 2;
        }
        check_aligned(addr, width);
        struct map m = map_range(path, addr, width / 8, 1);
        store(&m, addr, width, v);
        return 0;
    }
    if ((strcmp(cmd, "fill") == 0 || strcmp(cmd, "verify") == 0) && argc == 4) {
        uint64_t len = parse_u64("length", argv[2], 1);
        struct pattern p = parse_pattern(argv[3]);
        int fill = cmd[0] == 'f';
        struct map m = map_range(path, addr, len, fill);
        struct walk w = {.m = &m, .p = p, .reported = 0};
        if (fill) {
            walk_range(&w, len, do_fill);
            return 0;
        }
        uint64_t bad = walk_range(&w, len, do_verify);
        if (bad) {
            printf("verify: %" PRIu64 " of %" PRIu64 " bytes differ\n", bad, len);
            return 1;
        }
        printf("verify: %" PRIu64 " bytes ok\n", len);
        return 0;
    }
    if (strcmp(cmd, "dump") == 0 && argc == 3) {
        uint64_t len = parse_u64("length", argv[2], 1);
        struct map m = map_range(path, addr, len, 0);
        for (uint64_t off = 0; off < len; off += 16) {
            printf("%016" PRIx64 ":", addr + off);
            for (uint64_t i = off; i < off + 16 && i < len; i++)
                printf(" %02" PRIx64, load(&m, addr + i, 8));
            printf("\n");
        }
        return 0;
    }
    usage();
    return 2;
}
