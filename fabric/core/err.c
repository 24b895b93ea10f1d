#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    px_err code;
    const char *name;
    const char *text;
} errtab[] = {
    {PX_OK, "OK", "success"},
    {PX_E_NOMEM, "E_NOMEM", "out of memory"},
    {PX_E_INVAL, "E_INVAL", "invalid argument"},
    {PX_E_PROTO, "E_PROTO", "protocol error"},
    {PX_E_TOOBIG, "E_TOOBIG", "size exceeds limit"},
    {PX_E_VERSION, "E_VERSION", "unsupported protocol version"},
    {PX_E_UNKNOWN, "E_UNKNOWN", "unknown message type or field"},
    {PX_E_AGAIN, "E_AGAIN", "resource temporarily unavailable"},
    {PX_E_AUTH, "E_AUTH", "authentication failed"},
    {PX_E_NOTFOUND, "E_NOTFOUND", "not found"},
    {PX_E_EXISTS, "E_EXISTS", "already exists"},
    {PX_E_IO, "E_IO", "input/output error"},
    {PX_E_CLOSED, "E_CLOSED", "closed"},
    {PX_E_TIMEOUT, "E_TIMEOUT", "timed out"},
    {PX_E_CONFIG, "E_CONFIG", "invalid configuration"},
    {PX_E_UNSUPP, "E_UNSUPP", "not supported"},
    {PX_E_TRUNCATED, "E_TRUNCATED", "truncated input"},
};

const char *px_strerror(px_err err)
{
    for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
        if (errtab[i].code == err)
            return errtab[i].text;
    return "unknown error";
}

const char *px_errname(px_err err)
{
    for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
        if (errtab[i].code == err)
            return errtab[i].name;
    return "E_?";
}

px_err px_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return PX_OK;
    case ENOMEM:
        return PX_E_NOMEM;
    case EINVAL:
        return PX_E_INVAL;
    case EAGAIN:
        return PX_E_AGAIN;
    case ENOENT:
    case EHOSTUNREACH:
        return PX_E_NOTFOUND;
    case EEXIST:
    case EADDRINUSE:
        return PX_E_EXISTS;
    case ETIMEDOUT:
        return PX_E_TIMEOUT;
    case EPROTO:
        return PX_E_PROTO;
    case EMSGSIZE:
    case E2BIG:
        return PX_E_TOOBIG;
    case EACCES:
    case EPERM:
        return PX_E_AUTH;
    case ENOTSUP:
    case EPROTONOSUPPORT:
        return PX_E_UNSUPP;
    case ENOTSOCK:
        return PX_E_CLOSED;
    default:
        return PX_E_IO;
    }
}

px_err px_errmsg_set(px_errmsg *em, px_err err, const char *fmt, ...)
{
    if (em) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->text, sizeof(em->text), fmt, ap);
        va_end(ap);
    }
    return err;
}

void px_errmsg_prefix(px_errmsg *em, const char *fmt, ...)
{
    if (!em)
        return;
    char pre[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof(pre) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t plen = strnlen(pre, sizeof(pre) - 2);
    pre[plen++] = ':';
    pre[plen++] = ' ';
    /* Shift the old text right (truncating its tail), then put the prefix in front. */
    size_t cap = sizeof(em->text) - 1;
    size_t olen = strnlen(em->text, cap);
    if (plen > cap)
        plen = cap;
    if (olen > cap - plen)
        olen = cap - plen;
    memmove(em->text + plen, em->text, olen);
    memcpy(em->text, pre, plen);
    em->text[plen + olen] = '\0';
}
