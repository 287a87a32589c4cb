/* BatchNorm2d (training forward, eval forward, backward, fused ReLU) against
 * tests/ref/ref_batchnorm.c.
 *
 * Tolerances (ref in double; e = sum (gpu-ref)^2 / sum ref^2):
 *   y (train and eval), dx            e <= 1e-10
 *   save_mean                         |gpu-ref| <= 1e-6 (|mean| + std) per channel
 *   save_invstd, running_var          |gpu-ref| <= 1e-5 |ref| per channel
 *   running_mean                      |gpu-ref| <= 1e-6 (|ref| + std) per channel
 *   dbeta = sum dz, dgamma = sum dz xhat  (fp32 trees over N*HW terms)
 *                                     |gpu-ref| <= 1e-6 sum |term| per channel
 * running_* with update_running = 0: bit-identical to what was uploaded.
 * Fused ReLU backward: the reference masks dy with the GPU forward's own output
 * (y > 0 <=> z > 0 in fp32), since an fp32 z within rounding of 0 may fall on the
 * other side of 0 than the double z; the mask must agree with the double z
 * wherever |z| > 1e-5.
 * Measured on lavapipe: y, dx e <= 2e-12 (mean 100x the spread included); the
 * per-channel bounds are met with a margin of 10x or more.
 * The texel-buffer and storage-buffer variants (VKANCHOR_TEXEL=0) and both
 * reduction tunings (VKANCHOR_BN_REDUCE=gpu|cpu) are checked on every device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/batchnorm.h"
#include "nn/ops_internal.h"
#include "nn/pointwise.h"
#include "ref_ops.h"
#include "test_util.h"

typedef struct shape {
    int n, c, h, w;
} shape;

/* Awkward shapes: channels 1, 3, 5; odd H and W with N*C*HW % 4 != 0 (scalar kernels);
 * HW % 4 == 0 (vec4 kernels); HW % 4 != 0 with N*C*HW % 4 == 0 (SPAN kernels: vec4 texels
 * straddling planes, every offset of a plane mod 4: 16x3x9x9, 8x4x7x7, 4x5x3x5); batch 1;
 * several reduction workgroups per channel with lavapipe's 1024 units per slice (8x5x28x28:
 * 2 slices of 784 vec4s; 3x1x33x33: 4 slices, the last one short; 160x2x7x7: 3 slices of
 * 13-texel chunks, the last one short); C % 4 == 0 with
 * HW % 4 == 0 (packed outputs a texel per store: rows of 6 and of 2, which a vec4 of
 * positions crosses once or twice). */
/* The texel-input variants of the four big passes ([pass][vec4]), and the SPAN variants (texel
 * inputs too: the four passes, then the packed apply and input gradient), as batchnorm.c names them. */
static const char *const texel_kernels[8] = {
    "batchnorm_fwd_stats_texel",  "batchnorm_fwd_stats_vec4_texel",  "batchnorm_fwd_texel",
    "batchnorm_fwd_vec4_texel",   "batchnorm_bwd_reduce_texel",      "batchnorm_bwd_reduce_vec4_texel",
    "batchnorm_bwd_data_texel",   "batchnorm_bwd_data_vec4_texel"};
static const char *const span_kernels[6] = {"batchnorm_fwd_stats_span",  "batchnorm_fwd_span",
                                            "batchnorm_bwd_reduce_span", "batchnorm_bwd_data_span",
                                            "batchnorm_fwd_packed_span", "batchnorm_bwd_data_packed_span"};

static const shape shapes[] = {
    {8, 5, 28, 28}, {1, 3, 5, 7}, {3, 1, 33, 33}, {2, 5, 4, 4}, {16, 3, 9, 9},
    {8, 4, 7, 7},   {4, 5, 3, 5}, {160, 2, 7, 7}, {4, 8, 6, 6}, {3, 4, 2, 2},
};
#define NSHAPES (sizeof shapes / sizeof *shapes)

typedef struct bn_host {
    shape s;
    size_t nx, nc;
    float *x, *gamma, *beta, *rm, *rv, *dy;
} bn_host;

/* Channels with different means and spreads (offset + per-channel shift). */
static bn_host make_host(shape s, uint64_t seed, float offset)
{
    bn_host h = {.s = s, .nx = (size_t)s.n * s.c * s.h * s.w, .nc = (size_t)s.c};
    test_rng rng = {seed};
    h.x = malloc(h.nx * 4), h.dy = malloc(h.nx * 4);
    h.gamma = malloc(h.nc * 4), h.beta = malloc(h.nc * 4), h.rm = malloc(h.nc * 4), h.rv = malloc(h.nc * 4);
    size_t hw = (size_t)s.h * s.w;
    for (size_t i = 0; i < h.nx; i++) {
        size_t c = i / hw % h.nc;
        h.x[i] = offset + 0.5f * c - 1.0f + (1.0f + 0.3f * c) * test_uniform(&rng, -1, 1);
    }
    test_fill_uniform(&rng, h.dy, h.nx, -1, 1);
    test_fill_uniform(&rng, h.gamma, h.nc, 0.5f, 1.5f);
    test_fill_uniform(&rng, h.beta, h.nc, -0.5f, 0.5f);
    test_fill_uniform(&rng, h.rm, h.nc, -0.1f, 0.1f);
    test_fill_uniform(&rng, h.rv, h.nc, 0.5f, 1.5f);
    return h;
}

static void free_host(bn_host *h) { free(h->x), free(h->dy), free(h->gamma), free(h->beta), free(h->rm), free(h->rv); }

/* What one forward_train + backward left on the device, read back. */
typedef struct bn_result {
    float *y, *mean, *invstd, *rm, *rv, *dx, *dgamma, *dbeta;
} bn_result;

static void free_result(bn_result *r)
{
    free(r->y), free(r->mean), free(r->invstd), free(r->rm), free(r->rv), free(r->dx), free(r->dgamma), free(r->dbeta);
}

static vka_batchnorm_desc desc_of(shape s, int relu)
{
    return (vka_batchnorm_desc){.n = s.n, .c = s.c, .hw = s.h * s.w, .relu = relu};
}

/* Uploads, records forward_train then backward in one command buffer, runs it,
 * reads every output back and checks the canary after each. */
