#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Softmax cross-entropy over logits (B, NC) in ONE workgroup: invocation t handles rows
// t, t + WG, ...; the per-invocation loss sums and correct counts are then folded by a
// fixed shared-memory tree. The order depends only on B and the workgroup size:
// bit-identical runs, no atomics, and the batch statistics need no second pass.
//
// target_j = (1 - eps) [j == label] + eps / NC, eps = smoothing (label mode) or 1 (uniform).
// loss_b = logsumexp(z) - sum_j target_j z_j, written as
//        = log(sum_j exp(z_j - zmax)) + sum_j target_j (zmax - z_j)   (sum_j target_j = 1)
// so no large terms cancel. dlogits = (softmax - target) / B (the gradient of the mean).
// NO_GRAD: statistics only (evaluation), no dlogits binding.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint batch;      // B
    uint classes;    // NC
    uint uniform_;   // 1: uniform target (label one-hot part off, eps = 1)
    uint has_labels; // 0: no labels bound (uniform mode only): the correct count is 0
    float smoothing; // label mode
} p;

layout(std430, binding = 0) readonly buffer Logits { float z[]; };    // (B, NC)
layout(std430, binding = 1) readonly buffer Labels { int labels[]; }; // (B) int32
layout(std430, binding = 2) writeonly buffer Stats { float stats[]; }; // (2 + B)
#ifndef NO_GRAD
layout(std430, binding = 3) writeonly buffer DLogits { float dz[]; }; // (B, NC)
#endif

shared float s_loss[gl_WorkGroupSize.x];
shared uint s_correct[gl_WorkGroupSize.x];

void main()
{
    uint t = gl_LocalInvocationID.x;
    float eps = p.uniform_ != 0u ? 1.0 : p.smoothing;
    float base_t = eps / float(p.classes);   // target of every class
    float loss_sum = 0.0;
    uint correct = 0u;
    for (uint b = t; b < p.batch; b += gl_WorkGroupSize.x) {
        uint row = b * p.classes;
        // Row max and argmax: strict '>', ties go to the lowest index.
        uint amax = 0u;
        float zmax = z[row];
        for (uint j = 1u; j < p.classes; j++) {
            float v = z[row + j];
            if (v > zmax) { zmax = v; amax = j; }
        }
        float sum_exp = 0.0, sum_gap = 0.0;
        for (uint j = 0u; j < p.classes; j++) {
            float gap = zmax - z[row + j]; // >= 0
            sum_exp += exp(-gap);
            sum_gap += gap;
        }
        int label = p.has_labels != 0u ? labels[b] : -1;
        // The one-hot part exists in label mode for a label in range (range is the trainer's job).
        bool onehot = p.uniform_ == 0u && label >= 0 && label < int(p.classes);
        float loss = log(sum_exp) + base_t * sum_gap;
        if (onehot) loss += (1.0 - eps) * (zmax - z[row + uint(label)]);
        loss_sum += loss;
        if (p.has_labels != 0u && int(amax) == label) correct++;
        stats[2u + b] = 1.0 / sum_exp; // max probability exp(zmax - lse)
#ifndef NO_GRAD
        float inv_sum = 1.0 / sum_exp;
        float B = float(p.batch);
        for (uint j = 0u; j < p.classes; j++) {
            float target = base_t + ((onehot && j == uint(label)) ? 1.0 - eps : 0.0);
            dz[row + j] = (exp(z[row + j] - zmax) * inv_sum - target) / B;
        }
#endif
    }
    s_loss[t] = loss_sum;
    s_correct[t] = correct;
    barrier();
    // The workgroup size is a power of two (the host guarantees it).
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) {
            s_loss[t] += s_loss[t + stride];
            s_correct[t] += s_correct[t + stride];
        }
        barrier();
    }
    if (t == 0u) {
        stats[0] = s_loss[0] / float(p.batch);
        stats[1] = float(s_correct[0]);
    }
}
