#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
// lavapipe's first pass of the weight and bias gradients of convolutions with kernels up to
// 3 wide and stride ST, from the channels-packed copies of dy the input gradient reads (a
// border of dyb: dy[n,k,p,q] at [n][dyb+p][dyb+q]) and of the zero-bordered x
// (packed_layout.h):
//   DYP [N][dyh][dyw][K4] vec4 (K4 = ceil(K/4)),  XP [N][hp][wp][C4] vec4 (C4 = ceil(C/4))
//   dw[k,c,r,s] = sum over n,p,q of dy[n,k,p,q] * xpad[n,c,p*ST+r,q*ST+s],  db[k] = sum of dy[n,k,..]
// xpad (N, C, H + 2 pad, W + 2 pad) starts at texel xorg of XP: 0 in the conv's own copy, or in
// a copy with a wider border (another conv's, border b >= pad) at row and column b - pad; its rows
// are xw = W + 2 pad columns long, their pitch in XP wp.
// Invocation (z, r, channel group cg, k block kb) sums over the images of group z (images
// [z*N/groups, (z+1)*N/groups)) for kernel row r, input channels 4cg..4cg+3, output channels
// of KV vec4 and all S horizontal taps, walking each output row QC columns at a time. The 8
// invocations of a workgroup (one subgroup) share z and take PB (r, cg) pairs x 8/PB k
// blocks: per step each fetches its (QC-1)*ST+S x texels and a share of its k block's QC*KV
// dy texels, which subgroup shuffles hand to the PB invocations of that k block
// (16*S*KV*QC multiply-adds per about (QC-1)*ST+S + QC*KV/PB fetches), with no padding
// tests. Partials go to
//   part[(z*K + k)*(C*R*S+1) + c*R*S + r*S + s], the bias sums (group z) to column C*R*S,
// written by the invocations of r = 0 and channel group 0 when has_bias;
// conv2d_bwd_weight_reduce.comp adds the groups in order (no atomics, same bits every run).
// RGBA32F texel buffers, workgroups of 8, no shared memory.
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const int ST = 1;   // stride
layout(constant_id = 4) const int S = 3;    // kernel width, 1..3
layout(constant_id = 5) const int PB = 8;   // (r, cg) pairs per workgroup (8, 4, 2, 1); 8/PB k blocks
layout(push_constant) uniform Push {
    uint N, C, K, R, P, Q;
    uint hp, wp, c4, k4;
    uint has_bias, groups, k_blocks, pairs;  // pairs: R*c4 (r, cg) pairs
    uint dyb, dyh, dyw;      // border and size of DYP
    uint xorg, xw;           // xpad's first texel in XP, its row length (see above)
} p;
layout(binding = 0) uniform samplerBuffer DYP;   // [N][dyh][dyw][k4]
layout(binding = 1) uniform samplerBuffer XP;    // [N][hp][wp][c4]
layout(std430, binding = 2) writeonly buffer Part { float part[]; };  // (groups, K, C*R*S+1)

#ifndef KV
#define KV 2
#endif
#ifndef QC
#define QC 7                       // output columns per step of the row walk (4, 7 or 8: the host
#endif                             // picks the one that wastes the fewest columns of a row)
#define XC ((QC - 1) * 2 + 3)      // x texels they touch at most (ST <= 2, S <= 3)
#define DMAX (QC * KV)             // dy texels an invocation fetches per step at most (PB = 1)

// This invocation's share of its k block's dy texels per step (set once in main; see there).
int dcol[DMAX], dblk[DMAX];

// The texels of step (n, op, q0): x row op*ST + r of image n from column q0*ST (xv), and this
// invocation's share of dy row op from column q0 (dm). Steps past the group's last image
// (n == n_end) fetch texel 0 and give zeros.
void fetch_step(uint n, uint op, int q0, bool in_group, int xcol0, int dper, out vec4 xv[XC], out vec4 dm[DMAX])
{
    int c4 = int(p.c4), k4 = int(p.k4), Q = int(p.Q);
    int xrow = int((n * p.hp + op * ST) * p.wp) * c4 + xcol0;
    int dyrow = ((int(n) * int(p.dyh) + int(op) + int(p.dyb)) * int(p.dyw) + int(p.dyb)) * k4;
    [[unroll]] for (int t = 0; t < XC; t++) {
        bool ok = in_group && t < (QC - 1) * ST + S && q0 * ST + t < int(p.xw);
        vec4 f = texelFetch(XP, ok ? xrow + (q0 * ST + t) * c4 : 0);
        xv[t] = ok ? f : vec4(0.0);
    }
    [[unroll]] for (int m = 0; m < DMAX; m++) {
        if (m < dper) {
            bool ok = in_group && q0 + dcol[m] < Q;
            vec4 f = texelFetch(DYP, ok ? dyrow + (q0 + dcol[m]) * k4 + dblk[m] : 0);
            dm[m] = ok ? f : vec4(0.0);
        }
    }
}

