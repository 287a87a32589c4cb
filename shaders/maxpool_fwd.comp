#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
#include "norm_common.glsl"
// Max pool (floor mode), one invocation per output: y = max over the in-bounds
// part of the window, argmax = h*W + w of the FIRST maximum in row-major window
// order (strict >), padding never competes.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint total;      // N * C * P * Q outputs
    uint H, W, P, Q;
    uint k, stride, pad;
    uvec2 div_a;     // fastdiv by Q
    uvec2 div_b;     // fastdiv by P
    uvec2 div_s;     // fastdiv by stride (unused here)
} p;

INPUT_VT(0, x)                                                    // (N, C, H, W)
layout(std430, binding = 1) writeonly buffer Y { float y[]; };    // (N, C, P, Q)
layout(std430, binding = 2) writeonly buffer A { int argmax[]; }; // (N, C, P, Q)

void main()
{
    uint o = flat_invocation_index();
    if (o >= p.total) return;
    uint t = fastdiv(o, p.div_a.x, p.div_a.y), q = o - t * p.Q;
    uint plane = fastdiv(t, p.div_b.x, p.div_b.y), pp = t - plane * p.P;
    int h0 = int(pp * p.stride) - int(p.pad), w0 = int(q * p.stride) - int(p.pad);
    // The in-bounds rows and columns of the window (never empty: 2 pad <= k).
    int r0 = max(0, -h0), r1 = min(int(p.k), int(p.H) - h0);
    int s0 = max(0, -w0), s1 = min(int(p.k), int(p.W) - w0);
    uint base = plane * p.H * p.W;
    float best = 0.0;
    int best_i = -1;
    for (int r = r0; r < r1; r++) {
        int h = h0 + r;
        for (int s = s0; s < s1; s++) {
            int i = h * int(p.W) + w0 + s;
            float v = LOAD_VT(x, base + uint(i));
            if (best_i < 0 || v > best) {
                best = v;
                best_i = i;
            }
        }
    }
    y[o] = best;
    argmax[o] = best_i;
}
