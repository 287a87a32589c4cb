/* The training loop on a tiny synthetic IDX dataset: same seed -> same weights,
 * resuming continues bit for bit (at an epoch boundary and mid-epoch), a
 * diverging run stops without touching the last good checkpoint, and the
 * masked-batch BN switch works end to end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return test_make_tiny_dataset(dir, "test_train", 64, 24, 12);
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_dir(dir);
}

static vka_train_config config(const char *run, uint32_t epochs)
{
    vka_train_config c;
    vka_train_config_default(&c);
    snprintf(c.data, sizeof c.data, "%s/data", dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%s/%s", dir, run);
    c.epochs = epochs;
    c.batch_size = 16; /* 4 steps per epoch */
    c.crop_pad = 1;
    c.mask_prob = 0.5; /* both kinds of batch within a few steps */
    c.seed = 7;
    return c;
}

static vka_result train(vka_context *ctx, const vka_train_config *c, vka_train_result *r)
{
    return vka_train_run(ctx, c, NULL, r);
}

/* The train_loss and train_accuracy fields of epoch `epoch`'s record in a run's metrics. */
static void epoch_record(const char *run, int epoch, char *out, size_t n)
{
    char path[512], line[1024], tag[64];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
    snprintf(tag, sizeof tag, "\"type\":\"epoch\",\"epoch\":%d,", epoch);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, tag)) {
            const char *a = strstr(line, "\"train_loss\""), *b = strstr(line, ",\"test_accuracy\"");
            assert_true(a && b && b > a);
            snprintf(out, n, "%.*s", (int)(b - a), a);
        }
    fclose(f);
    if (!out[0]) fail_msg("%s has no record of epoch %d", path, epoch);
}

/* The last line of a run's metrics.jsonl. */
static void last_record(const char *run, char *out, size_t n)
{
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = 0;
    while (fgets(line, sizeof line, f)) snprintf(out, n, "%s", line);
    fclose(f);
}

/* A section of a run's checkpoint (malloc'd). */
static void *section_of(const char *run, const char *name, uint64_t *bytes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/checkpoint.ckpt", dir, run);
    vka_logger lg = {0};
    vka_checkpoint ck;
    TEST_OK(vka_checkpoint_read(&lg, path, &ck));
    const vka_ckpt_section *p = vka_checkpoint_find(&ck, name);
    assert_non_null(p);
    void *copy = malloc(p->bytes);
    memcpy(copy, p->data, p->bytes);
    *bytes = p->bytes;
    vka_checkpoint_free(&ck);
    return copy;
}

/* The parameters section of a run's checkpoint (malloc'd). */
static void *params_of(const char *run, uint64_t *bytes)
{
    return section_of(run, "params", bytes);
}

static void same_seed_gives_bit_identical_weights(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config a = config("same_a", 1), b = config("same_b", 1), other = config("other", 1);
    other.seed = 8;
    TEST_OK(train(ctx, &a, &r));
    assert_int_equal(r.epochs_done, 1);
    assert_true(r.test_accuracy >= 0 && r.test_accuracy <= 1);
    TEST_OK(train(ctx, &b, &r));
    TEST_OK(train(ctx, &other, &r));
    uint64_t na, nb, no;
    void *pa = params_of("same_a", &na), *pb = params_of("same_b", &nb), *po = params_of("other", &no);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    assert_memory_not_equal(pa, po, na);
    free(pa), free(pb), free(po);
    test_context_finish(ctx);
}

