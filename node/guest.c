/* plexus-node guest supervisor. See guest.h. */
#include "guest.h"

extern char **environ;

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "fabric/core/log.h"

#define QMP_TIMEOUT_MS 15000u
#define BACKOFF_MIN_MS 1000u
#define BACKOFF_MAX_MS 30000u
#define STABLE_MS      60000u
#define KILL_GRACE_MS  2000u
#define CMDLINE_MAX    65536u /* bytes of /proc/PID/cmdline read when adopting */

struct px_guest {
    uv_loop_t *loop;
    char name[PX_TOPO_NAME_MAX];
    px_topo_restart restart;
    px_qemu_cmd cmd;
    char qemu_log[4200]; /* QEMU's own stderr */
    uint32_t stop_timeout_ms;
    px_guest_state state;
    char detail[256];
    uv_process_t proc;
    bool proc_alive; /* a QEMU we supervise runs: our child, or an adopted one */
    bool adopted;    /* that QEMU was left by an earlier node run: not our child */
    int adopted_pid;
    int pidfd;           /* adopted: watched by pidpoll; closed with it */
    uv_poll_t pidpoll;   /* adopted: readable once that QEMU has exited */
    bool guest_poweroff; /* SHUTDOWN "guest-shutdown" seen: how an adopted QEMU's exit is told */
    bool has_can;        /* CAN controllers (LD_PRELOAD shim): not reconnected on adoption */
    px_qmp *qmp;
    uv_timer_t timer; /* restart back-off, or the kill deadline while stopping */
    uint32_t backoff_ms;
    uint32_t restarts;
    uint64_t started_ms;
    bool want_stop; /* stop requested: no restart */
    bool closing;
    unsigned open_handles;
    unsigned qmp_closing; /* QMP clients whose close has not completed */
    px_guest_change_cb on_change;
    px_guest_closed_cb on_closed;
    void *ud, *closed_ud;
};

