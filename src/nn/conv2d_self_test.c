/* What the conv fast paths' start-up self-tests share (conv2d.h: vka_conv2d_compare_paths):
 * one conv's forward and both gradients run two ways on the device, the fast kernels and the
 * fp32 ones, from the same deterministic inputs; the caller judges the difference. And the
 * self-test of the channels-packed (lavapipe) kernels, run when a context makes its first
 * model (vka_conv2d_packed_ready). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/conv2d_packed.h"
#include "nn/ops_internal.h"
#include "vk/clock.h"

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

double vka_conv2d_compare_paths(vka_context *ctx, const vka_conv2d_shape *fast, const vka_conv2d_shape *plain,
                                float dy_scale)
{
    const vka_conv2d_shape *sh = plain;
    uint32_t p = vka_conv2d_out_h(sh), q = vka_conv2d_out_w(sh);
    /* x, w, b, dy, then per path (fast, plain) y, dx, dw, db. */
    size_t n[4] = {(size_t)sh->n * sh->k * p * q, (size_t)sh->n * sh->c * sh->h * sh->w,
                   (size_t)sh->k * sh->c * sh->r * sh->s, sh->k};  /* y/dy, x/dx, w/dw, b/db */
    size_t total = n[1] + n[2] + n[3] + n[0] + 2 * (n[0] + n[1] + n[2] + n[3]);
    float *host = malloc(total * sizeof *host);
    if (!host) return NAN;
    float *hx = host, *hw = hx + n[1], *hb = hw + n[2], *hdy = hb + n[3], *out[2][4];
    float *next = hdy + n[0];
    for (int path = 0; path < 2; path++)
        for (int o = 0; o < 4; o++) out[path][o] = next, next += n[o];
    fill(hx, n[1], 1), fill(hw, n[2], 2), fill(hb, n[3], 3), fill(hdy, n[0], 4);
    for (size_t i = 0; i < n[0]; i++) hdy[i] *= dy_scale;
    vka_arena *arena = NULL;
    vka_cmd *cmd = NULL;
    vka_tensor x, w, b, dy, t[2][4], scratch;
    uint64_t scratch_bytes = vka_conv2d_scratch_bytes(ctx, fast), plain_bytes = vka_conv2d_scratch_bytes(ctx, plain);
    if (scratch_bytes < plain_bytes) scratch_bytes = plain_bytes;
    vka_result rc = vka_arena_create(ctx, &(vka_arena_desc){.name = "conv self-test"}, &arena);
    if (!rc) rc = vka_arena_alloc(arena, n[1] * 4, &x);
    if (!rc) rc = vka_arena_alloc(arena, n[2] * 4, &w);
    if (!rc) rc = vka_arena_alloc(arena, n[3] * 4, &b);
    if (!rc) rc = vka_arena_alloc(arena, n[0] * 4, &dy);
    for (int path = 0; path < 2; path++)
        for (int o = 0; o < 4 && !rc; o++) rc = vka_arena_alloc(arena, n[o] * 4, &t[path][o]);
    if (!rc) rc = vka_arena_alloc(arena, scratch_bytes, &scratch);
    if (!rc) rc = vka_upload(ctx, x, 0, hx, n[1] * 4);
    if (!rc) rc = vka_upload(ctx, w, 0, hw, n[2] * 4);
    if (!rc) rc = vka_upload(ctx, b, 0, hb, n[3] * 4);
    if (!rc) rc = vka_upload(ctx, dy, 0, hdy, n[0] * 4);
    if (!rc) rc = vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd);
    for (int path = 0; path < 2 && !rc; path++) {
        const vka_conv2d_shape *s = path == 0 ? fast : plain;
        rc = vka_conv2d_forward(cmd, s, t[path][0], x, w, b, scratch);
        if (!rc) rc = vka_conv2d_backward(cmd, s, t[path][1], t[path][2], t[path][3], dy, x, w, scratch);
    }
    if (!rc) rc = vka_cmd_submit(cmd);
    if (!rc) rc = vka_cmd_wait(cmd);
    for (int path = 0; path < 2; path++)
        for (int o = 0; o < 4 && !rc; o++) rc = vka_download(ctx, t[path][o], 0, out[path][o], n[o] * 4);
    double err = rc ? NAN : 0;
    for (int o = 0; o < 4 && !rc; o++) err = fmax(err, relative_error(out[0][o], out[1][o], n[o]));
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    free(host);
    return err;
}

