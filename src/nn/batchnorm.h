/* BatchNorm2d over NCHW float32 (PyTorch semantics), optionally fused with the
 * ReLU that follows it. Internal op API (tests include it as "nn/batchnorm.h").
 *
 * Statistics are per channel over the N*H*W values, by fixed-order trees (no
 * atomics): the same inputs give the same bits on the same device. Training
 * normalizes with the batch mean and BIASED variance; the running statistics
 * move with the UNBIASED variance, and only when the call says so (reference-
 * masked batches must leave them untouched: DESIGN.md section 1). */
#ifndef VKA_NN_BATCHNORM_H
#define VKA_NN_BATCHNORM_H

#include "nn/packed_layout.h"
#include "vkanchor.h"

typedef struct vka_batchnorm_desc {
    uint32_t n, c, hw;  /* x, y, dx, dy: (N, C, HW), HW = H * W; all >= 1 */
    float eps;          /* 0: 1e-5 (added to the variance) */
    float momentum;     /* 0: 0.1; running = (1 - momentum) running + momentum batch.
                           To keep the running statistics, pass update_running = 0. */
    int relu;           /* 1: fused ReLU, y = max(bn(x), 0); the backward then masks dy
                           where bn(x) <= 0 (recomputed from x, bit-identical) */
} vka_batchnorm_desc;

/* Bytes of the scratch tensor every batchnorm op needs (per-channel partial sums
 * and coefficients; one scratch may serve every layer: nothing in it is read
 * across calls). */
uint64_t vka_batchnorm_scratch_bytes(const vka_context *ctx, const vka_batchnorm_desc *d);

/* Training forward: batch statistics, y = (x - mean) invstd gamma + beta (then
 * ReLU if d->relu). Writes y (N,C,HW), save_mean (C), save_invstd (C) =
 * 1/sqrt(var_biased + eps). If update_running, running_mean/running_var (C) move
 * toward the batch mean and unbiased variance (needs N*HW > 1); if not, they are
 * neither read nor written and may be absent ((vka_tensor){0}). x (N,C,HW),
 * gamma, beta (C); scratch: vka_batchnorm_scratch_bytes. y must not overlap x. */
vka_result vka_batchnorm_forward_train(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor y,
                                       vka_tensor save_mean, vka_tensor save_invstd,
                                       vka_tensor running_mean, vka_tensor running_var,
                                       vka_tensor x, vka_tensor gamma, vka_tensor beta,
                                       vka_tensor scratch, int update_running);

/* The same with y written in lavapipe's channels-packed layout (packed_layout.h: only its
 * elements; border left as it is), for the conv after this BN to read as its
 * packed x (vka_conv2d_x_packed_layout, sh->x_packed). */
vka_result vka_batchnorm_forward_train_packed_y(vka_cmd *cmd, const vka_batchnorm_desc *d, const vka_packed_layout *y,
                                                vka_tensor save_mean, vka_tensor save_invstd,
                                                vka_tensor running_mean, vka_tensor running_var, vka_tensor x,
                                                vka_tensor gamma, vka_tensor beta, vka_tensor scratch,
                                                int update_running);

/* A residual block's tail in one pass: y = bn(x) + residual, then the ReLU if d->relu
 * (residual (N,C,HW), not overlapping y; the add rounds as vka_add_forward's: the same bits as
 * BN, add and ReLU one after another). The backward is the caller's: mask dy where y <= 0
 * (vka_relu_backward on y), which is the residual's gradient and the dy of
 * vka_batchnorm_backward with relu = 0. */
vka_result vka_batchnorm_forward_train_add(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor y,
                                           vka_tensor save_mean, vka_tensor save_invstd, vka_tensor running_mean,
                                           vka_tensor running_var, vka_tensor x, vka_tensor residual,
                                           vka_tensor gamma, vka_tensor beta, vka_tensor scratch,
                                           int update_running);