static bn_result run_train_with(vka_context *ctx, vka_arena *arena, const bn_host *h, int relu, int update,
                                int want_dx, vka_tensor stats, uint32_t stats_groups)
{
    vka_batchnorm_desc d = desc_of(h->s, relu);
    size_t xb = h->nx * 4, cb = h->nc * 4;
    vka_tensor x = test_tensor(ctx, arena, h->x, h->nx), dy = test_tensor(ctx, arena, h->dy, h->nx);
    vka_tensor gamma = test_tensor(ctx, arena, h->gamma, h->nc), beta = test_tensor(ctx, arena, h->beta, h->nc);
    test_guarded y = test_alloc_guarded(ctx, arena, xb), dx = test_alloc_guarded(ctx, arena, xb);
    test_guarded mean = test_alloc_guarded(ctx, arena, cb), invstd = test_alloc_guarded(ctx, arena, cb);
    test_guarded rm = test_alloc_guarded(ctx, arena, cb), rv = test_alloc_guarded(ctx, arena, cb);
    test_guarded dg = test_alloc_guarded(ctx, arena, cb), db = test_alloc_guarded(ctx, arena, cb);
    test_guarded scratch = test_alloc_guarded(ctx, arena, vka_batchnorm_scratch_bytes(ctx, &d));
    TEST_OK(vka_upload(ctx, rm.t, 0, h->rm, cb));
    TEST_OK(vka_upload(ctx, rv.t, 0, h->rv, cb));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    TEST_OK(vka_batchnorm_forward(cmd, &d, update ? VKA_BN_TRAIN : VKA_BN_TRAIN_KEEP_RUNNING,
                                  &(vka_batchnorm_io){.x = x, .y = y.t, .gamma = gamma, .beta = beta,
                                                      .running_mean = rm.t, .running_var = rv.t,
                                                      .save_mean = mean.t, .save_invstd = invstd.t,
                                                      .scratch = scratch.t, .stats = stats,
                                                      .stats_groups = stats_groups}));
    TEST_OK(vka_batchnorm_backward(cmd, &d, want_dx ? dx.t : (vka_tensor){0}, dg.t, db.t, dy, x, mean.t,
                                   invstd.t, gamma, beta, scratch.t));
    test_run(cmd);
    vka_cmd_destroy(cmd);
    bn_result r = {
        .y = test_read(ctx, y.t, h->nx), .mean = test_read(ctx, mean.t, h->nc),
        .invstd = test_read(ctx, invstd.t, h->nc), .rm = test_read(ctx, rm.t, h->nc),
        .rv = test_read(ctx, rv.t, h->nc), .dx = want_dx ? test_read(ctx, dx.t, h->nx) : NULL,
        .dgamma = test_read(ctx, dg.t, h->nc), .dbeta = test_read(ctx, db.t, h->nc),
    };
    test_guarded all[] = {y, dx, mean, invstd, rm, rv, dg, db, scratch};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) test_check_guard(ctx, all[i]);
    return r;
}

static bn_result run_train(vka_context *ctx, vka_arena *arena, const bn_host *h, int relu, int update,
                           int want_dx)
{
    return run_train_with(ctx, arena, h, relu, update, want_dx, (vka_tensor){0}, 0);
}

/* The double reference of the same forward (+ fused ReLU) and backward. With a
 * fused ReLU the backward's dy is masked by `mask_from` > 0 (the GPU's y). */
typedef struct bn_ref {
    double *y, *z, *mean, *invstd, *rm, *rv, *dx, *dgamma, *dbeta, *abs_dz, *abs_dzx;
} bn_ref;

static bn_ref reference(const bn_host *h, int relu, int update, const float *mask_from)
{
    int N = h->s.n, C = h->s.c, HW = h->s.h * h->s.w;
    bn_ref r = {0};
    double *x = test_to_double(h->x, h->nx), *dy = test_to_double(h->dy, h->nx);
    double *gamma = test_to_double(h->gamma, h->nc), *beta = test_to_double(h->beta, h->nc);
    r.rm = test_to_double(h->rm, h->nc), r.rv = test_to_double(h->rv, h->nc);
    r.z = malloc(h->nx * sizeof(double)), r.y = malloc(h->nx * sizeof(double));
    r.mean = malloc(h->nc * sizeof(double)), r.invstd = malloc(h->nc * sizeof(double));
    r.dx = malloc(h->nx * sizeof(double));
    r.dgamma = malloc(h->nc * sizeof(double)), r.dbeta = malloc(h->nc * sizeof(double));
    r.abs_dz = calloc(h->nc, sizeof(double)), r.abs_dzx = calloc(h->nc, sizeof(double));
    ref_batchnorm_forward_train(r.z, r.mean, r.invstd, r.rm, r.rv, x, gamma, beta, N, C, HW, 1e-5, 0.1, update);
    double *dz = dy;
    if (relu) {
        ref_relu_forward(r.y, r.z, (int)h->nx);
        double *m = test_to_double(mask_from, h->nx);
        dz = malloc(h->nx * sizeof(double));
        ref_relu_backward(dz, dy, m, (int)h->nx); /* m > 0 <=> the GPU's z > 0 */
        free(m);
    } else {
        memcpy(r.y, r.z, h->nx * sizeof(double));
    }
    ref_batchnorm_backward(r.dx, r.dgamma, r.dbeta, dz, x, r.mean, r.invstd, gamma, N, C, HW);
    for (size_t i = 0; i < h->nx; i++) {
        size_t c = i / HW % C;
        r.abs_dz[c] += fabs(dz[i]);
        r.abs_dzx[c] += fabs(dz[i] * (x[i] - r.mean[c]) * r.invstd[c]);
    }
    if (dz != dy) free(dz);
    free(x), free(dy), free(gamma), free(beta);
    return r;
}

static void free_ref(bn_ref *r)
{
    free(r->y), free(r->z), free(r->mean), free(r->invstd), free(r->rm), free(r->rv), free(r->dx);
    free(r->dgamma), free(r->dbeta), free(r->abs_dz), free(r->abs_dzx);
}

/* |gpu - ref| <= tol * scale[i] for every i. */
static void expect_within(const char *what, shape s, const float *gpu, const double *ref, const double *scale,
                          size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(gpu[i] - ref[i]) <= tol * scale[i]))
            fail_msg("%s (N=%d C=%d H=%d W=%d) [%zu]: gpu %.9g ref %.9g, |diff| %.3g > %.3g", what, s.n, s.c, s.h,
                     s.w, i, gpu[i], ref[i], fabs(gpu[i] - ref[i]), tol * scale[i]);
}

static void check_against_reference(const bn_host *h, const bn_result *g, int relu, int update, int want_dx)
{
    shape s = h->s;
    bn_ref r = reference(h, relu, update, g->y);
    char what[128];
    size_t nc = h->nc;
    double *scale = calloc(nc, sizeof(double));
#define EXPECT_CLOSE(name_, gpu_, ref_, count_, tol_)                                                         \
    do {                                                                                             \
        snprintf(what, sizeof what, "%s N=%d C=%d H=%d W=%d relu=%d", name_, s.n, s.c, s.h, s.w, relu); \
        test_expect_close(what, gpu_, ref_, count_, tol_);                                                 \
    } while (0)
    EXPECT_CLOSE("y", g->y, r.y, h->nx, 1e-10);
    for (size_t c = 0; c < nc; c++) scale[c] = fabs(r.mean[c]) + 1.0 / r.invstd[c];
    expect_within("save_mean", s, g->mean, r.mean, scale, nc, 1e-6);
    for (size_t c = 0; c < nc; c++) scale[c] = fabs(r.mean[c]) + fabs(r.rm[c]) + 1.0 / r.invstd[c];
    expect_within("running_mean", s, g->rm, r.rm, scale, nc, 1e-6);
    for (size_t c = 0; c < nc; c++) scale[c] = r.invstd[c];
    expect_within("save_invstd", s, g->invstd, r.invstd, scale, nc, 1e-5);
    for (size_t c = 0; c < nc; c++) scale[c] = fabs(r.rv[c]);
    expect_within("running_var", s, g->rv, r.rv, scale, nc, 1e-5);
    expect_within("dbeta", s, g->dbeta, r.dbeta, r.abs_dz, nc, 1e-6);
    expect_within("dgamma", s, g->dgamma, r.dgamma, r.abs_dzx, nc, 1e-6);
    if (want_dx) EXPECT_CLOSE("dx", g->dx, r.dx, h->nx, 1e-10);
    if (relu) /* the fp32 mask may differ from the double one only right at 0 */
        for (size_t i = 0; i < h->nx; i++)
            if ((g->y[i] > 0) != (r.z[i] > 0) && fabs(r.z[i]) > 1e-5)
                fail_msg("fused ReLU mask at %zu: gpu y %.9g but ref z %.9g", i, g->y[i], r.z[i]);
#undef EXPECT_CLOSE
    free(scale);
    free_ref(&r);
}

