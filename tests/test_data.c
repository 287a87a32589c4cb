/* Dataset loaders: IDX (gzip and raw) and CIFAR binary, fed good files and every
 * kind of bad one the tests can write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test_util.h"

static char dir[256];
static char last_error[1024];

static void keep_error(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level == VKA_LOG_ERROR) snprintf(last_error, sizeof last_error, "%s", message);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vka_test_data_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const void *data, size_t n, int gz)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (n) assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        if (n) assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static char *path_of(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* An IDX image file of n images of h x w (pixel = i + j) and its labels (i % 10). */
static size_t make_idx(unsigned char *img, unsigned char *lab, uint32_t n, uint32_t h, uint32_t w, size_t *lab_size)
{
    unsigned char ih[16] = {0, 0, 8, 3, n >> 24, n >> 16, n >> 8, n, h >> 24, h >> 16, h >> 8, h, w >> 24, w >> 16, w >> 8, w};
    unsigned char lh[8] = {0, 0, 8, 1, n >> 24, n >> 16, n >> 8, n};
    memcpy(img, ih, 16);
    memcpy(lab, lh, 8);
    for (uint32_t i = 0; i < n * h * w; i++) img[16 + i] = (unsigned char)(i / (h * w) + i % (h * w));
    for (uint32_t i = 0; i < n; i++) lab[8 + i] = (unsigned char)(i % 10);
    *lab_size = 8 + n;
    return 16 + (size_t)n * h * w;
}

static void idx_loads_gzip_and_raw_files_alike(void **state)
{
    (void)state;
    unsigned char img[16 + 3 * 4 * 5], lab[8 + 3];
    size_t lab_size, img_size = make_idx(img, lab, 3, 4, 5, &lab_size);
    for (int gz = 0; gz < 2; gz++) {
        write_file("img", img, img_size, gz);
        write_file("lab", lab, lab_size, gz);
        vka_dataset ds;
        TEST_OK(vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds));
        assert_int_equal(ds.count, 3);
        assert_int_equal(ds.channels, 1);
        assert_int_equal(ds.height, 4);
        assert_int_equal(ds.width, 5);
        assert_memory_equal(ds.images, img + 16, 60);
        assert_memory_equal(ds.labels, lab + 8, 3);
        vka_dataset_free(&ds);
    }
}

static void idx_rejects_every_truncated_length(void **state)
{
    (void)state;
    unsigned char img[16 + 3 * 4 * 5], lab[8 + 3];
    size_t lab_size, img_size = make_idx(img, lab, 3, 4, 5, &lab_size);
    write_file("lab", lab, lab_size, 0);
    for (int gz = 0; gz < 2; gz++)
        for (size_t len = 0; len < img_size; len++) {
            write_file("img", img, len, gz);
            vka_dataset ds;
            last_error[0] = 0;
            vka_result rc = vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds);
            if (rc == VKA_SUCCESS) fail_msg("a %s file cut to %zu bytes was accepted", gz ? "gzip" : "raw", len);
            assert_non_null(strstr(last_error, "img"));
        }
    /* A gzip stream cut short, not just its content. */
    write_file("img", img, img_size, 1);
    FILE *f = fopen(path_of("img"), "rb");
    unsigned char gzbuf[512];
    size_t gzlen = fread(gzbuf, 1, sizeof gzbuf, f);
    fclose(f);
    for (size_t len = 1; len < gzlen; len++) {
        write_file("img", gzbuf, len, 0);
        vka_dataset ds;
        if (vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds) == VKA_SUCCESS)
            fail_msg("a gzip stream cut to %zu of %zu bytes was accepted", len, gzlen);
    }
}

