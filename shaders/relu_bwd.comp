#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// dx = x > 0 ? dy : 0 over n units, x the forward's input. dx may be dy itself.
// SUM: dx = x > 0 ? dy + dy2 : 0, the ReLU's output gradient in two parts (where a residual
// branch meets its shortcut: the sum is never stored).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push { uint n; } p;

layout(std430, binding = 0) readonly buffer DY { VT dy[]; };  // (n)
layout(std430, binding = 1) readonly buffer X { VT x[]; };    // (n)
layout(std430, binding = 2) writeonly buffer DX { VT dx[]; }; // (n)
#ifdef SUM
layout(std430, binding = 3) readonly buffer DY2 { VT dy2[]; }; // (n)
#endif

void main()
{
    uint i = flat_invocation_index();
#ifdef SUM
    if (i < p.n) dx[i] = relu_mask(x[i], dy[i] + dy2[i]);
#else
    if (i < p.n) dx[i] = relu_mask(x[i], dy[i]);
#endif
}
