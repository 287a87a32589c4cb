// Implicit GEMM with shared-memory tiles, the conv2d variant for real GPUs:
// C (M, N) = A (M, KD) B (KD, N), reduced over [gemm_k_begin(z), gemm_k_end(z)) where z
// is gl_WorkGroupID.z (a reduction slice; 0 when there is one). No matrix is stored:
// the including shader defines how to read one element of A and B from the tensors
// (zero padding and the im2col gather live there) and how to store one of C:
//   uint gemm_m(), gemm_n(), gemm_k_begin(uint z), gemm_k_end(uint z);
//   float load_a(uint m, uint k);  float load_b(uint k, uint n);   (called in range only)
//   void store_c(uint m, uint n, float v);
//   #define A_ALONG_K / B_ALONG_K 1 when consecutive k are (mostly) adjacent in memory,
//   so a tile load walks the contiguous direction and global reads coalesce.
// A workgroup of TX x TY threads computes a TM x TN tile (TM = TY*RM, TN = TX*RN);
// thread (tx, ty) owns rows ty + i*TY and columns tx + j*TX. The register block RM x RN
// is 4 or 8 each (specialization constants, picked per call from the GEMM's size): 8x8
// does 4x the FMAs per shared-memory tile element and per im2col index computation of
// 4x4, which pays on real GPUs where the grid still fills the device. Shared memory is
// TK*(TM+TN) floats: 8 KiB at 16x16 threads and 4x4, 16 KiB at 8x8 (the Vulkan minimum).
// Ideas for later: double-buffered tiles, vec4 loads where C*R*S allows it, and
// VK_KHR_cooperative_matrix where offered.
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint TK = 16;
layout(constant_id = 4) const uint RM = 4;
layout(constant_id = 5) const uint RN = 4;

const uint TX = gl_WorkGroupSize.x, TY = gl_WorkGroupSize.y;
const uint TM = TY * RM, TN = TX * RN;
shared float As[TK * TM];  // [k][m]
shared float Bs[TK * TN];  // [k][n]

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * TX + tx, threads = TX * TY;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TN, z = gl_WorkGroupID.z;
    uint M = gemm_m(), N = gemm_n(), k_begin = gemm_k_begin(z), k_end = gemm_k_end(z);
    float acc[RM][RN];
    [[unroll]] for (uint i = 0; i < RM; i++)
        [[unroll]] for (uint j = 0; j < RN; j++) acc[i][j] = 0.0;

    for (uint k0 = k_begin; k0 < k_end; k0 += TK) {
        for (uint e = tid; e < TK * TM; e += threads) {
#if A_ALONG_K
            uint kk = e % TK, mm = e / TK;
#else
            uint kk = e / TM, mm = e % TM;
#endif
            uint m = m0 + mm, k = k0 + kk;
            As[kk * TM + mm] = (m < M && k < k_end) ? load_a(m, k) : 0.0;
        }
        for (uint e = tid; e < TK * TN; e += threads) {
#if B_ALONG_K
            uint kk = e % TK, nn = e / TK;
#else
            uint kk = e / TN, nn = e % TN;
#endif
            uint n = n0 + nn, k = k0 + kk;
            Bs[kk * TN + nn] = (n < N && k < k_end) ? load_b(k, n) : 0.0;
        }
        barrier();  // tiles written -> tiles read
        for (uint kk = 0; kk < TK; kk++) {
            float av[RM], bv[RN];
            [[unroll]] for (uint i = 0; i < RM; i++) av[i] = As[kk * TM + ty + i * TY];
            [[unroll]] for (uint j = 0; j < RN; j++) bv[j] = Bs[kk * TN + tx + j * TX];
            [[unroll]] for (uint i = 0; i < RM; i++)
                [[unroll]] for (uint j = 0; j < RN; j++) acc[i][j] += av[i] * bv[j];
        }
        barrier();  // tiles read -> next tiles written
    }
    [[unroll]] for (uint i = 0; i < RM; i++) {
        uint m = m0 + ty + i * TY;
        [[unroll]] for (uint j = 0; j < RN; j++) {
            uint n = n0 + tx + j * TX;
            if (m < M && n < N) store_c(m, n, acc[i][j]);
        }
    }
}
