/* Per-sample scores, accuracy, NLL and Brier score. Contracts in metrics.h. */
#include <math.h>

#include "eval/metrics.h"

/* Index of the largest entry of row (c); ties -> the lowest index. */
static size_t argmax(const float *row, size_t c)
{
    size_t best = 0;
    for (size_t j = 1; j < c; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

static double logsumexp(const float *row, size_t c)
{
    double m = row[argmax(row, c)], s = 0;
    if (isinf(m)) return m;   /* all -inf (or a +inf): avoid inf - inf */
    for (size_t j = 0; j < c; j++) s += exp((double)row[j] - m);
    return m + log(s);
}

static int labels_ok(const int32_t *labels, size_t n, size_t c)
{
    if (n == 0 || c == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= c) return 0;
    return 1;
}

void vka_metric_softmax(float *probs, const float *logits, size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * c;
        float *p = probs + i * c;
        double lse = logsumexp(z, c);
        for (size_t j = 0; j < c; j++) p[j] = (float)exp((double)z[j] - lse);
    }
}

void vka_metric_max_prob(float *score, const float *probs, size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++) score[i] = probs[i * c + argmax(probs + i * c, c)];
}

void vka_metric_energy(float *score, const float *logits, size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++) score[i] = (float)logsumexp(logits + i * c, c);
}

int vka_metric_confidences(float *conf, uint8_t *correct, const float *probs, const int32_t *labels,
                           size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || (size_t)labels[i] >= c) return -1;
        size_t k = argmax(probs + i * c, c);
        conf[i] = probs[i * c + k];
        correct[i] = k == (size_t)labels[i];
    }
    return 0;
}

double vka_metric_accuracy(const float *probs, const int32_t *labels, size_t n, size_t c)
{
    if (!labels_ok(labels, n, c)) return NAN;
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) hits += argmax(probs + i * c, c) == (size_t)labels[i];
    return (double)hits / (double)n;
}

double vka_metric_nll(const float *probs, const int32_t *labels, size_t n, size_t c)
{
    if (!labels_ok(labels, n, c)) return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum -= log(fmax(probs[i * c + (size_t)labels[i]], 1e-12));
    return sum / (double)n;
}

double vka_metric_brier(const float *probs, const int32_t *labels, size_t n, size_t c)
{
    if (!labels_ok(labels, n, c)) return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < c; j++) {
            double d = probs[i * c + j] - (j == (size_t)labels[i] ? 1.0 : 0.0);
            sum += d * d;
        }
    return sum / (double)n;
}
