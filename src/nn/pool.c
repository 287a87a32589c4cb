/* Max pool (forward with an int32 argmax; backward without atomics: a gather
 * over the windows that hold each input element, or for disjoint windows (k ==
 * stride, pad 0, the cnn's 2x2) one invocation per window writing its k x k
 * block) and global average pool. Indices are decoded with multiply-high
 * divisions (fastdiv.h): an integer division is a scalar loop over the lanes on
 * lavapipe. The forward reads x through an R32F texel buffer where it fits.
 * 2x2 windows of stride 2 on planes of even height and width a multiple of 4 (the
 * cnn's pools) take maxpool2x2.comp instead: a pair of windows per invocation, vec4
 * rows in, pairs out. The global-average-pool backward stores 4 elements at a time where
 * the planes are at least 4 long. */
#include <stdlib.h>
#include <string.h>

#include "nn/ops_internal.h"

#include "nn/fastdiv.h"
#include "nn/pool.h"

#include "gap_bwd_data.spv.h"
#include "gap_bwd_data_vec4.spv.h"
#include "gap_fwd.spv.h"
#include "maxpool_bwd_data.spv.h"
#include "maxpool_bwd_data_disjoint.spv.h"
#include "maxpool_fwd.spv.h"
#include "maxpool_fwd_bn.spv.h"
#include "maxpool_fwd_texel.spv.h"
#include "maxpool_fwd_texel_bn.spv.h"
#include "maxpool2x2_bwd_data.spv.h"
#include "maxpool2x2_fwd.spv.h"
#include "maxpool2x2_fwd_bn.spv.h"

struct maxpool_push {
    uint32_t total, H, W, P, Q, k, stride, pad;
    vka_fastdiv div_a, div_b, div_s; /* forward: Q, P; backward: W, H; both: stride */
    uint32_t c, relu;                /* the forward applying a BatchNorm: channels, its fused ReLU */
    vka_fastdiv div_c;
};
_Static_assert(sizeof(struct maxpool_push) == 72, "mirror of Push in maxpool_fwd.comp and maxpool_bwd_data.comp");
struct maxpool2x2_push {
    uint32_t total, W, P, Q2;
    vka_fastdiv q2_div, p_div;
    uint32_t c, relu;                /* the forward applying a BatchNorm: channels, its fused ReLU */
    vka_fastdiv c_div;
};
_Static_assert(sizeof(struct maxpool2x2_push) == 48, "mirror of Push in maxpool2x2.comp");
struct gap_fwd_push {
    uint32_t planes, hw;
};
_Static_assert(sizeof(struct gap_fwd_push) == 8, "mirror of Push in gap_fwd.comp");
struct gap_bwd_push {
    uint32_t total, hw;
    vka_fastdiv hw_div;
};
_Static_assert(sizeof(struct gap_bwd_push) == 16, "mirror of Push in gap_bwd_data.comp");

#define WG 128
#define GAP_WG 64

uint32_t vka_maxpool_out_size(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad)
{
    if (stride == 0) stride = k;
    if (k == 0 || (uint64_t)in + 2ull * pad < k) return 0;
    return (uint32_t)(((uint64_t)in + 2ull * pad - k) / stride + 1);
}

static vka_result need(vka_cmd *cmd, const char *op, const char *name, vka_tensor t, uint64_t bytes)
{
    if (vka_tensor_present(t) && t.size >= bytes) return VKA_SUCCESS;
    return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %s holds %llu bytes but the shape needs %llu", op,
                        name, vka_tensor_present(t) ? (unsigned long long)t.size : 0ull, (unsigned long long)bytes);
}

/* Shape checks shared by forward and backward; fills the push block. */
static vka_result check_maxpool(vka_cmd *cmd, const char *op, const vka_maxpool_desc *d, struct maxpool_push *mp,
                                uint64_t *in_bytes, uint64_t *out_bytes)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (!d) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no desc", op);
    uint32_t stride = d->stride ? d->stride : d->k;
    uint32_t P = vka_maxpool_out_size(d->h, d->k, stride, d->pad), Q = vka_maxpool_out_size(d->w, d->k, stride, d->pad);
    if (!d->n || !d->c || !d->h || !d->w || !d->k)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: N=%u C=%u H=%u W=%u k=%u: every size must be >= 1",
                            op, d->n, d->c, d->h, d->w, d->k);
    if (2ull * d->pad > d->k || !P || !Q)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: window k=%u stride=%u pad=%u on %ux%u: needs 2 pad <= k and k <= the padded input",
                            op, d->k, stride, d->pad, d->h, d->w);
    uint64_t planes = (uint64_t)d->n * d->c, in = planes * d->h * d->w, out = planes * P * Q;
    if (in * 4 > ctx->limits.max_storage_buffer_range || in > INT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu inputs exceed one storage binding (%llu bytes)",
                            op, (unsigned long long)in, (unsigned long long)ctx->limits.max_storage_buffer_range);
    *mp = (struct maxpool_push){0, d->h, d->w, P, Q, d->k, stride, d->pad, .div_s = vka_fastdiv_make(stride)};
    *in_bytes = in * 4;
    *out_bytes = out * 4;
    return VKA_SUCCESS;
}

