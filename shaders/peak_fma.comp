#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The device's fp32 multiply-add rate as shaders see it: each invocation runs 4 independent
// vec4 FMA chains (16 independent lanes: enough to fill a GPU's pipelines and a CPU's two
// FMA ports without spilling AVX2's 16 registers), 8 steps of each per loop iteration (so
// lavapipe's per-iteration loop overhead stays small: 123 GFLOP/s on 2 Zen 4 cores against
// 92 at 2 steps), on values from push constants that the compiler cannot fold, and writes one
// float so that nothing is dead code. FLOP = invocations * iterations * 32 FMAs * 4 lanes * 2.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint invocations;
    uint iterations;
    float m;          // chains stay bounded: |m| < 1
    float c;
} p;

layout(std430, binding = 0) writeonly buffer Out { float o[]; };   // (invocations,)

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.invocations) return;
    // Every lane its own start, so no compiler can merge the lanes' chains.
    vec4 a0 = float(i & 255u) * 1e-3 + vec4(0.0, 0.01, 0.02, 0.03), a1 = a0 + 0.1, a2 = a0 + 0.2, a3 = a0 + 0.3;
    vec4 m = vec4(p.m), c = vec4(p.c);
    for (uint k = 0u; k < p.iterations; k++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    }
    vec4 s = a0 + a1 + a2 + a3;
    o[i] = s.x + s.y + s.z + s.w;
}
