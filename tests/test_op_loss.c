/* Softmax cross-entropy (src/nn/loss.c) against tests/ref/ref_loss.c.
 *
 * Tolerances (ref in double from the same float logits):
 *   dlogits           normalized error e = sum (gpu-ref)^2 / sum ref^2 <= 1e-10
 *   maxprob           e <= 1e-11
 *   mean loss         |gpu - ref| <= 2e-6 * (1 + |ref|)  (fp32 exp/log per row, fp32 tree over B <= 300)
 *   correct count     exact (argmax ties -> lowest index, as the reference)
 * Determinism: a second run gives the same bits in dlogits and stats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/loss.h"
#include "ref_ops.h"
#include "test_util.h"

#define TOL_GRAD 1e-10
#define TOL_PROB 1e-11

typedef struct ce_case {
    int B, NC;
    vka_ce_target target;
    float smoothing;
    int labels;   /* 0: no labels tensor (uniform mode only) */
    int grad;     /* 0: stats only */
    int ties;     /* plant argmax ties */
    float scale;  /* logits uniform in [-scale, scale] */
} ce_case;

static void run_case(vka_context *ctx, vka_cmd *cmd, vka_arena *arena, test_rng *rng, const ce_case *c)
{
    int B = c->B, NC = c->NC;
    size_t nz = (size_t)B * NC;
    float *z = malloc(nz * 4);
    test_fill_uniform(rng, z, nz, -c->scale, c->scale);
    int32_t *lab = malloc(B * sizeof *lab);
    for (int b = 0; b < B; b++) lab[b] = (int32_t)(test_uniform(rng, 0, 1) * NC) % NC;
    /* Make about half the samples correct so the count means something. */
    for (int b = 0; b < B; b += 2) {
        int amax = 0;
        for (int j = 1; j < NC; j++)
            if (z[(size_t)b * NC + j] > z[(size_t)b * NC + amax]) amax = j;
        lab[b] = amax;
    }
    if (c->ties && NC >= 4) {
        for (int b = 0; b < B; b++) {
            float *row = z + (size_t)b * NC;
            row[1] = row[NC - 1] = c->scale + 1.0f; /* a two-way tie for the max */
            lab[b] = b % 2 ? NC - 1 : 1;            /* correct only when the label is the lower index */
        }
    }
    double *zd = test_to_double(z, nz), *rgrad = malloc(nz * sizeof(double)), *rprob = malloc(B * sizeof(double));
    int rcorrect = 0;
    enum ref_ce_target rt = c->target == VKA_CE_UNIFORM ? REF_CE_UNIFORM : REF_CE_LABEL;
    double rloss = ref_cross_entropy(rgrad, NULL, rprob, c->labels ? &rcorrect : NULL, zd, c->labels ? lab : NULL,
                                     B, NC, rt, c->smoothing);
    vka_tensor tz = test_tensor(ctx, arena, z, nz);
    vka_tensor tl = c->labels ? test_tensor_i32(ctx, arena, lab, B) : (vka_tensor){0};
    test_guarded dz = test_alloc_guarded(ctx, arena, nz * 4);
    uint64_t sbytes = vka_cross_entropy_stats_bytes(B);
    assert_int_equal(sbytes, (2 + B) * 4);
    test_guarded st = test_alloc_guarded(ctx, arena, sbytes);
    vka_cross_entropy_desc d = {.batch = B, .classes = NC, .target = c->target, .smoothing = c->smoothing};
    TEST_OK(vka_fill(ctx, dz.t, 0x7fc00000u)); /* NaN: every gradient must be written (or none) */
    TEST_OK(vka_cmd_reset(cmd));
    TEST_OK(vka_cross_entropy(cmd, &d, c->grad ? dz.t : (vka_tensor){0}, st.t, tz, tl));
    test_run(cmd);
    float *grad = test_read(ctx, dz.t, nz), *stats = test_read(ctx, st.t, 2 + B);
    char what[128];
    snprintf(what, sizeof what, "cross_entropy B=%d NC=%d target=%d smoothing=%g labels=%d grad=%d ties=%d", B, NC,
             c->target, c->smoothing, c->labels, c->grad, c->ties);
    if (c->grad) {
        test_expect_close(what, grad, rgrad, nz, TOL_GRAD);
    } else {
        for (size_t i = 0; i < nz; i++)
            if (!isnan(grad[i])) fail_msg("%s: wrote dlogits without a dlogits tensor", what);
    }
    if (!(fabs(stats[VKA_CE_STAT_LOSS] - rloss) <= 2e-6 * (1 + fabs(rloss))))
        fail_msg("%s: mean loss %.9g, reference %.9g", what, stats[VKA_CE_STAT_LOSS], rloss);
    if (stats[VKA_CE_STAT_CORRECT] != (float)rcorrect)
        fail_msg("%s: %g correct, reference %d", what, stats[VKA_CE_STAT_CORRECT], rcorrect);
    if (c->ties) assert_int_equal(rcorrect, (B + 1) / 2);
    test_expect_close(what, stats + VKA_CE_STAT_MAXPROB, rprob, B, TOL_PROB);
    test_check_guard(ctx, dz);
    test_check_guard(ctx, st);
    /* Same inputs, same bits. */
    test_run(cmd);
    float *grad2 = test_read(ctx, dz.t, nz), *stats2 = test_read(ctx, st.t, 2 + B);
    if (memcmp(grad, grad2, nz * 4) || memcmp(stats, stats2, (2 + B) * 4)) fail_msg("%s: not bit-identical", what);
    free(z), free(lab), free(zd), free(rgrad), free(rprob), free(grad), free(stats), free(grad2), free(stats2);
}

