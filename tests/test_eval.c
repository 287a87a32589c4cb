/* `vkanchor eval` end to end on tiny datasets: a trained checkpoint, K-anchor
 * inference, OOD, corruptions, the JSON report, figures and per-sample file;
 * and the bad inputs that must fail before any work. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "data/corrupt.h"
#include "eval/evaluator.h"
#include "test_util.h"

static char dir[256], ood_dir[256], big_dir[256], ckpt[400];

/* Trains a small model on data_dir/data into data_dir/run_name (anchored or standard). */
static vka_result train_tiny(const char *data_dir, const char *run_name, uint32_t epochs, uint32_t batch, int anchoring)
{
    vka_context *ctx = test_context();
    vka_train_config c;
    vka_train_config_default(&c);
    snprintf(c.data, sizeof c.data, "%s/data", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%s/%s", data_dir, run_name);
    c.epochs = epochs;
    c.batch_size = batch;
    c.anchoring = anchoring;
    vka_train_result r;
    vka_result rc = vka_train_run(ctx, &c, NULL, &r);
    test_context_finish(ctx);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (test_make_tiny_dataset(dir, "test_eval", 64, 24, 12) || test_make_tiny_dataset(ood_dir, "test_eval_ood", 16, 20, 12) ||
        test_make_tiny_dataset(big_dir, "test_eval_big", 16, 16, 16))
        return -1;
    /* A small anchored model, trained once for every test here. */
    vka_result rc = train_tiny(dir, "run", 2, 16, 1);
    snprintf(ckpt, sizeof ckpt, "%s/run/checkpoint.ckpt", dir);
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_dir(dir) | test_remove_dir(ood_dir) | test_remove_dir(big_dir);
}

/* vkanchor with these arguments: exit status, stderr in err. */
static int run(const char *args, char *err, size_t n) { return test_run_cli(VKANCHOR_EXE, dir, args, err, n); }

static double number_at(cJSON *root, const char *a, const char *b)
{
    cJSON *o = cJSON_GetObjectItem(root, a);
    return cJSON_GetNumberValue(b ? cJSON_GetObjectItem(o, b) : o);
}

/* The report of a whole eval as parsed JSON (asserts it is there). */
static cJSON *report_at(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    return root;
}

static void eval_writes_every_metric_and_figure(void **state)
{
    (void)state;
    char args[2048], err[8192], report[400], path[450];
    snprintf(report, sizeof report, "%s/reports/run1/report.json", dir); /* directories made as needed */
    snprintf(args, sizeof args,
             "eval --checkpoint %s --anchors 3 --ood %s/data --corruptions gaussian_noise,contrast,jpeg_compression "
             "--corruption-limit 8 --report %s --samples %s/samples.csv",
             ckpt, ood_dir, report, dir);
    if (run(args, err, sizeof err) != 0) fail_msg("eval failed: %s", err);
    cJSON *root = report_at(report);
    assert_int_equal((int)number_at(root, "config", "anchors"), 3);
    assert_int_equal((int)number_at(root, "config", "test_images"), 24);
    const char *keys[] = {"accuracy", "nll", "brier", "ece_15", "rms_ce_20", "smooth_ece"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        double v = number_at(root, "clean", keys[i]), w = number_at(root, "clean_calibrated", keys[i]);
        assert_true(v >= 0 && v <= 30 && w >= 0 && w <= 30);
    }
    /* Calibrated logits change confidences, never the argmax; with K = 3 references they do
     * change them (the uncertainty is not 0), so the NLL moves. */
    const double clean_accuracy = number_at(root, "clean", "accuracy");
    assert_true(clean_accuracy == number_at(root, "clean_calibrated", "accuracy"));
    assert_true(number_at(root, "clean", "nll") != number_at(root, "clean_calibrated", "nll"));
    cJSON *ood = cJSON_GetObjectItem(root, "ood");
    const char *scores[] = {"max_softmax", "anchored_uncertainty", "energy"};
    for (int s = 0; s < 3; s++) {
        double a = number_at(ood, scores[s], "auroc"), fpr = number_at(ood, scores[s], "fpr_at_95_tpr");
        assert_true(a >= 0 && a <= 1 && fpr >= 0 && fpr <= 1);
    }
    cJSON *corr = cJSON_GetObjectItem(root, "corruptions");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(corr, "gaussian_noise")), 5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(corr, "jpeg_compression")), 5);
    double mean = number_at(corr, "mean_accuracy", NULL), sum = 0, sum5 = 0;
    const char *kinds[] = {"gaussian_noise", "contrast", "jpeg_compression"};
    for (int k = 0; k < 3; k++)
        for (int sev = 0; sev < 5; sev++) {
            double a = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(corr, kinds[k]), sev));
            assert_true(a >= 0 && a <= 1);
            sum += a, sum5 += sev == 4 ? a : 0;
        }
    /* The means are of the 15 cells (and of severity 5's 3). */
    assert_true(fabs(mean - sum / 15) < 1e-12);
    assert_true(fabs(number_at(corr, "mean_accuracy_severity_5", NULL) - sum5 / 3) < 1e-12);
    cJSON_Delete(root);
    struct stat st;
    snprintf(path, sizeof path, "%s/reports/run1/report-reliability.png", dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/reports/run1/report-uncertainty.png", dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/samples.csv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int lines = 0, right = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned index, label, prediction;
        if (lines++ == 0) continue; /* the header */
        if (sscanf(line, "%u,%u,%u,", &index, &label, &prediction) != 3) fail_msg("samples.csv: %s", line);
        assert_int_equal(index, lines - 2);
        right += label == prediction;
    }
    fclose(f);
    /* The report's accuracy is the samples' (24 images). */
    assert_true(fabs(clean_accuracy - right / 24.0) < 1e-12);
    assert_int_equal(lines, 25); /* header + 24 test images */
}

