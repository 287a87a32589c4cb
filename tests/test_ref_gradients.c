// test_ref_gradients.c: proves the double-precision reference ops (tests/ref/) right.
//
// 1. Every backward is checked against central finite differences: for a fixed random
//    g shaped like the output, L = sum(y * g), and for EVERY input element
//    dL/dx_i ~ (L(x_i + h) - L(x_i - h)) / (2h), h = 1e-6.
//    Tolerance: |analytic - numeric| <= 1e-6 * max(|analytic|, |numeric|) + 1e-8.
//    (In double, the truncation error is O(h^2) ~ 1e-12 and the rounding error about
//    1e-16 * |L| / h ~ 1e-10 for these tiny shapes, so the bound has a wide margin yet
//    catches any real mistake, which shows up at 1e-2 or worse.)
// 2. Every backward is called with its outputs prefilled with garbage (it must overwrite)
//    and once with the other outputs NULL (it must skip them and give the same answer).
// 3. Forward values are checked against numbers computed by hand.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "ref_ops.h"

// ----------------------------------------------------------------------------
// helpers

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static void rng_seed(uint64_t seed) { rng_state = seed ? seed : 1; }

// xorshift64*: deterministic, portable
static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

// uniform in [lo, hi)
static double rng_uniform(double lo, double hi) {
    return lo + (hi - lo) * (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static double *rand_array(size_t n, double lo, double hi) {
    double *a = malloc(n * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) a[i] = rng_uniform(lo, hi);
    return a;
}

// an array full of garbage, to prove a backward overwrites rather than accumulates
static double *garbage_array(size_t n) {
    double *a = malloc(n * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) a[i] = 12345.0 + (double)i;
    return a;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

#define FD_H 1e-6
#define FD_RTOL 1e-6
#define FD_ATOL 1e-8

typedef double (*objective_fn)(void *ctx); // L as a function of the arrays ctx points to

// Compare grad[i] with the central difference of f with respect to param[i], all i < n.
static void check_gradient(const char *what, objective_fn f, void *ctx,
                           double *param, const double *grad, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double saved = param[i];
        param[i] = saved + FD_H;
        double lp = f(ctx);
        param[i] = saved - FD_H;
        double lm = f(ctx);
        param[i] = saved;
        double num = (lp - lm) / (2.0 * FD_H);
        double err = fabs(grad[i] - num);
        double bound = FD_RTOL * fmax(fabs(grad[i]), fabs(num)) + FD_ATOL;
        if (err > bound) {
            fail_msg("%s[%zu]: analytic %.12g, finite difference %.12g (error %.3g > %.3g)",
                     what, i, grad[i], num, err, bound);
        }
    }
}

static void assert_close(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol)) {
        fail_msg("%s: got %.17g, want %.17g (tolerance %g)", what, got, want, tol);
    }
}

static void assert_arrays_equal(const double *a, const double *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) fail_msg("%s[%zu]: %.17g != %.17g", what, i, a[i], b[i]);
    }
}

// ----------------------------------------------------------------------------
// conv2d

typedef struct {
    int N, C, H, W, K, R, S, stride, pad;
    double *x, *w, *b, *y, *g; // b may be NULL
} conv_ctx;

static size_t conv_ysize(const conv_ctx *c) {
    return (size_t)c->N * c->K * ref_conv2d_out_size(c->H, c->R, c->stride, c->pad)
         * ref_conv2d_out_size(c->W, c->S, c->stride, c->pad);
}

static double conv_objective(void *p) {
    conv_ctx *c = p;
    ref_conv2d_forward(c->y, c->x, c->w, c->b, c->N, c->C, c->H, c->W, c->K, c->R, c->S,
                       c->stride, c->pad);
    return dot(c->y, c->g, conv_ysize(c));
}

static void check_conv(int N, int C, int H, int W, int K, int R, int S, int stride, int pad,
                       int bias) {
    conv_ctx c = {N, C, H, W, K, R, S, stride, pad, NULL, NULL, NULL, NULL, NULL};
    size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * S, ny = conv_ysize(&c);
    c.x = rand_array(nx, -1, 1);
    c.w = rand_array(nw, -1, 1);
    c.b = bias ? rand_array(K, -1, 1) : NULL;
    c.y = malloc(ny * sizeof(double));
    c.g = rand_array(ny, -1, 1);
    double *dx = garbage_array(nx), *dw = garbage_array(nw), *db = garbage_array(K);
    ref_conv2d_backward(dx, dw, bias ? db : NULL, c.g, c.x, c.w, N, C, H, W, K, R, S, stride, pad);
    check_gradient("conv2d dx", conv_objective, &c, c.x, dx, nx);
    check_gradient("conv2d dw", conv_objective, &c, c.w, dw, nw);
    if (bias) check_gradient("conv2d db", conv_objective, &c, c.b, db, K);
    // NULL outputs are skipped and do not change the others
    double *dx2 = garbage_array(nx), *dw2 = garbage_array(nw);
    ref_conv2d_backward(dx2, NULL, NULL, c.g, c.x, c.w, N, C, H, W, K, R, S, stride, pad);
    ref_conv2d_backward(NULL, dw2, NULL, c.g, c.x, c.w, N, C, H, W, K, R, S, stride, pad);
    assert_arrays_equal(dx2, dx, nx, "conv2d dx alone");
    assert_arrays_equal(dw2, dw, nw, "conv2d dw alone");
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.g);
    free(dx); free(dw); free(db); free(dx2); free(dw2);
}

