/* Unit tests for the topology loader (coordinator/topology.h).
 *
 * Files: PX_TOPO_DIR (set by tests/unit/meson.build) holds good/ and bad/;
 * configs/ is two levels above it. Every bad/ file starts with
 *     # expect: LINE:COL substring of the message
 * and must fail at exactly FILE:LINE:COL with that substring. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/topology.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static const char *topo_dir(void)
{
    const char *d = getenv("PX_TOPO_DIR");
    return d && *d ? d : "tests/topology";
}

static px_topo *load_ok(const char *path)
{
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    px_err err = px_topo_load_file(path, &t, &em);
    if (err)
        fail_msg("%s should load, got %s: %s", path, px_errname(err), em.text);
    assert_non_null(t);
    return t;
}

static px_topo *load_str_ok(const char *yaml)
{
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    px_err err = px_topo_load_buffer("t.yaml", yaml, strlen(yaml), &t, &em);
    if (err)
        fail_msg("buffer should load, got %s: %s", px_errname(err), em.text);
    return t;
}

/* Loads yaml expecting failure with code; returns the message. */
static const char *load_str_fail(const char *yaml, size_t len, px_err code, px_errmsg *em)
{
    px_topo *t = (px_topo *)1;
    px_err err = px_topo_load_buffer("t.yaml", yaml, len, &t, em);
    if (err != code)
        fail_msg("expected %s, got %s: %s", px_errname(code), px_errname(err), em->text);
    assert_null(t);
    return em->text;
}

static const px_topo_guest *guest(const px_topo *t, const char *name)
{
    uint32_t i = px_topo_find_guest(t, name);
    if (i == PX_TOPO_NONE)
        fail_msg("no guest %s", name);
    return &t->guests[i];
}

/* Sorted *.yaml names in dir (caller frees each and the array). */
static char **list_yaml(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s (set PX_TOPO_DIR)", dir);
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        names = realloc(names, (count + 1) * sizeof(*names));
        assert_non_null(names);
        names[count] = malloc(strlen(dir) + len + 2);
        assert_non_null(names[count]);
        sprintf(names[count], "%s/%s", dir, e->d_name);
        count++;
    }
    closedir(d);
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *tmp = names[j];
            names[j] = names[j - 1];
            names[j - 1] = tmp;
        }
    *n = count;
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- good files ---- */

