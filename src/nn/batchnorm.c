/* BatchNorm2d (training forward, eval forward, backward), optionally fused with
 * the ReLU after it.
 *
 * Training forward, three dispatches:
 *   fwd_stats     workgroup (g, c) -> (count, mean, M2) of a slice of channel c
 *   fwd_finalize  one invocation per channel merges its G slices in order (Chan),
 *                 writes save_mean, save_invstd, moves the running statistics if
 *                 asked, and the per-channel coefficients (mean, invstd, scale, beta)
 *   fwd           y = (x - mean) scale + beta [, max(., 0)], element-wise
 * Eval forward: fwd_finalize in eval mode (coefficients from the running
 * statistics), then fwd.
 * Backward, three dispatches:
 *   bwd_reduce    workgroup (g, c) -> (sum dz, sum dz xhat) of a slice of channel c
 *   bwd_finalize  per channel: dbeta, dgamma, and coefficients for the next pass
 *   bwd_data      dx = gamma invstd (dz - dbeta/n - xhat dgamma/n), element-wise
 *
 * Variants of the four big passes: VEC4 (HW % 4 == 0: 4 floats of one plane per
 * load) x TEXEL (inputs through uniform texel buffers when they fit the device's
 * texel-buffer limits and VKANCHOR_TEXEL is not 0; storage buffers otherwise), and
 * SPAN (texel only): HW % 4 != 0 with HW >= 4 and N*C*HW % 4 == 0, vec4 texels of the
 * flat tensor that may straddle two planes (resnet20's 7x7 stage: 4-5x faster per
 * byte than the scalar variant it replaces).
 * Outputs of the element-wise passes: NCHW; lavapipe's packed layout for the conv
 * next to the BN (one float per store, or with C, HW % 4 == 0 a texel per store:
 * batchnorm_packed4.comp); and for a residual block's tail (the _add ops) y = bn(x) +
 * residual, then the ReLU, NCHW, or NCHW and packed together.
 * What made these fast on lavapipe (measured, cnn shapes at batch 128): no
 * integer division per element (indices are stepped along; a division is a scalar
 * loop over the lanes there), texel-buffer loads, 8-lane reduction workgroups on
 * CPU devices (every barrier switches coroutines per 8-lane slice).
 *
 * Ideas not done yet: statistics in the producing conv's epilogue and BN-apply +
 * ReLU in the consuming conv's loads (notes/lavapipe-performance.md). */
#include <stdlib.h>
#include <string.h>

#include "nn/ops_internal.h"

#include "nn/batchnorm.h"
#include "nn/fastdiv.h"

#include "batchnorm_bwd_data.spv.h"
#include "batchnorm_bwd_data_packed.spv.h"
#include "batchnorm_bwd_data_packed_texel.spv.h"
#include "batchnorm_bwd_data_packed_vec4.spv.h"
#include "batchnorm_bwd_data_packed_vec4_texel.spv.h"
#include "batchnorm_bwd_data_texel.spv.h"
#include "batchnorm_bwd_data_vec4.spv.h"
#include "batchnorm_bwd_data_vec4_texel.spv.h"
#include "batchnorm_bwd_finalize.spv.h"
#include "batchnorm_bwd_data_packed_span.spv.h"
#include "batchnorm_bwd_data_span.spv.h"
#include "batchnorm_bwd_reduce.spv.h"
#include "batchnorm_bwd_reduce_span.spv.h"
#include "batchnorm_bwd_reduce_texel.spv.h"
#include "batchnorm_bwd_reduce_vec4.spv.h"
#include "batchnorm_bwd_reduce_vec4_texel.spv.h"
#include "batchnorm_fwd.spv.h"
#include "batchnorm_fwd_add.spv.h"
#include "batchnorm_fwd_add_packed4.spv.h"
#include "batchnorm_fwd_add_packed4_texel.spv.h"
#include "batchnorm_fwd_dual_packed4.spv.h"
#include "batchnorm_fwd_dual_packed4_texel.spv.h"
#include "batchnorm_fwd_add_span.spv.h"
#include "batchnorm_fwd_add_dual_span.spv.h"
#include "batchnorm_fwd_dual_span.spv.h"
#include "batchnorm_fwd_add_texel.spv.h"
#include "batchnorm_fwd_add_vec4.spv.h"
#include "batchnorm_fwd_add_vec4_texel.spv.h"
#include "batchnorm_fwd_packed.spv.h"
#include "batchnorm_fwd_packed_texel.spv.h"
#include "batchnorm_fwd_packed_vec4.spv.h"
#include "batchnorm_fwd_packed_vec4_texel.spv.h"
#include "batchnorm_fwd_finalize.spv.h"
#include "batchnorm_fwd_packed_span.spv.h"
#include "batchnorm_fwd_packed4.spv.h"
#include "batchnorm_fwd_packed4_texel.spv.h"
#include "batchnorm_bwd_data_packed4.spv.h"
#include "batchnorm_bwd_data_packed4_texel.spv.h"
#include "batchnorm_fwd_span.spv.h"
#include "batchnorm_fwd_stats_span.spv.h"
#include "batchnorm_fwd_stats.spv.h"
#include "batchnorm_fwd_stats_texel.spv.h"
#include "batchnorm_fwd_stats_vec4.spv.h"
#include "batchnorm_fwd_stats_vec4_texel.spv.h"
#include "batchnorm_fwd_texel.spv.h"
#include "batchnorm_fwd_vec4.spv.h"
#include "batchnorm_fwd_vec4_texel.spv.h"

enum pass { PASS_FWD_STATS, PASS_FWD, PASS_BWD_REDUCE, PASS_BWD_DATA, PASS_COUNT };