void main()
{
    // Workgroup g: (z, k block group, pair block): its 8 invocations take PB consecutive
    // (r, cg) pairs for each of 8/PB consecutive k blocks, so that shapes with few pairs
    // (R*C/4 = 3 or 12) leave no invocation idle. All stay to the end (they fetch dy for
    // each other); those past the last pair or k block write nothing.
    const int KBG = 8 / PB;
    uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint pblocks = (p.pairs + uint(PB) - 1) / uint(PB), kgroups = (p.k_blocks + uint(KBG) - 1) / uint(KBG);
    // k groups vary fastest: consecutive workgroups read the same x channels (from cache) with
    // the next output channels' dy, which is a fraction of x's size for the deep layers.
    uint kgr = g % kgroups, rest = g / kgroups;
    uint pb = rest % pblocks, z = rest / pblocks;
    if (z >= p.groups) return;   // whole workgroups only: the dispatch may round up
    uint lane = gl_SubgroupInvocationID, kg = lane / uint(PB), pl = lane % uint(PB);
    uint pair = pb * uint(PB) + pl, kb = kgr * uint(KBG) + kg;
    bool live = pair < p.pairs && kb < p.k_blocks;
    pair = min(pair, p.pairs - 1);
    kb = min(kb, p.k_blocks - 1);
    uint cg = pair % p.c4, r = pair / p.c4;
    // This invocation's share of its k block's dy texels per step: texel i = pl + PB*m is
    // column i / KV, block i % KV; the PB invocations of the k block fetch them all.
    const int DPER = (QC * KV + PB - 1) / PB;
    [[unroll]] for (int m = 0; m < DMAX; m++) {
        if (m < DPER) {
            int i = min(int(pl) + PB * m, QC * KV - 1);
            dcol[m] = i / KV;
            dblk[m] = int(min(kb * KV + uint(i % KV), p.k4 - 1));
        }
    }
    bool bias_lane = p.has_bias != 0 && cg == 0 && r == 0;

    vec4 acc[KV][4][3], bacc[KV];
    [[unroll]] for (uint v = 0; v < KV; v++) {
        bacc[v] = vec4(0.0);
        [[unroll]] for (uint cc = 0; cc < 4; cc++)
            [[unroll]] for (uint s = 0; s < 3; s++) acc[v][cc][s] = vec4(0.0);
    }
    // The steps (n, op, q0) in order: images of the group, output rows, QC columns at a time.
    // Each step's texels are fetched one step ahead, before the multiply-adds of the step
    // before it, so that their cache misses overlap arithmetic: the loads were the bottleneck
    // (on rows of 7 columns, where every step starts a new row, this ran at half the speed;
    // perf-log 31).
    uint n = z * p.N / p.groups, n_end = (z + 1) * p.N / p.groups, op = 0;
    int q0 = 0, Q = int(p.Q), xcol0 = int(p.xorg + r * p.wp * p.c4 + cg);
    vec4 xv[XC], dmine[DMAX];
    fetch_step(n, op, q0, n < n_end, xcol0, DPER, xv, dmine);
    while (n < n_end) {
        uint n1 = n, op1 = op;
        int q1 = q0 + QC;
        if (q1 >= Q) {
            q1 = 0;
            if (++op1 == p.P) {
                op1 = 0;
                n1++;
            }
        }
        vec4 xv1[XC], dm1[DMAX];
        fetch_step(n1, op1, q1, n1 < n_end, xcol0, DPER, xv1, dm1);

        vec4 d[QC][KV];
        [[unroll]] for (int j = 0; j < QC; j++)
            [[unroll]] for (int v = 0; v < KV; v++) {
                int i = j * KV + v;
                d[j][v] = subgroupShuffle(dmine[min(i / PB, DMAX - 1)], kg * uint(PB) + uint(i % PB));
                bacc[v] += d[j][v];
            }
        // Per (v, cc) its S accumulators stay in registers through the step; each dy texel
        // loaded serves S multiply-adds. (Accumulating column by column would spill all 12*KV
        // accumulators for every multiply-add.)
        [[unroll]] for (int v = 0; v < KV; v++)
            [[unroll]] for (int cc = 0; cc < 4; cc++) {
                vec4 a[3];
                [[unroll]] for (int s = 0; s < 3; s++) if (s < S) a[s] = acc[v][cc][s];
                [[unroll]] for (int j = 0; j < QC; j++) {
                    vec4 dj = d[j][v];
                    [[unroll]] for (int s = 0; s < 3; s++) if (s < S) a[s] += dj * xv[j * ST + s][cc];
                }
                [[unroll]] for (int s = 0; s < 3; s++) if (s < S) acc[v][cc][s] = a[s];
            }
        n = n1, op = op1, q0 = q1;
        xv = xv1;
        dmine = dm1;
    }
    if (!live) return;
    uint RS = p.R * uint(S), CRS = p.C * RS;
    [[unroll]] for (uint v = 0; v < KV; v++) {
        [[unroll]] for (uint i = 0; i < 4; i++) {
            uint k = (kb * KV + v) * 4 + i;
            if (k >= p.K) break;
            uint base = (z * p.K + k) * (CRS + 1);
            [[unroll]] for (uint cc = 0; cc < 4; cc++) {
                uint c = cg * 4 + cc;
                if (c < p.C)
                    [[unroll]] for (int s = 0; s < S; s++)
                        part[base + c * RS + r * uint(S) + uint(s)] = acc[v][cc][s][i];
            }
            if (bias_lane) part[base + CRS] = bacc[v][i];
        }
    }
}
