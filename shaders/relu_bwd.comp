#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// dx = x > 0 ? dy : 0 over n units, x the forward's input. dx may be dy itself.
// SUM: dx = x > 0 ? dy + dy2 : 0, the ReLU's output gradient in two parts (where a residual
// branch meets its shortcut: the sum is never stored).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push { uint n; } p;

// TEXEL: the inputs through texel buffers (the host picks it when dx is none of them).
INPUT_VT(0, dy)                                                 // (n)
INPUT_VT(1, x)                                                  // (n)
layout(std430, binding = 2) writeonly buffer DX { VT dx[]; };   // (n)
#ifdef SUM
INPUT_VT(3, dy2)                                                // (n)
#endif

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.n) return;
#ifdef SUM
    dx[i] = relu_mask(LOAD_VT(x, i), LOAD_VT(dy, i) + LOAD_VT(dy2, i));
#else
    dx[i] = relu_mask(LOAD_VT(x, i), LOAD_VT(dy, i));
#endif
}