typedef struct variant {
    const char *name;
    const uint32_t *spirv;
    size_t bytes;
} variant;
#define V(nm) {#nm, vka_spv_##nm, sizeof vka_spv_##nm}
/* [pass][vec4][texel] */
static const variant variants[PASS_COUNT][2][2] = {
    {{V(batchnorm_fwd_stats), V(batchnorm_fwd_stats_texel)},
     {V(batchnorm_fwd_stats_vec4), V(batchnorm_fwd_stats_vec4_texel)}},
    {{V(batchnorm_fwd), V(batchnorm_fwd_texel)}, {V(batchnorm_fwd_vec4), V(batchnorm_fwd_vec4_texel)}},
    {{V(batchnorm_bwd_reduce), V(batchnorm_bwd_reduce_texel)},
     {V(batchnorm_bwd_reduce_vec4), V(batchnorm_bwd_reduce_vec4_texel)}},
    {{V(batchnorm_bwd_data), V(batchnorm_bwd_data_texel)},
     {V(batchnorm_bwd_data_vec4), V(batchnorm_bwd_data_vec4_texel)}},
};
/* The apply and input-gradient passes writing the packed layout: [bwd][vec4][texel]. */
static const variant packed_variants[2][2][2] = {
    {{V(batchnorm_fwd_packed), V(batchnorm_fwd_packed_texel)},
     {V(batchnorm_fwd_packed_vec4), V(batchnorm_fwd_packed_vec4_texel)}},
    {{V(batchnorm_bwd_data_packed), V(batchnorm_bwd_data_packed_texel)},
     {V(batchnorm_bwd_data_packed_vec4), V(batchnorm_bwd_data_packed_vec4_texel)}},
};
/* SPAN: [pass], then the packed outputs [bwd]. */
static const variant span_variants[PASS_COUNT] = {V(batchnorm_fwd_stats_span), V(batchnorm_fwd_span),
                                                  V(batchnorm_bwd_reduce_span), V(batchnorm_bwd_data_span)};
static const variant packed_span_variants[2] = {V(batchnorm_fwd_packed_span), V(batchnorm_bwd_data_packed_span)};
/* The apply pass of a residual block's tail, y = bn(x) + residual (then the ReLU): [vec4][texel], then SPAN. */
static const variant add_variants[2][2] = {{V(batchnorm_fwd_add), V(batchnorm_fwd_add_texel)},
                                           {V(batchnorm_fwd_add_vec4), V(batchnorm_fwd_add_vec4_texel)}};
static const variant add_span_variant = V(batchnorm_fwd_add_span);
/* The packed outputs a texel per store (batchnorm_packed4.comp): [bwd][texel]. */
static const variant packed4_variants[2][2] = {
    {V(batchnorm_fwd_packed4), V(batchnorm_fwd_packed4_texel)},
    {V(batchnorm_bwd_data_packed4), V(batchnorm_bwd_data_packed4_texel)},
};
/* A residual block's tail writing y both NCHW and packed: [texel]. */
static const variant add_packed4_variants[2] = {V(batchnorm_fwd_add_packed4), V(batchnorm_fwd_add_packed4_texel)};
static const variant dual_packed4_variants[2] = {V(batchnorm_fwd_dual_packed4), V(batchnorm_fwd_dual_packed4_texel)};
/* The same two where HW % 4 != 0 (SPAN, texel inputs): a residual block's tail, and plain. */
static const variant add_dual_span_variant = V(batchnorm_fwd_add_dual_span);
static const variant dual_span_variant = V(batchnorm_fwd_dual_span);
#undef V

struct stats_push {
    uint32_t C, hw, count, per_group, step_i, step_j;
    vka_fastdiv hw_div;
    uint32_t plane;
};
_Static_assert(sizeof(struct stats_push) == 36, "mirror of Push in batchnorm_fwd_stats.comp");
struct fwd_finalize_push {
    uint32_t C, groups;
    float eps, momentum;
    uint32_t update_running, eval;
};
_Static_assert(sizeof(struct fwd_finalize_push) == 24, "mirror of Push in batchnorm_fwd_finalize.comp");
struct elementwise_push {
    uint32_t C, hw, total, relu, step_j, step_c;
    vka_fastdiv hw_div, c_div;
};
_Static_assert(sizeof(struct elementwise_push) == 40, "mirror of Push in batchnorm_fwd.comp, batchnorm_bwd_data.comp");
struct packed_push {
    struct elementwise_push e;
    vka_fastdiv w_div;            /* first: 8-byte aligned in the shader's block */
    uint32_t w, hp, wp, c4x4, border;
};
_Static_assert(sizeof(struct packed_push) == 68,
               "mirror of Push in batchnorm_fwd.comp and batchnorm_bwd_data.comp with PACKED (packed_store.glsl)");
struct packed4_push {
    vka_fastdiv q_div, c4_div, w_div;
    uint32_t q, c4, total, relu, w, hp, wp, border;
};
_Static_assert(sizeof(struct packed4_push) == 56, "mirror of Push in batchnorm_packed4.comp");
struct bwd_reduce_push {
    uint32_t C, hw, count, per_group, step_i, step_j;
    vka_fastdiv hw_div;
    uint32_t relu, plane;
};
_Static_assert(sizeof(struct bwd_reduce_push) == 40, "mirror of Push in batchnorm_bwd_reduce.comp");
struct bwd_finalize_push {
    uint32_t C, groups;
    float n;
};
_Static_assert(sizeof(struct bwd_finalize_push) == 12, "mirror of Push in batchnorm_bwd_finalize.comp");

/* Reduction workgroups. GPUs: 128 lanes folding ~4 units each, then a shared-memory
 * tree. CPU drivers (lavapipe) run a workgroup as a loop over 8-lane slices and
 * switch coroutines per slice at every barrier: there one slice folds ~128 units
 * per lane and the tree has 3 levels (32 units: 3x faster than the GPU shape on the
 * cnn's; 128: another 15-21% off resnet20's statistics and gradient sums, perf-log 33).
 * VKANCHOR_BN_REDUCE=gpu|cpu overrides the choice (tests run both on any device). */
#define REDUCE_WG_GPU 128
#define UNITS_PER_LANE_GPU 4
#define REDUCE_WG_CPU 8
#define UNITS_PER_LANE_CPU 128
#define MAX_GROUPS 256       /* slices per channel; the finalize merges them sequentially */
#define ELEMENTWISE_WG 64
#define ITEMS 8              /* units per invocation in batchnorm_fwd/bwd_data.comp */
#define FINALIZE_WG 64

