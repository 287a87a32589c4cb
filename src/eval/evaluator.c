/* Anchored inference over datasets (see evaluator.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/corrupt.h"
#include "eval/evaluator.h"
#include "nn/anchor.h"
#include "train/checkpoint.h"
#include "vk/clock.h"

static uint64_t hash64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static vka_augment_shape plain_shape(const vka_evaluator *e, uint32_t n)
{
    vka_augment_shape s = {.n = n, .c = e->channels, .h = e->height, .w = e->width};
    for (int c = 0; c < 4; c++) s.mean[c] = e->mean[c], s.std[c] = e->std[c] > 0 ? e->std[c] : 1;
    return s;
}

int vka_eval_reference_indices(uint64_t seed, uint32_t k_count, uint32_t count, uint32_t *out)
{
    uint8_t *taken = calloc((count + 7) / 8, 1);
    if (!taken || k_count > count) {
        free(taken);
        return -1;
    }
    for (uint32_t k = 0; k < k_count; k++) {
        uint64_t h = hash64(seed * 1000003ull + k);
        uint32_t i = (uint32_t)(h % count);
        while (taken[i / 8] >> (i % 8) & 1) { /* taken: drawn again from the next hash */
            h = hash64(h + 1);
            i = (uint32_t)(h % count);
        }
        taken[i / 8] |= (uint8_t)(1u << (i % 8));
        out[k] = i;
    }
    free(taken);
    return 0;
}

/* Counts b more images done and, every progress.interval seconds, says how far the whole
 * evaluation is. */
static void report_progress(vka_evaluator *e, uint32_t b)
{
    vka_eval_progress *p = &e->progress;
    p->done += b;
    double now = vka_seconds();
    if (!p->total || now - p->last < p->interval) return;
    p->last = now;
    double rate = p->done / (now - p->started > 1e-9 ? now - p->started : 1e-9);
    uint64_t left = p->total > p->done ? p->total - p->done : 0;
    char eta[32];
    vka_format_duration(left / (rate > 0 ? rate : 1), eta, sizeof eta);
    vka_log(&e->ctx->logger, VKA_LOG_INFO, "  %s: %llu of %llu images evaluated (%.0f%%), %.0f images/s, ETA %s",
            p->pass, (unsigned long long)p->done, (unsigned long long)p->total, 100.0 * p->done / p->total, rate, eta);
}

static vka_result load(vka_evaluator *e, const vka_eval_desc *d)
{
    vka_logger *lg = &e->ctx->logger;
    vka_checkpoint ck;
    vka_result rc = vka_checkpoint_read(lg, d->checkpoint, &ck);
    if (rc) return rc;
    const char *cfg = vka_checkpoint_text(&ck, "config");
    const vka_ckpt_section *shape = vka_checkpoint_find(&ck, "data_shape");
    const vka_ckpt_section *norm = vka_checkpoint_find(&ck, "normalize"), *params = vka_checkpoint_find(&ck, "params");
    const vka_ckpt_section *bn = vka_checkpoint_find(&ck, "bn_stats");
    if (!cfg || !shape || !norm || !params || !bn || shape->bytes != 20 || norm->bytes != 32) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: not a training checkpoint (a section is missing)", d->checkpoint);
        goto done;
    }
    VKA_CHECK(vka_checkpoint_check_finite(lg, d->checkpoint, params));
    VKA_CHECK(vka_checkpoint_check_finite(lg, d->checkpoint, bn));
    VKA_CHECK(vka_train_config_parse(lg, cfg, &e->train_config));
    const uint32_t *s = shape->data;
    e->channels = s[0], e->height = s[1], e->width = s[2], e->classes = s[3];
    memcpy(e->mean, norm->data, 16);
    memcpy(e->std, (const float *)norm->data + 4, 16);
    e->anchored = e->train_config.anchoring;
    const char *data = d->data ? d->data : e->train_config.data;
    rc = vka_dataset_open(data, VKA_SPLIT_TRAIN, lg->fn, lg->user, &e->train);
    if (rc && !d->data) {
        rc = vka_fail(lg, rc, "%s was trained on '%s', which cannot be opened here (above): pass --data NAME|DIR",
                      d->checkpoint, data);
        goto done;
    }
    if (rc) goto done;
    if (e->train.channels != e->channels || e->train.height != e->height || e->train.width != e->width ||
        e->train.classes != e->classes) {
        rc = vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT,
                      "%s was trained on %ux%ux%u images with %u classes, but %s has %ux%ux%u images with %u classes",
                      d->checkpoint, e->channels, e->height, e->width, e->classes, data, e->train.channels,
                      e->train.height, e->train.width, e->train.classes);
        goto done;
    }
    e->anchors = e->anchored ? d->anchors : 1;
    if (e->anchors == 0 || e->anchors > e->train.count) {
        rc = vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--anchors %u: must be between 1 and the %u training images",
                      d->anchors, e->train.count);
        goto done;
    }
    e->batch = d->batch ? d->batch : (128 / e->anchors ? 128 / e->anchors : 1);
    VKA_CHECK(vka_model_create(e->ctx,
                               &(vka_model_desc){.kind = e->train_config.model,
                                                 .in_channels = e->channels * (e->anchored ? 2 : 1),
                                                 .height = e->height, .width = e->width, .classes = e->classes,
                                                 .batch = e->batch * e->anchors},
                               &e->model));
    if (params->bytes != e->model->param_floats * 4 || bn->bytes != e->model->bn_floats * 4) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: its parameters do not fit a %s model", d->checkpoint,
                      vka_model_kind_name(e->train_config.model));
        goto done;
    }
    VKA_CHECK(vka_upload(e->ctx, e->model->params, 0, params->data, params->bytes));
    if (bn->bytes) VKA_CHECK(vka_upload(e->ctx, e->model->bn_stats, 0, bn->data, bn->bytes));
