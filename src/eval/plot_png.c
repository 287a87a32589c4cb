/* Reliability diagrams, score histograms and line plots as PNG. Contracts in plot_png.h.
 *
 * Pixels are drawn into an 8-bit RGB raster (y down) and written with libpng's
 * simplified API, which reports errors in png_image.message instead of printing. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/plot_png.h"

typedef struct rgb { uint8_t r, g, b; } rgb;

static const rgb BLACK = {0, 0, 0}, GRID = {228, 228, 228},
                 DIAGONAL = {110, 110, 110}, BLUE = {31, 119, 180}, DARK_BLUE = {20, 70, 110},
                 RED = {214, 39, 40}, ORANGE = {255, 127, 14}, GREEN = {44, 160, 44};

#define GAP_ALPHA 0.45
#define HIST_ALPHA 0.5

typedef struct raster {
    int w, h;
    uint8_t *px;    /* (h, w, 3) */
} raster;

/* Blends c over the pixel with weight alpha in [0, 1]; clipped to the raster. */
static void plot(raster *r, int x, int y, rgb c, double alpha)
{
    if (x < 0 || y < 0 || x >= r->w || y >= r->h) return;
    uint8_t *p = r->px + 3 * ((size_t)y * r->w + x);
    p[0] = (uint8_t)lround(alpha * c.r + (1 - alpha) * p[0]);
    p[1] = (uint8_t)lround(alpha * c.g + (1 - alpha) * p[1]);
    p[2] = (uint8_t)lround(alpha * c.b + (1 - alpha) * p[2]);
}

/* Fills x0 <= x < x1, y0 <= y < y1 (corners in any order). */
static void fill_rect(raster *r, int x0, int y0, int x1, int y1, rgb c, double alpha)
{
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) plot(r, x, y, c, alpha);
}

/* Outline of the same rectangle, 1 pixel wide. */
static void stroke_rect(raster *r, int x0, int y0, int x1, int y1, rgb c)
{
    fill_rect(r, x0, y0, x1, y0 + 1, c, 1);
    fill_rect(r, x0, y1 - 1, x1, y1, c, 1);
    fill_rect(r, x0, y0, x0 + 1, y1, c, 1);
    fill_rect(r, x1 - 1, y0, x1, y1, c, 1);
}

/* Bresenham line, both ends included; dash > 0 draws dash pixels on, dash off. */
static void line(raster *r, int x0, int y0, int x1, int y1, rgb c, int dash, int width)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (int i = 0;; i++) {
        if (dash <= 0 || (i / dash) % 2 == 0)
            fill_rect(r, x0, y0, x0 + width, y0 + width, c, 1);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

/* ---- 5x7 font ---------------------------------------------------------------------- */

/* Each glyph: 7 rows, top first, the 5 low bits of each row left (bit 4) to right. */
static const struct { char ch; uint8_t rows[7]; } FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};

static const uint8_t *glyph(char ch)
{
    static const uint8_t space[7];
    if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
    if (ch == ' ') return space;
    for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++)
        if (FONT[i].ch == ch) return FONT[i].rows;
    return glyph('?');
}

/* Width in pixels of s at `scale`: 6 columns per character (one of spacing). */
static int text_width(const char *s, int scale) { return s ? (int)strlen(s) * 6 * scale - scale : 0; }

/* Draws s with its top-left corner at (x, y); `up` turns it 90 degrees to read
 * bottom to top, (x, y) then being its bottom-left corner. */
static void text(raster *r, int x, int y, const char *s, int scale, rgb c, int up)
{
    for (int k = 0; s && s[k]; k++) {
        const uint8_t *g = glyph(s[k]);
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++) {
                if (!(g[row] >> (4 - col) & 1)) continue;
                int gx = (k * 6 + col) * scale, gy = row * scale;
                if (up) fill_rect(r, x + gy, y - gx - scale, x + gy + scale, y - gx, c, 1);
                else fill_rect(r, x + gx, y + gy, x + gx + scale, y + gy + scale, c, 1);
            }
    }
}

/* ---- figure frame --------------------------------------------------------------------- */

/* The plot box in pixels: data x in [x_lo, x_hi] maps to [L, R], y to [B, T]. */
enum { BOX_L = 88, BOX_R = 462, BOX_T = 40, BOX_B = 370 };