static void resuming_continues_exactly(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config straight = config("straight", 2);
    TEST_OK(train(ctx, &straight, &r));
    assert_int_equal(r.steps_done, 8);
    /* One epoch, then resume for the second (the same --epochs: it shapes the schedule). */
    vka_train_config first = config("first", 2), second = config("second", 2);
    first.max_steps = 4;
    TEST_OK(train(ctx, &first, &r));
    assert_int_equal(r.epochs_done, 1);
    snprintf(second.resume, sizeof second.resume, "%s/first/checkpoint.ckpt", dir);
    TEST_OK(train(ctx, &second, &r));
    /* Stopped mid-epoch (as Ctrl-C does), then resumed. */
    vka_train_config part = config("part", 2), rest = config("rest", 2);
    part.max_steps = 6;
    TEST_OK(train(ctx, &part, &r));
    assert_int_equal(r.steps_done, 6);
    /* Its records end with its last step's, with the loss and accuracy of the epoch's steps so far
     * (a run shorter than the progress interval has that record alone). */
    char last[1024];
    last_record("part", last, sizeof last);
    if (!strstr(last, "\"type\":\"step\",\"epoch\":2,\"step\":6,\"loss\":") || strstr(last, "null"))
        fail_msg("part's last record: %s", last);
    snprintf(rest.resume, sizeof rest.resume, "%s/part/checkpoint.ckpt", dir);
    TEST_OK(train(ctx, &rest, &r));
    /* The epoch record after a mid-epoch resume covers the whole epoch, as in the straight run:
     * the statistics of its steps before the stop come from the checkpoint. */
    char want[160], got[160];
    epoch_record("straight", 2, want, sizeof want);
    epoch_record("rest", 2, got, sizeof got);
    assert_string_equal(got, want);
    /* ... and, resumed into another directory, its metrics start with the run's records before
     * the checkpoint (epoch 1's here), so that its curves show the whole run. */
    epoch_record("straight", 1, want, sizeof want);
    epoch_record("rest", 1, got, sizeof got);
    assert_string_equal(got, want);
    uint64_t n1, n2, n3;
    void *p1 = params_of("straight", &n1), *p2 = params_of("second", &n2), *p3 = params_of("rest", &n3);
    assert_memory_equal(p1, p2, n1);
    assert_memory_equal(p1, p3, n1);
    free(p1), free(p2), free(p3);
    test_context_finish(ctx);
}

/* Stopped before its first step (Ctrl-C during start-up), a fresh run says it saved nothing and
 * leaves no half-made run (a configuration without a checkpoint) in its directory. */
static void a_run_stopped_before_its_first_step_leaves_nothing(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config c = config("stopped", 1);
    volatile int stop = 1;
    TEST_OK(vka_train_run(ctx, &c, &stop, &r));
    assert_true(r.interrupted);
    assert_false(r.saved);
    assert_int_equal(r.steps_done, 0);
    static const char *const files[] = {"config.json", "metrics.jsonl", "checkpoint.ckpt"};
    for (int i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/stopped/%s", dir, files[i]);
        if (access(path, F_OK) == 0) fail_msg("a run stopped before its first step left %s", path);
    }
    test_context_finish(ctx);
}

static void divergence_stops_and_keeps_the_last_good_checkpoint(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config good = config("good", 1);
    TEST_OK(train(ctx, &good, &r));
    uint64_t n;
    void *before = params_of("good", &n);
    vka_train_config bad = config("good", 2);
    snprintf(bad.resume, sizeof bad.resume, "%s/good/checkpoint.ckpt", dir);
    bad.lr = 1e30;
    bad.schedule = VKA_SCHED_CONSTANT;
    assert_int_not_equal(train(ctx, &bad, &r), VKA_SUCCESS);
    assert_true(r.diverged);
    assert_non_null(strstr(vka_context_last_error(ctx), "diverged"));
    void *after = params_of("good", &n);
    assert_memory_equal(before, after, n);
    free(before), free(after);
    test_context_finish(ctx);
}

/* A learning rate far too large drives the loss to huge finite values long before it
 * overflows; the run stops at the first loss past 1000 x ln(classes) instead of training on. */
