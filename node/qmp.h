/* plexus-node — QMP client (QEMU Machine Protocol) on libuv, JSON by jansson.
 *
 * The guest supervisor's handle on one QEMU process: it connects to the
 * UNIX socket QEMU was started with (`-qmp unix:PATH,server=on,wait=off`),
 * retrying until a deadline because QEMU creates the socket a moment after
 * it starts; reads the greeting, negotiates capabilities, then runs
 * commands whose replies are matched by id, and delivers events.
 *
 * Life cycle (libuv style; the loop is borrowed, never run or closed here):
 *
 *   px_qmp_new      allocate; arms nothing. Safe to px_qmp_close at once.
 *   px_qmp_connect  start connecting. Later outcomes arrive as callbacks:
 *                   on_ready once (greeting read, capabilities accepted), or
 *                   on_lost once (deadline passed, peer refused, protocol
 *                   error, QEMU gone). on_lost also ends a ready session.
 *   px_qmp_close    begin closing; close_cb runs from the loop once every
 *                   handle is released, and q is freed after it returns.
 *
 * Every callback runs on the loop thread. Inside any callback the caller may
 * call px_qmp_command (and the convenience calls) and px_qmp_close.
 *
 * Order guarantees:
 *   - each command's callback runs exactly once: with its reply, or with
 *     PX_E_CLOSED when the connection ends or the client is closed;
 *   - when the connection ends, every pending command completes (in the
 *     order they were sent) before on_lost runs;
 *   - after px_qmp_close, on_lost and on_event never run; pending commands
 *     complete with PX_E_CLOSED from the loop, then close_cb runs.
 *
 * A function here that takes a callback and returns an error never calls
 * that callback. Nothing here blocks: the connect attempts are
 * non-blocking connect(2) calls on a timer.
 *
 * The process must ignore SIGPIPE (plexus-node does): a write racing with
 * QEMU's exit would otherwise kill it.
 *
 * A QMP peer is trusted to be QEMU but never to be well-formed: every limit
 * below is checked before memory is committed, and a malformed message ends
 * the session with PX_E_PROTO or PX_E_TOOBIG through on_lost. See
 * docs/qmp.md.
 */
#ifndef PX_NODE_QMP_H
#define PX_NODE_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fabric/core/err.h"

#define PX_QMP_LINE_MAX    (1u << 20) /* bytes in one message, line end excluded */
#define PX_QMP_MAX_PENDING 64u        /* commands awaiting a reply */
#define PX_QMP_NAME_MAX    63u        /* bytes in a command or event name */
#define PX_QMP_PATH_MAX    107u       /* sun_path minus its NUL */
#define PX_QMP_READ_CHUNK  65536u     /* bytes read from the socket at a time */

/* ---- framing and classification (pure: no sockets, no loop) ----
 *
 * QEMU writes one JSON object per line, each ended by CRLF. The framer
 * accepts LF or CRLF, skips blank lines, and hands each complete line to
 * json_loadb. A line longer than max_line (line end excluded) is
 * PX_E_TOOBIG as soon as more than that many bytes have arrived without a
 * line end (one more is let in if it may be the CR of a CRLF), so memory
 * stays bounded by max_line + 1 whatever the peer sends. A line that is
 * not exactly one JSON object is PX_E_PROTO. A message holding an integer
 * beyond json_int_t (QEMU's uint64 fields can) is parsed again with every
 * integer in it as a real (JSON_DECODE_INT_AS_REAL), ids included. JSON nesting is
 * bounded by jansson itself (2048 levels). */

typedef struct px_qmp_framer {
    char *buf;  /* owned; holds at most one incomplete line between feeds */
    size_t len; /* bytes buffered */
    size_t cap; /* bytes allocated, never more than max_line + 1 */
    size_t max_line;
} px_qmp_framer;

/* max_line 0 = PX_QMP_LINE_MAX. Allocates nothing; fini is always safe. */
void px_qmp_framer_init(px_qmp_framer *f, size_t max_line);
void px_qmp_framer_fini(px_qmp_framer *f);

/* Called for each complete message. root is a JSON object, borrowed: it is
 * released after the callback returns (json_incref to keep it). Return 0 to
 * go on; anything else stops the feed, which returns that value. */
typedef px_err (*px_qmp_line_cb)(json_t *root, void *ud);

/* Append len bytes and deliver every complete line in order. Stops at the
 * first bad line, oversize line or non-zero callback return and returns
 * that error (em says which, for PX_E_PROTO / PX_E_TOOBIG / PX_E_NOMEM).
 * After an error the framer's content is unspecified: fini it (or init it
 * again) before more use. Never calls cb on error paths of its own. */
px_err px_qmp_framer_feed(px_qmp_framer *f, const void *data, size_t len, px_qmp_line_cb cb,
                          void *ud, px_errmsg *em);

