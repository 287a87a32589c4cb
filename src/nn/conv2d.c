/* conv2d: forward, input gradient and weight/bias gradient as implicit GEMMs, each
 * with a shared-memory tiled kernel (GPUs) and a texel-buffer register-blocked kernel,
 * chosen from device properties like vka_matmul_choose. On lavapipe the texel variant
 * runs the channels-packed kernels of conv2d_packed.c wherever the shape allows (square
 * 1x1/3x3, stride 1 or 2), and these GEMM kernels elsewhere. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/fastdiv.h"
#include "nn/conv2d_packed.h"
#include "nn/ops_internal.h"

#include "conv2d_bwd_data_texel.spv.h"
#include "conv2d_bwd_data_tiled.spv.h"
#include "conv2d_bwd_weight_reduce.spv.h"
#include "conv2d_bwd_weight_reduce_texel.spv.h"
#include "conv2d_bwd_weight_reduce_vec4.spv.h"
#include "conv2d_bwd_weight_texel.spv.h"
#include "conv2d_bwd_weight_tiled.spv.h"
#include "conv2d_bwd_data_coop.spv.h"
#include "conv2d_bwd_data_coop_emulated.spv.h"
#include "conv2d_bwd_weight_coop.spv.h"
#include "conv2d_bwd_weight_coop_emulated.spv.h"
#include "conv2d_fwd_coop.spv.h"
#include "conv2d_fwd_coop_emulated.spv.h"
#include "conv2d_fwd_texel.spv.h"
#include "conv2d_fwd_tiled.spv.h"

struct conv2d_push {
    uint32_t n, c, h, w;
    uint32_t k, r, s;
    uint32_t stride, pad;
    uint32_t p, q;
    uint32_t has_bias, slices, m_blocks, n_blocks, total;
    vka_fastdiv rs_div, s_div, q_div, pq_div, w_div, hw_div; /* the tiled kernels' divisors */
};
_Static_assert(sizeof(struct conv2d_push) == 112, "mirror of shaders/include/conv2d_push.glsl");

struct reduce_push {
    uint32_t rows, cols, ld, col0, slices, slice_stride;
};
_Static_assert(sizeof(struct reduce_push) == 24, "mirror of Push in shaders/conv2d_bwd_weight_reduce.comp");

struct reduce4_push {
    uint32_t total4, ld, crs, slices, slice_stride4, has_db;
};
_Static_assert(sizeof(struct reduce4_push) == 24, "mirror of Push (VEC4) in shaders/conv2d_bwd_weight_reduce.comp");

#define TILED_TK 16
/* The tiled kernels' register block per thread, RM x RN (specialization constants of
 * shaders/include/conv2d_gemm_tiled.glsl): 4 or 8 each. On real GPUs a dimension takes 8
 * where the GEMM is at least this wide there and the grid keeps this many workgroups. */
#define TILED_MIN_GROUPS 256u
#define TEXEL_WG 8    /* lavapipe's SIMD width */
#define TEXEL_BM 8    /* must match BM, BN in the TEXEL branches of the shaders */
#define TEXEL_BN 8

/* Weight gradient split: at most this many slices of output rows (n, p) ... */
#define MAX_SLICES 64u
/* ... while slices * K * (C*R*S+1) partials stay under this (scratch and parallelism) ... */
#define SLICE_PARTIALS (1u << 18)
/* ... and each slice reduces over at least this many output positions. */
#define MIN_SLICE_POSITIONS 64u
/* The tiled variant (real GPUs) splits to fill the device instead: enough slices for about
 * this many 64x64-tile workgroups (an H200 has 132 multiprocessors; one 4x4-blocked tile
 * grid of a 128->128 3x3 layer is only 38 workgroups, which left it at 1.4 TFLOP/s), ... */
#define TILED_TARGET_GROUPS 1024u
/* ... at most 16 MiB of partials per layer, at least 256 output positions per slice. */
#define TILED_SLICE_PARTIALS (1u << 22)
#define TILED_MIN_SLICE_POSITIONS 256u

/* Elements of every tensor stay below 2^31: the shaders index with 32-bit ints. */
#define MAX_ELEMS ((uint64_t)1 << 31)

static uint32_t out_size(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad)
{
    uint64_t padded = (uint64_t)in + 2ull * pad;
    if (stride == 0 || k == 0 || padded < k) return 0;
    return (uint32_t)((padded - k) / stride + 1);
}

uint32_t vka_conv2d_out_h(const vka_conv2d_shape *sh) { return out_size(sh->h, sh->r, sh->stride, sh->pad); }
uint32_t vka_conv2d_out_w(const vka_conv2d_shape *sh) { return out_size(sh->w, sh->s, sh->stride, sh->pad); }

/* Element counts of the four tensors of a shape. */
typedef struct conv2d_sizes {
    uint64_t x, w, y, crs, np, npq;
    uint32_t p, q;
} conv2d_sizes;

static conv2d_sizes sizes_of(const vka_conv2d_shape *sh)
{
    conv2d_sizes z;
    z.p = vka_conv2d_out_h(sh);
    z.q = vka_conv2d_out_w(sh);
    z.crs = (uint64_t)sh->c * sh->r * sh->s;
    z.x = (uint64_t)sh->n * sh->c * sh->h * sh->w;
    z.w = (uint64_t)sh->k * z.crs;
    z.np = (uint64_t)sh->n * z.p;
    z.npq = z.np * z.q;
    z.y = (uint64_t)sh->k * z.npq;
    return z;
}

/* A pure function of the shape and the variant (see conv2d.h). */
uint32_t vka_conv2d_weight_slices(const vka_conv2d_shape *sh, vka_conv2d_variant v)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t cols = (uint64_t)sh->k * (z.crs + 1);
    uint64_t s, by_partials, by_length;
    if (v == VKA_CONV2D_TILED) {
        uint64_t tiles = vka_div_up(sh->k, 64) * vka_div_up(z.crs + 1, 64);
        s = vka_div_up(TILED_TARGET_GROUPS, tiles ? tiles : 1); /* 0 for a bad shape, refused later */
        by_partials = TILED_SLICE_PARTIALS / (cols ? cols : 1);
        by_length = z.npq / TILED_MIN_SLICE_POSITIONS;
    } else {
        s = MAX_SLICES;
        by_partials = SLICE_PARTIALS / (cols ? cols : 1);
        by_length = z.npq / MIN_SLICE_POSITIONS;
    }
    if (s > MAX_SLICES) s = MAX_SLICES;
    if (s > z.np) s = z.np;
    if (s > by_partials) s = by_partials;
    if (s > by_length) s = by_length;
    return s ? (uint32_t)s : 1;
}

