/* conv2d: forward, input gradient and weight/bias gradient as implicit GEMMs, each
 * with a shared-memory tiled kernel (GPUs) and a texel-buffer register-blocked kernel
 * (lavapipe), chosen from device properties like vka_matmul_choose. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/ops_internal.h"

#include "conv2d_bwd_data_texel.spv.h"
#include "conv2d_bwd_data_tiled.spv.h"
#include "conv2d_bwd_weight_reduce.spv.h"
#include "conv2d_bwd_weight_row.spv.h"
#include "conv2d_bwd_weight_texel.spv.h"
#include "conv2d_bwd_weight_tiled.spv.h"
#include "conv2d_fwd_texel.spv.h"
#include "conv2d_fwd_tiled.spv.h"
#include "conv2d_pack.spv.h"
#include "conv2d_row.spv.h"
#include "conv2d_row_vec4.spv.h"

enum conv2d_slot {
    SLOT_FWD_TILED = VKA_SLOT_BASE_CONV,
    SLOT_FWD_TEXEL,
    SLOT_BWD_DATA_TILED,
    SLOT_BWD_DATA_TEXEL,
    SLOT_BWD_WEIGHT_TILED,
    SLOT_BWD_WEIGHT_TEXEL,
    SLOT_BWD_WEIGHT_REDUCE,
    SLOT_FWD_ROW,        /* conv2d_row.comp: the same SPIR-V under a name per pass (per-pass timings) */
    SLOT_FWD_ROW_VEC4,
    SLOT_BWD_DATA_ROW,
    SLOT_BWD_DATA_ROW_VEC4,
    SLOT_BWD_WEIGHT_ROW,
    SLOT_PACK,
    SLOT_END,
};
_Static_assert(SLOT_END <= VKA_SLOT_BASE_CONV + 32, "conv2d owns slots 16..47");

struct conv2d_push {
    uint32_t n, c, h, w;
    uint32_t k, r, s;
    uint32_t stride, pad;
    uint32_t p, q;
    uint32_t has_bias, slices, m_blocks, n_blocks, total;
};
_Static_assert(sizeof(struct conv2d_push) == 64, "mirror of shaders/include/conv2d_push.glsl");

struct reduce_push {
    uint32_t rows, cols, ld, col0, slices, slice_stride;
};
_Static_assert(sizeof(struct reduce_push) == 24, "mirror of Push in shaders/conv2d_bwd_weight_reduce.comp");

/* Push block of shaders/conv2d_row.comp (stride-1, 3-wide kernels on lavapipe). */
struct row_push {
    uint32_t cin, hin, win, cout, hout, wout, taps_r;
    int32_t pad_h, pad_w, w_o, w_i, w_tap0, w_r, w_s;
    uint32_t has_bias, q_blocks, k_blocks, total;
};
_Static_assert(sizeof(struct row_push) == 72, "mirror of Push in shaders/conv2d_row.comp");
#define ROW_RQ 14      /* must match RQ, KB in shaders/lists/conv2d.cmake */
#define ROW_KB 8
#define ROW_VEC4_RQ 16
#define ROW_VEC4_KB 8

/* Push blocks of shaders/conv2d_bwd_weight_row.comp and conv2d_pack.comp. */
struct wrow_push {
    uint32_t n, c, k, r, p, q, hp, wp, c4, k4;
    uint32_t has_bias, groups, k_blocks, total;
};
_Static_assert(sizeof(struct wrow_push) == 56, "mirror of Push in shaders/conv2d_bwd_weight_row.comp");
struct pack_push {
    uint32_t n, c, h, w, pad, c4, hp, wp, total;
};
_Static_assert(sizeof(struct pack_push) == 36, "mirror of Push in shaders/conv2d_pack.comp");
#define WROW_KV 2      /* vec4 of output channels per invocation: KV in shaders/lists/conv2d.cmake */
/* Image groups of the row weight gradient: enough invocations for both cores (about this many) ... */
#define WROW_LANES 4096u
/* ... while the partials stay under this many floats. */
#define WROW_PARTIALS (1u << 22)

#define TILED_TK 16
#define TILED_RM 4    /* must match RM, RN in shaders/include/conv2d_gemm_tiled.glsl */
#define TILED_RN 4
#define TEXEL_WG 8    /* lavapipe's SIMD width */
#define TEXEL_BM 8    /* must match BM, BN in the TEXEL branches of the shaders */
#define TEXEL_BN 8

