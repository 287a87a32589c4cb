#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "matmul_push.glsl"
// C (M, N) = op(A) op(B) with shared-memory tiles: the variant for real GPUs.
// A workgroup of TX x TY threads computes a TM x TN tile, TM = TY*RM, TN = TX*RN;
// thread (tx, ty) owns rows ty + r*TY and columns tx + c*TX (strided, so shared
// reads are conflict-free and global stores coalesce).
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint TK = 16;
#define RM 4
#define RN 4

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer C { float c[]; };  // (M, N)

const uint TX = gl_WorkGroupSize.x, TY = gl_WorkGroupSize.y;
const uint TM = TY * RM, TN = TX * RN;
shared float As[TK * TM];  // [k][m]
shared float Bs[TK * TN];  // [k][n]

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * TX + tx, threads = TX * TY;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TN;
    float acc[RM][RN];
    [[unroll]] for (uint r = 0; r < RM; r++)
        [[unroll]] for (uint q = 0; q < RN; q++) acc[r][q] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += TK) {
        // Walk the tile along whichever dimension is contiguous in memory.
        for (uint i = tid; i < TK * TM; i += threads) {
            uint kk = p.a_cs == 1 ? i % TK : i / TM;
            uint mm = p.a_cs == 1 ? i / TK : i % TM;
            uint m = m0 + mm, k = k0 + kk;
            As[kk * TM + mm] = (m < p.M && k < p.K) ? a[m * p.a_rs + k * p.a_cs] : 0.0;
        }
        for (uint i = tid; i < TK * TN; i += threads) {
            uint kk = p.b_cs == 1 ? i / TN : i % TK;
            uint nn = p.b_cs == 1 ? i % TN : i / TK;
            uint n = n0 + nn, k = k0 + kk;
            Bs[kk * TN + nn] = (n < p.N && k < p.K) ? b[k * p.b_rs + n * p.b_cs] : 0.0;
        }
        barrier();  // tiles written -> tiles read
        for (uint kk = 0; kk < TK; kk++) {
            float av[RM], bv[RN];
            [[unroll]] for (uint r = 0; r < RM; r++) av[r] = As[kk * TM + ty + r * TY];
            [[unroll]] for (uint q = 0; q < RN; q++) bv[q] = Bs[kk * TN + tx + q * TX];
            [[unroll]] for (uint r = 0; r < RM; r++)
                [[unroll]] for (uint q = 0; q < RN; q++) acc[r][q] += av[r] * bv[q];
        }
        barrier();  // tiles read -> next tiles written
    }
    [[unroll]] for (uint r = 0; r < RM; r++) {
        uint m = m0 + ty + r * TY;
        [[unroll]] for (uint q = 0; q < RN; q++) {
            uint n = n0 + tx + q * TX;
            if (m < p.M && n < p.N) c[m * p.N + n] = acc[r][q];
        }
    }
}