/* Partials of the weight gradient in the scratch (the same for every variant, which a call
 * may still change where an input cannot be bound as a texel buffer): the texel and packed
 * kernels' slices everywhere, and on GPUs (or without a context) the tiled kernels' too.
 * On CPU devices the tiled kernels (tests, that fallback) take as many slices as fit. */
static uint64_t weight_partials(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t slices = vka_conv2d_weight_slices(sh, VKA_CONV2D_TEXEL), groups = vka_conv2d_packed_groups(sh);
    if (slices < groups) slices = groups;
    if (!ctx || ctx->info.type != VKA_DEVICE_CPU) {
        uint64_t tiled = vka_conv2d_weight_slices(sh, VKA_CONV2D_TILED);
        if (slices < tiled) slices = tiled;
    }
    return slices * sh->k * (z.crs + 1);
}

/* Where the packed copies start in the scratch: after the partials of the capacity batch,
 * so the same for every n <= n_capacity. */
static uint64_t packed_base(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    vka_conv2d_shape cap = *sh;
    if (cap.n_capacity > cap.n) cap.n = cap.n_capacity;
    return weight_partials(ctx, &cap) * 4;
}

/* Whether x comes packed already (x_packed, x_shared): the x argument is not read then. */
static int x_given_packed(const vka_conv2d_shape *sh) { return sh && (sh->x_packed || vka_tensor_present(sh->x_shared.t)); }

/* Whether the lavapipe packed path runs: the TEXEL variant, a shape it takes, room in the
 * scratch, and its self-test not failed; VKANCHOR_CONV_PACKED=0 turns it off (A/B
 * measurements, tests of the GEMM kernels). */
static int packed_applies(const vka_context *ctx, vka_conv2d_variant v, const vka_conv2d_shape *sh,
                          vka_tensor scratch)
{
    if (v != VKA_CONV2D_TEXEL || vka_switch_off("VKANCHOR_CONV_PACKED") || ctx->packed_checked < 0) return 0;
    return vka_conv2d_packed_usable(ctx, sh, scratch, packed_base(ctx, sh));
}

int vka_conv2d_x_packed_layout(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                               vka_packed_layout *out)
{
    vka_conv2d_variant v = vka_conv2d_choose(ctx, sh);
    if (!packed_applies(ctx, v, sh, scratch)) return 0;
    *out = vka_conv2d_packed_x_layout(sh, scratch, packed_base(ctx, sh));
    return 1;
}

int vka_conv2d_x_shared_fits(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                             const vka_packed_layout *l)
{
    if (!vka_tensor_present(l->t)) return 0;
    vka_conv2d_shape s = *sh;
    s.x_shared = *l;
    return packed_applies(ctx, vka_conv2d_choose(ctx, &s), &s, scratch);
}

int vka_conv2d_dy_packed_layout(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                                vka_packed_layout *out)
{
    vka_conv2d_variant v = vka_conv2d_choose(ctx, sh);
    if (!packed_applies(ctx, v, sh, scratch)) return 0;
    *out = vka_conv2d_packed_dy_layout(sh, scratch, packed_base(ctx, sh));
    return 1;
}

uint32_t vka_conv2d_dx_tap_phases(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch)
{
    vka_conv2d_variant v = vka_conv2d_choose(ctx, sh);
    return packed_applies(ctx, v, sh, scratch) ? vka_conv2d_packed_tap_phases(sh) : 0;
}

/* The scratch before the coop region: partials, and the packed copies on CPU devices. */
static uint64_t scratch_base_bytes(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    uint64_t bytes = packed_base(ctx, sh);
    /* Room for the packed copies on CPU devices (where the texel variant runs), whatever the variant. */
    if (ctx && ctx->info.type == VKA_DEVICE_CPU && vka_conv2d_packed_shape(sh))
        bytes = vka_conv2d_packed_scratch_end(sh, bytes);
    return bytes ? (bytes + 255) / 256 * 256 : 256;
}

/* The coop backward's region at the scratch's end: (sum, max |dy|) in its first 256 bytes,
 * then vka_reduce_sum_absmax's partials (their size does not depend on n: a fixed number of
 * partials, folded in passes). Where the context may run those kernels. */
static uint64_t coop_region_bytes(const vka_context *ctx) { return 256 + vka_reduce_scratch_bytes(ctx, 1); }
static int coop_region_wanted(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    return ctx && (ctx->coopmat_nv || sh->coop == 2);
}

uint64_t vka_conv2d_scratch_bytes(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    return scratch_base_bytes(ctx, sh) + (coop_region_wanted(ctx, sh) ? coop_region_bytes(ctx) : 0);
}

uint64_t vka_conv2d_largest_binding(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t floats = z.x > z.y ? z.x : z.y;
    if (z.w > floats) floats = z.w;
    uint64_t partials = weight_partials(ctx, sh);
    if (partials > floats) floats = partials;
    uint64_t bytes = floats * 4;
    /* The packed copies where the packed path runs: with the variant this shape gets, in a
     * scratch of the size a caller allocates (vka_conv2d_scratch_bytes; only sizes matter). */
    vka_tensor scratch = {.size = vka_conv2d_scratch_bytes(ctx, sh)};
    if (packed_applies(ctx, vka_conv2d_choose(ctx, sh), sh, scratch)) {
        uint64_t copy = vka_conv2d_packed_largest_copy(sh);
        if (copy > bytes) bytes = copy;
    }
    return bytes;
}

/* ---- arguments -------------------------------------------------------------------- */

#define SHAPE_FMT "N=%u C=%u H=%u W=%u K=%u R=%u S=%u stride=%u pad=%u"
#define SHAPE_ARGS(sh) (sh)->n, (sh)->c, (sh)->h, (sh)->w, (sh)->k, (sh)->r, (sh)->s, (sh)->stride, (sh)->pad

