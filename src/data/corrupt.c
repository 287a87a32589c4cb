/* CIFAR-10-C style corruptions on the GPU (shaders/corrupt_*.comp). The severity tables are
 * those of CIFAR-10-C's released generator (make_cifar_c.py, hendrycks/robustness); spatial
 * ones (radii, sigmas, pixel offsets) are scaled by s = min(H, W) / 32 (they were set for
 * 32x32 images; 28/32 for Fashion-MNIST). docs/corruptions.md has the same tables and every
 * approximation; tests/test_op_corrupt.c re-derives them independently. */
#include "data/corrupt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/ops_internal.h"

#include "corrupt_blur.spv.h"
#include "corrupt_color.spv.h"
#include "corrupt_color_stats.spv.h"
#include "corrupt_field.spv.h"
#include "corrupt_glass.spv.h"
#include "corrupt_jpeg.spv.h"
#include "corrupt_noise.spv.h"
#include "corrupt_snow.spv.h"
#include "corrupt_stats.spv.h"
#include "corrupt_warp.spv.h"

/* Mirror of Push in shaders/include/corrupt_common.glsl. */
struct corrupt_push {
    uint32_t n, c, h, w;
    uint32_t type, seed, first_image, mode;
    int32_t ip[8];
    float fp[16];
};
_Static_assert(sizeof(struct corrupt_push) == 128, "mirror of Push in shaders/include/corrupt_common.glsl");

enum kernel_id { K_NOISE, K_COLOR, K_COLOR_STATS, K_STATS, K_BLUR, K_GLASS, K_FIELD, K_WARP, K_SNOW, K_JPEG, K_COUNT };

static const struct {
    const char *name;
    const uint32_t *spirv;
    size_t bytes;
    uint32_t bindings;  /* all storage buffers */
} KERNELS[K_COUNT] = {
    [K_NOISE] = {"corrupt_noise", vka_spv_corrupt_noise, sizeof vka_spv_corrupt_noise, 2},
    [K_COLOR] = {"corrupt_color", vka_spv_corrupt_color, sizeof vka_spv_corrupt_color, 2},
    [K_COLOR_STATS] = {"corrupt_color_stats", vka_spv_corrupt_color_stats, sizeof vka_spv_corrupt_color_stats, 3},
    [K_STATS] = {"corrupt_stats", vka_spv_corrupt_stats, sizeof vka_spv_corrupt_stats, 2},
    [K_BLUR] = {"corrupt_blur", vka_spv_corrupt_blur, sizeof vka_spv_corrupt_blur, 2},
    [K_GLASS] = {"corrupt_glass", vka_spv_corrupt_glass, sizeof vka_spv_corrupt_glass, 3},
    [K_FIELD] = {"corrupt_field", vka_spv_corrupt_field, sizeof vka_spv_corrupt_field, 1},
    [K_WARP] = {"corrupt_warp", vka_spv_corrupt_warp, sizeof vka_spv_corrupt_warp, 3},
    [K_SNOW] = {"corrupt_snow", vka_spv_corrupt_snow, sizeof vka_spv_corrupt_snow, 3},
    [K_JPEG] = {"corrupt_jpeg", vka_spv_corrupt_jpeg, sizeof vka_spv_corrupt_jpeg, 2},
};

/* ---- names --------------------------------------------------------------------------- */

static const char *const NAMES[VKA_CORRUPT_COUNT] = {
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "saturate",
};

const char *vka_corruption_name(vka_corruption type)
{
    return (unsigned)type < VKA_CORRUPT_COUNT ? NAMES[type] : NULL;
}

vka_result vka_corruption_parse(const char *name, vka_corruption *out)
{
    for (int t = 0; t < VKA_CORRUPT_COUNT; t++)
        if (name && strcmp(name, NAMES[t]) == 0) {
            *out = (vka_corruption)t;
            return VKA_SUCCESS;
        }
    return VKA_ERROR_INVALID_ARGUMENT;
}

