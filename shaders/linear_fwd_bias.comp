#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The linear forward's bias epilogue: y (N, OUT) += b (OUT), after the matmul wrote y.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;    // rows (batch)
    uint out_; // columns (OUT)
} p;

layout(std430, binding = 0) buffer Y { float y[]; };          // (N, OUT)
layout(std430, binding = 1) readonly buffer Bias { float b[]; }; // (OUT)

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.n * p.out_) return;
    y[i] += b[i % p.out_];
}