static void run_cases(const ce_case *cases, size_t n)
{
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "loss"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {77};
    for (size_t i = 0; i < n; i++) run_case(ctx, cmd, arena, &rng, &cases[i]);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void cross_entropy_with_labels_matches_reference(void **state)
{
    (void)state;
    static const ce_case cases[] = {
        {1, 10, VKA_CE_LABEL, 0.0f, 1, 1, 0, 3},
        {5, 7, VKA_CE_LABEL, 0.0f, 1, 1, 0, 3},
        {3, 1, VKA_CE_LABEL, 0.0f, 1, 1, 0, 3},    /* one class: loss 0, gradient 0 */
        {300, 10, VKA_CE_LABEL, 0.0f, 1, 1, 0, 3}, /* more rows than the workgroup */
        {64, 10, VKA_CE_LABEL, 0.0f, 1, 1, 0, 60}, /* large logits: the max is subtracted */
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

static void cross_entropy_with_label_smoothing_matches_reference(void **state)
{
    (void)state;
    static const ce_case cases[] = {
        {1, 10, VKA_CE_LABEL, 0.1f, 1, 1, 0, 3},
        {7, 7, VKA_CE_LABEL, 0.1f, 1, 1, 0, 3},
        {300, 10, VKA_CE_LABEL, 0.1f, 1, 1, 0, 5},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

static void cross_entropy_with_uniform_target_matches_reference(void **state)
{
    (void)state;
    static const ce_case cases[] = {
        {1, 10, VKA_CE_UNIFORM, 0.0f, 1, 1, 0, 3},
        {6, 7, VKA_CE_UNIFORM, 0.3f, 1, 1, 0, 3}, /* smoothing ignored in uniform mode */
        {300, 10, VKA_CE_UNIFORM, 0.0f, 0, 1, 0, 3}, /* no labels: the count is 0 */
        {5, 10, VKA_CE_UNIFORM, 0.0f, 1, 1, 0, 60},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

static void cross_entropy_breaks_argmax_ties_toward_the_lowest_index(void **state)
{
    (void)state;
    static const ce_case cases[] = {
        {6, 10, VKA_CE_LABEL, 0.0f, 1, 1, 1, 3},
        {5, 7, VKA_CE_UNIFORM, 0.0f, 1, 1, 1, 3},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

static void cross_entropy_without_dlogits_writes_only_the_stats(void **state)
{
    (void)state;
    static const ce_case cases[] = {
        {5, 10, VKA_CE_LABEL, 0.0f, 1, 0, 0, 3},
        {300, 7, VKA_CE_LABEL, 0.1f, 1, 0, 0, 3},
        {4, 7, VKA_CE_UNIFORM, 0.0f, 0, 0, 0, 3},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

/* Labels out of range are the trainer's job: here they are never an address, such a sample
 * has no one-hot part and is never counted correct, and everything stays finite. */
static void cross_entropy_survives_out_of_range_labels(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "loss"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    enum { B = 3, NC = 4 };
    float z[B * NC] = {5, 0, 0, 0, /**/ 0, 0, 0, 5, /**/ 0, 5, 0, 0};
    int32_t lab[B] = {-1, NC, 1}; /* only the last is valid (and correct) */
    vka_tensor tz = test_tensor(ctx, arena, z, B * NC), tl = test_tensor_i32(ctx, arena, lab, B);
    test_guarded dz = test_alloc_guarded(ctx, arena, B * NC * 4);
    test_guarded st = test_alloc_guarded(ctx, arena, vka_cross_entropy_stats_bytes(B));
    vka_cross_entropy_desc d = {.batch = B, .classes = NC, .target = VKA_CE_LABEL};
    TEST_OK(vka_cross_entropy(cmd, &d, dz.t, st.t, tz, tl));
    test_run(cmd);
    float *g = test_read(ctx, dz.t, B * NC), *stats = test_read(ctx, st.t, 2 + B);
    for (int i = 0; i < B * NC; i++) assert_true(isfinite(g[i]));
    for (int i = 0; i < 2 + B; i++) assert_true(isfinite(stats[i]));
    assert_true(stats[VKA_CE_STAT_CORRECT] == 1.0f);
    test_check_guard(ctx, dz);
    test_check_guard(ctx, st);
    free(g), free(stats);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void expect_rejected(vka_context *ctx, vka_cmd *cmd, vka_result rc)
{
    assert_int_equal(rc, VKA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(vka_cmd_status(cmd), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), "cross_entropy"))
        fail_msg("error does not name cross_entropy: %s", vka_context_last_error(ctx));
    assert_int_equal(vka_cmd_submit(cmd), VKA_ERROR_INVALID_ARGUMENT); /* nothing runs */
    TEST_OK(vka_cmd_reset(cmd));
}

static void cross_entropy_rejects_mismatched_sizes_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "loss"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_cross_entropy_desc d = {.batch = 4, .classes = 10, .target = VKA_CE_LABEL};
    int32_t lab[4] = {0, 1, 2, 3};
    vka_tensor z = test_tensor(ctx, arena, NULL, 40), dz = test_tensor(ctx, arena, NULL, 40);
    vka_tensor st = test_tensor(ctx, arena, NULL, 6), l = test_tensor_i32(ctx, arena, lab, 4);
    vka_tensor small = test_tensor(ctx, arena, NULL, 3), none = {0};
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &d, dz, st, small, l));  /* logits */
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &d, small, st, z, l));   /* dlogits */
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &d, dz, small, z, l));   /* stats */
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &d, dz, st, z, small));  /* labels */
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &d, dz, st, z, none));   /* label mode needs labels */
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &d, dz, none, z, l));    /* stats are required */
    vka_cross_entropy_desc bad = d;
    bad.batch = 0;
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &bad, dz, st, z, l));
    bad = d, bad.smoothing = 1.5f;
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &bad, dz, st, z, l));
    bad = d, bad.target = (vka_ce_target)7;
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, &bad, dz, st, z, l));
    expect_rejected(ctx, cmd, vka_cross_entropy(cmd, NULL, dz, st, z, l));
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cross_entropy_with_labels_matches_reference),
        cmocka_unit_test(cross_entropy_with_label_smoothing_matches_reference),
        cmocka_unit_test(cross_entropy_with_uniform_target_matches_reference),
        cmocka_unit_test(cross_entropy_breaks_argmax_ties_toward_the_lowest_index),
        cmocka_unit_test(cross_entropy_without_dlogits_writes_only_the_stats),
        cmocka_unit_test(cross_entropy_survives_out_of_range_labels),
        cmocka_unit_test(cross_entropy_rejects_mismatched_sizes_without_dispatching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
