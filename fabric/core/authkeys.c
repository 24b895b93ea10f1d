#include "authkeys.h"

#include <stdlib.h>
#include <string.h>

#include "fsutil.h"

px_err px_authkeys_load(const char *path, px_authkeys *ak, px_errmsg *em)
{
    memset(ak, 0, sizeof(*ak));
    char *text;
    size_t len;
    px_err err = px_read_file(path, 1u << 20, &text, &len, em);
    if (err)
        return err;
    ak->keys = calloc(PX_AUTHKEYS_MAX, sizeof(*ak->keys));
    ak->ptrs = calloc(PX_AUTHKEYS_MAX, sizeof(*ak->ptrs));
    if (!ak->keys || !ak->ptrs) {
        err = PX_E_NOMEM;
        goto out;
    }
    unsigned line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        while (*l == ' ' || *l == '\t')
            l++;
        if (*l == '\0' || *l == '#' || *l == '\r')
            continue;
        size_t klen = strcspn(l, " \t\r");
        char key[PX_KEY_Z85_LEN + 1] = "";
        if (klen == PX_KEY_Z85_LEN) {
            memcpy(key, l, klen);
            key[klen] = '\0';
        }
        if (!px_key_valid(key)) {
            err = px_errmsg_set(em, PX_E_CONFIG,
                                "%s:%u: expected a 40-character Z85 public key at the start of "
                                "the line",
                                path, line);
            goto out;
        }
        if (ak->n == PX_AUTHKEYS_MAX) {
            err = px_errmsg_set(em, PX_E_TOOBIG, "%s:%u: more than %u keys", path, line,
                                PX_AUTHKEYS_MAX);
            goto out;
        }
        memcpy(ak->keys[ak->n], key, sizeof(key));
        ak->ptrs[ak->n] = ak->keys[ak->n];
        ak->n++;
    }
out:
    free(text);
    if (err)
        px_authkeys_fini(ak);
    return err;
}

void px_authkeys_fini(px_authkeys *ak)
{
    free(ak->keys);
    free(ak->ptrs);
    memset(ak, 0, sizeof(*ak));
}
