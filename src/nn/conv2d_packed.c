/* lavapipe's channels-packed convolution path: see conv2d_packed.h, and the shaders
 * conv2d_pack.comp, conv2d_pack_weight.comp, conv2d_packed.comp, conv2d_bwd_weight_packed.comp. */
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d_packed.h"
#include "nn/fastdiv.h"

#include "conv2d_bwd_weight_packed.spv.h"
#include "conv2d_bwd_weight_packed_qc4.spv.h"
#include "conv2d_bwd_weight_packed_qc8.spv.h"
#include "conv2d_pack.spv.h"
#include "conv2d_pack4.spv.h"
#include "conv2d_pack_weight.spv.h"
#include "conv2d_packed_rq14.spv.h"
#include "conv2d_packed_rq14_jb1.spv.h"
#include "conv2d_packed_rq4.spv.h"
#include "conv2d_packed_rq4_jb1.spv.h"
#include "conv2d_packed_rq7.spv.h"
#include "conv2d_packed_rq7_jb1.spv.h"
#include "conv2d_packed_rq8.spv.h"
#include "conv2d_packed_rq8_jb1.spv.h"

struct pack_push {
    uint32_t n, c, h, w;
    int32_t pad;
    uint32_t c4, hp, wp, total;
};
_Static_assert(sizeof(struct pack_push) == 36, "mirror of Push in shaders/conv2d_pack.comp");

struct pack4_push {
    vka_fastdiv q_div, c4_div, w_div, b_div, wp_div;
    uint32_t q, c4, w, h, pad, hp, wp, interior, total;
};
_Static_assert(sizeof(struct pack4_push) == 76, "mirror of Push in shaders/conv2d_pack4.comp");

struct pack_weight_push {
    uint32_t cin, cout, r, s, cin4, k4;
    int32_t w_o, w_i, w_tap0, w_r, w_s;
    uint32_t total;
};
_Static_assert(sizeof(struct pack_weight_push) == 48, "mirror of Push in shaders/conv2d_pack_weight.comp");

struct packed_push {
    uint32_t cin4, hp, wp, cout, hout, wout, taps_r, k4, has_bias, q_blocks, k_blocks, total;
    uint32_t irow0, icol0, orstep, ocstep, orow0, ocol0, ow, oplane;
};
_Static_assert(sizeof(struct packed_push) == 80, "mirror of Push in shaders/conv2d_packed.comp");

struct weight_push {
    uint32_t n, c, k, r, p, q, hp, wp, c4, k4;
    uint32_t has_bias, groups, k_blocks, pairs, dyb, dyh, dyw;
    uint32_t xorg, xw;
};
_Static_assert(sizeof(struct weight_push) == 76, "mirror of Push in shaders/conv2d_bwd_weight_packed.comp");

#define PACKED_KV 2    /* vec4 of output channels per invocation: KV in shaders/lists/conv2d.cmake */
#define WEIGHT_KV 2      /* the same for the weight gradient */
#define TEXEL_WG 8     /* lavapipe's SIMD width */
/* Image groups of the weight gradient: enough invocations for both cores (about this many:
 * 128 workgroups; 4096 only made the reduce of the partials 2-3x longer, perf-log 27) ... */
#define WEIGHT_LANES 1024u
/* ... while the partials stay under this many floats. */
#define WEIGHT_PARTIALS (1u << 22)
/* ... and (more groups if needed) each image group's share of x and dy that one workgroup
 * reads stays within this many bytes, half a Zen 4 core's L2: cnn's 64-channel 14x14 layer
 * went from 3 to 12 groups, its weight gradient ~17% faster (perf-log 54). */
#define WEIGHT_CACHE_BYTES (512u << 10)

/* The run lengths (output columns per invocation) compiled, and their SPIR-V: with two output
 * columns' accumulators per register block (JB = 2), and with one (jb1). */
#define SPV(name) vka_spv_##name, sizeof vka_spv_##name
static const struct {
    uint32_t rq;
    const uint32_t *spirv;
    size_t bytes;
    const uint32_t *spirv_jb1;
    size_t bytes_jb1;
} runs[4] = {
    {14, SPV(conv2d_packed_rq14), SPV(conv2d_packed_rq14_jb1)},
    {8, SPV(conv2d_packed_rq8), SPV(conv2d_packed_rq8_jb1)},
    {7, SPV(conv2d_packed_rq7), SPV(conv2d_packed_rq7_jb1)},
    {4, SPV(conv2d_packed_rq4), SPV(conv2d_packed_rq4_jb1)},
};
#undef SPV
/* Inputs of up to this many vec4 of channels take the JB = 1 kernels: measured 5-18% faster
 * at 16 and 32 channels, from 2% faster to 13% slower at 64 and more (docs/perf-log.md, entry 30). */
#define JB1_MAX_CIN4 8

/* The weight gradient's steps along a row (QC in its shader): the first is the shader's default,
 * the others are variants built with QC defined. */
static const struct {
    uint32_t qc;
    const uint32_t *spirv;
    size_t bytes;
    const char *name;
} weight_steps[3] = {
    {7, vka_spv_conv2d_bwd_weight_packed, sizeof vka_spv_conv2d_bwd_weight_packed, "conv2d_bwd_weight_packed"},
    {8, vka_spv_conv2d_bwd_weight_packed_qc8, sizeof vka_spv_conv2d_bwd_weight_packed_qc8,
     "conv2d_bwd_weight_packed_qc8"},
    {4, vka_spv_conv2d_bwd_weight_packed_qc4, sizeof vka_spv_conv2d_bwd_weight_packed_qc4,
     "conv2d_bwd_weight_packed_qc4"},
};

