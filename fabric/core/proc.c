#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Read what is ready on fd into buf (keeping the last bytes if it fills up:
 * the end of an error message is the useful part). */
static ssize_t drain(int fd, char *buf, size_t cap, size_t *len)
{
    char tmp[1024];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0 || cap == 0)
        return n;
    size_t k = (size_t)n;
    if (k >= cap) {
        memcpy(buf, tmp + k - (cap - 1), cap - 1);
        *len = cap - 1;
    } else if (*len + k >= cap) {
        size_t keep = cap - 1 - k;
        memmove(buf, buf + *len - keep, keep);
        memcpy(buf + keep, tmp, k);
        *len = keep + k;
    } else {
        memcpy(buf + *len, tmp, k);
        *len += k;
    }
    buf[*len] = '\0';
    return n;
}

static void describe(char *const argv[], char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; argv[i] && n + 2 < cap; i++) {
        int k = snprintf(buf + n, cap - n, "%s%s", i ? " " : "", argv[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
}

px_err px_run(char *const argv[], char *out, size_t out_len, px_errmsg *em)
{
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    char cmd[256], errtxt[512] = "";
    size_t errlen = 0, olen = 0;
    px_err err = PX_OK;
    describe(argv, cmd, sizeof(cmd));
    if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "%s: pipe: %s", cmd, strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(op[1]);
    close(ep[1]);
    op[1] = ep[1] = -1;
    if (rc != 0) {
        err = px_errmsg_set(em, rc == ENOENT ? PX_E_NOTFOUND : PX_E_IO, "cannot run %s: %s",
                            argv[0], strerror(rc));
        goto out;
    }
    if (out && out_len)
        out[0] = '\0';
    struct pollfd pf[2] = {{op[0], POLLIN, 0}, {ep[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char probe;
            ssize_t n = i == 0 ? drain(pf[i].fd, out ? out : &probe, out ? out_len : 0, &olen)
                               : drain(pf[i].fd, errtxt, sizeof(errtxt), &errlen);
            if (n > 0 || (n < 0 && errno == EINTR))
                continue;
            pf[i].fd = -1; /* end of file: the child closed it */
            open_fds--;
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    while (errlen && (errtxt[errlen - 1] == '\n' || errtxt[errlen - 1] == ' '))
        errtxt[--errlen] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        goto out;
    if (WIFEXITED(status))
        err = px_errmsg_set(em, PX_E_IO, "'%s' exited with status %d%s%s", cmd, WEXITSTATUS(status),
                            errlen ? ": " : "", errtxt);
    else
        err = px_errmsg_set(em, PX_E_IO, "'%s' died on signal %d", cmd, WTERMSIG(status));
out:
    for (int i = 0; i < 2; i++) {
        if (op[i] >= 0)
            close(op[i]);
        if (ep[i] >= 0)
            close(ep[i]);
    }
    return err;
}

px_err px_spawn_daemon(char *const argv[], const char *log_path, pid_t *pid, px_errmsg *em)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return px_errmsg_set(em, PX_E_IO, "cannot open %s: %s", log_path, strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
    int rc = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc != 0)
        return px_errmsg_set(em, rc == ENOENT ? PX_E_NOTFOUND : PX_E_IO, "cannot start %s: %s",
                             argv[0], strerror(rc));
    return PX_OK;
}
