// ref_corrupt.c: plain-C reference of the corruption suite (see ref_corrupt.h). Simple
// loops over whole images in double precision; its own copy of the CIFAR-10-C tables.
#include "ref_corrupt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

static const char *const NAMES[REF_CORRUPT_COUNT] = {
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "saturate",
};
enum { GAUSSIAN_NOISE, SHOT_NOISE, IMPULSE_NOISE, DEFOCUS_BLUR, GLASS_BLUR, MOTION_BLUR, ZOOM_BLUR, SNOW, FOG,
       BRIGHTNESS, CONTRAST, ELASTIC, PIXELATE, JPEG, SPECKLE_NOISE, GAUSSIAN_BLUR, SATURATE };

const char *ref_corrupt_name(int t) { return t >= 0 && t < REF_CORRUPT_COUNT ? NAMES[t] : NULL; }

// ---- CIFAR-10-C tables (make_cifar_c.py), severity 1..5 -------------------------------
static const double GAUSS_C[5] = {.04, .06, .08, .09, .10};
static const double SHOT_C[5] = {500, 250, 100, 75, 50};
static const double IMPULSE_C[5] = {.01, .02, .03, .05, .07};
static const double SPECKLE_C[5] = {.06, .1, .12, .16, .2};
static const double GBLUR_C[5] = {.4, .6, .7, .8, 1};
static const double GLASS_C[5][3] = {{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}};
static const double DEFOCUS_C[5][2] = {{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}};
static const double MOTION_C[5][2] = {{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}};
static const double ZOOM_END[5] = {1.06, 1.11, 1.16, 1.21, 1.26};   // np.arange(1, end, 0.01)
static const double SNOW_C[5][7] = {{0.1, 0.2, 1, 0.6, 8, 3, 0.95}, {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
                                    {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9}, {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
                                    {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}};
static const double FOG_C[5][2] = {{.2, 3}, {.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}};
static const double BRIGHT_C[5] = {.05, .1, .15, .2, .3};
static const double CONTRAST_C[5] = {.75, .5, .4, .3, 0.15};
static const double ELASTIC_C[5][3] = {{0, 0, 0.08}, {0.05, 0.2, 0.07}, {0.08, 0.06, 0.06}, {0.1, 0.04, 0.05},
                                       {0.1, 0.03, 0.03}};
static const double PIXELATE_C[5] = {0.95, 0.9, 0.85, 0.75, 0.65};
static const int JPEG_C[5] = {80, 65, 58, 50, 40};
static const double SATURATE_C[5][2] = {{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}};

// ---- randomness: the shaders' PCG hash -------------------------------------------------
enum { S_NOISE = 1, S_ANGLE, S_SNOW, S_FOG, S_GLASS, S_AFFINE, S_ELASTIC_X };

static uint32_t pcg(uint32_t v)
{
    uint32_t s = v * 747796405u + 2891336453u;
    uint32_t w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

typedef struct ref {
    int N, C, H, W, sev;
    uint32_t seed, first;
    const uint8_t *in;
    double s;             // spatial scale min(H, W) / 32
} ref;

static uint32_t key(const ref *r, uint32_t stream, int b) { return pcg(pcg(pcg(r->seed) ^ stream) ^ (r->first + (uint32_t)b)); }
static uint32_t bits(uint32_t k, uint32_t i) { return pcg(k ^ i); }
static double u01(uint32_t b) { return (double)(b >> 8) / 16777216.0; }
static double u01_open(uint32_t b) { return (double)((b >> 8) + 1u) / 16777216.0; }
static double normal01(uint32_t k, uint32_t idx)
{
    double u1 = u01_open(bits(k, 2 * idx)), u2 = u01(bits(k, 2 * idx + 1));
    return sqrt(-2 * log(u1)) * cos(2 * PI * u2);
}

// ---- helpers -----------------------------------------------------------------------------
static double px(const ref *r, int b, int c, int y, int x) { return r->in[((b * r->C + c) * r->H + y) * r->W + x]; }
static int clampi(int i, int lo, int hi) { return i < lo ? lo : i > hi ? hi : i; }
static int edge(int i, int n) { return clampi(i, 0, n - 1); }
static int reflect101(int i, int n)
{
    if (n == 1) return 0;
    int period = 2 * n - 2, m = i % period;
    if (m < 0) m += period;
    return m < n ? m : period - m;
}
static int reflect_half(int i, int n)
{
    int period = 2 * n, m = i % period;
    if (m < 0) m += period;
    return m < n ? m : period - 1 - m;
}
static int gauss_radius(double sigma, double truncate) { return (int)(truncate * sigma + 0.5); }
// 1D Gaussian weights (normalized) of radius rad.
static void gauss_weights(double *w, double sigma, int rad)
{
    double sum = 0;
    for (int i = -rad; i <= rad; i++) sum += w[i + rad] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rad; i++) w[i] /= sum;
}
// clipped_zoom (scipy zoom order 1 of the centre crop): source coordinate of output o.
static double zoom_source(int o, int n, int zp)
{
    int ch = (n * 100 + zp - 1) / zp, top = (n - ch) / 2, zn = (ch * zp + 50) / 100, trim = (zn - n) / 2;
    if (zn <= 1) return top;
    return top + (double)(o + trim) * (ch - 1) / (zn - 1);
}

// ---- the corruptions: value of pixel (b, c, y, x) in pixel units -------------------------------

static double poisson(double lam, uint32_t k, uint32_t idx)
{
    if (lam < 30.5) {
        double u = u01(bits(k, 2 * idx)), p = exp(-lam), cdf = p;
        int n = 0;
        while (cdf <= u && n < 256) {
            n++;
            p *= lam / n;
            cdf += p;
        }
        return n;
    }
    double v = floor(lam + sqrt(lam) * normal01(k, idx) + 0.5);
    return v < 0 ? 0 : v;
}

static double noise(const ref *r, int t, int b, int c, int y, int x)
{
    double v = px(r, b, c, y, x), x01 = v / 255;
    uint32_t k = key(r, S_NOISE, b), idx = (uint32_t)((c * r->H + y) * r->W + x);
    switch (t) {
    case GAUSSIAN_NOISE: return (x01 + GAUSS_C[r->sev] * normal01(k, idx)) * 255;
    case SHOT_NOISE: return poisson(x01 * SHOT_C[r->sev], k, idx) / SHOT_C[r->sev] * 255;
    case IMPULSE_NOISE: {
        uint32_t u = bits(k, idx) >> 8;
        uint32_t lo = (uint32_t)floor(IMPULSE_C[r->sev] / 2 * 16777216.0), hi = (uint32_t)floor(IMPULSE_C[r->sev] * 16777216.0);
        return u < lo ? 0 : u < hi ? 255 : v;
    }
    default: return (x01 + x01 * SPECKLE_C[r->sev] * normal01(k, idx)) * 255;   // speckle
    }
}

static double gaussian_blur_at(const ref *r, const double *img, int y, int x, double sigma)
{
    int rad = gauss_radius(sigma, 4);
    double w[2 * 64 + 1];
    gauss_weights(w, sigma, rad);
    double acc = 0;
    for (int dy = -rad; dy <= rad; dy++)
        for (int dx = -rad; dx <= rad; dx++)
            acc += w[dy + rad] * w[dx + rad] * img[edge(y + dy, r->H) * r->W + edge(x + dx, r->W)];
    return acc;
}

static double defocus(const ref *r, int b, int c, int y, int x)
{
    double sd = r->s > 1 ? r->s : 1;   // the aliased disk scales up only
    double rad = DEFOCUS_C[r->sev][0] * sd, alias = DEFOCUS_C[r->sev][1] * sd;
    // disk(): aliased disk on [-8, 8]^2, normalized, then cv2.GaussianBlur 3x3 (sigma alias).
    double disk[17][17], area = 0, e = exp(-1 / (2 * alias * alias)), g[3] = {e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)};
    for (int i = 0; i < 17; i++)
        for (int j = 0; j < 17; j++) area += disk[i][j] = ((i - 8) * (i - 8) + (j - 8) * (j - 8)) <= rad * rad;
    double acc = 0;
    for (int i = 1; i < 16; i++)
        for (int j = 1; j < 16; j++) {
            double kw = 0;
            for (int a = -1; a <= 1; a++)
                for (int bb = -1; bb <= 1; bb++) kw += g[a + 1] * g[bb + 1] * disk[i + a][j + bb];
            if (kw != 0) acc += kw / area * px(r, b, c, reflect101(y + i - 8, r->H), reflect101(x + j - 8, r->W));
        }
    return acc;
}

static double streak(const ref *r, const double *img, int y, int x, double radius, double sigma, double angle)
{
    int width = 2 * (int)ceil(radius) + 1;
    double ca = cos(angle), sa = sin(angle), acc = 0, norm = 0;
    for (int i = 0; i < width; i++) {
        double w = exp(-(double)i * i / (2 * sigma * sigma));
        int ox = (int)ceil(i * ca - 0.5), oy = (int)ceil(i * sa - 0.5);
        acc += w * img[edge(y + oy, r->H) * r->W + edge(x + ox, r->W)];
        norm += w;
    }
    return acc / norm;
}

static double bilinear(const double *img, int H, int W, double sy, double sx)
{
    int y0 = (int)floor(sy), x0 = (int)floor(sx), y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
    double fy = sy - y0, fx = sx - x0;
    return (img[y0 * W + x0] * (1 - fx) + img[y0 * W + x1] * fx) * (1 - fy) +
           (img[y1 * W + x0] * (1 - fx) + img[y1 * W + x1] * fx) * fy;
}

static double zoom(const ref *r, const double *img, int y, int x)
{
    int k_count = (int)ceil((ZOOM_END[r->sev] - 1) / 0.01);   // numpy's arange length
    double acc = img[y * r->W + x];
    for (int k = 0; k < k_count; k++)
        acc += bilinear(img, r->H, r->W, zoom_source(y, r->H, 100 + k), zoom_source(x, r->W, 100 + k));
    return acc / (k_count + 1);
}

// PIL BOX resize big -> small: pixels j of box s satisfy s*big < (j + 1/2)*small <= (s+1)*big.
static int in_box(int j, int s, int big, int small) { return (2 * j + 1) * small > 2 * s * big && (2 * j + 1) * small <= 2 * (s + 1) * big; }

static double pixelate(const ref *r, int b, int c, int y, int x)
{
    int ow = (int)(r->W * PIXELATE_C[r->sev] + 1e-9), oh = (int)(r->H * PIXELATE_C[r->sev] + 1e-9);
    int xs = (2 * x + 1) * ow / (2 * r->W), ys = (2 * y + 1) * oh / (2 * r->H);
    long total = 0, rows = 0;
    for (int i = 0; i < r->H; i++) {
        if (!in_box(i, ys, r->H, oh)) continue;
        long s = 0, cnt = 0;
        for (int j = 0; j < r->W; j++)
            if (in_box(j, xs, r->W, ow)) s += (long)px(r, b, c, i, j), cnt++;
        total += (long)floor((double)s / cnt + 0.5);
        rows++;
    }
    return floor((double)total / rows + 0.5);
}

// fog: value-noise approximation of the diamond-square plasma (docs/corruptions.md).
static double fog_raw(uint32_t k, int m, int levels, double ratio, int y, int x)
{
    double s = 0, amp = 1;
    for (int l = 0; l < levels; l++) {
        int sp = m >> (l + 1), cells = m / sp, gy = y / sp, gx = x / sp;
        double fy = (double)(y - gy * sp) / sp, fx = (double)(x - gx * sp) / sp;
        int gy1 = (gy + 1) % cells, gx1 = (gx + 1) % cells;
#define LAT(i, j) (u01(bits(k, ((uint32_t)l << 16) | ((uint32_t)(i) << 8) | (uint32_t)(j))) * 2 - 1)
        s += amp * ((LAT(gy, gx) * (1 - fx) + LAT(gy, gx1) * fx) * (1 - fy) + (LAT(gy1, gx) * (1 - fx) + LAT(gy1, gx1) * fx) * fy);
#undef LAT
        amp *= ratio;
    }
    return s;
}

// ---- JPEG (integer, libjpeg-like) -------------------------------------------------------------
static const int Q_LUMA[64] = {16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                               14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                               18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                               49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
static const int Q_CHROMA[64] = {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                                 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
                                 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
                                 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};
// floor(v / 2^s) for any sign (what GLSL's >> does on int).
static int32_t asr(int64_t v, int s) { return (int32_t)(v >= 0 ? v >> s : -((-v + ((int64_t)1 << s) - 1) >> s)); }

void ref_jpeg_block(int s[64], int quality, int chroma)
{
    int dct[64];
    for (int u = 0; u < 8; u++)
        for (int x = 0; x < 8; x++)
            dct[u * 8 + x] = (int)floor((u == 0 ? sqrt(0.125) : 0.5) * cos((2 * x + 1) * u * PI / 16) * 8192 + 0.5);
    int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
    int64_t t[64];
    for (int y = 0; y < 8; y++)
        for (int u = 0; u < 8; u++) {
            int64_t acc = 0;
            for (int x = 0; x < 8; x++) acc += (int64_t)(s[y * 8 + x] - 128) * dct[u * 8 + x];
            t[y * 8 + u] = asr(acc + 256, 9);
        }
    for (int v = 0; v < 8; v++)
        for (int u = 0; u < 8; u++) {
            int64_t acc = 0;
            for (int y = 0; y < 8; y++) acc += (int64_t)dct[v * 8 + y] * t[y * 8 + u];
            int q = ((chroma ? Q_CHROMA : Q_LUMA)[v * 8 + u] * scale + 50) / 100;
            q = clampi(q, 1, 255);
            int64_t d = (int64_t)q << 17;
            int64_t level = acc < 0 ? -((-acc + d / 2) / d) : (acc + d / 2) / d;
            s[v * 8 + u] = (int)(level * q);
        }
    for (int v = 0; v < 8; v++)
        for (int x = 0; x < 8; x++) {
            int64_t acc = 0;
            for (int u = 0; u < 8; u++) acc += (int64_t)s[v * 8 + u] * dct[u * 8 + x];
            t[v * 8 + x] = asr(acc + 1024, 11);
        }
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            int64_t acc = 0;
            for (int v = 0; v < 8; v++) acc += (int64_t)dct[v * 8 + y] * t[v * 8 + x];
            s[y * 8 + x] = clampi(asr(acc + 16384, 15) + 128, 0, 255);
        }
}

static void jpeg(const ref *r, uint8_t *out)
{
    int q = JPEG_C[r->sev], plane = r->H * r->W;
    for (int b = 0; b < r->N; b++)
        for (int by = 0; by < r->H; by += 8)
            for (int bx = 0; bx < r->W; bx += 8) {
                int c0[64], c1[64], c2[64];
                for (int k = 0; k < 64; k++) {
                    int y = edge(by + k / 8, r->H), x = edge(bx + k % 8, r->W);
                    int R = (int)px(r, b, 0, y, x);
                    if (r->C == 3) {
                        int G = (int)px(r, b, 1, y, x), B = (int)px(r, b, 2, y, x);
                        c0[k] = asr(19595 * R + 38470 * G + 7471 * B + 32768, 16);
                        c1[k] = asr(-11059 * R - 21709 * G + 32768 * B + (128 << 16) + 32767, 16);
                        c2[k] = asr(32768 * R - 27439 * G - 5329 * B + (128 << 16) + 32767, 16);
                    } else {
                        c0[k] = R;
                    }
                }
                ref_jpeg_block(c0, q, 0);
                if (r->C == 3) ref_jpeg_block(c1, q, 1), ref_jpeg_block(c2, q, 1);
                for (int k = 0; k < 64; k++) {
                    int y = by + k / 8, x = bx + k % 8;
                    if (y >= r->H || x >= r->W) continue;
                    uint8_t *o = out + (size_t)b * r->C * plane + y * r->W + x;
                    if (r->C == 3) {
                        int Y = c0[k], cb = c1[k] - 128, cr = c2[k] - 128;
                        o[0] = (uint8_t)clampi(Y + asr(91881 * cr + 32768, 16), 0, 255);
                        o[plane] = (uint8_t)clampi(Y + asr(-22554 * cb - 46802 * cr + 32768, 16), 0, 255);
                        o[2 * plane] = (uint8_t)clampi(Y + asr(116130 * cb + 32768, 16), 0, 255);
                    } else {
                        o[0] = (uint8_t)c0[k];
                    }
                }
            }
}

// ---- whole-image corruptions -------------------------------------------------------------------

static uint8_t to_byte(double v) { return (uint8_t)floor((v < 0 ? 0 : v > 255 ? 255 : v) + 0.50029); }  // halves up, robustly

void ref_corrupt(uint8_t *out, const uint8_t *in, int N, int C, int H, int W, int t, int sev, uint32_t seed,
                 uint32_t first_image)
{
    ref rr = {N, C, H, W, sev - 1, seed, first_image, in, (H < W ? H : W) / 32.0}, *r = &rr;
    const int plane = H * W;
    if (t == JPEG) {
        jpeg(r, out);
        return;
    }
    double *img = malloc(sizeof(double) * plane), *aux = malloc(sizeof(double) * plane * C);
    double *fx = malloc(sizeof(double) * plane), *fy = malloc(sizeof(double) * plane);
    for (int b = 0; b < N; b++) {
        // per-image preparation
        double mean[3] = {0}, mx = 0, lo = 0, hi = 0, angle = 0;
        int fog_m = 2, fog_levels = 1;
        if (t == CONTRAST)
            for (int c = 0; c < C; c++) {
                for (int i = 0; i < plane; i++) mean[c] += in[(b * C + c) * plane + i];
                mean[c] /= plane;
            }
        if (t == FOG) {
            for (int i = 0; i < C * plane; i++) mx = in[b * C * plane + i] > mx ? in[b * C * plane + i] : mx;
            while (fog_m < (H > W ? H : W)) fog_m *= 2, fog_levels++;
            lo = 1e300, hi = -1e300;
            for (int y = 0; y < fog_m; y++)
                for (int x = 0; x < fog_m; x++) {
                    double f = fog_raw(key(r, S_FOG, b), fog_m, fog_levels, 1 / (FOG_C[r->sev][1] * FOG_C[r->sev][1]), y, x);
                    lo = f < lo ? f : lo;
                    hi = f > hi ? f : hi;
                }
        }
        if (t == MOTION_BLUR) angle = (u01(bits(key(r, S_ANGLE, b), 0)) - 0.5) * PI / 2;
        if (t == SNOW) {
            angle = -PI / 2 + (u01(bits(key(r, S_ANGLE, b), 0)) - 0.5) * PI / 2;
            const double *c = SNOW_C[r->sev];
            int zp = (int)floor(c[2] * 100 + 0.5);
            uint32_t k = key(r, S_SNOW, b);
            for (int y = 0; y < H; y++)   // the grid of normal(loc, scale)
                for (int x = 0; x < W; x++) fx[y * W + x] = c[0] + c[1] * normal01(k, (uint32_t)(y * W + x));
            for (int y = 0; y < H; y++)   // clipped zoom, threshold, clip
                for (int x = 0; x < W; x++) {
                    double z = bilinear(fx, H, W, zoom_source(y, H, zp), zoom_source(x, W, zp));
                    fy[y * W + x] = z < c[3] ? 0 : z > 1 ? 1 : z;
                }
        }
        if (t == GLASS_BLUR) {
            double sigma = GLASS_C[r->sev][0] * r->s;
            int d = (int)floor(GLASS_C[r->sev][1] * r->s + 0.5), iters = (int)GLASS_C[r->sev][2];
            d = d < 1 ? 1 : d;
            for (int c = 0; c < C; c++) {
                for (int i = 0; i < plane; i++) img[i] = in[(b * C + c) * plane + i];
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) aux[c * plane + y * W + x] = floor(gaussian_blur_at(r, img, y, x, sigma) + 1e-3);
            }
            uint32_t k = key(r, S_GLASS, b);
            for (int it = 0; it < iters; it++)
                for (int h = H - d; h > d; h--)
                    for (int w = W - d; w > d; w--) {
                        uint32_t bb = bits(k, (uint32_t)((it * H + h) * W + w));
                        int dx = (int)((bb & 0xffffu) % (uint32_t)(2 * d)) - d, dy = (int)((bb >> 16) % (uint32_t)(2 * d)) - d;
                        for (int c = 0; c < C; c++) {
                            double *a = &aux[c * plane + h * W + w], *e = &aux[c * plane + (h + dy) * W + (w + dx)], tmp = *a;
                            *a = *e, *e = tmp;
                        }
                    }
        }
        double aff[6] = {0};   // elastic: source = (aff0 qx + aff1 qy + aff2, aff3 qx + aff4 qy + aff5)
        if (t == ELASTIC) {
            double size = H < W ? H : W, alpha = ELASTIC_C[r->sev][0] * size, sigma = ELASTIC_C[r->sev][1] * size;
            double a = ELASTIC_C[r->sev][2] * size;
            double cx = W / 2, cy = H / 2, sq = (H < W ? H : W) / 3;
            double p1[3][2] = {{cx + sq, cy + sq}, {cx + sq, cy - sq}, {cx - sq, cy - sq}}, p2[3][2];
            uint32_t k = key(r, S_AFFINE, b);
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 2; j++) p2[i][j] = p1[i][j] + u01(bits(k, (uint32_t)(2 * i + j))) * 2 * a - a;
            // L maps pts2 differences to pts1 differences: L = E D^-1
            double d11 = p2[1][0] - p2[0][0], d21 = p2[1][1] - p2[0][1], d12 = p2[2][0] - p2[0][0], d22 = p2[2][1] - p2[0][1];
            double e11 = p1[1][0] - p1[0][0], e21 = p1[1][1] - p1[0][1], e12 = p1[2][0] - p1[0][0], e22 = p1[2][1] - p1[0][1];
            double det = d11 * d22 - d12 * d21;
            double i11 = d22 / det, i12 = -d12 / det, i21 = -d21 / det, i22 = d11 / det;
            aff[0] = e11 * i11 + e12 * i21, aff[1] = e11 * i12 + e12 * i22;
            aff[3] = e21 * i11 + e22 * i21, aff[4] = e21 * i12 + e22 * i22;
            aff[2] = p1[0][0] - aff[0] * p2[0][0] - aff[1] * p2[0][1];
            aff[5] = p1[0][1] - aff[3] * p2[0][0] - aff[4] * p2[0][1];
            for (int i = 0; i < plane; i++) fx[i] = fy[i] = 0;
            if (alpha > 0) {
                int rad = gauss_radius(sigma, 3);
                double *w = malloc(sizeof(double) * (2 * rad + 1)), *tmp = malloc(sizeof(double) * plane);
                gauss_weights(w, sigma, rad);
                for (int comp = 0; comp < 2; comp++) {
                    uint32_t kk = key(r, S_ELASTIC_X + (uint32_t)comp, b);
                    double *f = comp ? fy : fx;
                    for (int y = 0; y < H; y++)
                        for (int x = 0; x < W; x++) {
                            double acc = 0;
                            for (int j = -rad; j <= rad; j++)
                                acc += w[j + rad] * (u01(bits(kk, (uint32_t)(y * W + reflect_half(x + j, W)))) * 2 - 1);
                            tmp[y * W + x] = acc;
                        }
                    for (int y = 0; y < H; y++)
                        for (int x = 0; x < W; x++) {
                            double acc = 0;
                            for (int i = -rad; i <= rad; i++) acc += w[i + rad] * tmp[reflect_half(y + i, H) * W + x];
                            f[y * W + x] = alpha * acc;
                        }
                }
                free(w), free(tmp);
            }
        }

        for (int c = 0; c < C; c++) {
            for (int i = 0; i < plane; i++) img[i] = in[(b * C + c) * plane + i];
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double v = px(r, b, c, y, x), o = v;
                    double vmax = v, vmin = v;
                    if (C == 3)
                        for (int k = 0; k < 3; k++) {
                            double q = px(r, b, k, y, x);
                            vmax = q > vmax ? q : vmax;
                            vmin = q < vmin ? q : vmin;
                        }
                    switch (t) {
                    case GAUSSIAN_NOISE:
                    case SHOT_NOISE:
                    case IMPULSE_NOISE:
                    case SPECKLE_NOISE: o = noise(r, t, b, c, y, x); break;
                    case GAUSSIAN_BLUR: o = gaussian_blur_at(r, img, y, x, GBLUR_C[r->sev] * r->s); break;
                    case DEFOCUS_BLUR: o = defocus(r, b, c, y, x); break;
                    case MOTION_BLUR: o = streak(r, img, y, x, MOTION_C[r->sev][0] * r->s, MOTION_C[r->sev][1] * r->s, angle); break;
                    case ZOOM_BLUR: o = zoom(r, img, y, x); break;
                    case PIXELATE: o = pixelate(r, b, c, y, x); break;
                    case GLASS_BLUR: o = gaussian_blur_at(r, aux + c * plane, y, x, GLASS_C[r->sev][0] * r->s); break;
                    case CONTRAST: o = (v - mean[c]) * CONTRAST_C[r->sev] + mean[c]; break;
                    case BRIGHTNESS: {   // HSV: V + c, hue and saturation kept
                        double vn = fmin(vmax + BRIGHT_C[r->sev] * 255, 255);
                        o = vmax > 0 ? v * vn / vmax : vn;
                        break;
                    }
                    case SATURATE: {     // HSV: S c0 + c1; grey pixels have hue 0 (red)
                        double sat = vmax > 0 ? (vmax - vmin) / vmax : 0;
                        double s1 = fmin(fmax(sat * SATURATE_C[r->sev][0] + SATURATE_C[r->sev][1], 0), 1);
                        if (vmax == vmin) o = c == 0 ? vmax : vmax * (1 - s1);
                        else o = vmax * (1 - s1 * (vmax - v) / (vmax - vmin));
                        break;
                    }
                    case FOG: {
                        double a = FOG_C[r->sev][0] * 255;
                        double f = hi > lo ? (fog_raw(key(r, S_FOG, b), fog_m, fog_levels, 1 / (FOG_C[r->sev][1] * FOG_C[r->sev][1]), y, x) - lo) / (hi - lo) : 0;
                        o = (v + a * f) * mx / (mx + a);
                        break;
                    }
                    case SNOW: {
                        const double *cc = SNOW_C[r->sev];
                        double x01 = v / 255, grey = C == 3 ? (0.299 * px(r, b, 0, y, x) + 0.587 * px(r, b, 1, y, x) + 0.114 * px(r, b, 2, y, x)) / 255 : x01;
                        double xb = cc[6] * x01 + (1 - cc[6]) * fmax(x01, grey * 1.5 + 0.5);
                        double s1 = streak(r, fy, y, x, cc[4] * r->s, cc[5] * r->s, angle);
                        double s2 = streak(r, fy, H - 1 - y, W - 1 - x, cc[4] * r->s, cc[5] * r->s, angle);
                        o = (xb + s1 + s2) * 255;
                        break;
                    }
                    case ELASTIC: {
                        double sy = y + fy[y * W + x], sx = x + fx[y * W + x];
                        int y0 = (int)floor(sy), x0 = (int)floor(sx);
                        double wy = sy - y0, wx = sx - x0;
                        o = 0;
                        for (int i = 0; i < 2; i++)
                            for (int j = 0; j < 2; j++) {
                                double wt = (i ? wy : 1 - wy) * (j ? wx : 1 - wx);
                                int qy = reflect_half(y0 + i, H), qx = reflect_half(x0 + j, W);
                                double ax = aff[0] * qx + aff[1] * qy + aff[2], ay = aff[3] * qx + aff[4] * qy + aff[5];
                                int ax0 = (int)floor(ax), ay0 = (int)floor(ay);
                                double gx = ax - ax0, gy = ay - ay0;
                                int xa = reflect101(ax0, W), xb = reflect101(ax0 + 1, W), ya = reflect101(ay0, H), yb = reflect101(ay0 + 1, H);
                                double a = (img[ya * W + xa] * (1 - gx) + img[ya * W + xb] * gx) * (1 - gy) +
                                           (img[yb * W + xa] * (1 - gx) + img[yb * W + xb] * gx) * gy;
                                o += wt * a;
                            }
                        break;
                    }
                    default: break;
                    }
                    out[(b * C + c) * plane + y * W + x] = to_byte(o);
                }
        }
    }
    free(img), free(aux), free(fx), free(fy);
}
