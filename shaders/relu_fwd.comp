#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// y = x > 0 ? x : 0 over n units (one chunk). y may be x itself: each
// invocation reads its unit before writing it.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push { uint n; } p;

layout(std430, binding = 0) readonly buffer X { VT x[]; };   // (n)
layout(std430, binding = 1) writeonly buffer Y { VT y[]; };  // (n)

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.n) return;
    VT v = x[i];
    y[i] = relu_mask(v, v);
}