static vka_result bad_call(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static vka_result bad_call(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s (" SHAPE_FMT "): %s", op, SHAPE_ARGS(sh), why);
}

typedef struct tensor_need {
    const char *name;
    vka_tensor *t;     /* trimmed to the bytes needed when large enough */
    uint64_t elems;
    int optional;      /* absent is fine */
} tensor_need;

/* Checks the shape and that each tensor holds its elements; never records anything. */
static vka_result check_call(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, tensor_need *need,
                             uint32_t count)
{
    if (!sh) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no shape", op);
    if (!sh->n || !sh->c || !sh->h || !sh->w || !sh->k || !sh->r || !sh->s)
        return bad_call(cmd, op, sh, "every size must be at least 1");
    if (!sh->stride) return bad_call(cmd, op, sh, "stride must be at least 1");
    if ((uint64_t)sh->h + 2ull * sh->pad < sh->r || (uint64_t)sh->w + 2ull * sh->pad < sh->s)
        return bad_call(cmd, op, sh, "the %ux%u kernel is larger than the padded %llux%llu input", sh->r, sh->s,
                        (unsigned long long)sh->h + 2ull * sh->pad, (unsigned long long)sh->w + 2ull * sh->pad);
    if (sh->variant > VKA_CONV2D_TEXEL) return bad_call(cmd, op, sh, "unknown variant %d", (int)sh->variant);
    if ((sh->tiled_rm && sh->tiled_rm != 4 && sh->tiled_rm != 8) || (sh->tiled_rn && sh->tiled_rn != 4 && sh->tiled_rn != 8))
        return bad_call(cmd, op, sh, "tiled register block %ux%u (each 4 or 8, 0: picked)", sh->tiled_rm, sh->tiled_rn);
    conv2d_sizes z = sizes_of(sh);
    /* Largest 32-bit index expressions in the shaders: tensor elements, partials, pad offsets. */
    uint64_t partials = weight_partials(vka_cmd_context(cmd), sh);
    if (z.x >= MAX_ELEMS || z.w >= MAX_ELEMS || z.y >= MAX_ELEMS || partials >= MAX_ELEMS ||
        (uint64_t)sh->h + sh->pad >= MAX_ELEMS || (uint64_t)sh->w + sh->pad >= MAX_ELEMS)
        return bad_call(cmd, op, sh, "too large for 32-bit indexing (x %llu, w %llu, y %llu elements)",
                        (unsigned long long)z.x, (unsigned long long)z.w, (unsigned long long)z.y);
    for (uint32_t i = 0; i < count; i++) {
        vka_tensor *t = need[i].t;
        if (need[i].optional && !vka_tensor_present(*t)) continue;
        uint64_t bytes = need[i].elems * 4;
        if (!t->block || t->size < bytes)
            return bad_call(cmd, op, sh, "%s needs %llu bytes (%llu floats) but has %llu", need[i].name,
                            (unsigned long long)bytes, (unsigned long long)need[i].elems,
                            (unsigned long long)(t->block ? t->size : 0));
        *t = vka_tensor_slice(*t, 0, bytes); /* bind exactly the operand */
    }
    return VKA_SUCCESS;
}

/* ---- variants ---------------------------------------------------------------------- */

static int texel_bindable(const vka_context *ctx, vka_tensor t)
{
    return t.size / 4 <= ctx->limits.max_texel_buffer_elements &&
           t.offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0;
}

static int texel_shape_fits(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t lim = ctx->limits.max_texel_buffer_elements;
    return ctx->info.features.texel_buffer_r32f && z.x <= lim && z.w <= lim && z.y <= lim;
}

vka_conv2d_variant vka_conv2d_choose(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    vka_conv2d_variant v = sh->variant;
    if (v == VKA_CONV2D_AUTO) {
        const char *env = getenv("VKANCHOR_CONV");
        if (env && strcmp(env, "tiled") == 0) v = VKA_CONV2D_TILED;
        else if (env && strcmp(env, "texel") == 0) v = VKA_CONV2D_TEXEL;
        else v = ctx->info.type == VKA_DEVICE_CPU ? VKA_CONV2D_TEXEL : VKA_CONV2D_TILED;
        /* The texel kernels bind x, w and dy as texel buffers: all must fit, for every pass of a layer. */
        if (v == VKA_CONV2D_TEXEL && !texel_shape_fits(ctx, sh)) v = VKA_CONV2D_TILED;
    }
    return v;
}

/* The variant for one call: an explicit TEXEL that cannot bind its inputs is an error,
 * AUTO falls back to TILED. Returns AUTO (0) after recording the error. */
static vka_conv2d_variant resolve(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, vka_tensor t0,
                                  vka_tensor t1)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_conv2d_variant v = vka_conv2d_choose(ctx, sh);
    if (v != VKA_CONV2D_TEXEL) return v;
    int ok = texel_shape_fits(ctx, sh) && texel_bindable(ctx, t0) && texel_bindable(ctx, t1);
    if (ok) return v;
    if (sh->variant == VKA_CONV2D_AUTO) return VKA_CONV2D_TILED;
    vka_cmd_fail(cmd, VKA_ERROR_UNSUPPORTED,
                 "%s (" SHAPE_FMT "): the texel variant cannot bind its inputs (texel-buffer limit %u elements, "
                 "R32F texel buffers %s, offset alignment %llu)",
                 op, SHAPE_ARGS(sh), ctx->limits.max_texel_buffer_elements,
                 ctx->info.features.texel_buffer_r32f ? "offered" : "not offered",
                 (unsigned long long)ctx->info.limits.min_texel_buffer_offset_alignment);
    return VKA_CONV2D_AUTO;
}

/* A divisor for the shaders' fastdiv; 0 (a shape the checks refuse first) as 1. */
static vka_fastdiv divisor(uint32_t d) { return vka_fastdiv_make(d ? d : 1); }

static struct conv2d_push push_of(const vka_conv2d_shape *sh)
{
    uint32_t p = vka_conv2d_out_h(sh), q = vka_conv2d_out_w(sh);
    return (struct conv2d_push){
        .n = sh->n, .c = sh->c, .h = sh->h, .w = sh->w, .k = sh->k, .r = sh->r, .s = sh->s,
        .stride = sh->stride, .pad = sh->pad, .p = p, .q = q,
        .slices = 1,
        .rs_div = divisor(sh->r * sh->s), .s_div = divisor(sh->s), .q_div = divisor(q), .pq_div = divisor(p * q),
        .w_div = divisor(sh->w), .hw_div = divisor(sh->h * sh->w),
    };
}

