/* Atomic file replacement (file_replace.h): checkpoints, run configs, evaluation reports. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "train/file_replace.h"

int vka_write_all(int fd, const void *data, uint64_t bytes)
{
    const unsigned char *p = data;
    while (bytes) {
        ssize_t w = write(fd, p, bytes > (1u << 30) ? (1u << 30) : bytes);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        bytes -= (uint64_t)w;
    }
    return 0;
}

vka_result vka_file_replace(vka_logger *lg, const char *path, int (*write_body)(int fd, void *user), void *user)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return vka_fail(lg, VKA_ERROR_IO, "%s: cannot create (%s)", tmp, strerror(errno));
    int bad = write_body(fd, user);
    if (!bad) bad = fsync(fd);
    int err = errno;
    if (close(fd) && !bad) bad = 1, err = errno;
    if (bad) {
        unlink(tmp);
        return vka_fail(lg, VKA_ERROR_IO, "%s: write failed (%s); %s is untouched", tmp, strerror(err), path);
    }
    if (rename(tmp, path)) {
        err = errno;
        unlink(tmp);
        return vka_fail(lg, VKA_ERROR_IO, "%s: cannot rename into place (%s)", path, strerror(err));
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return VKA_SUCCESS;
}

static int write_text(int fd, void *user)
{
    const char *text = user;
    return vka_write_all(fd, text, strlen(text));
}

vka_result vka_file_replace_text(vka_logger *lg, const char *path, const char *text)
{
    return vka_file_replace(lg, path, write_text, (void *)text);
}