/* How a shape is cut into dispatches; a pure function of the context, the desc and the
 * span choice, so the scratch size asked for up front (room for either) fits what the ops use. */
typedef struct bn_plan {
    int vec4, span;          /* span: vec4 units too (and texel inputs), HW % 4 != 0 */
    int packed4;             /* packed outputs a texel per store: C % 4 == 0 and HW % 4 == 0 */
    uint32_t unit_hw;        /* units per plane (span: vec4 chunks covering it in the reductions) */
    uint32_t count;          /* units per channel: N * unit_hw */
    uint32_t total;          /* units in x: N * C * HW / (4 if vec4) */
    uint32_t reduce_wg, groups, per_group;
    uint32_t elementwise_wg;
    uint64_t part_bytes;     /* (C, G) vec4 partials, padded to a binding offset */
    uint64_t coef_bytes;     /* (C, 2) vec4 per-channel coefficients */
} bn_plan;

/* Whether the packed outputs can go a texel per store (batchnorm_packed4.comp). */
static int packed4_shape(const vka_batchnorm_desc *d) { return d->c % 4 == 0 && d->hw % 4 == 0; }

/* Whether the shape can take the SPAN variants (which also need texel inputs). */
static int span_shape(const vka_batchnorm_desc *d)
{
    return d->hw % 4 != 0 && d->hw >= 4 && (uint64_t)d->n * d->c * d->hw % 4 == 0;
}

static bn_plan plan_bn(const vka_context *ctx, const vka_batchnorm_desc *d, int span)
{
    bn_plan p = {0};
    p.span = span && span_shape(d);
    p.vec4 = d->hw % 4 == 0 || p.span;
    /* A plane at float offset r (mod 4) touches ceil((r + HW) / 4) texels: at most (HW + 6) / 4. */
    p.unit_hw = p.span ? (d->hw + 6) / 4 : p.vec4 ? d->hw / 4 : d->hw;
    p.count = (uint32_t)((uint64_t)d->n * p.unit_hw);    /* the ops check N*C*HW < 2^31 first */
    p.total = (uint32_t)((uint64_t)d->n * d->c * d->hw / (p.vec4 ? 4 : 1));
    p.packed4 = packed4_shape(d);
    const char *env = getenv("VKANCHOR_BN_REDUCE");
    int cpu = env && strcmp(env, "gpu") == 0 ? 0 : env && strcmp(env, "cpu") == 0 ? 1 : ctx->info.type == VKA_DEVICE_CPU;
    p.reduce_wg = vka_plan_workgroup_1d(ctx, cpu ? REDUCE_WG_CPU : REDUCE_WG_GPU);
    uint64_t g = vka_div_up(p.count, (uint64_t)p.reduce_wg * (cpu ? UNITS_PER_LANE_CPU : UNITS_PER_LANE_GPU));
    if (g < 1) g = 1;
    if (g > MAX_GROUPS) g = MAX_GROUPS;
    p.per_group = (uint32_t)vka_div_up(p.count, g);
    p.groups = (uint32_t)vka_div_up(p.count, p.per_group);
    p.elementwise_wg = vka_plan_workgroup_1d(ctx, ELEMENTWISE_WG);
    /* The coefficients follow the partials and are bound as a texel buffer too. */
    uint64_t align = ctx->info.limits.min_storage_buffer_offset_alignment;
    if (ctx->info.limits.min_texel_buffer_offset_alignment > align) align = ctx->info.limits.min_texel_buffer_offset_alignment;
    p.part_bytes = vka_div_up((uint64_t)d->c * p.groups * 16, align) * align;
    p.coef_bytes = (uint64_t)d->c * 32;
    return p;
}

uint64_t vka_batchnorm_scratch_bytes(const vka_context *ctx, const vka_batchnorm_desc *d)
{
    if (!d || !d->n || !d->c || !d->hw) return 0;
    bn_plan p = plan_bn(ctx, d, 0), q = plan_bn(ctx, d, 1); /* an op picks one or the other */
    return (p.part_bytes > q.part_bytes ? p.part_bytes : q.part_bytes) + p.coef_bytes;
}

/* Texel-buffer inputs when the device has the format, every input fits the texel
 * limit and its offset alignment, and VKANCHOR_TEXEL is not "0". */
static int texel_inputs(const vka_context *ctx, const bn_plan *p, const vka_tensor *in, int n_in)
{
    if (vka_switch_off("VKANCHOR_TEXEL")) return 0;
    /* RGBA32F for vec4 units and the coefficients, R32F for scalar units. */
    if (!ctx->info.features.texel_buffer_rgba32f || (!p->vec4 && !ctx->info.features.texel_buffer_r32f)) return 0;
    for (int i = 0; i < n_in; i++)
        if (in[i].size / (p->vec4 ? 16 : 4) > ctx->limits.max_texel_buffer_elements ||
            in[i].offset % ctx->info.limits.min_texel_buffer_offset_alignment)
            return 0;
    return 1;
}

/* The plan an op runs with and whether its inputs `in` (its x, dy, residual; the coefficients
 * always qualify: they sit texel-aligned in the scratch) come as texel buffers: SPAN where the
 * shape and the texel limits allow it. */
static bn_plan plan_for(const vka_context *ctx, const vka_batchnorm_desc *d, const vka_tensor *in, int n_in,
                        int *texel)
{
    /* VKANCHOR_BN_SPAN=0: the scalar variants instead, for A/B runs */
    bn_plan p = plan_bn(ctx, d, !vka_switch_off("VKANCHOR_BN_SPAN"));
    if (p.span && texel_inputs(ctx, &p, in, n_in)) return *texel = 1, p;
    p = plan_bn(ctx, d, 0);
    *texel = texel_inputs(ctx, &p, in, n_in);
    return p;
}

/* ---- argument checks: every one runs before anything is recorded ------------------ */

