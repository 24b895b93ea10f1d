/* KVM probe. See accel.h. */
#include "accel.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"

#define MARKER "PLEXUS-GUEST-READY"

struct px_accel_probe {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    uv_idle_t defer; /* answers without a probe still arrive from the loop */
    px_accel_cb cb;
    void *ud;
    char cache_path[4200];
    char key[256];
    char tail[256]; /* last bytes of console output, to spot the marker across reads */
    bool answered, cancelled, kvm, spawned;
    char why[256];
    unsigned open;
};

static void release(uv_handle_t *h)
{
    px_accel_probe *p = h->data;
    if (--p->open == 0)
        free(p);
}

static void answer(px_accel_probe *p, bool kvm, const char *why, bool cache)
{
    if (p->answered)
        return;
    p->answered = true;
    p->kvm = kvm;
    snprintf(p->why, sizeof(p->why), "%s", why);
    if (cache && p->cache_path[0]) {
        char text[512];
        snprintf(text, sizeof(text), "%s\n%s\n%s\n", p->key, kvm ? "kvm" : "tcg", why);
        px_write_file_atomic(p->cache_path, text, strlen(text), 0644, NULL);
    }
    PX_INFO("accel", kvm ? "KVM usable" : "using TCG", "why=\"%s\"", why);
    if (!p->cancelled)
        p->cb(kvm, p->why, p->ud);
}

static void finish(px_accel_probe *p)
{
    uv_timer_stop(&p->timer);
    if (uv_is_active((uv_handle_t *)&p->out))
        uv_read_stop((uv_stream_t *)&p->out);
}

static void on_qemu_exit(uv_process_t *proc, int64_t status, int signum)
{
    px_accel_probe *p = proc->data;
    char why[128];
    snprintf(why, sizeof(why), "the KVM probe guest exited before it was ready (status %lld%s%s)",
             (long long)status, signum ? ", " : "", signum ? strsignal(signum) : "");
    answer(p, false, why, true);
    finish(p);
    uv_close((uv_handle_t *)&p->proc, release);
    uv_close((uv_handle_t *)&p->out, release);
    uv_close((uv_handle_t *)&p->timer, release);
}

static void on_timeout(uv_timer_t *t)
{
    px_accel_probe *p = t->data;
    answer(p, false, "a guest under KVM did not boot in time (nested KVM?)", true);
    uv_process_kill(&p->proc, SIGKILL);
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)h;
    (void)sz;
    static char chunk[4096]; /* the loop thread only; consumed before the next read */
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    px_accel_probe *p = s->data;
    if (n <= 0)
        return;
    /* Search tail + new bytes so a marker split across reads is found. */
    char win[sizeof(p->tail) + 4096 + 1];
    size_t tl = strlen(p->tail);
    memcpy(win, p->tail, tl);
    memcpy(win + tl, buf->base, (size_t)n);
    win[tl + (size_t)n] = '\0';
    for (size_t i = 0; i < tl + (size_t)n; i++)
        if (win[i] == '\0')
            win[i] = ' ';
    if (strstr(win, MARKER)) {
        answer(p, true, "a guest booted under KVM", true);
        uv_process_kill(&p->proc, SIGKILL);
        return;
    }
    size_t total = tl + (size_t)n, keep = sizeof(p->tail) - 1;
    if (total < keep)
        keep = total;
    memmove(p->tail, win + total - keep, keep);
    p->tail[keep] = '\0';
}

static void on_defer(uv_idle_t *h)
{
    px_accel_probe *p = h->data;
    uv_idle_stop(h);
    answer(p, p->kvm, p->why, false);
    uv_close((uv_handle_t *)h, release);
}

/* Answer from the loop without probing. */
static px_err answer_later(px_accel_probe *p, bool kvm, const char *why)
{
    p->kvm = kvm;
    snprintf(p->why, sizeof(p->why), "%s", why);
    uv_idle_init(p->loop, &p->defer);
    p->defer.data = p;
    p->open = 1;
    uv_idle_start(&p->defer, on_defer);
    return PX_OK;
}

