#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// One pass of a fixed-order tree reduction: workgroup g folds items
// [g*per_group, (g+1)*per_group) into (sum, max) at out[2g], out[2g+1].
// Items are floats (first pass) or (sum, max) pairs (later passes). The order
// of additions depends only on n and the workgroup size: bit-identical runs.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;          // items
    uint per_group;  // items per workgroup
    uint pairs_in;   // 1: items are (sum, max) pairs
} p;

layout(std430, binding = 0) readonly buffer In { float x[]; };  // (n,) or (n, 2)
layout(std430, binding = 1) writeonly buffer Out { float o[]; }; // (groups, 2)

shared float s_sum[gl_WorkGroupSize.x];
shared float s_max[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint begin = gl_WorkGroupID.x * p.per_group;
    uint end = min(begin + p.per_group, p.n);
    float sum = 0.0, mx = NEG_INF;
    for (uint i = begin + t; i < end; i += gl_WorkGroupSize.x) {
        float s = p.pairs_in != 0 ? x[2 * i] : x[i];
#ifdef ABS
        float m = p.pairs_in != 0 ? x[2 * i + 1] : abs(s);  // max |x| (the coop kernels' dy scale)
#else
        float m = p.pairs_in != 0 ? x[2 * i + 1] : s;
#endif
        sum += s;
        mx = max(mx, m);
    }
    s_sum[t] = sum;
    s_max[t] = mx;
    barrier();
    // The workgroup size is a power of two (the host guarantees it).
    for (uint stride = gl_WorkGroupSize.x / 2; stride > 0; stride /= 2) {
        if (t < stride) {
            s_sum[t] += s_sum[t + stride];
            s_max[t] = max(s_max[t], s_max[t + stride]);
        }
        barrier();
    }
    if (t == 0) {
        o[2 * gl_WorkGroupID.x] = s_sum[0];
        o[2 * gl_WorkGroupID.x + 1] = s_max[0];
    }
}
