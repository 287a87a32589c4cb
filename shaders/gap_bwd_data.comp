#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
// Global average pool backward: dx[plane, j] = dy[plane] / hw. VEC4 (hw >= 4, N*C*hw a
// multiple of 4, dx at a 16-byte offset): 4 consecutive elements per invocation, which span
// at most two planes, stored as one vec4 (lavapipe pays per store instruction).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint total;      // N * C * hw
    uint hw;
    uvec2 hw_div;    // fastdiv by hw
} p;

layout(std430, binding = 0) readonly buffer DY { float dy[]; };  // (N, C)
#ifdef VEC4
layout(std430, binding = 1) writeonly buffer DX { vec4 dx4[]; }; // (N, C, hw) in runs of 4

void main()
{
    uint e = flat_invocation_index();   // elements 4e .. 4e+3 (total counts runs here)
    if (e >= p.total) return;
    uint first = fastdiv(4u * e, p.hw_div.x, p.hw_div.y), last = fastdiv(4u * e + 3u, p.hw_div.x, p.hw_div.y);
    float g0 = dy[first] / float(p.hw), g1 = dy[last] / float(p.hw);
    uint next = (first + 1u) * p.hw;    // the first element of the next plane
    vec4 d;
    [[unroll]] for (uint i = 0; i < 4u; i++) d[i] = 4u * e + i < next ? g0 : g1;
    dx4[e] = d;
}
#else
layout(std430, binding = 1) writeonly buffer DX { float dx[]; }; // (N, C, hw)

void main()
{
    uint e = flat_invocation_index();
    if (e < p.total) dx[e] = dy[fastdiv(e, p.hw_div.x, p.hw_div.y)] / float(p.hw);
}
#endif