const char *px_guest_state_str(px_guest_state s)
{
    static const char *const names[] = {"defined",  "starting", "running",
                                        "stopping", "stopped",  "failed"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static void set_state(px_guest *g, px_guest_state s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_state(px_guest *g, px_guest_state s, const char *fmt, ...)
{
    g->state = s;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->detail, sizeof(g->detail), fmt, ap);
        va_end(ap);
    } else {
        g->detail[0] = '\0';
    }
    PX_INFO("guest", "state", "guest=%s state=%s detail=\"%s\"", g->name, px_guest_state_str(s),
            g->detail);
    if (g->on_change && !g->closing)
        g->on_change(g, g->ud);
}

/* Last line QEMU wrote to stderr: the reason it gave for exiting. */
static void last_words(const px_guest *g, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(g->qemu_log, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(buf, len, "%s", line);
    }
    fclose(f);
}

static void maybe_finish_close(px_guest *g)
{
    if (g->closing && g->open_handles == 0 && !g->qmp && g->qmp_closing == 0) {
        if (g->on_closed)
            g->on_closed(g, g->closed_ud);
        px_qemu_cmd_fini(&g->cmd);
        free(g);
    }
}

static void handle_closed(uv_handle_t *h)
{
    px_guest *g = h->data;
    g->open_handles--;
    maybe_finish_close(g);
}

static void qmp_closed(px_qmp *q, void *ud)
{
    (void)q;
    px_guest *g = ud;
    g->qmp_closing--;
    maybe_finish_close(g);
}

/* A restart may create the next client before this one finished closing:
 * forget it now, count it until its close completes. */
static void drop_qmp(px_guest *g)
{
    if (g->qmp) {
        px_qmp *q = g->qmp;
        g->qmp = NULL;
        g->qmp_closing++;
        px_qmp_close(q, qmp_closed, g);
    }
}

/* Signal the QEMU we supervise: through libuv for our child, through the
 * pidfd for an adopted one (a pid alone could have been reused by then). */
static void qemu_signal(px_guest *g, int sig)
{
    if (!g->proc_alive)
        return;
    if (!g->adopted)
        uv_process_kill(&g->proc, sig);
    else if (pidfd_send_signal(g->pidfd, sig, NULL, 0) != 0)
        PX_WARN("guest", "cannot signal the adopted QEMU", "guest=%s pid=%d signal=%d err=\"%s\"",
                g->name, g->adopted_pid, sig, strerror(errno));
}

static void restart_timer(uv_timer_t *t);

/* QEMU has gone. known: status and signum are its exit status (our child);
 * an adopted QEMU's status cannot be had, so its SHUTDOWN event tells a
 * power-off from a failure. */
static void qemu_gone(px_guest *g, bool known, int64_t status, int signum)
{
    g->proc_alive = false;
    uv_timer_stop(&g->timer);
    drop_qmp(g);
    if (g->closing)
        return;
    uint64_t now = uv_now(g->loop);
    uint64_t ran = now > g->started_ms ? now - g->started_ms : 0;
    if (g->want_stop) {
        set_state(g, PX_GUEST_STOPPED, NULL);
        return;
    }
    char why[300];
    last_words(g, why, sizeof(why));
    bool clean = known ? signum == 0 && status == 0 : g->guest_poweroff; /* the guest powered off */
    if (clean)
        set_state(g, PX_GUEST_STOPPED, "the guest powered off");
    else if (!known)
        set_state(g, PX_GUEST_FAILED,
                  "adopted QEMU (pid %d) exited after %.1f s; exit status unknown%s%s",
                  g->adopted_pid, (double)ran / 1000.0, why[0] ? ": " : "", why);
    else if (signum)
        set_state(g, PX_GUEST_FAILED, "QEMU killed by signal %d after %.1f s%s%s", signum,
                  (double)ran / 1000.0, why[0] ? ": " : "", why);
    else
        set_state(g, PX_GUEST_FAILED, "QEMU exited with status %lld after %.1f s%s%s",
                  (long long)status, (double)ran / 1000.0, why[0] ? ": " : "", why);
    bool again = g->restart == PX_TOPO_RESTART_ALWAYS ||
                 (g->restart == PX_TOPO_RESTART_ON_FAILURE && !clean);
    if (!again)
        return;
    if (ran >= STABLE_MS)
        g->backoff_ms = BACKOFF_MIN_MS;
    PX_INFO("guest", "restart scheduled", "guest=%s in_ms=%u restarts=%u", g->name, g->backoff_ms,
            g->restarts);
    uv_timer_start(&g->timer, restart_timer, g->backoff_ms, 0);
    g->backoff_ms = g->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : g->backoff_ms * 2;
}

static void on_qemu_exit(uv_process_t *p, int64_t status, int signum)
{
    px_guest *g = p->data;
    uv_close((uv_handle_t *)&g->proc, handle_closed);
    qemu_gone(g, true, status, signum);
}

static void pidpoll_closed(uv_handle_t *h)
{
    px_guest *g = h->data;
    close(g->pidfd);
    g->pidfd = -1;
    handle_closed(h);
}

/* The adopted QEMU's pidfd became readable: it has exited. */
static void on_pidfd(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    px_guest *g = h->data;
    uv_close((uv_handle_t *)&g->pidpoll, pidpoll_closed);
    qemu_gone(g, false, 0, 0);
}

static void restart_timer(uv_timer_t *t)
{
    px_guest *g = t->data;
    if (g->closing || g->want_stop)
        return;
    g->restarts++;
    px_guest_start(g);
}

static void kill_timer(uv_timer_t *t)
{
    px_guest *g = t->data;
    if (g->proc_alive) {
        PX_WARN("guest", "QEMU did not quit; killing it", "guest=%s pid=%d", g->name,
                px_guest_pid(g));
        qemu_signal(g, SIGKILL);
    }
}

static void set_running(px_guest *g)
{
    if (!g->adopted) {
        set_state(g, PX_GUEST_RUNNING, NULL);
        return;
    }
    set_state(g, PX_GUEST_RUNNING, "QEMU pid %d adopted after a node restart%s", g->adopted_pid,
              g->has_can ? "; CAN controllers disconnected until it restarts" : "");
}

static void on_cont(px_qmp *q, px_err err, json_t *result, const px_errmsg *em, void *ud)
{
    (void)q;
    (void)result;
    px_guest *g = ud;
    if (g->state != PX_GUEST_STARTING)
        return;
    if (err) {
        set_state(g, PX_GUEST_STARTING, "cont refused: %s", em->text);
        qemu_signal(g, SIGKILL);
        return;
    }
    set_running(g);
}

/* An adopted QEMU normally runs already; one the earlier node run had not
 * let go yet (still paused by -S) gets its `cont` now. */
static void on_adopted_status(px_qmp *q, px_err err, const px_qmp_status *st, const px_errmsg *em,
                              void *ud)
{
    px_guest *g = ud;
    if (g->state != PX_GUEST_STARTING)
        return;
    if (err) {
        set_state(g, PX_GUEST_STARTING, "query-status refused: %s", em->text);
        qemu_signal(g, SIGKILL);
        return;
    }
    if (st->running) {
        set_running(g);
        return;
    }
    PX_INFO("guest", "adopted QEMU is not running; continuing it", "guest=%s status=%s", g->name,
            st->status);
    if (px_qmp_command(q, "cont", NULL, on_cont, g) != PX_OK)
        qemu_signal(g, SIGKILL);
}

static void on_qmp_ready(px_qmp *q, void *ud)
{
    px_guest *g = ud;
    px_err err;
    if (g->adopted)
        err = px_qmp_query_status(q, on_adopted_status, g);
    else /* Endpoints are wired by the time QEMU is started; let the vCPUs run. */
        err = px_qmp_command(q, "cont", NULL, on_cont, g);
    if (err != PX_OK)
        qemu_signal(g, SIGKILL);
}

static void on_qmp_event(px_qmp *q, const px_qmp_event *ev, void *ud)
{
    (void)q;
    px_guest *g = ud;
    PX_DEBUG("guest", "qmp event", "guest=%s event=%s reason=%s", g->name, ev->name, ev->reason);
    if (ev->kind == PX_QMP_EV_SHUTDOWN)
        g->guest_poweroff = strcmp(ev->reason, "guest-shutdown") == 0;
}

static void on_qmp_lost(px_qmp *q, px_err why, const px_errmsg *em, void *ud)
{
    (void)q;
    px_guest *g = ud;
    /* QEMU exiting closes the socket; on_qemu_exit reports that. Anything else
     * while QEMU lives means we cannot control it: kill it so the restart
     * policy applies instead of leaving an unmanaged guest. */
    if (g->proc_alive && why != PX_E_CLOSED) {
        PX_WARN("guest", "QMP lost; killing QEMU", "guest=%s err=%s detail=\"%s\"", g->name,
                px_errname(why), em ? em->text : "");
        qemu_signal(g, SIGKILL);
    }
}

/* QEMU runs (spawned or adopted): link the console socket by name and
 * connect QMP; on_qmp_ready takes it from there. */
static void connect_qemu(px_guest *g)
{
    /* `plexus console NAME` finds the index-named socket through this link
     * (relative, so the full path never has to fit in sun_path). */
    char link_path[4300];
    const char *base = strrchr(g->cmd.console_path, '/');
    snprintf(link_path, sizeof(link_path), "%.*s/%s.console", (int)(base - g->cmd.console_path),
             g->cmd.console_path, g->name);
    unlink(link_path);
    if (symlink(base + 1, link_path) != 0)
        PX_WARN("guest", "cannot link the console socket", "guest=%s path=%s", g->name, link_path);
    px_errmsg em = {{0}};
    px_qmp_opts qo = {
        .on_ready = on_qmp_ready, .on_event = on_qmp_event, .on_lost = on_qmp_lost, .ud = g};
    if (px_qmp_new(g->loop, &qo, &g->qmp, &em) != PX_OK ||
        px_qmp_connect(g->qmp, g->cmd.qmp_path, QMP_TIMEOUT_MS, &em) != PX_OK) {
        PX_ERROR("guest", "cannot start QMP", "guest=%s detail=\"%s\"", g->name, em.text);
        qemu_signal(g, SIGKILL);
    }
}

px_err px_guest_start(px_guest *g)
{
    if (g->closing || g->proc_alive ||
        !(g->state == PX_GUEST_DEFINED || g->state == PX_GUEST_STOPPED ||
          g->state == PX_GUEST_FAILED))
        return PX_E_INVAL;
    g->want_stop = false;
    g->adopted = false;
    g->guest_poweroff = false;
    /* Fresh files each start: a stale socket would be refused by QEMU. */
    unlink(g->cmd.qmp_path);
    unlink(g->cmd.console_path);
    int fd = open(g->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = fd},
        {.flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = fd},
    };
    /* The node's environment plus what the command line needs (the CAN
     * shim); a variable the command sets replaces the node's own. */
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = calloc(n_env + g->cmd.n_env + 1, sizeof(*envp));
    size_t k = 0;
    for (size_t i = 0; envp && i < n_env; i++) {
        bool replaced = false;
        for (size_t j = 0; j < g->cmd.n_env && !replaced; j++) {
            size_t nl = strcspn(g->cmd.env[j], "=");
            replaced = strncmp(environ[i], g->cmd.env[j], nl + 1) == 0;
        }
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; envp && j < g->cmd.n_env; j++)
        envp[k++] = g->cmd.env[j];
    /* Detached: QEMU gets a session of its own, so signals for the node's
     * process group (a terminal's Ctrl-C or hang-up) do not reach it and it
     * outlives a node that dies (docs/guests.md "Node restarts"). libuv
     * still reaps it and calls exit_cb. */
    uv_process_options_t po = {.exit_cb = on_qemu_exit,
                               .file = g->cmd.argv[0],
                               .args = g->cmd.argv,
                               .env = g->cmd.n_env ? envp : NULL,
                               .flags = UV_PROCESS_DETACHED,
                               .stdio_count = 3,
                               .stdio = stdio};
    g->proc.data = g;
    int rc = uv_spawn(g->loop, &g->proc, &po);
    free(envp);
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        /* uv_spawn leaves the handle initialised; it must be closed. */
        g->open_handles++;
        uv_close((uv_handle_t *)&g->proc, handle_closed);
        set_state(g, PX_GUEST_FAILED, "cannot start %s: %s", g->cmd.argv[0], uv_strerror(rc));
        return PX_OK;
    }
    g->open_handles++;
    g->proc_alive = true;
    g->started_ms = uv_now(g->loop);
    connect_qemu(g);
    PX_INFO("guest", "QEMU started", "guest=%s pid=%d", g->name, g->proc.pid);
    if (g->restarts)
        set_state(g, PX_GUEST_STARTING, "restart %u", g->restarts);
    else
        set_state(g, PX_GUEST_STARTING, NULL);
    return PX_OK;
}

