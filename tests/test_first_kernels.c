/* The first kernels (axpy, sum/max reduction, matmul) against plain-C references.
 *
 * Tolerances (normalized error e = sum (gpu-ref)^2 / sum ref^2, ref in double):
 *   axpy        e <= 1e-12  (one rounding, or none with a fused multiply-add)
 *   matmul      e <= 1e-10  (fp32 dot products of length K <= 512: ~1e-13 typical)
 *   reduce sum  |gpu - ref| <= 1e-6 * sum |x|  (fp32 tree); max is exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static const uint64_t awkward_sizes[] = {1, 7, 1000, 65537};

static void check_axpy_sizes(vka_context *ctx)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "axpy"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {42};
    for (size_t s = 0; s < sizeof awkward_sizes / sizeof *awkward_sizes; s++) {
        uint64_t n = awkward_sizes[s];
        float *x = malloc(n * 4), *y = malloc(n * 4), *out = malloc(n * 4);
        double *ref = malloc(n * sizeof *ref);
        test_fill_uniform(&rng, x, n, -2, 2);
        test_fill_uniform(&rng, y, n, -2, 2);
        const float a = -1.75f;
        for (uint64_t i = 0; i < n; i++) ref[i] = (double)a * x[i] + y[i];
        test_guarded gx = test_alloc_guarded(ctx, arena, n * 4), gy = test_alloc_guarded(ctx, arena, n * 4);
        TEST_OK(vka_upload(ctx, gx.t, 0, x, n * 4));
        TEST_OK(vka_upload(ctx, gy.t, 0, y, n * 4));
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_axpy(cmd, a, gx.t, gy.t, n));
        TEST_OK(vka_cmd_submit(cmd));
        TEST_OK(vka_cmd_wait(cmd));
        TEST_OK(vka_download(ctx, gy.t, 0, out, n * 4));
        double e = test_normalized_error(out, ref, n);
        if (!(e <= 1e-12)) fail_msg("axpy n=%llu: normalized error %g > 1e-12", (unsigned long long)n, e);
        test_check_guard(ctx, gx);
        test_check_guard(ctx, gy);
        free(x), free(y), free(out), free(ref);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
}

static void axpy_matches_reference_at_awkward_sizes(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    check_axpy_sizes(ctx);
    test_context_finish(ctx);
}

/* A 4 KiB storage range forces 65537 floats into 65 dispatches of one op. */
static void axpy_splits_tensors_larger_than_the_storage_range(void **state)
{
    (void)state;
    setenv("VKANCHOR_MAX_STORAGE_RANGE", "4096", 1);
    vka_context *ctx = test_context();
    unsetenv("VKANCHOR_MAX_STORAGE_RANGE");
    assert_int_equal(vka_context_limits(ctx)->max_storage_buffer_range, 4096);
    check_axpy_sizes(ctx);
    test_context_finish(ctx);
}

static void reduce_sum_max_matches_reference_and_repeats_bit_for_bit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "reduce"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {7};
    const uint64_t sizes[] = {1, 7, 1000, 65537, 1 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint64_t n = sizes[s];
        float *x = malloc(n * 4);
        test_fill_uniform(&rng, x, n, -1, 1);
        x[n / 2] = 3.5f;                  /* a known maximum somewhere in the middle */
        if (n > 1) x[n / 3] = -4.25f;     /* and a larger magnitude below zero (absmax) */
        double sum = 0, abs_sum = 0;
        float mx = -INFINITY, amx = 0;
        for (uint64_t i = 0; i < n; i++)
            sum += x[i], abs_sum += fabs(x[i]), mx = x[i] > mx ? x[i] : mx, amx = fabsf(x[i]) > amx ? fabsf(x[i]) : amx;
        vka_tensor tx, scratch;
        TEST_OK(vka_arena_alloc(arena, n * 4, &tx));
        TEST_OK(vka_arena_alloc(arena, vka_reduce_scratch_bytes(ctx, n), &scratch));
        test_guarded out = test_alloc_guarded(ctx, arena, 8);
        TEST_OK(vka_upload(ctx, tx, 0, x, n * 4));
        float got[2][2];
        for (int run = 0; run < 2; run++) {
            TEST_OK(vka_cmd_reset(cmd));
            TEST_OK(vka_reduce_sum_max(cmd, out.t, tx, n, scratch));
            TEST_OK(vka_cmd_submit(cmd));
            TEST_OK(vka_cmd_wait(cmd));
            TEST_OK(vka_download(ctx, out.t, 0, got[run], 8));
        }
        if (!(fabs(got[0][0] - sum) <= 1e-6 * abs_sum + 1e-7))
            fail_msg("sum n=%llu: %.9g vs %.9g", (unsigned long long)n, got[0][0], sum);
        assert_true(got[0][1] == mx);
        assert_memory_equal(got[0], got[1], 8);
        /* The absmax variant: the same sum, max |x|. */
        float ga[2];
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_reduce_sum_absmax(cmd, out.t, tx, n, scratch));
        TEST_OK(vka_cmd_submit(cmd));
        TEST_OK(vka_cmd_wait(cmd));
        TEST_OK(vka_download(ctx, out.t, 0, ga, 8));
        assert_true(ga[0] == got[0][0]);
        if (ga[1] != amx) fail_msg("absmax n=%llu: %g vs %g", (unsigned long long)n, ga[1], amx);
        /* Halves in [-1, 1]: every partial sum is exact in fp32 (below 2^23), so the sum must be
         * exact too; an element lost or counted twice at a group boundary shows (the tolerance
         * above, 1e-6 of sum |x|, would hide one at n = 2^20). */
        double exact = 0;
        for (uint64_t i = 0; i < n; i++) {
            int k = (int)test_uniform(&rng, 0, 5);
            x[i] = 0.5f * (float)((k < 4 ? k : 4) - 2);
            exact += x[i];
        }
        TEST_OK(vka_upload(ctx, tx, 0, x, n * 4));
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_reduce_sum_max(cmd, out.t, tx, n, scratch));
        TEST_OK(vka_cmd_submit(cmd));
        TEST_OK(vka_cmd_wait(cmd));
        TEST_OK(vka_download(ctx, out.t, 0, ga, 8));
        if (ga[0] != exact) fail_msg("exact sum n=%llu: %.9g vs %.9g", (unsigned long long)n, ga[0], exact);
        test_check_guard(ctx, out);
        free(x);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* C = op(A) op(B) in double. */
