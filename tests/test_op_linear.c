/* Linear layer (src/nn/linear.c) against tests/ref/ref_linear.c.
 *
 * Tolerances (normalized error e = sum (gpu-ref)^2 / sum ref^2, ref in double from the
 * same float inputs):
 *   y, dx, dw   e <= 1e-10  (fp32 dot products of length <= 130: ~1e-14 typical)
 *   db          e <= 1e-10  (fp32 column sums over n <= 70 by a fixed tree)
 * Determinism: forward and backward run twice give the same bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/linear.h"
#include "ref_ops.h"
#include "test_util.h"

#define TOL 1e-10

/* n, in, out: batch 1, sizes 1, odd sizes, and one shape larger than a matmul tile
 * (64 x 64 tiled, 8 x 8 texel blocks) in every dimension. */
static const vka_linear_shape shapes[] = {{1, 1, 1}, {1, 64, 10}, {5, 33, 7}, {3, 17, 1}, {70, 130, 67}};
#define NSHAPES (sizeof shapes / sizeof *shapes)

typedef struct case_data {
    vka_linear_shape s;
    float *x, *w, *b, *dy;
    double *xd, *wd, *bd, *dyd;
} case_data;

static case_data make_case(test_rng *rng, vka_linear_shape s)
{
    case_data c = {.s = s};
    size_t nx = (size_t)s.n * s.in, nw = (size_t)s.out * s.in, ny = (size_t)s.n * s.out;
    c.x = malloc(nx * 4), c.w = malloc(nw * 4), c.b = malloc(s.out * 4), c.dy = malloc(ny * 4);
    test_fill_uniform(rng, c.x, nx, -1, 1);
    test_fill_uniform(rng, c.w, nw, -0.5f, 0.5f);
    test_fill_uniform(rng, c.b, s.out, -1, 1);
    test_fill_uniform(rng, c.dy, ny, -1, 1);
    c.xd = test_to_double(c.x, nx), c.wd = test_to_double(c.w, nw), c.bd = test_to_double(c.b, s.out);
    c.dyd = test_to_double(c.dy, ny);
    return c;
}

static void free_case(case_data *c)
{
    free(c->x), free(c->w), free(c->b), free(c->dy), free(c->xd), free(c->wd), free(c->bd), free(c->dyd);
}

static void check_forward(vka_context *ctx, vka_cmd *cmd, vka_arena *arena, const case_data *c, int bias)
{
    const vka_linear_shape *s = &c->s;
    size_t ny = (size_t)s->n * s->out;
    vka_tensor x = test_tensor(ctx, arena, c->x, (size_t)s->n * s->in);
    vka_tensor w = test_tensor(ctx, arena, c->w, (size_t)s->out * s->in);
    vka_tensor b = bias ? test_tensor(ctx, arena, c->b, s->out) : (vka_tensor){0};
    test_guarded y = test_alloc_guarded(ctx, arena, ny * 4);
    TEST_OK(vka_cmd_reset(cmd));
    TEST_OK(vka_linear_forward(cmd, s, y.t, x, w, b));
    test_run(cmd);
    float *got = test_read(ctx, y.t, ny);
    double *ref = malloc(ny * sizeof *ref);
    ref_linear_forward(ref, c->xd, c->wd, bias ? c->bd : NULL, s->n, s->in, s->out);
    char what[96];
    snprintf(what, sizeof what, "linear forward n=%u in=%u out=%u bias=%d", s->n, s->in, s->out, bias);
    test_expect_close(what, got, ref, ny, TOL);
    test_check_guard(ctx, y);
    free(got), free(ref);
}

