/* ReLU forward/backward and the residual add (plain and in place): flat
 * element-wise kernels, chunked to the storage-buffer range like axpy, with vec4
 * loads and stores when n % 4 == 0 (a quarter of the per-lane load loops on
 * lavapipe, wider transactions on GPUs). The ReLU backward and the in-place add (the
 * ones the resnets run; the others fuse into batchnorm) read their inputs through
 * texel buffers where they can: lavapipe gathers those instead of looping over the
 * lanes (3x faster for the ReLU backward). */
#include <stdlib.h>
#include <string.h>

#include "nn/ops_internal.h"

#include "nn/pointwise.h"

#include "add_fwd.spv.h"
#include "add_fwd_vec4.spv.h"
#include "add_inplace.spv.h"
#include "add_inplace_texel.spv.h"
#include "add_inplace_vec4.spv.h"
#include "add_inplace_vec4_texel.spv.h"
#include "relu_bwd.spv.h"
#include "relu_bwd_sum.spv.h"
#include "relu_bwd_sum_texel.spv.h"
#include "relu_bwd_sum_vec4.spv.h"
#include "relu_bwd_sum_vec4_texel.spv.h"
#include "relu_bwd_texel.spv.h"
#include "relu_bwd_vec4.spv.h"
#include "relu_bwd_vec4_texel.spv.h"
#include "relu_fwd.spv.h"
#include "relu_fwd_vec4.spv.h"

struct flat_push {
    uint32_t n;  /* units in this chunk */
};
_Static_assert(sizeof(struct flat_push) == 4, "mirror of Push in relu_fwd/relu_bwd/add_fwd.comp");

#define WG 256

typedef struct flat_kernel {
    const char *name;
    const uint32_t *spirv;
    size_t spirv_bytes;
    uint32_t bindings;
} flat_kernel;

#define FLAT(nm, nb) {#nm, vka_spv_##nm, sizeof vka_spv_##nm, nb}
/* [op][vec4] */
static const flat_kernel kernels[5][2] = {
    {FLAT(relu_fwd, 2), FLAT(relu_fwd_vec4, 2)},
    {FLAT(relu_bwd, 3), FLAT(relu_bwd_vec4, 3)},
    {FLAT(add_fwd, 3), FLAT(add_fwd_vec4, 3)},
    {FLAT(add_inplace, 2), FLAT(add_inplace_vec4, 2)},
    {FLAT(relu_bwd_sum, 4), FLAT(relu_bwd_sum_vec4, 4)},
};
enum { OP_RELU_FWD, OP_RELU_BWD, OP_ADD, OP_ADD_INPLACE, OP_RELU_BWD_SUM };
/* With texel-buffer inputs: [op][vec4] (the ReLU backward, its sum and the in-place add). */
static const flat_kernel texel_kernels[5][2] = {
    [OP_RELU_BWD] = {FLAT(relu_bwd_texel, 3),
                     FLAT(relu_bwd_vec4_texel, 3)},
    [OP_RELU_BWD_SUM] = {FLAT(relu_bwd_sum_texel, 4),
                         FLAT(relu_bwd_sum_vec4_texel, 4)},
    [OP_ADD_INPLACE] = {FLAT(add_inplace_texel, 2),
                        FLAT(add_inplace_vec4_texel, 2)},
};

/* Texel-buffer inputs (the read-only ones: all but the output t[0]): the op has such variants,
 * the formats exist, VKANCHOR_TEXEL is not "0", the output is none of the inputs (a texel read
 * and a storage write of one address in one dispatch), and every input starts on the texel
 * offset alignment. */
static int texel_inputs(const vka_context *ctx, int op, int vec4, const vka_tensor *t, uint32_t nt)
{
    if (!texel_kernels[op][0].name || vka_switch_off("VKANCHOR_TEXEL")) return 0;
    if (!(vec4 ? ctx->info.features.texel_buffer_rgba32f : ctx->info.features.texel_buffer_r32f)) return 0;
    for (uint32_t i = 1; i < nt; i++)
        if ((t[0].block == t[i].block && t[0].offset == t[i].offset) ||
            t[i].offset % ctx->info.limits.min_texel_buffer_offset_alignment)
            return 0;
    return 1;
}

