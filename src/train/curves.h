/* Training curves: DIR/loss.png and DIR/accuracy.png drawn from DIR/metrics.jsonl (all of
 * it, so a run resumed into its own directory shows whole; records a crash repeated after
 * the resume count once), replaced atomically. */
#ifndef VKA_TRAIN_CURVES_H
#define VKA_TRAIN_CURVES_H

#include "vk/vk_internal.h"

/* Training loss per logged step and per epoch (loss.png); training accuracy per logged
 * step and per epoch, and test accuracy per epoch (accuracy.png); x is the step.
 * VKA_ERROR_IO, logged as a warning naming the file, when metrics.jsonl cannot be read or
 * a figure written (the caller goes on: figures are not worth a run). */
vka_result vka_train_write_curves(vka_logger *lg, const char *out_dir);

#endif
