/* conv2d (src/nn/conv2d.c) against the double-precision reference (tests/ref/ref_conv2d.c):
 * forward y, input gradient dx, weight gradient dw and bias gradient db (alone, and all three
 * in one vka_conv2d_backward call after a forward whose packed x it reuses), for every kernel family explicitly on every shape: tiled,
 * texel (lavapipe's channels-packed kernels where the shape allows, conv2d_packed.c) and the
 * texel GEMM kernels (VKANCHOR_CONV_PACKED=0), with canaries after every output, outputs
 * pre-filled with NaN (the ops overwrite), a second submit that must give the same bits,
 * and bad calls that must fail naming conv2d and the shape without dispatching.
 *
 * Tolerance: normalized error e = sum (gpu-ref)^2 / sum ref^2 <= 1e-10 for y, dx, dw, db.
 * Expected in fp32: each output is a sum of L products of values in [-1, 1]; rounding
 * errors add up like a random walk, e ~ L * 2^-48 / 3 ~ 1e-15 * L, so at most ~2e-12 for
 * the longest sums here (dw over N*P*Q = 1568 positions; dx over K*R*S = 630; y over
 * C*R*S = 594); observed 2e-15 .. 2e-13. The bound leaves room for any summation order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/conv2d_packed.h"
#include "nn/ops_internal.h"
#include "ref_ops.h"
#include "test_util.h"

#define TOL 1e-10
#define NAN_WORD 0x7fc00000u

/* A shape with the variant and the backward hints left 0. */
#define SHAPE(n_, c_, h_, w_, k_, r_, s_, stride_, pad_)                                                            \
    {.n = n_, .c = c_, .h = h_, .w = w_, .k = k_, .r = r_, .s = s_, .stride = stride_, .pad = pad_}

typedef struct conv_case {
    const char *name;
    vka_conv2d_shape sh;  /* variant set per test */
    int bias;             /* forward with b, backward with db */
} conv_case;

static const conv_case cases[] = {
    {"1 -> 1 channel at 5x6, 3x3 pad 1, batch 1", SHAPE(1, 1, 5, 6, 1, 3, 3, 1, 1), 0},
    {"3 -> 5 at 7x9, 3x3 stride 2 pad 1, bias", SHAPE(1, 3, 7, 9, 5, 3, 3, 2, 1), 1},
    {"projection shortcut 5 -> 7 at 9x7, 1x1 stride 2 pad 0", SHAPE(2, 5, 9, 7, 7, 1, 1, 2, 0), 0},
    {"cnn first layer (anchored: 2C = 2) -> 32 at 28x28, 3x3 pad 1, batch 2", SHAPE(2, 2, 28, 28, 32, 3, 3, 1, 1), 0},
    /* Larger than one workgroup tile in every dimension: tiled tiles are at most 64 x 64 x 16
     * (K = 70 and C = 66 rows, N*P*Q = 286 and C*R*S + 1 = 595 columns, C*R*S = 594 and
     * K*R*S = 630 reduced); texel blocks are 8 x 8. */
    {"larger than a tile: 66 -> 70 at 13x11, 3x3 pad 1, batch 2, bias", SHAPE(2, 66, 13, 11, 70, 3, 3, 1, 1), 1},
    {"5x5 kernel pad 2: 3 -> 4 at 11x10, bias", SHAPE(1, 3, 11, 10, 4, 5, 5, 1, 2), 1},
    {"3x3 stride 2 pad 0 with a dropped last column: 4 -> 3 at 8x8", SHAPE(1, 4, 8, 8, 3, 3, 3, 2, 0), 1},
    /* The packed kernels (square 1x1 / 3x3, stride 1 or 2, pad < R): runs of 14, 8, 7 or 4
     * output columns (picked by width) x 8 channels per invocation, with partial runs and
     * channel blocks at the ends; the input gradient of stride 2 by output phase (1x1: the odd
     * phases have no taps and get zeros). */
    {"cnn at 14x14 (one run of 14 per row): 5 -> 9, batch 2", SHAPE(2, 5, 14, 14, 9, 3, 3, 1, 1), 0},
    {"cnn at 7x7 (runs of 7): 6 -> 11, batch 3, bias", SHAPE(3, 6, 7, 7, 11, 3, 3, 1, 1), 1},
    {"runs of 4 at 6x20: 3 -> 5, bias", SHAPE(1, 3, 6, 20, 5, 3, 3, 1, 1), 1},
    {"runs of 8 at 5x8: 4 -> 10, batch 2", SHAPE(2, 4, 5, 8, 10, 3, 3, 1, 1), 0},
    {"resnet stage 1 at 32x32 (four runs of 8): 3 -> 4", SHAPE(1, 3, 32, 32, 4, 3, 3, 1, 1), 0},
    {"3x3 pad 0 at 9x12 (dx border 2): 3 -> 4, bias", SHAPE(1, 3, 9, 12, 4, 3, 3, 1, 0), 1},
    {"3x3 pad 2 at 6x8 (dx border 0): 2 -> 3", SHAPE(1, 2, 6, 8, 3, 3, 3, 1, 2), 0},
    {"5x3 kernel pad 2 at 9x8 (5 rows of taps, GEMM): 3 -> 4, bias", SHAPE(1, 3, 9, 8, 4, 5, 3, 1, 2), 1},
    {"resnet downsampling 16 -> 32 at 14x14, 3x3 stride 2 pad 1, batch 2", SHAPE(2, 16, 14, 14, 32, 3, 3, 2, 1), 0},
    /* Over one 8x8-blocked tile (128 x 128) along the GEMM rows of every pass (K = 132, C = 130)
     * and the weight gradient's columns (C*R*S + 1 = 131); 1x1 keeps w within the minimum
     * texel-buffer limit (65536 elements). */
    {"larger than an 8x8-blocked tile: 130 -> 132 at 6x6, 1x1, bias", SHAPE(1, 130, 6, 6, 132, 1, 1, 1, 0), 1},
    {"resnet shortcut 16 -> 32 at 14x14, 1x1 stride 2, bias", SHAPE(2, 16, 14, 14, 32, 1, 1, 2, 0), 1},
    {"1x1 stride 1: 6 -> 9 at 5x13 (a partial run of 14)", SHAPE(1, 6, 5, 13, 9, 1, 1, 1, 0), 0},
    {"3x3 stride 2 pad 2 at 7x8: 3 -> 4, batch 2", SHAPE(2, 3, 7, 8, 4, 3, 3, 2, 2), 0},
    /* Stride 3: nine input-gradient phases of the tiled kernel, some with one tap row. */
    {"5x4 kernel stride 3 pad 1 at 11x10: 3 -> 4, bias", SHAPE(1, 3, 11, 10, 4, 5, 4, 3, 1), 1},
    {"1x1 stride 3 at 2x5 (phases without positions): 2 -> 3", SHAPE(2, 2, 2, 5, 3, 1, 1, 3, 0), 0},
    /* More than 32 input channels (and dy channels) take the packed kernels with two columns'
     * accumulators per register block (JB = 2); the cases above with at most 32 take JB = 1
     * (66 -> 70 takes JB = 2, at runs of 4). Stride 2 and 1x1 on JB = 2 as well (the input
     * gradient's phases, some without taps), and 32 input channels, the last JB = 1. */
    {"36 -> 40 at 5x14 (runs of 14, JB = 2), bias", SHAPE(1, 36, 5, 14, 40, 3, 3, 1, 1), 1},
    {"40 -> 36 at 4x7 (runs of 7, JB = 2), batch 2", SHAPE(2, 40, 4, 7, 36, 3, 3, 1, 1), 0},
    {"36 -> 40 at 9x9, 3x3 stride 2 pad 1 (JB = 2), batch 2", SHAPE(2, 36, 9, 9, 40, 3, 3, 2, 1), 0},
    {"36 -> 40 at 14x14, 1x1 stride 2 (JB = 2), batch 2, bias", SHAPE(2, 36, 14, 14, 40, 1, 1, 2, 0), 1},
    /* 3x3 stride 2 pad 1 at even widths: the input gradient by row phase, both column phases
     * in one dispatch (CPAIR), with JB = 2 (40 dy channels) and with a partial run (10 = 4+4+2). */
    {"36 -> 40 at 10x8, 3x3 stride 2 pad 1 (row phases, JB = 2), batch 2", SHAPE(2, 36, 10, 8, 40, 3, 3, 2, 1), 0},
    {"3 -> 5 at 7x10, 3x3 stride 2 pad 1 (row phases, a partial run), bias", SHAPE(1, 3, 7, 10, 5, 3, 3, 2, 1), 1},
    {"36 -> 40 at 6x28, 3x3 stride 2 pad 1 (row phases, runs of 14, JB = 2)", SHAPE(1, 36, 6, 28, 40, 3, 3, 2, 1), 0},
    {"32 -> 36 at 5x8 (forward JB = 1 at its limit, input gradient JB = 2)", SHAPE(1, 32, 5, 8, 36, 3, 3, 1, 1), 0},
    /* Packs 4 channels x 4 positions at a time (conv2d_pack4.comp) whose 4 positions span 2 or 4
     * rows (W = 2 and W = 1). */
    {"8 -> 8 at 6x2 (4 positions over 2 rows per pack step)", SHAPE(1, 8, 6, 2, 8, 3, 3, 1, 1), 0},
    {"1x1 8 -> 8 at 4x1 (4 positions over 4 rows per pack step), bias", SHAPE(1, 8, 4, 1, 8, 1, 1, 1, 0), 1},
    /* The packed weight gradient splits 13 images over 11 uneven image groups (2 with 2 images). */
    {"64 -> 64 at 8x8, batch 13 (uneven image groups), bias", SHAPE(13, 64, 8, 8, 64, 3, 3, 1, 1), 1},
};
#define NUM_CASES (sizeof cases / sizeof *cases)

