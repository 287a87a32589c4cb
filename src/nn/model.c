/* The model graph: building cnn / resnet20 / resnet18, laying out parameters,
 * and recording forward and backward passes from the op library. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "nn/batchnorm.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/ops_internal.h"
#include "nn/pointwise.h"
#include "nn/pool.h"

#define PARAM_ALIGN_FLOATS 64 /* 256 bytes: every parameter slice can be bound on its own */

const char *vka_model_kind_name(vka_model_kind kind)
{
    static const char *const names[] = {"cnn", "resnet20", "resnet18"};
    return (unsigned)kind < 3 ? names[kind] : "unknown";
}

int vka_model_kind_parse(const char *name, vka_model_kind *out)
{
    for (int k = 0; k < 3; k++)
        if (strcmp(name, vka_model_kind_name((vka_model_kind)k)) == 0) {
            *out = (vka_model_kind)k;
            return 1;
        }
    return 0;
}

/* ---- graph building ------------------------------------------------------------ */

typedef struct builder {
    vka_model *m;
    int failed;
} builder;

static int add_param(builder *b, const char *name, const uint32_t *shape, uint32_t dims, uint32_t fan_in, int gamma)
{
    vka_model *m = b->m;
    if (m->param_count == m->param_cap) {
        uint32_t cap = m->param_cap ? 2 * m->param_cap : 32;
        vka_param *p = realloc(m->param_info, cap * sizeof *p);
        if (!p) return b->failed = 1, -1;
        m->param_info = p;
        m->param_cap = cap;
    }
    vka_param *p = &m->param_info[m->param_count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->count = 1;
    for (uint32_t i = 0; i < dims; i++) p->shape[i] = shape[i], p->count *= shape[i];
    p->dims = dims;
    p->offset = m->param_floats;
    p->fan_in = fan_in;
    p->is_gamma = gamma;
    m->param_floats += (p->count + PARAM_ALIGN_FLOATS - 1) / PARAM_ALIGN_FLOATS * PARAM_ALIGN_FLOATS;
    return (int)m->param_count++;
}

static int add_node(builder *b, vka_node_op op, int in0, int in1, uint32_t c, uint32_t h, uint32_t w)
{
    vka_model *m = b->m;
    if (m->node_count == m->node_cap) {
        uint32_t cap = m->node_cap ? 2 * m->node_cap : 64;
        vka_node *n = realloc(m->nodes, cap * sizeof *n);
        if (!n) return b->failed = 1, -1;
        m->nodes = n;
        m->node_cap = cap;
    }
    vka_node *n = &m->nodes[m->node_count];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->in[0] = in0;
    n->in[1] = in1;
    n->c = c, n->h = h, n->w = w;
    n->weight = n->bias = n->bn_index = n->grad_alias = -1;
    if (in0 >= 0) m->nodes[in0].consumers++;
    if (in1 >= 0) m->nodes[in1].consumers++;
    return (int)m->node_count++;
}

static int conv(builder *b, int in, uint32_t k, uint32_t kernel, uint32_t stride, uint32_t pad, const char *name)
{
    if (in < 0) return -1;
    const vka_node *x = &b->m->nodes[in];
    uint32_t h = (x->h + 2 * pad - kernel) / stride + 1, w = (x->w + 2 * pad - kernel) / stride + 1;
    uint32_t cin = x->c;
    int id = add_node(b, VKA_NODE_CONV, in, -1, k, h, w);
    if (id < 0) return -1;
    vka_node *n = &b->m->nodes[id];
    n->k = kernel, n->stride = stride, n->pad = pad;
    n->weight = add_param(b, name, (uint32_t[]){k, cin, kernel, kernel}, 4, cin * kernel * kernel, 0);
    return id;
}

/* A BN layer's parameters and running statistics, in PyTorch's order (which is why they may
 * come before the node itself: see basic_block). */
typedef struct bn_layer {
    int weight, bias, bn_index;
} bn_layer;

static bn_layer bn_params(builder *b, uint32_t c, const char *name)
{
    char pname[32];
    bn_layer l;
    snprintf(pname, sizeof pname, "%s.weight", name);
    l.weight = add_param(b, pname, &c, 1, 0, 1);
    snprintf(pname, sizeof pname, "%s.bias", name);
    l.bias = add_param(b, pname, &c, 1, 0, 0);
    l.bn_index = (int)b->m->bn_count++;
    b->m->bn_floats += 2 * (uint64_t)c;
    return l;
}

/* BN of node `in` (then + node `residual` unless -1, then ReLU if relu). */
static int bn_node(builder *b, int in, int residual, int relu, bn_layer l)
{
    const vka_node *x = &b->m->nodes[in];
    int id = add_node(b, VKA_NODE_BN, in, residual, x->c, x->h, x->w);
    if (id < 0) return -1;
    vka_node *n = &b->m->nodes[id];
    n->weight = l.weight, n->bias = l.bias, n->bn_index = l.bn_index;
    n->relu = relu;
    return id;
}

static int bn(builder *b, int in, int relu, const char *name)
{
    if (in < 0) return -1;
    return bn_node(b, in, -1, relu, bn_params(b, b->m->nodes[in].c, name));
}

static int simple(builder *b, vka_node_op op, int in0, int in1)
{
    if (in0 < 0) return -1;
    const vka_node *x = &b->m->nodes[in0];
    return add_node(b, op, in0, in1, x->c, x->h, x->w);
}

static int maxpool2(builder *b, int in)
{
    const vka_node *x = &b->m->nodes[in];
    int id = add_node(b, VKA_NODE_MAXPOOL, in, -1, x->c, x->h / 2, x->w / 2);
    if (id >= 0) b->m->nodes[id].k = 2, b->m->nodes[id].stride = 2;
    return id;
}

static int head(builder *b, int in, uint32_t classes)
{
    const vka_node *x = &b->m->nodes[in];
    uint32_t c = x->c;
    int g = add_node(b, VKA_NODE_GAP, in, -1, c, 1, 1);
    int id = add_node(b, VKA_NODE_LINEAR, g, -1, classes, 1, 1);
    if (id < 0) return -1;
    b->m->nodes[id].weight = add_param(b, "fc.weight", (uint32_t[]){classes, c}, 2, c, 0);
    b->m->nodes[id].bias = add_param(b, "fc.bias", &classes, 1, c, 0);
    return id;
}

/* conv-bn-relu, conv-bn, (1x1 conv-bn projection), add, relu, in PyTorch's parameter order.
 * With `fuse` the tail is one node: bn2 of conv2, + shortcut, ReLU (its parameters still
 * before the projection's); else bn2, add and relu nodes. */
static int basic_block(builder *b, int in, uint32_t width, uint32_t stride, const char *name, int fuse)
{
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%s.conv1.weight", name);
    int y = bn(b, conv(b, in, width, 3, stride, 1, n1), 1, (snprintf(n2, sizeof n2, "%s.bn1", name), n2));
    snprintf(n1, sizeof n1, "%s.conv2.weight", name);
    int c2 = conv(b, y, width, 3, 1, 1, n1);
    if (c2 < 0) return -1;
    snprintf(n2, sizeof n2, "%s.bn2", name);
    bn_layer bn2 = bn_params(b, width, n2);
    int shortcut = in;
    if (stride != 1 || b->m->nodes[in].c != width) {
        snprintf(n1, sizeof n1, "%s.shortcut.0.weight", name);
        snprintf(n2, sizeof n2, "%s.shortcut.1", name);
        shortcut = bn(b, conv(b, in, width, 1, stride, 0, n1), 0, n2);
    }
    if (shortcut < 0) return -1;
    if (fuse) return bn_node(b, c2, shortcut, 1, bn2);
    return simple(b, VKA_NODE_RELU, simple(b, VKA_NODE_ADD, bn_node(b, c2, -1, 0, bn2), shortcut), -1);
}

static void build_graph(builder *b)
{
    const vka_model_desc *d = &b->m->desc;
    int x = add_node(b, VKA_NODE_INPUT, -1, -1, d->in_channels, d->height, d->width);
    if (d->kind == VKA_MODEL_CNN) {
        static const uint32_t chans[4] = {32, 32, 64, 64};
        for (int i = 0; i < 4; i++) {
            char cn[48], bnn[48];
            snprintf(cn, sizeof cn, "features.%d.weight", 3 * i + (i >= 2));
            snprintf(bnn, sizeof bnn, "features.%d", 3 * i + 1 + (i >= 2));
            x = bn(b, conv(b, x, chans[i], 3, 1, 1, cn), 1, bnn);
            if (i == 1 || i == 3) x = maxpool2(b, x);
        }
    } else {
        int r18 = d->kind == VKA_MODEL_RESNET18;
        /* VKANCHOR_FUSE_RESIDUAL=0: the block tails as separate BN, add and ReLU nodes (A/B runs;
         * the tests check both give the same bits). */
        int fuse = !vka_switch_off("VKANCHOR_FUSE_RESIDUAL");
        uint32_t stem = r18 ? 64 : 16, stages = r18 ? 4 : 3, blocks = r18 ? 2 : 3;
        x = bn(b, conv(b, x, stem, 3, 1, 1, "conv1.weight"), 1, "bn1");
        uint32_t width = stem;
        int index = 0;
        for (uint32_t s = 0; s < stages; s++, width *= 2)
            for (uint32_t i = 0; i < blocks; i++) {
                char name[32];
                snprintf(name, sizeof name, "layers.%d", index++);
                x = basic_block(b, x, width, i == 0 && s > 0 ? 2 : 1, name, fuse);
            }
    }
    head(b, x, d->classes);
}

/* ---- allocation ----------------------------------------------------------------- */

static uint64_t node_floats(const vka_model *m, const vka_node *n)
{
    return (uint64_t)m->desc.batch * n->c * n->h * n->w;
}

static vka_conv2d_shape conv_shape(const vka_model *m, const vka_node *n, uint32_t batch)
{
    const vka_node *x = &m->nodes[n->in[0]];
    return (vka_conv2d_shape){.n = batch, .c = x->c, .h = x->h, .w = x->w, .k = n->c, .r = n->k, .s = n->k,
                              .stride = n->stride, .pad = n->pad, .n_capacity = m->desc.batch};
}

static vka_batchnorm_desc bn_desc(const vka_node *n, uint32_t batch)
{
    return (vka_batchnorm_desc){.n = batch, .c = n->c, .hw = n->h * n->w, .relu = n->relu};
}

/* The gradient a node hands its residual input(s): an add's dy; a block tail's dy masked by
 * its ReLU (dz), or its dy without one. */
static vka_tensor residual_grad(const vka_node *n)
{
    return vka_node_is_tail(n) && n->relu ? n->dz : n->dy;
}

static vka_result allocate(vka_model *m)
{
    vka_context *ctx = m->ctx;
    vka_result rc = VKA_SUCCESS;
    VKA_CHECK(vka_arena_create(ctx, &(vka_arena_desc){.name = "parameters"}, &m->param_arena));
    VKA_CHECK(vka_arena_create(ctx, &(vka_arena_desc){.name = "activations"}, &m->act_arena));
    VKA_CHECK(vka_arena_alloc(m->param_arena, m->param_floats * 4, &m->params));
    VKA_CHECK(vka_arena_alloc(m->param_arena, m->param_floats * 4, &m->grads));
    VKA_CHECK(vka_arena_alloc(m->param_arena, m->bn_floats * 4, &m->bn_stats));
    uint64_t largest = 0;
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        uint64_t bytes = node_floats(m, n) * 4;
        if (bytes > largest) largest = bytes;
        /* The first conv's input is the data: no gradient wanted there. */
        n->needs_dx = n->in[0] > 0;
        if (n->op != VKA_NODE_INPUT) VKA_CHECK(vka_arena_alloc(m->act_arena, bytes, &n->y));
        if (n->op == VKA_NODE_BN) {
            /* A block tail's masked gradient: its residual input's and its BN backward's dy. */
            if (vka_node_is_tail(n) && n->relu) VKA_CHECK(vka_arena_alloc(m->act_arena, bytes, &n->dz));
            VKA_CHECK(vka_arena_alloc(m->act_arena, n->c * 4, &n->save_mean));
            VKA_CHECK(vka_arena_alloc(m->act_arena, n->c * 4, &n->save_invstd));
            vka_batchnorm_desc d = bn_desc(n, m->desc.batch);
            VKA_CHECK(vka_arena_alloc(m->act_arena, vka_batchnorm_scratch_bytes(ctx, &d), &n->scratch));
        }
        if (n->op == VKA_NODE_MAXPOOL) VKA_CHECK(vka_arena_alloc(m->act_arena, bytes, &n->argmax));
        if (n->op == VKA_NODE_CONV) {
            vka_conv2d_shape s = conv_shape(m, n, m->desc.batch);
            VKA_CHECK(vka_arena_alloc(m->act_arena, vka_conv2d_scratch_bytes(ctx, &s), &n->scratch));
            /* Zeros once: every call passes n_capacity = the model's batch, so the packed regions
             * never move and the borders of the packed dy stay zero from here on. */
            VKA_CHECK(vka_fill(ctx, n->scratch, 0));
        }
    }
    /* A BN read by one conv on the packed path hands that conv its x already packed;
     * a block tail (read by a shortcut too) hands its first conv consumer a packed copy beside
     * its NCHW y, where its shape allows. */
    for (uint32_t i = 0; i < m->node_count; i++) m->nodes[i].packed_consumer = -1;
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        if (n->op != VKA_NODE_CONV || m->nodes[n->in[0]].op != VKA_NODE_BN) continue;
        vka_node *bn = &m->nodes[n->in[0]];
        vka_conv2d_shape s = conv_shape(m, n, m->desc.batch);
        vka_batchnorm_desc d = bn_desc(bn, m->desc.batch);
        vka_packed_layout l;
        int tail = vka_node_is_tail(bn);
        /* Read by this conv alone: packed only; by others too (a tail, or resnet's stem BN read by
         * its first block's conv and shortcut): packed beside NCHW, where the shape allows. */
        int both = tail || bn->consumers > 1;
        int takes = both ? bn->packed_consumer < 0 && vka_batchnorm_add_packed_y_fits(ctx, &d) : 1;
        if (takes && vka_conv2d_x_packed_layout(ctx, &s, n->scratch, &l)) bn->packed_consumer = (int)i;
    }
    /* A conv reading a BN that writes its packed y for another conv reads that copy, where its
     * shape allows, instead of packing x again (a projection shortcut: its block's input packed
     * with the first conv's border of 1, read from row and column 1). */
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        n->reads_shared_x = 0;
        if (n->op != VKA_NODE_CONV || m->nodes[n->in[0]].op != VKA_NODE_BN) continue;
        int owner = m->nodes[n->in[0]].packed_consumer;
        if (owner < 0 || owner == (int)i || vka_switch_off("VKANCHOR_CONV_SHARED_X")) continue;
        vka_conv2d_shape s = conv_shape(m, n, m->desc.batch);
        vka_packed_layout l = vka_model_bn_y_layout(m, n->in[0], m->desc.batch);
        n->reads_shared_x = vka_conv2d_x_shared_fits(ctx, &s, n->scratch, &l);
    }
    /* A conv read by one BN on the packed path writes that BN's batch statistics in its training
     * forward (the BN's statistics pass folded into the conv's epilogue: perf-log 53). */
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        if (n->op != VKA_NODE_BN || m->nodes[n->in[0]].op != VKA_NODE_CONV) continue;
        vka_node *conv = &m->nodes[n->in[0]];
        vka_conv2d_shape s = conv_shape(m, conv, m->desc.batch);
        uint32_t groups = conv->consumers == 1 ? vka_conv2d_stats_groups(ctx, &s, conv->scratch) : 0;
        if (groups) VKA_CHECK(vka_arena_alloc(m->act_arena, (uint64_t)n->c * groups * 16, &n->stats));
    }
    /* A BN read by one max pool alone hands the pool its coefficients instead of its output. */
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        if (n->op != VKA_NODE_BN || vka_node_is_tail(n) || n->consumers != 1 || vka_switch_off("VKANCHOR_POOL_BN"))
            continue;
        for (uint32_t j = i + 1; j < m->node_count; j++)
            if (m->nodes[j].in[0] == (int)i && m->nodes[j].op == VKA_NODE_MAXPOOL)
                VKA_CHECK(vka_arena_alloc(m->act_arena, (uint64_t)n->c * 32, &n->coef));
    }
    /* A conv read by one BN on the packed path takes its dy from that BN already packed. */
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        if (n->op != VKA_NODE_BN || m->nodes[n->in[0]].op != VKA_NODE_CONV) continue;
        vka_node *conv = &m->nodes[n->in[0]];
        vka_conv2d_shape s = conv_shape(m, conv, m->desc.batch);
        vka_packed_layout l;
        conv->dy_packed = conv->consumers == 1 && vka_conv2d_dy_packed_layout(ctx, &s, conv->scratch, &l);
    }
    /* An input read by exactly two convs of one stride on the packed path (a projection block's
     * input: its 3x3 conv1 and its 1x1 projection) gets its gradient from both without a
     * temporary: the later conv, whose backward runs first, writes only its phases with taps,
     * and the earlier one adds its part there and overwrites the rest. */
    for (uint32_t i = 0; i < m->node_count; i++) {
        if (m->nodes[i].consumers != 2) continue;
        int pair[2], convs = 0, others = 0;
        for (uint32_t j = i + 1; j < m->node_count; j++) {
            const vka_node *c = &m->nodes[j];
            int reads = (c->in[0] == (int)i) + (c->in[1] == (int)i);
            if (!reads) continue;
            if (c->op == VKA_NODE_CONV && reads == 1 && c->in[0] == (int)i && convs < 2) pair[convs++] = (int)j;
            else others++;
        }
        if (convs != 2 || others) continue;
        vka_node *first = &m->nodes[pair[1]], *second = &m->nodes[pair[0]]; /* backward order */
        vka_conv2d_shape s1 = conv_shape(m, first, m->desc.batch), s2 = conv_shape(m, second, m->desc.batch);
        uint32_t taps1 = vka_conv2d_dx_tap_phases(ctx, &s1, first->scratch);
        uint32_t taps2 = vka_conv2d_dx_tap_phases(ctx, &s2, second->scratch);
        if (!taps1 || !taps2 || s1.stride != s2.stride || !first->needs_dx || !second->needs_dx) continue;
        first->dx_skip_empty_phases = 1;
        second->dx_accumulate = taps1;
    }
    /* Gradients: inputs of an add with no other consumer share the add's dy, and the residual
     * input of a block tail with no other consumer its masked gradient. */
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        if (n->op == VKA_NODE_ADD) {
            for (int j = 0; j < 2; j++)
                if (m->nodes[n->in[j]].consumers == 1) m->nodes[n->in[j]].grad_alias = (int)i;
        } else if (vka_node_is_tail(n) && m->nodes[n->in[1]].consumers == 1) {
            m->nodes[n->in[1]].grad_alias = (int)i;
        }
    }
    for (int i = (int)m->node_count - 1; i > 0; i--) {
        vka_node *n = &m->nodes[i];
        if (n->grad_alias >= 0) n->dy = residual_grad(&m->nodes[n->grad_alias]); /* aliases point later: set */
        else if (!n->dy_packed) VKA_CHECK(vka_arena_alloc(m->act_arena, node_floats(m, n) * 4, &n->dy));
    }
    VKA_CHECK(vka_arena_alloc(m->act_arena, largest, &m->grad_tmp));
