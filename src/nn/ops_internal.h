/* Shared by the op files in src/nn: kernel cache slots and dispatch planning. */
#ifndef VKA_NN_OPS_INTERNAL_H
#define VKA_NN_OPS_INTERNAL_H

#include "vk/vk_internal.h"

/* One cache slot per kernel variant (see vka_kernel_cached). Each op family
 * owns a range and numbers its variants from its base in its own .c file. */
enum vka_kernel_slot_base {
    VKA_SLOT_BASE_FIRST = 0,      /* axpy, reduce, matmul */
    VKA_SLOT_BASE_CONV = 16,      /* conv2d: 16..47 */
    VKA_SLOT_BASE_NORM = 48,      /* batchnorm, relu, add, pooling: 48..79 */
    VKA_SLOT_BASE_HEAD = 80,      /* linear, anchoring, losses, optimizers: 80..111 */
    VKA_SLOT_BASE_DATA = 112,     /* data: augmentation, corruptions: 112..127 */
    VKA_SLOT_BASE_CONV_PACKED = 128, /* lavapipe's packed conv2d kernels: 128..179 */
    VKA_SLOT_BASE_PACKED_OUT = 180,  /* other ops' variants writing the packed layout: 180..191 */
    VKA_SLOT_BASE_BN_SPAN = 192,  /* batchnorm's vec4 variants for planes of H*W % 4 != 0: 192..199 */
    VKA_SLOT_BASE_NORM_MORE = 200, /* the norm family's second range (norm_slots.h): 200..223 */
    VKA_SLOT_BASE_CONV_WEIGHT_QC = 224, /* lavapipe's weight gradient, runs of 4 and 8 columns: 224..255 */
    VKA_SLOT_BASE_CONV_PACKED_JB1 = 256, /* lavapipe's packed conv, one column per register block: 256..287 */
    VKA_SLOT_BASE_CONV_ACCUM = 288, /* its input gradients adding into dx (JB = 2, then JB = 1): 288..319 */
    VKA_SLOT_BASE_CONV_PAIRS = 320, /* its kernels storing pairs of columns (JB = 2, then JB = 1): 320..383 */
    VKA_SLOT_BASE_CONV_CPAIR = 384, /* its stride-2 input gradients by row phase (JB = 2, then 1): 384..415 */
    VKA_SLOT_BASE_CONV_STATS = 416, /* its forwards writing the output's BN statistics (JB = 2, then 1;
                                       floats, then pairs): 416..479 */
    VKA_SLOT_BASE_NORM_THIRD = 480, /* the norm family's third range (norm_slots.h): 480..487 */
};
enum vka_kernel_slot {
    VKA_SLOT_AXPY = VKA_SLOT_BASE_FIRST,
    VKA_SLOT_REDUCE_SUM_MAX,
    VKA_SLOT_MATMUL_TILED,
    VKA_SLOT_MATMUL_TEXEL,
    VKA_SLOT_MATMUL_TEXEL_VEC4,
    VKA_SLOT_PEAK_FMA,     /* peak.c */
    VKA_SLOT_PEAK_COPY,
};
_Static_assert(VKA_SLOT_BASE_NORM_THIRD + 8 <= VKA_KERNEL_CACHE_SIZE, "kernel cache too small");

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
