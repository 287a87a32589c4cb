/* vkanchor eval: anchored inference on clean, corrupted and out-of-distribution
 * data; accuracy, calibration and anomaly rejection; a JSON report, a markdown
 * summary and PNG figures. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "data/corrupt.h"
#include "eval/evaluator.h"
#include "eval/plot_png.h"
#include "eval/report.h"
#include "train/file_replace.h"
#include "vk/clock.h"

typedef struct eval_args {
    const char *checkpoint, *data, *ood, *corruptions, *report, *samples, *device;
    uint32_t anchors, batch, limit, corruption_limit;
    int anchors_set; /* --anchors given (a standard model ignores it: said) */
    uint64_t seed;
} eval_args;

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: vkanchor eval --checkpoint FILE [options]\n"
            "Anchored inference (K references per image, one batch) and the paper's safety metrics.\n"
            "  --checkpoint FILE      a checkpoint from vkanchor train\n"
            "  --data NAME|DIR        a dataset with both splits: test images from its test split,\n"
            "                         references from its training split [the training data]\n"
            "  --anchors K            references per image [5]; K=1 is enough for accuracy\n"
            "  --ood NAME|DIR         out-of-distribution set for anomaly rejection (e.g. mnist)\n"
            "  --corruptions all|LIST corruption suite (comma-separated names), 5 severities each [none]\n"
            "  --limit N              use the first N test (and --ood) images, 0 = all [all]\n"
            "  --corruption-limit N   images per corruption and severity, 0 = all, at most --limit\n"
            "                         [1000]\n"
            "  --report FILE          JSON report; figures are written beside it [report.json]\n"
            "  --samples FILE         per-sample CSV: index,label,prediction,confidence,uncertainty\n"
            "                         (uncertainty empty with fewer than 2 references)\n"
            "  --batch-size N         test images per batch, 0 = the default [128 / K]\n"
            "  --seed N               which training images become the references [0]\n"
            "  --device INDEX|NAME    [the best device present]\n"
            "  --verbose              also the library's info messages\n"
            "Corruption names: docs/corruptions.md. Metrics are computed on the host from the per-sample outputs of the GPU.\n");
}

static cJSON *clean_json(const vka_clean_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "accuracy", m->accuracy);
    cJSON_AddNumberToObject(o, "nll", m->nll);
    cJSON_AddNumberToObject(o, "brier", m->brier);
    cJSON_AddNumberToObject(o, "ece_15", m->ece);
    cJSON_AddNumberToObject(o, "rms_ce_20", m->rms_ce);
    cJSON_AddNumberToObject(o, "smooth_ece", m->smece);
    cJSON_AddNumberToObject(o, "smooth_ece_sigma", m->smece_sigma);
    return o;
}

/* Strips the extension of the report path to name the figures beside it. */
static void figure_path(char *out, size_t n, const char *report, const char *suffix)
{
    snprintf(out, n, "%s", report);
    char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    if (dot && (!slash || dot > slash)) *dot = 0;
    strncat(out, suffix, n - strlen(out) - 1);
}

/* The per-sample CSV (uncertainty empty with fewer than 2 references: no spread to show),
 * built in memory and written beside and renamed into place (vka_file_replace_text). */
static vka_result write_samples(vka_logger *lg, const char *path, const vka_eval_outputs *o, int with_uncertainty)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "--samples %s: no memory for it", path);
    fprintf(f, "index,label,prediction,confidence,uncertainty\n");
    for (uint32_t i = 0; i < o->n; i++) {
        const float *z = o->logits + (size_t)i * o->classes;
        uint32_t arg = 0;
        float mx = z[0], sum = 0;
        for (uint32_t c = 1; c < o->classes; c++)
            if (z[c] > mx) mx = z[c], arg = c;
        for (uint32_t c = 0; c < o->classes; c++) sum += expf(z[c] - mx);
        if (with_uncertainty) fprintf(f, "%u,%u,%u,%.6f,%.6f\n", i, o->labels[i], arg, 1.0f / sum, o->uncertainty[i]);
        else fprintf(f, "%u,%u,%u,%.6f,\n", i, o->labels[i], arg, 1.0f / sum);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || !text) {
        free(text);
        return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "--samples %s: no memory for it", path);
    }
    vka_result rc = vka_file_replace_text(lg, path, text);
    free(text);
    return rc;
}

