/* Fully connected layer, y = x W^T + b (PyTorch nn.Linear), on vka_matmul plus a
 * bias epilogue and a column-sum kernel. Internal; tests include "nn/linear.h". */
#ifndef VKA_NN_LINEAR_H
#define VKA_NN_LINEAR_H

#include "vkanchor.h"

/* x (n, in), W (out, in), b (out), y and dy (n, out). */
typedef struct vka_linear_shape {
    uint32_t n, in, out;
} vka_linear_shape;

/* y (n, out) = x (n, in) W^T + b; b (out) may be absent ((vka_tensor){0}). */
vka_result vka_linear_forward(vka_cmd *cmd, const vka_linear_shape *s, vka_tensor y, vka_tensor x, vka_tensor w,
                              vka_tensor b);

/* From dy (n, out): dx (n, in) = dy W, dw (out, in) = dy^T x, db (out) = sum over n of dy
 * (fixed order, no atomics). OVERWRITES its outputs; each may be absent (then skipped). */
vka_result vka_linear_backward(vka_cmd *cmd, const vka_linear_shape *s, vka_tensor dx, vka_tensor dw, vka_tensor db,
                               vka_tensor dy, vka_tensor x, vka_tensor w);

#endif
