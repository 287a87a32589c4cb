/* CIFAR-10-C style corruptions (Hendrycks & Dietterich 2019) generated on the GPU:
 * uint8 images (N, C, H, W) in, uint8 images of the same shape out, deterministic for a
 * seed. Parameter tables and every approximation: docs/corruptions.md. */
#ifndef VKA_DATA_CORRUPT_H
#define VKA_DATA_CORRUPT_H

#include "vk/vk_internal.h"

/* In CIFAR-10-C's order (frost is missing: it needs the frost photographs), then the four
 * extra corruptions. Keep equal to the T_* constants in shaders/include/corrupt_common.glsl. */
typedef enum vka_corruption {
    VKA_CORRUPT_GAUSSIAN_NOISE = 0,
    VKA_CORRUPT_SHOT_NOISE = 1,
    VKA_CORRUPT_IMPULSE_NOISE = 2,
    VKA_CORRUPT_DEFOCUS_BLUR = 3,
    VKA_CORRUPT_GLASS_BLUR = 4,
    VKA_CORRUPT_MOTION_BLUR = 5,
    VKA_CORRUPT_ZOOM_BLUR = 6,
    VKA_CORRUPT_SNOW = 7,
    VKA_CORRUPT_FOG = 8,
    VKA_CORRUPT_BRIGHTNESS = 9,
    VKA_CORRUPT_CONTRAST = 10,
    VKA_CORRUPT_ELASTIC_TRANSFORM = 11,
    VKA_CORRUPT_PIXELATE = 12,
    VKA_CORRUPT_JPEG_COMPRESSION = 13,
    VKA_CORRUPT_SPECKLE_NOISE = 14,
    VKA_CORRUPT_GAUSSIAN_BLUR = 15,
    VKA_CORRUPT_SATURATE = 16,
    VKA_CORRUPT_COUNT = 17,
} vka_corruption;

#define VKA_CORRUPT_MIN_SIZE 8u      /* H and W, each */
#define VKA_CORRUPT_MAX_SIZE 128u    /* spatial parameters scale with min(H, W) / 32 */

typedef struct vka_corrupt_desc {
    uint32_t n, c, h, w;          /* batch (N, C, H, W); C = 1 or 3; 8 <= H, W <= 128 */
    vka_corruption type;
    uint32_t severity;            /* 1 .. 5 */
    uint32_t seed;
    uint32_t first_image;         /* dataset index of image 0: keys its random numbers, so
                                     a dataset corrupts the same in any batching */
} vka_corrupt_desc;

/* "gaussian_noise", ... (CIFAR-10-C's file names); NULL for an unknown type. */
const char *vka_corruption_name(vka_corruption type);
/* The type named `name` (exact, as vka_corruption_name); VKA_ERROR_INVALID_ARGUMENT if none. */
vka_result vka_corruption_parse(const char *name, vka_corruption *out);
/* 1 if `type` applies to images of c channels (saturate needs c = 3), else 0. */
int vka_corruption_applies(vka_corruption type, uint32_t c);
/* Fills out[] (room for VKA_CORRUPT_COUNT) with the types that apply to c channels, in
 * enum order, and returns how many (16 for c = 1, 17 for c = 3). */
uint32_t vka_corruption_list(uint32_t c, vka_corruption *out);
/* Parses "all" or a comma-separated list of names into out[] (room for VKA_CORRUPT_COUNT,
 * no duplicates kept); a name that is unknown or does not apply to c channels is an error
 * (logged by the caller: `bad` gets the offending name, up to bad_size bytes). */
vka_result vka_corruption_parse_list(const char *list, uint32_t c, vka_corruption *out, uint32_t *count,
                                     char *bad, size_t bad_size);

/* Bytes of scratch vka_corrupt needs for `d` (0: pass (vka_tensor){0}). */
uint64_t vka_corrupt_scratch_bytes(const vka_corrupt_desc *d);

/* out_pixels (N, C, H, W) uint8 = the corruption d->type at d->severity of in_pixels
 * (N, C, H, W) uint8; both packed four to a word, sizes rounded up to whole words (the
 * padding bytes of the last word are written as 0); out must not overlap in or scratch.
 * scratch: vka_corrupt_scratch_bytes(d) bytes (contents on return unspecified).
 * Records 1 to 3 dispatches (jpeg: a fill and 1) and the barriers between them; bad arguments (severity
 * outside 1..5, unknown type, saturate on C = 1, C not 1 or 3, sizes outside 8..128,
 * tensors too small or overlapping) return VKA_ERROR_INVALID_ARGUMENT and dispatch nothing. */
vka_result vka_corrupt(vka_cmd *cmd, const vka_corrupt_desc *d, vka_tensor out_pixels, vka_tensor in_pixels,
                       vka_tensor scratch);

#endif