static void test_quickstart(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/../../configs/quickstart.yaml", topo_dir());
    px_topo *t = load_ok(path);
    assert_string_equal(t->name, "quickstart");
    assert_int_equal(t->n_guests, 4);
    assert_int_equal(t->n_hosts, 2);
    assert_int_equal(t->n_can_buses, 1);
    assert_int_equal(t->n_eth_segments, 1);
    assert_int_equal(t->n_ivshmem, 1);
    assert_int_equal(t->can_buses[0].bitrate, 500000);
    assert_false(t->can_buses[0].fd);
    assert_int_equal(t->ivshmem[0].size, MIB);
    assert_int_equal(t->ivshmem[0].vectors, 2);

    const px_topo_eth_segment *lan = &t->eth_segments[0];
    assert_true(lan->nat.enabled);
    assert_int_equal(lan->nat.subnet, 0x0a000200u);
    assert_int_equal(lan->nat.prefix, 24);
    assert_int_equal(lan->nat.n_forwards, 1);
    assert_int_equal(lan->nat.forwards[0].proto, PX_TOPO_PROTO_TCP);
    assert_int_equal(lan->nat.forwards[0].listen, 2222);
    assert_int_equal(lan->nat.forwards[0].port, 22);
    assert_string_equal(t->guests[lan->nat.forwards[0].guest].name, "gw");

    const px_topo_guest *gw = guest(t, "gw");
    assert_int_equal(gw->cpus, 2);
    assert_int_equal(gw->memory, 256 * MIB);
    assert_int_equal(gw->image.type, PX_TOPO_IMAGE_BUILTIN);
    assert_string_equal(gw->image.builtin, "tiny");
    assert_int_equal(gw->restart, PX_TOPO_RESTART_ON_FAILURE);
    assert_int_equal(gw->n_nics, 1);
    uint8_t mac[6] = {0x52, 0x54, 0x00, 0x00, 0x10, 0x01};
    assert_memory_equal(gw->nics[0].mac, mac, 6);
    assert_false(gw->nics[0].mac_generated);
    assert_int_equal(gw->nics[0].model, PX_TOPO_NIC_VIRTIO);
    assert_int_equal(gw->n_cans, 1);
    assert_int_equal(gw->cans[0].controller, PX_TOPO_CAN_KVASER_PCI);

    const px_topo_guest *ecu = guest(t, "ecu2");
    assert_string_equal(ecu->kind, "ecu");
    assert_int_equal(ecu->n_cans, 1); /* from the kind */
    assert_int_equal(ecu->cans[0].bus, 0);

    const px_topo_guest *client = guest(t, "client");
    assert_true(client->nics[0].mac_generated);
    assert_int_equal(client->nics[0].mac[0], 0x52);

    /* ecu2's LD 0 of pool0, on the switch fabric */
    assert_int_equal(t->n_cxl_switches, 1);
    assert_int_equal(t->n_cxl_pools, 1);
    assert_int_equal(t->cxl_pools[0].ld_size, 256 * MIB);
    assert_int_equal(t->cxl_pools[0].capacity, GIB);
    assert_int_equal(ecu->n_cxls, 1);
    assert_int_equal(ecu->cxls[0].sw, 0);
    assert_int_equal(ecu->cxls[0].pool, 0);
    assert_int_equal(ecu->cxls[0].lds, 1);

    assert_int_equal(t->placement.n_pins, 2);
    assert_int_equal(t->placement.pins[0].what.type, PX_TOPO_OBJ_GUEST);
    assert_string_equal(t->hosts[t->placement.pins[0].host].name, "host-a");
    assert_int_equal(t->placement.pins[1].what.type, PX_TOPO_OBJ_CXL_SWITCH);
    assert_string_equal(t->hosts[t->placement.pins[1].host].name, "host-a");
    assert_int_equal(t->placement.n_anti_affinity, 1);
    assert_int_equal(t->placement.anti_affinity[0].n, 2);
    assert_string_equal(t->hosts[0].labels[0].key, "role");
    assert_string_equal(t->hosts[0].labels[0].value, "gateway");
    assert_string_equal(t->hosts[0].address, "127.0.0.1:7401");
    assert_int_equal(t->hosts[0].memory, 4 * GIB);
    /* marks point at the guest's name under nodes: */
    assert_true(gw->mark.line > 1);
    assert_int_equal(gw->mark.col, 3);
    px_topo_free(t);
}

static void test_inheritance(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/good/inheritance.yaml", topo_dir());
    px_topo *t = load_ok(path);
    const px_topo_guest *g = guest(t, "plain");
    assert_string_equal(g->kind, "small");  /* defaults.kind */
    assert_int_equal(g->cpus, 3);           /* defaults */
    assert_int_equal(g->memory, 512 * MIB); /* kind beats defaults */
    assert_int_equal(g->accel, PX_TOPO_ACCEL_TCG);
    assert_int_equal(g->restart, PX_TOPO_RESTART_ALWAYS);
    assert_int_equal(g->image.type, PX_TOPO_IMAGE_BUILTIN);

    g = guest(t, "custom");
    assert_string_equal(g->kind, "big");
    assert_int_equal(g->cpus, 8);         /* kind */
    assert_int_equal(g->memory, 2 * GIB); /* node */
    assert_int_equal(g->restart, PX_TOPO_RESTART_NO);
    assert_int_equal(g->image.type, PX_TOPO_IMAGE_KERNEL);
    assert_string_equal(g->image.kernel, "boot/vmlinuz");
    assert_string_equal(g->image.initrd, "boot/initrd.img");
    assert_string_equal(g->image.append, "console=ttyS0 quiet");
    assert_int_equal(g->n_nics, 1);

    g = guest(t, "mid");
    assert_int_equal(g->memory, 1 * GIB); /* defaults, the kind has none */
    assert_int_equal(g->restart, PX_TOPO_RESTART_ALWAYS);
    /* each guest owns its attachments: MACs differ */
    assert_memory_not_equal(g->nics[0].mac, guest(t, "custom")->nics[0].mac, 6);

    g = guest(t, "bare");
    assert_int_equal(g->cpus, 1);
    assert_int_equal(g->n_nics, 0); /* empty list replaces the kind's */
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/good", topo_dir());
    assert_string_equal(t->base_dir, dir); /* relative image paths resolve here */
    px_topo_free(t);

    snprintf(path, sizeof(path), "%s/good/builtin_defaults.yaml", topo_dir());
    t = load_ok(path);
    g = &t->guests[0];
    assert_int_equal(g->cpus, 1);
    assert_int_equal(g->memory, 256 * MIB);
    assert_int_equal(g->accel, PX_TOPO_ACCEL_AUTO);
    assert_int_equal(g->restart, PX_TOPO_RESTART_NO);
    assert_int_equal(g->image.type, PX_TOPO_IMAGE_DISK);
    assert_string_equal(g->image.disk, "images/only.qcow2");
    assert_string_equal(g->kind, "");
    px_topo_free(t);
}

