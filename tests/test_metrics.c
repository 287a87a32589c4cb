/* Evaluation metrics on small fixed inputs, against values worked out by hand or
 * by an independent method (pair counting for AUROC; a direct numpy integration
 * of the reflected-kernel smooth ECE for the literal smECE values), and the PNG
 * figures decoded back with libpng. Host only: no device needed. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/metrics.h"
#include "eval/plot_png.h"
#include "eval/report.h"
#include "test_util.h"

#define TOL 1e-6

/* |got - want| <= tol in double precision, failing on a NaN or an infinity. (cmocka 1.1's
 * assert_float_equal converts to float and passes whenever either side is NaN or infinite:
 * the overflow and empty-bin checks here could never fail with it.) */
#define expect_near(got, want, tol) expect_near_at((got), (want), (tol), #got, __LINE__)
static void expect_near_at(double got, double want, double tol, const char *what, int line)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("line %d: %s = %.17g, expected %.17g within %g", line, what, got, want, tol);
}

/* ---- scores --------------------------------------------------------------------- */

static void softmax_is_stable_and_sums_to_one(void **state)
{
    (void)state;
    float z[] = {1, 2, 3, 1000, 1000, 0, -1e30f, -1e30f, 0};
    float p[9];
    vka_metric_softmax(p, z, 3, 3);
    /* exp(z - logsumexp(z)) for z = 1, 2, 3 */
    expect_near(p[0], 0.09003057, 1e-6);
    expect_near(p[1], 0.24472847, 1e-6);
    expect_near(p[2], 0.66524096, 1e-6);
    expect_near(p[3], 0.5, 1e-7);
    expect_near(p[4], 0.5, 1e-7);
    expect_near(p[5], 0.0, 1e-7);
    expect_near(p[8], 1.0, 1e-7);
    vka_metric_softmax(z, z, 3, 3);   /* in place */
    assert_memory_equal(z, p, sizeof p);
}

static void energy_score_is_logsumexp_of_the_logits(void **state)
{
    (void)state;
    float z[] = {0, 0, 0, 1000, 1000, -INFINITY, -1000, 0, -INFINITY, 1, 2, 3, 7, 7.5f, 6.5f};
    float s[5];
    vka_metric_energy(s, z, 5, 3);
    expect_near(s[0], 1.0986122886681096, 1e-6);    /* log 3 */
    expect_near(s[1], 1000.6931471805599, 1e-3);    /* no overflow; float spacing at 1000 is 6e-5 */
    expect_near(s[2], 0.0, 1e-7);                   /* log(1 + e^-1000) */
    expect_near(s[3], 3.40760596444438, 1e-6);
    assert_true(s[4] > 7.5f);                              /* higher than every logit: more ID than s[3] */
}

static void max_prob_and_confidences_take_the_lowest_class_on_ties(void **state)
{
    (void)state;
    float p[] = {0.2f, 0.4f, 0.4f, 0.6f, 0.3f, 0.1f};
    int32_t labels[] = {2, 0};
    float score[2], conf[2];
    uint8_t correct[2];
    vka_metric_max_prob(score, p, 2, 3);
    expect_near(score[0], 0.4f, 0);
    expect_near(score[1], 0.6f, 0);
    assert_int_equal(vka_metric_confidences(conf, correct, p, labels, 2, 3), 0);
    expect_near(conf[0], 0.4f, 0);
    assert_int_equal(correct[0], 0);   /* argmax is class 1, the lower of the tie */
    assert_int_equal(correct[1], 1);
    labels[1] = 3;
    assert_int_equal(vka_metric_confidences(conf, correct, p, labels, 2, 3), -1);
}

/* ---- accuracy, NLL, Brier --------------------------------------------------------- */

static const float P3[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.1f, 0.8f, 0.0f, 1.0f, 0.0f};
static const int32_t L3[] = {0, 1, 0};

