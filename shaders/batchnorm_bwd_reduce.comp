#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
#include "fastdiv.glsl"
// BatchNorm backward, pass 1 of 3: workgroup (g, c) sums dz and dz * xhat over
// units [g*per_group, (g+1)*per_group) of channel c, xhat = (x - mean) * invstd.
// dz = dy, or with a fused ReLU dy masked where the forward's z was <= 0 (z
// recomputed bit-identically by bn_affine). Fixed tree: no atomics.
// SPAN: a unit is a vec4 chunk of the plane, the floats outside it masked (norm_common.glsl).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint C;
    uint hw;         // units per plane (H*W floats, H*W/4 vec4, or SPAN's chunks)
    uint count;      // units per channel: N * hw
    uint per_group;
    uint step_i;     // workgroup size / hw
    uint step_j;     // workgroup size % hw
    uvec2 hw_div;    // fastdiv by hw
    uint relu;
    uint plane;      // SPAN: floats per plane (hw is then its chunks)
} p;

INPUT_VT(0, x)                                                      // (N, C, hw)
INPUT_VT(1, dy)                                                     // (N, C, hw)
layout(std430, binding = 2) readonly buffer M { float mean[]; };    // (C) save_mean
layout(std430, binding = 3) readonly buffer S { float invstd[]; };  // (C) save_invstd
layout(std430, binding = 4) readonly buffer G { float gamma[]; };   // (C)
layout(std430, binding = 5) readonly buffer B { float beta[]; };    // (C) (unread without relu)
layout(std430, binding = 6) writeonly buffer Part { vec2 part[]; }; // (C, G): (sum dz, sum dz xhat)

shared float s_dy[gl_WorkGroupSize.x];
shared float s_dyx[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x, g = gl_WorkGroupID.x, c = gl_WorkGroupID.y;
    uint end = min(g * p.per_group + p.per_group, p.count);
    float m = mean[c], is = invstd[c];
    float scale = bn_scale(gamma[c], is), b = p.relu != 0 ? beta[c] : 0.0;
    uint e = g * p.per_group + t;
    uint i = fastdiv(e, p.hw_div.x, p.hw_div.y), j = e - i * p.hw;
    VT a_dy = VT(0.0), a_dyx = VT(0.0);
#ifdef SPAN
    uint texels = uint(textureSize(x));
#endif
    for (; e < end; e += gl_WorkGroupSize.x) {
#ifdef SPAN
        uint base = (i * p.C + c) * p.plane, at = span_chunk(base, j, texels);
#else
        uint at = (i * p.C + c) * p.hw + j;
#endif
        VT xv = LOAD_VT(x, at), d = LOAD_VT(dy, at);
        if (p.relu != 0) d = relu_mask(bn_affine(xv, m, scale, b), d);
        VT dyx = d * ((xv - m) * is);
#ifdef SPAN
        // Selects, not products: a non-finite value of another plane must not leak in.
        bvec4 inside = span_inside(base, j, p.plane);
        d = mix(vec4(0.0), d, inside);
        dyx = mix(vec4(0.0), dyx, inside);
#endif
        a_dy += d;
        a_dyx += dyx;
        i += p.step_i;
        j += p.step_j;
        if (j >= p.hw) {
            j -= p.hw;
            i++;
        }
    }
    s_dy[t] = unit_sum(a_dy);
    s_dyx[t] = unit_sum(a_dyx);
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2; stride > 0; stride /= 2) {
        if (t < stride) {
            s_dy[t] += s_dy[t + stride];
            s_dyx[t] += s_dyx[t + stride];
        }
        barrier();
    }
    if (t == 0) part[c * gl_NumWorkGroups.x + g] = vec2(s_dy[0], s_dyx[0]);
}