/* A cxl_pool's sync: (docs/cxl.md, "Shared LDs"): as given, 1 s without. */
static void test_cxl_pool_sync(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/good/cxl_shared.yaml", topo_dir());
    px_topo *t = load_ok(path);
    static const struct {
        const char *pool;
        uint64_t sync_ns;
    } want[] = {{"fast", 1000000ull}, {"slow", 3600000000000ull}, {"plain", 1000000000ull}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        px_topo_ref r;
        assert_true(px_topo_find_net(t, want[i].pool, &r));
        assert_int_equal(r.type, PX_TOPO_OBJ_CXL_POOL);
        assert_true(t->cxl_pools[r.index].sync_ns == want[i].sync_ns);
    }
    assert_true(PX_TOPO_CXL_SYNC_DEF_NS == 1000000000ull);
    px_topo_free(t);
}

static void test_units(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/good/units.yaml", topo_dir());
    px_topo *t = load_ok(path);
    px_topo_ref r;
    assert_true(px_topo_find_net(t, "slow", &r));
    assert_int_equal(t->can_buses[r.index].bitrate, 83333);
    assert_true(px_topo_find_net(t, "fd", &r));
    assert_int_equal(t->can_buses[r.index].bitrate, 1000000);
    assert_int_equal(t->can_buses[r.index].data_bitrate, 5000000);
    assert_true(t->can_buses[r.index].fd);
    assert_true(px_topo_find_net(t, "fd-default", &r));
    assert_int_equal(t->can_buses[r.index].bitrate, 500000);
    assert_int_equal(t->can_buses[r.index].data_bitrate, 2000000);
    assert_true(px_topo_find_net(t, "shm-a", &r));
    assert_int_equal(r.type, PX_TOPO_OBJ_IVSHMEM);
    assert_int_equal(t->ivshmem[r.index].size, 64 * MIB);
    assert_int_equal(t->ivshmem[r.index].vectors, 4);
    assert_true(px_topo_find_net(t, "shm-b", &r));
    assert_int_equal(t->ivshmem[r.index].size, 256 * MIB);
    assert_int_equal(t->ivshmem[r.index].sync_ns, 10000000);
    assert_true(px_topo_find_net(t, "shm-c", &r));
    assert_int_equal(t->ivshmem[r.index].size, GIB);

    const px_topo_impair *im = &t->eth_segments[0].impair;
    assert_true(im->set);
    assert_int_equal(im->delay_ns, 20000000);
    assert_int_equal(im->jitter_ns, 500000);
    assert_int_equal(im->loss_ppm, 5000);
    assert_int_equal(im->duplicate_ppm, 10000);
    assert_int_equal(im->corrupt_ppm, 1);
    assert_int_equal(im->rate_bps, 10000000);

    assert_int_equal(guest(t, "m512")->memory, 512 * MIB);
    assert_int_equal(guest(t, "m1g")->memory, GIB);
    assert_int_equal(guest(t, "m256mib")->memory, 256 * MIB);
    assert_int_equal(guest(t, "m1536")->memory, 1536 * MIB);
    /* an FD bus member gets ctucan_pci, a classic one kvaser_pci */
    const px_topo_guest *g = guest(t, "m1536");
    assert_int_equal(g->cans[0].controller, PX_TOPO_CAN_KVASER_PCI);
    assert_int_equal(g->cans[1].controller, PX_TOPO_CAN_CTUCAN_PCI);

    assert_int_equal(t->n_faults, 3);
    assert_int_equal(t->faults[0].type, PX_TOPO_FAULT_LINK_DOWN);
    assert_int_equal(t->faults[0].at_ns, 1000000000ull);
    assert_int_equal(t->faults[0].duration_ns, 1500000000ull);
    assert_int_equal(t->faults[0].guest, PX_TOPO_NONE);
    assert_string_equal(t->faults[0].name, "fault-1");
    assert_int_equal(t->faults[1].at_ns, 120000000000ull);
    assert_int_equal(t->faults[1].duration_ns, 250000000ull);
    assert_int_equal(t->faults[1].every_ns, 3600000000000ull);
    assert_int_equal(t->faults[2].impair.rate_bps, 2000000);
    assert_string_equal(t->guests[t->faults[2].guest].name, "m1536");
    px_topo_free(t);
}

