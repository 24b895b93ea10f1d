/* plexus — the one error type.
 *
 * Every function that can fail returns px_err: 0 (PX_OK) on success, a
 * negative code otherwise. libuv, ZeroMQ, errno and msgpack failures are
 * translated once, at the boundary where they occur, with px_err_from_errno()
 * and friends; nothing above that boundary sees a foreign error code.
 *
 * A code says what class of thing went wrong. Where a user needs more (which
 * file, which peer, what was expected), the function also takes a
 * px_errmsg * and writes one sentence into it; the caller decides whether to
 * print it. A NULL px_errmsg * is always allowed.
 */
#ifndef PX_ERR_H
#define PX_ERR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum px_err {
    PX_OK = 0,
    PX_E_NOMEM = -1,     /* allocation failed */
    PX_E_INVAL = -2,     /* bad argument from our own code */
    PX_E_PROTO = -3,     /* malformed or unexpected message from a peer */
    PX_E_TOOBIG = -4,    /* a size exceeds a declared limit */
    PX_E_VERSION = -5,   /* protocol version not supported */
    PX_E_UNKNOWN = -6,   /* unknown message type or field */
    PX_E_AGAIN = -7,     /* would block: queue full, try after the writable callback */
    PX_E_AUTH = -8,      /* peer not authenticated / key not accepted */
    PX_E_NOTFOUND = -9,  /* no such object, peer, file */
    PX_E_EXISTS = -10,   /* already exists */
    PX_E_IO = -11,       /* an operating system call failed */
    PX_E_CLOSED = -12,   /* object is closing or closed */
    PX_E_TIMEOUT = -13,  /* a deadline passed */
    PX_E_CONFIG = -14,   /* invalid configuration or topology */
    PX_E_UNSUPP = -15,   /* not supported on this host or build */
    PX_E_TRUNCATED = -16 /* input ended inside a message */
} px_err;

/* Static, never NULL, for any value (unknown values give "unknown error"). */
const char *px_strerror(px_err err);

/* Short stable identifier for logs and --json output, e.g. "E_PROTO". */
const char *px_errname(px_err err);

/* Translate an errno value (positive) into px_err. */
px_err px_err_from_errno(int errnum);

/* Human detail that travels with an error. Fixed size: filling it never
 * allocates and never fails (long text is truncated). */
typedef struct px_errmsg {
    char text[512];
} px_errmsg;

/* Write a formatted sentence into em (if em is not NULL) and return err, so
 * call sites read `return px_errmsg_set(em, PX_E_PROTO, "...", ...);`. */
px_err px_errmsg_set(px_errmsg *em, px_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix existing text with more context: "ctx: old text". */
void px_errmsg_prefix(px_errmsg *em, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