/* One GEMM kernel, M x N outputs (x slices), in either variant. */
typedef struct gemm_kernel {
    const char *name;
    const uint32_t *spirv;
    size_t spirv_bytes;
    const char *block_names[3]; /* tiled: the names of the 4x8, 8x4 and 8x8 register blocks in timings */
    uint32_t num_bindings;
    vka_binding_kind bindings[VKA_MAX_BINDINGS];
} gemm_kernel;

/* See conv2d.h; VKANCHOR_TILED_BLOCK is for A/B runs. */
void vka_conv2d_tiled_block(vka_device_type type, const vka_conv2d_shape *sh, uint64_t m, uint64_t n, uint32_t slices,
                            uint32_t tx, uint32_t ty, uint32_t *rm, uint32_t *rn)
{
    *rm = *rn = 4;
    const char *env = getenv("VKANCHOR_TILED_BLOCK");
    if (env && (env[0] == '4' || env[0] == '8') && env[1] == 'x' && (env[2] == '4' || env[2] == '8') && !env[3]) {
        *rm = (uint32_t)(env[0] - '0');
        *rn = (uint32_t)(env[2] - '0');
    } else if (type != VKA_DEVICE_CPU) {
        if (n >= 256 && vka_div_up(m, ty * 4) * vka_div_up(n, tx * 8) * slices >= TILED_MIN_GROUPS) *rn = 8;
        if (m >= 128 && vka_div_up(m, ty * 8) * vka_div_up(n, tx * *rn) * slices >= TILED_MIN_GROUPS) *rm = 8;
    }
    if (sh->tiled_rm) *rm = sh->tiled_rm;
    if (sh->tiled_rn) *rn = sh->tiled_rn;
}

static vka_result run_gemm(vka_cmd *cmd, const vka_conv2d_shape *sh, const gemm_kernel *gk, vka_conv2d_variant v,
                           struct conv2d_push *push, uint64_t m, uint64_t n, const vka_tensor *t)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_kernel_desc desc = {
        .name = gk->name, .spirv = gk->spirv, .spirv_bytes = gk->spirv_bytes,
        .num_bindings = gk->num_bindings, .push_bytes = sizeof *push,
    };
    memcpy(desc.bindings, gk->bindings, sizeof desc.bindings);
    uint32_t gx, gy, gz;
    if (v == VKA_CONV2D_TILED) {
        /* 16 x 16 threads, or 16 x 8 where the device allows only 128 invocations. */
        uint32_t tx = 16, ty = ctx->limits.max_workgroup_invocations >= 256 ? 16 : 8, rm, rn;
        vka_conv2d_tiled_block(ctx->info.type, sh, m, n, push->slices, tx, ty, &rm, &rn);
        uint32_t tm = ty * rm, tn = tx * rn;
        desc.local_size[0] = tx;
        desc.local_size[1] = ty;
        desc.shared_bytes = TILED_TK * (tm + tn) * 4;
        /* Off for A/B runs: the prefetch and the vec4 shared-memory reads (conv2d_gemm_tiled.glsl). */
        desc.num_spec = 5;
        desc.spec[0] = TILED_TK;
        desc.spec[1] = rm;
        desc.spec[2] = rn;
        desc.spec[3] = !vka_switch_off("VKANCHOR_TILED_PREFETCH");
        desc.spec[4] = !vka_switch_off("VKANCHOR_TILED_VEC4");
        if (rm != 4 || rn != 4) { /* its own pipeline, named by its block */
            desc.name = gk->block_names[(rm == 8) * 2 + (rn == 8) - 1];
        }
        gx = (uint32_t)vka_div_up(n, tn);
        gy = (uint32_t)vka_div_up(m, tm);
        gz = push->slices;
    } else {
        desc.local_size[0] = vka_plan_workgroup_1d(ctx, TEXEL_WG);
        push->m_blocks = (uint32_t)vka_div_up(m, TEXEL_BM);
        push->n_blocks = (uint32_t)vka_div_up(n, TEXEL_BN);
        uint64_t total = (uint64_t)push->m_blocks * push->n_blocks * push->slices;
        if (total > UINT32_MAX)
            return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu invocations", gk->name,
                                (unsigned long long)total);
        push->total = (uint32_t)total;
        vka_plan_groups_2d(ctx, vka_div_up(total, desc.local_size[0]), &gx, &gy);
        gz = 1;
    }
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    return vka_cmd_dispatch(cmd, k, t, gk->num_bindings, push, gx, gy, gz);
}

#define TEXEL VKA_BIND_TEXEL_R32F
#define STORAGE VKA_BIND_STORAGE

/* ---- the ops ------------------------------------------------------------------------ */

uint32_t vka_conv2d_stats_groups(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch)
{
    if (!ctx || !sh || !vka_conv2d_out_h(sh) || !vka_conv2d_out_w(sh)) return 0;
    vka_conv2d_variant v = vka_conv2d_choose(ctx, sh);
    if (!packed_applies(ctx, v, sh, scratch) || vka_switch_off("VKANCHOR_CONV_STATS")) return 0;
    return vka_conv2d_packed_stats_groups(sh);
}

/* The conv passes on cooperative matrices (conv2d_gemm_coop.glsl): 64 x 64 tiles of each
 * pass's GEMM, 128 threads each. */
#define COOP_TILE 64u
/* The coop kernels of the three passes ([pass][emulated]: the fragment operations written out
 * as plain code for the tests) and their bindings: the forward's four, the backward's three
 * and the (sum, max |dy|) pair that scales dy. */
