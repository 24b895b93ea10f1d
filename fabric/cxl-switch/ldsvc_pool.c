/* plexus — CXL LD data: the pool side. See ldsvc.h and docs/cxl.md.
 *
 * The pools open on this node, their LDs' files and sizes, and the answers
 * to OPEN, READ and WRITE: each request is answered on its own, from the
 * files, with no state kept per transfer (ldsvc.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"
#include "fabric/core/text.h"
#include "fabric/cxl-switch/ldsvc_int.h"

/* ---- the pool side ---- */

static lpool *pool_by_key(px_cxlld *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_pools; i++)
        if (s->pools[i]->key == key)
            return s->pools[i];
    return NULL;
}

lpool *ldsvc_pool_named(px_cxlld *s, const char *lab, const char *name, uint32_t *at)
{
    for (uint32_t i = 0; i < s->n_pools; i++)
        if (strcmp(s->pools[i]->lab, lab) == 0 && strcmp(s->pools[i]->name, name) == 0) {
            if (at)
                *at = i;
            return s->pools[i];
        }
    return NULL;
}

static uint64_t pool_area_size(const lpool *p, uint32_t ld, uint32_t area)
{
    return area ? PX_CXLLD_LSA_SIZE : p->size[ld];
}

static int ld_path(char *out, size_t cap, const char *dir, uint32_t ld, uint32_t area)
{
    int n = snprintf(out, cap, "%s/ld%u.%s", dir, ld, area ? "lsa" : "mem");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The LD's file, opened on first use and kept open. */
static int pool_fd(lpool *p, uint32_t ld, uint32_t area)
{
    if (p->fd[ld][area] >= 0)
        return p->fd[ld][area];
    char path[PATH_CAP];
    if (ld_path(path, sizeof(path), p->dir, ld, area) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    p->fd[ld][area] = open(path, O_RDWR | O_CLOEXEC);
    return p->fd[ld][area];
}

void ldsvc_pool_free(lpool *p)
{
    if (!p)
        return;
    for (uint32_t k = 0; p->fd && k < p->n_lds; k++)
        for (int a = 0; a < 2; a++)
            if (p->fd[k][a] >= 0)
                close(p->fd[k][a]);
    free(p->fd);
    free(p->size);
    free(p);
}

/* Creates the file sparse at `want` bytes. An existing one keeps its
 * contents: label storage (lsa) is extended to `want`; memory keeps its
 * length, which is the LD's size (*got), since an allocation may have
 * resized it. */
static px_err ld_file_prepare(const char *path, uint64_t want, bool lsa, uint64_t *got,
                              px_errmsg *em)
{
    /* O_EXCL tells a file made now (sized here) from one that was there. */
    bool made = true;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        made = false;
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0)
        return px_errmsg_set(em, px_err_from_errno(errno), "cannot open %s: %s", path,
                             strerror(errno));
    struct stat st;
    px_err err = PX_OK;
    *got = want;
    if (fstat(fd, &st) != 0)
        err = px_errmsg_set(em, PX_E_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        err = px_errmsg_set(em, PX_E_CONFIG, "%s is not a regular file", path);
    else if (!lsa && !made && !ldsvc_ld_size_ok((uint64_t)st.st_size))
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s holds %" PRIu64 " bytes, not a multiple of %u up to %" PRIu64
                            ", so it is no LD's memory; move it away to start the LD empty",
                            path, (uint64_t)st.st_size, PX_CXLLD_ALIGN,
                            (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    else if (!lsa && !made)
        *got = (uint64_t)st.st_size;
    else if ((uint64_t)st.st_size > want)
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s holds %" PRIu64 " bytes, more than the %" PRIu64
                            " of an LD's label storage; move it away to start the LD's labels "
                            "empty",
                            path, (uint64_t)st.st_size, want);
    else if ((uint64_t)st.st_size < want && ftruncate(fd, (off_t)want) != 0)
        err = px_errmsg_set(em, PX_E_IO, "cannot extend %s to %" PRIu64 " bytes: %s", path, want,
                            strerror(errno));
    close(fd);
    if (err && made) /* not left behind as an empty LD */
        unlink(path);
    return err;
}

px_err px_cxlld_pool_open(px_cxlld *s, const char *lab, const char *pool, const char *dir,
                          uint32_t n_lds, uint64_t ld_size, px_errmsg *em)
{
    if (!ldsvc_name_ok(lab) || !ldsvc_name_ok(pool) || !dir || !dir[0] ||
        strlen(dir) >= PATH_CAP - 32)
        return px_errmsg_set(em, PX_E_INVAL,
                             "cxl pool: lab, pool name or directory missing or "
                             "too long");
    if (n_lds == 0 || n_lds > PX_CXLLD_MAX_LDS)
        return px_errmsg_set(em, PX_E_INVAL, "pool %s: %u LDs; 1..%u allowed", pool, n_lds,
                             PX_CXLLD_MAX_LDS);
    if (ld_size == 0 || ld_size % PX_CXLLD_ALIGN || ld_size > PX_CXLLD_MAX_LD_SIZE)
        return px_errmsg_set(em, PX_E_INVAL,
                             "pool %s: ld_size %" PRIu64 " is not a multiple of %u up to %" PRIu64,
                             pool, ld_size, PX_CXLLD_ALIGN, (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    uint32_t at = 0;
    lpool *old = ldsvc_pool_named(s, lab, pool, &at);
    /* The same pool: its LDs keep the sizes they were given since. */
    if (old && old->n_lds == n_lds && old->ld_size == ld_size && strcmp(old->dir, dir) == 0)
        return PX_OK;
    px_err err = px_mkdir_p(dir, 0700, em);
    if (err) {
        px_errmsg_prefix(em, "pool %s", pool);
        return err;
    }
    lpool *p = calloc(1, sizeof(*p));
    if (!p || !(p->fd = malloc(n_lds * sizeof(*p->fd))) ||
        !(p->size = calloc(n_lds, sizeof(*p->size)))) {
        if (p)
            free(p->fd);
        free(p);
        return px_errmsg_set(em, PX_E_NOMEM, "pool %s: out of memory", pool);
    }
    for (uint32_t k = 0; k < n_lds; k++)
        p->fd[k][0] = p->fd[k][1] = -1;
    p->n_lds = n_lds;
    uint32_t resized = 0;
    for (uint32_t k = 0; k < n_lds; k++)
        for (uint32_t a = 0; a < 2; a++) {
            char path[PATH_CAP];
            uint64_t got = 0;
            if (ld_path(path, sizeof(path), dir, k, a) != 0) {
                ldsvc_pool_free(p);
                return px_errmsg_set(em, PX_E_TOOBIG, "pool %s: directory %s is too long", pool,
                                     dir);
            }
            err = ld_file_prepare(path, a ? PX_CXLLD_LSA_SIZE : ld_size, a == 1, &got, em);
            if (err) {
                ldsvc_pool_free(p);
                px_errmsg_prefix(em, "pool %s", pool);
                return err;
            }
            if (a == 0) {
                p->size[k] = got;
                resized += got != ld_size;
            }
        }
    snprintf(p->lab, sizeof(p->lab), "%s", lab);
    snprintf(p->name, sizeof(p->name), "%s", pool);
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    p->key = px_net_key(lab, pool);
    p->ld_size = ld_size;
    if (old) {
        ldsvc_pool_free(old);
        s->pools[at] = p;
    } else {
        lpool **np = realloc(s->pools, (s->n_pools + 1) * sizeof(*np));
        if (!np) {
            ldsvc_pool_free(p);
            return px_errmsg_set(em, PX_E_NOMEM, "pool %s: out of memory", pool);
        }
        s->pools = np;
        s->pools[s->n_pools++] = p;
    }
    PX_INFO("cxl", "pool open", "lab=%s pool=%s lds=%u ld_size=%" PRIu64 " other_sizes=%u dir=%s",
            lab, pool, n_lds, ld_size, resized, dir);
    return PX_OK;
}

px_err px_cxlld_ld_resize(px_cxlld *s, const char *lab, const char *pool, uint32_t ld,
                          uint64_t size, px_errmsg *em)
{
    if (!ldsvc_ld_size_ok(size))
        return px_errmsg_set(em, PX_E_INVAL,
                             "LD %u of pool %s: size %" PRIu64 " is not a multiple of %u up to "
                             "%" PRIu64,
                             ld, pool ? pool : "?", size, PX_CXLLD_ALIGN,
                             (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    lpool *p = lab && pool ? ldsvc_pool_named(s, lab, pool, NULL) : NULL;
    if (!p || ld >= p->n_lds)
        return px_errmsg_set(em, PX_E_NOTFOUND, "pool %s of lab %s is not open on this node%s",
                             pool ? pool : "?", lab ? lab : "?", p ? " with that many LDs" : "");
    uint64_t from = p->size[ld];
    if (from == size)
        return PX_OK;
    char path[PATH_CAP];
    if (ld_path(path, sizeof(path), p->dir, ld, 0) != 0)
        return px_errmsg_set(em, PX_E_TOOBIG, "pool %s: directory %s is too long", p->name, p->dir);
    int fd = pool_fd(p, ld, 0);
    if (fd < 0)
        return px_errmsg_set(em, PX_E_IO, "cannot open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0)
        return px_errmsg_set(em, PX_E_IO,
                             "cannot resize %s from %" PRIu64 " to %" PRIu64 " bytes: %s", path,
                             from, size, strerror(errno));
    p->size[ld] = size;
    PX_INFO("cxl", "LD resized", "lab=%s pool=%s ld=%u from=%" PRIu64 " to=%" PRIu64, lab, pool, ld,
            from, size);
    return PX_OK;
}

uint64_t px_cxlld_ld_size(px_cxlld *s, const char *lab, const char *pool, uint32_t ld)
{
    lpool *p = lab && pool ? ldsvc_pool_named(s, lab, pool, NULL) : NULL;
    return p && ld < p->n_lds ? p->size[ld] : 0;
}

px_err px_cxlld_pool_paths(px_cxlld *s, const char *lab, const char *pool, uint32_t ld, char *mem,
                           size_t mcap, char *lsa, size_t lcap)
{
    lpool *p = lab && pool ? ldsvc_pool_named(s, lab, pool, NULL) : NULL;
    if (!p || ld >= p->n_lds)
        return PX_E_NOTFOUND;
    if (ld_path(mem, mcap, p->dir, ld, 0) != 0 || ld_path(lsa, lcap, p->dir, ld, 1) != 0)
        return PX_E_TOOBIG;
    return PX_OK;
}

static void answer_fail(px_cxlld *s, const char *node, const px_msg_cxl *m, px_err code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void answer_fail(px_cxlld *s, const char *node, const px_msg_cxl *m, px_err code,
                        const char *fmt, ...)
{
    char text[PX_WIRE_MAX_CXL_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    px_msg_cxl f = {.pool = m->pool,
                    .op = PX_CXL_FAIL,
                    .node = px_str_c(s->io.self),
                    .xfer = m->xfer,
                    .ld = m->ld,
                    .code = code,
                    .msg = px_str_c(text)};
    ldsvc_answer(s, node, &f);
}

static bool range_ok(uint64_t size, uint64_t off, uint32_t len)
{
    return len > 0 && off <= size && len <= size - off;
}

void ldsvc_pool_msg(px_cxlld *s, const char *node, const px_msg_cxl *m)
{
    lpool *p = pool_by_key(s, m->pool);
    if (!p) {
        answer_fail(s, node, m, PX_E_NOTFOUND, "node %s holds no such pool", s->io.self);
        return;
    }
    if (m->ld >= p->n_lds) {
        answer_fail(s, node, m, PX_E_NOTFOUND, "pool %s has %u LDs: there is no LD %u", p->name,
                    p->n_lds, m->ld);
        return;
    }
    if (m->op == PX_CXL_OPEN) {
        px_msg_cxl i = {.pool = m->pool,
                        .op = PX_CXL_INFO,
                        .node = px_str_c(s->io.self),
                        .xfer = m->xfer,
                        .ld = m->ld,
                        .size = p->size[m->ld],
                        .lsa = PX_CXLLD_LSA_SIZE};
        ldsvc_answer(s, node, &i);
        return;
    }
    if (!range_ok(pool_area_size(p, m->ld, m->area), m->off, m->len)) {
        ldsvc_bad(s, "a range outside the LD", node);
        return;
    }
    int fd = pool_fd(p, m->ld, m->area);
    if (fd < 0) {
        answer_fail(s, node, m, PX_E_IO, "pool %s LD %u: cannot open its file: %s", p->name, m->ld,
                    strerror(errno));
        return;
    }
    px_msg_cxl r = {.pool = m->pool,
                    .node = px_str_c(s->io.self),
                    .xfer = m->xfer,
                    .ld = m->ld,
                    .area = m->area,
                    .off = m->off,
                    .len = m->len};
    if (m->op == PX_CXL_READ) {
        bool zero = ldsvc_is_hole(fd, m->off, m->len);
        if (!zero) {
            if (ldsvc_pread_full(fd, s->buf, m->len, m->off) != 0) {
                answer_fail(s, node, m, PX_E_IO, "pool %s LD %u: read failed: %s", p->name, m->ld,
                            strerror(errno));
                return;
            }
            zero = ldsvc_all_zero(s->buf, m->len);
        }
        r.op = PX_CXL_DATA;
        r.zero = zero;
        if (!zero) {
            r.d = (px_bin){s->buf, m->len};
            s->st.data_out++;
            s->st.bytes_out += m->len;
        }
        s->st.reads++;
        ldsvc_answer(s, node, &r);
        return;
    }
    /* WRITE. A zero range becomes a hole where the file system can punch
     * one (the pool's files stay sparse), zeros otherwise. */
    int rc;
    if (m->zero) {
        rc =
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)m->off, (off_t)m->len);
        if (rc != 0) {
            memset(s->buf, 0, m->len);
            rc = ldsvc_pwrite_full(fd, s->buf, m->len, m->off);
        }
    } else {
        rc = ldsvc_pwrite_full(fd, m->d.ptr, m->len, m->off);
    }
    if (rc != 0) {
        answer_fail(s, node, m, PX_E_IO, "pool %s LD %u: write failed: %s", p->name, m->ld,
                    strerror(errno));
        return;
    }
    s->st.writes++;
    s->st.bytes_in += m->zero ? 0 : m->len;
    r.op = PX_CXL_ACK;
    r.hash = m->hash;
    ldsvc_answer(s, node, &r);
}
