/* Anchored inputs and the K-anchor reduction (src/nn/anchor.c) against tests/ref/ref_anchor.c.
 *
 * Tolerances (normalized error e = sum (gpu-ref)^2 / sum ref^2, ref in double from the same
 * float inputs):
 *   train / infer input  e <= 1e-12 (the reference half is a copy, the residual one rounding;
 *                        the masked half must be exactly 0)
 *   reduce mean          e <= 1e-11 (K <= 5 fp32 adds and a divide)
 *   uncertainty          e <= 1e-10 (fp32 sigmoid, two-pass sample std, sqrt; exactly 0 for K=1)
 *   calibrated           e <= 1e-10
 * Determinism: every op run twice gives the same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/anchor.h"
#include "ref_ops.h"
#include "test_util.h"

#define TOL_INPUT 1e-12
#define TOL_MEAN 1e-11
#define TOL_UNC 1e-10

/* batch, channels, height, width, anchors: batch 1, C = 1 and 3, odd H and W, one image
 * larger than a workgroup, K = 1 and 5. */
static const vka_anchor_shape shapes[] = {
    {1, 1, 1, 1, 1}, {1, 1, 5, 7, 5}, {4, 3, 7, 9, 1}, {9, 3, 13, 11, 5}, {3, 1, 28, 28, 2},
};
#define NSHAPES (sizeof shapes / sizeof *shapes)

static void expect_same_bits(vka_context *ctx, vka_cmd *cmd, vka_tensor t, const float *first, size_t n,
                             const char *what)
{
    test_run(cmd);
    float *again = test_read(ctx, t, n);
    if (memcmp(first, again, n * 4)) fail_msg("%s: a second run gave different bits", what);
    free(again);
}

/* vka_anchor_train_input_packed into a layout with border `border` (the first conv's packed x):
 * each element the bits of the NCHW output `nchw` (B, 2C, H, W), every other float untouched. */
static void expect_packed_train_input(vka_context *ctx, vka_arena *arena, vka_cmd *cmd, const vka_anchor_shape *s,
                                      vka_tensor tx, vka_tensor tref, int masked, const float *nchw, uint32_t border,
                                      const char *what)
{
    const float sentinel = 1234.5f;
    uint32_t C2 = 2 * s->channels, H = s->height, W = s->width;
    vka_packed_layout l = {.h = H, .w = W, .hp = H + 2 * border, .wp = W + 2 * border, .c4 = (C2 + 3) / 4,
                           .border = border};
    size_t total = test_packed_floats(&l, s->batch);
    float *fill = malloc(total * 4);
    for (size_t i = 0; i < total; i++) fill[i] = sentinel;
    l.t = test_tensor(ctx, arena, fill, total);
    TEST_OK(vka_cmd_reset(cmd));
    TEST_OK(vka_anchor_train_input_packed(cmd, s, &l, tx, tref, masked));
    test_run(cmd);
    float *got = test_read(ctx, l.t, total);
    uint8_t *element = calloc(total, 1);
    for (uint32_t b = 0; b < s->batch; b++)
        for (uint32_t c = 0; c < C2; c++)
            for (uint32_t h = 0; h < H; h++)
                for (uint32_t w = 0; w < W; w++) {
                    size_t at = test_packed_index(&l, b, c, h, w);
                    element[at] = 1;
                    float want = nchw[(((size_t)b * C2 + c) * H + h) * W + w];
                    if (memcmp(&got[at], &want, 4) != 0)
                        fail_msg("%s, packed (border %u): (%u, %u, %u, %u) is %.9g, NCHW %.9g", what, border, b, c, h,
                                 w, got[at], want);
                }
    for (size_t i = 0; i < total; i++)
        if (!element[i] && got[i] != sentinel) fail_msg("%s, packed (border %u): float %zu outside the elements written", what, border, i);
    free(fill), free(got), free(element);
}

