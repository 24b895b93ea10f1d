/* pxcxl: CXL persistent-memory regions inside a plexus test guest, by sysfs
 * writes alone (no cxl/ndctl; built into the image by scripts/guest-image.sh).
 *
 *   pxcxl [-S DIR] list
 *   pxcxl [-S DIR] region [MEMDEV]
 *   pxcxl [-S DIR] delete REGION
 *
 * list prints one line per memory device, root decoder (CXL window) and
 * region:
 *   memdev mem0 pmem 268435456 lsa 4096 bridge 64 decoder decoder5.0 region region0
 *   window decoder0.0 hpa 0x110000000 size 268435456 bridges 64
 *   region region0 hpa 0x110000000 size 268435456 memdev mem0 commit 1 driver cxl_region
 * ("-" for none). bridge is the host bridge's ACPI _UID; under plexus it is
 * 64 + 4 * (A * 4 + K) for vPPB K of the guest's CXL attachment A
 * (docs/cxl.md).
 *
 * region makes a 1-way persistent-memory region over all of MEMDEV's pmem
 * (default: the first memdev without a region), from the root decoder whose
 * window targets MEMDEV's host bridge and the memdev's first free endpoint
 * decoder, commits it, binds it to cxl_region and prints
 *   region region0 hpa 0x110000000 size 268435456
 * The HPA range is then reachable through /dev/mem (pxpoke): offset X of the
 * region is byte X of the LD's memory backing file. A memdev that has a
 * region already prints that one. A step that fails is undone (the region
 * deleted, the decoder's DPA freed) and named.
 *
 * delete unbinds, decommits and deletes REGION and frees its DPA.
 *
 * The sequence is Linux 6.1's region ABI, verified with QEMU 7.2:
 *   ROOT/create_pmem_region (read a name, write it back) -> regionN
 *   regionN/interleave_ways 1, interleave_granularity (the window's), uuid
 *   EP/mode pmem, EP/dpa_size S, regionN/size S, regionN/target0 EP
 *   regionN/commit 1, drivers/cxl_region/bind regionN
 * Nothing is kept across boots: the decoders start empty at every QEMU
 * start and nothing is written to the label storage, so the same backing
 * files give the same region (same HPA, same contents) on the next boot,
 * on this host or another.
 *
 * -S DIR reads DIR instead of /sys (DIR/bus/cxl/devices, ...): the
 * host-side tests build a fake tree of plain files and symlinks there.
 * Exit status: 0 success, 1 failure (the message names the step), 2 usage.
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
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 64
#define PATH_LEN     1024
#define VAL_LEN      256
#define MAX_ENTRIES  1024 /* devices of one kind: more is not a QEMU guest */

struct cx {
    char sys[PATH_LEN];  /* sysfs root */
    char devs[PATH_LEN]; /* SYS/bus/cxl/devices */
};

