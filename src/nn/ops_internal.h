/* Shared by the op files in src/nn: kernel cache slots and dispatch planning. */
#ifndef VKA_NN_OPS_INTERNAL_H
#define VKA_NN_OPS_INTERNAL_H

#include "vk/vk_internal.h"

/* One cache slot per kernel variant (see vka_kernel_cached). */
enum vka_kernel_slot {
    VKA_SLOT_AXPY,
    VKA_SLOT_REDUCE_SUM_MAX,
    VKA_SLOT_MATMUL_TILED,
    VKA_SLOT_MATMUL_TEXEL,
    VKA_SLOT_MATMUL_TEXEL_VEC4,
    VKA_SLOT_COUNT
};
_Static_assert(VKA_SLOT_COUNT <= VKA_KERNEL_CACHE_SIZE, "kernel cache too small");

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

#define VKA_SPIRV(sym) .spirv = sym, .spirv_bytes = sizeof(sym)

#endif