/* in: the input x's binding, storage or (the texel kernels) an R32F texel buffer. */
static vka_result kernel(vka_cmd *cmd, vka_binding_kind in, const char *name, const uint32_t *spirv, size_t bytes,
                         uint32_t nb, uint32_t push_bytes, uint32_t wg, vka_kernel **k)
{
    vka_kernel_desc desc = {
        .name = name, .spirv = spirv, .spirv_bytes = bytes, .num_bindings = nb,
        .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE}, .push_bytes = push_bytes,
        .local_size = {vka_plan_workgroup_1d(vka_cmd_context(cmd), wg)},
    };
    desc.bindings[0] = in;
    if (in != VKA_BIND_STORAGE && nb == 4) desc.bindings[3] = VKA_BIND_TEXEL_RGBA32F; /* the BN's coefficients */
    vka_result rc = vka_kernel_get(vka_cmd_context(cmd), &desc, k);
    return rc ? vka_cmd_keep(cmd, rc) : VKA_SUCCESS;
}
#define KERNEL(cmd, in, nm, nb, push, wg, k) \
    kernel(cmd, in, #nm, vka_spv_##nm, sizeof vka_spv_##nm, nb, sizeof(push), wg, k)

/* Whether maxpool2x2.comp takes this pool: 2x2 windows, stride 2, no padding, H even, W a
 * multiple of 4 (so P = H/2, Q = W/2 even: pairs of windows never straddle a row), with y,
 * argmax and dy (pairs) and dx (vec4) at offsets their vector types allow. */
static int pairs_shape(const vka_maxpool_desc *d, const struct maxpool_push *mp)
{
    return mp->k == 2 && mp->stride == 2 && mp->pad == 0 && d->h % 2 == 0 && d->w % 4 == 0;
}

/* maxpool2x2.comp over t: the forward {x (texel), y, argmax[, coef (texel)]} or the backward
 * {dy, argmax, dx}; with coef the forward applies that BatchNorm (+ ReLU if relu) to x first. */
static vka_result dispatch_2x2(vka_cmd *cmd, const vka_maxpool_desc *d, const struct maxpool_push *mp, int forward,
                               const vka_tensor *t, int bn, int relu)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t q2 = mp->Q / 2;
    struct maxpool2x2_push pp = {
        .total = (uint32_t)((uint64_t)d->n * d->c * mp->P * q2), .W = d->w, .P = mp->P, .Q2 = q2,
        .q2_div = vka_fastdiv_make(q2), .p_div = vka_fastdiv_make(mp->P), .c = d->c, .relu = relu != 0,
        .c_div = vka_fastdiv_make(d->c),
    };
    vka_kernel_desc desc = {
        .name = bn ? "maxpool2x2_fwd_bn" : forward ? "maxpool2x2_fwd" : "maxpool2x2_bwd_data",
        .spirv = bn ? vka_spv_maxpool2x2_fwd_bn : forward ? vka_spv_maxpool2x2_fwd : vka_spv_maxpool2x2_bwd_data,
        .spirv_bytes = bn        ? sizeof vka_spv_maxpool2x2_fwd_bn
                       : forward ? sizeof vka_spv_maxpool2x2_fwd
                                 : sizeof vka_spv_maxpool2x2_bwd_data,
        .num_bindings = bn ? 4 : 3,
        .bindings = {forward ? VKA_BIND_TEXEL_RGBA32F : VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE,
                     VKA_BIND_TEXEL_RGBA32F},
        .push_bytes = sizeof pp, .local_size = {vka_plan_workgroup_1d(ctx, WG)},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    return vka_dispatch_items(cmd, k, t, bn ? 4 : 3, &pp, pp.total);
}

/* vka_maxpool_forward, and with coef present vka_maxpool_forward_bn. */
static vka_result forward(vka_cmd *cmd, const char *op, const vka_maxpool_desc *d, vka_tensor y, vka_tensor argmax,
                          vka_tensor x, vka_tensor coef, int relu)
{
    struct maxpool_push mp;
    uint64_t xb, yb;
    vka_result rc;
    int bn = vka_tensor_present(coef);
    if ((rc = check_maxpool(cmd, op, d, &mp, &xb, &yb))) return rc;
    if ((rc = need(cmd, op, "y", y, yb)) || (rc = need(cmd, op, "argmax", argmax, yb)) ||
        (rc = need(cmd, op, "x", x, xb)) || (bn && (rc = need(cmd, op, "coef", coef, (uint64_t)d->c * 32))))
        return rc;
    y = vka_tensor_slice(y, 0, yb);
    argmax = vka_tensor_slice(argmax, 0, yb);
    x = vka_tensor_slice(x, 0, xb);
    if (bn) coef = vka_tensor_slice(coef, 0, (uint64_t)d->c * 32);
    if (vka_tensor_overlaps(y, x) || vka_tensor_overlaps(argmax, x) || vka_tensor_overlaps(y, argmax) || (bn && (vka_tensor_overlaps(y, coef) || vka_tensor_overlaps(argmax, coef))))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: y, argmax and x%s must not overlap", op, bn ? " and coef" : "");
    mp.total = (uint32_t)(yb / 4);
    mp.div_a = vka_fastdiv_make(mp.Q);
    mp.div_b = vka_fastdiv_make(mp.P);
    mp.c = d->c, mp.relu = relu != 0, mp.div_c = vka_fastdiv_make(d->c);
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t texel_align = ctx->info.limits.min_texel_buffer_offset_alignment;
    int texel_ok = !vka_switch_off("VKANCHOR_TEXEL") && x.offset % texel_align == 0 &&
                   (!bn || (coef.offset % texel_align == 0 && ctx->info.features.texel_buffer_rgba32f));
    if (texel_ok && pairs_shape(d, &mp) && ctx->info.features.texel_buffer_rgba32f &&
        xb / 16 <= ctx->limits.max_texel_buffer_elements && y.offset % 8 == 0 && argmax.offset % 8 == 0)
        return vka_op_done(cmd, dispatch_2x2(cmd, d, &mp, 1, (vka_tensor[4]){x, y, argmax, coef}, bn, relu));
    int texel = texel_ok && ctx->info.features.texel_buffer_r32f && xb / 4 <= ctx->limits.max_texel_buffer_elements;
    vka_kernel *k;
    if (bn)
        rc = texel ? KERNEL(cmd, VKA_BIND_TEXEL_R32F, maxpool_fwd_texel_bn, 4, mp, WG, &k)
                   : KERNEL(cmd, VKA_BIND_STORAGE, maxpool_fwd_bn, 4, mp, WG, &k);
    else
        rc = texel ? KERNEL(cmd, VKA_BIND_TEXEL_R32F, maxpool_fwd_texel, 3, mp, WG, &k)
                   : KERNEL(cmd, VKA_BIND_STORAGE, maxpool_fwd, 3, mp, WG, &k);
    if (rc) return rc;
    vka_tensor t[4] = {x, y, argmax, coef};
    rc = vka_dispatch_items(cmd, k, t, bn ? 4 : 3, &mp, mp.total);
    return vka_op_done(cmd, rc);
}

vka_result vka_maxpool_forward(vka_cmd *cmd, const vka_maxpool_desc *d, vka_tensor y, vka_tensor argmax,
                               vka_tensor x)
{
    return forward(cmd, "maxpool_forward", d, y, argmax, x, (vka_tensor){0}, 0);
}

vka_result vka_maxpool_forward_bn(vka_cmd *cmd, const vka_maxpool_desc *d, vka_tensor y, vka_tensor argmax,
                                  vka_tensor x, vka_tensor coef, int relu)
{
    if (!vka_tensor_present(coef))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "maxpool_forward_bn: no coefficients");
    return forward(cmd, "maxpool_forward_bn", d, y, argmax, x, coef, relu);
}

