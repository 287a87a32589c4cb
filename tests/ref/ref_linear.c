// ref_linear.c: fully connected layer, y = x W^T + b (PyTorch nn.Linear).
// x (N,IN), w (OUT,IN), b (OUT), y (N,OUT).
#include <stddef.h>
#include "ref_ops.h"

void ref_linear_forward(double *y, const double *x, const double *w, const double *b,
                        int N, int IN, int OUT) {
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OUT; o++) {
            double acc = b != NULL ? b[o] : 0.0;
            for (int i = 0; i < IN; i++) {
                acc += x[(size_t)n * IN + i] * w[(size_t)o * IN + i];
            }
            y[(size_t)n * OUT + o] = acc;
        }
    }
}

void ref_linear_backward(double *dx, double *dw, double *db,
                         const double *dy, const double *x, const double *w,
                         int N, int IN, int OUT) {
    // forward: acc += x[n,i] * w[o,i]  =>  dx[n,i] = sum_o dy[n,o] * w[o,i]
    if (dx != NULL) {
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IN; i++) {
                double acc = 0.0;
                for (int o = 0; o < OUT; o++) acc += dy[(size_t)n * OUT + o] * w[(size_t)o * IN + i];
                dx[(size_t)n * IN + i] = acc;
            }
    }
    // forward: acc += x[n,i] * w[o,i]  =>  dw[o,i] = sum_n dy[n,o] * x[n,i]
    if (dw != NULL) {
        for (int o = 0; o < OUT; o++)
            for (int i = 0; i < IN; i++) {
                double acc = 0.0;
                for (int n = 0; n < N; n++) acc += dy[(size_t)n * OUT + o] * x[(size_t)n * IN + i];
                dw[(size_t)o * IN + i] = acc;
            }
    }
    // forward: acc = b[o] + ...  =>  db[o] = sum_n dy[n,o]
    if (db != NULL) {
        for (int o = 0; o < OUT; o++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) acc += dy[(size_t)n * OUT + o];
            db[o] = acc;
        }
    }
}