static void usage(void)
{
    fprintf(stderr, "usage: pxcxl [-S DIR] list\n"
                    "       pxcxl [-S DIR] region [MEMDEV]\n"
                    "       pxcxl [-S DIR] delete REGION\n");
    exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxcxl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxcxl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* snprintf's result checked: a name or path that does not fit is an error,
 * never a silently shorter one. */
static void fits(int n, size_t len, const char *what)
{
    if (n < 0 || (size_t)n >= len)
        die("%s is too long", what);
}

/* DEVS/NAME/ATTR; exits when it does not fit (names come from sysfs). */
static void dpath(const struct cx *x, char *out, const char *name, const char *attr)
{
    int n = snprintf(out, PATH_LEN, "%s/%s%s%s", x->devs, name, attr ? "/" : "", attr ? attr : "");
    if (n < 0 || n >= PATH_LEN)
        die("path %s/%s/%s is too long", x->devs, name, attr ? attr : "");
}

/* Reads an attribute without its trailing newline; -1 (errno set) if it
 * cannot be read. */
static int rd(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

static int rd_attr(const struct cx *x, const char *name, const char *attr, char *buf, size_t len)
{
    char p[PATH_LEN];
    dpath(x, p, name, attr);
    return rd(p, buf, len);
}

/* A number attribute ("0x10000000", "256"); -1 when unreadable. */
static int rd_num(const struct cx *x, const char *name, const char *attr, uint64_t *v)
{
    char buf[VAL_LEN], *end;
    if (rd_attr(x, name, attr, buf, sizeof(buf)) != 0)
        return -1;
    errno = 0;
    unsigned long long u = strtoull(buf, &end, 0);
    if (errno || end == buf || *end)
        return -1;
    *v = u;
    return 0;
}

/* Writes "VAL\n" to an attribute in one write(2), as echo(1) does: sysfs
 * wants one write, and some attributes (a region's uuid) want the newline.
 * 0 or errno. */
static int wr(const char *path, const char *val)
{
    char line[VAL_LEN + 1];
    size_t len = strlen(val);
    if (len >= VAL_LEN)
        return ENAMETOOLONG;
    memcpy(line, val, len);
    line[len++] = '\n';
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return errno;
    ssize_t n = write(fd, line, len);
    int e = n < 0 ? errno : (size_t)n != len ? EIO : 0;
    if (close(fd) != 0 && !e)
        e = errno;
    return e;
}

/* The last component of a symlink's target ("mem0" for ../../mem0). */
static int link_base(const char *path, char *out, size_t len)
{
    char t[PATH_LEN];
    ssize_t n = readlink(path, t, sizeof(t) - 1);
    if (n < 0)
        return -1;
    t[n] = '\0';
    const char *b = strrchr(t, '/');
    return snprintf(out, len, "%s", b ? b + 1 : t) < (int)len ? 0 : -1;
}

/* Natural order: "mem2" < "mem10", "decoder0.2" < "decoder0.10". */
static int natcmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea;
            b = eb;
        } else {
            if (*a != *b)
                return (unsigned char)*a - (unsigned char)*b;
            a++;
            b++;
        }
    }
    return (unsigned char)*a - (unsigned char)*b;
}

struct names {
    char (*v)[NAME_MAX_LEN];
    int n;
};

static int cmp_names(const void *a, const void *b)
{
    return natcmp(a, b);
}

/* Entries of DIR whose names start with PREFIX and go on with a digit, in
 * natural order. Exits when DIR cannot be read. */
static struct names list_dir(const char *dir, const char *prefix)
{
    struct names l = {calloc(MAX_ENTRIES, NAME_MAX_LEN), 0};
    if (!l.v)
        die("out of memory");
    DIR *d = opendir(dir);
    if (!d)
        die("%s: %s%s", dir, strerror(errno),
            errno == ENOENT ? " (are cxl_acpi cxl_pci cxl_mem cxl_pmem loaded?)" : "");
    size_t pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && l.n < MAX_ENTRIES) {
        if (strncmp(e->d_name, prefix, pl) != 0 || e->d_name[pl] < '0' || e->d_name[pl] > '9' ||
            strlen(e->d_name) >= NAME_MAX_LEN)
            continue;
        snprintf(l.v[l.n++], NAME_MAX_LEN, "%s", e->d_name);
    }
    closedir(d);
    qsort(l.v, (size_t)l.n, NAME_MAX_LEN, cmp_names);
    return l;
}

/* ---- the topology: memdev -> endpoint -> host bridge -> root decoder ---- */

/* The endpoint port whose uport is MEMDEV, or 0 when there is none (cxl_mem
 * not bound, or no CXL path to a host bridge). */
static int find_endpoint(const struct cx *x, const char *memdev, char *ep)
{
    struct names l = list_dir(x->devs, "endpoint");
    int found = 0;
    for (int i = 0; i < l.n && !found; i++) {
        char p[PATH_LEN], b[NAME_MAX_LEN];
        dpath(x, p, l.v[i], "uport");
        if (link_base(p, b, sizeof(b)) == 0 && strcmp(b, memdev) == 0) {
            snprintf(ep, NAME_MAX_LEN, "%s", l.v[i]);
            found = 1;
        }
    }
    free(l.v);
    return found;
}

/* The host bridge above endpoint EP: the port right under the root in the
 * endpoint's device path (.../root0/port1/[port2/]endpoint3), and its _UID
 * as the root numbers it (rootN/dportUID links to the same ACPI0016 device
 * as the port's uport). root gets "root0", returns the UID or -1. */
