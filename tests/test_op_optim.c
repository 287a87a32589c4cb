/* Optimizer steps (src/nn/optim.c) against tests/ref/ref_optim.c: 5 consecutive steps on
 * the GPU (fp32 state) vs 5 in double from the same float start.
 *
 * Tolerances (normalized error e = sum (gpu-ref)^2 / sum ref^2 after the 5th step):
 *   SGD    w, momentum buffer   e <= 1e-12  (a few fp32 roundings per step)
 *   AdamW  w, m, v              e <= 1e-11  (fp32 sqrt and divide per step as well)
 * Tensors larger than the storage-buffer range are chunked: rerun with a 4 KiB range
 * (1024 floats per dispatch). Determinism: a second run from the same start gives the
 * same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "ref_ops.h"
#include "test_util.h"

#define TOL_SGD 1e-12
#define TOL_ADAMW 1e-11
#define STEPS 5

static const uint64_t sizes[] = {1, 7, 1000, 3001};
#define NSIZES (sizeof sizes / sizeof *sizes)

/* Runs STEPS optimizer steps on the GPU (a fresh gradient each step), returns the final
 * parameters and state in `out` (3 arrays of n floats: w, state1, state2). */
typedef struct opt_case {
    int adamw;
    vka_sgd_params sgd;
    vka_adamw_params adam;
} opt_case;

static void gpu_steps(vka_context *ctx, vka_arena *arena, const opt_case *c, uint64_t n, const float *w0,
                      float *const *grads, float *out[3])
{
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    int has_buf = c->adamw || c->sgd.momentum != 0.0;
    test_guarded w = test_alloc_guarded(ctx, arena, n * 4), s1 = test_alloc_guarded(ctx, arena, n * 4),
                 s2 = test_alloc_guarded(ctx, arena, n * 4);
    vka_tensor g = test_tensor(ctx, arena, NULL, n);
    TEST_OK(vka_upload(ctx, w.t, 0, w0, n * 4));
    TEST_OK(vka_fill(ctx, s1.t, 0));
    TEST_OK(vka_fill(ctx, s2.t, 0));
    for (int step = 1; step <= STEPS; step++) {
        TEST_OK(vka_upload(ctx, g, 0, grads[step - 1], n * 4));
        TEST_OK(vka_cmd_reset(cmd));
        if (c->adamw) {
            vka_adamw_params p = c->adam;
            p.step = (uint32_t)step;
            TEST_OK(vka_adamw_step(cmd, &p, n, w.t, s1.t, s2.t, g));
        } else {
            TEST_OK(vka_sgd_step(cmd, &c->sgd, n, w.t, has_buf ? s1.t : (vka_tensor){0}, g));
        }
        test_run(cmd);
    }
    out[0] = test_read(ctx, w.t, n), out[1] = test_read(ctx, s1.t, n), out[2] = test_read(ctx, s2.t, n);
    test_check_guard(ctx, w), test_check_guard(ctx, s1), test_check_guard(ctx, s2);
    vka_cmd_destroy(cmd);
}

static void check_case(vka_context *ctx, const opt_case *c)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "optim"}, &arena));
    test_rng rng = {2024};
    for (size_t si = 0; si < NSIZES; si++) {
        uint64_t n = sizes[si];
        float *w0 = malloc(n * 4), *grads[STEPS];
        test_fill_uniform(&rng, w0, n, -1, 1);
        for (int s = 0; s < STEPS; s++) {
            grads[s] = malloc(n * 4);
            test_fill_uniform(&rng, grads[s], n, -1, 1);
        }
        double *w = test_to_double(w0, n), *s1 = calloc(n, sizeof(double)), *s2 = calloc(n, sizeof(double));
        for (int s = 0; s < STEPS; s++) {
            double *g = test_to_double(grads[s], n);
            if (c->adamw)
                ref_adamw_step(w, s1, s2, g, (int)n, c->adam.lr, c->adam.beta1, c->adam.beta2, c->adam.eps,
                               c->adam.weight_decay, s + 1);
            else
                ref_sgd_step(w, c->sgd.momentum != 0.0 ? s1 : NULL, g, (int)n, c->sgd.lr, c->sgd.momentum,
                             c->sgd.weight_decay, c->sgd.nesterov);
            free(g);
        }
        float *got[3], *again[3];
        gpu_steps(ctx, arena, c, n, w0, grads, got);
        gpu_steps(ctx, arena, c, n, w0, grads, again);
        char what[128];
        double tol = c->adamw ? TOL_ADAMW : TOL_SGD;
        const char *opt = c->adamw ? "adamw" : c->sgd.nesterov ? "sgd nesterov" : "sgd";
        snprintf(what, sizeof what, "%s n=%llu momentum=%g w", opt, (unsigned long long)n, c->sgd.momentum);
        test_expect_close(what, got[0], w, n, tol);
        if (c->adamw || c->sgd.momentum != 0.0) {
            snprintf(what, sizeof what, "%s n=%llu %s", opt, (unsigned long long)n, c->adamw ? "m" : "momentum buffer");
            test_expect_close(what, got[1], s1, n, tol);
        } else {
            for (uint64_t i = 0; i < n; i++)
                if (got[1][i] != 0.0f) fail_msg("sgd without momentum touched the buffer");
        }
        if (c->adamw) {
            snprintf(what, sizeof what, "%s n=%llu v", opt, (unsigned long long)n);
            test_expect_close(what, got[2], s2, n, tol);
        }
        for (int i = 0; i < 3; i++) {
            if (memcmp(got[i], again[i], n * 4)) fail_msg("%s n=%llu: a second run gave different bits", opt,
                                                          (unsigned long long)n);
            free(got[i]), free(again[i]);
        }
        for (int s = 0; s < STEPS; s++) free(grads[s]);
        free(w0), free(w), free(s1), free(s2);
    }
    vka_arena_destroy(arena);
}

