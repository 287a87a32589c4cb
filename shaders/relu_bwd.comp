#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// dx = x > 0 ? dy : 0 over n units, x the forward's input. dx may be dy itself.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push { uint n; } p;

layout(std430, binding = 0) readonly buffer DY { VT dy[]; };  // (n)
layout(std430, binding = 1) readonly buffer X { VT x[]; };    // (n)
layout(std430, binding = 2) writeonly buffer DX { VT dx[]; }; // (n)

void main()
{
    uint i = flat_invocation_index();
    if (i < p.n) dx[i] = relu_mask(x[i], dy[i]);
}
