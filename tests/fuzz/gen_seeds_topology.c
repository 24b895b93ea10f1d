/* plexus — seeds for fuzz_topology: every YAML file under
 * tests/topology/good, tests/topology/bad and configs/ (good files reach
 * deep into validation, bad ones into every error path), copied into
 * DIR/fuzz_topology/. scripts/fuzz.sh runs every gen_seeds* program with
 * its seed directory as the only argument. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifndef PX_SOURCE_ROOT
#error "build with -DPX_SOURCE_ROOT=\"...\""
#endif

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return -1;
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (ferror(in))
        rc = -1;
    fclose(in);
    if (fclose(out) != 0)
        rc = -1;
    return rc;
}

static int copy_dir(const char *src, const char *prefix, const char *dst, unsigned *count)
{
    DIR *d = opendir(src);
    if (!d) {
        fprintf(stderr, "gen_seeds_topology: %s: %s\n", src, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        char from[4096], to[4096];
        snprintf(from, sizeof(from), "%s/%s", src, e->d_name);
        snprintf(to, sizeof(to), "%s/%s-%s", dst, prefix, e->d_name);
        if (copy_file(from, to) != 0) {
            fprintf(stderr, "gen_seeds_topology: %s -> %s failed\n", from, to);
            rc = -1;
        } else {
            (*count)++;
        }
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEED-DIR\n", argv[0]);
        return 2;
    }
    char dst[4096];
    snprintf(dst, sizeof(dst), "%s/fuzz_topology", argv[1]);
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_seeds_topology: %s: %s\n", dst, strerror(errno));
        return 1;
    }
    unsigned count = 0;
    int rc = 0;
    rc |= copy_dir(PX_SOURCE_ROOT "/tests/topology/good", "good", dst, &count);
    rc |= copy_dir(PX_SOURCE_ROOT "/tests/topology/bad", "bad", dst, &count);
    rc |= copy_dir(PX_SOURCE_ROOT "/configs", "config", dst, &count);
    printf("gen_seeds_topology: %u seeds in %s\n", count, dst);
    return rc ? 1 : 0;
}
