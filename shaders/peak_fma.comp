#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The device's fp32 multiply-add rate as shaders see it: each invocation runs 2 independent
// vec4 FMA chains (8 independent lanes: enough to cover an FMA's latency on a GPU with many
// warps and on a CPU's two FMA ports), 64 steps of each per loop iteration (lavapipe pays a
// fixed cost per loop iteration and per live register: 2 chains x 64 steps reach ~170 GFLOP/s
// on 2 Zen 4 cores, 4 chains x 8 steps 125, 4 x 2 only 92), on values from push constants the
// compiler cannot fold, every lane from its own start (no lanes to merge), writing one float so
// that nothing is dead code. FLOP = invocations * iterations * 128 FMAs * 4 lanes * 2.
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
    vec4 a0 = float(i & 255u) * 1e-3 + vec4(0.0, 0.01, 0.02, 0.03), a1 = a0 + 0.1;
    vec4 m = vec4(p.m), c = vec4(p.c);
    for (uint k = 0u; k < p.iterations; k++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c);
    }
    vec4 s = a0 + a1;
    o[i] = s.x + s.y + s.z + s.w;
}