/* The weight gradient's step wasting the fewest columns of an output row (the longer on ties:
 * 4-wide rows wasted 3 of 7 columns with steps of 7 only). */
static uint32_t weight_step_for_width(uint32_t q)
{
    uint32_t best = 0;
    uint64_t best_waste = UINT64_MAX;
    for (uint32_t i = 0; i < 3; i++) {
        uint64_t waste = vka_div_up(q, weight_steps[i].qc) * weight_steps[i].qc - q;
        if (waste < best_waste || (waste == best_waste && weight_steps[i].qc > weight_steps[best].qc))
            best = i, best_waste = waste;
    }
    return best;
}

/* The run length wasting the fewest columns of an output row (the longer on ties). */
static uint32_t run_for_width(uint32_t wout)
{
    uint32_t best = 0;
    uint64_t best_waste = UINT64_MAX;
    for (uint32_t i = 0; i < 4; i++) {
        uint64_t waste = vka_div_up(wout, runs[i].rq) * runs[i].rq - wout;
        if (waste < best_waste) best = i, best_waste = waste;
    }
    return best;
}

int vka_conv2d_packed_shape(const vka_conv2d_shape *sh)
{
    return sh->r == sh->s && (sh->s == 1 || sh->s == 3) && (sh->stride == 1 || sh->stride == 2) &&
           sh->pad < sh->r;
}

static uint64_t round256(uint64_t b) { return (b + 255) / 256 * 256; }

/* The input gradient of a stride-ST convolution, along one axis, split by output phase
 * ph (outputs ph, ph+ST, ...): the taps r that reach phase ph are r0, r0+ST, ... (count
 * taps), taken last first so that output i of the phase reads dy rows i + off, i + off + 1,
 * ... (a stride-1 correlation); count outputs in the phase. */
typedef struct phase_axis {
    uint32_t taps, count, r_last;
    int32_t off;
} phase_axis;

static phase_axis phase_of(uint32_t ph, uint32_t size, uint32_t k, uint32_t pad, uint32_t stride)
{
    phase_axis a = {0};
    uint32_t r0 = (ph + pad) % stride;
    a.count = ph < size ? (size - ph + stride - 1) / stride : 0;
    if (r0 >= k || a.count == 0) return a;
    a.taps = (k - r0 + stride - 1) / stride;
    a.r_last = r0 + (a.taps - 1) * stride;
    a.off = ((int32_t)ph + (int32_t)pad - (int32_t)a.r_last) / (int32_t)stride; /* exact */
    return a;
}

/* The border dy needs so that every phase reads inside it (the zeros beyond dy included). */
static uint32_t dy_border(const vka_conv2d_shape *sh)
{
    uint32_t dims[2][3] = {{sh->h, sh->r, vka_conv2d_out_h(sh)}, {sh->w, sh->s, vka_conv2d_out_w(sh)}};
    int64_t border = 0;
    for (int d = 0; d < 2; d++)
        for (uint32_t ph = 0; ph < sh->stride; ph++) {
            phase_axis a = phase_of(ph, dims[d][0], dims[d][1], sh->pad, sh->stride);
            if (!a.taps) continue;
            int64_t top = -(int64_t)a.off, bottom = (int64_t)a.count - 1 + a.off + a.taps - 1 - (dims[d][2] - 1);
            if (top > border) border = top;
            if (bottom > border) border = bottom;
        }
    return (uint32_t)border;
}

typedef struct packed_layout {
    uint64_t xp_offset, xp_bytes;     /* x: [N][H+2pad][W+2pad][C4] */
    uint64_t dyp_offset, dyp_bytes;   /* dy: [N][P+2B][Q+2B][K4], B = dy_border */
    uint64_t wk_offset, wk_bytes;     /* packed weights, either direction: R*S*4*C4*K4 vec4 */
    uint64_t end;
} packed_layout;

/* The regions at the capacity batch (sh->n_capacity when larger than n): a smaller batch
 * uses a prefix of each region, at the same offsets. */
static packed_layout layout_of(const vka_conv2d_shape *sh, uint64_t partial_bytes)
{
    uint64_t c4 = vka_div_up(sh->c, 4), k4 = vka_div_up(sh->k, 4);
    uint64_t n = sh->n_capacity > sh->n ? sh->n_capacity : sh->n;
    packed_layout l;
    l.xp_offset = round256(partial_bytes);
    l.xp_bytes = n * (sh->h + 2ull * sh->pad) * (sh->w + 2ull * sh->pad) * c4 * 16;
    l.dyp_offset = l.xp_offset + round256(l.xp_bytes);
    uint64_t b2 = 2ull * dy_border(sh);
    l.dyp_bytes = n * (vka_conv2d_out_h(sh) + b2) * (vka_conv2d_out_w(sh) + b2) * k4 * 16;
    l.wk_offset = l.dyp_offset + round256(l.dyp_bytes);
    l.wk_bytes = (uint64_t)sh->r * sh->s * 4 * c4 * k4 * 16;
    l.end = l.wk_offset + round256(l.wk_bytes);
    return l;
}

