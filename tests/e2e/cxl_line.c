/* cxl_line: the QEMU command line plexus-node would run for one guest, with
 * CXL LDs bound as given, one argument per line (tests/e2e/test_cxl_guest.py
 * boots it without a lab).
 *
 *   cxl_line --rundir DIR --image-dir DIR [--qemu BIN] [--kvm]
 *            [--ld ATTACH:VPPB:MEM:LSA:SIZE]... TOPOLOGY GUEST
 *
 * GUEST is a guest's name in TOPOLOGY. --ld binds the LD whose backing files
 * are MEM and LSA (paths without ':') and which holds SIZE bytes (a number,
 * or with K, M or G) to vPPB VPPB of the guest's CXL attachment ATTACH (its
 * place in the cxl: list). Environment the node would add (CAN's
 * LD_PRELOAD) is printed as "env NAME=VALUE" lines after the arguments, with
 * a line "--" between. Exit status: 0, 1 when the builder refuses (its
 * message on stderr), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/topology.h"
#include "node/qemu_cmd.h"

#define MAX_LDS 64

static void usage(void)
{
    fprintf(stderr, "usage: cxl_line --rundir DIR --image-dir DIR [--qemu BIN] [--kvm]\n"
                    "                [--ld ATTACH:VPPB:MEM:LSA:SIZE]... TOPOLOGY GUEST\n");
    exit(2);
}

static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    unsigned shift = 0;
    if (*end == 'K')
        shift = 10;
    else if (*end == 'M')
        shift = 20;
    else if (*end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (errno || end == s || *end || s[0] == '-' || v > (UINT64_MAX >> shift)) {
        fprintf(stderr, "cxl_line: size '%s' is not a number\n", s);
        exit(2);
    }
    return (uint64_t)v << shift;
}

static uint32_t parse_u32(const char *what, const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > UINT32_MAX) {
        fprintf(stderr, "cxl_line: %s '%s' is not a number\n", what, s);
        exit(2);
    }
    return (uint32_t)v;
}

/* ATTACH:VPPB:MEM:LSA:SIZE, split in place (spec is argv's, ours to cut). */
static void parse_ld(char *spec, px_qemu_cxl_ld *ld)
{
    char *f[5];
    int n = 0;
    f[n++] = spec;
    for (char *p = spec; *p; p++) {
        if (*p != ':')
            continue;
        if (n == 5) {
            n++;
            break;
        }
        *p = '\0';
        f[n++] = p + 1;
    }
    if (n != 5) {
        fprintf(stderr, "cxl_line: --ld wants ATTACH:VPPB:MEM:LSA:SIZE (paths without ':')\n");
        exit(2);
    }
    ld->attach = parse_u32("attachment", f[0]);
    ld->vppb = parse_u32("vPPB", f[1]);
    ld->mem_path = f[2];
    ld->lsa_path = f[3];
    ld->size = parse_size(f[4]);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rundir", required_argument, NULL, 'r'}, {"image-dir", required_argument, NULL, 'i'},
        {"qemu", required_argument, NULL, 'q'},   {"kvm", no_argument, NULL, 'k'},
        {"ld", required_argument, NULL, 'l'},     {NULL, 0, NULL, 0},
    };
    px_qemu_cxl_ld lds[MAX_LDS];
    px_qemu_cfg cfg = {.accel = PX_TOPO_ACCEL_TCG, .cxl_lds = lds};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            cfg.rundir = optarg;
            break;
        case 'i':
            cfg.image_dir = optarg;
            break;
        case 'q':
            cfg.qemu = optarg;
            break;
        case 'k':
            cfg.accel = PX_TOPO_ACCEL_KVM;
            break;
        case 'l':
            if (cfg.n_cxl_lds == MAX_LDS) {
                fprintf(stderr, "cxl_line: more than %u --ld\n", MAX_LDS);
                return 2;
            }
            parse_ld(optarg, &lds[cfg.n_cxl_lds++]);
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 2 || !cfg.rundir || !cfg.image_dir)
        usage();

    px_topo *t = NULL;
    px_errmsg em = {{0}};
    if (px_topo_load_file(argv[optind], &t, &em) != PX_OK) {
        fprintf(stderr, "cxl_line: %s\n", em.text);
        return 1;
    }
    uint32_t g = 0;
    while (g < t->n_guests && strcmp(t->guests[g].name, argv[optind + 1]) != 0)
        g++;
    if (g == t->n_guests) {
        fprintf(stderr, "cxl_line: no guest %s in %s\n", argv[optind + 1], argv[optind]);
        px_topo_free(t);
        return 1;
    }
    px_qemu_cmd cmd;
    px_err err = px_qemu_cmd_build(t, g, &cfg, &cmd, &em);
    if (err) {
        fprintf(stderr, "cxl_line: %s\n", em.text[0] ? em.text : px_strerror(err));
        px_topo_free(t);
        return 1;
    }
    for (size_t i = 0; i < cmd.argc; i++)
        printf("%s\n", cmd.argv[i]);
    if (cmd.n_env)
        printf("--\n");
    for (size_t i = 0; i < cmd.n_env; i++)
        printf("env %s\n", cmd.env[i]);
    px_qemu_cmd_fini(&cmd);
    px_topo_free(t);
    return 0;
}
