/* Anomaly rejection: AUROC and FPR at a TPR, in-distribution positive. Contracts
 * in metrics.h. */
#include <math.h>
#include <stdlib.h>

#include "eval/metrics.h"

typedef struct scored {
    double s;
    int id;     /* 1: in-distribution (positive) */
} scored;

static double key(float s) { return isnan(s) ? -INFINITY : (double)s; }

static int by_score(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

static int by_descending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

double vka_metric_auroc(const float *score_id, size_t n_id, const float *score_ood, size_t n_ood)
{
    if (n_id == 0 || n_ood == 0) return NAN;
    size_t n = n_id + n_ood;
    scored *all = malloc(n * sizeof *all);
    if (!all) return NAN;
    for (size_t i = 0; i < n_id; i++) all[i] = (scored){key(score_id[i]), 1};
    for (size_t i = 0; i < n_ood; i++) all[n_id + i] = (scored){key(score_ood[i]), 0};
    qsort(all, n, sizeof *all, by_score);

    /* Sum of the in-distribution ranks (1-based, ascending), each tie group taking
     * its midrank; then U = R_id - n_id (n_id + 1) / 2 counts the (id, ood) pairs
     * won by id, ties as 1/2. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, ids = 0;
        while (j < n && all[j].s == all[i].s) ids += all[j++].id;
        rank_sum += ids * 0.5 * (double)(i + 1 + j);   /* midrank of positions i+1..j */
        i = j;
    }
    free(all);
    double u = rank_sum - 0.5 * (double)n_id * (double)(n_id + 1);
    return u / ((double)n_id * (double)n_ood);
}

double vka_metric_fpr_at_tpr(const float *score_id, size_t n_id, const float *score_ood, size_t n_ood,
                             double tpr)
{
    if (n_id == 0 || n_ood == 0 || !(tpr > 0 && tpr <= 1)) return NAN;
    double *id = malloc(n_id * sizeof *id);
    if (!id) return NAN;
    for (size_t i = 0; i < n_id; i++) id[i] = key(score_id[i]);
    qsort(id, n_id, sizeof *id, by_descending);
    /* The 1e-9 keeps tpr * n_id from rounding just above an integer (0.95 * 20). */
    size_t k = (size_t)ceil(tpr * (double)n_id - 1e-9);
    if (k < 1) k = 1;
    if (k > n_id) k = n_id;
    double tau = id[k - 1];
    free(id);
    size_t fp = 0;
    for (size_t i = 0; i < n_ood; i++) fp += key(score_ood[i]) >= tau;
    return (double)fp / (double)n_ood;
}

double vka_metric_fpr95(const float *score_id, size_t n_id, const float *score_ood, size_t n_ood)
{
    return vka_metric_fpr_at_tpr(score_id, n_id, score_ood, n_ood, 0.95);
}