done:
    return rc;
}

/* The nodes' scopes for timings (bench --trace): index, op, channels, kernel/stride, output size. */
static void name_nodes(vka_model *m)
{
    static const char *const ops[] = {
        [VKA_NODE_INPUT] = "input", [VKA_NODE_CONV] = "conv", [VKA_NODE_BN] = "bn",       [VKA_NODE_RELU] = "relu",
        [VKA_NODE_MAXPOOL] = "maxpool", [VKA_NODE_GAP] = "avgpool", [VKA_NODE_LINEAR] = "linear", [VKA_NODE_ADD] = "add",
    };
    for (uint32_t i = 0; i < m->node_count; i++) {
        vka_node *n = &m->nodes[i];
        uint32_t cin = n->in[0] >= 0 ? m->nodes[n->in[0]].c : n->c;
        char what[44];
        if (n->op == VKA_NODE_CONV)
            snprintf(what, sizeof what, "conv %u->%u %ux%u/%u %ux%u", cin, n->c, n->k, n->k, n->stride, n->h, n->w);
        else if (n->op == VKA_NODE_BN)
            snprintf(what, sizeof what, "bn%s%s %u %ux%u", vka_node_is_tail(n) ? "+add" : "", n->relu ? "+relu" : "",
                     n->c, n->h, n->w);
        else
            snprintf(what, sizeof what, "%s %u %ux%u", ops[n->op], n->c, n->h, n->w);
        snprintf(n->scope[0], sizeof n->scope[0], "fwd %u %s", i, what);
        snprintf(n->scope[1], sizeof n->scope[1], "bwd %u %s", i, what);
    }
}