typedef enum px_qmp_kind {
    PX_QMP_GREETING, /* {"QMP": {"version": ..., "capabilities": [...]}} */
    PX_QMP_RETURN,   /* {"return": any, "id": any?} */
    PX_QMP_ERROR,    /* {"error": {"class": str, "desc": str}, "id": any?} */
    PX_QMP_EVENT,    /* {"event": str, "data": obj?, "timestamp": {...}?} */
} px_qmp_kind;

/* One server-to-client message, classified. Every pointer borrows from the
 * root it was classified from. */
typedef struct px_qmp_msg {
    px_qmp_kind kind;
    json_t *value;    /* GREETING: the "QMP" object; RETURN: "return"; ERROR: the
                         "error" object; EVENT: "data" (an empty object if absent) */
    bool has_id;      /* RETURN/ERROR: "id" is an integer >= 1 (the kind we send), or an
                         integral real 1..2^53 (see the framer on integer overflow) */
    uint64_t id;      /* valid if has_id */
    const char *name; /* EVENT: the event name, 1..PX_QMP_NAME_MAX bytes */
    const char *err_class, *err_desc; /* ERROR */
    int64_t ts_sec, ts_usec;          /* EVENT: timestamp, 0 if absent */
} px_qmp_msg;

/* Classify a message the framer delivered. PX_E_PROTO with em naming the
 * problem if it is not exactly one of the four kinds or a required member
 * has the wrong type. An "id" that is not one of ours (a string, a
 * negative number) gives has_id false; it is not an error. An event
 * without "data" gets an empty "data" object added to root (PX_E_NOMEM if
 * that fails), so consumers never see NULL. */
px_err px_qmp_classify(json_t *root, px_qmp_msg *out, px_errmsg *em);

/* ---- the client ---- */

typedef struct px_qmp px_qmp;

typedef enum px_qmp_event_kind {
    PX_QMP_EV_OTHER = 0, /* any other event: see px_qmp_event.name */
    PX_QMP_EV_SHUTDOWN,  /* reason in px_qmp_event.reason, data.guest in .guest */
    PX_QMP_EV_POWERDOWN, /* ACPI power button pressed (system_powerdown) */
    PX_QMP_EV_STOP,
    PX_QMP_EV_RESUME,
    PX_QMP_EV_RESET,
    PX_QMP_EV_NETDEV_STREAM_CONNECTED,    /* netdev in .netdev_id */
    PX_QMP_EV_NETDEV_STREAM_DISCONNECTED, /* netdev in .netdev_id */
} px_qmp_event_kind;

/* An event as delivered to on_event; everything borrowed for the callback. */
typedef struct px_qmp_event {
    px_qmp_event_kind kind;
    const char *name;      /* as QEMU spells it, e.g. "SHUTDOWN" */
    json_t *data;          /* the "data" object, never NULL (may be empty) */
    const char *reason;    /* SHUTDOWN: "guest-shutdown", "host-qmp-quit", ...; else "" */
    bool guest;            /* SHUTDOWN: data.guest */
    const char *netdev_id; /* NETDEV_STREAM_*: data["netdev-id"]; else "" */
    int64_t ts_sec, ts_usec;
} px_qmp_event;

typedef struct px_qmp_info {
    int major, minor, micro; /* QEMU version from the greeting (0 if absent) */
    char package[64];
} px_qmp_info;

typedef struct px_qmp_stats {
    uint64_t connect_attempts; /* connect(2) calls made */
    uint64_t msgs_in;          /* messages received and classified */
    uint64_t events;           /* events delivered */
    uint64_t commands;         /* commands sent (qmp_capabilities included) */
    uint64_t replies_dropped;  /* replies whose id matched nothing pending */
} px_qmp_stats;

typedef void (*px_qmp_ready_cb)(px_qmp *q, void *ud);
typedef void (*px_qmp_event_cb)(px_qmp *q, const px_qmp_event *ev, void *ud);
/* The session ended or could not start. why: PX_E_TIMEOUT (no socket or no
 * greeting by the deadline), PX_E_CLOSED (QEMU closed or reset the socket:
 * it exited, or was told to quit), PX_E_PROTO / PX_E_TOOBIG (the peer sent
 * something malformed; we disconnected), PX_E_IO and others from the
 * operating system. em names the socket path and the reason. */
typedef void (*px_qmp_lost_cb)(px_qmp *q, px_err why, const px_errmsg *em, void *ud);
typedef void (*px_qmp_close_cb)(px_qmp *q, void *ud);

/* A command's outcome. err 0: result is the "return" value. On a QMP error
 * reply result is the "error" object ({"class", "desc"}) and err is
 * PX_E_UNSUPP for CommandNotFound, PX_E_NOTFOUND for DeviceNotFound,
 * PX_E_INVAL for any other class; em holds "QMP <command>: <class>: <desc>".
 * err PX_E_CLOSED: the connection ended or the client was closed before a
 * reply came; result is NULL. result is borrowed for the callback (json_incref
 * to keep it); em is never NULL (empty text on success). */
