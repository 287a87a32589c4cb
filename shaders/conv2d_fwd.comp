#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv2d_push.glsl"
// y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K): cross-correlation, zero padding.
// As a GEMM: y[k, (n,p,q)] = sum over (c,r,s) of w[k, (c,r,s)] * x[n, c, p*stride-pad+r, q*stride-pad+s],
// M = K, N = N*P*Q, KD = C*R*S; the x "column" is gathered on the fly (no im2col buffer).
#ifdef TEXEL
// lavapipe: x and w through R32F texel buffers, workgroups of 8, BM channels x BN output
// positions per invocation, no shared memory, no barriers. The loop runs over taps
// (r, s) outside and channels c inside, so the padding test is per tap, not per load.
// Idea for later: a channels-packed vec4 layout and a sliding window along q (one new
// fetch per position serves all S horizontal taps), see shared/notes/lavapipe-performance.md.
layout(local_size_x_id = 0) in;
layout(binding = 0) uniform samplerBuffer X;     // (N,C,H,W)
layout(binding = 1) uniform samplerBuffer Wt;    // (K,C,R,S)
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };  // (K) when has_bias
layout(std430, binding = 3) writeonly buffer Y { float y[]; };       // (N,K,P,Q)

#define BM 8
#define BN 8
void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    uint PQ = p.P * p.Q, NPQ = p.N * PQ, HW = p.H * p.W, RS = p.R * p.S, CRS = p.C * RS;
    uint j0 = (id % p.n_blocks) * BN, k0 = (id / p.n_blocks) * BM;
    // Rows and columns past the end are clamped (computed, never stored): no checks in the loop.
    int wrow[BM];
    [[unroll]] for (uint i = 0; i < BM; i++) wrow[i] = int(min(k0 + i, p.K - 1) * CRS);
    int xbase[BN], h0[BN], w0[BN];
    uint ybase[BN];
    [[unroll]] for (uint j = 0; j < BN; j++) {
        uint col = min(j0 + j, NPQ - 1);
        uint n = col / PQ, pq = col - n * PQ;
        uint op = pq / p.Q, oq = pq - op * p.Q;
        xbase[j] = int(n * p.C * HW);
        h0[j] = int(op * p.stride) - int(p.pad);
        w0[j] = int(oq * p.stride) - int(p.pad);
        ybase[j] = n * p.K * PQ + pq;
    }
    float acc[BM][BN];
    [[unroll]] for (uint i = 0; i < BM; i++)
        [[unroll]] for (uint j = 0; j < BN; j++) acc[i][j] = 0.0;

    for (uint r = 0; r < p.R; r++) {
        for (uint s = 0; s < p.S; s++) {
            int off[BN];
            bool ok[BN];
            [[unroll]] for (uint j = 0; j < BN; j++) {
                int h = h0[j] + int(r), w = w0[j] + int(s);
                ok[j] = h >= 0 && h < int(p.H) && w >= 0 && w < int(p.W);
                off[j] = ok[j] ? xbase[j] + h * int(p.W) + w : 0;  // padding reads a valid texel, then 0
            }
            int tap = int(r * p.S + s);
            for (uint c = 0; c < p.C; c++) {
                int xc = int(c * HW), wc = int(c * RS) + tap;
                float xv[BN], wv[BM];
                [[unroll]] for (uint j = 0; j < BN; j++) {
                    float v = texelFetch(X, off[j] + xc).x;
                    xv[j] = ok[j] ? v : 0.0;
                }
                [[unroll]] for (uint i = 0; i < BM; i++) wv[i] = texelFetch(Wt, wrow[i] + wc).x;
                [[unroll]] for (uint i = 0; i < BM; i++)
                    [[unroll]] for (uint j = 0; j < BN; j++) acc[i][j] += wv[i] * xv[j];
            }
        }
    }
    [[unroll]] for (uint i = 0; i < BM; i++) {
        uint k = k0 + i;
        if (k >= p.K) break;
        float b = p.has_bias != 0 ? bias[k] : 0.0;
        [[unroll]] for (uint j = 0; j < BN; j++)
            if (j0 + j < NPQ) y[ybase[j] + k * PQ] = acc[i][j] + b;
    }
}
#else
layout(std430, binding = 0) readonly buffer X { float xs[]; };     // (N,C,H,W)
layout(std430, binding = 1) readonly buffer Wt { float ws[]; };    // (K,C,R,S)
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };  // (K) when has_bias
layout(std430, binding = 3) writeonly buffer Y { float y[]; };       // (N,K,P,Q)

uint gemm_m() { return p.K; }
uint gemm_n() { return p.N * p.P * p.Q; }
uint gemm_k_begin(uint z) { return 0; }
uint gemm_k_end(uint z) { return p.C * p.R * p.S; }
// A = w (K, C*R*S): a row is an output channel, k a tap (c, r, s).
struct ARow { uint base; };
struct AK { uint crs; };
ARow a_row(uint k) { return ARow(k * p.C * p.R * p.S); }
AK a_k(uint crs) { return AK(crs); }
float load_a(ARow a, AK k) { return ws[a.base + k.crs]; }
// B = the im2col of x (C*R*S, N*P*Q): k a tap (c, r, s), a column an output position (n, p, q).
struct BK { uint off; int r, s; };          // c*H*W + r*W + s
struct BCol { uint base; int h0, w0; };     // n*C*H*W; the tap (0, 0)'s row and column
BK b_k(uint crs)
{
    uint c = div_rs(crs), rs = crs - c * p.R * p.S, r = div_s(rs), s = rs - r * p.S;
    return BK(c * p.H * p.W + r * p.W + s, int(r), int(s));
}
BCol b_col(uint col)
{
    uint n = div_pq(col), pq = col - n * p.P * p.Q, op = div_q(pq), oq = pq - op * p.Q;
    return BCol(n * p.C * p.H * p.W, int(op * p.stride) - int(p.pad), int(oq * p.stride) - int(p.pad));
}
float load_b(BK k, BCol col)
{
    int h = col.h0 + k.r, w = col.w0 + k.s;
    if (h < 0 || h >= int(p.H) || w < 0 || w >= int(p.W)) return 0.0;  // zero padding
    return xs[uint(int(col.base + k.off) + col.h0 * int(p.W) + col.w0)];
}
void store_c(uint k, uint col, float v)
{
    uint PQ = p.P * p.Q, n = div_pq(col);
    y[(n * p.K + k) * PQ + (col - n * PQ)] = v + (p.has_bias != 0 ? bias[k] : 0.0);
}
#define A_ALONG_K 1
#define B_ALONG_K 0
#ifdef COOP
#include "conv2d_gemm_coop.glsl"   // tensor cores (NVIDIA), fp16 inputs: see there
#else
#include "conv2d_gemm_tiled.glsl"
#endif
#endif
