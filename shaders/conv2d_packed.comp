#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_ARB_gpu_shader_int64 : require
#include "common.glsl"
#include "store64.glsl"
// lavapipe's convolution on a channels-packed, zero-bordered input, shared by the forward and
// the input gradient (conv2d_packed.c packs both inputs with conv2d_pack.comp first, unless
// their producer wrote them packed already):
//   IN  [N][hp][wp][cin4] vec4     (channels packed by 4, with a zero border)
//   WT  [R][S][cin4*4][k4] vec4    (conv2d_pack_weight.comp: 4 output channels per texel)
//   out[n, o, oy*orstep + orow0, ox*ocstep + ocol0] = bias[o] + sum over r, s, i of
//       IN[n][irow0 + oy*ST + r][icol0 + ox*ST + s][i] * WT[r][s][i][o]
// forward:        IN = x with a border of pad, WT = w as stored, no offsets or output steps;
// input gradient: IN = dy with a border, ST = 1, one dispatch per output phase (ph, pw) of the
//                 stride: WT = the flipped, transposed taps of w that reach that phase, the
//                 output rows ph, ph + stride, ... (a transposed convolution as plain ones).
//                 CPAIR (stride 2, 3x3, pad 1, even widths): one dispatch per row phase computes
//                 both column phases, output columns 2i and 2i + 1 from dy columns i and i + 1:
//                   dx[2i]     = dy[i] w(tap 1)
//                   dx[2i + 1] = dy[i] w(tap 2) + dy[i + 1] w(tap 0)
//                 (WT holds the row phase's taps with the column taps flipped, s = 0, 1, 2 being
//                 taps 2, 1, 0), so a run of RQ output columns reads RQ/2 + 1 dy texels and
//                 stores contiguous pairs instead of every other column (perf-log 51).
// Each invocation computes RQ consecutive output columns of one output row for KV vec4 of
// output channels; the 8 invocations of a workgroup (one subgroup) share the output channels
// and take 8 consecutive runs. Per (r, input vec4) an invocation fetches the TRUN input texels
// of its row ((RQ-1)*ST+S, under CPAIR RQ/2+1) once and uses them for all S taps and 4 input
// channels; the S*4*KV weight texels are fetched once per subgroup (each invocation a few) and
// shuffled to all, so an invocation does 16*S*KV*RQ multiply-adds (under CPAIR half that) per
// TRUN + ceil(S*4*KV/8) texel fetches, and no padding tests (the border holds the zeros).
// RGBA32F texel buffers, workgroups of 8 = lavapipe's subgroup, no shared memory
// (../shared/notes).
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const int ST = 1;   // stride, 1 or 2
layout(constant_id = 4) const int S = 3;    // kernel width, 1..3
layout(constant_id = 5) const int ACCUM = 0; // input gradient: 1 adds into out (the phase's part of
                                             // a gradient another conv wrote first), 0 overwrites;
                                             // with CPAIR a mask: 1 even, 2 odd output columns
