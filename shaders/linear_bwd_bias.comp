#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// db (OUT) = sum over n of dy (N, OUT): one invocation per column, 8 strided partial sums
// folded by a fixed tree. The order of additions depends only on N: bit-identical runs.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;    // rows (batch)
    uint out_; // columns (OUT)
} p;

layout(std430, binding = 0) readonly buffer DY { float dy[]; };  // (N, OUT)
layout(std430, binding = 1) writeonly buffer DB { float db[]; }; // (OUT)

#define P 8
void main()
{
    uint o = flat_invocation_index();
    if (o >= p.out_) return;
    float acc[P];
    [[unroll]] for (uint j = 0; j < P; j++) acc[j] = 0.0;
    uint r = 0;
    for (; r + P <= p.n; r += P)
        [[unroll]] for (uint j = 0; j < P; j++) acc[j] += dy[(r + j) * p.out_ + o];
    [[unroll]] for (uint j = 0; j < P; j++)
        if (r + j < p.n) acc[j] += dy[(r + j) * p.out_ + o];
    [[unroll]] for (uint w = P / 2; w > 0; w /= 2)
        [[unroll]] for (uint j = 0; j < w; j++) acc[j] += acc[j + w];
    db[o] = acc[0];
}
