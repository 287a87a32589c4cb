/* A training run's directory (--out): made if absent, held by one run at a time, and made
 * consistent with what the run continues before anything new is written into it. */
#ifndef VKA_TRAIN_RUN_DIR_H
#define VKA_TRAIN_RUN_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "train/trainer.h"
#include "vk/vk_internal.h"

/* Whether a run of c may not start in c->out_dir: it holds a run that c neither continues (its
 * own checkpoint) nor replaces (--overwrite). msg: the one-line refusal with what to do. The
 * CLI asks before any work; vka_run_dir_open again under the lock. */
int vka_run_dir_refuses(const vka_train_config *c, char *msg, size_t n);

/* What a run finds when another holds its directory's lock (after "--out DIR: "). */
#define VKA_RUN_DIR_BUSY "another vkanchor train is writing into it; wait for it to finish or pick another --out"

/* Whether another process holds out_dir's lock now (a run writing into it). Not for a process
 * that holds it itself: closing the probe's descriptor would drop that process's lock. */
int vka_run_dir_busy(const char *out_dir);

/* Makes c->out_dir (and the directories above it, like mkdir -p) and locks it (out_dir/.lock,
 * a POSIX record lock held until vka_run_dir_close; record locks belong to the process, so
 * this guards against other processes, not a second run in this one). Then, under the lock:
 * - a run that continues its directory's run (its own checkpoint) keeps it, dropping the
 *   metrics records past resume_step (written after the checkpoint by a run that stopped
 *   without saving) and a torn last line, so that the metrics and curves run forward once;
 * - any other run refuses a directory that holds a run unless c->overwrite, and otherwise
 *   removes what a replaced run left (checkpoint, metrics, curves), so that a crash before
 *   the first checkpoint cannot leave the new configuration beside the old model.
 *   A run resumed from another directory's own checkpoint starts its metrics.jsonl with that
 *   run's records up to resume_step, so that its curves show the whole run.
 * The run's files there must be regular files or absent (a link or a device would be replaced
 * by the first atomic write). *continuing: which of the two; *append_metrics: metrics.jsonl
 * holds records this run appends to; *lock_fd: the lock (-1 on failure). */
vka_result vka_run_dir_open(vka_logger *lg, const vka_train_config *c, uint64_t resume_step, int *continuing,
                            int *append_metrics, int *lock_fd);

/* Releases the lock (the file stays: an empty marker). */
void vka_run_dir_close(int lock_fd);

#endif
