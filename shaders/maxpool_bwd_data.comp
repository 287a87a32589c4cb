#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
// Max-pool backward without atomics: dx (N,C,H,W) = sum of dy over the windows
// whose argmax is that element, 0 where none. Two variants:
// - default (any window): a gather, one invocation per input element (h, w)
//   visits the windows that contain it in row-major (p, q) order;
// - DISJOINT (k == stride, pad == 0: the windows tile the plane, each element is
//   in at most one): one invocation per window writes its k x k elements, plus,
//   for the last row or column of windows, the floor-mode remainder (zeros).
//   Same values as the gather, no write conflicts, one dy/argmax load per window.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint total;      // invocations: N*C*H*W inputs (gather) or N*C*P*Q windows (DISJOINT)
    uint H, W, P, Q;
    uint k, stride, pad;
    uvec2 div_a;     // fastdiv by W (gather) or Q (DISJOINT)
    uvec2 div_b;     // fastdiv by H (gather) or P (DISJOINT)
    uvec2 div_s;     // fastdiv by stride
    uint C, relu;    // (the forward's BN variant's; unused here)
    uvec2 div_c;
} p;

layout(std430, binding = 0) readonly buffer DY { float dy[]; };    // (N, C, P, Q)
layout(std430, binding = 1) readonly buffer A { int argmax[]; };   // (N, C, P, Q)
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };   // (N, C, H, W)

#ifdef DISJOINT
void main()
{
    uint o = flat_invocation_index();
    if (o >= p.total) return;
    uint t = fastdiv(o, p.div_a.x, p.div_a.y), q = o - t * p.Q;
    uint plane = fastdiv(t, p.div_b.x, p.div_b.y), pp = t - plane * p.P;
    int am = argmax[o];
    float g = dy[o];
    uint base = plane * p.H * p.W;
    // Rows of this window, and below the last window row the remainder rows;
    // likewise columns. The remainders only get zeros.
    uint h0 = pp * p.k, h1 = pp + 1 == p.P ? p.H : h0 + p.k;
    uint w0 = q * p.k, w1 = q + 1 == p.Q ? p.W : w0 + p.k;
    uint hk = h0 + p.k, wk = w0 + p.k;
    for (uint h = h0; h < h1; h++)
        for (uint w = w0; w < w1; w++) {
            uint i = h * p.W + w;
            dx[base + i] = (h < hk && w < wk && int(i) == am) ? g : 0.0;
        }
}
#else
// The windows i (rows or columns) whose span [i*stride - pad, i*stride - pad + k)
// holds v: i*stride in [v + pad - k + 1, v + pad]. Empty when lo > hi.
void window_range(uint v, uint count, out uint lo, out uint hi)
{
    uint vp = v + p.pad;
    lo = vp + 1 >= p.k ? fastdiv(vp + 1 - p.k + p.stride - 1, p.div_s.x, p.div_s.y) : 0;
    hi = min(fastdiv(vp, p.div_s.x, p.div_s.y), count - 1);
}

void main()
{
    uint e = flat_invocation_index();
    if (e >= p.total) return;
    uint t = fastdiv(e, p.div_a.x, p.div_a.y), w = e - t * p.W;
    uint plane = fastdiv(t, p.div_b.x, p.div_b.y), h = t - plane * p.H;
    uint plo, phi, qlo, qhi;
    window_range(h, p.P, plo, phi);
    window_range(w, p.Q, qlo, qhi);
    int me = int(h * p.W + w);
    uint base = plane * p.P * p.Q;
    float sum = 0.0;
    for (uint pp = plo; pp <= phi; pp++)
        for (uint q = qlo; q <= qhi; q++) {
            uint o = base + pp * p.Q + q;
            if (argmax[o] == me) sum += dy[o];
        }
    dx[e] = sum;
}
#endif