static void batchnorm_training_forward_and_backward_match_reference_at_awkward_shapes(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSHAPES; i++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn"}, &arena));
        bn_host h = make_host(shapes[i], 100 + i, 0.0f);
        bn_result g = run_train(ctx, arena, &h, 0, 1, 1);
        check_against_reference(&h, &g, 0, 1, 1);
        free_result(&g);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    /* Where the device has the texel formats (lavapipe does), the texel variants ran, SPAN included. */
    const vka_features *f = &vka_context_device(ctx)->features;
    if (f->texel_buffer_r32f && f->texel_buffer_rgba32f && !getenv("VKANCHOR_TEXEL")) {
        for (int s = 0; s < 8; s++)
            if (!vka_kernel_built(ctx, texel_kernels[s], -1, 0)) fail_msg("%s did not run", texel_kernels[s]);
        for (int s = 0; s < 4; s++)
            if (!vka_kernel_built(ctx, span_kernels[s], -1, 0)) fail_msg("%s did not run", span_kernels[s]);
    }
    test_context_finish(ctx);
}

/* Each channel's N*HW values of h->x (sample-major) cut into runs of 1, 2, .., 13, 1, ..
 * values, each summarised in double as (count, mean, M2 about that mean, 0): (C, *groups). */
static float *host_partials(const bn_host *h, size_t *groups)
{
    size_t hw = (size_t)h->s.h * h->s.w, per = (size_t)h->s.n * hw, g = 0;
    for (size_t at = 0, len = 1; at < per; at += len, len = len % 13 + 1) g++;
    float *part = malloc(h->nc * g * 16);
    for (size_t c = 0; c < h->nc; c++) {
        size_t k = 0;
        for (size_t at = 0, len = 1; at < per; at += len, len = len % 13 + 1, k++) {
            size_t end = at + len < per ? at + len : per;
            double sum = 0, m2 = 0;
            for (size_t e = at; e < end; e++) sum += h->x[(e / hw * h->nc + c) * hw + e % hw];
            double mean = sum / (double)(end - at);
            for (size_t e = at; e < end; e++) {
                double d = h->x[(e / hw * h->nc + c) * hw + e % hw] - mean;
                m2 += d * d;
            }
            float *pg = part + (c * g + k) * 4;
            pg[0] = (float)(end - at), pg[1] = (float)mean, pg[2] = (float)m2, pg[3] = 0;
        }
    }
    *groups = g;
    return part;
}

/* The training forward with its statistics given as its producer's partials (a conv's epilogue
 * writes them: vka_conv2d_forward_stats) meets the same reference. The partials here cut each
 * channel's N*HW values (sample-major) into runs of 1..13 values, each (count, mean, M2 about
 * that mean, 0) computed in double; with every partial mean moved by +1 the BN's save_mean
 * moves by 1, so it normalizes with the partials given and not with its own pass. */
static void batchnorm_training_takes_its_statistics_from_partials(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSHAPES; i++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn-stats"}, &arena));
        bn_host h = make_host(shapes[i], 300 + i, 0.0f);
        size_t groups;
        float *part = host_partials(&h, &groups);
        vka_tensor stats = test_tensor(ctx, arena, part, h.nc * groups * 4);
        bn_result g = run_train_with(ctx, arena, &h, (int)i % 2, 1, 1, stats, (uint32_t)groups);
        check_against_reference(&h, &g, (int)i % 2, 1, 1);
        for (size_t k = 0; k < h.nc * groups; k++) part[k * 4 + 1] += 1.0f;
        vka_tensor moved = test_tensor(ctx, arena, part, h.nc * groups * 4);
        bn_result m = run_train_with(ctx, arena, &h, 0, 1, 1, moved, (uint32_t)groups);
        for (size_t c = 0; c < h.nc; c++)
            if (!(fabs(m.mean[c] - (g.mean[c] + 1.0)) <= 1e-5 * (1 + fabs(g.mean[c]))))
                fail_msg("bn with partials moved by +1 (N=%d C=%d H=%d W=%d) channel %zu: save_mean %.9g, not %.9g + 1",
                         h.s.n, h.s.c, h.s.h, h.s.w, c, m.mean[c], g.mean[c]);
        free_result(&g), free_result(&m);
        free(part);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    test_context_finish(ctx);
}

static void batchnorm_with_fused_relu_matches_relu_after_batchnorm(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSHAPES; i++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_relu"}, &arena));
        bn_host h = make_host(shapes[i], 200 + i, 0.0f);
        bn_result g = run_train(ctx, arena, &h, 1, 1, 1);
        check_against_reference(&h, &g, 1, 1, 1);
        size_t zeros = 0;
        for (size_t j = 0; j < h.nx; j++) zeros += g.y[j] == 0;
        assert_true(zeros > 0 && zeros < h.nx); /* the mask really masks */
        free_result(&g);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    test_context_finish(ctx);
}

/* VKANCHOR_TEXEL=0 turns the texel-buffer inputs off: the storage-buffer variants
 * (what devices with a small maxTexelBufferElements run) must agree just as well. */
static void batchnorm_storage_buffer_variants_match_reference(void **state)
{
    (void)state;
    setenv("VKANCHOR_TEXEL", "0", 1);
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSHAPES; i++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_storage"}, &arena));
        bn_host h = make_host(shapes[i], 800 + i, 0.0f);
        bn_result g = run_train(ctx, arena, &h, i % 2, 1, 1);
        check_against_reference(&h, &g, i % 2, 1, 1);
        free_result(&g);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    for (int s = 0; s < 8; s++)
        if (vka_kernel_built(ctx, texel_kernels[s], -1, 0)) fail_msg("%s ran with VKANCHOR_TEXEL=0", texel_kernels[s]);
    for (int s = 0; s < 6; s++) /* texel inputs */
        if (vka_kernel_built(ctx, span_kernels[s], -1, 0)) fail_msg("%s ran with VKANCHOR_TEXEL=0", span_kernels[s]);
    unsetenv("VKANCHOR_TEXEL");
    test_context_finish(ctx);
}

/* Compares a packed tensor with the NCHW one bit for bit, and requires every float in
 * between (border, padding channels) to still hold the sentinel. */