/* Weight gradient split: at most this many slices of output rows (n, p) ... */
#define MAX_SLICES 64u
/* ... while slices * K * (C*R*S+1) partials stay under this (scratch and parallelism) ... */
#define SLICE_PARTIALS (1u << 18)
/* ... and each slice reduces over at least this many output positions. */
#define MIN_SLICE_POSITIONS 64u

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

static uint32_t weight_slices(const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t s = MAX_SLICES, cols = (uint64_t)sh->k * (z.crs + 1);
    uint64_t by_partials = SLICE_PARTIALS / (cols ? cols : 1), by_length = z.npq / MIN_SLICE_POSITIONS;
    if (s > z.np) s = z.np;
    if (s > by_partials) s = by_partials;
    if (s > by_length) s = by_length;
    return s ? (uint32_t)s : 1;
}

/* Image groups of the row weight gradient (texel variant, stride 1, S = 3). */
static uint32_t wrow_groups(const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t lanes = vka_div_up(vka_div_up(sh->k, 4), WROW_KV) * vka_div_up(sh->c, 4) * sh->r;
    uint64_t g = vka_div_up(WROW_LANES, lanes ? lanes : 1), cols = (uint64_t)sh->k * (z.crs + 1);
    uint64_t by_partials = WROW_PARTIALS / (cols ? cols : 1);
    if (g > by_partials) g = by_partials;
    if (g > sh->n) g = sh->n;
    return g ? (uint32_t)g : 1;
}

/* Partials of the weight gradient: enough for either kernel (the scratch does not depend on the variant). */
static uint64_t weight_partials(const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    uint64_t slices = weight_slices(sh), groups = wrow_groups(sh);
    return (slices > groups ? slices : groups) * sh->k * (z.crs + 1);
}

static uint64_t round256(uint64_t b) { return (b + 255) / 256 * 256; }

/* The row weight gradient (stride 1, S = 3: see row_applies) also keeps channels-packed
 * copies of x (zero border) and dy in the scratch, after the partials: their byte offsets. */
typedef struct wrow_layout {
    uint64_t xp_offset, xp_bytes, dyp_offset, dyp_bytes, end;
} wrow_layout;

static wrow_layout wrow_layout_of(const vka_conv2d_shape *sh)
{
    conv2d_sizes z = sizes_of(sh);
    wrow_layout l;
    l.xp_offset = round256(weight_partials(sh) * 4);
    l.xp_bytes = (uint64_t)sh->n * (sh->h + 2ull * sh->pad) * (sh->w + 2ull * sh->pad) * vka_div_up(sh->c, 4) * 16;
    l.dyp_offset = l.xp_offset + round256(l.xp_bytes);
    l.dyp_bytes = z.npq * vka_div_up(sh->k, 4) * 16;
    l.end = l.dyp_offset + round256(l.dyp_bytes);
    return l;
}

static int row_shape(const vka_conv2d_shape *sh) { return sh->stride == 1 && sh->s == 3; }