/* The model's largest buffer binding at a batch of b images (bytes), and the node holding it. */
static uint64_t largest_binding(const vka_model *m, uint32_t b, uint32_t *node)
{
    uint64_t worst = 0;
    for (uint32_t i = 0; i < m->node_count; i++) {
        const vka_node *n = &m->nodes[i];
        uint64_t bytes = (uint64_t)b * n->c * n->h * n->w * 4;
        if (n->op == VKA_NODE_CONV) {
            vka_conv2d_shape s = conv_shape(m, n, b);
            s.n_capacity = b;
            uint64_t conv = vka_conv2d_largest_binding(m->ctx, &s);
            if (conv > bytes) bytes = conv;
        }
        if (bytes > worst) worst = bytes, *node = i;
    }
    return worst;
}

/* Every buffer of the model fits one storage binding on this device. A batch too large fails
 * here, naming the buffer and the batch that fits, not at the first dispatch after a run's
 * files were written. */
static vka_result check_batch_fits(const vka_model *m)
{
    uint64_t limit = m->ctx->limits.max_storage_buffer_range;
    uint32_t node = 0, b = m->desc.batch;
    uint64_t worst = largest_binding(m, b, &node);
    if (worst <= limit) return VKA_SUCCESS;
    uint32_t lo = 0, hi = b, ignored; /* the largest batch that fits: in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (largest_binding(m, mid, &ignored) <= limit) lo = mid;
        else hi = mid;
    }
    if (lo == 0)
        return vka_fail(&m->ctx->logger, VKA_ERROR_LIMIT_EXCEEDED,
                        "model %s: one row needs a %llu-byte buffer at layer %s, over this device's limit of %llu bytes "
                        "for one buffer binding: use smaller images", vka_model_kind_name(m->desc.kind),
                        (unsigned long long)largest_binding(m, 1, &node), m->nodes[node].scope[0] + 4,
                        (unsigned long long)limit);
    return vka_fail(&m->ctx->logger, VKA_ERROR_LIMIT_EXCEEDED,
                    "model %s: %u rows per batch (images; in eval, times --anchors) need a %llu-byte buffer at "
                    "layer %s, over this device's limit of %llu bytes for one buffer binding; at most %u rows fit "
                    "here: lower --batch-size (in eval, or --anchors)",
                    vka_model_kind_name(m->desc.kind), b, (unsigned long long)worst, m->nodes[node].scope[0] + 4,
                    (unsigned long long)limit, lo);
}

vka_result vka_model_create(vka_context *ctx, const vka_model_desc *desc, vka_model **out)
{
    *out = NULL;
    if (desc->in_channels == 0 || desc->height < 4 || desc->width < 4 || desc->classes < 2 || desc->batch == 0)
        return vka_fail(&ctx->logger, VKA_ERROR_INVALID_ARGUMENT,
                        "model %s: input (%u, %u, %u), %u classes, batch %u is not a shape it can take (it needs "
                        "images of at least 4x4 pixels, 2 or more classes and a batch of 1 or more)",
                        vka_model_kind_name(desc->kind), desc->in_channels, desc->height, desc->width, desc->classes,
                        desc->batch);
    vka_model *m = calloc(1, sizeof *m);
    if (!m) return vka_fail(&ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    m->ctx = ctx;
    m->desc = *desc;
    builder b = {m, 0};
    build_graph(&b);
    vka_result rc = b.failed ? vka_fail(&ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory") : VKA_SUCCESS;
    if (!rc) name_nodes(m);
    /* Before the plan and the batch check: which convs keep packed copies depends on it. */
    if (!rc) vka_conv2d_packed_ready(ctx);
    if (!rc) rc = check_batch_fits(m);
    if (!rc) rc = allocate(m);
    if (rc) {
        vka_model_destroy(m);
        return rc;
    }
    *out = m;
    return VKA_SUCCESS;
}