static const char *variant_name(vka_conv2d_variant v) { return v == VKA_CONV2D_TILED ? "tiled" : "texel"; }

/* The kernel families: the variant, for tiled the register block per thread (picked from
 * the sizes, or each forced 4x8, 8x4, 8x8), and for texel whether the packed path may run. */
typedef enum family { FAMILY_TILED, FAMILY_TILED_4X8, FAMILY_TILED_8X4, FAMILY_TILED_8X8, FAMILY_TEXEL, FAMILY_TEXEL_GEMM } family;

static const char *family_name(family f)
{
    static const char *const names[] = {"tiled", "tiled 4x8", "tiled 8x4", "tiled 8x8", "texel", "texel GEMM"};
    return names[f];
}

static int family_is_tiled(family f) { return f <= FAMILY_TILED_8X8; }

/* Host data of one case: inputs in float, references in double. */
typedef struct host_case {
    size_t nx, nw, ny, nb;
    int P, Q;
    float *x, *w, *b, *dy;
    double *y_ref, *dx_ref, *dw_ref, *db_ref;
} host_case;

static host_case make_host(const conv_case *cs, uint64_t seed)
{
    const vka_conv2d_shape *sh = &cs->sh;
    host_case h = {0};
    h.P = ref_conv2d_out_size((int)sh->h, (int)sh->r, (int)sh->stride, (int)sh->pad);
    h.Q = ref_conv2d_out_size((int)sh->w, (int)sh->s, (int)sh->stride, (int)sh->pad);
    assert_int_equal(h.P, vka_conv2d_out_h(sh));
    assert_int_equal(h.Q, vka_conv2d_out_w(sh));
    h.nx = (size_t)sh->n * sh->c * sh->h * sh->w;
    h.nw = (size_t)sh->k * sh->c * sh->r * sh->s;
    h.ny = (size_t)sh->n * sh->k * h.P * h.Q;
    h.nb = sh->k;
    test_rng rng = {seed};
    h.x = malloc(h.nx * 4), h.w = malloc(h.nw * 4), h.b = malloc(h.nb * 4), h.dy = malloc(h.ny * 4);
    test_fill_uniform(&rng, h.x, h.nx, -1, 1);
    test_fill_uniform(&rng, h.w, h.nw, -1, 1);
    test_fill_uniform(&rng, h.b, h.nb, -1, 1);
    test_fill_uniform(&rng, h.dy, h.ny, -1, 1);
    double *x = test_to_double(h.x, h.nx), *w = test_to_double(h.w, h.nw), *b = test_to_double(h.b, h.nb),
           *dy = test_to_double(h.dy, h.ny);
    h.y_ref = malloc(h.ny * sizeof(double));
    h.dx_ref = malloc(h.nx * sizeof(double));
    h.dw_ref = malloc(h.nw * sizeof(double));
    h.db_ref = malloc(h.nb * sizeof(double));
    int N = (int)sh->n, C = (int)sh->c, H = (int)sh->h, W = (int)sh->w, K = (int)sh->k, R = (int)sh->r,
        S = (int)sh->s, st = (int)sh->stride, pad = (int)sh->pad;
    ref_conv2d_forward(h.y_ref, x, w, cs->bias ? b : NULL, N, C, H, W, K, R, S, st, pad);
    ref_conv2d_backward(h.dx_ref, h.dw_ref, h.db_ref, dy, x, w, N, C, H, W, K, R, S, st, pad);
    free(x), free(w), free(b), free(dy);
    return h;
}

static void free_host(host_case *h)
{
    free(h->x), free(h->w), free(h->b), free(h->dy);
    free(h->y_ref), free(h->dx_ref), free(h->dw_ref), free(h->db_ref);
}

/* An output tensor with canaries after it, pre-filled with NaN so a missed element shows. */
static test_guarded nan_output(vka_context *ctx, vka_arena *arena, size_t n)
{
    test_guarded g = test_alloc_guarded(ctx, arena, n * 4);
    TEST_OK(vka_fill(ctx, g.t, NAN_WORD));
    return g;
}

/* Reads an output, checks it against the reference and its canaries; returns the floats. */
static float *check_output(vka_context *ctx, test_guarded g, const double *ref, size_t n, const char *what,
                           const conv_case *cs, family f)
{
    float *got = test_read(ctx, g.t, n);
    char label[256];
    snprintf(label, sizeof label, "conv2d %s %s [%s]", family_name(f), what, cs->name);
    test_expect_close(label, got, ref, n, TOL);
    test_check_guard(ctx, g);
    return got;
}

/* Submits the recorded cmd again and requires the same bits in `t`. */
static void expect_same_bits_again(vka_context *ctx, vka_cmd *cmd, vka_tensor t, const float *first, size_t n,
                                   const char *what, const conv_case *cs)
{
    test_run(cmd);
    float *again = test_read(ctx, t, n);
    if (memcmp(first, again, n * 4) != 0) fail_msg("conv2d %s [%s]: a second run gave different bits", what, cs->name);
    free(again);
}

/* Writes t (N, K, H, W) into its packed layout l in the scratch, zeros in between. */
static void upload_packed(vka_context *ctx, const vka_packed_layout *l, const float *dy, uint32_t n, uint32_t k)
{
    TEST_OK(vka_fill(ctx, l->t, 0)); /* the zeros between elements; the rest of the scratch stays NaN */
    size_t total = test_packed_floats(l, n);
    float *packed = calloc(total, 4);
    for (uint32_t b = 0; b < n; b++)
        for (uint32_t c = 0; c < k; c++)
            for (uint32_t i = 0; i < l->h; i++)
                for (uint32_t j = 0; j < l->w; j++)
                    packed[test_packed_index(l, b, c, i, j)] = dy[(((size_t)b * k + c) * l->h + i) * l->w + j];
    TEST_OK(vka_upload(ctx, l->t, 0, packed, total * 4));
    free(packed);
}

typedef enum which_op { OP_FORWARD, OP_BACKWARD_DATA, OP_BACKWARD_WEIGHT, OP_BACKWARD_BOTH } which_op;

/* Channel k's (groups) partials (count, mean, M2, 0) of vka_conv2d_forward_stats merged in
 * double (every one well formed: a count of 1 .. 8 x 14, mean finite, M2 >= 0, 0 last) against
 * the count, mean and biased variance of channel k of y (n, channels, plane) in double: the
 * mean within 1e-5 of the channel's rms, the variance within a relative 1e-4, the count exact. */
static void expect_channel_stats(const char *label, const float *part, uint32_t k, uint32_t groups, const double *y,
                                 size_t n, size_t channels, size_t plane)
{
    double count = 0, sum = 0, m2 = 0, ysum = 0, ysq = 0;
    for (uint32_t g = 0; g < groups; g++) {
        const float *pg = part + ((size_t)k * groups + g) * 4;
        if (!(pg[0] >= 1 && pg[0] <= 8 * 14) || !isfinite(pg[1]) || !(pg[2] >= 0) || pg[3] != 0)
            fail_msg("%s: channel %u partial %u is (%g, %g, %g, %g)", label, k, g, pg[0], pg[1], pg[2], pg[3]);
        count += pg[0], sum += (double)pg[0] * pg[1];
    }
    double mean = sum / count;
    for (uint32_t g = 0; g < groups; g++) {
        const float *pg = part + ((size_t)k * groups + g) * 4;
        m2 += pg[2] + pg[0] * (pg[1] - mean) * (pg[1] - mean);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < plane; j++) {
            double v = y[(i * channels + k) * plane + j];
            ysum += v, ysq += v * v;
        }
    double want = (double)n * plane, ymean = ysum / want, yvar = ysq / want - ymean * ymean;
    if (count != want || !(fabs(mean - ymean) <= 1e-5 * sqrt(ysq / want)) || !(fabs(m2 / count - yvar) <= 1e-4 * yvar))
        fail_msg("%s: channel %u count %.0f mean %.9g var %.9g, of y %.0f %.9g %.9g", label, k, count, mean,
                 m2 / count, want, ymean, yvar);
}

/* vka_conv2d_forward_stats: y with the same bits as the plain forward's (`plain`), and its
 * (K, groups) partials (count, mean, M2, 0), merged here in double, against the reference y's
 * per-channel count, mean and biased variance. Every partial is written (the stats tensor
 * starts NaN). Tolerance: the mean within 1e-5 of the channel's rms, the variance within a
 * relative 1e-4 (fp32 sums of at most 8 x 14 outputs per partial, merged exactly; observed
 * ~1e-7 on these shapes); the counts exact. */
static void check_stats(vka_context *ctx, vka_arena *arena, const vka_conv2d_shape *sh, const conv_case *cs,
                        const host_case *h, vka_tensor x, vka_tensor w, vka_tensor b, vka_tensor scratch,
                        uint32_t groups, const float *plain)
{
    size_t np = (size_t)sh->k * groups * 4, plane = (size_t)h->P * h->Q;
    test_guarded stats = nan_output(ctx, arena, np), y = nan_output(ctx, arena, h->ny);
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    TEST_OK(vka_conv2d_forward_stats(cmd, sh, y.t, x, w, b, scratch, stats.t));
    test_run(cmd);
    float *got = test_read(ctx, y.t, h->ny), *part = test_read(ctx, stats.t, np);
    if (memcmp(got, plain, h->ny * 4) != 0) fail_msg("conv2d forward_stats [%s]: y differs from the plain forward", cs->name);
    test_check_guard(ctx, y);
    test_check_guard(ctx, stats);
    char label[160];
    snprintf(label, sizeof label, "conv2d forward_stats [%s]", cs->name);
    for (uint32_t k = 0; k < sh->k; k++) expect_channel_stats(label, part, k, groups, h->y_ref, sh->n, sh->k, plane);
    free(got), free(part);
    vka_cmd_destroy(cmd);
}

