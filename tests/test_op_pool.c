/* Max pool and global average pool against tests/ref/ref_pool.c.
 *
 * Tolerances (e = sum (gpu-ref)^2 / sum ref^2, ref in double):
 *   maxpool forward   y and argmax EXACT (a selection; ties -> first maximum in
 *                     row-major window order, padding never wins)
 *   maxpool backward  e <= 1e-12 (fp32 sum of at most ceil(k/stride)^2 terms per
 *                     element, in the reference's order); exact when windows do not overlap
 *   gap forward       e <= 1e-12 (compensated fp32 sum: error ~ eps, independent of HW)
 *   gap backward      e <= 1e-12 (one division) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/batchnorm.h"
#include "nn/fastdiv.h"
#include "nn/ops_internal.h"
#include "nn/pool.h"
#include "ref_ops.h"
#include "test_util.h"

typedef struct pool_case {
    int n, c, h, w, k, stride, pad;
} pool_case;

/* The cnn's 2x2/s2 (even and odd planes: floor mode leaves a row and a column
 * out), overlapping 3x3/s2/p1 and 3x3/s1/p1, stride > k (elements in no window),
 * channels 1, 3, 5, batch 1, a 1x1 window, and shapes with more outputs and
 * inputs than one workgroup. 2x2/s2 on planes of even H and W % 4 == 0 (28x28, 6x12)
 * runs maxpool2x2.comp (pairs of windows), other k == stride with pad 0 the
 * disjoint-window backward, the rest the gather. */
static const pool_case cases[] = {
    {2, 3, 28, 28, 2, 2, 0}, {1, 5, 14, 14, 2, 2, 0}, {2, 3, 7, 9, 2, 2, 0},  {2, 5, 9, 11, 3, 2, 1},
    {1, 1, 32, 32, 3, 2, 1}, {3, 3, 5, 5, 3, 2, 1},   {2, 1, 6, 7, 3, 1, 1},  {1, 1, 1, 1, 1, 1, 0},
    {4, 5, 28, 28, 3, 2, 1}, {1, 3, 8, 8, 3, 3, 0},   {1, 3, 2, 3, 2, 2, 1},  {2, 3, 8, 9, 2, 3, 0},
    {3, 2, 6, 12, 2, 2, 0}, /* 2x2 windows in pairs (maxpool2x2.comp) with 3 pairs per output row */
};
#define NCASES (sizeof cases / sizeof *cases)

enum fill { FILL_RANDOM, FILL_TIES, FILL_CONSTANT, FILL_NEGATIVE };

static void fill_input(float *x, size_t n, enum fill f, test_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        switch (f) {
        case FILL_RANDOM: x[i] = test_uniform(rng, -1, 1); break;
        case FILL_TIES: x[i] = (float)(int)test_uniform(rng, 0, 3); break;     /* 0, 1, 2: ties everywhere */
        case FILL_CONSTANT: x[i] = 0.5f; break;                               /* every window one tie */
        case FILL_NEGATIVE: x[i] = test_uniform(rng, -3, -1); break;          /* padding (0) must not win */
        }
    }
}

