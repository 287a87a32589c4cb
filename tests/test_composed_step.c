/* One whole anchored training step on the GPU against the same step composed
 * from the double-precision C references in tests/ref (no PyTorch needed).
 *
 * The GPU records, in ONE command buffer: vka_anchor_train_input (fixed
 * reference indices), vka_model_forward (training mode), vka_cross_entropy,
 * vka_model_backward and vka_sgd_step. The reference walks the model's own node
 * list (m->nodes, m->param_info) and calls ref_* per node (switch on node->op),
 * forward then backward in reverse order, accumulating a node's output gradient
 * over all its consumers (the identity shortcut of a residual block feeds both
 * the next conv and the add; a projection block's input feeds two convs), then
 * ref_sgd_step over the whole padded parameter tensor. So what is checked is the
 * composition: ordering, barriers, buffer reuse and gradient aliasing between
 * ops, not the ops alone (tests/test_op_* do that). Before the step, an evaluation
 * forward at a smaller batch runs on the same model (as between training epochs).
 *
 * Models: `cnn` on 2x12x12 (anchored 1-channel images), 10 classes, batch 3;
 * `resnet20` on 2x8x8 (identity shortcuts, projection shortcuts at stride 2,
 * residual adds). Each for an unmasked batch (label target with smoothing 0.1,
 * running statistics updated) and a masked batch (reference half zeroed,
 * uniform target, running statistics NOT updated).
 *
 * Compared, GPU fp32 vs reference fp64 from the same initial fp32 parameters
 * (vka_model_init, downloaded); every comparison is the normalized error
 * sum (gpu - ref)^2 / sum ref^2 <= 1e-9:
 *   - every node's activation y and its output gradient dy (localizes a failure),
 *   - the logits, dlogits, the loss (as a 1-vector), the max probabilities,
 *   - every parameter gradient (by name), the updated parameters and the SGD
 *     momentum buffer (lr 0.1, momentum 0.9, weight decay 5e-4),
 *   - the BN running statistics (unmasked); masked: bit-for-bit unchanged;
 *   - the logits of an evaluation forward after the step (running statistics, updated
 *     parameters, the same anchored input);
 * and exactly: the number of correct predictions, and the alignment padding of
 * the parameter and gradient tensors still zero.
 * The reference uses the hyperparameters as the GPU receives them (BN eps 1e-5f,
 * momentum 0.1f, SGD constants rounded to float), so only the arithmetic differs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/anchor.h"
#include "nn/conv2d_packed.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "ref_ops.h"
#include "test_util.h"

#define TOL 1e-9
#define BATCH 3

static const vka_sgd_params SGD = {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
static const float SMOOTHING = 0.1f;

typedef struct step_case {
    vka_model_kind kind;
    uint32_t size;                /* H = W of the images */
    int masked;
    uint64_t seed;
    int unfused;                  /* resnet block tails as BN, add and ReLU nodes (VKANCHOR_FUSE_RESIDUAL=0) */
    int packed_failed;            /* the context's packed kernels failed their self-test: none may run */
    float **after;                /* if set: gets the gradients, the updated parameters (2 param_floats), then
                                     the logits of an evaluation forward after the step (BATCH x 10) */
} step_case;

/* The reference step's state: one array per node. */
typedef struct ref_state {
    double **y, **z, **dy;        /* z: BN output before its fused ReLU */
    double **mean, **invstd;
    int **argmax;
    double *params, *grads, *buf, *bn;
    double *dlogits, *maxprob, loss;
    int ncorrect;
} ref_state;

static size_t node_count_of(const vka_node *n) { return (size_t)BATCH * n->c * n->h * n->w; }

static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* Offset (floats) of a BN layer's running mean in bn_stats; its var follows at + c. */
static uint64_t bn_offset(const vka_model *m, const vka_node *n)
{
    uint64_t at = 0;
    for (uint32_t i = 0; i < m->node_count; i++)
        if (m->nodes[i].op == VKA_NODE_BN && m->nodes[i].bn_index < n->bn_index) at += 2 * m->nodes[i].c;
    return at;
}

static const char *op_name(vka_node_op op)
{
    static const char *const names[] = {"input", "conv", "bn", "relu", "maxpool", "gap", "linear", "add"};
    return names[op];
}

static void node_label(const vka_model *m, uint32_t i, char *out, size_t cap)
{
    const vka_node *n = &m->nodes[i];
    snprintf(out, cap, "node %u (%s%s%s%s)", i, op_name(n->op), n->relu ? "+relu" : "", n->weight >= 0 ? " " : "",
             n->weight >= 0 ? m->param_info[n->weight].name : "");
}