static void conv2d_backward_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(1);
    //         N  C  H  W  K  R  S  stride pad bias
    check_conv(2, 3, 5, 5, 2, 3, 3, 1, 1, 1); // 3x3 same-padding conv, 3 channels
    check_conv(1, 1, 7, 6, 3, 3, 3, 2, 1, 1); // stride 2 + padding, odd size, 1 channel, batch 1
    check_conv(2, 3, 6, 5, 4, 1, 1, 2, 0, 0); // 1x1 stride-2 shortcut, no bias
    check_conv(1, 2, 4, 5, 2, 2, 3, 1, 0, 1); // non-square kernel, no padding
    check_conv(1, 3, 9, 9, 2, 7, 7, 2, 3, 0); // 7x7 stride-2 pad-3 stem
    check_conv(2, 2, 5, 4, 3, 3, 3, 3, 2, 1); // stride 3, pad 2: windows hang off both edges
}

static void conv2d_forward_matches_hand_computed_values(void **state) {
    (void)state;
    assert_int_equal(ref_conv2d_out_size(32, 3, 1, 1), 32);
    assert_int_equal(ref_conv2d_out_size(32, 3, 2, 1), 16);
    assert_int_equal(ref_conv2d_out_size(7, 3, 2, 1), 4);
    assert_int_equal(ref_conv2d_out_size(224, 7, 2, 3), 112);
    assert_int_equal(ref_conv2d_out_size(6, 1, 2, 0), 3);

    // x (1,1,3,3) = 1..9
    const double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    // all-ones 3x3 kernel, pad 1: each output is the sum of its 3x3 neighbourhood, + bias 0.5
    const double ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const double bias = 0.5;
    double y[9];
    ref_conv2d_forward(y, x, ones, &bias, 1, 1, 3, 3, 1, 3, 3, 1, 1);
    const double want_sum[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++) assert_close(y[i], want_sum[i] + 0.5, 0.0, "conv sum");
    // the same with stride 2: outputs at (0,0), (0,2), (2,0), (2,2)
    ref_conv2d_forward(y, x, ones, NULL, 1, 1, 3, 3, 1, 3, 3, 2, 1);
    const double want_s2[4] = {12, 16, 24, 28};
    for (int i = 0; i < 4; i++) assert_close(y[i], want_s2[i], 0.0, "conv stride 2");
    // cross-correlation, not convolution: a kernel with a single 1 right of centre
    // reads x[h][w+1] (the kernel is NOT flipped); out of bounds reads 0
    const double right[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    ref_conv2d_forward(y, x, right, NULL, 1, 1, 3, 3, 1, 3, 3, 1, 1);
    const double want_shift[9] = {2, 3, 0, 5, 6, 0, 8, 9, 0};
    for (int i = 0; i < 9; i++) assert_close(y[i], want_shift[i], 0.0, "conv orientation");
    // two input channels, two output channels, 1x1 kernel: a channel mix
    // x (1,2,1,2) = [[1,2],[3,4]], w (2,2,1,1) = [[1,10],[-1,0.5]], b = [0, 1]
    const double x2[4] = {1, 2, 3, 4}, w2[4] = {1, 10, -1, 0.5}, b2[2] = {0, 1};
    ref_conv2d_forward(y, x2, w2, b2, 1, 2, 1, 2, 2, 1, 1, 1, 0);
    const double want_mix[4] = {1 + 30, 2 + 40, -1 + 1.5 + 1, -2 + 2 + 1};
    for (int i = 0; i < 4; i++) assert_close(y[i], want_mix[i], 0.0, "conv channel mix");
}

// ----------------------------------------------------------------------------
// batchnorm

typedef struct {
    int N, C, HW;
    double eps;
    double *x, *gamma, *beta, *y, *g;
} bn_ctx;

static double bn_objective(void *p) {
    bn_ctx *c = p;
    ref_batchnorm_forward_train(c->y, NULL, NULL, NULL, NULL, c->x, c->gamma, c->beta,
                                c->N, c->C, c->HW, c->eps, 0.1, 0);
    return dot(c->y, c->g, (size_t)c->N * c->C * c->HW);
}

static void check_bn(int N, int C, int HW) {
    bn_ctx c = {N, C, HW, 1e-5, NULL, NULL, NULL, NULL, NULL};
    size_t n = (size_t)N * C * HW;
    c.x = rand_array(n, -2, 3);
    c.gamma = rand_array(C, 0.5, 1.5);
    c.beta = rand_array(C, -1, 1);
    c.y = malloc(n * sizeof(double));
    c.g = rand_array(n, -1, 1);
    double *mean = garbage_array(C), *invstd = garbage_array(C);
    ref_batchnorm_forward_train(c.y, mean, invstd, NULL, NULL, c.x, c.gamma, c.beta,
                                N, C, HW, c.eps, 0.1, 0);
    double *dx = garbage_array(n), *dgamma = garbage_array(C), *dbeta = garbage_array(C);
    ref_batchnorm_backward(dx, dgamma, dbeta, c.g, c.x, mean, invstd, c.gamma, N, C, HW);
    check_gradient("batchnorm dx", bn_objective, &c, c.x, dx, n);
    check_gradient("batchnorm dgamma", bn_objective, &c, c.gamma, dgamma, C);
    check_gradient("batchnorm dbeta", bn_objective, &c, c.beta, dbeta, C);
    double *dx2 = garbage_array(n), *dgamma2 = garbage_array(C);
    ref_batchnorm_backward(dx2, NULL, NULL, c.g, c.x, mean, invstd, c.gamma, N, C, HW);
    ref_batchnorm_backward(NULL, dgamma2, NULL, c.g, c.x, mean, invstd, c.gamma, N, C, HW);
    assert_arrays_equal(dx2, dx, n, "batchnorm dx alone");
    assert_arrays_equal(dgamma2, dgamma, C, "batchnorm dgamma alone");
    free(c.x); free(c.gamma); free(c.beta); free(c.y); free(c.g); free(mean); free(invstd);
    free(dx); free(dgamma); free(dbeta); free(dx2); free(dgamma2);
}

static void batchnorm_backward_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(2);
    check_bn(2, 3, 5);  // 3 channels
    check_bn(1, 1, 7);  // batch 1, 1 channel (statistics over the spatial plane)
    check_bn(3, 2, 1);  // HW = 1: statistics over the batch only
    check_bn(4, 3, 9);  // 3x3 planes
}