/* dy as both gradients read it: a border of dy_border. */
static vka_packed_layout dy_layout(const vka_conv2d_shape *sh, vka_tensor scratch, uint64_t partial_bytes)
{
    packed_layout l = layout_of(sh, partial_bytes);
    uint32_t b = dy_border(sh), p = vka_conv2d_out_h(sh), q = vka_conv2d_out_w(sh);
    return (vka_packed_layout){
        .t = vka_tensor_slice(scratch, l.dyp_offset, l.dyp_bytes), .h = p, .w = q, .hp = p + 2 * b, .wp = q + 2 * b,
        .c4 = (uint32_t)vka_div_up(sh->k, 4), .border = b,
    };
}

vka_packed_layout vka_conv2d_packed_x_layout(const vka_conv2d_shape *sh, vka_tensor scratch, uint64_t partial_bytes)
{
    packed_layout l = layout_of(sh, partial_bytes);
    return (vka_packed_layout){
        .t = vka_tensor_slice(scratch, l.xp_offset, l.xp_bytes), .h = sh->h, .w = sh->w,
        .hp = sh->h + 2 * sh->pad, .wp = sh->w + 2 * sh->pad, .c4 = (uint32_t)vka_div_up(sh->c, 4),
        .border = sh->pad,
    };
}

vka_packed_layout vka_conv2d_packed_dy_layout(const vka_conv2d_shape *sh, vka_tensor scratch,
                                              uint64_t partial_bytes)
{
    return dy_layout(sh, scratch, partial_bytes);
}

uint64_t vka_conv2d_packed_scratch_end(const vka_conv2d_shape *sh, uint64_t partial_bytes)
{
    return layout_of(sh, partial_bytes).end;
}

uint64_t vka_conv2d_packed_largest_copy(const vka_conv2d_shape *sh)
{
    packed_layout l = layout_of(sh, 0);
    return l.xp_bytes > l.dyp_bytes ? l.xp_bytes : l.dyp_bytes;
}

uint32_t vka_conv2d_packed_groups(const vka_conv2d_shape *sh)
{
    uint64_t crs = (uint64_t)sh->c * sh->r * sh->s;
    uint64_t lanes = vka_div_up(vka_div_up(sh->k, 4), WEIGHT_KV) * vka_div_up(sh->c, 4) * sh->r;
    uint64_t g = vka_div_up(WEIGHT_LANES, lanes ? lanes : 1), cols = (uint64_t)sh->k * (crs + 1);
    /* What a workgroup reads of one image: per padded x position its lanes' channel texels (up to
     * 8 consecutive, 128 bytes), per dy position a cache line; its image group should fit in
     * WEIGHT_CACHE_BYTES, or every workgroup after it streams x from L3 again. */
    uint64_t hp = sh->h + 2ull * sh->pad, wp = sh->w + 2ull * sh->pad, c4 = vka_div_up(sh->c, 4);
    uint64_t per_image = hp * wp * 16 * (c4 < 8 ? c4 : 8) + (uint64_t)vka_conv2d_out_h(sh) * vka_conv2d_out_w(sh) * 64;
    uint64_t by_cache = vka_div_up((uint64_t)sh->n * per_image, WEIGHT_CACHE_BYTES);
    if (g < by_cache) g = by_cache;
    uint64_t by_partials = WEIGHT_PARTIALS / (cols ? cols : 1);
    if (g > by_partials) g = by_partials;
    if (g > sh->n) g = sh->n;
    return g ? (uint32_t)g : 1;
}

static int vec4_bindable(const vka_context *ctx, uint64_t offset, uint64_t bytes)
{
    return bytes / 16 <= ctx->limits.max_texel_buffer_elements &&
           offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0 &&
           offset % ctx->info.limits.min_storage_buffer_offset_alignment == 0;
}

int vka_conv2d_packed_device(const vka_context *ctx)
{
    /* RGBA32F texels; workgroups of 8 that are one subgroup, shuffling weights and dy between lanes. */
    /* The input gradient's per-phase weights sit at multiples of 64 bytes in the scratch. */
    /* 64-bit integers: conv2d_packed.comp stores pairs of output floats as one uint64. */
    return ctx->info.features.texel_buffer_rgba32f && ctx->info.limits.subgroup_size == TEXEL_WG &&
           ctx->info.features.shader_int64 &&
           ctx->info.features.subgroup_shuffle && ctx->info.limits.min_texel_buffer_offset_alignment <= 64 &&
           ctx->info.limits.min_storage_buffer_offset_alignment <= 64;
}

int vka_conv2d_packed_x_shared_fits(const vka_context *ctx, const vka_conv2d_shape *sh, const vka_packed_layout *l)
{
    if (!vka_tensor_present(l->t) || l->h != sh->h || l->w != sh->w || l->c4 != vka_div_up(sh->c, 4) ||
        l->border < sh->pad)
        return 0;
    /* xpad's last row and column, counted from the copy's (0, 0), fall inside it. */
    uint64_t rows = (uint64_t)l->border + sh->h + sh->pad, cols = (uint64_t)l->border + sh->w + sh->pad;
    uint64_t bytes = (uint64_t)sh->n * l->hp * l->wp * l->c4 * 16;
    return rows <= l->hp && cols <= l->wp && l->t.size >= bytes && vec4_bindable(ctx, l->t.offset, l->t.size);
}