/* How many of a dataset's count images a pass with this limit (0: no limit) evaluates. */
static uint64_t images_in(uint32_t count, uint32_t limit) { return limit && limit < count ? limit : count; }

static int run_eval(vka_context *ctx, const eval_args *a)
{
    vka_logger *lg = &ctx->logger;
    vka_evaluator *e = NULL;
    vka_dataset test = {0}, ood = {0};
    vka_eval_outputs clean = {0}, ood_out = {0};
    cJSON *root = cJSON_CreateObject();
    int status = CLI_FAIL;
    float *scores_id[VKA_SCORE_COUNT] = {0}, *scores_ood[VKA_SCORE_COUNT] = {0};

    vka_made_dirs made = {.n = 0};
    {   /* Every output a regular file or none yet, and none of them the checkpoint or another
         * output: a report written over its own checkpoint would lose the model. Checked before
         * vka_output_prepare probes the paths (which would follow a link). */
        char fig[2][1200];
        figure_path(fig[0], sizeof fig[0], a->report, "-reliability.png");
        figure_path(fig[1], sizeof fig[1], a->report, "-uncertainty.png");
        /* (Each is written as PATH.tmp first and renamed: those names are taken too.) */
        char report_tmp[1200], samples_tmp[1200];
        snprintf(report_tmp, sizeof report_tmp, "%s.tmp", a->report);
        snprintf(samples_tmp, sizeof samples_tmp, "%s.tmp", a->samples ? a->samples : "");
        const char *report_others[] = {a->checkpoint, a->samples, a->samples ? samples_tmp : NULL, fig[0], fig[1]};
        const char *samples_others[] = {a->checkpoint, a->report, report_tmp, fig[0], fig[1]};
        const char *fig_others[] = {a->checkpoint, a->samples};
        if (vka_output_path_check(lg, "--report", a->report, report_others, 5) ||
            (a->samples && vka_output_path_check(lg, "--samples", a->samples, samples_others, 5)) ||
            vka_output_path_check(lg, "the figure", fig[0], fig_others, 2) ||
            vka_output_path_check(lg, "the figure", fig[1], fig_others, 2))
            goto done;
    }
    if (vka_output_prepare(lg, "--report", a->report, &made) ||
        (a->samples && vka_output_prepare(lg, "--samples", a->samples, &made)))
        goto done;
    vka_eval_desc d = {.checkpoint = a->checkpoint, .data = a->data, .anchors = a->anchors, .batch = a->batch,
                       .seed = a->seed};
    if (vka_evaluator_create(ctx, &d, &e)) goto done;
    if (!e->anchored && a->anchors_set && a->anchors != 1)
        vka_log(lg, VKA_LOG_WARNING, "--anchors %u does nothing: %s holds a standard (not anchored) model, evaluated "
                "without references", a->anchors, a->checkpoint);
    const char *data = a->data ? a->data : e->train_config.data;
    if (vka_dataset_open(data, VKA_SPLIT_TEST, lg->fn, lg->user, &test)) goto done;
    if (a->ood) {
        if (vka_dataset_open(a->ood, VKA_SPLIT_TEST, lg->fn, lg->user, &ood)) goto done;
        if (ood.channels != e->channels || ood.height != e->height || ood.width != e->width) {
            vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--ood %s has %ux%ux%u images but the model takes %ux%ux%u",
                     a->ood, ood.channels, ood.height, ood.width, e->channels, e->height, e->width);
            goto done;
        }
    }
    {   /* No output into a dataset's own directory (its files would be overwritten), a dataset
         * given by name included (its directory as vka_dataset_open resolved it). */
        const char *outs[2][2] = {{"--report", a->report}, {"--samples", a->samples}};
        const char *dirs[2] = {test.dir, a->ood ? ood.dir : NULL};
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                if (outs[i][1] && dirs[j] && dirs[j][0] && vka_path_in_dir(outs[i][1], dirs[j])) {
                    vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s %s: inside the dataset directory %s, whose files it "
                             "could replace; write it elsewhere", outs[i][0], outs[i][1], dirs[j]);
                    goto done;
                }
    }
    /* The anchored uncertainty is the spread over K references: with one it is 0 everywhere. */
    const int has_uncertainty = e->anchored && e->anchors >= 2;
    if (a->ood && e->anchored && !has_uncertainty)
        vka_log(lg, VKA_LOG_WARNING, "--anchors 1: the anchored uncertainty needs 2 or more references; --ood reports "
                "the other scores only");
    /* Every corruption named must exist and apply before any work starts. */
    vka_corruption chosen[VKA_CORRUPT_COUNT];
    uint32_t n_chosen = 0;
    if (a->corruptions && strcmp(a->corruptions, "none") != 0) {
        char bad[64] = "";
        if (vka_corruption_parse_list(a->corruptions, e->channels, chosen, &n_chosen, bad, sizeof bad)) {
            vka_corruption t;
            int exists = bad[0] && vka_corruption_parse(bad, &t) == VKA_SUCCESS;
            char names[1024] = "";
            vka_corruption all[VKA_CORRUPT_COUNT];
            uint32_t n_all = vka_corruption_list(e->channels, all);
            for (uint32_t i = 0; i < n_all; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                         vka_corruption_name(all[i]));
            vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--corruptions: '%s' %s; give 'all' or some of: %s", bad,
                     exists ? "needs 3-channel images" : "is not a corruption", names);
            goto done;
        }
        if (e->height < VKA_CORRUPT_MIN_SIZE || e->width < VKA_CORRUPT_MIN_SIZE || e->height > VKA_CORRUPT_MAX_SIZE ||
            e->width > VKA_CORRUPT_MAX_SIZE) {
            vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "--corruptions: the corruption suite takes images of %u to %u "
                     "pixels a side, these are %ux%u; leave --corruptions out", VKA_CORRUPT_MIN_SIZE,
                     VKA_CORRUPT_MAX_SIZE, e->height, e->width);
            goto done;
        }
    }
    int any_corruption = n_chosen > 0;
    /* --limit caps every part of the evaluation; --corruption-limit the corruptions further. */
    uint32_t corruption_limit = a->corruption_limit ? a->corruption_limit : test.count;
    if (a->limit && a->limit < corruption_limit) corruption_limit = a->limit;
    /* Progress lines over the whole evaluation: the images of every pass. */
    e->progress = (vka_eval_progress){.interval = 2.0, .started = vka_seconds()};
    e->progress.last = e->progress.started;
    e->progress.total = images_in(test.count, a->limit) + (a->ood ? images_in(ood.count, a->limit) : 0) +
                        (uint64_t)n_chosen * 5 * images_in(test.count, corruption_limit);

    /* Clean data. */
    if (e->anchored)
        vka_log(lg, VKA_LOG_INFO, "evaluating %s on %s with K=%u reference%s", a->checkpoint, data, e->anchors,
                e->anchors > 1 ? "s" : "");
    else
        vka_log(lg, VKA_LOG_INFO, "evaluating %s on %s (a standard model: no references)", a->checkpoint, data);
    snprintf(e->progress.pass, sizeof e->progress.pass, "clean");
    if (vka_evaluator_run(e, &test, a->limit, NULL, &clean)) goto done;
    vka_clean_metrics m_raw, m_cal;
    if (vka_clean_metrics_compute(lg, clean.logits, clean.labels, clean.n, clean.classes, &m_raw) ||
        vka_clean_metrics_compute(lg, clean.calibrated, clean.labels, clean.n, clean.classes, &m_cal))
        goto done;

    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddStringToObject(cfg, "checkpoint", a->checkpoint);
    cJSON_AddStringToObject(cfg, "data", data);
    cJSON_AddStringToObject(cfg, "model", vka_model_kind_name(e->train_config.model));
    cJSON_AddBoolToObject(cfg, "anchored", e->anchored);
    cJSON_AddNumberToObject(cfg, "anchors", e->anchors);
    cJSON_AddNumberToObject(cfg, "test_images", clean.n);
    cJSON_AddNumberToObject(cfg, "seed", (double)a->seed);
    cJSON_AddStringToObject(cfg, "device", vka_context_device(ctx)->name);
    char *train_json = vka_train_config_json(&e->train_config);
    cJSON_AddItemToObject(cfg, "training", cJSON_Parse(train_json));
    free(train_json);
    cJSON_AddStringToObject(cfg, "metrics_definitions",
                            "ECE: 15 equal-width bins, L1; RMS CE: 20 bins, L2; smooth ECE: Blasiok & Nakkiran 2023, "
                            "reflected Gaussian kernel, bandwidth at the fixed point smECE(sigma) = sigma; Brier: "
                            "sum over classes; AUROC/FPR@95TPR with in-distribution positive");
    cJSON_AddItemToObject(root, "clean", clean_json(&m_raw));
    cJSON_AddItemToObject(root, "clean_calibrated", clean_json(&m_cal));

    /* Anomaly rejection. */
    vka_ood_metrics om[VKA_SCORE_COUNT] = {0};
    if (a->ood) {
        snprintf(e->progress.pass, sizeof e->progress.pass, "ood");
        if (vka_evaluator_run(e, &ood, a->limit, NULL, &ood_out)) goto done;
        if (vka_scores_compute(lg, &clean, scores_id) || vka_scores_compute(lg, &ood_out, scores_ood)) goto done;
        cJSON *oj = cJSON_AddObjectToObject(root, "ood");
        cJSON_AddStringToObject(oj, "dataset", a->ood);
        cJSON_AddNumberToObject(oj, "images", ood_out.n);
        for (int s = 0; s < VKA_SCORE_COUNT; s++) {
            if (s == VKA_SCORE_UNCERTAINTY && !has_uncertainty) continue; /* it needs K >= 2 references */
            om[s].auroc = vka_metric_auroc(scores_id[s], clean.n, scores_ood[s], ood_out.n);
            om[s].fpr95 = vka_metric_fpr95(scores_id[s], clean.n, scores_ood[s], ood_out.n);
            cJSON *sj = cJSON_AddObjectToObject(oj, vka_score_names[s]);
            cJSON_AddNumberToObject(sj, "auroc", om[s].auroc);
            cJSON_AddNumberToObject(sj, "fpr_at_95_tpr", om[s].fpr95);
        }
    }

    /* Corruptions: accuracy per type and severity. */
    double corr_sum = 0, corr5_sum = 0;
    int corr_count = 0, corr5_count = 0;
    if (any_corruption) {
        cJSON *cj = cJSON_AddObjectToObject(root, "corruptions");
        const uint32_t limit = corruption_limit;
        cJSON_AddNumberToObject(cj, "images_per_severity", images_in(test.count, limit));
        for (uint32_t i = 0; i < n_chosen; i++) {
            vka_corruption t = chosen[i];
            cJSON *arr = cJSON_AddArrayToObject(cj, vka_corruption_name(t));
            for (uint32_t sev = 1; sev <= 5; sev++) {
                vka_corrupt_desc cd = {.type = t, .severity = sev, .seed = (uint32_t)a->seed};
                vka_eval_outputs co;
                snprintf(e->progress.pass, sizeof e->progress.pass, "%s severity %u", vka_corruption_name(t), sev);
                if (vka_evaluator_run(e, &test, limit, &cd, &co)) goto done;
                vka_clean_metrics cm;
                vka_result rc = vka_clean_metrics_compute(lg, co.logits, co.labels, co.n, co.classes, &cm);
                vka_eval_outputs_free(&co);
                if (rc) goto done;
                cJSON_AddItemToArray(arr, cJSON_CreateNumber(cm.accuracy));
                corr_sum += cm.accuracy, corr_count++;
                if (sev == 5) corr5_sum += cm.accuracy, corr5_count++;
                vka_log(lg, VKA_LOG_INFO, "  %-18s severity %u: accuracy %.2f%%", vka_corruption_name(t), sev,
                        100 * cm.accuracy);
            }
        }
        cJSON_AddNumberToObject(cj, "mean_accuracy", corr_sum / corr_count);
        cJSON_AddNumberToObject(cj, "mean_accuracy_severity_5", corr5_sum / corr5_count);
    }
    if (a->samples && write_samples(lg, a->samples, &clean, has_uncertainty)) goto done; /* logged, naming why */
    /* The figures once everything ran (a late failure leaves an earlier run's as they were),
     * each written beside and renamed into place. */
    char path[1200], tmp[1300];
    figure_path(path, sizeof path, a->report, "-reliability.png");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (vka_plot_reliability_png(tmp, &m_raw.bins, "reliability (mean logits)") != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        vka_log(lg, VKA_LOG_WARNING, "could not write %s", path);
    }
    if (!(a->ood && has_uncertainty)) { /* an earlier evaluation's figure would stand beside this report */
        figure_path(path, sizeof path, a->report, "-uncertainty.png");
        remove(path);
    }
    if (a->ood && has_uncertainty) {
        figure_path(path, sizeof path, a->report, "-uncertainty.png");
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        if (vka_plot_histograms_png(tmp, clean.uncertainty, clean.n, ood_out.uncertainty, ood_out.n,
                                    "in-distribution", a->ood, "anchored uncertainty") != 0 ||
            rename(tmp, path) != 0) {
            remove(tmp);
            vka_log(lg, VKA_LOG_WARNING, "could not write %s", path);
        }
    }
    char *text = cJSON_Print(root);
    vka_result wrc = text ? vka_file_replace_text(lg, a->report, text)
                          : vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory for the report", a->report);
    cJSON_free(text);
    if (wrc) goto done;

    /* The markdown summary. */
    printf("## vkanchor eval: %s\n\n", a->checkpoint);
    printf("%s `%s` on %s, %s, %u test images\n\n", e->anchored ? "anchored" : "standard",
           vka_model_kind_name(e->train_config.model), data,
           e->anchored ? (e->anchors == 1 ? "K=1 reference" : "K references") : "no references", clean.n);
    if (e->anchored) printf("K = %u\n\n", e->anchors);
    printf("| logits | accuracy | NLL | Brier | ECE (15) | RMS CE (20) | smooth ECE |\n|---|---|---|---|---|---|---|\n");
    printf("| mean | %.2f%% | %.4f | %.4f | %.4f | %.4f | %.4f |\n", 100 * m_raw.accuracy, m_raw.nll, m_raw.brier,
           m_raw.ece, m_raw.rms_ce, m_raw.smece);
    if (e->anchored)
        printf("| calibrated | %.2f%% | %.4f | %.4f | %.4f | %.4f | %.4f |\n", 100 * m_cal.accuracy, m_cal.nll,
               m_cal.brier, m_cal.ece, m_cal.rms_ce, m_cal.smece);
    if (a->ood) {
        printf("\nAnomaly rejection against %s (%u images, in-distribution positive):\n\n", a->ood, ood_out.n);
        printf("| score | AUROC | FPR at 95%% TPR |\n|---|---|---|\n");
        for (int s = 0; s < VKA_SCORE_COUNT; s++)
            if (s != VKA_SCORE_UNCERTAINTY || has_uncertainty)
                printf("| %s | %.4f | %.4f |\n", vka_score_names[s], om[s].auroc, om[s].fpr95);
    }
    if (any_corruption)
        printf("\nCorruptions: mean accuracy %.2f%%, at severity 5 %.2f%%\n", 100 * corr_sum / corr_count,
               100 * corr5_sum / corr5_count);
    printf("\nReport: %s\n", a->report);
    status = CLI_OK;
