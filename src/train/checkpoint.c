/* Atomic, checksummed checkpoint files (format in checkpoint.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "train/checkpoint.h"
#include "train/file_replace.h"

static const char MAGIC[8] = "VKACKPT";

/* vka_write_all, feeding the bytes to the running crc32 first. */
static int write_crc(int fd, const void *data, uint64_t bytes, uLong *crc)
{
    const unsigned char *p = data;
    /* crc32 takes a uInt length: feed it in pieces. */
    for (uint64_t done = 0; done < bytes;) {
        uInt n = (uInt)(bytes - done > (1u << 30) ? (1u << 30) : bytes - done);
        *crc = crc32(*crc, p + done, n);
        done += n;
    }
    return vka_write_all(fd, data, bytes);
}

struct sections {
    const vka_ckpt_section *s;
    uint32_t count;
};

static int write_sections(int fd, void *user)
{
    const struct sections *w = user;
    uLong crc = crc32(0, Z_NULL, 0);
    uint32_t header[2] = {VKA_CKPT_VERSION, w->count};
    int bad = write_crc(fd, MAGIC, sizeof MAGIC, &crc) || write_crc(fd, header, sizeof header, &crc);
    for (uint32_t i = 0; i < w->count && !bad; i++) {
        char tag[VKA_CKPT_TAG_BYTES] = {0};
        strncpy(tag, w->s[i].tag, VKA_CKPT_TAG_BYTES - 1);
        uint64_t bytes = w->s[i].bytes;
        bad = write_crc(fd, tag, sizeof tag, &crc) || write_crc(fd, &bytes, 8, &crc) ||
              write_crc(fd, w->s[i].data, bytes, &crc);
    }
    uint32_t crc32v = (uint32_t)crc;
    return bad ? -1 : vka_write_all(fd, &crc32v, 4);
}

vka_result vka_checkpoint_write(vka_logger *lg, const char *path, const vka_ckpt_section *sections, uint32_t count)
{
    struct sections w = {sections, count};
    return vka_file_replace(lg, path, write_sections, &w);
}

vka_result vka_checkpoint_read(vka_logger *lg, const char *path, vka_checkpoint *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return vka_fail(lg, VKA_ERROR_IO, "%s: a directory; give its checkpoint file (%s/checkpoint.ckpt)", path, path);
    FILE *f = fopen(path, "rb");
    if (!f) return vka_fail(lg, VKA_ERROR_IO, "%s: cannot open (%s)", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = size > 0 ? malloc((size_t)size) : NULL;
    if (size <= 0 || !d || fread(d, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(d);
        return vka_fail(lg, VKA_ERROR_FORMAT, "%s: empty or unreadable checkpoint", path);
    }
    fclose(f);
    vka_result rc = VKA_SUCCESS;
    const uint64_t n = (uint64_t)size;
    if (n < sizeof MAGIC + 12 || memcmp(d, MAGIC, sizeof MAGIC) != 0) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: not a vkanchor checkpoint (bad magic)", path);
        goto done;
    }
    uint32_t stored_crc;
    memcpy(&stored_crc, d + n - 4, 4);
    if ((uint32_t)crc32(crc32(0, Z_NULL, 0), d, (uInt)(n - 4)) != stored_crc) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: checksum mismatch: the file is truncated or corrupted", path);
        goto done;
    }
    memcpy(&out->version, d + 8, 4);
    memcpy(&out->count, d + 12, 4);
    if (out->version != VKA_CKPT_VERSION) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: checkpoint version %u, this build reads version %d", path,
                      out->version, VKA_CKPT_VERSION);
        goto done;
    }
    if (out->count > sizeof out->sections / sizeof *out->sections) {
        rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: %u sections is more than a checkpoint has", path, out->count);
        goto done;
    }
    uint64_t pos = 16;
    for (uint32_t i = 0; i < out->count; i++) {
        uint64_t bytes;
        if (pos + VKA_CKPT_TAG_BYTES + 8 > n - 4) goto truncated;
        char *tag = (char *)d + pos;
        if (tag[VKA_CKPT_TAG_BYTES - 1] != 0) goto truncated;
        memcpy(&bytes, d + pos + VKA_CKPT_TAG_BYTES, 8);
        pos += VKA_CKPT_TAG_BYTES + 8;
        if (bytes > n - 4 - pos) goto truncated;
        out->sections[i] = (vka_ckpt_section){tag, d + pos, bytes};
        pos += bytes;
    }
    if (pos != n - 4) goto truncated;
    out->file = d;
    out->size = n;
    return VKA_SUCCESS;
truncated:
    rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: malformed section table", path);
done:
    free(d);
    memset(out, 0, sizeof *out);
    return rc;
}

const char *vka_checkpoint_text(const vka_checkpoint *ck, const char *tag)
{
    const vka_ckpt_section *s = vka_checkpoint_find(ck, tag);
    return s && s->bytes && ((const char *)s->data)[s->bytes - 1] == 0 ? s->data : NULL;
}

const vka_ckpt_section *vka_checkpoint_find(const vka_checkpoint *ck, const char *tag)
{
    for (uint32_t i = 0; i < ck->count; i++)
        if (strcmp(ck->sections[i].tag, tag) == 0) return &ck->sections[i];
    return NULL;
}

void vka_checkpoint_free(vka_checkpoint *ck)
{
    if (!ck) return;
    free(ck->file);
    memset(ck, 0, sizeof *ck);
}

vka_result vka_checkpoint_check_finite(vka_logger *lg, const char *path, const vka_ckpt_section *s)
{
    if (!s) return VKA_SUCCESS;
    const unsigned char *b = s->data;
    for (uint64_t i = 0; i + 4 <= s->bytes; i += 4) {
        float v;
        memcpy(&v, b + i, 4); /* sections are not aligned in the file */
        if (!isfinite(v))
            return vka_fail(lg, VKA_ERROR_FORMAT, "%s: section '%s' holds %g at float %llu: not a checkpoint a healthy "
                            "run wrote; resume from or evaluate an earlier one", path, s->tag, v,
                            (unsigned long long)(i / 4));
    }
    return VKA_SUCCESS;
}
