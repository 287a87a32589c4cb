/* The evaluation metrics of `vkanchor eval`: accuracy, NLL, Brier score, binned
 * ECE, RMS calibration error, smooth ECE, anomaly-rejection AUROC and FPR at 95%
 * TPR, and the per-sample scores they rank by.
 *
 * These run on the host, in double precision, over per-sample outputs the GPU
 * already produced and the evaluator read back (probabilities or logits, labels,
 * one score per sample: a few 10k values per evaluation set). That is too little
 * work to be worth a dispatch and the sorts and bisections here are awkward on a
 * GPU, so this is plain C with no Vulkan. Nothing here prints or exits.
 *
 * Conventions:
 *   - probs and logits are (n, c) row-major floats; labels (n) int32 in [0, c);
 *   - conf (n) is the confidence of the predicted class (max probability) and
 *     correct (n) is 1 where the argmax equals the label, else 0;
 *   - the prediction is the argmax, ties going to the lowest class index (as the
 *     GPU loss op counts them);
 *   - functions returning double return NAN when n == 0, c == 0, a label is out
 *     of range, or memory runs out; nothing is logged.
 */
#ifndef VKA_EVAL_METRICS_H
#define VKA_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "vkanchor.h"

/* ---- per-sample scores ----------------------------------------------------- */

/* probs (n, c) = softmax of logits (n, c), each row shifted by its max so no
 * exp overflows. probs may equal logits (in place). */
void vka_metric_softmax(float *probs, const float *logits, size_t n, size_t c);

/* score (n) = max_c probs (n, c): the maximum softmax probability (higher = more
 * in-distribution; Hendrycks & Gimpel 2017). */
void vka_metric_max_prob(float *score, const float *probs, size_t n, size_t c);

/* score (n) = logsumexp_c logits (n, c), computed stably. This is the NEGATED
 * energy E(x) = -logsumexp(logits) of Liu et al. 2020 (temperature 1), so, like
 * max_prob, higher = more in-distribution. */
void vka_metric_energy(float *score, const float *logits, size_t n, size_t c);

/* conf (n) = max_c probs, correct (n) = (argmax == label). Returns 0, or -1 (and
 * writes nothing past the bad sample) when a label is outside [0, c). */
int vka_metric_confidences(float *conf, uint8_t *correct, const float *probs, const int32_t *labels,
                           size_t n, size_t c);

/* ---- accuracy and proper scoring rules -------------------------------------- */

/* Fraction of samples whose argmax equals the label. */
double vka_metric_accuracy(const float *probs, const int32_t *labels, size_t n, size_t c);

/* Negative log-likelihood: mean_i -log max(p[i, label_i], 1e-12). The clamp keeps a
 * confidently wrong sample finite (it costs 27.63) instead of making the mean inf. */
double vka_metric_nll(const float *probs, const int32_t *labels, size_t n, size_t c);

/* Multi-class Brier score as in Ovadia et al. 2019 ("Can you trust your model's
 * uncertainty?"): mean_i sum_c (p[i, c] - onehot(label_i)_c)^2, in [0, 2]. Not
 * divided by c. */
double vka_metric_brier(const float *probs, const int32_t *labels, size_t n, size_t c);

/* ---- binned calibration ----------------------------------------------------- */

#define VKA_ECE_BINS 15          /* binned ECE (Guo et al. 2017, the paper's) */
#define VKA_RMSCE_BINS 20        /* RMS calibration error */
#define VKA_CALIB_MAX_BINS 100

/* Equal-width confidence bins over [0, 1], the data of a reliability diagram.
 * Bin b covers (b/B, (b+1)/B], except bin 0, which is [0, 1/B]: a confidence
 * exactly on an edge goes to the lower bin. Edges are the doubles b/B; confidences
 * are clamped to [0, 1] first. */
typedef struct vka_calibration_bins {
    uint32_t bins;                           /* B */
    uint64_t total;                          /* N, samples binned */
    uint64_t count[VKA_CALIB_MAX_BINS];      /* n_b */
    double accuracy[VKA_CALIB_MAX_BINS];     /* acc_b = mean correct in bin b; 0 when empty */
    double confidence[VKA_CALIB_MAX_BINS];   /* conf_b = mean conf in bin b; 0 when empty */
} vka_calibration_bins;

/* Fills `out` with B = `bins` bins of conf/correct (n). Returns 0, or -1 when
 * bins is 0 or over VKA_CALIB_MAX_BINS, or n is 0. */
int vka_metric_calibration_bins(vka_calibration_bins *out, const float *conf, const uint8_t *correct,
                                size_t n, uint32_t bins);

