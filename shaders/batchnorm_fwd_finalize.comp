#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm_common.glsl"
// BatchNorm statistics, pass 2 of 2, one invocation per channel.
// Training: merges the channel's G partial summaries of d = x - K in order
// (Chan), mean = K + mean of d, writes
// save_mean and save_invstd = 1/sqrt(var_biased + eps), and only when
// update_running != 0 moves the running statistics, PyTorch style:
//   running_mean = (1 - m) running_mean + m mean
//   running_var  = (1 - m) running_var  + m M2 / (n - 1)   (unbiased)
// Eval: mean = running_mean, invstd = 1/sqrt(running_var + eps).
// Both write the apply pass's coefficients coef[2c] = (mean, invstd, scale =
// gamma invstd, beta), coef[2c+1] = 0.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint C;
    uint groups;          // G partials per channel
    float eps;
    float momentum;
    uint update_running;
    uint eval;
} p;

layout(std430, binding = 0) readonly buffer Part { vec4 part[]; };       // (C, G)
layout(std430, binding = 1) writeonly buffer SM { float save_mean[]; };  // (C)
layout(std430, binding = 2) writeonly buffer SI { float save_invstd[]; };// (C)
layout(std430, binding = 3) buffer RM { float running_mean[]; };         // (C)
layout(std430, binding = 4) buffer RV { float running_var[]; };          // (C)
layout(std430, binding = 5) readonly buffer G { float gamma[]; };        // (C)
layout(std430, binding = 6) readonly buffer B { float beta[]; };         // (C)
layout(std430, binding = 7) writeonly buffer CO { vec4 coef[]; };        // (C, 2)

void main()
{
    uint c = flat_invocation_index();
    if (c >= p.C) return;
    float mean, invstd;
    if (p.eval != 0) {
        mean = running_mean[c];
        invstd = 1.0 / sqrt(running_var[c] + p.eps);
    } else {
        float n = 0.0, m2 = 0.0, md = 0.0;
        for (uint g = 0; g < p.groups; g++) {
            vec4 s = part[c * p.groups + g];
            chan_merge(n, md, m2, s.x, s.y, s.z);
        }
        mean = part[c * p.groups].w + md;
        invstd = 1.0 / sqrt(m2 / n + p.eps);   // biased variance: this is what normalizes
        save_mean[c] = mean;
        save_invstd[c] = invstd;
        if (p.update_running != 0) {
            float keep = 1.0 - p.momentum;
            running_mean[c] = keep * running_mean[c] + p.momentum * mean;
            running_var[c] = keep * running_var[c] + p.momentum * (m2 / (n - 1.0));
        }
    }
    coef[2 * c] = vec4(mean, invstd, bn_scale(gamma[c], invstd), beta[c]);
    coef[2 * c + 1] = vec4(0.0);
}
