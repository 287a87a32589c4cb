// ref_conv2d.c: 2-D convolution (cross-correlation, as PyTorch's Conv2d), zero padding.
// x (N,C,H,W), w (K,C,R,S), b (K), y (N,K,P,Q).
#include <stddef.h>
#include "ref_ops.h"

int ref_conv2d_out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

void ref_conv2d_forward(double *y, const double *x, const double *w, const double *b,
                        int N, int C, int H, int W, int K, int R, int S, int stride, int pad) {
    int P = ref_conv2d_out_size(H, R, stride, pad);
    int Q = ref_conv2d_out_size(W, S, stride, pad);
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            for (int p = 0; p < P; p++) {
                for (int q = 0; q < Q; q++) {
                    double acc = b != NULL ? b[k] : 0.0;
                    for (int c = 0; c < C; c++) {
                        for (int r = 0; r < R; r++) {
                            int h = p * stride - pad + r;
                            if (h < 0 || h >= H) continue; // zero padding
                            for (int s = 0; s < S; s++) {
                                int ww = q * stride - pad + s;
                                if (ww < 0 || ww >= W) continue; // zero padding
                                // y[n,k,p,q] += x[n,c,h,ww] * w[k,c,r,s]
                                acc += x[((size_t)(n * C + c) * H + h) * W + ww]
                                     * w[((size_t)(k * C + c) * R + r) * S + s];
                            }
                        }
                    }
                    y[((size_t)(n * K + k) * P + p) * Q + q] = acc; // (N,K,P,Q)
                }
            }
        }
    }
}

void ref_conv2d_backward(double *dx, double *dw, double *db,
                         const double *dy, const double *x, const double *w,
                         int N, int C, int H, int W, int K, int R, int S, int stride, int pad) {
    int P = ref_conv2d_out_size(H, R, stride, pad);
    int Q = ref_conv2d_out_size(W, S, stride, pad);
    // overwrite semantics: clear every requested output first
    if (dx != NULL) for (size_t i = 0; i < (size_t)N * C * H * W; i++) dx[i] = 0.0; // (N,C,H,W)
    if (dw != NULL) for (size_t i = 0; i < (size_t)K * C * R * S; i++) dw[i] = 0.0; // (K,C,R,S)
    if (db != NULL) for (int k = 0; k < K; k++) db[k] = 0.0;                       // (K)
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            for (int p = 0; p < P; p++) {
                for (int q = 0; q < Q; q++) {
                    double g = dy[((size_t)(n * K + k) * P + p) * Q + q]; // dy[n,k,p,q]
                    // forward: acc = b[k] + ...  =>  db[k] += dy[n,k,p,q]
                    if (db != NULL) db[k] += g;
                    for (int c = 0; c < C; c++) {
                        for (int r = 0; r < R; r++) {
                            int h = p * stride - pad + r;
                            if (h < 0 || h >= H) continue;
                            for (int s = 0; s < S; s++) {
                                int ww = q * stride - pad + s;
                                if (ww < 0 || ww >= W) continue;
                                size_t xi = ((size_t)(n * C + c) * H + h) * W + ww;
                                size_t wi = ((size_t)(k * C + c) * R + r) * S + s;
                                // forward: acc += x[n,c,h,ww] * w[k,c,r,s]
                                if (dx != NULL) dx[xi] += w[wi] * g;
                                if (dw != NULL) dw[wi] += x[xi] * g;
                            }
                        }
                    }
                }
            }
        }
    }
}
