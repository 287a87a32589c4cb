// ref_anchor.c: anchored inputs (concat_channels(reference, x - reference)) for training
// and K-anchor inference, and the K-anchor inference reduction.
// No backward: the anchored input is built from data, nothing before it is learned.
#include <math.h>
#include <stddef.h>
#include "ref_ops.h"

void ref_anchor_train_input(double *out, const double *x, const int *ref_index, int masked,
                            int B, int C, int HW) {
    for (int b = 0; b < B; b++) {
        const double *xb = x + (size_t)b * C * HW;                // x[b]   (C,HW)
        const double *rb = x + (size_t)ref_index[b] * C * HW;     // x[ref] (C,HW)
        double *ob = out + (size_t)b * 2 * C * HW;                // out[b] (2C,HW)
        for (int i = 0; i < C * HW; i++) {
            ob[i] = masked ? 0.0 : rb[i];      // channels [0,C): the reference (or 0)
            ob[C * HW + i] = xb[i] - rb[i];    // channels [C,2C): residual, real reference
        }
    }
}

void ref_anchor_infer_input(double *out, const double *x, const double *refs,
                            int K, int B, int C, int HW) {
    for (int k = 0; k < K; k++) {
        const double *rk = refs + (size_t)k * C * HW;             // refs[k] (C,HW)
        for (int b = 0; b < B; b++) {
            const double *xb = x + (size_t)b * C * HW;            // x[b] (C,HW)
            double *ob = out + ((size_t)k * B + b) * 2 * C * HW;  // out[k*B+b] (2C,HW)
            for (int i = 0; i < C * HW; i++) {
                ob[i] = rk[i];
                ob[C * HW + i] = xb[i] - rk[i];
            }
        }
    }
}

void ref_anchor_reduce(double *mean_logits, double *uncertainty, double *calibrated,
                       const double *logits, int K, int B, int NC) {
    for (int b = 0; b < B; b++) {
        double unc = 0.0;
        for (int j = 0; j < NC; j++) {
            double sum = 0.0, sum_s = 0.0;
            for (int k = 0; k < K; k++) {
                double z = logits[((size_t)k * B + b) * NC + j]; // logits[k*B+b, j]
                sum += z;
                sum_s += 1.0 / (1.0 + exp(-z));
            }
            double mean_s = sum_s / K;
            double var_s = 0.0; // sample variance over K of sigmoid(z): / (K - 1), 0 for K = 1
            for (int k = 0; k < K; k++) {
                double d = 1.0 / (1.0 + exp(-logits[((size_t)k * B + b) * NC + j])) - mean_s;
                var_s += d * d;
            }
            unc += sqrt(var_s / (K > 1 ? K - 1 : 1));
            mean_logits[(size_t)b * NC + j] = sum / K; // (B,NC)
        }
        unc /= NC;
        if (uncertainty != NULL) uncertainty[b] = unc; // (B)
        if (calibrated != NULL)
            for (int j = 0; j < NC; j++)
                calibrated[(size_t)b * NC + j] = mean_logits[(size_t)b * NC + j] / (1.0 + exp(unc));
    }
}
