#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// lavapipe's first pass of the weight and bias gradients of stride-1 convolutions with 3-wide
// kernels, from channels-packed copies (conv2d_pack.comp) of dy and of the zero-bordered x:
//   DYP [N][P][Q][K4] vec4 (K4 = ceil(K/4)),  XP [N][P+R-1][Q+2][C4] vec4 (C4 = ceil(C/4))
//   dw[k,c,r,s] = sum over n,p,q of dy[n,k,p,q] * xpad[n,c,p+r,q+s],  db[k] = sum of dy[n,k,..]
// Invocation (z, r, channel group cg, k block kb) sums over the images of group z (images
// [z*N/groups, (z+1)*N/groups)) for kernel row r, input channels 4cg..4cg+3, output channels
// of KV vec4 and all 3 horizontal taps: walking an output row it keeps the 3 x texels in
// registers and fetches one new x texel and KV dy texels per position (48*KV multiply-adds
// per 1+KV fetches), with no padding tests. Partials go to
//   part[(z*K + k)*(C*R*S+1) + c*R*S + r*S + s], the bias sums (group z) to column C*R*S,
// written by the invocations of r = 0 and channel group 0 when has_bias;
// conv2d_bwd_weight_reduce.comp adds the groups in order (no atomics, same bits every run).
// RGBA32F texel buffers, workgroups of 8, no shared memory.
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push {
    uint N, C, K, R, P, Q;
    uint hp, wp, c4, k4;
    uint has_bias, groups, k_blocks, total;
} p;
layout(binding = 0) uniform samplerBuffer DYP;   // [N][P][Q][k4]
layout(binding = 1) uniform samplerBuffer XP;    // [N][hp][wp][c4]
layout(std430, binding = 2) writeonly buffer Part { float part[]; };  // (groups, K, C*R*S+1)

#ifndef KV
#define KV 2
#endif

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    // Output channel block fastest: neighbouring invocations read the same x texels.
    uint kb = id % p.k_blocks, rest = id / p.k_blocks;
    uint cg = rest % p.c4;
    rest /= p.c4;
    uint r = rest % p.R, z = rest / p.R;
    int dyk[KV];
    [[unroll]] for (uint v = 0; v < KV; v++) dyk[v] = int(min(kb * KV + v, p.k4 - 1));
    bool bias_lane = p.has_bias != 0 && cg == 0 && r == 0;
    int c4 = int(p.c4), k4 = int(p.k4), Q = int(p.Q);

    vec4 acc[KV][4][3], bacc[KV];
    [[unroll]] for (uint v = 0; v < KV; v++) {
        bacc[v] = vec4(0.0);
        [[unroll]] for (uint cc = 0; cc < 4; cc++)
            [[unroll]] for (uint s = 0; s < 3; s++) acc[v][cc][s] = vec4(0.0);
    }
    uint n_end = (z + 1) * p.N / p.groups;
    for (uint n = z * p.N / p.groups; n < n_end; n++) {
        for (uint op = 0; op < p.P; op++) {
            int xrow = int((n * p.hp + op + r) * p.wp) * c4 + int(cg);
            int dyrow = int((n * p.P + op) * p.Q) * k4;
            vec4 x0 = texelFetch(XP, xrow), x1 = texelFetch(XP, xrow + c4);
            for (int q = 0; q < Q; q++) {
                vec4 x2 = texelFetch(XP, xrow + (q + 2) * c4);
                [[unroll]] for (uint v = 0; v < KV; v++) {
                    vec4 d = texelFetch(DYP, dyrow + q * k4 + dyk[v]);
                    bacc[v] += d;
                    [[unroll]] for (uint cc = 0; cc < 4; cc++) {
                        acc[v][cc][0] += d * x0[cc];
                        acc[v][cc][1] += d * x1[cc];
                        acc[v][cc][2] += d * x2[cc];
                    }
                }
                x0 = x1;
                x1 = x2;
            }
        }
    }
    uint RS = p.R * 3, CRS = p.C * RS;
    [[unroll]] for (uint v = 0; v < KV; v++) {
        [[unroll]] for (uint i = 0; i < 4; i++) {
            uint k = (kb * KV + v) * 4 + i;
            if (k >= p.K) break;
            uint base = (z * p.K + k) * (CRS + 1);
            [[unroll]] for (uint cc = 0; cc < 4; cc++) {
                uint c = cg * 4 + cc;
                if (c < p.C)
                    [[unroll]] for (uint s = 0; s < 3; s++) part[base + c * RS + r * 3 + s] = acc[v][cc][s][i];
            }
            if (bias_lane) part[base + CRS] = bacc[v][i];
        }
    }
}
