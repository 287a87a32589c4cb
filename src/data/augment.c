/* Random crop + flip + normalize on the GPU (shaders/augment.comp). */
#include "data/augment.h"

#include "nn/ops_internal.h"

#include "augment.spv.h"

struct augment_push {
    uint32_t n, c, h, w;
    float mean[4];
    float inv_std[4];
};
_Static_assert(sizeof(struct augment_push) == 48, "mirror of Push in shaders/augment.comp");

vka_result vka_augment(vka_cmd *cmd, const vka_augment_shape *s, vka_tensor out, vka_tensor pixels, vka_tensor params)
{
    vka_context *ctx = vka_cmd_context(cmd);
    uint64_t count = (uint64_t)s->n * s->c * s->h * s->w;
    if (s->c > 4)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "augment: %u channels (at most 4)", s->c);
    if (count == 0 || out.size < count * 4 || pixels.size < (count + 3) / 4 * 4 ||
        params.size < (uint64_t)s->n * 12)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "augment: batch (%u, %u, %u, %u) needs out %llu, pixels %llu, params %llu bytes; given "
                            "%llu, %llu, %llu", s->n, s->c, s->h, s->w, (unsigned long long)(count * 4),
                            (unsigned long long)((count + 3) / 4 * 4), (unsigned long long)s->n * 12,
                            (unsigned long long)out.size, (unsigned long long)pixels.size,
                            (unsigned long long)params.size);
    for (uint32_t c = 0; c < s->c; c++)
        if (!(s->std[c] > 0))
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "augment: std of channel %u is %g", c, s->std[c]);
    uint32_t wg = vka_plan_workgroup_1d(ctx, 256);
    vka_kernel_desc desc = {
        .name = "augment", VKA_SPIRV(vka_spv_augment),
        .num_bindings = 3, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct augment_push), .local_size = {wg},
    };
    vka_kernel *k;
    vka_result rc = vka_kernel_get(ctx, &desc, &k);
    if (rc) return vka_cmd_keep(cmd, rc);
    struct augment_push push = {s->n, s->c, s->h, s->w, {0}, {0}};
    for (uint32_t c = 0; c < 4; c++) {
        push.mean[c] = c < s->c ? s->mean[c] : 0.0f;
        push.inv_std[c] = c < s->c ? 1.0f / s->std[c] : 1.0f;
    }
    vka_tensor t[3] = {vka_tensor_slice(pixels, 0, (count + 3) / 4 * 4), vka_tensor_slice(params, 0, s->n * 12ull),
                       vka_tensor_slice(out, 0, count * 4)};
    rc = vka_dispatch_items(cmd, k, t, 3, &push, count);
    return vka_op_done(cmd, rc);
}
