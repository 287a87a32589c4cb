/* Calibration: equal-width confidence bins (ECE, RMS calibration error) and the
 * smooth ECE of Blasiok & Nakkiran. Contracts and definitions in metrics.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/metrics.h"

/* ---- binned ------------------------------------------------------------------ */

/* Bin b covers (b/B, (b+1)/B], bin 0 is [0, 1/B]. ceil(f B) - 1 is that index up
 * to rounding of f B; the two loops settle it against the double edges b/B. */
static uint32_t bin_of(double f, uint32_t bins)
{
    if (!(f > 0)) return 0;            /* also NaN */
    if (f >= 1) return bins - 1;
    double k = ceil(f * bins) - 1;
    uint32_t b = k < 0 ? 0 : k > bins - 1 ? bins - 1 : (uint32_t)k;
    while (b > 0 && f <= (double)b / bins) b--;
    while (b < bins - 1 && f > (double)(b + 1) / bins) b++;
    return b;
}

int vka_metric_calibration_bins(vka_calibration_bins *out, const float *conf, const uint8_t *correct,
                                size_t n, uint32_t bins)
{
    if (bins == 0 || bins > VKA_CALIB_MAX_BINS || n == 0) return -1;
    memset(out, 0, sizeof *out);
    out->bins = bins;
    out->total = n;
    for (size_t i = 0; i < n; i++) {
        double f = isnan(conf[i]) ? 0 : fmin(fmax(conf[i], 0.0), 1.0);
        uint32_t b = bin_of(f, bins);
        out->count[b]++;
        out->accuracy[b] += correct[i] != 0;
        out->confidence[b] += f;
    }
    for (uint32_t b = 0; b < bins; b++)
        if (out->count[b]) {
            out->accuracy[b] /= (double)out->count[b];
            out->confidence[b] /= (double)out->count[b];
        }
    return 0;
}

double vka_calibration_bins_ece(const vka_calibration_bins *b)
{
    if (b->total == 0) return NAN;
    double e = 0;
    for (uint32_t i = 0; i < b->bins; i++)
        e += (double)b->count[i] / (double)b->total * fabs(b->accuracy[i] - b->confidence[i]);
    return e;
}

double vka_calibration_bins_rms(const vka_calibration_bins *b)
{
    if (b->total == 0) return NAN;
    double e = 0;
    for (uint32_t i = 0; i < b->bins; i++) {
        double gap = b->accuracy[i] - b->confidence[i];
        e += (double)b->count[i] / (double)b->total * gap * gap;
    }
    return sqrt(e);
}

double vka_metric_ece(vka_calibration_bins *bins, const float *conf, const uint8_t *correct, size_t n)
{
    vka_calibration_bins local;
    if (!bins) bins = &local;
    if (vka_metric_calibration_bins(bins, conf, correct, n, VKA_ECE_BINS)) return NAN;
    return vka_calibration_bins_ece(bins);
}

double vka_metric_rms_ce(const float *conf, const uint8_t *correct, size_t n)
{
    vka_calibration_bins b;
    if (vka_metric_calibration_bins(&b, conf, correct, n, VKA_RMSCE_BINS)) return NAN;
    return vka_calibration_bins_rms(&b);
}

/* ---- smooth ECE ------------------------------------------------------------------ */

#define SMECE_SIGMA_MIN 1e-4
#define SMECE_SIGMA_MAX 1.0
#define SMECE_TRUNCATE 8.0     /* kernel cut at 8 sigma: exp(-32) ~ 1e-14 of the peak */