static void load_all_in(const char *dir, size_t min)
{
    size_t n;
    char **names = list_yaml(dir, &n);
    if (n < min)
        fail_msg("%s has %zu files, expected at least %zu", dir, n, min);
    for (size_t i = 0; i < n; i++)
        px_topo_free(load_ok(names[i]));
    free_list(names, n);
}

static void test_good_dir(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/good", topo_dir());
    load_all_in(dir, 4);
}

static void test_configs(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/../../configs", topo_dir());
    load_all_in(dir, 4);
}

/* ---- bad files ---- */

static void test_bad_dir(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/bad", topo_dir());
    size_t n;
    char **names = list_yaml(dir, &n);
    if (n < 25)
        fail_msg("%s has %zu files, expected at least 25", dir, n);
    unsigned failures = 0;
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(names[i], "r");
        assert_non_null(f);
        char first[512] = "";
        if (!fgets(first, sizeof(first), f))
            first[0] = '\0';
        fclose(f);
        first[strcspn(first, "\n")] = '\0';
        unsigned line, col;
        int off = 0;
        if (sscanf(first, "# expect: %u:%u %n", &line, &col, &off) != 2 || !off) {
            print_error("%s: first line must be '# expect: LINE:COL substring'\n", names[i]);
            failures++;
            continue;
        }
        const char *want = first + off;
        char loc[1200];
        snprintf(loc, sizeof(loc), "%s:%u:%u: ", names[i], line, col);
        px_topo *t = NULL;
        px_errmsg em = {{0}};
        px_err err = px_topo_load_file(names[i], &t, &em);
        if (!err) {
            print_error("%s: loaded, expected an error at %u:%u\n", names[i], line, col);
            px_topo_free(t);
            failures++;
        } else if (strncmp(em.text, loc, strlen(loc)) != 0 || !strstr(em.text, want)) {
            print_error("%s: expected %u:%u '%s'\n  got: %s\n", names[i], line, col, want, em.text);
            failures++;
        } else if (!strstr(em.text, "expected")) {
            print_error("%s: message says nothing about what was expected: %s\n", names[i],
                        em.text);
            failures++;
        }
        assert_null(t);
    }
    free_list(names, n);
    assert_int_equal(failures, 0);
}

/* ---- limits and hostile input ---- */