int vka_corruption_applies(vka_corruption type, uint32_t c)
{
    if ((unsigned)type >= VKA_CORRUPT_COUNT || (c != 1 && c != 3)) return 0;
    return type != VKA_CORRUPT_SATURATE || c == 3;
}

uint32_t vka_corruption_list(uint32_t c, vka_corruption *out)
{
    uint32_t k = 0;
    for (int t = 0; t < VKA_CORRUPT_COUNT; t++)
        if (vka_corruption_applies((vka_corruption)t, c)) out[k++] = (vka_corruption)t;
    return k;
}

vka_result vka_corruption_parse_list(const char *list, uint32_t c, vka_corruption *out, uint32_t *count,
                                     char *bad, size_t bad_size)
{
    *count = 0;
    if (bad_size) bad[0] = '\0';
    if (strcmp(list, "all") == 0) {
        *count = vka_corruption_list(c, out);
        return *count ? VKA_SUCCESS : VKA_ERROR_INVALID_ARGUMENT;
    }
    const char *s = list;
    for (;;) {
        size_t len = strcspn(s, ",");
        char name[64];
        vka_corruption t;
        int ok = len > 0 && len < sizeof name;
        if (ok) {
            memcpy(name, s, len);
            name[len] = '\0';
            ok = vka_corruption_parse(name, &t) == VKA_SUCCESS && vka_corruption_applies(t, c);
        }
        if (!ok) {
            if (bad_size) snprintf(bad, bad_size, "%.*s", (int)len, s);
            *count = 0;
            return VKA_ERROR_INVALID_ARGUMENT;
        }
        int seen = 0;
        for (uint32_t i = 0; i < *count; i++) seen |= out[i] == t;
        if (!seen) out[(*count)++] = t;
        if (s[len] == '\0') return VKA_SUCCESS;
        s += len + 1;
    }
}

/* ---- parameter tables ------------------------------------------------------------------
 * Severity 1..5 = index 0..4. Comments give the shader parameters each one becomes. */

/* gaussian_noise: x + N(0, c) on [0, 1]. fp0 = c */
static const double T_GAUSSIAN_NOISE[5] = {0.04, 0.06, 0.08, 0.09, 0.10};
/* shot_noise: Poisson(x c) / c. fp0 = c, fp1 = lambda below which Poisson is exact */
static const double T_SHOT_NOISE[5] = {500, 250, 100, 75, 50};
#define POISSON_EXACT_BELOW 30.5   /* no integer pixel gives x c / 255 == 30.5 at any severity */
/* impulse_noise: skimage 's&p', amount c, salt:pepper 1:1 per value. ip0 = floor(2^24 c/2)
 * (pepper below), ip1 = floor(2^24 c) (salt below, above ip0) against 24 random bits */
static const double T_IMPULSE_NOISE[5] = {0.01, 0.02, 0.03, 0.05, 0.07};
/* speckle_noise: x + x N(0, c). fp0 = c */
static const double T_SPECKLE_NOISE[5] = {0.06, 0.1, 0.12, 0.16, 0.2};
/* gaussian_blur: sigma (pixels at 32x32). fp0 = sigma s, ip0 = int(4 sigma s + 1/2) */
static const double T_GAUSSIAN_BLUR[5] = {0.4, 0.6, 0.7, 0.8, 1.0};
/* defocus_blur: (disk radius, alias blur sigma), pixels at 32x32, both scaled by max(s, 1)
 * (sd). ip0 = floor(r sd) + 1 (kernel half-size), fp0 = (r sd)^2, fp1 = 1 / disk area,
 * fp2, fp3 = 3-tap Gaussian centre and side weights */
static const double T_DEFOCUS_BLUR[5][2] = {{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}};
/* glass_blur: (sigma, max_delta, iterations). fp0 = sigma s, ip0 = int(4 sigma s + 1/2),
 * ip1 = max(1, round(max_delta s)), ip2 = iterations */
