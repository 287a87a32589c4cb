/* The numbers of `vkanchor eval` for one set of outputs, and the report. */
#ifndef VKA_EVAL_REPORT_H
#define VKA_EVAL_REPORT_H

#include "eval/evaluator.h"
#include "eval/metrics.h"

/* Clean-data metrics of one set of logits (the mean logits or the calibrated ones). */
typedef struct vka_clean_metrics {
    double accuracy, nll, brier, ece, rms_ce, smece, smece_sigma;
    vka_calibration_bins bins;    /* 15 bins: the reliability diagram */
} vka_clean_metrics;

/* Anomaly rejection with one score (higher = more in-distribution). */
typedef struct vka_ood_metrics {
    double auroc, fpr95;
} vka_ood_metrics;

/* Computes the clean metrics from logits (n, classes) and labels (on the host). */
vka_result vka_clean_metrics_compute(vka_logger *lg, const float *logits, const uint8_t *labels, uint32_t n,
                                     uint32_t classes, vka_clean_metrics *out);

/* Scores per sample: max softmax probability, -uncertainty, energy (logsumexp). */
enum { VKA_SCORE_MSP = 0, VKA_SCORE_UNCERTAINTY, VKA_SCORE_ENERGY, VKA_SCORE_COUNT };
extern const char *const vka_score_names[VKA_SCORE_COUNT];
/* Fills scores[s] (n floats each, malloc'd) for every score kind. */
vka_result vka_scores_compute(vka_logger *lg, const vka_eval_outputs *o, float *scores[VKA_SCORE_COUNT]);

#endif
