// Implicit GEMM with shared-memory tiles, the conv2d variant for real GPUs:
// C (M, N) = A (M, KD) B (KD, N), reduced over [gemm_k_begin(z), gemm_k_end(z)) where z
// is gl_WorkGroupID.z (a reduction slice; 0 when there is one). No matrix is stored:
// the including shader says how to read one element of A and B from the tensors (zero
// padding and the im2col gather live there) and how to store one of C, in two halves
// each, so that the index arithmetic (integer divisions by the conv's sizes) is done
// once per row, column or reduction index of a thread, not once per element:
//   uint gemm_m(), gemm_n(), gemm_k_begin(uint z), gemm_k_end(uint z);
//   (#define GEMM_SETUP and void gemm_setup(): run first, for per-workgroup values)
//   struct ARow, AK, BK, BCol;  ARow a_row(uint m);  AK a_k(uint k);  float load_a(ARow, AK);
//                               BK b_k(uint k);  BCol b_col(uint n);  float load_b(BK, BCol);
//   (load_* are called in range only: m < M, n < N, k < k_end)
//   void store_c(uint m, uint n, float v);
//   #define A_ALONG_K / B_ALONG_K 1 when consecutive k are (mostly) adjacent in memory,
//   so a tile load walks the contiguous direction and global reads coalesce.
// Each thread loads the same tile elements every step (e = tid + i * threads): along K its
// k offset in the tile is fixed and its rows (columns) are fixed, so a_row / b_col run once
// before the loop and a_k / b_k once per tile; across K its row (column) is fixed and its
// k offsets vary, so a_k / b_k run per element.
// A workgroup of TX x TY threads computes a TM x TN tile (TM = TY*RM, TN = TX*RN). With
// VEC4 (the default) thread (tx, ty) owns runs of 4 rows, 4*ty + 4*TY*i4 + 0..3, and of 4
// columns, 4*tx + 4*TX*j4 + 0..3, and reads each run from shared memory as one vec4 (a
// quarter of the load instructions per multiply-add; the runs of a warp are adjacent, so
// without bank conflicts); without it (VKANCHOR_TILED_VEC4=0, for A/B runs) rows ty + i*TY
// and columns tx + j*TX, one float per load. The register block RM x RN
// is 4 or 8 each (specialization constants, picked per call from the GEMM's size): 8x8
// does 4x the FMAs per shared-memory tile element and per im2col gather of 4x4, which pays
// on real GPUs where the grid still fills the device. Shared memory is TK*(TM+TN) floats:
// 8 KiB at 16x16 threads and 4x4, 16 KiB at 8x8 (the Vulkan minimum).
// Ideas for later: vec4 global loads where C*R*S allows it, and VK_KHR_cooperative_matrix
// where offered (Debian 12's glslang 12 knows only GL_NV_cooperative_matrix).
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint TK = 16;
layout(constant_id = 4) const uint RM = 4;
layout(constant_id = 5) const uint RN = 4;

layout(constant_id = 7) const bool VEC4 = true;

const uint TX = gl_WorkGroupSize.x, TY = gl_WorkGroupSize.y;
const uint TM = TY * RM, TN = TX * RN;
shared vec4 As4[TK * TM / 4];  // [k][m], m in runs of 4
shared vec4 Bs4[TK * TN / 4];  // [k][n]

// One float of a tile by its index k*TM + m (k*TN + n): the tiles are vec4 arrays for the
// VEC4 reads, written (and read without VEC4) a component at a time.
float a_at(uint e) { return As4[e / 4u][e % 4u]; }
float b_at(uint e) { return Bs4[e / 4u][e % 4u]; }
void a_put(uint e, float v) { As4[e / 4u][e % 4u] = v; }
void b_put(uint e, float v) { Bs4[e / 4u][e % 4u] = v; }

// The tile row (column) of this thread's register row i (column j): see VEC4 above.
uint row_of(uint ty, uint i) { return VEC4 ? ((i / 4u) * TY + ty) * 4u + i % 4u : ty + i * TY; }
uint col_of(uint tx, uint j) { return VEC4 ? ((j / 4u) * TX + tx) * 4u + j % 4u : tx + j * TX; }

// Whether the next tile's global loads are issued before this tile's multiply-adds (into
// registers, stored to shared memory after the barrier), so that their latency overlaps
// arithmetic; 0 (VKANCHOR_TILED_PREFETCH=0) loads each tile just before it is used.
layout(constant_id = 6) const bool PREFETCH = true;

// The tile gather (TX = 16 and TK = 16 divide every count: the threads are a multiple of TK,
// TM and TN), into the vec4 tiles by the element index k*TM + m (k*TN + n).
#define GEMM_THREADS (TX * TY)
#include "conv2d_gemm_fetch.glsl"
void put_a(uint k, uint m, float v) { a_put(k * TM + m, v); }
void put_b(uint k, uint n, float v) { b_put(k * TN + n, v); }

void main()
{
#ifdef GEMM_SETUP
    gemm_setup();   // per-workgroup values the including shader's functions use
#endif
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    tid = ty * TX + tx;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TN, z = gl_WorkGroupID.z;
    uint M = gemm_m(), N = gemm_n(), k_begin = gemm_k_begin(z);
    k_end = gemm_k_end(z);
    if (N == 0u) return;   // a stride phase without positions (the whole workgroup: no barrier waits)
    float acc[RM][RN];
    [[unroll]] for (uint i = 0; i < RM; i++)
        [[unroll]] for (uint j = 0; j < RN; j++) acc[i][j] = 0.0;
    fetch_setup(m0, n0, M, N);

    if (k_begin < k_end) fetch_tile(k_begin);
    for (uint k0 = k_begin; k0 < k_end; k0 += TK) {
        store_tile();
        barrier();  // tiles written -> tiles read
        bool more = k0 + TK < k_end;
        if (PREFETCH && more) fetch_tile(k0 + TK);
        for (uint kk = 0; kk < TK; kk++) {
            float av[RM], bv[RN];
            if (VEC4) {
                [[unroll]] for (uint i4 = 0; i4 < RM / 4u; i4++) {
                    vec4 a4 = As4[kk * (TM / 4u) + i4 * TY + ty];
                    [[unroll]] for (uint r = 0; r < 4u; r++) av[i4 * 4u + r] = a4[r];
                }
                [[unroll]] for (uint j4 = 0; j4 < RN / 4u; j4++) {
                    vec4 b4 = Bs4[kk * (TN / 4u) + j4 * TX + tx];
                    [[unroll]] for (uint c = 0; c < 4u; c++) bv[j4 * 4u + c] = b4[c];
                }
            } else {
                [[unroll]] for (uint i = 0; i < RM; i++) av[i] = a_at(kk * TM + row_of(ty, i));
                [[unroll]] for (uint j = 0; j < RN; j++) bv[j] = b_at(kk * TN + col_of(tx, j));
            }
            [[unroll]] for (uint i = 0; i < RM; i++)
                [[unroll]] for (uint j = 0; j < RN; j++) acc[i][j] += av[i] * bv[j];
        }
        barrier();  // tiles read -> next tiles written
        if (!PREFETCH && more) fetch_tile(k0 + TK);
    }
    [[unroll]] for (uint i = 0; i < RM; i++) {
        uint m = m0 + row_of(ty, i);
        [[unroll]] for (uint j = 0; j < RN; j++) {
            uint n = n0 + col_of(tx, j);
            if (m < M && n < N) store_c(m, n, acc[i][j]);
        }
    }
}
