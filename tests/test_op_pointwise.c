/* ReLU forward/backward and the residual add against tests/ref/ref_pointwise.c.
 *
 * Tolerances: relu forward and backward are selections, so they must match the
 * reference exactly (bit for bit, +0 for -0 and for x == 0); add is one correctly
 * rounded fp32 addition: it must equal the host's float a + b exactly, and so
 * sum (gpu-ref)^2 / sum ref^2 <= 1e-14 against the double reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/batchnorm.h"
#include "nn/ops_internal.h"
#include "nn/pointwise.h"
#include "nn/pool.h"
#include "ref_ops.h"
#include "test_util.h"

/* Scalar kernels (n % 4 != 0) and vec4 kernels, below and above one workgroup. */
static const uint64_t sizes[] = {1, 7, 1000, 4099, 65536, 65537};
#define NSIZES (sizeof sizes / sizeof *sizes)

/* Uniform values with exact zeros, negative zeros and infinities sprinkled in. */
static float *make_input(test_rng *rng, uint64_t n)
{
    float *x = malloc(n * 4);
    test_fill_uniform(rng, x, n, -2, 2);
    for (uint64_t i = 0; i < n; i += 5) x[i] = (i / 5) % 3 == 0 ? 0.0f : (i / 5) % 3 == 1 ? -0.0f : x[i];
    if (n > 20) x[11] = INFINITY, x[13] = -INFINITY;
    return x;
}

static void expect_bits(const char *what, uint64_t n, const float *gpu, const double *ref)
{
    for (uint64_t i = 0; i < n; i++) {
        float r = (float)ref[i];
        uint32_t gb, rb;
        memcpy(&gb, &gpu[i], 4), memcpy(&rb, &r, 4);
        if (gb != rb)
            fail_msg("%s n=%llu [%llu]: gpu %g (0x%08x) ref %g (0x%08x)", what, (unsigned long long)n,
                     (unsigned long long)i, gpu[i], gb, r, rb);
    }
}

/* Runs relu forward, backward and backward_sum (twice, to compare bits) and checks them;
 * in place: y is x, dx is dy, and backward_sum's dx is dy2 (and, a second time, dy). */
static void check_relu(vka_context *ctx, uint64_t n, int in_place)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "relu"}, &arena));
    test_rng rng = {n * 31 + 1};
    float *x = make_input(&rng, n), *dy = make_input(&rng, n), *dy2 = make_input(&rng, n);
    double *dxd = test_to_double(x, n), *ddy = test_to_double(dy, n);
    double *ry = malloc(n * sizeof(double)), *rdx = malloc(n * sizeof(double)), *rsum = malloc(n * sizeof(double));
    ref_relu_forward(ry, dxd, (int)n);
    ref_relu_backward(rdx, ddy, dxd, (int)n);
    for (uint64_t i = 0; i < n; i++) rsum[i] = (double)(dy[i] + dy2[i]); /* one fp32 add, as vka_add_inplace */
    ref_relu_backward(rsum, rsum, dxd, (int)n);
    float *got[2][3];
    for (int run = 0; run < 2; run++) {
        test_guarded gx = test_alloc_guarded(ctx, arena, n * 4), gdy = test_alloc_guarded(ctx, arena, n * 4);
        test_guarded gy = test_alloc_guarded(ctx, arena, n * 4), gdx = test_alloc_guarded(ctx, arena, n * 4);
        test_guarded gdy2 = test_alloc_guarded(ctx, arena, n * 4), gsum = test_alloc_guarded(ctx, arena, n * 4);
        TEST_OK(vka_upload(ctx, gx.t, 0, x, n * 4));
        TEST_OK(vka_upload(ctx, gdy.t, 0, dy, n * 4));
        TEST_OK(vka_upload(ctx, gdy2.t, 0, dy2, n * 4));
        vka_tensor keep_dy = test_tensor(ctx, arena, dy, n), dy_again = test_tensor(ctx, arena, dy, n);
        vka_tensor dy2_again = test_tensor(ctx, arena, dy2, n);
        vka_tensor keep_x = test_tensor(ctx, arena, x, n); /* the forward input, for the backward */
        vka_tensor y = in_place ? gx.t : gy.t, dx = in_place ? gdy.t : gdx.t;
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        vka_tensor dsum = in_place ? gdy2.t : gsum.t;
        TEST_OK(vka_relu_backward(cmd, n, dx, gdy.t, keep_x));
        TEST_OK(vka_relu_backward_sum(cmd, n, dsum, keep_dy, gdy2.t, keep_x));
        if (in_place) TEST_OK(vka_relu_backward_sum(cmd, n, dy_again, dy_again, dy2_again, keep_x));
        TEST_OK(vka_relu_forward(cmd, n, y, gx.t));
        test_run(cmd);
        vka_cmd_destroy(cmd);
        got[run][0] = test_read(ctx, y, n);
        got[run][1] = test_read(ctx, dx, n);
        got[run][2] = test_read(ctx, dsum, n);
        if (in_place) {
            float *again = test_read(ctx, dy_again, n);
            expect_bits("relu backward_sum in place on dy", n, again, rsum);
            free(again);
        }
        test_check_guard(ctx, gx), test_check_guard(ctx, gdy), test_check_guard(ctx, gy), test_check_guard(ctx, gdx);
        test_check_guard(ctx, gdy2), test_check_guard(ctx, gsum);
    }
    expect_bits(in_place ? "relu forward in place" : "relu forward", n, got[0][0], ry);
    expect_bits(in_place ? "relu backward in place" : "relu backward", n, got[0][1], rdx);
    expect_bits(in_place ? "relu backward_sum in place" : "relu backward_sum", n, got[0][2], rsum);
    for (int k = 0; k < 3; k++) assert_memory_equal(got[0][k], got[1][k], n * 4);
    for (int r = 0; r < 2; r++) free(got[r][0]), free(got[r][1]), free(got[r][2]);
    free(x), free(dy), free(dy2), free(dxd), free(ddy), free(ry), free(rdx), free(rsum);
    vka_arena_destroy(arena);
}