/* dst (n) += src (n). */
static void accumulate(double *dst, const double *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* The whole step from the C references, walking m->nodes. x (B, C, H, W) images. */
static void ref_step(const vka_model *m, const step_case *sc, ref_state *r, const double *x, const int *ref_idx,
                     const int *labels)
{
    const int B = BATCH;
    const double eps = (double)1e-5f, momentum = (double)0.1f;
    const vka_node *nodes = m->nodes;
    const uint32_t last = m->node_count - 1;
    double *P = r->params, *G = r->grads;

    /* Forward. */
    for (uint32_t i = 0; i < m->node_count; i++) {
        const vka_node *n = &nodes[i];
        const vka_node *in = n->in[0] >= 0 ? &nodes[n->in[0]] : NULL;
        const double *xin = in ? r->y[n->in[0]] : NULL;
        int cnt = (int)node_count_of(n);
        switch (n->op) {
        case VKA_NODE_INPUT:
            assert_int_equal(n->c % 2, 0);
            ref_anchor_train_input(r->y[i], x, ref_idx, sc->masked, B, (int)n->c / 2, (int)(n->h * n->w));
            break;
        case VKA_NODE_CONV:
            assert_true(n->bias < 0);
            ref_conv2d_forward(r->y[i], xin, P + m->param_info[n->weight].offset, NULL, B, (int)in->c, (int)in->h,
                               (int)in->w, (int)n->c, (int)n->k, (int)n->k, (int)n->stride, (int)n->pad);
            break;
        case VKA_NODE_BN: {
            uint64_t at = bn_offset(m, n);
            double *out = n->relu ? r->z[i] : r->y[i];
            ref_batchnorm_forward_train(out, r->mean[i], r->invstd[i], r->bn + at, r->bn + at + n->c, xin,
                                        P + m->param_info[n->weight].offset, P + m->param_info[n->bias].offset, B,
                                        (int)n->c, (int)(n->h * n->w), eps, momentum, !sc->masked);
            if (vka_node_is_tail(n)) ref_add_forward(out, out, r->y[n->in[1]], cnt); /* the residual */
            if (n->relu) ref_relu_forward(r->y[i], out, cnt);
            break;
        }
        case VKA_NODE_RELU: ref_relu_forward(r->y[i], xin, cnt); break;
        case VKA_NODE_ADD: ref_add_forward(r->y[i], xin, r->y[n->in[1]], cnt); break;
        case VKA_NODE_MAXPOOL:
            ref_maxpool_forward(r->y[i], r->argmax[i], xin, B, (int)in->c, (int)in->h, (int)in->w, (int)n->k,
                                (int)n->stride, (int)n->pad);
            break;
        case VKA_NODE_GAP: ref_global_avgpool_forward(r->y[i], xin, B, (int)in->c, (int)(in->h * in->w)); break;
        case VKA_NODE_LINEAR:
            ref_linear_forward(r->y[i], xin, P + m->param_info[n->weight].offset, P + m->param_info[n->bias].offset,
                               B, (int)in->c, (int)n->c);
            break;
        }
    }

    /* Loss. */
    int NC = (int)nodes[last].c;
    r->loss = ref_cross_entropy(r->dlogits, NULL, r->maxprob, &r->ncorrect, r->y[last], labels, B, NC,
                                sc->masked ? REF_CE_UNIFORM : REF_CE_LABEL, sc->masked ? 0.0 : (double)SMOOTHING);
    memcpy(r->dy[last], r->dlogits, (size_t)B * NC * sizeof(double));

    /* Backward, in reverse node order: each contribution to an input's gradient is
     * computed into tmp (the references overwrite) and added to that input's dy. */
    size_t largest = 0;
    for (uint32_t i = 0; i < m->node_count; i++)
        if (node_count_of(&nodes[i]) > largest) largest = node_count_of(&nodes[i]);
    double *tmp = dalloc(largest), *dz = dalloc(largest);
    for (uint32_t i = last; i > 0; i--) {
        const vka_node *n = &nodes[i];
        int j = n->in[0];
        const vka_node *in = &nodes[j];
        const double *xin = r->y[j], *dy = r->dy[i];
        int want_dx = in->op != VKA_NODE_INPUT;
        double *dx = want_dx ? tmp : NULL;
        int cnt = (int)node_count_of(n);
        switch (n->op) {
        case VKA_NODE_INPUT: break;
        case VKA_NODE_CONV:
            ref_conv2d_backward(dx, G + m->param_info[n->weight].offset, NULL, dy, xin,
                                P + m->param_info[n->weight].offset, BATCH, (int)in->c, (int)in->h, (int)in->w,
                                (int)n->c, (int)n->k, (int)n->k, (int)n->stride, (int)n->pad);
            break;
        case VKA_NODE_BN:
            if (n->relu) ref_relu_backward(dz, dy, r->z[i], cnt);
            if (vka_node_is_tail(n)) accumulate(r->dy[n->in[1]], n->relu ? dz : dy, (size_t)cnt); /* the residual's */
            ref_batchnorm_backward(dx, G + m->param_info[n->weight].offset, G + m->param_info[n->bias].offset,
                                   n->relu ? dz : dy, xin, r->mean[i], r->invstd[i],
                                   P + m->param_info[n->weight].offset, BATCH, (int)n->c, (int)(n->h * n->w));
            break;
        case VKA_NODE_RELU: ref_relu_backward(dx, dy, xin, cnt); break;
        case VKA_NODE_ADD:
            /* da = db = dy. */
            accumulate(r->dy[n->in[1]], dy, (size_t)cnt);
            if (dx) memcpy(dx, dy, (size_t)cnt * sizeof(double));
            break;
        case VKA_NODE_MAXPOOL:
            ref_maxpool_backward(dx, dy, r->argmax[i], BATCH, (int)in->c, (int)in->h, (int)in->w, (int)n->k,
                                 (int)n->stride, (int)n->pad);
            break;
        case VKA_NODE_GAP: ref_global_avgpool_backward(dx, dy, BATCH, (int)in->c, (int)(in->h * in->w)); break;
        case VKA_NODE_LINEAR:
            ref_linear_backward(dx, G + m->param_info[n->weight].offset, G + m->param_info[n->bias].offset, dy, xin,
                                P + m->param_info[n->weight].offset, BATCH, (int)in->c, (int)n->c);
            break;
        }
        if (dx) accumulate(r->dy[j], dx, node_count_of(in));
    }
    free(tmp);
    free(dz);

    /* SGD over the whole padded tensor (padding: w = g = 0 stays 0). */
    ref_sgd_step(P, r->buf, G, (int)m->param_floats, (double)(float)SGD.lr, (double)(float)SGD.momentum,
                 (double)(float)SGD.weight_decay, SGD.nesterov);
}

/* An evaluation forward from the C references after the step: the updated parameters and
 * running statistics of r, on the step's anchored input r->y[0]. Returns the logits (B, classes). */
static double *ref_eval_logits(const vka_model *m, const ref_state *r)
{
    const int B = BATCH;
    const double eps = (double)1e-5f;
    double **y = calloc(m->node_count, sizeof *y);
    y[0] = r->y[0];
    for (uint32_t i = 1; i < m->node_count; i++) {
        const vka_node *n = &m->nodes[i], *in = &m->nodes[n->in[0]];
        const double *xin = y[n->in[0]], *P = r->params;
        int cnt = (int)node_count_of(n);
        y[i] = dalloc((size_t)cnt);
        switch (n->op) {
        case VKA_NODE_INPUT: break;
        case VKA_NODE_CONV:
            ref_conv2d_forward(y[i], xin, P + m->param_info[n->weight].offset, NULL, B, (int)in->c, (int)in->h,
                               (int)in->w, (int)n->c, (int)n->k, (int)n->k, (int)n->stride, (int)n->pad);
            break;
        case VKA_NODE_BN: {
            uint64_t at = bn_offset(m, n);
            ref_batchnorm_forward_eval(y[i], xin, P + m->param_info[n->weight].offset, P + m->param_info[n->bias].offset,
                                       r->bn + at, r->bn + at + n->c, B, (int)n->c, (int)(n->h * n->w), eps);
            if (vka_node_is_tail(n)) ref_add_forward(y[i], y[i], y[n->in[1]], cnt);
            if (n->relu) ref_relu_forward(y[i], y[i], cnt);
            break;
        }
        case VKA_NODE_RELU: ref_relu_forward(y[i], xin, cnt); break;
        case VKA_NODE_ADD: ref_add_forward(y[i], xin, y[n->in[1]], cnt); break;
        case VKA_NODE_MAXPOOL: {
            int *argmax = calloc((size_t)cnt, sizeof(int));
            ref_maxpool_forward(y[i], argmax, xin, B, (int)in->c, (int)in->h, (int)in->w, (int)n->k, (int)n->stride,
                                (int)n->pad);
            free(argmax);
            break;
        }
        case VKA_NODE_GAP: ref_global_avgpool_forward(y[i], xin, B, (int)in->c, (int)(in->h * in->w)); break;
        case VKA_NODE_LINEAR:
            ref_linear_forward(y[i], xin, P + m->param_info[n->weight].offset, P + m->param_info[n->bias].offset, B,
                               (int)in->c, (int)n->c);
            break;
        }
    }
    double *logits = y[m->node_count - 1];
    for (uint32_t i = 1; i + 1 < m->node_count; i++) free(y[i]);
    free(y);
    return logits;
}

static void ref_state_alloc(const vka_model *m, ref_state *r)
{
    memset(r, 0, sizeof *r);
    uint32_t nc = m->node_count;
    r->y = calloc(nc, sizeof *r->y);
    r->z = calloc(nc, sizeof *r->z);
    r->dy = calloc(nc, sizeof *r->dy);
    r->mean = calloc(nc, sizeof *r->mean);
    r->invstd = calloc(nc, sizeof *r->invstd);
    r->argmax = calloc(nc, sizeof *r->argmax);
    for (uint32_t i = 0; i < nc; i++) {
        const vka_node *n = &m->nodes[i];
        size_t cnt = node_count_of(n);
        r->y[i] = dalloc(cnt);
        r->dy[i] = dalloc(cnt);
        if (n->op == VKA_NODE_BN) {
            r->z[i] = dalloc(cnt);
            r->mean[i] = dalloc(n->c);
            r->invstd[i] = dalloc(n->c);
        }
        if (n->op == VKA_NODE_MAXPOOL) r->argmax[i] = calloc(cnt, sizeof(int));
    }
    r->params = dalloc(m->param_floats);
    r->grads = dalloc(m->param_floats);
    r->buf = dalloc(m->param_floats);
    r->bn = dalloc(m->bn_floats);
    r->dlogits = dalloc((size_t)BATCH * m->desc.classes);
    r->maxprob = dalloc(BATCH);
}

static void ref_state_free(const vka_model *m, ref_state *r)
{
    for (uint32_t i = 0; i < m->node_count; i++) {
        free(r->y[i]), free(r->z[i]), free(r->dy[i]);
        free(r->mean[i]), free(r->invstd[i]), free(r->argmax[i]);
    }
    free(r->y), free(r->z), free(r->dy), free(r->mean), free(r->invstd), free(r->argmax);
    free(r->params), free(r->grads), free(r->buf), free(r->bn), free(r->dlogits), free(r->maxprob);
}

/* The largest normalized error of the current case and where, printed at its end. */
static double worst;
static char worst_what[160];

static void expect_close(const char *what, const float *got, const double *ref, size_t n)
{
    double e = test_normalized_error(got, ref, n);
    if (e > worst || !worst_what[0]) worst = e, snprintf(worst_what, sizeof worst_what, "%s", what);
    test_expect_close(what, got, ref, n, TOL);
}

static void check(const char *what, vka_context *ctx, vka_tensor t, const double *ref, size_t n)
{
    float *got = test_read(ctx, vka_tensor_slice(t, 0, n * 4), n);
    expect_close(what, got, ref, n);
    free(got);
}

/* A BN that only wrote its coefficients for the max pool after it (vka_node.coef): its output
 * rebuilt in double from them and its input as the GPU has it, z = (x - mean) scale + beta
 * (then the ReLU), against the reference output. */
static void check_coefficients(const char *what, vka_context *ctx, const vka_model *m, uint32_t i, const double *ref)
{
    const vka_node *n = &m->nodes[i];
    size_t count = node_count_of(n), hw = (size_t)n->h * n->w;
    float *x = test_read(ctx, vka_tensor_slice(m->nodes[n->in[0]].y, 0, count * 4), count);
    float *coef = test_read(ctx, n->coef, (size_t)n->c * 8);
    double *y = malloc(count * sizeof(double));
    for (size_t e = 0; e < count; e++) {
        const float *a = coef + e / hw % n->c * 8;
        double z = ((double)x[e] - a[0]) * a[2] + a[3];
        y[e] = n->relu && z < 0 ? 0 : z;
    }
    float *yf = malloc(count * sizeof(float));
    for (size_t e = 0; e < count; e++) yf[e] = (float)y[e];
    expect_close(what, yf, ref, count);
    free(x), free(coef), free(y), free(yf);
}

/* A node whose output gradient the backward keeps in two parts (a shared residual input
 * whose ReLU backward reads both: model.c's pass_residual_grad, resolve_pending): the tensor
 * holding the part its residual consumer hands it, or absent when dy holds the whole gradient. */
static vka_tensor residual_part(const vka_model *m, uint32_t j)
{
    const vka_node *x = &m->nodes[j];
    for (uint32_t i = j + 1; i < m->node_count && x->consumers > 1 && vka_node_takes_two_grad_parts(x); i++) {
        const vka_node *n = &m->nodes[i];
        int add = n->op == VKA_NODE_ADD && (n->in[0] == (int)j || n->in[1] == (int)j);
        int tail = vka_node_is_tail(n) && n->in[1] == (int)j;
        if ((add || tail) && x->grad_alias != (int)i) return tail && n->relu ? n->dz : n->dy;
    }
    return (vka_tensor){0};
}

/* The output gradient of node j: dy, plus its residual part when it has one (summed in fp32,
 * as the ReLU backward that reads the two does). */
static void check_grad(const char *what, vka_context *ctx, const vka_model *m, uint32_t j, const double *ref)
{
    size_t n = node_count_of(&m->nodes[j]);
    float *got = test_read(ctx, vka_tensor_slice(m->nodes[j].dy, 0, n * 4), n);
    vka_tensor part = residual_part(m, j);
    if (vka_tensor_present(part)) {
        float *other = test_read(ctx, vka_tensor_slice(part, 0, n * 4), n);
        for (size_t k = 0; k < n; k++) got[k] += other[k];
        free(other);
    }
    expect_close(what, got, ref, n);
    free(got);
}

/* A tensor that lives packed in a conv's scratch (lavapipe: vka_model_conv_dy_layout,
 * vka_model_bn_y_layout): its elements against the reference, and every float around them
 * (border, padding channels) still exactly zero. */
static void check_packed(const char *what, vka_context *ctx, const vka_packed_layout *l, const double *ref,
                         uint32_t batch, uint32_t channels)
{
    size_t total = test_packed_floats(l, batch), n = (size_t)batch * channels * l->h * l->w;
    float *all = test_read(ctx, vka_tensor_slice(l->t, 0, total * 4), total);
    float *got = malloc(n * 4);
    uint8_t *is_element = calloc(total, 1);
    for (uint32_t b = 0; b < batch; b++)
        for (uint32_t c = 0; c < channels; c++)
            for (uint32_t h = 0; h < l->h; h++)
                for (uint32_t w = 0; w < l->w; w++) {
                    size_t at = test_packed_index(l, b, c, h, w);
                    got[(((size_t)b * channels + c) * l->h + h) * l->w + w] = all[at];
                    is_element[at] = 1;
                }
    expect_close(what, got, ref, n);
    for (size_t k = 0; k < total; k++)
        if (!is_element[k] && all[k] != 0.0f) fail_msg("%s: packed float %zu is %g between elements, not 0", what, k,
                                                       all[k]);
    free(all), free(got), free(is_element);
}

/* Every float of `all` outside the parameter slices is zero. */
static void check_padding(const vka_model *m, const char *what, const float *all)
{
    uint64_t at = 0;
    for (uint32_t i = 0; i <= m->param_count; i++) {
        uint64_t end = i < m->param_count ? m->param_info[i].offset : m->param_floats;
        for (uint64_t k = at; k < end; k++)
            if (all[k] != 0.0f) fail_msg("%s: padding float %llu is %g, not 0", what, (unsigned long long)k, all[k]);
        if (i < m->param_count) at = m->param_info[i].offset + m->param_info[i].count;
    }
}

static void run_case(const step_case *sc)
{
    vka_context *ctx = test_context();
    worst = 0, worst_what[0] = 0;
    const uint32_t C = 1, H = sc->size, W = sc->size, NC = 10;
    vka_model *m;
    if (sc->unfused) setenv("VKANCHOR_FUSE_RESIDUAL", "0", 1);
    if (sc->packed_failed) ctx->packed_checked = -1;
    TEST_OK(vka_model_create(ctx, &(vka_model_desc){.kind = sc->kind, .in_channels = 2 * C, .height = H, .width = W,
                                                   .classes = NC, .batch = BATCH}, &m));
    unsetenv("VKANCHOR_FUSE_RESIDUAL");
    uint32_t tails = 0, adds = 0;
    for (uint32_t i = 0; i < m->node_count; i++)
        tails += vka_node_is_tail(&m->nodes[i]), adds += m->nodes[i].op == VKA_NODE_ADD;
    if (sc->kind != VKA_MODEL_CNN && (sc->unfused ? tails != 0 || adds == 0 : tails == 0 || adds != 0))
        fail_msg("%s graph: %u fused block tails, %u add nodes", sc->unfused ? "unfused" : "fused", tails, adds);
    TEST_OK(vka_model_init(m, sc->seed));
    /* Initial state, read back from the GPU: the reference starts from the same floats. */
    float *p0 = test_read(ctx, m->params, m->param_floats);
    float *bn0 = test_read(ctx, m->bn_stats, m->bn_floats);

    test_rng rng = {sc->seed * 2654435761u + 1};
    size_t xn = (size_t)BATCH * C * H * W;
    float *x = malloc(xn * 4);
    test_fill_uniform(&rng, x, xn, -2.0f, 2.0f);
    const int32_t ref_idx[BATCH] = {2, 0, 0}, labels[BATCH] = {3, 7, 1};

    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "composed"}, &arena));
    vka_tensor tx = test_tensor(ctx, arena, x, xn);
    vka_tensor tidx = test_tensor_i32(ctx, arena, ref_idx, BATCH);
    vka_tensor tlab = test_tensor_i32(ctx, arena, labels, BATCH);
    vka_tensor input = test_tensor(ctx, arena, NULL, xn * 2);
    vka_tensor dlogits = test_tensor(ctx, arena, NULL, (size_t)BATCH * NC);
    vka_tensor buf = test_tensor(ctx, arena, NULL, m->param_floats);
    vka_tensor stats;
    TEST_OK(vka_arena_alloc(arena, vka_cross_entropy_stats_bytes(BATCH), &stats));

    /* First an evaluation forward at a smaller batch, as training does between epochs: it
     * must not disturb what the step relies on (the packed regions of the convs' scratch,
     * and in them the zeros around the packed dy, are at the same places at any batch). */
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    TEST_OK(vka_fill(ctx, input, 0));
    TEST_OK(vka_model_forward(cmd, m, &(vka_forward_desc){.n = BATCH - 1}, input));
    test_run(cmd);
    TEST_OK(vka_cmd_reset(cmd));

    /* The GPU step, one command buffer. */
    vka_anchor_shape as = {.batch = BATCH, .channels = C, .height = H, .width = W};
    /* The masked cases write the anchored input straight into the first conv's packed x where
     * the model takes it (as the trainer does), the others NCHW: both against the reference. */
    vka_packed_layout in_layout;
    int input_packed = sc->masked && vka_model_input_layout(m, BATCH, &in_layout);
    if (sc->masked && !input_packed && !sc->packed_failed && vka_context_device(ctx)->type == VKA_DEVICE_CPU &&
        vka_conv2d_packed_device(ctx) &&
        !getenv("VKANCHOR_CONV") && !getenv("VKANCHOR_CONV_PACKED") && !getenv("VKANCHOR_INPUT_PACKED") &&
        !getenv("VKANCHOR_LIMITS"))
        fail_msg("on a CPU device: the model's first conv takes no packed input");
    if (input_packed) TEST_OK(vka_anchor_train_input_packed(cmd, &as, &in_layout, tx, tidx, sc->masked));
    else TEST_OK(vka_anchor_train_input(cmd, &as, input, tx, tidx, sc->masked));
    TEST_OK(vka_model_forward(cmd, m, &(vka_forward_desc){.n = BATCH, .training = 1, .update_bn_stats = !sc->masked,
                                                         .input_packed = input_packed},
                              input));
    vka_cross_entropy_desc ce = {.batch = BATCH, .classes = NC, .target = sc->masked ? VKA_CE_UNIFORM : VKA_CE_LABEL,
                                 .smoothing = sc->masked ? 0.0f : SMOOTHING};
    TEST_OK(vka_cross_entropy(cmd, &ce, dlogits, stats, vka_model_logits(m, BATCH), tlab));
    TEST_OK(vka_model_backward(cmd, m, BATCH, dlogits));
    TEST_OK(vka_sgd_step(cmd, &SGD, m->param_floats, m->params, buf, m->grads));
    test_run(cmd);

    /* The reference step. */
    ref_state r;
    ref_state_alloc(m, &r);
    for (uint64_t k = 0; k < m->param_floats; k++) r.params[k] = p0[k];
    for (uint64_t k = 0; k < m->bn_floats; k++) r.bn[k] = bn0[k];
    double *xd = test_to_double(x, xn);
    int ri[BATCH], li[BATCH];
    for (int b = 0; b < BATCH; b++) ri[b] = ref_idx[b], li[b] = labels[b];
    ref_step(m, sc, &r, xd, ri, li);
    free(xd);

    /* Node by node, in the order they were computed, so the first failure names the
     * op where things went wrong: activations forward, output gradients backward
     * (the last node's is dlogits). */
    char what[160], label[96];
    const uint32_t last = m->node_count - 1;
    uint32_t coef_bns = 0;
    for (uint32_t i = 0; i < m->node_count; i++) {
        node_label(m, i, label, sizeof label);
        snprintf(what, sizeof what, "%s output", label);
        if (i == 0 && input_packed) { /* the anchored input, written packed into the first conv's scratch */
            check_packed(what, ctx, &in_layout, r.y[0], BATCH, m->nodes[0].c);
        } else if (m->nodes[i].packed_consumer >= 0) { /* written packed into the next conv's scratch */
            vka_packed_layout l = vka_model_bn_y_layout(m, (int)i, BATCH);
            check_packed(what, ctx, &l, r.y[i], BATCH, m->nodes[i].c);
            if (vka_node_is_tail(&m->nodes[i]) || m->nodes[i].consumers > 1) /* NCHW too */
                check(what, ctx, m->nodes[i].y, r.y[i], node_count_of(&m->nodes[i]));
        } else if (vka_tensor_present(m->nodes[i].coef)) {
            /* Never written: the max pool after it applies its coefficients (checked with the
             * pool's output); here they are: coef[2c] = (mean, invstd, gamma invstd, beta). */
            check_coefficients(what, ctx, m, i, r.y[i]);
            coef_bns++;
        } else {
            check(what, ctx, i == 0 ? input : m->nodes[i].y, r.y[i], node_count_of(&m->nodes[i]));
        }
    }
    /* cnn's two BNs before its max pools hand them their coefficients (unless switched off). */
    if (!getenv("VKANCHOR_POOL_BN") && sc->kind == VKA_MODEL_CNN && coef_bns != 2)
        fail_msg("cnn: %u BNs handed their max pool the coefficients, not 2", coef_bns);
    check("logits", ctx, vka_model_logits(m, BATCH), r.y[last], (size_t)BATCH * NC);
    check("dlogits", ctx, dlogits, r.dlogits, (size_t)BATCH * NC);
    for (uint32_t i = last; i > 0; i--) {
        node_label(m, i, label, sizeof label);
        snprintf(what, sizeof what, "%s output gradient", label);
        if (m->nodes[i].dy_packed) {
            vka_packed_layout l = vka_model_conv_dy_layout(m, (int)i, BATCH);
            check_packed(what, ctx, &l, r.dy[i], BATCH, m->nodes[i].c);
        } else if (i == last) {
            check(what, ctx, dlogits, r.dy[i], node_count_of(&m->nodes[i]));
        } else {
            check_grad(what, ctx, m, i, r.dy[i]);
        }
    }
    float *st = test_read(ctx, stats, 2 + BATCH);
    expect_close("loss", st + VKA_CE_STAT_LOSS, &r.loss, 1);
    expect_close("max probabilities", st + VKA_CE_STAT_MAXPROB, r.maxprob, BATCH);
    if (st[VKA_CE_STAT_CORRECT] != (float)r.ncorrect)
        fail_msg("correct predictions: GPU %g, reference %d", st[VKA_CE_STAT_CORRECT], r.ncorrect);
    free(st);

    /* Parameters: gradient, updated value, momentum buffer, by name. */
    for (uint32_t i = 0; i < m->param_count; i++) {
        const vka_param *p = &m->param_info[i];
        snprintf(what, sizeof what, "gradient of %s", p->name);
        check(what, ctx, vka_model_param(m, m->grads, i), r.grads + p->offset, p->count);
        snprintf(what, sizeof what, "updated %s", p->name);
        check(what, ctx, vka_model_param(m, m->params, i), r.params + p->offset, p->count);
        snprintf(what, sizeof what, "momentum buffer of %s", p->name);
        check(what, ctx, vka_model_param(m, buf, i), r.buf + p->offset, p->count);
    }
    float *all = test_read(ctx, m->grads, m->param_floats);
    check_padding(m, "gradient tensor", all);
    float *updated = test_read(ctx, m->params, m->param_floats);
    check_padding(m, "parameter tensor", updated);
    /* An evaluation forward after the step (running statistics, the packed x the BNs write for
     * their convs in evaluation too) against the reference's. */
    TEST_OK(vka_cmd_reset(cmd));
    /* (the NCHW input, which a packed step did not write, as an evaluation builds its own) */
    if (input_packed) TEST_OK(vka_anchor_train_input(cmd, &as, input, tx, tidx, sc->masked));
    TEST_OK(vka_model_forward(cmd, m, &(vka_forward_desc){.n = BATCH}, input));
    test_run(cmd);
    float *logits = test_read(ctx, vka_model_logits(m, BATCH), (size_t)BATCH * NC);
    double *ref_logits = ref_eval_logits(m, &r);
    expect_close("evaluation logits after the step", logits, ref_logits, (size_t)BATCH * NC);
    free(ref_logits);
    if (sc->after) {
        *sc->after = malloc(m->param_floats * 8 + (size_t)BATCH * NC * 4);
        memcpy(*sc->after, all, m->param_floats * 4);
        memcpy(*sc->after + m->param_floats, updated, m->param_floats * 4);
        memcpy(*sc->after + 2 * m->param_floats, logits, (size_t)BATCH * NC * 4);
    }
    free(logits);
    free(all), free(updated);

    /* BN running statistics: moved as the reference says, or untouched when masked. */
    float *bn = test_read(ctx, m->bn_stats, m->bn_floats);
    expect_close("BN running statistics", bn, r.bn, m->bn_floats);
    if (sc->masked && memcmp(bn, bn0, m->bn_floats * 4) != 0)
        fail_msg("masked batch changed the BN running statistics");
    free(bn);

    /* On lavapipe with the default kernels, the convs' dy comes packed from the BN after them. */
    uint32_t packed = 0, packed_y = 0, skips = 0, accumulates = 0, shared_x = 0;
    for (uint32_t i = 0; i < m->node_count; i++) {
        packed += m->nodes[i].dy_packed != 0, packed_y += m->nodes[i].packed_consumer >= 0;
        skips += m->nodes[i].dx_skip_empty_phases != 0, accumulates += m->nodes[i].dx_accumulate != 0;
        shared_x += m->nodes[i].reads_shared_x != 0;
    }
    if (sc->packed_failed) {
        for (uint32_t i = 0; i < ctx->kernels.capacity; i++) {
            const vka_kernel *k = ctx->kernels.table[i];
            if (k && k->desc.name && strncmp(k->desc.name, "conv2d_", 7) == 0 && strstr(k->desc.name, "pack"))
                fail_msg("after a failed self-test the step ran %s", k->desc.name);
        }
        if (packed || packed_y || shared_x || input_packed)
            fail_msg("after a failed self-test: %u convs with packed dy, %u BNs with packed y, %u shared x, packed "
                     "input %d (expected none)", packed, packed_y, shared_x, input_packed);
    } else if (vka_context_device(ctx)->type == VKA_DEVICE_CPU && vka_conv2d_packed_device(ctx) &&
        !getenv("VKANCHOR_CONV") && !getenv("VKANCHOR_CONV_PACKED")) {
        if (packed == 0 || packed_y == 0)
            fail_msg("on a CPU device: %u convs took their dy packed from the BN after them, %u BNs wrote their y "
                     "packed for the conv after them (expected some of each)", packed, packed_y);
        /* resnet20's two projection blocks: the projection writes its input gradient's phase with
         * taps, conv1 adds into it (the cnn has none). */
        uint32_t want = sc->kind == VKA_MODEL_RESNET20 ? 2 : 0;
        if (skips != want || accumulates != want)
            fail_msg("on a CPU device: %u convs skip their empty dx phases and %u add into dx (expected %u each)",
                     skips, accumulates, want);
        /* ... and each projection reads its block's input from conv1's packed copy, which the
         * block tail before them writes (separate BN, add and ReLU nodes write none). */
        uint32_t want_shared = sc->unfused ? 0 : want;
        if (shared_x != want_shared && !getenv("VKANCHOR_CONV_SHARED_X"))
            fail_msg("on a CPU device: %u convs read x from another conv's packed copy (expected %u)", shared_x,
                     want_shared);
    }
    print_message("  %s, %u nodes (%u convs with packed dy, %u BNs with packed y), %u parameters: largest "
                  "normalized error %.2e (%s), loss %.6f\n", vka_model_kind_name(sc->kind), m->node_count, packed,
                  packed_y, m->param_count, worst, worst_what, r.loss);
    ref_state_free(m, &r);
    free(x), free(p0), free(bn0);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    vka_model_destroy(m);
    test_context_finish(ctx);
}

