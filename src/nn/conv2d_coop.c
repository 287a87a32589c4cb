/* The start-up self-test of the conv passes on cooperative matrices (conv2d.h:
 * vka_conv2d_coop_ready). The first conv that could use them runs one small conv's forward
 * and gradients through the coop kernels and through the fp32 tiled ones on this device and
 * compares (conv2d_self_test.c): a driver or kernel fault shows up as a warning and the fp32
 * kernels, not as wrong training. */
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

/* The forward and both gradients, from a dy of ~1e-9 (below even fp16's subnormals: unscaled it
 * would be all zeros, an error of 1), on the coop kernels and on the fp32 tiled ones. */
static int self_test(vka_context *ctx, double *err_out)
{
    vka_conv2d_shape coop = SELF_TEST, fp32 = SELF_TEST;
    coop.coop = 1, fp32.coop = -1;
    *err_out = vka_conv2d_compare_paths(ctx, &coop, &fp32, 1e-9f);
    return *err_out <= SELF_TEST_TOLERANCE;
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