static vka_result check_desc(vka_cmd *cmd, const char *op, const vka_batchnorm_desc *d)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (!d) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no desc", op);
    if (d->n == 0 || d->c == 0 || d->hw == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: N=%u C=%u HW=%u: every size must be >= 1", op,
                            d->n, d->c, d->hw);
    if (!(d->eps >= 0) || !(d->momentum >= 0 && d->momentum <= 1))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: eps=%g must be >= 0 and momentum=%g in [0, 1]", op,
                            d->eps, d->momentum);
    uint64_t total = (uint64_t)d->n * d->c * d->hw;
    if (total * 4 > ctx->limits.max_storage_buffer_range || total > INT32_MAX ||
        d->c > ctx->limits.max_workgroup_count[1])
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED,
                            "%s: N=%u C=%u HW=%u (%llu bytes) exceeds one storage binding (%llu bytes) or %u "
                            "channels", op, d->n, d->c, d->hw, (unsigned long long)(total * 4),
                            (unsigned long long)ctx->limits.max_storage_buffer_range,
                            ctx->limits.max_workgroup_count[1]);
    return VKA_SUCCESS;
}

static vka_result need(vka_cmd *cmd, const char *op, const char *name, vka_tensor t, uint64_t bytes,
                       const vka_batchnorm_desc *d)
{
    if (vka_tensor_present(t) && t.size >= bytes) return VKA_SUCCESS;
    return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %s holds %llu bytes but N=%u C=%u HW=%u needs %llu",
                        op, name, vka_tensor_present(t) ? (unsigned long long)t.size : 0ull, d->n, d->c, d->hw,
                        (unsigned long long)bytes);
}

static vka_result no_overlap(vka_cmd *cmd, const char *op, const char *a_name, vka_tensor a, const char *b_name,
                             vka_tensor b)
{
    if (!vka_tensor_overlaps(a, b)) return VKA_SUCCESS;
    return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %s overlaps %s", op, a_name, b_name);
}

/* ---- kernels ------------------------------------------------------------------------ */

#define STORAGE_X {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, \
                   VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE}

static vka_result kernel(vka_cmd *cmd, vka_kernel_desc *desc, vka_kernel **k)
{
    vka_result rc = vka_kernel_get(vka_cmd_context(cmd), desc, k);
    return rc ? vka_cmd_keep(cmd, rc) : VKA_SUCCESS;
}

/* What an element-wise pass writes: NCHW, the packed layout, or (apply only) NCHW y = bn(x) + a
 * residual input (binding 3), or y both NCHW (last binding: 4 after a residual, else 3) and packed
 * (binding 2), by packed4 or by SPAN. */
enum form { FORM_NCHW, FORM_PACKED, FORM_ADD, FORM_ADD_PACKED, FORM_DUAL_PACKED };

/* One of the four big passes; with `texel` its first texel_in[pass] bindings are texel buffers
 * (and the residual input of FORM_ADD). */
static vka_result big_kernel(vka_cmd *cmd, const bn_plan *p, enum pass pass, int texel, enum form form,
                             vka_kernel **k)
{
    int add_packed = form == FORM_ADD_PACKED, dual = form == FORM_DUAL_PACKED;
    int packed = form == FORM_PACKED || add_packed || dual, add = form == FORM_ADD || add_packed;
    int packed4 = packed && p->packed4;
    if ((add_packed || dual) && !packed4 && !p->span) /* the callers check the shape first */
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "batchnorm: NCHW and packed outputs need C and HW multiples of 4, or the SPAN kernels "
                            "(texel inputs)");
    static const uint32_t bindings[PASS_COUNT] = {2, 3, 7, 4};
    static const uint32_t push[PASS_COUNT] = {sizeof(struct stats_push), sizeof(struct elementwise_push),
                                              sizeof(struct bwd_reduce_push), sizeof(struct elementwise_push)};
    /* inputs as texel buffers: fwd_stats x; fwd x, coef; bwd_reduce x, dy; bwd_data x, dy, coef */
    static const uint32_t texel_in[PASS_COUNT] = {1, 2, 2, 3};
    uint32_t bwd = pass == PASS_BWD_DATA;
    const variant *v;
    if (add_packed) v = packed4 ? &add_packed4_variants[texel] : &add_dual_span_variant;
    else if (dual) v = packed4 ? &dual_packed4_variants[texel] : &dual_span_variant;
    else if (packed4) v = &packed4_variants[bwd][texel];
    else if (add && p->span) v = &add_span_variant;
    else if (add) v = &add_variants[p->vec4][texel];
    else if (p->span && packed) v = &packed_span_variants[bwd];
    else if (p->span) v = &span_variants[pass];
    else if (packed) v = &packed_variants[bwd][p->vec4][texel];
    else v = &variants[pass][p->vec4][texel];
    int reduce = pass == PASS_FWD_STATS || pass == PASS_BWD_REDUCE;
    vka_kernel_desc desc = {
        .name = v->name, .spirv = v->spirv, .spirv_bytes = v->bytes,
        .num_bindings = bindings[pass] + (uint32_t)add + (uint32_t)add_packed + (uint32_t)dual,
        .bindings = STORAGE_X,
        .push_bytes = packed4 ? sizeof(struct packed4_push) : packed ? sizeof(struct packed_push) : push[pass],
        .local_size = {reduce ? p->reduce_wg : p->elementwise_wg},
        .shared_bytes = reduce ? (pass == PASS_FWD_STATS ? 3 : 2) * 4 * p->reduce_wg : 0,
    };
    if (texel) {
        for (uint32_t i = 0; i < texel_in[pass]; i++)
            desc.bindings[i] = p->vec4 ? VKA_BIND_TEXEL_RGBA32F : VKA_BIND_TEXEL_R32F;
        if (!reduce) desc.bindings[texel_in[pass] - 1] = VKA_BIND_TEXEL_RGBA32F; /* coef: vec4 per texel */
        if (add) desc.bindings[3] = desc.bindings[0];                             /* the residual, as x */
    }
    return kernel(cmd, &desc, k);
}

