#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
#include "norm_common.glsl"
// Max pool (floor mode), one invocation per output: y = max over the in-bounds
// part of the window, argmax = h*W + w of the FIRST maximum in row-major window
// order (strict >), padding never competes.
// BN: x is a BatchNorm's input, pooled as that BatchNorm's output (+ its fused ReLU) computed
// here with its finalize's coefficients, the same arithmetic as its apply pass (maxpool2x2.comp).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint total;      // N * C * P * Q outputs
    uint H, W, P, Q;
    uint k, stride, pad;
    uvec2 div_a;     // fastdiv by Q
    uvec2 div_b;     // fastdiv by P
    uvec2 div_s;     // fastdiv by stride (unused here)
    uint C, relu;    // BN: channels (planes are n * C + c), 1: the BatchNorm's fused ReLU
    uvec2 div_c;     // BN: fastdiv by C
} p;

INPUT_VT(0, x)                                                    // (N, C, H, W)
layout(std430, binding = 1) writeonly buffer Y { float y[]; };    // (N, C, P, Q)
layout(std430, binding = 2) writeonly buffer A { int argmax[]; }; // (N, C, P, Q)
#ifdef BN
INPUT_VEC4(3, coef)                                               // (C, 2): batchnorm_fwd_finalize
#endif

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
#ifdef BN
    vec4 a = LOAD_VEC4(coef, 2u * (plane - fastdiv(plane, p.div_c.x, p.div_c.y) * p.C));
#endif
    float best = 0.0;
    int best_i = -1;
    for (int r = r0; r < r1; r++) {
        int h = h0 + r;
        for (int s = s0; s < s1; s++) {
            int i = h * int(p.W) + w0 + s;
            float v = LOAD_VT(x, base + uint(i));
#ifdef BN
            v = bn_affine(v, a.x, a.z, a.w);
            if (p.relu != 0) v = relu_mask(v, v);
#endif
            if (best_i < 0 || v > best) {
                best = v;
                best_i = i;
            }
        }
    }
    y[o] = best;
    argmax[o] = best_i;
}