static void cnn_unmasked_step_matches_the_composed_reference(void **state)
{
    (void)state;
    run_case(&(step_case){.kind = VKA_MODEL_CNN, .size = 12, .masked = 0, .seed = 11});
}

static void cnn_masked_step_matches_the_composed_reference_and_keeps_bn_statistics(void **state)
{
    (void)state;
    run_case(&(step_case){.kind = VKA_MODEL_CNN, .size = 12, .masked = 1, .seed = 12});
}

static void resnet20_unmasked_step_matches_the_composed_reference(void **state)
{
    (void)state;
    run_case(&(step_case){.kind = VKA_MODEL_RESNET20, .size = 8, .masked = 0, .seed = 21});
}

static void resnet20_masked_step_matches_the_composed_reference_and_keeps_bn_statistics(void **state)
{
    (void)state;
    run_case(&(step_case){.kind = VKA_MODEL_RESNET20, .size = 8, .masked = 1, .seed = 22});
}

/* Where the packed kernels failed their start-up self-test, the model plans and runs without
 * them (the texel and tiled kernels) and its step still matches the reference. */
static void a_failed_packed_self_test_leaves_a_correct_step_on_the_fp32_kernels(void **state)
{
    (void)state;
    run_case(&(step_case){.kind = VKA_MODEL_CNN, .size = 12, .masked = 1, .seed = 13, .packed_failed = 1});
}