static void batchnorm_training_updates_running_stats_with_unbiased_variance(void **state) {
    (void)state;
    // x (N=2, C=1, HW=2) = [1,2 | 3,4]: mean 2.5, biased var 1.25, unbiased var 5/3
    const double x[4] = {1, 2, 3, 4}, gamma = 2.0, beta = 0.5, eps = 1e-5;
    double y[4], mean, invstd, rmean = 0.0, rvar = 1.0;
    ref_batchnorm_forward_train(y, &mean, &invstd, &rmean, &rvar, x, &gamma, &beta,
                                2, 1, 2, eps, 0.1, 1);
    assert_close(mean, 2.5, 1e-15, "save_mean");
    assert_close(invstd, 1.0 / sqrt(1.25 + eps), 1e-15, "save_invstd (biased variance)");
    for (int i = 0; i < 4; i++)
        assert_close(y[i], (x[i] - 2.5) / sqrt(1.25 + eps) * 2.0 + 0.5, 1e-14, "bn train y");
    assert_close(rmean, 0.9 * 0.0 + 0.1 * 2.5, 1e-15, "running_mean");
    assert_close(rvar, 0.9 * 1.0 + 0.1 * (5.0 / 3.0), 1e-15, "running_var (unbiased)");
    // update_running = 0 (a masked batch with --mask-bn-stats skip) leaves them alone
    double rmean2 = 0.7, rvar2 = 0.3;
    ref_batchnorm_forward_train(y, NULL, NULL, &rmean2, &rvar2, x, &gamma, &beta,
                                2, 1, 2, eps, 0.1, 0);
    assert_close(rmean2, 0.7, 0.0, "running_mean untouched");
    assert_close(rvar2, 0.3, 0.0, "running_var untouched");
    // two channels: each has its own statistics. x (N=1, C=2, HW=3)
    const double x2[6] = {0, 3, 6, 10, 10, 10}, g2[2] = {1, 1}, b2[2] = {0, 0};
    double y2[6], rm[2] = {0, 0}, rv[2] = {0, 0};
    ref_batchnorm_forward_train(y2, NULL, NULL, rm, rv, x2, g2, b2, 1, 2, 3, 0.0, 1.0, 1);
    assert_close(rm[0], 3.0, 1e-15, "channel 0 mean");
    assert_close(rv[0], 9.0, 1e-15, "channel 0 unbiased var (18/2)");
    assert_close(rm[1], 10.0, 1e-15, "channel 1 mean");
    assert_close(rv[1], 0.0, 1e-15, "channel 1 var");
    assert_close(y2[0], -3.0 / sqrt(6.0), 1e-15, "channel 0 y (biased var 6)");
}

static void batchnorm_eval_uses_running_stats(void **state) {
    (void)state;
    // x (N=2, C=2, HW=1); channel 0: mean 1, var 4; channel 1: mean -1, var 0.25
    const double x[4] = {3, 0, -1, 1}, gamma[2] = {2, 1}, beta[2] = {0, 1};
    const double rmean[2] = {1, -1}, rvar[2] = {4, 0.25};
    double y[4];
    ref_batchnorm_forward_eval(y, x, gamma, beta, rmean, rvar, 2, 2, 1, 0.0);
    assert_close(y[0], (3 - 1) / 2.0 * 2 + 0, 1e-15, "eval [0,0]");
    assert_close(y[1], (0 + 1) / 0.5 * 1 + 1, 1e-15, "eval [0,1]");
    assert_close(y[2], (-1 - 1) / 2.0 * 2 + 0, 1e-15, "eval [1,0]");
    assert_close(y[3], (1 + 1) / 0.5 * 1 + 1, 1e-15, "eval [1,1]");
}

// ----------------------------------------------------------------------------
// pointwise

typedef struct {
    int n;
    double *x, *y, *g;
} relu_ctx;

static double relu_objective(void *p) {
    relu_ctx *c = p;
    ref_relu_forward(c->y, c->x, c->n);
    return dot(c->y, c->g, c->n);
}

static void relu_backward_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(3);
    relu_ctx c = {37, NULL, NULL, NULL};
    c.x = rand_array(c.n, -1, 1);
    for (int i = 0; i < c.n; i++)
        if (fabs(c.x[i]) < 1e-3) c.x[i] = 0.5; // keep away from the kink
    c.y = malloc(c.n * sizeof(double));
    c.g = rand_array(c.n, -1, 1);
    double *dx = garbage_array(c.n);
    ref_relu_backward(dx, c.g, c.x, c.n);
    check_gradient("relu dx", relu_objective, &c, c.x, dx, c.n);
    free(c.x); free(c.y); free(c.g); free(dx);
}

