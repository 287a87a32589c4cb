/* Pooling over NCHW float32: max pool with an int32 argmax (floor mode, zero
 * padding that never wins) and global average pool. Internal op API (tests
 * include it as "nn/pool.h"). No atomics: the max-pool backward is a gather. */
#ifndef VKA_NN_POOL_H
#define VKA_NN_POOL_H

#include "vkanchor.h"

typedef struct vka_maxpool_desc {
    uint32_t n, c, h, w;  /* x, dx: (N, C, H, W), all >= 1 */
    uint32_t k;           /* square window, >= 1 */
    uint32_t stride;      /* 0: k */
    uint32_t pad;         /* 2 pad <= k (every window holds a real element) */
} vka_maxpool_desc;

/* Output size along one axis, (in + 2 pad - k) / stride + 1 (floor; stride 0
 * means k); 0 when the window is larger than the padded input. */
uint32_t vka_maxpool_out_size(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad);

/* y (N,C,P,Q) = max over each window of x (N,C,H,W); argmax (N,C,P,Q) int32 = h*W + w
 * in the plane of the FIRST maximum in row-major window order. Inputs finite. */
vka_result vka_maxpool_forward(vka_cmd *cmd, const vka_maxpool_desc *d, vka_tensor y, vka_tensor argmax,
                               vka_tensor x);

/* vka_maxpool_forward of a BatchNorm's output that nobody else reads, computed here from that
 * BatchNorm's input x and the coefficients its forward wrote instead of its output
 * (vka_batchnorm_io.coef): per channel c, coef[2c] = (mean, invstd, gamma invstd, beta) and
 * z = (x - mean) gamma invstd + beta, then max(z, 0) when relu; the same bits of y and
 * argmax as the BatchNorm's apply and then vka_maxpool_forward, without writing its output. */
vka_result vka_maxpool_forward_bn(vka_cmd *cmd, const vka_maxpool_desc *d, vka_tensor y, vka_tensor argmax,
                                  vka_tensor x, vka_tensor coef, int relu);

/* OVERWRITES dx (N,C,H,W): each element gets the sum of dy (N,C,P,Q) over the
 * windows whose argmax (N,C,P,Q) is that element (overlapping windows sum), else 0. */
vka_result vka_maxpool_backward(vka_cmd *cmd, const vka_maxpool_desc *d, vka_tensor dx, vka_tensor dy,
                                vka_tensor argmax);

/* y (N,C) = mean over HW of x (N,C,HW) (compensated sum, fixed order). */
vka_result vka_global_avgpool_forward(vka_cmd *cmd, uint32_t n, uint32_t c, uint32_t hw, vka_tensor y,
                                      vka_tensor x);

/* OVERWRITES dx (N,C,HW) = dy (N,C) / HW. */
vka_result vka_global_avgpool_backward(vka_cmd *cmd, uint32_t n, uint32_t c, uint32_t hw, vka_tensor dx,
                                       vka_tensor dy);

#endif