static void check_maxpool(vka_context *ctx, pool_case pc, enum fill f)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "maxpool"}, &arena));
    vka_maxpool_desc d = {.n = pc.n, .c = pc.c, .h = pc.h, .w = pc.w, .k = pc.k, .stride = pc.stride, .pad = pc.pad};
    int P = ref_conv2d_out_size(pc.h, pc.k, pc.stride, pc.pad), Q = ref_conv2d_out_size(pc.w, pc.k, pc.stride, pc.pad);
    assert_int_equal(vka_maxpool_out_size(pc.h, pc.k, pc.stride, pc.pad), P);
    size_t nx = (size_t)pc.n * pc.c * pc.h * pc.w, ny = (size_t)pc.n * pc.c * P * Q;
    test_rng rng = {(uint64_t)(nx * 7 + f)};
    float *x = malloc(nx * 4), *dy = malloc(ny * 4);
    fill_input(x, nx, f, &rng);
    test_fill_uniform(&rng, dy, ny, -1, 1);
    float *gy[2], *gdx[2];
    int32_t *ga[2];
    for (int run = 0; run < 2; run++) {
        vka_tensor tx = test_tensor(ctx, arena, x, nx), tdy = test_tensor(ctx, arena, dy, ny);
        test_guarded y = test_alloc_guarded(ctx, arena, ny * 4), am = test_alloc_guarded(ctx, arena, ny * 4);
        test_guarded dx = test_alloc_guarded(ctx, arena, nx * 4);
        TEST_OK(vka_fill(ctx, dx.t, 0x7fc00000u)); /* NaN: every element must be overwritten */
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        TEST_OK(vka_maxpool_forward(cmd, &d, y.t, am.t, tx));
        TEST_OK(vka_maxpool_backward(cmd, &d, dx.t, tdy, am.t));
        test_run(cmd);
        vka_cmd_destroy(cmd);
        gy[run] = test_read(ctx, y.t, ny);
        gdx[run] = test_read(ctx, dx.t, nx);
        ga[run] = malloc(ny * 4);
        TEST_OK(vka_download(ctx, am.t, 0, ga[run], ny * 4));
        test_check_guard(ctx, y), test_check_guard(ctx, am), test_check_guard(ctx, dx);
    }
    double *rx = test_to_double(x, nx), *rdy = test_to_double(dy, ny);
    double *ry = malloc(ny * sizeof(double)), *rdx = malloc(nx * sizeof(double));
    int *ra = malloc(ny * sizeof(int));
    ref_maxpool_forward(ry, ra, rx, pc.n, pc.c, pc.h, pc.w, pc.k, pc.stride, pc.pad);
    ref_maxpool_backward(rdx, rdy, ra, pc.n, pc.c, pc.h, pc.w, pc.k, pc.stride, pc.pad);
    char what[128];
    snprintf(what, sizeof what, "maxpool N=%d C=%d %dx%d k=%d s=%d p=%d fill %d", pc.n, pc.c, pc.h, pc.w, pc.k,
             pc.stride, pc.pad, f);
    for (size_t i = 0; i < ny; i++)
        if (gy[0][i] != (float)ry[i] || ga[0][i] != ra[i])
            fail_msg("%s: output %zu: gpu %g at %d, ref %g at %d", what, i, gy[0][i], ga[0][i], ry[i], ra[i]);
    if (pc.k <= pc.stride) {
        for (size_t i = 0; i < nx; i++)
            if (gdx[0][i] != (float)rdx[i]) fail_msg("%s: dx[%zu] gpu %g ref %g", what, i, gdx[0][i], rdx[i]);
    } else {
        test_expect_close(what, gdx[0], rdx, nx, 1e-12);
    }
    assert_memory_equal(gy[0], gy[1], ny * 4);
    assert_memory_equal(ga[0], ga[1], ny * 4);
    assert_memory_equal(gdx[0], gdx[1], nx * 4);
    for (int r = 0; r < 2; r++) free(gy[r]), free(gdx[r]), free(ga[r]);
    free(x), free(dy), free(rx), free(rdy), free(ry), free(rdx), free(ra);
    vka_arena_destroy(arena);
}

static void maxpool_matches_reference_at_awkward_shapes_and_repeats_bit_for_bit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NCASES; i++) check_maxpool(ctx, cases[i], FILL_RANDOM);
    /* Each forward and backward kernel ran on some case. */
    static const char *const kernels[] = {"maxpool2x2_fwd", "maxpool2x2_bwd_data", "maxpool_fwd_texel",
                                          "maxpool_bwd_data_disjoint", "maxpool_bwd_data"};
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++)
        if (!vka_kernel_built(ctx, kernels[k], -1, 0)) fail_msg("%s did not run", kernels[k]);
    test_context_finish(ctx);
}

/* The max pool of a BatchNorm's output computed from the BN's input and its coefficients
 * (vka_maxpool_forward_bn after a coefficients-only vka_batchnorm_forward) gives the bits of the
 * BN's apply and then the plain pool, y and argmax, with and without the BN's fused ReLU, on
 * every shape (texel and storage inputs). */
