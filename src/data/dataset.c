/* Datasets by name or directory: where they live, their format, their statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <math.h>

#include "data/data_internal.h"

typedef enum { FORMAT_NONE, FORMAT_IDX, FORMAT_CIFAR10, FORMAT_CIFAR100 } data_format;

typedef struct known_dataset {
    const char *name;
    data_format format;
    float mean[3], std[3];
    int digits;
} known_dataset;

/* The usual per-channel statistics of each training set. */
static const known_dataset known[] = {
    {"fashion-mnist", FORMAT_IDX, {0.2860f}, {0.3530f}, 0},
    {"mnist", FORMAT_IDX, {0.1307f}, {0.3081f}, 1},
    {"cifar10", FORMAT_CIFAR10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}, 0},
    {"cifar100", FORMAT_CIFAR100, {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}, 0},
};

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Finds `base` or `base.gz` in dir; writes the path found. */
static int find_file(const char *dir, const char *base, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, base);
    if (exists(path)) return 1;
    snprintf(path, n, "%s/%s.gz", dir, base);
    return exists(path);
}

static data_format detect(const char *dir)
{
    char p[4096];
    if (find_file(dir, "train-images-idx3-ubyte", p, sizeof p) || find_file(dir, "t10k-images-idx3-ubyte", p, sizeof p))
        return FORMAT_IDX;
    if (find_file(dir, "data_batch_1.bin", p, sizeof p) || find_file(dir, "test_batch.bin", p, sizeof p))
        return FORMAT_CIFAR10;
    if (find_file(dir, "train.bin", p, sizeof p) || find_file(dir, "test.bin", p, sizeof p)) return FORMAT_CIFAR100;
    return FORMAT_NONE;
}

static vka_result load_dir(vka_logger *lg, const char *dir, data_format format, vka_split split, vka_dataset *out)
{
    char a[4096], b[4096];
    if (format == FORMAT_IDX) {
        const char *prefix = split == VKA_SPLIT_TRAIN ? "train" : "t10k";
        char ib[64], lb[64];
        snprintf(ib, sizeof ib, "%s-images-idx3-ubyte", prefix);
        snprintf(lb, sizeof lb, "%s-labels-idx1-ubyte", prefix);
        int have_images = find_file(dir, ib, a, sizeof a), have_labels = find_file(dir, lb, b, sizeof b);
        if (!have_images || !have_labels) {
            /* No training files at all beside the test ones: a test set (scripts/fetch-mnist.sh's). */
            char t[4096];
            int test_only = split == VKA_SPLIT_TRAIN && !have_images && !have_labels &&
                            find_file(dir, "t10k-images-idx3-ubyte", t, sizeof t);
            return vka_fail(lg, VKA_ERROR_IO, "%s: missing %s or %s (.gz or raw)%s", dir, ib, lb,
                            test_only ? "; a directory with test files only (as scripts/fetch-mnist.sh writes) serves "
                                        "eval --ood, not training" : "");
        }
        return vka_dataset_load_idx(a, b, lg->fn, lg->user, out);
    }
    int c100 = format == FORMAT_CIFAR100;
    char paths[5][4096];
    const char *ptrs[5];
    uint32_t count = 0;
    if (c100 || split == VKA_SPLIT_TEST) {
        const char *base = c100 ? (split == VKA_SPLIT_TRAIN ? "train.bin" : "test.bin") : "test_batch.bin";
        if (!find_file(dir, base, paths[0], sizeof paths[0]))
            return vka_fail(lg, VKA_ERROR_IO, "%s: missing %s", dir, base);
        count = 1;
    } else {
        for (int i = 1; i <= 5; i++) {
            char base[32];
            snprintf(base, sizeof base, "data_batch_%d.bin", i);
            if (!find_file(dir, base, paths[count], sizeof paths[count]))
                return vka_fail(lg, VKA_ERROR_IO, "%s: missing %s", dir, base);
            count++;
        }
    }
    for (uint32_t i = 0; i < count; i++) ptrs[i] = paths[i];
    return vka_dataset_load_cifar(ptrs, count, c100, lg->fn, lg->user, out);
}

