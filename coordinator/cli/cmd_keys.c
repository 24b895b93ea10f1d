/* plexus keys: create and authorise CurveZMQ keys.
 *
 * Key store layout (one directory, mode 0700):
 *   NAME.key          "public <z85>\nsecret <z85>\n", mode 0600
 *   authorized_keys   one "<z85> NAME" line per admitted public key
 * The coordinator admits a node or CLI only if its public key is listed in
 * its authorized_keys; nodes and CLIs learn the coordinator's public key from
 * its key file. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fabric/core/fsutil.h"
#include "fabric/core/transport.h"

static const char *default_dir(char *buf, size_t n)
{
    const char *env = getenv("PLEXUS_KEYS");
    if (env && *env)
        return env;
    const char *home = getenv("HOME");
    snprintf(buf, n, "%s/.config/plexus/keys", home && *home ? home : "/root");
    return buf;
}

static bool name_ok(const char *name)
{
    if (!*name || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return name[0] != '.';
}

static int cmd_create(px_cli *cli, const char *dir, const char *name, bool force)
{
    char path[4096];
    px_errmsg em = {{0}};
    if (!name_ok(name))
        return px_cli_usage(cli, "keys", "bad key name '%s' (letters, digits, '-', '_', '.')",
                            name);
    if (px_mkdir_p(dir, 0700, &em) != PX_OK)
        return px_cli_fail(cli, "keys", "check the permissions of its parent", "%s", em.text);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    struct stat st;
    if (!force && stat(path, &st) == 0)
        return px_cli_fail(cli, "keys",
                           "use --force to replace it (peers holding the old key "
                           "will be refused)",
                           "%s already exists", path);
    px_keypair kp;
    if (px_keypair_generate(&kp, &em) != PX_OK || px_keypair_save(&kp, path, &em) != PX_OK)
        return px_cli_fail(cli, "keys", NULL, "%s", em.text);
    if (cli->json) {
        printf("{\"name\":");
        px_cli_json_str(stdout, name);
        printf(",\"path\":");
        px_cli_json_str(stdout, path);
        printf(",\"public\":\"%s\"}\n", kp.public_z85);
    } else {
        printf("created %s\npublic key: %s\n", path, kp.public_z85);
    }
    return PX_EXIT_OK;
}

static int cmd_show(px_cli *cli, const char *dir, const char *name)
{
    char path[4096];
    px_errmsg em = {{0}};
    px_keypair kp;
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    if (px_keypair_load(path, &kp, &em) != PX_OK)
        return px_cli_fail(cli, "keys", "create it with 'plexus keys create NAME'", "%s", em.text);
    if (cli->json)
        printf("{\"name\":\"%s\",\"public\":\"%s\"}\n", name, kp.public_z85);
    else
        printf("%s\n", kp.public_z85);
    return PX_EXIT_OK;
}

/* KEY is a Z85 public key or the name of a key in the store. */
static int cmd_authorize(px_cli *cli, const char *dir, const char *key, const char *label)
{
    char path[4096], pub[PX_KEY_Z85_LEN + 1];
    px_errmsg em = {{0}};
    if (px_key_valid(key)) {
        snprintf(pub, sizeof(pub), "%s", key);
    } else {
        px_keypair kp;
        snprintf(path, sizeof(path), "%s/%s.key", dir, key);
        if (px_keypair_load(path, &kp, &em) != PX_OK)
            return px_cli_fail(cli, "keys",
                               "give a 40-character Z85 public key or the name of a stored key",
                               "'%s' is neither a public key nor a stored key: %s", key, em.text);
        snprintf(pub, sizeof(pub), "%s", kp.public_z85);
        if (!label)
            label = key;
    }
    if (px_mkdir_p(dir, 0700, &em) != PX_OK)
        return px_cli_fail(cli, "keys", NULL, "%s", em.text);
    snprintf(path, sizeof(path), "%s/authorized_keys", dir);
    FILE *f = fopen(path, "a+");
    if (!f)
        return px_cli_fail(cli, "keys", NULL, "cannot open %s: %s", path, strerror(errno));
    char line[512];
    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, pub, PX_KEY_Z85_LEN) == 0) {
            fclose(f);
            if (!cli->json)
                printf("already authorised: %s\n", pub);
            else
                printf("{\"public\":\"%s\",\"added\":false}\n", pub);
            return PX_EXIT_OK;
        }
    }
    fprintf(f, "%s %s\n", pub, label ? label : "-");
    if (fclose(f) != 0)
        return px_cli_fail(cli, "keys", NULL, "cannot write %s: %s", path, strerror(errno));
    chmod(path, 0600);
    if (cli->json)
        printf("{\"public\":\"%s\",\"added\":true}\n", pub);
    else
        printf("authorised %s in %s\n", pub, path);
    return PX_EXIT_OK;
}

static int run(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"label", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    char buf[4096];
    const char *dir = default_dir(buf, sizeof(buf));
    const char *label = NULL;
    bool force = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:fl:", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'l':
            label = optarg;
            break;
        default:
            return px_cli_usage(cli, "keys", "bad option");
        }
    }
    if (optind + 2 != argc)
        return px_cli_usage(cli, "keys", "expected an action and one argument");
    const char *action = argv[optind], *arg = argv[optind + 1];
    if (strcmp(action, "create") == 0)
        return cmd_create(cli, dir, arg, force);
    if (strcmp(action, "show") == 0)
        return cmd_show(cli, dir, arg);
    if (strcmp(action, "authorize") == 0 || strcmp(action, "authorise") == 0)
        return cmd_authorize(cli, dir, arg, label);
    return px_cli_usage(cli, "keys", "unknown action '%s'", action);
}

const px_cli_cmd px_cmd_keys = {
    .name = "keys",
    .summary = "create, show and authorise CurveZMQ keys",
    .help = "usage: plexus [--json] keys [--dir DIR] create NAME [--force]\n"
            "       plexus [--json] keys [--dir DIR] show NAME\n"
            "       plexus [--json] keys [--dir DIR] authorize KEY|NAME [--label TEXT]\n"
            "\n"
            "Every plexus socket is authenticated with CurveZMQ. A coordinator admits a\n"
            "node or CLI only when that peer's public key is in its authorized_keys.\n"
            "\n"
            "actions:\n"
            "  create NAME      make a key pair in DIR/NAME.key (mode 0600)\n"
            "  show NAME        print the public key of DIR/NAME.key\n"
            "  authorize KEY    add a public key (40 Z85 characters, or the name of a\n"
            "                   stored key) to DIR/authorized_keys\n"
            "\n"
            "options:\n"
            "  --dir DIR        key store (default $PLEXUS_KEYS, else ~/.config/plexus/keys)\n"
            "  --force          create: replace an existing key\n"
            "  --label TEXT     authorize: the name written beside the key\n"
            "\n"
            "examples:\n"
            "  plexus keys create coordinator\n"
            "  plexus keys create node-a && plexus keys authorize node-a\n",
    .run = run,
};
