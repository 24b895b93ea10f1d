#include "daemon.h"

#include <signal.h>

#include "log.h"

typedef struct sigctx {
    const char *module;
    void (*stop)(void *ud);
    void *ud;
} sigctx;

static void on_signal(uv_signal_t *s, int signum)
{
    sigctx *c = s->data;
    PX_INFO(c->module, "stopping", "signal=%d", signum);
    c->stop(c->ud);
}

void px_daemon_run(uv_loop_t *loop, const char *module, void (*stop)(void *ud), void *ud)
{
    sigctx c = {module, stop, ud};
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    sigterm.data = sigint.data = &c;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    /* Signals alone do not keep the loop alive: it ends when the daemon's
     * own handles have closed. */
    uv_unref((uv_handle_t *)&sigterm);
    uv_unref((uv_handle_t *)&sigint);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}