static void check_case(vka_context *ctx, family f, which_op op, const conv_case *cs, uint64_t seed)
{
    vka_conv2d_shape sh = cs->sh;
    vka_conv2d_variant v = family_is_tiled(f) ? VKA_CONV2D_TILED : VKA_CONV2D_TEXEL;
    sh.variant = v;
    sh.coop = -1; /* the fp32 kernels; the cooperative-matrix forward has its own test */
    if (f == FAMILY_TILED_4X8 || f == FAMILY_TILED_8X8) sh.tiled_rn = 8, sh.tiled_rm = f == FAMILY_TILED_8X8 ? 8 : 4;
    if (f == FAMILY_TILED_8X4) sh.tiled_rm = 8, sh.tiled_rn = 4;
    assert_int_equal(vka_conv2d_choose(ctx, &sh), v);
    host_case h = make_host(cs, seed);
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "conv2d"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_tensor x = test_tensor(ctx, arena, h.x, h.nx), w = test_tensor(ctx, arena, h.w, h.nw),
               b = test_tensor(ctx, arena, h.b, h.nb), dy = test_tensor(ctx, arena, h.dy, h.ny);
    vka_tensor none = {0};
    unsetenv("VKANCHOR_CONV_PACKED"); /* in case a failed case before this one left it set */
    test_guarded scratch = test_alloc_guarded(ctx, arena, vka_conv2d_scratch_bytes(ctx, &sh));
    TEST_OK(vka_fill(ctx, scratch.t, NAN_WORD)); /* every partial and packed value must be written */
    if (f == FAMILY_TEXEL_GEMM) setenv("VKANCHOR_CONV_PACKED", "0", 1);
    if (op == OP_FORWARD) {
        test_guarded y = nan_output(ctx, arena, h.ny);
        TEST_OK(vka_conv2d_forward(cmd, &sh, y.t, x, w, cs->bias ? b : none, scratch.t));
        test_run(cmd);
        float *got = check_output(ctx, y, h.y_ref, h.ny, "forward y", cs, f);
        expect_same_bits_again(ctx, cmd, y.t, got, h.ny, "forward y", cs);
        uint32_t groups = vka_conv2d_stats_groups(ctx, &sh, scratch.t);
        if (groups) check_stats(ctx, arena, &sh, cs, &h, x, w, cs->bias ? b : none, scratch.t, groups, got);
        else if (f == FAMILY_TEXEL && vka_conv2d_packed_device(ctx) && vka_conv2d_packed_shape(&sh) &&
                 !getenv("VKANCHOR_LIMITS") && !getenv("VKANCHOR_CONV_STATS"))
            fail_msg("conv2d texel [%s]: the packed forward offers no statistics", cs->name);
        free(got);
    } else if (op == OP_BACKWARD_DATA) {
        test_guarded dx = nan_output(ctx, arena, h.nx);
        TEST_OK(vka_conv2d_backward_data(cmd, &sh, dx.t, dy, w, scratch.t));
        test_run(cmd);
        float *got = check_output(ctx, dx, h.dx_ref, h.nx, "backward dx", cs, f);
        expect_same_bits_again(ctx, cmd, dx.t, got, h.nx, "backward dx", cs);
        free(got);
    } else {
        test_guarded dw = nan_output(ctx, arena, h.nw), db = nan_output(ctx, arena, h.nb);
        test_guarded dx = nan_output(ctx, arena, h.nx);
        test_guarded y = nan_output(ctx, arena, h.ny);
        int y_checked = 0;
        if (op == OP_BACKWARD_BOTH) {
            /* As a training step: forward, then both gradients reusing the x it packed, and on
             * lavapipe's packed path with dy already packed in the scratch by its "producer"
             * (here the test: zeros around the elements, as the model keeps them). */
            vka_packed_layout l;
            int dy_packed = vka_conv2d_dy_packed_layout(ctx, &sh, scratch.t, &l);
            int expect = f == FAMILY_TEXEL && vka_context_device(ctx)->type == VKA_DEVICE_CPU &&
                         vka_conv2d_packed_device(ctx) && vka_conv2d_packed_shape(&sh) && !getenv("VKANCHOR_LIMITS");
            if (expect && !dy_packed) fail_msg("conv2d texel [%s]: no packed dy layout on a CPU device", cs->name);
            if (f != FAMILY_TEXEL && dy_packed) fail_msg("conv2d %s [%s]: a packed dy layout", family_name(f), cs->name);
            if (dy_packed) upload_packed(ctx, &l, h.dy, (uint32_t)sh.n, sh.k);
            /* Every other case (the even ones), x comes packed too (as a BN before the conv writes it). */
            vka_packed_layout lx;
            int x_packed = dy_packed && seed % 2 == 0 && vka_conv2d_x_packed_layout(ctx, &sh, scratch.t, &lx);
            if (x_packed) upload_packed(ctx, &lx, h.x, (uint32_t)sh.n, sh.c);
            /* Of the others, every other one (1, 5, 9, ...) reads x from a packed copy with a border
             * one wider than its pad, in a tensor of its own (as a projection reads its block's
             * first conv's copy: sh.x_shared), from row and column 1 of it. */
            vka_packed_layout ls = {0};
            int x_shared = 0;
            if (dy_packed && !x_packed && seed % 4 == 1) {
                uint32_t bo = sh.pad + 1;
                ls = (vka_packed_layout){.h = sh.h, .w = sh.w, .hp = sh.h + 2 * bo, .wp = sh.w + 2 * bo,
                                         .c4 = (sh.c + 3) / 4, .border = bo};
                ls.t = test_alloc_guarded(ctx, arena, test_packed_floats(&ls, sh.n) * 4).t;
                x_shared = vka_conv2d_x_shared_fits(ctx, &sh, scratch.t, &ls);
                if (expect && !x_shared) fail_msg("conv2d texel [%s]: x_shared refused on a CPU device", cs->name);
                if (x_shared) upload_packed(ctx, &ls, h.x, (uint32_t)sh.n, sh.c);
            }
            vka_conv2d_shape fwd = sh;
            fwd.x_packed = x_packed;
            if (x_shared) fwd.x_shared = ls;
            int x_given = x_packed || x_shared;
            /* (with its bias where the case has one when x is shared, so that y is checked there too) */
            vka_tensor fwd_b = x_shared && cs->bias ? b : none;
            y_checked = !cs->bias || x_shared;
            TEST_OK(vka_conv2d_forward(cmd, &fwd, y.t, x_given ? none : x, w, fwd_b, scratch.t));
            vka_conv2d_shape reuse = fwd;
            reuse.x_packed_by_forward = 1;
            reuse.dy_packed = dy_packed;
            TEST_OK(vka_conv2d_backward(cmd, &reuse, dx.t, dw.t, cs->bias ? db.t : none, dy_packed ? none : dy,
                                        x_given ? none : x, w, scratch.t));
        } else {
            TEST_OK(vka_conv2d_backward_weight(cmd, &sh, dw.t, cs->bias ? db.t : none, dy, x, scratch.t));
        }
        test_run(cmd);
        float *got_w = check_output(ctx, dw, h.dw_ref, h.nw, "backward dw", cs, f);
        if (cs->bias) {
            float *got_b = check_output(ctx, db, h.db_ref, h.nb, "backward db", cs, f);
            expect_same_bits_again(ctx, cmd, db.t, got_b, h.nb, "backward db", cs);
            free(got_b);
        } else {
            float *untouched = test_read(ctx, db.t, h.nb); /* no db asked: not written */
            for (size_t i = 0; i < h.nb; i++) assert_true(isnan(untouched[i]));
            free(untouched);
        }
        if (op == OP_BACKWARD_BOTH) {
            if (y_checked) free(check_output(ctx, y, h.y_ref, h.ny, "forward y (before both gradients)", cs, f));
            float *got_x = check_output(ctx, dx, h.dx_ref, h.nx, "backward dx (with dw)", cs, f);
            expect_same_bits_again(ctx, cmd, dx.t, got_x, h.nx, "backward dx (with dw)", cs);
            free(got_x);
        } else {
            float *untouched = test_read(ctx, dx.t, h.nx); /* no dx asked: not written */
            for (size_t i = 0; i < h.nx; i++) assert_true(isnan(untouched[i]));
            free(untouched);
        }
        expect_same_bits_again(ctx, cmd, dw.t, got_w, h.nw, "backward dw", cs);
        free(got_w);
    }
    unsetenv("VKANCHOR_CONV_PACKED");
    test_check_guard(ctx, scratch);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    free_host(&h);
}

static void expect_kernel_ran(vka_context *ctx, const char *name)
{
    if (vka_kernel_built(ctx, name, -1, 0)) return;
    fail_msg("%s did not run", name);
}

