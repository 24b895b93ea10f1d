/* plexus — CurveZMQ key pairs and key files (contract in transport.h). */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* A key line is "public <40>" or "secret <40>": anything much longer is not a
 * key file, and reading it whole would only let a bad file cost us memory. */
#define KEY_LINE_MAX 128

bool px_key_valid(const char *s)
{
    if (!s || strnlen(s, PX_KEY_Z85_LEN + 1) != PX_KEY_Z85_LEN)
        return false;
    /* zmq_z85_decode rejects characters outside the alphabet and groups whose
     * value overflows 32 bits, which a character-class check would miss. */
    uint8_t bin[32];
    return zmq_z85_decode(bin, s) != NULL;
}

px_err px_keypair_generate(px_keypair *kp, px_errmsg *em)
{
    memset(kp, 0, sizeof(*kp));
    if (zmq_curve_keypair(kp->public_z85, kp->secret_z85) != 0) {
        int e = zmq_errno();
        /* ENOTSUP: libzmq built without libsodium/tweetnacl. */
        return px_errmsg_set(em, e == ENOTSUP ? PX_E_UNSUPP : PX_E_IO,
                             "cannot generate a CURVE key pair: %s", zmq_strerror(e));
    }
    return PX_OK;
}

static px_err write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return PX_E_IO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return PX_OK;
}

/* fsync the directory holding path so the rename itself is durable. */
static void sync_parent_dir(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

px_err px_keypair_save(const px_keypair *kp, const char *path, px_errmsg *em)
{
    if (!px_key_valid(kp->public_z85))
        return px_errmsg_set(em, PX_E_INVAL, "%s: refusing to save a malformed public key", path);
    bool has_secret = kp->secret_z85[0] != '\0';
    if (has_secret && !px_key_valid(kp->secret_z85))
        return px_errmsg_set(em, PX_E_INVAL, "%s: refusing to save a malformed secret key", path);

    char text[2 * KEY_LINE_MAX];
    int tlen = has_secret ? snprintf(text, sizeof(text), "public %s\nsecret %s\n", kp->public_z85,
                                     kp->secret_z85)
                          : snprintf(text, sizeof(text), "public %s\n", kp->public_z85);

    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return px_errmsg_set(em, PX_E_INVAL, "key file path too long: %s", path);
    /* mkstemp creates the file 0600 from the start: the secret is never
     * readable by others, not even for an instant. */
    int fd = mkstemp(tmp);
    if (fd < 0)
        return px_errmsg_set(em, PX_E_IO, "cannot create a temporary file beside %s: %s", path,
                             strerror(errno));
    px_err err = PX_OK;
    if (write_all(fd, text, (size_t)tlen) != PX_OK || fsync(fd) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot write %s: %s", tmp, strerror(errno));
        goto fail_written;
    }
    if (close(fd) != 0) {
        fd = -1;
        err = px_errmsg_set(em, PX_E_IO, "cannot write %s: %s", tmp, strerror(errno));
        goto fail_written;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail_written;
    }
    sync_parent_dir(path);
    explicit_bzero(text, sizeof(text));
    return PX_OK;

fail_written:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    explicit_bzero(text, sizeof(text));
    return err;
}

/* Parse one line "<word> <key>" (newline already stripped). */
static px_err parse_key_line(const char *path, int lineno, const char *line, const char *word,
                             char out[PX_KEY_Z85_LEN + 1], px_errmsg *em)
{
    size_t wl = strlen(word);
    if (strncmp(line, word, wl) != 0 || line[wl] != ' ')
        return px_errmsg_set(em, PX_E_CONFIG, "%s:%d: expected '%s <40-character Z85 key>'", path,
                             lineno, word);
    const char *key = line + wl + 1;
    size_t kl = strlen(key);
    if (kl != PX_KEY_Z85_LEN)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "%s:%d: %s key has %zu characters, expected %d Z85 characters", path,
                             lineno, word, kl, PX_KEY_Z85_LEN);
    if (!px_key_valid(key))
        return px_errmsg_set(em, PX_E_CONFIG, "%s:%d: %s key is not valid Z85", path, lineno, word);
    memcpy(out, key, PX_KEY_Z85_LEN + 1);
    return PX_OK;
}

/* Read the next line into buf without its newline. Returns 1 for a line, 0 at
 * end of file, -1 for a line that is too long or contains a NUL/CR. */
static int read_line(FILE *f, char *buf, size_t n)
{
    if (!fgets(buf, (int)n, f))
        return 0;
    size_t len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    else if (!feof(f))
        return -1; /* no newline within n bytes */
    return strchr(buf, '\r') ? -1 : 1;
}

px_err px_keypair_load(const char *path, px_keypair *kp, px_errmsg *em)
{
    memset(kp, 0, sizeof(*kp));
    FILE *f = fopen(path, "re");
    if (!f)
        return px_errmsg_set(em, errno == ENOENT ? PX_E_NOTFOUND : PX_E_IO,
                             "cannot open key file %s: %s", path, strerror(errno));
    px_err err = PX_OK;
    char line[KEY_LINE_MAX];
    int r = read_line(f, line, sizeof(line));
    if (r == 0) {
        err = px_errmsg_set(em, PX_E_CONFIG, "%s:1: file is empty, expected 'public <key>'", path);
        goto out_file;
    }
    if (r < 0) {
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s:1: line is too long or has a carriage return, expected "
                            "'public <40-character Z85 key>'",
                            path);
        goto out_file;
    }
    err = parse_key_line(path, 1, line, "public", kp->public_z85, em);
    if (err != PX_OK)
        goto out_file;

    r = read_line(f, line, sizeof(line));
    if (r == 0)
        goto out_file; /* public-only file */
    if (r < 0) {
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s:2: line is too long or has a carriage return, expected "
                            "'secret <40-character Z85 key>'",
                            path);
        goto out_secret;
    }
    err = parse_key_line(path, 2, line, "secret", kp->secret_z85, em);
    if (err != PX_OK)
        goto out_secret;
    if (read_line(f, line, sizeof(line)) != 0) {
        err =
            px_errmsg_set(em, PX_E_CONFIG, "%s:3: unexpected text after the secret key line", path);
        goto out_secret;
    }

    /* A secret readable by others is a leaked secret (ssh refuses the same). */
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "cannot stat %s: %s", path, strerror(errno));
        goto out_secret;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        err = px_errmsg_set(em, PX_E_AUTH,
                            "%s: holds a secret key but is accessible by group or others "
                            "(mode %04o); run 'chmod 600 %s'",
                            path, (unsigned)(st.st_mode & 07777), path);
        goto out_secret;
    }
    /* The two lines must belong together, or we would present one identity
     * and prove another. */
    char derived[PX_KEY_Z85_LEN + 1];
    if (zmq_curve_public(derived, kp->secret_z85) != 0 || strcmp(derived, kp->public_z85) != 0) {
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s:2: secret key does not belong to the public key on line 1", path);
        goto out_secret;
    }
    goto out_file;

out_secret:
    explicit_bzero(kp->secret_z85, sizeof(kp->secret_z85));
out_file:
    explicit_bzero(line, sizeof(line));
    fclose(f);
    if (err != PX_OK)
        memset(kp, 0, sizeof(*kp));
    return err;
}
