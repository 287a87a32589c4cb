/* Fully connected layer y = x W^T + b: the products on vka_matmul (whichever variant the
 * device gets), plus a bias epilogue (forward) and a fixed-order column sum (db). */
#include "nn/linear.h"

#include "nn/ops_internal.h"

#include "linear_bwd_bias.spv.h"
#include "linear_fwd_bias.spv.h"

struct linear_bias_push {
    uint32_t n, out;
};
_Static_assert(sizeof(struct linear_bias_push) == 8, "mirror of Push in shaders/linear_{fwd,bwd}_bias.comp");

#define WANT_WG 256u

static vka_result bias_kernel(vka_cmd *cmd, int backward, vka_kernel **k)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_kernel_desc desc = {
        .name = backward ? "linear_bwd_bias" : "linear_fwd_bias",
        .spirv = backward ? vka_spv_linear_bwd_bias : vka_spv_linear_fwd_bias,
        .spirv_bytes = backward ? sizeof vka_spv_linear_bwd_bias : sizeof vka_spv_linear_fwd_bias,
        .num_bindings = 2, .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE},
        .push_bytes = sizeof(struct linear_bias_push), .local_size = {vka_plan_workgroup_1d(ctx, WANT_WG)},
    };
    vka_result rc = vka_kernel_get(ctx, &desc, k);
    return rc ? vka_cmd_keep(cmd, rc) : VKA_SUCCESS;
}

/* INVALID_ARGUMENT unless tensor `t` (if `required` or present) holds `floats` floats;
 * LIMIT_EXCEEDED if they do not fit one storage binding. */
static vka_result check_tensor(vka_cmd *cmd, const char *op, const vka_linear_shape *s, const char *what,
                               vka_tensor t, uint64_t floats)
{
    if (t.size < floats * 4)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "%s: n=%u in=%u out=%u needs %s of %llu floats (%llu bytes), given %llu bytes", op, s->n,
                            s->in, s->out, what, (unsigned long long)floats, (unsigned long long)(floats * 4),
                            (unsigned long long)t.size);
    return vka_head_check_range(cmd, op, what, floats * 4);
}

static vka_result check_shape(vka_cmd *cmd, const char *op, const vka_linear_shape *s)
{
    if (!s) return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: no shape given", op);
    if (s->n == 0 || s->in == 0 || s->out == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: shape n=%u in=%u out=%u (all must be >= 1)", op,
                            s->n, s->in, s->out);
    return VKA_SUCCESS;
}

vka_result vka_linear_forward(vka_cmd *cmd, const vka_linear_shape *s, vka_tensor y, vka_tensor x, vka_tensor w,
                              vka_tensor b)
{
    const char *op = "linear_forward";
    vka_result rc;
    if ((rc = check_shape(cmd, op, s))) return rc;
    uint64_t n = s->n, in = s->in, out = s->out;
    if ((rc = check_tensor(cmd, op, s, "y (n, out)", y, n * out)) ||
        (rc = check_tensor(cmd, op, s, "x (n, in)", x, n * in)) ||
        (rc = check_tensor(cmd, op, s, "w (out, in)", w, out * in)))
        return rc;
    int has_bias = vka_tensor_present(b);
    if (has_bias && (rc = check_tensor(cmd, op, s, "b (out)", b, out))) return rc;
    vka_kernel *kb = NULL;
    if (has_bias && (rc = bias_kernel(cmd, 0, &kb))) return rc; /* before any dispatch */

    /* y (n, out) = x (n, in) @ W^T, W stored (out, in). */
    vka_matmul_desc d = {.m = s->n, .n = s->out, .k = s->in, .trans_b = 1};
    rc = vka_matmul(cmd, y, x, w, &d); /* ends with a barrier: y is visible to the epilogue */
    if (!rc && has_bias) {
        struct linear_bias_push push = {s->n, s->out};
        vka_tensor t[2] = {vka_tensor_slice(y, 0, n * out * 4), vka_tensor_slice(b, 0, out * 4)};
        rc = vka_dispatch_items(cmd, kb, t, 2, &push, n * out);
    }
    return vka_op_done(cmd, rc);
}

vka_result vka_linear_backward(vka_cmd *cmd, const vka_linear_shape *s, vka_tensor dx, vka_tensor dw, vka_tensor db,
                               vka_tensor dy, vka_tensor x, vka_tensor w)
{
    const char *op = "linear_backward";
    vka_result rc;
    if ((rc = check_shape(cmd, op, s))) return rc;
    uint64_t n = s->n, in = s->in, out = s->out;
    int want_dx = vka_tensor_present(dx), want_dw = vka_tensor_present(dw), want_db = vka_tensor_present(db);
    if ((rc = check_tensor(cmd, op, s, "dy (n, out)", dy, n * out))) return rc;
    if (want_dx && ((rc = check_tensor(cmd, op, s, "dx (n, in)", dx, n * in)) ||
                    (rc = check_tensor(cmd, op, s, "w (out, in)", w, out * in))))
        return rc;
    if (want_dw && ((rc = check_tensor(cmd, op, s, "dw (out, in)", dw, out * in)) ||
                    (rc = check_tensor(cmd, op, s, "x (n, in)", x, n * in))))
        return rc;
    if (want_db && (rc = check_tensor(cmd, op, s, "db (out)", db, out))) return rc;
    vka_kernel *kb = NULL;
    if (want_db && (rc = bias_kernel(cmd, 1, &kb))) return rc; /* before any dispatch */

    rc = VKA_SUCCESS;
    if (want_dx) { /* dx (n, in) = dy (n, out) @ W (out, in) */
        vka_matmul_desc d = {.m = s->n, .n = s->in, .k = s->out};
        rc = vka_matmul(cmd, dx, dy, w, &d);
    }
    if (!rc && want_dw) { /* dw (out, in) = dy^T @ x (n, in); dy^T read through trans_a */
        vka_matmul_desc d = {.m = s->out, .n = s->in, .k = s->n, .trans_a = 1};
        rc = vka_matmul(cmd, dw, dy, x, &d);
    }
    if (!rc && want_db) { /* db (out) = column sums of dy */
        struct linear_bias_push push = {s->n, s->out};
        vka_tensor t[2] = {vka_tensor_slice(dy, 0, n * out * 4), vka_tensor_slice(db, 0, out * 4)};
        rc = vka_dispatch_items(cmd, kb, t, 2, &push, out);
    }
    return vka_op_done(cmd, rc);
}