static void accuracy_counts_argmax_hits(void **state)
{
    (void)state;
    expect_near(vka_metric_accuracy(P3, L3, 3, 3), 1.0 / 3, TOL);
    float tie[] = {0.5f, 0.5f, 0.5f, 0.5f};
    int32_t l[] = {0, 1};
    expect_near(vka_metric_accuracy(tie, l, 2, 2), 0.5, TOL);
}

static void nll_matches_hand_value_and_clamps_zero_probability(void **state)
{
    (void)state;
    /* (-log 0.7 - log 0.1 - log 1e-12) / 3, with the float values of 0.7 and 0.1 */
    expect_near(vka_metric_nll(P3, L3, 3, 3), 10.096760384996687, 1e-6);
}

static void brier_is_the_multiclass_sum_of_squares(void **state)
{
    (void)state;
    /* (0.3^2 + 0.2^2 + 0.1^2) + (0.1^2 + 0.9^2 + 0.8^2) + (1 + 1 + 0) = 0.14 + 1.46 + 2, / 3 */
    expect_near(vka_metric_brier(P3, L3, 3, 3), 1.2, 1e-6);
    float perfect[] = {1, 0, 0, 1};
    int32_t l[] = {0, 1};
    expect_near(vka_metric_brier(perfect, l, 2, 2), 0.0, 0);
}

static void metrics_return_nan_for_empty_input_or_bad_labels(void **state)
{
    (void)state;
    int32_t bad[] = {0, 3, 0};
    assert_true(isnan(vka_metric_accuracy(P3, L3, 0, 3)));
    assert_true(isnan(vka_metric_nll(P3, bad, 3, 3)));
    assert_true(isnan(vka_metric_brier(P3, L3, 3, 0)));
    assert_true(isnan(vka_metric_ece(NULL, NULL, NULL, 0)));
    assert_true(isnan(vka_metric_smece(NULL, NULL, NULL, 0)));
    assert_true(isnan(vka_metric_auroc(NULL, 0, NULL, 0)));
    float s = 1;
    assert_true(isnan(vka_metric_fpr_at_tpr(&s, 1, &s, 1, 0)));
}

/* ---- binned calibration --------------------------------------------------------------- */

static void ece_matches_hand_value_with_empty_bins(void **state)
{
    (void)state;
    /* Bins of width 1/15: 0.95 -> 14, 0.9 -> 13, 0.55 -> 8, 0.52 -> 7, 0.21 -> 3, and
     * 0.7, 0.72 -> 10 (acc 1/2, conf 0.71). The other 9 bins are empty.
     * ECE = (0.05 + 0.9 + 0.45 + 0.52 + 0.21) / 7 + (2/7) 0.21 = 2.55 / 7. */
    float conf[] = {0.95f, 0.9f, 0.55f, 0.52f, 0.21f, 0.7f, 0.72f};
    uint8_t correct[] = {1, 0, 1, 0, 0, 1, 0};
    vka_calibration_bins b;
    expect_near(vka_metric_ece(&b, conf, correct, 7), 0.3642857096024922, 1e-7);
    assert_int_equal(b.bins, 15);
    assert_int_equal(b.total, 7);
    const uint64_t counts[15] = {0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 2, 0, 0, 1, 1};
    for (int i = 0; i < 15; i++) assert_int_equal(b.count[i], counts[i]);
    expect_near(b.accuracy[10], 0.5, 0);
    expect_near(b.confidence[10], 0.71, 1e-7);
    expect_near(b.accuracy[0], 0, 0);   /* empty */
    expect_near(b.confidence[0], 0, 0);
}