int vka_conv2d_packed_usable(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                             uint64_t partial_bytes)
{
    if (!vka_conv2d_packed_shape(sh) || !vka_conv2d_packed_device(ctx)) return 0;
    if (vka_tensor_present(sh->x_shared.t) && !vka_conv2d_packed_x_shared_fits(ctx, sh, &sh->x_shared)) return 0;
    packed_layout l = layout_of(sh, partial_bytes);
    if (scratch.size < l.end) return 0;
    uint64_t o = scratch.offset;
    return vec4_bindable(ctx, o + l.xp_offset, l.xp_bytes) && vec4_bindable(ctx, o + l.dyp_offset, l.dyp_bytes) &&
           vec4_bindable(ctx, o + l.wk_offset, l.wk_bytes);
}

/* Where the kernels read x packed: the conv's own copy in the scratch, or sh->x_shared (another
 * conv's copy of the same x, border b >= pad), whose xpad starts at row and column b - pad. */
typedef struct x_source {
    vka_tensor t;
    uint32_t hp, wp;  /* the copy's rows per image and row pitch, in texels */
    uint32_t origin;  /* rows and columns before xpad's (0, 0) */
} x_source;

static x_source x_source_of(const vka_conv2d_shape *sh, vka_tensor scratch, const packed_layout *l)
{
    const vka_packed_layout *s = &sh->x_shared;
    if (vka_tensor_present(s->t)) return (x_source){s->t, s->hp, s->wp, s->border - sh->pad};
    return (x_source){vka_tensor_slice(scratch, l->xp_offset, l->xp_bytes), sh->h + 2 * sh->pad, sh->w + 2 * sh->pad, 0};
}

/* ---- the passes ---------------------------------------------------------------------- */

static vka_result dispatch_1d(vka_cmd *cmd, vka_kernel_desc *desc, const vka_tensor *t,
                              const void *push, uint64_t total)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (total > UINT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu invocations", desc->name,
                            (unsigned long long)total);
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    return vka_dispatch_items(cmd, k, t, desc->num_bindings, push, total);
}

/* pack() for C % 4 == 0 and H*W % 4 == 0 (conv2d_pack4.comp): 4 channels x 4 positions per
 * invocation, read as vec4 texels; the border by invocations of its own (hp = H + 2 pad,
 * wp = W + 2 pad). ~1.2x faster than conv2d_pack.comp on resnet20's shapes (perf-log 35). */
static vka_result pack4(vka_cmd *cmd, vka_tensor dst, vka_tensor src, uint32_t n, uint32_t c, uint32_t h,
                        uint32_t w, uint32_t pad, uint32_t hp, uint32_t wp)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t q = h * w / 4, c4 = c / 4, border = hp * wp - h * w;
    uint64_t interior = (uint64_t)n * c4 * q, total = interior + (uint64_t)n * c4 * border;
    struct pack4_push push = {
        .q_div = vka_fastdiv_make(q), .c4_div = vka_fastdiv_make(c4), .w_div = vka_fastdiv_make(w),
        .b_div = vka_fastdiv_make(border ? border : 1), .wp_div = vka_fastdiv_make(wp), .q = q, .c4 = c4, .w = w,
        .h = h, .pad = pad, .hp = hp, .wp = wp, .interior = (uint32_t)interior, .total = (uint32_t)total,
    };
    vka_kernel_desc desc = {
        .name = "conv2d_pack4", VKA_SPIRV(vka_spv_conv2d_pack4), .num_bindings = 2,
        .bindings = {VKA_BIND_TEXEL_RGBA32F, VKA_BIND_STORAGE}, .push_bytes = sizeof push,
        .local_size = {vka_plan_workgroup_1d(ctx, 64)},
    };
    vka_tensor t[2] = {vka_tensor_slice(src, 0, (uint64_t)n * c * h * w * 4), dst};
    return dispatch_1d(cmd, &desc, t, &push, total);
}

/* dst [N][hp][wp][c4] vec4 = src (N,C,H,W): element (h, w) at (pad + h, pad + w), zeros elsewhere. */
static vka_result pack(vka_cmd *cmd, vka_tensor dst, vka_tensor src, uint32_t n, uint32_t c, uint32_t h, uint32_t w,
                       int32_t pad, uint32_t hp, uint32_t wp)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (c % 4 == 0 && h * w % 4 == 0 && pad >= 0 && hp == h + 2 * (uint32_t)pad && wp == w + 2 * (uint32_t)pad &&
        vec4_bindable(ctx, src.offset, (uint64_t)n * c * h * w * 4))
        return pack4(cmd, dst, src, n, c, h, w, (uint32_t)pad, hp, wp);
    struct pack_push push = {n, c, h, w, pad, (uint32_t)vka_div_up(c, 4), hp, wp, 0};
    uint64_t total = (uint64_t)n * hp * wp;
    push.total = (uint32_t)total;
    vka_kernel_desc desc = {
        .name = "conv2d_pack", VKA_SPIRV(vka_spv_conv2d_pack), .num_bindings = 2,
        .bindings = {VKA_BIND_TEXEL_R32F, VKA_BIND_STORAGE}, .push_bytes = sizeof push,
        .local_size = {vka_plan_workgroup_1d(ctx, 64)},
    };
    vka_tensor t[2] = {src, dst};
    return dispatch_1d(cmd, &desc, t, &push, total);
}

/* dst (packed_push's WT, taps r x s) from w (K,C,R,S): forward (o = k, i = c, all taps as
 * stored), or for one phase of the input gradient (o = c, i = k, the phase's taps, last first). */
typedef struct weight_taps {
    uint32_t r, s;                /* taps of the packed kernel */
    int32_t tap0, step_r, step_s; /* tap (0, 0) and the steps between taps, in w's R*S plane */
} weight_taps;

