/* The training loop. One step is one command buffer: augment the uint8 batch,
 * build the anchored input (with the reference mask), forward, loss, backward,
 * optimizer, copy the loss statistics to the host. Two step slots alternate so
 * the host prepares step i+1 while the GPU runs step i; the statistics of a
 * step are read when its slot comes round again, never stalling the pipeline.
 *
 * All per-step randomness (batch order, crops, flips, references, masking) is
 * drawn from hashes of (seed, epoch or step): a run is reproducible bit for bit
 * and a resumed run continues exactly where a straight run would be. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/augment.h"
#include "nn/anchor.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "train/checkpoint.h"
#include "train/curves.h"
#include "train/run_dir.h"
#include "train/file_replace.h"
#include "vk/clock.h"
#include "train/trainer.h"

/* ---- deterministic randomness ------------------------------------------------- */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A stream for one purpose: (seed, what, index) -> independent sequence. */
static rng rng_for(uint64_t seed, uint64_t what, uint64_t index)
{
    rng r = {seed * 0xD1B54A32D192ED03ull ^ what * 0x9E3779B97F4A7C15ull};
    rng_next(&r);
    r.s ^= index * 0xA24BAED4963EE407ull;
    rng_next(&r);
    return r;
}

static uint32_t rng_below(rng *r, uint32_t n) { return (uint32_t)((rng_next(r) >> 32) * n >> 32); }
static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

enum { STREAM_ORDER = 1, STREAM_STEP = 2, STREAM_EVAL_REF = 3 };

/* ---- state ------------------------------------------------------------------------ */

typedef struct step_slot {
    vka_cmd *cmd;
    vka_tensor pixels;            /* staging: (rows, C, H, W) uint8 */
    vka_tensor aug;               /* staging: (rows, 3) int32 crop dx, dy, flip */
    vka_tensor labels;            /* staging: (B,) int32 */
    vka_tensor ref_index;         /* staging: (B or 2B,) int32 */
    vka_tensor stats_host;        /* staging: loss statistics of this slot's step */
    int in_flight;
    uint64_t step;
    int masked;
    double lr;
} step_slot;

typedef struct trainer {
    vka_context *ctx;
    vka_logger *lg;
    const vka_train_config *cfg;
    vka_dataset train, test;
    vka_model *model;
    vka_arena *dev, *host;
    uint32_t B, rows;             /* batch; rows augmented per step (2B with the train ref pool) */
    uint64_t image_bytes;         /* C*H*W */
    vka_tensor x;                 /* (rows, C, H, W) normalized */
    vka_tensor input;             /* (rows, 2C, H, W) anchored, or x */
    vka_tensor dlogits;           /* (B, classes) */
    vka_tensor stats;             /* cross-entropy statistics (2 + B) */
    vka_tensor opt_a, opt_b;      /* SGD momentum / AdamW m, v: (param_floats,) */
    vka_tensor eval_ref;          /* (1, C, H, W) the inference reference */
    step_slot slot[2];
    uint32_t *order;              /* this epoch's sample order */
    uint32_t order_epoch;
    FILE *metrics;
    int lock_fd;                  /* the run directory's lock (run_dir.h), -1 when not held */
} trainer;

static vka_augment_shape augment_shape(const trainer *t, uint32_t n)
{
    vka_augment_shape s = {.n = n, .c = t->train.channels, .h = t->train.height, .w = t->train.width};
    for (int c = 0; c < 4; c++) s.mean[c] = t->train.mean[c], s.std[c] = t->train.std[c] > 0 ? t->train.std[c] : 1;
    return s;
}