done:
    vka_checkpoint_free(&ck);
    return rc;
}

vka_result vka_evaluator_create(vka_context *ctx, const vka_eval_desc *d, vka_evaluator **out)
{
    *out = NULL;
    vka_evaluator *e = calloc(1, sizeof *e);
    if (!e) return vka_fail(&ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    e->ctx = ctx;
    vka_result rc = VKA_SUCCESS;
    VKA_CHECK(load(e, d));
    uint64_t image = (uint64_t)e->channels * e->height * e->width;
    uint64_t rows = (uint64_t)e->batch * e->anchors;
    VKA_CHECK(vka_arena_create(ctx, &(vka_arena_desc){.name = "evaluation"}, &e->dev));
    VKA_CHECK(vka_arena_create(ctx, &(vka_arena_desc){.name = "evaluation staging", .kind = VKA_MEMORY_STAGING},
                               &e->host));
    uint64_t pix = (uint64_t)(e->batch > e->anchors ? e->batch : e->anchors) * image;
    VKA_CHECK(vka_arena_alloc(e->host, (pix + 3) / 4 * 4, &e->pixels));
    VKA_CHECK(vka_arena_alloc(e->host, (uint64_t)(e->batch > e->anchors ? e->batch : e->anchors) * 12, &e->aug));
    memset(vka_tensor_map(e->aug), 0, e->aug.size);
    VKA_CHECK(vka_arena_alloc(e->dev, (pix + 3) / 4 * 4, &e->corrupted));
    VKA_CHECK(vka_arena_alloc(e->dev, (uint64_t)e->batch * image * 4, &e->x));
    VKA_CHECK(vka_arena_alloc(e->dev, (uint64_t)e->anchors * image * 4, &e->refs));
    VKA_CHECK(vka_arena_alloc(e->dev, rows * image * 4 * (e->anchored ? 2 : 1), &e->input));
    uint64_t lbytes = (uint64_t)e->batch * e->classes * 4;
    VKA_CHECK(vka_arena_alloc(e->dev, lbytes, &e->mean_logits));
    VKA_CHECK(vka_arena_alloc(e->dev, (uint64_t)e->batch * 4, &e->uncertainty));
    VKA_CHECK(vka_arena_alloc(e->dev, lbytes, &e->calibrated));
    VKA_CHECK(vka_arena_alloc(e->host, 2 * lbytes + (uint64_t)e->batch * 4, &e->out_host));
    VKA_CHECK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &e->cmd));
    /* The K references, normalized without augmentation. */
    uint8_t *px = vka_tensor_map(e->pixels);
    uint32_t *which = malloc((size_t)e->anchors * 4);
    if (!which || vka_eval_reference_indices(d->seed, e->anchors, e->train.count, which)) {
        free(which);
        rc = vka_fail(&ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory drawing the references");
        goto done;
    }
    for (uint32_t k = 0; k < e->anchors; k++)
        memcpy(px + k * image, e->train.images + (uint64_t)which[k] * image, image);
    free(which);
    vka_augment_shape as = plain_shape(e, e->anchors);
    VKA_CHECK(vka_augment(e->cmd, &as, e->refs, e->pixels, e->aug));
    VKA_CHECK(vka_cmd_submit(e->cmd));
    VKA_CHECK(vka_cmd_wait(e->cmd));
    *out = e;
done:
    if (rc) vka_evaluator_destroy(e);
    return rc;
}

void vka_evaluator_destroy(vka_evaluator *e)
{
    if (!e) return;
    vka_cmd_destroy(e->cmd);
    vka_arena_destroy(e->host);
    vka_arena_destroy(e->dev);
    vka_model_destroy(e->model);
    vka_dataset_free(&e->train);
    free(e);
}

void vka_eval_outputs_free(vka_eval_outputs *o)
{
    if (!o) return;
    free(o->logits);
    free(o->calibrated);
    free(o->uncertainty);
    free(o->labels);
    memset(o, 0, sizeof *o);
}