static void relu_forward_and_backward_match_reference_at_awkward_sizes(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSIZES; i++) check_relu(ctx, sizes[i], 0);
    test_context_finish(ctx);
}

static void relu_runs_in_place(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSIZES; i++) check_relu(ctx, sizes[i], 1);
    test_context_finish(ctx);
}

/* mode 0: y = a + b in a new tensor; 1: y is a; 2: y is b; 3: add_inplace a += b. */
static void check_add(vka_context *ctx, uint64_t n, int mode)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "add"}, &arena));
    test_rng rng = {n * 17 + mode};
    float *a = malloc(n * 4), *b = malloc(n * 4), *sum = malloc(n * 4);
    test_fill_uniform(&rng, a, n, -3, 3);
    test_fill_uniform(&rng, b, n, -3, 3);
    for (uint64_t i = 0; i < n; i++) sum[i] = a[i] + b[i];
    double *da = test_to_double(a, n), *db = test_to_double(b, n), *ref = malloc(n * sizeof(double));
    ref_add_forward(ref, da, db, (int)n);
    float *got[2];
    for (int run = 0; run < 2; run++) {
        test_guarded ga = test_alloc_guarded(ctx, arena, n * 4), gb = test_alloc_guarded(ctx, arena, n * 4);
        test_guarded gy = test_alloc_guarded(ctx, arena, n * 4);
        TEST_OK(vka_upload(ctx, ga.t, 0, a, n * 4));
        TEST_OK(vka_upload(ctx, gb.t, 0, b, n * 4));
        vka_tensor y = mode == 1 || mode == 3 ? ga.t : mode == 2 ? gb.t : gy.t;
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        if (mode == 3) TEST_OK(vka_add_inplace(cmd, n, ga.t, gb.t));
        else TEST_OK(vka_add_forward(cmd, n, y, ga.t, gb.t));
        test_run(cmd);
        vka_cmd_destroy(cmd);
        got[run] = test_read(ctx, y, n);
        test_check_guard(ctx, ga), test_check_guard(ctx, gb), test_check_guard(ctx, gy);
    }
    char what[64];
    snprintf(what, sizeof what, "add mode %d n=%llu", mode, (unsigned long long)n);
    test_expect_close(what, got[0], ref, n, 1e-14);
    if (memcmp(got[0], sum, n * 4) != 0) fail_msg("%s: not the correctly rounded float sum", what);
    assert_memory_equal(got[0], got[1], n * 4);
    free(got[0]), free(got[1]), free(a), free(b), free(sum), free(da), free(db), free(ref);
    vka_arena_destroy(arena);
}

static void add_matches_reference_at_awkward_sizes_also_in_place(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSIZES; i++)
        for (int mode = 0; mode < 4; mode++) check_add(ctx, sizes[i], mode);
    test_context_finish(ctx);
}