done:
    if (status != CLI_OK) vka_made_dirs_remove(&made); /* a failed evaluation leaves no empty directories */
    for (int s = 0; s < VKA_SCORE_COUNT; s++) free(scores_id[s]), free(scores_ood[s]);
    vka_eval_outputs_free(&clean);
    vka_eval_outputs_free(&ood_out);
    vka_dataset_free(&test);
    vka_dataset_free(&ood);
    vka_evaluator_destroy(e);
    cJSON_Delete(root);
    return status;
}

int cli_eval(int argc, char **argv)
{
    eval_args a = {.anchors = 5, .corruption_limit = 1000, .report = "report.json"};
    enum { O_CKPT = 256, O_DATA, O_ANCH, O_OOD, O_CORR, O_LIMIT, O_CLIMIT, O_REPORT, O_SAMPLES, O_BS, O_SEED, O_DEV };
    static const struct option options[] = {
        {"checkpoint", required_argument, NULL, O_CKPT}, {"data", required_argument, NULL, O_DATA},
        {"anchors", required_argument, NULL, O_ANCH},    {"ood", required_argument, NULL, O_OOD},
        {"corruptions", required_argument, NULL, O_CORR}, {"limit", required_argument, NULL, O_LIMIT},
        {"corruption-limit", required_argument, NULL, O_CLIMIT}, {"report", required_argument, NULL, O_REPORT},
        {"samples", required_argument, NULL, O_SAMPLES}, {"batch-size", required_argument, NULL, O_BS},
        {"seed", required_argument, NULL, O_SEED},       {"device", required_argument, NULL, O_DEV},
        {"verbose", no_argument, NULL, 'v'},             {"help", no_argument, NULL, 'h'},
        {0},
    };
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
        double v = 0;
        switch (o) {
        case O_CKPT: a.checkpoint = optarg; break;
        case O_DATA: a.data = optarg; break;
        case O_OOD: a.ood = optarg; break;
        case O_CORR: a.corruptions = optarg; break;
        case O_REPORT: a.report = optarg; break;
        case O_SAMPLES: a.samples = optarg; break;
        case O_DEV: a.device = optarg; break;
        case O_ANCH:
            if (!cli_integer("eval", "--anchors", optarg, 1, 65536, &v)) return CLI_USAGE;
            a.anchors = (uint32_t)v;
            a.anchors_set = 1;
            break;
        case O_LIMIT:
            if (!cli_integer("eval", "--limit", optarg, 0, UINT32_MAX, &v)) return CLI_USAGE;
            a.limit = (uint32_t)v;
            break;
        case O_CLIMIT:
            if (!cli_integer("eval", "--corruption-limit", optarg, 0, UINT32_MAX, &v)) return CLI_USAGE;
            a.corruption_limit = (uint32_t)v;
            break;
        case O_BS:
            if (!cli_integer("eval", "--batch-size", optarg, 0, 65536, &v)) return CLI_USAGE;
            a.batch = (uint32_t)v;
            break;
        case O_SEED:
            if (!cli_seed("eval", "--seed", optarg, &a.seed)) return CLI_USAGE;
            break;
        case 'v': cli_verbose = 2; break;
        case 'h': eval_usage(stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (!cli_no_positional("eval", argc, argv, optind)) return CLI_USAGE;
    if (!a.checkpoint) {
        fprintf(stderr, "vkanchor eval: --checkpoint FILE is required (see --help)\n");
        return CLI_USAGE;
    }
    if (!cli_verbose) cli_verbose = 1;
    vka_context *ctx;
    if (vka_context_create(&(vka_context_desc){.device = a.device, .log = cli_log}, &ctx)) return CLI_FAIL;
    int status = run_eval(ctx, &a);
    vka_context_destroy(ctx);
    return status;
}
