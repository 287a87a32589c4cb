#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
#include "fastdiv.glsl"
// The BatchNorm passes that write lavapipe's channels-packed layout (src/nn/packed_layout.h),
// for C % 4 == 0 and H*W % 4 == 0, one texel per store: an invocation takes 4 channels x 4
// consecutive positions of one image, loads the 4 channels' vec4 of each input, and stores
// 4 texels (4 channels of one position each), a 4x4 transpose in registers. The
// one-channel variants (batchnorm_fwd.comp / batchnorm_bwd_data.comp with PACKED) store
// single floats: lavapipe runs a loop over the 8 lanes per store, so they store 4x as often.
//   apply (default):  y  = (x - mean) scale + beta [, max(., 0)]           (batchnorm_fwd)
//   BWD:              dx = scale (dz - (dbeta/n + xhat dgamma/n)), dz masked by the fused ReLU
//                     where the forward's z <= 0                             (batchnorm_bwd_data)
//   RESIDUAL (apply): a residual block's tail, y = bn(x) + res, then the ReLU, written both
//                     NCHW (for the shortcut and the backward) and packed (for the next conv)
//   DUAL (apply):     y = bn(x) [, max(., 0)] written both NCHW and packed: a BN read by a conv
//                     and by something else (resnet's stem BN: its first block's conv and shortcut)
// The same arithmetic per element as those, so the same bits.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uvec2 q_div;     // fastdiv by Q
    uvec2 c4_div;    // fastdiv by C4
    uvec2 w_div;     // fastdiv by W
    uint Q;          // vec4 of positions per plane: H*W / 4
    uint C4;         // channel groups: C / 4
    uint total;      // invocations: N * C4 * Q
    uint relu;
    uint W, hp, wp, border;  // the packed layout: [N][hp][wp][C4] texels, elements at border
} p;

INPUT_VT(0, x)                                                 // (N, C, H*W/4) vec4
#ifdef BWD
INPUT_VT(1, dy)                                                // (N, C, H*W/4) vec4
INPUT_VEC4(2, coef)                                            // (C, 2), batchnorm_bwd_finalize
layout(std430, binding = 3) writeonly buffer Out { vec4 o[]; };  // [N][hp][wp][C4]
#else
INPUT_VEC4(1, coef)                                            // (C, 2), batchnorm_fwd_finalize
layout(std430, binding = 2) writeonly buffer Out { vec4 o[]; };  // [N][hp][wp][C4]
#endif
#ifdef RESIDUAL
INPUT_VT(3, res)                                               // (N, C, H*W/4) vec4
layout(std430, binding = 4) writeonly buffer Y { vec4 y[]; };  // (N, C, H*W/4) vec4
#elif defined(DUAL)
layout(std430, binding = 3) writeonly buffer Y { vec4 y[]; };  // (N, C, H*W/4) vec4
#endif

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    uint plane = fastdiv(id, p.q_div.x, p.q_div.y), q = id - plane * p.Q;  // plane: n * C4 + cg
    uint n = fastdiv(plane, p.c4_div.x, p.c4_div.y), cg = plane - n * p.C4;
    vec4 v[4];  // v[cc]: channel 4 cg + cc at the 4 positions
    [[unroll]] for (uint cc = 0; cc < 4; cc++) {
        uint c = cg * 4 + cc;
        uint at = (n * p.C4 * 4 + c) * p.Q + q;
        vec4 a = LOAD_VEC4(coef, 2 * c);
        vec4 xv = LOAD_VT(x, at);
#ifdef BWD
        vec4 b = LOAD_VEC4(coef, 2 * c + 1), d = LOAD_VT(dy, at);
        if (p.relu != 0) d = relu_mask(bn_affine(xv, a.x, a.z, a.w), d);
        vec4 xhat = (xv - a.x) * a.y;
        v[cc] = a.z * (d - (b.x + xhat * b.y));
#else
        vec4 z = bn_affine(xv, a.x, a.z, a.w);
#ifdef RESIDUAL
        z += LOAD_VT(res, at);
#endif
        v[cc] = p.relu != 0 ? relu_mask(z, z) : z;
#if defined(RESIDUAL) || defined(DUAL)
        y[at] = v[cc];
#endif
#endif
    }
    uint pos = q * 4, h = fastdiv(pos, p.w_div.x, p.w_div.y), w = pos - h * p.W;
    [[unroll]] for (uint i = 0; i < 4; i++) {
        if (w == p.W) {  // the 4 positions may run into the next row
            w = 0;
            h++;
        }
        o[((n * p.hp + p.border + h) * p.wp + p.border + w) * p.C4 + cg] = vec4(v[0][i], v[1][i], v[2][i], v[3][i]);
        w++;
    }
}
