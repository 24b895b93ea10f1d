#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Process-wide by nature (see log.h). */
static struct {
    px_log_level level;
    int fd;
} logger = {PX_LOG_INFO, STDERR_FILENO};

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

px_err px_log_setup(px_log_level level, const char *path, px_errmsg *em)
{
    if (level < PX_LOG_DEBUG || level > PX_LOG_OFF)
        return px_errmsg_set(em, PX_E_INVAL, "log level %d out of range", (int)level);
    int fd = STDERR_FILENO;
    if (path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return px_errmsg_set(em, PX_E_IO, "cannot open log file %s: %s", path, strerror(errno));
    }
    if (logger.fd != STDERR_FILENO)
        close(logger.fd);
    logger.fd = fd;
    logger.level = level;
    return PX_OK;
}

px_err px_log_level_parse(const char *s, px_log_level *out)
{
    static const char *const lower[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= PX_LOG_OFF; i++) {
        if (strcasecmp(s, lower[i]) == 0) {
            *out = (px_log_level)i;
            return PX_OK;
        }
    }
    return PX_E_INVAL;
}

px_log_level px_log_get_level(void)
{
    return logger.level;
}

void px_log(px_log_level level, const char *module, const char *msg, const char *fields, ...)
{
    if (level < logger.level || level >= PX_LOG_OFF)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s: %s", ts.tv_nsec / 1000000L,
                     level_names[level], module ? module : "-", msg ? msg : "");
    if (k > 0)
        n += (size_t)k;
    if (n < sizeof(line) - 2 && fields && *fields) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fields);
        k = vsnprintf(line + n, sizeof(line) - n, fields, ap);
        va_end(ap);
        if (k > 0)
            n += (size_t)k;
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(logger.fd, line, n);
    (void)w; /* a lost log line must not take the daemon down */
}
