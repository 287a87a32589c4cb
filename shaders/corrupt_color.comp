#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// Photometric corruptions, per pixel. Default variant: brightness (HSV value + c) and
// saturate (HSV saturation * c0 + c1), in closed form: with hue and saturation fixed, an
// RGB pixel scales with its value, so no hue is ever computed. STATS variant: contrast
// and fog, which read per-image statistics (corrupt_stats.comp) from the scratch buffer.
#include "corrupt_bytes.glsl"

#ifdef STATS
layout(std430, binding = 2) readonly buffer Scratch { uint stat[]; };  // (N, 8), see corrupt_stats.comp
#endif

float corrupt_value(uint b, uint ch, int y, int x)
{
    float v = px(b, ch, y, x);
#ifdef STATS
    if (p.type == T_CONTRAST) {
        float mean = float(stat[8u * b + ch]) / float(p.h * p.w);
        return (v - mean) * p.fp[0] + mean;
    }
    // fog: (x + c0 * plasma) * max / (max + c0), in pixel units
    float mx = float(stat[8u * b + 4u]);
    float lo = uintBitsToFloat(stat[8u * b + 5u]), hi = uintBitsToFloat(stat[8u * b + 6u]);
    float f = hi > lo ? (fog_raw(rng_key(S_FOG, p.first_image + b), y, x) - lo) / (hi - lo) : 0.0;
    float a = p.fp[0] * 255.0;
    return (v + a * f) * (mx / (mx + a));
#else
    float vmax = v, vmin = v;
    if (p.c == 3u) {
        for (uint k = 0u; k < 3u; k++) {
            float q = px(b, k, y, x);
            vmax = max(vmax, q);
            vmin = min(vmin, q);
        }
    }
    if (p.type == T_BRIGHTNESS) {
        float vn = min(vmax + p.fp[0] * 255.0, 255.0);
        return vmax > 0.0 ? v * (vn / vmax) : vn;
    }
    // saturate (3 channels)
    if (vmax == vmin) {   // grey: hue 0 (red), saturation clip(c1)
        float s1 = clamp(p.fp[1], 0.0, 1.0);
        return ch == 0u ? vmax : vmax * (1.0 - s1);
    }
    float s = (vmax - vmin) / vmax;
    float s1 = clamp(s * p.fp[0] + p.fp[1], 0.0, 1.0);
    return vmax - (vmax - v) * (s1 * vmax / (vmax - vmin));
#endif
}