void vka_model_destroy(vka_model *m)
{
    if (!m) return;
    vka_arena_destroy(m->act_arena);
    vka_arena_destroy(m->param_arena);
    free(m->nodes);
    free(m->param_info);
    free(m);
}

vka_tensor vka_model_param(const vka_model *m, vka_tensor all, uint32_t index)
{
    const vka_param *p = &m->param_info[index];
    return vka_tensor_slice(all, p->offset * 4, p->count * 4);
}

vka_tensor vka_model_logits(const vka_model *m, uint32_t n)
{
    return vka_tensor_slice(m->nodes[m->node_count - 1].y, 0, (uint64_t)n * m->desc.classes * 4);
}

/* ---- initialization ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

vka_result vka_model_init(vka_model *m, uint64_t seed)
{
    float *host = calloc(m->param_floats, sizeof *host);
    float *stats = malloc((m->bn_floats ? m->bn_floats : 1) * sizeof *stats);
    if (!host || !stats) {
        free(host);
        free(stats);
        return vka_fail(&m->ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    uint64_t s = seed ^ 0x5EEDull;
    for (uint32_t i = 0; i < m->param_count; i++) {
        const vka_param *p = &m->param_info[i];
        for (uint64_t j = 0; j < p->count; j++) {
            float v;
            if (p->fan_in == 0) {
                v = p->is_gamma ? 1.0f : 0.0f;
            } else {
                double u = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
                v = (float)((2 * u - 1) / sqrt((double)p->fan_in));
            }
            host[p->offset + j] = v;
        }
    }
    /* Running statistics: mean 0, var 1, laid out (mean, var) per layer. */
    uint64_t at = 0;
    for (uint32_t i = 0; i < m->node_count; i++) {
        const vka_node *n = &m->nodes[i];
        if (n->op != VKA_NODE_BN) continue;
        for (uint32_t c = 0; c < n->c; c++) stats[at + c] = 0.0f, stats[at + n->c + c] = 1.0f;
        at += 2 * n->c;
    }
    vka_result rc = vka_upload(m->ctx, m->params, 0, host, m->param_floats * 4);
    if (!rc && m->bn_floats) rc = vka_upload(m->ctx, m->bn_stats, 0, stats, m->bn_floats * 4);
    if (!rc) rc = vka_fill(m->ctx, m->grads, 0);
    free(host);
    free(stats);
    return rc;
}