static void check_pool_of_bn(vka_context *ctx, pool_case pc, int relu)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "maxpool-bn"}, &arena));
    vka_maxpool_desc d = {.n = pc.n, .c = pc.c, .h = pc.h, .w = pc.w, .k = pc.k, .stride = pc.stride, .pad = pc.pad};
    vka_batchnorm_desc bd = {.n = pc.n, .c = pc.c, .hw = pc.h * pc.w, .relu = relu};
    size_t nx = (size_t)pc.n * pc.c * pc.h * pc.w, ny = (size_t)pc.n * pc.c * vka_maxpool_out_size(pc.h, pc.k, pc.stride, pc.pad) *
                                                      vka_maxpool_out_size(pc.w, pc.k, pc.stride, pc.pad);
    test_rng rng = {(uint64_t)(nx * 13 + relu)};
    float *x = malloc(nx * 4), *gamma = malloc(pc.c * 4), *beta = malloc(pc.c * 4);
    test_fill_uniform(&rng, x, nx, -2, 2);
    test_fill_uniform(&rng, gamma, pc.c, 0.5f, 1.5f);
    test_fill_uniform(&rng, beta, pc.c, -0.5f, 0.5f);
    vka_tensor tx = test_tensor(ctx, arena, x, nx), tg = test_tensor(ctx, arena, gamma, pc.c),
               tb = test_tensor(ctx, arena, beta, pc.c);
    float *gy[2];
    int32_t *ga[2];
    for (int fused = 0; fused < 2; fused++) {
        vka_tensor ybn = test_tensor(ctx, arena, NULL, nx), mean = test_tensor(ctx, arena, NULL, pc.c),
                   invstd = test_tensor(ctx, arena, NULL, pc.c), coef = test_tensor(ctx, arena, NULL, (size_t)pc.c * 8),
                   scratch = test_tensor(ctx, arena, NULL, vka_batchnorm_scratch_bytes(ctx, &bd) / 4);
        test_guarded y = test_alloc_guarded(ctx, arena, ny * 4), am = test_alloc_guarded(ctx, arena, ny * 4);
        vka_batchnorm_io io = {.x = tx, .gamma = tg, .beta = tb, .save_mean = mean, .save_invstd = invstd,
                               .scratch = scratch};
        if (fused) io.coef = coef;
        else io.y = ybn;
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        TEST_OK(vka_batchnorm_forward(cmd, &bd, VKA_BN_TRAIN_KEEP_RUNNING, &io));
        if (fused) TEST_OK(vka_maxpool_forward_bn(cmd, &d, y.t, am.t, tx, coef, relu));
        else TEST_OK(vka_maxpool_forward(cmd, &d, y.t, am.t, ybn));
        test_run(cmd);
        vka_cmd_destroy(cmd);
        gy[fused] = test_read(ctx, y.t, ny);
        ga[fused] = malloc(ny * 4);
        TEST_OK(vka_download(ctx, am.t, 0, ga[fused], ny * 4));
        test_check_guard(ctx, y), test_check_guard(ctx, am);
    }
    for (size_t i = 0; i < ny; i++)
        if (memcmp(&gy[0][i], &gy[1][i], 4) != 0 || ga[0][i] != ga[1][i])
            fail_msg("maxpool of bn (relu %d) N=%d C=%d %dx%d k=%d s=%d p=%d: output %zu: %.9g at %d, after bn %.9g at %d",
                     relu, pc.n, pc.c, pc.h, pc.w, pc.k, pc.stride, pc.pad, i, gy[1][i], ga[1][i], gy[0][i], ga[0][i]);
    for (int r = 0; r < 2; r++) free(gy[r]), free(ga[r]);
    free(x), free(gamma), free(beta);
    vka_arena_destroy(arena);
}

static void expect_ran(vka_context *ctx, const char *name)
{
    if (vka_kernel_built(ctx, name, -1, 0)) return;
    fail_msg("%s did not run", name);
}

