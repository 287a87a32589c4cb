/* bench_ops: GPU time of every op at the real shapes of the `cnn` on anchored
 * 28x28 single-channel images (Fashion-MNIST), batch 128, measured with timestamp
 * queries (vka_cmd_desc.timing = 1, vka_cmd_timings). Not a test: run it by hand,
 *   ./build/tests/bench_ops [device]
 * (device: an index or a name substring; default: the best device).
 *
 * Each op is recorded alone into a command buffer, run once to warm up, then 5
 * times; its time is the sum of its dispatches' GPU times (barriers and the gaps
 * between dispatches excluded), and the table shows the median of the 5.
 * Conv and linear: GFLOP/s with 2 FLOP per multiply-add (backward-data and
 * backward-weight each count as much as the forward; linear's backward does both).
 * Every other op: GB/s, where the bytes are the sizes of the tensors the op reads
 * plus those it writes, each counted once (a lower bound on real traffic: a BN
 * forward reads x twice, for its statistics and to normalize).
 * Validation is off; the limits are the device's (or VKANCHOR_LIMITS if set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/augment.h"
#include "nn/anchor.h"
#include "nn/batchnorm.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "nn/pool.h"
#include "test_util.h"

#define BATCH 128
#define REPS 5
#define MAX_TIMINGS 512

static vka_context *ctx;
static vka_arena *arena;
static vka_cmd *cmd;
static float *noise;          /* random floats to upload, as large as the largest tensor */
static size_t noise_n;
static int no_timestamps;

static void log_fn(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level >= VKA_LOG_WARNING) fprintf(stderr, "bench_ops: %s\n", message);
}

static void die(const char *what, vka_result rc)
{
    fprintf(stderr, "bench_ops: %s failed: %s (%s)\n", what, vka_result_string(rc), vka_context_last_error(ctx));
    exit(1);
}

