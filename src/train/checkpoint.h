/* Checkpoint files: tagged sections behind a magic and version, closed by a
 * CRC32 of everything before it; written to a temporary file, fsynced and
 * renamed over the old one, so a crash never leaves a half-written checkpoint.
 *
 * Layout (little-endian):
 *   "VKACKPT\0"  u32 version  u32 section count
 *   per section: char tag[16] (NUL-padded), u64 bytes, bytes of data
 *   u32 crc32 of all bytes above */
#ifndef VKA_TRAIN_CHECKPOINT_H
#define VKA_TRAIN_CHECKPOINT_H

#include "vk/vk_internal.h"

#define VKA_CKPT_VERSION 1
#define VKA_CKPT_TAG_BYTES 16

typedef struct vka_ckpt_section {
    const char *tag;              /* at most 15 characters */
    const void *data;
    uint64_t bytes;
} vka_ckpt_section;

/* Writes `path` atomically (path.tmp, fsync, rename, fsync of the directory). */
vka_result vka_checkpoint_write(vka_logger *lg, const char *path, const vka_ckpt_section *sections, uint32_t count);

typedef struct vka_checkpoint {
    unsigned char *file;          /* the whole file */
    uint64_t size;
    uint32_t version, count;
    vka_ckpt_section sections[128]; /* data points into file */
} vka_checkpoint;

/* Reads and checks magic, version, section table and CRC; names the file and
 * the problem on failure. */
vka_result vka_checkpoint_read(vka_logger *lg, const char *path, vka_checkpoint *out);
/* The section with `tag`, or NULL. */
const vka_ckpt_section *vka_checkpoint_find(const vka_checkpoint *ck, const char *tag);
/* A section that holds text (the run's configuration): its NUL-terminated string, or NULL when
 * absent, empty or not terminated (a crafted file). */
const char *vka_checkpoint_text(const vka_checkpoint *ck, const char *tag);
void vka_checkpoint_free(vka_checkpoint *ck);
/* VKA_SUCCESS when every float of the section (a multiple of 4 bytes) is finite; otherwise
 * names the file, the section and the first bad float. A model or optimizer state that holds
 * NaN or infinity was never written by a healthy run (training stops at a non-finite loss). */
vka_result vka_checkpoint_check_finite(vka_logger *lg, const char *path, const vka_ckpt_section *s);

#endif
