/* CIFAR-10/100 binary files: records of label byte(s) + 3072 bytes (3 planes of 32x32). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define CIFAR_PIXELS 3072

vka_result vka_dataset_load_cifar(const char *const *paths, uint32_t path_count, int cifar100, vka_log_fn log,
                                  void *log_user, vka_dataset *out)
{
    vka_logger lg = {.fn = log, .user = log_user};
    memset(out, 0, sizeof *out);
    const size_t label_bytes = cifar100 ? 2 : 1, record = label_bytes + CIFAR_PIXELS;
    const uint32_t classes = cifar100 ? 100 : 10;
    unsigned char **files = calloc(path_count ? path_count : 1, sizeof *files);
    size_t *sizes = calloc(path_count ? path_count : 1, sizeof *sizes);
    vka_result rc = VKA_SUCCESS;
    if (!files || !sizes) {
        rc = vka_fail(&lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
        goto done;
    }
    uint64_t total = 0;
    for (uint32_t f = 0; f < path_count; f++) {
        VKA_CHECK(vka_read_file(&lg, paths[f], &files[f], &sizes[f]));
        if (sizes[f] == 0 || sizes[f] % record) {
            rc = vka_fail(&lg, VKA_ERROR_FORMAT,
                          "%s: %zu bytes is not a whole number of %zu-byte CIFAR-%s records (truncated or not CIFAR)",
                          paths[f], sizes[f], record, cifar100 ? "100" : "10");
            goto done;
        }
        total += sizes[f] / record;
    }
    if (total == 0) {
        rc = vka_fail(&lg, VKA_ERROR_FORMAT, "no CIFAR files given");
        goto done;
    }
    out->images = malloc(total * CIFAR_PIXELS);
    out->labels = malloc(total);
    if (!out->images || !out->labels) {
        rc = vka_fail(&lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for %llu CIFAR images",
                      (unsigned long long)total);
        goto done;
    }
    uint64_t i = 0;
    for (uint32_t f = 0; f < path_count; f++)
        for (size_t r = 0; r < sizes[f] / record; r++, i++) {
            const unsigned char *rec = files[f] + r * record;
            uint8_t label = rec[label_bytes - 1]; /* CIFAR-100: the fine label follows the coarse one */
            if (label >= classes) {
                rc = vka_fail(&lg, VKA_ERROR_FORMAT, "%s: label %u of record %zu is out of range 0..%u", paths[f],
                              label, r, classes - 1);
                goto done;
            }
            out->labels[i] = label;
            memcpy(out->images + i * CIFAR_PIXELS, rec + label_bytes, CIFAR_PIXELS);
        }
    out->count = (uint32_t)total;
    out->channels = 3;
    out->height = out->width = 32;
    out->classes = classes;
done:
    for (uint32_t f = 0; files && f < path_count; f++) free(files[f]);
    free(files);
    free(sizes);
    if (rc) vka_dataset_free(out);
    return rc;
}
