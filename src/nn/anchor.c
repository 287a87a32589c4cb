/* Anchored inputs (training and K-anchor inference) and the K-anchor inference reduction.
 * Each is one element-wise dispatch; the outputs must fit one storage binding (a full
 * CIFAR batch of 128 x K=5 anchors is 15 MiB against the 128 MiB spec minimum): over it,
 * the caller splits the batch and gets LIMIT_EXCEEDED otherwise. */
#include <stdio.h>

#include "nn/anchor.h"

#include "nn/ops_internal.h"

#include "anchor_infer_input.spv.h"
#include "anchor_reduce.spv.h"
#include "anchor_train_input.spv.h"
#include "anchor_train_input_packed.spv.h"

struct anchor_train_push {
    uint32_t batch, chw, masked;
};
_Static_assert(sizeof(struct anchor_train_push) == 12, "mirror of Push in shaders/anchor_train_input.comp");

struct anchor_train_packed_push {
    uint32_t batch, chw, masked, hw, w, hp, wp, border, c4x4;
};
_Static_assert(sizeof(struct anchor_train_packed_push) == 36, "mirror of Push (PACKED) in shaders/anchor_train_input.comp");

struct anchor_infer_push {
    uint32_t anchors, batch, chw;
};
_Static_assert(sizeof(struct anchor_infer_push) == 12, "mirror of Push in shaders/anchor_infer_input.comp");

struct anchor_reduce_push {
    uint32_t anchors, batch, classes;
};
_Static_assert(sizeof(struct anchor_reduce_push) == 12, "mirror of Push in shaders/anchor_reduce.comp");

#define WANT_WG 256u

/* INVALID_ARGUMENT unless `t` holds `floats` 4-byte values; LIMIT_EXCEEDED over one binding. */
static vka_result check_tensor(vka_cmd *cmd, const char *op, const char *shape, const char *what, vka_tensor t,
                               uint64_t floats)
{
    if (t.size < floats * 4)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: %s needs %s of %llu values (%llu bytes), given %llu bytes", op, shape, what,
                            (unsigned long long)floats, (unsigned long long)(floats * 4), (unsigned long long)t.size);
    return vka_head_check_range(cmd, op, what, floats * 4);
}

static vka_result get_kernel(vka_cmd *cmd, const vka_kernel_desc *desc, vka_kernel **k)
{
    vka_result rc = vka_kernel_get(vka_cmd_context(cmd), desc, k);
    return rc ? vka_cmd_keep(cmd, rc) : VKA_SUCCESS;
}

/* vka_anchor_train_input, and with `packed` present its _packed form. */
static vka_result train_input(vka_cmd *cmd, const char *op, const vka_anchor_shape *s, vka_tensor out,
                              const vka_packed_layout *packed, vka_tensor x, vka_tensor ref_index, int masked)
{
    char shape[128];
    if (!s) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no shape given", op);
    if (s->batch == 0 || s->channels == 0 || s->height == 0 || s->width == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: x (%u, %u, %u, %u): every size must be >= 1", op,
                            s->batch, s->channels, s->height, s->width);
    uint64_t B = s->batch, chw = (uint64_t)s->channels * s->height * s->width;
    snprintf(shape, sizeof shape, "x (%u, %u, %u, %u)", s->batch, s->channels, s->height, s->width);
    vka_result rc;
    uint64_t out_floats = B * 2 * chw;
    if (packed) {
        if (packed->h != s->height || packed->w != s->width || packed->c4 * 4ull < 2ull * s->channels ||
            packed->hp < packed->h + packed->border || packed->wp < packed->w + packed->border)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                                "%s: %s: the packed out (%ux%u in %ux%u, border %u, %u channel vec4) does not hold "
                                "(B, 2C, H, W)", op, shape, packed->h, packed->w, packed->hp, packed->wp,
                                packed->border, packed->c4);
        out = packed->t;
        out_floats = B * packed->hp * packed->wp * packed->c4 * 4;
    }
    if ((rc = check_tensor(cmd, op, shape, packed ? "packed out [B][hp][wp][c4]" : "out (B, 2C, H, W)", out,
                           out_floats)) ||
        (rc = check_tensor(cmd, op, shape, "x (B, C, H, W)", x, B * chw)) ||
        (rc = check_tensor(cmd, op, shape, "ref_index (B) int32", ref_index, B)))
        return rc;
    struct anchor_train_packed_push push = {.batch = s->batch, .chw = (uint32_t)chw, .masked = masked ? 1u : 0u};
    if (packed)
        push = (struct anchor_train_packed_push){s->batch, (uint32_t)chw, masked ? 1u : 0u, s->height * s->width,
                                                 s->width, packed->hp, packed->wp, packed->border, packed->c4 * 4};
    vka_kernel_desc desc = {
        .name = packed ? "anchor_train_input_packed" : "anchor_train_input",
        .spirv = packed ? vka_spv_anchor_train_input_packed : vka_spv_anchor_train_input,
        .spirv_bytes = packed ? sizeof vka_spv_anchor_train_input_packed : sizeof vka_spv_anchor_train_input,
        .num_bindings = 3, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = packed ? sizeof push : sizeof(struct anchor_train_push),
        .local_size = {vka_plan_workgroup_1d(vka_cmd_context(cmd), WANT_WG)},
    };
    vka_kernel *k;
    if ((rc = get_kernel(cmd, &desc, &k))) return rc;
    vka_tensor t[3] = {vka_tensor_slice(x, 0, B * chw * 4), vka_tensor_slice(ref_index, 0, B * 4),
                       vka_tensor_slice(out, 0, out_floats * 4)};
    return vka_op_done(cmd, vka_dispatch_items(cmd, k, t, 3, &push, B * chw));
}

