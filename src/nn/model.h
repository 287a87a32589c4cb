/* Models as a list of nodes (sequential with residual adds): the built-in
 * `cnn`, `resnet20` and `resnet18` of DESIGN.md section 5, their parameters in
 * one contiguous tensor (PyTorch's parameter order), and the forward and
 * backward passes recorded into a command buffer. */
#ifndef VKA_NN_MODEL_H
#define VKA_NN_MODEL_H

#include "nn/packed_layout.h"
#include "vk/vk_internal.h"

typedef enum vka_model_kind { VKA_MODEL_CNN = 0, VKA_MODEL_RESNET20, VKA_MODEL_RESNET18 } vka_model_kind;

typedef enum vka_node_op {
    VKA_NODE_INPUT,
    VKA_NODE_CONV,                /* no bias in the built-in models */
    VKA_NODE_BN,                  /* with `relu` set: BN followed by a fused ReLU; with in[1] >= 0 a
                                     residual block's tail: BN, + in[1]'s output, then the ReLU */
    VKA_NODE_RELU,
    VKA_NODE_MAXPOOL,
    VKA_NODE_GAP,                 /* global average pool: (N, C, H, W) -> (N, C, 1, 1) */
    VKA_NODE_LINEAR,
    VKA_NODE_ADD,                 /* residual: y = in[0] + in[1] */
} vka_node_op;

typedef struct vka_node {
    vka_node_op op;
    int in[2];                    /* producer nodes, -1 if none */
    uint32_t c, h, w;             /* output shape per sample */
    uint32_t k, stride, pad;      /* conv: kernel k x k; maxpool: window k */
    int weight, bias;             /* parameter indices (conv/linear weight, bn gamma/beta), -1 none */
    int bn_index;                 /* which BN layer: its running stats in bn_stats */
    int relu;                     /* bn: ReLU fused into the output */
    uint32_t consumers;           /* nodes that read this output */
    int grad_alias;               /* dy is the dy of this node (single-consumer add inputs), -1 none */

    char scope[2][64];            /* what its forward [0] and backward [1] dispatches are timed as
                                     (vka_cmd_set_scope): "fwd 7 conv 16->32 3x3/2 14x14" */
    vka_tensor y, dy;             /* (N, C, H, W) at the model's batch */
    vka_tensor dz;                /* block tail with a ReLU: dy masked where y <= 0 (N, C, H, W) */
    vka_tensor save_mean, save_invstd; /* bn: (C) */
    vka_tensor argmax;            /* maxpool: (N, C, H, W) int32 */
    vka_tensor scratch;           /* conv: partials and packed copies; bn: reduction partials */
    int needs_dx;                 /* input gradient wanted (not for the first layer) */
    int dy_packed;                /* conv on lavapipe's packed path, read by one BN: that BN's backward
                                     writes dy straight into the scratch, packed (vka_model_conv_dy_layout);
                                     dy itself is not allocated */
    int dx_skip_empty_phases;     /* conv, the first of two convs of one stride writing the same input's
                                     gradient (a projection block's input): its tap-less stride phases
                                     are left to the second (vka_conv2d_shape.dx_skip_empty_phases) */
    uint32_t dx_accumulate;       /* conv, the second: the phases the first wrote, which it adds into
                                     instead of a temporary and an add pass (vka_conv2d_shape.dx_accumulate) */
    int packed_consumer;          /* bn read by one conv on the packed path: that conv's node; the forward
                                     (training and evaluation) writes y straight into the conv's scratch,
                                     packed, and not to y (vka_model_bn_y_layout) -- a block tail, or a BN
                                     with other consumers too, writes both; -1 otherwise */
    int reads_shared_x;           /* conv whose input BN writes its packed y for another conv (packed_consumer,
                                     e.g. a projection shortcut beside its block's first conv): 1 where it
                                     reads that copy (vka_conv2d_shape.x_shared, vka_model_bn_y_layout)
                                     instead of packing x itself; 0 otherwise, and with
                                     VKANCHOR_CONV_SHARED_X=0 */
    vka_tensor stats;             /* bn whose x is a conv's y read by it alone, on lavapipe's packed path:
                                     the statistics partials that conv's training forward writes for it
                                     (vka_conv2d_forward_stats), so the BN makes no pass of its own over
                                     x; absent otherwise */
    vka_tensor coef;              /* bn (not a tail) read by one max pool alone: its forward writes only
                                     its coefficients here, (C, 2) vec4, and the pool applies them to
                                     the BN's input (vka_maxpool_forward_bn): the BN's output is never
                                     written (its backward recomputes what it needs from x); absent
                                     otherwise, and with VKANCHOR_POOL_BN=0 */
} vka_node;