static void idx_rejects_wrong_magic_mismatched_counts_bad_labels_and_trailing_bytes(void **state)
{
    (void)state;
    unsigned char img[16 + 3 * 4 * 5 + 1], lab[8 + 3];
    size_t lab_size, img_size = make_idx(img, lab, 3, 4, 5, &lab_size);
    vka_dataset ds;
    /* Wrong magic: the labels file given as images. */
    write_file("img", lab, lab_size, 0);
    write_file("lab", lab, lab_size, 0);
    assert_int_equal(vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds), VKA_ERROR_FORMAT);
    assert_non_null(strstr(last_error, "magic"));
    /* A directory where the images file should be: said so, not read as corrupt gzip data. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/a-directory", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(vka_dataset_load_idx(sub, path_of("lab"), keep_error, NULL, &ds), VKA_ERROR_IO);
    if (!strstr(last_error, "a directory where a data file should be")) fail_msg("a directory as images: %s", last_error);
    /* Counts that disagree: 3 images, 2 labels. */
    write_file("img", img, img_size, 0);
    unsigned char lab2[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 2};
    write_file("lab", lab2, sizeof lab2, 0);
    assert_int_equal(vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds), VKA_ERROR_FORMAT);
    assert_non_null(strstr(last_error, "3 images"));
    /* A label out of range. */
    lab[8 + 1] = 10;
    write_file("lab", lab, lab_size, 0);
    assert_int_equal(vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds), VKA_ERROR_FORMAT);
    assert_non_null(strstr(last_error, "out of range"));
    lab[8 + 1] = 1;
    /* One byte too many. */
    write_file("lab", lab, lab_size, 0);
    img[img_size] = 7;
    write_file("img", img, img_size + 1, 0);
    assert_int_equal(vka_dataset_load_idx(path_of("img"), path_of("lab"), keep_error, NULL, &ds), VKA_ERROR_FORMAT);
    assert_non_null(strstr(last_error, "trailing"));
    /* A missing file. */
    assert_int_equal(vka_dataset_load_idx(path_of("nope"), path_of("lab"), keep_error, NULL, &ds), VKA_ERROR_IO);
    assert_non_null(strstr(last_error, "nope"));
}

/* CIFAR records: label byte(s) then 3072 pixels (value = record index + plane). */
static unsigned char *make_cifar(uint32_t records, int c100, size_t *size)
{
    size_t lb = c100 ? 2 : 1, rec = lb + 3072;
    unsigned char *d = malloc(records * rec);
    for (uint32_t r = 0; r < records; r++) {
        unsigned char *p = d + r * rec;
        if (c100) p[0] = (unsigned char)(r % 20);
        p[lb - 1] = (unsigned char)(c100 ? 95 - r : r % 10);
        for (int i = 0; i < 3072; i++) p[lb + i] = (unsigned char)(r + i / 1024);
    }
    *size = records * rec;
    return d;
}

static void cifar_loads_records_and_takes_the_fine_label_of_cifar100(void **state)
{
    (void)state;
    for (int c100 = 0; c100 < 2; c100++) {
        size_t size;
        unsigned char *d = make_cifar(4, c100, &size);
        write_file("c.bin", d, size, 0);
        const char *paths[] = {path_of("c.bin"), path_of("c.bin")};
        vka_dataset ds;
        TEST_OK(vka_dataset_load_cifar(paths, 2, c100, keep_error, NULL, &ds));
        assert_int_equal(ds.count, 8);
        assert_int_equal(ds.channels, 3);
        assert_int_equal(ds.classes, c100 ? 100 : 10);
        assert_int_equal(ds.labels[5], c100 ? 94 : 1);
        assert_int_equal(ds.images[5 * 3072 + 2048], 1 + 2);
        vka_dataset_free(&ds);
        /* Truncated by one byte, and a bad label. */
        write_file("c.bin", d, size - 1, 0);
        assert_int_equal(vka_dataset_load_cifar(paths, 1, c100, keep_error, NULL, &ds), VKA_ERROR_FORMAT);
        assert_non_null(strstr(last_error, "c.bin"));
        d[c100 ? 1 : 0] = 200;
        write_file("c.bin", d, size, 0);
        assert_int_equal(vka_dataset_load_cifar(paths, 1, c100, keep_error, NULL, &ds), VKA_ERROR_FORMAT);
        assert_non_null(strstr(last_error, "out of range"));
        free(d);
    }
}

