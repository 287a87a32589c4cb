#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// lavapipe's first pass of the weight and bias gradients of convolutions with kernels up to
// 3 wide and stride ST, from channels-packed copies (conv2d_pack.comp) of dy (a border of
// dyb, possibly 0, shared with the input gradient) and of the zero-bordered x:
//   DYP [N][P+2dyb][Q+2dyb][K4] vec4 (K4 = ceil(K/4)),  XP [N][hp][wp][C4] vec4 (C4 = ceil(C/4))
//   dw[k,c,r,s] = sum over n,p,q of dy[n,k,p,q] * xpad[n,c,p*ST+r,q*ST+s],  db[k] = sum of dy[n,k,..]
// Invocation (z, r, channel group cg, k block kb) sums over the images of group z (images
// [z*N/groups, (z+1)*N/groups)) for kernel row r, input channels 4cg..4cg+3, output channels
// of KV vec4 and all S horizontal taps, walking each output row QC columns at a time
// ((QC-1)*ST+S x texels and QC*KV dy texels per step for 16*S*KV*QC multiply-adds), with
// no padding tests. Partials go to
//   part[(z*K + k)*(C*R*S+1) + c*R*S + r*S + s], the bias sums (group z) to column C*R*S,
// written by the invocations of r = 0 and channel group 0 when has_bias;
// conv2d_bwd_weight_reduce.comp adds the groups in order (no atomics, same bits every run).
// RGBA32F texel buffers, workgroups of 8, no shared memory.
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const int ST = 1;   // stride
layout(constant_id = 4) const int S = 3;    // kernel width, 1..3
layout(push_constant) uniform Push {
    uint N, C, K, R, P, Q;
    uint hp, wp, c4, k4;
    uint has_bias, groups, k_blocks, total;
    uint dyb;                // border of DYP
} p;
layout(binding = 0) uniform samplerBuffer DYP;   // [N][P+2dyb][Q+2dyb][k4]
layout(binding = 1) uniform samplerBuffer XP;    // [N][hp][wp][c4]
layout(std430, binding = 2) writeonly buffer Part { float part[]; };  // (groups, K, C*R*S+1)

#ifndef KV
#define KV 2
#endif
#define QC 7                       // output columns per step of the row walk
#define XC ((QC - 1) * 2 + 3)      // x texels they touch at most (ST <= 2, S <= 3)

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
    int dyb = int(p.dyb), dyw = Q + 2 * dyb, dyh = int(p.P) + 2 * dyb;
    uint n_end = (z + 1) * p.N / p.groups;
    for (uint n = z * p.N / p.groups; n < n_end; n++) {
        for (uint op = 0; op < p.P; op++) {
            int xrow = int((n * p.hp + op * ST + r) * p.wp) * c4 + int(cg);
            int dyrow = ((int(n) * dyh + int(op) + dyb) * dyw + dyb) * k4;
            // QC output columns at a time: their x and dy texels are fetched into registers
            // first, then each accumulator takes its QC multiply-adds in a row. (Accumulating
            // column by column would spill all 12*KV accumulators for every multiply-add.)
            for (int q0 = 0; q0 < Q; q0 += QC) {
                vec4 xv[XC], d[QC][KV];
                [[unroll]] for (int t = 0; t < XC; t++) {
                    bool ok = t < (QC - 1) * ST + S && q0 * ST + t < int(p.wp);
                    vec4 f = texelFetch(XP, ok ? xrow + (q0 * ST + t) * c4 : 0);
                    xv[t] = ok ? f : vec4(0.0);
                }
                [[unroll]] for (int j = 0; j < QC; j++) {
                    bool ok = q0 + j < Q;
                    [[unroll]] for (int v = 0; v < KV; v++) {
                        vec4 f = texelFetch(DYP, ok ? dyrow + (q0 + j) * k4 + dyk[v] : 0);
                        d[j][v] = ok ? f : vec4(0.0);
                        bacc[v] += d[j][v];
                    }
                }
                [[unroll]] for (int v = 0; v < KV; v++)
                    [[unroll]] for (int cc = 0; cc < 4; cc++)
                        [[unroll]] for (int s = 0; s < 3; s++) {
                            if (s < S) {
                                vec4 a = acc[v][cc][s];
                                [[unroll]] for (int j = 0; j < QC; j++) a += d[j][v] * xv[j * ST + s][cc];
                                acc[v][cc][s] = a;
                            }
                        }
            }
        }
    }
    uint RS = p.R * uint(S), CRS = p.C * RS;
    [[unroll]] for (uint v = 0; v < KV; v++) {
        [[unroll]] for (uint i = 0; i < 4; i++) {
            uint k = (kb * KV + v) * 4 + i;
            if (k >= p.K) break;
            uint base = (z * p.K + k) * (CRS + 1);
            [[unroll]] for (uint cc = 0; cc < 4; cc++) {
                uint c = cg * 4 + cc;
                if (c < p.C)
                    [[unroll]] for (int s = 0; s < S; s++)
                        part[base + c * RS + r * uint(S) + uint(s)] = acc[v][cc][s][i];
            }
            if (bias_lane) part[base + CRS] = bacc[v][i];
        }
    }
}