/* ---- forward and backward ---------------------------------------------------------- */

static vka_tensor slice_n(vka_tensor t, const vka_node *n, uint32_t batch)
{
    return vka_tensor_slice(t, 0, (uint64_t)batch * n->c * n->h * n->w * 4);
}

static void bn_running(const vka_model *m, const vka_node *n, vka_tensor *mean, vka_tensor *var)
{
    uint64_t at = 0;
    for (int i = 0; i < (int)m->node_count; i++)
        if (m->nodes[i].op == VKA_NODE_BN && m->nodes[i].bn_index < n->bn_index) at += 2 * m->nodes[i].c;
    *mean = vka_tensor_slice(m->bn_stats, at * 4, n->c * 4);
    *var = vka_tensor_slice(m->bn_stats, (at + n->c) * 4, n->c * 4);
}

/* The BN that takes a conv's statistics from its forward (vka_node.stats), or NULL. */
static const vka_node *stats_consumer(const vka_model *m, const vka_node *conv)
{
    for (uint32_t i = 0; i < m->node_count; i++) {
        const vka_node *n = &m->nodes[i];
        if (n->op == VKA_NODE_BN && &m->nodes[n->in[0]] == conv && vka_tensor_present(n->stats)) return n;
    }
    return NULL;
}

vka_result vka_model_forward(vka_cmd *cmd, vka_model *m, const vka_forward_desc *f, vka_tensor input)
{
    uint32_t B = f->n;
    if (B == 0 || B > m->desc.batch)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "model forward: batch %u (the model holds 1..%u)", B,
                            m->desc.batch);
    vka_packed_layout in_layout;
    if (f->input_packed && !vka_model_input_layout(m, B, &in_layout))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "model forward: input_packed, but the input does not go to one conv on the packed path "
                            "here (see vka_model_input_layout)");
    m->nodes[0].y = input;
    vka_result rc = VKA_SUCCESS;
    for (uint32_t i = 1; i < m->node_count && !rc; i++) {
        vka_node *n = &m->nodes[i];
        const vka_node *x = &m->nodes[n->in[0]];
        vka_tensor y = slice_n(n->y, n, B), xin = slice_n(x->y, x, B);
        vka_cmd_set_scope(cmd, n->scope[0]);
        switch (n->op) {
        case VKA_NODE_CONV: {
            vka_conv2d_shape s = conv_shape(m, n, B);
            s.x_packed = x->packed_consumer == (int)i; /* the BN before it wrote x packed */
            if (x->op == VKA_NODE_INPUT && f->input_packed) s.x_packed = 1; /* so did the input's producer */
            if (n->reads_shared_x) s.x_shared = vka_model_bn_y_layout(m, n->in[0], B); /* ... for another conv */
            vka_tensor w = vka_model_param(m, m->params, (uint32_t)n->weight);
            const vka_node *bn = stats_consumer(m, n);
            /* (0 groups: the packed kernels no longer run, a switch changed after setup: the BN
             * then makes its own statistics pass, below) */
            if (f->training && bn && vka_conv2d_stats_groups(m->ctx, &s, n->scratch))
                rc = vka_conv2d_forward_stats(cmd, &s, y, xin, w, (vka_tensor){0}, n->scratch, bn->stats);
            else
                rc = vka_conv2d_forward(cmd, &s, y, xin, w, (vka_tensor){0}, n->scratch);
            break;
        }
        case VKA_NODE_BN: {
            vka_batchnorm_desc d = bn_desc(n, B);
            vka_tensor mean, var;
            bn_running(m, n, &mean, &var);
            vka_tensor gamma = vka_model_param(m, m->params, (uint32_t)n->weight);
            vka_tensor beta = vka_model_param(m, m->params, (uint32_t)n->bias);
            vka_packed_layout l = {0};
            if (n->packed_consumer >= 0) { /* (also) straight into the next conv's packed x */
                l = vka_model_bn_y_layout(m, (int)i, B);
                if (!vka_tensor_present(l.t)) { /* only if VKANCHOR_CONV* changed after the model was made */
                    rc = vka_cmd_fail(cmd, VKA_ERROR_UNSUPPORTED,
                                      "model forward: bn node %u was set up for lavapipe's packed kernels, which "
                                      "no longer run (VKANCHOR_CONV or VKANCHOR_CONV_PACKED changed?)", i);
                    break;
                }
            }
            int tail = vka_node_is_tail(n), packed = vka_tensor_present(l.t), coef_only = vka_tensor_present(n->coef);
            vka_batchnorm_io io = {
                .x = xin, .y = (tail || !packed || n->consumers > 1) && !coef_only ? y : (vka_tensor){0},
                .yp = packed ? &l : NULL,
                .coef = n->coef, .gamma = gamma,
                .beta = beta, .running_mean = mean, .running_var = var, .save_mean = n->save_mean,
                .save_invstd = n->save_invstd, .scratch = n->scratch,
            };
            if (f->training && vka_tensor_present(n->stats)) { /* its conv wrote the statistics */
                const vka_node *conv = &m->nodes[n->in[0]];
                vka_conv2d_shape cs = conv_shape(m, conv, B);
                io.stats_groups = vka_conv2d_stats_groups(m->ctx, &cs, conv->scratch);
                if (io.stats_groups) io.stats = n->stats;
            }
            if (tail) { /* + the residual, then the ReLU */
                const vka_node *r = &m->nodes[n->in[1]];
                io.residual = slice_n(r->y, r, B);
            }
            vka_batchnorm_mode mode = !f->training         ? VKA_BN_EVAL
                                      : f->update_bn_stats ? VKA_BN_TRAIN
                                                           : VKA_BN_TRAIN_KEEP_RUNNING;
            rc = vka_batchnorm_forward(cmd, &d, mode, &io);
            break;
        }
        case VKA_NODE_RELU: rc = vka_relu_forward(cmd, (uint64_t)B * n->c * n->h * n->w, y, xin); break;
        case VKA_NODE_ADD: {
            const vka_node *x2 = &m->nodes[n->in[1]];
            rc = vka_add_forward(cmd, (uint64_t)B * n->c * n->h * n->w, y, xin, slice_n(x2->y, x2, B));
            break;
        }
        case VKA_NODE_MAXPOOL: {
            vka_maxpool_desc d = {.n = B, .c = x->c, .h = x->h, .w = x->w, .k = n->k, .stride = n->stride};
            if (vka_tensor_present(x->coef)) { /* the BN before it left its output to this pool */
                const vka_node *bx = &m->nodes[x->in[0]];
                rc = vka_maxpool_forward_bn(cmd, &d, y, slice_n(n->argmax, n, B), slice_n(bx->y, bx, B), x->coef,
                                            x->relu);
            } else {
                rc = vka_maxpool_forward(cmd, &d, y, slice_n(n->argmax, n, B), xin);
            }
            break;
        }
        case VKA_NODE_GAP: rc = vka_global_avgpool_forward(cmd, B, x->c, x->h * x->w, y, xin); break;
        case VKA_NODE_LINEAR: {
            vka_linear_shape s = {.n = B, .in = x->c, .out = n->c};
            rc = vka_linear_forward(cmd, &s, y, xin, vka_model_param(m, m->params, (uint32_t)n->weight),
                                    vka_model_param(m, m->params, (uint32_t)n->bias));
            break;
        }
        case VKA_NODE_INPUT: break;
        }
    }
    vka_cmd_set_scope(cmd, NULL);
    return rc;
}

