#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "matmul_push.glsl"
// C (M, N) = op(A) op(B) for CPU devices (lavapipe): inputs through texel
// buffers (branch-free gathers there, ~3x faster than storage-buffer loads),
// a large register block per invocation, no shared memory, no barriers
// (../shared/notes/lavapipe-performance.md).
//
// Default: R32F texels, any strides (transposes), an 8 x 8 block per invocation.
// VEC4: RGBA32F texels, A (M, K) and B (K, N) row-major with K, N multiples of
// 4; an 8-row x 2-vec4 block, 4 k-steps per fetch of A.
layout(local_size_x_id = 0) in;

layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
layout(std430, binding = 2) writeonly buffer C { float c[]; };  // (M, N)

#define BM 8
void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total_blocks) return;
    uint m0 = (id % p.row_blocks) * BM;
    uint cb = id / p.row_blocks;
#ifdef VEC4
    uint N4 = p.N / 4, K4 = p.K / 4;
    uint n4a = cb * 2, n4b = min(cb * 2 + 1, N4 - 1);
    int arow[BM];
    // Rows past M are clamped (fetched, never stored): no bounds checks in the loop.
    [[unroll]] for (uint r = 0; r < BM; r++) arow[r] = int(min(m0 + r, p.M - 1) * K4);
    vec4 acc0[BM], acc1[BM];
    [[unroll]] for (uint r = 0; r < BM; r++) { acc0[r] = vec4(0.0); acc1[r] = vec4(0.0); }
    for (uint k4 = 0; k4 < K4; k4++) {
        vec4 av[BM];
        [[unroll]] for (uint r = 0; r < BM; r++) av[r] = texelFetch(A, arow[r] + int(k4));
        [[unroll]] for (uint j = 0; j < 4; j++) {
            int brow = int((k4 * 4 + j) * N4);
            vec4 b0 = texelFetch(B, brow + int(n4a));
            vec4 b1 = texelFetch(B, brow + int(n4b));
            [[unroll]] for (uint r = 0; r < BM; r++) {
                acc0[r] += av[r][j] * b0;
                acc1[r] += av[r][j] * b1;
            }
        }
    }
    [[unroll]] for (uint r = 0; r < BM; r++) {
        uint m = m0 + r;
        if (m >= p.M) break;
        uint base = m * p.N + n4a * 4;
        [[unroll]] for (uint q = 0; q < 4; q++) c[base + q] = acc0[r][q];
        if (cb * 2 + 1 < N4) [[unroll]] for (uint q = 0; q < 4; q++) c[base + 4 + q] = acc1[r][q];
    }
#else
#define BN 8
    uint n0 = cb * BN;
    int arow[BM], bcol[BN];
    [[unroll]] for (uint r = 0; r < BM; r++) arow[r] = int(min(m0 + r, p.M - 1) * p.a_rs);
    [[unroll]] for (uint q = 0; q < BN; q++) bcol[q] = int(min(n0 + q, p.N - 1) * p.b_cs);
    float acc[BM][BN];
    [[unroll]] for (uint r = 0; r < BM; r++)
        [[unroll]] for (uint q = 0; q < BN; q++) acc[r][q] = 0.0;
    for (uint k = 0; k < p.K; k++) {
        int ak = int(k * p.a_cs), bk = int(k * p.b_rs);
        float av[BM], bv[BN];
        [[unroll]] for (uint r = 0; r < BM; r++) av[r] = texelFetch(A, arow[r] + ak).x;
        [[unroll]] for (uint q = 0; q < BN; q++) bv[q] = texelFetch(B, bk + bcol[q]).x;
        [[unroll]] for (uint r = 0; r < BM; r++)
            [[unroll]] for (uint q = 0; q < BN; q++) acc[r][q] += av[r] * bv[q];
    }
    [[unroll]] for (uint r = 0; r < BM; r++) {
        uint m = m0 + r;
        [[unroll]] for (uint q = 0; q < BN; q++) {
            uint n = n0 + q;
            if (m < p.M && n < p.N) c[m * p.N + n] = acc[r][q];
        }
    }
#endif
}