static void relu_and_add_forward_match_hand_computed_values(void **state) {
    (void)state;
    const double x[4] = {-1.5, 0.0, 2.0, -0.0}, dy[4] = {1, 2, 3, 4};
    double y[4], dx[4];
    ref_relu_forward(y, x, 4);
    assert_close(y[0], 0, 0, "relu(-1.5)");
    assert_close(y[1], 0, 0, "relu(0)");
    assert_close(y[2], 2, 0, "relu(2)");
    ref_relu_backward(dx, dy, x, 4);
    assert_close(dx[0], 0, 0, "relu'(-1.5)");
    assert_close(dx[1], 0, 0, "relu'(0) is 0");
    assert_close(dx[2], 3, 0, "relu'(2)");
    assert_close(dx[3], 0, 0, "relu'(-0) is 0");
    const double a[3] = {1, 2, 3}, b[3] = {0.5, -2, 10};
    double s[3];
    ref_add_forward(s, a, b, 3);
    assert_close(s[0], 1.5, 0, "add");
    assert_close(s[1], 0, 0, "add");
    assert_close(s[2], 13, 0, "add");
}

// ----------------------------------------------------------------------------
// pooling

typedef struct {
    int N, C, H, W, k, stride, pad;
    double *x, *y, *g;
} pool_ctx;

static size_t pool_ysize(const pool_ctx *c) {
    return (size_t)c->N * c->C * ref_conv2d_out_size(c->H, c->k, c->stride, c->pad)
         * ref_conv2d_out_size(c->W, c->k, c->stride, c->pad);
}

static double maxpool_objective(void *p) {
    pool_ctx *c = p;
    ref_maxpool_forward(c->y, NULL, c->x, c->N, c->C, c->H, c->W, c->k, c->stride, c->pad);
    return dot(c->y, c->g, pool_ysize(c));
}

static void check_maxpool(int N, int C, int H, int W, int k, int stride, int pad) {
    pool_ctx c = {N, C, H, W, k, stride, pad, NULL, NULL, NULL};
    size_t nx = (size_t)N * C * H * W, ny = pool_ysize(&c);
    c.x = rand_array(nx, -1, 1); // continuous random values: no ties
    c.y = malloc(ny * sizeof(double));
    c.g = rand_array(ny, -1, 1);
    int *argmax = malloc(ny * sizeof(int));
    ref_maxpool_forward(c.y, argmax, c.x, N, C, H, W, k, stride, pad);
    for (size_t i = 0; i < ny; i++) assert_true(argmax[i] >= 0 && argmax[i] < H * W);
    double *dx = garbage_array(nx);
    ref_maxpool_backward(dx, c.g, argmax, N, C, H, W, k, stride, pad);
    check_gradient("maxpool dx", maxpool_objective, &c, c.x, dx, nx);
    free(c.x); free(c.y); free(c.g); free(argmax); free(dx);
}

static void maxpool_backward_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(4);
    //            N  C  H  W  k  stride pad
    check_maxpool(2, 3, 7, 7, 3, 2, 1); // overlapping windows (ResNet stem pool)
    check_maxpool(1, 1, 6, 5, 2, 2, 0); // tiling windows, odd width (last column dropped)
    check_maxpool(1, 2, 5, 6, 3, 1, 1); // heavy overlap
    check_maxpool(2, 1, 8, 9, 3, 2, 1); // even/odd sizes, batch 2
}

static void maxpool_forward_tie_goes_to_first_and_padding_never_wins(void **state) {
    (void)state;
    double y[4];
    int am[4];
    // all equal: the first element of the window wins
    const double flat[4] = {3, 3, 3, 3};
    ref_maxpool_forward(y, am, flat, 1, 1, 2, 2, 2, 2, 0);
    assert_close(y[0], 3, 0, "tie value");
    assert_int_equal(am[0], 0);
    // window [1 5 / 5 2]: the first 5 (row-major) wins
    const double tie[4] = {1, 5, 5, 2};
    ref_maxpool_forward(y, am, tie, 1, 1, 2, 2, 2, 2, 0);
    assert_close(y[0], 5, 0, "tie max");
    assert_int_equal(am[0], 1);
    // window [1 2 / 5 5]: the first 5 in row-major order is at (1,0)
    const double tie2[4] = {1, 2, 5, 5};
    ref_maxpool_forward(y, am, tie2, 1, 1, 2, 2, 2, 2, 0);
    assert_int_equal(am[0], 2);
    // all negative, pad 1: padding (which would be 0) never wins
    // x (3x3) = -1..-9, k 3 stride 2 pad 1 -> 2x2 outputs
    const double neg[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    ref_maxpool_forward(y, am, neg, 1, 1, 3, 3, 3, 2, 1);
    const double want_y[4] = {-1, -2, -4, -5};
    const int want_am[4] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++) {
        assert_close(y[i], want_y[i], 0, "padded max");
        assert_int_equal(am[i], want_am[i]);
    }
    // argmax may be NULL
    ref_maxpool_forward(y, NULL, neg, 1, 1, 3, 3, 3, 2, 1);
    assert_close(y[3], -5, 0, "no argmax");
    // overlapping windows that pick the same element: its gradient is the sum
    // x (1x3) = [0 9 0], k 3 stride 1 pad 1 -> all 3 windows pick x[1]
    const double peak[3] = {0, 9, 0}, dy[3] = {1, 10, 100};
    double dx[3];
    ref_maxpool_forward(y, am, peak, 1, 1, 1, 3, 3, 1, 1);
    ref_maxpool_backward(dx, dy, am, 1, 1, 1, 3, 3, 1, 1);
    assert_close(dx[0], 0, 0, "overlap dx[0]");
    assert_close(dx[1], 111, 0, "overlap dx[1] sums");
    assert_close(dx[2], 0, 0, "overlap dx[2]");
}

