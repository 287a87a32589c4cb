#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
// Global average pool backward: dx[plane, j] = dy[plane] / hw.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint total;      // N * C * hw
    uint hw;
    uvec2 hw_div;    // fastdiv by hw
} p;

layout(std430, binding = 0) readonly buffer DY { float dy[]; };  // (N, C)
layout(std430, binding = 1) writeonly buffer DX { float dx[]; }; // (N, C, hw)

void main()
{
    uint e = flat_invocation_index();
    if (e < p.total) dx[e] = dy[fastdiv(e, p.hw_div.x, p.hw_div.y)] / float(p.hw);
}