static void test_limits(void **state)
{
    (void)state;
    px_errmsg em;

    /* Larger than PX_TOPO_MAX_FILE: rejected before parsing. */
    size_t big = PX_TOPO_MAX_FILE + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, '#', big);
    assert_non_null(strstr(load_str_fail(buf, big, PX_E_TOOBIG, &em), "at most"));
    free(buf);

    /* Deep nesting. */
    char deep[256];
    int w = snprintf(deep, sizeof(deep), "name: x\nnodes: ");
    for (int i = 0; i < 40; i++)
        deep[w++] = '[';
    deep[w] = '\0';
    assert_non_null(strstr(load_str_fail(deep, strlen(deep), PX_E_TOOBIG, &em), "nesting"));

    /* Aliases are refused, so no expansion bomb is possible. */
    const char *bomb = "name: x\n"
                       "a: &a [q, q, q, q, q, q, q, q, q]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n";
    assert_non_null(strstr(load_str_fail(bomb, strlen(bomb), PX_E_CONFIG, &em), "alias *a"));

    /* More guests than PX_TOPO_MAX_GUESTS. */
    size_t cap = 64 + (size_t)(PX_TOPO_MAX_GUESTS + 1) * 32;
    buf = malloc(cap);
    assert_non_null(buf);
    size_t len = (size_t)snprintf(buf, cap, "name: x\nnodes:\n");
    for (unsigned i = 0; i <= PX_TOPO_MAX_GUESTS; i++)
        len += (size_t)snprintf(buf + len, cap - len, "  g%u: {}\n", i);
    assert_non_null(strstr(load_str_fail(buf, len, PX_E_TOOBIG, &em), "at most 4096"));
    free(buf);

    /* A scalar longer than PX_TOPO_MAX_STRING. */
    cap = PX_TOPO_MAX_STRING + 128;
    buf = malloc(cap);
    assert_non_null(buf);
    len = (size_t)snprintf(buf, cap, "name: x\nnodes:\n  a:\n    image: {kernel: k, append: \"");
    memset(buf + len, 'a', PX_TOPO_MAX_STRING + 1);
    len += PX_TOPO_MAX_STRING + 1;
    len += (size_t)snprintf(buf + len, cap - len, "\"}\n");
    assert_non_null(strstr(load_str_fail(buf, len, PX_E_TOOBIG, &em), "bytes long"));
    free(buf);

    /* A NUL byte inside a quoted value, and raw binary. */
    const char *nul = "name: \"a\\0b\"\nnodes: {a: {image: builtin:tiny}}\n";
    assert_non_null(strstr(load_str_fail(nul, strlen(nul), PX_E_CONFIG, &em), "1:7: "));
    const char bin[] = {'n', 'a', 'm', 'e', ':', ' ', (char)0xff, (char)0xfe, '\n'};
    load_str_fail(bin, sizeof(bin), PX_E_CONFIG, &em);
    assert_non_null(strstr(em.text, "t.yaml:1:"));
}

/* Every prefix of a real file fails cleanly or loads: nothing crashes, and
 * every failure is located. Cheap stand-in for the fuzzer in the unit run. */
static void test_prefixes(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/../../configs/netlab.yaml", topo_dir());
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n > 100 && n < sizeof(buf));
    for (size_t len = 0; len <= n; len++) {
        px_topo *t = NULL;
        px_errmsg em = {{0}};
        px_err err = px_topo_load_buffer("p.yaml", buf, len, &t, &em);
        if (err) {
            assert_null(t);
            if (strncmp(em.text, "p.yaml:", 7) != 0)
                fail_msg("prefix %zu: message without location: %s", len, em.text);
        } else {
            px_topo_free(t);
        }
    }
}

/* ---- API edges ---- */

static void test_api(void **state)
{
    (void)state;
    px_topo *t = (px_topo *)1;
    px_errmsg em = {{0}};
    assert_int_equal(px_topo_load_file("/nonexistent/x.yaml", &t, &em), PX_E_NOTFOUND);
    assert_null(t);
    assert_non_null(strstr(em.text, "/nonexistent/x.yaml"));
    assert_int_equal(px_topo_load_file(NULL, &t, NULL), PX_E_INVAL);
    assert_int_equal(px_topo_load_buffer("x", "a", 1, NULL, NULL), PX_E_INVAL);
    assert_int_equal(px_topo_load_buffer("x", NULL, 3, &t, NULL), PX_E_INVAL);
    /* em may be NULL; buffers need no NUL terminator */
    const char yaml[] = "name: x\nnodes: {a: {image: builtin:tiny}}\nJUNK";
    assert_int_equal(px_topo_load_buffer("x", yaml, sizeof(yaml) - 1 - 4, &t, NULL), PX_OK);
    assert_string_equal(t->source, "x");
    assert_string_equal(t->base_dir, ".");
    px_topo_free(t);
    assert_int_equal(px_topo_load_buffer("x", yaml, sizeof(yaml) - 1, &t, NULL), PX_E_CONFIG);
    px_topo_free(NULL);

    /* Exact message format. */
    const char *typo = "name: x\nnodes:\n  a: {image: builtin:tiny, cpu: 2}\n";
    load_str_fail(typo, strlen(typo), PX_E_CONFIG, &em);
    assert_string_equal(em.text,
                        "t.yaml:3:28: unknown key \"cpu\" in guest \"a\"; expected one of: kind, "
                        "cpus, memory, image, accelerator, restart, nics, can, ivshmem, cxl "
                        "(hint: did you mean \"cpus\"?)");
}

