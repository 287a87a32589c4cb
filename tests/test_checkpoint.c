/* Checkpoint files: round trip, and every truncation, bit flip or failed write
 * is caught without losing the previous good file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test_util.h"
#include "train/checkpoint.h"

static char dir[256], path[300];
static vka_logger lg;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vka_test_ckpt_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static const float weights[5] = {1, -2, 3.5f, 0, 1e-7f};
static const char config[] = "{\"model\":\"cnn\"}";

static void write_sample(void)
{
    uint64_t step = 1234;
    vka_ckpt_section s[] = {{"config", config, sizeof config}, {"weights", weights, sizeof weights},
                            {"step", &step, 8}, {"empty", NULL, 0}};
    TEST_OK(vka_checkpoint_write(&lg, path, s, 4));
}

static unsigned char *slurp(size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *d = malloc(1 << 16);
    *n = fread(d, 1, 1 << 16, f);
    fclose(f);
    return d;
}

static void spit(const unsigned char *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
}

static void checkpoint_round_trips_every_section(void **state)
{
    (void)state;
    write_sample();
    vka_checkpoint ck;
    TEST_OK(vka_checkpoint_read(&lg, path, &ck));
    assert_int_equal(ck.count, 4);
    const vka_ckpt_section *w = vka_checkpoint_find(&ck, "weights");
    assert_non_null(w);
    assert_int_equal(w->bytes, sizeof weights);
    assert_memory_equal(w->data, weights, sizeof weights);
    assert_string_equal((const char *)vka_checkpoint_find(&ck, "config")->data, config);
    const vka_ckpt_section *st = vka_checkpoint_find(&ck, "step");
    assert_non_null(st);
    assert_int_equal(st->bytes, 8);
    uint64_t step;
    memcpy(&step, st->data, 8);
    assert_int_equal(step, 1234);
    assert_int_equal(vka_checkpoint_find(&ck, "empty")->bytes, 0);
    /* Text sections: the configuration; not an empty one, nor bytes without a terminating NUL. */
    assert_string_equal(vka_checkpoint_text(&ck, "config"), config);
    assert_null(vka_checkpoint_text(&ck, "empty"));
    assert_null(vka_checkpoint_text(&ck, "weights"));
    assert_null(vka_checkpoint_text(&ck, "nope"));
    assert_null(vka_checkpoint_find(&ck, "nope"));
    vka_checkpoint_free(&ck);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* no temporary left behind */
}

static void checkpoint_rejects_every_truncation_and_every_bit_flip(void **state)
{
    (void)state;
    write_sample();
    size_t n;
    unsigned char *good = slurp(&n);
    vka_checkpoint ck;
    for (size_t len = 0; len < n; len++) {
        spit(good, len);
        if (vka_checkpoint_read(&lg, path, &ck) == VKA_SUCCESS) fail_msg("accepted a file cut to %zu of %zu", len, n);
    }
    unsigned char *bad = malloc(n);
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(bad, good, n);
            bad[i] ^= (unsigned char)(1u << bit);
            spit(bad, n);
            if (vka_checkpoint_read(&lg, path, &ck) == VKA_SUCCESS) fail_msg("accepted a flip of bit %d in byte %zu", bit, i);
        }
    /* Another version, with a valid checksum, is refused by name. */
    memcpy(bad, good, n);
    bad[8] = 99;
    uint32_t crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), bad, (uInt)(n - 4));
    memcpy(bad + n - 4, &crc, 4);
    spit(bad, n);
    assert_int_equal(vka_checkpoint_read(&lg, path, &ck), VKA_ERROR_FORMAT);
    assert_non_null(strstr(lg.last_error, "version 99"));
    free(bad);
    free(good);
}

static void failed_write_keeps_the_previous_checkpoint(void **state)
{
    (void)state;
    write_sample();
    size_t n;
    unsigned char *before = slurp(&n);
    /* The temporary's name is taken by a directory: the write must fail cleanly. */
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(mkdir(tmp, 0755), 0);
    float other[2] = {9, 9};
    vka_ckpt_section s[] = {{"weights", other, sizeof other}};
    assert_int_equal(vka_checkpoint_write(&lg, path, s, 1), VKA_ERROR_IO);
    /* Read, a directory is named as one, with the file it likely holds. */
    vka_checkpoint ck;
    assert_int_equal(vka_checkpoint_read(&lg, tmp, &ck), VKA_ERROR_IO);
    if (!strstr(lg.last_error, "a directory; give its checkpoint file")) fail_msg("a directory: %s", lg.last_error);
    rmdir(tmp);
    size_t m;
    unsigned char *after = slurp(&m);
    assert_int_equal(n, m);
    assert_memory_equal(before, after, n);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checkpoint_round_trips_every_section),
        cmocka_unit_test(checkpoint_rejects_every_truncation_and_every_bit_flip),
        cmocka_unit_test(failed_write_keeps_the_previous_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