static void calibration_bins_put_edges_in_the_lower_bin(void **state)
{
    (void)state;
    /* 20 bins: (b/20, (b+1)/20], bin 0 = [0, 1/20]; out-of-range and NaN clamp. The
     * float 0.05f lies just above 1/20, so it is in bin 1. */
    float conf[] = {0.0f, 0.05f, 0.25f, 0.2500001f, 0.75f, 1.0f, -0.5f, 1.5f, NAN};
    uint8_t correct[9] = {0};
    const uint32_t expect[] = {0, 1, 4, 5, 14, 19, 0, 19, 0};
    for (int i = 0; i < 9; i++) {
        vka_calibration_bins b;
        assert_int_equal(vka_metric_calibration_bins(&b, &conf[i], &correct[i], 1, 20), 0);
        for (uint32_t k = 0; k < 20; k++) assert_int_equal(b.count[k], k == expect[i]);
    }
    vka_calibration_bins b;
    assert_int_equal(vka_metric_calibration_bins(&b, conf, correct, 9, 0), -1);
    assert_int_equal(vka_metric_calibration_bins(&b, conf, correct, 9, VKA_CALIB_MAX_BINS + 1), -1);
}

static void ece_is_zero_when_every_bin_is_calibrated(void **state)
{
    (void)state;
    float conf[] = {0.75f, 0.75f, 0.75f, 0.75f, 0.5f, 0.5f};
    uint8_t correct[] = {1, 1, 0, 1, 0, 1};
    expect_near(vka_metric_ece(NULL, conf, correct, 6), 0, 1e-12);
    expect_near(vka_metric_rms_ce(conf, correct, 6), 0, 1e-12);
}

static void rms_calibration_error_matches_hand_value(void **state)
{
    (void)state;
    /* 20 bins: 0.975, 0.975 -> bin 19 (acc 1/2, gap 0.475), 0.625 -> bin 12 (gap 0.375).
     * sqrt((2/3) 0.475^2 + (1/3) 0.375^2) */
    float conf[] = {0.975f, 0.975f, 0.625f};
    uint8_t correct[] = {1, 0, 1};
    expect_near(vka_metric_rms_ce(conf, correct, 3), 0.4441752827054995, 1e-7);
}

/* ---- smooth ECE ---------------------------------------------------------------------- */

static void smece_of_always_right_at_half_confidence_is_one_half(void **state)
{
    (void)state;
    /* Every residual is +0.5 and the reflected kernel integrates to 1 over [0, 1],
     * so smECE_sigma = 0.5 for every sigma and the fixed point is sigma = 0.5. */
    float conf[64];
    uint8_t correct[64];
    for (int i = 0; i < 64; i++) conf[i] = 0.5f, correct[i] = 1;
    expect_near(vka_metric_smece_at(0.01, conf, correct, 64), 0.5, 1e-6);
    expect_near(vka_metric_smece_at(1.0, conf, correct, 64), 0.5, 1e-6);
    double sigma;
    expect_near(vka_metric_smece(&sigma, conf, correct, 64), 0.5, 1e-6);
    expect_near(sigma, 0.5, 1e-5);
}

static void smece_equals_the_mean_residual_when_residuals_share_a_sign(void **state)
{
    (void)state;
    /* All wrong: the smoothed residual is negative everywhere, so the integral of
     * its absolute value is |mean(y - f)| = 0.6, whatever sigma (boundaries included). */
    float conf[] = {0.02f, 0.3f, 0.6f, 0.9f, 1.0f, 0.78f};
    uint8_t correct[6] = {0};
    expect_near(vka_metric_smece_at(0.003, conf, correct, 6), 0.6, 1e-6);
    expect_near(vka_metric_smece_at(0.2, conf, correct, 6), 0.6, 1e-6);
    double sigma;
    expect_near(vka_metric_smece(&sigma, conf, correct, 6), 0.6, 1e-6);
    expect_near(sigma, 0.6, 1e-5);
}

static void smece_is_zero_when_outcomes_balance_at_each_confidence(void **state)
{
    (void)state;
    float conf[] = {0.5f, 0.5f, 0.75f, 0.75f, 0.75f, 0.75f};
    uint8_t correct[] = {1, 0, 1, 1, 1, 0};
    double sigma;
    expect_near(vka_metric_smece(&sigma, conf, correct, 6), 0, 1e-12);
    expect_near(sigma, 1e-4, 0);
}