// 1: the output columns of a run go out two at a time, as one uint64 through Out2 (the same
// tensor): lavapipe loops over the lanes once per store instruction, and per component within
// it (one float 0.97, a vec2 0.47, a uint64 0.36 ms for the same data: perf-log 48 and 52), so
// a pair's bits as one 64-bit word is the cheapest pair. The host sets it where every pair
// starts on an even float and stays in its row: contiguous columns (ocstep 1), even run
// starts, widths and planes; with ACCUM only under CPAIR (which always stores pairs).
layout(constant_id = 6) const int PAIRS = 0;
layout(constant_id = 7) const int CPAIR = 0;  // both column phases of a stride-2 input gradient (above)
// 1 (forward only): also the output's per-channel statistics for the BatchNorm that normalizes
// it, in place of that BatchNorm's own pass over the output (perf-log 53): per workgroup and
// channel (count, mean, M2 about that mean, 0), the batchnorm_fwd_finalize.comp partials, at
// stats[k * G + workgroup's run block], G = ceil(total / 8). Each lane sums its run's columns
// (mean first, then the squares about it), the 8 lanes merge exactly in lane order (Chan: n,
// sum, and M2 + n (mean - mean_all)^2 summed), and lane v*4 + i writes channel (kb*KV + v)*4 + i.
layout(constant_id = 8) const int STATS = 0;
layout(push_constant) uniform Push {
    uint cin4, hp, wp;       // packed input
    uint cout, hout, wout;   // output (N, cout, hout, wout), NCHW
    uint taps_r, k4;         // kernel rows R; ceil(cout/4)
    uint has_bias;
    uint q_blocks, k_blocks, total;  // ceil(wout/RQ), ceil(k4/KV), runs N*hout*q_blocks
    uint irow0, icol0;               // input offsets (see above)
    uint orstep, ocstep, orow0, ocol0, ow, oplane;  // output placement in planes of ow columns
} p;
layout(binding = 0) uniform samplerBuffer In;
layout(binding = 1) uniform samplerBuffer Wt;
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };  // (cout) when has_bias
layout(std430, binding = 3) buffer Out { float o[]; };
layout(std430, binding = 4) buffer Out2 { uint64_t o2[]; };  // pairs of out's floats, bit for bit
layout(std430, binding = 5) writeonly buffer Stats { vec4 stats[]; };  // (cout, G) when STATS

#ifndef RQ
#define RQ 14
#endif
#ifndef KV
#define KV 2
#endif
#if KV > 2
#error "STATS maps lane v*4 + i to channel (kb*KV + v)*4 + i: at most 8 channels per workgroup"
#endif
#ifndef JB
#define JB 2                      // output columns whose accumulators stay in registers together
                                  // (1 is faster where the input has few channels: perf-log 30)
#endif
#define TMAX ((RQ - 1) * 2 + 3)   // input columns a run touches at most (ST <= 2, S <= 3)
#define WMAX (3 * 4 * KV)         // weight texels per (r, input vec4) at most
#define WPER ((WMAX + 7) / 8)     // of them fetched by each of the 8 invocations

// The sum of x over the 8 lanes, lane 0 first: lavapipe makes subgroupAdd a loop over the lanes
// with a branch per lane (~100 cycles); a shuffle from a constant lane is one extract and
// broadcast.
float lane_sum(float x)
{
    float s = 0.0;
    [[unroll]] for (uint l = 0; l < 8u; l++) s += subgroupShuffle(x, l);
    return s;
}

// Set once in main: this invocation's weight texels within a step (wofs), which of its run's
// input columns lie inside the padded row (okc), and the first input texel of its run (xbase).
int wofs[WPER];
bool okc[TMAX];
int xbase;

// This invocation's weight texels of step (r, ci): kernel row r, input vec4 ci. The step past
// the last (r == taps_r) fetches texel 0 (never used).
void fetch_weights(int r, int ci, out vec4 wm[WPER])
{
    int cin4 = int(p.cin4), k4 = int(p.k4), w0 = (r * S * cin4 + ci) * 4 * k4;
    [[unroll]] for (int m = 0; m < WPER; m++) wm[m] = texelFetch(Wt, r < int(p.taps_r) ? w0 + wofs[m] : 0);
}

// The input columns a run reads: (RQ-1)*ST+S, or with CPAIR RQ/2 + 1.
#define TRUN (CPAIR != 0 ? RQ / 2 + 1 : (RQ - 1) * ST + S)

// The TRUN input texels of this invocation's run for step (r, ci); columns past the padded
// row (the last run of a row) read texel 0 and give zeros.
void fetch_inputs(int r, int ci, out vec4 xv[TMAX])
{
    int cin4 = int(p.cin4), row = xbase + r * int(p.wp) * cin4 + ci;
    [[unroll]] for (int t = 0; t < TMAX; t++) {
        if (t < TRUN) {
            vec4 f = texelFetch(In, okc[t] ? row + t * cin4 : 0);
            xv[t] = okc[t] ? f : vec4(0.0);
        }
    }
}

