#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// lavapipe's stride-1 convolution with 3-wide kernels, shared by the forward and the input
// gradient (a stride-1 conv of dy with the flipped, transposed weights), on dense NCHW:
//   out[n, o, oy, ox] = bias[o] + sum over i, r, s of
//       in[n, i, oy - pad_h + r, ox - pad_w + s] * Wt[o*w_o + i*w_i + w_tap0 + r*w_r + s*w_s]
// forward:        in = x (N,C,H,W), out = y (N,K,P,Q), w_o = C*R*S, w_i = R*S, taps as stored;
// input gradient: in = dy (N,K,P,Q), out = dx (N,C,H,W), pad = R-1-pad (S-1-pad), w_o = R*S,
//                 w_i = C*R*S, w_tap0 = R*S-1, w_r = -S, w_s = -1 (flipped taps).
// Each invocation computes RQ consecutive output columns of one output row for KB output
// channels. Per (r, i) it fetches the RQ+2 input values of one input row once and uses
// them for all 3 horizontal taps (3*RQ*KB multiply-adds per RQ+2+3*KB fetches). Inputs
// through R32F texel buffers (or, with VEC4, RGBA32F texels of 4 consecutive columns:
// needs win % 4 == 0, RQ % 4 == 0 and pad_w == 1), workgroups of 8, no shared memory.
// Outside the input (zero padding) a fetch reads texel 0 and the value is replaced by 0.
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push {
    uint cin, hin, win;      // input (N, cin, hin, win)
    uint cout, hout, wout;   // output (N, cout, hout, wout)
    uint taps_r;             // kernel rows R
    int pad_h, pad_w;
    int w_o, w_i, w_tap0, w_r, w_s;
    uint has_bias;
    uint q_blocks, k_blocks, total;  // ceil(wout/RQ), ceil(cout/KB), invocations that work
} p;
layout(binding = 0) uniform samplerBuffer In;
layout(binding = 1) uniform samplerBuffer Wt;
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };  // (cout) when has_bias
layout(std430, binding = 3) writeonly buffer Out { float o[]; };

#ifndef RQ
#define RQ 14
#endif
#ifndef KB
#define KB 8
#endif
#define T (RQ + 2)            // input columns one output run touches
#ifdef VEC4
#define TV (RQ / 4 + 2)       // texels covering columns x0-1 .. x0+RQ
#endif

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    // Output channel block fastest: neighbouring invocations share the input rows.
    uint kb = id % p.k_blocks, rest = id / p.k_blocks;
    uint qb = rest % p.q_blocks;
    rest /= p.q_blocks;
    uint oy = rest % p.hout, n = rest / p.hout;
    uint k0 = kb * KB;
    int x0 = int(qb * RQ);
    int wbase[KB];
    [[unroll]] for (uint kk = 0; kk < KB; kk++) wbase[kk] = int(min(k0 + kk, p.cout - 1)) * p.w_o + p.w_tap0;
    int hw_in = int(p.hin * p.win);
    int in_n = int(n * p.cin) * hw_in;
#ifdef VEC4
    int col0 = x0 / 4 - 1;    // first texel (columns x0-4 .. x0-1), pad_w == 1
    int wv = int(p.win) / 4;
    bool okc[TV];
    [[unroll]] for (uint t = 0; t < TV; t++) okc[t] = col0 + int(t) >= 0 && col0 + int(t) < wv;
#else
    int col0 = x0 - p.pad_w;  // input column of xv[0]
    bool okc[T];
    [[unroll]] for (uint t = 0; t < T; t++) okc[t] = col0 + int(t) >= 0 && col0 + int(t) < int(p.win);
#endif
    float acc[RQ][KB];
    [[unroll]] for (uint j = 0; j < RQ; j++)
        [[unroll]] for (uint kk = 0; kk < KB; kk++) acc[j][kk] = 0.0;

    for (uint r = 0; r < p.taps_r; r++) {
        int ih = int(oy) - p.pad_h + int(r);
        if (ih < 0 || ih >= int(p.hin)) continue;
        int wr = int(r) * p.w_r;
#ifdef VEC4
        int row = (in_n + ih * int(p.win)) / 4 + col0;
        int cstep = hw_in / 4;
#else
        int row = in_n + ih * int(p.win) + col0;
        int cstep = hw_in;
#endif
        for (uint c = 0; c < p.cin; c++) {
            int xo = row + int(c) * cstep;
            float xv[T];
#ifdef VEC4
            vec4 tv[TV];
            [[unroll]] for (uint t = 0; t < TV; t++) {
                vec4 v = texelFetch(In, okc[t] ? xo + int(t) : 0);
                tv[t] = okc[t] ? v : vec4(0.0);
            }
            // xv[t] is column x0-1+t: texel (t+3)/4, component (t+3)%4.
            [[unroll]] for (uint t = 0; t < T; t++) xv[t] = tv[(t + 3) / 4][(t + 3) % 4];
#else
            [[unroll]] for (uint t = 0; t < T; t++) {
                float v = texelFetch(In, okc[t] ? xo + int(t) : 0).x;
                xv[t] = okc[t] ? v : 0.0;
            }
#endif
            int wc = wr + int(c) * p.w_i;
            [[unroll]] for (uint kk = 0; kk < KB; kk++) {
                int wo = wbase[kk] + wc;
                float w0 = texelFetch(Wt, wo).x, w1 = texelFetch(Wt, wo + p.w_s).x;
                float w2 = texelFetch(Wt, wo + 2 * p.w_s).x;
                [[unroll]] for (uint j = 0; j < RQ; j++) {
                    acc[j][kk] += w0 * xv[j];
                    acc[j][kk] += w1 * xv[j + 1];
                    acc[j][kk] += w2 * xv[j + 2];
                }
            }
        }
    }
    uint hw_out = p.hout * p.wout;
    uint obase = n * p.cout * hw_out + oy * p.wout + uint(x0);
    [[unroll]] for (uint kk = 0; kk < KB; kk++) {
        uint k = k0 + kk;
        if (k >= p.cout) break;
        float b = p.has_bias != 0 ? bias[k] : 0.0;
        [[unroll]] for (uint j = 0; j < RQ; j++)
            if (uint(x0) + j < p.wout) o[obase + k * hw_out + j] = acc[j][kk] + b;
    }
}
