#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
#include "fastdiv.glsl"
#include "packed_store.glsl"
// BatchNorm apply: y = (x - mean) * scale + beta, optionally max(., 0), with the
// coefficients of batchnorm_fwd_finalize (training or eval). Each invocation
// does ITEMS units strided by the workgroup size and steps the channel along
// without a division (one fastdiv pair per invocation). SPAN: vec4 units of the flat tensor
// that may straddle two channels, each component with its own channel's coefficients.
// With PACKED, y goes to lavapipe's channels-packed layout (src/nn/packed_layout.h)
// instead of NCHW: the conv after this BN reads it as its packed input; with DUAL as well as
// NCHW (for its other readers, where batchnorm_packed4.comp's shapes do not apply).
// With RESIDUAL, a residual block's tail: y = bn(x) + res, then the ReLU (the add rounds as
// add_fwd.comp's does: bn_affine's z is exact-rounded, then one float add).
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

INPUT_VT(0, x)                                                // (N, C, hw)
INPUT_VEC4(1, coef)                                           // (C, 2)
#ifdef RESIDUAL
INPUT_VT(3, res)                                              // (N, C, hw)
#endif
#ifdef PACKED
layout(std430, binding = 2) writeonly buffer Y { float yp[]; };  // [N][hp][wp][c4x4]
#ifdef DUAL  // y NCHW as well, after the residual (a tail read by a conv and a shortcut)
#ifdef RESIDUAL
layout(std430, binding = 4) writeonly buffer Y2 { VT y[]; };  // (N, C, hw)
#else
layout(std430, binding = 3) writeonly buffer Y2 { VT y[]; };  // (N, C, hw)
#endif
#endif
#else
layout(std430, binding = 2) writeonly buffer Y { VT y[]; };  // (N, C, hw)
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
            vec4 a = LOAD_VEC4(coef, 2 * c);
#ifdef SPAN
            bvec4 here = span_here(j, p.hw);
            vec4 an = LOAD_VEC4(coef, 2 * next_channel(c, p.C));
            VT z = bn_affine(LOAD_VT(x, e), span_pick(a.x, an.x, here), span_pick(a.z, an.z, here),
                             span_pick(a.w, an.w, here));
#else
            VT z = bn_affine(LOAD_VT(x, e), a.x, a.z, a.w);
#endif
#ifdef RESIDUAL
            z += LOAD_VT(res, e);
#endif
            VT v = p.relu != 0 ? relu_mask(z, z) : z;
#ifdef PACKED
            STORE_PACKED(yp, e, c, j, v)
#ifdef DUAL
            y[e] = v;
#endif
#else
            y[e] = v;
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
