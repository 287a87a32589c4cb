#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
#include "fastdiv.glsl"
#include "packed_store.glsl"
// BatchNorm backward, pass 3 of 3 (element-wise):
//   dx = gamma invstd (dz - dbeta/n - xhat dgamma/n),  xhat = (x - mean) invstd
// (the reference's  gamma invstd / n (n dy - dbeta - xhat dgamma)), with dz the
// ReLU-masked dy when the forward fused a ReLU. ITEMS units per invocation, the
// channel stepped along as in batchnorm_fwd (SPAN too).
// With PACKED, dx goes to lavapipe's channels-packed layout (src/nn/packed_layout.h)
// instead of NCHW: the input gradient of the conv before this BN reads it as it is.
layout(local_size_x_id = 0) in;

#define ITEMS 8u

layout(push_constant) uniform Push {
    uint C;
    uint hw;         // units per plane (SPAN: floats per plane)
    uint total;      // units: N * C * H*W / UNIT
    uint relu;
    uint step_j;     // floats or units a workgroup's stride moves: that % hw
    uint step_c;     // ... and (that / hw) % C
    uvec2 hw_div;    // fastdiv by hw
    uvec2 c_div;     // fastdiv by C
#ifdef PACKED
    PACKED_PUSH_FIELDS
#endif
} p;

INPUT_VT(0, x)                                                  // (N, C, hw)
INPUT_VT(1, dy)                                                 // (N, C, hw)
INPUT_VEC4(2, coef)                                             // (C, 2), see batchnorm_bwd_finalize
#ifdef PACKED
layout(std430, binding = 3) writeonly buffer DX { float dxp[]; };  // [N][hp][wp][c4x4]
#else
layout(std430, binding = 3) writeonly buffer DX { VT dx[]; };  // (N, C, hw)
#endif

void main()
{
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint e = group * gl_WorkGroupSize.x * ITEMS + gl_LocalInvocationID.x;
#ifdef SPAN
    uint first = e * 4u;  // j: the plane position of the unit's first float
#else
    uint first = e;
#endif
    uint plane = fastdiv(first, p.hw_div.x, p.hw_div.y), j = first - plane * p.hw;
    uint c = plane - fastdiv(plane, p.c_div.x, p.c_div.y) * p.C;
    [[unroll]] for (uint k = 0; k < ITEMS; k++) {
        if (e < p.total) {
            vec4 a = LOAD_VEC4(coef, 2 * c), b = LOAD_VEC4(coef, 2 * c + 1);
#ifdef SPAN
            bvec4 here = span_here(j, p.hw);
            uint cn = next_channel(c, p.C);
            vec4 an = LOAD_VEC4(coef, 2 * cn), bn = LOAD_VEC4(coef, 2 * cn + 1);
            CT mean = span_pick(a.x, an.x, here), invstd = span_pick(a.y, an.y, here);
            CT scale = span_pick(a.z, an.z, here), beta = span_pick(a.w, an.w, here);
            CT k0 = span_pick(b.x, bn.x, here), k1 = span_pick(b.y, bn.y, here);
#else
            CT mean = a.x, invstd = a.y, scale = a.z, beta = a.w, k0 = b.x, k1 = b.y;
#endif
            VT xv = LOAD_VT(x, e), d = LOAD_VT(dy, e);
            if (p.relu != 0) d = relu_mask(bn_affine(xv, mean, scale, beta), d);
            VT xhat = (xv - mean) * invstd;
            VT g = scale * (d - (k0 + xhat * k1));
#ifdef PACKED
            STORE_PACKED(dxp, e, c, j, g)
#else
            dx[e] = g;
#endif
        }
        e += gl_WorkGroupSize.x;
        j += p.step_j;
        c += p.step_c;
        if (j >= p.hw) {
            j -= p.hw;
            c++;
        }
        if (c >= p.C) c -= p.C;
    }
}