static void an_exploding_finite_loss_stops_the_run(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config c = config("exploding", 40);
    c.lr = 100;
    c.schedule = VKA_SCHED_CONSTANT;
    assert_int_not_equal(train(ctx, &c, &r), VKA_SUCCESS);
    assert_true(r.diverged);
    const char *msg = vka_context_last_error(ctx);
    if (!strstr(msg, "diverged") || !strstr(msg, "over 1000 x ln(classes)")) fail_msg("exploding loss: %s", msg);
    assert_true(r.steps_done > 0 && r.steps_done < 40 * 64 / c.batch_size);
    /* Diverged within the first epoch (4 steps) there is no checkpoint; later, the last one stays. */
    const char *said = r.steps_done <= 4 ? "no checkpoint was written" : "the last good checkpoint is kept";
    if (!strstr(msg, said)) fail_msg("diverged at step %llu: %s", (unsigned long long)r.steps_done, msg);
    test_context_finish(ctx);
}

/* Whether every BN running statistic is still at its start (means 0, variances 1: as many of
 * each, nothing else). */
static int bn_statistics_untouched(const char *run)
{
    uint64_t bytes;
    float *bn = section_of(run, "bn_stats", &bytes);
    uint64_t n = bytes / 4, zeros = 0, ones = 0;
    for (uint64_t i = 0; i < n; i++) zeros += bn[i] == 0.0f, ones += bn[i] == 1.0f;
    free(bn);
    return zeros + ones == n && zeros == ones;
}

/* The trainer's masking end to end: with every batch masked, `skip` leaves the BN running
 * statistics as they started and `update` moves them; the uniform target trains other weights
 * than the label one; and masking at all changes the run. */
static void masked_batches_keep_bn_statistics_and_train_toward_their_target(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config skip = config("mask_skip", 1), update = config("mask_update", 1);
    skip.mask_prob = update.mask_prob = 1;
    update.mask_bn_stats = VKA_MASK_BN_UPDATE;
    TEST_OK(train(ctx, &skip, &r));
    TEST_OK(train(ctx, &update, &r));
    assert_true(bn_statistics_untouched("mask_skip"));
    assert_false(bn_statistics_untouched("mask_update"));
    vka_train_config uniform = config("mask_uniform", 1), never = config("mask_never", 1);
    uniform.mask_prob = 1;
    uniform.mask_target = VKA_MASK_TARGET_UNIFORM;
    never.mask_prob = 0;
    TEST_OK(train(ctx, &uniform, &r));
    TEST_OK(train(ctx, &never, &r));
    assert_false(bn_statistics_untouched("mask_never"));
    uint64_t n;
    void *p_label = params_of("mask_skip", &n), *p_uniform = params_of("mask_uniform", &n);
    void *p_never = params_of("mask_never", &n);
    assert_memory_not_equal(p_label, p_uniform, n);
    assert_memory_not_equal(p_label, p_never, n);
    free(p_label), free(p_uniform), free(p_never);
    test_context_finish(ctx);
}

static void every_training_mode_runs(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_train_result r;
    vka_train_config c = config("standard", 1);
    c.anchoring = 0;
    TEST_OK(train(ctx, &c, &r));
    c = config("uniform", 1);
    c.mask_target = VKA_MASK_TARGET_UNIFORM;
    c.mask_bn_stats = VKA_MASK_BN_UPDATE;
    c.ref_pool = VKA_REF_POOL_TRAIN;
    c.optimizer = VKA_OPT_ADAMW;
    c.lr = 1e-3;
    TEST_OK(train(ctx, &c, &r));
    assert_true(r.last_loss > 0 && r.last_loss < 10);
    c = config("resnet", 1);
    c.model = VKA_MODEL_RESNET20;
    c.max_steps = 2;
    TEST_OK(train(ctx, &c, &r));
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_gives_bit_identical_weights),
        cmocka_unit_test(resuming_continues_exactly),
        cmocka_unit_test(divergence_stops_and_keeps_the_last_good_checkpoint),
        cmocka_unit_test(an_exploding_finite_loss_stops_the_run),
        cmocka_unit_test(a_run_stopped_before_its_first_step_leaves_nothing),
        cmocka_unit_test(masked_batches_keep_bn_statistics_and_train_toward_their_target),
        cmocka_unit_test(every_training_mode_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