/* ---- the architectures, written out independently of model.c --------------------- */

/* What PyTorch's state_dict of scripts/torch_models.py holds (its trainable parameters, in
 * order): a name and a shape, appended here as that file builds them. */
typedef struct expected_params {
    char name[80][40];
    uint32_t shape[80][4], dims[80], n;
} expected_params;

static void expect_param(expected_params *e, const char *name, uint32_t dims, uint32_t a, uint32_t b, uint32_t c,
                         uint32_t d)
{
    assert_true(e->n < 80);
    snprintf(e->name[e->n], sizeof e->name[0], "%s", name);
    e->dims[e->n] = dims;
    uint32_t s[4] = {a, b, c, d};
    memcpy(e->shape[e->n], s, sizeof s);
    e->n++;
}

static void expect_conv_bn(expected_params *e, const char *conv, const char *bn, uint32_t cin, uint32_t cout,
                           uint32_t k)
{
    char name[40];
    snprintf(name, sizeof name, "%s.weight", conv), expect_param(e, name, 4, cout, cin, k, k);
    snprintf(name, sizeof name, "%s.weight", bn), expect_param(e, name, 1, cout, 0, 0, 0);
    snprintf(name, sizeof name, "%s.bias", bn), expect_param(e, name, 1, cout, 0, 0, 0);
}