static void smece_matches_direct_integration_on_a_small_case(void **state)
{
    (void)state;
    /* Literal values from numpy: sum of 34 Gaussian images per sample evaluated on
     * 100001 points and integrated with the trapezoid rule, no binning; the fixed
     * point by 40 bisection steps. */
    float conf[] = {0.15f, 0.35f, 0.42f, 0.5f, 0.61f, 0.66f, 0.8f, 0.85f, 0.93f, 0.99f};
    uint8_t correct[] = {0, 1, 0, 1, 1, 0, 1, 1, 1, 0};
    expect_near(vka_metric_smece_at(0.1, conf, correct, 10), 0.14378324865401015, 1e-5);
    expect_near(vka_metric_smece_at(0.03, conf, correct, 10), 0.32326275054876374, 1e-5);
    double sigma;
    expect_near(vka_metric_smece(&sigma, conf, correct, 10), 0.13110054437849394, 1e-5);
    expect_near(sigma, 0.13110054437819457, 1e-5);
    assert_true(isnan(vka_metric_smece_at(2.0, conf, correct, 10)));
}

static void smece_of_calibrated_synthetic_data_is_near_zero(void **state)
{
    (void)state;
    /* f ~ U(0, 1), y ~ Bernoulli(f): calibrated, so only sampling noise remains
     * (numpy gives about 0.007 at n = 1e5). An overconfident copy, y ~ Bernoulli(f^2),
     * has smECE near E[f - f^2] = 1/6. */
    enum { N = 20000 };
    static float conf[N];
    static uint8_t correct[N], over[N];
    test_rng rng = {0x9e3779b97f4a7c15ull};
    for (int i = 0; i < N; i++) {
        conf[i] = test_uniform(&rng, 0, 1);
        float u = test_uniform(&rng, 0, 1);
        correct[i] = u < conf[i];
        over[i] = u < conf[i] * conf[i];
    }
    double sigma, e = vka_metric_smece(&sigma, conf, correct, N);
    assert_true(e < 0.02);
    expect_near(sigma, e, 1e-5);
    expect_near(vka_metric_smece(NULL, conf, over, N), 1.0 / 6, 0.02);
}

/* ---- anomaly rejection ------------------------------------------------------------------ */

static void auroc_is_one_half_when_all_scores_tie(void **state)
{
    (void)state;
    float id[] = {0.3f, 0.3f, 0.3f}, ood[] = {0.3f, 0.3f};
    expect_near(vka_metric_auroc(id, 3, ood, 2), 0.5, 0);
}

static void auroc_is_one_for_perfect_separation_and_zero_reversed(void **state)
{
    (void)state;
    float id[] = {0.9f, 0.8f, 0.71f}, ood[] = {0.7f, 0.1f, -3, NAN};
    expect_near(vka_metric_auroc(id, 3, ood, 4), 1.0, 0);
    expect_near(vka_metric_auroc(ood, 4, id, 3), 0.0, 0);
}

static void auroc_counts_a_tie_as_one_half(void **state)
{
    (void)state;
    /* Pairs won by id: 0.9 beats all 3; 0.5 beats 0.2, 0.1 and ties 0.5 (1/2);
     * 0.3 beats 0.2, 0.1. (3 + 2.5 + 2) / 9. */
    float id[] = {0.9f, 0.5f, 0.3f}, ood[] = {0.5f, 0.2f, 0.1f};
    expect_near(vka_metric_auroc(id, 3, ood, 3), 7.5 / 9, 1e-12);
}

static void auroc_matches_pair_counting_on_random_scores_with_ties(void **state)
{
    (void)state;
    enum { NI = 300, NO = 170 };
    float id[NI], ood[NO];
    test_rng rng = {12345};
    /* Scores on a grid of 11 values so ties are common; id shifted up. */
    for (int i = 0; i < NI; i++) id[i] = floorf(test_uniform(&rng, 2, 13)) / 10;
    for (int i = 0; i < NO; i++) ood[i] = floorf(test_uniform(&rng, 0, 11)) / 10;
    double won = 0;
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NO; j++) won += id[i] > ood[j] ? 1 : id[i] == ood[j] ? 0.5 : 0;
    expect_near(vka_metric_auroc(id, NI, ood, NO), won / (NI * (double)NO), 1e-12);
}