static double gap_objective(void *p) {
    pool_ctx *c = p;
    ref_global_avgpool_forward(c->y, c->x, c->N, c->C, c->H * c->W);
    return dot(c->y, c->g, (size_t)c->N * c->C);
}

static void global_avgpool_backward_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(5);
    pool_ctx c = {3, 2, 3, 5, 0, 0, 0, NULL, NULL, NULL};
    size_t nx = (size_t)c.N * c.C * c.H * c.W, ny = (size_t)c.N * c.C;
    c.x = rand_array(nx, -1, 1);
    c.y = malloc(ny * sizeof(double));
    c.g = rand_array(ny, -1, 1);
    double *dx = garbage_array(nx);
    ref_global_avgpool_backward(dx, c.g, c.N, c.C, c.H * c.W);
    check_gradient("global avgpool dx", gap_objective, &c, c.x, dx, nx);
    // hand values: x (1,2,4) -> y (1,2)
    const double x[8] = {1, 2, 3, 6, -1, -1, 0, 10};
    double y[2];
    ref_global_avgpool_forward(y, x, 1, 2, 4);
    assert_close(y[0], 3.0, 0, "gap[0]");
    assert_close(y[1], 2.0, 0, "gap[1]");
    free(c.x); free(c.y); free(c.g); free(dx);
}

// ----------------------------------------------------------------------------
// linear

typedef struct {
    int N, IN, OUT;
    double *x, *w, *b, *y, *g;
} linear_ctx;

static double linear_objective(void *p) {
    linear_ctx *c = p;
    ref_linear_forward(c->y, c->x, c->w, c->b, c->N, c->IN, c->OUT);
    return dot(c->y, c->g, (size_t)c->N * c->OUT);
}

static void check_linear(int N, int IN, int OUT, int bias) {
    linear_ctx c = {N, IN, OUT, NULL, NULL, NULL, NULL, NULL};
    size_t nx = (size_t)N * IN, nw = (size_t)OUT * IN, ny = (size_t)N * OUT;
    c.x = rand_array(nx, -1, 1);
    c.w = rand_array(nw, -1, 1);
    c.b = bias ? rand_array(OUT, -1, 1) : NULL;
    c.y = malloc(ny * sizeof(double));
    c.g = rand_array(ny, -1, 1);
    double *dx = garbage_array(nx), *dw = garbage_array(nw), *db = garbage_array(OUT);
    ref_linear_backward(dx, dw, bias ? db : NULL, c.g, c.x, c.w, N, IN, OUT);
    check_gradient("linear dx", linear_objective, &c, c.x, dx, nx);
    check_gradient("linear dw", linear_objective, &c, c.w, dw, nw);
    if (bias) check_gradient("linear db", linear_objective, &c, c.b, db, OUT);
    double *dw2 = garbage_array(nw);
    ref_linear_backward(NULL, dw2, NULL, c.g, c.x, c.w, N, IN, OUT);
    assert_arrays_equal(dw2, dw, nw, "linear dw alone");
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.g);
    free(dx); free(dw); free(db); free(dw2);
}

static void linear_backward_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(6);
    check_linear(3, 5, 4, 1);
    check_linear(1, 1, 3, 0); // batch 1, one input, no bias
    check_linear(4, 7, 10, 1);
}

static void linear_forward_matches_hand_computed_values(void **state) {
    (void)state;
    // x (2,2), w (3,2), b (3)
    const double x[4] = {1, 2, -1, 0.5}, w[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0, 0, 1};
    double y[6];
    ref_linear_forward(y, x, w, b, 2, 2, 3);
    const double want[6] = {1, 2, 4, -1, 0.5, 0.5};
    for (int i = 0; i < 6; i++) assert_close(y[i], want[i], 0, "linear y");
}

// ----------------------------------------------------------------------------
// loss

typedef struct {
    int B, NC;
    const int *labels;
    enum ref_ce_target target;
    double smoothing;
    double *z;
} ce_ctx;

static double ce_objective(void *p) {
    ce_ctx *c = p;
    return ref_cross_entropy(NULL, NULL, NULL, NULL, c->z, c->labels, c->B, c->NC,
                             c->target, c->smoothing);
}

static void check_ce(int B, int NC, enum ref_ce_target target, double smoothing) {
    int *labels = malloc(B * sizeof(int));
    for (int b = 0; b < B; b++) labels[b] = (int)(rng_next() % (uint64_t)NC);
    ce_ctx c = {B, NC, labels, target, smoothing, rand_array((size_t)B * NC, -3, 3)};
    double *dz = garbage_array((size_t)B * NC);
    double loss = ref_cross_entropy(dz, NULL, NULL, NULL, c.z, labels, B, NC, target, smoothing);
    assert_true(loss > 0.0);
    check_gradient("cross-entropy dlogits", ce_objective, &c, c.z, dz, (size_t)B * NC);
    // every row of dlogits sums to 0 (softmax and the target both sum to 1)
    for (int b = 0; b < B; b++) {
        double s = 0.0;
        for (int j = 0; j < NC; j++) s += dz[b * NC + j];
        assert_close(s, 0.0, 1e-15, "dlogits row sum");
    }
    free(labels); free(c.z); free(dz);
}