/* The same, writing y both NCHW and in lavapipe's packed layout (for the conv after the tail,
 * as vka_batchnorm_forward_train_packed_y does); only where vka_batchnorm_add_packed_y_fits. */
vka_result vka_batchnorm_forward_train_add_packed_y(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor y,
                                                    const vka_packed_layout *yp, vka_tensor save_mean,
                                                    vka_tensor save_invstd, vka_tensor running_mean,
                                                    vka_tensor running_var, vka_tensor x, vka_tensor residual,
                                                    vka_tensor gamma, vka_tensor beta, vka_tensor scratch,
                                                    int update_running);
/* Whether a shape takes ..._add_packed_y: C and HW multiples of 4. */
int vka_batchnorm_add_packed_y_fits(const vka_batchnorm_desc *d);

/* Eval forward: y (N,C,HW) = (x - running_mean) / sqrt(running_var + eps) gamma
 * + beta (then ReLU if d->relu). x (N,C,HW); gamma, beta, running_* (C);
 * scratch: vka_batchnorm_scratch_bytes (the per-channel coefficients). */
vka_result vka_batchnorm_forward_eval(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor y,
                                      vka_tensor x, vka_tensor gamma, vka_tensor beta,
                                      vka_tensor running_mean, vka_tensor running_var, vka_tensor scratch);
/* ... and of a residual block's tail: y = bn(x) + residual, then the ReLU if d->relu. */
vka_result vka_batchnorm_forward_eval_add(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor y, vka_tensor x,
                                          vka_tensor residual, vka_tensor gamma, vka_tensor beta,
                                          vka_tensor running_mean, vka_tensor running_var, vka_tensor scratch);
/* The two with y in lavapipe's packed layout for the conv after the BN, as the training
 * forward's _packed_y: only packed, or (a tail) NCHW and packed. */
vka_result vka_batchnorm_forward_eval_packed_y(vka_cmd *cmd, const vka_batchnorm_desc *d, const vka_packed_layout *yp,
                                               vka_tensor x, vka_tensor gamma, vka_tensor beta,
                                               vka_tensor running_mean, vka_tensor running_var, vka_tensor scratch);
vka_result vka_batchnorm_forward_eval_add_packed_y(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor y,
                                                   const vka_packed_layout *yp, vka_tensor x, vka_tensor residual,
                                                   vka_tensor gamma, vka_tensor beta, vka_tensor running_mean,
                                                   vka_tensor running_var, vka_tensor scratch);

/* Training backward through the batch statistics, from dy (N,C,HW) and the forward's
 * x, save_mean, save_invstd, gamma (and beta, needed only when d->relu). OVERWRITES
 * dgamma (C) = sum dz xhat, dbeta (C) = sum dz, and dx (N,C,HW) unless dx is absent;
 * dz = dy, masked where the fused ReLU's input was <= 0 when d->relu.
 * scratch: vka_batchnorm_scratch_bytes. dx must not overlap x or dy. */
vka_result vka_batchnorm_backward(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_tensor dx,
                                  vka_tensor dgamma, vka_tensor dbeta, vka_tensor dy, vka_tensor x,
                                  vka_tensor save_mean, vka_tensor save_invstd, vka_tensor gamma,
                                  vka_tensor beta, vka_tensor scratch);

/* The same with dx written in lavapipe's channels-packed layout (packed_layout.h: only
 * its elements; border left as it is), for the conv before this BN to read
 * as its packed dy (vka_conv2d_dy_packed_layout). */
vka_result vka_batchnorm_backward_packed_dx(vka_cmd *cmd, const vka_batchnorm_desc *d, const vka_packed_layout *dx,
                                            vka_tensor dgamma, vka_tensor dbeta, vka_tensor dy, vka_tensor x,
                                            vka_tensor save_mean, vka_tensor save_invstd, vka_tensor gamma,
                                            vka_tensor beta, vka_tensor scratch);

#endif
