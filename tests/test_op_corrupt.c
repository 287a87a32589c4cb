/* The corruption suite (src/data/corrupt.c, shaders/corrupt_*.comp) vs its C reference
 * (tests/ref/ref_corrupt.c), for every type and severity.
 *
 * Tolerance (uint8 outputs): every pixel within 1 level of the reference, and at most 1% of
 * the pixels of a run 1 level off. The shaders compute in fp32, the reference in double:
 * a value within ~1e-4 of a .5 boundary can round either way. jpeg_compression is integer
 * arithmetic on both sides and must match exactly. Shot noise's exact Poisson inversion and
 * the snow threshold are discrete decisions; the test images make an fp32-vs-double flip
 * there improbable (~1e-6 per pixel), and one would show as a larger difference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corrupt.h"
#include "nn/ops_internal.h"
#include "ref_corrupt.h"
#include "test_util.h"

/* A natural-ish image: smooth gradients and blobs per channel plus a little noise. */
static uint8_t *make_images(uint32_t n, uint32_t c, uint32_t h, uint32_t w, uint64_t seed)
{
    test_rng rng = {seed};
    uint8_t *img = malloc((size_t)n * c * h * w + 4);
    for (uint32_t b = 0; b < n; b++) {
        float fx = test_uniform(&rng, 0.5f, 2.5f), fy = test_uniform(&rng, 0.5f, 2.5f), ph = test_uniform(&rng, 0, 6);
        for (uint32_t ch = 0; ch < c; ch++)
            for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++) {
                    double u = (double)x / w, v = (double)y / h;
                    double val = 0.15 + 0.5 * (0.6 * u + 0.4 * v) + 0.2 * sin(6.283 * fx * u + ph + ch) * cos(6.283 * fy * v) +
                                 test_uniform(&rng, -0.04f, 0.04f);
                    if (b == 1 && y < h / 4) val = 0.0;             /* flat black and white areas */
                    if (b == 1 && y > 3 * h / 4) val = 1.0;
                    if (b == 2 && ch == 1 && x < w / 3) val = 0.5;  /* a flat mid-grey in one channel */
                    val = val < 0 ? 0 : val > 1 ? 1 : val;
                    img[((b * c + ch) * h + y) * w + x] = (uint8_t)(val * 255 + 0.5);
                }
    }
    return img;
}

/* Runs one corruption on the GPU; returns the malloc'd output bytes (count, rounded up to
 * words); checks the canary after the output and that the padding bytes are 0. */
static uint8_t *gpu_corrupt(test_rig *r, const vka_corrupt_desc *d, const uint8_t *in)
{
    uint64_t count = (uint64_t)d->n * d->c * d->h * d->w, bytes = (count + 3) / 4 * 4;
    uint8_t *padded = calloc(bytes, 1);
    memcpy(padded, in, count);
    vka_tensor tin, scratch = {0};
    TEST_OK(vka_arena_alloc(r->arena, bytes, &tin));
    TEST_OK(vka_upload(r->ctx, tin, 0, padded, bytes));
    test_guarded out = test_alloc_guarded(r->ctx, r->arena, bytes);
    TEST_OK(vka_fill(r->ctx, out.t, 0xa5a5a5a5u));   /* every byte must be written */
    uint64_t sb = vka_corrupt_scratch_bytes(d);
    if (sb) TEST_OK(vka_arena_alloc(r->arena, sb, &scratch));
    TEST_OK(vka_cmd_reset(r->cmd));
    TEST_OK(vka_corrupt(r->cmd, d, out.t, tin, scratch));
    test_run(r->cmd);
    uint8_t *got = malloc(bytes);
    TEST_OK(vka_download(r->ctx, out.t, 0, got, bytes));
    test_check_guard(r->ctx, out);
    for (uint64_t i = count; i < bytes; i++)
        if (got[i] != 0) fail_msg("%s: padding byte %llu is %u", vka_corruption_name(d->type), (unsigned long long)i, got[i]);
    free(padded);
    return got;
}