/* The ReLU backward and the in-place add read their inputs through texel buffers where the
 * device has the formats (not in place); VKANCHOR_TEXEL=0 keeps the storage-buffer variants:
 * both are checked. */
static void relu_backward_and_add_texel_and_storage_variants_match_reference(void **state)
{
    (void)state;
    for (int storage = 0; storage < 2; storage++) {
        if (storage) setenv("VKANCHOR_TEXEL", "0", 1);
        vka_context *ctx = test_context();
        for (size_t i = 0; i < NSIZES; i++) {
            check_relu(ctx, sizes[i], 0);
            check_add(ctx, sizes[i], 3);
        }
        const vka_features *f = &vka_context_device(ctx)->features;
        static const char *const texel_kernels[6] = {"relu_bwd_texel",     "relu_bwd_vec4_texel",
                                                     "relu_bwd_sum_texel", "relu_bwd_sum_vec4_texel",
                                                     "add_inplace_texel",  "add_inplace_vec4_texel"};
        int texel_ran = 0;
        for (int k = 0; k < 6; k++) texel_ran += vka_kernel_built(ctx, texel_kernels[k], -1, 0);
        if (storage ? texel_ran != 0 : f->texel_buffer_r32f && f->texel_buffer_rgba32f && texel_ran != 6)
            fail_msg("%d of the 6 texel variants of the ReLU backward and in-place add ran (VKANCHOR_TEXEL %s)",
                     texel_ran, storage ? "0" : "unset");
        if (!vka_kernel_built(ctx, "relu_bwd", -1, 0) && !vka_kernel_built(ctx, "relu_bwd_texel", -1, 0))
            fail_msg("no scalar ReLU backward ran");
        test_context_finish(ctx);
        unsetenv("VKANCHOR_TEXEL");
    }
}

/* A 4 KiB storage range cuts 65537 floats into 65 dispatches per op. */
static void pointwise_ops_split_tensors_larger_than_the_storage_range(void **state)
{
    (void)state;
    setenv("VKANCHOR_MAX_STORAGE_RANGE", "4096", 1);
    vka_context *ctx = test_context();
    unsetenv("VKANCHOR_MAX_STORAGE_RANGE");
    assert_int_equal(vka_context_limits(ctx)->max_storage_buffer_range, 4096);
    for (uint64_t n = 65536; n <= 65537; n++) {
        check_relu(ctx, n, 0);
        check_relu(ctx, n, 1);
        for (int mode = 0; mode < 4; mode++) check_add(ctx, n, mode);
    }
    test_context_finish(ctx);
}

/* Rejected calls create no kernel. */
#define expect_rejected(ctx, cmd, got, op) test_expect_rejected_before_kernels(ctx, cmd, got, op)

static void pointwise_ops_reject_bad_calls_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bad"}, &arena));
    vka_tensor a, b, y;
    TEST_OK(vka_arena_alloc(arena, 64 * 4, &a));
    TEST_OK(vka_arena_alloc(arena, 64 * 4, &b));
    TEST_OK(vka_arena_alloc(arena, 63 * 4, &y));
    vka_tensor shifted = vka_tensor_slice(a, 16, 48 * 4), none = {0};
    for (int i = 0; i < 13; i++) {
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        switch (i) {
        case 0: expect_rejected(ctx, cmd, vka_relu_forward(cmd, 0, b, a), "relu_forward"); break;
        case 1: expect_rejected(ctx, cmd, vka_relu_forward(cmd, 64, y, a), "relu_forward"); break;
        case 2: expect_rejected(ctx, cmd, vka_relu_backward(cmd, 64, b, a, y), "relu_backward"); break;
        case 3: expect_rejected(ctx, cmd, vka_relu_backward(cmd, 64, b, none, a), "relu_backward"); break;
        case 4: expect_rejected(ctx, cmd, vka_add_forward(cmd, 64, y, a, b), "add_forward"); break;
        case 5: expect_rejected(ctx, cmd, vka_add_inplace(cmd, 64, a, y), "add_inplace"); break;
        case 6: expect_rejected(ctx, cmd, vka_add_inplace(cmd, 0, a, b), "add_inplace"); break;
        /* partial overlaps: an output shifted against an input */
        case 7: expect_rejected(ctx, cmd, vka_relu_forward(cmd, 48, shifted, a), "relu_forward"); break;
        case 8: expect_rejected(ctx, cmd, vka_add_forward(cmd, 48, shifted, a, b), "add_forward"); break;
        case 9: expect_rejected(ctx, cmd, vka_relu_backward(cmd, 48, shifted, b, a), "relu_backward"); break;
        case 10: expect_rejected(ctx, cmd, vka_relu_backward_sum(cmd, 64, b, a, y, a), "relu_backward_sum"); break;
        case 11: expect_rejected(ctx, cmd, vka_relu_backward_sum(cmd, 64, b, a, none, a), "relu_backward_sum"); break;
        case 12:
            expect_rejected(ctx, cmd, vka_relu_backward_sum(cmd, 48, shifted, b, a, b), "relu_backward_sum");
            break;
        }
        vka_cmd_destroy(cmd);
    }
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* Every variant of the family's ops (batchnorm, pointwise, pool), run in one context, gets a
 * kernel of its own under its own name: the cache keys kernels by their whole desc, and the
 * names are what timings and the op tests tell them apart by. */