static void eval_is_deterministic_for_a_seed(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    vka_eval_outputs out[2];
    for (int i = 0; i < 2; i++) {
        vka_evaluator *e;
        TEST_OK(vka_evaluator_create(ctx, &(vka_eval_desc){.checkpoint = ckpt, .anchors = 4, .seed = 3}, &e));
        vka_dataset test;
        TEST_OK(vka_dataset_open(data, VKA_SPLIT_TEST, NULL, NULL, &test));
        TEST_OK(vka_evaluator_run(e, &test, 0, NULL, &out[i]));
        vka_dataset_free(&test);
        vka_evaluator_destroy(e);
    }
    assert_memory_equal(out[0].logits, out[1].logits, (size_t)out[0].n * out[0].classes * 4);
    assert_memory_equal(out[0].uncertainty, out[1].uncertainty, (size_t)out[0].n * 4);
    for (uint32_t i = 0; i < out[0].n; i++) assert_true(out[0].uncertainty[i] > 0); /* K > 1 references disagree */
    vka_eval_outputs_free(&out[0]);
    vka_eval_outputs_free(&out[1]);
    test_context_finish(ctx);
}

/* The last progress line logged (capture_log as the context's logger). */
static char last_progress[512];
static int progress_lines;

static void capture_log(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level >= VKA_LOG_WARNING) fprintf(stderr, "  [vkanchor] %s\n", message); /* (counted by the context) */
    if (level == VKA_LOG_INFO && strstr(message, "images evaluated")) {
        snprintf(last_progress, sizeof last_progress, "%s", message);
        progress_lines++;
    }
}

/* Progress over several passes: each batch counted once, and a line (the pass, done of
 * total, images/s, ETA) when the interval has passed (here: every batch). */