typedef void (*px_qmp_reply_cb)(px_qmp *q, px_err err, json_t *result, const px_errmsg *em,
                                void *ud);

typedef struct px_qmp_opts {
    px_qmp_ready_cb on_ready; /* optional */
    px_qmp_event_cb on_event; /* optional */
    px_qmp_lost_cb on_lost;   /* optional */
    void *ud;
    size_t max_line; /* 0 = PX_QMP_LINE_MAX */
} px_qmp_opts;

/* Allocate a client on `loop` (borrowed; it must outlive the client). opts
 * is copied. PX_E_NOMEM is the only failure; *out is NULL then. */
px_err px_qmp_new(uv_loop_t *loop, const px_qmp_opts *opts, px_qmp **out, px_errmsg *em);

/* Start connecting to `path` (copied) and keep trying until timeout_ms has
 * passed; the same deadline covers the greeting and capabilities. The first
 * attempt is made from the loop, so every outcome is a callback. ENOENT and
 * ECONNREFUSED (QEMU not listening yet) are retried with back-off from
 * 10 ms to 200 ms; other connect errors end the attempt at once (on_lost).
 * Returns PX_E_INVAL (path empty or longer than PX_QMP_PATH_MAX, or
 * connect already called) or PX_E_CLOSED (closing); callbacks do not run
 * then. Once per client. */
px_err px_qmp_connect(px_qmp *q, const char *path, uint32_t timeout_ms, px_errmsg *em);

/* Send {"execute": cmd, "arguments": args, "id": N}. args is NULL or a
 * JSON object, borrowed (serialized before return). cb is required. Returns
 * PX_E_INVAL (not ready yet, name empty / longer than PX_QMP_NAME_MAX, args
 * not an object, cb NULL), PX_E_CLOSED (session lost or client closing),
 * PX_E_AGAIN (PX_QMP_MAX_PENDING commands already waiting: retry from a
 * reply callback), PX_E_TOOBIG (serialized command over max_line),
 * PX_E_NOMEM. cb does not run when this returns an error.
 * Note `quit`: QEMU may reset the socket before the reply reaches us, so
 * its callback may get PX_E_CLOSED for a quit that worked. */
px_err px_qmp_command(px_qmp *q, const char *cmd, json_t *args, px_qmp_reply_cb cb, void *ud);

typedef struct px_qmp_status {
    bool running;
    char status[32]; /* "prelaunch", "running", "paused", "shutdown", ... */
} px_qmp_status;

/* query-status. st is borrowed for the callback and NULL unless err is 0.
 * A reply without a string "status" and a boolean "running" is PX_E_PROTO.
 * Errors as for px_qmp_command. */
typedef void (*px_qmp_status_cb)(px_qmp *q, px_err err, const px_qmp_status *st,
                                 const px_errmsg *em, void *ud);
px_err px_qmp_query_status(px_qmp *q, px_qmp_status_cb cb, void *ud);

/* Graceful stop: system_powerdown, then wait up to timeout_ms for a
 * SHUTDOWN event (the guest powered off), then quit. cb runs once:
 *   err 0, graceful true   SHUTDOWN came in time; quit was sent (or QEMU
 *                          had already exited by itself);
 *   err 0, graceful false  the deadline passed; quit was sent and QEMU
 *                          accepted it (reply, or the socket closed);
 *   err PX_E_CLOSED        the connection ended before SHUTDOWN or quit
 *                          (QEMU died), or the client was closed;
 *   other                  quit was refused (em says why).
 * A refused system_powerdown is logged and goes straight to quit. Events
 * still reach on_event meanwhile. Returns PX_E_EXISTS if a graceful stop
 * is already under way, otherwise as for px_qmp_command. */
typedef void (*px_qmp_stop_cb)(px_qmp *q, px_err err, bool graceful, const px_errmsg *em, void *ud);
px_err px_qmp_powerdown_then_quit(px_qmp *q, uint32_t timeout_ms, px_qmp_stop_cb cb, void *ud);

/* True between on_ready and on_lost / px_qmp_close. */
bool px_qmp_ready(const px_qmp *q);

/* Version from the greeting; zeroes before on_ready. */
void px_qmp_info_get(const px_qmp *q, px_qmp_info *out);

void px_qmp_stats_get(const px_qmp *q, px_qmp_stats *out);

/* Begin closing; see the life cycle above. Call exactly once; q must not be
 * used after close_cb (optional) has run. Safe inside any callback. */
void px_qmp_close(px_qmp *q, px_qmp_close_cb cb, void *ud);

#endif