static void cross_entropy_gradient_matches_finite_differences(void **state) {
    (void)state;
    rng_seed(7);
    check_ce(3, 5, REF_CE_LABEL, 0.0);
    check_ce(1, 10, REF_CE_LABEL, 0.0);
    check_ce(3, 5, REF_CE_LABEL, 0.1);
    check_ce(2, 10, REF_CE_LABEL, 0.25);
    check_ce(3, 5, REF_CE_UNIFORM, 0.0);
    check_ce(1, 10, REF_CE_UNIFORM, 0.0);
}

static void cross_entropy_forward_matches_hand_computed_values(void **state) {
    (void)state;
    // two equal logits: p = (1/2, 1/2), loss ln 2 for any target, argmax tie -> class 0
    const double z0[2] = {0, 0};
    const int l0[1] = {1};
    double dz[6], sl[2], mp[2];
    int nc = -1;
    double loss = ref_cross_entropy(dz, sl, mp, &nc, z0, l0, 1, 2, REF_CE_LABEL, 0.0);
    assert_close(loss, log(2.0), 1e-15, "ln 2");
    assert_close(dz[0], 0.5, 1e-15, "dz[0] = p - 0");
    assert_close(dz[1], -0.5, 1e-15, "dz[1] = p - 1");
    assert_close(mp[0], 0.5, 1e-15, "maxprob");
    assert_int_equal(nc, 0); // argmax 0 (tie, lowest index) != label 1

    // logits (2,3) = [[1,2,3],[0.5,0.5,-1]], labels [2,0]; second row ties 0/1 -> 0: correct
    const double z[6] = {1, 2, 3, 0.5, 0.5, -1};
    const int labels[2] = {2, 0};
    // row losses: lse_b - z_b[label]; mean over the batch
    double lse0 = log(exp(1.0) + exp(2.0) + exp(3.0));
    double lse1 = log(2.0 * exp(0.5) + exp(-1.0));
    loss = ref_cross_entropy(dz, sl, mp, &nc, z, labels, 2, 3, REF_CE_LABEL, 0.0);
    assert_close(sl[0], lse0 - 3.0, 1e-15, "sample loss 0");
    assert_close(sl[1], lse1 - 0.5, 1e-15, "sample loss 1");
    assert_close(loss, ((lse0 - 3.0) + (lse1 - 0.5)) / 2, 1e-15, "mean loss");
    assert_close(loss, 0.6032610746430531, 1e-15, "mean loss (Python)");
    assert_close(mp[0], exp(3.0 - lse0), 1e-15, "maxprob 0");
    assert_close(mp[1], exp(0.5 - lse1), 1e-15, "maxprob 1");
    assert_int_equal(nc, 2);
    assert_close(dz[2], (exp(3.0 - lse0) - 1.0) / 2, 1e-15, "dz label entry");
    assert_close(dz[4], exp(0.5 - lse1) / 2, 1e-15, "dz non-label entry");

    // label smoothing 0.1, 3 classes: target = 0.9*onehot + 0.1/3
    loss = ref_cross_entropy(dz, sl, NULL, NULL, z, labels, 2, 3, REF_CE_LABEL, 0.1);
    double t_hi = 0.9 + 0.1 / 3, t_lo = 0.1 / 3;
    assert_close(sl[0], lse0 - (t_lo * 1 + t_lo * 2 + t_hi * 3), 1e-15, "smoothed loss 0");
    assert_close(sl[1], lse1 - (t_hi * 0.5 + t_lo * 0.5 + t_lo * -1), 1e-15, "smoothed loss 1");
    assert_close(loss, 0.6782610746430532, 1e-15, "smoothed mean loss (Python)");
    assert_close(dz[2], (exp(3.0 - lse0) - t_hi) / 2, 1e-15, "smoothed dz label");
    assert_close(dz[0], (exp(1.0 - lse0) - t_lo) / 2, 1e-15, "smoothed dz other");

    // uniform target: logsumexp(z) - mean_c(z), gradient (softmax - 1/C)/B; labels unused
    loss = ref_cross_entropy(dz, sl, NULL, NULL, z, NULL, 2, 3, REF_CE_UNIFORM, 0.3);
    assert_close(sl[0], lse0 - 2.0, 1e-15, "uniform loss 0");
    assert_close(sl[1], lse1 - 0.0, 1e-15, "uniform loss 1");
    assert_close(loss, 1.3532610746430531, 1e-15, "uniform mean loss (Python)");
    assert_close(dz[5], (exp(-1.0 - lse1) - 1.0 / 3) / 2, 1e-15, "uniform dz");

    // numerically stable: huge logits do not overflow
    const double big[2] = {1000.0, 1000.0 + log(3.0)};
    const int lb[1] = {1};
    loss = ref_cross_entropy(dz, NULL, mp, NULL, big, lb, 1, 2, REF_CE_LABEL, 0.0);
    assert_close(loss, log(4.0 / 3.0), 1e-12, "stable loss");
    assert_close(mp[0], 0.75, 1e-12, "stable maxprob");
}

// ----------------------------------------------------------------------------
// anchoring