static void fpr95_accepts_ood_tied_with_the_threshold(void **state)
{
    (void)state;
    /* id 1..20: 95% TPR needs 19 accepted, so the threshold is the 19th largest, 2.
     * OOD >= 2: 2 (tied), 10, 25 -> 3 of 6. */
    float id[20], ood[] = {0.5f, 1, 1.5f, 2, 10, 25};
    for (int i = 0; i < 20; i++) id[i] = (float)(20 - i);
    expect_near(vka_metric_fpr95(id, 20, ood, 6), 0.5, 0);
    /* At 100% TPR the threshold is the smallest id score, 1: 1, 1.5, 2, 10, 25. */
    expect_near(vka_metric_fpr_at_tpr(id, 20, ood, 6, 1.0), 5.0 / 6, 1e-12);
}

static void fpr95_hand_cases(void **state)
{
    (void)state;
    float same[] = {0.4f, 0.4f, 0.4f};
    expect_near(vka_metric_fpr95(same, 3, same, 2), 1.0, 0);   /* all tie: all accepted */
    float id[] = {0.9f, 0.8f, 0.7f}, ood[] = {0.6f, 0.1f};
    expect_near(vka_metric_fpr95(id, 3, ood, 2), 0.0, 0);      /* separated */
    /* 100 id scores 0.01..1.00: ceil(95) = 95 accepted, threshold 0.06; OOD 0.05 rejected,
     * 0.06 and 0.5 accepted. */
    float many[100], o[] = {0.05f, 0.06f, 0.5f, 0.0f};
    for (int i = 0; i < 100; i++) many[i] = (float)(i + 1) / 100;
    expect_near(vka_metric_fpr95(many, 100, o, 4), 0.5, 0);
    /* 10 id scores: ceil(9.5) = 10, so the threshold is the lowest id score. */
    float ten[10], o2[] = {0.1f, 0.15f};
    for (int i = 0; i < 10; i++) ten[i] = (float)(i + 1) / 10;
    expect_near(vka_metric_fpr95(ten, 10, o2, 2), 1.0, 0);
}

/* ---- PNG figures ---------------------------------------------------------------------------- */

static char dir[256];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vka_test_metrics_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* Decodes an RGB PNG; fails the test unless it is VKA_PLOT_WIDTH x VKA_PLOT_HEIGHT. */
static uint8_t *read_png(const char *path)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) fail_msg("%s: %s", path, img.message);
    assert_int_equal(img.width, VKA_PLOT_WIDTH);
    assert_int_equal(img.height, VKA_PLOT_HEIGHT);
    img.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(px);
    if (!png_image_finish_read(&img, NULL, px, 0, NULL)) fail_msg("%s: %s", path, img.message);
    return px;
}

/* Pixels of colour (r, g, b) in rows y0..y1-1 and columns x0..x1-1. */
static int count_colour(const uint8_t *px, int x0, int x1, int y0, int y1, int r, int g, int b)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = px + 3 * (y * VKA_PLOT_WIDTH + x);
            n += p[0] == r && p[1] == g && p[2] == b;
        }
    return n;
}