static void on_stopped(px_qmp *q, px_err err, bool graceful, const px_errmsg *em, void *ud)
{
    (void)q;
    px_guest *g = ud;
    PX_INFO("guest", "stop", "guest=%s graceful=%d err=%s detail=\"%s\"", g->name, graceful,
            px_errname(err), em ? em->text : "");
}

void px_guest_stop(px_guest *g)
{
    if (!g->proc_alive) {
        uv_timer_stop(&g->timer); /* a pending restart is cancelled */
        g->want_stop = true;
        if (g->state != PX_GUEST_STOPPED && g->state != PX_GUEST_DEFINED)
            set_state(g, PX_GUEST_STOPPED, NULL);
        return;
    }
    if (g->want_stop)
        return;
    g->want_stop = true;
    set_state(g, PX_GUEST_STOPPING, NULL);
    if (!g->qmp || !px_qmp_ready(g->qmp) ||
        px_qmp_powerdown_then_quit(g->qmp, g->stop_timeout_ms, on_stopped, g) != PX_OK)
        qemu_signal(g, SIGTERM);
    uv_timer_start(&g->timer, kill_timer, g->stop_timeout_ms + KILL_GRACE_MS, 0);
}

/* ---- adoption: a QEMU left running by an earlier run of this node ---- */

