/* A training run's directory (run_dir.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

/* Whether out_dir holds a run (any file a run writes there): *which names the file found. */
static int holds_run(const char *out_dir, const char **which)
{
    /* Any file a run writes: a user's own config.json or loss.png there would be replaced too. */
    for (size_t i = 0; i < NUM_RUN_FILES; i++) {
        char path[1100];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", out_dir, RUN_FILES[i]);
        if (lstat(path, &st) == 0) {
            if (which) *which = RUN_FILES[i];
            return 1;
        }
    }
    return 0;
}

/* What to do about a directory that holds a run: resume its checkpoint (where it has one and
 * `resume` names none), another --out, or --overwrite. */
static void advice_for(const char *out_dir, const char *resume, char *out, size_t n)
{
    char ckpt[1100];
    struct stat st;
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.ckpt", out_dir);
    if (resume && resume[0]) /* another checkpoint than the directory's own: it needs a directory of its own */
        snprintf(out, n, "resume %s into another --out, or replace the run there with --overwrite", resume);
    else if (stat(ckpt, &st) == 0)
        snprintf(out, n, "pick another --out, continue it with --resume %s --out %s, or replace it with --overwrite", ckpt,
                 out_dir);
    else
        snprintf(out, n, "pick another --out or replace it with --overwrite (it has no checkpoint to resume)");
}

int vka_run_dir_busy(const char *out_dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/.lock", out_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* (a FIFO there must not block) */
    if (fd < 0) return 0;
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int busy = fcntl(fd, F_GETLK, &l) == 0 && l.l_type != F_UNLCK;
    close(fd);
    return busy;
}

/* Whether a run resuming from checkpoint `resume` in out_dir continues the run that wrote it
 * (`resume` is out_dir/checkpoint.ckpt, the same file), rather than starting over. */
static int continues(const char *resume, const char *out_dir)
{
    if (!resume || !resume[0]) return 0;
    /* The directory's own checkpoint (the same file), not another checkpoint kept there. */
    char own[PATH_MAX];
    struct stat a, b;
    snprintf(own, sizeof own, "%s/checkpoint.ckpt", out_dir);
    return stat(resume, &a) == 0 && stat(own, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int vka_run_dir_refuses(const vka_train_config *c, char *msg, size_t n)
{
    const char *which;
    if (c->overwrite || continues(c->resume, c->out_dir) || !holds_run(c->out_dir, &which))
        return 0;
    char advice[2400];
    advice_for(c->out_dir, c->resume, advice, sizeof advice);
    snprintf(msg, n, "%s already holds a run (%s): %s", c->out_dir, which, advice);
    return 1;
}

/* The records of a metrics.jsonl at or before step `last`, without a torn last line (a record
 * cut short by a full disk: appending would merge the next one into it), as one malloc'd text
 * (NULL without memory); *dropped: how many lines went. */
static char *records_up_to(FILE *f, uint64_t last, unsigned *dropped)
{
    size_t cap = 1 << 16, len = 0, line_cap = 0;
    char *kept = malloc(cap), *line = NULL;
    ssize_t n;
    *dropped = 0;
    while (kept && (n = getline(&line, &line_cap, f)) > 0) {
        const char *at = strstr(line, "\"step\":");
        if (line[n - 1] != '\n' || (at && strtoull(at + 7, NULL, 10) > last)) {
            (*dropped)++;
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
    if (kept) kept[len] = 0;
    return kept;
}

/* Rewrites the run's own metrics.jsonl without the records past step `last` (written after the
 * checkpoint by a run that then stopped without saving) or a torn last line. */
static vka_result trim_metrics(vka_logger *lg, const char *out_dir, uint64_t last)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return VKA_SUCCESS; /* no records yet */
    unsigned dropped = 0;
    char *kept = records_up_to(f, last, &dropped);
    fclose(f);
    if (!kept) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory to read it", path);
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

/* A run resumed into another directory starts that directory's metrics.jsonl with its run's
 * records up to the checkpoint, so that its metrics and curves show the whole run: read here
 * (before the directory is cleared: it may be the same one, under --overwrite), written by
 * write_seed. Only from the directory whose own checkpoint it is (a copy kept elsewhere has no
 * records of its own there). NULL: nothing to seed; *failed on an error (logged). */
static char *read_seed(vka_logger *lg, const vka_train_config *c, uint64_t last, int *failed)
{
    *failed = 0;
    char src_dir[1100], src[1120];
    vka_dir_of(c->resume, src_dir, sizeof src_dir);
    if (!continues(c->resume, src_dir)) return NULL;
    snprintf(src, sizeof src, "%s/metrics.jsonl", src_dir);
    FILE *f = fopen(src, "r");
    if (!f) return NULL; /* no records beside the checkpoint: the new ones start alone */
    unsigned dropped;
    char *kept = records_up_to(f, last, &dropped);
    fclose(f);
    if (!kept) {
        *failed = 1;
        vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory to read it", src);
    }
    return kept;
}

static vka_result write_seed(vka_logger *lg, const char *out_dir, const char *records, int *seeded)
{
    *seeded = 0;
    if (!records || !records[0]) return VKA_SUCCESS;
    char dst[1100];
    snprintf(dst, sizeof dst, "%s/metrics.jsonl", out_dir);
    vka_result rc = vka_file_replace_text(lg, dst, records);
    if (!rc) {
        unsigned lines = 0;
        for (const char *p = records; *p; p++) lines += *p == '\n';
        vka_log(lg, VKA_LOG_INFO, "%s: starts with the resumed run's %u record%s up to its checkpoint", dst, lines,
                lines == 1 ? "" : "s");
        *seeded = 1;
    }
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
    char refusal[3600];
    if (vka_run_dir_refuses(c, refusal, sizeof refusal))
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s", refusal);
    for (size_t i = 0; i < NUM_RUN_FILES; i++) { /* what the replaced run left */
        snprintf(path, sizeof path, "%s/%s", c->out_dir, RUN_FILES[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            return vka_fail(lg, VKA_ERROR_IO, "%s: cannot remove what the replaced run left (%s)", path,
                            strerror(errno));
    }
    return VKA_SUCCESS;
}

vka_result vka_run_dir_open(vka_logger *lg, const vka_train_config *c, uint64_t resume_step, int *continuing,
                            int *append_metrics, int *lock_fd)
{
    *lock_fd = -1;
    *continuing = *append_metrics = 0;
    vka_result rc = c->out_dir[0] ? vka_make_dirs(lg, "--out", c->out_dir, c->out_dir, NULL)
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
            return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--out %s: " VKA_RUN_DIR_BUSY, c->out_dir);
        return vka_fail(lg, VKA_ERROR_IO, "--out %s: cannot lock %s (%s)", c->out_dir, path, strerror(err));
    }
    int cont = continues(c->resume, c->out_dir), seeded = 0, failed = 0;
    char *seed = !cont && c->resume[0] ? read_seed(lg, c, resume_step, &failed) : NULL;
    rc = failed ? VKA_ERROR_OUT_OF_HOST_MEMORY : prepare(lg, c, resume_step, cont);
    if (!rc) rc = write_seed(lg, c->out_dir, seed, &seeded);
    free(seed);
    if (rc) {
        close(fd);
        return rc;
    }
    *continuing = cont;
    *append_metrics = cont || seeded;
    *lock_fd = fd;
    return VKA_SUCCESS;
}

void vka_run_dir_close(int lock_fd)
{
    if (lock_fd >= 0) close(lock_fd); /* closing drops the record lock */
}
