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
                           To keep the running statistics, use VKA_BN_TRAIN_KEEP_RUNNING. */
    int relu;           /* 1: fused ReLU, y = max(bn(x), 0); the backward then masks dy
                           where bn(x) <= 0 (recomputed from x, bit-identical) */
} vka_batchnorm_desc;

/* Bytes of the scratch tensor every batchnorm op needs (per-channel partial sums
 * and coefficients; one scratch may serve every layer: nothing in it is read
 * across calls). */
uint64_t vka_batchnorm_scratch_bytes(const vka_context *ctx, const vka_batchnorm_desc *d);

/* How a forward normalizes: training with the batch's statistics, moving the running ones
 * toward the batch mean and UNBIASED variance (needs N*HW > 1) or leaving them untouched
 * (reference-masked batches), or evaluation with the running ones. */
typedef enum vka_batchnorm_mode {
    VKA_BN_TRAIN,
    VKA_BN_TRAIN_KEEP_RUNNING,
    VKA_BN_EVAL,
} vka_batchnorm_mode;

/* A forward's tensors; those a call does not use may be absent ((vka_tensor){0}, NULL). */
typedef struct vka_batchnorm_io {
    vka_tensor x;                         /* (N,C,HW) */
    vka_tensor residual;                  /* present: a residual block's tail, y = bn(x) + residual,
                                             then the ReLU if d->relu (rounded as vka_add_forward's:
                                             the same bits as BN, add and ReLU one after another).
                                             Its backward is the caller's: mask dy where y <= 0
                                             (vka_relu_backward on y), which is the residual's
                                             gradient and the dy of vka_batchnorm_backward with relu = 0. */
    vka_tensor y;                         /* (N,C,HW) NCHW; absent when only yp is written (not
                                             with a residual); with yp both are written (where
                                             vka_batchnorm_add_packed_y_fits) */
    const vka_packed_layout *yp;          /* y in lavapipe's channels-packed layout (packed_layout.h:
                                             only its elements, the border left as it is) for the conv
                                             after this BN to read as its packed x
                                             (vka_conv2d_x_packed_layout, sh->x_packed): instead of y,
                                             or beside it (with or without a residual) where
                                             vka_batchnorm_add_packed_y_fits */
    vka_tensor gamma, beta;               /* (C) */
    vka_tensor running_mean, running_var; /* (C): read by VKA_BN_EVAL, moved by VKA_BN_TRAIN */
    vka_tensor save_mean, save_invstd;    /* (C): written in training, the backward's inputs:
                                             the batch mean and 1/sqrt(var_biased + eps) */
    vka_tensor scratch;                   /* vka_batchnorm_scratch_bytes */
    vka_tensor stats;                     /* training, present: x's batch statistics as x's producer
                                             wrote them (vka_conv2d_forward_stats): (C, stats_groups)
                                             vec4 partials (count, mean, M2 about that mean, 0), merged
                                             in order by the finalize; no statistics pass over x.
                                             Not read in evaluation. */
    uint32_t stats_groups;
    vka_tensor coef;                      /* present: no output, only the statistics and the apply's
                                             coefficients, (C, 2) vec4 written here: coef[2c] =
                                             (mean, invstd, gamma invstd, beta), coef[2c+1] = 0, for
                                             the one consumer of y to apply (vka_maxpool_forward_bn);
                                             y, yp and the residual absent */
} vka_batchnorm_io;

/* y = (x - mean) / sqrt(var + eps) gamma + beta (+ residual), then the ReLU if d->relu, with
 * the batch's statistics in training (BIASED variance) and the running ones in evaluation.
 * y and yp must not overlap x or the residual. Errors name the call as
 * batchnorm_forward_{train,eval}[_add][_packed_y], or batchnorm_forward_{train,eval}_coef. */
vka_result vka_batchnorm_forward(vka_cmd *cmd, const vka_batchnorm_desc *d, vka_batchnorm_mode mode,
                                 const vka_batchnorm_io *io);
/* Whether y can be written both NCHW and packed (a tail, or a BN with several readers): C and HW
 * multiples of 4, or else the SPAN kernels (HW % 4 != 0, C*HW % 4 == 0 so that every batch up to
 * d->n qualifies, texel inputs within the device's limits; x and the residual arena tensors,
 * bound from their start). */
int vka_batchnorm_add_packed_y_fits(const vka_context *ctx, const vka_batchnorm_desc *d);
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