/* The pid QEMU wrote to its -pidfile, 0 if none. */
static int read_pidfile(const char *path)
{
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 1 && pid < (1L << 22) && (*end == '\n' || *end == '\0') ? (int)pid : 0;
}

/* The process is alive (not a zombie); *age_ms is how long it has run. */
static bool proc_live(int pid, uint64_t *age_ms)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* comm may hold anything, ")" too: the fields start after the last one. */
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
        return false;
    *age_ms = 0;
    unsigned long long start_ticks = 0;
    double uptime = 0;
    /* Field 22 (starttime) is the 20th after the state (field 3). */
    const char *p = rp + 2;
    for (int i = 0; i < 19 && p; i++) {
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
    FILE *f = fopen("/proc/uptime", "re");
    long hz = sysconf(_SC_CLK_TCK);
    if (p && f && hz > 0 && sscanf(p, "%llu", &start_ticks) == 1 &&
        fscanf(f, "%lf", &uptime) == 1) {
        double age = uptime * 1000.0 - (double)start_ticks * 1000.0 / (double)hz;
        *age_ms = age > 0 ? (uint64_t)age : 0;
    }
    if (f)
        fclose(f);
    return true;
}

/* pid's command line is this guest's: it holds the argument that gives
 * QEMU this guest's QMP socket (a path unique to the lab and the guest).
 * *same tells whether it is the very command line this node would run. */
