/* Division by a per-dispatch divisor in shaders without an integer division:
 * the host makes the magic number and shifts, shaders/include/fastdiv.glsl
 * applies them (exact for every 32-bit numerator). */
#ifndef VKA_NN_FASTDIV_H
#define VKA_NN_FASTDIV_H

#include <stdint.h>

typedef struct vka_fastdiv {
    uint32_t magic;
    uint32_t shifts;   /* sh1 | sh2 << 8 */
} vka_fastdiv;

/* For d >= 1: l = ceil(log2 d), magic = floor(2^32 (2^l - d) / d) + 1,
 * sh1 = min(l, 1), sh2 = max(l - 1, 0). */
static inline vka_fastdiv vka_fastdiv_make(uint32_t d)
{
    uint32_t l = 0;
    while (l < 32 && (1ull << l) < d) l++;
    uint64_t magic = ((1ull << 32) * ((1ull << l) - d)) / d + 1;
    uint32_t sh1 = l < 1 ? l : 1, sh2 = l > 1 ? l - 1 : 0;
    return (vka_fastdiv){(uint32_t)magic, sh1 | sh2 << 8};
}

/* The shader's arithmetic in C (for tests). */
static inline uint32_t vka_fastdiv_apply(uint32_t n, vka_fastdiv f)
{
    uint32_t hi = (uint32_t)(((uint64_t)n * f.magic) >> 32);
    return (hi + ((n - hi) >> (f.shifts & 0xff))) >> (f.shifts >> 8);
}

#endif