/* ResNet(in_ch, classes, stem, stages, blocks of 2 per stage for resnet18, 3 for resnet20). */
static void expect_resnet(expected_params *e, uint32_t in_ch, uint32_t classes, uint32_t stem, const uint32_t *widths,
                          int stages, int blocks)
{
    expect_conv_bn(e, "conv1", "bn1", in_ch, stem, 3);
    uint32_t c = stem;
    int layer = 0;
    for (int s = 0; s < stages; s++)
        for (int b = 0; b < blocks; b++, layer++) {
            uint32_t stride = s > 0 && b == 0 ? 2 : 1, w = widths[s];
            char conv[40], bn[40];
            snprintf(conv, sizeof conv, "layers.%d.conv1", layer), snprintf(bn, sizeof bn, "layers.%d.bn1", layer);
            expect_conv_bn(e, conv, bn, c, w, 3);
            snprintf(conv, sizeof conv, "layers.%d.conv2", layer), snprintf(bn, sizeof bn, "layers.%d.bn2", layer);
            expect_conv_bn(e, conv, bn, w, w, 3);
            if (stride != 1 || c != w) {
                snprintf(conv, sizeof conv, "layers.%d.shortcut.0", layer);
                snprintf(bn, sizeof bn, "layers.%d.shortcut.1", layer);
                expect_conv_bn(e, conv, bn, c, w, 1);
            }
            c = w;
        }
    expect_param(e, "fc.weight", 2, classes, c, 0, 0);
    expect_param(e, "fc.bias", 1, classes, 0, 0, 0);
}