static void maxpool_of_a_batchnorm_gives_the_bits_of_batchnorm_then_maxpool(void **state)
{
    (void)state;
    for (int storage = 0; storage < 2; storage++) {
        if (storage) setenv("VKANCHOR_TEXEL", "0", 1);
        vka_context *ctx = test_context();
        for (size_t i = 0; i < NCASES; i++)
            for (int relu = 0; relu < 2; relu++) check_pool_of_bn(ctx, cases[i], relu);
        const vka_features *f = &vka_context_device(ctx)->features;
        if (storage) expect_ran(ctx, "maxpool_fwd_bn");
        else if (f->texel_buffer_rgba32f && f->texel_buffer_r32f && !getenv("VKANCHOR_TEXEL"))
            expect_ran(ctx, "maxpool2x2_fwd_bn"), expect_ran(ctx, "maxpool_fwd_texel_bn");
        unsetenv("VKANCHOR_TEXEL");
        test_context_finish(ctx);
    }
}

/* VKANCHOR_TEXEL=0: the forward reads x from a storage buffer (devices whose
 * texel-buffer limit is below the tensor's size do that). */
static void maxpool_storage_buffer_forward_matches_reference(void **state)
{
    (void)state;
    setenv("VKANCHOR_TEXEL", "0", 1);
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NCASES; i++) check_maxpool(ctx, cases[i], i % 2 ? FILL_TIES : FILL_RANDOM);
    unsetenv("VKANCHOR_TEXEL");
    test_context_finish(ctx);
}

static void maxpool_ties_go_to_the_first_maximum_in_row_major_order(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NCASES; i++) {
        check_maxpool(ctx, cases[i], FILL_TIES);
        check_maxpool(ctx, cases[i], FILL_CONSTANT);
    }
    test_context_finish(ctx);
}

static void maxpool_padding_never_wins_over_negative_inputs(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NCASES; i++)
        if (cases[i].pad) check_maxpool(ctx, cases[i], FILL_NEGATIVE);
    test_context_finish(ctx);
}

/* A hand-checked 1x1x3x3 plane, k=3 s=2 p=1: P = Q = 2 and all four windows hold
 * the centre, which is every window's maximum, so dx[centre] = sum of dy. */
static void maxpool_backward_sums_overlapping_windows_that_pick_the_same_element(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "overlap"}, &arena));
    const float x[9] = {0, 0, 0, 0, 5, 0, 0, 0, 0};
    const float dy[4] = {1, 2, 4, 8};
    vka_maxpool_desc d = {.n = 1, .c = 1, .h = 3, .w = 3, .k = 3, .stride = 2, .pad = 1};
    vka_tensor tx = test_tensor(ctx, arena, x, 9), tdy = test_tensor(ctx, arena, dy, 4);
    vka_tensor y = test_tensor(ctx, arena, NULL, 4), am = test_tensor(ctx, arena, NULL, 4);
    vka_tensor dx = test_tensor(ctx, arena, NULL, 9);
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    TEST_OK(vka_maxpool_forward(cmd, &d, y, am, tx));
    TEST_OK(vka_maxpool_backward(cmd, &d, dx, tdy, am));
    test_run(cmd);
    float *gy = test_read(ctx, y, 4), *gdx = test_read(ctx, dx, 9);
    int32_t ga[4];
    TEST_OK(vka_download(ctx, am, 0, ga, 16));
    for (int i = 0; i < 4; i++) {
        assert_true(gy[i] == 5.0f);
        assert_int_equal(ga[i], 4);
    }
    const float want[9] = {0, 0, 0, 0, 15, 0, 0, 0, 0};
    assert_memory_equal(gdx, want, sizeof want);
    free(gy), free(gdx);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void check_gap(vka_context *ctx, int n, int c, int hw, float offset)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "gap"}, &arena));
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * c;
    test_rng rng = {(uint64_t)nx * 3 + 1};
    float *x = malloc(nx * 4), *dy = malloc(ny * 4);
    test_fill_uniform(&rng, x, nx, offset - 1, offset + 1);
    test_fill_uniform(&rng, dy, ny, -1, 1);
    float *gy[2], *gdx[2];
    for (int run = 0; run < 2; run++) {
        vka_tensor tx = test_tensor(ctx, arena, x, nx), tdy = test_tensor(ctx, arena, dy, ny);
        test_guarded y = test_alloc_guarded(ctx, arena, ny * 4), dx = test_alloc_guarded(ctx, arena, nx * 4);
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        TEST_OK(vka_global_avgpool_forward(cmd, n, c, hw, y.t, tx));
        TEST_OK(vka_global_avgpool_backward(cmd, n, c, hw, dx.t, tdy));
        test_run(cmd);
        vka_cmd_destroy(cmd);
        gy[run] = test_read(ctx, y.t, ny);
        gdx[run] = test_read(ctx, dx.t, nx);
        test_check_guard(ctx, y), test_check_guard(ctx, dx);
    }
    double *rx = test_to_double(x, nx), *rdy = test_to_double(dy, ny);
    double *ry = malloc(ny * sizeof(double)), *rdx = malloc(nx * sizeof(double));
    ref_global_avgpool_forward(ry, rx, n, c, hw);
    ref_global_avgpool_backward(rdx, rdy, n, c, hw);
    char what[96];
    snprintf(what, sizeof what, "gap forward N=%d C=%d HW=%d offset %g", n, c, hw, offset);
    test_expect_close(what, gy[0], ry, ny, 1e-12);
    snprintf(what, sizeof what, "gap backward N=%d C=%d HW=%d", n, c, hw);
    test_expect_close(what, gdx[0], rdx, nx, 1e-12);
    assert_memory_equal(gy[0], gy[1], ny * 4);
    assert_memory_equal(gdx[0], gdx[1], nx * 4);
    for (int r = 0; r < 2; r++) free(gy[r]), free(gdx[r]);
    free(x), free(dy), free(rx), free(rdy), free(ry), free(rdx);
    vka_arena_destroy(arena);
}