/* Runs the backward with the outputs selected by `want` (bit 0 dx, 1 dw, 2 db). */
static void check_backward(vka_context *ctx, vka_cmd *cmd, vka_arena *arena, const case_data *c, int want)
{
    const vka_linear_shape *s = &c->s;
    size_t nx = (size_t)s->n * s->in, nw = (size_t)s->out * s->in, ny = (size_t)s->n * s->out;
    vka_tensor x = test_tensor(ctx, arena, c->x, nx), w = test_tensor(ctx, arena, c->w, nw);
    vka_tensor dy = test_tensor(ctx, arena, c->dy, ny);
    test_guarded dx = test_alloc_guarded(ctx, arena, nx * 4), dw = test_alloc_guarded(ctx, arena, nw * 4),
                 db = test_alloc_guarded(ctx, arena, s->out * 4);
    /* Outputs start as garbage: the backward overwrites, never accumulates. */
    float *junk = malloc(nx > nw ? nx * 4 : nw * 4);
    for (size_t i = 0; i < (nx > nw ? nx : nw); i++) junk[i] = 1e3f;
    TEST_OK(vka_upload(ctx, dx.t, 0, junk, nx * 4));
    TEST_OK(vka_upload(ctx, dw.t, 0, junk, nw * 4));
    TEST_OK(vka_upload(ctx, db.t, 0, junk, s->out * 4));
    TEST_OK(vka_cmd_reset(cmd));
    vka_tensor none = {0};
    TEST_OK(vka_linear_backward(cmd, s, want & 1 ? dx.t : none, want & 2 ? dw.t : none, want & 4 ? db.t : none, dy, x,
                                w));
    test_run(cmd);
    double *rdx = malloc(nx * sizeof(double)), *rdw = malloc(nw * sizeof(double));
    double *rdb = malloc(s->out * sizeof(double));
    ref_linear_backward(rdx, rdw, rdb, c->dyd, c->xd, c->wd, s->n, s->in, s->out);
    char what[96];
    struct { test_guarded g; double *ref; size_t n; const char *name; } outs[3] = {
        {dx, rdx, nx, "dx"}, {dw, rdw, nw, "dw"}, {db, rdb, s->out, "db"}};
    for (int i = 0; i < 3; i++) {
        float *got = test_read(ctx, outs[i].g.t, outs[i].n);
        if (want & (1 << i)) {
            snprintf(what, sizeof what, "linear backward %s n=%u in=%u out=%u", outs[i].name, s->n, s->in, s->out);
            test_expect_close(what, got, outs[i].ref, outs[i].n, TOL);
        } else {
            for (size_t j = 0; j < outs[i].n; j++)
                if (got[j] != 1e3f) fail_msg("linear backward wrote the absent %s", outs[i].name);
        }
        test_check_guard(ctx, outs[i].g);
        free(got);
    }
    free(rdx), free(rdw), free(rdb), free(junk);
}