/* The stated tolerance; returns the number of pixels 1 level off. */
static size_t expect_matches(const vka_corrupt_desc *d, const uint8_t *got, const uint8_t *ref)
{
    size_t count = (size_t)d->n * d->c * d->h * d->w, off1 = 0;
    for (size_t i = 0; i < count; i++) {
        int diff = abs((int)got[i] - (int)ref[i]);
        if (diff > 1 || (diff == 1 && d->type == VKA_CORRUPT_JPEG_COMPRESSION)) {
            size_t x = i % d->w, y = i / d->w % d->h, c = i / ((size_t)d->w * d->h) % d->c, b = i / ((size_t)d->w * d->h * d->c);
            fail_msg("%s severity %u (%u, %u, %u, %u): pixel (%zu, %zu, %zu, %zu) is %u, reference %u",
                     vka_corruption_name(d->type), d->severity, d->n, d->c, d->h, d->w, b, c, y, x, got[i], ref[i]);
        }
        off1 += diff == 1;
    }
    if (off1 * 100 > count)
        fail_msg("%s severity %u (%u, %u, %u, %u): %zu of %zu pixels 1 level off (more than 1%%)",
                 vka_corruption_name(d->type), d->severity, d->n, d->c, d->h, d->w, off1, count);
    return off1;
}

static void every_corruption_matches_the_reference_at_every_severity(void **state)
{
    (void)state;
    test_rig r = test_rig_open("corrupt");
    /* CIFAR, Fashion-MNIST, and an odd small shape (words straddle rows, JPEG edge blocks,
     * spatial scale 9/32). */
    const uint32_t shapes[][4] = {{3, 3, 32, 32}, {3, 1, 28, 28}, {1, 3, 11, 9}};
    size_t worst_off1 = 0, total_off1 = 0, total = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const uint32_t *s = shapes[si];
        uint8_t *in = make_images(s[0], s[1], s[2], s[3], 11 + si);
        size_t count = (size_t)s[0] * s[1] * s[2] * s[3];
        uint8_t *ref = malloc(count);
        for (int t = 0; t < VKA_CORRUPT_COUNT; t++) {
            if (!vka_corruption_applies((vka_corruption)t, s[1])) continue;
            for (uint32_t sev = 1; sev <= 5; sev++) {
                vka_corrupt_desc d = {s[0], s[1], s[2], s[3], (vka_corruption)t, sev, 1234u + sev, 7};
                uint8_t *got = gpu_corrupt(&r, &d, in);
                ref_corrupt(ref, in, (int)s[0], (int)s[1], (int)s[2], (int)s[3], t, (int)sev, d.seed, d.first_image);
                size_t off1 = expect_matches(&d, got, ref);
                worst_off1 = off1 * 1000 / count > worst_off1 ? off1 * 1000 / count : worst_off1;
                total_off1 += off1, total += count;
                free(got);
            }
        }
        free(in), free(ref);
        vka_arena_destroy(r.arena);   /* keep memory small: a fresh arena per shape */
        TEST_OK(vka_arena_create(r.ctx, &(vka_arena_desc){.name = "corrupt"}, &r.arena));
    }
    printf("corrupt: %zu of %zu pixels 1 level off (worst run %.1f%%)\n", total_off1, total, worst_off1 / 10.0);
    test_rig_close(&r);
}

static int is_random(vka_corruption t)
{
    switch (t) {
    case VKA_CORRUPT_GAUSSIAN_NOISE: case VKA_CORRUPT_SHOT_NOISE: case VKA_CORRUPT_IMPULSE_NOISE:
    case VKA_CORRUPT_SPECKLE_NOISE: case VKA_CORRUPT_GLASS_BLUR: case VKA_CORRUPT_MOTION_BLUR:
    case VKA_CORRUPT_SNOW: case VKA_CORRUPT_FOG: case VKA_CORRUPT_ELASTIC_TRANSFORM: return 1;
    default: return 0;
    }
}

static void corruptions_are_deterministic_and_keyed_by_seed_and_dataset_index(void **state)
{
    (void)state;
    test_rig r = test_rig_open("corrupt");
    const uint32_t n = 4, c = 3, h = 16, w = 16;
    size_t img = (size_t)c * h * w;
    uint8_t *in = make_images(n, c, h, w, 99);
    for (int t = 0; t < VKA_CORRUPT_COUNT; t++) {
        vka_corrupt_desc d = {n, c, h, w, (vka_corruption)t, 4, 42, 100};
        uint8_t *a = gpu_corrupt(&r, &d, in), *b = gpu_corrupt(&r, &d, in);
        if (memcmp(a, b, n * img)) fail_msg("%s: two runs with seed 42 differ", vka_corruption_name(d.type));
        /* the last two images alone, as a batch starting at dataset index 102 */
        vka_corrupt_desc half = d;
        half.n = 2, half.first_image = 102;
        uint8_t *tail = gpu_corrupt(&r, &half, in + 2 * img);
        if (memcmp(a + 2 * img, tail, 2 * img))
            fail_msg("%s: images 102, 103 differ between batchings", vka_corruption_name(d.type));
        d.seed = 43;
        uint8_t *other = gpu_corrupt(&r, &d, in);
        int differs = memcmp(a, other, n * img) != 0;
        if (is_random(d.type) && !differs) fail_msg("%s: seeds 42 and 43 give the same bytes", vka_corruption_name(d.type));
        if (!is_random(d.type) && differs) fail_msg("%s: not random, but the seed changed it", vka_corruption_name(d.type));
        free(a), free(b), free(tail), free(other);
    }
    free(in);
    test_rig_close(&r);
}

