#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// snow, as CIFAR-10-C: the snow layer L (corrupt_field.comp mode 2, scratch) streaked by
// ImageMagick's motion blur (ip[0] = 2 ceil(radius) + 1 taps, Gaussian sigma fp[0], angle
// uniform in [-135, -45) degrees, edges clamped), the image whitened towards
// max(x, 1.5 grey + 0.5) with weight 1 - fp[1], then x + S + S rotated by 180 degrees.
#include "corrupt_bytes.glsl"

layout(std430, binding = 2) readonly buffer Scratch { float f[]; };

float streak(uint b, int y, int x, float ca, float sa)
{
    int W = int(p.w), H = int(p.h);
    float k = -0.5 / (p.fp[0] * p.fp[0]);
    float acc = 0.0, norm = 0.0;
    for (int i = 0; i < p.ip[0]; i++) {
        float wt = exp(k * float(i * i));
        int ox = int(ceil(float(i) * ca - 0.5)), oy = int(ceil(float(i) * sa - 0.5));
        acc += wt * f[(b * p.h + uint(clamp_edge(y + oy, H))) * p.w + uint(clamp_edge(x + ox, W))];
        norm += wt;
    }
    return acc / norm;
}

float corrupt_value(uint b, uint ch, int y, int x)
{
    // angle = -90 degrees + d, d in [-45, 45): cos = sin(d), sin = -cos(d)
    float d = (u01(rng_bits(rng_key(S_ANGLE, p.first_image + b), 0u)) - 0.5) * 1.5707963267948966;
    float ca = sin_poly(d), sa = -cos_poly(d);
    float v = px(b, ch, y, x) / 255.0;
    float grey = p.c == 3u ? (0.299 * px(b, 0u, y, x) + 0.587 * px(b, 1u, y, x) + 0.114 * px(b, 2u, y, x)) / 255.0 : v;
    float xb = p.fp[1] * v + (1.0 - p.fp[1]) * max(v, grey * 1.5 + 0.5);
    float s = streak(b, y, x, ca, sa) + streak(b, int(p.h) - 1 - y, int(p.w) - 1 - x, ca, sa);
    return (xb + s) * 255.0;
}