/* Same tensor, or no shared byte: anything in between is refused. */
static int partial_overlap(vka_tensor a, vka_tensor b)
{
    if (!a.block || a.block != b.block) return 0;
    if (a.offset == b.offset && a.size == b.size) return 0;
    return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

/* Checks n and the tensors (t[0] is the output), then records one dispatch per
 * chunk of at most the storage-buffer range. */
static vka_result run(vka_cmd *cmd, int op, const char *opname, uint64_t n, vka_tensor *t, const char *const *names)
{
    vka_context *ctx = vka_cmd_context(cmd);
    const uint32_t nt = kernels[op][0].bindings;
    if (n == 0) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: n = 0 elements", opname);
    for (uint32_t i = 0; i < nt; i++)
        if (!vka_tensor_present(t[i]) || t[i].size < n * 4)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %s holds %llu bytes but n=%llu needs %llu",
                                opname, names[i], vka_tensor_present(t[i]) ? (unsigned long long)t[i].size : 0ull,
                                (unsigned long long)n, (unsigned long long)(n * 4));
    for (uint32_t i = 0; i < nt; i++) t[i] = vka_tensor_slice(t[i], 0, n * 4);
    for (uint32_t i = 1; i < nt; i++)
        if (partial_overlap(t[0], t[i]))
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %s partly overlaps %s (same tensor or disjoint)",
                                opname, names[0], names[i]);

    int vec4 = n % 4 == 0, texel = texel_inputs(ctx, op, vec4, t, nt);
    const flat_kernel *fk = texel ? &texel_kernels[op][vec4] : &kernels[op][vec4];
    uint32_t wg = vka_plan_workgroup_1d(ctx, WG);
    vka_kernel_desc desc = {
        .name = fk->name, .spirv = fk->spirv, .spirv_bytes = fk->spirv_bytes,
        .num_bindings = nt, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct flat_push), .local_size = {wg},
    };
    /* Texel bindings: relu_bwd(_sum) dy 0, x 1 (dy2 3), not dx 2; add_inplace b 1, not a 0. */
    if (texel)
        for (uint32_t i = op == OP_ADD_INPLACE ? 1 : 0; i < nt; i++)
            if (i != 2) desc.bindings[i] = vec4 ? VKA_BIND_TEXEL_RGBA32F : VKA_BIND_TEXEL_R32F;
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);

    /* Chunks start at multiples of the binding alignments and of 16 bytes (vec4), and hold at
     * most a binding's range (and, with texel inputs, a texel buffer's elements). */
    uint64_t align = ctx->info.limits.min_storage_buffer_offset_alignment;
    if (texel && ctx->info.limits.min_texel_buffer_offset_alignment > align)
        align = ctx->info.limits.min_texel_buffer_offset_alignment;
    if (align < 16) align = 16;
    uint64_t unit = vec4 ? 4 : 1;
    uint64_t range = ctx->limits.max_storage_buffer_range;
    if (texel && (uint64_t)ctx->limits.max_texel_buffer_elements * unit * 4 < range)
        range = (uint64_t)ctx->limits.max_texel_buffer_elements * unit * 4;
    uint64_t chunk = range / align * align / 4; /* floats */
    if (chunk > (uint64_t)UINT32_MAX / 2) chunk = (uint64_t)UINT32_MAX / 2 / align * align;
    for (uint64_t first = 0; first < n && !rc; first += chunk) {
        uint64_t count = n - first < chunk ? n - first : chunk;
        vka_tensor c[4];
        for (uint32_t i = 0; i < nt; i++) c[i] = vka_tensor_slice(t[i], first * 4, count * 4);
        /* Bindings in shader order: the output is last, except in place (a is both). */
        vka_tensor b[4];
        if (op == OP_ADD_INPLACE) b[0] = c[0], b[1] = c[1];
        else if (op == OP_RELU_FWD) b[0] = c[1], b[1] = c[0];
        else b[0] = c[1], b[1] = c[2], b[2] = c[0], b[3] = c[nt - 1]; /* relu_bwd_sum: dy2 at 3 */
        struct flat_push push = {(uint32_t)(count / unit)};
        rc = vka_dispatch_items(cmd, k, b, nt, &push, push.n);
    }
    return vka_op_done(cmd, rc);
}

vka_result vka_relu_forward(vka_cmd *cmd, uint64_t n, vka_tensor y, vka_tensor x)
{
    static const char *const names[] = {"y", "x"};
    vka_tensor t[2] = {y, x};
    return run(cmd, OP_RELU_FWD, "relu_forward", n, t, names);
}

vka_result vka_relu_backward(vka_cmd *cmd, uint64_t n, vka_tensor dx, vka_tensor dy, vka_tensor x)
{
    static const char *const names[] = {"dx", "dy", "x"};
    vka_tensor t[3] = {dx, dy, x};
    return run(cmd, OP_RELU_BWD, "relu_backward", n, t, names);
}

vka_result vka_relu_backward_sum(vka_cmd *cmd, uint64_t n, vka_tensor dx, vka_tensor dy, vka_tensor dy2, vka_tensor x)
{
    static const char *const names[] = {"dx", "dy", "x", "dy2"};
    vka_tensor t[4] = {dx, dy, x, dy2};
    return run(cmd, OP_RELU_BWD_SUM, "relu_backward_sum", n, t, names);
}

vka_result vka_add_forward(vka_cmd *cmd, uint64_t n, vka_tensor y, vka_tensor a, vka_tensor b)
{
    static const char *const names[] = {"y", "a", "b"};
    vka_tensor t[3] = {y, a, b};
    return run(cmd, OP_ADD, "add_forward", n, t, names);
}

vka_result vka_add_inplace(vka_cmd *cmd, uint64_t n, vka_tensor a, vka_tensor b)
{
    static const char *const names[] = {"a", "b"};
    vka_tensor t[2] = {a, b};
    /* b == a would double a; allowed (a += a), as the same-tensor rule says. */
    return run(cmd, OP_ADD_INPLACE, "add_inplace", n, t, names);
}
