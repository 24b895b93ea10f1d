/* plexus — authorized_keys files: the allow-lists of CurveZMQ public keys.
 *
 * Format: one key per line, "<40-character Z85 public key> [label]"; blank
 * lines and lines starting with '#' are ignored. Blocking (file I/O). */
#ifndef PX_AUTHKEYS_H
#define PX_AUTHKEYS_H

#include <stddef.h>

#include "err.h"
#include "transport.h"

#define PX_AUTHKEYS_MAX 4096u

typedef struct px_authkeys {
    size_t n;
    char (*keys)[PX_KEY_Z85_LEN + 1]; /* owned */
    const char **ptrs;                /* [n] pointers into keys, for px_transport_opts.allow */
} px_authkeys;

/* Load path into ak (zeroed first). A malformed line is PX_E_CONFIG with
 * "FILE:LINE: ..." in em; a missing file is PX_E_NOTFOUND. */
px_err px_authkeys_load(const char *path, px_authkeys *ak, px_errmsg *em);

void px_authkeys_fini(px_authkeys *ak);

#endif
