/* plexus CLI — local mode. See local.h. */
#include "local.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/proc.h"

#define START_TIMEOUT_MS 10000
#define STOP_GRACE_MS    5000

void px_local_root(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(buf, len, "/run/plexus/local");
    else if (xdg && *xdg)
        snprintf(buf, len, "%s/plexus/local", xdg);
    else
        snprintf(buf, len, "/tmp/plexus-%u/local", (unsigned)geteuid());
}

/* Locate a sibling daemon binary: $PLEXUS_<X>_BIN, then next to this
 * executable (install), then the build tree layout, then PATH. */
static void find_bin(const char *name, const char *env, const char *build_rel, char *out,
                     size_t len)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, len, "%s", e);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, len, "%s/%s", self, name);
            if (access(out, X_OK) == 0)
                return;
            snprintf(out, len, "%s/%s", self, build_rel);
            if (access(out, X_OK) == 0)
                return;
        }
    }
    snprintf(out, len, "%s", name);
}

static bool have_netns(void)
{
    if (geteuid() != 0)
        return false;
    char *argv[] = {"ip", "netns", "list", NULL};
    return px_run(argv, NULL, 0, NULL) == PX_OK;
}

static void make_tag(const char *lab, char *tag, uint32_t *subnet)
{
    uint32_t h = 2166136261u; /* FNV-1a: stable names for the same lab */
    for (const char *p = lab; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    snprintf(tag, 8, "%06x", h & 0xffffff);
    *subnet = 1 + (h >> 24) % 250;
}

static px_err ip(px_errmsg *em, char *a0, char *a1, char *a2, char *a3, char *a4, char *a5,
                 char *a6, char *a7, char *a8, char *a9)
{
    char *argv[] = {"ip", a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, NULL};
    return px_run(argv, NULL, 0, em);
}

static px_err netns_up(px_local *l, px_errmsg *em)
{
    char br[16], addr[32];
    snprintf(br, sizeof(br), "pxb-%s", l->tag);
    snprintf(addr, sizeof(addr), "10.251.%u.1/24", l->subnet);
    px_err err = ip(em, "link", "add", br, "type", "bridge", NULL, NULL, NULL, NULL, NULL);
    if (!err)
        err = ip(em, "addr", "add", addr, "dev", br, NULL, NULL, NULL, NULL, NULL);
    if (!err)
        err = ip(em, "link", "set", br, "up", NULL, NULL, NULL, NULL, NULL, NULL);
    for (uint32_t i = 0; !err && i < l->n_hosts; i++) {
        char ns[32], veth[16], haddr[32];
        snprintf(ns, sizeof(ns), "px-%s-%u", l->tag, i + 1);
        snprintf(veth, sizeof(veth), "pxv-%s-%u", l->tag, i + 1);
        snprintf(haddr, sizeof(haddr), "10.251.%u.%u/24", l->subnet, 10 + i);
        err = ip(em, "netns", "add", ns, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        if (!err)
            err = ip(em, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
        if (!err)
            err = ip(em, "link", "set", veth, "master", br, "up", NULL, NULL, NULL, NULL);
        if (!err)
            err = ip(em, "-n", ns, "addr", "add", haddr, "dev", "eth0", NULL, NULL, NULL);
        if (!err)
            err = ip(em, "-n", ns, "link", "set", "eth0", "up", NULL, NULL, NULL, NULL);
        if (!err)
            err = ip(em, "-n", ns, "link", "set", "lo", "up", NULL, NULL, NULL, NULL);
    }
    if (err)
        px_errmsg_prefix(em, "setting up the local network (bridge %s)", br);
    return err;
}

static void netns_down(const px_local *l)
{
    char br[16];
    for (uint32_t i = 0; i < l->n_hosts; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "px-%s-%u", l->tag, i + 1);
        ip(NULL, "netns", "del", ns, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    }
    snprintf(br, sizeof(br), "pxb-%s", l->tag);
    ip(NULL, "link", "del", br, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
}

static px_err write_context(const px_local *l, px_errmsg *em)
{
    char path[4200], text[8192];
    int n = snprintf(text, sizeof(text),
                     "lab %s\nendpoint %s\ncoordinator_key %s\ntag %s\nnetns %d\nsubnet %u\n"
                     "coordinator_pid %d\n",
                     l->lab, l->target.endpoint, l->target.server_key, l->tag, l->netns, l->subnet,
                     (int)l->coord_pid);
    for (uint32_t i = 0; i < l->n_hosts && n > 0 && (size_t)n < sizeof(text); i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "node %s %d\n", l->host[i],
                      (int)l->node_pid[i]);
    snprintf(path, sizeof(path), "%s/context", l->dir);
    return px_write_file_atomic(path, text, strlen(text), 0600, em);
}

px_err px_local_load(const char *lab, px_local *l, px_errmsg *em)
{
    memset(l, 0, sizeof(*l));
    char root[4096], path[4300], *text;
    px_local_root(root, sizeof(root));
    snprintf(l->dir, sizeof(l->dir), "%s/%s", root, lab);
    snprintf(path, sizeof(path), "%s/context", l->dir);
    px_err err = px_read_file(path, 1 << 16, &text, NULL, em);
    if (err == PX_E_NOTFOUND)
        return px_errmsg_set(em, PX_E_NOTFOUND, "no local lab named %s (looked in %s)", lab, root);
    if (err)
        return err;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char k[32], v[4096];
        int pid;
        if (sscanf(line, "node %63s %d", v, &pid) == 2 && l->n_hosts < PX_LOCAL_MAX_HOSTS) {
            snprintf(l->host[l->n_hosts], sizeof(l->host[0]), "%s", v);
            l->node_pid[l->n_hosts++] = pid;
            continue;
        }
        if (sscanf(line, "%31s %4095s", k, v) != 2)
            continue;
        if (!strcmp(k, "lab"))
            snprintf(l->lab, sizeof(l->lab), "%s", v);
        else if (!strcmp(k, "endpoint"))
            snprintf(l->target.endpoint, sizeof(l->target.endpoint), "%s", v);
        else if (!strcmp(k, "coordinator_key"))
            snprintf(l->target.server_key, sizeof(l->target.server_key), "%s", v);
        else if (!strcmp(k, "tag"))
            snprintf(l->tag, sizeof(l->tag), "%s", v);
        else if (!strcmp(k, "netns"))
            l->netns = atoi(v) != 0;
        else if (!strcmp(k, "subnet"))
            l->subnet = (uint32_t)atoi(v);
        else if (!strcmp(k, "coordinator_pid"))
            l->coord_pid = atoi(v);
    }
    free(text);
    snprintf(path, sizeof(path), "%s/keys/cli.key", l->dir);
    err = px_keypair_load(path, &l->target.key, em);
    snprintf(l->target.local_dir, sizeof(l->target.local_dir), "%s", l->dir);
    snprintf(l->target.lab, sizeof(l->target.lab), "%s", l->lab);
    return err;
}

uint32_t px_local_list(char (*labs)[64], uint32_t max)
{
    char root[4096];
    px_local_root(root, sizeof(root));
    DIR *d = opendir(root);
    uint32_t n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char path[8192];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/context", root, e->d_name);
        if (access(path, R_OK) == 0)
            snprintf(labs[n++], 64, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

static bool alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    /* Reap it if it is our child and already gone. */
    waitpid(pid, NULL, WNOHANG);
    if (kill(pid, 0) != 0)
        return false;
    /* A zombie (someone else's child that has not been reaped) is gone too. */
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && rp[2] == 'Z');
}

/* TERM every daemon at once, then wait for all (KILL after the grace
 * period): shutting down in parallel keeps `plexus down` quick. */
static void stop_pids(const pid_t *pids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (alive(pids[i]))
            kill(pids[i], SIGTERM);
    uint64_t until = px_monotonic_ms() + STOP_GRACE_MS;
    for (uint32_t i = 0; i < n; i++) {
        while (alive(pids[i]) && px_monotonic_ms() < until)
            px_sleep_ms(10);
        if (alive(pids[i])) {
            kill(pids[i], SIGKILL);
            for (int k = 0; k < 200 && alive(pids[i]); k++)
                px_sleep_ms(10);
        }
    }
}

static void stop_all(const px_local *l)
{
    pid_t pids[PX_LOCAL_MAX_HOSTS + 1];
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->n_hosts; i++)
        pids[n++] = l->node_pid[i];
    pids[n++] = l->coord_pid;
    stop_pids(pids, n);
}

/* QEMU outlives a node killed with SIGKILL (guests must survive node
 * restarts later): kill what the lab's pid files still name, if it is QEMU. */
static void kill_orphan_guests(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[8192];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        size_t len = strlen(e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            kill_orphan_guests(sub);
            continue;
        }
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        char *text = NULL;
        if (px_read_file(sub, 64, &text, NULL, NULL) != PX_OK)
            continue;
        pid_t pid = (pid_t)atoi(text);
        free(text);
        char cmdpath[64], cmd[256] = "";
        snprintf(cmdpath, sizeof(cmdpath), "/proc/%d/cmdline", (int)pid);
        FILE *f = pid > 1 ? fopen(cmdpath, "r") : NULL;
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        cmd[n] = '\0';
        if (strstr(cmd, "qemu") && alive(pid)) {
            kill(pid, SIGKILL);
            for (int k = 0; k < 200 && alive(pid); k++)
                px_sleep_ms(10);
        }
    }
    closedir(d);
}

px_err px_local_stop(px_local *l, px_errmsg *em)
{
    stop_all(l);
    kill_orphan_guests(l->dir);
    if (l->netns)
        netns_down(l);
    px_rm_tree(l->dir);
    if (access(l->dir, F_OK) == 0)
        return px_errmsg_set(em, PX_E_IO, "could not remove %s", l->dir);
    return PX_OK;
}

static px_err make_key(const char *dir, const char *name, px_keypair *kp, px_errmsg *em)
{
    char path[4300];
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    px_err err = px_keypair_generate(kp, em);
    if (!err)
        err = px_keypair_save(kp, path, em);
    return err;
}

px_err px_local_start(px_local *l, const char *lab, const char (*hosts)[64], uint32_t n,
                      bool dry_run, void (*progress)(const char *line), px_errmsg *em)
{
    char root[4096], keys[4200], path[4400], line[512];
    memset(l, 0, sizeof(*l));
    if (n == 0 || n > PX_LOCAL_MAX_HOSTS)
        return px_errmsg_set(em, PX_E_CONFIG, "local mode runs 1 to %u hosts, not %u",
                             PX_LOCAL_MAX_HOSTS, n);
    snprintf(l->lab, sizeof(l->lab), "%s", lab);
    l->n_hosts = n;
    for (uint32_t i = 0; i < n; i++)
        snprintf(l->host[i], sizeof(l->host[i]), "%s", hosts[i]);
    make_tag(lab, l->tag, &l->subnet);
    px_local_root(root, sizeof(root));
    snprintf(l->dir, sizeof(l->dir), "%s/%s", root, lab);
    if (access(l->dir, F_OK) == 0)
        return px_errmsg_set(em, PX_E_EXISTS,
                             "a local lab named %s already exists (%s); run 'plexus down %s' "
                             "first",
                             lab, l->dir, lab);
    px_err err = px_mkdir_p(l->dir, 0700, em);
    if (err)
        return err;
    chmod(l->dir, 0700);
    snprintf(keys, sizeof(keys), "%s/keys", l->dir);
    err = px_mkdir_p(keys, 0700, em);
    if (err)
        goto fail;

    /* Keys: one per daemon plus the CLI; the coordinator admits the CLI
     * and the nodes. */
    px_keypair coord_kp, node_kp[PX_LOCAL_MAX_HOSTS];
    err = make_key(keys, "coordinator", &coord_kp, em);
    if (!err)
        err = make_key(keys, "cli", &l->target.key, em);
    char auth[8192];
    int alen = snprintf(auth, sizeof(auth), "%s cli\n", l->target.key.public_z85);
    for (uint32_t i = 0; !err && i < n; i++) {
        err = make_key(keys, l->host[i], &node_kp[i], em);
        alen += snprintf(auth + alen, sizeof(auth) - (size_t)alen, "%s %s\n", node_kp[i].public_z85,
                         l->host[i]);
    }
    snprintf(path, sizeof(path), "%s/authorized_keys", keys);
    if (!err)
        err = px_write_file_atomic(path, auth, (size_t)alen, 0600, em);
    if (err)
        goto fail;

    l->netns = have_netns();
    char listen[64];
    if (l->netns) {
        if (progress) {
            snprintf(line, sizeof(line),
                     "network: bridge pxb-%s, %u namespaces px-%s-1..%u on 10.251.%u.0/24", l->tag,
                     n, l->tag, n, l->subnet);
            progress(line);
        }
        err = netns_up(l, em);
        if (err)
            goto fail;
        snprintf(listen, sizeof(listen), "tcp://10.251.%u.1:*", l->subnet);
    } else {
        if (progress)
            progress("network: loopback (not root, or no 'ip netns'): all hosts on 127.0.0.1");
        snprintf(listen, sizeof(listen), "tcp://127.0.0.1:*");
    }

    char coord_bin[PATH_MAX], node_bin[PATH_MAX], state[4300], keyf[4400], log[4400];
    find_bin("plexus-coordinator", "PLEXUS_COORDINATOR_BIN", "../plexus-coordinator", coord_bin,
             sizeof(coord_bin));
    find_bin("plexus-node", "PLEXUS_NODE_BIN", "../../node/plexus-node", node_bin,
             sizeof(node_bin));
    snprintf(state, sizeof(state), "%s/coordinator", l->dir);
    snprintf(keyf, sizeof(keyf), "%s/coordinator.key", keys);
    snprintf(log, sizeof(log), "%s/coordinator.log", l->dir);
    {
        char *argv[] = {
            coord_bin, "--listen",    listen, "--key",          keyf,  "--authorized-keys",
            path,      "--state-dir", state,  "--heartbeat-ms", "500", "--log-file",
            log,       NULL};
        err = px_spawn_daemon(argv, log, &l->coord_pid, em);
        if (err)
            goto fail;
    }
    /* The coordinator writes its bound endpoint once it listens. */
    char epfile[4400], *ep = NULL;
    snprintf(epfile, sizeof(epfile), "%s/endpoint", state);
    uint64_t until = px_monotonic_ms() + START_TIMEOUT_MS;
    while (px_read_file(epfile, 256, &ep, NULL, NULL) != PX_OK) {
        if (!alive(l->coord_pid) || px_monotonic_ms() > until) {
            err = px_errmsg_set(em, PX_E_IO,
                                "the coordinator did not start; its log is %s (kept until "
                                "'plexus down %s')",
                                log, lab);
            goto fail_keep_logs;
        }
        px_sleep_ms(20);
    }
    ep[strcspn(ep, "\n")] = '\0';
    snprintf(l->target.endpoint, sizeof(l->target.endpoint), "%s", ep);
    free(ep);
    snprintf(l->target.server_key, sizeof(l->target.server_key), "%s", coord_kp.public_z85);
    if (progress) {
        snprintf(line, sizeof(line), "coordinator: %s (pid %d)", l->target.endpoint,
                 (int)l->coord_pid);
        progress(line);
    }

    for (uint32_t i = 0; i < n; i++) {
        char nkey[4400], rt[4400], nlog[4400], data[64], ns[32];
        snprintf(nkey, sizeof(nkey), "%s/%s.key", keys, l->host[i]);
        snprintf(rt, sizeof(rt), "%s/nodes/%s", l->dir, l->host[i]);
        snprintf(nlog, sizeof(nlog), "%s/node-%s.log", l->dir, l->host[i]);
        snprintf(ns, sizeof(ns), "px-%s-%u", l->tag, i + 1);
        if (l->netns)
            snprintf(data, sizeof(data), "tcp://10.251.%u.%u:*", l->subnet, 10 + i);
        else
            snprintf(data, sizeof(data), "tcp://127.0.0.1:*");
        char *nargv[24] = {node_bin,
                           "--name",
                           l->host[i],
                           "--coordinator",
                           l->target.endpoint,
                           "--coordinator-key",
                           coord_kp.public_z85,
                           "--key",
                           nkey,
                           "--data-listen",
                           data,
                           "--runtime-dir",
                           rt,
                           "--log-file",
                           nlog,
                           NULL};
        if (dry_run) {
            size_t last = 0;
            while (nargv[last])
                last++;
            nargv[last] = "--dry-run";
            nargv[last + 1] = NULL;
        }
        char *wrapped[32] = {"ip", "netns", "exec", ns};
        size_t k = 4;
        for (size_t j = 0; nargv[j] && k < 31; j++)
            wrapped[k++] = nargv[j];
        wrapped[k] = NULL;
        err = px_spawn_daemon(l->netns ? wrapped : nargv, nlog, &l->node_pid[i], em);
        if (err)
            goto fail_keep_logs;
        if (progress) {
            snprintf(line, sizeof(line), "node %s: started (pid %d%s%s)", l->host[i],
                     (int)l->node_pid[i], l->netns ? ", namespace " : "", l->netns ? ns : "");
            progress(line);
        }
    }
    snprintf(l->target.local_dir, sizeof(l->target.local_dir), "%s", l->dir);
    snprintf(l->target.lab, sizeof(l->target.lab), "%s", lab);
    err = write_context(l, em);
    if (err)
        goto fail_keep_logs;
    return PX_OK;

fail_keep_logs:
    /* Write the context anyway so 'plexus down' can clean up, keep logs. */
    write_context(l, NULL);
    stop_all(l);
    if (l->netns)
        netns_down(l);
    return err;
fail:
    px_local_stop(l, NULL);
    return err;
}
