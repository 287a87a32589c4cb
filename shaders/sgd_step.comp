#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// torch.optim.SGD (dampening 0) over one chunk of the parameters:
//   g = grad + wd*w; MOMENTUM: buf = momentum*buf + g; g = nesterov ? g + momentum*buf : buf;
//   w -= lr*g.
// Element-wise and memory-bound (a texel-buffer grad read could help lavapipe a little).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;
    float lr;
    float momentum;
    float weight_decay;
    uint nesterov;
} p;

layout(std430, binding = 0) buffer W { float w[]; };              // (n)
layout(std430, binding = 1) readonly buffer G { float grad[]; };  // (n)
#ifdef MOMENTUM
layout(std430, binding = 2) buffer Buf { float buf[]; };          // (n)
#endif

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.n) return;
    float wi = w[i];
    float g = grad[i] + p.weight_decay * wi;
#ifdef MOMENTUM
    float m = p.momentum * buf[i] + g;
    buf[i] = m;
    g = p.nesterov != 0u ? g + p.momentum * m : m;
#endif
    w[i] = wi - p.lr * g;
}
