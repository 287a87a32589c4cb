#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Global average pool: y[plane] = sum over hw of x[plane] / hw, one invocation
// per (n, c) plane, compensated (Kahan) summation in a fixed order: the error
// does not grow with hw. `precise` keeps the compiler from folding the
// compensation away.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint planes;     // N * C
    uint hw;
} p;

layout(std430, binding = 0) readonly buffer X { float x[]; };   // (N, C, hw)
layout(std430, binding = 1) writeonly buffer Y { float y[]; };  // (N, C)

void main()
{
    uint plane = flat_invocation_index();
    if (plane >= p.planes) return;
    uint base = plane * p.hw;
    precise float sum = 0.0, comp = 0.0;
    for (uint j = 0; j < p.hw; j++) {
        precise float v = x[base + j] - comp;
        precise float s = sum + v;
        comp = (s - sum) - v;
        sum = s;
    }
    y[plane] = sum / float(p.hw);
}