static const opt_case sgd_cases[] = {
    {.sgd = {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = 0}},
    {.sgd = {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = 1}},
    {.sgd = {.lr = 0.05, .momentum = 0.0, .weight_decay = 5e-4}},
};
static const opt_case adamw_cases[] = {
    {.adamw = 1, .adam = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.05}},
    {.adamw = 1, .adam = {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.0}},
};

static vka_context *context_with_range(int small_range)
{
    if (!small_range) return test_context();
    setenv("VKANCHOR_MAX_STORAGE_RANGE", "4096", 1);
    vka_context *ctx = test_context();
    unsetenv("VKANCHOR_MAX_STORAGE_RANGE");
    assert_int_equal(vka_context_limits(ctx)->max_storage_buffer_range, 4096);
    return ctx;
}

static void run_cases(const opt_case *cases, size_t n, int small_range)
{
    vka_context *ctx = context_with_range(small_range);
    for (size_t i = 0; i < n; i++) check_case(ctx, &cases[i]);
    test_context_finish(ctx);
}

static void sgd_matches_five_reference_steps_with_momentum_nesterov_and_weight_decay(void **state)
{
    (void)state;
    run_cases(sgd_cases, sizeof sgd_cases / sizeof *sgd_cases, 0);
}

static void adamw_matches_five_reference_steps_with_bias_correction(void **state)
{
    (void)state;
    run_cases(adamw_cases, sizeof adamw_cases / sizeof *adamw_cases, 0);
}

/* How many dispatches one step of each optimizer records for n floats (0: no timestamps). */
static void expect_dispatches(vka_context *ctx, uint64_t n, uint32_t want)
{
    if (!vka_context_device(ctx)->features.timestamps) return;
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "optim"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){.timing = 1}, &cmd));
    vka_tensor t[4];
    for (int i = 0; i < 4; i++) t[i] = test_tensor(ctx, arena, NULL, n);
    vka_sgd_params sgd = {.lr = 0.1, .momentum = 0.9};
    vka_adamw_params adam = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 1};
    TEST_OK(vka_sgd_step(cmd, &sgd, n, t[0], t[1], t[2]));
    TEST_OK(vka_adamw_step(cmd, &adam, n, t[0], t[1], t[2], t[3]));
    test_run(cmd);
    vka_timing tm[16];
    uint32_t got = vka_cmd_timings(cmd, tm, 16);
    assert_int_equal(got, 2 * want);
    for (uint32_t i = 0; i < got; i++) assert_string_equal(tm[i].label, i < want ? "sgd_step" : "adamw_step");
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
}

static void optimizers_split_tensors_larger_than_the_storage_range(void **state)
{
    (void)state;
    run_cases(sgd_cases, 2, 1);
    run_cases(adamw_cases, 1, 1);
    vka_context *ctx = context_with_range(1);
    expect_dispatches(ctx, 3001, 3); /* 1024 floats per 4 KiB binding */
    test_context_finish(ctx);
    ctx = context_with_range(0);
    expect_dispatches(ctx, 3001, 1);
    test_context_finish(ctx);
}

static void optimizers_reject_mismatched_sizes_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "optim"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_tensor a = test_tensor(ctx, arena, NULL, 100), b = test_tensor(ctx, arena, NULL, 100);
    vka_tensor c = test_tensor(ctx, arena, NULL, 100), d = test_tensor(ctx, arena, NULL, 100);
    vka_tensor small = test_tensor(ctx, arena, NULL, 99), none = {0};
    vka_tensor odd = vka_tensor_slice(test_tensor(ctx, arena, NULL, 101), 4, 400); /* misaligned start */
    vka_sgd_params sgd = {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
    test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, &sgd, 100, small, b, c), "sgd_step");
    test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, &sgd, 100, a, small, c), "sgd_step");
    test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, &sgd, 100, a, b, small), "sgd_step");
    test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, &sgd, 100, a, none, c), "sgd_step"); /* momentum needs a buffer */
    test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, &sgd, 0, a, b, c), "sgd_step");
    test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, NULL, 100, a, b, c), "sgd_step");
    if (vka_context_device(ctx)->limits.min_storage_buffer_offset_alignment > 4)
        test_expect_rejected(ctx, cmd, vka_sgd_step(cmd, &sgd, 100, odd, b, c), "sgd_step");
    vka_adamw_params adam = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .step = 1};
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &adam, 100, small, b, c, d), "adamw_step");
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &adam, 100, a, small, c, d), "adamw_step");
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &adam, 100, a, b, small, d), "adamw_step");
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &adam, 100, a, b, c, small), "adamw_step");
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &adam, 100, a, b, none, d), "adamw_step");
    vka_adamw_params bad = adam;
    bad.step = 0; /* t counts from 1 */
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &bad, 100, a, b, c, d), "adamw_step");
    bad = adam, bad.beta2 = 1.0;
    test_expect_rejected(ctx, cmd, vka_adamw_step(cmd, &bad, 100, a, b, c, d), "adamw_step");
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sgd_matches_five_reference_steps_with_momentum_nesterov_and_weight_decay),
        cmocka_unit_test(adamw_matches_five_reference_steps_with_bias_correction),
        cmocka_unit_test(optimizers_split_tensors_larger_than_the_storage_range),
        cmocka_unit_test(optimizers_reject_mismatched_sizes_without_dispatching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
