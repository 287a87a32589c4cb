#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv2d_push.glsl"
// First pass of the weight and bias gradients, from dy (N,K,P,Q) and x (N,C,H,W): forward was
//   y[n,k,p,q] = b[k] + sum over c,r,s of x[n,c,p*stride-pad+r, q*stride-pad+s] * w[k,c,r,s]
// so dw[k,c,r,s] = sum over n,p,q of dy[n,k,p,q] * x[n,c,p*stride-pad+r, q*stride-pad+s] and
// db[k] = sum over n,p,q of dy[n,k,p,q]. As a GEMM: M = K, N = C*R*S + 1 (the extra column
// is all ones: it yields db), reduced over the output positions (n,p,q). The reduction is
// split into p.slices slices of whole output rows (n,p); slice z writes its partial sums to
//   part[(z*K + k)*(C*R*S+1) + col]
// and conv2d_bwd_weight_reduce.comp adds the slices in order: no atomics, same bits every run.
#ifdef TEXEL
// lavapipe: dy and x through R32F texel buffers, workgroups of 8, BM output channels x BN
// columns per invocation, no shared memory, no barriers; per output row the padding
// test along h is hoisted, the inner loop walks q.
layout(local_size_x_id = 0) in;
layout(binding = 0) uniform samplerBuffer DY;    // (N,K,P,Q)
layout(binding = 1) uniform samplerBuffer X;     // (N,C,H,W)
layout(std430, binding = 2) writeonly buffer Part { float part[]; };  // (slices, K, C*R*S+1)

#define BM 8
#define BN 8
void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    uint PQ = p.P * p.Q, HW = p.H * p.W, RS = p.R * p.S, CRS = p.C * RS;
    int st = int(p.stride), pad = int(p.pad), H = int(p.H), W = int(p.W);
    uint j0 = (id % p.n_blocks) * BN, rest = id / p.n_blocks;
    uint k0 = (rest % p.m_blocks) * BM, z = rest / p.m_blocks;
    int krow[BM];
    [[unroll]] for (uint i = 0; i < BM; i++) krow[i] = int(min(k0 + i, p.K - 1) * PQ);
    int xc[BN], rr[BN], sp[BN];
    bool ones[BN];
    [[unroll]] for (uint j = 0; j < BN; j++) {
        uint col = min(j0 + j, CRS);
        ones[j] = col == CRS;
        uint crs = min(col, CRS - 1);
        uint c = crs / RS, rs = crs - c * RS, r = rs / p.S;
        xc[j] = int(c * HW);
        rr[j] = int(r) - pad;
        sp[j] = int(rs - r * p.S) - pad;
    }
    float acc[BM][BN];
    [[unroll]] for (uint i = 0; i < BM; i++)
        [[unroll]] for (uint j = 0; j < BN; j++) acc[i][j] = 0.0;

    uint row_end = slice_row_begin(z + 1);
    for (uint row = slice_row_begin(z); row < row_end; row++) {
        uint n = row / p.P, op = row - n * p.P;
        int dyrow = int(n * p.K * PQ + op * p.Q);
        int xrow[BN];
        bool hok[BN];
        [[unroll]] for (uint j = 0; j < BN; j++) {
            int h = int(op) * st + rr[j];
            hok[j] = h >= 0 && h < H;
            xrow[j] = int(n * p.C * HW) + xc[j] + h * W + sp[j];  // + q*stride: x[n,c,h,q*stride-pad+s]
        }
        for (uint q = 0; q < p.Q; q++) {
            int qs = int(q) * st;
            float dv[BM], xv[BN];
            [[unroll]] for (uint i = 0; i < BM; i++) dv[i] = texelFetch(DY, krow[i] + dyrow + int(q)).x;
            [[unroll]] for (uint j = 0; j < BN; j++) {
                int w = qs + sp[j];
                bool ok = hok[j] && w >= 0 && w < W;
                float v = texelFetch(X, ok ? xrow[j] + qs : 0).x;
                xv[j] = ones[j] ? 1.0 : (ok ? v : 0.0);
            }
            [[unroll]] for (uint i = 0; i < BM; i++)
                [[unroll]] for (uint j = 0; j < BN; j++) acc[i][j] += dv[i] * xv[j];
        }
    }
    [[unroll]] for (uint i = 0; i < BM; i++) {
        uint k = k0 + i;
        if (k >= p.K) break;
        uint base = (z * p.K + k) * (CRS + 1);
        [[unroll]] for (uint j = 0; j < BN; j++)
            if (j0 + j <= CRS) part[base + j0 + j] = acc[i][j];
    }
}
#else
layout(std430, binding = 0) readonly buffer DY { float dys[]; };   // (N,K,P,Q)
layout(std430, binding = 1) readonly buffer X { float xs[]; };     // (N,C,H,W)
layout(std430, binding = 2) writeonly buffer Part { float part[]; };  // (slices, K, C*R*S+1)

// The reduction index is the flat output position n*P*Q + p*Q + q.
uint gemm_m() { return p.K; }
uint gemm_n() { return p.C * p.R * p.S + 1; }
uint gemm_k_begin(uint z) { return slice_row_begin(z) * p.Q; }
uint gemm_k_end(uint z) { return slice_row_begin(z + 1) * p.Q; }
// A = dy (K, N*P*Q): a row is an output channel, k an output position.
struct ARow { uint k_pq; };                 // k*P*Q
struct AK { uint off; };                    // n*K*P*Q + p*Q + q
ARow a_row(uint k) { return ARow(k * p.P * p.Q); }
AK a_k(uint npq)
{
    uint PQ = p.P * p.Q, n = div_pq(npq);
    return AK(n * p.K * PQ + (npq - n * PQ));
}
float load_a(ARow a, AK k) { return dys[k.off + a.k_pq]; }
// B (N*P*Q, C*R*S + 1): x at the input position that output position (n, p, q) reads
// through tap (c, r, s), and a last column of ones (the bias).
struct BK { uint base; int h0, w0; };       // n*C*H*W; the tap (0, 0)'s row and column
struct BCol { uint off; int r, s; bool ones; };   // c*H*W + r*W + s
BK b_k(uint npq)
{
    uint PQ = p.P * p.Q, n = div_pq(npq), pq = npq - n * PQ, op = div_q(pq), oq = pq - op * p.Q;
    return BK(n * p.C * p.H * p.W, int(op * p.stride) - int(p.pad), int(oq * p.stride) - int(p.pad));
}
BCol b_col(uint col)
{
    uint RS = p.R * p.S, crs = min(col, p.C * RS - 1);
    uint c = div_rs(crs), rs = crs - c * RS, r = div_s(rs), s = rs - r * p.S;
    return BCol(c * p.H * p.W + r * p.W + s, int(r), int(s), col == p.C * RS);
}
float load_b(BK k, BCol col)
{
    if (col.ones) return 1.0;  // the bias column
    int h = k.h0 + col.r, w = k.w0 + col.s;
    if (h < 0 || h >= int(p.H) || w < 0 || w >= int(p.W)) return 0.0;  // zero padding
    return xs[uint(int(k.base + col.off) + k.h0 * int(p.W) + k.w0)];
}
void store_c(uint k, uint col, float v)
{
    part[(gl_WorkGroupID.z * p.K + k) * (p.C * p.R * p.S + 1) + col] = v;
}
#define A_ALONG_K 1
#define B_ALONG_K 1
#ifdef COOP
#define COOP_SCALE_A            // A is dy
#define COOP_SCALE_BINDING 3
#include "conv2d_gemm_coop.glsl"
#else
#include "conv2d_gemm_tiled.glsl"
#endif
#endif