px_err px_accel_probe_start(uv_loop_t *loop, const px_accel_opts *o, px_accel_cb cb, void *ud,
                            px_accel_probe **out)
{
    px_accel_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return PX_E_NOMEM;
    p->loop = loop;
    p->cb = cb;
    p->ud = ud;
    *out = p;
    const char *qemu = o->qemu ? o->qemu : "qemu-system-x86_64";
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return answer_later(p, false, "/dev/kvm cannot be opened");
    close(fd);
    char kernel[4200], initrd[4200];
    snprintf(kernel, sizeof(kernel), "%s/tiny/vmlinuz", o->image_dir ? o->image_dir : ".");
    snprintf(initrd, sizeof(initrd), "%s/tiny/initrd.img", o->image_dir ? o->image_dir : ".");
    if (access(kernel, R_OK) != 0 || access(initrd, R_OK) != 0)
        return answer_later(p, false, "no built-in image to prove KVM with");

    /* Cache key: which QEMU, which host kernel. */
    struct stat st;
    struct utsname u;
    char qpath[4200] = "";
    const char *path = getenv("PATH");
    if (strchr(qemu, '/'))
        snprintf(qpath, sizeof(qpath), "%s", qemu);
    for (const char *s = path; !qpath[0] && s && *s;) {
        size_t l = strcspn(s, ":");
        snprintf(qpath, sizeof(qpath), "%.*s/%s", (int)l, s, qemu);
        if (access(qpath, X_OK) != 0)
            qpath[0] = '\0';
        s += l + (s[l] == ':');
    }
    uname(&u);
    snprintf(p->key, sizeof(p->key), "qemu=%s size=%lld mtime=%lld kernel=%s", qpath,
             stat(qpath, &st) == 0 ? (long long)st.st_size : -1LL,
             stat(qpath, &st) == 0 ? (long long)st.st_mtime : -1LL, u.release);
    if (o->cache_dir) {
        snprintf(p->cache_path, sizeof(p->cache_path), "%s/kvm-probe", o->cache_dir);
        char *text = NULL;
        if (px_mkdir_p(o->cache_dir, 0755, NULL) == PX_OK &&
            px_read_file(p->cache_path, 4096, &text, NULL, NULL) == PX_OK) {
            char *nl = strchr(text, '\n');
            if (nl && (size_t)(nl - text) == strlen(p->key) &&
                strncmp(text, p->key, strlen(p->key)) == 0) {
                bool kvm = strncmp(nl + 1, "kvm", 3) == 0;
                char *why = strchr(nl + 1, '\n');
                char msg[300];
                snprintf(msg, sizeof(msg), "%s (cached)", why ? why + 1 : "");
                msg[strcspn(msg, "\n")] = '\0';
                free(text);
                return answer_later(p, kvm, msg);
            }
            free(text);
        }
    }

    char append[] = "console=ttyS0 panic=-1 plexus.name=kvm-probe";
    /* The CPU model real KVM guests get (qemu_cmd.c): the default one. */
    char *argv[] = {
        (char *)qemu, "-accel",     "kvm",     "-m",    "128",     "-nodefaults", "-no-user-config",
        "-nographic", "-no-reboot", "-serial", "stdio", "-kernel", kernel,        "-initrd",
        initrd,       "-append",    append,    NULL};
    uv_pipe_init(loop, &p->out, 0);
    uv_timer_init(loop, &p->timer);
    p->out.data = p->timer.data = p->proc.data = p;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_IGNORE},
    };
    uv_process_options_t po = {
        .exit_cb = on_qemu_exit, .file = qemu, .args = argv, .stdio_count = 3, .stdio = stdio};
    p->open = 3;
    int rc = uv_spawn(loop, &p->proc, &po);
    if (rc != 0) {
        answer(p, false, "QEMU could not be started for the KVM probe", false);
        uv_close((uv_handle_t *)&p->proc, release);
        uv_close((uv_handle_t *)&p->out, release);
        uv_close((uv_handle_t *)&p->timer, release);
        return PX_OK;
    }
    p->spawned = true;
    uv_read_start((uv_stream_t *)&p->out, alloc_cb, on_read);
    uv_timer_start(&p->timer, on_timeout, o->timeout_ms ? o->timeout_ms : 10000, 0);
    PX_INFO("accel", "probing KVM", "qemu=%s timeout_ms=%u", qemu,
            o->timeout_ms ? o->timeout_ms : 10000);
    return PX_OK;
}

void px_accel_probe_cancel(px_accel_probe *p)
{
    p->cancelled = true;
    if (!p->answered && p->spawned)
        uv_process_kill(&p->proc, SIGKILL);
}