vka_result vka_maxpool_backward(vka_cmd *cmd, const vka_maxpool_desc *d, vka_tensor dx, vka_tensor dy,
                                vka_tensor argmax)
{
    static const char op[] = "maxpool_backward";
    struct maxpool_push mp;
    uint64_t xb, yb;
    vka_result rc;
    if ((rc = check_maxpool(cmd, op, d, &mp, &xb, &yb))) return rc;
    if ((rc = need(cmd, op, "dx", dx, xb)) || (rc = need(cmd, op, "dy", dy, yb)) ||
        (rc = need(cmd, op, "argmax", argmax, yb)))
        return rc;
    dx = vka_tensor_slice(dx, 0, xb);
    dy = vka_tensor_slice(dy, 0, yb);
    argmax = vka_tensor_slice(argmax, 0, yb);
    if (vka_tensor_overlaps(dx, dy) || vka_tensor_overlaps(dx, argmax))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: dx must not overlap dy or argmax", op);
    if (pairs_shape(d, &mp) && dy.offset % 8 == 0 && argmax.offset % 8 == 0 && dx.offset % 16 == 0)
        return vka_op_done(cmd, dispatch_2x2(cmd, d, &mp, 0, (vka_tensor[3]){dy, argmax, dx}, 0, 0));
    /* Disjoint windows: one invocation per window; otherwise one per input element. */
    int disjoint = mp.k == mp.stride && mp.pad == 0;
    mp.total = (uint32_t)((disjoint ? yb : xb) / 4);
    mp.div_a = vka_fastdiv_make(disjoint ? mp.Q : mp.W);
    mp.div_b = vka_fastdiv_make(disjoint ? mp.P : mp.H);
    vka_kernel *k;
    if ((rc = disjoint ? KERNEL(cmd, VKA_BIND_STORAGE, maxpool_bwd_data_disjoint, 3, mp, WG, &k)
                       : KERNEL(cmd, VKA_BIND_STORAGE, maxpool_bwd_data, 3, mp, WG, &k)))
        return rc;
    vka_tensor t[3] = {dy, argmax, dx};
    rc = vka_dispatch_items(cmd, k, t, 3, &mp, mp.total);
    return vka_op_done(cmd, rc);
}