int vka_dataset_is_name(const char *s)
{
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(s, known[i].name) == 0) return 1;
    return 0;
}

vka_result vka_dataset_open(const char *name_or_dir, vka_split split, vka_log_fn log, void *log_user, vka_dataset *out)
{
    vka_logger lg = {.fn = log, .user = log_user};
    memset(out, 0, sizeof *out);
    const known_dataset *k = NULL;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name_or_dir, known[i].name) == 0) k = &known[i];

    char dir[4096] = "";
    if (k) {
        const char *root = getenv("VKANCHOR_DATA");
        char tried[3][4096];
        int n = 0;
        if (root && *root) snprintf(tried[n++], sizeof tried[0], "%s/%s", root, k->name);
        if (strcmp(k->name, "fashion-mnist") == 0)
            snprintf(tried[n++], sizeof tried[0], "/usr/share/datasets/fashion-mnist");
        snprintf(tried[n++], sizeof tried[0], "data/%s", k->name);
        for (int i = 0; i < n && !*dir; i++)
            if (detect(tried[i]) == k->format) memcpy(dir, tried[i], sizeof dir);
        if (!*dir) {
            const char *hint = strcmp(k->name, "fashion-mnist") == 0 ? "install the Debian package dataset-fashion-mnist"
                             : strcmp(k->name, "mnist") == 0 ? "run scripts/fetch-mnist.sh"
                                                              : "put the binary files in that directory";
            return vka_fail(&lg, VKA_ERROR_IO, "dataset '%s' not found (looked in %s%s%s%s%s): %s", k->name, tried[0],
                            n > 1 ? ", " : "", n > 1 ? tried[1] : "", n > 2 ? ", " : "", n > 2 ? tried[2] : "", hint);
        }
    } else {
        snprintf(dir, sizeof dir, "%s", name_or_dir);
        if (!exists(dir))
            return vka_fail(&lg, VKA_ERROR_IO,
                            "'%s' is neither a dataset name (fashion-mnist, mnist, cifar10, cifar100) nor a directory",
                            name_or_dir);
        struct stat st;
        if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
            return vka_fail(&lg, VKA_ERROR_IO, "%s: a file; give the directory that holds the dataset's files (or a "
                            "dataset name)", dir);
    }
    data_format format = k ? k->format : detect(dir);
    if (format == FORMAT_NONE)
        return vka_fail(&lg, VKA_ERROR_FORMAT,
                        "%s: no IDX (train-images-idx3-ubyte) or CIFAR (data_batch_1.bin, train.bin) files found", dir);
    vka_result rc = load_dir(&lg, dir, format, split, out);
    if (rc) return rc;
    snprintf(out->name, sizeof out->name, "%s", k ? k->name : dir);
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    if (k) {
        memcpy(out->mean, k->mean, sizeof k->mean);
        memcpy(out->std, k->std, sizeof k->std);
        out->digits = k->digits;
    } else {
        /* An unnamed directory: statistics of its own images (a one-off pass on the host at load time). */
        for (uint32_t c = 0; c < out->channels; c++) {
            double s = 0, ss = 0;
            uint64_t plane = (uint64_t)out->height * out->width, n = 0;
            for (uint32_t i = 0; i < out->count; i++) {
                const uint8_t *p = out->images + ((uint64_t)i * out->channels + c) * plane;
                for (uint64_t j = 0; j < plane; j++, n++) s += p[j] / 255.0, ss += (p[j] / 255.0) * (p[j] / 255.0);
            }
            double mean = s / (double)n, var = ss / (double)n - mean * mean;
            out->mean[c] = (float)mean;
            out->std[c] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
        }
        vka_log(&lg, VKA_LOG_INFO, "%s: normalization statistics computed on the CPU from its %u images", dir, out->count);
    }
    return VKA_SUCCESS;
}

void vka_dataset_free(vka_dataset *ds)
{
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    ds->images = ds->labels = NULL;
    ds->count = 0;
}
