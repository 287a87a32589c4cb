/* A training run's directory (--out): made if absent, held by one run at a time, and made
 * consistent with what the run continues before anything new is written into it. */
#ifndef VKA_TRAIN_RUN_DIR_H
#define VKA_TRAIN_RUN_DIR_H

#include <stdint.h>

#include "vk/vk_internal.h"

/* Makes out_dir (and the directories above it, like mkdir -p) and locks it (out_dir/.lock, a POSIX record lock held
 * until vka_run_dir_close): a second run into the same directory is refused while the first
 * lives. Then, for a fresh run (resume_step < 0), removes what a replaced run left (its
 * checkpoint and curves), so that a crash before the first checkpoint cannot leave the new
 * configuration beside the old model; for a resumed run, drops the metrics records past
 * resume_step (written after the checkpoint it resumes from, by a run that then stopped
 * without saving), so that the metrics and curves run forward once. *lock_fd: the lock's
 * descriptor (-1 on failure). */
vka_result vka_run_dir_open(vka_logger *lg, const char *out_dir, int64_t resume_step, int *lock_fd);

/* Releases the lock (the file stays: an empty marker). */
void vka_run_dir_close(int lock_fd);

#endif