static void expect_packed_bits(const char *what, shape s, const float *nchw, const float *packed,
                               const vka_packed_layout *l, uint32_t sentinel)
{
    size_t packed_n = test_packed_floats(l, (uint32_t)s.n);
    uint8_t *is_element = calloc(packed_n, 1);
    for (int n = 0; n < s.n; n++)
        for (int c = 0; c < s.c; c++)
            for (int i = 0; i < s.h; i++)
                for (int j = 0; j < s.w; j++) {
                    size_t at = test_packed_index(l, (uint32_t)n, (uint32_t)c, (uint32_t)i, (uint32_t)j);
                    size_t from = (((size_t)n * s.c + c) * s.h + i) * s.w + j;
                    if (memcmp(&packed[at], &nchw[from], 4) != 0)
                        fail_msg("packed %s N=%d C=%d H=%d W=%d border %u: (%d,%d,%d,%d) is %.9g, NCHW %.9g", what,
                                 s.n, s.c, s.h, s.w, l->border, n, c, i, j, packed[at], nchw[from]);
                    is_element[at] = 1;
                }
    for (size_t k = 0; k < packed_n; k++)
        if (!is_element[k] && memcmp(&packed[k], &sentinel, 4) != 0)
            fail_msg("packed %s N=%d C=%d H=%d W=%d border %u: float %zu around the elements was written", what,
                     s.n, s.c, s.h, s.w, l->border, k);
    free(is_element);
}

/* vka_batchnorm_forward with a packed y (training and eval) and
 * vka_batchnorm_backward_packed_dx write y and dx in lavapipe's packed layout (packed_layout.h): recorded beside the NCHW forward and backward in
 * one command buffer, each element must be the NCHW bits (the same arithmetic), and every
 * float in between (border, padding channels) keep what was there. Vec4 and scalar
 * shapes, texel and storage inputs, borders 0..2, rows with spare columns after them, with and
 * without the ReLU. */
static void check_packed_outputs(vka_context *ctx, const bn_host *h, int relu, uint32_t border, uint32_t spare)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_packed"}, &arena));
    shape s = h->s;
    vka_batchnorm_desc d = desc_of(s, relu);
    vka_tensor x = test_tensor(ctx, arena, h->x, h->nx), dy = test_tensor(ctx, arena, h->dy, h->nx);
    vka_tensor gamma = test_tensor(ctx, arena, h->gamma, h->nc), beta = test_tensor(ctx, arena, h->beta, h->nc);
    vka_tensor y = test_tensor(ctx, arena, NULL, h->nx), dx = test_tensor(ctx, arena, NULL, h->nx);
    vka_tensor mean = test_tensor(ctx, arena, NULL, h->nc), invstd = test_tensor(ctx, arena, NULL, h->nc);
    vka_tensor dg = test_tensor(ctx, arena, NULL, h->nc), db = test_tensor(ctx, arena, NULL, h->nc);
    vka_tensor scratch = test_tensor(ctx, arena, NULL, vka_batchnorm_scratch_bytes(ctx, &d) / 4);
    uint32_t c4 = (uint32_t)(s.c + 3) / 4, hp = border * 2 + s.h, wp = border * 2 + s.w + spare;
    size_t packed_n = (size_t)s.n * hp * wp * c4 * 4;
    test_guarded yp = test_alloc_guarded(ctx, arena, packed_n * 4), dxp = test_alloc_guarded(ctx, arena, packed_n * 4);
    test_guarded yep = test_alloc_guarded(ctx, arena, packed_n * 4);
    vka_tensor ye = test_tensor(ctx, arena, NULL, h->nx);
    vka_tensor rm = test_tensor(ctx, arena, h->rm, h->nc), rv = test_tensor(ctx, arena, h->rv, h->nc);
    const uint32_t SENTINEL = 0x4640e400u; /* 12345.0f */
    TEST_OK(vka_fill(ctx, yp.t, SENTINEL));
    TEST_OK(vka_fill(ctx, dxp.t, SENTINEL));
    TEST_OK(vka_fill(ctx, yep.t, SENTINEL));
    vka_packed_layout ly = {.t = yp.t, .h = (uint32_t)s.h, .w = (uint32_t)s.w, .hp = hp, .wp = wp, .c4 = c4,
                            .border = border};
    vka_packed_layout ldx = ly, lye = ly;
    ldx.t = dxp.t, lye.t = yep.t;
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_batchnorm_io io = {.x = x, .y = y, .gamma = gamma, .beta = beta, .running_mean = rm, .running_var = rv,
                           .save_mean = mean, .save_invstd = invstd, .scratch = scratch};
    TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN_KEEP_RUNNING, &io));
    vka_batchnorm_io packed_io = io;
    packed_io.y = (vka_tensor){0}, packed_io.yp = &ly;
    TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN_KEEP_RUNNING, &packed_io));
    TEST_OK(vka_batchnorm_backward(cmd, &d, dx, dg, db, dy, x, mean, invstd, gamma, beta, scratch));
    TEST_OK(vka_batchnorm_backward_packed_dx(cmd, &d, &ldx, dg, db, dy, x, mean, invstd, gamma, beta, scratch));
    io.y = ye;
    TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_EVAL, &io));
    packed_io.yp = &lye;
    TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_EVAL, &packed_io));
    /* Both at once where C and HW are multiples of 4, or by SPAN (a BN read by a conv and by a shortcut). */
    int dual = vka_batchnorm_add_packed_y_fits(ctx, &d);
    test_guarded ydp = test_alloc_guarded(ctx, arena, packed_n * 4);
    vka_tensor yd = test_tensor(ctx, arena, NULL, h->nx);
    TEST_OK(vka_fill(ctx, ydp.t, SENTINEL));
    vka_packed_layout lyd = ly;
    lyd.t = ydp.t;
    if (dual) {
        vka_batchnorm_io dual_io = io;
        dual_io.y = yd, dual_io.yp = &lyd;
        TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN_KEEP_RUNNING, &dual_io));
    }
    test_run(cmd);
    vka_cmd_destroy(cmd);
    if (dual) {
        float *want = test_read(ctx, y, h->nx), *got_nchw = test_read(ctx, yd, h->nx), *got = test_read(ctx, ydp.t, packed_n);
        if (memcmp(want, got_nchw, h->nx * 4) != 0) fail_msg("bn y both NCHW and packed (N=%d C=%d H=%d W=%d): NCHW bits differ", s.n, s.c, s.h, s.w);
        expect_packed_bits("y (both)", s, want, got, &lyd, SENTINEL);
        test_check_guard(ctx, ydp);
        free(want), free(got_nchw), free(got);
    }
    float *want_y = test_read(ctx, y, h->nx), *got_y = test_read(ctx, yp.t, packed_n);
    float *want_dx = test_read(ctx, dx, h->nx), *got_dx = test_read(ctx, dxp.t, packed_n);
    float *want_ye = test_read(ctx, ye, h->nx), *got_ye = test_read(ctx, yep.t, packed_n);
    expect_packed_bits("y", s, want_y, got_y, &ly, SENTINEL);
    expect_packed_bits("dx", s, want_dx, got_dx, &ldx, SENTINEL);
    expect_packed_bits("eval y", s, want_ye, got_ye, &lye, SENTINEL);
    test_check_guard(ctx, yp);
    test_check_guard(ctx, dxp);
    test_check_guard(ctx, yep);
    free(want_y), free(got_y), free(want_dx), free(got_dx), free(want_ye), free(got_ye);
    vka_arena_destroy(arena);
}

