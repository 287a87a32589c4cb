// ref_pool.c: max pooling (floor mode) and global average pooling.
// x (N,C,H,W); max-pool y and argmax (N,C,P,Q), P = (H + 2*pad - k)/stride + 1.
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include "ref_ops.h"

void ref_maxpool_forward(double *y, int *argmax, const double *x,
                         int N, int C, int H, int W, int k, int stride, int pad) {
    assert(2 * pad <= k); // PyTorch's rule: every window holds at least one real element
    int P = ref_conv2d_out_size(H, k, stride, pad);
    int Q = ref_conv2d_out_size(W, k, stride, pad);
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const double *xp = x + (size_t)(n * C + c) * H * W; // (H,W) plane
            for (int p = 0; p < P; p++) {
                for (int q = 0; q < Q; q++) {
                    double best = -INFINITY;
                    int best_i = -1;
                    // row-major scan of the window; only in-bounds elements compete,
                    // and a strict '>' keeps the FIRST maximum on ties
                    for (int r = 0; r < k; r++) {
                        int h = p * stride - pad + r;
                        if (h < 0 || h >= H) continue;
                        for (int s = 0; s < k; s++) {
                            int w = q * stride - pad + s;
                            if (w < 0 || w >= W) continue;
                            if (best_i < 0 || xp[h * W + w] > best) {
                                best = xp[h * W + w];
                                best_i = h * W + w;
                            }
                        }
                    }
                    size_t o = ((size_t)(n * C + c) * P + p) * Q + q; // (N,C,P,Q)
                    y[o] = best;
                    if (argmax != NULL) argmax[o] = best_i;
                }
            }
        }
    }
}

void ref_maxpool_backward(double *dx, const double *dy, const int *argmax,
                          int N, int C, int H, int W, int k, int stride, int pad) {
    if (dx == NULL) return;
    int P = ref_conv2d_out_size(H, k, stride, pad);
    int Q = ref_conv2d_out_size(W, k, stride, pad);
    for (size_t i = 0; i < (size_t)N * C * H * W; i++) dx[i] = 0.0; // (N,C,H,W)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            double *dxp = dx + (size_t)(n * C + c) * H * W; // (H,W) plane
            for (int p = 0; p < P; p++) {
                for (int q = 0; q < Q; q++) {
                    size_t o = ((size_t)(n * C + c) * P + p) * Q + q;
                    // forward: y[o] = x[plane][argmax[o]]  (overlapping windows: sum)
                    dxp[argmax[o]] += dy[o];
                }
            }
        }
    }
}

void ref_global_avgpool_forward(double *y, const double *x, int N, int C, int HW) {
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const double *xp = x + (size_t)(n * C + c) * HW; // (HW)
            double sum = 0.0;
            for (int j = 0; j < HW; j++) sum += xp[j];
            y[n * C + c] = sum / HW; // (N,C)
        }
    }
}

void ref_global_avgpool_backward(double *dx, const double *dy, int N, int C, int HW) {
    if (dx == NULL) return;
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            double *dxp = dx + (size_t)(n * C + c) * HW; // (HW)
            // forward: y[n,c] = sum_j x[n,c,j] / HW
            for (int j = 0; j < HW; j++) dxp[j] = dy[n * C + c] / HW;
        }
    }
}