static void global_avgpool_matches_reference_at_awkward_shapes_and_repeats_bit_for_bit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    static const int shapes[][3] = {{1, 1, 1}, {2, 3, 49}, {8, 5, 64}, {3, 5, 1}, {4, 64, 49}, {2, 3, 1025}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check_gap(ctx, shapes[i][0], shapes[i][1], shapes[i][2], 0.0f);
        check_gap(ctx, shapes[i][0], shapes[i][1], shapes[i][2], 3.0f);
    }
    /* The backward in runs of 4 (N*C*HW % 4 == 0 and HW >= 4: 8x5x64, 4x64x49 with runs across
     * planes) and one element at a time (the rest): both ran. */
    static const char *const kernels[] = {"gap_bwd_data_vec4", "gap_bwd_data"};
    for (size_t k = 0; k < 2; k++)
        if (!vka_kernel_built(ctx, kernels[k], -1, 0)) fail_msg("%s did not run", kernels[k]);
    test_context_finish(ctx);
}

/* Rejected calls create no kernel. */
#define expect_rejected(ctx, cmd, got, op) test_expect_rejected_before_kernels(ctx, cmd, got, op)

static void pooling_rejects_bad_calls_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bad"}, &arena));
    vka_tensor big, big2, small;
    TEST_OK(vka_arena_alloc(arena, 4096, &big));
    TEST_OK(vka_arena_alloc(arena, 4096, &big2));
    TEST_OK(vka_arena_alloc(arena, 4 * 3 * 3 * 4 - 4, &small)); /* one float short of (1,4,3,3) */
    const vka_maxpool_desc ok = {.n = 1, .c = 4, .h = 6, .w = 6, .k = 2, .stride = 2}; /* y (1,4,3,3) */
    const vka_maxpool_desc bad[] = {
        {.n = 1, .c = 0, .h = 6, .w = 6, .k = 2},                  /* zero channels */
        {.n = 1, .c = 4, .h = 3, .w = 3, .k = 5},                  /* window larger than the padded input */
        {.n = 1, .c = 4, .h = 6, .w = 6, .k = 2, .pad = 2},        /* 2 pad > k */
        {.n = 1, .c = 4, .h = 6, .w = 6, .k = 0},                  /* empty window */
    };
    vka_tensor coef_small, big3;
    TEST_OK(vka_arena_alloc(arena, 4 * 32 - 16, &coef_small)); /* (C, 2) vec4 for 4 channels is 128 bytes */
    TEST_OK(vka_arena_alloc(arena, 4096, &big3));
    for (int i = 0; i < 18; i++) {
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        const char *f = "maxpool_forward", *b = "maxpool_backward", *fb = "maxpool_forward_bn";
        if (i < 4) expect_rejected(ctx, cmd, vka_maxpool_forward(cmd, &bad[i], big, big2, big), f);
        else if (i < 8) expect_rejected(ctx, cmd, vka_maxpool_backward(cmd, &bad[i - 4], big, big2, big2), b);
        else if (i == 8) expect_rejected(ctx, cmd, vka_maxpool_forward(cmd, &ok, small, big2, big), f);
        else if (i == 9) expect_rejected(ctx, cmd, vka_maxpool_forward(cmd, &ok, big2, small, big), f);
        else if (i == 10) expect_rejected(ctx, cmd, vka_maxpool_forward(cmd, &ok, big, big2, big), f);
        else if (i == 11) expect_rejected(ctx, cmd, vka_maxpool_backward(cmd, &ok, big, small, big2), b);
        else if (i == 12) expect_rejected(ctx, cmd, vka_maxpool_backward(cmd, &ok, big, big2, big), b);
        else if (i == 13)
            expect_rejected(ctx, cmd, vka_global_avgpool_forward(cmd, 1, 0, 9, big, big2), "global_avgpool_forward");
        else if (i == 14)
            expect_rejected(ctx, cmd, vka_global_avgpool_forward(cmd, 1, 4, 9, small, small),
                            "global_avgpool_forward");
        else if (i == 15)
            expect_rejected(ctx, cmd, vka_global_avgpool_backward(cmd, 1, 4, 9, small, big),
                            "global_avgpool_backward");
        else if (i == 16) expect_rejected(ctx, cmd, vka_maxpool_forward_bn(cmd, &ok, big, big2, big3, coef_small, 1), fb);
        else expect_rejected(ctx, cmd, vka_maxpool_forward_bn(cmd, &ok, big, big2, big3, (vka_tensor){0}, 1), fb);
        vka_cmd_destroy(cmd);
    }
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* The pool and batchnorm shaders decode indices with fastdiv.glsl: its magic
 * numbers must divide exactly for every divisor and numerator (host mirror). */
