#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// torch.optim.AdamW over one chunk of the parameters (the host folds lr, the weight decay
// and the bias corrections of step t into push constants, in double):
//   w *= decay (= 1 - lr*wd); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
//   w -= step_size * m / (sqrt(v) / sqrt_bc2 + eps), step_size = lr / (1 - b1^t),
//   sqrt_bc2 = sqrt(1 - b2^t)   (PyTorch's own arrangement of the formula).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;
    float beta1, one_minus_beta1;
    float beta2, one_minus_beta2;
    float eps;
    float decay;
    float step_size;
    float sqrt_bc2;
} p;

layout(std430, binding = 0) buffer W { float w[]; };              // (n)
layout(std430, binding = 1) buffer M { float m[]; };              // (n)
layout(std430, binding = 2) buffer V { float v[]; };              // (n)
layout(std430, binding = 3) readonly buffer G { float grad[]; };  // (n)

void main()
{
    uint i = flat_invocation_index();
    if (i >= p.n) return;
    float g = grad[i];
    float wi = w[i] * p.decay;
    float mi = p.beta1 * m[i] + p.one_minus_beta1 * g;
    float vi = p.beta2 * v[i] + p.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - p.step_size * (mi / (sqrt(vi) / p.sqrt_bc2 + p.eps));
}