enum coop_pass { COOP_FWD, COOP_BWD_DATA, COOP_BWD_WEIGHT };
static vka_kernel_desc coop_desc(enum coop_pass pass, int emulated)
{
#define COOP_KERNEL(nm) {#nm, vka_spv_##nm, sizeof vka_spv_##nm}
    static const struct { const char *name; const uint32_t *spirv; size_t bytes; } kernels[3][2] = {
        {COOP_KERNEL(conv2d_fwd_coop), COOP_KERNEL(conv2d_fwd_coop_emulated)},
        {COOP_KERNEL(conv2d_bwd_data_coop), COOP_KERNEL(conv2d_bwd_data_coop_emulated)},
        {COOP_KERNEL(conv2d_bwd_weight_coop), COOP_KERNEL(conv2d_bwd_weight_coop_emulated)},
    };
#undef COOP_KERNEL
    return (vka_kernel_desc){
        .name = kernels[pass][emulated].name, .spirv = kernels[pass][emulated].spirv,
        .spirv_bytes = kernels[pass][emulated].bytes, .num_bindings = 4,
        .bindings = {STORAGE, STORAGE, STORAGE, STORAGE}, .push_bytes = sizeof(struct conv2d_push),
        .local_size = {128}, .shared_bytes = VKA_CONV2D_COOP_SHARED_BYTES,
    };
}

/* One coop GEMM: 64 x 64 tiles of M x N, gz workgroup layers (stride phases, slices). */
static vka_result coop_dispatch(vka_cmd *cmd, const vka_conv2d_shape *sh, enum coop_pass pass, int emulated,
                                const struct conv2d_push *push, uint64_t m, uint64_t n, uint32_t gz,
                                const vka_tensor *t)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_kernel_desc desc = coop_desc(pass, emulated);
    uint64_t gx = vka_div_up(n, COOP_TILE), gy = vka_div_up(m, COOP_TILE);
    if (gx > ctx->limits.max_workgroup_count[0] || gy > ctx->limits.max_workgroup_count[1] ||
        gz > ctx->limits.max_workgroup_count[2])
        return bad_call(cmd, desc.name, sh, "%llu x %llu x %u tiles of 64 exceed the device's workgroup counts",
                        (unsigned long long)gx, (unsigned long long)gy, gz);
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    return vka_cmd_dispatch(cmd, k, t, 4, push, (uint32_t)gx, (uint32_t)gy, gz);
}

vka_result vka_conv2d_coop_check(vka_context *ctx)
{
    vka_result rc = VKA_SUCCESS;
    for (int pass = COOP_FWD; pass <= COOP_BWD_WEIGHT && !rc; pass++) {
        vka_kernel_desc desc = coop_desc((enum coop_pass)pass, 0);
        rc = vka_kernel_check(ctx, &desc);
    }
    return rc;
}

/* Which kernels a call runs on cooperative matrices: 0 none, 1 the tensor cores, 2 their
 * emulation (sh->coop == 2: tests); -1 after recording why a required one cannot. The same
 * rule for every pass; the backward (need_region) also needs the scratch's coop region. */
static int coop_mode(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, vka_conv2d_variant v, int need_region,
                     vka_tensor scratch)
{
    vka_context *ctx = vka_cmd_context(cmd);
    int room = !need_region || scratch.size >= scratch_base_bytes(ctx, sh) + coop_region_bytes(ctx);
    if (sh->coop == 2) {
        if (ctx->info.features.shader_float16 && ctx->limits.max_shared_memory_bytes >= VKA_CONV2D_COOP_SHARED_BYTES &&
            room)
            return 2;
        vka_cmd_fail(cmd, VKA_ERROR_UNSUPPORTED, "%s (" SHAPE_FMT "): the emulated coop kernels need fp16 arithmetic, "
                     "%u bytes of shared memory and vka_conv2d_scratch_bytes of scratch", op, SHAPE_ARGS(sh),
                     VKA_CONV2D_COOP_SHARED_BYTES);
        return -1;
    }
    if (sh->coop < 0 || (sh->coop == 0 && v != VKA_CONV2D_TILED)) return 0;
    if (vka_conv2d_coop_ready(ctx) && room) return 1;
    if (sh->coop == 0) return 0;
    vka_cmd_fail(cmd, VKA_ERROR_UNSUPPORTED, "%s (" SHAPE_FMT "): cooperative matrices asked for, but %s does not offer "
                 "VK_NV_cooperative_matrix's 16x8x16 fp16 tiles (or they failed their self-test, or VKANCHOR_COOPMAT=0%s)",
                 op, SHAPE_ARGS(sh), ctx->info.name, need_region ? ", or the scratch lacks the coop region" : "");
    return -1;
}

static vka_result coop_forward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x, vka_tensor w,
                               vka_tensor b, int emulated)
{
    struct conv2d_push push = push_of(sh);
    push.has_bias = vka_tensor_present(b);
    /* Without a bias, binding 2 aliases w; the shader does not read it (has_bias = 0). */
    vka_tensor t[4] = {x, w, push.has_bias ? b : w, y};
    return coop_dispatch(cmd, sh, COOP_FWD, emulated, &push, sh->k, sizes_of(sh).npq, 1, t);
}

/* A given sh->x_shared, checked before the other packed-path flags so that its own misfit is
 * what the error names (a misfit also turns the packed path off: packed_usable). The call's
 * written tensors (named in `written`, NULL-terminated names) must not overlap it: the kernels
 * would read x while this call overwrites it. */
static vka_result check_x_shared(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, int packed,
                                 const char *const *written_names, const vka_tensor *written)
{
    const vka_packed_layout *l = &sh->x_shared;
    if (!vka_tensor_present(l->t)) return VKA_SUCCESS;
    if (sh->x_packed) return bad_call(cmd, op, sh, "x_shared and x_packed both set: x comes from one of them");
    if (!vka_conv2d_packed_x_shared_fits(vka_cmd_context(cmd), sh, l))
        return bad_call(cmd, op, sh, "x_shared (%ux%u in %ux%u, border %u, %u channel vec4) does not hold this x "
                                     "(see vka_conv2d_x_shared_fits)", l->h, l->w, l->hp, l->wp, l->border, l->c4);
    if (!packed) return bad_call(cmd, op, sh, "x_shared, but the packed kernels do not run here");
    for (int i = 0; written_names[i]; i++)
        if (vka_tensor_overlaps(l->t, written[i]))
            return bad_call(cmd, op, sh, "x_shared overlaps %s, which this call writes", written_names[i]);
    return VKA_SUCCESS;
}

