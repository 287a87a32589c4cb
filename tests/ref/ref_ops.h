// ref_ops.h: plain-C, double-precision reference of every vkanchor op.
//
// These are the ground truth the GPU shaders are tested against: simple loops,
// no cleverness. Conventions (all files):
// - every tensor is a dense row-major array of double; shapes are given in the
//   comments, e.g. x (N, C, H, W) means x[((n*C + c)*H + h)*W + w];
// - arguments: outputs first, then inputs, then sizes, then hyperparameters;
// - a *_backward OVERWRITES its gradient outputs (it never accumulates into them),
//   and any gradient output pointer may be NULL to skip computing it;
// - no function allocates memory, none keeps state between calls.
#ifndef VKANCHOR_REF_OPS_H
#define VKANCHOR_REF_OPS_H

// ----------------------------------------------------------------------------
// conv2d (ref_conv2d.c): cross-correlation (no kernel flip, as PyTorch), zero padding.
// P = (H + 2*pad - R) / stride + 1, Q = (W + 2*pad - S) / stride + 1 (floor).

// Output size of a conv or pool along one axis: (in + 2*pad - k) / stride + 1.
int ref_conv2d_out_size(int in, int k, int stride, int pad);
// y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K); b may be NULL (no bias).
void ref_conv2d_forward(double *y, const double *x, const double *w, const double *b,
                        int N, int C, int H, int W, int K, int R, int S, int stride, int pad);
// From dy (N,K,P,Q): dx (N,C,H,W), dw (K,C,R,S), db (K); each may be NULL.
void ref_conv2d_backward(double *dx, double *dw, double *db,
                         const double *dy, const double *x, const double *w,
                         int N, int C, int H, int W, int K, int R, int S, int stride, int pad);

// ----------------------------------------------------------------------------
// batchnorm (ref_batchnorm.c): per-channel over N*HW values. x, y (N, C, HW).

// Training mode: normalize with batch mean and BIASED variance, write save_mean (C) and
// save_invstd (C) = 1/sqrt(var_biased + eps) (either may be NULL); if update_running,
// running = (1-momentum)*running + momentum*batch with the UNBIASED variance for
// running_var (PyTorch); requires N*HW > 1 when update_running.
void ref_batchnorm_forward_train(double *y, double *save_mean, double *save_invstd,
                                 double *running_mean, double *running_var,
                                 const double *x, const double *gamma, const double *beta,
                                 int N, int C, int HW, double eps, double momentum,
                                 int update_running);
// Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
void ref_batchnorm_forward_eval(double *y, const double *x, const double *gamma,
                                const double *beta, const double *running_mean,
                                const double *running_var, int N, int C, int HW, double eps);
// Training-mode backward (through the batch statistics), from dy (N,C,HW) and the
// save_mean/save_invstd of the forward: dx (N,C,HW), dgamma (C), dbeta (C); each may be NULL.
void ref_batchnorm_backward(double *dx, double *dgamma, double *dbeta,
                            const double *dy, const double *x, const double *save_mean,
                            const double *save_invstd, const double *gamma,
                            int N, int C, int HW);

// ----------------------------------------------------------------------------
// pointwise (ref_pointwise.c)

// y = max(x, 0), n elements.
void ref_relu_forward(double *y, const double *x, int n);
// dx = dy * (x > 0), using the forward INPUT x; gradient at x == 0 is 0.
void ref_relu_backward(double *dx, const double *dy, const double *x, int n);
// y = a + b, n elements (residual add). No backward function: da = db = dy.
void ref_add_forward(double *y, const double *a, const double *b, int n);

// ----------------------------------------------------------------------------
// pooling (ref_pool.c)

// Max pool, floor mode: y (N,C,P,Q), P = (H + 2*pad - k)/stride + 1; requires pad <= k/2.
// Only in-bounds elements compete (padding never wins); ties: the FIRST maximum in
// row-major scan order of the window wins. argmax (N,C,P,Q), may be NULL: flat index
// h*W + w into x's H x W plane. Inputs are assumed finite (NaN behaviour unspecified).
void ref_maxpool_forward(double *y, int *argmax, const double *x,
                         int N, int C, int H, int W, int k, int stride, int pad);
