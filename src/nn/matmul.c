/* C = op(A) op(B): a shared-memory tiled kernel for GPUs and a texel-buffer,
 * register-blocked kernel for CPU devices, chosen from device properties. */
#include <stdlib.h>
#include <string.h>

#include "nn/ops_internal.h"

#include "matmul_texel.spv.h"
#include "matmul_texel_vec4.spv.h"
#include "matmul_tiled.spv.h"

struct matmul_push {
    uint32_t M, N, K;
    uint32_t a_rs, a_cs, b_rs, b_cs;
    uint32_t row_blocks, total_blocks;
};
_Static_assert(sizeof(struct matmul_push) == 36, "mirror of shaders/include/matmul_push.glsl");

#define TILED_TK 16
#define TILED_RM 4   /* must match RM, RN in matmul_tiled.comp */
#define TILED_RN 4
#define TEXEL_WG 8   /* lavapipe's SIMD width */
#define TEXEL_BM 8

static int texel_fits(const vka_context *ctx, vka_tensor t, uint32_t texel_bytes)
{
    return t.size / texel_bytes <= ctx->limits.max_texel_buffer_elements &&
           t.offset % ctx->info.limits.min_texel_buffer_offset_alignment == 0;
}

static int vec4_fits(const vka_context *ctx, const vka_matmul_desc *d, vka_tensor a, vka_tensor b)
{
    return ctx->info.features.texel_buffer_rgba32f && !d->trans_a && !d->trans_b && d->k % 4 == 0 &&
           d->n % 4 == 0 && texel_fits(ctx, a, 16) && texel_fits(ctx, b, 16);
}

static int texel_possible(const vka_context *ctx, vka_tensor a, vka_tensor b)
{
    return ctx->info.features.texel_buffer_r32f && texel_fits(ctx, a, 4) && texel_fits(ctx, b, 4);
}

vka_matmul_variant vka_matmul_choose(const vka_context *ctx, const vka_matmul_desc *d, vka_tensor a, vka_tensor b)
{
    vka_matmul_variant v = d->variant;
    if (v == VKA_MATMUL_AUTO) {
        const char *env = getenv("VKANCHOR_MATMUL");
        if (env && strcmp(env, "tiled") == 0) v = VKA_MATMUL_TILED;
        else if (env && strcmp(env, "texel") == 0) v = VKA_MATMUL_TEXEL;
        else v = ctx->info.type == VKA_DEVICE_CPU ? VKA_MATMUL_TEXEL : VKA_MATMUL_TILED;
        if (v == VKA_MATMUL_TEXEL && !texel_possible(ctx, a, b)) v = VKA_MATMUL_TILED;
    }
    return v;
}

static vka_result run_tiled(vka_cmd *cmd, vka_tensor c, vka_tensor a, vka_tensor b, struct matmul_push *push)
{
    vka_context *ctx = vka_cmd_context(cmd);
    /* 16 x 16 threads, or 16 x 8 where the device allows only 128 invocations. */
    uint32_t tx = 16, ty = ctx->limits.max_workgroup_invocations >= 256 ? 16 : 8;
    uint32_t tm = ty * TILED_RM, tn = tx * TILED_RN;
    vka_kernel_desc desc = {
        .name = "matmul_tiled", VKA_SPIRV(vka_spv_matmul_tiled),
        .num_bindings = 3, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof *push, .local_size = {tx, ty},
        .shared_bytes = TILED_TK * (tm + tn) * 4, .num_spec = 1, .spec = {TILED_TK},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    vka_tensor t[3] = {a, b, c};
    return vka_cmd_dispatch(cmd, k, t, 3, push, (uint32_t)vka_div_up(push->N, tn),
                            (uint32_t)vka_div_up(push->M, tm), 1);
}

static vka_result run_texel(vka_cmd *cmd, vka_tensor c, vka_tensor a, vka_tensor b, struct matmul_push *push,
                            int vec4)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_binding_kind texel = vec4 ? VKA_BIND_TEXEL_RGBA32F : VKA_BIND_TEXEL_R32F;
    vka_kernel_desc desc = {
        .name = vec4 ? "matmul_texel_vec4" : "matmul_texel",
        .spirv = vec4 ? vka_spv_matmul_texel_vec4 : vka_spv_matmul_texel,
        .spirv_bytes = vec4 ? sizeof vka_spv_matmul_texel_vec4 : sizeof vka_spv_matmul_texel,
        .num_bindings = 3, .bindings = {texel, texel, VKA_BIND_STORAGE},
        .push_bytes = sizeof *push, .local_size = {TEXEL_WG},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    uint32_t cols_per_block = 8; /* 8 scalars, or 2 vec4 */
    push->row_blocks = (uint32_t)vka_div_up(push->M, TEXEL_BM);
    push->total_blocks = push->row_blocks * (uint32_t)vka_div_up(push->N, cols_per_block);
    vka_tensor t[3] = {a, b, c};
    return vka_dispatch_groups(cmd, k, t, 3, push, vka_div_up(push->total_blocks, TEXEL_WG));
}

vka_result vka_matmul(vka_cmd *cmd, vka_tensor c, vka_tensor a, vka_tensor b, const vka_matmul_desc *d)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t M = d->m, N = d->n, K = d->k;
    if (M == 0 || N == 0 || K == 0 || a.size < M * K * 4 || b.size < K * N * 4 || c.size < M * N * 4)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "matmul: M=%llu N=%llu K=%llu needs A %llu, B %llu, C %llu bytes; given %llu, %llu, %llu",
                            (unsigned long long)M, (unsigned long long)N, (unsigned long long)K,
                            (unsigned long long)(M * K * 4), (unsigned long long)(K * N * 4),
                            (unsigned long long)(M * N * 4), (unsigned long long)a.size,
                            (unsigned long long)b.size, (unsigned long long)c.size);
    struct matmul_push push = {
        .M = d->m, .N = d->n, .K = d->k,
        .a_rs = d->trans_a ? 1 : d->k, .a_cs = d->trans_a ? d->m : 1,
        .b_rs = d->trans_b ? 1 : d->n, .b_cs = d->trans_b ? d->k : 1,
    };
    /* Bind exactly the operands: texel views must not exceed their limits needlessly. */
    a = vka_tensor_slice(a, 0, M * K * 4);
    b = vka_tensor_slice(b, 0, K * N * 4);
    c = vka_tensor_slice(c, 0, M * N * 4);
    vka_matmul_variant v = vka_matmul_choose(ctx, d, a, b);
    vka_result rc;
    if (v == VKA_MATMUL_TEXEL) {
        if (!texel_possible(ctx, a, b))
            return vka_cmd_fail(cmd, VKA_ERROR_UNSUPPORTED,
                                "matmul: the texel variant cannot bind these operands (texel-buffer limits or alignment)");
        rc = run_texel(cmd, c, a, b, &push, vec4_fits(ctx, d, a, b));
    } else {
        rc = run_tiled(cmd, c, a, b, &push);
    }
    if (rc) return rc;
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* C written -> later reads */
    return VKA_SUCCESS;
}