static void eval_progress_counts_every_image_of_every_pass(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    vka_evaluator *e;
    TEST_OK(vka_evaluator_create(ctx, &(vka_eval_desc){.checkpoint = ckpt, .anchors = 3, .batch = 5, .seed = 3}, &e));
    vka_dataset test;
    TEST_OK(vka_dataset_open(data, VKA_SPLIT_TEST, NULL, NULL, &test));
    vka_log_fn saved = ctx->logger.fn; /* (only the function: the validation count stays as it runs) */
    ctx->logger.fn = capture_log;
    progress_lines = 0;
    e->progress = (vka_eval_progress){.total = test.count + 7, .interval = 0};
    snprintf(e->progress.pass, sizeof e->progress.pass, "clean");
    vka_eval_outputs out[2];
    TEST_OK(vka_evaluator_run(e, &test, 0, NULL, &out[0]));
    assert_int_equal(e->progress.done, test.count);
    assert_int_equal(progress_lines, (test.count + 4) / 5); /* one per batch of 5 */
    snprintf(e->progress.pass, sizeof e->progress.pass, "fog severity 2");
    vka_corrupt_desc cd = {.type = VKA_CORRUPT_FOG, .severity = 2};
    TEST_OK(vka_evaluator_run(e, &test, 7, &cd, &out[1]));
    ctx->logger.fn = saved;
    char want[128];
    snprintf(want, sizeof want, "fog severity 2: %u of %u images evaluated (100%%), ", test.count + 7, test.count + 7);
    if (!strstr(last_progress, want) || !strstr(last_progress, "images/s, ETA 0m00s"))
        fail_msg("last progress line: %s", last_progress);
    vka_eval_outputs_free(&out[0]);
    vka_eval_outputs_free(&out[1]);
    vka_dataset_free(&test);
    vka_evaluator_destroy(e);
    test_context_finish(ctx);
}

/* The K references are distinct training images (the released code draws them by randperm):
 * asked for as many as there are, every one is drawn once; the same seed draws the same. */
static void the_references_are_distinct_training_images(void **state)
{
    (void)state;
    enum { N = 64 };
    uint32_t a[N], b[N];
    int seen[N] = {0};
    assert_int_equal(vka_eval_reference_indices(5, N, N, a), 0);
    for (int k = 0; k < N; k++) {
        assert_true(a[k] < N);
        if (seen[a[k]]++) fail_msg("training image %u drawn twice", a[k]);
    }
    assert_int_equal(vka_eval_reference_indices(5, N, N, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(vka_eval_reference_indices(6, N, N, b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(vka_eval_reference_indices(5, N + 1, N, b), -1);
}

static void bad_inputs_fail_before_any_work(void **state)
{
    (void)state;
    char args[2048], err[8192];
    snprintf(args, sizeof args, "eval --checkpoint %s --anchors 1000 --report %s/r.json", ckpt, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "--anchors 1000"));
    snprintf(args, sizeof args, "eval --checkpoint %s --data %s/data --report %s/r.json", ckpt, big_dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "12x12"));
    snprintf(args, sizeof args, "eval --checkpoint %s --ood %s/data --report %s/r.json", ckpt, big_dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "--ood"));
    snprintf(args, sizeof args, "eval --checkpoint %s --corruptions saturate --report %s/r.json", ckpt, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "saturate"));
    snprintf(args, sizeof args, "eval --checkpoint %s/data/t10k-images-idx3-ubyte --report %s/none/r.json", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "checkpoint"));
    char none[400];
    snprintf(none, sizeof none, "%s/none/r.json", dir);
    if (access(none, F_OK) == 0) fail_msg("a failed eval left an empty report behind: %s", none);
    snprintf(none, sizeof none, "%s/none", dir);
    if (access(none, F_OK) == 0) fail_msg("a failed eval left the directory it made behind: %s", none);
    /* An unwritable report path fails at once, naming it, not after the whole evaluation. */
    snprintf(args, sizeof args, "eval --checkpoint %s --report /proc/no-such-dir/r.json", ckpt);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "/proc/no-such-dir"));
    assert_int_equal(run("eval", err, sizeof err), 2);
    assert_int_equal(run("eval --checkpoint x --anchors 0", err, sizeof err), 2);
    assert_int_equal(run("eval --checkpoint x --batch-size 4294967297", err, sizeof err), 2);
    assert_non_null(strstr(err, "--batch-size 4294967297"));
    assert_int_equal(run("eval --checkpoint x extra", err, sizeof err), 2);
    assert_non_null(strstr(err, "'extra'"));
}

