#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Training anchored input: out[b] = [masked ? 0 : x[r], x[b] - x[r]], r = ref_index[b].
// One invocation per (b, i), i in [0, C*H*W): writes one reference and one residual value.
// (Memory-bound and small next to the first conv; a vec4 texel-buffer path is possible
// where C*H*W % 4 == 0.)
// With PACKED, out is the first conv's channels-packed x (src/nn/packed_layout.h): element
// (b, c, h, w) at float ((b*hp + border + h)*wp + border + w)*c4x4 + c, nothing else written,
// so that conv does not pack it again (its x_packed).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint batch;   // B
    uint chw;     // C*H*W
    uint masked;  // 1: the reference half is zero (reference masking)
#ifdef PACKED
    uint hw, w, hp, wp, border, c4x4;
#endif
} p;

layout(std430, binding = 0) readonly buffer X { float x[]; };        // (B, C, H, W)
layout(std430, binding = 1) readonly buffer Ref { int ref_index[]; }; // (B)
layout(std430, binding = 2) writeonly buffer Out { float o[]; };     // (B, 2C, H, W)

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.batch * p.chw) return;
    uint b = id / p.chw;
    uint i = id - b * p.chw;
    // In range is the caller's job; clamping keeps a bad index from reading outside x.
    uint r = uint(clamp(ref_index[b], 0, int(p.batch) - 1));
    float xr = x[r * p.chw + i];
#ifdef PACKED
    uint c = i / p.hw, pos = i - c * p.hw, h = pos / p.w;
    uint ob = ((b * p.hp + p.border + h) * p.wp + p.border + pos - h * p.w) * p.c4x4 + c, channels = p.chw / p.hw;
    o[ob] = p.masked != 0u ? 0.0 : xr;
    o[ob + channels] = x[id] - xr;
#else
    uint ob = 2u * b * p.chw + i;
    o[ob] = p.masked != 0u ? 0.0 : xr;
    o[ob + p.chw] = x[id] - xr;
#endif
}