static void check_all_cases(family f, which_op op)
{
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NUM_CASES; i++) check_case(ctx, f, op, &cases[i], 1000 + i);
    /* A forced register block ran as its own pipeline. */
    if (f == FAMILY_TILED_4X8 || f == FAMILY_TILED_8X4 || f == FAMILY_TILED_8X8) {
        static const char *const pass[4] = {"conv2d_fwd_tiled", "conv2d_bwd_data_tiled", "conv2d_bwd_weight_tiled",
                                            "conv2d_bwd_weight_tiled"};
        const char *block = f == FAMILY_TILED_4X8 ? "4x8" : f == FAMILY_TILED_8X4 ? "8x4" : "8x8";
        char name[64];
        snprintf(name, sizeof name, "%s_%s", pass[op], block);
        expect_kernel_ran(ctx, name);
        snprintf(name, sizeof name, "conv2d_bwd_data_tiled_%s", block);
        if (op == OP_BACKWARD_BOTH) expect_kernel_ran(ctx, name);
    }
    /* lavapipe's packed weight gradient walks rows in steps of 7, 8 or 4 columns (picked by
     * width: rows of 14, 8 and 20 above): each ran. */
    if (f == FAMILY_TEXEL && (op == OP_BACKWARD_WEIGHT || op == OP_BACKWARD_BOTH) && vka_conv2d_packed_device(ctx) &&
        !getenv("VKANCHOR_CONV") && !getenv("VKANCHOR_CONV_PACKED")) {
        static const char *const names[] = {"conv2d_bwd_weight_packed", "conv2d_bwd_weight_packed_qc8",
                                            "conv2d_bwd_weight_packed_qc4"};
        for (int k = 0; k < 3; k++) expect_kernel_ran(ctx, names[k]);
    }
    /* The weight gradient's partials are summed 4 floats per texel fetch where a slice's K x (C*R*S + 1)
     * block is whole texels (K = 32, 40, 64 above), one float at a time elsewhere: both ran. */
    if ((op == OP_BACKWARD_WEIGHT || op == OP_BACKWARD_BOTH) && ctx->info.features.texel_buffer_rgba32f) {
        expect_kernel_ran(ctx, "conv2d_bwd_weight_reduce_vec4");
        expect_kernel_ran(ctx, "conv2d_bwd_weight_reduce");
    }
    /* ... and its forward and input gradient run with one or two columns' accumulators per
     * register block (picked by input channels): both ran. */
    if (f == FAMILY_TEXEL && op != OP_BACKWARD_WEIGHT && vka_conv2d_packed_device(ctx) && !getenv("VKANCHOR_CONV") &&
        !getenv("VKANCHOR_CONV_PACKED")) {
        const char *pass = op == OP_FORWARD ? "conv2d_fwd_packed" : "conv2d_bwd_data_packed";
        char jb1[64];
        snprintf(jb1, sizeof jb1, "%s_jb1", pass);
        expect_kernel_ran(ctx, pass);
        expect_kernel_ran(ctx, jb1);
        /* ... storing pairs of columns where every pair starts on an even float (even widths,
         * contiguous columns), one float elsewhere (odd widths, the stride-2 input gradient's
         * phases): both ran. */
        char pairs[64];
        snprintf(pairs, sizeof pairs, "%s_jb1_pairs", pass);
        expect_kernel_ran(ctx, pairs);
        snprintf(pairs, sizeof pairs, "%s_pairs", pass);
        expect_kernel_ran(ctx, pairs);
        /* ... and x (the forward) or dy (the input gradient) packed 4 channels x 4 positions at
         * a time where C (K) and H*W (P*Q) are multiples of 4, one float at a time elsewhere. */
        expect_kernel_ran(ctx, "conv2d_pack4");
        expect_kernel_ran(ctx, "conv2d_pack");
        /* ... and the forward with the output's statistics, in all four of its kernels. */
        if (op == OP_FORWARD && !getenv("VKANCHOR_CONV_STATS")) {
            static const char *const stats[] = {"conv2d_fwd_packed_stats", "conv2d_fwd_packed_jb1_stats",
                                                "conv2d_fwd_packed_pairs_stats", "conv2d_fwd_packed_jb1_pairs_stats"};
            for (int k = 0; k < 4; k++) expect_kernel_ran(ctx, stats[k]);
        }
    }
    test_context_finish(ctx);
}

#define FAMILY_TESTS(fam, FAM)                                                                                    \
    static void conv2d_##fam##_forward_matches_reference_on_every_shape(void **state)                             \
    {                                                                                                             \
        (void)state;                                                                                              \
        check_all_cases(FAM, OP_FORWARD);                                                                         \
    }                                                                                                             \
    static void conv2d_##fam##_input_gradient_matches_reference_on_every_shape(void **state)                      \
    {                                                                                                             \
        (void)state;                                                                                              \
        check_all_cases(FAM, OP_BACKWARD_DATA);                                                                   \
    }                                                                                                             \
    static void conv2d_##fam##_weight_and_bias_gradients_match_reference_on_every_shape(void **state)             \
    {                                                                                                             \
        (void)state;                                                                                              \
        check_all_cases(FAM, OP_BACKWARD_WEIGHT);                                                                 \
    }                                                                                                             \
    static void conv2d_##fam##_all_gradients_in_one_call_match_reference_on_every_shape(void **state)             \
    {                                                                                                             \
        (void)state;                                                                                              \
        check_all_cases(FAM, OP_BACKWARD_BOTH);                                                                   \
    }