static void ref_matmul(double *c, const float *a, const float *b, int M, int N, int K, int ta, int tb)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? a[k * M + m] : a[m * K + k]) * (tb ? b[n * K + k] : b[k * N + n]);
            c[m * N + n] = s;
        }
}

static void check_matmul(vka_context *ctx, vka_matmul_variant variant)
{
    static const int shapes[][3] = {{1, 1, 1}, {17, 33, 65}, {256, 512, 128}, {64, 64, 64}, {3, 5, 400}};
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "matmul"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {99};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)K * N * 4), *c = malloc((size_t)M * N * 4),
              *c2 = malloc((size_t)M * N * 4);
        double *ref = malloc((size_t)M * N * sizeof *ref);
        test_fill_uniform(&rng, a, (size_t)M * K, -1, 1);
        test_fill_uniform(&rng, b, (size_t)K * N, -1, 1);
        vka_tensor ta, tb;
        TEST_OK(vka_arena_alloc(arena, (uint64_t)M * K * 4, &ta));
        TEST_OK(vka_arena_alloc(arena, (uint64_t)K * N * 4, &tb));
        test_guarded tc = test_alloc_guarded(ctx, arena, (uint64_t)M * N * 4);
        TEST_OK(vka_upload(ctx, ta, 0, a, (uint64_t)M * K * 4));
        TEST_OK(vka_upload(ctx, tb, 0, b, (uint64_t)K * N * 4));
        for (int trans = 0; trans < 4; trans++) {
            int tA = trans & 1, tB = trans >> 1;
            vka_matmul_desc d = {.m = M, .n = N, .k = K, .trans_a = tA, .trans_b = tB, .variant = variant};
            ref_matmul(ref, a, b, M, N, K, tA, tB);
            TEST_OK(vka_cmd_reset(cmd));
            TEST_OK(vka_matmul(cmd, tc.t, ta, tb, &d));
            TEST_OK(vka_cmd_submit(cmd));
            TEST_OK(vka_cmd_wait(cmd));
            TEST_OK(vka_download(ctx, tc.t, 0, c, (uint64_t)M * N * 4));
            double e = test_normalized_error(c, ref, (size_t)M * N);
            if (!(e <= 1e-10))
                fail_msg("matmul variant %d %dx%dx%d trans %d%d: normalized error %g > 1e-10", variant, M, N, K, tA,
                         tB, e);
            /* The same op again gives the same bits. */
            TEST_OK(vka_cmd_submit(cmd));
            TEST_OK(vka_cmd_wait(cmd));
            TEST_OK(vka_download(ctx, tc.t, 0, c2, (uint64_t)M * N * 4));
            assert_memory_equal(c, c2, (size_t)M * N * 4);
            test_check_guard(ctx, tc);
        }
        free(a), free(b), free(c), free(c2), free(ref);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
}

static void matmul_tiled_matches_reference_with_every_transpose(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    check_matmul(ctx, VKA_MATMUL_TILED);
    test_context_finish(ctx);
}

static void matmul_texel_matches_reference_with_every_transpose(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    check_matmul(ctx, VKA_MATMUL_TEXEL);
    test_context_finish(ctx);
}

static void matmul_picks_the_texel_variant_on_cpu_devices(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "choose"}, &arena));
    vka_tensor a, b;
    TEST_OK(vka_arena_alloc(arena, 64 * 64 * 4, &a));
    TEST_OK(vka_arena_alloc(arena, 64 * 64 * 4, &b));
    vka_matmul_desc d = {.m = 64, .n = 64, .k = 64};
    const char *env = getenv("VKANCHOR_MATMUL");
    vka_matmul_variant v = vka_matmul_choose(ctx, &d, a, b);
    if (!env || !*env)
        assert_int_equal(v, vka_context_device(ctx)->type == VKA_DEVICE_CPU ? VKA_MATMUL_TEXEL : VKA_MATMUL_TILED);
    d.variant = VKA_MATMUL_TILED;
    assert_int_equal(vka_matmul_choose(ctx, &d, a, b), VKA_MATMUL_TILED);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(axpy_matches_reference_at_awkward_sizes),
        cmocka_unit_test(axpy_splits_tensors_larger_than_the_storage_range),
        cmocka_unit_test(reduce_sum_max_matches_reference_and_repeats_bit_for_bit),
        cmocka_unit_test(matmul_tiled_matches_reference_with_every_transpose),
        cmocka_unit_test(matmul_texel_matches_reference_with_every_transpose),
        cmocka_unit_test(matmul_picks_the_texel_variant_on_cpu_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
