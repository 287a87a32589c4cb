/* GPU augmentation (crop with zero padding, flip, normalization) vs a C reference.
 * Tolerance: normalized error <= 1e-12 (one multiply-add per element in fp32). */
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "test_util.h"

static void ref_augment(double *out, const uint8_t *pix, const int32_t *prm, const vka_augment_shape *s)
{
    for (uint32_t b = 0; b < s->n; b++)
        for (uint32_t c = 0; c < s->c; c++)
            for (uint32_t y = 0; y < s->h; y++)
                for (uint32_t x = 0; x < s->w; x++) {
                    int xs = (prm[3 * b + 2] ? (int)s->w - 1 - (int)x : (int)x) + prm[3 * b];
                    int ys = (int)y + prm[3 * b + 1];
                    double v = 0;
                    if (xs >= 0 && xs < (int)s->w && ys >= 0 && ys < (int)s->h)
                        v = pix[((b * s->c + c) * s->h + (uint32_t)ys) * s->w + (uint32_t)xs];
                    out[((b * s->c + c) * s->h + y) * s->w + x] = (v / 255.0 - s->mean[c]) / s->std[c];
                }
}

static void augment_matches_reference_for_crops_flips_and_channels(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "augment"}, &arena));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    const vka_augment_shape shapes[] = {
        {.n = 3, .c = 1, .h = 28, .w = 28, .mean = {0.286f}, .std = {0.353f}},
        {.n = 2, .c = 3, .h = 7, .w = 5, .mean = {0.49f, 0.48f, 0.45f}, .std = {0.25f, 0.24f, 0.26f}},
        {.n = 1, .c = 1, .h = 1, .w = 1, .mean = {0.5f}, .std = {2.0f}},
    };
    test_rng rng = {5};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const vka_augment_shape *s = &shapes[si];
        size_t count = (size_t)s->n * s->c * s->h * s->w, words = (count + 3) / 4;
        uint8_t *pix = calloc(words, 4);
        for (size_t i = 0; i < count; i++) pix[i] = (uint8_t)(test_uniform(&rng, 0, 256));
        int32_t *prm = malloc(s->n * 12);
        for (uint32_t b = 0; b < s->n; b++) {
            prm[3 * b] = (int32_t)(b * 3 % 9) - 4; /* offsets across [-4, 4], padding included */
            prm[3 * b + 1] = 4 - (int32_t)(b * 5 % 9);
            prm[3 * b + 2] = (int32_t)(b & 1);
        }
        vka_tensor tp, tq;
        TEST_OK(vka_arena_alloc(arena, words * 4, &tp));
        TEST_OK(vka_upload(ctx, tp, 0, pix, words * 4));
        tq = test_tensor_i32(ctx, arena, prm, 3 * s->n);
        test_guarded out = test_alloc_guarded(ctx, arena, count * 4);
        TEST_OK(vka_cmd_reset(cmd));
        TEST_OK(vka_augment(cmd, s, out.t, tp, tq));
        test_run(cmd);
        float *got = test_read(ctx, out.t, count);
        double *ref = malloc(count * sizeof *ref);
        ref_augment(ref, pix, prm, s);
        test_expect_close("augment", got, ref, count, 1e-12);
        test_check_guard(ctx, out);
        free(pix), free(prm), free(got), free(ref);
    }
    vka_augment_shape bad = {.n = 2, .c = 5, .h = 4, .w = 4, .std = {1, 1, 1, 1}};
    vka_tensor t;
    TEST_OK(vka_arena_alloc(arena, 4096, &t));
    TEST_OK(vka_cmd_reset(cmd));
    assert_int_equal(vka_augment(cmd, &bad, t, t, t), VKA_ERROR_INVALID_ARGUMENT);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(augment_matches_reference_for_crops_flips_and_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