// dx (N,C,H,W) = 0, then dx[plane][argmax] += dy for every output (overlapping windows sum).
// Same sizes as the forward; dy and argmax (N,C,P,Q).
void ref_maxpool_backward(double *dx, const double *dy, const int *argmax,
                          int N, int C, int H, int W, int k, int stride, int pad);
// y (N,C) = mean over H*W of x (N,C,HW).
void ref_global_avgpool_forward(double *y, const double *x, int N, int C, int HW);
// dx (N,C,HW) = dy (N,C) / HW.
void ref_global_avgpool_backward(double *dx, const double *dy, int N, int C, int HW);

// ----------------------------------------------------------------------------
// linear (ref_linear.c)

// y (N,OUT) = x (N,IN) @ w^T, w (OUT,IN), + b (OUT); b may be NULL.
void ref_linear_forward(double *y, const double *x, const double *w, const double *b,
                        int N, int IN, int OUT);
// From dy (N,OUT): dx (N,IN), dw (OUT,IN), db (OUT); each may be NULL.
void ref_linear_backward(double *dx, double *dw, double *db,
                         const double *dy, const double *x, const double *w,
                         int N, int IN, int OUT);

// ----------------------------------------------------------------------------
// anchoring (ref_anchor.c): the input is concat_channels(reference, x - reference).

// Training: out (B,2C,HW); channels [0,C) = masked ? 0 : x[ref_index[b]],
// channels [C,2C) = x[b] - x[ref_index[b]] (always the real reference); ref_index (B) in [0,B).
void ref_anchor_train_input(double *out, const double *x, const int *ref_index, int masked,
                            int B, int C, int HW);
// K-anchor inference: out (K*B,2C,HW), row k*B + b = [refs[k], x[b] - refs[k]];
// x (B,C,HW) test images, refs (K,C,HW).
void ref_anchor_infer_input(double *out, const double *x, const double *refs,
                            int K, int B, int C, int HW);
// From logits (K*B,NC) (row k*B + b): mean_logits (B,NC) = mean over k;
// uncertainty (B) = mean over classes of the sample std (divide by K - 1, as torch.std in the
// released code; 0 for K = 1) over k of sigmoid(logits); calibrated (B,NC) = mean_logits / (1 + exp(uncertainty)).
// uncertainty and calibrated may be NULL.
void ref_anchor_reduce(double *mean_logits, double *uncertainty, double *calibrated,
                       const double *logits, int K, int B, int NC);

// ----------------------------------------------------------------------------
// loss (ref_loss.c)

enum ref_ce_target {
    REF_CE_LABEL = 0,   // target = (1 - smoothing) * onehot(label) + smoothing / NC
    REF_CE_UNIFORM = 1, // target = 1 / NC for every class (masked batches, paper's text)
};
// Softmax cross-entropy over logits (B,NC); returns the MEAN loss over the batch.
// Writes (each may be NULL): dlogits (B,NC) = (softmax - target) / B, the gradient of the
// returned mean; sample_loss (B) = logsumexp(z) - sum_c target_c z_c; maxprob (B) = max
// softmax probability; *ncorrect = #{b : argmax(z_b) == labels[b]}, argmax ties -> lowest
// index. labels (B) may be NULL only in REF_CE_UNIFORM mode with ncorrect NULL.
// smoothing is ignored in REF_CE_UNIFORM mode. Stable: subtracts the row max.
double ref_cross_entropy(double *dlogits, double *sample_loss, double *maxprob, int *ncorrect,
                         const double *logits, const int *labels, int B, int NC,
                         enum ref_ce_target target, double smoothing);

// ----------------------------------------------------------------------------
// optimizers (ref_optim.c), n parameters, updated in place.

// torch.optim.SGD, dampening 0: g = grad + wd*w; buf = momentum*buf + g;
// g = nesterov ? g + momentum*buf : buf; w -= lr*g. buf (n) starts at zero; it may be NULL
// only when momentum == 0.
void ref_sgd_step(double *w, double *buf, const double *grad, int n,
                  double lr, double momentum, double weight_decay, int nesterov);
// torch.optim.AdamW, step t >= 1 (the count AFTER this step's increment): w *= 1 - lr*wd;
// m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
// m, v (n) start at zero.
void ref_adamw_step(double *w, double *m, double *v, const double *grad, int n,
                    double lr, double beta1, double beta2, double eps,
                    double weight_decay, int t);

#endif // VKANCHOR_REF_OPS_H