static void batchnorm_writes_packed_y_and_dx_with_the_nchw_bits(void **state)
{
    (void)state;
    for (int storage = 0; storage < 2; storage++) {
        if (storage) setenv("VKANCHOR_TEXEL", "0", 1);
        vka_context *ctx = test_context();
        for (size_t i = 0; i < NSHAPES; i++) {
            bn_host h = make_host(shapes[i], 900 + i, 0.0f);
            check_packed_outputs(ctx, &h, (int)i % 2, (uint32_t)i % 3, (uint32_t)(i % 2));
            check_packed_outputs(ctx, &h, 1 - (int)i % 2, 1, 2);
            free_host(&h);
        }
        const vka_features *f = &vka_context_device(ctx)->features;
        if (!storage && f->texel_buffer_rgba32f && !getenv("VKANCHOR_TEXEL"))
            for (int s = 4; s < 6; s++)
                if (!vka_kernel_built(ctx, span_kernels[s], -1, 0)) fail_msg("%s did not run", span_kernels[s]);
        int texel = !storage && f->texel_buffer_rgba32f && !getenv("VKANCHOR_TEXEL");
        static const char *const packed4[2][2] = {{"batchnorm_fwd_packed4", "batchnorm_fwd_packed4_texel"},
                                                  {"batchnorm_bwd_data_packed4", "batchnorm_bwd_data_packed4_texel"}};
        for (int bwd = 0; bwd < 2; bwd++) /* a texel per store: C % 4 == 0, HW % 4 == 0 */
            if (!vka_kernel_built(ctx, packed4[bwd][texel], -1, 0)) fail_msg("%s did not run", packed4[bwd][texel]);
        const char *dual = texel ? "batchnorm_fwd_dual_packed4_texel" : "batchnorm_fwd_dual_packed4";
        if (!vka_kernel_built(ctx, dual, -1, 0)) fail_msg("%s (y both NCHW and packed) did not run", dual);
        /* ... and where HW % 4 != 0 by SPAN, with texel inputs (7x7, 9x9, 3x5 above). */
        if (texel && !vka_kernel_built(ctx, "batchnorm_fwd_dual_span", -1, 0))
            fail_msg("batchnorm_fwd_dual_span (y both NCHW and packed, SPAN) did not run");
        test_context_finish(ctx);
        unsetenv("VKANCHOR_TEXEL");
    }
}

/* vka_batchnorm_forward with a residual (a residual block's tail in one pass) gives the
 * bits of BN, vka_add_forward and (with relu) vka_relu_forward one after another, at every
 * shape (scalar, vec4, SPAN), with texel and storage inputs, training and eval; the residual
 * variants ran, and the output's guard is intact. Where vka_batchnorm_add_packed_y_fits (C and HW
 * multiples of 4, or SPAN with texel inputs), the same call with a yp too (training or eval): its NCHW y and its packed y (border 1, the floats
 * around the elements untouched) with the same bits. */
static void check_add_matches_separate_ops(vka_context *ctx, const bn_host *h, int relu, int eval)
{
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_add"}, &arena));
    vka_batchnorm_desc d = desc_of(h->s, relu), plain = desc_of(h->s, 0);
    test_rng rng = {77 + h->nx};
    float *res_host = malloc(h->nx * 4);
    test_fill_uniform(&rng, res_host, h->nx, -2, 2);
    vka_tensor x = test_tensor(ctx, arena, h->x, h->nx), res = test_tensor(ctx, arena, res_host, h->nx);
    vka_tensor gamma = test_tensor(ctx, arena, h->gamma, h->nc), beta = test_tensor(ctx, arena, h->beta, h->nc);
    vka_tensor rm = test_tensor(ctx, arena, h->rm, h->nc), rv = test_tensor(ctx, arena, h->rv, h->nc);
    vka_tensor mean = test_tensor(ctx, arena, NULL, h->nc), invstd = test_tensor(ctx, arena, NULL, h->nc);
    vka_tensor z = test_tensor(ctx, arena, NULL, h->nx), sum = test_tensor(ctx, arena, NULL, h->nx);
    vka_tensor want = test_tensor(ctx, arena, NULL, h->nx);
    vka_tensor scratch = test_tensor(ctx, arena, NULL, vka_batchnorm_scratch_bytes(ctx, &d) / 4);
    test_guarded got = test_alloc_guarded(ctx, arena, h->nx * 4), got2 = test_alloc_guarded(ctx, arena, h->nx * 4);
    shape s = h->s;
    uint32_t c4 = (uint32_t)(s.c + 3) / 4, hp = (uint32_t)s.h + 2, wp = (uint32_t)s.w + 2;
    size_t packed_n = (size_t)s.n * hp * wp * c4 * 4;
    int dual = vka_batchnorm_add_packed_y_fits(ctx, &d);
    test_guarded yp = test_alloc_guarded(ctx, arena, packed_n * 4);
    const uint32_t SENTINEL = 0x4640e400u; /* 12345.0f */
    TEST_OK(vka_fill(ctx, yp.t, SENTINEL));
    vka_packed_layout ly = {.t = yp.t, .h = (uint32_t)s.h, .w = (uint32_t)s.w, .hp = hp, .wp = wp, .c4 = c4, .border = 1};
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    /* The tail against BN (no ReLU), add and ReLU one after another, and its packed twin. */
    vka_batchnorm_mode mode = eval ? VKA_BN_EVAL : VKA_BN_TRAIN_KEEP_RUNNING;
    vka_batchnorm_io io = {.x = x, .y = z, .gamma = gamma, .beta = beta, .running_mean = rm, .running_var = rv,
                           .save_mean = mean, .save_invstd = invstd, .scratch = scratch};
    TEST_OK(vka_batchnorm_forward(cmd, &plain, mode, &io));
    io.y = got.t, io.residual = res;
    TEST_OK(vka_batchnorm_forward(cmd, &d, mode, &io));
    if (dual) {
        io.y = got2.t, io.yp = &ly;
        TEST_OK(vka_batchnorm_forward(cmd, &d, mode, &io));
    }
    TEST_OK(vka_add_forward(cmd, h->nx, relu ? sum : want, z, res));
    if (relu) TEST_OK(vka_relu_forward(cmd, h->nx, want, sum));
    test_run(cmd);
    vka_cmd_destroy(cmd);
    float *a = test_read(ctx, got.t, h->nx), *b = test_read(ctx, want, h->nx);
    size_t zeros = 0;
    for (size_t i = 0; i < h->nx; i++) {
        zeros += a[i] == 0;
        if (memcmp(&a[i], &b[i], 4) != 0)
            fail_msg("bn + residual%s (%s) N=%d C=%d H=%d W=%d at %zu: fused %.9g, separate ops %.9g",
                     relu ? " + relu" : "", eval ? "eval" : "train", h->s.n, h->s.c, h->s.h, h->s.w, i, a[i], b[i]);
    }
    if (relu && (zeros == 0 || zeros == h->nx)) fail_msg("the ReLU masked %zu of %zu", zeros, h->nx);
    test_check_guard(ctx, got);
    if (dual) {
        float *a2 = test_read(ctx, got2.t, h->nx), *pk = test_read(ctx, yp.t, packed_n);
        if (memcmp(a2, b, h->nx * 4) != 0) fail_msg("add_packed_y: NCHW y differs from the separate ops");
        expect_packed_bits("y of add_packed_y", s, b, pk, &ly, SENTINEL);
        test_check_guard(ctx, got2), test_check_guard(ctx, yp);
        free(a2), free(pk);
    }
    free(a), free(b), free(res_host);
    vka_arena_destroy(arena);
}