vka_result vka_anchor_train_input(vka_cmd *cmd, const vka_anchor_shape *s, vka_tensor out, vka_tensor x,
                                  vka_tensor ref_index, int masked)
{
    return train_input(cmd, "anchor_train_input", s, out, NULL, x, ref_index, masked);
}

vka_result vka_anchor_train_input_packed(vka_cmd *cmd, const vka_anchor_shape *s, const vka_packed_layout *out,
                                         vka_tensor x, vka_tensor ref_index, int masked)
{
    if (!out) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "anchor_train_input_packed: no packed layout");
    return train_input(cmd, "anchor_train_input_packed", s, (vka_tensor){0}, out, x, ref_index, masked);
}

vka_result vka_anchor_infer_input(vka_cmd *cmd, const vka_anchor_shape *s, vka_tensor out, vka_tensor x,
                                  vka_tensor refs)
{
    const char *op = "anchor_infer_input";
    char shape[128];
    if (!s) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no shape given", op);
    if (s->batch == 0 || s->channels == 0 || s->height == 0 || s->width == 0 || s->anchors == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: x (%u, %u, %u, %u) with K=%u anchors: every size must be >= 1", op, s->batch,
                            s->channels, s->height, s->width, s->anchors);
    uint64_t B = s->batch, K = s->anchors, chw = (uint64_t)s->channels * s->height * s->width;
    snprintf(shape, sizeof shape, "x (%u, %u, %u, %u), K=%u", s->batch, s->channels, s->height, s->width, s->anchors);
    vka_result rc;
    if ((rc = check_tensor(cmd, op, shape, "out (K*B, 2C, H, W)", out, K * B * 2 * chw)) ||
        (rc = check_tensor(cmd, op, shape, "x (B, C, H, W)", x, B * chw)) ||
        (rc = check_tensor(cmd, op, shape, "refs (K, C, H, W)", refs, K * chw)))
        return rc;
    vka_kernel_desc desc = {
        .name = op, VKA_SPIRV(vka_spv_anchor_infer_input),
        .num_bindings = 3, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct anchor_infer_push),
        .local_size = {vka_plan_workgroup_1d(vka_cmd_context(cmd), WANT_WG)},
    };
    vka_kernel *k;
    if ((rc = get_kernel(cmd, &desc, &k))) return rc;
    struct anchor_infer_push push = {s->anchors, s->batch, (uint32_t)chw};
    vka_tensor t[3] = {vka_tensor_slice(x, 0, B * chw * 4), vka_tensor_slice(refs, 0, K * chw * 4),
                       vka_tensor_slice(out, 0, K * B * 2 * chw * 4)};
    return vka_op_done(cmd, vka_dispatch_items(cmd, k, t, 3, &push, K * B * chw));
}

vka_result vka_anchor_reduce(vka_cmd *cmd, uint32_t anchors, uint32_t batch, uint32_t classes,
                             vka_tensor mean_logits, vka_tensor uncertainty, vka_tensor calibrated,
                             vka_tensor logits)
{
    const char *op = "anchor_reduce";
    char shape[128];
    snprintf(shape, sizeof shape, "K=%u B=%u classes=%u", anchors, batch, classes);
    if (anchors == 0 || batch == 0 || classes == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %s: every size must be >= 1", op, shape);
    uint64_t K = anchors, B = batch, NC = classes;
    vka_result rc;
    if ((rc = check_tensor(cmd, op, shape, "logits (K*B, classes)", logits, K * B * NC)) ||
        (rc = check_tensor(cmd, op, shape, "mean_logits (B, classes)", mean_logits, B * NC)) ||
        (rc = check_tensor(cmd, op, shape, "uncertainty (B)", uncertainty, B)) ||
        (rc = check_tensor(cmd, op, shape, "calibrated (B, classes)", calibrated, B * NC)))
        return rc;
    /* One invocation per image: a small workgroup spreads a small batch over more threads. */
    vka_kernel_desc desc = {
        .name = op, VKA_SPIRV(vka_spv_anchor_reduce),
        .num_bindings = 4, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct anchor_reduce_push),
        .local_size = {vka_plan_workgroup_1d(vka_cmd_context(cmd), 64)},
    };
    vka_kernel *k;
    if ((rc = get_kernel(cmd, &desc, &k))) return rc;
    struct anchor_reduce_push push = {anchors, batch, classes};
    vka_tensor t[4] = {vka_tensor_slice(logits, 0, K * B * NC * 4), vka_tensor_slice(mean_logits, 0, B * NC * 4),
                       vka_tensor_slice(uncertainty, 0, B * 4), vka_tensor_slice(calibrated, 0, B * NC * 4)};
    return vka_op_done(cmd, vka_dispatch_items(cmd, k, t, 4, &push, B));
}
