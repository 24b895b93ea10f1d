/* plexus — running a daemon's loop until SIGTERM or SIGINT.
 *
 * px_daemon_run installs SIGTERM and SIGINT handlers on `loop` that call
 * stop(ud) (once per signal; stop must begin an orderly, non-blocking
 * shutdown), runs the loop until the daemon's own handles have all closed
 * (the signal handlers do not keep it alive), then releases the handlers.
 * Blocks for the daemon's whole life; call from main(). */
#ifndef PX_DAEMON_H
#define PX_DAEMON_H

#include <uv.h>

void px_daemon_run(uv_loop_t *loop, const char *module, void (*stop)(void *ud), void *ud);

#endif