/* L1 binned calibration error of filled bins: sum_b (n_b / N) |acc_b - conf_b|
 * (empty bins contribute 0). */
double vka_calibration_bins_ece(const vka_calibration_bins *b);
/* L2: sqrt(sum_b (n_b / N) (acc_b - conf_b)^2). */
double vka_calibration_bins_rms(const vka_calibration_bins *b);

/* Binned ECE with VKA_ECE_BINS (15) bins. Also fills `bins` (may be NULL) for the
 * reliability diagram. */
double vka_metric_ece(vka_calibration_bins *bins, const float *conf, const uint8_t *correct, size_t n);

/* RMS calibration error with VKA_RMSCE_BINS (20) bins. */
double vka_metric_rms_ce(const float *conf, const uint8_t *correct, size_t n);

/* ---- smooth ECE (Blasiok & Nakkiran 2023) ----------------------------------- */

/* Smooth ECE at a fixed bandwidth sigma in [1e-4, 1], from "Smooth ECE: Principled
 * Reliability Diagrams via Kernel Smoothing" (Blasiok & Nakkiran, ICLR 2024):
 *
 *     smECE_sigma = integral_0^1 |r(t)| delta(t) dt
 *                 = integral_0^1 | (1/N) sum_i K_sigma(t, f_i) (y_i - f_i) | dt,
 *     r(t)     = sum_i K(t, f_i) (y_i - f_i) / sum_i K(t, f_i)   smoothed residual
 *     delta(t) = (1/N) sum_i K(t, f_i)                           density of confidences
 *
 * with f_i = conf, y_i = correct. Note the kernel smooths the residuals y_i - f_i,
 * not y_i - t: the reliability curve is t + r(t). K_sigma is the Gaussian kernel
 * reflected at 0 and 1, i.e. the Gaussian summed over all mirror images of f:
 *     K_sigma(t, f) = sum_{k in Z} phi_sigma(t - f - 2k) + phi_sigma(t + f - 2k),
 * so that integral_0^1 K(t, f) dt = 1 for every f in [0, 1] (no mass leaks out of
 * the interval and no boundary bias).
 *
 * Evaluation, O(N + G * min(G, 16 sigma G)) instead of O(N^2): the residuals are
 * spread by linear interpolation onto G = max(1001, ceil(20 / sigma) + 1) evenly
 * spaced nodes of [0, 1] (spacing at most sigma / 20), the reflected kernel is
 * applied node to node (truncated at 8 sigma, where it is below 1e-14 of its
 * peak), and the integral is the trapezoid rule over the same nodes. */
double vka_metric_smece_at(double sigma, const float *conf, const uint8_t *correct, size_t n);

/* Smooth ECE with the paper's bandwidth rule: sigma* is the fixed point
 * smECE_sigma = sigma, unique because smECE_sigma does not increase with sigma.
 * Found by bisection on [1e-4, 1] to within 1e-6 (if smECE_1e-4 <= 1e-4 the
 * bandwidth is 1e-4; if smECE_1 >= 1 it is 1). Returns smECE_sigma* and stores
 * sigma* in `sigma` (may be NULL). */
double vka_metric_smece(double *sigma, const float *conf, const uint8_t *correct, size_t n);

/* ---- anomaly rejection ------------------------------------------------------- */

/* Scores are "higher = more in-distribution" (max_prob, energy; callers negate an
 * uncertainty). In-distribution samples are the POSITIVE class. NaN scores count
 * as -inf (least in-distribution). */

/* Area under the ROC curve: P(s_id > s_ood) + P(s_id == s_ood) / 2 over all
 * (id, ood) pairs, i.e. the Mann-Whitney U statistic / (n_id n_ood) with ties
 * counted as 1/2. Computed with midranks after one sort, O((n_id + n_ood) log). */
double vka_metric_auroc(const float *score_id, size_t n_id, const float *score_ood, size_t n_ood);

/* False-positive rate at `tpr` true-positive rate (0 < tpr <= 1): a sample is
 * accepted as in-distribution when its score is >= tau, where tau is the largest
 * threshold that accepts at least ceil(tpr * n_id) in-distribution samples, i.e.
 * the ceil(tpr * n_id)-th largest in-distribution score. Returns the fraction of
 * OOD samples with score >= tau: every OOD sample tied with tau is accepted (a
 * false positive), the pessimistic side, as with sklearn's roc_curve where tied
 * scores form one point. */
double vka_metric_fpr_at_tpr(const float *score_id, size_t n_id, const float *score_ood, size_t n_ood,
                             double tpr);
/* vka_metric_fpr_at_tpr at 95% TPR. */
double vka_metric_fpr95(const float *score_id, size_t n_id, const float *score_ood, size_t n_ood);

#endif
