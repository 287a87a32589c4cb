// Implicit GEMM on cooperative matrices (VK_NV_cooperative_matrix: NVIDIA's tensor cores), the
// conv2d variant conv2d.c picks on devices that offer 16x8x16 fp16 x fp16 -> fp32 tiles and
// pass its start-up self-test. The including shader provides the same functions as for
// conv2d_gemm_tiled.glsl (see there): gemm_m/n/k_begin/k_end, ARow/AK/BK/BCol with a_row,
// a_k, b_k, b_col, load_a, load_b, store_c, A_ALONG_K and B_ALONG_K.
// A workgroup of 4 subgroups of 32 computes a 64 x 64 tile of C: subgroup w the 32 x 32
// quarter (w / 2, w % 2), as 2 x 4 fragments of 16 x 8 accumulated in fp32. Per step of
// TK = 32 along K the 128 threads gather the A (64 x 32) and B (32 x 64) tiles through the
// hooks (the im2col), round them to fp16 into shared memory (k-major, rows padded by 8
// halves so that fragment loads stay 16-byte aligned), and each subgroup multiplies its
// fragments from there; the next step's elements are fetched into registers during the
// multiplies. At the end the fragments go through shared memory (fp32) to store_c, one
// element per thread at a time, so that the output mapping stays the including shader's.
// fp16 inputs: values beyond +-65504 become infinite (activations and weights are far from
// it); dy, which would underflow fp16, is scaled into its range first (COOP_SCALE_A / _B).
// COOP_EMULATE (tests, any device with fp16 arithmetic): the same kernel with the fragment
// operations done by plain code, as the NV specification defines them (a fragment loaded from
// (offset, stride, column-major) holds element (r, c) at offset + c * stride + r, row-major at
// offset + r * stride + c): the tile gathers, the fragment offsets and strides and the epilogue
// run, and are checked against the reference, where no cooperative matrix is offered.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#ifndef COOP_EMULATE
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

layout(local_size_x_id = 0) in;   // the host passes THREADS
const uint THREADS = 128u, TM = 64u, TN = 64u, TK = 32u;
const uint AS = TM + 8u, BS = TN + 8u, CS = TN + 4u;  // padded row strides (elements)
shared float16_t As[TK * AS];   // [k][m] (store_tile's writes: 4-way bank conflicts, the loads none)
shared float16_t Bs[TK * BS];   // [k][n]
shared float Cs[TM * CS];       // [m][n], the accumulators on their way out

// The tile gather (16 elements of each tile per thread), into the fp16 tiles: A element (k, m)
// at As[k * AS + m], B (k, n) at Bs[k * BS + n].
#define GEMM_THREADS THREADS
#include "conv2d_gemm_fetch.glsl"
// dy in fp16 (the input and weight gradients: COOP_SCALE_B / COOP_SCALE_A name its operand) is
// scaled by the power of two that puts max |dy| in [8192, 16384) (from vka_reduce_sum_absmax,
// at binding COOP_SCALE_BINDING), so that its small values do not underflow fp16 nor its
// largest overflow it; the sums are scaled back in the epilogue by the exact inverse (both
// from ldexp: exp2 of a float need not be exact).
#if defined(COOP_SCALE_A) || defined(COOP_SCALE_B)
layout(std430, binding = COOP_SCALE_BINDING) readonly buffer CoopMax { float coop_max[]; };  // (sum, max |dy|)
#endif
float scale_a = 1.0, scale_b = 1.0, scale_out = 1.0;
void coop_scales()
{
#if defined(COOP_SCALE_A) || defined(COOP_SCALE_B)
    float m = coop_max[1];
    int e = 0;
    if (m > 0.0 && !isinf(m) && !isnan(m)) frexp(m, e);  // m = f 2^e, f in [0.5, 1)
    int shift = e == 0 ? 0 : clamp(14 - e, -126, 126);     // m 2^shift in [8192, 16384)
    float s = ldexp(1.0, shift);
#ifdef COOP_SCALE_A
    scale_a = s;
#else
    scale_b = s;
#endif
    scale_out = ldexp(1.0, -shift);
#endif
}
void put_a(uint k, uint m, float v) { As[k * AS + m] = float16_t(v * scale_a); }
void put_b(uint k, uint n, float v) { Bs[k * BS + n] = float16_t(v * scale_b); }

