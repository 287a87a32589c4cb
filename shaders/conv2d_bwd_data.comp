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

// By stride phase (workgroup z = a * stride + b): the input positions (h, w) with
// (h + pad) % stride == a and (w + pad) % stride == b meet only the taps r % stride == a,
// s % stride == b, and each such tap meets an output position (no test-and-skip: stride 2
// would skip 3/4 of the taps). Per phase: M = C, N = N * (its rows) * (its columns),
// KD = K * (its taps) ordered (k, r, s); a phase without taps writes zeros.
uint ph_a, ph_b;          // this workgroup's phase
uint ph_h0, ph_w0;        // its first input row and column
uint ph_hn, ph_wn;        // its rows and columns
uint ph_ra, ph_sb;        // its taps along r and s
void gemm_setup()
{
    uint st = p.stride, z = gl_WorkGroupID.z;
    ph_a = z / st;
    ph_b = z - ph_a * st;
    ph_h0 = (ph_a + st - p.pad % st) % st;
    ph_w0 = (ph_b + st - p.pad % st) % st;
    ph_hn = ph_h0 < p.H ? (p.H - ph_h0 + st - 1) / st : 0u;
    ph_wn = ph_w0 < p.W ? (p.W - ph_w0 + st - 1) / st : 0u;
    ph_ra = ph_a < p.R ? (p.R - ph_a + st - 1) / st : 0u;
    ph_sb = ph_b < p.S ? (p.S - ph_b + st - 1) / st : 0u;
}
#define GEMM_SETUP 1
uint gemm_m() { return p.C; }
uint gemm_n() { return p.N * ph_hn * ph_wn; }
uint gemm_k_begin(uint z) { return 0; }
uint gemm_k_end(uint z) { return p.K * ph_ra * ph_sb; }
// Reduction index -> (k, tap along r, tap along s) of the phase; fastdiv at stride 1
// (the phase is the whole conv), a division by the phase's sizes otherwise.
uvec3 phase_tap(uint kt)
{
    uint k, t, tr;
    if (p.stride == 1) {
        k = div_rs(kt);
        t = kt - k * p.R * p.S;
        tr = div_s(t);
    } else {
        k = kt / (ph_ra * ph_sb);
        t = kt - k * ph_ra * ph_sb;
        tr = t / ph_sb;
    }
    return uvec3(k, tr, t - tr * ph_sb);
}
// Column -> (n, row, column) within the phase.
uvec3 phase_position(uint col)
{
    uint n, rem, i;
    if (p.stride == 1) {
        n = div_hw(col);
        rem = col - n * p.H * p.W;
        i = div_w(rem);
    } else {
        n = col / (ph_hn * ph_wn);
        rem = col - n * ph_hn * ph_wn;
        i = rem / ph_wn;
    }
    return uvec3(n, ph_h0 + i * p.stride, ph_w0 + (rem - i * ph_wn) * p.stride);
}
// A = w transposed (C, K * taps): a row is an input channel, k an (output channel, tap).
struct ARow { uint c_rs; };                 // c*R*S
struct AK { uint off; };                    // k*C*R*S + r*S + s
ARow a_row(uint c) { return ARow(c * p.R * p.S); }
AK a_k(uint kt)
{
    uvec3 t = phase_tap(kt);
    return AK(t.x * p.C * p.R * p.S + (ph_a + t.y * p.stride) * p.S + ph_b + t.z * p.stride);
}
float load_a(ARow a, AK k) { return ws[k.off + a.c_rs]; }
// B (K * taps, N * phase positions): dy at the output position that input position (n, h, w)
// reaches through the tap: (h + pad - r) / stride = oh - tr exactly, likewise along w.
struct BK { uint k_pq; int tr, ts; };       // k*P*Q; tap indices within the phase
struct BCol { uint base; int oh, ow; };     // n*K*P*Q; the output row and column of tap (a, b)
BK b_k(uint kt)
{
    uvec3 t = phase_tap(kt);
    return BK(t.x * p.P * p.Q, int(t.y), int(t.z));
}
BCol b_col(uint col)
{
    uvec3 pos = phase_position(col);
    return BCol(pos.x * p.K * p.P * p.Q, int((pos.y + p.pad - ph_a) / p.stride), int((pos.z + p.pad - ph_b) / p.stride));
}
float load_b(BK k, BCol col)
{
    int op = col.oh - k.tr, oq = col.ow - k.ts;
    if (op < 0 || op >= int(p.P) || oq < 0 || oq >= int(p.Q)) return 0.0;
    return dys[col.base + k.k_pq + uint(op) * p.Q + uint(oq)];
}
void store_c(uint c, uint col, float v)
{
    uvec3 pos = phase_position(col);
    dx[((pos.x * p.C + c) * p.H + pos.y) * p.W + pos.z] = v;
}
#define A_ALONG_K 1
#define B_ALONG_K 0
#ifdef COOP
#define COOP_SCALE_B            // B is dy
#define COOP_SCALE_BINDING 3
#include "conv2d_gemm_coop.glsl"
#else
#include "conv2d_gemm_tiled.glsl"
#endif
#endif
