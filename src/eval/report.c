/* Metrics of one evaluation pass (host side, over the GPU's per-sample outputs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/report.h"

const char *const vka_score_names[VKA_SCORE_COUNT] = {"max_softmax", "anchored_uncertainty", "energy"};

vka_result vka_clean_metrics_compute(vka_logger *lg, const float *logits, const uint8_t *labels, uint32_t n,
                                     uint32_t classes, vka_clean_metrics *out)
{
    memset(out, 0, sizeof *out);
    float *probs = malloc((size_t)n * classes * sizeof *probs), *conf = malloc((size_t)n * sizeof *conf);
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    uint8_t *correct = malloc(n);
    vka_result rc = VKA_SUCCESS;
    if (!probs || !conf || !lab || !correct) {
        rc = vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for metrics");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) lab[i] = labels[i];
    vka_metric_softmax(probs, logits, n, classes);
    if (vka_metric_confidences(conf, correct, probs, lab, n, classes)) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "a label is outside the model's %u classes", classes);
        goto done;
    }
    out->accuracy = vka_metric_accuracy(probs, lab, n, classes);
    out->nll = vka_metric_nll(probs, lab, n, classes);
    out->brier = vka_metric_brier(probs, lab, n, classes);
    out->ece = vka_metric_ece(&out->bins, conf, correct, n);
    out->rms_ce = vka_metric_rms_ce(conf, correct, n);
    out->smece = vka_metric_smece(&out->smece_sigma, conf, correct, n);
done:
    free(probs), free(conf), free(lab), free(correct);
    return rc;
}

vka_result vka_scores_compute(vka_logger *lg, const vka_eval_outputs *o, float *scores[VKA_SCORE_COUNT])
{
    for (int s = 0; s < VKA_SCORE_COUNT; s++) scores[s] = malloc((size_t)o->n * sizeof(float));
    float *probs = malloc((size_t)o->n * o->classes * sizeof *probs);
    if (!probs || !scores[0] || !scores[1] || !scores[2]) {
        free(probs);
        for (int s = 0; s < VKA_SCORE_COUNT; s++) free(scores[s]), scores[s] = NULL;
        return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for scores");
    }
    vka_metric_softmax(probs, o->logits, o->n, o->classes);
    vka_metric_max_prob(scores[VKA_SCORE_MSP], probs, o->n, o->classes);
    for (uint32_t i = 0; i < o->n; i++) scores[VKA_SCORE_UNCERTAINTY][i] = -o->uncertainty[i];
    vka_metric_energy(scores[VKA_SCORE_ENERGY], o->logits, o->n, o->classes);
    free(probs);
    return VKA_SUCCESS;
}
