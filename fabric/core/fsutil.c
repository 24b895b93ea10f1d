#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static px_err write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return px_err_from_errno(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return PX_OK;
}

px_err px_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                            px_errmsg *em)
{
    char tmp[4096], dir[4096];
    /* An unpredictable name opened O_EXCL (mkstemp), and the final mode set
     * before any byte is written: secrets never sit in a readable file. */
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return px_errmsg_set(em, PX_E_INVAL, "path too long: %s", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return px_errmsg_set(em, px_err_from_errno(errno), "cannot create a file next to %s: %s",
                             path, strerror(errno));
    px_err err;
    if (fchmod(fd, mode) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto fail_close;
    }
    err = write_all(fd, data, len);
    if (err) {
        px_errmsg_set(em, err, "cannot write %s: %s", tmp, strerror(errno));
        goto fail_close;
    }
    if (fsync(fd) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot sync %s: %s", tmp, strerror(errno));
        goto fail_close;
    }
    if (close(fd) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot close %s: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    if (rename(tmp, path) != 0) {
        err = px_errmsg_set(em, px_err_from_errno(errno), "cannot rename %s to %s: %s", tmp, path,
                            strerror(errno));
        goto fail_unlink;
    }
    /* The rename is durable only once the directory entry is. */
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return PX_OK;

fail_close:
    close(fd);
fail_unlink:
    unlink(tmp);
    return err;
}

px_err px_read_file(const char *path, size_t max, char **out, size_t *len, px_errmsg *em)
{
    *out = NULL;
    if (len)
        *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return px_errmsg_set(em, px_err_from_errno(errno), "cannot open %s: %s", path,
                             strerror(errno));
    struct stat st;
    px_err err = PX_OK;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if ((size_t)st.st_size > max) {
        err = px_errmsg_set(em, PX_E_TOOBIG, "%s is %lld bytes; the limit is %zu", path,
                            (long long)st.st_size, max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        err = PX_E_NOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = got;
out:
    free(buf);
    close(fd);
    return err;
}

px_err px_mkdir_p(const char *path, mode_t mode, px_errmsg *em)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return px_errmsg_set(em, PX_E_INVAL, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST)
                return px_errmsg_set(em, px_err_from_errno(errno), "cannot create %s: %s", tmp,
                                     strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return PX_OK;
}

px_err px_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
                continue;
            struct stat st;
            /* lstat: a symlink is removed, never followed. */
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                px_rm_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    if (rmdir(path) != 0 && errno != ENOENT)
        return px_err_from_errno(errno);
    return PX_OK;
}

uint64_t px_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void px_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
