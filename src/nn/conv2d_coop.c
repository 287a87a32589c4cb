/* The start-up self-test of the conv passes on cooperative matrices (conv2d.h:
 * vka_conv2d_coop_ready). The first conv that could use them runs one small conv's forward
 * and gradients through the coop kernels and through the fp32 tiled ones on this device and
 * compares: a driver or kernel fault shows up as a warning and the fp32 kernels, not as
 * wrong training. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/ops_internal.h"

/* A shape off every tile boundary: M = 72 output channels (two 64-row tiles), N = 2*9*9 = 162
 * positions (64-column tiles), K = 24*3*3 = 216 (steps of 32), with padding and a bias. */
static const vka_conv2d_shape SELF_TEST = {.n = 2, .c = 24, .h = 9, .w = 9, .k = 72, .r = 3, .s = 3, .stride = 1,
                                           .pad = 1, .variant = VKA_CONV2D_TILED};

/* fp16 inputs with fp32 sums over up to 216 (forward, dx) or 162 (dw) products: errors of
 * ~1e-3 of an output's largest magnitude; a wrong fragment layout, a missed tile or an
 * unscaled tiny dy gives errors of its whole size. */
#define SELF_TEST_TOLERANCE 1e-2

/* Deterministic values in [-1, 1). */
static void fill(float *v, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

/* The largest difference between got and want relative to want's largest magnitude (infinite
 * where a value is not finite). */
static double relative_error(const float *got, const float *want, size_t n)
{
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        err = isfinite(d) ? fmax(err, d / (scale > 0 ? scale : 1)) : INFINITY;
    }
    return err;
}

/* Runs the self-test: the forward and both gradients (from a dy of ~1e-9, below even fp16's
 * subnormals: unscaled it would be all zeros, an error of 1) on the coop kernels and on the
 * fp32 tiled ones; 1 when every output matches within the tolerance. *err_out: the worst
 * relative error. */
static int self_test(vka_context *ctx, double *err_out)
{
    const vka_conv2d_shape *sh = &SELF_TEST;
    uint32_t p = vka_conv2d_out_h(sh), q = vka_conv2d_out_w(sh);
    /* x, w, b, dy, then per path (coop, fp32) y, dx, dw, db. */
    size_t n[4] = {(size_t)sh->n * sh->k * p * q, (size_t)sh->n * sh->c * sh->h * sh->w,
                   (size_t)sh->k * sh->c * sh->r * sh->s, sh->k};  /* y/dy, x/dx, w/dw, b/db */
    size_t total = n[1] + n[2] + n[3] + n[0] + 2 * (n[0] + n[1] + n[2] + n[3]);
    float *host = malloc(total * sizeof *host);
    *err_out = INFINITY;
    if (!host) return 0;
    float *hx = host, *hw = hx + n[1], *hb = hw + n[2], *hdy = hb + n[3], *out[2][4];
    float *next = hdy + n[0];
    for (int path = 0; path < 2; path++)
        for (int o = 0; o < 4; o++) out[path][o] = next, next += n[o];
    fill(hx, n[1], 1), fill(hw, n[2], 2), fill(hb, n[3], 3), fill(hdy, n[0], 4);
    for (size_t i = 0; i < n[0]; i++) hdy[i] *= 1e-9f; /* all of it below fp16's smallest subnormal */
    vka_arena *arena = NULL;
    vka_cmd *cmd = NULL;
    vka_tensor x, w, b, dy, t[2][4], scratch;
    vka_result rc = vka_arena_create(ctx, &(vka_arena_desc){.name = "coop self-test"}, &arena);
    if (!rc) rc = vka_arena_alloc(arena, n[1] * 4, &x);
    if (!rc) rc = vka_arena_alloc(arena, n[2] * 4, &w);
    if (!rc) rc = vka_arena_alloc(arena, n[3] * 4, &b);
    if (!rc) rc = vka_arena_alloc(arena, n[0] * 4, &dy);
    for (int path = 0; path < 2; path++)
        for (int o = 0; o < 4 && !rc; o++) rc = vka_arena_alloc(arena, n[o] * 4, &t[path][o]);
    if (!rc) rc = vka_arena_alloc(arena, vka_conv2d_scratch_bytes(ctx, sh), &scratch);
    if (!rc) rc = vka_upload(ctx, x, 0, hx, n[1] * 4);
    if (!rc) rc = vka_upload(ctx, w, 0, hw, n[2] * 4);
    if (!rc) rc = vka_upload(ctx, b, 0, hb, n[3] * 4);
    if (!rc) rc = vka_upload(ctx, dy, 0, hdy, n[0] * 4);
    if (!rc) rc = vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd);
    for (int path = 0; path < 2 && !rc; path++) {
        vka_conv2d_shape s = *sh;
        s.coop = path == 0 ? 1 : -1;
        rc = vka_conv2d_forward(cmd, &s, t[path][0], x, w, b, scratch);
        if (!rc) rc = vka_conv2d_backward(cmd, &s, t[path][1], t[path][2], t[path][3], dy, x, w, scratch);
    }
    if (!rc) rc = vka_cmd_submit(cmd);
    if (!rc) rc = vka_cmd_wait(cmd);
    for (int path = 0; path < 2; path++)
        for (int o = 0; o < 4 && !rc; o++) rc = vka_download(ctx, t[path][o], 0, out[path][o], n[o] * 4);
    double err = rc ? INFINITY : 0;
    for (int o = 0; o < 4 && !rc; o++) err = fmax(err, relative_error(out[0][o], out[1][o], n[o]));
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    free(host);
    *err_out = err;
    return !rc && err <= SELF_TEST_TOLERANCE;
}

int vka_conv2d_coop_ready(vka_context *ctx)
{
    if (!ctx->coopmat_nv || ctx->limits.max_shared_memory_bytes < VKA_CONV2D_COOP_SHARED_BYTES) return 0;
    if (ctx->coopmat_checked == 0) {
        ctx->coopmat_checked = 2; /* running: its own forwards may use the kernel */
        /* The caller's forward goes on either way: its last error is not the self-test's. */
        char last_error[sizeof ctx->logger.last_error];
        memcpy(last_error, ctx->logger.last_error, sizeof last_error);
        double err = 0;
        int ok = self_test(ctx, &err);
        memcpy(ctx->logger.last_error, last_error, sizeof last_error);
        ctx->coopmat_checked = ok ? 1 : -1;
        if (ok)
            vka_log(&ctx->logger, VKA_LOG_INFO, "%s: conv passes on cooperative matrices (fp16 inputs): "
                    "self-test passed (error %.1e of the output's scale)", ctx->info.name, err);
        else
            vka_log(&ctx->logger, VKA_LOG_WARNING, "%s: the conv passes on cooperative matrices failed their "
                    "self-test (error %.3g of the output's scale, allowed %g); all three passes stay on the fp32 kernels",
                    ctx->info.name, err, SELF_TEST_TOLERANCE);
    }
    return ctx->coopmat_checked > 0;
}
