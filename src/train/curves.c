/* Training curves from metrics.jsonl (curves.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval/plot_png.h"
#include "train/curves.h"

/* Growing columns of the records read: step records (s_*) and epoch records (e_*). */
typedef struct history {
    double *s_step, *s_loss, *s_acc;
    size_t s_n, s_cap;
    double *e_step, *e_loss, *e_acc, *e_test;
    size_t e_n, e_cap;
} history;

static int push(double **cols, int ncols, size_t *n, size_t *cap, const double *v)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        for (int k = 0; k < ncols; k++) {
            double *p = realloc(cols[k], c * sizeof *p);
            if (!p) return 0;
            cols[k] = p;
        }
        *cap = c;
    }
    for (int k = 0; k < ncols; k++) cols[k][*n] = v[k];
    (*n)++;
    return 1;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : (double)NAN;
}

/* One metrics line into h; lines of other types (or not JSON) are skipped. */
static int add_record(history *h, const char *line)
{
    cJSON *o = cJSON_Parse(line);
    if (!o) return 1;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    int ok = 1;
    /* A record at or before the last one's step starts over from there: the steps a crash
     * lost after the last checkpoint, done again after the resume, replace the first tries. */
    if (cJSON_IsString(type) && strcmp(type->valuestring, "step") == 0) {
        while (h->s_n && h->s_step[h->s_n - 1] >= num(o, "step")) h->s_n--;
        double *cols[3] = {h->s_step, h->s_loss, h->s_acc};
        double v[3] = {num(o, "step"), num(o, "loss"), 100 * num(o, "accuracy")};
        ok = push(cols, 3, &h->s_n, &h->s_cap, v);
        h->s_step = cols[0], h->s_loss = cols[1], h->s_acc = cols[2];
    } else if (cJSON_IsString(type) && strcmp(type->valuestring, "epoch") == 0) {
        while (h->e_n && h->e_step[h->e_n - 1] >= num(o, "step")) h->e_n--;
        double *cols[4] = {h->e_step, h->e_loss, h->e_acc, h->e_test};
        double v[4] = {num(o, "step"), num(o, "train_loss"), 100 * num(o, "train_accuracy"),
                       100 * num(o, "test_accuracy")};
        ok = push(cols, 4, &h->e_n, &h->e_cap, v);
        h->e_step = cols[0], h->e_loss = cols[1], h->e_acc = cols[2], h->e_test = cols[3];
    }
    cJSON_Delete(o);
    return ok;
}

/* The figure written to PATH.tmp and renamed over PATH. */
static vka_result replace_png(vka_logger *lg, const char *path, const vka_plot_series *s, int count, const char *yname,
                              const char *title)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    vka_result rc = vka_plot_lines_png(tmp, s, count, "STEP", yname, title);
    if (rc == VKA_ERROR_INVALID_ARGUMENT) { /* nothing finite to draw yet: no figure of an earlier run stays */
        remove(path);
        return VKA_SUCCESS;
    }
    if (rc || rename(tmp, path)) {
        remove(tmp);
        vka_log(lg, VKA_LOG_WARNING, "%s: cannot write the training curves", path);
        return VKA_ERROR_IO;
    }
    return VKA_SUCCESS;
}

vka_result vka_train_write_curves(vka_logger *lg, const char *out_dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        vka_log(lg, VKA_LOG_WARNING, "%s: cannot read it for the training curves", path);
        return VKA_ERROR_IO;
    }
    history h = {0};
    char line[4096];
    int ok = 1;
    while (ok && fgets(line, sizeof line, f)) ok = add_record(&h, line);
    fclose(f);
    vka_result rc = ok ? VKA_SUCCESS : vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "training curves: no memory");
    if (!rc) {
        vka_plot_series loss[2] = {{"STEP", h.s_step, h.s_loss, h.s_n, 0}, {"EPOCH", h.e_step, h.e_loss, h.e_n, 1}};
        snprintf(path, sizeof path, "%s/loss.png", out_dir);
        rc = replace_png(lg, path, loss, 2, "LOSS", "TRAINING LOSS");
    }
    if (!rc) {
        vka_plot_series acc[3] = {{"TRAIN, STEP", h.s_step, h.s_acc, h.s_n, 0},
                                  {"TRAIN, EPOCH", h.e_step, h.e_acc, h.e_n, 1},
                                  {"TEST, EPOCH", h.e_step, h.e_test, h.e_n, 1}};
        snprintf(path, sizeof path, "%s/accuracy.png", out_dir);
        rc = replace_png(lg, path, acc, 3, "ACCURACY (%)", "ACCURACY");
    }
    free(h.s_step), free(h.s_loss), free(h.s_acc);
    free(h.e_step), free(h.e_loss), free(h.e_acc), free(h.e_test);
    return rc;
}
