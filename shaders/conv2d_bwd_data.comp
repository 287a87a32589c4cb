#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv2d_push.glsl"
// dx (N,C,H,W) from dy (N,K,P,Q) and w (K,C,R,S), by gathering (no atomics): forward was
//   y[n,k,p,q] += x[n,c,p*stride-pad+r, q*stride-pad+s] * w[k,c,r,s]
// so dx[n,c,h,w] = sum over k, r, s of w[k,c,r,s] * dy[n,k,p,q] for the (p, q) with
// p*stride = h+pad-r and q*stride = w+pad-s (exactly divisible, 0 <= p < P, 0 <= q < Q).
// As a GEMM: M = C, N = N*H*W, KD = K*R*S. Every dx element is written once (overwrite).
#ifdef TEXEL
// lavapipe: dy and w through R32F texel buffers, workgroups of 8, BM input channels x BN
// input positions per invocation, no shared memory, no barriers; the tap test is hoisted
// out of the k loop. Idea for later: split positions by stride phase so that no tap is
// tested and skipped (stride 2 wastes 3/4 of the taps here).
layout(local_size_x_id = 0) in;
layout(binding = 0) uniform samplerBuffer DY;    // (N,K,P,Q)
layout(binding = 1) uniform samplerBuffer Wt;    // (K,C,R,S)
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };  // (N,C,H,W)

#define BM 8
#define BN 8
void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    uint PQ = p.P * p.Q, HW = p.H * p.W, NHW = p.N * HW, RS = p.R * p.S, CRS = p.C * RS;
    int st = int(p.stride);
    uint j0 = (id % p.n_blocks) * BN, c0 = (id / p.n_blocks) * BM;
    int wrow[BM];  // w[k,c,r,s] = Wt[k*CRS + c*RS + tap]
    [[unroll]] for (uint i = 0; i < BM; i++) wrow[i] = int(min(c0 + i, p.C - 1) * RS);
    int dybase[BN], hp[BN], wp[BN];
    uint xbase[BN];
    [[unroll]] for (uint j = 0; j < BN; j++) {
        uint col = min(j0 + j, NHW - 1);
        uint n = col / HW, hw = col - n * HW, h = hw / p.W, w = hw - h * p.W;
        dybase[j] = int(n * p.K * PQ);
        hp[j] = int(h + p.pad);
        wp[j] = int(w + p.pad);
        xbase[j] = n * p.C * HW + hw;
    }
    float acc[BM][BN];
    [[unroll]] for (uint i = 0; i < BM; i++)
        [[unroll]] for (uint j = 0; j < BN; j++) acc[i][j] = 0.0;

    for (uint r = 0; r < p.R; r++) {
        for (uint s = 0; s < p.S; s++) {
            int off[BN];
            bool ok[BN];
            bool any_ok = false;
            [[unroll]] for (uint j = 0; j < BN; j++) {
                int ph = hp[j] - int(r), qw = wp[j] - int(s);
                int op = ph / st, oq = qw / st;
                ok[j] = ph >= 0 && qw >= 0 && op * st == ph && oq * st == qw && op < int(p.P) && oq < int(p.Q);
                off[j] = ok[j] ? dybase[j] + op * int(p.Q) + oq : 0;
                any_ok = any_ok || ok[j];
            }
            if (!any_ok) continue;
            int tap = int(r * p.S + s);
            for (uint k = 0; k < p.K; k++) {
                int dk = int(k * PQ), wk = int(k * CRS) + tap;
                float dv[BN], wv[BM];
                [[unroll]] for (uint j = 0; j < BN; j++) {
                    float v = texelFetch(DY, off[j] + dk).x;
                    dv[j] = ok[j] ? v : 0.0;
                }
                [[unroll]] for (uint i = 0; i < BM; i++) wv[i] = texelFetch(Wt, wrow[i] + wk).x;
                [[unroll]] for (uint i = 0; i < BM; i++)
                    [[unroll]] for (uint j = 0; j < BN; j++) acc[i][j] += wv[i] * dv[j];
            }
        }
    }
    [[unroll]] for (uint i = 0; i < BM; i++) {
        uint c = c0 + i;
        if (c >= p.C) break;
        [[unroll]] for (uint j = 0; j < BN; j++)
            if (j0 + j < NHW) dx[xbase[j] + c * HW] = acc[i][j];
    }
}
#else
layout(std430, binding = 0) readonly buffer DY { float dys[]; };   // (N,K,P,Q)
layout(std430, binding = 1) readonly buffer Wt { float ws[]; };    // (K,C,R,S)
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };   // (N,C,H,W)

uint gemm_m() { return p.C; }
uint gemm_n() { return p.N * p.H * p.W; }
uint gemm_k_begin(uint z) { return 0; }
uint gemm_k_end(uint z) { return p.K * p.R * p.S; }
// A = w transposed (C, K*R*S): a row is an input channel, k an (output channel, tap).
struct ARow { uint c_rs; };                 // c*R*S
struct AK { uint off; };                    // k*C*R*S + r*S + s
ARow a_row(uint c) { return ARow(c * p.R * p.S); }
AK a_k(uint krs)
{
    uint RS = p.R * p.S, k = div_rs(krs);
    return AK(k * p.C * RS + (krs - k * RS));
}
float load_a(ARow a, AK k) { return ws[k.off + a.c_rs]; }
// B (K*R*S, N*H*W): dy at the output position each input position (n, h, w) feeds through
// tap (r, s), zero where that is between strides or outside.
struct BK { uint k_pq; int r, s; };         // k*P*Q
struct BCol { uint base; int ph0, qw0; };   // n*K*P*Q; h + pad, w + pad
BK b_k(uint krs)
{
    uint k = div_rs(krs), rs = krs - k * p.R * p.S, r = div_s(rs), s = rs - r * p.S;
    return BK(k * p.P * p.Q, int(r), int(s));
}
BCol b_col(uint col)
{
    uint HW = p.H * p.W, n = div_hw(col), hw = col - n * HW, h = div_w(hw), w = hw - h * p.W;
    return BCol(n * p.K * p.P * p.Q, int(h + p.pad), int(w + p.pad));
}
float load_b(BK k, BCol col)
{
    int ph = col.ph0 - k.r, qw = col.qw0 - k.s;
    if (ph < 0 || qw < 0) return 0.0;
    uint op = div_stride(uint(ph)), oq = div_stride(uint(qw));
    if (op * p.stride != uint(ph) || oq * p.stride != uint(qw) || op >= p.P || oq >= p.Q) return 0.0;
    return dys[col.base + k.k_pq + op * p.Q + oq];
}
void store_c(uint c, uint col, float v)
{
    uint HW = p.H * p.W, n = div_hw(col);
    dx[(n * p.C + c) * HW + (col - n * HW)] = v;
}
#define A_ALONG_K 1
#define B_ALONG_K 0
#include "conv2d_gemm_tiled.glsl"
#endif