static void reliability_png_decodes_with_bars_in_bar_colour(void **state)
{
    (void)state;
    float conf[] = {0.95f, 0.9f, 0.85f, 0.55f, 0.52f, 0.3f, 0.7f, 0.72f};
    uint8_t correct[] = {1, 1, 0, 1, 0, 0, 1, 0};
    vka_calibration_bins b;
    double ece = vka_metric_ece(&b, conf, correct, 8);
    char path[300], title[64];
    snprintf(path, sizeof path, "%s/reliability.png", dir);
    snprintf(title, sizeof title, "ECE %.3f", ece);
    TEST_OK(vka_plot_reliability_png(path, &b, title));
    uint8_t *px = read_png(path);
    /* The rows just above the x axis (legend swatches are at the top): the high
     * confidence bars, on the right half, are blue; the left half has no bar. */
    int low = VKA_PLOT_HEIGHT * 3 / 4, high = VKA_PLOT_HEIGHT * 5 / 6;
    assert_true(count_colour(px, VKA_PLOT_WIDTH / 2, VKA_PLOT_WIDTH, low, high, 31, 119, 180) > 500);
    assert_int_equal(count_colour(px, 100, 180, low, high, 31, 119, 180), 0);
    free(px);
    assert_int_equal(vka_plot_reliability_png(path, &(vka_calibration_bins){0}, NULL), VKA_ERROR_INVALID_ARGUMENT);
}

static void histogram_png_shows_both_sets_in_their_blended_colours(void **state)
{
    (void)state;
    enum { NA = 500, NB = 300 };
    float a[NA], b[NB + 1];
    test_rng rng = {77};
    for (int i = 0; i < NA; i++) a[i] = test_uniform(&rng, 0.0f, 0.4f);   /* left */
    for (int i = 0; i < NB; i++) b[i] = test_uniform(&rng, 0.6f, 1.0f);   /* right */
    b[NB] = NAN;                                                           /* skipped */
    char path[300];
    snprintf(path, sizeof path, "%s/hist.png", dir);
    TEST_OK(vka_plot_histograms_png(path, a, NA, b, NB + 1, "In-dist", "OOD", "Max prob"));
    uint8_t *px = read_png(path);
    /* 50% over white: blue -> (143, 187, 218), orange -> (255, 191, 135). */
    int low = VKA_PLOT_HEIGHT * 3 / 4, high = VKA_PLOT_HEIGHT * 5 / 6, mid = VKA_PLOT_WIDTH / 2 + 40;
    assert_true(count_colour(px, 0, mid, low, high, 143, 187, 218) > 500);
    assert_int_equal(count_colour(px, 0, mid, low, high, 255, 191, 135), 0);
    assert_true(count_colour(px, mid, VKA_PLOT_WIDTH, low, high, 255, 191, 135) > 500);
    assert_int_equal(count_colour(px, mid, VKA_PLOT_WIDTH, low, high, 143, 187, 218), 0);
    free(px);
    float none[] = {NAN, INFINITY};
    assert_int_equal(vka_plot_histograms_png(path, none, 2, none, 1, NULL, NULL, NULL), VKA_ERROR_INVALID_ARGUMENT);
}

