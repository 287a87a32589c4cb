#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// K-anchor inference reduction, one invocation per test image b:
//   mean (B, NC) = mean over k of logits[k*B + b];
//   unc (B) = mean over classes of the sample std over k of sigmoid(logits) (divided by K - 1,
//             as torch.std in the released code; 0 for K = 1);
//   cal (B, NC) = mean / (1 + exp(unc)).
// Two passes over k per class (mean, then squared deviations) as the reference does;
// a fixed order: bit-identical runs.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint anchors; // K
    uint batch;   // B
    uint classes; // NC
} p;

layout(std430, binding = 0) readonly buffer Logits { float z[]; };  // (K*B, NC)
layout(std430, binding = 1) writeonly buffer Mean { float mean[]; }; // (B, NC)
layout(std430, binding = 2) writeonly buffer Unc { float unc[]; };   // (B)
layout(std430, binding = 3) writeonly buffer Cal { float cal[]; };   // (B, NC)

float sigmoid(float v) { return 1.0 / (1.0 + exp(-v)); }

void main()
{
    uint b = flat_invocation_index();
    if (b >= p.batch) return;
    uint stride = p.batch * p.classes; // from anchor k to k+1
    float K = float(p.anchors);
    float dof = max(K - 1.0, 1.0); // K = 1: var_s is 0, and so is the uncertainty
    float u = 0.0;
    for (uint j = 0; j < p.classes; j++) {
        uint base = b * p.classes + j;
        float sum = 0.0, sum_s = 0.0;
        for (uint k = 0; k < p.anchors; k++) {
            float v = z[base + k * stride];
            sum += v;
            sum_s += sigmoid(v);
        }
        float mean_s = sum_s / K;
        float var_s = 0.0;
        for (uint k = 0; k < p.anchors; k++) {
            float d = sigmoid(z[base + k * stride]) - mean_s;
            var_s += d * d;
        }
        u += sqrt(var_s / dof);
        mean[base] = sum / K;
    }
    u /= float(p.classes);
    unc[b] = u;
    float scale = 1.0 + exp(u);
    // The mean again from the logits (write-only outputs are not read back).
    for (uint j = 0; j < p.classes; j++) {
        uint base = b * p.classes + j;
        float sum = 0.0;
        for (uint k = 0; k < p.anchors; k++) sum += z[base + k * stride];
        cal[base] = (sum / K) / scale;
    }
}