/* Where node j's input gradient goes: straight into its dy if this is the
 * first contribution this pass, else into grad_tmp to be added afterwards. */
static vka_tensor grad_target(vka_model *m, int j, uint32_t B, const uint8_t *written)
{
    const vka_node *x = &m->nodes[j];
    return written[j] ? slice_n(m->grad_tmp, x, B) : slice_n(x->dy, x, B);
}

static vka_result grad_commit(vka_cmd *cmd, vka_model *m, int j, uint32_t B, uint8_t *written)
{
    const vka_node *x = &m->nodes[j];
    vka_result rc = VKA_SUCCESS;
    if (written[j]) rc = vka_add_inplace(cmd, (uint64_t)B * x->c * x->h * x->w, slice_n(x->dy, x, B),
                                         slice_n(m->grad_tmp, x, B));
    written[j] = 1;
    return rc;
}

/* The conv that reads the input node alone, or -1. */
static int input_conv(const vka_model *m)
{
    if (m->nodes[0].op != VKA_NODE_INPUT || m->nodes[0].consumers != 1) return -1;
    for (uint32_t i = 1; i < m->node_count; i++)
        if (m->nodes[i].in[0] == 0 || m->nodes[i].in[1] == 0)
            return m->nodes[i].op == VKA_NODE_CONV && m->nodes[i].in[0] == 0 ? (int)i : -1;
    return -1;
}