static void run_all_shapes(int backward_masks)
{
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "linear"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {1234};
    for (size_t i = 0; i < NSHAPES; i++) {
        case_data c = make_case(&rng, shapes[i]);
        if (!backward_masks) {
            check_forward(ctx, cmd, arena, &c, 1);
            check_forward(ctx, cmd, arena, &c, 0);
        } else {
            check_backward(ctx, cmd, arena, &c, 7);
            if (i == NSHAPES - 1 || i == 2)
                for (int want = 0; want < 7; want++) check_backward(ctx, cmd, arena, &c, want);
        }
        free_case(&c);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void linear_forward_matches_reference_with_and_without_bias(void **state)
{
    (void)state;
    run_all_shapes(0);
}

static void linear_backward_matches_reference_and_skips_absent_gradients(void **state)
{
    (void)state;
    run_all_shapes(1);
}

/* The matmul variant follows the device; the other one must be right too. */
static void linear_matches_reference_on_the_other_matmul_variant(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    const char *other = vka_context_device(ctx)->type == VKA_DEVICE_CPU ? "tiled" : "texel";
    setenv("VKANCHOR_MATMUL", other, 1);
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "linear"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {99};
    for (size_t i = 2; i < NSHAPES; i++) {
        case_data c = make_case(&rng, shapes[i]);
        check_forward(ctx, cmd, arena, &c, 1);
        check_backward(ctx, cmd, arena, &c, 7);
        free_case(&c);
    }
    unsetenv("VKANCHOR_MATMUL");
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void linear_repeats_bit_for_bit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "linear"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    test_rng rng = {5};
    case_data c = make_case(&rng, shapes[NSHAPES - 1]);
    const vka_linear_shape *s = &c.s;
    size_t nx = (size_t)s->n * s->in, nw = (size_t)s->out * s->in, ny = (size_t)s->n * s->out;
    vka_tensor x = test_tensor(ctx, arena, c.x, nx), w = test_tensor(ctx, arena, c.w, nw);
    vka_tensor b = test_tensor(ctx, arena, c.b, s->out), dy = test_tensor(ctx, arena, c.dy, ny);
    vka_tensor y = test_tensor(ctx, arena, NULL, ny), dx = test_tensor(ctx, arena, NULL, nx);
    vka_tensor dw = test_tensor(ctx, arena, NULL, nw), db = test_tensor(ctx, arena, NULL, s->out);
    TEST_OK(vka_linear_forward(cmd, s, y, x, w, b));
    TEST_OK(vka_linear_backward(cmd, s, dx, dw, db, dy, x, w));
    float *first[4], *second[4];
    vka_tensor outs[4] = {y, dx, dw, db};
    size_t sizes[4] = {ny, nx, nw, s->out};
    for (int run = 0; run < 2; run++) {
        test_run(cmd);
        for (int i = 0; i < 4; i++) (run ? second : first)[i] = test_read(ctx, outs[i], sizes[i]);
    }
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(first[i], second[i], sizes[i] * 4);
        free(first[i]), free(second[i]);
    }
    free_case(&c);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void linear_rejects_mismatched_sizes_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "linear"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_linear_shape s = {4, 6, 5};
    vka_tensor x = test_tensor(ctx, arena, NULL, 24), w = test_tensor(ctx, arena, NULL, 30);
    vka_tensor b = test_tensor(ctx, arena, NULL, 5), y = test_tensor(ctx, arena, NULL, 20);
    vka_tensor small = test_tensor(ctx, arena, NULL, 4), none = {0};
    test_expect_rejected(ctx, cmd, vka_linear_forward(cmd, &s, small, x, w, b), "linear_forward");
    test_expect_rejected(ctx, cmd, vka_linear_forward(cmd, &s, y, small, w, b), "linear_forward");
    test_expect_rejected(ctx, cmd, vka_linear_forward(cmd, &s, y, x, small, b), "linear_forward");
    test_expect_rejected(ctx, cmd, vka_linear_forward(cmd, &s, y, x, w, small), "linear_forward"); /* bias of 4 for out=5 */
    test_expect_rejected(ctx, cmd, vka_linear_forward(cmd, &(vka_linear_shape){4, 0, 5}, y, x, w, b), "linear_forward");
    test_expect_rejected(ctx, cmd, vka_linear_forward(cmd, NULL, y, x, w, b), "linear_forward");
    /* dx, dw fine but db too small: fails before the first matmul is recorded. */
    test_expect_rejected(ctx, cmd, vka_linear_backward(cmd, &s, x, w, small, y, x, w), "linear_backward");
    test_expect_rejected(ctx, cmd, vka_linear_backward(cmd, &s, x, none, none, small, x, w), "linear_backward");
    test_expect_rejected(ctx, cmd, vka_linear_backward(cmd, &s, none, w, none, y, small, w), "linear_backward");
    test_expect_rejected(ctx, cmd, vka_linear_backward(cmd, &s, x, none, none, y, x, small), "linear_backward");
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_forward_matches_reference_with_and_without_bias),
        cmocka_unit_test(linear_backward_matches_reference_and_skips_absent_gradients),
        cmocka_unit_test(linear_matches_reference_on_the_other_matmul_variant),
        cmocka_unit_test(linear_repeats_bit_for_bit),
        cmocka_unit_test(linear_rejects_mismatched_sizes_without_dispatching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
