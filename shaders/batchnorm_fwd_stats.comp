#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
#include "fastdiv.glsl"
// BatchNorm statistics, pass 1 of 2: workgroup (g, c) summarises units
// [g*per_group, (g+1)*per_group) of channel c's N*hw units as (count, mean, M2)
// of d = x - K, with K the channel's first value, shared by every invocation and
// workgroup: sums, means and merges all work on small numbers, so a mean large
// against the spread neither cancels nor collects a rounding at every merge.
// The workgroup merges its lanes by a fixed tree (Chan): no atomics, the order
// depends only on the shape and the workgroup size.
// SPAN: a unit is a vec4 chunk of the plane, the floats outside it masked (norm_common.glsl).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint C;          // channels
    uint hw;         // units per plane (H*W floats, H*W/4 vec4, or SPAN's chunks)
    uint count;      // units per channel: N * hw
    uint per_group;  // units per workgroup
    uint step_i;     // workgroup size / hw
    uint step_j;     // workgroup size % hw
    uvec2 hw_div;    // fastdiv by hw
    uint plane;      // SPAN: floats per plane (hw is then its chunks)
} p;

INPUT_VT(0, x)                                                       // (N, C, hw)
layout(std430, binding = 1) writeonly buffer Part { vec4 part[]; };  // (C, G): (count, mean of d, M2, K)

shared float s_n[gl_WorkGroupSize.x];
shared float s_mean[gl_WorkGroupSize.x];
shared float s_m2[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x, g = gl_WorkGroupID.x, c = gl_WorkGroupID.y;
    uint end = min(g * p.per_group + p.per_group, p.count);
    // Unit e is (sample i, position j); stepped by the workgroup size without a division.
    uint e = g * p.per_group + t;
    uint i = fastdiv(e, p.hw_div.x, p.hw_div.y), j = e - i * p.hw;
#ifdef SPAN
    uint texels = uint(textureSize(x)), first = c * p.plane;
    float shift = LOAD_VT(x, first >> 2)[first & 3u];  // K: sample 0, position 0 of channel c
#else
    float shift = unit_first(LOAD_VT(x, c * p.hw));   // K: sample 0, position 0 of channel c
#endif
    VT s1 = VT(0.0), s2 = VT(0.0);
    uint floats = 0;
    for (; e < end; e += gl_WorkGroupSize.x) {
#ifdef SPAN
        uint base = (i * p.C + c) * p.plane;
        bvec4 inside = span_inside(base, j, p.plane);
        VT d = mix(vec4(0.0), LOAD_VT(x, span_chunk(base, j, texels)) - shift, inside);
        floats += uint(inside.x) + uint(inside.y) + uint(inside.z) + uint(inside.w);
#else
        VT d = LOAD_VT(x, (i * p.C + c) * p.hw + j) - shift;
        floats += UNIT;
#endif
        s1 += d;
        s2 += d * d;
        i += p.step_i;
        j += p.step_j;
        if (j >= p.hw) {
            j -= p.hw;
            i++;
        }
    }
    float n = float(floats);
    float S1 = unit_sum(s1), S2 = unit_sum(s2);
    s_n[t] = n;
    s_mean[t] = n > 0.0 ? S1 / n : 0.0;
    s_m2[t] = n > 0.0 ? max(S2 - S1 * (S1 / n), 0.0) : 0.0;
    barrier();
    // The workgroup size is a power of two (the host guarantees it).
    for (uint stride = gl_WorkGroupSize.x / 2; stride > 0; stride /= 2) {
        if (t < stride) {
            float na = s_n[t], ma = s_mean[t], m2a = s_m2[t];
            chan_merge(na, ma, m2a, s_n[t + stride], s_mean[t + stride], s_m2[t + stride]);
            s_n[t] = na;
            s_mean[t] = ma;
            s_m2[t] = m2a;
        }
        barrier();
    }
    if (t == 0) part[c * gl_NumWorkGroups.x + g] = vec4(s_n[0], s_mean[0], s_m2[0], shift);
}
