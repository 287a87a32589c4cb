/* Sum and max of a vector by a fixed-order tree: no atomics, same bits every run. */
#include "nn/ops_internal.h"

#include "reduce_sum_absmax.spv.h"
#include "reduce_sum_max.spv.h"

#define MAX_PARTIALS 1024u  /* groups of the first pass; later passes shrink by the workgroup size */

struct reduce_push {
    uint32_t n, per_group, pairs_in;
};
_Static_assert(sizeof(struct reduce_push) == 12, "mirror of Push in shaders/reduce_sum_max.comp");

uint64_t vka_reduce_scratch_bytes(const vka_context *ctx, uint64_t n)
{
    (void)n;
    /* Two ping-pong regions of MAX_PARTIALS (sum, max) pairs, each binding-aligned. */
    uint64_t region = MAX_PARTIALS * 8;
    uint64_t align = ctx->info.limits.min_storage_buffer_offset_alignment;
    region = (region + align - 1) / align * align;
    return 2 * region;
}

/* Sum and max of x, or (absmax) sum and max of |x|. */
static vka_result reduce(vka_cmd *cmd, vka_tensor out, vka_tensor x, uint64_t n, vka_tensor scratch, int absmax)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t scratch_bytes = vka_reduce_scratch_bytes(ctx, n);
    const char *op = absmax ? "reduce_sum_absmax" : "reduce_sum_max";
    if (n == 0 || x.size < n * 4 || out.size < 8 || scratch.size < scratch_bytes)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: n=%llu floats, x %llu bytes, out %llu bytes (needs 8), scratch %llu "
                            "bytes (needs %llu)", op, (unsigned long long)n, (unsigned long long)x.size,
                            (unsigned long long)out.size, (unsigned long long)scratch.size,
                            (unsigned long long)scratch_bytes);
    if (n * 4 > ctx->limits.max_storage_buffer_range || n > UINT32_MAX)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED,
                            "%s: %llu floats exceed one storage binding (%llu bytes)", op,
                            (unsigned long long)n, (unsigned long long)ctx->limits.max_storage_buffer_range);
    uint32_t wg = vka_plan_workgroup_1d(ctx, 256);
    vka_kernel *k;
    vka_kernel_desc desc = {
        .name = op,
        .spirv = absmax ? vka_spv_reduce_sum_absmax : vka_spv_reduce_sum_max,
        .spirv_bytes = absmax ? sizeof vka_spv_reduce_sum_absmax : sizeof vka_spv_reduce_sum_max,
        .num_bindings = 2, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct reduce_push), .local_size = {wg}, .shared_bytes = 2 * 4 * wg,
    };
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);

    uint64_t half = scratch_bytes / 2;
    vka_tensor regions[2] = {vka_tensor_slice(scratch, 0, half), vka_tensor_slice(scratch, half, half)};
    vka_tensor in = vka_tensor_slice(x, 0, n * 4);
    uint32_t items = (uint32_t)n, pairs_in = 0;
    for (int pass = 0;; pass++) {
        uint32_t groups = (uint32_t)vka_div_up(items, wg);
        if (groups > MAX_PARTIALS) groups = MAX_PARTIALS;
        uint32_t per_group = (uint32_t)vka_div_up(items, groups);
        groups = (uint32_t)vka_div_up(items, per_group);
        vka_tensor dst = groups == 1 ? vka_tensor_slice(out, 0, 8) : vka_tensor_slice(regions[pass % 2], 0, groups * 8);
        vka_tensor t[2] = {in, dst};
        struct reduce_push push = {items, per_group, pairs_in};
        if ((rc = vka_cmd_dispatch(cmd, k, t, 2, &push, groups, 1, 1))) return rc;
        vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* partials written -> next pass reads */
        if (groups == 1) break;
        in = dst;
        items = groups;
        pairs_in = 1;
    }
    return VKA_SUCCESS;
}

vka_result vka_reduce_sum_max(vka_cmd *cmd, vka_tensor out, vka_tensor x, uint64_t n, vka_tensor scratch)
{
    return reduce(cmd, out, x, n, scratch, 0);
}

vka_result vka_reduce_sum_absmax(vka_cmd *cmd, vka_tensor out, vka_tensor x, uint64_t n, vka_tensor scratch)
{
    return reduce(cmd, out, x, n, scratch, 1);
}
