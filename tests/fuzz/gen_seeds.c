/* plexus — writes the fuzz seed corpora from the unit-test vectors.
 *
 *     gen_seeds OUTDIR
 *
 * creates OUTDIR/fuzz_envelope/ (each vector, a batch of all of them, and a
 * few hostile headers) and OUTDIR/fuzz_body_<type>/ (each body alone), so
 * the fuzzers start from exactly what tests/unit/test_wire.c proves valid.
 * scripts/fuzz.sh runs every gen_seeds* program it finds in the build.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fabric/core/wire.h"
#include "fabric/core/wire_table.h"
#include "tests/unit/wire_vectors.h"

static int mkdir_ok(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "gen_seeds: mkdir %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_seed(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "gen_seeds: write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static px_msg vec[WV_MAX];
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds OUTDIR\n");
        return 2;
    }
    size_t n = wire_vectors(vec, WV_MAX, 0);
    char dir[4096], name[64];
    px_wbuf one = {0}, batch = {0};
    px_errmsg em = {{0}};
    int rc = 1;

    snprintf(dir, sizeof(dir), "%s/fuzz_envelope", argv[1]);
    if (mkdir_ok(argv[1]) || mkdir_ok(dir))
        goto out;
    for (size_t i = 0; i < n; i++) {
        px_wbuf_reset(&one);
        if (px_wire_encode(&one, &vec[i], &em) || px_wire_encode(&batch, &vec[i], &em)) {
            fprintf(stderr, "gen_seeds: vector %zu: %s\n", i, em.text);
            goto out;
        }
        snprintf(name, sizeof(name), "vec-%02zu-%s", i, px_msg_type_name(vec[i].env.type));
        if (write_seed(dir, name, one.data, one.len))
            goto out;
    }
    if (write_seed(dir, "batch-all", batch.data, batch.len))
        goto out;
    static const struct {
        const char *name;
        uint8_t b[16];
        size_t n;
    } hostile[] = {
        {"array32-huge", {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 1, 0}, 8},
        {"version-2", {0x96, 2, 1, 0, 0, 0, 0x80}, 7},
        {"body-str32-huge",
         {0x96, 1, 4, 0, 0, 0, 0x81, 0xa1, 't', 0xdb, 0xff, 0xff, 0xff, 0xff},
         14},
        {"depth", {0x96, 1, 4, 0, 0, 0, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0}, 15},
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
        if (write_seed(dir, hostile[i].name, hostile[i].b, hostile[i].n))
            goto out;

    for (uint32_t t = 1; t < PX_MSG_TYPE_MAX; t++) {
        const px_wire_struct *d = px_wire_body_desc(t);
        char lower[32];
        size_t k = 0;
        for (const char *c = d->name; *c && k + 1 < sizeof(lower); c++)
            lower[k++] = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        lower[k] = 0;
        snprintf(dir, sizeof(dir), "%s/fuzz_body_%s", argv[1], lower);
        if (mkdir_ok(dir))
            goto out;
        for (size_t i = 0; i < n; i++) {
            if (vec[i].env.type != t)
                continue;
            px_wbuf_reset(&one);
            if (px_wire_encode_struct(&one, d, &vec[i].body, &em)) {
                fprintf(stderr, "gen_seeds: body %zu: %s\n", i, em.text);
                goto out;
            }
            snprintf(name, sizeof(name), "vec-%02zu", i);
            if (write_seed(dir, name, one.data, one.len))
                goto out;
        }
    }
    rc = 0;
out:
    px_wbuf_fini(&batch);
    px_wbuf_fini(&one);
    return rc;
}