/* A file's bytes (NULL if unreadable); *n its size. */
static unsigned char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*n + 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) free(b), b = NULL;
    fclose(f);
    return b;
}

/* Outputs that would destroy something are refused before any work, naming why, and leave
 * everything as it was: the checkpoint itself as --report or --samples (the model would be lost),
 * one file given as two outputs, a symbolic link or a special file as the report (a rename would
 * replace the link or the node itself). */
static void outputs_that_would_destroy_an_input_or_a_special_file_are_refused(void **state)
{
    (void)state;
    char args[2048], err[8192], path[450], link_path[450];
    long before_n = 0, after_n = 0;
    unsigned char *before = slurp(ckpt, &before_n);
    assert_non_null(before);
    snprintf(args, sizeof args, "eval --checkpoint %s --report %s", ckpt, ckpt);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "--report") || !strstr(err, "the same file as")) fail_msg("report over its checkpoint: %s", err);
    snprintf(path, sizeof path, "%s/run/../run/checkpoint.ckpt", dir); /* another name for it */
    snprintf(args, sizeof args, "eval --checkpoint %s --samples %s --report %s/r2.json", ckpt, path, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "--samples") || !strstr(err, "the same file as")) fail_msg("samples over the checkpoint: %s", err);
    unsigned char *after = slurp(ckpt, &after_n);
    assert_non_null(after);
    assert_true(after_n == before_n && memcmp(before, after, (size_t)before_n) == 0);
    free(before), free(after);
    /* One path for two outputs, in a directory not made yet (nothing made either). */
    snprintf(args, sizeof args, "eval --checkpoint %s --report %s/twice/o.json --samples %s/twice/o.json", ckpt, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "the same file as")) fail_msg("one file for two outputs: %s", err);
    snprintf(path, sizeof path, "%s/twice", dir);
    if (access(path, F_OK) == 0) fail_msg("a refused eval made %s", path);
    /* A symbolic link (dangling: following it would create its target) stays a link. */
    snprintf(link_path, sizeof link_path, "%s/link.json", dir);
    snprintf(path, sizeof path, "%s/link-target.json", dir);
    assert_int_equal(symlink(path, link_path), 0);
    snprintf(args, sizeof args, "eval --checkpoint %s --report %s", ckpt, link_path);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "symbolic link")) fail_msg("report over a link: %s", err);
    struct stat st;
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_not_equal(access(path, F_OK), 0);
    unlink(link_path);
    /* An output inside the dataset's own directory (its test labels, here) and a samples file
     * named as the report's temporary are refused. */
    snprintf(args, sizeof args, "eval --checkpoint %s --data %s/data --samples %s/data/t10k-labels-idx1-ubyte --report "
             "%s/r3.json", ckpt, dir, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "inside the dataset directory")) fail_msg("samples into the dataset: %s", err);
    /* ... a dataset given by name too (here --ood mnist, found under $VKANCHOR_DATA/mnist). */
    char named[450];
    snprintf(named, sizeof named, "%s/named", dir);
    assert_int_equal(mkdir(named, 0755), 0);
    snprintf(args, sizeof args, "cp -r %s/data %s/mnist", ood_dir, named);
    assert_int_equal(system(args), 0);
    setenv("VKANCHOR_DATA", named, 1);
    snprintf(args, sizeof args, "eval --checkpoint %s --ood mnist --report %s/mnist/r5.json", ckpt, named);
    int named_rc = run(args, err, sizeof err);
    unsetenv("VKANCHOR_DATA");
    assert_int_equal(named_rc, 1);
    if (!strstr(err, "inside the dataset directory")) fail_msg("a report into a named dataset: %s", err);
    snprintf(args, sizeof args, "eval --checkpoint %s --report %s/r4.json --samples %s/r4.json.tmp", ckpt, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "the same file as")) fail_msg("samples as the report's temporary: %s", err);
    /* A FIFO stands in for a device (a regression must not replace a real one on the test machine). */
    snprintf(path, sizeof path, "%s/fifo.json", dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    snprintf(args, sizeof args, "eval --checkpoint %s --report %s", ckpt, path);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "not a regular file")) fail_msg("report over a FIFO: %s", err);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    unlink(path);
}