static vka_result pack_weight(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dst, vka_tensor w, int transposed,
                              weight_taps taps)
{
    vka_context *ctx = vka_cmd_context(cmd);
    int32_t rs = (int32_t)(sh->r * sh->s), crs = (int32_t)sh->c * rs;
    struct pack_weight_push push = {
        .cin = transposed ? sh->k : sh->c, .cout = transposed ? sh->c : sh->k, .r = taps.r, .s = taps.s,
        .w_o = transposed ? rs : crs, .w_i = transposed ? crs : rs, .w_tap0 = taps.tap0, .w_r = taps.step_r,
        .w_s = taps.step_s,
    };
    push.cin4 = (uint32_t)vka_div_up(push.cin, 4);
    push.k4 = (uint32_t)vka_div_up(push.cout, 4);
    uint64_t total = (uint64_t)taps.r * taps.s * push.cin4 * 4 * push.k4;
    push.total = (uint32_t)total;
    vka_kernel_desc desc = {
        .name = "conv2d_pack_weight", VKA_SPIRV(vka_spv_conv2d_pack_weight), .num_bindings = 2,
        .bindings = {VKA_BIND_TEXEL_R32F, VKA_BIND_STORAGE}, .push_bytes = sizeof push,
        .local_size = {vka_plan_workgroup_1d(ctx, 64)},
    };
    vka_tensor t[2] = {w, vka_tensor_slice(dst, 0, total * 16)};
    return dispatch_1d(cmd, &desc, t, &push, total);
}

/* Whether pairs of output columns can go out as one 64-bit store (conv2d_packed.comp's PAIRS):
 * every pair starts on an even float of out and stays in its row. 6-16% faster per pass where it
 * applies (perf-log 48, 52); VKANCHOR_CONV_PAIRS=0 keeps one float per store, for A/B runs. */
static int pairs_fit(const struct packed_push *push, uint32_t rq, vka_tensor out)
{
    return rq % 2 == 0 && push->ocstep == 1 && push->ocol0 % 2 == 0 && push->wout % 2 == 0 && push->ow % 2 == 0 &&
           push->oplane % 2 == 0 && out.offset % 8 == 0 && !vka_switch_off("VKANCHOR_CONV_PAIRS");
}

/* out (N, cout, hout, wout) from a packed input [N][hp][wp][cin4] and packed weights (conv2d_packed.comp).
 * stats (forward only), when present: the output's BN statistics partials, (cout, G) vec4
 * (vka_conv2d_packed_stats_groups: G = ceil(runs / 8)).
 * cpair: a stride-2 input gradient's row phase, both column phases at once (accum then a mask:
 * 1 even, 2 odd columns add into out); the caller checked cpair_fits. */
static vka_result conv_packed(vka_cmd *cmd, int bwd, uint32_t n, uint32_t taps_s, uint32_t stride, int accum,
                              int cpair, vka_tensor out, vka_tensor in, vka_tensor wk, vka_tensor bias,
                              vka_tensor stats, struct packed_push *push)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t run = run_for_width(push->wout);
    int jb1 = push->cin4 <= JB1_MAX_CIN4, with_stats = vka_tensor_present(stats);
    int pairs = cpair || (!accum && pairs_fit(push, runs[run].rq, out));
    /* [forward, input gradient, forward with statistics][pairs][jb1] */
    static const char *const names[3][2][2] = {
        {{"conv2d_fwd_packed", "conv2d_fwd_packed_jb1"}, {"conv2d_fwd_packed_pairs", "conv2d_fwd_packed_jb1_pairs"}},
        {{"conv2d_bwd_data_packed", "conv2d_bwd_data_packed_jb1"},
         {"conv2d_bwd_data_packed_pairs", "conv2d_bwd_data_packed_jb1_pairs"}},
        {{"conv2d_fwd_packed_stats", "conv2d_fwd_packed_jb1_stats"},
         {"conv2d_fwd_packed_pairs_stats", "conv2d_fwd_packed_jb1_pairs_stats"}}};
    vka_kernel_desc desc = {
        .name = cpair ? (jb1 ? "conv2d_bwd_data_packed_jb1_cpair" : "conv2d_bwd_data_packed_cpair")
                      : names[bwd ? 1 : with_stats ? 2 : 0][pairs][jb1],
        .spirv = jb1 ? runs[run].spirv_jb1 : runs[run].spirv,
        .spirv_bytes = jb1 ? runs[run].bytes_jb1 : runs[run].bytes, .num_bindings = 6,
        .bindings = {VKA_BIND_TEXEL_RGBA32F, VKA_BIND_TEXEL_RGBA32F, VKA_BIND_STORAGE, VKA_BIND_STORAGE,
                     VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof *push, .local_size = {TEXEL_WG}, /* one subgroup: see packed_usable */
        .num_spec = 6,
        .spec = {stride, taps_s, (uint32_t)accum, (uint32_t)pairs, (uint32_t)(cpair != 0), (uint32_t)with_stats},
    };
    push->q_blocks = (uint32_t)vka_div_up(push->wout, runs[run].rq);
    push->k_blocks = (uint32_t)vka_div_up(push->k4, PACKED_KV);
    uint64_t total = (uint64_t)n * push->hout * push->q_blocks; /* runs of output columns */
    uint64_t groups = vka_div_up(total, TEXEL_WG) * push->k_blocks;
    if (total > UINT32_MAX || groups > UINT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu runs in %llu workgroups", desc.name,
                            (unsigned long long)total, (unsigned long long)groups);
    push->total = (uint32_t)total;
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    /* Without a bias, binding 2 aliases the weights, without stats binding 5 the output: the
     * shader does not touch them then (has_bias = 0, STATS = 0). */
    vka_tensor t[6] = {in, wk, push->has_bias ? bias : wk, out, out, with_stats ? stats : out};
    return vka_dispatch_groups(cmd, k, t, 6, push, groups);
}