/* Each model's parameters against PyTorch's names and shapes, and the spatial size its
 * classifier's average pool sees: an architecture error in model.c (a width, a stride, a
 * shortcut where there should be none) that the composed reference, which walks the model's
 * own graph, would copy. */
static void models_have_the_pytorch_parameters_and_downsampling(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    static const uint32_t r20[] = {16, 32, 64}, r18[] = {64, 128, 256, 512};
    struct { vka_model_kind kind; uint32_t in_ch, size, pooled; } models[] = {
        {VKA_MODEL_CNN, 2, 28, 7}, {VKA_MODEL_RESNET20, 2, 28, 7}, {VKA_MODEL_RESNET18, 6, 32, 4}};
    for (int m_i = 0; m_i < 3; m_i++) {
        expected_params e = {.n = 0};
        if (models[m_i].kind == VKA_MODEL_CNN) {
            static const uint32_t chans[] = {32, 32, 64, 64}, index[] = {0, 3, 7, 10}; /* nn.Sequential slots */
            uint32_t c = models[m_i].in_ch;
            for (int i = 0; i < 4; i++) {
                char conv[40], bn[40];
                snprintf(conv, sizeof conv, "features.%u", index[i]), snprintf(bn, sizeof bn, "features.%u", index[i] + 1);
                expect_conv_bn(&e, conv, bn, c, chans[i], 3);
                c = chans[i];
            }
            expect_param(&e, "fc.weight", 2, 10, 64, 0, 0);
            expect_param(&e, "fc.bias", 1, 10, 0, 0, 0);
        } else if (models[m_i].kind == VKA_MODEL_RESNET20) {
            expect_resnet(&e, models[m_i].in_ch, 10, 16, r20, 3, 3);
        } else {
            expect_resnet(&e, models[m_i].in_ch, 10, 64, r18, 4, 2);
        }
        vka_model *m;
        TEST_OK(vka_model_create(ctx, &(vka_model_desc){.kind = models[m_i].kind, .in_channels = models[m_i].in_ch,
                                                       .height = models[m_i].size, .width = models[m_i].size,
                                                       .classes = 10, .batch = 1}, &m));
        const char *kind = vka_model_kind_name(models[m_i].kind);
        if (m->param_count != e.n) fail_msg("%s: %u parameters, PyTorch has %u", kind, m->param_count, e.n);
        for (uint32_t i = 0; i < e.n; i++) {
            const vka_param *p = &m->param_info[i];
            if (strcmp(p->name, e.name[i]) != 0 || p->dims != e.dims[i] ||
                memcmp(p->shape, e.shape[i], e.dims[i] * sizeof(uint32_t)) != 0)
                fail_msg("%s parameter %u: %s (%u dims: %u %u %u %u), PyTorch: %s (%u dims: %u %u %u %u)", kind, i,
                         p->name, p->dims, p->shape[0], p->shape[1], p->shape[2], p->shape[3], e.name[i], e.dims[i],
                         e.shape[i][0], e.shape[i][1], e.shape[i][2], e.shape[i][3]);
        }
        int pools = 0;
        for (uint32_t i = 0; i < m->node_count; i++)
            if (m->nodes[i].op == VKA_NODE_GAP) {
                const vka_node *in = &m->nodes[m->nodes[i].in[0]];
                if (in->h != models[m_i].pooled || in->w != models[m_i].pooled)
                    fail_msg("%s: the average pool sees %ux%u, expected %ux%u", kind, in->h, in->w,
                             models[m_i].pooled, models[m_i].pooled);
                pools++;
            }
        assert_int_equal(pools, 1);
        vka_model_destroy(m);
    }
    test_context_finish(ctx);
}