/* Mean absolute change from the clean images grows with severity (non-decreasing), except
 * where the published tables themselves are not ordered that way:
 * - saturate: saturation x0.3, x0.1, x1.5, x2 + 0.1, x2.5 + 0.2;
 * - elastic_transform: the random affine shrinks with severity (2.56 px at severity 1, 0.96 at
 *   5) while the elastic field grows, so the mean change falls: checked 1 > 5;
 * - glass_blur: blur sigma 0.05, 0.25, 0.4, 0.25, 0.4 (the blur smooths the shuffle) with 1, 1,
 *   1, 2, 2 shuffles: checked 5 > 1;
 * - pixelate: at 28x28 the grids are 26, 25, 23, 21, 18 pixels, and 28 -> 25 -> 28 happens to
 *   move fewer pixels than 28 -> 26 -> 28: checked 5 > 1.
 * Every severity must change the images. */
static void changes_grow_with_severity(void **state)
{
    (void)state;
    test_rig r = test_rig_open("corrupt");
    const uint32_t shapes[][4] = {{4, 3, 32, 32}, {4, 1, 28, 28}};
    for (size_t si = 0; si < 2; si++) {
        const uint32_t *s = shapes[si];
        size_t count = (size_t)s[0] * s[1] * s[2] * s[3];
        uint8_t *in = make_images(s[0], s[1], s[2], s[3], 5 + si);
        for (int t = 0; t < VKA_CORRUPT_COUNT; t++) {
            if (!vka_corruption_applies((vka_corruption)t, s[1])) continue;
            const char *name = vka_corruption_name((vka_corruption)t);
            double mac[6] = {0};
            for (uint32_t sev = 1; sev <= 5; sev++) {
                vka_corrupt_desc d = {s[0], s[1], s[2], s[3], (vka_corruption)t, sev, 7, 0};
                uint8_t *got = gpu_corrupt(&r, &d, in);
                for (size_t i = 0; i < count; i++) mac[sev] += abs((int)got[i] - (int)in[i]);
                mac[sev] /= (double)count;
                free(got);
                if (!(mac[sev] > 0.05)) fail_msg("%s severity %u (C=%u): mean change %.3f levels", name, sev, s[1], mac[sev]);
            }
            printf("%-18s C=%u mean |change|: %6.2f %6.2f %6.2f %6.2f %6.2f\n", name, s[1], mac[1], mac[2], mac[3],
                   mac[4], mac[5]);
            switch (t) {
            case VKA_CORRUPT_SATURATE: break;
            case VKA_CORRUPT_ELASTIC_TRANSFORM:
                if (!(mac[1] > mac[5])) fail_msg("%s (C=%u): severity 1 changes less than 5", name, s[1]);
                break;
            case VKA_CORRUPT_GLASS_BLUR:
            case VKA_CORRUPT_PIXELATE:
                if (!(mac[5] > mac[1])) fail_msg("%s (C=%u): severity 5 changes less than 1", name, s[1]);
                break;
            default:
                for (int sev = 2; sev <= 5; sev++)
                    if (mac[sev] < mac[sev - 1])
                        fail_msg("%s (C=%u): mean change %.3f at severity %d < %.3f at %d", name, s[1], mac[sev], sev,
                                 mac[sev - 1], sev - 1);
            }
        }
        free(in);
    }
    test_rig_close(&r);
}