static void dataset_open_detects_the_format_of_a_directory(void **state)
{
    (void)state;
    size_t size;
    unsigned char *d = make_cifar(3, 0, &size);
    for (int i = 1; i <= 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        write_file(name, d, size, 0);
    }
    write_file("test_batch.bin", d, size, 0);
    vka_dataset ds;
    TEST_OK(vka_dataset_open(dir, VKA_SPLIT_TRAIN, keep_error, NULL, &ds));
    assert_int_equal(ds.count, 15);
    assert_int_equal(ds.channels, 3);
    assert_true(ds.std[0] > 0);
    vka_dataset_free(&ds);
    TEST_OK(vka_dataset_open(dir, VKA_SPLIT_TEST, keep_error, NULL, &ds));
    assert_int_equal(ds.count, 3);
    vka_dataset_free(&ds);
    /* An IDX directory with test files only (what scripts/fetch-mnist.sh writes) opens for eval
     * and, for training, says what it is for. */
    char idx_dir[600];
    snprintf(idx_dir, sizeof idx_dir, "%s/test-only", dir);
    assert_int_equal(mkdir(idx_dir, 0755), 0);
    unsigned char img[16 + 2 * 4 * 4], lab[8 + 2];
    size_t lab_size, img_size = make_idx(img, lab, 2, 4, 4, &lab_size);
    write_file("test-only/t10k-images-idx3-ubyte", img, img_size, 0);
    write_file("test-only/t10k-labels-idx1-ubyte", lab, lab_size, 0);
    TEST_OK(vka_dataset_open(idx_dir, VKA_SPLIT_TEST, keep_error, NULL, &ds));
    vka_dataset_free(&ds);
    assert_int_equal(vka_dataset_open(idx_dir, VKA_SPLIT_TRAIN, keep_error, NULL, &ds), VKA_ERROR_IO);
    if (!strstr(last_error, "serves eval --ood")) fail_msg("a test-only directory for training: %s", last_error);
    /* A file where the dataset's directory should be. */
    char file[700];
    snprintf(file, sizeof file, "%s/t10k-images-idx3-ubyte", idx_dir);
    assert_int_equal(vka_dataset_open(file, VKA_SPLIT_TEST, keep_error, NULL, &ds), VKA_ERROR_IO);
    if (!strstr(last_error, "a file; give the directory")) fail_msg("a file as the dataset: %s", last_error);
    free(d);
    assert_int_equal(vka_dataset_open("/nonexistent/dir", VKA_SPLIT_TRAIN, keep_error, NULL, &ds), VKA_ERROR_IO);
    assert_non_null(strstr(last_error, "neither a dataset name"));
}

static void debian_fashion_mnist_opens_by_name(void **state)
{
    (void)state;
    vka_dataset ds;
    TEST_OK(vka_dataset_open("fashion-mnist", VKA_SPLIT_TEST, keep_error, NULL, &ds));
    assert_int_equal(ds.count, 10000);
    assert_int_equal(ds.height, 28);
    assert_int_equal(ds.width, 28);
    int seen[10] = {0};
    for (uint32_t i = 0; i < ds.count; i++) seen[ds.labels[i]]++;
    for (int c = 0; c < 10; c++) assert_int_equal(seen[c], 1000);
    assert_false(ds.digits);
    vka_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idx_loads_gzip_and_raw_files_alike),
        cmocka_unit_test(idx_rejects_every_truncated_length),
        cmocka_unit_test(idx_rejects_wrong_magic_mismatched_counts_bad_labels_and_trailing_bytes),
        cmocka_unit_test(cifar_loads_records_and_takes_the_fine_label_of_cifar100),
        cmocka_unit_test(dataset_open_detects_the_format_of_a_directory),
        cmocka_unit_test(debian_fashion_mnist_opens_by_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
