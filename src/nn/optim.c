/* SGD (momentum, nesterov, weight decay) and AdamW over one contiguous parameter tensor:
 * one element-wise dispatch per storage-range chunk (one in practice: 128 MiB is 33M
 * parameters), chunked like src/nn/axpy.c. Scalars derived from the hyperparameters
 * (bias corrections, decay factor) are computed here in double, then pushed as floats. */
#include <math.h>

#include "nn/optim.h"

#include "nn/ops_internal.h"

#include "adamw_step.spv.h"
#include "sgd_step.spv.h"
#include "sgd_step_plain.spv.h"

struct sgd_push {
    uint32_t n;
    float lr, momentum, weight_decay;
    uint32_t nesterov;
};
_Static_assert(sizeof(struct sgd_push) == 20, "mirror of Push in shaders/sgd_step.comp");

struct adamw_push {
    uint32_t n;
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, sqrt_bc2;
};
_Static_assert(sizeof(struct adamw_push) == 36, "mirror of Push in shaders/adamw_step.comp");

#define WANT_WG 256u

/* INVALID_ARGUMENT unless every tensor holds n floats at a binding-aligned offset. */
static vka_result check_tensors(vka_cmd *cmd, const char *op, uint64_t n, const char *const *names,
                                const vka_tensor *t, uint32_t count)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t align = ctx->info.limits.min_storage_buffer_offset_alignment;
    if (n == 0) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: n=0 parameters", op);
    for (uint32_t i = 0; i < count; i++) {
        if (t[i].size < n * 4)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: n=%llu floats but %s holds %llu bytes", op,
                                (unsigned long long)n, names[i], (unsigned long long)t[i].size);
        if (t[i].offset % align)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                                "%s: %s starts at byte %llu, not aligned to %llu for a storage binding", op, names[i],
                                (unsigned long long)t[i].offset, (unsigned long long)align);
    }
    return VKA_SUCCESS;
}

/* Runs `k` over n floats of every tensor, chunk by chunk; `push` starts with the uint32 n
 * of the chunk, which is rewritten per chunk. */
static vka_result run_chunked(vka_cmd *cmd, vka_kernel *k, const vka_tensor *tensors, uint32_t count, uint64_t n,
                              void *push)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t align = ctx->info.limits.min_storage_buffer_offset_alignment;
    uint64_t chunk = ctx->limits.max_storage_buffer_range / align * align / 4;
    vka_result rc = VKA_SUCCESS;
    for (uint64_t first = 0; first < n && !rc; first += chunk) {
        uint64_t len = n - first < chunk ? n - first : chunk;
        vka_tensor t[VKA_MAX_BINDINGS];
        for (uint32_t i = 0; i < count; i++) t[i] = vka_tensor_slice(tensors[i], first * 4, len * 4);
        *(uint32_t *)push = (uint32_t)len;
        rc = vka_dispatch_items(cmd, k, t, count, push, len);
    }
    return rc;
}

vka_result vka_sgd_step(vka_cmd *cmd, const vka_sgd_params *p, uint64_t n, vka_tensor w, vka_tensor buf,
                        vka_tensor grad)
{
    const char *op = "sgd_step";
    vka_context *ctx = vka_cmd_context(cmd);
    if (!p) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no parameters", op);
    int momentum = p->momentum != 0.0;
    if (momentum && !vka_tensor_present(buf))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: momentum %g needs a momentum buffer of n=%llu floats",
                            op, p->momentum, (unsigned long long)n);
    static const char *const names[3] = {"w", "grad", "buf"};
    vka_tensor t[3] = {w, grad, buf};
    vka_result rc = check_tensors(cmd, op, n, names, t, momentum ? 3 : 2);
    if (rc) return rc;
    vka_kernel_desc desc = {
        .name = momentum ? "sgd_step" : "sgd_step_plain",
        .spirv = momentum ? vka_spv_sgd_step : vka_spv_sgd_step_plain,
        .spirv_bytes = momentum ? sizeof vka_spv_sgd_step : sizeof vka_spv_sgd_step_plain,
        .num_bindings = momentum ? 3 : 2, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct sgd_push), .local_size = {vka_plan_workgroup_1d(ctx, WANT_WG)},
    };
    vka_kernel *k;
    if ((rc = vka_kernel_get(ctx, &desc, &k)))
        return vka_cmd_keep(cmd, rc);
    struct sgd_push push = {0, (float)p->lr, (float)p->momentum, (float)p->weight_decay, p->nesterov ? 1u : 0u};
    return vka_op_done(cmd, run_chunked(cmd, k, t, momentum ? 3 : 2, n, &push));
}

vka_result vka_adamw_step(vka_cmd *cmd, const vka_adamw_params *p, uint64_t n, vka_tensor w, vka_tensor m,
                          vka_tensor v, vka_tensor grad)
{
    const char *op = "adamw_step";
    vka_context *ctx = vka_cmd_context(cmd);
    if (!p) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no parameters", op);
    if (p->step < 1 || !(p->beta1 >= 0.0 && p->beta1 < 1.0) || !(p->beta2 >= 0.0 && p->beta2 < 1.0) ||
        !(p->eps >= 0.0))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: step t=%u (needs >= 1), beta1=%g, beta2=%g (need [0, 1)), eps=%g (needs >= 0)", op,
                            p->step, p->beta1, p->beta2, p->eps);
    static const char *const names[4] = {"w", "m", "v", "grad"};
    vka_tensor t[4] = {w, m, v, grad};
    vka_result rc = check_tensors(cmd, op, n, names, t, 4);
    if (rc) return rc;
    vka_kernel_desc desc = {
        .name = op, VKA_SPIRV(vka_spv_adamw_step),
        .num_bindings = 4, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct adamw_push), .local_size = {vka_plan_workgroup_1d(ctx, WANT_WG)},
    };
    vka_kernel *k;
    if ((rc = vka_kernel_get(ctx, &desc, &k))) return vka_cmd_keep(cmd, rc);
    double bc1 = 1.0 - pow(p->beta1, p->step), bc2 = 1.0 - pow(p->beta2, p->step);
    struct adamw_push push = {
        .beta1 = (float)p->beta1, .one_minus_beta1 = (float)(1.0 - p->beta1),
        .beta2 = (float)p->beta2, .one_minus_beta2 = (float)(1.0 - p->beta2),
        .eps = (float)p->eps, .decay = (float)(1.0 - p->lr * p->weight_decay),
        .step_size = (float)(p->lr / bc1), .sqrt_bc2 = (float)sqrt(bc2),
    };
    return vka_op_done(cmd, run_chunked(cmd, k, t, 4, n, &push));
}