#define CHECK(expr)                                                                                                   \
    do {                                                                                                              \
        vka_result r_ = (expr);                                                                                       \
        if (r_ != VKA_SUCCESS) die(#expr, r_);                                                                        \
    } while (0)

/* A tensor of n floats: random in [-1, 1] (random = 1) or zeros. */
static vka_tensor tensor(size_t n, int random)
{
    vka_tensor t;
    CHECK(vka_arena_alloc(arena, n * 4, &t));
    if (random) CHECK(vka_upload(ctx, t, 0, noise, n * 4));
    else CHECK(vka_fill(ctx, t, 0));
    return t;
}

static vka_tensor tensor_bytes(uint64_t bytes)
{
    vka_tensor t;
    CHECK(vka_arena_alloc(arena, bytes, &t));
    CHECK(vka_fill(ctx, t, 0));
    return t;
}

static vka_tensor tensor_i32(const int32_t *data, size_t n)
{
    vka_tensor t;
    CHECK(vka_arena_alloc(arena, n * 4, &t));
    CHECK(vka_upload(ctx, t, 0, data, n * 4));
    return t;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Submits what was recorded, waits, and returns the GPU time of its dispatches
 * (host wall time of submit + wait where there are no timestamps). */
static double run_once(uint32_t *dispatches)
{
    CHECK(vka_cmd_status(cmd));
    double t0 = now_ms();
    CHECK(vka_cmd_submit(cmd));
    CHECK(vka_cmd_wait(cmd));
    double wall = now_ms() - t0;
    static vka_timing t[MAX_TIMINGS];
    uint32_t n = vka_cmd_timings(cmd, t, MAX_TIMINGS);
    *dispatches = n;
    if (n == 0) {
        no_timestamps = 1;
        return wall;
    }
    double ms = 0;
    for (uint32_t i = 0; i < n && i < MAX_TIMINGS; i++) ms += t[i].ms;
    return ms;
}

static void header(void)
{
    printf("%-26s %-34s %9s %5s %9s %8s\n", "op", "shape", "ms", "disp", "GFLOP/s", "GB/s");
    printf("%-26s %-34s %9s %5s %9s %8s\n", "--", "-----", "--", "----", "-------", "----");
}

static void report(const char *op, const char *shape, const double *ms, uint32_t dispatches, double flops,
                   double bytes)
{
    double sorted[REPS];
    memcpy(sorted, ms, sizeof sorted);
    qsort(sorted, REPS, sizeof *sorted, by_value);
    double med = sorted[REPS / 2];
    char gf[16] = "", gb[16] = "";
    if (flops > 0 && med > 0) snprintf(gf, sizeof gf, "%.1f", flops / (med * 1e6));
    if (bytes > 0 && med > 0) snprintf(gb, sizeof gb, "%.2f", bytes / (med * 1e6));
    printf("%-26s %-34s %9.3f %5u %9s %8s\n", op, shape, med, dispatches, gf, gb);
    fflush(stdout);
}

/* Records `call` alone, runs it once to warm up and REPS times to measure. */
#define TIME_OP(op, shape, flops, bytes, call)                                                                        \
    do {                                                                                                              \
        double ms_[REPS];                                                                                             \
        uint32_t disp_ = 0;                                                                                           \
        for (int rep_ = -1; rep_ < REPS; rep_++) {                                                                    \
            CHECK(vka_cmd_reset(cmd));                                                                                \
            CHECK(call);                                                                                              \
            double t_ = run_once(&disp_);                                                                             \
            if (rep_ >= 0) ms_[rep_] = t_;                                                                            \
        }                                                                                                             \
        report(op, shape, ms_, disp_, flops, bytes);                                                                  \
    } while (0)

static void bench_conv(uint32_t c, uint32_t k, uint32_t hw, int with_data_grad)
{
    vka_conv2d_shape s = {.n = BATCH, .c = c, .h = hw, .w = hw, .k = k, .r = 3, .s = 3, .stride = 1, .pad = 1};
    uint32_t p = vka_conv2d_out_h(&s), q = vka_conv2d_out_w(&s);
    size_t xn = (size_t)BATCH * c * hw * hw, yn = (size_t)BATCH * k * p * q, wn = (size_t)k * c * 9;
    vka_tensor x = tensor(xn, 1), w = tensor(wn, 1), y = tensor(yn, 0), dy = tensor(yn, 1), dx = tensor(xn, 0);
    vka_tensor dw = tensor(wn, 0), scratch = tensor_bytes(vka_conv2d_scratch_bytes(ctx, &s));
    double flops = 2.0 * BATCH * k * p * q * c * 9;
    char shape[64];
    snprintf(shape, sizeof shape, "%u->%u 3x3 @%ux%u (%s)", c, k, hw, hw,
             vka_conv2d_choose(ctx, &s) == VKA_CONV2D_TEXEL ? "texel" : "tiled");
    TIME_OP("conv2d forward", shape, flops, 0, vka_conv2d_forward(cmd, &s, y, x, w, (vka_tensor){0}, scratch));
    if (with_data_grad)
        TIME_OP("conv2d backward-data", shape, flops, 0, vka_conv2d_backward_data(cmd, &s, dx, dy, w, scratch));
    TIME_OP("conv2d backward-weight", shape, flops, 0,
            vka_conv2d_backward_weight(cmd, &s, dw, (vka_tensor){0}, dy, x, scratch));
}

static void bench_bn(uint32_t c, uint32_t hw)
{
    vka_batchnorm_desc d = {.n = BATCH, .c = c, .hw = hw * hw, .relu = 1};
    size_t n = (size_t)BATCH * c * hw * hw;
    vka_tensor x = tensor(n, 1), y = tensor(n, 0), dy = tensor(n, 1), dx = tensor(n, 0);
    vka_tensor gamma = tensor(c, 1), beta = tensor(c, 1), dgamma = tensor(c, 0), dbeta = tensor(c, 0);
    vka_tensor mean = tensor(c, 0), invstd = tensor(c, 0), rmean = tensor(c, 0), rvar = tensor(c, 0);
    vka_tensor scratch = tensor_bytes(vka_batchnorm_scratch_bytes(ctx, &d));
    char shape[64];
    snprintf(shape, sizeof shape, "(%u,%u,%u,%u) +relu", BATCH, c, hw, hw);
    TIME_OP("batchnorm forward (train)", shape, 0, (2.0 * n + 6 * c) * 4,
            vka_batchnorm_forward(cmd, &d, VKA_BN_TRAIN,
                                  &(vka_batchnorm_io){.x = x, .y = y, .gamma = gamma, .beta = beta,
                                                      .running_mean = rmean, .running_var = rvar, .save_mean = mean,
                                                      .save_invstd = invstd, .scratch = scratch}));
    TIME_OP("batchnorm backward", shape, 0, (3.0 * n + 6 * c) * 4,
            vka_batchnorm_backward(cmd, &d, dx, dgamma, dbeta, dy, x, mean, invstd, gamma, beta, scratch));
}

static void bench_maxpool(uint32_t c, uint32_t hw)
{
    vka_maxpool_desc d = {.n = BATCH, .c = c, .h = hw, .w = hw, .k = 2, .stride = 2};
    size_t n = (size_t)BATCH * c * hw * hw, m = (size_t)BATCH * c * (hw / 2) * (hw / 2);
    vka_tensor x = tensor(n, 1), y = tensor(m, 0), dy = tensor(m, 1), dx = tensor(n, 0), argmax = tensor(m, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "(%u,%u,%u,%u) 2x2/2", BATCH, c, hw, hw);
    TIME_OP("maxpool forward", shape, 0, (n + 2.0 * m) * 4, vka_maxpool_forward(cmd, &d, y, argmax, x));
    TIME_OP("maxpool backward", shape, 0, (n + 2.0 * m) * 4, vka_maxpool_backward(cmd, &d, dx, dy, argmax));
}

int main(int argc, char **argv)
{
    const char *device = argc > 1 ? argv[1] : NULL;
    if (device && (strcmp(device, "-h") == 0 || strcmp(device, "--help") == 0)) {
        printf("usage: bench_ops [device]\nPer-op GPU time at the cnn's shapes, batch %d (median of %d).\n", BATCH,
               REPS);
        return 0;
    }
    CHECK(vka_context_create(&(vka_context_desc){.device = device, .validation = VKA_VALIDATION_OFF, .log = log_fn},
                             &ctx));
    const vka_device_info *dev = vka_context_device(ctx);
    CHECK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bench_ops"}, &arena));
    CHECK(vka_cmd_create(ctx, &(vka_cmd_desc){.timing = 1, .max_timed_dispatches = MAX_TIMINGS}, &cmd));
    noise_n = (size_t)BATCH * 32 * 28 * 28;
    noise = malloc(noise_n * 4);
    test_rng rng = {0x9E3779B97F4A7C15ull};
    test_fill_uniform(&rng, noise, noise_n, -1.0f, 1.0f);

    printf("bench_ops on %s (%s, %s), cnn shapes, batch %d, median of %d runs\n", dev->name,
           vka_device_type_string(dev->type), dev->driver_name, BATCH, REPS);
    header();

    bench_conv(2, 32, 28, 1);
    bench_conv(32, 32, 28, 1);
    bench_conv(32, 64, 14, 1);
    bench_conv(64, 64, 14, 1);
    bench_bn(32, 28);
    bench_bn(64, 14);
    bench_maxpool(32, 28);
    bench_maxpool(64, 14);

    {   /* global average pool (128, 64, 7, 7) -> (128, 64) */
        size_t n = (size_t)BATCH * 64 * 49, m = (size_t)BATCH * 64;
        vka_tensor x = tensor(n, 1), y = tensor(m, 0), dx = tensor(n, 0), dy = tensor(m, 1);
        TIME_OP("global avgpool forward", "(128,64,7,7)", 0, (n + m) * 4.0,
                vka_global_avgpool_forward(cmd, BATCH, 64, 49, y, x));
        TIME_OP("global avgpool backward", "(128,64,7,7)", 0, (n + m) * 4.0,
                vka_global_avgpool_backward(cmd, BATCH, 64, 49, dx, dy));
    }
    {   /* linear 64 -> 10 */
        vka_linear_shape s = {.n = BATCH, .in = 64, .out = 10};
        vka_tensor x = tensor(BATCH * 64, 1), w = tensor(640, 1), b = tensor(10, 1), y = tensor(BATCH * 10, 0);
        vka_tensor dy = tensor(BATCH * 10, 1), dx = tensor(BATCH * 64, 0), dw = tensor(640, 0), db = tensor(10, 0);
        double flops = 2.0 * BATCH * 64 * 10;
        TIME_OP("linear forward", "128x64 -> 10", flops, 0, vka_linear_forward(cmd, &s, y, x, w, b));
        TIME_OP("linear backward", "128x64 -> 10", 2 * flops, 0, vka_linear_backward(cmd, &s, dx, dw, db, dy, x, w));
    }
    {   /* softmax cross-entropy, label smoothing 0.1 */
        int32_t labels[BATCH];
        for (int b = 0; b < BATCH; b++) labels[b] = b % 10;
        vka_tensor logits = tensor(BATCH * 10, 1), dlogits = tensor(BATCH * 10, 0), lab = tensor_i32(labels, BATCH);
        vka_tensor stats = tensor_bytes(vka_cross_entropy_stats_bytes(BATCH));
        vka_cross_entropy_desc d = {.batch = BATCH, .classes = 10, .smoothing = 0.1f};
        TIME_OP("cross-entropy", "(128,10)", 0, (2.0 * BATCH * 10 + BATCH + 2 + BATCH) * 4,
                vka_cross_entropy(cmd, &d, dlogits, stats, logits, lab));
    }
    {   /* SGD with momentum over the cnn's whole (padded) parameter tensor */
        vka_model *m;
        CHECK(vka_model_create(ctx, &(vka_model_desc){.kind = VKA_MODEL_CNN, .in_channels = 2, .height = 28,
                                                     .width = 28, .classes = 10, .batch = 1}, &m));
        uint64_t n = m->param_floats;
        vka_model_destroy(m);
        vka_tensor w = tensor(n, 1), g = tensor(n, 1), buf = tensor(n, 0);
        vka_sgd_params p = {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4};
        char shape[64];
        snprintf(shape, sizeof shape, "%llu params, momentum", (unsigned long long)n);
        TIME_OP("sgd step", shape, 0, 5.0 * n * 4, vka_sgd_step(cmd, &p, n, w, buf, g));
    }
    {   /* augmentation: uint8 (128,1,28,28) -> crop/flip/normalize floats */
        vka_augment_shape s = {.n = BATCH, .c = 1, .h = 28, .w = 28, .mean = {0.286f}, .std = {0.353f}};
        size_t n = (size_t)BATCH * 28 * 28;
        int32_t prm[3 * BATCH];
        for (int b = 0; b < BATCH; b++) prm[3 * b] = b % 9 - 4, prm[3 * b + 1] = 4 - b * 5 % 9, prm[3 * b + 2] = b & 1;
        vka_tensor pixels = tensor((n + 3) / 4, 1), params = tensor_i32(prm, 3 * BATCH), out = tensor(n, 0);
        TIME_OP("augment", "(128,1,28,28) u8 -> f32", 0, n * 5.0 + 12 * BATCH, vka_augment(cmd, &s, out, pixels, params));
    }
    {   /* anchored input (128,1,28,28) -> (128,2,28,28) */
        vka_anchor_shape s = {.batch = BATCH, .channels = 1, .height = 28, .width = 28};
        size_t n = (size_t)BATCH * 28 * 28;
        int32_t idx[BATCH];
        for (int b = 0; b < BATCH; b++) idx[b] = (b * 37 + 11) % BATCH;
        vka_tensor x = tensor(n, 1), out = tensor(2 * n, 0), ri = tensor_i32(idx, BATCH);
        TIME_OP("anchor train input", "(128,1,28,28) -> 2 ch", 0, (3.0 * n + BATCH) * 4,
                vka_anchor_train_input(cmd, &s, out, x, ri, 0));
    }
    if (no_timestamps) printf("(no timestamp queries on this device: times are host wall-clock of submit + wait)\n");

    free(noise);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    vka_context_destroy(ctx);
    return 0;
}