FAMILY_TESTS(tiled, FAMILY_TILED)
FAMILY_TESTS(tiled_4x8, FAMILY_TILED_4X8)
FAMILY_TESTS(tiled_8x4, FAMILY_TILED_8X4)
FAMILY_TESTS(tiled_8x8, FAMILY_TILED_8X8)
FAMILY_TESTS(texel, FAMILY_TEXEL)
FAMILY_TESTS(texel_gemm, FAMILY_TEXEL_GEMM)
#define FAMILY_TEST_LIST(fam)                                                                                     \
    cmocka_unit_test(conv2d_##fam##_forward_matches_reference_on_every_shape),                                    \
        cmocka_unit_test(conv2d_##fam##_input_gradient_matches_reference_on_every_shape),                         \
        cmocka_unit_test(conv2d_##fam##_weight_and_bias_gradients_match_reference_on_every_shape),                \
        cmocka_unit_test(conv2d_##fam##_all_gradients_in_one_call_match_reference_on_every_shape)

/* The weight gradient of the cnn first layer is split over several slices: the scratch
 * holds them all, and the size is a pure function of the shape. */
static void conv2d_weight_scratch_holds_every_slice(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_conv2d_shape sh = cases[3].sh;
    uint64_t bytes = vka_conv2d_scratch_bytes(ctx, &sh);
    uint64_t one_slice = (uint64_t)sh.k * (sh.c * sh.r * sh.s + 1) * 4;
    assert_true(bytes >= 2 * one_slice); /* more than one slice at this shape */
    assert_int_equal(bytes % 256, 0);
    sh.variant = VKA_CONV2D_TILED;
    assert_int_equal(vka_conv2d_scratch_bytes(ctx, &sh), bytes);
    test_context_finish(ctx);
}

/* The tiled kernels' plan on a GPU at resnet18's shapes (batch 128, 16 x 16 threads): enough
 * weight-gradient slices to fill the device, 8-wide blocks where the grid stays large. */
static void conv2d_tiled_plan_fills_a_gpu_and_keeps_cpu_devices_at_4x4(void **state)
{
    (void)state;
    unsetenv("VKANCHOR_TILED_BLOCK");
    vka_conv2d_shape s128 = SHAPE(128, 128, 16, 16, 128, 3, 3, 1, 1), s64 = SHAPE(128, 64, 32, 32, 64, 3, 3, 1, 1),
                     s512 = SHAPE(128, 512, 4, 4, 512, 3, 3, 1, 1);
    /* 128 -> 128: 2 x 19 tiles of 64 x 64 want 27 slices (16 MiB of partials allow 28). */
    assert_int_equal(vka_conv2d_weight_slices(&s128, VKA_CONV2D_TILED), 27);
    assert_int_equal(vka_conv2d_weight_slices(&s64, VKA_CONV2D_TILED), 64);   /* capped at 64 */
    assert_int_equal(vka_conv2d_weight_slices(&s512, VKA_CONV2D_TILED), 1);   /* 2.4M partials a slice */
    assert_true(vka_conv2d_weight_slices(&s128, VKA_CONV2D_TEXEL) == 1);      /* lavapipe's rule: 2^18 partials */
    uint32_t rm, rn;
    /* Weight gradient 128 -> 128 (M = 128, N = 1153, 27 slices): 8x8 keeps 270 workgroups. */
    vka_conv2d_tiled_block(VKA_DEVICE_DISCRETE_GPU, &s128, 128, 1153, 27, 16, 16, &rm, &rn);
    assert_true(rm == 8 && rn == 8);
    /* ... 64 -> 64 (M = 64: one 64-row tile): 4x8. */
    vka_conv2d_tiled_block(VKA_DEVICE_DISCRETE_GPU, &s64, 64, 577, 64, 16, 16, &rm, &rn);
    assert_true(rm == 4 && rn == 8);
    /* Forward 512 -> 512 at 4x4 (M = 512, N = 2048, one layer): 8-wide would leave 128 workgroups. */
    vka_conv2d_tiled_block(VKA_DEVICE_DISCRETE_GPU, &s512, 512, 2048, 1, 16, 16, &rm, &rn);
    assert_true(rm == 4 && rn == 4);
    /* CPU devices keep 4x4; the shape's fields and then the environment override the choice. */
    vka_conv2d_tiled_block(VKA_DEVICE_CPU, &s128, 128, 1153, 27, 16, 16, &rm, &rn);
    assert_true(rm == 4 && rn == 4);
    setenv("VKANCHOR_TILED_BLOCK", "8x4", 1);
    vka_conv2d_tiled_block(VKA_DEVICE_CPU, &s128, 128, 1153, 27, 16, 16, &rm, &rn);
    assert_true(rm == 8 && rn == 4);
    s128.tiled_rn = 8;
    vka_conv2d_tiled_block(VKA_DEVICE_CPU, &s128, 128, 1153, 27, 16, 16, &rm, &rn);
    assert_true(rm == 8 && rn == 8);
    unsetenv("VKANCHOR_TILED_BLOCK");
}

/* fp16 inputs (10-bit mantissas) summed in fp32: the normalized error (squared: sum of squared
 * errors over sum of squared values) of a correct kernel is ~2e-7; a wrong fragment layout or
 * a missed tile gives errors of the output's size (~1). */
#define COOP_TOL 1e-5

/* Reads a coop output and checks it against the reference (scaled by ref_scale) within fp16's
 * error; returns the floats. */
static float *check_coop_output(vka_context *ctx, test_guarded g, const double *ref, double ref_scale, size_t n,
                                const char *what, const conv_case *cs, int mode)
{
    float *got = test_read(ctx, g.t, n);
    double *scaled = malloc(n * sizeof *scaled);
    for (size_t i = 0; i < n; i++) scaled[i] = ref[i] * ref_scale;
    char label[256];
    snprintf(label, sizeof label, "conv2d coop%s %s (dy x %g) [%s]", mode == 2 ? " (emulated)" : "", what, ref_scale,
             cs->name);
    test_expect_close(label, got, scaled, n, COOP_TOL);
    test_check_guard(ctx, g);
    free(scaled);
    return got;
}

/* One case on the coop kernels in `mode` (sh.coop: 1 the device's tensor cores, 2 their
 * emulation): the forward, then dx, dw and db from dy x dy_scale (a tiny dy shows that its
 * scaling keeps fp16 from underflowing), each against the fp64 reference within fp16's
 * error and with the same bits again; or (expect_refusal) UNSUPPORTED naming cooperative
 * matrices. */
static void check_coop_case(vka_context *ctx, const conv_case *cs, int mode, int expect_refusal, float dy_scale,
                            uint64_t seed)
{
    vka_conv2d_shape sh = cs->sh;
    sh.variant = VKA_CONV2D_TILED;
    sh.coop = mode;
    host_case h = make_host(cs, seed);
    for (size_t i = 0; i < h.ny; i++) h.dy[i] *= dy_scale;
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "conv2d coop"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_tensor x = test_tensor(ctx, arena, h.x, h.nx), w = test_tensor(ctx, arena, h.w, h.nw),
               b = test_tensor(ctx, arena, h.b, h.nb), dy = test_tensor(ctx, arena, h.dy, h.ny), none = {0};
    test_guarded scratch = test_alloc_guarded(ctx, arena, vka_conv2d_scratch_bytes(ctx, &sh));
    test_guarded y = nan_output(ctx, arena, h.ny), dx = nan_output(ctx, arena, h.nx);
    test_guarded dw = nan_output(ctx, arena, h.nw), db = nan_output(ctx, arena, h.nb);
    vka_result rc = vka_conv2d_forward(cmd, &sh, y.t, x, w, cs->bias ? b : none, scratch.t);
    if (expect_refusal) {
        assert_int_equal(rc, VKA_ERROR_UNSUPPORTED);
        if (!strstr(vka_context_last_error(ctx), "cooperative matrices"))
            fail_msg("refusal without naming cooperative matrices: %s", vka_context_last_error(ctx));
        vka_cmd *cmd2;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd2));
        assert_int_equal(vka_conv2d_backward(cmd2, &sh, dx.t, dw.t, cs->bias ? db.t : none, dy, x, w, scratch.t),
                         VKA_ERROR_UNSUPPORTED);
        if (!strstr(vka_context_last_error(ctx), "cooperative matrices"))
            fail_msg("backward refusal without naming cooperative matrices: %s", vka_context_last_error(ctx));
        vka_cmd_destroy(cmd2);
    } else {
        TEST_OK(rc);
        TEST_OK(vka_conv2d_backward(cmd, &sh, dx.t, dw.t, cs->bias ? db.t : none, dy, x, w, scratch.t));
        test_run(cmd);
        float *got[4] = {check_coop_output(ctx, y, h.y_ref, 1, h.ny, "forward y", cs, mode),
                         check_coop_output(ctx, dx, h.dx_ref, dy_scale, h.nx, "dx", cs, mode),
                         check_coop_output(ctx, dw, h.dw_ref, dy_scale, h.nw, "dw", cs, mode),
                         cs->bias ? check_coop_output(ctx, db, h.db_ref, dy_scale, h.nb, "db", cs, mode) : NULL};
        expect_same_bits_again(ctx, cmd, y.t, got[0], h.ny, "coop forward y", cs);
        expect_same_bits_again(ctx, cmd, dx.t, got[1], h.nx, "coop dx", cs);
        expect_same_bits_again(ctx, cmd, dw.t, got[2], h.nw, "coop dw", cs);
        if (cs->bias) expect_same_bits_again(ctx, cmd, db.t, got[3], h.nb, "coop db", cs);
        for (int i = 0; i < 4; i++) free(got[i]);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    free_host(&h);
}

/* The three passes on cooperative matrices. Everywhere: what the ops declare of the kernels
 * matches their SPIR-V, and (with fp16 arithmetic) the kernels with their fragment operations
 * emulated pass every case, so their tile gathers, fragment offsets and strides, dy's scaling
 * and epilogues are proven without tensor cores. Where the device offers them and their
 * self-test passed: every case on them; elsewhere asking for them fails with UNSUPPORTED. */
static void conv2d_coop_forward_matches_reference_where_offered(void **state)
{
    (void)state;
    vka_context *ctx = test_context_coop();
    int fits = vka_context_limits(ctx)->max_shared_memory_bytes >= VKA_CONV2D_COOP_SHARED_BYTES;
    assert_int_equal(vka_conv2d_coop_check(ctx), fits ? VKA_SUCCESS : VKA_ERROR_LIMIT_EXCEEDED);
    int ready = vka_conv2d_coop_ready(ctx);
    if (ctx->coopmat_nv && !ready && fits)
        fail_msg("%s offers VK_NV_cooperative_matrix's tiles, but the coop kernel failed its self-test (above)",
                 vka_context_device(ctx)->name);
    int emulate = vka_context_device(ctx)->features.shader_float16 && fits;
    for (size_t i = 0; i < NUM_CASES; i++) {
        float dy_scale = i % 3 == 1 ? 1e-6f : 1.0f; /* every third case with a dy far below fp16's normals */
        if (emulate) check_coop_case(ctx, &cases[i], 2, 0, dy_scale, 3000 + i);
        check_coop_case(ctx, &cases[i], 1, !ready, dy_scale, 3000 + i);
    }
    static const char *const kernels[] = {"conv2d_fwd_coop", "conv2d_bwd_data_coop", "conv2d_bwd_weight_coop"};
    for (int k = 0; k < 3; k++) {
        char emulated[64];
        snprintf(emulated, sizeof emulated, "%s_emulated", kernels[k]);
        if (emulate && !vka_kernel_built(ctx, emulated, -1, 0)) fail_msg("%s never ran", emulated);
        if (ready && !vka_kernel_built(ctx, kernels[k], -1, 0)) fail_msg("%s never ran", kernels[k]);
    }
    test_context_finish(ctx);
}

static void conv2d_picks_the_texel_variant_on_cpu_devices_unless_told_otherwise(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_conv2d_shape sh = cases[3].sh;
    char *saved = getenv("VKANCHOR_CONV") ? strdup(getenv("VKANCHOR_CONV")) : NULL;
    unsetenv("VKANCHOR_CONV");
    vka_conv2d_variant expect =
        vka_context_device(ctx)->type == VKA_DEVICE_CPU ? VKA_CONV2D_TEXEL : VKA_CONV2D_TILED;
    assert_int_equal(vka_conv2d_choose(ctx, &sh), expect);
    setenv("VKANCHOR_CONV", "tiled", 1);
    assert_int_equal(vka_conv2d_choose(ctx, &sh), VKA_CONV2D_TILED);
    setenv("VKANCHOR_CONV", "texel", 1);
    assert_int_equal(vka_conv2d_choose(ctx, &sh), VKA_CONV2D_TEXEL);
    sh.variant = VKA_CONV2D_TILED; /* an explicit variant wins over the environment */
    assert_int_equal(vka_conv2d_choose(ctx, &sh), VKA_CONV2D_TILED);
    if (saved) setenv("VKANCHOR_CONV", saved, 1), free(saved);
    else unsetenv("VKANCHOR_CONV");
    test_context_finish(ctx);
}

static char warning[512];
static void keep_warning(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level >= VKA_LOG_WARNING) fprintf(stderr, "  [vkanchor] %s\n", message);
    if (level == VKA_LOG_WARNING) snprintf(warning, sizeof warning, "%s", message);
}

/* The packed kernels' start-up self-test (conv2d_self_test.c): where the device can run them
 * it passes, having run the packed kernels of all three passes against the tiled ones; its
 * comparison sees fp16's rounding (the coop kernels emulated, where fp16 arithmetic is
 * offered); and a failed self-test keeps every conv off the packed kernels. Elsewhere it says
 * no without running. */
static void conv2d_packed_self_test_gates_the_packed_kernels(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_conv2d_shape sh = {.n = 2, .c = 8, .h = 10, .w = 10, .k = 16, .r = 3, .s = 3, .stride = 1, .pad = 1,
                           .variant = VKA_CONV2D_TEXEL};
    const int capable = vka_conv2d_packed_device(ctx) && !vka_switch_off("VKANCHOR_CONV_PACKED") &&
                        vka_conv2d_choose(ctx, &(vka_conv2d_shape){.n = 1, .c = 1, .h = 4, .w = 4, .k = 1, .r = 1,
                                                                   .s = 1, .stride = 1}) == VKA_CONV2D_TEXEL;
    /* lavapipe with 256-bit vectors (8-lane subgroups) must offer them: the CI machine's device,
     * where every packed check in the suite depends on it. */
    const char *name = vka_context_device(ctx)->name;
    if (strstr(name, "llvmpipe") && strstr(name, "256 bits") && !vka_conv2d_packed_device(ctx))
        fail_msg("%s does not take the packed kernels (subgroup size %u)", name,
                 vka_context_device(ctx)->limits.subgroup_size);
    assert_int_equal(vka_conv2d_packed_ready(ctx), capable);
    assert_int_equal(ctx->packed_checked, capable);
    if (capable) {
        static const char *const ran[] = {"conv2d_pack4", "conv2d_bwd_weight_packed",
                                          "conv2d_fwd_tiled", "conv2d_bwd_weight_tiled"};
        for (size_t i = 0; i < sizeof ran / sizeof *ran; i++)
            if (!vka_kernel_built(ctx, ran[i], -1, 0)) fail_msg("the packed self-test never ran %s", ran[i]);
        if (!vka_kernel_built(ctx, "conv2d_bwd_data_packed_cpair", -1, 0) &&
            !vka_kernel_built(ctx, "conv2d_bwd_data_packed_jb1_cpair", -1, 0) && !vka_switch_off("VKANCHOR_CONV_CPAIR"))
            fail_msg("the packed self-test never ran a stride-2 input gradient by column pairs");
        if (vka_context_device(ctx)->features.shader_float16 &&
            vka_context_limits(ctx)->max_shared_memory_bytes >= VKA_CONV2D_COOP_SHARED_BYTES) {
            vka_conv2d_shape fp16 = sh, fp32 = sh;
            fp16.variant = fp32.variant = VKA_CONV2D_TILED;
            fp16.coop = 2, fp32.coop = -1;
            double err = vka_conv2d_compare_paths(ctx, &fp16, &fp32, 1.0f);
            if (!(err > 1e-5 && err < 1e-2)) fail_msg("fp16 against fp32: relative error %g", err);
        }
        vka_arena *arena;
        vka_tensor scratch;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "self-test gate"}, &arena));
        TEST_OK(vka_arena_alloc(arena, vka_conv2d_scratch_bytes(ctx, &sh), &scratch));
        vka_packed_layout l;
        assert_true(vka_conv2d_x_packed_layout(ctx, &sh, scratch, &l));
        vka_arena_destroy(arena);
        /* A context whose self-test fails (a tolerance no error meets) says so once and keeps
         * every conv off the packed kernels. */
        vka_context *failing = test_context();
        vka_log_fn saved = failing->logger.fn; /* (only the function: the validation count stays) */
        failing->logger.fn = keep_warning;
        warning[0] = 0;
        assert_int_equal(vka_conv2d_packed_ready_within(failing, -1.0), 0);
        assert_int_equal(failing->packed_checked, -1);
        if (!strstr(warning, "failed their self-test")) fail_msg("no warning: '%s'", warning);
        warning[0] = 0;
        assert_int_equal(vka_conv2d_packed_ready(failing), 0);
        if (warning[0]) fail_msg("the self-test ran again: '%s'", warning); /* once per context */
        failing->logger.fn = saved;
        TEST_OK(vka_arena_create(failing, &(vka_arena_desc){.name = "self-test gate"}, &arena));
        TEST_OK(vka_arena_alloc(arena, vka_conv2d_scratch_bytes(failing, &sh), &scratch));
        assert_false(vka_conv2d_x_packed_layout(failing, &sh, scratch, &l));
        vka_arena_destroy(arena);
        test_context_finish(failing);
    }
    test_context_finish(ctx);
}