static void line_png_draws_each_series_where_its_data_lies(void **state)
{
    (void)state;
    /* Blue falls from the top left, orange (markers) rises from the bottom left. */
    double x[5] = {0, 1, 2, 3, 4}, down[5] = {10, 8, 6, 4, 2}, up[5] = {0, 1, NAN, 3, 4};
    vka_plot_series s[2] = {{"DOWN", x, down, 5, 0}, {"UP", x, up, 5, 1}};
    char path[300];
    snprintf(path, sizeof path, "%s/lines.png", dir);
    TEST_OK(vka_plot_lines_png(path, s, 2, "STEP", "LOSS", "CURVES"));
    uint8_t *px = read_png(path);
    /* The box's lower-left quarter holds orange's start, not blue; its lower right blue's end. */
    int low = VKA_PLOT_HEIGHT * 2 / 3, bottom = VKA_PLOT_HEIGHT - 80, mid = VKA_PLOT_WIDTH / 2;
    assert_true(count_colour(px, 90, mid, low, bottom, 255, 127, 14) > 20);
    assert_int_equal(count_colour(px, 90, mid, low, bottom, 31, 119, 180), 0);
    assert_true(count_colour(px, mid, VKA_PLOT_WIDTH - 20, low, bottom, 31, 119, 180) > 20);
    free(px);
    double none[2] = {NAN, INFINITY};
    vka_plot_series empty = {"NONE", none, none, 2, 0};
    assert_int_equal(vka_plot_lines_png(path, &empty, 1, NULL, NULL, NULL), VKA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(vka_plot_lines_png(path, s, 0, NULL, NULL, NULL), VKA_ERROR_INVALID_ARGUMENT);
    vka_plot_series five[5] = {s[0], s[0], s[0], s[0], s[0]};
    assert_int_equal(vka_plot_lines_png(path, five, 5, NULL, NULL, NULL), VKA_ERROR_INVALID_ARGUMENT);
}

static void plots_report_an_unwritable_path(void **state)
{
    (void)state;
    vka_calibration_bins b = {.bins = 15, .total = 1, .count = {1}};
    char path[300];
    snprintf(path, sizeof path, "%s/missing/dir/r.png", dir);
    assert_int_equal(vka_plot_reliability_png(path, &b, NULL), VKA_ERROR_IO);
    float v = 1;
    assert_int_equal(vka_plot_histograms_png(path, &v, 1, &v, 1, NULL, NULL, NULL), VKA_ERROR_IO);
    double one = 1;
    assert_int_equal(vka_plot_lines_png(path, &(vka_plot_series){"A", &one, &one, 1, 1}, 1, NULL, NULL, NULL),
                     VKA_ERROR_IO);
    assert_int_equal(access(path, F_OK), -1);
}

/* ---- the report's layer: scores and clean metrics from per-sample outputs ---------- */

/* The three OOD scores from hand-made outputs: max softmax, minus the uncertainty (a sign
 * dropped would turn an AUROC of 1 into 0), energy; then the AUROC they give. */
static void scores_are_msp_minus_uncertainty_and_energy(void **state)
{
    (void)state;
    float logits[] = {0, 0, 2, 0, 1, 1, 3, 0, 0, 0, 0, 0};  /* 4 samples x 3 classes */
    float uncertainty[] = {0.05f, 0.1f, 0.4f, 0.9f};
    uint8_t labels[] = {0, 2, 1, 0};
    vka_eval_outputs o = {.n = 4, .classes = 3, .logits = logits, .calibrated = logits, .uncertainty = uncertainty,
                          .labels = labels};
    vka_logger lg = {0};
    float *s[VKA_SCORE_COUNT];
    TEST_OK(vka_scores_compute(&lg, &o, s));
    const double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0);
    expect_near(s[VKA_SCORE_MSP][0], e2 / (e2 + 2), 1e-7);
    expect_near(s[VKA_SCORE_MSP][1], e1 / (2 * e1 + 1), 1e-7);
    expect_near(s[VKA_SCORE_MSP][2], e3 / (e3 + 2), 1e-7);
    expect_near(s[VKA_SCORE_MSP][3], 1.0 / 3, 1e-7);
    for (int i = 0; i < 4; i++) expect_near(s[VKA_SCORE_UNCERTAINTY][i], -uncertainty[i], 0);
    expect_near(s[VKA_SCORE_ENERGY][0], log(e2 + 2), 1e-6);
    expect_near(s[VKA_SCORE_ENERGY][1], 1 + log(2 + 1 / e1), 1e-6);
    expect_near(s[VKA_SCORE_ENERGY][3], log(3.0), 1e-6);
    /* The first two as in-distribution, the last two (more uncertain) as OOD: separated fully. */
    expect_near(vka_metric_auroc(s[VKA_SCORE_UNCERTAINTY], 2, s[VKA_SCORE_UNCERTAINTY] + 2, 2), 1.0, 0);
    for (int k = 0; k < VKA_SCORE_COUNT; k++) free(s[k]);
}

/* Accuracy, NLL and Brier of hand-made logits, and the same for their calibrated version: the
 * argmax kept, the confidences lower. */
