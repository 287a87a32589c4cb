/* Atomic file replacement (file_replace.h): checkpoints, run configs, evaluation reports. */
/* realpath (X/Open, beyond the project's _POSIX_C_SOURCE). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* PATH with its directory resolved (links, "..", "."): names a file that may not exist yet. */
static int canonical_path(const char *path, char out[PATH_MAX])
{
    char d[PATH_MAX], b[PATH_MAX], dir[PATH_MAX];
    if (snprintf(d, sizeof d, "%s", path) >= (int)sizeof d) return 0;
    snprintf(b, sizeof b, "%s", path);
    if (!realpath(dirname(d), dir)) return 0;
    return snprintf(out, PATH_MAX, "%s/%s", dir, basename(b)) < PATH_MAX;
}

/* Whether a and b name the same file: the same inode where both exist, else the same
 * canonical path. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ca[PATH_MAX], cb[PATH_MAX];
    if (canonical_path(a, ca) && canonical_path(b, cb)) return strcmp(ca, cb) == 0;
    return strcmp(a, b) == 0; /* a directory still to be made: the paths as given */
}

void vka_dir_of(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == out) out[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(out, n, ".");
}

int vka_path_in_dir(const char *path, const char *dir)
{
    char file[PATH_MAX], d[PATH_MAX];
    if (!canonical_path(path, file) || !realpath(dir, d)) return 0;
    size_t n = strlen(d);
    return strncmp(file, d, n) == 0 && file[n] == '/' && !strchr(file + n + 1, '/');
}

/* VKA_SUCCESS unless PATH exists and is not a regular file. */
static vka_result check_regular(vka_logger *lg, const char *flag, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode)) return VKA_SUCCESS;
    const char *kind = S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "not a regular file";
    return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s%s%s: it is %s, which an output would replace; give the path "
                    "of a regular file", flag ? flag : "", flag ? " " : "", path, kind);
}

vka_result vka_output_path_check(vka_logger *lg, const char *flag, const char *path, const char *const *others, int n)
{
    vka_result rc = check_regular(lg, flag, path);
    if (rc) return rc;
    for (int i = 0; i < n; i++)
        if (others[i] && same_file(path, others[i]))
            return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s %s: the same file as %s, which this run also reads "
                            "or writes; give another path", flag, path, others[i]);
    return VKA_SUCCESS;
}

vka_result vka_file_replace(vka_logger *lg, const char *path, int (*write_body)(int fd, void *user), void *user)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "path too long: %s", path);
    vka_result rc = check_regular(lg, NULL, path);
    if (rc) return rc;
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

vka_result vka_make_dirs(vka_logger *lg, const char *flag, const char *named, const char *dir, vka_made_dirs *made)
{
    char d[4096];
    if (!dir[0]) return VKA_SUCCESS;
    if (snprintf(d, sizeof d, "%s", dir) >= (int)sizeof d)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s %s: path too long", flag, named);
    for (char *p = d + 1;; p++) {
        if (*p != '/' && *p) continue;
        char was = *p;
        *p = 0;
        struct stat st;
        /* A component that is a directory already passes whatever mkdir would say (EACCES, EROFS). */
        if (!(stat(d, &st) == 0 && S_ISDIR(st.st_mode))) {
            if (mkdir(d, 0755) == 0) {
                if (made && made->n < (int)(sizeof made->path / sizeof made->path[0]) &&
                    strlen(d) < sizeof made->path[0])
                    memcpy(made->path[made->n++], d, strlen(d) + 1);
            } else if (errno != EEXIST) {
                return vka_fail(lg, VKA_ERROR_IO, "%s %s: cannot create the directory %s (%s)", flag, named, d,
                                strerror(errno));
            }
        }
        if (!(*p = was)) break;
    }
    return VKA_SUCCESS;
}

vka_result vka_make_parent_dirs(vka_logger *lg, const char *flag, const char *path, vka_made_dirs *made)
{
    char parent[4096];
    if (strlen(path) >= sizeof parent) return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s %s: path too long", flag, path);
    vka_dir_of(path, parent, sizeof parent); /* "." or "/" exist already: nothing made */
    return vka_make_dirs(lg, flag, path, parent, made);
}

vka_result vka_output_prepare(vka_logger *lg, const char *flag, const char *path, vka_made_dirs *made)
{
    vka_result rc = vka_make_parent_dirs(lg, flag, path, made);
    if (rc) return rc;
    int existed = access(path, F_OK) == 0;
    FILE *f = fopen(path, "a");
    if (!f) return vka_fail(lg, VKA_ERROR_IO, "%s %s: cannot be written: %s", flag, path, strerror(errno));
    fclose(f);
    if (!existed) remove(path); /* nothing left behind if the command fails */
    return VKA_SUCCESS;
}

void vka_made_dirs_remove(vka_made_dirs *made)
{
    while (made->n > 0) rmdir(made->path[--made->n]); /* one not empty stays (ENOTEMPTY) */
}
