// ref_batchnorm.c: 2-D batch normalization (PyTorch BatchNorm2d semantics).
// x, y, dx, dy (N,C,HW); gamma, beta, means, variances (C). Statistics per channel c
// over the n = N*HW values x[i,c,j].
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include "ref_ops.h"

#define BN_AT(i, c, j) (((size_t)(i) * C + (c)) * HW + (j)) // index of [i,c,j] in (N,C,HW)

void ref_batchnorm_forward_train(double *y, double *save_mean, double *save_invstd,
                                 double *running_mean, double *running_var,
                                 const double *x, const double *gamma, const double *beta,
                                 int N, int C, int HW, double eps, double momentum,
                                 int update_running) {
    double n = (double)N * HW;
    assert(!update_running || N * HW > 1); // unbiased variance needs n > 1
    for (int c = 0; c < C; c++) {
        // mean = sum(x) / n
        double sum = 0.0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) sum += x[BN_AT(i, c, j)];
        double mean = sum / n;
        // var = sum((x - mean)^2) / n   (biased: this is what normalizes)
        double ss = 0.0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double d = x[BN_AT(i, c, j)] - mean;
                ss += d * d;
            }
        double var = ss / n;
        double invstd = 1.0 / sqrt(var + eps);
        // y = (x - mean) * invstd * gamma + beta
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double xhat = (x[BN_AT(i, c, j)] - mean) * invstd;
                y[BN_AT(i, c, j)] = xhat * gamma[c] + beta[c];
            }
        if (save_mean != NULL) save_mean[c] = mean;
        if (save_invstd != NULL) save_invstd[c] = invstd;
        if (update_running) {
            double var_unbiased = ss / (n - 1.0);
            running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean;
            running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var_unbiased;
        }
    }
}

void ref_batchnorm_forward_eval(double *y, const double *x, const double *gamma,
                                const double *beta, const double *running_mean,
                                const double *running_var, int N, int C, int HW, double eps) {
    for (int c = 0; c < C; c++) {
        double invstd = 1.0 / sqrt(running_var[c] + eps);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double xhat = (x[BN_AT(i, c, j)] - running_mean[c]) * invstd;
                y[BN_AT(i, c, j)] = xhat * gamma[c] + beta[c];
            }
    }
}

// Forward (per channel, n = N*HW):  xhat = (x - mean) * invstd;  y = xhat * gamma + beta,
// with mean and invstd = 1/sqrt(var_biased + eps) themselves functions of x. Then
//   dbeta  = sum(dy)
//   dgamma = sum(dy * xhat)
//   dx     = gamma * invstd / n * (n * dy - dbeta - xhat * dgamma)
// (the last two terms are the gradient flowing through mean and var).
void ref_batchnorm_backward(double *dx, double *dgamma, double *dbeta,
                            const double *dy, const double *x, const double *save_mean,
                            const double *save_invstd, const double *gamma,
                            int N, int C, int HW) {
    double n = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double xhat = (x[BN_AT(i, c, j)] - mean) * invstd;
                sum_dy += dy[BN_AT(i, c, j)];
                sum_dy_xhat += dy[BN_AT(i, c, j)] * xhat;
            }
        // forward: y = xhat * gamma + beta
        if (dbeta != NULL) dbeta[c] = sum_dy;
        if (dgamma != NULL) dgamma[c] = sum_dy_xhat;
        if (dx != NULL) {
            double k = gamma[c] * invstd / n;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < HW; j++) {
                    double xhat = (x[BN_AT(i, c, j)] - mean) * invstd;
                    dx[BN_AT(i, c, j)] = k * (n * dy[BN_AT(i, c, j)] - sum_dy - xhat * sum_dy_xhat);
                }
        }
    }
}
