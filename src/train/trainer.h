/* `vkanchor train`: anchored training with reference masking, end to end on the GPU. */
#ifndef VKA_TRAIN_TRAINER_H
#define VKA_TRAIN_TRAINER_H

#include <stdio.h>

#include "nn/model.h"

typedef enum { VKA_OPT_SGD = 0, VKA_OPT_ADAMW } vka_optimizer_kind;
typedef enum { VKA_SCHED_COSINE = 0, VKA_SCHED_MULTISTEP, VKA_SCHED_CONSTANT } vka_schedule_kind;
typedef enum { VKA_MASK_TARGET_LABEL = 0, VKA_MASK_TARGET_UNIFORM } vka_mask_target;
typedef enum { VKA_MASK_BN_SKIP = 0, VKA_MASK_BN_UPDATE } vka_mask_bn;
typedef enum { VKA_REF_POOL_BATCH = 0, VKA_REF_POOL_TRAIN } vka_ref_pool;

#define VKA_MAX_MILESTONES 8

/* Everything a run depends on; saved beside the metrics and in every checkpoint. */
typedef struct vka_train_config {
    char data[512];               /* dataset name or directory */
    vka_model_kind model;
    uint32_t epochs, batch_size;
    vka_optimizer_kind optimizer;
    double lr, momentum, weight_decay, beta1, beta2, adam_eps;
    int nesterov;
    vka_schedule_kind schedule;
    uint32_t milestones[VKA_MAX_MILESTONES], milestone_count; /* epochs */
    double gamma;                 /* multistep factor */
    uint32_t warmup_epochs;       /* cosine: linear warm-up */
    int anchoring;                /* 0: standard training (--no-anchoring) */
    double mask_prob;             /* reference masking probability alpha */
    vka_mask_target mask_target;
    vka_mask_bn mask_bn_stats;
    vka_ref_pool ref_pool;
    uint32_t crop_pad;            /* random crop padding; 0: none */
    int flip;                     /* horizontal flips (off for digits) */
    double label_smoothing;
    uint64_t seed;
    uint64_t max_steps;           /* 0: no limit (stop early after this many steps in total) */
    char device[256];
    char out_dir[1024];
    char resume[1024];
    int overwrite;                /* a fresh run may replace the run in out_dir (--overwrite); not saved */
} vka_train_config;

/* The defaults: Fashion-MNIST, cnn, anchoring with masking alpha 0.25 toward the
 * label, SGD momentum 0.9, cosine schedule. */
void vka_train_config_default(vka_train_config *c);
/* JSON text of the configuration (malloc'd). */
char *vka_train_config_json(const vka_train_config *c);
/* Reads a configuration back from its JSON (the checkpoint's "config" section). */
vka_result vka_train_config_parse(vka_logger *lg, const char *json, vka_train_config *c);
/* The settings of `now` that differ from the run configuration was_json (a checkpoint's), as
 * "key now (was old), ..." (malloc'd), leaving out what a resumed run may change (max_steps,
 * out_dir, device, and epochs unless the schedule is cosine); NULL when nothing else differs
 * (or without memory). */
char *vka_train_config_changes(const char *was_json, const vka_train_config *now);
/* The learning rate at step `step` of `steps_per_epoch * epochs`. */
double vka_train_lr(const vka_train_config *c, uint64_t step, uint64_t steps_per_epoch);

typedef struct vka_train_result {
    uint32_t epochs_done;
    uint64_t steps_done;
    double last_loss, train_accuracy, test_accuracy;
    int interrupted;              /* SIGINT: checkpoint written (where a step ran), exit 130 */
    int saved;                    /* a checkpoint of this run is in out_dir (0: stopped before its first step) */
    int diverged;                 /* NaN, infinite or absurdly large loss */
} vka_train_result;

/* Trains per the config on `ctx`; writes config.json, metrics.jsonl and
 * checkpoint.ckpt into c->out_dir. `stop` is polled between steps (SIGINT). */
vka_result vka_train_run(vka_context *ctx, const vka_train_config *c, volatile int *stop,
                         vka_train_result *result);

/* ---- benchmark: training steps (and K-anchor inference) on synthetic data ---- */

typedef struct vka_bench_desc {
    uint32_t channels, size, classes; /* the data: (channels, size, size) images */
    uint32_t warmup, steps;
    uint32_t anchors;             /* K for the inference measurement */
    FILE *trace;                  /* not NULL: one JSON line per dispatch of the timed step, in order */
} vka_bench_desc;

#define VKA_BENCH_MAX_KERNELS 64

typedef struct vka_bench_result {
    double step_ms, images_per_s; /* wall clock, pipelined as in training */
    double record_ms;             /* host time recording one step's command buffer (overlaps the device's work) */
    double gpu_step_ms;           /* sum of the per-dispatch GPU times of one step */
    double final_loss;
    struct { char name[64]; double ms, bytes; uint32_t count; } kernels[VKA_BENCH_MAX_KERNELS];
    uint32_t kernel_count;        /* per-kernel GPU time of one step, by kernel name */
    double conv_flops[3];         /* per step: forward, input gradient, weight gradient */
    double linear_flops;          /* per step: the classifier's three matrix products */
    double infer_images_per_s;    /* K-anchor inference: images (each with K references) per second */
    uint32_t infer_anchors;
    uint64_t device_bytes;        /* device memory the run allocated */
} vka_bench_result;

/* Times c->batch_size training steps of c->model on synthetic data after a warm-up. */
vka_result vka_train_bench(vka_context *ctx, const vka_train_config *c, const vka_bench_desc *d,
                           vka_bench_result *out);

#endif
