// The tile gather of the implicit-GEMM conv kernels (conv2d_gemm_tiled.glsl, the fp32 tiles of
// GPUs; conv2d_gemm_coop.glsl, the fp16 tiles of cooperative matrices): each step, the
// workgroup's GEMM_THREADS threads read a TK-deep tile of A (TM rows) and of B (TN columns)
// through the including shader's hooks (see conv2d_gemm_tiled.glsl) into registers, and put
// them into shared memory with the including kernel's put_a(k, m, v) / put_b(k, n, v).
// Each thread loads the same tile elements every step (e = tid + i * threads): along K its
// k offset in the tile is fixed and its rows (columns) are fixed, so a_row / b_col run once
// (fetch_setup) and a_k / b_k once per tile; across K its row (column) is fixed and its k
// offsets vary, so a_k / b_k run per element. GEMM_THREADS must be a multiple of TK, TM and
// TN, so that each thread's fixed index is the same for every i.
// Before including: GEMM_THREADS, TM, TN, TK, and the put_a / put_b prototypes' bodies after.

const uint A_ITEMS = TK * TM / GEMM_THREADS, B_ITEMS = TK * TN / GEMM_THREADS;

void put_a(uint k, uint m, float v);
void put_b(uint k, uint n, float v);

// This thread's tile elements and what is known of them before the loop.
uint tid, k_end;
#if A_ALONG_K
uint a_kk;                  // its k within the tile; rows tid / TK + i * (threads / TK)
ARow arow[A_ITEMS];
bool a_ok[A_ITEMS];
#else
uint a_mm;                  // its row within the tile; k tid / TM + i * (threads / TM)
bool a_mok;
ARow arow1;
#endif
#if B_ALONG_K
uint b_kk;
BCol bcol[B_ITEMS];
bool b_ok[B_ITEMS];
#else
uint b_nn;
bool b_nok;
BCol bcol1;
#endif
float a_reg[A_ITEMS], b_reg[B_ITEMS];   // the fetched tile, on its way to shared memory

// The rows and columns this thread gathers, for the tile at (m0, n0) of an M x N GEMM.
void fetch_setup(uint m0, uint n0, uint M, uint N)
{
#if A_ALONG_K
    a_kk = tid % TK;
    [[unroll]] for (uint i = 0; i < A_ITEMS; i++) {
        uint m = m0 + tid / TK + i * (GEMM_THREADS / TK);
        a_ok[i] = m < M;
        arow[i] = a_row(min(m, M - 1));
    }
#else
    a_mm = tid % TM;
    a_mok = m0 + a_mm < M;
    arow1 = a_row(min(m0 + a_mm, M - 1));
#endif
#if B_ALONG_K
    b_kk = tid % TK;
    [[unroll]] for (uint j = 0; j < B_ITEMS; j++) {
        uint n = n0 + tid / TK + j * (GEMM_THREADS / TK);
        b_ok[j] = n < N;
        bcol[j] = b_col(min(n, N - 1));
    }
#else
    b_nn = tid % TN;
    b_nok = n0 + b_nn < N;
    bcol1 = b_col(min(n0 + b_nn, N - 1));
#endif
}

// Reads this thread's elements of the tile at k0 into a_reg / b_reg (0 outside the GEMM).
void fetch_tile(uint k0)
{
#if A_ALONG_K
    uint ka = k0 + a_kk;
    AK ak = a_k(min(ka, k_end - 1));
    [[unroll]] for (uint i = 0; i < A_ITEMS; i++) a_reg[i] = (a_ok[i] && ka < k_end) ? load_a(arow[i], ak) : 0.0;
#else
    [[unroll]] for (uint i = 0; i < A_ITEMS; i++) {
        uint k = k0 + tid / TM + i * (GEMM_THREADS / TM);
        a_reg[i] = (a_mok && k < k_end) ? load_a(arow1, a_k(k)) : 0.0;
    }
#endif
#if B_ALONG_K
    uint kb = k0 + b_kk;
    BK bk = b_k(min(kb, k_end - 1));
    [[unroll]] for (uint j = 0; j < B_ITEMS; j++) b_reg[j] = (b_ok[j] && kb < k_end) ? load_b(bk, bcol[j]) : 0.0;
#else
    [[unroll]] for (uint j = 0; j < B_ITEMS; j++) {
        uint k = k0 + tid / TN + j * (GEMM_THREADS / TN);
        b_reg[j] = (b_nok && k < k_end) ? load_b(b_k(k), bcol1) : 0.0;
    }
#endif
}

// Writes the fetched tile into shared memory.
void store_tile()
{
#if A_ALONG_K
    [[unroll]] for (uint i = 0; i < A_ITEMS; i++) put_a(a_kk, tid / TK + i * (GEMM_THREADS / TK), a_reg[i]);
#else
    [[unroll]] for (uint i = 0; i < A_ITEMS; i++) put_a(tid / TM + i * (GEMM_THREADS / TM), a_mm, a_reg[i]);
#endif
#if B_ALONG_K
    [[unroll]] for (uint j = 0; j < B_ITEMS; j++) put_b(b_kk, tid / TK + j * (GEMM_THREADS / TK), b_reg[j]);
#else
    [[unroll]] for (uint j = 0; j < B_ITEMS; j++) put_b(tid / TN + j * (GEMM_THREADS / TN), b_nn, b_reg[j]);
#endif
}