uint64_t vka_conv2d_weight_scratch_bytes(const vka_context *ctx, const vka_conv2d_shape *sh)
{
    uint64_t bytes = weight_partials(sh) * 4;
    /* Room for the packed copies on CPU devices (where the texel variant runs), whatever the variant. */
    if (ctx && ctx->info.type == VKA_DEVICE_CPU && row_shape(sh)) bytes = wrow_layout_of(sh).end;
    return bytes ? (bytes + 255) / 256 * 256 : 256;
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
    conv2d_sizes z = sizes_of(sh);
    /* Largest 32-bit index expressions in the shaders: tensor elements, partials, pad offsets. */
    uint64_t partials = weight_partials(sh);
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

static struct conv2d_push push_of(const vka_conv2d_shape *sh)
{
    return (struct conv2d_push){
        .n = sh->n, .c = sh->c, .h = sh->h, .w = sh->w, .k = sh->k, .r = sh->r, .s = sh->s,
        .stride = sh->stride, .pad = sh->pad, .p = vka_conv2d_out_h(sh), .q = vka_conv2d_out_w(sh),
        .slices = 1,
    };
}

/* One GEMM kernel, M x N outputs (x slices), in either variant. */
typedef struct gemm_kernel {
    const char *name;
    const uint32_t *spirv;
    size_t spirv_bytes;
    uint32_t slot;
    uint32_t num_bindings;
    vka_binding_kind bindings[VKA_MAX_BINDINGS];
} gemm_kernel;

static vka_result run_gemm(vka_cmd *cmd, const gemm_kernel *gk, vka_conv2d_variant v, struct conv2d_push *push,
                           uint64_t m, uint64_t n, const vka_tensor *t)
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
        uint32_t tx = 16, ty = ctx->limits.max_workgroup_invocations >= 256 ? 16 : 8;
        uint32_t tm = ty * TILED_RM, tn = tx * TILED_RN;
        desc.local_size[0] = tx;
        desc.local_size[1] = ty;
        desc.shared_bytes = TILED_TK * (tm + tn) * 4;
        desc.num_spec = 1;
        desc.spec[0] = TILED_TK;
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
    vka_result rc = vka_kernel_cached(ctx, gk->slot, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    return vka_cmd_dispatch(cmd, k, t, gk->num_bindings, push, gx, gy, gz);
}

#define TEXEL VKA_BIND_TEXEL_R32F
#define STORAGE VKA_BIND_STORAGE

/* ---- the row kernel (lavapipe, stride 1, S = 3) -------------------------------------- */

/* The row kernel serves the TEXEL forward and input gradient of stride-1 convolutions with
 * 3-wide kernels; VKANCHOR_CONV_ROW=0 turns it off (A/B measurements, tests of the GEMM). */
static int row_applies(const vka_conv2d_shape *sh)
{
    const char *env = getenv("VKANCHOR_CONV_ROW");
    if (env && strcmp(env, "0") == 0) return 0;
    return sh->stride == 1 && sh->s == 3;
}

/* out (N, cout, hout, wout) = conv of in (N, cin, hin, win) as described in conv2d_row.comp. */
static vka_result run_row(vka_cmd *cmd, int bwd, struct row_push *push, uint32_t n, vka_tensor out, vka_tensor in,
                          vka_tensor w, vka_tensor bias)
{
    vka_context *ctx = vka_cmd_context(cmd);
    /* RGBA32F texels of 4 columns: whole texels per row, the column shift of pad 1 built in. */
    int vec4 = ctx->info.features.texel_buffer_rgba32f && push->win % 4 == 0 && push->pad_w == 1 &&
               in.size / 16 <= ctx->limits.max_texel_buffer_elements &&
               in.offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0;
    uint32_t rq = vec4 ? ROW_VEC4_RQ : ROW_RQ, kb = vec4 ? ROW_VEC4_KB : ROW_KB;
    vka_kernel_desc desc = {
        .name = bwd ? (vec4 ? "conv2d_bwd_data_row_vec4" : "conv2d_bwd_data_row")
                    : (vec4 ? "conv2d_fwd_row_vec4" : "conv2d_fwd_row"),
        .spirv = vec4 ? vka_spv_conv2d_row_vec4 : vka_spv_conv2d_row,
        .spirv_bytes = vec4 ? sizeof vka_spv_conv2d_row_vec4 : sizeof vka_spv_conv2d_row,
        .num_bindings = 4,
        .bindings = {vec4 ? VKA_BIND_TEXEL_RGBA32F : VKA_BIND_TEXEL_R32F, VKA_BIND_TEXEL_R32F, VKA_BIND_STORAGE,
                     VKA_BIND_STORAGE},
        .push_bytes = sizeof *push, .local_size = {vka_plan_workgroup_1d(ctx, TEXEL_WG)},
    };
    push->q_blocks = (uint32_t)vka_div_up(push->wout, rq);
    push->k_blocks = (uint32_t)vka_div_up(push->cout, kb);
    uint64_t total = (uint64_t)n * push->hout * push->q_blocks * push->k_blocks;
    if (total > UINT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu invocations", desc.name,
                            (unsigned long long)total);
    push->total = (uint32_t)total;
    vka_kernel *k;
    vka_result rc = vka_kernel_cached(ctx, (bwd ? SLOT_BWD_DATA_ROW : SLOT_FWD_ROW) + (uint32_t)vec4, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    uint32_t gx, gy;
    vka_plan_groups_2d(ctx, vka_div_up(total, desc.local_size[0]), &gx, &gy);
    /* Without a bias, binding 2 aliases w; the shader does not read it (has_bias = 0). */
    vka_tensor t[4] = {in, w, push->has_bias ? bias : w, out};
    return vka_cmd_dispatch(cmd, k, t, 4, push, gx, gy, 1);
}

/* ---- the ops ------------------------------------------------------------------------ */

vka_result vka_conv2d_forward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x, vka_tensor w,
                              vka_tensor b)
{
    const char *op = "conv2d_forward";
    conv2d_sizes z = sh ? sizes_of(sh) : (conv2d_sizes){0};
    tensor_need need[] = {{"y", &y, z.y, 0}, {"x", &x, z.x, 0}, {"w", &w, z.w, 0}, {"b", &b, sh ? sh->k : 0, 1}};
    vka_result rc = check_call(cmd, op, sh, need, 4);
    if (rc) return rc;
    vka_conv2d_variant v = resolve(cmd, op, sh, x, w);
    if (!v) return VKA_ERROR_UNSUPPORTED; /* recorded by resolve */
    if (v == VKA_CONV2D_TEXEL && row_applies(sh)) {
        struct row_push rp = {
            .cin = sh->c, .hin = sh->h, .win = sh->w, .cout = sh->k, .hout = z.p, .wout = z.q, .taps_r = sh->r,
            .pad_h = (int32_t)sh->pad, .pad_w = (int32_t)sh->pad, .w_o = (int32_t)z.crs,
            .w_i = (int32_t)(sh->r * sh->s), .w_tap0 = 0, .w_r = (int32_t)sh->s, .w_s = 1,
            .has_bias = vka_tensor_present(b),
        };
        return vka_op_done(cmd, run_row(cmd, 0, &rp, sh->n, y, x, w, b));
    }
    struct conv2d_push push = push_of(sh);
    push.has_bias = vka_tensor_present(b);
    static const gemm_kernel gk[2] = {
        {"conv2d_fwd_tiled", VKA_SPIRV(vka_spv_conv2d_fwd_tiled), SLOT_FWD_TILED, 4, {0}},
        {"conv2d_fwd_texel", VKA_SPIRV(vka_spv_conv2d_fwd_texel), SLOT_FWD_TEXEL, 4, {TEXEL, TEXEL, STORAGE, STORAGE}},
    };
    /* Without a bias, binding 2 aliases w; the shader does not read it (has_bias = 0). */
    vka_tensor t[4] = {x, w, push.has_bias ? b : w, y};
    rc = run_gemm(cmd, &gk[v == VKA_CONV2D_TEXEL], v, &push, sh->k, z.npq, t);
    return vka_op_done(cmd, rc);
}

vka_result vka_conv2d_backward_data(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor dy,
                                    vka_tensor w)
{
    const char *op = "conv2d_backward_data";
    conv2d_sizes z = sh ? sizes_of(sh) : (conv2d_sizes){0};
    tensor_need need[] = {{"dx", &dx, z.x, 0}, {"dy", &dy, z.y, 0}, {"w", &w, z.w, 0}};
    vka_result rc = check_call(cmd, op, sh, need, 3);
    if (rc) return rc;
    vka_conv2d_variant v = resolve(cmd, op, sh, dy, w);
    if (!v) return VKA_ERROR_UNSUPPORTED; /* recorded by resolve */
    if (v == VKA_CONV2D_TEXEL && row_applies(sh)) {
        /* A stride-1 conv of dy with the flipped, transposed weights: w[k][c][R-1-r][S-1-s]. */
        uint32_t rs = sh->r * sh->s;
        struct row_push rp = {
            .cin = sh->k, .hin = z.p, .win = z.q, .cout = sh->c, .hout = sh->h, .wout = sh->w, .taps_r = sh->r,
            .pad_h = (int32_t)sh->r - 1 - (int32_t)sh->pad, .pad_w = (int32_t)sh->s - 1 - (int32_t)sh->pad,
            .w_o = (int32_t)rs, .w_i = (int32_t)z.crs, .w_tap0 = (int32_t)rs - 1, .w_r = -(int32_t)sh->s, .w_s = -1,
        };
        return vka_op_done(cmd, run_row(cmd, 1, &rp, sh->n, dx, dy, w, (vka_tensor){0}));
    }
    struct conv2d_push push = push_of(sh);
    static const gemm_kernel gk[2] = {
        {"conv2d_bwd_data_tiled", VKA_SPIRV(vka_spv_conv2d_bwd_data_tiled), SLOT_BWD_DATA_TILED, 3, {0}},
        {"conv2d_bwd_data_texel", VKA_SPIRV(vka_spv_conv2d_bwd_data_texel), SLOT_BWD_DATA_TEXEL, 3,
         {TEXEL, TEXEL, STORAGE}},
    };
    vka_tensor t[3] = {dy, w, dx};
    rc = run_gemm(cmd, &gk[v == VKA_CONV2D_TEXEL], v, &push, sh->c, z.x / sh->c, t);
    return vka_op_done(cmd, rc);
}

/* dst [N][hp][wp][c4] vec4 = src (N,C,H,W) channels-packed with a zero border (conv2d_pack.comp);
 * push->total = N*hp*wp positions. */
static vka_result run_pack(vka_cmd *cmd, vka_tensor dst, vka_tensor src, struct pack_push *push)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_kernel_desc desc = {
        .name = "conv2d_pack", VKA_SPIRV(vka_spv_conv2d_pack), .num_bindings = 2, .bindings = {TEXEL, STORAGE},
        .push_bytes = sizeof *push, .local_size = {vka_plan_workgroup_1d(ctx, 64)},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_cached(ctx, SLOT_PACK, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    uint32_t gx, gy;
    vka_plan_groups_2d(ctx, vka_div_up(push->total, desc.local_size[0]), &gx, &gy);
    vka_tensor t[2] = {src, dst};
    return vka_cmd_dispatch(cmd, k, t, 2, push, gx, gy, 1);
}

/* out (rows, cols) = sum over slices of part[j*slice_stride + r*ld + col0 + c], in slice order. */
static vka_result run_reduce(vka_cmd *cmd, vka_tensor out, vka_tensor part, const struct reduce_push *push)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint32_t wg = vka_plan_workgroup_1d(ctx, 64);
    vka_kernel_desc desc = {
        .name = "conv2d_bwd_weight_reduce", VKA_SPIRV(vka_spv_conv2d_bwd_weight_reduce),
        .num_bindings = 2, .bindings = {STORAGE, STORAGE}, .push_bytes = sizeof *push, .local_size = {wg},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_cached(ctx, SLOT_BWD_WEIGHT_REDUCE, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    uint32_t gx, gy;
    vka_plan_groups_2d(ctx, vka_div_up((uint64_t)push->rows * push->cols, wg), &gx, &gy);
    vka_tensor t[2] = {part, out};
    return vka_cmd_dispatch(cmd, k, t, 2, push, gx, gy, 1);
}

vka_result vka_conv2d_backward_weight(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dw, vka_tensor db,
                                      vka_tensor dy, vka_tensor x, vka_tensor scratch)
{
    const char *op = "conv2d_backward_weight";
    vka_context *ctx = vka_cmd_context(cmd);
    conv2d_sizes z = sh ? sizes_of(sh) : (conv2d_sizes){0};
    uint32_t slices = sh ? weight_slices(sh) : 1;
    uint64_t partials = sh ? weight_partials(sh) : 0;
    tensor_need need[] = {{"dw", &dw, z.w, 0}, {"db", &db, sh ? sh->k : 0, 1}, {"dy", &dy, z.y, 0},
                          {"x", &x, z.x, 0}, {"scratch", &scratch, partials, 0}};
    vka_tensor scratch_all = scratch; /* check_call trims scratch to the partials */
    vka_result rc = check_call(cmd, op, sh, need, 5);
    if (rc) return rc;
    if (scratch.offset % ctx->info.limits.min_storage_buffer_offset_alignment)
        return bad_call(cmd, op, sh, "scratch offset %llu is not aligned for a storage binding",
                        (unsigned long long)scratch.offset);
    vka_conv2d_variant v = resolve(cmd, op, sh, dy, x);
    if (!v) return VKA_ERROR_UNSUPPORTED; /* recorded by resolve */
    uint32_t ld = (uint32_t)z.crs + 1, stride = sh->k * ld;
    wrow_layout wl = wrow_layout_of(sh);
    vka_tensor xp = {0}, dyp = {0};
    int packed = v == VKA_CONV2D_TEXEL && row_applies(sh) && ctx->info.features.texel_buffer_rgba32f &&
                 scratch_all.size >= wl.end;
    if (packed) {
        xp = vka_tensor_slice(scratch_all, wl.xp_offset, wl.xp_bytes);
        dyp = vka_tensor_slice(scratch_all, wl.dyp_offset, wl.dyp_bytes);
        packed = wl.xp_bytes / 16 <= ctx->limits.max_texel_buffer_elements &&
                 wl.dyp_bytes / 16 <= ctx->limits.max_texel_buffer_elements &&
                 xp.offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0 &&
                 dyp.offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0 &&
                 xp.offset % ctx->info.limits.min_storage_buffer_offset_alignment == 0 &&
                 dyp.offset % ctx->info.limits.min_storage_buffer_offset_alignment == 0;
    }
    if (packed) {
        slices = wrow_groups(sh);
        uint32_t c4 = (uint32_t)vka_div_up(sh->c, 4), k4 = (uint32_t)vka_div_up(sh->k, 4);
        struct pack_push px = {sh->n, sh->c, sh->h, sh->w, sh->pad, c4, sh->h + 2 * sh->pad, sh->w + 2 * sh->pad,
                               (uint32_t)(wl.xp_bytes / 16 / c4)};
        struct pack_push pd = {sh->n, sh->k, z.p, z.q, 0, k4, z.p, z.q, (uint32_t)(wl.dyp_bytes / 16 / k4)};
        rc = run_pack(cmd, xp, x, &px);
        if (!rc) rc = run_pack(cmd, dyp, dy, &pd);
        if (rc) return vka_op_done(cmd, rc);
        vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* packed copies written -> read */
        struct wrow_push wp = {
            .n = sh->n, .c = sh->c, .k = sh->k, .r = sh->r, .p = z.p, .q = z.q, .hp = px.hp, .wp = px.wp,
            .c4 = c4, .k4 = k4, .has_bias = vka_tensor_present(db), .groups = slices,
            .k_blocks = (uint32_t)vka_div_up(k4, WROW_KV),
        };
        uint64_t total = (uint64_t)slices * sh->r * c4 * wp.k_blocks;
        if (total > UINT32_MAX)
            return vka_op_done(cmd, vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu invocations", op,
                                                 (unsigned long long)total));
        wp.total = (uint32_t)total;
        vka_kernel_desc desc = {
            .name = "conv2d_bwd_weight_row", VKA_SPIRV(vka_spv_conv2d_bwd_weight_row),
            .num_bindings = 3, .bindings = {VKA_BIND_TEXEL_RGBA32F, VKA_BIND_TEXEL_RGBA32F, STORAGE},
            .push_bytes = sizeof wp, .local_size = {vka_plan_workgroup_1d(ctx, TEXEL_WG)},
        };
        vka_kernel *k;
        rc = vka_kernel_cached(ctx, SLOT_BWD_WEIGHT_ROW, &desc, &k);
        if (rc) return vka_op_done(cmd, vka_cmd_keep(cmd, rc));
        uint32_t gx, gy;
        vka_plan_groups_2d(ctx, vka_div_up(total, desc.local_size[0]), &gx, &gy);
        vka_tensor t[3] = {dyp, xp, vka_tensor_slice(scratch, 0, weight_partials(sh) * 4)};
        rc = vka_cmd_dispatch(cmd, k, t, 3, &wp, gx, gy, 1);
    } else {
    struct conv2d_push push = push_of(sh);
    push.slices = slices;
    static const gemm_kernel gk[2] = {
        {"conv2d_bwd_weight_tiled", VKA_SPIRV(vka_spv_conv2d_bwd_weight_tiled), SLOT_BWD_WEIGHT_TILED, 3, {0}},
        {"conv2d_bwd_weight_texel", VKA_SPIRV(vka_spv_conv2d_bwd_weight_texel), SLOT_BWD_WEIGHT_TEXEL, 3,
         {TEXEL, TEXEL, STORAGE}},
    };
    vka_tensor t[3] = {dy, x, scratch};
    rc = run_gemm(cmd, &gk[v == VKA_CONV2D_TEXEL], v, &push, sh->k, z.crs + 1, t);
    }
    if (rc) return vka_op_done(cmd, rc);
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* partials written -> the slice sums read them */
    struct reduce_push rw = {sh->k, (uint32_t)z.crs, ld, 0, slices, stride};
    rc = run_reduce(cmd, dw, scratch, &rw);
    if (!rc && vka_tensor_present(db)) {
        struct reduce_push rb = {sh->k, 1, ld, (uint32_t)z.crs, slices, stride};
        rc = run_reduce(cmd, db, scratch, &rb);
    }
    return vka_op_done(cmd, rc);
}
