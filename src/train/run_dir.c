/* A training run's directory (run_dir.h). */
/* realpath (X/Open, beyond the project's _POSIX_C_SOURCE). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/file_replace.h"
#include "train/run_dir.h"

/* The files a run writes into its directory. */
static const char *const RUN_FILES[] = {"config.json", "metrics.jsonl", "checkpoint.ckpt", "loss.png", "accuracy.png"};
#define NUM_RUN_FILES (sizeof RUN_FILES / sizeof *RUN_FILES)

int vka_run_dir_holds_run(const char *out_dir, const char **which)
{
    static const char *const marks[] = {"checkpoint.ckpt", "metrics.jsonl"};
    for (int i = 0; i < 2; i++) {
        char path[1100];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", out_dir, marks[i]);
        if (lstat(path, &st) == 0) {
            if (which) *which = marks[i];
            return 1;
        }
    }
    return 0;
}

int vka_run_dir_continues(const char *resume, const char *out_dir)
{
    if (!resume || !resume[0]) return 0;
    char d[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    snprintf(d, sizeof d, "%s", resume);
    return realpath(dirname(d), a) && realpath(out_dir, b) && strcmp(a, b) == 0;
}

/* Rewrites metrics.jsonl without the records past step `last` and without a torn last line
 * (a record cut short by a full disk: appending would merge the next one into it). */
static vka_result trim_metrics(vka_logger *lg, const char *out_dir, uint64_t last)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return VKA_SUCCESS; /* no records yet */
    size_t cap = 1 << 16, len = 0, line_cap = 0;
    char *kept = malloc(cap), *line = NULL;
    unsigned dropped = 0;
    ssize_t n;
    while (kept && (n = getline(&line, &line_cap, f)) > 0) {
        const char *at = strstr(line, "\"step\":");
        if (line[n - 1] != '\n' || (at && strtoull(at + 7, NULL, 10) > last)) {
            dropped++;
            continue;
        }
        if (len + (size_t)n + 1 > cap) {
            char *grown = realloc(kept, cap = 2 * (len + (size_t)n + 1));
            if (!grown) free(kept);
            kept = grown;
            if (!kept) break;
        }
        memcpy(kept + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    free(line);
    fclose(f);
    if (!kept) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory to read it", path);
    kept[len] = 0;
    vka_result rc = VKA_SUCCESS;
    if (dropped) {
        rc = vka_file_replace_text(lg, path, kept);
        if (!rc)
            vka_log(lg, VKA_LOG_WARNING, "%s: dropped %u record%s past step %" PRIu64 " (written after the checkpoint "
                    "this run resumes from) or cut short", path, dropped, dropped == 1 ? "" : "s", last);
    }
    free(kept);
    return rc;
}

static vka_result prepare(vka_logger *lg, const vka_train_config *c, uint64_t resume_step, int continuing)
{
    char path[1100];
    for (size_t i = 0; i < NUM_RUN_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", c->out_dir, RUN_FILES[i]);
        vka_result rc = vka_output_path_check(lg, "--out", path, NULL, 0);
        if (rc) return rc;
    }
    if (continuing) return trim_metrics(lg, c->out_dir, resume_step);
    const char *which;
    if (!c->overwrite && vka_run_dir_holds_run(c->out_dir, &which))
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s already holds a run (%s): pick another --out, continue it "
                        "with --resume %s/checkpoint.ckpt --out %s, or replace it with --overwrite", c->out_dir, which,
                        c->out_dir, c->out_dir);
    static const char *const stale[] = {"checkpoint.ckpt", "metrics.jsonl", "loss.png", "accuracy.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", c->out_dir, stale[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            return vka_fail(lg, VKA_ERROR_IO, "%s: cannot remove what the replaced run left (%s)", path,
                            strerror(errno));
    }
    return VKA_SUCCESS;
}

vka_result vka_run_dir_open(vka_logger *lg, const vka_train_config *c, uint64_t resume_step, int *continuing,
                            int *lock_fd)
{
    *lock_fd = -1;
    *continuing = 0;
    vka_result rc = c->out_dir[0] ? vka_make_dirs(lg, "--out", c->out_dir, c->out_dir)
                                  : vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--out: an empty path");
    if (rc) return rc;
    char path[1100];
    snprintf(path, sizeof path, "%s/.lock", c->out_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return vka_fail(lg, VKA_ERROR_IO, "--out %s: cannot create %s (%s)", c->out_dir, path, strerror(errno));
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &l) != 0) {
        int err = errno;
        close(fd);
        if (err == EACCES || err == EAGAIN)
            return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--out %s: another vkanchor train is writing into it; "
                            "wait for it to finish or pick another --out", c->out_dir);
        return vka_fail(lg, VKA_ERROR_IO, "--out %s: cannot lock %s (%s)", c->out_dir, path, strerror(err));
    }
    int cont = vka_run_dir_continues(c->resume, c->out_dir);
    rc = prepare(lg, c, resume_step, cont);
    if (rc) {
        close(fd);
        return rc;
    }
    *continuing = cont;
    *lock_fd = fd;
    return VKA_SUCCESS;
}

void vka_run_dir_close(int lock_fd)
{
    if (lock_fd >= 0) close(lock_fd); /* closing drops the record lock */
}
