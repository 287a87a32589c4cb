/* Device peak probes: fp32 FMA rate and copy bandwidth (see peak.h). */
#include "nn/peak.h"

#include "nn/ops_internal.h"
#include "peak_copy.spv.h"
#include "peak_fma.spv.h"
#include "vk/clock.h"

struct fma_push {
    uint32_t invocations, iterations;
    float m, c;
};
_Static_assert(sizeof(struct fma_push) == 16, "mirror of Push in shaders/peak_fma.comp");
struct copy_push {
    uint32_t n;
};
_Static_assert(sizeof(struct copy_push) == 4, "mirror of Push in shaders/peak_copy.comp");

#define FMA_FLOP_PER_ITERATION 1024.0 /* 128 vec4 FMAs (peak_fma.comp) */
#define FMA_INVOCATIONS (1u << 20)    /* several waves on the largest GPUs */
#define TARGET_MS 20.0                /* each timed FMA run: long against launch overheads */
#define MAX_COPY_BYTES (256ull << 20) /* several times any GPU's last-level cache */

vka_result vka_peak_fma(vka_cmd *cmd, vka_tensor out, uint32_t invocations, uint32_t iterations, float m, float c)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (!invocations || out.size < (uint64_t)invocations * 4)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "peak_fma: %u invocations need %llu bytes, out has %llu",
                            invocations, (unsigned long long)invocations * 4, (unsigned long long)out.size);
    vka_kernel_desc desc = {
        .name = "peak_fma", VKA_SPIRV(vka_spv_peak_fma), .num_bindings = 1, .bindings = {VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct fma_push), .local_size = {vka_plan_workgroup_1d(ctx, 256)},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    struct fma_push push = {invocations, iterations, m, c};
    vka_tensor t[1] = {vka_tensor_slice(out, 0, (uint64_t)invocations * 4)};
    return vka_op_done(cmd, vka_dispatch_items(cmd, k, t, 1, &push, invocations));
}

vka_result vka_peak_copy(vka_cmd *cmd, vka_tensor dst, vka_tensor src, uint32_t n)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t bytes = (uint64_t)n * 16;
    if (!n || src.size < bytes || dst.size < bytes || bytes > ctx->limits.max_storage_buffer_range)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "peak_copy: %u vec4s (%llu bytes) but src has %llu, dst %llu, a binding at most %llu", n,
                            (unsigned long long)bytes, (unsigned long long)src.size, (unsigned long long)dst.size,
                            (unsigned long long)ctx->limits.max_storage_buffer_range);
    vka_kernel_desc desc = {
        .name = "peak_copy", VKA_SPIRV(vka_spv_peak_copy), .num_bindings = 2,
        .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE}, .push_bytes = sizeof(struct copy_push),
        .local_size = {vka_plan_workgroup_1d(ctx, 256)},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    struct copy_push push = {n};
    vka_tensor t[2] = {vka_tensor_slice(src, 0, bytes), vka_tensor_slice(dst, 0, bytes)};
    return vka_op_done(cmd, vka_dispatch_items(cmd, k, t, 2, &push, n));
}

/* Submits what cmd holds and returns its time in ms: the dispatch's timestamps where there
 * are any, else the host's clock around submit and wait. */
static vka_result timed_submit(vka_cmd *cmd, double *ms)
{
    vka_result rc = vka_cmd_status(cmd);
    if (rc) return rc;
    double t0 = 1e3 * vka_seconds();
    if ((rc = vka_cmd_submit(cmd)) || (rc = vka_cmd_wait(cmd))) return rc;
    *ms = 1e3 * vka_seconds() - t0;
    vka_timing t;
    if (vka_cmd_timings(cmd, &t, 1) == 1 && t.ms > 0) *ms = t.ms;
    return VKA_SUCCESS;
}

vka_result vka_measure_peak(vka_context *ctx, vka_device_peak *out)
{
    *out = (vka_device_peak){0};
    uint64_t copy_bytes = ctx->limits.max_storage_buffer_range / 16 * 16;
    if (copy_bytes > MAX_COPY_BYTES) copy_bytes = MAX_COPY_BYTES;
    vka_arena *arena = NULL;
    vka_cmd *cmd = NULL;
    vka_tensor fma_out, src, dst;
    vka_result rc = vka_arena_create(ctx, &(vka_arena_desc){.name = "peak probes", .block_size = copy_bytes}, &arena);
    if (!rc) rc = vka_arena_alloc(arena, (uint64_t)FMA_INVOCATIONS * 4, &fma_out);
    if (!rc) rc = vka_arena_alloc(arena, copy_bytes, &src);
    if (!rc) rc = vka_arena_alloc(arena, copy_bytes, &dst);
    if (!rc) rc = vka_fill(ctx, src, 0x3f800000u); /* 1.0f: ordinary numbers, not NaN or denormals */
    if (!rc) rc = vka_cmd_create(ctx, &(vka_cmd_desc){.timing = 1}, &cmd);

    /* FMA: scale the iterations (up to 3 runs) until a run lasts about TARGET_MS; the rate is
     * the best of the runs after that. */
    uint32_t iterations = 16;
    double ms = 0, best = 0;
    for (int run = 0; !rc && run < 6; run++) {
        if ((rc = vka_cmd_reset(cmd))) break;
        vka_peak_fma(cmd, fma_out, FMA_INVOCATIONS, iterations, 0.999f, 0.001f);
        if ((rc = timed_submit(cmd, &ms))) break;
        if (ms < TARGET_MS / 4 && iterations < (1u << 16) && run < 3) {
            double scale = ms > 0 ? TARGET_MS / ms : 64;
            iterations = (uint32_t)(iterations * (scale < 64 ? scale : 64) + 1);
            if (iterations > (1u << 16)) iterations = 1u << 16;
            continue;
        }
        double gflops = (double)FMA_INVOCATIONS * iterations * FMA_FLOP_PER_ITERATION / (ms * 1e6);
        if (gflops > best) best = gflops;
    }
    out->fma_gflops = best;
    /* Copy: the best of 3 after one warm-up. */
    best = 0;
    for (int run = 0; !rc && run < 4; run++) {
        if ((rc = vka_cmd_reset(cmd))) break;
        vka_peak_copy(cmd, dst, src, (uint32_t)(copy_bytes / 16));
        if ((rc = timed_submit(cmd, &ms))) break;
        double gbps = 2.0 * copy_bytes / (ms * 1e6);
        if (run > 0 && gbps > best) best = gbps;
    }
    out->copy_gbps = best;
    out->copy_bytes = copy_bytes;
    if (cmd) vka_cmd_destroy(cmd);
    if (arena) vka_arena_destroy(arena);
    return rc;
}