double vka_metric_smece_at(double sigma, const float *conf, const uint8_t *correct, size_t n)
{
    if (n == 0 || !(sigma >= SMECE_SIGMA_MIN && sigma <= SMECE_SIGMA_MAX)) return NAN;
    /* Nodes u_g = g / L, g = 0..L, spacing h = 1/L <= sigma / 20. */
    size_t L = (size_t)fmax(1000.0, ceil(20.0 / sigma));
    double h = 1.0 / (double)L, s = sigma / h;              /* sigma in nodes */
    size_t D = (size_t)ceil(SMECE_TRUNCATE * s);            /* kernel reach in nodes */
    double *r = calloc(L + 1, sizeof *r);                   /* residual mass per node */
    double *S = calloc(L + 1, sizeof *S);                   /* (1/N) sum_i K(t_m, f_i)(y_i - f_i) */
    double *A = calloc(2 * L + 1, sizeof *A);               /* reflected kernel by node distance */
    double result = NAN;
    if (!r || !S || !A) goto done;

    /* Residuals y - f, spread linearly onto the two nearest nodes. */
    for (size_t i = 0; i < n; i++) {
        double f = isnan(conf[i]) ? 0 : fmin(fmax(conf[i], 0.0), 1.0);
        double x = f * (double)L, res = ((correct[i] != 0) - f) / (double)n;
        size_t g = (size_t)x;
        if (g > L - 1) g = L - 1;
        double w = x - (double)g;
        r[g] += (1 - w) * res;
        r[g + 1] += w * res;
    }

    /* With t = m/L and f = g/L, K(t, f) = A[|m - g|] + A[m + g], where
     * A[d] = sum_k phi_sigma((d - 2kL) h): the images of f at f + 2k and -f + 2k.
     * A is even and 2L-periodic, so only d <= D and d >= 2L - D are non-zero. */
    double norm = 1.0 / (2.5066282746310002 * sigma);   /* 1 / (sqrt(2 pi) sigma) */
    long kmax = (long)(D / (2 * L)) + 1;
    for (size_t d = 0; d <= 2 * L; d++) {
        if (d > D && d + D < 2 * L) continue;
        double a = 0;
        for (long k = -kmax; k <= kmax; k++) {
            double dist = fabs((double)d - 2.0 * (double)k * (double)L);
            if (dist <= (double)D) a += exp(-0.5 * (dist / s) * (dist / s));
        }
        A[d] = a * norm;
    }
    int wide = D >= L;  /* the kernel reaches across the whole interval */
    for (size_t g = 0; g <= L; g++) {
        if (r[g] == 0) continue;
        size_t lo = g > D ? g - D : 0, hi = g + D < L ? g + D : L;
        for (size_t m = lo; m <= hi; m++) S[m] += r[g] * A[m > g ? m - g : g - m];
        /* mirror images: m + g within D of 0 or of 2L */
        if (wide) {
            for (size_t m = 0; m <= L; m++) S[m] += r[g] * A[m + g];
        } else {
            for (size_t m = 0; m + g <= D && m <= L; m++) S[m] += r[g] * A[m + g];
            for (size_t m = 2 * L - D > g ? 2 * L - D - g : 0; m <= L; m++) S[m] += r[g] * A[m + g];
        }
    }

    /* Trapezoid rule over the nodes. */
    double integral = 0.5 * (fabs(S[0]) + fabs(S[L]));
    for (size_t m = 1; m < L; m++) integral += fabs(S[m]);
    result = integral * h;
done:
    free(r);
    free(S);
    free(A);
    return result;
}

double vka_metric_smece(double *sigma, const float *conf, const uint8_t *correct, size_t n)
{
    if (n == 0) return NAN;
    double lo = SMECE_SIGMA_MIN, hi = SMECE_SIGMA_MAX, at;
    double e_lo = vka_metric_smece_at(lo, conf, correct, n);
    double e_hi = vka_metric_smece_at(hi, conf, correct, n);
    if (isnan(e_lo) || isnan(e_hi)) return NAN;
    if (e_lo <= lo) {
        at = lo;
    } else if (e_hi >= hi) {
        at = hi;
    } else {
        /* smECE_sigma - sigma falls strictly from > 0 at lo to < 0 at hi. */
        while (hi - lo > 1e-6) {
            double mid = 0.5 * (lo + hi), e = vka_metric_smece_at(mid, conf, correct, n);
            if (isnan(e)) return NAN;
            if (e > mid) lo = mid;
            else hi = mid;
        }
        at = 0.5 * (lo + hi);
    }
    if (sigma) *sigma = at;
    return at == SMECE_SIGMA_MIN ? e_lo : at == SMECE_SIGMA_MAX ? e_hi : vka_metric_smece_at(at, conf, correct, n);
}