static void anchor_train_input_matches_reference_masked_and_unmasked(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "anchor"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {31};
    for (size_t i = 0; i < NSHAPES; i++) {
        const vka_anchor_shape *s = &shapes[i];
        int B = (int)s->batch, C = (int)s->channels, HW = (int)(s->height * s->width);
        size_t nx = (size_t)B * C * HW, nout = 2 * nx, half = (size_t)C * HW;
        float *x = malloc(nx * 4);
        test_fill_uniform(&rng, x, nx, -2, 2);
        int32_t *ref = malloc(B * sizeof *ref);
        for (int b = 0; b < B; b++) ref[b] = (int32_t)(test_uniform(&rng, 0, 1) * B) % B;
        ref[0] = 0; /* a sample may draw itself: residual 0 */
        double *xd = test_to_double(x, nx), *want = malloc(nout * sizeof *want);
        vka_tensor tx = test_tensor(ctx, arena, x, nx), tref = test_tensor_i32(ctx, arena, ref, B);
        for (int masked = 0; masked < 2; masked++) {
            test_guarded out = test_alloc_guarded(ctx, arena, nout * 4);
            TEST_OK(vka_cmd_reset(cmd));
            TEST_OK(vka_anchor_train_input(cmd, s, out.t, tx, tref, masked));
            test_run(cmd);
            float *got = test_read(ctx, out.t, nout);
            ref_anchor_train_input(want, xd, ref, masked, B, C, HW);
            char what[96];
            snprintf(what, sizeof what, "anchor_train_input B=%d C=%d HW=%d masked=%d", B, C, HW, masked);
            test_expect_close(what, got, want, nout, TOL_INPUT);
            if (masked)
                for (int b = 0; b < B; b++)
                    for (size_t j = 0; j < half; j++)
                        if (got[(size_t)b * 2 * half + j] != 0.0f) fail_msg("%s: masked reference not 0", what);
            test_check_guard(ctx, out);
            expect_same_bits(ctx, cmd, out.t, got, nout, what);
            /* ... and written packed (the first conv's x), with the same bits. */
            expect_packed_train_input(ctx, arena, cmd, s, tx, tref, masked, got, 1 + (uint32_t)(i % 2), what);
            free(got);
        }
        free(x), free(ref), free(xd), free(want);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void anchor_infer_input_matches_reference_for_one_and_several_anchors(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "anchor"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {32};
    for (size_t i = 0; i < NSHAPES; i++) {
        const vka_anchor_shape *s = &shapes[i];
        int K = (int)s->anchors, B = (int)s->batch, C = (int)s->channels, HW = (int)(s->height * s->width);
        size_t nx = (size_t)B * C * HW, nr = (size_t)K * C * HW, nout = (size_t)K * B * 2 * C * HW;
        float *x = malloc(nx * 4), *r = malloc(nr * 4);
        test_fill_uniform(&rng, x, nx, -2, 2);
        test_fill_uniform(&rng, r, nr, -2, 2);
        double *xd = test_to_double(x, nx), *rd = test_to_double(r, nr), *want = malloc(nout * sizeof *want);
        vka_tensor tx = test_tensor(ctx, arena, x, nx), tr = test_tensor(ctx, arena, r, nr);
        test_guarded out = test_alloc_guarded(ctx, arena, nout * 4);
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_anchor_infer_input(cmd, s, out.t, tx, tr));
        test_run(cmd);
        float *got = test_read(ctx, out.t, nout);
        ref_anchor_infer_input(want, xd, rd, K, B, C, HW);
        char what[96];
        snprintf(what, sizeof what, "anchor_infer_input K=%d B=%d C=%d HW=%d", K, B, C, HW);
        test_expect_close(what, got, want, nout, TOL_INPUT);
        test_check_guard(ctx, out);
        expect_same_bits(ctx, cmd, out.t, got, nout, what);
        free(got), free(x), free(r), free(xd), free(rd), free(want);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void anchor_reduce_matches_reference(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "anchor"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    /* K, B, classes: K = 1 (uncertainty exactly 0) and 5, batch 1, NC = 10 and 7, a batch
     * larger than the workgroup. */
    static const int cases[][3] = {{1, 1, 10}, {5, 1, 7}, {1, 4, 7}, {5, 6, 10}, {3, 70, 7}};
    test_rng rng = {33};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int K = cases[i][0], B = cases[i][1], NC = cases[i][2];
        size_t nz = (size_t)K * B * NC, nm = (size_t)B * NC;
        float *z = malloc(nz * 4);
        test_fill_uniform(&rng, z, nz, -4, 4);
        z[nz / 2] = 40.0f, z[nz / 3] = -40.0f; /* saturated sigmoids */
        double *zd = test_to_double(z, nz), *rmean = malloc(nm * sizeof(double)), *runc = malloc(B * sizeof(double)),
               *rcal = malloc(nm * sizeof(double));
        ref_anchor_reduce(rmean, runc, rcal, zd, K, B, NC);
        vka_tensor tz = test_tensor(ctx, arena, z, nz);
        test_guarded mean = test_alloc_guarded(ctx, arena, nm * 4), unc = test_alloc_guarded(ctx, arena, B * 4),
                     cal = test_alloc_guarded(ctx, arena, nm * 4);
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_anchor_reduce(cmd, K, B, NC, mean.t, unc.t, cal.t, tz));
        test_run(cmd);
        float *gm = test_read(ctx, mean.t, nm), *gu = test_read(ctx, unc.t, B), *gc = test_read(ctx, cal.t, nm);
        char what[96];
        snprintf(what, sizeof what, "anchor_reduce mean K=%d B=%d NC=%d", K, B, NC);
        test_expect_close(what, gm, rmean, nm, TOL_MEAN);
        snprintf(what, sizeof what, "anchor_reduce uncertainty K=%d B=%d NC=%d", K, B, NC);
        test_expect_close(what, gu, runc, B, TOL_UNC);
        if (K == 1)
            for (int b = 0; b < B; b++)
                if (gu[b] != 0.0f) fail_msg("%s: K=1 must give exactly 0, got %g", what, gu[b]);
        snprintf(what, sizeof what, "anchor_reduce calibrated K=%d B=%d NC=%d", K, B, NC);
        test_expect_close(what, gc, rcal, nm, TOL_UNC);
        test_check_guard(ctx, mean), test_check_guard(ctx, unc), test_check_guard(ctx, cal);
        expect_same_bits(ctx, cmd, mean.t, gm, nm, "anchor_reduce mean");
        expect_same_bits(ctx, cmd, unc.t, gu, B, "anchor_reduce uncertainty");
        expect_same_bits(ctx, cmd, cal.t, gc, nm, "anchor_reduce calibrated");
        free(z), free(zd), free(rmean), free(runc), free(rcal), free(gm), free(gu), free(gc);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* In-range indices are the caller's job; a bad one is clamped, never read outside x. */
static void anchor_train_input_clamps_out_of_range_reference_indices(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "anchor"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_anchor_shape s = {3, 1, 1, 2, 1};
    float x[6] = {1, 2, 3, 4, 5, 6};
    int32_t idx[3] = {-7, 3, 1000};     /* clamp to 0, 2, 2 */
    int clamped[3] = {0, 2, 2};
    vka_tensor tx = test_tensor(ctx, arena, x, 6), ti = test_tensor_i32(ctx, arena, idx, 3);
    test_guarded out = test_alloc_guarded(ctx, arena, 12 * 4);
    TEST_OK(vka_anchor_train_input(cmd, &s, out.t, tx, ti, 0));
    test_run(cmd);
    float *got = test_read(ctx, out.t, 12);
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < 2; i++) {
            float r = x[clamped[b] * 2 + i];
            assert_true(got[b * 4 + i] == r);
            assert_true(got[b * 4 + 2 + i] == x[b * 2 + i] - r);
        }
    test_check_guard(ctx, out);
    free(got);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void anchor_ops_reject_mismatched_sizes_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "anchor"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_anchor_shape s = {4, 3, 5, 5, 2}; /* x 300 floats, out 600, refs 150, infer out 1200 */
    vka_tensor x = test_tensor(ctx, arena, NULL, 300), out = test_tensor(ctx, arena, NULL, 1200);
    vka_tensor refs = test_tensor(ctx, arena, NULL, 150), small = test_tensor(ctx, arena, NULL, 3);
    int32_t idx[4] = {0, 1, 2, 3};
    vka_tensor ti = test_tensor_i32(ctx, arena, idx, 4);
    test_expect_rejected(ctx, cmd, vka_anchor_train_input(cmd, &s, small, x, ti, 0), "anchor_train_input");
    test_expect_rejected(ctx, cmd, vka_anchor_train_input(cmd, &s, out, small, ti, 0), "anchor_train_input");
    test_expect_rejected(ctx, cmd, vka_anchor_train_input(cmd, &s, out, x, small, 1), "anchor_train_input");
    test_expect_rejected(ctx, cmd, vka_anchor_train_input(cmd, &(vka_anchor_shape){4, 0, 5, 5, 1}, out, x, ti, 0),
                    "anchor_train_input");
    test_expect_rejected(ctx, cmd, vka_anchor_train_input(cmd, NULL, out, x, ti, 0), "anchor_train_input");
    test_expect_rejected(ctx, cmd, vka_anchor_infer_input(cmd, &s, x, x, refs), "anchor_infer_input"); /* out too small */
    test_expect_rejected(ctx, cmd, vka_anchor_infer_input(cmd, &s, out, x, small), "anchor_infer_input");
    test_expect_rejected(ctx, cmd, vka_anchor_infer_input(cmd, &(vka_anchor_shape){4, 3, 5, 5, 0}, out, x, refs),
                    "anchor_infer_input");
    test_expect_rejected(ctx, cmd, vka_anchor_reduce(cmd, 2, 4, 10, out, x, out, small), "anchor_reduce");
    test_expect_rejected(ctx, cmd, vka_anchor_reduce(cmd, 2, 4, 10, small, x, out, x), "anchor_reduce");
    test_expect_rejected(ctx, cmd, vka_anchor_reduce(cmd, 2, 4, 10, out, x, small, x), "anchor_reduce");
    test_expect_rejected(ctx, cmd, vka_anchor_reduce(cmd, 2, 4, 10, out, small, out, x), "anchor_reduce");
    test_expect_rejected(ctx, cmd, vka_anchor_reduce(cmd, 0, 4, 10, out, x, out, x), "anchor_reduce");
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(anchor_train_input_matches_reference_masked_and_unmasked),
        cmocka_unit_test(anchor_train_input_clamps_out_of_range_reference_indices),
        cmocka_unit_test(anchor_infer_input_matches_reference_for_one_and_several_anchors),
        cmocka_unit_test(anchor_reduce_matches_reference),
        cmocka_unit_test(anchor_ops_reject_mismatched_sizes_without_dispatching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
