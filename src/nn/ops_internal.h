/* Shared by the op files in src/nn: op endings, tensor checks and dispatch planning. */
#ifndef VKA_NN_OPS_INTERNAL_H
#define VKA_NN_OPS_INTERNAL_H

#include "vk/vk_internal.h"

/* Ends an op: records its error on the cmd, or the barrier after its writes. */
static inline vka_result vka_op_done(vka_cmd *cmd, vka_result rc)
{
    if (rc) return vka_cmd_keep(cmd, rc);
    vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER); /* op outputs written -> later ops read them */
    return VKA_SUCCESS;
}

/* A tensor argument that may be absent (an optional bias, say). */
static inline int vka_tensor_present(vka_tensor t) { return t.block != NULL && t.size > 0; }

/* Whether two present tensors share bytes of one memory block. */
static inline int vka_tensor_overlaps(vka_tensor a, vka_tensor b)
{
    return vka_tensor_present(a) && vka_tensor_present(b) && a.block == b.block && a.offset < b.offset + b.size &&
           b.offset < a.offset + a.size;
}

/* LIMIT_EXCEEDED unless `bytes` fit in one storage-buffer binding (name: op, what: tensor). */
static inline vka_result vka_head_check_range(vka_cmd *cmd, const char *op, const char *what, uint64_t bytes)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (bytes <= ctx->limits.max_storage_buffer_range) return VKA_SUCCESS;
    return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED,
                        "%s: %s is %llu bytes, over one storage binding (%llu bytes): split the batch", op, what,
                        (unsigned long long)bytes, (unsigned long long)ctx->limits.max_storage_buffer_range);
}

/* The largest power of two <= `wanted` that the planned limits allow for a 1D workgroup. */
static inline uint32_t vka_plan_workgroup_1d(const vka_context *ctx, uint32_t wanted)
{
    uint32_t cap = ctx->limits.max_workgroup_invocations;
    if (ctx->limits.max_workgroup_size[0] < cap) cap = ctx->limits.max_workgroup_size[0];
    if (wanted > cap) wanted = cap;
    uint32_t p = 1;
    while (p * 2 <= wanted) p *= 2;
    return p;
}

/* Splits `groups` workgroups over x and y so neither exceeds the planned count limit.
 * Shaders use flat_invocation_index() and ignore invocations past the end. */
static inline void vka_plan_groups_2d(const vka_context *ctx, uint64_t groups, uint32_t *gx, uint32_t *gy)
{
    uint64_t maxx = ctx->limits.max_workgroup_count[0];
    if (groups == 0) groups = 1;
    *gx = (uint32_t)(groups < maxx ? groups : maxx);
    *gy = (uint32_t)((groups + *gx - 1) / *gx);
}

static inline uint64_t vka_div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Records a dispatch of `groups` workgroups, split over x and y (vka_plan_groups_2d). */
static inline vka_result vka_dispatch_groups(vka_cmd *cmd, vka_kernel *k, const vka_tensor *t, uint32_t nt,
                                             const void *push, uint64_t groups)
{
    uint32_t gx, gy;
    vka_plan_groups_2d(vka_cmd_context(cmd), groups, &gx, &gy);
    return vka_cmd_dispatch(cmd, k, t, nt, push, gx, gy, 1);
}

/* ... of enough workgroups of the kernel's size for `items` invocations (flat_invocation_index). */
static inline vka_result vka_dispatch_items(vka_cmd *cmd, vka_kernel *k, const vka_tensor *t, uint32_t nt,
                                            const void *push, uint64_t items)
{
    return vka_dispatch_groups(cmd, k, t, nt, push, vka_div_up(items, k->desc.local_size[0]));
}

#define VKA_SPIRV(sym) .spirv = sym, .spirv_bytes = sizeof(sym)

#endif
