#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
#ifdef BN
#define VEC4
#define TEXEL
#include "norm_common.glsl"
#endif
// Max pool 2x2, stride 2, no padding, on planes of H even and W a multiple of 4 (the cnn's
// pools): one invocation per pair of horizontally adjacent windows, whose 2 rows x 4 input
// columns are two vec4 (the forward reads them as RGBA32F texels), and whose outputs go out
// as pairs (vec2 y, ivec2 argmax; the backward's dx as two vec4 rows). A quarter to a half of
// maxpool_fwd.comp's and maxpool_bwd_data.comp's loads and stores, each of which lavapipe
// pays per lane, for the same values (FORWARD: the first maximum in row-major window order,
// strict >, as argmax h*W + w in its plane; the backward: dy where the argmax is, else 0).
// BN (forward): x is a BatchNorm's input, pooled as that BatchNorm's output (+ its fused ReLU)
// computed here with the coefficients its finalize wrote, the same arithmetic as its apply
// pass: the same bits as BN then pool, without writing the BN's output and reading it back.
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push {
    uint total;      // window pairs: N*C*P*Q/2
    uint W, P, Q2;   // input width; output rows per plane; window pairs per output row (Q/2)
    uvec2 q2_div;    // fastdiv by Q2
    uvec2 p_div;     // fastdiv by P
    uint C, relu;    // BN: channels (planes are n * C + c), 1: the BatchNorm's fused ReLU
    uvec2 c_div;     // BN: fastdiv by C
} p;

#ifdef FORWARD
layout(binding = 0) uniform samplerBuffer X;                          // (N, C, H, W) as vec4
layout(std430, binding = 1) writeonly buffer Y { vec2 y2[]; };        // (N, C, P, Q) in pairs
layout(std430, binding = 2) writeonly buffer A { ivec2 argmax2[]; };  // (N, C, P, Q) in pairs
#ifdef BN
INPUT_VEC4(3, coef)                                                   // (C, 2): batchnorm_fwd_finalize
#endif
#else
layout(std430, binding = 0) readonly buffer DY { vec2 dy2[]; };       // (N, C, P, Q) in pairs
layout(std430, binding = 1) readonly buffer A { ivec2 argmax2[]; };   // (N, C, P, Q) in pairs
layout(std430, binding = 2) writeonly buffer DX { vec4 dx4[]; };      // (N, C, H, W) as vec4
#endif

void main()
{
    uint e = flat_invocation_index();
    if (e >= p.total) return;
    // Pair e: output row t (row pp of plane t / P) and windows 2j, 2j+1 of it, over input rows
    // 2t, 2t+1 of the stacked planes (H = 2P) and input columns 4j .. 4j+3.
    uint t = fastdiv(e, p.q2_div.x, p.q2_div.y), j = e - t * p.Q2;
    uint pp = t - fastdiv(t, p.p_div.x, p.p_div.y) * p.P;
    uint w4 = p.W / 4u, row0 = 2u * t * w4 + j;   // vec4 index of the first row's 4 columns
    int at0 = int(2u * pp * p.W + 4u * j);         // argmax of the first row's first column
#ifdef FORWARD
    vec4 r[2] = vec4[2](texelFetch(X, int(row0)), texelFetch(X, int(row0 + w4)));
#ifdef BN
    uint plane = fastdiv(t, p.p_div.x, p.p_div.y);
    vec4 a = LOAD_VEC4(coef, 2u * (plane - fastdiv(plane, p.c_div.x, p.c_div.y) * p.C));
    [[unroll]] for (int rr = 0; rr < 2; rr++) {
        vec4 z = bn_affine(r[rr], a.x, a.z, a.w);
        r[rr] = p.relu != 0 ? relu_mask(z, z) : z;
    }
#endif
    vec2 best;
    ivec2 best_i;
    [[unroll]] for (int m = 0; m < 2; m++) {
        best[m] = r[0][2 * m];
        best_i[m] = at0 + 2 * m;
        [[unroll]] for (int c = 1; c < 4; c++) {   // (0, 1), (1, 0), (1, 1) of the window
            int rr = c / 2, cc = c % 2;
            float v = r[rr][2 * m + cc];
            if (v > best[m]) {
                best[m] = v;
                best_i[m] = at0 + rr * int(p.W) + 2 * m + cc;
            }
        }
    }
    y2[e] = best;
    argmax2[e] = best_i;
#else
    vec2 g = dy2[e];
    ivec2 am = argmax2[e];
    [[unroll]] for (int rr = 0; rr < 2; rr++) {
        vec4 d;
        [[unroll]] for (int c = 0; c < 4; c++) d[c] = at0 + rr * int(p.W) + c == am[c / 2] ? g[c / 2] : 0.0;
        dx4[row0 + uint(rr) * w4] = d;
    }
#endif
}