static vka_result finalize_kernel(vka_cmd *cmd, int backward, vka_kernel **k)
{
    vka_kernel_desc desc = {
        .name = backward ? "batchnorm_bwd_finalize" : "batchnorm_fwd_finalize",
        .spirv = backward ? vka_spv_batchnorm_bwd_finalize : vka_spv_batchnorm_fwd_finalize,
        .spirv_bytes = backward ? sizeof vka_spv_batchnorm_bwd_finalize : sizeof vka_spv_batchnorm_fwd_finalize,
        .num_bindings = 8, .bindings = STORAGE_X,
        .push_bytes = backward ? sizeof(struct bwd_finalize_push) : sizeof(struct fwd_finalize_push),
        .local_size = {vka_plan_workgroup_1d(vka_cmd_context(cmd), FINALIZE_WG)},
    };
    return kernel(cmd, &desc, k);
}

/* The element-wise passes' push block: strides to step (position, channel) along, in units
 * of the plane (span: in floats, a unit's first float standing for it). */
static struct elementwise_push elementwise(const bn_plan *p, const vka_batchnorm_desc *d)
{
    uint32_t hw = p->span ? d->hw : p->unit_hw, stride = p->elementwise_wg * (p->span ? 4 : 1);
    return (struct elementwise_push){
        .C = d->c, .hw = hw, .total = p->total, .relu = d->relu ? 1u : 0u,
        .step_j = stride % hw, .step_c = stride / hw % d->c,
        .hw_div = vka_fastdiv_make(hw), .c_div = vka_fastdiv_make(d->c),
    };
}

/* The element-wise push block, with the packed destination's fields when there is one. */
static struct packed_push packed_push_of(const bn_plan *p, const vka_batchnorm_desc *d, const vka_packed_layout *l)
{
    struct packed_push pp = {.e = elementwise(p, d)};
    if (l) pp = (struct packed_push){pp.e, vka_fastdiv_make(l->w), l->w, l->hp, l->wp, l->c4 * 4, l->border};
    return pp;
}

/* Records the apply or input-gradient pass into the packed layout l, a texel per store
 * (batchnorm_packed4.comp): t holds the pass's tensors, its output last. */
static vka_result dispatch_packed4(vka_cmd *cmd, vka_kernel *k, const vka_batchnorm_desc *d,
                                   const vka_packed_layout *l, const vka_tensor *t, uint32_t nt)
{
    uint32_t q = d->hw / 4, c4 = d->c / 4;
    struct packed4_push pp = {
        .q_div = vka_fastdiv_make(q), .c4_div = vka_fastdiv_make(c4), .w_div = vka_fastdiv_make(l->w), .q = q,
        .c4 = c4, .total = d->n * c4 * q, .relu = d->relu ? 1u : 0u, .w = l->w, .hp = l->hp, .wp = l->wp,
        .border = l->border,
    };
    return vka_dispatch_items(cmd, k, t, nt, &pp, pp.total);
}

/* Records the apply pass y = bn(x) with the coefficients in `coef`: into the NCHW y, or the
 * packed layout yp, plus `residual` when present (before the ReLU); yp and y both when both are
 * given (a tail feeding a conv and a shortcut, or a BN read by a conv and something else). */
static vka_result record_apply(vka_cmd *cmd, const bn_plan *p, int texel, const vka_batchnorm_desc *d, vka_tensor y,
                               const vka_packed_layout *yp, vka_tensor x, vka_tensor coef, vka_tensor residual)
{
    vka_kernel *k;
    int add = vka_tensor_present(residual);
    int dual = yp && !add && vka_tensor_present(y);
    enum form form = add ? (yp ? FORM_ADD_PACKED : FORM_ADD) : dual ? FORM_DUAL_PACKED : yp ? FORM_PACKED : FORM_NCHW;
    vka_result rc = big_kernel(cmd, p, PASS_FWD, texel, form, &k);
    if (rc) return rc;
    struct packed_push pp = packed_push_of(p, d, yp);
    if (form == FORM_ADD_PACKED || form == FORM_DUAL_PACKED) { /* y packed and NCHW, last */
        uint32_t nt = form == FORM_ADD_PACKED ? 5 : 4;
        vka_tensor both[5] = {x, coef, yp->t, nt == 5 ? residual : y, y};
        if (p->packed4) return dispatch_packed4(cmd, k, d, yp, both, nt);
        return vka_dispatch_items(cmd, k, both, nt, &pp, vka_div_up(p->total, ITEMS)); /* SPAN */
    }
    vka_tensor t[4] = {x, coef, yp ? yp->t : y, residual};
    if (yp && p->packed4) return dispatch_packed4(cmd, k, d, yp, t, 3);
    return vka_dispatch_items(cmd, k, t, 3 + (uint32_t)add, yp ? (const void *)&pp : (const void *)&pp.e,
                         vka_div_up(p->total, ITEMS));
}

/* ---- ops ---------------------------------------------------------------------------- */

static float eps_of(const vka_batchnorm_desc *d) { return d->eps > 0 ? d->eps : 1e-5f; }

/* Checks a packed destination against the desc; returns its tensor trimmed. */
static vka_result check_packed(vka_cmd *cmd, const char *op, const char *name, const vka_batchnorm_desc *d,
                               const vka_packed_layout *l, vka_tensor *out);

/* Checks the residual input of the _add ops (absent for the others) and trims it. */
static vka_result check_residual(vka_cmd *cmd, const char *op, const vka_batchnorm_desc *d, vka_tensor *residual,
                                 vka_tensor y, int wanted)
{
    if (!wanted) return *residual = (vka_tensor){0}, VKA_SUCCESS;
    uint64_t xb = (uint64_t)d->n * d->c * d->hw * 4;
    vka_result rc;
    if ((rc = need(cmd, op, "residual", *residual, xb, d)) || (rc = no_overlap(cmd, op, "y", y, "residual", *residual)))
        return rc;
    *residual = vka_tensor_slice(*residual, 0, xb);
    return VKA_SUCCESS;
}