static const double T_GLASS_BLUR[5][3] = {{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}};
/* motion_blur: ImageMagick (radius, sigma), pixels at 32x32; angle uniform in [-45, 45).
 * ip0 = 2 ceil(radius s) + 1 taps, fp0 = sigma s */
static const double T_MOTION_BLUR[5][2] = {{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}};
/* zoom_blur: zoom factors 1 + k/100, k = 0 .. K-1: np.arange(1, 1.06 | 1.11 | 1.16 | 1.21 |
 * 1.26, 0.01) has 7, 12, 16, 21, 26 elements (float rounding keeps 1.06 and 1.11). ip0 = K */
static const int T_ZOOM_BLUR[5] = {7, 12, 16, 21, 26};
/* snow: (loc, scale, zoom, threshold, blur radius, blur sigma, blend); angle uniform in
 * [-135, -45). Layer pass: ip0 = 100 zoom, fp0 = loc, fp1 = scale, fp2 = threshold;
 * main pass: ip0 = 2 ceil(radius s) + 1 taps, fp0 = sigma s, fp1 = blend */
static const double T_SNOW[5][7] = {
    {0.1, 0.2, 1, 0.6, 8, 3, 0.95},
    {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
    {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
    {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
    {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8},
};
/* fog: (amount, wibble decay). ip0 = M (fog map size: the power of two >= max(H, W)),
 * ip1 = log2 M levels, fp0 = amount, fp1 = decay^-2 */
static const double T_FOG[5][2] = {{0.2, 3}, {0.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}};
/* brightness: HSV value + c. fp0 = c */
static const double T_BRIGHTNESS[5] = {0.05, 0.1, 0.15, 0.2, 0.3};
/* contrast: (x - mean) c + mean, per channel. fp0 = c */
static const double T_CONTRAST[5] = {0.75, 0.5, 0.4, 0.3, 0.15};
/* elastic_transform: (alpha, sigma, affine) as fractions of the image size (IMSIZE = 32 in
 * the original; here min(H, W)). Field: fp0 = sigma, ip0 = int(3 sigma + 1/2), fp1 = alpha,
 * ip1 = scratch word of the displacement; warp: fp2 = affine, ip1, ip2 = (alpha > 0) */
static const double T_ELASTIC[5][3] = {{0, 0, 0.08}, {0.05, 0.2, 0.07}, {0.08, 0.06, 0.06}, {0.1, 0.04, 0.05}, {0.1, 0.03, 0.03}};
/* pixelate: BOX down to floor(size c), BOX back up. ip0 = floor(W c), ip1 = floor(H c) */
static const int T_PIXELATE_PERCENT[5] = {95, 90, 85, 75, 65};
/* jpeg_compression: quality. ip0 = quality */
static const int T_JPEG[5] = {80, 65, 58, 50, 40};
/* saturate: HSV saturation s c0 + c1. fp0 = c0, fp1 = c1 */
static const double T_SATURATE[5][2] = {{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}};

static int32_t gauss_radius(double sigma, double truncate) { return (int32_t)(truncate * sigma + 0.5); }

/* ---- the op ---------------------------------------------------------------------------- */

uint64_t vka_corrupt_scratch_bytes(const vka_corrupt_desc *d)
{
    uint64_t n = d->n, plane = (uint64_t)d->h * d->w;
    switch (d->type) {
    case VKA_CORRUPT_CONTRAST:
    case VKA_CORRUPT_FOG: return 32 * n;                     /* (N, 8) statistics */
    case VKA_CORRUPT_GLASS_BLUR: return 4 * n * d->c * plane; /* the shuffled image */
    case VKA_CORRUPT_ELASTIC_TRANSFORM: return 16 * n * plane; /* two (N, 2, H, W) fields */
    case VKA_CORRUPT_SNOW: return 4 * n * plane;             /* the snow layer */
    default: return 0;
    }
}

static vka_result get_kernel(vka_context *ctx, enum kernel_id id, uint32_t wg, vka_kernel **k)
{
    vka_kernel_desc desc = {
        .name = KERNELS[id].name, .spirv = KERNELS[id].spirv, .spirv_bytes = KERNELS[id].bytes,
        .num_bindings = KERNELS[id].bindings, .push_bytes = sizeof(struct corrupt_push), .local_size = {wg},
    };
    return vka_kernel_get(ctx, &desc, k);
}

/* One dispatch of `id` over `items` invocations. */
static vka_result run(vka_cmd *cmd, enum kernel_id id, uint32_t wanted_wg, const vka_tensor *t,
                      const struct corrupt_push *push, uint64_t items)
{
    vka_context *ctx = vka_cmd_context(cmd);
    vka_kernel *k;
    vka_result rc = get_kernel(ctx, id, vka_plan_workgroup_1d(ctx, wanted_wg), &k);
    if (rc) return rc;
    return vka_dispatch_items(cmd, k, t, KERNELS[id].bindings, push, items);
}

vka_result vka_corrupt(vka_cmd *cmd, const vka_corrupt_desc *d, vka_tensor out_pixels, vka_tensor in_pixels,
                       vka_tensor scratch)
{
    vka_context *ctx = vka_cmd_context(cmd);
    const char *name = vka_corruption_name(d->type);
    if (!name)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "corrupt: unknown corruption type %d", (int)d->type);
    if (d->severity < 1 || d->severity > 5)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "corrupt %s: severity %u (1 .. 5)", name, d->severity);
    if (d->n == 0 || (d->c != 1 && d->c != 3) || d->h < VKA_CORRUPT_MIN_SIZE || d->w < VKA_CORRUPT_MIN_SIZE ||
        d->h > VKA_CORRUPT_MAX_SIZE || d->w > VKA_CORRUPT_MAX_SIZE)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "corrupt %s: batch (%u, %u, %u, %u) needs N >= 1, C = 1 or 3, %u <= H, W <= %u", name,
                            d->n, d->c, d->h, d->w, VKA_CORRUPT_MIN_SIZE, VKA_CORRUPT_MAX_SIZE);
    if (!vka_corruption_applies(d->type, d->c))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "corrupt %s: needs 3 channels, the batch has %u", name,
                            d->c);
    uint64_t count = (uint64_t)d->n * d->c * d->h * d->w, bytes = (count + 3) / 4 * 4;
    uint64_t sbytes = vka_corrupt_scratch_bytes(d), range = ctx->limits.max_storage_buffer_range;
    if (out_pixels.size < bytes || in_pixels.size < bytes || scratch.size < sbytes || bytes > range ||
        sbytes > range)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "corrupt %s: batch (%u, %u, %u, %u) needs out and in %llu bytes, scratch %llu (at most "
                            "%llu each); given %llu, %llu, %llu", name, d->n, d->c, d->h, d->w,
                            (unsigned long long)bytes, (unsigned long long)sbytes, (unsigned long long)range,
                            (unsigned long long)out_pixels.size, (unsigned long long)in_pixels.size,
                            (unsigned long long)scratch.size);
    if (vka_tensor_overlaps(out_pixels, in_pixels) || (sbytes && (vka_tensor_overlaps(out_pixels, scratch) || vka_tensor_overlaps(in_pixels, scratch))))
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "corrupt %s: out, in and scratch must not overlap", name);

    const int sev = (int)d->severity - 1;
    const double s = (d->h < d->w ? d->h : d->w) / 32.0;   /* spatial scale */
    struct corrupt_push push = {d->n, d->c, d->h, d->w, (uint32_t)d->type, d->seed, d->first_image, 0, {0}, {0}};
    vka_tensor io[3] = {vka_tensor_slice(in_pixels, 0, bytes), vka_tensor_slice(out_pixels, 0, bytes),
                        sbytes ? vka_tensor_slice(scratch, 0, sbytes) : (vka_tensor){0}};
    vka_tensor in_scratch[2] = {io[0], io[2]}, only_scratch[1] = {io[2]};
    uint64_t words = bytes / 4, plane = (uint64_t)d->h * d->w;
    vka_result rc = VKA_SUCCESS;