int vka_model_input_layout(const vka_model *m, uint32_t n, vka_packed_layout *out)
{
    int i = input_conv(m);
    if (i < 0 || n == 0 || n > m->desc.batch || vka_switch_off("VKANCHOR_INPUT_PACKED")) return 0;
    vka_conv2d_shape s = conv_shape(m, &m->nodes[i], n);
    return vka_conv2d_x_packed_layout(m->ctx, &s, m->nodes[i].scratch, out);
}

vka_packed_layout vka_model_bn_y_layout(const vka_model *m, int node, uint32_t n)
{
    const vka_node *conv = &m->nodes[m->nodes[node].packed_consumer];
    vka_conv2d_shape s = conv_shape(m, conv, n);
    vka_packed_layout l = {0};
    vka_conv2d_x_packed_layout(m->ctx, &s, conv->scratch, &l);
    return l;
}

vka_packed_layout vka_model_conv_dy_layout(const vka_model *m, int node, uint32_t n)
{
    const vka_node *conv = &m->nodes[node];
    vka_conv2d_shape s = conv_shape(m, conv, n);
    vka_packed_layout l = {0};
    vka_conv2d_dy_packed_layout(m->ctx, &s, conv->scratch, &l);
    return l;
}

/* Hands g, node i's gradient for its residual inputs (both of an add's, a block tail's in[1]),
 * to them: aliased inputs already see it. A shared input (identity shortcut) whose gradient
 * has no other part yet keeps g aside as its `pending` part (its other consumer, the next
 * block's first conv, then writes its dy directly, and the ReLU backward of that input adds
 * the two where it reads them: no copy, no add pass); otherwise g is added or copied. */
static vka_result pass_residual_grad(vka_cmd *cmd, vka_model *m, int i, uint32_t B, vka_tensor g, uint8_t *written,
                                     vka_tensor *pending)
{
    const vka_node *n = &m->nodes[i];
    vka_result rc = VKA_SUCCESS;
    for (int k = n->op == VKA_NODE_ADD ? 0 : 1; k < 2 && !rc; k++) {
        int in = n->in[k];
        vka_node *xk = &m->nodes[in];
        if (xk->grad_alias == i) {
            written[in] = 1;
        } else if (written[in]) {
            rc = vka_add_inplace(cmd, (uint64_t)B * n->c * n->h * n->w, slice_n(xk->dy, xk, B), g);
        } else if (!vka_tensor_present(pending[in])) {
            pending[in] = g;
        } else {
            vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_TRANSFER); /* g written -> copied */
            rc = vka_cmd_copy(cmd, slice_n(xk->dy, xk, B), g);
            vka_cmd_barrier(cmd, VKA_HAZARD_TRANSFER_TO_SHADER); /* copy -> later kernels */
            written[in] = 1;
        }
    }
    return rc;
}

/* Node i's output gradient dy when it has a pending part (see pass_residual_grad): the
 * pending part copied in if nothing else was written (its aliased inputs read dy itself);
 * else, unless the node's backward takes the two parts (*two_parts = 1: dy and pending[i]),
 * their sum in dy. */
static vka_result resolve_pending(vka_cmd *cmd, vka_model *m, int i, uint32_t B, const uint8_t *written,
                                  const vka_tensor *pending, vka_tensor dy, int *two_parts)
{
    const vka_node *n = &m->nodes[i];
    *two_parts = 0;
    if (!vka_tensor_present(pending[i])) return VKA_SUCCESS;
    if (!written[i]) { /* not in the built-in models: the other consumer always comes first */
        vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_TRANSFER); /* pending written -> copied */
        vka_result rc = vka_cmd_copy(cmd, dy, pending[i]);
        vka_cmd_barrier(cmd, VKA_HAZARD_TRANSFER_TO_SHADER); /* copy -> this node's backward */
        return rc;
    }
    if (vka_node_takes_two_grad_parts(n)) return *two_parts = 1, VKA_SUCCESS;
    return vka_add_inplace(cmd, (uint64_t)B * n->c * n->h * n->w, dy, pending[i]);
}