/* The outputs of a forward (apply) pass: the NCHW y unless only the packed yp is wanted (a
 * tail with a residual writes both; the packed pair only by packed4 or SPAN), each large
 * enough and apart from the inputs. Trims *y to the tensor (absent when not written) and gives
 * *packed as yp with its tensor trimmed. */
static vka_result check_outputs(vka_cmd *cmd, const char *op, const vka_batchnorm_desc *d, const bn_plan *p,
                                vka_tensor *y, const vka_packed_layout *yp, int add, vka_tensor residual, vka_tensor x,
                                vka_packed_layout *packed)
{
    uint64_t xb = (uint64_t)d->n * d->c * d->hw * 4;
    vka_result rc;
    *packed = (vka_packed_layout){0};
    if (yp) {
        *packed = *yp;
        if ((rc = check_packed(cmd, op, "y", d, yp, &packed->t))) return rc;
        if ((add || vka_tensor_present(*y)) && !p->packed4 && !p->span)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                                "%s: N=%u C=%u HW=%u: y both NCHW and packed needs C and HW multiples of 4, or the "
                                "SPAN kernels with texel inputs (vka_batchnorm_add_packed_y_fits)", op, d->n, d->c, d->hw);
    }
    int nchw = !yp || add || vka_tensor_present(*y);
    if (nchw && (rc = need(cmd, op, "y", *y, xb, d))) return rc;
    *y = nchw ? vka_tensor_slice(*y, 0, xb) : (vka_tensor){0};
    if ((rc = no_overlap(cmd, op, "y", *y, "x", x)) ||
        (yp && ((rc = no_overlap(cmd, op, "packed y", packed->t, "x", x)) ||
                (rc = no_overlap(cmd, op, "packed y", packed->t, "residual", residual)) ||
                (rc = no_overlap(cmd, op, "packed y", packed->t, "y", *y)))))
        return rc;
    return VKA_SUCCESS;
}

/* The forward's name in its errors, after what it does: batchnorm_forward_{train,eval}[_add][_packed_y]. */
static const char *forward_name(vka_batchnorm_mode mode, int add, int packed)
{
    static const char *const names[2][2][2] = {
        {{"batchnorm_forward_train", "batchnorm_forward_train_packed_y"},
         {"batchnorm_forward_train_add", "batchnorm_forward_train_add_packed_y"}},
        {{"batchnorm_forward_eval", "batchnorm_forward_eval_packed_y"},
         {"batchnorm_forward_eval_add", "batchnorm_forward_eval_add_packed_y"}},
    };
    return names[mode == VKA_BN_EVAL][add != 0][packed != 0];
}