static void batchnorm_with_residual_gives_the_bits_of_bn_add_relu(void **state)
{
    (void)state;
    for (int storage = 0; storage < 2; storage++) {
        if (storage) setenv("VKANCHOR_TEXEL", "0", 1);
        vka_context *ctx = test_context();
        for (size_t i = 0; i < NSHAPES; i++) {
            bn_host h = make_host(shapes[i], 1000 + i, 0.0f);
            check_add_matches_separate_ops(ctx, &h, 1, (int)i % 2);
            check_add_matches_separate_ops(ctx, &h, (int)i % 2, 1 - (int)i % 2);
            free_host(&h);
        }
        const vka_features *f = &vka_context_device(ctx)->features;
        if (!storage && f->texel_buffer_r32f && f->texel_buffer_rgba32f && !getenv("VKANCHOR_TEXEL")) {
            static const char *const texel_add[] = {"batchnorm_fwd_add_texel", "batchnorm_fwd_add_vec4_texel",
                                                    "batchnorm_fwd_add_span"};
            for (int k = 0; k < 3; k++)
                if (!vka_kernel_built(ctx, texel_add[k], -1, 0)) fail_msg("%s did not run", texel_add[k]);
        }
        static const char *const storage_add[] = {"batchnorm_fwd_add", "batchnorm_fwd_add_vec4"};
        if (storage)
            for (int k = 0; k < 2; k++)
                if (!vka_kernel_built(ctx, storage_add[k], -1, 0)) fail_msg("%s did not run", storage_add[k]);
        int texel = !storage && f->texel_buffer_rgba32f && !getenv("VKANCHOR_TEXEL");
        const char *tail = texel ? "batchnorm_fwd_add_packed4_texel" : "batchnorm_fwd_add_packed4";
        if (!vka_kernel_built(ctx, tail, -1, 0)) fail_msg("%s (the tail's NCHW + packed apply) did not run", tail);
        if (texel && !vka_kernel_built(ctx, "batchnorm_fwd_add_dual_span", -1, 0))
            fail_msg("batchnorm_fwd_add_dual_span (the tail's NCHW + packed apply, SPAN) did not run");
        test_context_finish(ctx);
        unsetenv("VKANCHOR_TEXEL");
    }
}

/* A packed destination (dx or y) that cannot hold the tensor is refused, naming the layout. */
static void batchnorm_refuses_a_packed_dx_or_y_of_the_wrong_shape(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_packed_bad"}, &arena));
    vka_batchnorm_desc d = {.n = 2, .c = 5, .hw = 16};
    vka_tensor t = test_tensor(ctx, arena, NULL, 2 * 6 * 6 * 2 * 4), c = test_tensor(ctx, arena, NULL, 5);
    vka_tensor dg = test_tensor(ctx, arena, NULL, 5), db = test_tensor(ctx, arena, NULL, 5);
    vka_tensor x = test_tensor(ctx, arena, NULL, 2 * 5 * 16);
    vka_tensor scratch = test_tensor(ctx, arena, NULL, vka_batchnorm_scratch_bytes(ctx, &d) / 4);
    const vka_packed_layout good = {.t = t, .h = 4, .w = 4, .hp = 6, .wp = 6, .c4 = 2, .border = 1};
    vka_packed_layout bad[5] = {good, good, good, good, good};
    bad[0].h = 3;                    /* 3x4 is not HW = 16 */
    bad[1].c4 = 1;                   /* 5 channels need 2 vec4 */
    bad[2].border = 3;               /* the last row would fall outside hp */
    bad[3].wp = 4;                   /* 4 columns after a border of 1 do not fit in 4 */
    bad[4].t = vka_tensor_slice(t, 0, t.size - 16);
    for (int i = 0; i < 5; i++) {
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        vka_result rc = vka_batchnorm_backward_packed_dx(cmd, &d, &bad[i], dg, db, x, x, c, c, c, c, scratch);
        assert_int_equal(rc, VKA_ERROR_INVALID_ARGUMENT);
        if (!strstr(vka_context_last_error(ctx), "batchnorm_backward_packed_dx: packed dx"))
            fail_msg("bad packed dx %d: %s", i, vka_context_last_error(ctx));
        vka_cmd_destroy(cmd);
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        rc = vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN_KEEP_RUNNING,
                                   &(vka_batchnorm_io){.x = x, .yp = &bad[i], .gamma = c, .beta = c, .save_mean = dg,
                                                       .save_invstd = db, .scratch = scratch});
        assert_int_equal(rc, VKA_ERROR_INVALID_ARGUMENT);
        if (!strstr(vka_context_last_error(ctx), "batchnorm_forward_train_packed_y: packed y"))
            fail_msg("bad packed y %d: %s", i, vka_context_last_error(ctx));
        vka_cmd_destroy(cmd);
    }
    /* A good packed y with an NCHW y as well, at 5 channels: both need C and HW multiples of 4. */
    vka_tensor y = test_tensor(ctx, arena, NULL, 2 * 5 * 16);
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    assert_int_equal(vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN_KEEP_RUNNING,
                                           &(vka_batchnorm_io){.x = x, .y = y, .yp = &good, .gamma = c, .beta = c,
                                                               .save_mean = dg, .save_invstd = db, .scratch = scratch}),
                     VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), "multiples of 4"))
        fail_msg("y and packed y at 5 channels: %s", vka_context_last_error(ctx));
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* The GPU tuning of the reductions (128-lane workgroups, a 7-level shared-memory
 * tree) and the CPU one (8 lanes, 3 levels), whatever the device. */
static void batchnorm_reductions_match_reference_with_either_workgroup_shape(void **state)
{
    (void)state;
    static const char *const tunings[] = {"gpu", "cpu"};
    for (int t = 0; t < 2; t++) {
        setenv("VKANCHOR_BN_REDUCE", tunings[t], 1);
        vka_context *ctx = test_context();
        for (size_t i = 0; i < NSHAPES; i++) {
            vka_arena *arena;
            TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_tuning"}, &arena));
            bn_host h = make_host(shapes[i], 900 + i, 0.0f);
            bn_result g = run_train(ctx, arena, &h, (int)(i + t) % 2, 1, 1), g2 = run_train(ctx, arena, &h, (int)(i + t) % 2, 1, 1);
            check_against_reference(&h, &g, (int)(i + t) % 2, 1, 1);
            assert_memory_equal(g.dx, g2.dx, h.nx * 4);
            assert_memory_equal(g.invstd, g2.invstd, h.nc * 4);
            free_result(&g), free_result(&g2);
            free_host(&h);
            vka_arena_destroy(arena);
        }
        unsetenv("VKANCHOR_BN_REDUCE");
        test_context_finish(ctx);
    }
}

/* Reference-masked batches (DESIGN.md section 1) still normalize with their own
 * statistics but must leave the running statistics exactly as they were. */
static void batchnorm_without_update_running_leaves_running_statistics_bit_identical(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSHAPES; i++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_skip"}, &arena));
        bn_host h = make_host(shapes[i], 300 + i, 0.0f);
        bn_result g = run_train(ctx, arena, &h, i % 2, 0, 1);
        assert_memory_equal(g.rm, h.rm, h.nc * 4);
        assert_memory_equal(g.rv, h.rv, h.nc * 4);
        check_against_reference(&h, &g, i % 2, 0, 1);
        free_result(&g);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    test_context_finish(ctx);
}

