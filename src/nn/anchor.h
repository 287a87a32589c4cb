/* Anchored inputs concat_channels(reference, x - reference) for training and for
 * K-anchor inference, and the K-anchor inference reduction (DESIGN.md section 1).
 * No backward: the anchored input is built from data. Internal; tests include "nn/anchor.h". */
#ifndef VKA_NN_ANCHOR_H
#define VKA_NN_ANCHOR_H

#include "nn/packed_layout.h"
#include "vkanchor.h"

/* Images x (batch, channels, height, width); `anchors` (K) is read by the inference form only. */
typedef struct vka_anchor_shape {
    uint32_t batch, channels, height, width;
    uint32_t anchors;
} vka_anchor_shape;

/* Training: out (B, 2C, H, W); channels [0, C) = masked ? 0 : x[ref_index[b]], channels
 * [C, 2C) = x[b] - x[ref_index[b]] (always the real reference). x (B, C, H, W), ref_index (B)
 * int32 in [0, B) (the caller's job; the kernel clamps into range so it never reads outside x). */
vka_result vka_anchor_train_input(vka_cmd *cmd, const vka_anchor_shape *s, vka_tensor out, vka_tensor x,
                                  vka_tensor ref_index, int masked);

/* The same, written straight into the first conv's channels-packed x (out: its
 * vka_conv2d_x_packed_layout, from vka_model_input_layout): only the elements (B, 2C, H, W),
 * the zeros around them left as they are; that conv then takes it as x_packed. */
vka_result vka_anchor_train_input_packed(vka_cmd *cmd, const vka_anchor_shape *s, const vka_packed_layout *out,
                                         vka_tensor x, vka_tensor ref_index, int masked);

/* K-anchor inference: out (K*B, 2C, H, W), row k*B + b = [refs[k], x[b] - refs[k]].
 * x (B, C, H, W) test images, refs (K, C, H, W). */
vka_result vka_anchor_infer_input(vka_cmd *cmd, const vka_anchor_shape *s, vka_tensor out, vka_tensor x,
                                  vka_tensor refs);

/* From logits (K*B, classes) (row k*B + b): mean_logits (B, classes) = mean over k;
 * uncertainty (B) = mean over classes of the sample std over k of sigmoid(logits) (divided by
 * K - 1, as torch.std in the released code; 0 for K = 1);
 * calibrated (B, classes) = mean_logits / (1 + exp(uncertainty)). All three outputs required. */
vka_result vka_anchor_reduce(vka_cmd *cmd, uint32_t anchors, uint32_t batch, uint32_t classes,
                             vka_tensor mean_logits, vka_tensor uncertainty, vka_tensor calibrated,
                             vka_tensor logits);

#endif