/* A residual block's tail: BN of in[0], + in[1]'s output (then the ReLU if relu). */
static inline int vka_node_is_tail(const vka_node *n) { return n->op == VKA_NODE_BN && n->in[1] >= 0; }

/* Whether the backward of a node whose output gradient comes in two parts (a shared residual
 * input: the part its residual consumer hands it kept aside) reads both where it masks them,
 * instead of adding them first: a ReLU, or a tail with its ReLU. */
static inline int vka_node_takes_two_grad_parts(const vka_node *n)
{
    return n->op == VKA_NODE_RELU || (vka_node_is_tail(n) && n->relu);
}

typedef struct vka_param {
    char name[32];
    uint32_t shape[4], dims;
    uint64_t offset, count;       /* floats, in the parameter tensor */
    uint32_t fan_in;              /* PyTorch default init bound 1/sqrt(fan_in); 0: BN (1 / 0) */
    int is_gamma;
} vka_param;

typedef struct vka_model_desc {
    vka_model_kind kind;
    uint32_t in_channels, height, width; /* the network's input (2C when anchoring) */
    uint32_t classes;
    uint32_t batch;               /* largest batch run through it (K*B at inference) */
} vka_model_desc;

typedef struct vka_model {
    vka_context *ctx;
    vka_model_desc desc;
    vka_node *nodes;
    uint32_t node_count, node_cap;
    vka_param *param_info;         /* (param_count,) names, shapes, offsets */
    uint32_t param_count, param_cap;
    uint32_t bn_count;
    uint64_t param_floats;        /* with alignment padding between parameters */
    uint64_t bn_floats;           /* running mean and var of every BN layer */

    vka_arena *param_arena;       /* parameters, gradients, optimizer state */
    vka_arena *act_arena;         /* activations and their gradients */
    vka_tensor params, grads;     /* (param_floats,) each; padding stays zero */
    vka_tensor bn_stats;          /* per BN layer: mean (C), var (C) */
    vka_tensor grad_tmp;          /* a second input-gradient buffer for multi-consumer nodes */
} vka_model;

/* Builds the graph and allocates parameters and activations (uninitialized). */
vka_result vka_model_create(vka_context *ctx, const vka_model_desc *desc, vka_model **out);
void vka_model_destroy(vka_model *m);
const char *vka_model_kind_name(vka_model_kind kind);
int vka_model_kind_parse(const char *name, vka_model_kind *out);

/* PyTorch's default initialization, drawn on the host from `seed` and uploaded:
 * conv/linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN gamma 1,
 * beta 0, running mean 0, var 1. Also zeroes the gradients. */
vka_result vka_model_init(vka_model *m, uint64_t seed);

/* A parameter's slice of the parameter (or gradient) tensor. */
vka_tensor vka_model_param(const vka_model *m, vka_tensor all, uint32_t index);
/* The logits (n, classes) of the last forward pass. */
vka_tensor vka_model_logits(const vka_model *m, uint32_t n);

typedef struct vka_forward_desc {
    uint32_t n;                   /* batch of this pass, <= desc.batch */
    int training;                 /* batch statistics (1) or running statistics (0) */
    int update_bn_stats;          /* training only: update running stats (0 for masked batches) */
    int input_packed;             /* the input was written into vka_model_input_layout (batch n) instead
                                     of the input tensor, which is then not read (still given: the
                                     backward's size checks see it) */
} vka_forward_desc;

/* Records the forward pass of `input` (n, in_channels, H, W). */
vka_result vka_model_forward(vka_cmd *cmd, vka_model *m, const vka_forward_desc *f, vka_tensor input);
/* Where the model's first conv keeps its packed x (batch n), when the input goes to that conv
 * alone on lavapipe's packed path: a producer of the input (vka_anchor_train_input_packed)
 * writes it there and the forward takes input_packed. 0 (and *out untouched) otherwise, and
 * with VKANCHOR_INPUT_PACKED=0 (A/B runs). */
int vka_model_input_layout(const vka_model *m, uint32_t n, vka_packed_layout *out);

/* For a bn node with packed_consumer >= 0: where its forward output lives, packed (batch n). */
vka_packed_layout vka_model_bn_y_layout(const vka_model *m, int node, uint32_t n);

/* For a conv node with dy_packed: where its dy lives during a backward pass of batch n. */
vka_packed_layout vka_model_conv_dy_layout(const vka_model *m, int node, uint32_t n);

/* Records the backward pass from dlogits (n, classes) into the gradient tensor
 * (overwritten) after a training forward pass with the same n. */
vka_result vka_model_backward(vka_cmd *cmd, vka_model *m, uint32_t n, vka_tensor dlogits);

#endif