static void batchnorm_without_update_running_accepts_absent_running_tensors(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_absent"}, &arena));
    shape s = {1, 3, 1, 1}; /* N*HW = 1: fine without a running update */
    bn_host h = make_host(s, 7, 0.0f);
    vka_batchnorm_desc d = desc_of(s, 0);
    vka_tensor x = test_tensor(ctx, arena, h.x, h.nx), gamma = test_tensor(ctx, arena, h.gamma, h.nc);
    vka_tensor beta = test_tensor(ctx, arena, h.beta, h.nc);
    test_guarded y = test_alloc_guarded(ctx, arena, h.nx * 4), mean = test_alloc_guarded(ctx, arena, h.nc * 4),
                 invstd = test_alloc_guarded(ctx, arena, h.nc * 4);
    vka_tensor scratch = test_tensor(ctx, arena, NULL, vka_batchnorm_scratch_bytes(ctx, &d) / 4);
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN_KEEP_RUNNING,
                                  &(vka_batchnorm_io){.x = x, .y = y.t, .gamma = gamma, .beta = beta,
                                                      .save_mean = mean.t, .save_invstd = invstd.t, .scratch = scratch}));
    test_run(cmd);
    float *gy = test_read(ctx, y.t, h.nx);
    /* One value per channel: xhat = 0, y = beta. */
    assert_memory_equal(gy, h.beta, h.nc * 4);
    test_check_guard(ctx, y), test_check_guard(ctx, mean), test_check_guard(ctx, invstd);
    free(gy);
    free_host(&h);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void batchnorm_backward_without_dx_writes_only_the_parameter_gradients(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_nodx"}, &arena));
    bn_host h = make_host(shapes[0], 400, 0.0f);
    bn_result g = run_train(ctx, arena, &h, 1, 1, 0);
    check_against_reference(&h, &g, 1, 1, 0);
    free_result(&g);
    free_host(&h);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void batchnorm_eval_forward_matches_reference(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (size_t i = 0; i < NSHAPES; i++) {
        for (int relu = 0; relu < 2; relu++) {
            vka_arena *arena;
            TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_eval"}, &arena));
            shape s = shapes[i];
            bn_host h = make_host(s, 500 + i, 0.0f);
            vka_batchnorm_desc d = desc_of(s, relu);
            vka_tensor x = test_tensor(ctx, arena, h.x, h.nx), gamma = test_tensor(ctx, arena, h.gamma, h.nc);
            vka_tensor beta = test_tensor(ctx, arena, h.beta, h.nc), rm = test_tensor(ctx, arena, h.rm, h.nc);
            vka_tensor rv = test_tensor(ctx, arena, h.rv, h.nc);
            test_guarded y = test_alloc_guarded(ctx, arena, h.nx * 4);
            test_guarded scratch = test_alloc_guarded(ctx, arena, vka_batchnorm_scratch_bytes(ctx, &d));
            vka_cmd *cmd;
            TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
            TEST_OK(vka_batchnorm_forward(cmd, &d, VKA_BN_EVAL,
                                          &(vka_batchnorm_io){.x = x, .y = y.t, .gamma = gamma, .beta = beta,
                                                              .running_mean = rm, .running_var = rv,
                                                              .scratch = scratch.t}));
            test_run(cmd);
            float *gy = test_read(ctx, y.t, h.nx);
            test_check_guard(ctx, y), test_check_guard(ctx, scratch);
            double *dx = test_to_double(h.x, h.nx), *dg = test_to_double(h.gamma, h.nc);
            double *dbt = test_to_double(h.beta, h.nc), *drm = test_to_double(h.rm, h.nc);
            double *drv = test_to_double(h.rv, h.nc), *ry = malloc(h.nx * sizeof(double));
            ref_batchnorm_forward_eval(ry, dx, dg, dbt, drm, drv, s.n, s.c, s.h * s.w, 1e-5);
            if (relu) ref_relu_forward(ry, ry, (int)h.nx);
            char what[96];
            snprintf(what, sizeof what, "eval y N=%d C=%d H=%d W=%d relu=%d", s.n, s.c, s.h, s.w, relu);
            test_expect_close(what, gy, ry, h.nx, 1e-10);
            free(gy), free(dx), free(dg), free(dbt), free(drm), free(drv), free(ry);
            free_host(&h);
            vka_cmd_destroy(cmd);
            vka_arena_destroy(arena);
        }
    }
    test_context_finish(ctx);
}

/* N*HW = 100352 values per channel (the cnn's first layers at batch 128), with a
 * mean 100x the spread in one run: shifted sums keep the variance. */
static void batchnorm_statistics_stay_accurate_over_100k_values_and_a_large_mean(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (int big_mean = 0; big_mean < 2; big_mean++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_mean"}, &arena));
        bn_host h = make_host((shape){128, 2, 28, 28}, 600, big_mean ? 100.0f : 0.0f);
        bn_result g = run_train(ctx, arena, &h, big_mean, 1, 1);
        check_against_reference(&h, &g, big_mean, 1, 1);
        free_result(&g);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    test_context_finish(ctx);
}

static void batchnorm_repeats_bit_for_bit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    for (int relu = 0; relu < 2; relu++) {
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_det"}, &arena));
        bn_host h = make_host(shapes[0], 700, 0.0f);
        bn_result a = run_train(ctx, arena, &h, relu, 1, 1), b = run_train(ctx, arena, &h, relu, 1, 1);
        assert_memory_equal(a.y, b.y, h.nx * 4);
        assert_memory_equal(a.dx, b.dx, h.nx * 4);
        assert_memory_equal(a.mean, b.mean, h.nc * 4);
        assert_memory_equal(a.invstd, b.invstd, h.nc * 4);
        assert_memory_equal(a.rm, b.rm, h.nc * 4);
        assert_memory_equal(a.rv, b.rv, h.nc * 4);
        assert_memory_equal(a.dgamma, b.dgamma, h.nc * 4);
        assert_memory_equal(a.dbeta, b.dbeta, h.nc * 4);
        free_result(&a), free_result(&b);
        free_host(&h);
        vka_arena_destroy(arena);
    }
    test_context_finish(ctx);
}

/* A bad call returns its error, names the op, and gets nowhere near a dispatch:
 * no kernel at all is even created in a fresh context. */
static void expect_rejected(vka_context *ctx, vka_result got, vka_result want, const char *op)
{
    assert_int_equal(got, want);
    if (!strstr(vka_context_last_error(ctx), op))
        fail_msg("error message '%s' does not name %s", vka_context_last_error(ctx), op);
    if (ctx->kernels.count) fail_msg("%u kernels were created by rejected calls", ctx->kernels.count);
}

static void batchnorm_rejects_bad_calls_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_bad"}, &arena));
    vka_batchnorm_desc d = {.n = 2, .c = 3, .hw = 16};
    vka_tensor x, y, small, c3, scratch;
    TEST_OK(vka_arena_alloc(arena, 2 * 3 * 16 * 4, &x));
    TEST_OK(vka_arena_alloc(arena, 2 * 3 * 16 * 4, &y));
    TEST_OK(vka_arena_alloc(arena, 2 * 3 * 16 * 4 - 4, &small));
    TEST_OK(vka_arena_alloc(arena, 3 * 4, &c3));
    TEST_OK(vka_arena_alloc(arena, vka_batchnorm_scratch_bytes(ctx, &d), &scratch));
    vka_tensor none = {0};
    const char *ops[] = {"batchnorm_forward_train", "batchnorm_backward", "batchnorm_forward_eval",
                         "batchnorm_forward_train_add", "batchnorm_forward_eval_add", "batchnorm_forward_train",
                         "batchnorm_forward", "batchnorm_forward_train", "batchnorm_forward_train",
                         "batchnorm_forward_train_coef", "batchnorm_forward_eval_coef"};
    struct {
        vka_batchnorm_desc d;
        int which; /* 0 train, 1 backward, 2 eval, 3 train_add, 4 eval_add (forwards with a residual),
                      5 train without save_mean, 6 an unknown mode, 7 train with statistics partials
                      too small for 3 channels x 1 partial, 8 with 0 partials, 9 coefficients only but
                      with y, 10 coefficients only into a tensor too small */
        vka_tensor y, x, scratch;
        int update;
        vka_tensor residual;
    } bad[] = {
        {{.n = 2, .c = 0, .hw = 16}, 0, y, x, scratch, 1, none},                  /* zero channels */
        {{.n = 0, .c = 3, .hw = 16}, 1, y, x, scratch, 0, none},                  /* zero batch */
        {{.n = 2, .c = 3, .hw = 0}, 2, y, x, scratch, 0, none},                   /* zero plane */
        {d, 0, small, x, scratch, 1, none},                                       /* y too small */
        {d, 1, y, small, scratch, 0, none},                                       /* x too small */
        {d, 2, y, small, scratch, 0, none},                                       /* x too small */
        {d, 0, y, x, c3, 1, none},                                                /* scratch too small */
        {d, 1, y, x, none, 0, none},                                              /* no scratch */
        {d, 2, y, x, c3, 0, none},                                                /* scratch too small */
        {{.n = 1, .c = 3, .hw = 1}, 0, y, x, scratch, 1, none},                   /* one value: no unbiased var */
        {d, 0, y, y, scratch, 1, none},                                           /* y is x */
        {{.n = 2, .c = 3, .hw = 16, .relu = 1}, 1, y, x, scratch, 0, none},       /* fused ReLU backward, no beta */
        {{.n = 2, .c = 3, .hw = 16, .momentum = 2}, 0, y, x, scratch, 1, none},   /* momentum out of range */
        {d, 5, y, x, scratch, 0, none},                                           /* no save_mean */
        {d, 6, y, x, scratch, 0, none},                                           /* no such mode */
        {d, 4, y, x, scratch, 0, small},                                          /* residual too small */
        {d, 3, y, x, scratch, 0, y},                                              /* residual is y */
        {d, 4, y, x, c3, 0, x},                                                   /* scratch too small */
        {d, 7, y, x, scratch, 1, none},                                           /* stats too small */
        {d, 8, y, x, scratch, 1, none},                                           /* stats of 0 partials */
        {d, 9, y, x, scratch, 1, none},                                           /* coefficients and y */
        {d, 10, none, x, scratch, 0, none},                                       /* coef too small */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        vka_result rc;
        const char *op = ops[bad[i].which];
        if (bad[i].which == 1) {
            rc = vka_batchnorm_backward(cmd, &bad[i].d, bad[i].y, c3, c3, y, bad[i].x, c3, c3, c3, none,
                                        bad[i].scratch);
        } else {
            int eval = bad[i].which == 2 || bad[i].which == 4 || bad[i].which == 10;
            vka_batchnorm_io io = {.x = bad[i].x, .y = bad[i].y, .residual = bad[i].residual, .gamma = c3, .beta = c3,
                                   .running_mean = c3, .running_var = c3, .save_mean = c3, .save_invstd = c3,
                                   .scratch = bad[i].scratch};
            if (bad[i].which == 5) io.save_mean = none;
            if (bad[i].which == 7 || bad[i].which == 8) io.stats = c3, io.stats_groups = bad[i].which == 7 ? 1 : 0;
            if (bad[i].which >= 9) io.coef = c3; /* (C, 2) vec4 needs 96 bytes */
            vka_batchnorm_mode mode = eval ? VKA_BN_EVAL : bad[i].update ? VKA_BN_TRAIN : VKA_BN_TRAIN_KEEP_RUNNING;
            if (bad[i].which == 6) mode = (vka_batchnorm_mode)7;
            rc = vka_batchnorm_forward(cmd, &bad[i].d, mode, &io);
        }
        expect_rejected(ctx, rc, VKA_ERROR_INVALID_ARGUMENT, op);
        assert_int_equal(vka_cmd_status(cmd), VKA_ERROR_INVALID_ARGUMENT);
        vka_cmd_destroy(cmd);
    }
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* BatchNorm binds whole tensors: one over the storage-buffer range is refused up front. */
static void batchnorm_refuses_a_tensor_over_the_storage_range(void **state)
{
    (void)state;
    setenv("VKANCHOR_MAX_STORAGE_RANGE", "4096", 1);
    vka_context *ctx = test_context();
    unsetenv("VKANCHOR_MAX_STORAGE_RANGE");
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bn_range"}, &arena));
    vka_batchnorm_desc d = {.n = 2, .c = 2, .hw = 512};
    vka_tensor x, y, c2;
    TEST_OK(vka_arena_alloc(arena, 2 * 2 * 512 * 4, &x));
    TEST_OK(vka_arena_alloc(arena, 2 * 2 * 512 * 4, &y));
    TEST_OK(vka_arena_alloc(arena, 8, &c2));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_batchnorm_io io = {.x = x, .y = y, .gamma = c2, .beta = c2, .running_mean = c2, .running_var = c2, .scratch = y};
    expect_rejected(ctx, vka_batchnorm_forward(cmd, &d, VKA_BN_EVAL, &io), VKA_ERROR_LIMIT_EXCEEDED,
                    "batchnorm_forward_eval");
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batchnorm_training_forward_and_backward_match_reference_at_awkward_shapes),
        cmocka_unit_test(batchnorm_training_takes_its_statistics_from_partials),
        cmocka_unit_test(batchnorm_with_fused_relu_matches_relu_after_batchnorm),
        cmocka_unit_test(batchnorm_storage_buffer_variants_match_reference),
        cmocka_unit_test(batchnorm_writes_packed_y_and_dx_with_the_nchw_bits),
        cmocka_unit_test(batchnorm_refuses_a_packed_dx_or_y_of_the_wrong_shape),
        cmocka_unit_test(batchnorm_with_residual_gives_the_bits_of_bn_add_relu),
        cmocka_unit_test(batchnorm_reductions_match_reference_with_either_workgroup_shape),
        cmocka_unit_test(batchnorm_without_update_running_leaves_running_statistics_bit_identical),
        cmocka_unit_test(batchnorm_without_update_running_accepts_absent_running_tensors),
        cmocka_unit_test(batchnorm_backward_without_dx_writes_only_the_parameter_gradients),
        cmocka_unit_test(batchnorm_eval_forward_matches_reference),
        cmocka_unit_test(batchnorm_statistics_stay_accurate_over_100k_values_and_a_large_mean),
        cmocka_unit_test(batchnorm_repeats_bit_for_bit),
        cmocka_unit_test(batchnorm_rejects_bad_calls_without_dispatching),
        cmocka_unit_test(batchnorm_refuses_a_tensor_over_the_storage_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