uint32_t vka_conv2d_packed_stats_groups(const vka_conv2d_shape *sh)
{
    uint32_t q = vka_conv2d_out_w(sh);
    uint64_t total = (uint64_t)sh->n * vka_conv2d_out_h(sh) * vka_div_up(q, runs[run_for_width(q)].rq);
    return (uint32_t)vka_div_up(total, TEXEL_WG);
}

vka_result vka_conv2d_packed_forward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x,
                                     vka_tensor w, vka_tensor b, vka_tensor stats, vka_tensor scratch,
                                     uint64_t partial_bytes)
{
    packed_layout l = layout_of(sh, partial_bytes);
    x_source xs = x_source_of(sh, scratch, &l);
    vka_tensor wk = vka_tensor_slice(scratch, l.wk_offset, l.wk_bytes);
    vka_result rc = VKA_SUCCESS;
    if (!sh->x_packed && !vka_tensor_present(sh->x_shared.t))
        rc = pack(cmd, xs.t, x, sh->n, sh->c, sh->h, sh->w, (int32_t)sh->pad, xs.hp, xs.wp);
    if (!rc) rc = pack_weight(cmd, sh, wk, w, 0, (weight_taps){sh->r, sh->s, 0, (int32_t)sh->s, 1});
    if (rc) return rc;
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* packed copies written -> the conv reads them */
    uint32_t p = vka_conv2d_out_h(sh), q = vka_conv2d_out_w(sh);
    struct packed_push push = {
        .cin4 = (uint32_t)vka_div_up(sh->c, 4), .hp = xs.hp, .wp = xs.wp, .cout = sh->k, .hout = p, .wout = q,
        .taps_r = sh->r, .k4 = (uint32_t)vka_div_up(sh->k, 4), .has_bias = vka_tensor_present(b),
        .irow0 = xs.origin, .icol0 = xs.origin, .orstep = 1, .ocstep = 1, .ow = q, .oplane = p * q,
    };
    return conv_packed(cmd, 0, sh->n, sh->s, sh->stride, 0, 0, y, xs.t, wk, b, stats, &push);
}

/* The phases of the input gradient (one at stride 1) and where each one's taps sit in wk. */
typedef struct phases {
    phase_axis h[2], w[2];
    uint64_t wk_at[2][2];  /* not under CPAIR, whose row phases sit at cpair_wk_at */
} phases;

static phases phases_of(const vka_conv2d_shape *sh)
{
    phases ps = {0};
    uint64_t per_tap = 4ull * vka_div_up(sh->k, 4) * vka_div_up(sh->c, 4) * 16, at = 0;
    for (uint32_t ph = 0; ph < sh->stride; ph++) {
        ps.h[ph] = phase_of(ph, sh->h, sh->r, sh->pad, sh->stride);
        ps.w[ph] = phase_of(ph, sh->w, sh->s, sh->pad, sh->stride);
    }
    for (uint32_t ph = 0; ph < sh->stride; ph++)
        for (uint32_t pw = 0; pw < sh->stride; pw++) {
            ps.wk_at[ph][pw] = at;
            at += (uint64_t)ps.h[ph].taps * ps.w[pw].taps * per_tap;
        }
    return ps;
}

/* Whether the input gradient goes by row phase with both column phases in one dispatch
 * (conv2d_packed.comp's CPAIR): stride 2, 3x3, pad 1 (column phase 0 takes tap 1, phase 1 taps
 * 2 and 0, both from dy column i on), an even width (the phases have W/2 columns each, and the
 * pairs of columns they make start on even floats), every phase with taps, and an even run.
 * It reads each dy texel once for both column phases and stores contiguous pairs: the four
 * phase dispatches stored every other column one float at a time (perf-log 51).
 * VKANCHOR_CONV_CPAIR=0 keeps the four, for A/B runs (and so does VKANCHOR_CONV_PAIRS=0, which
 * turns off every pair store). */
static int cpair_fits(const vka_conv2d_shape *sh, const phases *ps, vka_tensor dx)
{
    if (sh->stride != 2 || sh->s != 3 || sh->r != 3 || sh->pad != 1 || sh->w % 2 != 0) return 0;
    const phase_axis *c = ps->w;
    if (c[0].taps != 1 || c[0].r_last != 1 || c[0].off != 0 || c[1].taps != 2 || c[1].r_last != 2 || c[1].off != 0)
        return 0;
    if (!ps->h[0].taps || !ps->h[1].taps) return 0;
    struct packed_push probe = {.ocstep = 1, .wout = sh->w, .ow = sh->w, .oplane = sh->h * sh->w};
    return pairs_fit(&probe, runs[run_for_width(sh->w)].rq, dx) && !vka_switch_off("VKANCHOR_CONV_CPAIR");
}

/* Where row phase ph's taps sit in wk under CPAIR: its rows x all 3 column taps, phase 0 first. */
static uint64_t cpair_wk_at(const vka_conv2d_shape *sh, const phases *ps, uint32_t ph)
{
    uint64_t per_tap = 4ull * vka_div_up(sh->k, 4) * vka_div_up(sh->c, 4) * 16;
    return ph == 0 ? 0 : (uint64_t)ps->h[0].taps * 3 * per_tap;
}