#define RUN(id, wg, t, items)                                                                    \
    do {                                                                                         \
        if ((rc = run(cmd, id, wg, t, &push, items))) return vka_cmd_keep(cmd, rc);              \
    } while (0)
#define BARRIER() vka_cmd_barrier(cmd, VKA_HAZARD_SHADER_TO_SHADER)

    switch (d->type) {
    case VKA_CORRUPT_GAUSSIAN_NOISE: push.fp[0] = (float)T_GAUSSIAN_NOISE[sev]; RUN(K_NOISE, 64, io, words); break;
    case VKA_CORRUPT_SPECKLE_NOISE: push.fp[0] = (float)T_SPECKLE_NOISE[sev]; RUN(K_NOISE, 64, io, words); break;
    case VKA_CORRUPT_SHOT_NOISE:
        push.fp[0] = (float)T_SHOT_NOISE[sev];
        push.fp[1] = (float)POISSON_EXACT_BELOW;
        RUN(K_NOISE, 64, io, words);
        break;
    case VKA_CORRUPT_IMPULSE_NOISE:
        push.ip[0] = (int32_t)floor(T_IMPULSE_NOISE[sev] / 2 * 16777216.0);
        push.ip[1] = (int32_t)floor(T_IMPULSE_NOISE[sev] * 16777216.0);
        RUN(K_NOISE, 64, io, words);
        break;
    case VKA_CORRUPT_BRIGHTNESS: push.fp[0] = (float)T_BRIGHTNESS[sev]; RUN(K_COLOR, 64, io, words); break;
    case VKA_CORRUPT_SATURATE:
        push.fp[0] = (float)T_SATURATE[sev][0];
        push.fp[1] = (float)T_SATURATE[sev][1];
        RUN(K_COLOR, 64, io, words);
        break;
    case VKA_CORRUPT_CONTRAST:
    case VKA_CORRUPT_FOG: {
        if (d->type == VKA_CORRUPT_CONTRAST) {
            push.fp[0] = (float)T_CONTRAST[sev];
        } else {
            uint32_t m = 2, big = d->h > d->w ? d->h : d->w, levels = 1;
            while (m < big) m *= 2, levels++;
            push.ip[0] = (int32_t)m;
            push.ip[1] = (int32_t)levels;
            push.fp[0] = (float)T_FOG[sev][0];
            push.fp[1] = (float)(1.0 / (T_FOG[sev][1] * T_FOG[sev][1]));
        }
        RUN(K_STATS, 8, in_scratch, d->n);
        BARRIER();
        RUN(K_COLOR_STATS, 64, io, words);
        break;
    }
    case VKA_CORRUPT_GAUSSIAN_BLUR: {
        double sigma = T_GAUSSIAN_BLUR[sev] * s;
        push.fp[0] = (float)sigma;
        push.ip[0] = gauss_radius(sigma, 4.0);
        RUN(K_BLUR, 64, io, words);
        break;
    }
    case VKA_CORRUPT_DEFOCUS_BLUR: {
        /* The disk is a set of whole pixels: scaled down, radius 1 would lose its four
         * neighbours (28/32) and severity 4 would do nothing. So it scales up only. */
        double sd = s > 1 ? s : 1;
        double r = T_DEFOCUS_BLUR[sev][0] * sd, alias = T_DEFOCUS_BLUR[sev][1] * sd;
        float r2 = (float)(r * r);
        int area = 0;
        for (int y = -8; y <= 8; y++)
            for (int x = -8; x <= 8; x++) area += (double)(x * x + y * y) <= (double)r2;
        double e = exp(-1.0 / (2 * alias * alias));
        push.ip[0] = (int32_t)floor(r) + 1;
        push.fp[0] = r2;
        push.fp[1] = (float)(1.0 / area);
        push.fp[2] = (float)(1.0 / (1 + 2 * e));
        push.fp[3] = (float)(e / (1 + 2 * e));
        RUN(K_BLUR, 64, io, words);
        break;
    }
    case VKA_CORRUPT_MOTION_BLUR:
        push.ip[0] = 2 * (int32_t)ceil(T_MOTION_BLUR[sev][0] * s) + 1;
        push.fp[0] = (float)(T_MOTION_BLUR[sev][1] * s);
        RUN(K_BLUR, 64, io, words);
        break;
    case VKA_CORRUPT_ZOOM_BLUR: push.ip[0] = T_ZOOM_BLUR[sev]; RUN(K_BLUR, 64, io, words); break;
    case VKA_CORRUPT_PIXELATE:
        push.ip[0] = (int32_t)(d->w * T_PIXELATE_PERCENT[sev] / 100);
        push.ip[1] = (int32_t)(d->h * T_PIXELATE_PERCENT[sev] / 100);
        RUN(K_BLUR, 64, io, words);
        break;
    case VKA_CORRUPT_GLASS_BLUR: {
        double sigma = T_GLASS_BLUR[sev][0] * s;
        int32_t delta = (int32_t)floor(T_GLASS_BLUR[sev][1] * s + 0.5);
        push.fp[0] = (float)sigma;
        push.ip[0] = gauss_radius(sigma, 4.0);
        push.ip[1] = delta < 1 ? 1 : delta;
        push.ip[2] = (int32_t)T_GLASS_BLUR[sev][2];
        push.mode = 0;
        RUN(K_GLASS, 64, io, count);
        BARRIER();
        push.mode = 1;
        RUN(K_GLASS, 8, io, d->n);
        BARRIER();
        push.mode = 2;
        RUN(K_GLASS, 64, io, words);
        break;
    }
    case VKA_CORRUPT_ELASTIC_TRANSFORM: {
        double size = d->h < d->w ? d->h : d->w;
        double alpha = T_ELASTIC[sev][0] * size, sigma = T_ELASTIC[sev][1] * size;
        push.fp[0] = (float)sigma;
        push.ip[0] = gauss_radius(sigma, 3.0);
        push.fp[1] = (float)alpha;
        push.ip[1] = (int32_t)(2 * d->n * plane);   /* word of D, after T */
        push.fp[2] = (float)(T_ELASTIC[sev][2] * size);
        push.ip[2] = alpha > 0;
        if (alpha > 0) {
            push.mode = 0;
            RUN(K_FIELD, 64, only_scratch, 2 * d->n * plane);
            BARRIER();
            push.mode = 1;
            RUN(K_FIELD, 64, only_scratch, 2 * d->n * plane);
            BARRIER();
        }
        RUN(K_WARP, 64, io, words);
        break;
    }
    case VKA_CORRUPT_SNOW: {
        const double *c = T_SNOW[sev];
        push.mode = 2;
        push.ip[0] = (int32_t)floor(c[2] * 100 + 0.5);
        push.fp[0] = (float)c[0];
        push.fp[1] = (float)c[1];
        push.fp[2] = (float)c[3];
        RUN(K_FIELD, 64, only_scratch, d->n * plane);
        BARRIER();
        push.mode = 0;
        push.ip[0] = 2 * (int32_t)ceil(c[4] * s) + 1;
        push.fp[0] = (float)(c[5] * s);
        push.fp[1] = (float)c[6];
        push.fp[2] = 0;
        RUN(K_SNOW, 64, io, words);
        break;
    }
    case VKA_CORRUPT_JPEG_COMPRESSION:
        push.ip[0] = T_JPEG[sev];
        if ((rc = vka_cmd_record_fill(cmd, io[1], 0))) return vka_cmd_keep(cmd, rc);
        vka_cmd_barrier(cmd, VKA_HAZARD_TRANSFER_TO_SHADER);
        RUN(K_JPEG, 64, io, (uint64_t)d->n * ((d->h + 7) / 8) * ((d->w + 7) / 8));
        break;
    default: break;
    }
#undef RUN
#undef BARRIER
    return vka_op_done(cmd, rc);
}
