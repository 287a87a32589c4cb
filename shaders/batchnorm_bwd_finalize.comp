#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// BatchNorm backward, pass 2 of 3: one invocation per channel adds its G
// partials in order: dbeta = sum dz, dgamma = sum dz xhat. Also writes the
// per-channel coefficients pass 3 needs (fewer bindings there):
//   coef[2c]   = (mean, invstd, scale = gamma invstd, beta)
//   coef[2c+1] = (dbeta / n, dgamma / n, 0, 0)
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint C;
    uint groups;
    float n;         // N * H * W values per channel
} p;

layout(std430, binding = 0) readonly buffer Part { vec2 part[]; };   // (C, G)
layout(std430, binding = 1) readonly buffer M { float mean[]; };     // (C)
layout(std430, binding = 2) readonly buffer S { float invstd[]; };   // (C)
layout(std430, binding = 3) readonly buffer G { float gamma[]; };    // (C)
layout(std430, binding = 4) readonly buffer B { float beta[]; };     // (C)
layout(std430, binding = 5) writeonly buffer DG { float dgamma[]; }; // (C)
layout(std430, binding = 6) writeonly buffer DB { float dbeta[]; };  // (C)
layout(std430, binding = 7) writeonly buffer CO { vec4 coef[]; };    // (C, 2)

void main()
{
    uint c = flat_invocation_index();
    if (c >= p.C) return;
    float sdy = 0.0, sdyx = 0.0;
    for (uint g = 0; g < p.groups; g++) {
        vec2 s = part[c * p.groups + g];
        sdy += s.x;
        sdyx += s.y;
    }
    dbeta[c] = sdy;
    dgamma[c] = sdyx;
    float is = invstd[c];
    coef[2 * c] = vec4(mean[c], is, bn_scale(gamma[c], is), beta[c]);
    coef[2 * c + 1] = vec4(sdy / p.n, sdyx / p.n, 0.0, 0.0);
}