static vka_result check_gap(vka_cmd *cmd, const char *op, uint32_t n, uint32_t c, uint32_t hw)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (!n || !c || !hw)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: N=%u C=%u HW=%u: every size must be >= 1", op, n, c,
                            hw);
    uint64_t in = (uint64_t)n * c * hw;
    if (in * 4 > ctx->limits.max_storage_buffer_range || in > UINT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu values exceed one storage binding (%llu bytes)",
                            op, (unsigned long long)in, (unsigned long long)ctx->limits.max_storage_buffer_range);
    return VKA_SUCCESS;
}

vka_result vka_global_avgpool_forward(vka_cmd *cmd, uint32_t n, uint32_t c, uint32_t hw, vka_tensor y, vka_tensor x)
{
    static const char op[] = "global_avgpool_forward";
    vka_result rc;
    if ((rc = check_gap(cmd, op, n, c, hw))) return rc;
    uint64_t planes = (uint64_t)n * c, xb = planes * hw * 4, yb = planes * 4;
    if ((rc = need(cmd, op, "y", y, yb)) || (rc = need(cmd, op, "x", x, xb))) return rc;
    y = vka_tensor_slice(y, 0, yb);
    x = vka_tensor_slice(x, 0, xb);
    if (vka_tensor_overlaps(y, x)) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: y overlaps x", op);
    struct gap_fwd_push gp = {(uint32_t)planes, hw};
    vka_kernel *k;
    if ((rc = KERNEL(cmd, VKA_BIND_STORAGE, gap_fwd, 2, gp, GAP_WG, &k))) return rc;
    vka_tensor t[2] = {x, y};
    rc = vka_dispatch_items(cmd, k, t, 2, &gp, planes);
    return vka_op_done(cmd, rc);
}

vka_result vka_global_avgpool_backward(vka_cmd *cmd, uint32_t n, uint32_t c, uint32_t hw, vka_tensor dx,
                                       vka_tensor dy)
{
    static const char op[] = "global_avgpool_backward";
    vka_result rc;
    if ((rc = check_gap(cmd, op, n, c, hw))) return rc;
    uint64_t planes = (uint64_t)n * c, xb = planes * hw * 4, yb = planes * 4;
    if ((rc = need(cmd, op, "dx", dx, xb)) || (rc = need(cmd, op, "dy", dy, yb))) return rc;
    dx = vka_tensor_slice(dx, 0, xb);
    dy = vka_tensor_slice(dy, 0, yb);
    if (vka_tensor_overlaps(dx, dy)) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: dx overlaps dy", op);
    struct gap_bwd_push gp = {(uint32_t)(xb / 4), hw, vka_fastdiv_make(hw)};
    int vec4 = hw >= 4 && gp.total % 4 == 0 && dx.offset % 16 == 0; /* runs of 4 span at most two planes */
    if (vec4) gp.total /= 4;
    vka_kernel *k;
    if ((rc = vec4 ? KERNEL(cmd, VKA_BIND_STORAGE, gap_bwd_data_vec4, 2, gp, WG, &k)
                   : KERNEL(cmd, VKA_BIND_STORAGE, gap_bwd_data, 2, gp, WG, &k)))
        return rc;
    vka_tensor t[2] = {dy, dx};
    rc = vka_dispatch_items(cmd, k, t, 2, &gp, gp.total);
    return vka_op_done(cmd, rc);
}