vka_result vka_evaluator_run(vka_evaluator *e, const vka_dataset *ds, uint32_t limit,
                             const struct vka_corrupt_desc *corrupt, vka_eval_outputs *out)
{
    vka_logger *lg = &e->ctx->logger;
    memset(out, 0, sizeof *out);
    if (ds->channels != e->channels || ds->height != e->height || ds->width != e->width)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT,
                        "%s has %ux%ux%u images but the model takes %ux%ux%u", ds->name, ds->channels, ds->height,
                        ds->width, e->channels, e->height, e->width);
    uint32_t n = limit && limit < ds->count ? limit : ds->count;
    uint64_t image = (uint64_t)e->channels * e->height * e->width;
    out->n = n;
    out->classes = e->classes;
    out->logits = malloc((size_t)n * e->classes * 4);
    out->calibrated = malloc((size_t)n * e->classes * 4);
    out->uncertainty = malloc((size_t)n * 4);
    out->labels = malloc(n);
    if (!out->logits || !out->calibrated || !out->uncertainty || !out->labels) {
        vka_eval_outputs_free(out);
        return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for %u results", n);
    }
    memcpy(out->labels, ds->labels, n);
    vka_result rc = VKA_SUCCESS;
    for (uint32_t first = 0; first < n; first += e->batch) {
        uint32_t b = n - first < e->batch ? n - first : e->batch;
        vka_cmd *cmd = e->cmd;
        memcpy(vka_tensor_map(e->pixels), ds->images + (uint64_t)first * image, b * image);
        VKA_CHECK(vka_cmd_reset(cmd));
        vka_tensor src = e->pixels;
        if (corrupt) {
            vka_corrupt_desc cd = *corrupt;
            cd.n = b, cd.c = e->channels, cd.h = e->height, cd.w = e->width;
            cd.first_image = first; /* the noise of an image does not depend on the batching */
            uint64_t need = vka_corrupt_scratch_bytes(&cd);
            if (need > e->corrupt_scratch.size) {
                /* Grown once per size: a new tensor from the evaluation arena. */
                VKA_CHECK(vka_arena_alloc(e->dev, need, &e->corrupt_scratch));
            }
            VKA_CHECK(vka_corrupt(cmd, &cd, e->corrupted, e->pixels,
                                  need ? vka_tensor_slice(e->corrupt_scratch, 0, need) : (vka_tensor){0}));
            src = e->corrupted;
        }
        vka_augment_shape as = plain_shape(e, b);
        VKA_CHECK(vka_augment(cmd, &as, e->x, src, e->aug));
        vka_forward_desc f = {.n = b * e->anchors};
        if (e->anchored) {
            vka_anchor_shape s = {.batch = b, .channels = e->channels, .height = e->height, .width = e->width,
                                  .anchors = e->anchors};
            VKA_CHECK(vka_anchor_infer_input(cmd, &s, e->input, e->x, e->refs));
            VKA_CHECK(vka_model_forward(cmd, e->model, &f, e->input));
        } else {
            VKA_CHECK(vka_model_forward(cmd, e->model, &f, e->x));
        }
        uint64_t lb = (uint64_t)b * e->classes * 4;
        VKA_CHECK(vka_anchor_reduce(cmd, e->anchors, b, e->classes, vka_tensor_slice(e->mean_logits, 0, lb),
                                    vka_tensor_slice(e->uncertainty, 0, b * 4ull),
                                    vka_tensor_slice(e->calibrated, 0, lb), vka_model_logits(e->model, f.n)));
        vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_TRANSFER); /* results written -> copied to the host */
        VKA_CHECK(vka_cmd_copy(cmd, vka_tensor_slice(e->out_host, 0, lb), vka_tensor_slice(e->mean_logits, 0, lb)));
        VKA_CHECK(vka_cmd_copy(cmd, vka_tensor_slice(e->out_host, lb, lb), vka_tensor_slice(e->calibrated, 0, lb)));
        VKA_CHECK(vka_cmd_copy(cmd, vka_tensor_slice(e->out_host, 2 * lb, b * 4ull),
                               vka_tensor_slice(e->uncertainty, 0, b * 4ull)));
        vka_cmd_barrier(cmd, VKA_HAZARD_ANY_TO_HOST);
        VKA_CHECK(vka_cmd_submit(cmd));
        VKA_CHECK(vka_cmd_wait(cmd));
        const char *h = vka_tensor_map(e->out_host);
        memcpy(out->logits + (size_t)first * e->classes, h, lb);
        /* Standard models: no anchors, so no calibration by uncertainty. */
        memcpy(out->calibrated + (size_t)first * e->classes, e->anchored ? h + lb : h, lb);
        memcpy(out->uncertainty + first, h + 2 * lb, b * 4);
        report_progress(e, b);
    }
done:
    if (rc) vka_eval_outputs_free(out);
    return rc;
}