static void norm_family_ops_share_one_context_without_kernel_collisions(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "family"}, &arena));
    vka_tensor a = test_tensor(ctx, arena, NULL, 4096), b = test_tensor(ctx, arena, NULL, 4096);
    vka_tensor c = test_tensor(ctx, arena, NULL, 4096), small[6];
    for (int i = 0; i < 6; i++) small[i] = test_tensor(ctx, arena, NULL, 64);
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    for (uint32_t hw = 15; hw <= 17; hw++) { /* SPAN (2*2*15 % 4 == 0), vec4 and scalar variants */
        vka_batchnorm_desc d = {.n = 2, .c = hw == 15 ? 2 : 3, .hw = hw, .relu = 1};
        vka_tensor scratch = test_tensor(ctx, arena, NULL, vka_batchnorm_scratch_bytes(ctx, &d) / 4);
        vka_batchnorm_io io = {.x = a, .y = c, .gamma = small[4], .beta = small[5], .running_mean = small[2],
                               .running_var = small[3], .save_mean = small[0], .save_invstd = small[1],
                               .scratch = scratch};
        TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN, &io));
        TEST_OK(vka_batchnorm_backward(cmd, &d, c, small[2], small[3], b, a, small[0], small[1], small[4], small[5],
                                       scratch));
        io.running_mean = small[0], io.running_var = small[1];
        TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_EVAL, &io));
        io.residual = b;
        TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_EVAL, &io));
        if (hw == 15) continue;
        TEST_OK(vka_relu_forward(cmd, 2 * 3 * hw, c, a));
        TEST_OK(vka_relu_backward(cmd, 2 * 3 * hw, c, b, a));
        TEST_OK(vka_relu_backward_sum(cmd, 2 * 3 * hw, c, b, a, a));
        TEST_OK(vka_add_forward(cmd, 2 * 3 * hw, c, a, b));
        TEST_OK(vka_add_inplace(cmd, 2 * 3 * hw, c, a));
    }
    vka_maxpool_desc md = {.n = 2, .c = 3, .h = 8, .w = 8, .k = 2};
    TEST_OK(vka_maxpool_forward(cmd, &md, c, b, a));
    TEST_OK(vka_maxpool_backward(cmd, &md, a, c, b));
    TEST_OK(vka_global_avgpool_forward(cmd, 2, 3, 64, c, a));
    TEST_OK(vka_global_avgpool_backward(cmd, 2, 3, 64, a, c));
    test_run(cmd);
    /* 10 batchnorm + 8 pointwise + 4 pool variants, 2 batchnorm + residual and 2
     * relu_backward_sum variants, 4 SPAN batchnorm and 1 SPAN batchnorm + residual variants. */
    const vka_kernel_cache *kc = &ctx->kernels;
    for (uint32_t i = 0; i < kc->capacity; i++)
        for (uint32_t j = 0; j < i && kc->table[i]; j++)
            if (kc->table[j] && strcmp(kc->table[i]->desc.name, kc->table[j]->desc.name) == 0)
                fail_msg("two kernels are named %s", kc->table[i]->desc.name);
    assert_int_equal(kc->count, 31);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relu_forward_and_backward_match_reference_at_awkward_sizes),
        cmocka_unit_test(relu_runs_in_place),
        cmocka_unit_test(relu_backward_and_add_texel_and_storage_variants_match_reference),
        cmocka_unit_test(add_matches_reference_at_awkward_sizes_also_in_place),
        cmocka_unit_test(pointwise_ops_split_tensors_larger_than_the_storage_range),
        cmocka_unit_test(pointwise_ops_reject_bad_calls_without_dispatching),
        cmocka_unit_test(norm_family_ops_share_one_context_without_kernel_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
