#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// K-anchor inference input: out[k*B + b] = [refs[k], x[b] - refs[k]].
// One invocation per (k, b, i), i in [0, C*H*W).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint anchors; // K
    uint batch;   // B
    uint chw;     // C*H*W
} p;

layout(std430, binding = 0) readonly buffer X { float x[]; };     // (B, C, H, W)
layout(std430, binding = 1) readonly buffer Refs { float r[]; };  // (K, C, H, W)
layout(std430, binding = 2) writeonly buffer Out { float o[]; };  // (K*B, 2C, H, W)

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.anchors * p.batch * p.chw) return;
    uint row = id / p.chw;          // k*B + b
    uint i = id - row * p.chw;
    uint k = row / p.batch;
    uint b = row - k * p.batch;
    float rv = r[k * p.chw + i];
    uint ob = 2u * row * p.chw + i;
    o[ob] = rv;
    o[ob + p.chw] = x[b * p.chw + i] - rv;
}