/* The fused block tails (BN + residual + ReLU in one pass) round exactly as the BN, add and
 * ReLU nodes do one after another: the same step, and an evaluation forward after it, give
 * the same bits either way. */
static void resnet20_fused_block_tails_give_the_bits_of_separate_bn_add_relu(void **state)
{
    (void)state;
    float *fused = NULL, *unfused = NULL;
    run_case(&(step_case){.kind = VKA_MODEL_RESNET20, .size = 8, .masked = 0, .seed = 23, .after = &fused});
    run_case(&(step_case){.kind = VKA_MODEL_RESNET20, .size = 8, .masked = 0, .seed = 23, .unfused = 1,
                          .after = &unfused});
    vka_context *ctx = test_context();
    vka_model *m;
    TEST_OK(vka_model_create(ctx, &(vka_model_desc){.kind = VKA_MODEL_RESNET20, .in_channels = 2, .height = 8,
                                                   .width = 8, .classes = 10, .batch = BATCH}, &m));
    for (uint64_t k = 0; k < 2 * m->param_floats + BATCH * 10; k++)
        if (k >= 2 * m->param_floats && memcmp(&fused[k], &unfused[k], 4) != 0)
            fail_msg("evaluation logit %llu after the step: fused %.9g, unfused %.9g",
                     (unsigned long long)(k - 2 * m->param_floats), fused[k], unfused[k]);
        else if (memcmp(&fused[k], &unfused[k], 4) != 0)
            fail_msg("%s float %llu: fused %.9g, unfused %.9g", k < m->param_floats ? "gradient" : "updated parameter",
                     (unsigned long long)(k % m->param_floats), fused[k], unfused[k]);
    vka_model_destroy(m);
    test_context_finish(ctx);
    free(fused), free(unfused);
}

