/* Replacing a file atomically: the new content goes to PATH.tmp, is synced, and renamed over
 * PATH, so a reader (or a crash) sees the old file or the new one, never a mix or a stub. */
#ifndef VKA_TRAIN_FILE_REPLACE_H
#define VKA_TRAIN_FILE_REPLACE_H

#include <stddef.h>
#include <stdint.h>

#include "vk/vk_internal.h"

/* Writes the body through write_body(fd, user) (0 on success, -1 with errno set), then
 * syncs and renames it into place. On failure PATH is untouched and PATH.tmp removed. */
vka_result vka_file_replace(vka_logger *lg, const char *path, int (*write_body)(int fd, void *user), void *user);
/* Whether PATH may be written as an output: absent, or a regular file (renaming over a link or
 * a device node would replace the link or the node itself), and not the same file as any of the
 * n paths in `others` (the run's inputs and its other outputs; NULL entries are skipped).
 * Logs why not, naming `flag` ("--report"). */
vka_result vka_output_path_check(vka_logger *lg, const char *flag, const char *path, const char *const *others, int n);
/* The directory part of a file path: "." without one, "/" for a file at the root. */
void vka_dir_of(const char *path, char *out, size_t n);
/* Whether file `path` (which may not exist yet) lies directly in directory `dir`, both resolved. */
int vka_path_in_dir(const char *path, const char *dir);
/* The directories one command created, in order, so that a command that fails can take them
 * away again and leave the file system as it found it. */
typedef struct vka_made_dirs {
    char path[16][1024];
    int n;
} vka_made_dirs;
/* mkdir -p of dir (nothing for ""); a failure names `flag` and the path the user gave (`named`:
 * dir itself, or a file inside it). Each directory created is added to `made` (may be NULL). */
vka_result vka_make_dirs(vka_logger *lg, const char *flag, const char *named, const char *dir, vka_made_dirs *made);
/* mkdir -p of the directory above file `path` (nothing for a bare file name). */
vka_result vka_make_parent_dirs(vka_logger *lg, const char *flag, const char *path, vka_made_dirs *made);
/* Before a command's work: makes the directories above PATH (recorded in `made`) and checks
 * that PATH can be written (a probe that leaves it as it was), so that a long run does not fail
 * at its very end. A failure names `flag`. */
vka_result vka_output_prepare(vka_logger *lg, const char *flag, const char *path, vka_made_dirs *made);
/* Removes the directories in `made` that are still empty, deepest first, and forgets them all. */
void vka_made_dirs_remove(vka_made_dirs *made);
/* write(2) until done (EINTR retried): 0, or -1 with errno. */
int vka_write_all(int fd, const void *data, uint64_t bytes);
/* vka_file_replace with `text` as the whole content. */
vka_result vka_file_replace_text(vka_logger *lg, const char *path, const char *text);

#endif