typedef struct axes { double x_lo, x_hi, y_lo, y_hi; } axes;

static int px_x(const axes *a, double x) { return BOX_L + (int)lround((x - a->x_lo) / (a->x_hi - a->x_lo) * (BOX_R - BOX_L)); }
static int px_y(const axes *a, double y) { return BOX_B - (int)lround((y - a->y_lo) / (a->y_hi - a->y_lo) * (BOX_B - BOX_T)); }

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` intervals. */
static double nice_step(double range, int target)
{
    double raw = range / target, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void tick_label(char *buf, size_t size, double v, double step)
{
    if (fabs(v) < 1e-9 * step) v = 0;   /* no "-1e-17" for zero */
    if (step >= 1 && step == floor(step) && fabs(v) < 1e9) snprintf(buf, size, "%.0f", v); /* steps: 12500 */
    else snprintf(buf, size, "%.3g", v);
}

/* Grid lines and numbered ticks at nx + 1 and ny + 1 even steps of the axes, the
 * axis names and the title. Draw data after this and frame() last. */
static void background(raster *r, const axes *a, int nx, int ny, const char *xname, const char *yname,
                       const char *title)
{
    char num[32];
    double sx = (a->x_hi - a->x_lo) / nx, sy = (a->y_hi - a->y_lo) / ny;
    for (int i = 0; i <= nx; i++) {
        int x = px_x(a, a->x_lo + i * sx);
        fill_rect(r, x, BOX_T, x + 1, BOX_B, GRID, 1);
        fill_rect(r, x, BOX_B, x + 1, BOX_B + 6, BLACK, 1);
        tick_label(num, sizeof num, a->x_lo + i * sx, sx);
        text(r, x - text_width(num, 2) / 2, BOX_B + 10, num, 2, BLACK, 0);
    }
    for (int i = 0; i <= ny; i++) {
        int y = px_y(a, a->y_lo + i * sy);
        fill_rect(r, BOX_L, y, BOX_R, y + 1, GRID, 1);
        fill_rect(r, BOX_L - 6, y, BOX_L, y + 1, BLACK, 1);
        tick_label(num, sizeof num, a->y_lo + i * sy, sy);
        text(r, BOX_L - 10 - text_width(num, 2), y - 7, num, 2, BLACK, 0);
    }
    text(r, (BOX_L + BOX_R - text_width(xname, 2)) / 2, BOX_B + 34, xname, 2, BLACK, 0);
    text(r, 6, (BOX_T + BOX_B + text_width(yname, 2)) / 2, yname, 2, BLACK, 1);
    text(r, (BOX_L + BOX_R - text_width(title, 2)) / 2, 12, title, 2, BLACK, 0);
}

/* Width of legend() for these names. */
static int legend_width(int rows, const char *const *names)
{
    int w = 0;
    for (int i = 0; i < rows; i++)
        if (text_width(names[i], 2) > w) w = text_width(names[i], 2);
    return w + 32;
}

/* Legend rows (colour swatch, name) on a white panel with its top-left at (x, y). */
static void legend(raster *r, int x, int y, int rows, const rgb *colours, const double *alphas,
                   const char *const *names)
{
    int w = legend_width(rows, names);
    fill_rect(r, x, y, x + w, y + 20 * rows + 6, (rgb){255, 255, 255}, 0.85);
    stroke_rect(r, x, y, x + w, y + 20 * rows + 6, GRID);
    for (int i = 0; i < rows; i++) {
        fill_rect(r, x + 6, y + 6 + 20 * i, x + 20, y + 20 + 20 * i, colours[i], alphas[i]);
        text(r, x + 26, y + 6 + 20 * i, names[i], 2, BLACK, 0);
    }
}

static void frame(raster *r) { stroke_rect(r, BOX_L, BOX_T, BOX_R + 1, BOX_B + 1, BLACK); }

static vka_result raster_new(raster *r)
{
    r->w = VKA_PLOT_WIDTH;
    r->h = VKA_PLOT_HEIGHT;
    r->px = malloc((size_t)r->w * r->h * 3);
    if (!r->px) return VKA_ERROR_OUT_OF_HOST_MEMORY;
    memset(r->px, 255, (size_t)r->w * r->h * 3);
    return VKA_SUCCESS;
}

static vka_result raster_write_png(raster *r, const char *path)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)r->w;
    img.height = (png_uint_32)r->h;
    img.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&img, path, 0, r->px, 3 * r->w, NULL);
    png_image_free(&img);
    return ok ? VKA_SUCCESS : VKA_ERROR_IO;
}

/* ---- the figures ------------------------------------------------------------------------ */

vka_result vka_plot_reliability_png(const char *path, const vka_calibration_bins *bins, const char *title)
{
    if (!bins || bins->bins == 0 || bins->bins > VKA_CALIB_MAX_BINS) return VKA_ERROR_INVALID_ARGUMENT;
    raster r;
    vka_result rc = raster_new(&r);
    if (rc) return rc;
    axes a = {0, 1, 0, 1};
    background(&r, &a, 5, 5, "CONFIDENCE", "ACCURACY", title);
    for (uint32_t b = 0; b < bins->bins; b++) {
        if (!bins->count[b]) continue;
        int x0 = px_x(&a, (double)b / bins->bins), x1 = px_x(&a, (double)(b + 1) / bins->bins);
        int y_acc = px_y(&a, bins->accuracy[b]), y_conf = px_y(&a, bins->confidence[b]);
        fill_rect(&r, x0, y_acc, x1, BOX_B, BLUE, 1);
        stroke_rect(&r, x0, y_acc, x1 + 1, BOX_B + 1, DARK_BLUE);
        fill_rect(&r, x0 + 1, y_acc, x1, y_conf, RED, GAP_ALPHA);
    }
    line(&r, BOX_L, BOX_B, BOX_R, BOX_T, DIAGONAL, 6, 2);
    frame(&r);
    legend(&r, BOX_L + 8, BOX_T + 8, 2, (const rgb[]){BLUE, RED}, (const double[]){1, GAP_ALPHA},
           (const char *const[]){"ACCURACY", "GAP"});
    rc = raster_write_png(&r, path);
    free(r.px);
    return rc;
}

#define HIST_BINS 40

/* Adds the finite values of v (n) to counts over [lo, hi]; returns how many. */
static size_t histogram(double *counts, const float *v, size_t n, double lo, double hi)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        int k = (int)((v[i] - lo) / (hi - lo) * HIST_BINS);
        counts[k < 0 ? 0 : k >= HIST_BINS ? HIST_BINS - 1 : k]++;
        used++;
    }
    return used;
}

/* Bars of frac (HIST_BINS) over the data range [lo, hi], blended at HIST_ALPHA. */
static void bars(raster *r, const axes *a, const double *frac, double lo, double hi, rgb c)
{
    double w = (hi - lo) / HIST_BINS;
    for (int k = 0; k < HIST_BINS; k++)
        if (frac[k] > 0)
            fill_rect(r, px_x(a, lo + k * w), px_y(a, frac[k]), px_x(a, lo + (k + 1) * w), BOX_B, c, HIST_ALPHA);
}

vka_result vka_plot_histograms_png(const char *path, const float *a, size_t na, const float *b, size_t nb,
                                   const char *label_a, const char *label_b, const char *title)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < na; i++)
        if (isfinite(a[i])) { lo = fmin(lo, a[i]); hi = fmax(hi, a[i]); }
    for (size_t i = 0; i < nb; i++)
        if (isfinite(b[i])) { lo = fmin(lo, b[i]); hi = fmax(hi, b[i]); }
    if (lo > hi) return VKA_ERROR_INVALID_ARGUMENT;
    if (hi - lo < 1e-12 * fmax(1, fabs(lo))) { lo -= 0.5; hi += 0.5; }

    double fa[HIST_BINS] = {0}, fb[HIST_BINS] = {0}, top = 0;
    size_t ua = histogram(fa, a, na, lo, hi), ub = histogram(fb, b, nb, lo, hi);
    for (int k = 0; k < HIST_BINS; k++) {
        if (ua) fa[k] /= (double)ua;
        if (ub) fb[k] /= (double)ub;
        top = fmax(top, fmax(fa[k], fb[k]));
    }

    /* Axes on round numbers around the data: x about 5 ticks, y about 4, with
     * headroom above the tallest bar for the legend. */
    double sx = nice_step(hi - lo, 5), sy = nice_step(top * 1.25, 4);
    axes ax = {floor(lo / sx) * sx, ceil(hi / sx) * sx, 0, ceil(top * 1.25 / sy) * sy};
    int nx = (int)lround((ax.x_hi - ax.x_lo) / sx), ny = (int)lround(ax.y_hi / sy);

    raster r;
    vka_result rc = raster_new(&r);
    if (rc) return rc;
    background(&r, &ax, nx, ny, "SCORE", "FRACTION", title);
    bars(&r, &ax, fa, lo, hi, BLUE);
    bars(&r, &ax, fb, lo, hi, ORANGE);
    frame(&r);
    const char *const names[] = {label_a ? label_a : "A", label_b ? label_b : "B"};
    legend(&r, BOX_R - 8 - legend_width(2, names), BOX_T + 8, 2, (const rgb[]){BLUE, ORANGE},
           (const double[]){HIST_ALPHA, HIST_ALPHA}, names);
    rc = raster_write_png(&r, path);
    free(r.px);
    return rc;
}

/* The finite range of the series' x and y; 0 when there is no finite point. */
static int data_range(const vka_plot_series *s, int count, double *x_lo, double *x_hi, double *y_lo, double *y_hi)
{
    *x_lo = *y_lo = INFINITY;
    *x_hi = *y_hi = -INFINITY;
    for (int k = 0; k < count; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            *x_lo = fmin(*x_lo, s[k].x[i]), *x_hi = fmax(*x_hi, s[k].x[i]);
            *y_lo = fmin(*y_lo, s[k].y[i]), *y_hi = fmax(*y_hi, s[k].y[i]);
        }
    return *x_lo <= *x_hi;
}

/* An axis over round numbers around [lo, hi] with about `target` steps; its step count in *n. */
static void round_axis(double lo, double hi, int target, double *a_lo, double *a_hi, int *n)
{
    if (hi - lo < 1e-12 * fmax(1, fabs(lo))) lo -= 0.5, hi += 0.5;
    double step = nice_step(hi - lo, target);
    *a_lo = floor(lo / step) * step;
    *a_hi = ceil(hi / step) * step;
    *n = (int)lround((*a_hi - *a_lo) / step);
}

vka_result vka_plot_lines_png(const char *path, const vka_plot_series *series, int count, const char *xname,
                              const char *yname, const char *title)
{
    static const rgb colours[4] = {BLUE, ORANGE, RED, GREEN};
    double x_lo, x_hi, y_lo, y_hi;
    if (count < 1 || count > 4 || !data_range(series, count, &x_lo, &x_hi, &y_lo, &y_hi))
        return VKA_ERROR_INVALID_ARGUMENT;
    axes ax;
    int nx, ny;
    round_axis(x_lo, x_hi, 5, &ax.x_lo, &ax.x_hi, &nx);
    /* Headroom above the data for the legend. */
    round_axis(y_lo, y_hi + 0.25 * (y_hi - y_lo), 4, &ax.y_lo, &ax.y_hi, &ny);
    raster r;
    vka_result rc = raster_new(&r);
    if (rc) return rc;
    background(&r, &ax, nx, ny, xname, yname, title);
    for (int k = 0; k < count; k++) {
        const vka_plot_series *s = &series[k];
        int have = 0, px0 = 0, py0 = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
            int px = px_x(&ax, s->x[i]), py = px_y(&ax, s->y[i]);
            if (have) line(&r, px0, py0, px, py, colours[k], 0, s->markers ? 1 : 2);
            if (s->markers) fill_rect(&r, px - 3, py - 3, px + 4, py + 4, colours[k], 1);
            have = 1, px0 = px, py0 = py;
        }
    }
    frame(&r);
    const char *names[4];
    double alphas[4] = {1, 1, 1, 1};
    for (int k = 0; k < count; k++) names[k] = series[k].name ? series[k].name : "";
    legend(&r, BOX_R - 8 - legend_width(count, names), BOX_T + 8, count, colours, alphas, names);
    rc = raster_write_png(&r, path);
    free(r.px);
    return rc;
}