/* A standard (not anchored) model has no references to take: --anchors is said to do nothing,
 * and the evaluation runs without them. */
static void a_standard_model_says_anchors_do_nothing(void **state)
{
    (void)state;
    TEST_OK(train_tiny(dir, "standard", 1, 16, 0));
    char args[2048], err[8192];
    snprintf(args, sizeof args, "eval --checkpoint %s/standard/checkpoint.ckpt --anchors 3 --report %s/standard.json",
             dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    if (!strstr(err, "--anchors 3 does nothing")) fail_msg("eval of a standard model with --anchors 3: %s", err);
    snprintf(args, sizeof args, "eval --checkpoint %s/standard/checkpoint.ckpt --report %s/standard.json", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    if (strstr(err, "does nothing")) fail_msg("the default --anchors warned: %s", err);
}

/* Flags do what the help says: --limit caps the corruption images too; with --anchors 1 the
 * anchored uncertainty (0 everywhere with one reference) is left out of --ood, with a warning,
 * not reported as an AUROC of 0.5; an unknown corruption name is named with the valid ones;
 * images outside the corruption suite's sizes are refused before any work. */
static void eval_flags_do_what_the_help_says(void **state)
{
    (void)state;
    char args[2048], err[8192], report[400];
    snprintf(report, sizeof report, "%s/flags.json", dir);
    snprintf(args, sizeof args, "eval --checkpoint %s --anchors 1 --ood %s/data --limit 6 --corruptions contrast "
             "--report %s --samples %s/k1.csv", ckpt, ood_dir, report, dir);
    if (run(args, err, sizeof err) != 0) fail_msg("eval failed: %s", err);
    {   /* ... and the per-sample uncertainty column is left empty, not filled with zeros. */
        char csv[450], line[256];
        snprintf(csv, sizeof csv, "%s/k1.csv", dir);
        FILE *f = fopen(csv, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f)); /* header */
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        if (line[strlen(line) - 2] != ',') fail_msg("a K=1 sample line: %s", line);
    }
    if (!strstr(err, "--anchors 1: the anchored uncertainty needs")) fail_msg("no K=1 warning: %s", err);
    cJSON *root = report_at(report);
    assert_int_equal((int)number_at(root, "corruptions", "images_per_severity"), 6);
    cJSON *ood = cJSON_GetObjectItem(root, "ood");
    assert_non_null(cJSON_GetObjectItem(ood, "max_softmax"));
    assert_null(cJSON_GetObjectItem(ood, "anchored_uncertainty"));
    cJSON_Delete(root);
    snprintf(args, sizeof args, "eval --checkpoint %s --corruptions gaussian_noise,foo --report %s", ckpt, report);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "'foo' is not a corruption") || !strstr(err, "gaussian_noise, shot_noise"))
        fail_msg("an unknown corruption: %s", err);
    /* 6x6 images (the model takes them, the corruption suite not): refused before the clean
     * evaluation, whose results would otherwise be lost with the late failure. */
    char small[256];
    assert_int_equal(test_make_tiny_dataset(small, "test_eval_small", 32, 8, 6), 0);
    TEST_OK(train_tiny(small, "run", 1, 8, 1));
    snprintf(args, sizeof args, "eval --checkpoint %s/run/checkpoint.ckpt --corruptions contrast --report %s/r.json",
             small, small);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "these are 6x6") || strstr(err, "accuracy")) fail_msg("6x6 images and corruptions: %s", err);
    test_remove_dir(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eval_writes_every_metric_and_figure),
        cmocka_unit_test(the_references_are_distinct_training_images),
        cmocka_unit_test(eval_progress_counts_every_image_of_every_pass),
        cmocka_unit_test(eval_is_deterministic_for_a_seed),
        cmocka_unit_test(bad_inputs_fail_before_any_work),
        cmocka_unit_test(outputs_that_would_destroy_an_input_or_a_special_file_are_refused),
        cmocka_unit_test(a_standard_model_says_anchors_do_nothing),
        cmocka_unit_test(eval_flags_do_what_the_help_says),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
