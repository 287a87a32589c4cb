// Push constants shared by the matmul variants (mirrored by struct matmul_push in src/nn/matmul.c).
// Element (m, k) of op(A) is A[m*a_rs + k*a_cs]; element (k, n) of op(B) is B[k*b_rs + n*b_cs].
layout(push_constant) uniform Push {
    uint M, N, K;
    uint a_rs, a_cs, b_rs, b_cs;
    uint row_blocks;   // texel variants: blocks of rows; consecutive invocations share a B panel
    uint total_blocks; // texel variants: row_blocks * column blocks
} p;
