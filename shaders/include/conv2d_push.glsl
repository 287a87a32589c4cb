// Push constants shared by the conv2d kernels (mirrored by struct conv2d_push in src/nn/conv2d.c).
// x (N,C,H,W), w (K,C,R,S), y and dy (N,K,P,Q), all dense row-major float32.
layout(push_constant) uniform Push {
    uint N, C, H, W;
    uint K, R, S;
    uint stride, pad;
    uint P, Q;
    uint has_bias;   // forward: binding b holds a bias (else it aliases w and is not read)
    uint slices;     // weight gradient: slices of the N*P output rows; tiled and coop input
                     // gradients: stride^2 phases (workgroup z); 1 elsewhere
    uint m_blocks;   // texel variants: blocks of 8 rows (channels)
    uint n_blocks;   // texel variants: blocks of 8 columns
    uint total;      // texel variants: m_blocks * n_blocks * slices invocations do work
    // Tiled variants: (magic, shifts) of fastdiv.glsl for the divisors of their index math.
    uint rs_magic, rs_shifts;   // R*S
    uint s_magic, s_shifts;     // S
    uint q_magic, q_shifts;     // Q
    uint pq_magic, pq_shifts;   // P*Q
    uint w_magic, w_shifts;     // W
    uint hw_magic, hw_shifts;   // H*W
} p;
#include "fastdiv.glsl"
uint div_rs(uint v) { return fastdiv(v, p.rs_magic, p.rs_shifts); }
uint div_s(uint v) { return fastdiv(v, p.s_magic, p.s_shifts); }
uint div_q(uint v) { return fastdiv(v, p.q_magic, p.q_shifts); }
uint div_pq(uint v) { return fastdiv(v, p.pq_magic, p.pq_shifts); }
uint div_w(uint v) { return fastdiv(v, p.w_magic, p.w_shifts); }
uint div_hw(uint v) { return fastdiv(v, p.hw_magic, p.hw_shifts); }

// Weight gradient: output rows (n, p) [begin, end) of reduction slice j; every slice
// gets at least one row (the host keeps slices <= N*P).
uint slice_row_begin(uint j) { return j * (p.N * p.P) / p.slices; }