/* vka_conv2d_forward, and with stats present vka_conv2d_forward_stats. */
static vka_result forward(vka_cmd *cmd, const char *op, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x,
                          vka_tensor w, vka_tensor b, vka_tensor scratch, vka_tensor stats)
{
    conv2d_sizes z = sh ? sizes_of(sh) : (conv2d_sizes){0};
    vka_tensor scratch_all = scratch; /* check_call trims the operands to their sizes */
    int with_stats = vka_tensor_present(stats);
    uint32_t stats_groups = with_stats ? vka_conv2d_stats_groups(vka_cmd_context(cmd), sh, scratch) : 0;
    tensor_need need[] = {{"y", &y, z.y, 0}, {"x", &x, z.x, x_given_packed(sh)}, {"w", &w, z.w, 0},
                          {"b", &b, sh ? sh->k : 0, 1}, {"scratch", &scratch, sh ? weight_partials(vka_cmd_context(cmd), sh) : 0, 0},
                          {"stats", &stats, sh ? 4ull * sh->k * stats_groups : 0, 1}};
    vka_result rc = check_call(cmd, op, sh, need, 6);
    if (rc) return rc;
    vka_conv2d_variant v = resolve(cmd, op, sh, x_given_packed(sh) ? w : x, w);
    if (!v) return VKA_ERROR_UNSUPPORTED; /* recorded by resolve */
    int packed = packed_applies(vka_cmd_context(cmd), v, sh, scratch_all);
    static const char *const fwd_written[] = {"y", "the scratch", "stats", NULL};
    if ((rc = check_x_shared(cmd, op, sh, packed, fwd_written, (vka_tensor[]){y, scratch_all, stats}))) return rc;
    if (sh->x_packed && !packed)
        return bad_call(cmd, op, sh, "x_packed, but the packed kernels do not run here (see vka_conv2d_x_packed_layout)");
    if (with_stats && (!stats_groups || !packed)) /* packed not: x or w unbindable as texels here */
        return bad_call(cmd, op, sh, "statistics asked for, but the packed kernels do not write them here (see vka_conv2d_stats_groups)");
    if (with_stats && (vka_tensor_overlaps(stats, y) || vka_tensor_overlaps(stats, scratch_all)))
        return bad_call(cmd, op, sh, "stats must not overlap y or the scratch");
    if (packed)
        return vka_op_done(cmd, vka_conv2d_packed_forward(cmd, sh, y, x, w, b, stats, scratch_all,
                                                          packed_base(vka_cmd_context(cmd), sh)));
    int coop = coop_mode(cmd, op, sh, v, 0, scratch_all);
    if (coop < 0) return VKA_ERROR_UNSUPPORTED; /* recorded */
    if (coop) return vka_op_done(cmd, coop_forward(cmd, sh, y, x, w, b, coop == 2));
    struct conv2d_push push = push_of(sh);
    push.has_bias = vka_tensor_present(b);
    static const gemm_kernel gk[2] = {
        {"conv2d_fwd_tiled", VKA_SPIRV(vka_spv_conv2d_fwd_tiled),
         {"conv2d_fwd_tiled_4x8", "conv2d_fwd_tiled_8x4", "conv2d_fwd_tiled_8x8"}, 4, {0}},
        {"conv2d_fwd_texel", VKA_SPIRV(vka_spv_conv2d_fwd_texel), {0}, 4,
         {TEXEL, TEXEL, STORAGE, STORAGE}},
    };
    /* Without a bias, binding 2 aliases w; the shader does not read it (has_bias = 0). */
    vka_tensor t[4] = {x, w, push.has_bias ? b : w, y};
    rc = run_gemm(cmd, sh, &gk[v == VKA_CONV2D_TEXEL], v, &push, sh->k, z.npq, t);
    return vka_op_done(cmd, rc);
}

vka_result vka_conv2d_forward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x, vka_tensor w,
                              vka_tensor b, vka_tensor scratch)
{
    return forward(cmd, "conv2d_forward", sh, y, x, w, b, scratch, (vka_tensor){0});
}

vka_result vka_conv2d_forward_stats(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x,
                                    vka_tensor w, vka_tensor b, vka_tensor scratch, vka_tensor stats)
{
    if (!vka_tensor_present(stats))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "conv2d_forward_stats: no stats tensor");
    return forward(cmd, "conv2d_forward_stats", sh, y, x, w, b, scratch, stats);
}

/* out (rows, cols) = sum over slices of part[j*slice_stride + r*ld + col0 + c], in slice order. */
static vka_result run_reduce(vka_cmd *cmd, vka_tensor out, vka_tensor part, const struct reduce_push *push)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t wg = vka_plan_workgroup_1d(ctx, 64);
    /* The texel variant where the partials fit a texel buffer (the tiled variant's may not). */
    int texel = ctx->info.features.texel_buffer_r32f && texel_bindable(ctx, part);
    vka_kernel_desc desc = {
        .name = "conv2d_bwd_weight_reduce", .num_bindings = 2, .bindings = {texel ? TEXEL : STORAGE, STORAGE},
        .push_bytes = sizeof *push, .local_size = {wg},
    };
    desc.spirv = texel ? vka_spv_conv2d_bwd_weight_reduce_texel : vka_spv_conv2d_bwd_weight_reduce;
    desc.spirv_bytes = texel ? sizeof vka_spv_conv2d_bwd_weight_reduce_texel : sizeof vka_spv_conv2d_bwd_weight_reduce;
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    vka_tensor t[2] = {part, out};
    return vka_dispatch_items(cmd, k, t, 2, push, (uint64_t)push->rows * push->cols);
}

/* dw (K, crs) and db (K, when present) from the partials: slices blocks of K x (crs + 1)
 * floats, the last column db's. Both in one dispatch that reads the blocks as RGBA32F texels
 * where they come in whole texels (K * (crs + 1) % 4 == 0) and fit a texel buffer: ~4x fewer
 * fetches and loop trips than one float per invocation (resnet20's 21 reduces: 4.3-4.7 -> 2.6 ms per
 * step, perf-log 61), the same sums in the same order. Else dw and db one float each. */