vka_result vka_batchnorm_forward(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_batchnorm_mode mode,
                                 const vka_batchnorm_io *io)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (!io) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "batchnorm_forward: no tensors");
    int add = vka_tensor_present(io->residual), train = mode != VKA_BN_EVAL, update_running = mode == VKA_BN_TRAIN;
    int coef_only = vka_tensor_present(io->coef);
    const char *op = !coef_only ? forward_name(mode, add, io->yp != NULL)
                     : train    ? "batchnorm_forward_train_coef"
                                : "batchnorm_forward_eval_coef";
    if (mode != VKA_BN_TRAIN && mode != VKA_BN_TRAIN_KEEP_RUNNING && mode != VKA_BN_EVAL)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: unknown mode %d", op, (int)mode);
    vka_result rc;
    if ((rc = check_desc(cmd, op, d))) return rc;
    if (coef_only && (add || io->yp || vka_tensor_present(io->y)))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: only the coefficients are written here: no y, packed y or residual", op);
    if (coef_only && ((rc = need(cmd, op, "coef", io->coef, (uint64_t)d->c * 32, d)) ||
                      (rc = no_overlap(cmd, op, "coef", io->coef, "x", io->x)) ||
                      (rc = no_overlap(cmd, op, "coef", io->coef, "scratch", io->scratch)) ||
                      (rc = no_overlap(cmd, op, "coef", io->coef, "save_mean", io->save_mean)) ||
                      (rc = no_overlap(cmd, op, "coef", io->coef, "save_invstd", io->save_invstd))))
        return rc;
    uint64_t xb = (uint64_t)d->n * d->c * d->hw * 4, cb = (uint64_t)d->c * 4;
    vka_tensor x = io->x, y = io->y, residual = io->residual, gamma = io->gamma, beta = io->beta;
    vka_tensor running_mean = io->running_mean, running_var = io->running_var;
    if ((rc = check_residual(cmd, op, d, &residual, y, add))) return rc;
    int texel;
    bn_plan p = plan_for(ctx, d, (vka_tensor[2]){x, residual}, add ? 2 : 1, &texel);
    vka_packed_layout packed;
    if (!coef_only && (rc = check_outputs(cmd, op, d, &p, &y, io->yp, add, residual, x, &packed))) return rc;
    if ((rc = need(cmd, op, "x", x, xb, d)) || (rc = need(cmd, op, "gamma", gamma, cb, d)) ||
        (rc = need(cmd, op, "beta", beta, cb, d)) ||
        (rc = need(cmd, op, "scratch", io->scratch, p.part_bytes + p.coef_bytes, d)))
        return rc;
    if (train && ((rc = need(cmd, op, "save_mean", io->save_mean, cb, d)) ||
                  (rc = need(cmd, op, "save_invstd", io->save_invstd, cb, d))))
        return rc;
    if (!train || update_running) { /* read by eval, moved by training */
        if ((rc = need(cmd, op, "running_mean", running_mean, cb, d)) ||
            (rc = need(cmd, op, "running_var", running_var, cb, d)))
            return rc;
    }
    if (update_running && (uint64_t)d->n * d->hw < 2)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: N*HW = 1 value per channel has no unbiased variance for the running "
                            "statistics (use VKA_BN_TRAIN_KEEP_RUNNING)", op);
    int given = train && vka_tensor_present(io->stats);
    uint64_t stats_bytes = (uint64_t)d->c * io->stats_groups * 16;
    if (given && (!io->stats_groups || io->stats.size < stats_bytes))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: stats needs %llu bytes for %u channels x %u partials but has %llu", op,
                            (unsigned long long)stats_bytes, d->c, io->stats_groups, (unsigned long long)io->stats.size);
    if (given && ((rc = no_overlap(cmd, op, "stats", io->stats, "save_mean", io->save_mean)) ||
                  (rc = no_overlap(cmd, op, "stats", io->stats, "save_invstd", io->save_invstd)) ||
                  (rc = no_overlap(cmd, op, "stats", io->stats, "scratch", io->scratch))))
        return rc;
    x = vka_tensor_slice(x, 0, xb);
    gamma = vka_tensor_slice(gamma, 0, cb);
    beta = vka_tensor_slice(beta, 0, cb);
    /* Training without an update never touches the running bindings: any valid tensor will do. */
    running_mean = !train || update_running ? vka_tensor_slice(running_mean, 0, cb) : gamma;
    running_var = !train || update_running ? vka_tensor_slice(running_var, 0, cb) : beta;
    vka_tensor part = vka_tensor_slice(io->scratch, 0, p.part_bytes);
    vka_tensor coef = coef_only ? vka_tensor_slice(io->coef, 0, p.coef_bytes)
                                : vka_tensor_slice(io->scratch, p.part_bytes, p.coef_bytes);
    vka_kernel *k_fin;
    if ((rc = finalize_kernel(cmd, 0, &k_fin))) return rc;
    struct fwd_finalize_push fp = {d->c, p.groups, eps_of(d), 0.1f, 0, 1};
    /* Eval reads only running_*, gamma, beta and writes only coef: the save_* bindings get the
     * (unwritten) partials region as a stand-in. */
    vka_tensor tf[8] = {part, part, part, running_mean, running_var, gamma, beta, coef};
    if (given) { /* the producer's partials: straight to the finalize */
        fp = (struct fwd_finalize_push){d->c, io->stats_groups, eps_of(d), d->momentum > 0 ? d->momentum : 0.1f,
                                        update_running ? 1u : 0u, 0};
        tf[0] = vka_tensor_slice(io->stats, 0, stats_bytes);
        tf[1] = vka_tensor_slice(io->save_mean, 0, cb);
        tf[2] = vka_tensor_slice(io->save_invstd, 0, cb);
    } else if (train) { /* the batch statistics first: per-group partial sums, then the finalize */
        vka_kernel *k_stats;
        if ((rc = big_kernel(cmd, &p, PASS_FWD_STATS, texel, FORM_NCHW, &k_stats))) return rc;
        struct stats_push sp = {d->c, p.unit_hw, p.count, p.per_group, p.reduce_wg / p.unit_hw,
                                p.reduce_wg % p.unit_hw, vka_fastdiv_make(p.unit_hw), d->hw};
        part = vka_tensor_slice(io->scratch, 0, (uint64_t)d->c * p.groups * 16);
        vka_tensor ts[2] = {x, part};
        if ((rc = vka_cmd_dispatch(cmd, k_stats, ts, 2, &sp, p.groups, d->c, 1))) return vka_op_done(cmd, rc);
        vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* partials written -> finalize reads */
        fp = (struct fwd_finalize_push){d->c, p.groups, eps_of(d), d->momentum > 0 ? d->momentum : 0.1f,
                                        update_running ? 1u : 0u, 0};
        tf[0] = part;
        tf[1] = vka_tensor_slice(io->save_mean, 0, cb);
        tf[2] = vka_tensor_slice(io->save_invstd, 0, cb);
    }
    if ((rc = vka_dispatch_items(cmd, k_fin, tf, 8, &fp, d->c))) return vka_op_done(cmd, rc);
    if (coef_only) return vka_op_done(cmd, VKA_SUCCESS); /* the consumer applies them */
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* coefficients written -> apply reads */
    rc = record_apply(cmd, &p, texel, d, y, io->yp ? &packed : NULL, x, coef, residual);
    return vka_op_done(cmd, rc);
}

int vka_batchnorm_add_packed_y_fits(const vka_context *ctx, const vka_batchnorm_desc *d)
{
    if (packed4_shape(d)) return 1;
    /* The SPAN kernels, as plan_for picks them: the shape at every batch up to d->n (a model
     * asks at its largest and runs smaller evaluation batches: C*HW % 4 == 0 keeps N*C*HW a
     * multiple of 4 for all of them), and x (and a residual of its size) within the texel
     * limits (arena tensors meet the offset alignment). */
    if ((uint64_t)d->c * d->hw % 4 != 0) return 0;
    bn_plan p = plan_bn(ctx, d, !vka_switch_off("VKANCHOR_BN_SPAN"));
    vka_tensor x = {.size = (uint64_t)d->n * d->c * d->hw * 4};
    return p.span && texel_inputs(ctx, &p, &x, 1);
}

static vka_result check_packed(vka_cmd *cmd, const char *op, const char *name, const vka_batchnorm_desc *d,
                               const vka_packed_layout *l, vka_tensor *out)
{
    uint64_t need_bytes = (uint64_t)d->n * l->hp * l->wp * l->c4 * 16;
    int fits = (uint64_t)l->h * l->w == d->hw && l->c4 == (d->c + 3) / 4 && (uint64_t)l->border + l->h <= l->hp &&
               (uint64_t)l->border + l->w <= l->wp && l->t.size >= need_bytes;
    if (!fits)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: packed %s (%ux%u in %ux%u, border %u, %u channel vec4, %llu bytes) "
                            "does not hold N=%u C=%u HW=%u", op, name, l->h, l->w, l->hp, l->wp, l->border, l->c4,
                            (unsigned long long)l->t.size, d->n, d->c, d->hw);
    *out = vka_tensor_slice(l->t, 0, need_bytes);
    return VKA_SUCCESS;
}