/* Under CPAIR: each row phase's flipped, transposed taps with all three column taps (2, 1, 0). */
static vka_result pack_row_phase_weights(vka_cmd *cmd, const vka_conv2d_shape *sh, const phases *ps, vka_tensor wk,
                                         vka_tensor w)
{
    vka_result rc = VKA_SUCCESS;
    for (uint32_t ph = 0; ph < 2 && !rc; ph++) {
        phase_axis a = ps->h[ph];
        weight_taps taps = {a.taps, 3, (int32_t)(a.r_last * 3 + 2), -6, -1};
        uint64_t at = cpair_wk_at(sh, ps, ph);
        rc = pack_weight(cmd, sh, vka_tensor_slice(wk, at, wk.size - at), w, 1, taps);
    }
    return rc;
}

/* Packs each phase's flipped, transposed taps into wk, one after the other. */
static vka_result pack_phase_weights(vka_cmd *cmd, const vka_conv2d_shape *sh, const phases *ps, vka_tensor wk,
                                     vka_tensor w)
{
    vka_result rc = VKA_SUCCESS;
    for (uint32_t ph = 0; ph < sh->stride && !rc; ph++)
        for (uint32_t pw = 0; pw < sh->stride && !rc; pw++) {
            phase_axis a = ps->h[ph], b = ps->w[pw];
            if (!a.taps || !b.taps) continue; /* no tap reaches this phase: zeros */
            weight_taps taps = {a.taps, b.taps, (int32_t)(a.r_last * sh->s + b.r_last),
                                -(int32_t)(sh->stride * sh->s), -(int32_t)sh->stride};
            uint64_t at = ps->wk_at[ph][pw];
            rc = pack_weight(cmd, sh, vka_tensor_slice(wk, at, wk.size - at), w, 1, taps);
        }
    return rc;
}

/* Under CPAIR: dx row phase by row phase, both column phases of each in one dispatch,
 * written to every column of the phase's rows (2 apart). */
static vka_result input_gradient_by_row_phase(vka_cmd *cmd, const vka_conv2d_shape *sh, const phases *ps,
                                              vka_tensor dx, const vka_packed_layout *dl, vka_tensor wk)
{
    uint32_t c4 = (uint32_t)vka_div_up(sh->c, 4), k4 = (uint32_t)vka_div_up(sh->k, 4);
    for (uint32_t ph = 0; ph < 2; ph++) {
        phase_axis a = ps->h[ph];
        if (!a.count) continue; /* no output rows in this phase */
        struct packed_push push = {
            .cin4 = k4, .hp = dl->hp, .wp = dl->wp, .cout = sh->c, .hout = a.count, .wout = sh->w,
            .taps_r = a.taps, .k4 = c4, .irow0 = (uint32_t)((int32_t)dl->border + a.off), .icol0 = dl->border,
            .orstep = 2, .ocstep = 1, .orow0 = ph, .ocol0 = 0, .ow = sh->w, .oplane = sh->h * sh->w,
        };
        int accum = (int)((sh->dx_accumulate >> (ph * 2)) & 3u); /* bit 0: column phase 0, bit 1: phase 1 */
        uint64_t at = cpair_wk_at(sh, ps, ph);
        vka_result rc = conv_packed(cmd, 1, sh->n, 3, 1, accum, 1, dx, dl->t, vka_tensor_slice(wk, at, wk.size - at),
                                    (vka_tensor){0}, (vka_tensor){0}, &push);
        if (rc) return rc;
    }
    return VKA_SUCCESS;
}

/* dx, phase by phase: each a stride-1 correlation of the bordered dy with its taps, written to
 * the rows and columns of its phase (stride apart). */
static vka_result input_gradient(vka_cmd *cmd, const vka_conv2d_shape *sh, const phases *ps, vka_tensor dx,
                                 const vka_packed_layout *dl, vka_tensor wk)
{
    uint32_t c4 = (uint32_t)vka_div_up(sh->c, 4), k4 = (uint32_t)vka_div_up(sh->k, 4);
    for (uint32_t ph = 0; ph < sh->stride; ph++)
        for (uint32_t pw = 0; pw < sh->stride; pw++) {
            phase_axis a = ps->h[ph], b = ps->w[pw];
            if (!a.count || !b.count) continue; /* no outputs in this phase */
            int taps = a.taps && b.taps, accum = (sh->dx_accumulate >> (ph * sh->stride + pw)) & 1;
            if (!taps && (sh->dx_skip_empty_phases || accum)) continue; /* zeros: left to the other writer */
            struct packed_push push = {
                .cin4 = k4, .hp = dl->hp, .wp = dl->wp, .cout = sh->c, .hout = a.count, .wout = b.count,
                .taps_r = taps ? a.taps : 0, .k4 = c4,
                .irow0 = taps ? (uint32_t)((int32_t)dl->border + a.off) : 0,
                .icol0 = taps ? (uint32_t)((int32_t)dl->border + b.off) : 0,
                .orstep = sh->stride, .ocstep = sh->stride, .orow0 = ph, .ocol0 = pw, .ow = sh->w,
                .oplane = sh->h * sh->w,
            };
            /* Without taps the kernel reads nothing (taps_r = 0) and writes zeros; wk is bound as is. */
            uint64_t at = ps->wk_at[ph][pw];
            vka_tensor wt = taps ? vka_tensor_slice(wk, at, wk.size - at) : wk;
            vka_result rc =
                conv_packed(cmd, 1, sh->n, taps ? b.taps : 1, 1, accum, 0, dx, dl->t, wt, (vka_tensor){0}, (vka_tensor){0}, &push);
            if (rc) return rc;
        }
    return VKA_SUCCESS;
}

