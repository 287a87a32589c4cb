/* Softmax cross-entropy (label, label-smoothed, uniform target) in one single-workgroup
 * dispatch: the gradient and every batch statistic the trainer reads back, reduced in a
 * fixed order. The loss is tiny next to the network (B x NC values), so one workgroup
 * (one CPU thread on lavapipe) is plenty and needs no second pass. */
#include "nn/loss.h"

#include "nn/ops_internal.h"

#include "cross_entropy.spv.h"
#include "cross_entropy_nograd.spv.h"

struct cross_entropy_push {
    uint32_t batch, classes, uniform, has_labels;
    float smoothing;
};
_Static_assert(sizeof(struct cross_entropy_push) == 20, "mirror of Push in shaders/cross_entropy.comp");

uint64_t vka_cross_entropy_stats_bytes(uint32_t batch) { return (2 + (uint64_t)batch) * 4; }

vka_result vka_cross_entropy(vka_cmd *cmd, const vka_cross_entropy_desc *d, vka_tensor dlogits, vka_tensor stats,
                             vka_tensor logits, vka_tensor labels)
{
    const char *op = "cross_entropy";
    vka_context *ctx = vka_cmd_context(cmd);
    if (!d || d->batch == 0 || d->classes == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: batch=%u classes=%u (both must be >= 1)", op,
                            d ? d->batch : 0, d ? d->classes : 0);
    if (d->target != VKA_CE_LABEL && d->target != VKA_CE_UNIFORM)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: unknown target %d", op, (int)d->target);
    if (d->target == VKA_CE_LABEL && !(d->smoothing >= 0.0f && d->smoothing <= 1.0f))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: label smoothing %g outside [0, 1]", op,
                            (double)d->smoothing);
    uint64_t B = d->batch, NC = d->classes;
    int grad = vka_tensor_present(dlogits), has_labels = vka_tensor_present(labels);
    if (!has_labels && d->target == VKA_CE_LABEL)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: label mode needs labels (B=%u)", op, d->batch);
    struct { const char *what; vka_tensor t; uint64_t bytes; int used; } need[] = {
        {"logits (B, classes)", logits, B * NC * 4, 1},
        {"stats (2 + B)", stats, vka_cross_entropy_stats_bytes(d->batch), 1},
        {"dlogits (B, classes)", dlogits, B * NC * 4, grad},
        {"labels (B) int32", labels, B * 4, has_labels},
    };
    for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
        if (!need[i].used) continue;
        if (need[i].t.size < need[i].bytes)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                                "%s: batch=%u classes=%u needs %s of %llu bytes, given %llu", op, d->batch,
                                d->classes, need[i].what, (unsigned long long)need[i].bytes,
                                (unsigned long long)need[i].t.size);
        vka_result rc = vka_head_check_range(cmd, op, need[i].what, need[i].bytes);
        if (rc) return rc;
    }
    uint32_t wg = vka_plan_workgroup_1d(ctx, 256);
    vka_kernel_desc desc = {
        .name = grad ? "cross_entropy" : "cross_entropy_nograd",
        .spirv = grad ? vka_spv_cross_entropy : vka_spv_cross_entropy_nograd,
        .spirv_bytes = grad ? sizeof vka_spv_cross_entropy : sizeof vka_spv_cross_entropy_nograd,
        .num_bindings = grad ? 4 : 3,
        .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct cross_entropy_push), .local_size = {wg}, .shared_bytes = 2 * 4 * wg,
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    struct cross_entropy_push push = {
        .batch = d->batch, .classes = d->classes, .uniform = d->target == VKA_CE_UNIFORM,
        .has_labels = (uint32_t)has_labels, .smoothing = d->smoothing,
    };
    vka_tensor z = vka_tensor_slice(logits, 0, B * NC * 4);
    /* Without labels (uniform mode) the logits stand in for the labels binding: both are
     * read-only and the kernel never reads it (has_labels = 0). */
    vka_tensor t[4] = {z, has_labels ? vka_tensor_slice(labels, 0, B * 4) : z,
                       vka_tensor_slice(stats, 0, vka_cross_entropy_stats_bytes(d->batch)),
                       grad ? vka_tensor_slice(dlogits, 0, B * NC * 4) : (vka_tensor){0}};
    return vka_op_done(cmd, vka_cmd_dispatch(cmd, k, t, grad ? 4 : 3, &push, 1, 1, 1));
}