static void anchored_training_input_has_reference_then_residual(void **state) {
    (void)state;
    // x (B=3, C=1, HW=2): sample b is [10b+1, 10b+2]; refs: 0 <- 2, 1 <- 1 (itself), 2 <- 0
    const double x[6] = {1, 2, 11, 12, 21, 22};
    const int ref[3] = {2, 1, 0};
    double out[12];
    ref_anchor_train_input(out, x, ref, 0, 3, 1, 2);
    const double want[12] = {
        21, 22, 1 - 21, 2 - 22,  // b=0: [x2, x0 - x2]
        11, 12, 0, 0,            // b=1: [x1, x1 - x1]
        1, 2, 21 - 1, 22 - 2,    // b=2: [x0, x2 - x0]
    };
    for (int i = 0; i < 12; i++) assert_close(out[i], want[i], 0, "anchored input");
    // masked: reference half zero, residual still against the real reference
    ref_anchor_train_input(out, x, ref, 1, 3, 1, 2);
    const double want_m[12] = {0, 0, -20, -20, 0, 0, 0, 0, 0, 0, 20, 20};
    for (int i = 0; i < 12; i++) assert_close(out[i], want_m[i], 0, "masked anchored input");
    // C = 2: channel order is [ref c0, ref c1, res c0, res c1]
    // x (B=2, C=2, HW=1) = [[1,2],[5,7]], ref = [1, 0]
    const double x2[4] = {1, 2, 5, 7};
    const int ref2[2] = {1, 0};
    double out2[8];
    ref_anchor_train_input(out2, x2, ref2, 0, 2, 2, 1);
    const double want2[8] = {5, 7, -4, -5, 1, 2, 4, 5};
    for (int i = 0; i < 8; i++) assert_close(out2[i], want2[i], 0, "anchored input C=2");
}

static void anchored_inference_input_is_reference_major(void **state) {
    (void)state;
    // x (B=2, C=1, HW=1) = [1, 2], refs (K=3, C=1, HW=1) = [10, 20, 30]
    // row k*B + b = [refs[k], x[b] - refs[k]]
    const double x[2] = {1, 2}, refs[3] = {10, 20, 30};
    double out[12];
    ref_anchor_infer_input(out, x, refs, 3, 2, 1, 1);
    const double want[12] = {10, -9, 10, -8, 20, -19, 20, -18, 30, -29, 30, -28};
    for (int i = 0; i < 12; i++) assert_close(out[i], want[i], 0, "K-anchor input");
}

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

static void anchor_reduce_matches_hand_computed_values(void **state) {
    (void)state;
    // K=2, B=2, NC=2. logits row k*B + b.
    // b=0: k=0 -> [0, 2], k=1 -> [1, -2];  b=1: identical for both k -> zero uncertainty
    const double logits[8] = {0, 2, 3, -1, 1, -2, 3, -1};
    double mean[4], unc[2], cal[4];
    ref_anchor_reduce(mean, unc, cal, logits, 2, 2, 2);
    assert_close(mean[0], 0.5, 0, "mean [0,0]");
    assert_close(mean[1], 0.0, 0, "mean [0,1]");
    assert_close(mean[2], 3.0, 0, "mean [1,0]");
    assert_close(mean[3], -1.0, 0, "mean [1,1]");
    // the sample std of two values is |a - b| / sqrt(2); then mean over the 2 classes
    double u0 = (fabs(sigmoid(0) - sigmoid(1)) + fabs(sigmoid(2) - sigmoid(-2))) / sqrt(2) / 2;
    assert_close(unc[0], u0, 1e-15, "uncertainty 0");
    // Python: (statistics.stdev([s(0), s(1)]) + statistics.stdev([s(2), s(-2)])) / 2, s the sigmoid
    assert_close(unc[0], 0.35095573999448393, 1e-15, "uncertainty 0 (Python's sample stdev)");
    assert_close(unc[1], 0.0, 1e-15, "uncertainty 1");
    assert_close(cal[0], 0.5 / (1 + exp(u0)), 1e-15, "calibrated [0,0]");
    assert_close(cal[2], 3.0 / 2.0, 1e-15, "calibrated [1,0] = mean / (1 + e^0)");
    // K = 1: mean = logits, uncertainty 0; uncertainty/calibrated may be NULL
    double m1[8], u1[4];
    ref_anchor_reduce(m1, NULL, NULL, logits, 1, 4, 2);
    for (int i = 0; i < 8; i++) assert_close(m1[i], logits[i], 0, "K=1 mean");
    ref_anchor_reduce(m1, u1, NULL, logits, 1, 4, 2);
    for (int b = 0; b < 4; b++) assert_close(u1[b], 0.0, 0, "K=1 uncertainty");
    // K = 3: the sample std divides by K - 1, as torch.std does. sigmoid values s_k for one class
    const double l3[3] = {-1, 0, 2};
    double m3, u3;
    ref_anchor_reduce(&m3, &u3, NULL, l3, 3, 1, 1);
    double s0 = sigmoid(-1), s1 = sigmoid(0), s2 = sigmoid(2), sm = (s0 + s1 + s2) / 3;
    double sample = sqrt(((s0 - sm) * (s0 - sm) + (s1 - sm) * (s1 - sm) + (s2 - sm) * (s2 - sm)) / 2);
    assert_close(m3, 1.0 / 3.0, 1e-15, "K=3 mean");
    assert_close(u3, sample, 1e-15, "K=3 sample std");
}

// ----------------------------------------------------------------------------
// optimizers

