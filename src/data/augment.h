/* Batch preparation on the GPU: uint8 images -> augmented, normalized floats. */
#ifndef VKA_DATA_AUGMENT_H
#define VKA_DATA_AUGMENT_H

#include "vk/vk_internal.h"

typedef struct vka_augment_shape {
    uint32_t n, c, h, w;
    float mean[4], std[4];        /* per channel, [0, 1] scale */
} vka_augment_shape;

/* out (N, C, H, W) floats = normalize(crop/flip(pixels)).
 * pixels: (N, C, H, W) uint8 (size rounded up to whole words);
 * params: (N, 3) int32 per sample: dx, dy (crop offsets in [-pad, pad]), flip (0/1).
 * All zeros = plain normalization (evaluation). */
vka_result vka_augment(vka_cmd *cmd, const vka_augment_shape *s, vka_tensor out, vka_tensor pixels,
                       vka_tensor params);

#endif