static void expect_rejected(vka_context *ctx, const vka_corrupt_desc *d, vka_tensor out, vka_tensor in,
                            vka_tensor scratch, const char *why)
{
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_result rc = vka_corrupt(cmd, d, out, in, scratch);
    if (rc != VKA_ERROR_INVALID_ARGUMENT) fail_msg("%s: accepted (%s)", why, vka_result_string(rc));
    assert_int_equal(vka_cmd_status(cmd), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), "corrupt"))
        fail_msg("%s: error message '%s' does not name the op", why, vka_context_last_error(ctx));
    if (ctx->kernels.count) fail_msg("%s: %u kernels were created by rejected calls", why, ctx->kernels.count);
    vka_cmd_destroy(cmd);
}

static void bad_calls_are_rejected_without_dispatching(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bad"}, &arena));
    vka_tensor a, b, s, small;
    TEST_OK(vka_arena_alloc(arena, 1 << 16, &a));
    TEST_OK(vka_arena_alloc(arena, 1 << 16, &b));
    TEST_OK(vka_arena_alloc(arena, 1 << 16, &s));
    TEST_OK(vka_arena_alloc(arena, 2 * 3 * 32 * 32 - 4, &small));
    const vka_corrupt_desc ok = {2, 3, 32, 32, VKA_CORRUPT_FOG, 3, 1, 0};
    vka_corrupt_desc d;
    d = ok, d.severity = 0;
    expect_rejected(ctx, &d, a, b, s, "severity 0");
    d = ok, d.severity = 6;
    expect_rejected(ctx, &d, a, b, s, "severity 6");
    d = ok, d.type = VKA_CORRUPT_COUNT;
    expect_rejected(ctx, &d, a, b, s, "unknown type");
    d = ok, d.type = (vka_corruption)-1;
    expect_rejected(ctx, &d, a, b, s, "negative type");
    d = ok, d.type = VKA_CORRUPT_SATURATE, d.c = 1;
    expect_rejected(ctx, &d, a, b, s, "saturate on one channel");
    d = ok, d.c = 2;
    expect_rejected(ctx, &d, a, b, s, "two channels");
    d = ok, d.n = 0;
    expect_rejected(ctx, &d, a, b, s, "empty batch");
    d = ok, d.h = 7;
    expect_rejected(ctx, &d, a, b, s, "height 7");
    d = ok, d.w = 129;
    expect_rejected(ctx, &d, a, b, s, "width 129");
    expect_rejected(ctx, &ok, small, b, s, "output too small");
    expect_rejected(ctx, &ok, a, small, s, "input too small");
    expect_rejected(ctx, &ok, a, b, (vka_tensor){0}, "fog without scratch");
    expect_rejected(ctx, &ok, a, b, vka_tensor_slice(s, 0, 32 * 2 - 4), "scratch too small");
    expect_rejected(ctx, &ok, a, vka_tensor_slice(a, 256, 8192), s, "output overlaps input");
    expect_rejected(ctx, &ok, a, b, vka_tensor_slice(a, 4096, 256), "scratch overlaps output");
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void names_parse_and_channel_lists(void **state)
{
    (void)state;
    vka_corruption list[VKA_CORRUPT_COUNT], t;
    for (int i = 0; i < VKA_CORRUPT_COUNT; i++) {
        const char *name = vka_corruption_name((vka_corruption)i);
        assert_non_null(name);
        assert_string_equal(name, ref_corrupt_name(i));   /* the reference's numbering agrees */
        TEST_OK(vka_corruption_parse(name, &t));
        assert_int_equal(t, i);
    }
    assert_null(vka_corruption_name(VKA_CORRUPT_COUNT));
    assert_int_equal(vka_corruption_parse("frost", &t), VKA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(vka_corruption_list(1, list), 16);
    for (int i = 0; i < 16; i++) assert_int_not_equal(list[i], VKA_CORRUPT_SATURATE);
    assert_int_equal(vka_corruption_list(3, list), 17);
    assert_int_equal(vka_corruption_list(2, list), 0);
    uint32_t n;
    char bad[32];
    TEST_OK(vka_corruption_parse_list("all", 3, list, &n, bad, sizeof bad));
    assert_int_equal(n, 17);
    TEST_OK(vka_corruption_parse_list("fog,snow,fog", 1, list, &n, bad, sizeof bad));
    assert_int_equal(n, 2);
    assert_int_equal(list[0], VKA_CORRUPT_FOG);
    assert_int_equal(list[1], VKA_CORRUPT_SNOW);
    assert_int_equal(vka_corruption_parse_list("fog,saturate", 1, list, &n, bad, sizeof bad), VKA_ERROR_INVALID_ARGUMENT);
    assert_string_equal(bad, "saturate");
    assert_int_equal(vka_corruption_parse_list("fog,,snow", 3, list, &n, bad, sizeof bad), VKA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(vka_corruption_parse_list("glass", 3, list, &n, bad, sizeof bad), VKA_ERROR_INVALID_ARGUMENT);
    assert_string_equal(bad, "glass");
}

/* A plain double-precision JPEG round trip of one 8x8 block at quality 50 (the quantization
 * table itself), written from the JPEG standard (ITU T.81: the DCT of A.3.3, Annex K's tables),
 * not from the reference's integer code. */
static void double_jpeg_block(double g[64], const int orig[64], const int table[64])
{
    double a[8][8], f[64];
    for (int u = 0; u < 8; u++)
        for (int x = 0; x < 8; x++) a[u][x] = (u ? 0.5 : sqrt(0.125)) * cos((2 * x + 1) * u * 3.14159265358979 / 16);
    for (int v = 0; v < 8; v++)
        for (int u = 0; u < 8; u++) {
            double acc = 0;
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++) acc += a[v][y] * a[u][x] * (orig[y * 8 + x] - 128);
            double q = table[v * 8 + u];
            f[v * 8 + u] = (acc < 0 ? -floor(-acc / q + 0.5) : floor(acc / q + 0.5)) * q;
        }
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double acc = 0;
            for (int v = 0; v < 8; v++)
                for (int u = 0; u < 8; u++) acc += a[v][y] * a[u][x] * f[v * 8 + u];
            acc = floor(acc + 128.5);
            g[y * 8 + x] = acc < 0 ? 0 : acc > 255 ? 255 : acc;
        }
}

/* The reference's integer JPEG block path against a plain double DCT: with every
 * quantizer 1 (quality 100) it reproduces the block within 1 level; at quality 50, on
 * blocks of uniform noise (the worst case), with the luminance and the chrominance tables,
 * the mean difference stays below 0.3 levels and at most 5% of samples differ by more than
 * 1. Those come from whole blocks where one coefficient / quantizer lies within ~0.03 of a
 * half and fixed point and double round it differently (about 1 coefficient in 1400 here, as
 * with any fixed-point codec). */
static void reference_jpeg_block_agrees_with_a_double_dct(void **state)
{
    (void)state;
    /* Annex K, tables K.1 (luminance) and K.2 (chrominance). */
    static const int QL[64] = {16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                               14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                               18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                               49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
    static const int QC[64] = {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                               24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
                               99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
                               99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};
    for (int chroma = 0; chroma < 2; chroma++) {
        test_rng rng = {3 + chroma};
        double sum_diff = 0;
        int n = 0, big = 0;
        for (int trial = 0; trial < 200; trial++) {
            int blk[64], orig[64];
            for (int k = 0; k < 64; k++) orig[k] = blk[k] = (int)test_uniform(&rng, 0, 256);
            ref_jpeg_block(blk, 100, chroma);
            for (int k = 0; k < 64; k++)
                if (abs(blk[k] - orig[k]) > 1) fail_msg("quality 100: sample %d is %d, was %d", k, blk[k], orig[k]);
            double g[64];
            double_jpeg_block(g, orig, chroma ? QC : QL);
            for (int k = 0; k < 64; k++) blk[k] = orig[k];
            ref_jpeg_block(blk, 50, chroma);
            for (int k = 0; k < 64; k++) sum_diff += fabs(blk[k] - g[k]), n++, big += fabs(blk[k] - g[k]) > 1;
        }
        const char *which = chroma ? "chrominance" : "luminance";
        printf("jpeg %s: mean |integer - double| at quality 50: %.3f levels, %d of %d more than 1\n", which,
               sum_diff / n, big, n);
        if (sum_diff / n > 0.3 || big * 20 > n)
            fail_msg("%s, quality 50: mean |integer - double| = %.3f levels, %d of %d samples more than 1 off", which,
                     sum_diff / n, big, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_parse_and_channel_lists),
        cmocka_unit_test(reference_jpeg_block_agrees_with_a_double_dct),
        cmocka_unit_test(every_corruption_matches_the_reference_at_every_severity),
        cmocka_unit_test(corruptions_are_deterministic_and_keyed_by_seed_and_dataset_index),
        cmocka_unit_test(changes_grow_with_severity),
        cmocka_unit_test(bad_calls_are_rejected_without_dispatching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