static void sgd_step_matches_hand_computed_values(void **state) {
    (void)state;
    // lr 0.1, momentum 0.9, weight decay 0.01, w0 = 1, grads 0.5 then 0.5
    double w = 1.0, buf = 0.0, g = 0.5;
    ref_sgd_step(&w, &buf, &g, 1, 0.1, 0.9, 0.01, 0);
    // g = 0.5 + 0.01 = 0.51; buf = 0.51; w = 1 - 0.051
    assert_close(buf, 0.51, 1e-15, "sgd buf 1");
    assert_close(w, 0.949, 1e-15, "sgd w 1");
    ref_sgd_step(&w, &buf, &g, 1, 0.1, 0.9, 0.01, 0);
    // g = 0.5 + 0.00949 = 0.50949; buf = 0.459 + 0.50949 = 0.96849; w = 0.949 - 0.096849
    assert_close(buf, 0.96849, 1e-15, "sgd buf 2");
    assert_close(w, 0.852151, 1e-15, "sgd w 2");
    // nesterov: g = 0.51; buf = 0.51; g = 0.51 + 0.9*0.51 = 0.969; w = 1 - 0.0969
    w = 1.0; buf = 0.0;
    ref_sgd_step(&w, &buf, &g, 1, 0.1, 0.9, 0.01, 1);
    assert_close(buf, 0.51, 1e-15, "nesterov buf 1");
    assert_close(w, 0.9031, 1e-15, "nesterov w 1");
    // second nesterov step: g = 0.5 + 0.009031 = 0.509031; buf = 0.459 + 0.509031 = 0.968031
    // g = 0.509031 + 0.9*0.968031 = 1.3802589; w = 0.9031 - 0.13802589 = 0.76507411
    ref_sgd_step(&w, &buf, &g, 1, 0.1, 0.9, 0.01, 1);
    assert_close(buf, 0.968031, 1e-15, "nesterov buf 2");
    assert_close(w, 0.76507411, 1e-15, "nesterov w 2");
    // momentum 0: plain SGD, buf may be NULL. w = 2 - 0.5 * (1 + 0.1*2) = 1.4
    double w2[2] = {2.0, -1.0}, g2[2] = {1.0, 0.0};
    ref_sgd_step(w2, NULL, g2, 2, 0.5, 0.0, 0.1, 0);
    assert_close(w2[0], 1.4, 1e-15, "plain sgd w[0]");
    assert_close(w2[1], -1.0 + 0.5 * 0.1, 1e-15, "plain sgd w[1] (decay only)");
}

static void adamw_steps_match_hand_computed_values(void **state) {
    (void)state;
    // lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, w0 = 1
    double w = 1.0, m = 0.0, v = 0.0, g = 0.5;
    ref_adamw_step(&w, &m, &v, &g, 1, 0.01, 0.9, 0.999, 1e-8, 0.01, 1);
    // w = 1*(1 - 1e-4) = 0.9999; m = 0.05; v = 0.00025; mhat = 0.5; vhat = 0.25
    // w = 0.9999 - 0.01 * 0.5 / (0.5 + 1e-8) = 0.9999 - 0.01/(1 + 2e-8)
    assert_close(m, 0.05, 1e-15, "adamw m 1");
    assert_close(v, 0.00025, 1e-17, "adamw v 1");
    assert_close(w, 0.9999 - 0.01 / (1 + 2e-8), 1e-15, "adamw w 1");
    assert_close(w, 0.9899000002, 1e-15, "adamw w 1 (Python)");
    // step 2, g = -0.25: m = 0.045 - 0.025 = 0.02; v = 0.00024975 + 0.0000625 = 0.00031225
    g = -0.25;
    ref_adamw_step(&w, &m, &v, &g, 1, 0.01, 0.9, 0.999, 1e-8, 0.01, 2);
    assert_close(m, 0.02, 1e-15, "adamw m 2");
    assert_close(v, 0.00031225, 1e-17, "adamw v 2");
    double w_expect = 0.9899000002 * (1 - 1e-4)
                    - 0.01 * (0.02 / (1 - 0.81)) / (sqrt(0.00031225 / (1 - 0.998001)) + 1e-8);
    assert_close(w, w_expect, 1e-14, "adamw w 2");
    assert_close(w, 0.9871376398707646, 1e-14, "adamw w 2 (Python)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv2d_backward_matches_finite_differences),
        cmocka_unit_test(conv2d_forward_matches_hand_computed_values),
        cmocka_unit_test(batchnorm_backward_matches_finite_differences),
        cmocka_unit_test(batchnorm_training_updates_running_stats_with_unbiased_variance),
        cmocka_unit_test(batchnorm_eval_uses_running_stats),
        cmocka_unit_test(relu_backward_matches_finite_differences),
        cmocka_unit_test(relu_and_add_forward_match_hand_computed_values),
        cmocka_unit_test(maxpool_backward_matches_finite_differences),
        cmocka_unit_test(maxpool_forward_tie_goes_to_first_and_padding_never_wins),
        cmocka_unit_test(global_avgpool_backward_matches_finite_differences),
        cmocka_unit_test(linear_backward_matches_finite_differences),
        cmocka_unit_test(linear_forward_matches_hand_computed_values),
        cmocka_unit_test(cross_entropy_gradient_matches_finite_differences),
        cmocka_unit_test(cross_entropy_forward_matches_hand_computed_values),
        cmocka_unit_test(anchored_training_input_has_reference_then_residual),
        cmocka_unit_test(anchored_inference_input_is_reference_major),
        cmocka_unit_test(anchor_reduce_matches_hand_computed_values),
        cmocka_unit_test(sgd_step_matches_hand_computed_values),
        cmocka_unit_test(adamw_steps_match_hand_computed_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
