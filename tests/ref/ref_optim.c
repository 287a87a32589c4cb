// ref_optim.c: optimizer steps exactly as torch.optim.SGD (dampening 0) and
// torch.optim.AdamW. w, grad, buf, m, v (n), updated in place.
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include "ref_ops.h"

void ref_sgd_step(double *w, double *buf, const double *grad, int n,
                  double lr, double momentum, double weight_decay, int nesterov) {
    assert(buf != NULL || momentum == 0.0);
    for (int i = 0; i < n; i++) {
        double g = grad[i] + weight_decay * w[i];
        if (momentum != 0.0) {
            // buf starts at 0, so the first step gives buf = g, PyTorch's clone
            buf[i] = momentum * buf[i] + g;
            g = nesterov ? g + momentum * buf[i] : buf[i];
        }
        w[i] -= lr * g;
    }
}

void ref_adamw_step(double *w, double *m, double *v, const double *grad, int n,
                    double lr, double beta1, double beta2, double eps,
                    double weight_decay, int t) {
    assert(t >= 1);
    double bc1 = 1.0 - pow(beta1, t); // bias corrections
    double bc2 = 1.0 - pow(beta2, t);
    for (int i = 0; i < n; i++) {
        double g = grad[i];
        w[i] *= 1.0 - lr * weight_decay; // decoupled weight decay, before the moments
        m[i] = beta1 * m[i] + (1.0 - beta1) * g;
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
        double mhat = m[i] / bc1;
        double vhat = v[i] / bc2;
        w[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}