static bool proc_is_this_qemu(const px_guest *g, int pid, bool *same)
{
    const char *qmp_arg = NULL;
    for (size_t i = 0; i + 1 < g->cmd.argc; i++)
        if (strcmp(g->cmd.argv[i], "-qmp") == 0)
            qmp_arg = g->cmd.argv[i + 1];
    if (!qmp_arg)
        return false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char *buf = malloc(CMDLINE_MAX + 1);
    size_t len = 0;
    ssize_t n = 1;
    while (buf && len < CMDLINE_MAX && (n = read(fd, buf + len, CMDLINE_MAX - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (!buf || n < 0 || len == 0 || len == CMDLINE_MAX) {
        free(buf);
        return false;
    }
    buf[len] = '\0';
    bool found = false;
    size_t argc = 0;
    *same = true;
    for (size_t off = 0; off < len; off += strlen(buf + off) + 1, argc++) {
        found = found || strcmp(buf + off, qmp_arg) == 0;
        *same = *same && argc < g->cmd.argc && strcmp(buf + off, g->cmd.argv[argc]) == 0;
    }
    *same = *same && argc == g->cmd.argc;
    free(buf);
    return found;
}

px_err px_guest_adopt(px_guest *g)
{
    if (g->closing || g->proc_alive || g->state != PX_GUEST_DEFINED)
        return PX_E_INVAL;
    int pid = read_pidfile(g->cmd.pid_path);
    if (!pid)
        return PX_E_NOTFOUND;
    /* Checked after the pidfd is open: the pidfd pins the process, so a pid
     * reused since QEMU wrote it fails the command-line check instead. */
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0)
        return PX_E_NOTFOUND;
    uint64_t age_ms = 0;
    bool same = false;
    if (!proc_live(pid, &age_ms) || !proc_is_this_qemu(g, pid, &same)) {
        close(pidfd);
        return PX_E_NOTFOUND;
    }
    int rc = uv_poll_init(g->loop, &g->pidpoll, pidfd);
    if (rc == 0) {
        g->pidpoll.data = g;
        rc = uv_poll_start(&g->pidpoll, UV_READABLE, on_pidfd);
        g->pidfd = pidfd;
        g->open_handles++;
        if (rc != 0)
            uv_close((uv_handle_t *)&g->pidpoll, pidpoll_closed);
    } else {
        close(pidfd);
    }
    if (rc != 0) {
        /* It cannot be watched, so it cannot be supervised: leave it be and
         * say so rather than start a second QEMU on the same sockets. */
        set_state(g, PX_GUEST_FAILED, "cannot watch the running QEMU (pid %d): %s", pid,
                  uv_strerror(rc));
        return PX_OK;
    }
    if (!same)
        PX_WARN("guest", "adopting a QEMU whose command line differs from this node's",
                "guest=%s pid=%d hint=\"the change applies when the guest restarts\"", g->name,
                pid);
    g->want_stop = false;
    g->adopted = true;
    g->adopted_pid = pid;
    g->proc_alive = true;
    g->guest_poweroff = false;
    uint64_t now = uv_now(g->loop);
    g->started_ms = now > age_ms ? now - age_ms : 0;
    connect_qemu(g);
    PX_INFO("guest", "QEMU adopted", "guest=%s pid=%d age_s=%.1f", g->name, pid,
            (double)age_ms / 1000.0);
    set_state(g, PX_GUEST_STARTING, "adopting QEMU pid %d left running by an earlier node run",
              pid);
    return PX_OK;
}

px_err px_guest_new(uv_loop_t *loop, const px_guest_opts *o, px_guest **out, px_errmsg *em)
{
    px_guest *g = calloc(1, sizeof(*g));
    if (!g)
        return PX_E_NOMEM;
    px_err err = px_qemu_cmd_build(o->topo, o->index, &o->qemu, &g->cmd, em);
    if (err) {
        free(g);
        return err;
    }
    const px_topo_guest *tg = &o->topo->guests[o->index];
    g->loop = loop;
    snprintf(g->name, sizeof(g->name), "%s", tg->name);
    g->restart = tg->restart;
    g->has_can = tg->n_cans > 0;
    g->pidfd = -1;
    g->stop_timeout_ms = o->stop_timeout_ms ? o->stop_timeout_ms : 3000;
    g->on_change = o->on_change;
    g->ud = o->ud;
    g->backoff_ms = BACKOFF_MIN_MS;
    snprintf(g->qemu_log, sizeof(g->qemu_log), "%s/%s.qemu.log", o->qemu.rundir, tg->name);
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    g->open_handles = 1;
    g->detail[0] = '\0';
    char line[2048];
    px_qemu_cmd_describe(&g->cmd, line, sizeof(line));
    PX_DEBUG("guest", "command line", "guest=%s argv=\"%s\"", g->name, line);
    *out = g;
    return PX_OK;
}

void px_guest_close(px_guest *g, px_guest_closed_cb cb, void *ud)
{
    g->on_closed = cb;
    g->closed_ud = ud;
    g->want_stop = true;
    g->closing = true;
    if (g->proc_alive)
        qemu_signal(g, SIGKILL); /* qemu_gone runs when it has exited */
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, handle_closed);
    if (!g->proc_alive)
        drop_qmp(g);
}

const char *px_guest_name(const px_guest *g)
{
    return g->name;
}

px_guest_state px_guest_get_state(const px_guest *g)
{
    return g->state;
}

const char *px_guest_detail(const px_guest *g)
{
    return g->detail;
}

const char *px_guest_log_path(const px_guest *g)
{
    return g->cmd.log_path;
}

int px_guest_pid(const px_guest *g)
{
    if (!g->proc_alive)
        return 0;
    return g->adopted ? g->adopted_pid : g->proc.pid;
}

uint32_t px_guest_restarts(const px_guest *g)
{
    return g->restarts;
}
