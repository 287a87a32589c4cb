/* y = a*x + y: the element-wise op, chunked to the storage-buffer range. */
#include "nn/ops_internal.h"

#include "axpy.spv.h"

struct axpy_push {
    uint32_t n;
    float a;
};
_Static_assert(sizeof(struct axpy_push) == 8, "mirror of Push in shaders/axpy.comp");

vka_result vka_axpy(vka_cmd *cmd, float a, vka_tensor x, vka_tensor y, uint64_t n)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (n == 0 || x.size < n * 4 || y.size < n * 4)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "axpy: n=%llu floats but x holds %llu bytes and y %llu", (unsigned long long)n,
                            (unsigned long long)x.size, (unsigned long long)y.size);
    uint32_t wg = vka_plan_workgroup_1d(ctx, 256);
    vka_kernel *k;
    vka_kernel_desc desc = {
        .name = "axpy", VKA_SPIRV(vka_spv_axpy),
        .num_bindings = 2, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct axpy_push), .local_size = {wg},
    };
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);

    /* Chunk so each binding stays within maxStorageBufferRange and each chunk
     * start stays aligned for the next binding offset. */
    uint64_t align = ctx->info.limits.min_storage_buffer_offset_alignment;
    uint64_t chunk_bytes = ctx->limits.max_storage_buffer_range / align * align;
    uint64_t chunk = chunk_bytes / 4;
    for (uint64_t first = 0; first < n; first += chunk) {
        uint64_t count = n - first < chunk ? n - first : chunk;
        vka_tensor t[2] = {vka_tensor_slice(x, first * 4, count * 4), vka_tensor_slice(y, first * 4, count * 4)};
        struct axpy_push push = {(uint32_t)count, a};
        if ((rc = vka_dispatch_items(cmd, k, t, 2, &push, count))) return rc;
    }
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* y written -> later reads */
    return VKA_SUCCESS;
}
