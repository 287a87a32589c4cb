#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// Per-image statistics, one invocation per image, written to stat[8 b .. 8 b + 7]:
// contrast: [ch] = sum of channel ch (integers: exact in any order); fog: [4] = the
// largest pixel, [5], [6] = min and max of the fog map over its whole M x M square (as
// float bits; min and max do not depend on the order either).
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Pixels { uint pix[]; };
layout(std430, binding = 1) writeonly buffer Scratch { uint stat[]; };

uint pix_at(uint i) { return (pix[i >> 2] >> ((i & 3u) * 8u)) & 0xffu; }

void main()
{
    uint b = flat_invocation_index();
    if (b >= p.n) return;
    uint plane = p.h * p.w, base = b * p.c * plane;
    if (p.type == T_CONTRAST) {
        for (uint ch = 0u; ch < p.c; ch++) {
            uint s = 0u;
            for (uint i = 0u; i < plane; i++) s += pix_at(base + ch * plane + i);
            stat[8u * b + ch] = s;
        }
        return;
    }
    uint mx = 0u;
    for (uint i = 0u; i < p.c * plane; i++) mx = max(mx, pix_at(base + i));
    uint key = rng_key(S_FOG, p.first_image + b);
    float lo = fog_raw(key, 0, 0), hi = lo;
    for (int y = 0; y < p.ip[0]; y++)
        for (int x = 0; x < p.ip[0]; x++) {
            float f = fog_raw(key, y, x);
            lo = min(lo, f);
            hi = max(hi, f);
        }
    stat[8u * b + 4u] = mx;
    stat[8u * b + 5u] = floatBitsToUint(lo);
    stat[8u * b + 6u] = floatBitsToUint(hi);
}