static long bridge_of(const struct cx *x, const char *ep, char *root)
{
    char p[PATH_LEN], t[PATH_LEN];
    dpath(x, p, ep, NULL);
    ssize_t n = readlink(p, t, sizeof(t) - 1);
    if (n < 0)
        return -1;
    t[n] = '\0';
    char *port = NULL, *save = NULL, *prev = NULL;
    for (char *c = strtok_r(t, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (prev && strncmp(prev, "root", 4) == 0 && strncmp(c, "port", 4) == 0) {
            snprintf(root, NAME_MAX_LEN, "%s", prev);
            port = c;
            break;
        }
        prev = c;
    }
    if (!port)
        return -1;
    char hb[NAME_MAX_LEN];
    dpath(x, p, port, "uport");
    if (link_base(p, hb, sizeof(hb)) != 0)
        return -1;
    char rdir[PATH_LEN];
    dpath(x, rdir, root, NULL);
    struct names l = list_dir(rdir, "dport");
    long uid = -1;
    for (int i = 0; i < l.n && uid < 0; i++) {
        char b[NAME_MAX_LEN];
        if (snprintf(p, sizeof(p), "%s/%s", rdir, l.v[i]) < (int)sizeof(p) &&
            link_base(p, b, sizeof(b)) == 0 && strcmp(b, hb) == 0)
            uid = strtol(l.v[i] + 5, NULL, 10);
    }
    free(l.v);
    return uid;
}

/* Does target_list ("64" or "64,68") name uid? */
static int targets_has(const char *list, long uid)
{
    char buf[VAL_LEN], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strtol(t, NULL, 10) == uid)
            return 1;
    return 0;
}

/* The root decoder (decoderR.M under ROOT) that can make pmem regions, is
 * 1-way, and targets bridge uid; 0 if none. */
static int find_window(const struct cx *x, const char *root, long uid, char *win)
{
    char prefix[NAME_MAX_LEN];
    fits(snprintf(prefix, sizeof(prefix), "decoder%s.", root + 4), sizeof(prefix), root);
    struct names l = list_dir(x->devs, "decoder");
    int found = 0;
    for (int i = 0; i < l.n && !found; i++) {
        char v[VAL_LEN];
        uint64_t ways;
        if (strncmp(l.v[i], prefix, strlen(prefix)) != 0 ||
            rd_attr(x, l.v[i], "create_pmem_region", v, sizeof(v)) != 0 ||
            rd_num(x, l.v[i], "interleave_ways", &ways) != 0 || ways != 1 ||
            rd_attr(x, l.v[i], "target_list", v, sizeof(v)) != 0 || !targets_has(v, uid))
            continue;
        snprintf(win, NAME_MAX_LEN, "%s", l.v[i]);
        found = 1;
    }
    free(l.v);
    return found;
}

/* The endpoint decoders of EP (decoderN.M in its directory). */
static struct names ep_decoders(const struct cx *x, const char *ep)
{
    char p[PATH_LEN];
    dpath(x, p, ep, NULL);
    return list_dir(p, "decoder");
}

/* ---- region ---- */

struct job {
    const struct cx *x;
    char memdev[NAME_MAX_LEN], ep[NAME_MAX_LEN], win[NAME_MAX_LEN], dec[NAME_MAX_LEN];
    char region[NAME_MAX_LEN];
    uint64_t size;
    /* how far it got, for the undo ladder */
    int created, dpa_set, target_set, committed;
};

static int step(const struct job *j, const char *name, const char *attr, const char *val)
{
    char p[PATH_LEN];
    dpath(j->x, p, name, attr);
    int e = wr(p, val);
    if (e)
        warn("writing '%s' to %s: %s", val, p, strerror(e));
    return e;
}

/* Undoes what was done, in reverse; best effort (each step says when it
 * fails). */
static void undo(struct job *j)
{
    if (j->committed)
        step(j, j->region, "commit", "0");
    if (j->target_set)
        step(j, j->region, "target0", ""); /* a bare newline detaches */
    if (j->dpa_set)
        step(j, j->dec, "dpa_size", "0");
    if (j->created)
        step(j, j->win, "delete_region", j->region);
}