/* vka_batchnorm_backward and vka_batchnorm_backward_packed_dx: dx NCHW, or packed when dxp. */
static vka_result backward(vka_cmd *cmd, const char *op, const vka_batchnorm_desc *d, vka_tensor dx,
                           const vka_packed_layout *dxp, vka_tensor dgamma, vka_tensor dbeta, vka_tensor dy,
                           vka_tensor x, vka_tensor save_mean, vka_tensor save_invstd, vka_tensor gamma,
                           vka_tensor beta, vka_tensor scratch)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_result rc;
    if ((rc = check_desc(cmd, op, d))) return rc;
    uint64_t xb = (uint64_t)d->n * d->c * d->hw * 4, cb = (uint64_t)d->c * 4;
    int texel;
    bn_plan p = plan_for(ctx, d, (vka_tensor[2]){x, dy}, 2, &texel);
    if (dxp && (rc = check_packed(cmd, op, "dx", d, dxp, &dx))) return rc;
    int want_dx = vka_tensor_present(dx);
    if ((want_dx && !dxp && (rc = need(cmd, op, "dx", dx, xb, d))) || (rc = need(cmd, op, "dy", dy, xb, d)) ||
        (rc = need(cmd, op, "x", x, xb, d)) || (rc = need(cmd, op, "dgamma", dgamma, cb, d)) ||
        (rc = need(cmd, op, "dbeta", dbeta, cb, d)) || (rc = need(cmd, op, "save_mean", save_mean, cb, d)) ||
        (rc = need(cmd, op, "save_invstd", save_invstd, cb, d)) || (rc = need(cmd, op, "gamma", gamma, cb, d)) ||
        (d->relu && (rc = need(cmd, op, "beta (fused ReLU)", beta, cb, d))) ||
        (rc = need(cmd, op, "scratch", scratch, p.part_bytes + p.coef_bytes, d)))
        return rc;
    if ((rc = no_overlap(cmd, op, "dx", dx, "x", x)) || (rc = no_overlap(cmd, op, "dx", dx, "dy", dy)) ||
        (rc = no_overlap(cmd, op, "dgamma", dgamma, "dbeta", dbeta)))
        return rc;

    dy = vka_tensor_slice(dy, 0, xb);
    x = vka_tensor_slice(x, 0, xb);
    save_mean = vka_tensor_slice(save_mean, 0, cb);
    save_invstd = vka_tensor_slice(save_invstd, 0, cb);
    gamma = vka_tensor_slice(gamma, 0, cb);
    beta = d->relu ? vka_tensor_slice(beta, 0, cb) : gamma; /* unread without the ReLU */
    dgamma = vka_tensor_slice(dgamma, 0, cb);
    dbeta = vka_tensor_slice(dbeta, 0, cb);
    vka_tensor part = vka_tensor_slice(scratch, 0, (uint64_t)d->c * p.groups * 8);
    vka_tensor coef = vka_tensor_slice(scratch, p.part_bytes, p.coef_bytes);

    vka_kernel *k_red, *k_fin, *k_data = NULL;
    if ((rc = big_kernel(cmd, &p, PASS_BWD_REDUCE, texel, FORM_NCHW, &k_red)) || (rc = finalize_kernel(cmd, 1, &k_fin)) ||
        (want_dx && (rc = big_kernel(cmd, &p, PASS_BWD_DATA, texel, dxp ? FORM_PACKED : FORM_NCHW, &k_data))))
        return rc;

    struct bwd_reduce_push rp = {d->c, p.unit_hw, p.count, p.per_group, p.reduce_wg / p.unit_hw,
                                 p.reduce_wg % p.unit_hw, vka_fastdiv_make(p.unit_hw), d->relu ? 1u : 0u, d->hw};
    vka_tensor tr[7] = {x, dy, save_mean, save_invstd, gamma, beta, part};
    if ((rc = vka_cmd_dispatch(cmd, k_red, tr, 7, &rp, p.groups, d->c, 1))) return vka_op_done(cmd, rc);
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* partials written -> finalize reads */

    struct bwd_finalize_push fp = {d->c, p.groups, (float)((double)d->n * d->hw)};
    vka_tensor tf[8] = {part, save_mean, save_invstd, gamma, beta, dgamma, dbeta, coef};
    if ((rc = vka_dispatch_items(cmd, k_fin, tf, 8, &fp, d->c))) return vka_op_done(cmd, rc);
    if (want_dx) {
        vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* coefficients written -> bwd_data reads */
        struct packed_push pp = packed_push_of(&p, d, dxp);
        vka_tensor td[4] = {x, dy, coef, dxp ? dx : vka_tensor_slice(dx, 0, xb)};
        rc = dxp && p.packed4 ? dispatch_packed4(cmd, k_data, d, dxp, td, 4)
                              : vka_dispatch_items(cmd, k_data, td, 4, dxp ? (const void *)&pp : (const void *)&pp.e,
                                              vka_div_up(p.total, ITEMS));
    }
    return vka_op_done(cmd, rc);
}

vka_result vka_batchnorm_backward(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor dx,
                                  vka_tensor dgamma, vka_tensor dbeta, vka_tensor dy, vka_tensor x,
                                  vka_tensor save_mean, vka_tensor save_invstd, vka_tensor gamma,
                                  vka_tensor beta, vka_tensor scratch)
{
    return backward(cmd, "batchnorm_backward", d, dx, NULL, dgamma, dbeta, dy, x, save_mean, save_invstd, gamma,
                    beta, scratch);
}

vka_result vka_batchnorm_backward_packed_dx(vka_cmd *cmd, const vka_batchnorm_desc *d, const vka_packed_layout *dx,
                                            vka_tensor dgamma, vka_tensor dbeta, vka_tensor dy, vka_tensor x,
                                            vka_tensor save_mean, vka_tensor save_invstd, vka_tensor gamma,
                                            vka_tensor beta, vka_tensor scratch)
{
    static const char op[] = "batchnorm_backward_packed_dx";
    if (!dx) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no packed dx", op);
    return backward(cmd, op, d, (vka_tensor){0}, dx, dgamma, dbeta, dy, x, save_mean, save_invstd, gamma, beta,
                    scratch);
}
