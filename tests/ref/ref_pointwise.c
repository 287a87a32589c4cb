// ref_pointwise.c: elementwise ops: ReLU and the residual add.
#include <stddef.h>
#include "ref_ops.h"

void ref_relu_forward(double *y, const double *x, int n) {
    for (int i = 0; i < n; i++) {
        y[i] = x[i] > 0.0 ? x[i] : 0.0;
    }
}

void ref_relu_backward(double *dx, const double *dy, const double *x, int n) {
    if (dx == NULL) return;
    for (int i = 0; i < n; i++) {
        // forward: y[i] = x[i] > 0.0 ? x[i] : 0.0;   (gradient 0 at x == 0, as PyTorch)
        dx[i] = x[i] > 0.0 ? dy[i] : 0.0;
    }
}

// Residual add. Its backward needs no function: the forward y = a + b gives
// da = dy and db = dy, so the graph simply passes dy to both branches (and the
// branch that meets the other sums the two gradients).
void ref_add_forward(double *y, const double *a, const double *b, int n) {
    for (int i = 0; i < n; i++) {
        y[i] = a[i] + b[i];
    }
}
