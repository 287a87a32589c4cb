/* PNG figures for `vkanchor eval` and `train`: a reliability diagram, overlaid histograms
 * of a score on in-distribution vs OOD data, and line plots (training curves). Drawn into an RGB raster on the host
 * (rectangles, lines, a built-in 5x7 font for numbers and titles) and written
 * with libpng. Nothing here prints or exits. */
#ifndef VKA_EVAL_PLOT_PNG_H
#define VKA_EVAL_PLOT_PNG_H

#include <stddef.h>

#include "eval/metrics.h"
#include "vkanchor.h"

#define VKA_PLOT_WIDTH 480
#define VKA_PLOT_HEIGHT 440

/* Reliability diagram of `bins` (from vka_metric_ece or vka_metric_calibration_bins):
 * per non-empty bin a blue (31, 119, 180) bar up to its accuracy and a translucent
 * red bar over the gap between accuracy and mean confidence, the dashed diagonal
 * (perfect calibration), ticks and numbers on both axes, a legend, and `title`
 * above (may be NULL; the font has A-Z, digits and . , : - + = % ( ) / _, and
 * draws lowercase as uppercase). Writes an 8-bit RGB PNG of VKA_PLOT_WIDTH x
 * VKA_PLOT_HEIGHT to `path`. Returns VKA_SUCCESS, VKA_ERROR_INVALID_ARGUMENT (no
 * bins), VKA_ERROR_OUT_OF_HOST_MEMORY or VKA_ERROR_IO. */
vka_result vka_plot_reliability_png(const char *path, const vka_calibration_bins *bins, const char *title);

/* Overlaid histograms of a (na) in blue (31, 119, 180) and b (nb) in orange
 * (255, 127, 14), each blended at 50% over what lies below so the overlap shows,
 * over 40 equal bins spanning the finite values of both (NaN and inf are
 * skipped). Bar heights are fractions of each set, so sets of different sizes
 * compare; axes run over round numbers around the data. A legend names the sets
 * `label_a` and `label_b`; `title` goes above (all three may be NULL). Same size,
 * format and results as above; VKA_ERROR_INVALID_ARGUMENT when neither set has a
 * finite value. */
vka_result vka_plot_histograms_png(const char *path, const float *a, size_t na, const float *b, size_t nb,
                                   const char *label_a, const char *label_b, const char *title);

/* One curve of vka_plot_lines_png: n points (x ascending), drawn as a 2-pixel line,
 * or (markers) as 7x7 squares joined by a 1-pixel line. Non-finite points are skipped. */
typedef struct vka_plot_series {
    const char *name;
    const double *x, *y;
    size_t n;
    int markers;
} vka_plot_series;

/* Line plot of `count` series (at most 4, coloured blue, orange, red, green in order) on
 * shared axes over round numbers around the finite data, a legend at the top right naming
 * them, axis names and a title (any may be NULL). Same size, format and results as above;
 * VKA_ERROR_INVALID_ARGUMENT when no series has a finite point or count is not 1..4. */
vka_result vka_plot_lines_png(const char *path, const vka_plot_series *series, int count, const char *xname,
                              const char *yname, const char *title);

#endif