static void test_lookups(void **state)
{
    (void)state;
    px_topo *t = load_str_ok("name: x\n"
                             "hosts: {h: {cpus: 2, memory: 1G}}\n"
                             "nets: {c: {type: can_bus}, s: {type: cxl_switch}}\n"
                             "nodes: {a: {image: builtin:tiny, can: [c], cxl: [s, s]}}\n");
    px_topo_ref r;
    assert_int_equal(px_topo_find_guest(t, "a"), 0);
    assert_int_equal(px_topo_find_guest(t, "c"), PX_TOPO_NONE);
    assert_int_equal(px_topo_find_host(t, "h"), 0);
    assert_true(px_topo_find_net(t, "s", &r));
    assert_int_equal(r.type, PX_TOPO_OBJ_CXL_SWITCH);
    assert_false(px_topo_find_net(t, "a", &r));
    assert_string_equal(px_topo_ref_name(t, r), "s");
    assert_string_equal(px_topo_ref_name(t, (px_topo_ref){PX_TOPO_OBJ_GUEST, 7}), "");
    assert_string_equal(px_topo_obj_str(PX_TOPO_OBJ_ETH_SEGMENT), "eth_segment");
    assert_string_equal(px_topo_accel_str(PX_TOPO_ACCEL_KVM), "kvm");
    assert_string_equal(px_topo_restart_str(PX_TOPO_RESTART_ON_FAILURE), "on-failure");
    assert_string_equal(px_topo_nic_model_str(PX_TOPO_NIC_E1000E), "e1000e");
    assert_string_equal(px_topo_can_ctrl_str(PX_TOPO_CAN_CTUCAN_PCI), "ctucan_pci");
    assert_string_equal(px_topo_fault_type_str(PX_TOPO_FAULT_CAN_BUS_OFF), "can_bus_off");
    /* auto CXL ports: lowest free, in guest order */
    assert_int_equal(t->guests[0].cxls[0].port, 0);
    assert_int_equal(t->guests[0].cxls[1].port, 1);
    assert_true(t->guests[0].cxls[1].port_auto);
    assert_int_equal(t->guests[0].cxls[0].pool, PX_TOPO_NONE);
    px_topo_free(t);
}

/* Generated MACs depend on the guest's name and NIC position only. */
static void test_generated_macs(void **state)
{
    (void)state;
    px_topo *a = load_str_ok("name: x\nnets: {l: {type: eth_segment}}\n"
                             "defaults: {image: builtin:tiny, nics: [l, l]}\n"
                             "nodes: {p: {}, q: {}}\n");
    px_topo *b = load_str_ok("name: y\nnets: {l: {type: eth_segment}}\n"
                             "defaults: {image: builtin:tiny, nics: [l, l]}\n"
                             "nodes: {z: {}, q: {}, p: {}}\n");
    assert_memory_equal(guest(a, "p")->nics[1].mac, guest(b, "p")->nics[1].mac, 6);
    assert_memory_equal(guest(a, "q")->nics[0].mac, guest(b, "q")->nics[0].mac, 6);
    assert_memory_not_equal(guest(a, "p")->nics[0].mac, guest(a, "p")->nics[1].mac, 6);
    /* An explicit MAC equal to a derived one pushes the derived one aside. */
    px_topo *c;
    char yaml[512];
    const uint8_t *m = guest(a, "p")->nics[0].mac;
    snprintf(yaml, sizeof(yaml),
             "name: x\nnets: {l: {type: eth_segment}}\n"
             "nodes:\n  p: {image: builtin:tiny, nics: [l]}\n"
             "  r: {image: builtin:tiny, nics: [{segment: l, mac: "
             "\"%02x:%02x:%02x:%02x:%02x:%02x\"}]}\n",
             m[0], m[1], m[2], m[3], m[4], m[5]);
    c = load_str_ok(yaml);
    assert_memory_equal(guest(c, "r")->nics[0].mac, m, 6);
    assert_memory_not_equal(guest(c, "p")->nics[0].mac, m, 6);
    px_topo_free(a);
    px_topo_free(b);
    px_topo_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quickstart), cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_units),      cmocka_unit_test(test_cxl_pool_sync),
        cmocka_unit_test(test_good_dir),   cmocka_unit_test(test_configs),
        cmocka_unit_test(test_bad_dir),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_prefixes),   cmocka_unit_test(test_api),
        cmocka_unit_test(test_lookups),    cmocka_unit_test(test_generated_macs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