/* More run blocks than one dispatch dimension holds (max_workgroup_count[0] + 1, here 1x1 on
 * 4 channels, one run of 4 columns per output row): the dispatch is split over x and y and
 * its padding workgroups (every lane past the last run) must not write statistics: each
 * channel's merged partials equal the double statistics of the y the GPU wrote, and the
 * guard after the partials is intact. */
static void conv2d_forward_statistics_skip_a_split_dispatchs_padding_workgroups(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    uint64_t blocks = (uint64_t)ctx->limits.max_workgroup_count[0] + 1;
    vka_conv2d_shape sh = SHAPE((uint32_t)blocks, 4, 8, 4, 4, 1, 1, 1, 0); /* 8 runs per image */
    sh.variant = VKA_CONV2D_TEXEL;
    uint32_t groups = 0;
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "conv2d-split"}, &arena));
    test_guarded scratch = test_alloc_guarded(ctx, arena, vka_conv2d_scratch_bytes(ctx, &sh));
    if (blocks <= (1u << 17) && (groups = vka_conv2d_stats_groups(ctx, &sh, scratch.t)) != 0) {
        assert_int_equal(groups, blocks); /* sh.n * 8 rows of one run each, 8 per workgroup */
        size_t nx = (size_t)sh.n * 4 * 8 * 4, nw = 16, np = (size_t)4 * groups * 4;
        test_rng rng = {77};
        float *x = malloc(nx * 4), *w = malloc(nw * 4);
        test_fill_uniform(&rng, x, nx, -1, 1);
        test_fill_uniform(&rng, w, nw, -1, 1);
        vka_tensor tx = test_tensor(ctx, arena, x, nx), tw = test_tensor(ctx, arena, w, nw);
        test_guarded y = nan_output(ctx, arena, nx), stats = nan_output(ctx, arena, np);
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        TEST_OK(vka_conv2d_forward_stats(cmd, &sh, y.t, tx, tw, (vka_tensor){0}, scratch.t, stats.t));
        test_run(cmd);
        vka_cmd_destroy(cmd);
        float *gy = test_read(ctx, y.t, nx), *part = test_read(ctx, stats.t, np);
        test_check_guard(ctx, stats);
        double *yd = test_to_double(gy, nx);
        for (uint32_t k = 0; k < 4; k++) expect_channel_stats("split dispatch", part, k, groups, yd, sh.n, 4, 32);
        free(yd);
        free(gy), free(part), free(x), free(w);
    } else if (vka_context_device(ctx)->type == VKA_DEVICE_CPU && vka_conv2d_packed_device(ctx) &&
               !getenv("VKANCHOR_CONV_STATS") && !getenv("VKANCHOR_CONV_PACKED") && !getenv("VKANCHOR_LIMITS")) {
        fail_msg("split dispatch: lavapipe's packed forward offers no statistics for %u images (limit %llu blocks)",
                 sh.n, (unsigned long long)blocks);
    }
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* ---- bad calls ---------------------------------------------------------------------- */

typedef struct bad_call {
    const char *what;
    which_op op;
    vka_conv2d_shape sh;
    const char *shape_text;   /* must appear in the message */
    int short_output;         /* the output tensor is one float short */
    int short_scratch;        /* the scratch is one partial short */
} bad_call;

/* The tensors below fit GOOD; the bad shapes are checked before any size. */
#define GOOD SHAPE(1, 3, 8, 8, 4, 3, 3, 1, 1)
#define GOOD_TEXT "N=1 C=3 H=8 W=8 K=4 R=3 S=3 stride=1 pad=1"

static const bad_call bad_calls[] = {
    {"zero input channels", OP_FORWARD, SHAPE(1, 0, 8, 8, 4, 3, 3, 1, 1), "C=0", 0, 0},
    {"zero output channels", OP_BACKWARD_WEIGHT, SHAPE(1, 3, 8, 8, 0, 3, 3, 1, 1), "K=0", 0, 0},
    {"zero batch", OP_BACKWARD_DATA, SHAPE(0, 3, 8, 8, 4, 3, 3, 1, 1), "N=0", 0, 0},
    {"kernel larger than the padded input", OP_FORWARD, SHAPE(1, 3, 2, 8, 4, 5, 5, 1, 1), "H=2 W=8 K=4 R=5 S=5", 0, 0},
    {"kernel larger than the padded input (dx)", OP_BACKWARD_DATA, SHAPE(1, 3, 8, 1, 4, 3, 4, 1, 1), "R=3 S=4", 0, 0},
    {"kernel larger than the padded input (dw)", OP_BACKWARD_WEIGHT, SHAPE(1, 3, 8, 8, 4, 11, 3, 1, 1), "R=11", 0, 0},
    {"stride 0", OP_FORWARD, SHAPE(1, 3, 8, 8, 4, 3, 3, 0, 1), "stride=0", 0, 0},
    {"stride 0 (dw)", OP_BACKWARD_WEIGHT, SHAPE(1, 3, 8, 8, 4, 3, 3, 0, 1), "stride=0", 0, 0},
    {"y too small", OP_FORWARD, GOOD, GOOD_TEXT, 1, 0},
    {"dx too small", OP_BACKWARD_DATA, GOOD, GOOD_TEXT, 1, 0},
    {"dw too small", OP_BACKWARD_WEIGHT, GOOD, GOOD_TEXT, 1, 0},
    {"scratch too small", OP_BACKWARD_WEIGHT, GOOD, GOOD_TEXT, 0, 1},
    {"scratch too small (forward)", OP_FORWARD, GOOD, GOOD_TEXT, 0, 1},
    {"scratch too small (dx)", OP_BACKWARD_DATA, GOOD, GOOD_TEXT, 0, 1},
    {"tensors for batch 1 given a batch-2 shape", OP_FORWARD, SHAPE(2, 3, 8, 8, 4, 3, 3, 1, 1), "N=2 C=3", 0, 0},
    {"dy and w for more output channels", OP_BACKWARD_DATA, SHAPE(1, 3, 8, 8, 5, 3, 3, 1, 1), "K=5", 0, 0},
};

/* Two convs of one stride writing one input's gradient (a projection block's input) on
 * lavapipe's packed path: the first with dx_skip_empty_phases writes only its phases with
 * taps (the rest stay as they were, NaN here); the second with dx_accumulate adds its part
 * there (onto D here) and overwrites the other phases. */
