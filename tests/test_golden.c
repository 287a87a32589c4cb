/* One anchored training step of a small `cnn` against PyTorch (llm.c style):
 * assets/golden_cnn_step.ckpt, written by scripts/gen_golden.py in float64,
 * holds the initial weights, a batch with fixed references, and PyTorch's
 * logits, loss, every gradient, the losses of 5 SGD steps, the final weights
 * and BN running statistics, for an unmasked and a masked batch.
 *
 * Tolerances (vkanchor computes in fp32, PyTorch here in fp64):
 *   logits, gradients, final weights: normalized error <= 1e-8
 *   losses: |gpu - torch| <= 1e-4 * (1 + |torch|)
 *   BN running statistics: normalized error <= 1e-10, and bit-for-bit unchanged for the
 *   masked batch (--mask-bn-stats skip). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nn/anchor.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "test_util.h"
#include "train/checkpoint.h"

static vka_checkpoint golden;

static const vka_ckpt_section *section(const char *tag)
{
    const vka_ckpt_section *s = vka_checkpoint_find(&golden, tag);
    if (!s) fail_msg("golden file has no section '%s'", tag);
    return s;
}

static double *as_double(const char *tag, size_t *n)
{
    const vka_ckpt_section *s = section(tag);
    *n = s->bytes / 4;
    return test_to_double(s->data, *n);
}

static void compare(const char *what, const float *gpu, const char *tag, double tol)
{
    size_t n;
    double *ref = as_double(tag, &n);
    test_expect_close(what, gpu, ref, n, tol);
    free(ref);
}

static void run_case(vka_context *ctx, const char *c, int masked)
{
    vka_logger lg = {0};
    TEST_OK(vka_checkpoint_read(&lg, VKA_ASSETS_DIR "/golden_cnn_step.ckpt", &golden));
    cJSON *cfg = cJSON_Parse(section("config")->data);
    assert_non_null(cfg);
    uint32_t B = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "batch"));
    uint32_t C = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "channels"));
    uint32_t H = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "height"));
    uint32_t W = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "width"));
    uint32_t NC = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "classes"));
    int steps = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "steps"));
    vka_sgd_params sgd = {.lr = cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "lr")),
                          .momentum = cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "momentum")),
                          .weight_decay = cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "weight_decay"))};
    cJSON *shapes = cJSON_GetObjectItem(cfg, "param_shapes");

    vka_model *m;
    TEST_OK(vka_model_create(ctx, &(vka_model_desc){.kind = VKA_MODEL_CNN, .in_channels = 2 * C, .height = H,
                                                   .width = W, .classes = NC, .batch = B}, &m));
    assert_int_equal(m->param_count, cJSON_GetArraySize(shapes));
    TEST_OK(vka_fill(ctx, m->params, 0));
    TEST_OK(vka_fill(ctx, m->grads, 0));
    for (uint32_t i = 0; i < m->param_count; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "p%02u", i);
        const vka_ckpt_section *p = section(tag);
        assert_int_equal(p->bytes, m->param_info[i].count * 4);
        TEST_OK(vka_upload(ctx, vka_model_param(m, m->params, i), 0, p->data, p->bytes));
    }
    const vka_ckpt_section *bn0 = section("run_bn");
    assert_int_equal(bn0->bytes, m->bn_floats * 4);
    TEST_OK(vka_upload(ctx, m->bn_stats, 0, bn0->data, bn0->bytes));

    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "golden"}, &arena));
    vka_tensor x = test_tensor(ctx, arena, section("x")->data, (size_t)B * C * H * W);
    vka_tensor labels = test_tensor_i32(ctx, arena, section("labels")->data, B);
    vka_tensor ref_idx = test_tensor_i32(ctx, arena, section("ref_idx")->data, B);
    vka_tensor input = test_tensor(ctx, arena, NULL, (size_t)B * 2 * C * H * W);
    vka_tensor dlogits = test_tensor(ctx, arena, NULL, (size_t)B * NC);
    vka_tensor momentum = test_tensor(ctx, arena, NULL, m->param_floats);
    vka_tensor stats;
    TEST_OK(vka_arena_alloc(arena, vka_cross_entropy_stats_bytes(B), &stats));

    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    float losses[16];
    char tag[16];
    for (int step = 0; step < steps; step++) {
        TEST_OK(vka_cmd_reset(cmd));
        vka_anchor_shape as = {.batch = B, .channels = C, .height = H, .width = W};
        TEST_OK(vka_anchor_train_input(cmd, &as, input, x, ref_idx, masked));
        TEST_OK(vka_model_forward(cmd, m, &(vka_forward_desc){.n = B, .training = 1, .update_bn_stats = !masked},
                                  input));
        vka_cross_entropy_desc ce = {.batch = B, .classes = NC};
        TEST_OK(vka_cross_entropy(cmd, &ce, dlogits, stats, vka_model_logits(m, B), labels));
        TEST_OK(vka_model_backward(cmd, m, B, dlogits));
        test_run(cmd);
        float *st = test_read(ctx, stats, 1);
        losses[step] = st[0];
        free(st);
        if (step == 0) {
            float *logits = test_read(ctx, vka_model_logits(m, B), (size_t)B * NC);
            snprintf(tag, sizeof tag, "%s_logits", c);
            compare("logits", logits, tag, 1e-8);
            free(logits);
            for (uint32_t i = 0; i < m->param_count; i++) {
                float *g = test_read(ctx, vka_model_param(m, m->grads, i), m->param_info[i].count);
                char what[96];
                snprintf(tag, sizeof tag, "%s_g%02u", c, i);
                snprintf(what, sizeof what, "gradient of %s (%s)", m->param_info[i].name, c);
                compare(what, g, tag, 1e-8);
                free(g);
            }
        }
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_sgd_step(cmd, &sgd, m->param_floats, m->params, momentum, m->grads));
        test_run(cmd);
    }
    snprintf(tag, sizeof tag, "%s_losses", c);
    const float *want = section(tag)->data;
    for (int s = 0; s < steps; s++)
        if (!(fabsf(losses[s] - want[s]) <= 1e-4f * (1 + fabsf(want[s]))))
            fail_msg("%s: loss at step %d is %.7f, PyTorch %.7f", c, s, losses[s], want[s]);
    /* Final weights, slice by slice (the tensor has alignment padding). */
    snprintf(tag, sizeof tag, "%s_params", c);
    const float *final = section(tag)->data;
    uint64_t at = 0;
    for (uint32_t i = 0; i < m->param_count; i++) {
        float *p = test_read(ctx, vka_model_param(m, m->params, i), m->param_info[i].count);
        double *ref = test_to_double(final + at, m->param_info[i].count);
        test_expect_close(m->param_info[i].name, p, ref, m->param_info[i].count, 1e-8);
        at += m->param_info[i].count;
        free(p), free(ref);
    }
    float *bn = test_read(ctx, m->bn_stats, m->bn_floats);
    snprintf(tag, sizeof tag, "%s_bn", c);
    compare("BN running statistics", bn, tag, 1e-10);
    if (masked) assert_memory_equal(bn, bn0->data, bn0->bytes);
    free(bn);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    vka_model_destroy(m);
    cJSON_Delete(cfg);
    vka_checkpoint_free(&golden);
}

static void unmasked_step_matches_pytorch(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    run_case(ctx, "u", 0);
    test_context_finish(ctx);
}

static void masked_step_matches_pytorch_and_keeps_bn_statistics(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    run_case(ctx, "m", 1);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unmasked_step_matches_pytorch),
        cmocka_unit_test(masked_step_matches_pytorch_and_keeps_bn_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