static void clean_metrics_of_hand_made_logits(void **state)
{
    (void)state;
    float logits[] = {2, 0, 0, 0, 3, 0};  /* 2 samples x 3 classes: predictions 0 and 1 */
    uint8_t labels[] = {0, 2};              /* the first right, the second wrong */
    vka_logger lg = {0};
    vka_clean_metrics m;
    TEST_OK(vka_clean_metrics_compute(&lg, logits, labels, 2, 3, &m));
    const double e2 = exp(2.0), e3 = exp(3.0);
    const double p0 = e2 / (e2 + 2), p1 = 1 / (e3 + 2); /* each sample's probability of its label */
    expect_near(m.accuracy, 0.5, 0);
    expect_near(m.nll, -(log(p0) + log(p1)) / 2, 1e-6);
    const double q0 = 1 / (e2 + 2), q1 = e3 / (e3 + 2); /* the other classes' probabilities */
    double brier0 = (1 - p0) * (1 - p0) + 2 * q0 * q0, brier1 = (1 - p1) * (1 - p1) + q1 * q1 + p1 * p1;
    expect_near(m.brier, (brier0 + brier1) / 2, 1e-6);
    float calibrated[6];
    for (int i = 0; i < 6; i++) calibrated[i] = logits[i] / (1 + expf(0.3f));
    vka_clean_metrics c;
    TEST_OK(vka_clean_metrics_compute(&lg, calibrated, labels, 2, 3, &c));
    expect_near(c.accuracy, m.accuracy, 0);
    assert_true(c.nll != m.nll && c.brier != m.brier);
    labels[1] = 3; /* outside the 3 classes */
    assert_int_equal(vka_clean_metrics_compute(&lg, logits, labels, 2, 3, &c), VKA_ERROR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(softmax_is_stable_and_sums_to_one),
        cmocka_unit_test(scores_are_msp_minus_uncertainty_and_energy),
        cmocka_unit_test(clean_metrics_of_hand_made_logits),
        cmocka_unit_test(energy_score_is_logsumexp_of_the_logits),
        cmocka_unit_test(max_prob_and_confidences_take_the_lowest_class_on_ties),
        cmocka_unit_test(accuracy_counts_argmax_hits),
        cmocka_unit_test(nll_matches_hand_value_and_clamps_zero_probability),
        cmocka_unit_test(brier_is_the_multiclass_sum_of_squares),
        cmocka_unit_test(metrics_return_nan_for_empty_input_or_bad_labels),
        cmocka_unit_test(ece_matches_hand_value_with_empty_bins),
        cmocka_unit_test(calibration_bins_put_edges_in_the_lower_bin),
        cmocka_unit_test(ece_is_zero_when_every_bin_is_calibrated),
        cmocka_unit_test(rms_calibration_error_matches_hand_value),
        cmocka_unit_test(smece_of_always_right_at_half_confidence_is_one_half),
        cmocka_unit_test(smece_equals_the_mean_residual_when_residuals_share_a_sign),
        cmocka_unit_test(smece_is_zero_when_outcomes_balance_at_each_confidence),
        cmocka_unit_test(smece_matches_direct_integration_on_a_small_case),
        cmocka_unit_test(smece_of_calibrated_synthetic_data_is_near_zero),
        cmocka_unit_test(auroc_is_one_half_when_all_scores_tie),
        cmocka_unit_test(auroc_is_one_for_perfect_separation_and_zero_reversed),
        cmocka_unit_test(auroc_counts_a_tie_as_one_half),
        cmocka_unit_test(auroc_matches_pair_counting_on_random_scores_with_ties),
        cmocka_unit_test(fpr95_accepts_ood_tied_with_the_threshold),
        cmocka_unit_test(fpr95_hand_cases),
        cmocka_unit_test_setup_teardown(reliability_png_decodes_with_bars_in_bar_colour, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(histogram_png_shows_both_sets_in_their_blended_colours, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(line_png_draws_each_series_where_its_data_lies, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(plots_report_an_unwritable_path, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