/* A batch whose buffers exceed one storage binding is refused when the model is made, naming the
 * largest batch that fits; that batch records a whole training step (every dispatch checks its
 * bindings against the device's limits: an estimate too low fails here) and one row more is
 * refused with the same message. Recorded, not run: the point is the binding check. The range
 * is cut to 16 MiB (VKANCHOR_MAX_STORAGE_RANGE) so that the largest batch is small on every
 * device (a GPU's 4 GiB range would make it tens of GB of activations). */
static void model_refuses_a_batch_past_the_binding_limit_and_takes_the_largest_that_fits(void **state)
{
    (void)state;
    setenv("VKANCHOR_MAX_STORAGE_RANGE", "16777216", 1);
    vka_context *ctx = test_context();
    unsetenv("VKANCHOR_MAX_STORAGE_RANGE");
    assert_true(ctx->limits.max_storage_buffer_range <= 16777216);
    const vka_model_kind kinds[2] = {VKA_MODEL_CNN, VKA_MODEL_RESNET20};
    for (int ki = 0; ki < 2; ki++) {
        vka_model_desc d = {.kind = kinds[ki], .in_channels = 2, .height = 28, .width = 28, .classes = 10,
                            .batch = 1u << 22};
        vka_model *m = NULL;
        assert_int_equal(vka_model_create(ctx, &d, &m), VKA_ERROR_LIMIT_EXCEEDED);
        assert_null(m);
        const char *msg = vka_context_last_error(ctx), *at = strstr(msg, "at most ");
        unsigned fit = 0;
        if (!at || sscanf(at, "at most %u rows", &fit) != 1 || !strstr(msg, "--batch-size"))
            fail_msg("the refusal names no batch that fits and no flag: %s", msg);
        assert_true(fit >= 2 && fit < d.batch);
        d.batch = fit + 1;
        assert_int_equal(vka_model_create(ctx, &d, &m), VKA_ERROR_LIMIT_EXCEEDED);
        d.batch = fit;
        TEST_OK(vka_model_create(ctx, &d, &m));
        vka_arena *arena;
        TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "largest batch"}, &arena));
        vka_tensor input, dlogits;
        TEST_OK(vka_arena_alloc(arena, (uint64_t)fit * 2 * 28 * 28 * 4, &input));
        TEST_OK(vka_arena_alloc(arena, (uint64_t)fit * 10 * 4, &dlogits));
        vka_cmd *cmd;
        TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
        TEST_OK(vka_model_forward(cmd, m, &(vka_forward_desc){.n = fit, .training = 1, .update_bn_stats = 1}, input));
        TEST_OK(vka_model_backward(cmd, m, fit, dlogits));
        assert_int_equal(vka_cmd_status(cmd), VKA_SUCCESS);
        vka_cmd_destroy(cmd);
        vka_arena_destroy(arena);
        vka_model_destroy(m);
    }
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cnn_unmasked_step_matches_the_composed_reference),
        cmocka_unit_test(cnn_masked_step_matches_the_composed_reference_and_keeps_bn_statistics),
        cmocka_unit_test(resnet20_unmasked_step_matches_the_composed_reference),
        cmocka_unit_test(resnet20_masked_step_matches_the_composed_reference_and_keeps_bn_statistics),
        cmocka_unit_test(resnet20_fused_block_tails_give_the_bits_of_separate_bn_add_relu),
        cmocka_unit_test(a_failed_packed_self_test_leaves_a_correct_step_on_the_fp32_kernels),
        cmocka_unit_test(models_have_the_pytorch_parameters_and_downsampling),
        cmocka_unit_test(model_refuses_a_batch_past_the_binding_limit_and_takes_the_largest_that_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
