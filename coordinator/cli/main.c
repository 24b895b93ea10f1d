/* plexus — command-line front end. See cli.h for the subcommand contract. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "local.h"
#include "fabric/core/log.h"

static const px_cli_cmd *const commands[] = {
    /* clang-format off */
    &px_cmd_validate, &px_cmd_plan, &px_cmd_graph,
    &px_cmd_up, &px_cmd_down, &px_cmd_status, &px_cmd_nodes,
    &px_cmd_logs, &px_cmd_console, &px_cmd_can, &px_cmd_link, &px_cmd_capture,
    &px_cmd_ivshmem, &px_cmd_cxl,
    &px_cmd_keys, &px_cmd_version,
    /* clang-format on */
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

int px_cli_fail(const px_cli *cli, const char *cmd, const char *hint, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: %s: ", cli->prog, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hint)
        fprintf(stderr, "hint: %s\n", hint);
    return PX_EXIT_FAIL;
}

int px_cli_usage(const px_cli *cli, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: %s: ", cli->prog, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry '%s %s --help'\n", cli->prog, cmd);
    return PX_EXIT_USAGE;
}

bool px_cli_wants_help(const px_cli_cmd *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(cmd->help, stdout);
            return true;
        }
    }
    return false;
}

void px_cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

int px_cli_target(const px_cli *cli, const char *cmd, const char *lab, px_ctl_target *t)
{
    px_errmsg em = {{0}};
    px_err err = px_ctl_target_from_env(cli->coordinator, cli->coordinator_key, cli->key, t, &em);
    if (err == PX_OK)
        return PX_EXIT_OK;
    if (err != PX_E_NOTFOUND)
        return px_cli_fail(cli, cmd, NULL, "%s", em.text);
    char labs[16][64];
    const char *name = lab;
    if (!name) {
        uint32_t n = px_local_list(labs, 16);
        if (n == 0)
            return px_cli_fail(cli, cmd,
                               "start a lab with 'plexus up FILE --local', or name a "
                               "coordinator with --coordinator and --coordinator-key",
                               "no coordinator: none given and no local lab is running");
        if (n > 1)
            return px_cli_fail(cli, cmd, "name the lab", "%u local labs are running", n);
        name = labs[0];
    }
    px_local l;
    err = px_local_load(name, &l, &em);
    if (err)
        return px_cli_fail(cli, cmd, "'plexus status' lists what runs", "%s", em.text);
    *t = l.target;
    return PX_EXIT_OK;
}

static void print_main_help(FILE *f)
{
    fputs("usage: plexus [--json] [--log-level LEVEL] COMMAND [ARGS...]\n"
          "\n"
          "plexus runs labs of emulated machines (stock QEMU guests) joined by virtual\n"
          "CAN buses, Ethernet segments, ivshmem regions and CXL switches across hosts.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n"
          "global options:\n"
          "  --json              machine-readable output (status-like commands)\n"
          "  --log-level LEVEL   debug | info | warn | error | off (default warn)\n"
          "  --coordinator EP    coordinator endpoint (else $PLEXUS_COORDINATOR, else\n"
          "                      the local lab started with 'plexus up --local')\n"
          "  --coordinator-key K its public key or key file ($PLEXUS_COORDINATOR_KEY)\n"
          "  --key FILE          this CLI's key pair ($PLEXUS_KEY, else\n"
          "                      ~/.config/plexus/keys/cli.key)\n"
          "  -h, --help          this text; 'plexus COMMAND --help' for a command\n"
          "\n"
          "exit status: 0 success, 1 the operation failed, 2 bad usage.\n",
          f);
}

int main(int argc, char **argv)
{
    px_cli cli = {.json = false, .prog = "plexus"};
    px_log_level level = PX_LOG_WARN;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            cli.json = true;
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            if (px_log_level_parse(argv[++i], &level) != PX_OK)
                return px_cli_usage(&cli, "--log-level", "unknown level '%s'", argv[i]);
        } else if (strcmp(argv[i], "--coordinator") == 0 && i + 1 < argc) {
            cli.coordinator = argv[++i];
        } else if (strcmp(argv[i], "--coordinator-key") == 0 && i + 1 < argc) {
            cli.coordinator_key = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            cli.key = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_main_help(stdout);
            return PX_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            return px_cmd_version.run(&cli, 1, argv);
        } else {
            fprintf(stderr, "plexus: unknown option '%s'\ntry 'plexus --help'\n", argv[i]);
            return PX_EXIT_USAGE;
        }
    }
    px_log_setup(level, NULL, NULL);
    if (i >= argc) {
        print_main_help(stderr);
        return PX_EXIT_USAGE;
    }
    for (size_t c = 0; c < N_COMMANDS; c++) {
        if (strcmp(argv[i], commands[c]->name) == 0) {
            if (!commands[c]->own_help && px_cli_wants_help(commands[c], argc - i, argv + i))
                return PX_EXIT_OK;
            return commands[c]->run(&cli, argc - i, argv + i);
        }
    }
    fprintf(stderr, "plexus: unknown command '%s'\ntry 'plexus --help' for the list\n", argv[i]);
    return PX_EXIT_USAGE;
}