uint32_t vka_conv2d_packed_tap_phases(const vka_conv2d_shape *sh)
{
    phases ps = phases_of(sh);
    uint32_t mask = 0;
    for (uint32_t ph = 0; ph < sh->stride; ph++)
        for (uint32_t pw = 0; pw < sh->stride; pw++)
            if (ps.h[ph].taps && ps.w[pw].taps && ps.h[ph].count && ps.w[pw].count) mask |= 1u << (ph * sh->stride + pw);
    return mask;
}

/* The weight/bias gradient partials (vka_conv2d_packed_groups image groups). */
static vka_result weight_gradient(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor partials, int has_bias,
                                  const vka_packed_layout *dl, const x_source *xs)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t c4 = (uint32_t)vka_div_up(sh->c, 4), k4 = (uint32_t)vka_div_up(sh->k, 4);
    uint32_t groups = vka_conv2d_packed_groups(sh);
    uint32_t step = weight_step_for_width(vka_conv2d_out_w(sh));
    struct weight_push wp = {
        .n = sh->n, .c = sh->c, .k = sh->k, .r = sh->r, .p = vka_conv2d_out_h(sh), .q = vka_conv2d_out_w(sh),
        .hp = xs->hp, .wp = xs->wp, .c4 = c4, .k4 = k4, .has_bias = (uint32_t)has_bias,
        .groups = groups, .k_blocks = (uint32_t)vka_div_up(k4, WEIGHT_KV), .pairs = sh->r * c4, .dyb = dl->border,
        .dyh = dl->hp, .dyw = dl->wp, .xorg = (xs->origin * xs->wp + xs->origin) * c4, .xw = sh->w + 2 * sh->pad,
    };
    /* Workgroups of 8 (one subgroup) per (image group, 8/PB k blocks, PB (r, channel group)
     * pairs), PB the power of two that leaves the fewest invocations idle (more on ties). */
    uint32_t pb_log = 0;
    uint64_t wgs = UINT64_MAX;
    for (uint32_t lg = 0; lg < 4; lg++) {
        uint32_t pb = TEXEL_WG >> lg, kbg = TEXEL_WG / pb;
        uint64_t n = (uint64_t)groups * vka_div_up(wp.k_blocks, kbg) * vka_div_up(wp.pairs, pb);
        if (n < wgs) wgs = n, pb_log = lg;
    }
    vka_kernel_desc desc = {
        .name = weight_steps[step].name, .spirv = weight_steps[step].spirv, .spirv_bytes = weight_steps[step].bytes,
        .num_bindings = 3,
        .bindings = {VKA_BIND_TEXEL_RGBA32F, VKA_BIND_TEXEL_RGBA32F, VKA_BIND_STORAGE}, .push_bytes = sizeof wp,
        .local_size = {TEXEL_WG}, .num_spec = 3, .spec = {sh->stride, sh->s, TEXEL_WG >> pb_log},
    };
    if (wgs > UINT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu workgroups", desc.name, (unsigned long long)wgs);
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    vka_tensor t[3] = {dl->t, xs->t, partials};
    return vka_dispatch_groups(cmd, k, t, 3, &wp, wgs);
}

vka_result vka_conv2d_packed_backward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor partials,
                                      int has_bias, vka_tensor dy, vka_tensor x, vka_tensor w, vka_tensor scratch,
                                      uint64_t partial_bytes)
{
    packed_layout l = layout_of(sh, partial_bytes);
    int want_dx = vka_tensor_present(dx), want_w = vka_tensor_present(partials);
    x_source xs = x_source_of(sh, scratch, &l);
    vka_tensor wk = vka_tensor_slice(scratch, l.wk_offset, l.wk_bytes);
    /* One packed dy serves both gradients; its producer may have written it already. */
    vka_packed_layout dl = dy_layout(sh, scratch, partial_bytes);
    phases ps = phases_of(sh);
    int cpair = want_dx && cpair_fits(sh, &ps, dx);
    vka_result rc = VKA_SUCCESS;
    if (!sh->dy_packed)
        rc = pack(cmd, dl.t, dy, sh->n, sh->k, dl.h, dl.w, (int32_t)dl.border, dl.hp, dl.wp);
    if (!rc && want_dx)
        rc = cpair ? pack_row_phase_weights(cmd, sh, &ps, wk, w) : pack_phase_weights(cmd, sh, &ps, wk, w);
    if (!rc && want_w && !sh->x_packed_by_forward && !sh->x_packed && !vka_tensor_present(sh->x_shared.t))
        rc = pack(cmd, xs.t, x, sh->n, sh->c, sh->h, sh->w, (int32_t)sh->pad, xs.hp, xs.wp);
    if (rc) return rc;
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* packed copies written -> the kernels read them */
    if (want_dx)
        rc = cpair ? input_gradient_by_row_phase(cmd, sh, &ps, dx, &dl, wk) : input_gradient(cmd, sh, &ps, dx, &dl, wk);
    if (!rc && want_w) rc = weight_gradient(cmd, sh, partials, has_bias, &dl, &xs);
    return rc;
}