/* Sets up model, buffers and step slots for the datasets already in t. */
static vka_result trainer_open(trainer *t, int timing)
{
    const vka_train_config *c = t->cfg;
    vka_result rc = VKA_SUCCESS;
    if (t->test.channels != t->train.channels || t->test.height != t->train.height ||
        t->test.width != t->train.width || t->test.classes != t->train.classes)
        return vka_fail(t->lg, VKA_ERROR_FORMAT, "%s: the test images (%ux%ux%u) differ from the training images (%ux%ux%u)",
                        c->data, t->test.channels, t->test.height, t->test.width, t->train.channels,
                        t->train.height, t->train.width);
    t->B = c->batch_size;
    if (t->B < 2 || t->B > t->train.count)
        return vka_fail(t->lg, VKA_ERROR_INVALID_ARGUMENT,
                        "--batch-size %u: must be at least 2 and at most the %u training images", t->B, t->train.count);
    t->rows = c->anchoring && c->ref_pool == VKA_REF_POOL_TRAIN ? 2 * t->B : t->B;
    t->image_bytes = (uint64_t)t->train.channels * t->train.height * t->train.width;
    uint32_t in_c = t->train.channels * (c->anchoring ? 2 : 1);
    VKA_CHECK(vka_model_create(t->ctx,
                               &(vka_model_desc){.kind = c->model, .in_channels = in_c, .height = t->train.height,
                                                 .width = t->train.width, .classes = t->train.classes, .batch = t->B},
                               &t->model));
    VKA_CHECK(vka_model_init(t->model, c->seed));
    VKA_CHECK(vka_arena_create(t->ctx, &(vka_arena_desc){.name = "training"}, &t->dev));
    VKA_CHECK(vka_arena_create(t->ctx, &(vka_arena_desc){.name = "step staging", .kind = VKA_MEMORY_STAGING}, &t->host));
    uint64_t pix = (uint64_t)t->rows * t->image_bytes;
    VKA_CHECK(vka_arena_alloc(t->dev, pix * 4, &t->x));
    if (c->anchoring) VKA_CHECK(vka_arena_alloc(t->dev, pix * 8, &t->input));
    else t->input = t->x;
    VKA_CHECK(vka_arena_alloc(t->dev, (uint64_t)t->B * t->train.classes * 4, &t->dlogits));
    VKA_CHECK(vka_arena_alloc(t->dev, vka_cross_entropy_stats_bytes(t->B), &t->stats));
    uint64_t pbytes = t->model->param_floats * 4;
    VKA_CHECK(vka_arena_alloc(t->dev, pbytes, &t->opt_a));
    VKA_CHECK(vka_fill(t->ctx, t->opt_a, 0));
    if (c->optimizer == VKA_OPT_ADAMW) {
        VKA_CHECK(vka_arena_alloc(t->dev, pbytes, &t->opt_b));
        VKA_CHECK(vka_fill(t->ctx, t->opt_b, 0));
    }
    VKA_CHECK(vka_arena_alloc(t->dev, t->image_bytes * 4, &t->eval_ref));
    for (int s = 0; s < 2; s++) {
        step_slot *sl = &t->slot[s];
        VKA_CHECK(vka_cmd_create(t->ctx, &(vka_cmd_desc){.timing = timing}, &sl->cmd));
        VKA_CHECK(vka_arena_alloc(t->host, (pix + 3) / 4 * 4, &sl->pixels));
        VKA_CHECK(vka_arena_alloc(t->host, (uint64_t)t->rows * 12, &sl->aug));
        VKA_CHECK(vka_arena_alloc(t->host, (uint64_t)t->B * 4, &sl->labels));
        VKA_CHECK(vka_arena_alloc(t->host, (uint64_t)t->rows * 4, &sl->ref_index));
        VKA_CHECK(vka_arena_alloc(t->host, vka_cross_entropy_stats_bytes(t->B), &sl->stats_host));
    }
    t->order = malloc(t->train.count * sizeof *t->order);
    t->order_epoch = UINT32_MAX;
    if (!t->order) rc = vka_fail(t->lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
done:
    return rc;
}

static void trainer_close(trainer *t)
{
    for (int s = 0; s < 2; s++) vka_cmd_destroy(t->slot[s].cmd);
    vka_arena_destroy(t->host);
    vka_arena_destroy(t->dev);
    vka_model_destroy(t->model);
    vka_dataset_free(&t->train);
    vka_dataset_free(&t->test);
    free(t->order);
    if (t->metrics) fclose(t->metrics);
    vka_run_dir_close(t->lock_fd);
}

/* ---- one step ---------------------------------------------------------------------- */

static void epoch_order(trainer *t, uint32_t epoch)
{
    if (t->order_epoch == epoch) return;
    rng r = rng_for(t->cfg->seed, STREAM_ORDER, epoch);
    for (uint32_t i = 0; i < t->train.count; i++) t->order[i] = i;
    for (uint32_t i = t->train.count - 1; i > 0; i--) {
        uint32_t j = rng_below(&r, i + 1);
        uint32_t tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
    t->order_epoch = epoch;
}

/* Host side of a step: gather the uint8 batch and draw its randomness. */
static void prepare_step(trainer *t, step_slot *sl, uint32_t epoch, uint32_t index, uint64_t step)
{
    const vka_train_config *c = t->cfg;
    epoch_order(t, epoch);
    rng r = rng_for(c->seed, STREAM_STEP, step);
    uint8_t *pix = vka_tensor_map(sl->pixels);
    int32_t *aug = vka_tensor_map(sl->aug), *labels = vka_tensor_map(sl->labels), *ref = vka_tensor_map(sl->ref_index);
    const int pad = (int)c->crop_pad;
    for (uint32_t b = 0; b < t->B; b++) {
        uint32_t i = t->order[(uint64_t)index * t->B + b];
        memcpy(pix + b * t->image_bytes, t->train.images + i * t->image_bytes, t->image_bytes);
        labels[b] = t->train.labels[i];
        aug[3 * b] = pad ? (int32_t)rng_below(&r, 2 * pad + 1) - pad : 0;
        aug[3 * b + 1] = pad ? (int32_t)rng_below(&r, 2 * pad + 1) - pad : 0;
        aug[3 * b + 2] = c->flip && !t->train.digits ? (int32_t)(rng_next(&r) >> 63) : 0;
    }
    /* References: drawn with replacement from the batch, or from a separate
     * stream of un-augmented training images placed after the batch. */
    for (uint32_t b = 0; b < t->B; b++)
        ref[b] = (int32_t)(rng_below(&r, t->B) + (t->rows > t->B ? t->B : 0));
    for (uint32_t b = t->B; b < t->rows; b++) {
        uint32_t i = rng_below(&r, t->train.count);
        memcpy(pix + b * t->image_bytes, t->train.images + i * t->image_bytes, t->image_bytes);
        aug[3 * b] = aug[3 * b + 1] = aug[3 * b + 2] = 0;
        ref[b] = (int32_t)b;
    }
    sl->masked = c->anchoring && rng_unit(&r) < c->mask_prob;
    sl->step = step;
}

static vka_result record_step(trainer *t, step_slot *sl, uint64_t steps_per_epoch)
{
    const vka_train_config *c = t->cfg;
    vka_cmd *cmd = sl->cmd;
    vka_model *m = t->model;
    vka_result rc = vka_cmd_reset(cmd);
    if (rc) return rc;
    vka_augment_shape as = augment_shape(t, t->rows);
    vka_cmd_set_scope(cmd, "data"); /* the timings' scopes (bench --trace); the model sets its nodes' */
    VKA_CHECK(vka_augment(cmd, &as, t->x, sl->pixels, sl->aug));
    /* The anchored input straight into the first conv's packed x where it takes it (no pack pass,
     * perf-log 64); with the train reference pool its 2B rows go the NCHW way. */
    vka_packed_layout in_layout;
    int input_packed = c->anchoring && t->rows == t->B && vka_model_input_layout(m, t->B, &in_layout);
    if (c->anchoring) {
        vka_anchor_shape s = {.batch = t->rows, .channels = t->train.channels, .height = t->train.height,
                              .width = t->train.width};
        if (input_packed) VKA_CHECK(vka_anchor_train_input_packed(cmd, &s, &in_layout, t->x, sl->ref_index, sl->masked));
        else VKA_CHECK(vka_anchor_train_input(cmd, &s, t->input, t->x, sl->ref_index, sl->masked));
    }
    int update_bn = !(sl->masked && c->mask_bn_stats == VKA_MASK_BN_SKIP);
    VKA_CHECK(vka_model_forward(cmd, m, &(vka_forward_desc){.n = t->B, .training = 1, .update_bn_stats = update_bn,
                                                           .input_packed = input_packed},
                                vka_tensor_slice(t->input, 0, (uint64_t)t->B * m->desc.in_channels * t->image_bytes /
                                                                  t->train.channels * 4)));
    vka_cross_entropy_desc ce = {.batch = t->B, .classes = t->train.classes,
                                 .target = sl->masked && c->mask_target == VKA_MASK_TARGET_UNIFORM ? VKA_CE_UNIFORM
                                                                                                    : VKA_CE_LABEL,
                                 .smoothing = (float)c->label_smoothing};
    vka_cmd_set_scope(cmd, "loss");
    VKA_CHECK(vka_cross_entropy(cmd, &ce, t->dlogits, t->stats, vka_model_logits(m, t->B), sl->labels));
    VKA_CHECK(vka_model_backward(cmd, m, t->B, t->dlogits));
    vka_cmd_set_scope(cmd, "optimizer");
    /* The one place where a data-parallel all-reduce of m->grads goes (scale-out). */
    sl->lr = vka_train_lr(c, sl->step, steps_per_epoch);
    if (c->optimizer == VKA_OPT_SGD) {
        vka_sgd_params p = {.lr = sl->lr, .momentum = c->momentum, .weight_decay = c->weight_decay,
                            .nesterov = c->nesterov};
        VKA_CHECK(vka_sgd_step(cmd, &p, m->param_floats, m->params, t->opt_a, m->grads));
    } else {
        vka_adamw_params p = {.lr = sl->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->adam_eps,
                              .weight_decay = c->weight_decay, .step = (uint32_t)(sl->step + 1)};
        VKA_CHECK(vka_adamw_step(cmd, &p, m->param_floats, m->params, t->opt_a, t->opt_b, m->grads));
    }
    vka_cmd_set_scope(cmd, NULL);
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_TRANSFER); /* loss statistics written -> copied */
    VKA_CHECK(vka_cmd_copy(cmd, sl->stats_host, t->stats));
    vka_cmd_barrier(cmd, VKA_HAZARD_ANY_TO_HOST);        /* copy -> host reads after the fence */
done:
    return rc;
}

/* ---- evaluation, checkpoints, reporting ------------------------------------------ */

/* Top-1 test accuracy with one reference (anchored) or none. */
static vka_result evaluate(trainer *t, double *accuracy)
{
    step_slot *sl = &t->slot[0];
    vka_model *m = t->model;
    uint64_t correct = 0;
    vka_result rc = VKA_SUCCESS;
    for (uint32_t first = 0; first < t->test.count; first += t->B) {
        uint32_t n = t->test.count - first < t->B ? t->test.count - first : t->B;
        memcpy(vka_tensor_map(sl->pixels), t->test.images + (uint64_t)first * t->image_bytes, n * t->image_bytes);
        memset(vka_tensor_map(sl->aug), 0, (uint64_t)n * 12);
        int32_t *labels = vka_tensor_map(sl->labels);
        for (uint32_t b = 0; b < n; b++) labels[b] = t->test.labels[first + b];
        VKA_CHECK(vka_cmd_reset(sl->cmd));
        vka_augment_shape as = augment_shape(t, n);
        VKA_CHECK(vka_augment(sl->cmd, &as, t->x, sl->pixels, sl->aug));
        if (t->cfg->anchoring) {
            vka_anchor_shape s = {.batch = n, .channels = t->train.channels, .height = t->train.height,
                                  .width = t->train.width, .anchors = 1};
            VKA_CHECK(vka_anchor_infer_input(sl->cmd, &s, t->input, t->x, t->eval_ref));
        }
        VKA_CHECK(vka_model_forward(sl->cmd, m, &(vka_forward_desc){.n = n}, t->input));
        vka_cross_entropy_desc ce = {.batch = n, .classes = t->train.classes};
        VKA_CHECK(vka_cross_entropy(sl->cmd, &ce, (vka_tensor){0}, t->stats, vka_model_logits(m, n), sl->labels));
        vka_cmd_barrier(sl->cmd, VKA_HAZARD_SHADER_TO_TRANSFER);
        VKA_CHECK(vka_cmd_copy(sl->cmd, vka_tensor_slice(sl->stats_host, 0, 8), vka_tensor_slice(t->stats, 0, 8)));
        vka_cmd_barrier(sl->cmd, VKA_HAZARD_ANY_TO_HOST);
        VKA_CHECK(vka_cmd_submit(sl->cmd));
        VKA_CHECK(vka_cmd_wait(sl->cmd));
        correct += (uint64_t)((const float *)vka_tensor_map(sl->stats_host))[VKA_CE_STAT_CORRECT];
    }
    *accuracy = (double)correct / t->test.count;
done:
    return rc;
}

/* The inference reference: one training image, normalized, chosen by the seed. */
static vka_result prepare_eval_ref(trainer *t)
{
    step_slot *sl = &t->slot[0];
    rng r = rng_for(t->cfg->seed, STREAM_EVAL_REF, 0);
    uint32_t i = rng_below(&r, t->train.count);
    memcpy(vka_tensor_map(sl->pixels), t->train.images + (uint64_t)i * t->image_bytes, t->image_bytes);
    memset(vka_tensor_map(sl->aug), 0, 12);
    vka_result rc = vka_cmd_reset(sl->cmd);
    if (rc) return rc;
    vka_augment_shape as = augment_shape(t, 1);
    if ((rc = vka_augment(sl->cmd, &as, t->eval_ref, sl->pixels, sl->aug))) return rc;
    if ((rc = vka_cmd_submit(sl->cmd))) return rc;
    return vka_cmd_wait(sl->cmd);
}

/* This epoch's training statistics so far (the epoch record's train loss and accuracy). */
typedef struct running { double loss, correct; uint64_t steps; } running;

typedef struct progress {
    uint32_t epoch, index;        /* next step to run */
    uint64_t step;
    running epoch_so_far;         /* the current epoch's statistics before `index` */
    double seconds;               /* training time of the run before this process (its records' clock) */
} progress;

static vka_result save_checkpoint(trainer *t, const progress *p)
{
    vka_model *m = t->model;
    uint64_t pbytes = m->param_floats * 4;
    float *params = malloc(pbytes), *bn = malloc(m->bn_floats * 4 + 4);
    float *oa = malloc(pbytes), *ob = t->cfg->optimizer == VKA_OPT_ADAMW ? malloc(pbytes) : NULL;
    char *config = vka_train_config_json(t->cfg);
    vka_result rc = VKA_SUCCESS;
    if (!params || !bn || !oa || (t->cfg->optimizer == VKA_OPT_ADAMW && !ob) || !config) {
        rc = vka_fail(t->lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory writing a checkpoint");
        goto done;
    }
    VKA_CHECK(vka_download(t->ctx, m->params, 0, params, pbytes));
    VKA_CHECK(vka_download(t->ctx, m->bn_stats, 0, bn, m->bn_floats * 4));
    VKA_CHECK(vka_download(t->ctx, t->opt_a, 0, oa, pbytes));
    if (ob) VKA_CHECK(vka_download(t->ctx, t->opt_b, 0, ob, pbytes));
    uint32_t shape[5] = {t->train.channels, t->train.height, t->train.width, t->train.classes, m->desc.in_channels};
    uint64_t prog[3] = {p->epoch, p->index, p->step};
    /* (A section of its own: checkpoints without it resume with the epoch's statistics from 0.) */
    double so_far[4] = {p->epoch_so_far.loss, p->epoch_so_far.correct, (double)p->epoch_so_far.steps, p->seconds};
    float norm[8];
    memcpy(norm, t->train.mean, 16);
    memcpy(norm + 4, t->train.std, 16);
    vka_ckpt_section s[] = {
        {"config", config, strlen(config) + 1}, {"data_shape", shape, sizeof shape}, {"normalize", norm, sizeof norm},
        {"progress", prog, sizeof prog},        {"params", params, pbytes},           {"bn_stats", bn, m->bn_floats * 4},
        {"opt_a", oa, pbytes},                  {"opt_b", ob ? (void *)ob : (void *)oa, ob ? pbytes : 0},
        {"epoch_so_far", so_far, sizeof so_far},
    };
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoint.ckpt", t->cfg->out_dir);
    rc = vka_checkpoint_write(t->lg, path, s, sizeof s / sizeof *s);
done:
    free(params), free(bn), free(oa), free(ob), free(config);
    return rc;
}

/* What load_checkpoint takes only from a checkpoint a healthy run of this configuration could
 * have written (the CRC holds for a crafted or damaged file too): finite parameters, BatchNorm
 * statistics and momenta; the same batch size (its position counts batches of that size); and
 * a position such a run reaches. */
static vka_result check_resumable(trainer *t, const vka_checkpoint *ck)
{
    const char *path = t->cfg->resume;
    vka_result rc = VKA_SUCCESS;
    static const char *const finite[] = {"params", "bn_stats", "opt_a"};
    /* (Not opt_b: AdamW's second moments may overflow to infinity on a huge gradient while
     * training goes on; that element's update is then 0.) */
    for (int i = 0; i < 3; i++)
        if ((rc = vka_checkpoint_check_finite(t->lg, path, vka_checkpoint_find(ck, finite[i])))) return rc;
    const char *was = vka_checkpoint_text(ck, "config");
    vka_train_config was_cfg;
    vka_logger quiet = {0}; /* a configuration it cannot read is the changes' business (named there) */
    if (was && vka_train_config_parse(&quiet, was, &was_cfg) == VKA_SUCCESS && was_cfg.batch_size != t->B)
        return vka_fail(t->lg, VKA_ERROR_INVALID_ARGUMENT, "%s was trained with --batch-size %u: resume it with the "
                        "same batch size", path, was_cfg.batch_size);
    /* A batch index inside the epoch and the steps of the epochs before it: a batch index past
     * the epoch would read past its sample order. */
    const uint64_t *pr = vka_checkpoint_find(ck, "progress")->data;
    uint64_t batches = t->train.count / t->B;
    if (pr[0] > UINT32_MAX || pr[1] >= batches || pr[2] != pr[0] * batches + pr[1])
        return vka_fail(t->lg, VKA_ERROR_FORMAT, "%s: its position (epoch %llu, batch %llu, step %llu) is not one a "
                        "run of %llu batches per epoch reaches (another --data than its run's?)", path,
                        (unsigned long long)pr[0], (unsigned long long)pr[1], (unsigned long long)pr[2],
                        (unsigned long long)batches);
    return VKA_SUCCESS;
}

static vka_result load_checkpoint(trainer *t, progress *p)
{
    vka_checkpoint ck;
    vka_result rc = vka_checkpoint_read(t->lg, t->cfg->resume, &ck);
    if (rc) return rc;
    vka_model *m = t->model;
    const vka_ckpt_section *shape = vka_checkpoint_find(&ck, "data_shape"), *prog = vka_checkpoint_find(&ck, "progress");
    const vka_ckpt_section *params = vka_checkpoint_find(&ck, "params"), *bn = vka_checkpoint_find(&ck, "bn_stats");
    const vka_ckpt_section *oa = vka_checkpoint_find(&ck, "opt_a"), *ob = vka_checkpoint_find(&ck, "opt_b");
    uint64_t pbytes = m->param_floats * 4;
    if (!shape || !prog || !params || !bn || !oa || !ob || shape->bytes != 20 || prog->bytes != 24) {
        rc = vka_fail(t->lg, VKA_ERROR_FORMAT, "%s: a section is missing or malformed", t->cfg->resume);
        goto done;
    }
    const uint32_t *s = shape->data;
    /* Which of the three differs, named: the data's shape, the model's parameters (anchoring
     * changes its input channels), the optimizer's state. */
    const char *differs = s[0] != t->train.channels || s[1] != t->train.height || s[2] != t->train.width ||
                                  s[3] != t->train.classes
                              ? "dataset (--data)"
                          : s[4] != m->desc.in_channels ? "input (anchoring on or off: --no-anchoring)"
                          : params->bytes != pbytes || bn->bytes != m->bn_floats * 4 || oa->bytes != pbytes
                              ? "model (--model)"
                          : ob->bytes != (t->cfg->optimizer == VKA_OPT_ADAMW ? pbytes : 0) ? "optimizer (--optimizer)"
                                                                                           : NULL;
    if (differs) {
        rc = vka_fail(t->lg, VKA_ERROR_FORMAT,
                      "%s was written for another %s (its images %ux%ux%u, %u classes, %u input channels); resume "
                      "with the run's own", t->cfg->resume, differs, s[0], s[1], s[2], s[3], s[4]);
        goto done;
    }
    VKA_CHECK(check_resumable(t, &ck));
    const uint64_t *pr = prog->data;
    p->epoch = (uint32_t)pr[0], p->index = (uint32_t)pr[1], p->step = pr[2];
    const vka_ckpt_section *so_far = vka_checkpoint_find(&ck, "epoch_so_far");
    if (so_far && so_far->bytes == 32) {
        double v[4];
        memcpy(v, so_far->data, 32);
        if (isfinite(v[0]) && v[1] >= 0 && v[2] >= 0 && v[2] <= p->index && v[3] >= 0 && isfinite(v[3]))
            p->epoch_so_far = (running){v[0], v[1], (uint64_t)v[2]}, p->seconds = v[3];
    }
    /* Settings changed since the run began are taken, and said: the run no longer continues
     * bit for bit. */
    const char *was = vka_checkpoint_text(&ck, "config");
    char *changes = was ? vka_train_config_changes(was, t->cfg) : NULL;
    if (changes)
        vka_log(t->lg, VKA_LOG_WARNING, "resuming %s with settings its run did not have: %s; the result is not the "
                "run it continues, step for step", t->cfg->resume, changes);
    free(changes);
    VKA_CHECK(vka_upload(t->ctx, m->params, 0, params->data, pbytes));
    if (bn->bytes) VKA_CHECK(vka_upload(t->ctx, m->bn_stats, 0, bn->data, bn->bytes));
    VKA_CHECK(vka_upload(t->ctx, t->opt_a, 0, oa->data, pbytes));
    if (ob->bytes) VKA_CHECK(vka_upload(t->ctx, t->opt_b, 0, ob->data, pbytes));
    vka_log(t->lg, VKA_LOG_INFO, "resumed from %s at epoch %u, step %llu", t->cfg->resume, p->epoch + 1,
            (unsigned long long)p->step);
done:
    vka_checkpoint_free(&ck);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------ */

/* The progress line and the step record in metrics.jsonl, for the steps up to p->step (the
 * loss and accuracy over this epoch's steps collected so far). */
static void report_step(trainer *t, const progress *p, const running *run, double lr, double ips, uint64_t total_steps)
{
    const vka_train_config *c = t->cfg;
    const uint64_t steps_per_epoch = t->train.count / t->B;
    uint64_t left = total_steps > p->step ? total_steps - p->step : 0;
    if (c->max_steps && c->max_steps - (p->step < c->max_steps ? p->step : c->max_steps) < left)
        left = c->max_steps > p->step ? c->max_steps - p->step : 0;
    char eta[32];
    vka_format_duration(left * t->B / (ips > 0 ? ips : 1), eta, sizeof eta);
    double loss = run->steps ? run->loss / run->steps : NAN;
    double acc = run->steps ? run->correct / (run->steps * (double)t->B) : NAN;
    vka_log(t->lg, VKA_LOG_INFO, "epoch %u/%u step %u/%llu loss %.4f acc %.1f%% lr %.5f %.0f img/s ETA %s",
            p->epoch + 1, c->epochs, p->index, (unsigned long long)steps_per_epoch, loss, 100 * acc, lr, ips, eta);
    /* No step of this epoch collected yet (a slow device's first seconds): null, not nan, which
     * JSON lacks. */
    char loss_json[32] = "null", acc_json[32] = "null";
    if (run->steps) {
        snprintf(loss_json, sizeof loss_json, "%.6f", loss);
        snprintf(acc_json, sizeof acc_json, "%.6f", acc);
    }
    fprintf(t->metrics,
            "{\"type\":\"step\",\"epoch\":%u,\"step\":%llu,\"loss\":%s,\"accuracy\":%s,\"lr\":%.8f,"
            "\"images_per_s\":%.1f}\n", p->epoch + 1, (unsigned long long)p->step, loss_json, acc_json, lr, ips);
    fflush(t->metrics);
}

/* Waits for the step in `sl` (if any) and adds its loss statistics; a NaN, infinite or
 * absurdly large loss stops training before anything is saved. */
static vka_result collect(trainer *t, step_slot *sl, running *r, vka_train_result *result)
{
    if (!sl->in_flight) return VKA_SUCCESS;
    vka_result rc = vka_cmd_wait(sl->cmd);
    if (rc) return rc;
    sl->in_flight = 0;
    const float *st = vka_tensor_map(sl->stats_host);
    /* A guess over C classes costs ln C; a mean cross-entropy a thousand times that means logits
     * thousands apart, a softmax saturated on wrong classes that no step comes back from (at
     * --lr 100 the loss grows to 1e26 before it overflows). Either way the run is stopped. */
    const double bound = 1e3 * log((double)t->train.classes);
    const float loss = st[VKA_CE_STAT_LOSS];
    if (!isfinite(loss) || loss > bound) {
        result->diverged = 1;
        result->steps_done = sl->step + 1; /* the step that diverged ran */
        char ckpt[1100];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.ckpt", t->cfg->out_dir);
        return vka_fail(t->lg, VKA_ERROR_INVALID_ARGUMENT,
                        "the loss is %g at step %llu%s: training diverged (try a smaller --lr); %s", loss,
                        (unsigned long long)sl->step + 1, isfinite(loss) ? ", over 1000 x ln(classes)" : "",
                        access(ckpt, F_OK) == 0 ? "the last good checkpoint is kept" : "no checkpoint was written");
    }
    r->loss += st[VKA_CE_STAT_LOSS];
    r->correct += st[VKA_CE_STAT_CORRECT];
    r->steps++;
    return VKA_SUCCESS;
}

vka_result vka_train_run(vka_context *ctx, const vka_train_config *c, volatile int *stop, vka_train_result *result)
{
    trainer t = {.ctx = ctx, .lg = &ctx->logger, .cfg = c, .lock_fd = -1};
    memset(result, 0, sizeof *result);
    vka_result rc = VKA_SUCCESS;
    VKA_CHECK(vka_dataset_open(c->data, VKA_SPLIT_TRAIN, t.lg->fn, t.lg->user, &t.train));
    VKA_CHECK(vka_dataset_open(c->data, VKA_SPLIT_TEST, t.lg->fn, t.lg->user, &t.test));
    VKA_CHECK(trainer_open(&t, 0));
    /* Everything that can refuse the run (the checkpoint to resume) before anything is written. */
    progress p = {0};
    if (c->resume[0]) VKA_CHECK(load_checkpoint(&t, &p));
    if (c->resume[0] && p.epoch >= c->epochs) {
        rc = vka_fail(t.lg, VKA_ERROR_INVALID_ARGUMENT,
                      "%s already finished epoch %u of --epochs %u: raise --epochs to train it further",
                      c->resume, p.epoch, c->epochs);
        goto done;
    }
    if (c->resume[0] && c->max_steps && p.step >= c->max_steps) {
        rc = vka_fail(t.lg, VKA_ERROR_INVALID_ARGUMENT,
                      "%s is at step %llu already, --max-steps %llu: raise --max-steps (or leave it out) to train it "
                      "further", c->resume, (unsigned long long)p.step, (unsigned long long)c->max_steps);
        goto done;
    }
    VKA_CHECK(prepare_eval_ref(&t));
    const uint64_t steps_per_epoch = t.train.count / t.B; /* the last partial batch is dropped */
    /* The first step recorded, not run, before anything is written: a dispatch the device cannot
     * take refuses the run here, not after its directory and configuration exist. */
    prepare_step(&t, &t.slot[0], p.epoch, p.index, p.step);
    VKA_CHECK(record_step(&t, &t.slot[0], steps_per_epoch));
    int continuing, append_metrics;
    VKA_CHECK(vka_run_dir_open(t.lg, c, p.step, &continuing, &append_metrics, &t.lock_fd));
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", c->out_dir);
    char *json = vka_train_config_json(c);
    size_t len = json ? strlen(json) : 0;
    char *text = json ? malloc(len + 2) : NULL;
    if (text) memcpy(text, json, len), memcpy(text + len, "\n", 2);
    free(json);
    rc = text ? vka_file_replace_text(t.lg, path, text)
              : vka_fail(t.lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory for the configuration", path);
    free(text);
    if (rc) goto done;
    snprintf(path, sizeof path, "%s/metrics.jsonl", c->out_dir);
    t.metrics = fopen(path, append_metrics ? "a" : "w");
    if (!t.metrics) {
        rc = vka_fail(t.lg, VKA_ERROR_IO, "%s: cannot write", path);
        goto done;
    }

    const uint64_t total_steps = steps_per_epoch * c->epochs;
    double started = vka_seconds(), last_print = 0;
    const double clock0 = started - p.seconds; /* the records' clock runs on from the resumed run's */
    /* What the last record counted: its step, and how many of the epoch's steps it had collected
     * (records are written before the steps in flight are done). */
    uint64_t steps_this_run = 0, reported_step = p.step, reported_collected = p.epoch_so_far.steps;
    running run = p.epoch_so_far; /* a run resumed mid-epoch: its epoch's statistics so far */
    int cur = 0;
    while (p.epoch < c->epochs && !rc) {
        if ((stop && *stop) || (c->max_steps && p.step >= c->max_steps)) break;
        step_slot *sl = &t.slot[cur];
        /* This slot's previous step (two steps ago) must be done before we reuse it. */
        VKA_CHECK(collect(&t, sl, &run, result));
        if (steps_this_run > 0) { /* (the first step is in slot 0 already, recorded before the loop) */
            prepare_step(&t, sl, p.epoch, p.index, p.step);
            VKA_CHECK(record_step(&t, sl, steps_per_epoch));
        }
        VKA_CHECK(vka_cmd_submit(sl->cmd));
        sl->in_flight = 1;
        steps_this_run++;
        p.step++;
        p.index++;
        cur ^= 1;

        double el = vka_seconds() - started;
        if (el - last_print >= 2.0 || p.index == steps_per_epoch) {
            last_print = el;
            report_step(&t, &p, &run, sl->lr, steps_this_run * t.B / (el > 0 ? el : 1e-9), total_steps);
            reported_step = p.step, reported_collected = run.steps;
        }
        if (p.index == steps_per_epoch) {
            for (int s = 0; s < 2; s++) VKA_CHECK(collect(&t, &t.slot[s], &run, result));
            double test_acc;
            VKA_CHECK(evaluate(&t, &test_acc));
            result->last_loss = run.steps ? run.loss / run.steps : NAN;
            result->train_accuracy = run.steps ? run.correct / (run.steps * (double)t.B) : NAN;
            result->test_accuracy = test_acc;
            p.epoch++;
            p.index = 0;
            result->epochs_done = p.epoch;
            vka_log(t.lg, VKA_LOG_INFO, "epoch %u/%u: train loss %.4f, train acc %.2f%%, test acc %.2f%% (%s)",
                    p.epoch, c->epochs, result->last_loss, 100 * result->train_accuracy, 100 * test_acc,
                    c->anchoring ? "1 reference" : "standard");
            fprintf(t.metrics,
                    "{\"type\":\"epoch\",\"epoch\":%u,\"step\":%llu,\"train_loss\":%.6f,\"train_accuracy\":%.6f,"
                    "\"test_accuracy\":%.6f,\"seconds\":%.2f}\n", p.epoch, (unsigned long long)p.step,
                    result->last_loss, result->train_accuracy, test_acc, vka_seconds() - clock0);
            fflush(t.metrics);
            run = (running){0};
            p.epoch_so_far = run, p.seconds = vka_seconds() - clock0;
            VKA_CHECK(save_checkpoint(&t, &p));
            vka_train_write_curves(t.lg, c->out_dir); /* figures: a failure is a warning */
            last_print = vka_seconds() - started; /* the next record once the new epoch has steps to count */
        }
    }
    /* Interrupted, or stopped by --max-steps: finish the steps in flight and save. */
    for (int s = 0; s < 2; s++) VKA_CHECK(collect(&t, &t.slot[s], &run, result));
    if (!rc && p.index != 0 && steps_this_run) {
        /* The last step's record with every step collected (a short run's only one). */
        if (reported_step != p.step || reported_collected != run.steps) {
            double el = vka_seconds() - started;
            report_step(&t, &p, &run, t.slot[cur ^ 1].lr, steps_this_run * t.B / (el > 0 ? el : 1e-9), total_steps);
        }
        p.epoch_so_far = run, p.seconds = vka_seconds() - clock0;
        VKA_CHECK(save_checkpoint(&t, &p));
        if (t.metrics) fflush(t.metrics);
        vka_train_write_curves(t.lg, c->out_dir);
    }
    result->interrupted = stop && *stop;
    result->steps_done = p.step;
    result->saved = steps_this_run > 0 || continuing;
    if (!result->saved) { /* stopped before its first step: a fresh run leaves no half-made run behind */
        static const char *const made[] = {"config.json", "metrics.jsonl"};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", c->out_dir, made[i]);
            remove(path);
        }
    }
done:
    trainer_close(&t);
    return rc;
}

/* ---- benchmark ------------------------------------------------------------------------ */

/* Forward, input gradient and weight gradient of every linear layer: 3 x 2*n*in*out. */
static double linear_flops(const vka_model *m, uint32_t n)
{
    double total = 0;
    for (uint32_t i = 1; i < m->node_count; i++) {
        const vka_node *k = &m->nodes[i];
        if (k->op == VKA_NODE_LINEAR) total += 3 * 2.0 * n * m->nodes[k->in[0]].c * k->c;
    }
    return total;
}

static double conv_flops(const vka_model *m, uint32_t n, int pass)
{
    double total = 0;
    for (uint32_t i = 1; i < m->node_count; i++) {
        const vka_node *k = &m->nodes[i];
        if (k->op != VKA_NODE_CONV) continue;
        const vka_node *x = &m->nodes[k->in[0]];
        if (pass == 1 && k->in[0] == 0) continue; /* no input gradient for the first layer */
        total += 2.0 * n * k->c * k->h * k->w * x->c * k->k * k->k;
    }
    return total;
}

#define MAX_TIMED 1024

static void add_timings(vka_logger *lg, vka_bench_result *out, vka_cmd *cmd, FILE *trace)
{
    vka_timing tm[MAX_TIMED];
    uint32_t n = vka_cmd_timings(cmd, tm, MAX_TIMED);
    if (trace && n == 0)
        vka_log(lg, VKA_LOG_WARNING, "bench --trace: the device gave no timestamps, the trace is empty");
    if (trace && n >= MAX_TIMED)
        vka_log(lg, VKA_LOG_WARNING, "bench --trace: only the first %d dispatches were timed", MAX_TIMED);
    if (n > MAX_TIMED) n = MAX_TIMED;
    for (uint32_t i = 0; i < n; i++) {
        /* Labels are kernel names (C identifiers) and scopes the model's node names (letters,
         * digits, spaces, + - > / x): nothing in them needs JSON escaping. */
        if (trace)
            fprintf(trace, "{\"index\":%u,\"kernel\":\"%s\",\"scope\":\"%s\",\"ms\":%.6f,\"bytes\":%llu,\"workgroups\":%llu}\n",
                    i, tm[i].label, tm[i].scope ? tm[i].scope : "", tm[i].ms, (unsigned long long)tm[i].bytes,
                    (unsigned long long)tm[i].workgroups);
        uint32_t k = 0;
        while (k < out->kernel_count && strcmp(out->kernels[k].name, tm[i].label) != 0) k++;
        if (k == out->kernel_count) {
            if (k == VKA_BENCH_MAX_KERNELS) continue;
            snprintf(out->kernels[k].name, sizeof out->kernels[k].name, "%s", tm[i].label);
            out->kernel_count++;
        }
        out->kernels[k].ms += tm[i].ms;
        out->kernels[k].bytes += (double)tm[i].bytes;
        out->kernels[k].count++;
    }
}

vka_result vka_train_bench(vka_context *ctx, const vka_train_config *c, const vka_bench_desc *d, vka_bench_result *out)
{
    trainer t = {.ctx = ctx, .lg = &ctx->logger, .cfg = c, .lock_fd = -1};
    memset(out, 0, sizeof *out);
    vka_result rc = VKA_SUCCESS;
    /* Synthetic uint8 images: the data's values do not change the work. */
    uint32_t count = c->batch_size * 4, plane = d->channels * d->size * d->size;
    vka_dataset *sets[2] = {&t.train, &t.test};
    for (int s = 0; s < 2; s++) {
        vka_dataset *ds = sets[s];
        ds->count = count, ds->channels = d->channels, ds->height = ds->width = d->size, ds->classes = d->classes;
        ds->images = malloc((size_t)count * plane);
        ds->labels = malloc(count);
        if (!ds->images || !ds->labels) {
            rc = vka_fail(t.lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
            goto done;
        }
        rng r = rng_for(1, 99, (uint64_t)s);
        for (size_t i = 0; i < (size_t)count * plane; i++) ds->images[i] = (uint8_t)rng_next(&r);
        for (uint32_t i = 0; i < count; i++) ds->labels[i] = (uint8_t)(i % d->classes);
        for (uint32_t ch = 0; ch < d->channels && ch < 4; ch++) ds->mean[ch] = 0.5f, ds->std[ch] = 0.25f;
    }
    VKA_CHECK(trainer_open(&t, 0));
    VKA_CHECK(prepare_eval_ref(&t));
    const uint64_t steps_per_epoch = count / t.B;
    running run = {0};
    vka_train_result tr;
    double start = 0, record_s = 0;
    for (uint32_t s = 0; s < d->warmup + d->steps; s++) {
        if (s == d->warmup) {
            for (int k = 0; k < 2; k++) VKA_CHECK(collect(&t, &t.slot[k], &run, &tr));
            start = vka_seconds();
        }
        step_slot *sl = &t.slot[s % 2];
        VKA_CHECK(collect(&t, sl, &run, &tr));
        prepare_step(&t, sl, s / (uint32_t)steps_per_epoch, s % (uint32_t)steps_per_epoch, s);
        double r0 = vka_seconds();
        VKA_CHECK(record_step(&t, sl, steps_per_epoch));
        if (s >= d->warmup) record_s += vka_seconds() - r0;
        VKA_CHECK(vka_cmd_submit(sl->cmd));
        sl->in_flight = 1;
    }
    for (int k = 0; k < 2; k++) VKA_CHECK(collect(&t, &t.slot[k], &run, &tr));
    double elapsed = vka_seconds() - start;
    out->step_ms = 1e3 * elapsed / d->steps;
    out->record_ms = 1e3 * record_s / d->steps;
    out->images_per_s = d->steps * (double)t.B / elapsed;
    out->final_loss = run.steps ? run.loss / run.steps : NAN;

    /* One more step with a timestamp around every dispatch. */
    step_slot timed = t.slot[0];
    VKA_CHECK(vka_cmd_create(ctx, &(vka_cmd_desc){.timing = 1, .max_timed_dispatches = MAX_TIMED}, &timed.cmd));
    prepare_step(&t, &timed, 0, 0, 0);
    rc = record_step(&t, &timed, steps_per_epoch);
    if (!rc) rc = vka_cmd_submit(timed.cmd);
    if (!rc) rc = vka_cmd_wait(timed.cmd);
    if (!rc) add_timings(t.lg, out, timed.cmd, d->trace);
    for (uint32_t k = 0; k < out->kernel_count; k++) out->gpu_step_ms += out->kernels[k].ms;
    out->conv_flops[0] = conv_flops(t.model, t.B, 0);
    out->conv_flops[1] = conv_flops(t.model, t.B, 1);
    out->conv_flops[2] = conv_flops(t.model, t.B, 2);
    out->linear_flops = linear_flops(t.model, t.B);

    /* K-anchor inference: B/K test images x K references in one batch. */
    if (!rc && c->anchoring && d->anchors >= 1 && t.B / d->anchors >= 1) {
        uint32_t images = t.B / d->anchors;
        vka_tensor refs;
        rc = vka_arena_alloc(t.dev, (uint64_t)d->anchors * t.image_bytes * 4, &refs);
        if (!rc) rc = vka_fill(ctx, refs, 0);
        /* Its own cmd without timestamps (measured through the timed cmd, the forward ran at
         * half the rate on lavapipe: perf-log 58), after as many untimed warm-up steps as the
         * training (the first one builds the eval-mode kernels). */
        vka_cmd *cmd = NULL;
        if (!rc) rc = vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd);
        vka_anchor_shape as2 = {.batch = images, .channels = d->channels, .height = d->size, .width = d->size,
                                .anchors = d->anchors};
        vka_augment_shape as = augment_shape(&t, images);
        double t0 = vka_seconds();
        for (uint32_t s = 0; s < d->warmup + d->steps && !rc; s++) {
            if (s == d->warmup) t0 = vka_seconds();
            rc = vka_cmd_reset(cmd);
            if (!rc) rc = vka_augment(cmd, &as, t.x, t.slot[0].pixels, t.slot[0].aug);
            if (!rc) rc = vka_anchor_infer_input(cmd, &as2, t.input, t.x, refs);
            if (!rc) rc = vka_model_forward(cmd, t.model, &(vka_forward_desc){.n = images * d->anchors}, t.input);
            if (!rc) rc = vka_cmd_submit(cmd);
            if (!rc) rc = vka_cmd_wait(cmd);
        }
        out->infer_images_per_s = d->steps * (double)images / (vka_seconds() - t0);
        out->infer_anchors = d->anchors;
        vka_cmd_destroy(cmd);
    }
    vka_cmd_destroy(timed.cmd);
    out->device_bytes = vka_arena_bytes(t.model->param_arena) + vka_arena_bytes(t.model->act_arena) +
                        vka_arena_bytes(t.dev);
done:
    trainer_close(&t);
    return rc;
}