vka_result vka_model_backward(vka_cmd *cmd, vka_model *m, uint32_t n_batch, vka_tensor dlogits)
{
    const uint32_t B = n_batch;
    uint8_t *written = calloc(m->node_count, 1);
    vka_tensor *pending = calloc(m->node_count, sizeof *pending);
    if (!written || !pending) {
        free(written), free(pending);
        return vka_cmd_fail(cmd, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    vka_node *last = &m->nodes[m->node_count - 1];
    vka_result rc = VKA_SUCCESS;
    /* The loss writes dlogits; the last node reads it as its dy. */
    vka_tensor last_dy = last->dy;
    last->dy = dlogits;
    for (int i = (int)m->node_count - 1; i > 0 && !rc; i--) {
        vka_node *n = &m->nodes[i];
        vka_cmd_set_scope(cmd, n->scope[1]);
        int j = n->in[0];
        const vka_node *x = &m->nodes[j];
        vka_tensor dy = slice_n(n->dy, n, B), xin = slice_n(x->y, x, B);
        int want_dx = x->op != VKA_NODE_INPUT, two_parts;
        if ((rc = resolve_pending(cmd, m, i, B, written, pending, dy, &two_parts))) break;
        uint64_t count = (uint64_t)B * n->c * n->h * n->w;
        switch (n->op) {
        case VKA_NODE_CONV: {
            vka_conv2d_shape s = conv_shape(m, n, B);
            s.x_packed_by_forward = 1; /* forward ran on this scratch, and nothing after it */
            if (n->reads_shared_x) s.x_shared = vka_model_bn_y_layout(m, n->in[0], B); /* as in the forward */
            s.dy_packed = n->dy_packed; /* the BN after it wrote dy into the scratch */
            s.dx_skip_empty_phases = n->dx_skip_empty_phases;
            s.dx_accumulate = n->dx_accumulate;
            /* The second of two writers adds its part into dx itself (see model setup). */
            int adds_into = want_dx && n->dx_accumulate;
            if ((adds_into && !written[j]) || (want_dx && n->dx_skip_empty_phases && written[j])) {
                rc = vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                                  "model backward: conv node %d is set up as the %s writer of node %d's gradient, "
                                  "but it comes %s", i, adds_into ? "second" : "first", j, adds_into ? "first" : "second");
                break;
            }
            vka_tensor dx = adds_into ? slice_n(x->dy, x, B) : want_dx ? grad_target(m, j, B, written) : (vka_tensor){0};
            /* Both gradients in one call: lavapipe's kernels share one packed copy of dy. */
            rc = vka_conv2d_backward(cmd, &s, dx, vka_model_param(m, m->grads, (uint32_t)n->weight), (vka_tensor){0},
                                     dy, xin, vka_model_param(m, m->params, (uint32_t)n->weight), n->scratch);
            if (!rc && want_dx && !adds_into) rc = grad_commit(cmd, m, j, B, written);
            break;
        }
        case VKA_NODE_BN: {
            vka_batchnorm_desc d = bn_desc(n, B);
            if (vka_node_is_tail(n)) { /* its ReLU's mask, the residual's share, then a plain BN */
                if (n->relu) {
                    vka_tensor dz = slice_n(n->dz, n, B), y = slice_n(n->y, n, B);
                    rc = two_parts ? vka_relu_backward_sum(cmd, count, dz, dy, pending[i], y)
                                   : vka_relu_backward(cmd, count, dz, dy, y);
                    dy = dz;
                }
                if (!rc) rc = pass_residual_grad(cmd, m, i, B, dy, written, pending);
                d.relu = 0;
            }
            if (rc) break;
            if (x->dy_packed) { /* straight into the conv's packed dy (its only consumer: nothing to add) */
                vka_packed_layout l = vka_model_conv_dy_layout(m, j, B);
                if (!vka_tensor_present(l.t)) { /* only if VKANCHOR_CONV* changed after the model was made */
                    rc = vka_cmd_fail(cmd, VKA_ERROR_UNSUPPORTED,
                                      "model backward: conv node %d was set up for lavapipe's packed kernels, which "
                                      "no longer run (VKANCHOR_CONV or VKANCHOR_CONV_PACKED changed?)", j);
                    break;
                }
                rc = vka_batchnorm_backward_packed_dx(
                    cmd, &d, &l, vka_model_param(m, m->grads, (uint32_t)n->weight),
                    vka_model_param(m, m->grads, (uint32_t)n->bias), dy, xin, n->save_mean, n->save_invstd,
                    vka_model_param(m, m->params, (uint32_t)n->weight),
                    vka_model_param(m, m->params, (uint32_t)n->bias), n->scratch);
                written[j] = 1;
                break;
            }
            rc = vka_batchnorm_backward(cmd, &d, grad_target(m, j, B, written),
                                        vka_model_param(m, m->grads, (uint32_t)n->weight),
                                        vka_model_param(m, m->grads, (uint32_t)n->bias), dy, xin, n->save_mean,
                                        n->save_invstd, vka_model_param(m, m->params, (uint32_t)n->weight),
                                        vka_model_param(m, m->params, (uint32_t)n->bias), n->scratch);
            if (!rc) rc = grad_commit(cmd, m, j, B, written);
            break;
        }
        case VKA_NODE_RELU:
            rc = two_parts ? vka_relu_backward_sum(cmd, count, grad_target(m, j, B, written), dy, pending[i], xin)
                           : vka_relu_backward(cmd, count, grad_target(m, j, B, written), dy, xin);
            if (!rc) rc = grad_commit(cmd, m, j, B, written);
            break;
        case VKA_NODE_ADD:
            /* dy flows unchanged to both inputs. */
            rc = pass_residual_grad(cmd, m, i, B, dy, written, pending);
            break;
        case VKA_NODE_MAXPOOL: {
            vka_maxpool_desc d = {.n = B, .c = x->c, .h = x->h, .w = x->w, .k = n->k, .stride = n->stride};
            rc = vka_maxpool_backward(cmd, &d, grad_target(m, j, B, written), dy, slice_n(n->argmax, n, B));
            if (!rc) rc = grad_commit(cmd, m, j, B, written);
            break;
        }
        case VKA_NODE_GAP:
            rc = vka_global_avgpool_backward(cmd, B, x->c, x->h * x->w, grad_target(m, j, B, written), dy);
            if (!rc) rc = grad_commit(cmd, m, j, B, written);
            break;
        case VKA_NODE_LINEAR: {
            vka_linear_shape s = {.n = B, .in = x->c, .out = n->c};
            rc = vka_linear_backward(cmd, &s, grad_target(m, j, B, written),
                                     vka_model_param(m, m->grads, (uint32_t)n->weight),
                                     vka_model_param(m, m->grads, (uint32_t)n->bias), dy, xin,
                                     vka_model_param(m, m->params, (uint32_t)n->weight));
            if (!rc) rc = grad_commit(cmd, m, j, B, written);
            break;
        }
        case VKA_NODE_INPUT: break;
        }
    }
    last->dy = last_dy;
    vka_cmd_set_scope(cmd, NULL);
    free(written), free(pending);
    return rc;
}
