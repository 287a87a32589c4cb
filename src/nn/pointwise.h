/* Element-wise ops over n float32 values: ReLU and the residual add. Internal op
 * API (tests include it as "nn/pointwise.h"). Each is chunked to the device's
 * storage-buffer range, and uses vec4 loads when n % 4 == 0. An output may be
 * the very same tensor as an input (in place), never a partial overlap. */
#ifndef VKA_NN_POINTWISE_H
#define VKA_NN_POINTWISE_H

#include "vkanchor.h"

/* y (n) = x > 0 ? x : 0 (so -0 and NaN give +0). x (n). y may be x. */
vka_result vka_relu_forward(vka_cmd *cmd, uint64_t n, vka_tensor y, vka_tensor x);

/* dx (n) = x > 0 ? dy : 0, x (n) the forward's INPUT (gradient 0 at x == 0).
 * dy (n). OVERWRITES dx; dx may be dy. */
vka_result vka_relu_backward(vka_cmd *cmd, uint64_t n, vka_tensor dx, vka_tensor dy, vka_tensor x);

/* dx (n) = x > 0 ? dy + dy2 : 0: the ReLU's output gradient in two parts (a residual branch's
 * and its shortcut's), summed as vka_add_inplace would (the same bits) but never stored. dx may
 * be dy or dy2. */
vka_result vka_relu_backward_sum(vka_cmd *cmd, uint64_t n, vka_tensor dx, vka_tensor dy, vka_tensor dy2, vka_tensor x);

/* y (n) = a + b, a, b (n). y may be a or b. The backward needs no op: da = db = dy. */
vka_result vka_add_forward(vka_cmd *cmd, uint64_t n, vka_tensor y, vka_tensor a, vka_tensor b);

/* a (n) += b (n): gradient accumulation where a residual branch meets its shortcut. */
vka_result vka_add_inplace(vka_cmd *cmd, uint64_t n, vka_tensor a, vka_tensor b);

#endif
