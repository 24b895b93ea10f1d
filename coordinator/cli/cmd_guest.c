/* plexus logs / plexus console: a guest's serial console, local labs.
 *
 * The node keeps, in the lab's runtime directory, NAME.log (everything the
 * console printed) and NAME.console, a relative symlink to the console's
 * UNIX socket. For a lab started with --local these directories are under
 * the local lab directory, which is where these commands look. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "local.h"

/* Find DIR such that DIR/GUEST.log exists under LOCAL/LAB/nodes/NODE/LAB. */
static bool find_guest_dir(const char *lab_filter, const char *guest, char *dir, size_t len,
                           char *host, size_t hlen)
{
    char labs[16][64], root[4096];
    uint32_t n = px_local_list(labs, 16);
    px_local_root(root, sizeof(root));
    for (uint32_t i = 0; i < n; i++) {
        if (lab_filter && strcmp(lab_filter, labs[i]) != 0)
            continue;
        char nodes[8192];
        snprintf(nodes, sizeof(nodes), "%s/%s/nodes", root, labs[i]);
        DIR *d = opendir(nodes);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char log[16384];
            snprintf(dir, len, "%s/%s/%s", nodes, e->d_name, labs[i]);
            snprintf(log, sizeof(log), "%s/%s.log", dir, guest);
            if (access(log, R_OK) == 0) {
                snprintf(host, hlen, "%s", e->d_name);
                closedir(d);
                return true;
            }
        }
        closedir(d);
    }
    return false;
}

static int run_logs(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"lab", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    bool follow = false;
    const char *lab = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "fl:", opts, NULL)) != -1) {
        if (c == 'f')
            follow = true;
        else if (c == 'l')
            lab = optarg;
        else
            return px_cli_usage(cli, "logs", "bad option");
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "logs", "expected one GUEST");
    const char *guest = argv[optind];
    char dir[8192], host[64], path[8300];
    if (!find_guest_dir(lab, guest, dir, sizeof(dir), host, sizeof(host)))
        return px_cli_fail(cli, "logs", "'plexus status' lists the guests of local labs",
                           "no console log for guest %s in any local lab", guest);
    snprintf(path, sizeof(path), "%s/%s.log", dir, guest);
    FILE *f = fopen(path, "r");
    if (!f)
        return px_cli_fail(cli, "logs", NULL, "cannot open %s: %s", path, strerror(errno));
    char buf[65536];
    for (;;) {
        size_t n = fread(buf, 1, sizeof(buf), f);
        if (n > 0) {
            fwrite(buf, 1, n, stdout);
            fflush(stdout);
            continue;
        }
        if (!follow || access(path, R_OK) != 0)
            break; /* the lab went down: the log went with it */
        clearerr(f);
        usleep(200 * 1000);
    }
    fclose(f);
    return PX_EXIT_OK;
}

static int run_console(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"lab", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    const char *lab = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
        if (c == 'l')
            lab = optarg;
        else
            return px_cli_usage(cli, "console", "bad option");
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "console", "expected one GUEST");
    const char *guest = argv[optind];
    char dir[8192], host[64], link[128], target[64];
    if (!find_guest_dir(lab, guest, dir, sizeof(dir), host, sizeof(host)))
        return px_cli_fail(cli, "console", "'plexus status' lists the guests of local labs",
                           "guest %s is not in any local lab", guest);
    /* Relative connect from inside the directory: no sun_path limit on it. */
    if (chdir(dir) != 0)
        return px_cli_fail(cli, "console", NULL, "cannot enter %s: %s", dir, strerror(errno));
    snprintf(link, sizeof(link), "%s.console", guest);
    ssize_t tl = readlink(link, target, sizeof(target) - 1);
    if (tl <= 0)
        return px_cli_fail(cli, "console", "is the guest running? 'plexus status'",
                           "guest %s has no console socket", guest);
    target[tl] = '\0';
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", target);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return px_cli_fail(cli, "console", "one console client at a time; is the guest running?",
                           "cannot connect to %s's console: %s", guest, strerror(errno));
    fprintf(stderr, "connected to %s on %s; escape with Ctrl-]\r\n", guest, host);
    struct termios old, raw;
    bool tty = tcgetattr(0, &old) == 0;
    if (tty) {
        raw = old;
        cfmakeraw(&raw);
        tcsetattr(0, TCSANOW, &raw);
    }
    struct pollfd pf[2] = {{0, POLLIN, 0}, {s, POLLIN, 0}};
    char buf[4096];
    int rc = PX_EXIT_OK;
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents) {
            ssize_t n = read(s, buf, sizeof(buf));
            if (n <= 0)
                break; /* QEMU went away */
            if (write(1, buf, (size_t)n) < 0)
                break;
        }
        if (pf[0].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n <= 0)
                break;
            char *esc = memchr(buf, 0x1d, (size_t)n); /* Ctrl-] */
            if (esc)
                n = esc - buf;
            if (n > 0 && write(s, buf, (size_t)n) < 0)
                break;
            if (esc)
                break;
        }
    }
    if (tty)
        tcsetattr(0, TCSANOW, &old);
    close(s);
    fprintf(stderr, "\ndisconnected from %s\n", guest);
    return rc;
}

const px_cli_cmd px_cmd_logs = {
    .name = "logs",
    .summary = "print a guest's serial console log (local labs)",
    .help = "usage: plexus logs GUEST [--lab LAB] [--follow]\n"
            "\n"
            "Print everything GUEST's serial console has printed since it started (the\n"
            "node keeps it in NAME.log in the lab's runtime directory). With --follow,\n"
            "keep printing as more arrives, until the lab goes down or Ctrl-C.\n"
            "Works for labs started with 'plexus up --local'.\n"
            "\n"
            "options:\n"
            "  --lab LAB     look only in this local lab\n"
            "  -f, --follow  keep printing new output\n",
    .run = run_logs,
};

const px_cli_cmd px_cmd_console = {
    .name = "console",
    .summary = "attach to a guest's serial console (local labs; Ctrl-] leaves)",
    .help = "usage: plexus console GUEST [--lab LAB]\n"
            "\n"
            "Connect this terminal to GUEST's serial console (ttyS0), like\n"
            "'virsh console'. Ctrl-] disconnects; the guest keeps running. One client\n"
            "at a time. Everything printed is also kept for 'plexus logs'.\n"
            "Works for labs started with 'plexus up --local'.\n",
    .run = run_console,
};
