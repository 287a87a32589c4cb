// Push constants shared by the conv2d kernels (mirrored by struct conv2d_push in src/nn/conv2d.c).
// x (N,C,H,W), w (K,C,R,S), y and dy (N,K,P,Q), all dense row-major float32.
layout(push_constant) uniform Push {
    uint N, C, H, W;
    uint K, R, S;
    uint stride, pad;
    uint P, Q;
    uint has_bias;   // forward: binding b holds a bias (else it aliases w and is not read)
    uint slices;     // weight gradient: slices of the N*P output rows; 1 elsewhere
    uint m_blocks;   // texel variants: blocks of 8 rows (channels)
    uint n_blocks;   // texel variants: blocks of 8 columns
    uint total;      // texel variants: m_blocks * n_blocks * slices invocations do work
} p;

// Weight gradient: output rows (n, p) [begin, end) of reduction slice j; every slice
// gets at least one row (the host keeps slices <= N*P).
uint slice_row_begin(uint j) { return j * (p.N * p.P) / p.slices; }