static vka_result reduce_weight_and_bias(vka_cmd *cmd, vka_tensor dw, vka_tensor db, vka_tensor part, uint32_t k,
                                         uint32_t crs, uint32_t slices)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t ld = crs + 1, stride = k * ld;
    uint64_t bytes = (uint64_t)slices * stride * 4;
    int has_db = vka_tensor_present(db);
    if (stride % 4 == 0 && ctx->info.features.texel_buffer_rgba32f && bytes <= part.size &&
        bytes / 16 <= ctx->limits.max_texel_buffer_elements &&
        part.offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0 && !vka_switch_off("VKANCHOR_REDUCE_VEC4")) {
        struct reduce4_push push = {stride / 4, ld, crs, slices, stride / 4, (uint32_t)has_db};
        vka_kernel_desc desc = {
            .name = "conv2d_bwd_weight_reduce_vec4", VKA_SPIRV(vka_spv_conv2d_bwd_weight_reduce_vec4),
            .num_bindings = 3, .bindings = {VKA_BIND_TEXEL_RGBA32F, STORAGE, STORAGE}, .push_bytes = sizeof push,
            .local_size = {vka_plan_workgroup_1d(ctx, 64)},
        };
        vka_kernel *kernel;
        vka_result rc = vka_kernel_get(ctx, &desc, &kernel);
        if (rc) return vka_cmd_keep(cmd, rc);
        vka_tensor t[3] = {vka_tensor_slice(part, 0, bytes), dw, has_db ? db : dw};
        return vka_dispatch_items(cmd, kernel, t, 3, &push, push.total4);
    }
    struct reduce_push rw = {k, crs, ld, 0, slices, stride};
    vka_result rc = run_reduce(cmd, dw, part, &rw);
    if (!rc && has_db) {
        struct reduce_push rb = {k, 1, ld, crs, slices, stride};
        rc = run_reduce(cmd, db, part, &rb);
    }
    return rc;
}

/* The tiled and coop input gradients: one GEMM per stride phase (workgroup z, push->slices),
 * over that phase's input positions; the grid covers the largest phase, ceil(H / stride) x
 * ceil(W / stride) per image (*cols). */
static vka_result input_gradient_phases(vka_cmd *cmd, const vka_conv2d_shape *sh, struct conv2d_push *push,
                                        uint64_t *cols)
{
    uint32_t max_z = vka_cmd_context(cmd)->limits.max_workgroup_count[2];
    uint64_t phases = (uint64_t)sh->stride * sh->stride;
    if (phases > max_z)
        return bad_call(cmd, "conv2d_backward", sh, "stride %u: its %llu input-gradient phases exceed the device's %u "
                        "workgroups along z", sh->stride, (unsigned long long)phases, max_z);
    push->slices = (uint32_t)phases;
    *cols = (uint64_t)sh->n * vka_div_up(sh->h, sh->stride) * vka_div_up(sh->w, sh->stride);
    return VKA_SUCCESS;
}

/* The weight gradient's slices for variant v: as many as it wants that its partials hold. */
static uint32_t weight_gradient_slices(const vka_conv2d_shape *sh, vka_conv2d_variant v, vka_tensor partials)
{
    uint64_t fit = partials.size / (4ull * sh->k * (sizes_of(sh).crs + 1)), want = vka_conv2d_weight_slices(sh, v);
    return (uint32_t)(want < fit ? want : fit > 0 ? fit : 1);
}

/* dx by the GEMM kernels (tiled or texel). */
static vka_result backward_data_gemm(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_conv2d_variant v, vka_tensor dx,
                                     vka_tensor dy, vka_tensor w)
{
    conv2d_sizes z = sizes_of(sh);
    struct conv2d_push push = push_of(sh);
    static const gemm_kernel gk[2] = {
        {"conv2d_bwd_data_tiled", VKA_SPIRV(vka_spv_conv2d_bwd_data_tiled),
         {"conv2d_bwd_data_tiled_4x8", "conv2d_bwd_data_tiled_8x4", "conv2d_bwd_data_tiled_8x8"},
         3, {0}},
        {"conv2d_bwd_data_texel", VKA_SPIRV(vka_spv_conv2d_bwd_data_texel), {0}, 3,
         {TEXEL, TEXEL, STORAGE}},
    };
    vka_tensor t[3] = {dy, w, dx};
    uint64_t cols = z.x / sh->c;
    if (v == VKA_CONV2D_TILED) {
        vka_result rc = input_gradient_phases(cmd, sh, &push, &cols);
        if (rc) return rc;
    }
    return run_gemm(cmd, sh, &gk[v == VKA_CONV2D_TEXEL], v, &push, sh->c, cols, t);
}

/* The weight-gradient partials by the GEMM kernels; returns the slices in *slices. */
static vka_result backward_weight_gemm(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_conv2d_variant v,
                                       vka_tensor partials, vka_tensor dy, vka_tensor x, uint32_t *slices)
{
    conv2d_sizes z = sizes_of(sh);
    struct conv2d_push push = push_of(sh);
    /* As many of the variant's slices as the partials hold (fewer for the tiled kernels on CPU devices). */
    push.slices = *slices = weight_gradient_slices(sh, v, partials);
    static const gemm_kernel gk[2] = {
        {"conv2d_bwd_weight_tiled", VKA_SPIRV(vka_spv_conv2d_bwd_weight_tiled),
         {"conv2d_bwd_weight_tiled_4x8", "conv2d_bwd_weight_tiled_8x4", "conv2d_bwd_weight_tiled_8x8"}, 3, {0}},
        {"conv2d_bwd_weight_texel", VKA_SPIRV(vka_spv_conv2d_bwd_weight_texel), {0}, 3,
         {TEXEL, TEXEL, STORAGE}},
    };
    vka_tensor t[3] = {dy, x, partials};
    return run_gemm(cmd, sh, &gk[v == VKA_CONV2D_TEXEL], v, &push, sh->k, z.crs + 1, t);
}

/* The input and weight gradients on the coop kernels: max |dy| first (it scales dy into
 * fp16's range), then the same GEMMs as the tiled kernels'. */
