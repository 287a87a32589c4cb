/* The start-up self-test of the conv forward on cooperative matrices (conv2d.h:
 * vka_conv2d_coop_ready). The first forward that could use them runs one small conv through
 * the coop kernel and through the fp32 tiled kernel on this device and compares: a driver or
 * kernel fault shows up as a warning and the fp32 kernels, not as wrong training. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/ops_internal.h"

/* A shape off every tile boundary: M = 72 output channels (two 64-row tiles), N = 2*9*9 = 162
 * positions (64-column tiles), K = 24*3*3 = 216 (steps of 32), with padding and a bias. */
static const vka_conv2d_shape SELF_TEST = {.n = 2, .c = 24, .h = 9, .w = 9, .k = 72, .r = 3, .s = 3, .stride = 1,
                                           .pad = 1, .variant = VKA_CONV2D_TILED};

/* fp16 inputs with fp32 sums over 216 products of values in [-1, 1): errors of ~1e-3 of the
 * output's scale; a wrong fragment layout or a missed tile gives errors of its whole size. */
#define SELF_TEST_TOLERANCE 1e-2

/* Deterministic values in [-1, 1). */
static void fill(float *v, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

/* Runs the self-test; 1 when the coop forward matches the tiled one within the tolerance. */
static int self_test(vka_context *ctx, double *err_out)
{
    const vka_conv2d_shape *sh = &SELF_TEST;
    uint32_t p = vka_conv2d_out_h(sh), q = vka_conv2d_out_w(sh);
    size_t nx = (size_t)sh->n * sh->c * sh->h * sh->w, nw = (size_t)sh->k * sh->c * sh->r * sh->s;
    size_t ny = (size_t)sh->n * sh->k * p * q;
    float *host = malloc((nx + nw + sh->k + 2 * ny) * sizeof *host);
    *err_out = INFINITY;
    if (!host) return 0;
    float *hx = host, *hw = hx + nx, *hb = hw + nw, *y_coop = hb + sh->k, *y_fp32 = y_coop + ny;
    fill(hx, nx, 1), fill(hw, nw, 2), fill(hb, sh->k, 3);
    vka_arena *arena = NULL;
    vka_cmd *cmd = NULL;
    vka_tensor x, w, b, y1, y2, scratch;
    vka_conv2d_shape coop = *sh, fp32 = *sh;
    coop.coop = 1, fp32.coop = -1;
    vka_result rc = vka_arena_create(ctx, &(vka_arena_desc){.name = "coop self-test"}, &arena);
    if (!rc) rc = vka_arena_alloc(arena, nx * 4, &x);
    if (!rc) rc = vka_arena_alloc(arena, nw * 4, &w);
    if (!rc) rc = vka_arena_alloc(arena, sh->k * 4, &b);
    if (!rc) rc = vka_arena_alloc(arena, ny * 4, &y1);
    if (!rc) rc = vka_arena_alloc(arena, ny * 4, &y2);
    if (!rc) rc = vka_arena_alloc(arena, vka_conv2d_scratch_bytes(ctx, sh), &scratch);
    if (!rc) rc = vka_upload(ctx, x, 0, hx, nx * 4);
    if (!rc) rc = vka_upload(ctx, w, 0, hw, nw * 4);
    if (!rc) rc = vka_upload(ctx, b, 0, hb, sh->k * 4);
    if (!rc) rc = vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd);
    if (!rc) rc = vka_conv2d_forward(cmd, &coop, y1, x, w, b, scratch);
    if (!rc) rc = vka_conv2d_forward(cmd, &fp32, y2, x, w, b, scratch);
    if (!rc) rc = vka_cmd_submit(cmd);
    if (!rc) rc = vka_cmd_wait(cmd);
    if (!rc) rc = vka_download(ctx, y1, 0, y_coop, ny * 4);
    if (!rc) rc = vka_download(ctx, y2, 0, y_fp32, ny * 4);
    double scale = 0, err = rc ? INFINITY : 0;
    for (size_t i = 0; i < ny && !rc; i++) scale = fmax(scale, fabs(y_fp32[i]));
    for (size_t i = 0; i < ny && !rc; i++) {
        double d = fabs((double)y_coop[i] - y_fp32[i]);
        err = isfinite(d) ? fmax(err, d / (scale > 0 ? scale : 1)) : INFINITY;
    }
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
            vka_log(&ctx->logger, VKA_LOG_INFO, "%s: conv forward on cooperative matrices (fp16 inputs): "
                    "self-test passed (error %.1e of the output's scale)", ctx->info.name, err);
        else
            vka_log(&ctx->logger, VKA_LOG_WARNING, "%s: the conv forward on cooperative matrices failed its "
                    "self-test (error %.3g of the output's scale, allowed %g); the fp32 kernels run instead",
                    ctx->info.name, err, SELF_TEST_TOLERANCE);
    }
    return ctx->coopmat_checked > 0;
}