static void uuid4(char *out, size_t len)
{
    uint8_t u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
        die("getrandom: %s", strerror(errno));
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

static void print_region(const struct cx *x, const char *region)
{
    uint64_t start, size;
    if (rd_num(x, region, "resource", &start) != 0 || rd_num(x, region, "size", &size) != 0)
        die("cannot read %s/%s/resource and size", x->devs, region);
    printf("region %s hpa 0x%" PRIx64 " size %" PRIu64 "\n", region, start, size);
}

/* A memdev's region, if one of its endpoint decoders has one; "" if not. */
static void region_of(const struct cx *x, const char *ep, char *region)
{
    struct names d = ep_decoders(x, ep);
    region[0] = '\0';
    for (int i = 0; i < d.n && !region[0]; i++)
        if (rd_attr(x, d.v[i], "region", region, NAME_MAX_LEN) != 0)
            region[0] = '\0';
    free(d.v);
}

static int cmd_region(const struct cx *x, const char *memdev)
{
    struct job j = {.x = x};
    char v[VAL_LEN], root[NAME_MAX_LEN];
    if (memdev) {
        char p[PATH_LEN];
        struct stat st;
        dpath(x, p, memdev, NULL);
        if (strncmp(memdev, "mem", 3) != 0 || stat(p, &st) != 0)
            die("no memory device %s in %s", memdev, x->devs);
        if (!find_endpoint(x, memdev, j.ep))
            die("%s has no CXL endpoint (is cxl_mem bound to it?)", memdev);
        snprintf(j.memdev, sizeof(j.memdev), "%s", memdev);
        region_of(x, j.ep, j.region);
        if (j.region[0]) {
            print_region(x, j.region);
            return 0;
        }
    } else {
        /* the first memdev with an endpoint and no region */
        struct names l = list_dir(x->devs, "mem");
        for (int i = 0; i < l.n && !j.memdev[0]; i++) {
            if (!find_endpoint(x, l.v[i], j.ep))
                continue;
            region_of(x, j.ep, j.region);
            if (!j.region[0])
                snprintf(j.memdev, sizeof(j.memdev), "%s", l.v[i]);
        }
        int n = l.n;
        free(l.v);
        if (!j.memdev[0])
            die(n ? "every memory device has a region already (pxcxl list)"
                  : "no CXL memory device (is a cxl-type3 device attached, cxl_mem loaded?)");
    }
    if (rd_num(x, j.memdev, "pmem/size", &j.size) != 0 || j.size == 0)
        die("%s has no persistent memory (%s/%s/pmem/size)", j.memdev, x->devs, j.memdev);
    long uid = bridge_of(x, j.ep, root);
    if (uid < 0)
        die("cannot find the host bridge above %s (%s)", j.memdev, j.ep);
    if (!find_window(x, root, uid, j.win))
        die("no 1-way pmem window (root decoder) targets host bridge %ld of %s", uid, j.memdev);
    uint64_t wsize;
    if (rd_num(x, j.win, "size", &wsize) != 0 || wsize < j.size)
        die("window %s is smaller than %s's %" PRIu64 " bytes of pmem", j.win, j.memdev, j.size);
    struct names d = ep_decoders(x, j.ep);
    for (int i = 0; i < d.n && !j.dec[0]; i++) {
        uint64_t dpa;
        if (rd_num(x, d.v[i], "dpa_size", &dpa) == 0 && dpa == 0 &&
            rd_attr(x, d.v[i], "region", v, sizeof(v)) == 0 && !v[0])
            snprintf(j.dec, sizeof(j.dec), "%s", d.v[i]);
    }
    free(d.v);
    if (!j.dec[0])
        die("%s (%s) has no free endpoint decoder", j.memdev, j.ep);

    char gran[VAL_LEN], uuid[40], sz[32];
    if (rd_attr(x, j.win, "create_pmem_region", j.region, sizeof(j.region)) != 0 || !j.region[0])
        die("cannot read %s/%s/create_pmem_region", x->devs, j.win);
    if (rd_attr(x, j.win, "interleave_granularity", gran, sizeof(gran)) != 0)
        die("cannot read %s/%s/interleave_granularity", x->devs, j.win);
    uuid4(uuid, sizeof(uuid));
    snprintf(sz, sizeof(sz), "%" PRIu64, j.size);
    if (step(&j, j.win, "create_pmem_region", j.region))
        goto fail;
    j.created = 1;
    char p[PATH_LEN];
    struct stat st;
    dpath(x, p, j.region, NULL);
    if (stat(p, &st) != 0) {
        warn("%s did not appear after creating it", p);
        goto fail;
    }
    if (step(&j, j.region, "interleave_ways", "1") ||
        step(&j, j.region, "interleave_granularity", gran) || step(&j, j.region, "uuid", uuid) ||
        step(&j, j.dec, "mode", "pmem"))
        goto fail;
    if (step(&j, j.dec, "dpa_size", sz))
        goto fail;
    j.dpa_set = 1;
    if (step(&j, j.region, "size", sz))
        goto fail;
    if (step(&j, j.region, "target0", j.dec))
        goto fail;
    j.target_set = 1;
    if (step(&j, j.region, "commit", "1"))
        goto fail;
    j.committed = 1;
    char bind[PATH_LEN];
    fits(snprintf(bind, sizeof(bind), "%s/bus/cxl/drivers/cxl_region/bind", x->sys), sizeof(bind),
         x->sys);
    int e = wr(bind, j.region);
    if (e) {
        warn("writing '%s' to %s: %s", j.region, bind, strerror(e));
        goto fail;
    }
    print_region(x, j.region);
    return 0;
fail:
    undo(&j);
    die("no region over %s (window %s, decoder %s); what was done is undone", j.memdev, j.win,
        j.dec);
}

static int cmd_delete(const struct cx *x, const char *region)
{
    struct job j = {.x = x};
    char p[PATH_LEN], t[PATH_LEN];
    snprintf(j.region, sizeof(j.region), "%s", region);
    dpath(x, p, region, NULL);
    ssize_t n = strncmp(region, "region", 6) == 0 ? readlink(p, t, sizeof(t) - 1) : -1;
    if (n < 0)
        die("no region %s in %s", region, x->devs);
    t[n] = '\0';
    /* .../root0/decoder0.0/region0: the window is the parent */
    char *slash = strrchr(t, '/');
    if (!slash)
        die("cannot tell the window of %s", region);
    *slash = '\0';
    const char *w = strrchr(t, '/');
    fits(snprintf(j.win, sizeof(j.win), "%s", w ? w + 1 : t), sizeof(j.win), t);
    if (rd_attr(x, region, "target0", j.dec, sizeof(j.dec)) != 0)
        j.dec[0] = '\0';
    dpath(x, p, region, "driver");
    struct stat st;
    if (lstat(p, &st) == 0) {
        char unbind[PATH_LEN];
        fits(snprintf(unbind, sizeof(unbind), "%s/bus/cxl/drivers/cxl_region/unbind", x->sys),
             sizeof(unbind), x->sys);
        int e = wr(unbind, region);
        if (e)
            die("writing '%s' to %s: %s", region, unbind, strerror(e));
    }
    uint64_t commit = 0;
    j.committed = rd_num(x, region, "commit", &commit) == 0 && commit;
    j.target_set = j.dec[0] != '\0';
    j.dpa_set = j.dec[0] != '\0';
    j.created = 1;
    undo(&j);
    printf("deleted %s\n", region);
    return 0;
}

/* ---- list ---- */

static void put(char *buf, size_t len, const char *v)
{
    snprintf(buf, len, "%s", v && v[0] ? v : "-");
}

static int cmd_list(const struct cx *x)
{
    struct names mems = list_dir(x->devs, "mem");
    for (int i = 0; i < mems.n; i++) {
        const char *m = mems.v[i];
        uint64_t pmem = 0, lsa = 0;
        char ep[NAME_MAX_LEN] = "", root[NAME_MAX_LEN], dec[NAME_MAX_LEN] = "";
        char region[NAME_MAX_LEN] = "", bridge[24] = "-", o1[NAME_MAX_LEN], o2[NAME_MAX_LEN];
        rd_num(x, m, "pmem/size", &pmem);
        rd_num(x, m, "label_storage_size", &lsa);
        if (find_endpoint(x, m, ep)) {
            long uid = bridge_of(x, ep, root);
            if (uid >= 0)
                snprintf(bridge, sizeof(bridge), "%ld", uid);
            struct names d = ep_decoders(x, ep);
            if (d.n)
                snprintf(dec, sizeof(dec), "%s", d.v[0]);
            free(d.v);
            region_of(x, ep, region);
        }
        put(o1, sizeof(o1), dec);
        put(o2, sizeof(o2), region);
        printf("memdev %s pmem %" PRIu64 " lsa %" PRIu64 " bridge %s decoder %s region %s\n", m,
               pmem, lsa, bridge, o1, o2);
    }
    free(mems.v);
    struct names decs = list_dir(x->devs, "decoder");
    for (int i = 0; i < decs.n; i++) {
        char v[VAL_LEN], t[VAL_LEN];
        uint64_t start = 0, size = 0;
        if (rd_attr(x, decs.v[i], "create_pmem_region", v, sizeof(v)) != 0)
            continue;
        rd_num(x, decs.v[i], "start", &start);
        rd_num(x, decs.v[i], "size", &size);
        if (rd_attr(x, decs.v[i], "target_list", t, sizeof(t)) != 0)
            t[0] = '\0';
        put(v, sizeof(v), t);
        printf("window %s hpa 0x%" PRIx64 " size %" PRIu64 " bridges %s\n", decs.v[i], start, size,
               v);
    }
    free(decs.v);
    struct names regs = list_dir(x->devs, "region");
    for (int i = 0; i < regs.n; i++) {
        const char *r = regs.v[i];
        uint64_t start = 0, size = 0, commit = 0;
        char dec[NAME_MAX_LEN] = "", memdev[NAME_MAX_LEN] = "", drv[NAME_MAX_LEN] = "";
        char o1[NAME_MAX_LEN], o2[NAME_MAX_LEN], p[PATH_LEN];
        rd_num(x, r, "resource", &start);
        rd_num(x, r, "size", &size);
        rd_num(x, r, "commit", &commit);
        if (rd_attr(x, r, "target0", dec, sizeof(dec)) == 0 && dec[0]) {
            /* decoderN.M -> endpointN -> its uport, the memdev */
            char ep[NAME_MAX_LEN];
            fits(snprintf(ep, sizeof(ep), "endpoint%s", dec + 7), sizeof(ep), dec);
            char *dot = strchr(ep, '.');
            if (dot)
                *dot = '\0';
            dpath(x, p, ep, "uport");
            if (link_base(p, memdev, sizeof(memdev)) != 0)
                memdev[0] = '\0';
        }
        dpath(x, p, r, "driver");
        if (link_base(p, drv, sizeof(drv)) != 0)
            drv[0] = '\0';
        put(o1, sizeof(o1), memdev);
        put(o2, sizeof(o2), drv);
        printf("region %s hpa 0x%" PRIx64 " size %" PRIu64 " memdev %s commit %" PRIu64
               " driver %s\n",
               r, start, size, o1, commit, o2);
    }
    free(regs.v);
    return 0;
}

int main(int argc, char **argv)
{
    struct cx x;
    const char *sys = "/sys";
    int c;
    while ((c = getopt(argc, argv, "+S:")) != -1) {
        if (c == 'S')
            sys = optarg;
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 1)
        usage();
    if (strlen(sys) > PATH_LEN / 2)
        die("-S %s: too long", sys);
    snprintf(x.sys, sizeof(x.sys), "%s", sys);
    snprintf(x.devs, sizeof(x.devs), "%s/bus/cxl/devices", sys);
    for (int i = 1; i < argc; i++)
        if (strlen(argv[i]) >= NAME_MAX_LEN || strchr(argv[i], '/'))
            usage();
    if (strcmp(argv[0], "list") == 0 && argc == 1)
        return cmd_list(&x);
    if (strcmp(argv[0], "region") == 0 && argc <= 2)
        return cmd_region(&x, argc == 2 ? argv[1] : NULL);
    if (strcmp(argv[0], "delete") == 0 && argc == 2)
        return cmd_delete(&x, argv[1]);
    usage();
    return 2;
}