#ifdef COOP_EMULATE
// A and B fragments stay in the shared tiles (they do not change between load and use);
// an accumulator fragment 16 x 8 is spread over its 32 threads, 4 elements each: element
// q = lane + 32 u is (q / 8, q % 8).
struct FragA { uint offset, stride; bool col_major; };
struct FragB { uint offset, stride; bool col_major; };
struct Acc { float v[4]; };
#define FRAG_A FragA
#define FRAG_B FragB
#define ACC Acc
#define ACC_ZERO Acc(float[4](0.0, 0.0, 0.0, 0.0))
#define LOAD_A(f, offset, stride, col_major) f = FragA(offset, stride, col_major)
#define LOAD_B(f, offset, stride, col_major) f = FragB(offset, stride, col_major)
#define MUL_ADD(c, a, b) c = emu_mul_add(a, b, c)
#define STORE_C(c, offset, stride) emu_store(c, offset, stride)
uint lane;
float a_elem(FragA f, uint r, uint c) { return float(As[f.offset + (f.col_major ? c * f.stride + r : r * f.stride + c)]); }
float b_elem(FragB f, uint r, uint c) { return float(Bs[f.offset + (f.col_major ? c * f.stride + r : r * f.stride + c)]); }
Acc emu_mul_add(FragA a, FragB b, Acc c)
{
    for (uint u = 0; u < 4u; u++) {
        uint q = lane + 32u * u, r = q / 8u, col = q % 8u;
        float sum = 0.0;
        for (uint k = 0; k < 16u; k++) sum += a_elem(a, r, k) * b_elem(b, k, col);
        c.v[u] += sum;
    }
    return c;
}
void emu_store(Acc c, uint offset, uint stride)
{
    for (uint u = 0; u < 4u; u++) {
        uint q = lane + 32u * u;
        Cs[offset + (q / 8u) * stride + q % 8u] = c.v[u];
    }
}
#else
#define FRAG_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define FRAG_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>
#define ACC_ZERO ACC(0.0)
#define LOAD_A(f, offset, stride, col_major) coopMatLoadNV(f, As, offset, stride, col_major)
#define LOAD_B(f, offset, stride, col_major) coopMatLoadNV(f, Bs, offset, stride, col_major)
#define MUL_ADD(c, a, b) c = coopMatMulAddNV(a, b, c)
#define STORE_C(c, offset, stride) coopMatStoreNV(c, Cs, offset, stride, false)
#endif

void main()
{
#ifdef GEMM_SETUP
    gemm_setup();
#endif
    tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TN, z = gl_WorkGroupID.z;
    uint M = gemm_m(), N = gemm_n(), k_begin = gemm_k_begin(z);
    k_end = gemm_k_end(z);
    if (N == 0u) return;  // the whole workgroup: no barrier waits
    // This subgroup's quarter of the tile (the host runs this only where subgroups are 32 wide:
    // 4 per workgroup). The coop operations' operands must be the same across a subgroup,
    // which gl_SubgroupID guarantees and tid / 32 need not.
#ifdef COOP_EMULATE
    uint w = tid / 32u;
    lane = tid % 32u;
#else
    uint w = gl_SubgroupID;
#endif
    uint wm = (w / 2u) * 32u, wn = (w % 2u) * 32u;

    fetch_setup(m0, n0, M, N);
    coop_scales();

    ACC acc[2][4];
    [[unroll]] for (uint i = 0; i < 2u; i++)
        [[unroll]] for (uint j = 0; j < 4u; j++) acc[i][j] = ACC_ZERO;

    if (k_begin < k_end) fetch_tile(k_begin);
    for (uint k0 = k_begin; k0 < k_end; k0 += TK) {
        store_tile();
        barrier();  // tiles written -> fragments loaded
        if (k0 + TK < k_end) fetch_tile(k0 + TK);
        [[unroll]] for (uint kk = 0; kk < TK; kk += 16u) {
            FRAG_A a[2];
            FRAG_B b[4];
            // A fragment (m, k) from the k-major tile: column-major with stride AS.
            [[unroll]] for (uint i = 0; i < 2u; i++) LOAD_A(a[i], kk * AS + wm + 16u * i, AS, true);
            [[unroll]] for (uint j = 0; j < 4u; j++) LOAD_B(b[j], kk * BS + wn + 8u * j, BS, false);
            [[unroll]] for (uint i = 0; i < 2u; i++)
                [[unroll]] for (uint j = 0; j < 4u; j++) MUL_ADD(acc[i][j], a[i], b[j]);
        }
        barrier();  // fragments loaded -> next tiles written
    }
    [[unroll]] for (uint i = 0; i < 2u; i++)
        [[unroll]] for (uint j = 0; j < 4u; j++)
            STORE_C(acc[i][j], (wm + 16u * i) * CS + wn + 8u * j, CS);
    barrier();  // all fragments in Cs -> read by any thread
    for (uint e = tid; e < TM * TN; e += THREADS) {
        uint m = e / TN, n = e % TN;  // consecutive threads along n: the output's contiguous direction
        if (m0 + m < M && n0 + n < N) store_c(m0 + m, n0 + n, Cs[m * CS + n] * scale_out);
    }
}
