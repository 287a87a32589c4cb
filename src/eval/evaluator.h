/* Anchored inference over a dataset: a trained checkpoint, K references drawn
 * with a seed from the training set (the same K for every test image), the
 * K x B anchored inputs run as one batch, then mean logits, uncertainty and
 * calibrated logits per image, all on the GPU; the per-sample results come
 * back to the host for the metrics. */
#ifndef VKA_EVAL_EVALUATOR_H
#define VKA_EVAL_EVALUATOR_H

#include "nn/model.h"
#include "train/trainer.h"

typedef struct vka_eval_desc {
    const char *checkpoint;
    const char *data;             /* NULL: the dataset the checkpoint was trained on */
    uint32_t anchors;             /* K >= 1 (ignored for standard models) */
    uint32_t batch;               /* test images per dispatch chain; 0: 128 / K rounded down, >= 1 */
    uint64_t seed;                /* which training images become the references */
} vka_eval_desc;

/* Progress over a whole evaluation of several passes (clean, OOD, each corruption severity):
 * the caller sets total (the images of every pass), started and each pass's name;
 * vka_evaluator_run counts the images it has done and logs a line (done, images/s, ETA) when
 * `interval` seconds have passed since the last. Nothing is logged while total is 0. */
typedef struct vka_eval_progress {
    uint64_t total, done;
    double started, last, interval;
    char pass[48];
} vka_eval_progress;

typedef struct vka_evaluator {
    vka_context *ctx;
    vka_train_config train_config;/* from the checkpoint */
    vka_dataset train;            /* the references come from here */
    uint32_t channels, height, width, classes;
    float mean[4], std[4];
    uint32_t anchors, batch;
    int anchored;
    vka_model *model;
    vka_arena *dev, *host;
    vka_cmd *cmd;
    vka_tensor pixels, aug;       /* staging: (batch, C, H, W) uint8, zero crop params */
    vka_tensor x, refs, input;    /* device: normalized images, (K, C, H, W) refs, anchored input */
    vka_tensor mean_logits, uncertainty, calibrated; /* device: (B, classes), (B), (B, classes) */
    vka_tensor out_host;          /* staging: mean logits | uncertainty | calibrated */
    vka_tensor corrupted;         /* staging-sized device buffer for corrupted pixels */
    vka_tensor corrupt_scratch;   /* what the corruption kernels need, grown on demand */
    vka_eval_progress progress;
} vka_evaluator;

/* Which training images become the K references: k_count distinct indices below count (the
 * released code draws them by randperm), the same for the same seed. -1: no memory, or
 * k_count > count. */
int vka_eval_reference_indices(uint64_t seed, uint32_t k_count, uint32_t count, uint32_t *out);

/* Per-sample outputs of one pass over a dataset (malloc'd arrays). */
typedef struct vka_eval_outputs {
    uint32_t n, classes;
    float *logits;                /* (n, classes) mean over the K references */
    float *calibrated;            /* (n, classes) mean / (1 + exp(uncertainty)) */
    float *uncertainty;           /* (n,) std over K of sigmoid(logits), mean over classes (0 if K = 1) */
    uint8_t *labels;              /* (n,) */
} vka_eval_outputs;

/* Loads the checkpoint, checks it against the data, builds the model and the references.
 * Fails before any work when the checkpoint and the data disagree (channels, size,
 * classes) or K exceeds the training set. */
vka_result vka_evaluator_create(vka_context *ctx, const vka_eval_desc *d, vka_evaluator **out);
void vka_evaluator_destroy(vka_evaluator *e);

/* Runs `ds` (its first `limit` images; 0: all) through the model; `corrupt`, if not
 * NULL, is applied to every batch of uint8 images on the GPU first. */
struct vka_corrupt_desc;
vka_result vka_evaluator_run(vka_evaluator *e, const vka_dataset *ds, uint32_t limit,
                             const struct vka_corrupt_desc *corrupt, vka_eval_outputs *out);
void vka_eval_outputs_free(vka_eval_outputs *o);

#endif