static vka_result coop_backward(vka_cmd *cmd, const vka_conv2d_shape *sh, int emulated, vka_tensor dx,
                                vka_tensor partials, vka_tensor dy, vka_tensor x, vka_tensor w, vka_tensor scratch,
                                uint32_t *slices)
{
    vka_context *ctx = vka_cmd_context(cmd);
    conv2d_sizes z = sizes_of(sh);
    uint64_t base = scratch_base_bytes(ctx, sh);
    vka_tensor dymax = vka_tensor_slice(scratch, base, 8);
    vka_tensor reduce_scratch = vka_tensor_slice(scratch, base + 256, vka_reduce_scratch_bytes(ctx, 1));
    vka_result rc = vka_reduce_sum_absmax(cmd, dymax, dy, z.y, reduce_scratch);
    if (rc) return rc;
    if (vka_tensor_present(dx)) {
        struct conv2d_push push = push_of(sh);
        uint64_t cols;
        if ((rc = input_gradient_phases(cmd, sh, &push, &cols))) return rc;
        vka_tensor t[4] = {dy, w, dx, dymax};
        rc = coop_dispatch(cmd, sh, COOP_BWD_DATA, emulated, &push, sh->c, cols, push.slices, t);
        if (rc) return rc;
    }
    if (vka_tensor_present(partials)) {
        struct conv2d_push push = push_of(sh);
        push.slices = *slices = weight_gradient_slices(sh, VKA_CONV2D_TILED, partials);
        vka_tensor t[4] = {dy, x, partials, dymax};
        rc = coop_dispatch(cmd, sh, COOP_BWD_WEIGHT, emulated, &push, sh->k, z.crs + 1, push.slices, t);
    }
    return rc;
}

vka_result vka_conv2d_backward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor dw, vka_tensor db,
                               vka_tensor dy, vka_tensor x, vka_tensor w, vka_tensor scratch)
{
    const char *op = "conv2d_backward";
    vka_context *ctx = vka_cmd_context(cmd);
    conv2d_sizes z = sh ? sizes_of(sh) : (conv2d_sizes){0};
    uint64_t partials = sh ? weight_partials(ctx, sh) : 0;
    int want_dx = vka_tensor_present(dx), want_w = vka_tensor_present(dw);
    vka_tensor scratch_all = scratch; /* check_call trims the operands to their sizes */
    tensor_need need[] = {{"dx", &dx, z.x, 1}, {"dw", &dw, z.w, 1}, {"db", &db, sh ? sh->k : 0, 1},
                          {"dy", &dy, z.y, sh && sh->dy_packed}, {"x", &x, z.x, !want_w || x_given_packed(sh)}, {"w", &w, z.w, !want_dx},
                          {"scratch", &scratch, partials, 0}};
    vka_result rc = check_call(cmd, op, sh, need, 7);
    if (rc) return rc;
    if (!want_dx && !want_w) return bad_call(cmd, op, sh, "neither dx nor dw given: nothing to compute");
    if (vka_tensor_present(db) && !want_w) return bad_call(cmd, op, sh, "db needs dw (one pass computes both)");
    if (scratch.offset % ctx->info.limits.min_storage_buffer_offset_alignment)
        return bad_call(cmd, op, sh, "scratch offset %llu is not aligned for a storage binding",
                        (unsigned long long)scratch.offset);
    vka_tensor xt = want_w && !x_given_packed(sh) ? x : w; /* a tensor that is there, for the binding checks */
    vka_tensor first = sh->dy_packed ? xt : dy;
    vka_conv2d_variant v = resolve(cmd, op, sh, first, xt);
    if (v && want_dx && want_w) v = resolve(cmd, op, sh, first, w);
    if (!v) return VKA_ERROR_UNSUPPORTED; /* recorded by resolve */
    uint32_t slices = 1;
    int packed = packed_applies(ctx, v, sh, scratch_all);
    static const char *const bwd_written[] = {"dx", "dw", "db", "the scratch", NULL};
    if ((rc = check_x_shared(cmd, op, sh, packed, bwd_written, (vka_tensor[]){dx, dw, db, scratch_all}))) return rc;
    if (sh->dy_packed && !packed)
        return bad_call(cmd, op, sh, "dy_packed, but the packed kernels do not run here (see vka_conv2d_dy_packed_layout)");
    if (sh->x_packed && !packed)
        return bad_call(cmd, op, sh, "x_packed, but the packed kernels do not run here (see vka_conv2d_x_packed_layout)");
    if ((sh->dx_skip_empty_phases || sh->dx_accumulate) && !packed)
        return bad_call(cmd, op, sh, "dx_skip_empty_phases / dx_accumulate, but the packed kernels do not run here "
                                     "(see vka_conv2d_dx_tap_phases)");
    if (sh->dx_accumulate && (sh->stride > 2 || sh->dx_accumulate >> (sh->stride * sh->stride)))
        return bad_call(cmd, op, sh, "dx_accumulate 0x%x names phases a stride of %u does not have", sh->dx_accumulate,
                        sh->stride);
    if (packed) {
        /* One packed copy of dy serves both gradients. */
        slices = vka_conv2d_packed_groups(sh);
        rc = vka_conv2d_packed_backward(cmd, sh, dx, want_w ? scratch : (vka_tensor){0}, vka_tensor_present(db), dy,
                                        x, w, scratch_all, packed_base(ctx, sh));
    } else {
        int coop = coop_mode(cmd, op, sh, v, 1, scratch_all);
        if (coop < 0) return VKA_ERROR_UNSUPPORTED; /* recorded */
        if (coop) {
            rc = coop_backward(cmd, sh, coop == 2, dx, want_w ? scratch : (vka_tensor){0}, dy, x, w, scratch_all,
                               &slices);
        } else {
            if (want_dx) rc = backward_data_gemm(cmd, sh, v, dx, dy, w);
            if (!rc && want_w) rc = backward_weight_gemm(cmd, sh, v, scratch, dy, x, &slices);
        }
    }
    if (rc || !want_w) return vka_op_done(cmd, rc);
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* partials written -> the slice sums read them */
    return vka_op_done(cmd, reduce_weight_and_bias(cmd, dw, db, scratch, sh->k, (uint32_t)z.crs, slices));
}

vka_result vka_conv2d_backward_data(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor dy,
                                    vka_tensor w, vka_tensor scratch)
{
    if (!vka_tensor_present(dx)) /* absent dx would mean "weights only" to vka_conv2d_backward */
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "conv2d_backward_data: no dx");
    return vka_conv2d_backward(cmd, sh, dx, (vka_tensor){0}, (vka_tensor){0}, dy, (vka_tensor){0}, w, scratch);
}

vka_result vka_conv2d_backward_weight(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dw, vka_tensor db,
                                      vka_tensor dy, vka_tensor x, vka_tensor scratch)
{
    if (!vka_tensor_present(dw))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "conv2d_backward_weight: no dw");
    return vka_conv2d_backward(cmd, sh, (vka_tensor){0}, dw, db, dy, x, (vka_tensor){0}, scratch);
}