/* The packed kernels' families, each on a small shape off their run and channel-block sizes:
 * the 3x3 stride-1 row kernels (runs of 14 and a partial run, channels not a multiple of 8),
 * the stride-2 3x3 (column pairs, row phases) and the 1x1 stride-2 projection. */
static const vka_conv2d_shape PACKED_SELF_TEST[] = {
    {.n = 2, .c = 12, .h = 17, .w = 17, .k = 20, .r = 3, .s = 3, .stride = 1, .pad = 1},
    {.n = 2, .c = 8, .h = 10, .w = 10, .k = 16, .r = 3, .s = 3, .stride = 2, .pad = 1},
    {.n = 2, .c = 8, .h = 10, .w = 10, .k = 16, .r = 1, .s = 1, .stride = 2, .pad = 0},
};

/* Both paths fp32, summing up to 108 (forward, dx) or 578 (dw) products in different orders:
 * ~1e-6 of an output's largest magnitude; a kernel that misplaces a tap, a channel or a run
 * is off by its whole size. */
#define PACKED_SELF_TEST_TOLERANCE 1e-4

int vka_conv2d_packed_ready(vka_context *ctx) { return vka_conv2d_packed_ready_within(ctx, PACKED_SELF_TEST_TOLERANCE); }

int vka_conv2d_packed_ready_within(vka_context *ctx, double tolerance)
{
    /* (Only where convs take the texel variant: CPU devices, or VKANCHOR_CONV=texel.) */
    if (ctx->packed_checked == 0 && vka_conv2d_packed_device(ctx) && !vka_switch_off("VKANCHOR_CONV_PACKED") &&
        vka_conv2d_choose(ctx, &PACKED_SELF_TEST[0]) == VKA_CONV2D_TEXEL) {
        ctx->packed_checked = 2; /* running: its own passes take the packed kernels */
        char last_error[sizeof ctx->logger.last_error];
        memcpy(last_error, ctx->logger.last_error, sizeof last_error);
        double err = 0, started = vka_seconds();
        int not_run = 0;
        for (size_t i = 0; i < sizeof PACKED_SELF_TEST / sizeof *PACKED_SELF_TEST; i++) {
            vka_conv2d_shape packed = PACKED_SELF_TEST[i], plain = PACKED_SELF_TEST[i];
            packed.variant = VKA_CONV2D_TEXEL, plain.variant = VKA_CONV2D_TILED, plain.coop = -1;
            double e = vka_conv2d_compare_paths(ctx, &packed, &plain, 1.0f);
            if (isnan(e)) not_run = 1; /* (fmax would drop it) */
            else err = fmax(err, e);
        }
        memcpy(ctx->logger.last_error, last_error, sizeof last_error);
        ctx->packed_checked = !not_run && err <= tolerance ? 1 : -1;
        if (ctx->packed_checked > 0)
            vka_log(&ctx->logger, VKA_LOG_DEBUG, "%s: channels-packed conv kernels: self-test passed (error %.1e of "
                    "the output's scale, %.2f s)", ctx->info.name, err, vka_seconds() - started);
        else if (not_run)
            vka_log(&ctx->logger, VKA_LOG_WARNING, "%s: the channels-packed conv kernels' self-test could not run "
                    "(above); every conv stays on the fp32 texel and tiled kernels", ctx->info.name);
        else
            vka_log(&ctx->logger, VKA_LOG_WARNING, "%s: the channels-packed conv kernels failed their self-test "
                    "(error %.3g of the output's scale, allowed %g); every conv stays on the fp32 texel and tiled "
                    "kernels (VKANCHOR_CONV_PACKED=0 does the same without the test)", ctx->info.name, err,
                    tolerance);
    }
    return ctx->packed_checked > 0;
}
