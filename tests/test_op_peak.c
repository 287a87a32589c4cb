/* The device peak probes (src/nn/peak.c): each computes what its FLOP or byte count says,
 * and the measurement reports positive, finite rates. Never a time limit: rates depend on
 * the machine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/peak.h"
#include "test_util.h"

/* The shader's chains in float, one invocation: 2 vec4 chains (8 lanes, each its own start),
 * 64 steps of fma(a, m, c) per iteration; the output is the sum of all lanes. */
static float fma_reference(uint32_t i, uint32_t iterations, float m, float c)
{
    static const float lane_start[4] = {0.0f, 0.01f, 0.02f, 0.03f};
    float s = 0;
    for (int j = 0; j < 2; j++)
        for (int lane = 0; lane < 4; lane++) {
            float a = (float)(i & 255u) * 1e-3f + lane_start[lane];
            if (j) a += 0.1f;
            for (uint32_t k = 0; k < iterations * 64; k++) a = fmaf(a, m, c);
            s += a;
        }
    return s;
}

static void fma_probe_computes_its_chains(void **state)
{
    (void)state;
    test_rig r = test_rig_open("peak");
    vka_context *ctx = r.ctx;
    vka_cmd *cmd = r.cmd;
    const uint32_t n = 1000, iterations = 5;
    test_guarded out = test_alloc_guarded(ctx, r.arena, n * 4);
    TEST_OK(vka_fill(ctx, out.t, 0x7fc00000u));
    /* m near 1: the chains move slowly towards 1, so every step shows in the result (7/8 of the
     * steps leave each lane ~4% further from 1 than all of them). */
    TEST_OK(vka_peak_fma(cmd, out.t, n, iterations, 0.999f, 0.001f));
    test_run(cmd);
    float *got = test_read(ctx, out.t, n);
    for (uint32_t i = 0; i < n; i++) {
        float want = fma_reference(i, iterations, 0.999f, 0.001f);
        /* fma() may round twice on some devices: up to ~1/(1 - m) ulps over the contracting chains. */
        if (!(fabsf(got[i] - want) <= 1e-4f * fabsf(want)))
            fail_msg("peak_fma invocation %u: %.9g, reference %.9g", i, got[i], want);
    }
    test_check_guard(ctx, out);
    free(got);
    test_rig_close(&r);
}

static void copy_probe_copies_every_vec4_and_nothing_more(void **state)
{
    (void)state;
    test_rig r = test_rig_open("peak");
    vka_context *ctx = r.ctx;
    vka_cmd *cmd = r.cmd;
    const uint32_t n = 1027; /* vec4s: not a multiple of any workgroup */
    float *src = malloc(n * 16);
    test_rng rng = {7};
    test_fill_uniform(&rng, src, n * 4, -1, 1);
    vka_tensor s;
    TEST_OK(vka_arena_alloc(r.arena, n * 16, &s));
    TEST_OK(vka_upload(ctx, s, 0, src, n * 16));
    test_guarded dst = test_alloc_guarded(ctx, r.arena, n * 16);
    TEST_OK(vka_fill(ctx, dst.t, 0x7fc00000u));
    TEST_OK(vka_peak_copy(cmd, dst.t, s, n));
    test_run(cmd);
    float *got = test_read(ctx, dst.t, n * 4);
    if (memcmp(got, src, n * 16) != 0) fail_msg("peak_copy: dst differs from src");
    test_check_guard(ctx, dst);
    free(got);
    free(src);
    test_rig_close(&r);
}

static void measure_peak_reports_positive_finite_rates(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_device_peak pk;
    TEST_OK(vka_measure_peak(ctx, &pk));
    print_message("%s: %.1f GFLOP/s fp32 FMA, %.1f GB/s copy (%llu MiB)\n", vka_context_device(ctx)->name,
                  pk.fma_gflops, pk.copy_gbps, (unsigned long long)(pk.copy_bytes >> 20));
    assert_true(isfinite(pk.fma_gflops) && pk.fma_gflops > 0);
    assert_true(isfinite(pk.copy_gbps) && pk.copy_gbps > 0);
    assert_true(pk.copy_bytes >= (1u << 20) && pk.copy_bytes % 16 == 0);
    test_context_finish(ctx);
}

static void probes_refuse_bad_calls_without_dispatching(void **state)
{
    (void)state;
    test_rig r = test_rig_open("peak");
    vka_context *ctx = r.ctx;
    vka_cmd *cmd = r.cmd;
    vka_tensor t;
    TEST_OK(vka_arena_alloc(r.arena, 1024, &t));
    test_expect_rejected(ctx, cmd, vka_peak_fma(cmd, t, 0, 10, 0.9f, 0.1f), "peak_fma");
    test_expect_rejected(ctx, cmd, vka_peak_fma(cmd, t, 257, 10, 0.9f, 0.1f), "peak_fma"); /* 1028 bytes > 1024 */
    test_expect_rejected(ctx, cmd, vka_peak_copy(cmd, t, t, 0), "peak_copy");
    test_expect_rejected(ctx, cmd, vka_peak_copy(cmd, t, t, 65), "peak_copy"); /* 1040 bytes > 1024 */
    test_rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fma_probe_computes_its_chains),
        cmocka_unit_test(copy_probe_copies_every_vec4_and_nothing_more),
        cmocka_unit_test(measure_peak_reports_positive_finite_rates),
        cmocka_unit_test(probes_refuse_bad_calls_without_dispatching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
