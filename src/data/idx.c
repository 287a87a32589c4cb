/* IDX files (MNIST format): big-endian magic 0x0000080N (unsigned bytes, N dims),
 * N big-endian sizes, then the bytes. Images are 3-D, labels 1-D. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define IDX_UBYTE 0x08

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the header and size; returns the dims and where the data starts. */
static vka_result parse_idx(vka_logger *lg, const char *path, const unsigned char *d, size_t size,
                            uint32_t want_dims, uint32_t dims[3], const unsigned char **payload)
{
    if (size < 4)
        return vka_fail(lg, VKA_ERROR_FORMAT, "%s: %zu bytes is too short for an IDX header", path, size);
    if (d[0] != 0 || d[1] != 0 || d[2] != IDX_UBYTE || d[3] != want_dims)
        return vka_fail(lg, VKA_ERROR_FORMAT,
                        "%s: wrong magic number 0x%02x%02x%02x%02x (want 0x000008%02x: unsigned bytes, %u dimensions)",
                        path, d[0], d[1], d[2], d[3], want_dims, want_dims);
    size_t header = 4 + 4 * (size_t)want_dims;
    if (size < header)
        return vka_fail(lg, VKA_ERROR_FORMAT, "%s: truncated header (%zu of %zu bytes)", path, size, header);
    uint64_t expect = 1;
    for (uint32_t i = 0; i < want_dims; i++) {
        dims[i] = be32(d + 4 + 4 * i);
        expect *= dims[i];
    }
    if (size - header != expect)
        return vka_fail(lg, VKA_ERROR_FORMAT, "%s: %s: the header promises %llu data bytes, the file has %zu", path,
                        size - header < expect ? "truncated" : "trailing bytes", (unsigned long long)expect,
                        size - header);
    *payload = d + header;
    return VKA_SUCCESS;
}

vka_result vka_dataset_load_idx(const char *images_path, const char *labels_path, vka_log_fn log, void *log_user,
                                vka_dataset *out)
{
    vka_logger lg = {.fn = log, .user = log_user};
    memset(out, 0, sizeof *out);
    unsigned char *img = NULL, *lab = NULL;
    size_t img_size, lab_size;
    vka_result rc = VKA_SUCCESS;
    VKA_CHECK(vka_read_file(&lg, images_path, &img, &img_size));
    VKA_CHECK(vka_read_file(&lg, labels_path, &lab, &lab_size));
    uint32_t idims[3], ldims[3];
    const unsigned char *ipay, *lpay;
    VKA_CHECK(parse_idx(&lg, images_path, img, img_size, 3, idims, &ipay));
    VKA_CHECK(parse_idx(&lg, labels_path, lab, lab_size, 1, ldims, &lpay));
    if (idims[0] != ldims[0]) {
        rc = vka_fail(&lg, VKA_ERROR_FORMAT, "%s has %u images but %s has %u labels", images_path, idims[0],
                      labels_path, ldims[0]);
        goto done;
    }
    if (idims[0] == 0 || idims[1] == 0 || idims[2] == 0) {
        rc = vka_fail(&lg, VKA_ERROR_FORMAT, "%s: empty (%u images of %ux%u)", images_path, idims[0], idims[1], idims[2]);
        goto done;
    }
    for (uint32_t i = 0; i < ldims[0]; i++)
        if (lpay[i] > 9) {
            rc = vka_fail(&lg, VKA_ERROR_FORMAT, "%s: label %u of record %u is out of range 0..9", labels_path, lpay[i], i);
            goto done;
        }
    out->count = idims[0];
    out->channels = 1;
    out->height = idims[1];
    out->width = idims[2];
    out->classes = 10;
    size_t n = (size_t)idims[0] * idims[1] * idims[2];
    out->images = malloc(n);
    out->labels = malloc(idims[0]);
    if (!out->images || !out->labels) {
        vka_dataset_free(out);
        rc = vka_fail(&lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for %s", images_path);
        goto done;
    }
    memcpy(out->images, ipay, n);
    memcpy(out->labels, lpay, idims[0]);
done:
    free(img);
    free(lab);
    return rc;
}