static void conv2d_input_gradient_skips_empty_phases_and_accumulates_per_phase(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    /* Every stride-2 case the packed kernels take: 3x3 (pads 0, 1, 2) and 1x1, odd and even
     * sizes, JB = 1 and JB = 2. */
    int ran = 0, picked = 0;
    for (size_t p = 0; p < NUM_CASES; p++) {
        const conv_case *cs = &cases[p];
        if (cs->sh.stride != 2 || !vka_conv2d_packed_shape(&cs->sh)) continue;
        picked++;
        host_case h = make_host(cs, 5000 + (uint64_t)p);
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "conv2d phases"}, &arena));
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        vka_conv2d_shape sh = cs->sh;
        vka_tensor scratch = test_tensor(ctx, arena, NULL, vka_conv2d_scratch_bytes(ctx, &sh) / 4);
        TEST_OK(vka_fill(ctx, scratch, 0));
        uint32_t taps = vka_conv2d_dx_tap_phases(ctx, &sh, scratch);
        if (!taps) { /* not the packed path here (a GPU, or VKANCHOR_CONV*): the modes are refused */
            sh.dx_skip_empty_phases = 1;
            test_guarded dx = nan_output(ctx, arena, h.nx);
            vka_tensor w = test_tensor(ctx, arena, h.w, h.nw), dy = test_tensor(ctx, arena, h.dy, h.ny);
            assert_int_equal(vka_conv2d_backward_data(cmd, &sh, dx.t, dy, w, scratch), VKA_ERROR_INVALID_ARGUMENT);
            vka_cmd_destroy(cmd), vka_arena_destroy(arena), free_host(&h);
            continue;
        }
        ran++;
        uint32_t all = (1u << (sh.stride * sh.stride)) - 1;
        {   /* a mask naming phases a stride of 2 does not have is refused */
            vka_conv2d_shape bad = sh;
            bad.dx_accumulate = 1u << 4;
            test_guarded dx = nan_output(ctx, arena, h.nx);
            vka_tensor w = test_tensor(ctx, arena, h.w, h.nw), dy = test_tensor(ctx, arena, h.dy, h.ny);
            assert_int_equal(vka_conv2d_backward_data(cmd, &bad, dx.t, dy, w, scratch), VKA_ERROR_INVALID_ARGUMENT);
            vka_cmd_destroy(cmd);
            TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        }
        if (sh.r == 1) assert_int_equal(taps, 1u); /* a 1x1 stride-2 conv: phase (0, 0) only */
        else assert_int_equal(taps, all);
        vka_tensor w = test_tensor(ctx, arena, h.w, h.nw), dy = test_tensor(ctx, arena, h.dy, h.ny);
        /* The first writer: NaN where it has no taps, the reference elsewhere. */
        test_guarded dx = nan_output(ctx, arena, h.nx);
        vka_conv2d_shape first = sh;
        first.dx_skip_empty_phases = 1;
        TEST_OK(vka_conv2d_backward_data(cmd, &first, dx.t, dy, w, scratch));
        test_run(cmd);
        float *got = test_read(ctx, dx.t, h.nx);
        for (size_t e = 0; e < h.nx; e++) {
            size_t col = e % sh.w, row = e / sh.w % sh.h;
            int tapped = (taps >> ((row % sh.stride) * sh.stride + col % sh.stride)) & 1;
            if (tapped ? !(fabs(got[e] - h.dx_ref[e]) <= 1e-4 * (1 + fabs(h.dx_ref[e]))) : !isnan(got[e]))
                fail_msg("conv2d [%s] skip empty phases: element %zu (row %zu, col %zu) is %g, want %s%g", cs->name,
                         e, row, col, got[e], tapped ? "" : "untouched NaN, not ", h.dx_ref[e]);
        }
        free(got);
        /* The second writer: D + its part on the phases in dx_accumulate, its part elsewhere. */
        /* all; phase (0, 0) only (a projection's); (0, 1) and (1, 0): under CPAIR every column
         * mask of a row phase (both, even, odd, none) */
        uint32_t masks[3] = {all, 1u, 6u};
        for (int mi = 0; mi < 3; mi++) {
            float *d = malloc(h.nx * 4);
            test_rng rng = {77 + (uint64_t)mi};
            test_fill_uniform(&rng, d, h.nx, -1, 1);
            TEST_OK(vka_upload(ctx, dx.t, 0, d, h.nx * 4));
            vka_conv2d_shape second = sh;
            second.dx_accumulate = masks[mi];
            TEST_OK(vka_cmd_reset(cmd));
            TEST_OK(vka_conv2d_backward_data(cmd, &second, dx.t, dy, w, scratch));
            test_run(cmd);
            got = test_read(ctx, dx.t, h.nx);
            for (size_t e = 0; e < h.nx; e++) {
                size_t col = e % sh.w, row = e / sh.w % sh.h;
                int acc = (masks[mi] >> ((row % sh.stride) * sh.stride + col % sh.stride)) & 1;
                double want = (acc ? d[e] : 0.0) + h.dx_ref[e];
                if (!(fabs(got[e] - want) <= 1e-4 * (1 + fabs(want))))
                    fail_msg("conv2d [%s] accumulate 0x%x: element %zu is %g, want %g", cs->name, masks[mi], e,
                             got[e], want);
            }
            free(got), free(d);
        }
        test_check_guard(ctx, dx);
        vka_cmd_destroy(cmd);
        vka_arena_destroy(arena);
        free_host(&h);
    }
    if (vka_context_device(ctx)->type == VKA_DEVICE_CPU && vka_conv2d_packed_device(ctx) && !getenv("VKANCHOR_CONV") &&
        !getenv("VKANCHOR_CONV_PACKED") && !getenv("VKANCHOR_LIMITS")) {
        assert_int_equal(ran, picked);
        /* The even widths went by row phase (CPAIR), with every column mask (0: overwrite, 1 even,
         * 2 odd, 3 both columns add: its spec constant 2) in both register blockings. */
        for (int jb1 = 0; jb1 < 2 && !getenv("VKANCHOR_CONV_CPAIR") && !getenv("VKANCHOR_CONV_PAIRS"); jb1++)
            for (uint32_t mask = 0; mask < 4; mask++) {
                const char *name = jb1 ? "conv2d_bwd_data_packed_jb1_cpair" : "conv2d_bwd_data_packed_cpair";
                if (!vka_kernel_built(ctx, name, 2, mask))
                    fail_msg("no stride-2 input gradient by row phase ran with JB%s and column mask %u",
                             jb1 ? " = 1" : " = 2", mask);
            }
    }
    assert_true(picked >= 6);
    test_context_finish(ctx);
}

