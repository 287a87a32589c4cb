#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = a*x + y over n floats (one chunk of the tensors).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;
    float a;
} p;

layout(std430, binding = 0) readonly buffer X { float x[]; };  // (n,)
layout(std430, binding = 1) buffer Y { float y[]; };           // (n,)

void main()
{
    uint i = flat_invocation_index();
    if (i < p.n) y[i] = p.a * x[i] + y[i];
}