void main()
{
    // Workgroup g: output channel block g % k_blocks, runs 8*(g / k_blocks) .. +7 (all 8
    // invocations stay to the end: they fetch weights for each other).
    uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint lane = gl_SubgroupInvocationID;
    uint kb = g % p.k_blocks;
    uint run = (g / p.k_blocks) * 8 + lane;
    bool live = run < p.total;
    run = min(run, p.total - 1);
    uint qb = run % p.q_blocks, rest = run / p.q_blocks;
    uint oy = rest % p.hout, n = rest / p.hout;
    int x0 = int(qb * RQ);
    int cin4 = int(p.cin4), k4 = int(p.k4);
    // This invocation's share of the weight texels: texel i = lane + 8m is (s, cc, v).
    [[unroll]] for (int m = 0; m < WPER; m++) {
        int i = min(int(lane) + 8 * m, S * 4 * KV - 1);
        int v = i % KV, scc = i / KV;
        wofs[m] = (scc + (scc / 4) * (cin4 * 4 - 4)) * k4 + min(int(kb) * KV + v, k4 - 1);
    }
    int c0 = int(p.icol0) + (CPAIR != 0 ? x0 / 2 : x0 * ST);
    [[unroll]] for (int t = 0; t < TMAX; t++) okc[t] = c0 + t < int(p.wp);
    xbase = ((int(n * p.hp + p.irow0) + int(oy) * ST) * int(p.wp) + c0) * cin4;

    vec4 acc[RQ][KV];
    [[unroll]] for (int j = 0; j < RQ; j++)
        [[unroll]] for (int v = 0; v < KV; v++) acc[j][v] = vec4(0.0);

    // The steps (r, ci) in order. Each fetches the next step's weight texels: with W_AHEAD
    // before its multiply-adds, so that their cache misses overlap arithmetic (the JB = 1
    // kernels, 8-13% faster for it; the JB = 2 ones 3-9% slower: perf-log 32), else after.
    int r = 0, ci = 0;
    vec4 wmine[WPER];
    fetch_weights(r, ci, wmine);
    while (r < int(p.taps_r)) {
        int r1 = r, ci1 = ci + 1;
        if (ci1 == cin4) {
            ci1 = 0;
            r1++;
        }
        vec4 wnext[WPER], xv[TMAX];
#ifdef W_AHEAD
        fetch_weights(r1, ci1, wnext);
#endif
        fetch_inputs(r, ci, xv);
        vec4 wv[WMAX];
        [[unroll]] for (int i = 0; i < WMAX; i++)
            if (i < S * 4 * KV) wv[i] = subgroupShuffle(wmine[i / 8], uint(i % 8));
        // JB output columns at a time: their JB*KV accumulators stay in registers through
        // the S*4*KV multiply-adds of the step (all RQ*KV do not fit: spilling them costs a
        // load and a store per multiply-add), and each weight loaded serves JB columns.
        [[unroll]] for (int j0 = 0; j0 < RQ; j0 += JB) {
            vec4 a[JB][KV];
            [[unroll]] for (int jj = 0; jj < JB; jj++)
                [[unroll]] for (int v = 0; v < KV; v++) if (j0 + jj < RQ) a[jj][v] = acc[j0 + jj][v];
            [[unroll]] for (int s = 0; s < S; s++)
                [[unroll]] for (int cc = 0; cc < 4; cc++)
                    [[unroll]] for (int v = 0; v < KV; v++) {
                        vec4 w = wv[(s * 4 + cc) * KV + v];
                        [[unroll]] for (int jj = 0; jj < JB; jj++) {
                            int j = j0 + jj;
                            if (j >= RQ) continue;
                            if (CPAIR == 0) a[jj][v] += xv[j * ST + s][cc] * w;
                            else if (((j & 1) != 0) == (s != 1)) a[jj][v] += xv[j / 2 + (s == 2 ? 1 : 0)][cc] * w;
                        }
                    }
            [[unroll]] for (int jj = 0; jj < JB; jj++)
                [[unroll]] for (int v = 0; v < KV; v++) if (j0 + jj < RQ) acc[j0 + jj][v] = a[jj][v];
        }
#ifndef W_AHEAD
        fetch_weights(r1, ci1, wnext);
#endif
        wmine = wnext;
        r = r1, ci = ci1;
    }
    // Not in the padding workgroups a 2-D dispatch may add past the last run block (every lane
    // dead: they would write NaN into the next channel's partials); uniform per workgroup.
    if (STATS != 0 && g < p.k_blocks * ((p.total + 7u) / 8u)) {
        int nv = live ? min(RQ, int(p.wout) - x0) : 0;  // this lane's columns in its row
        float cnt = float(nv), n_all = lane_sum(cnt);  // lane 0's run is live: n_all >= 1
        vec4 mine = vec4(0.0);
        [[unroll]] for (int v = 0; v < KV; v++)
            [[unroll]] for (int i = 0; i < 4; i++) {
                float s = 0.0, m2 = 0.0;
                [[unroll]] for (int j = 0; j < RQ; j++) s += j < nv ? acc[j][v][i] : 0.0;
                float mean = nv > 0 ? s / cnt : 0.0;
                [[unroll]] for (int j = 0; j < RQ; j++) {
                    float d = acc[j][v][i] - mean;
                    m2 += j < nv ? d * d : 0.0;
                }
                float mean_all = lane_sum(s) / n_all, dm = mean - mean_all;
                float m2_all = lane_sum(m2 + cnt * dm * dm);
                uint k = min(uint((int(kb) * KV + v) * 4 + i), p.cout - 1);
                float b = p.has_bias != 0 ? bias[k] : 0.0;  // shifts the mean, not M2
                if (lane == uint(v * 4 + i)) mine = vec4(n_all, mean_all + b, m2_all, 0.0);
            }
        uint k = (kb * KV + lane / 4u) * 4u + lane % 4u;
        if (lane < uint(KV * 4) && k < p.cout) stats[k * ((p.total + 7u) / 8u) + g / p.k_blocks] = mine;
    }
    if (!live) return;
    uint obase = n * p.cout * p.oplane + (oy * p.orstep + p.orow0) * p.ow + uint(x0) * p.ocstep + p.ocol0;
    [[unroll]] for (int v = 0; v < KV; v++) {
        [[unroll]] for (int i = 0; i < 4; i++) {
            uint k = uint((int(kb) * KV + v) * 4 + i);
            if (k >= p.cout) break;
            float b = p.has_bias != 0 ? bias[k] : 0.0;
            if (PAIRS != 0) {  // ACCUM is a column mask here, and the host sets it only under CPAIR
                [[unroll]] for (int j = 0; j < RQ; j += 2)
                    if (uint(x0 + j) < p.wout) {
                        uint at = (obase + k * p.oplane + uint(j)) / 2u;
                        vec2 pair = vec2(acc[j][v][i], acc[j + 1][v][i]) + b;
                        if (CPAIR != 0 && ACCUM != 0) {  // a mask of the columns that add
                            vec2 was = floats_of(o2[at]);
                            if ((ACCUM & 1) != 0) pair.x = was.x + pair.x;
                            if ((ACCUM & 2) != 0) pair.y = was.y + pair.y;
                        }
                        o2[at] = bits64(pair);
                    }
            } else {
                [[unroll]] for (int j = 0; j < RQ; j++)
                    if (uint(x0 + j) < p.wout) {
                        uint at = obase + k * p.oplane + uint(j) * p.ocstep;
                        o[at] = ACCUM != 0 ? o[at] + (acc[j][v][i] + b) : acc[j][v][i] + b;
                    }
            }
        }
    }
}
