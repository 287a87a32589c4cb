/* Optimizer steps over one contiguous tensor of n parameters (plus its gradient and state
 * of n floats each), one dispatch per storage-range chunk, exactly as torch.optim.SGD
 * (dampening 0) and torch.optim.AdamW. Hyperparameters are push constants: a learning-rate
 * schedule costs nothing. Internal; tests include "nn/optim.h". */
#ifndef VKA_NN_OPTIM_H
#define VKA_NN_OPTIM_H

#include "vkanchor.h"

typedef struct vka_sgd_params {
    double lr, momentum, weight_decay;
    int nesterov;             /* ignored when momentum == 0 */
} vka_sgd_params;

/* g = grad + wd*w; if momentum != 0: buf = momentum*buf + g, g = nesterov ? g + momentum*buf
 * : buf; w -= lr*g. w, buf (n) updated in place, grad (n). buf starts at zero (PyTorch's
 * first-step clone); it may be absent only when momentum == 0 (then it is not touched). */
vka_result vka_sgd_step(vka_cmd *cmd, const vka_sgd_params *p, uint64_t n, vka_tensor w, vka_tensor buf,
                        vka_tensor grad);

typedef struct vka_adamw_params {
    double lr, beta1, beta2, eps, weight_decay;
    uint32_t step;            /* t >= 1: the step count AFTER this step's increment */
} vka_adamw_params;

/* w *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 * w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) (PyTorch's form; bias
 * corrections computed on the host in double). w, m, v (n) updated in place, grad (n). */
vka_result vka_adamw_step(vka_cmd *cmd, const vka_adamw_params *p, uint64_t n, vka_tensor w, vka_tensor m,
                          vka_tensor v, vka_tensor grad);

#endif
