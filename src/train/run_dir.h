/* A training run's directory (--out): made if absent, held by one run at a time, and made
 * consistent with what the run continues before anything new is written into it. */
#ifndef VKA_TRAIN_RUN_DIR_H
#define VKA_TRAIN_RUN_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "train/trainer.h"
#include "vk/vk_internal.h"

/* Whether out_dir holds a run (a checkpoint or metrics): *which names the file found. */
int vka_run_dir_holds_run(const char *out_dir, const char **which);

/* Whether a run resuming from checkpoint `resume` in out_dir continues the run that wrote it
 * (`resume` is out_dir/checkpoint.ckpt, the same file), rather than starting over. */
int vka_run_dir_continues(const char *resume, const char *out_dir);

/* What to do about a directory that holds a run: resume its checkpoint (where it has one and
 * `resume` names none), another --out, or --overwrite. */
void vka_run_dir_advice(const char *out_dir, const char *resume, char *out, size_t n);

/* Whether another process holds out_dir's lock now (a run writing into it). Not for a process
 * that holds it itself: closing the probe's descriptor would drop that process's lock. */
int vka_run_dir_busy(const char *out_dir);

/* Makes c->out_dir (and the directories above it, like mkdir -p) and locks it (out_dir/.lock,
 * a POSIX record lock held until vka_run_dir_close; record locks belong to the process, so
 * this guards against other processes, not a second run in this one). Then, under the lock:
 * - a run that continues its directory's run (vka_run_dir_continues) keeps it, dropping the
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