static void conv2d_rejects_bad_calls_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "conv2d-bad"}, &arena));
    /* Tensors sized for GOOD: x (1,3,8,8), w (4,3,3,3), y (1,4,8,8), b (4). */
    const vka_conv2d_shape good = GOOD;
    size_t nx = 3 * 64, nw = 4 * 27, ny = 4 * 64;
    uint64_t scratch_bytes = vka_conv2d_scratch_bytes(ctx, &good);
    uint64_t partial_bytes = (uint64_t)4 * (27 + 1) * 4; /* one slice at this shape */
    assert_true(scratch_bytes >= partial_bytes);
    vka_tensor x = test_tensor(ctx, arena, NULL, nx), w = test_tensor(ctx, arena, NULL, nw),
               dy = test_tensor(ctx, arena, NULL, ny), none = {0};
    for (int v = VKA_CONV2D_TILED; v <= VKA_CONV2D_TEXEL; v++) {
        for (size_t i = 0; i < sizeof bad_calls / sizeof *bad_calls; i++) {
            const bad_call *bc = &bad_calls[i];
            vka_conv2d_shape sh = bc->sh;
            sh.variant = (vka_conv2d_variant)v;
            size_t out_n = bc->op == OP_FORWARD ? ny : bc->op == OP_BACKWARD_DATA ? nx : nw;
            test_guarded out = test_alloc_guarded(ctx, arena, (out_n - (bc->short_output ? 1 : 0)) * 4);
            test_guarded db = test_alloc_guarded(ctx, arena, 4 * 4);
            test_guarded scratch = test_alloc_guarded(ctx, arena, bc->short_scratch ? partial_bytes - 4 : scratch_bytes);
            TEST_OK(vka_fill(ctx, out.t, NAN_WORD));
            vka_cmd *cmd;
            TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
            vka_result rc = bc->op == OP_FORWARD ? vka_conv2d_forward(cmd, &sh, out.t, x, w, none, scratch.t)
                            : bc->op == OP_BACKWARD_DATA ? vka_conv2d_backward_data(cmd, &sh, out.t, dy, w, scratch.t)
                                                         : vka_conv2d_backward_weight(cmd, &sh, out.t, db.t, dy, x,
                                                                                      scratch.t);
            if (rc != VKA_ERROR_INVALID_ARGUMENT)
                fail_msg("%s (%s): %s instead of VKA_ERROR_INVALID_ARGUMENT", bc->what, variant_name(sh.variant),
                         vka_result_string(rc));
            const char *msg = vka_context_last_error(ctx);
            if (!strstr(msg, "conv2d") || !strstr(msg, bc->shape_text))
                fail_msg("%s: the message does not name conv2d and the shape '%s': %s", bc->what, bc->shape_text, msg);
            assert_int_equal(vka_cmd_status(cmd), VKA_ERROR_INVALID_ARGUMENT);
            /* The cmd refuses to run, and nothing was written. */
            assert_int_equal(vka_cmd_submit(cmd), VKA_ERROR_INVALID_ARGUMENT);
            float *o = test_read(ctx, out.t, out_n - (bc->short_output ? 1 : 0));
            for (size_t j = 0; j < out_n - (bc->short_output ? 1 : 0); j++) assert_true(isnan(o[j]));
            free(o);
            test_check_guard(ctx, out);
            test_check_guard(ctx, db);
            test_check_guard(ctx, scratch);
            vka_cmd_destroy(cmd);
        }
    }
    /* dy_packed promises a packed dy that only lavapipe's packed kernels read: refused elsewhere. */
    vka_conv2d_shape tiled = good;
    tiled.variant = VKA_CONV2D_TILED;
    tiled.dy_packed = 1;
    test_guarded dx = test_alloc_guarded(ctx, arena, nx * 4);
    test_guarded scratch = test_alloc_guarded(ctx, arena, scratch_bytes);
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    assert_int_equal(vka_conv2d_backward_data(cmd, &tiled, dx.t, none, w, scratch.t), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), "dy_packed"))
        fail_msg("dy_packed on the tiled variant: %s", vka_context_last_error(ctx));
    vka_cmd_destroy(cmd);
    tiled.dy_packed = 0;
    tiled.x_packed = 1;
    test_guarded y = test_alloc_guarded(ctx, arena, ny * 4);
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    assert_int_equal(vka_conv2d_forward(cmd, &tiled, y.t, none, w, none, scratch.t), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), "x_packed"))
        fail_msg("x_packed on the tiled variant: %s", vka_context_last_error(ctx));
    vka_cmd_destroy(cmd);
    /* Statistics come only from lavapipe's packed forward, into a tensor of K x G partials. */
    tiled.x_packed = 0;
    vka_tensor small_stats = test_tensor(ctx, arena, NULL, 4);
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    assert_int_equal(vka_conv2d_forward_stats(cmd, &tiled, y.t, x, w, none, scratch.t, small_stats),
                     VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), "conv2d_forward_stats"))
        fail_msg("statistics on the tiled variant: %s", vka_context_last_error(ctx));
    vka_cmd_destroy(cmd);
    /* ... and refused where x cannot be bound as a texel buffer (AUTO falls back to the GEMM,
     * which writes none): here x at a 4-byte offset. */
    vka_conv2d_shape automatic = good;
    test_guarded xa = test_alloc_guarded(ctx, arena, (nx + 1) * 4);
    vka_tensor stats_ok = test_tensor(ctx, arena, NULL, 4096);
    if (vka_conv2d_stats_groups(ctx, &automatic, scratch.t) &&
        ctx->info.limits.min_texel_buffer_offset_alignment > 4) {
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        assert_int_equal(vka_conv2d_forward_stats(cmd, &automatic, y.t, vka_tensor_slice(xa.t, 4, nx * 4), w, none,
                                                  scratch.t, stats_ok),
                         VKA_ERROR_INVALID_ARGUMENT);
        if (!strstr(vka_context_last_error(ctx), "statistics asked for"))
            fail_msg("statistics with an unbindable x: %s", vka_context_last_error(ctx));
        vka_cmd_destroy(cmd);
    }
    vka_conv2d_shape texel = good;
    texel.variant = VKA_CONV2D_TEXEL;
    if (vka_conv2d_stats_groups(ctx, &texel, scratch.t)) {
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        assert_int_equal(vka_conv2d_forward_stats(cmd, &texel, y.t, x, w, none, scratch.t, small_stats),
                         VKA_ERROR_INVALID_ARGUMENT);
        if (!strstr(vka_context_last_error(ctx), "stats needs") || !strstr(vka_context_last_error(ctx), GOOD_TEXT))
            fail_msg("a stats tensor too small: %s", vka_context_last_error(ctx));
        assert_int_equal(vka_cmd_submit(cmd), VKA_ERROR_INVALID_ARGUMENT);
        vka_cmd_destroy(cmd);
    }
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* A shared packed x (another conv's copy: vka_conv2d_shape.x_shared) that cannot serve this conv
 * is refused before anything is recorded, with a message naming why: both x sources given, a
 * copy of another size, channel count or too thin a border, a tensor too short, a variant
 * without the packed kernels, or a copy the call itself would overwrite. */
static void conv2d_rejects_a_shared_x_that_cannot_serve(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "conv2d-x-shared"}, &arena));
    const vka_conv2d_shape good = GOOD; /* x (1,3,8,8), pad 1 */
    size_t nx = 3 * 64, nw = 4 * 27, ny = 4 * 64;
    uint64_t scratch_bytes = vka_conv2d_scratch_bytes(ctx, &good);
    vka_tensor x = test_tensor(ctx, arena, NULL, nx), w = test_tensor(ctx, arena, NULL, nw),
               dy = test_tensor(ctx, arena, NULL, ny), none = {0};
    test_guarded scratch = test_alloc_guarded(ctx, arena, scratch_bytes);
    vka_packed_layout own;
    int packed = vka_conv2d_x_packed_layout(ctx, &good, scratch.t, &own);
    /* A copy with a border of 2 (as a 5x5 conv's would be): 12x12 texels per image, 1 vec4. */
    const uint64_t copy_bytes = 12 * 12 * 16;
    vka_tensor copy = test_tensor(ctx, arena, NULL, copy_bytes / 4);
    const vka_packed_layout fits = {copy, 8, 8, 12, 12, 1, 2};
    if (packed) assert_true(vka_conv2d_x_shared_fits(ctx, &good, scratch.t, &fits));
    typedef struct {
        const char *what;
        which_op op;
        vka_packed_layout l;
        int x_packed, tiled;
        int y_on_copy;  /* the output (y, or dw) is the copy itself */
        const char *text; /* must appear in the message */
    } case_t;
    vka_packed_layout border0 = fits, wide = fits, thin = fits, short_t = fits, on_scratch = fits;
    border0.border = 0, border0.hp = 8, border0.wp = 8;
    wide.c4 = 2;
    thin.h = 7;
    short_t.t = vka_tensor_slice(copy, 0, copy_bytes - 16);
    on_scratch.t = vka_tensor_slice(scratch.t, 0, copy_bytes);
    const case_t cases_[] = {
        {"x_packed too", OP_FORWARD, fits, 1, 0, 0, "x_shared and x_packed both set"},
        {"a border thinner than the pad", OP_FORWARD, border0, 0, 0, 0, "does not hold this x"},
        {"more channels", OP_BACKWARD_WEIGHT, wide, 0, 0, 0, "does not hold this x"},
        {"another height", OP_FORWARD, thin, 0, 0, 0, "does not hold this x"},
        {"a tensor one texel short", OP_BACKWARD_WEIGHT, short_t, 0, 0, 0, "does not hold this x"},
        {"the tiled variant", OP_FORWARD, fits, 0, 1, 0, "packed kernels do not run here"},
        {"written as y", OP_FORWARD, fits, 0, 0, 1, "x_shared overlaps y"},
        {"written as dw", OP_BACKWARD_WEIGHT, fits, 0, 0, 1, "x_shared overlaps dw"},
        {"in the scratch", OP_BACKWARD_WEIGHT, on_scratch, 0, 0, 0, "x_shared overlaps the scratch"},
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof *cases_; i++) {
        const case_t *c = &cases_[i];
        vka_conv2d_shape sh = good;
        sh.x_shared = c->l;
        sh.x_packed = c->x_packed;
        if (c->tiled) sh.variant = VKA_CONV2D_TILED;
        /* Where the packed kernels do not run, a copy that fits is refused as unused. */
        const char *want = !packed && strstr(c->text, "overlaps") ? "packed kernels do not run here" : c->text;
        size_t out_n = c->op == OP_FORWARD ? ny : nw;
        test_guarded out = test_alloc_guarded(ctx, arena, out_n * 4);
        TEST_OK(vka_fill(ctx, out.t, NAN_WORD));
        vka_tensor o = c->y_on_copy ? vka_tensor_slice(copy, 0, out_n * 4) : out.t;
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        vka_result rc = c->op == OP_FORWARD ? vka_conv2d_forward(cmd, &sh, o, x, w, none, scratch.t)
                                            : vka_conv2d_backward_weight(cmd, &sh, o, none, dy, x, scratch.t);
        if (rc != VKA_ERROR_INVALID_ARGUMENT)
            fail_msg("x_shared, %s: %s instead of VKA_ERROR_INVALID_ARGUMENT", c->what, vka_result_string(rc));
        const char *msg = vka_context_last_error(ctx);
        if (!strstr(msg, want) || !strstr(msg, GOOD_TEXT))
            fail_msg("x_shared, %s: the message does not say '%s' and name the shape: %s", c->what, want, msg);
        assert_int_equal(vka_cmd_submit(cmd), VKA_ERROR_INVALID_ARGUMENT);
        float *got = test_read(ctx, out.t, out_n);
        for (size_t j = 0; j < out_n; j++) assert_true(isnan(got[j]));
        free(got);
        test_check_guard(ctx, out);
        vka_cmd_destroy(cmd);
    }
    test_check_guard(ctx, scratch);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* An argument runs only the tests matching it (cmocka's wildcards): tests/CMakeLists.txt runs
 * the tiled families again with VKANCHOR_TILED_PREFETCH=0. */
int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        FAMILY_TEST_LIST(tiled),
        FAMILY_TEST_LIST(tiled_4x8),
        FAMILY_TEST_LIST(tiled_8x4),
        FAMILY_TEST_LIST(tiled_8x8),
        FAMILY_TEST_LIST(texel),
        FAMILY_TEST_LIST(texel_gemm),
        cmocka_unit_test(conv2d_weight_scratch_holds_every_slice),
        cmocka_unit_test(conv2d_tiled_plan_fills_a_gpu_and_keeps_cpu_devices_at_4x4),
        cmocka_unit_test(conv2d_picks_the_texel_variant_on_cpu_devices_unless_told_otherwise),
        cmocka_unit_test(conv2d_coop_forward_matches_reference_where_offered),
        cmocka_unit_test(conv2d_packed_self_test_gates_the_packed_kernels),
        cmocka_unit_test(conv2d_input_gradient_skips_empty_phases_and_accumulates_per_phase),
        cmocka_unit_test(conv2d_rejects_bad_calls_without_dispatching),
        cmocka_unit_test(conv2d_rejects_a_shared_x_that_cannot_serve),
        cmocka_unit_test(conv2d_forward_statistics_skip_a_split_dispatchs_padding_workgroups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
