#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The device's memory bandwidth as shaders see it: out = in, one vec4 per invocation
// (the widest load and store every device takes). Bytes moved = 2 * n * 16.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;           // vec4s
} p;

layout(std430, binding = 0) readonly buffer In { vec4 src[]; };    // (n,)
layout(std430, binding = 1) writeonly buffer Out { vec4 dst[]; };  // (n,)

void main()
{
    uint i = flat_invocation_index();
    if (i < p.n) dst[i] = src[i];
}
