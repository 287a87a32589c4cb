// ref_loss.c: softmax cross-entropy (label, label-smoothed, uniform target) plus
// per-sample max probability and correct count. logits (B,NC), labels (B).
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include "ref_ops.h"

double ref_cross_entropy(double *dlogits, double *sample_loss, double *maxprob, int *ncorrect,
                         const double *logits, const int *labels, int B, int NC,
                         enum ref_ce_target target, double smoothing) {
    assert(labels != NULL || (target == REF_CE_UNIFORM && ncorrect == NULL));
    // label smoothing == 1 is exactly the uniform target
    double eps = target == REF_CE_UNIFORM ? 1.0 : smoothing;
    double total = 0.0;
    int correct = 0;
    for (int b = 0; b < B; b++) {
        const double *z = logits + (size_t)b * NC; // (NC)
        int label = target == REF_CE_UNIFORM ? -1 : labels[b]; // -1: no one-hot part
        // row max and argmax (strict '>': ties go to the lowest index)
        int amax = 0;
        for (int j = 1; j < NC; j++)
            if (z[j] > z[amax]) amax = j;
        double zmax = z[amax];
        // logsumexp(z) = zmax + log(sum exp(z - zmax))
        double sum_exp = 0.0;
        for (int j = 0; j < NC; j++) sum_exp += exp(z[j] - zmax);
        double lse = zmax + log(sum_exp);
        // target_j = (1 - eps) * [j == label] + eps / NC
        // loss = -sum_j target_j * log softmax_j = lse - sum_j target_j * z_j
        double zt = 0.0;
        for (int j = 0; j < NC; j++) {
            double t = (j == label ? 1.0 - eps : 0.0) + eps / NC;
            zt += t * z[j];
        }
        double loss = lse - zt;
        total += loss;
        if (sample_loss != NULL) sample_loss[b] = loss;
        if (maxprob != NULL) maxprob[b] = 1.0 / sum_exp; // exp(zmax - lse)
        if (ncorrect != NULL && amax == labels[b]) correct++;
        // forward: mean loss = sum_b (lse_b - sum_j target_bj z_bj) / B
        //   => dlogits[b,j] = (softmax_j - target_j) / B
        if (dlogits != NULL) {
            for (int j = 0; j < NC; j++) {
                double t = (j == label ? 1.0 - eps : 0.0) + eps / NC;
                dlogits[(size_t)b * NC + j] = (exp(z[j] - lse) - t) / B;
            }
        }
    }
    if (ncorrect != NULL) *ncorrect = correct;
    return total / B;
}
