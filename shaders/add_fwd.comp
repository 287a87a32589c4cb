#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// Residual add over n units: y = a + b, or with INPLACE a += b (two bindings).
// TEXEL (INPLACE only): b through a texel buffer (the host picks it when b is not a).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push { uint n; } p;

#ifdef INPLACE
layout(std430, binding = 0) buffer A { VT a[]; };             // (n)
INPUT_VT(1, b)                                                // (n)
#else
layout(std430, binding = 0) readonly buffer A { VT a[]; };    // (n)
layout(std430, binding = 1) readonly buffer B { VT b[]; };    // (n)
layout(std430, binding = 2) writeonly buffer Y { VT y[]; };   // (n)
#endif

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.n) return;
#ifdef INPLACE
    a[i] = a[i] + LOAD_VT(b, i);
#else
    y[i] = a[i] + b[i];
#endif
}
