/* A training run's directory (run_dir.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/file_replace.h"
#include "train/run_dir.h"

/* The records of metrics.jsonl at or before step `last` (lines without a step are kept), as
 * one malloc'd text; NULL without memory. *dropped: how many records went. */
static char *records_up_to(FILE *f, uint64_t last, unsigned *dropped)
{
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap), line[4096];
    if (!text) return NULL;
    text[0] = 0;
    *dropped = 0;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "\"step\":");
        if (at && strtoull(at + 7, NULL, 10) > last) {
            (*dropped)++;
            continue;
        }
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            char *grown = realloc(text, cap = 2 * (len + n + 1));
            if (!grown) {
                free(text);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + len, line, n + 1);
        len += n;
    }
    return text;
}

static vka_result trim_metrics(vka_logger *lg, const char *out_dir, uint64_t last)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return VKA_SUCCESS; /* a new directory for the resumed run: nothing to trim */
    unsigned dropped = 0;
    char *kept = records_up_to(f, last, &dropped);
    fclose(f);
    if (!kept) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory to read it", path);
    vka_result rc = VKA_SUCCESS;
    if (dropped) {
        rc = vka_file_replace_text(lg, path, kept);
        if (!rc)
            vka_log(lg, VKA_LOG_WARNING, "%s: dropped %u record%s past step %" PRIu64 " (written after the checkpoint "
                    "this run resumes from)", path, dropped, dropped == 1 ? "" : "s", last);
    }
    free(kept);
    return rc;
}

/* mkdir -p: out_dir and the directories above it (as eval makes its report's). */
static vka_result make_dirs(vka_logger *lg, const char *out_dir)
{
    char dir[1100];
    if (snprintf(dir, sizeof dir, "%s", out_dir) >= (int)sizeof dir)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--out %s: path too long", out_dir);
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p) continue;
        char was = *p;
        *p = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return vka_fail(lg, VKA_ERROR_IO, "--out %s: cannot create the directory %s (%s)", out_dir, dir,
                            strerror(errno));
        if (!(*p = was)) break;
    }
    return VKA_SUCCESS;
}

vka_result vka_run_dir_open(vka_logger *lg, const char *out_dir, int64_t resume_step, int *lock_fd)
{
    *lock_fd = -1;
    vka_result made = make_dirs(lg, out_dir);
    if (made) return made;
    char path[1100];
    snprintf(path, sizeof path, "%s/.lock", out_dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return vka_fail(lg, VKA_ERROR_IO, "--out %s: cannot create %s (%s)", out_dir, path, strerror(errno));
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &l) != 0) {
        int err = errno;
        close(fd);
        if (err == EACCES || err == EAGAIN)
            return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--out %s: another vkanchor train is writing into it; "
                            "wait for it to finish or pick another --out", out_dir);
        return vka_fail(lg, VKA_ERROR_IO, "--out %s: cannot lock %s (%s)", out_dir, path, strerror(err));
    }
    vka_result rc = VKA_SUCCESS;
    if (resume_step < 0) {
        static const char *const stale[] = {"checkpoint.ckpt", "loss.png", "accuracy.png"};
        for (int i = 0; i < 3 && !rc; i++) {
            snprintf(path, sizeof path, "%s/%s", out_dir, stale[i]);
            if (unlink(path) != 0 && errno != ENOENT)
                rc = vka_fail(lg, VKA_ERROR_IO, "%s: cannot remove what the replaced run left (%s)", path,
                              strerror(errno));
        }
    } else {
        rc = trim_metrics(lg, out_dir, (uint64_t)resume_step);
    }
    if (rc) {
        close(fd);
        return rc;
    }
    *lock_fd = fd;
    return VKA_SUCCESS;
}

void vka_run_dir_close(int lock_fd)
{
    if (lock_fd >= 0) close(lock_fd); /* closing drops the record lock */
}