static void fastdiv_magic_numbers_divide_exactly(void **state)
{
    (void)state;
    static const uint32_t edges[] = {0, 1, 2, 3, 0x7fffffffu, 0x80000000u, 0x80000001u, 0xfffffffeu, 0xffffffffu};
    test_rng rng = {12345};
    /* 1..4096, then geometrically, then the largest divisors (edges[4..]). */
    for (uint64_t d = 1, e = 4; e < 9; d = d < 4096 ? d + 1 : d * 3 + 1) {
        if (d > 0xffffffffull) d = edges[e++];
        vka_fastdiv f = vka_fastdiv_make((uint32_t)d);
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t n = i < 9 ? edges[i] : (uint32_t)(test_uniform(&rng, 0, 1) * 4294967295.0) ^ i;
            if (vka_fastdiv_apply(n, f) != n / (uint32_t)d)
                fail_msg("fastdiv %u / %llu = %u, not %u", n, (unsigned long long)d, vka_fastdiv_apply(n, f),
                         n / (uint32_t)d);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(maxpool_matches_reference_at_awkward_shapes_and_repeats_bit_for_bit),
        cmocka_unit_test(maxpool_storage_buffer_forward_matches_reference),
        cmocka_unit_test(maxpool_of_a_batchnorm_gives_the_bits_of_batchnorm_then_maxpool),
        cmocka_unit_test(maxpool_ties_go_to_the_first_maximum_in_row_major_order),
        cmocka_unit_test(maxpool_padding_never_wins_over_negative_inputs),
        cmocka_unit_test(maxpool_backward_sums_overlapping_windows_that_pick_the_same_element),
        cmocka_unit_test(global_avgpool_matches_reference_at_awkward_shapes_and_repeats_bit_for_bit),
        cmocka_unit_test(pooling_rejects_bad_calls_without_dispatching),
        cmocka_unit_test(fastdiv_magic_numbers_divide_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
