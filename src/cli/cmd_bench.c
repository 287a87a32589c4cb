/* vkanchor bench: training-step throughput, per-kernel GPU time, and K-anchor
 * inference throughput on synthetic data. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "nn/peak.h"
#include "train/file_replace.h"
#include "train/trainer.h"

static int by_time(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x < y) - (x > y);
}

int cli_bench(int argc, char **argv)
{
    vka_train_config c;
    vka_train_config_default(&c);
    c.schedule = VKA_SCHED_CONSTANT;
    int anchors_set = 0;
    vka_bench_desc d = {.channels = 0, .size = 0, .classes = 10, .warmup = 3, .steps = 10, .anchors = 5};
    int json = 0, quick = 0;
    double peak = 0;
    const char *trace_path = NULL;
    enum { O_BS = 256, O_STEPS, O_WARM, O_DEV, O_JSON, O_QUICK, O_ANCH, O_CH, O_SIZE, O_NOANCH, O_PEAK, O_TRACE };
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},      {"batch-size", required_argument, NULL, O_BS},
        {"steps", required_argument, NULL, O_STEPS},  {"warmup", required_argument, NULL, O_WARM},
        {"device", required_argument, NULL, O_DEV},   {"json", no_argument, NULL, O_JSON},
        {"quick", no_argument, NULL, O_QUICK},        {"anchors", required_argument, NULL, O_ANCH},
        {"channels", required_argument, NULL, O_CH},  {"size", required_argument, NULL, O_SIZE},
        {"no-anchoring", no_argument, NULL, O_NOANCH}, {"peak-gflops", required_argument, NULL, O_PEAK},
        {"trace", required_argument, NULL, O_TRACE},
        {"verbose", no_argument, NULL, 'v'},          {"help", no_argument, NULL, 'h'},
        {0},
    };
    int o, bs_set = 0, steps_set = 0, warm_set = 0;
    double v;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:vh", options, NULL)) != -1) {
        switch (o) {
        case 'm':
            if (!vka_model_kind_parse(optarg, &c.model)) {
                fprintf(stderr, "vkanchor bench: --model %s: expected cnn, resnet20 or resnet18\n", optarg);
                return CLI_USAGE;
            }
            break;
        case O_BS: if (!cli_integer("bench", "--batch-size", optarg, 2, 65536, &v)) return CLI_USAGE; c.batch_size = (uint32_t)v; bs_set = 1; break;
        case O_STEPS: if (!cli_integer("bench", "--steps", optarg, 1, 100000, &v)) return CLI_USAGE; d.steps = (uint32_t)v; steps_set = 1; break;
        case O_WARM: if (!cli_integer("bench", "--warmup", optarg, 0, 100000, &v)) return CLI_USAGE; d.warmup = (uint32_t)v; warm_set = 1; break;
        case O_DEV: snprintf(c.device, sizeof c.device, "%s", optarg); break;
        case O_JSON: json = 1; break;
        case O_QUICK: quick = 1; break;
        case O_ANCH:
            if (!cli_integer("bench", "--anchors", optarg, 1, 65536, &v)) return CLI_USAGE;
            d.anchors = (uint32_t)v;
            anchors_set = 1;
            break;
        case O_CH: if (!cli_integer("bench", "--channels", optarg, 1, 4, &v)) return CLI_USAGE; d.channels = (uint32_t)v; break;
        case O_SIZE: if (!cli_integer("bench", "--size", optarg, 8, 1024, &v)) return CLI_USAGE; d.size = (uint32_t)v; break;
        case O_NOANCH: c.anchoring = 0; break;
        case O_PEAK: if (!cli_number("bench", "--peak-gflops", optarg, 1e-3, 1e9, &peak)) return CLI_USAGE; break;
        case O_TRACE: trace_path = optarg; break;
        case 'v': cli_verbose = 2; break;
        case 'h':
            printf("usage: vkanchor bench [--model cnn|resnet20|resnet18] [--batch-size N] [--steps N] [--warmup N]\n"
                   "                      [--anchors K] [--channels C] [--size S] [--no-anchoring] [--device D]\n"
                   "                      [--peak-gflops F] [--json] [--quick] [--trace FILE] [--verbose]\n"
                   "Times anchored training steps (forward, backward, SGD) on synthetic data after a warm-up:\n"
                   "images/s, time per step, device memory, host time recording a step, GFLOP/s of the\n"
                   "convolutions (per pass) and the classifier, per-kernel GPU time with GB/s (each bound\n"
                   "tensor counted once), and K-anchor inference throughput. Shares are of the device's\n"
                   "peaks as two probe shaders measure them (fp32 FMA, buffer copy); --peak-gflops F\n"
                   "states the FMA peak instead.\n"
                   "Defaults: cnn and resnet20 on 1x28x28 (Fashion-MNIST), resnet18 on 3x32x32; batch 128,\n"
                   "3 warm-up steps, 10 timed steps, K = 5 references.\n"
                   "--quick: batch 8, 1 warm-up step, 2 steps unless given (a smoke test, not a measurement).\n"
                   "--trace FILE: every dispatch of the timed step in order, one JSON line each (index,\n"
                   "              kernel, scope: data, loss, optimizer or the model layer's forward or\n"
                   "              backward, e.g. \"bwd 7 conv 16->32 3x3/2 14x14\", ms, bytes,\n"
                   "              workgroups):\n"
                   "              where a model's time goes layer by layer.\n"
                   "--verbose: the library's info and debug messages (kernel self-tests, choices).\n");
            return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (!cli_no_positional("bench", argc, argv, optind)) return CLI_USAGE;
    if (!c.anchoring && anchors_set && d.anchors > 1)
        fprintf(stderr, "vkanchor bench: warning: --anchors %u does nothing with --no-anchoring (standard inference)\n",
                d.anchors);
    if (quick) {  /* a smoke test: small unless --batch-size, --steps or --warmup say otherwise */
        if (!bs_set) c.batch_size = 8;
        if (!warm_set) d.warmup = 1;
        if (!steps_set) d.steps = 2;
    }
    if (!d.channels) d.channels = c.model == VKA_MODEL_RESNET18 ? 3 : 1;
    if (!d.size) d.size = c.model == VKA_MODEL_RESNET18 ? 32 : 28;
    vka_context *ctx;
    if (vka_context_create(&(vka_context_desc){.device = c.device[0] ? c.device : NULL, .log = cli_log}, &ctx))
        return CLI_FAIL;
    /* The trace is collected in memory and written atomically at the end (vka_file_replace_text):
     * a run that fails leaves an old trace as it was and no partial one. Its path is checked and
     * its directories made first (taken away again if the run fails). */
    char *trace_text = NULL;
    size_t trace_len = 0;
    vka_made_dirs trace_dirs = {.n = 0};
    if (trace_path) {
        if (vka_output_path_check(&ctx->logger, "--trace", trace_path, NULL, 0) ||
            vka_output_prepare(&ctx->logger, "--trace", trace_path, &trace_dirs)) {
            vka_made_dirs_remove(&trace_dirs);
            vka_context_destroy(ctx);
            return CLI_USAGE;
        }
        if (!(d.trace = open_memstream(&trace_text, &trace_len))) {
            fprintf(stderr, "vkanchor bench: --trace %s: no memory for it\n", trace_path);
            vka_made_dirs_remove(&trace_dirs);
            vka_context_destroy(ctx);
            return CLI_FAIL;
        }
    }
    const vka_device_info *dev = vka_context_device(ctx);
    vka_bench_result r;
    vka_result rc = vka_train_bench(ctx, &c, &d, &r);
    if (d.trace) {
        int bad = ferror(d.trace);
        if ((fclose(d.trace) != 0 || bad || !trace_text) && !rc) {
            fprintf(stderr, "vkanchor bench: --trace %s: no memory for it\n", trace_path);
            rc = VKA_ERROR_OUT_OF_HOST_MEMORY;
        }
        if (!rc) rc = vka_file_replace_text(&ctx->logger, trace_path, trace_text); /* (logs why not) */
        free(trace_text);
    }
    if (rc) {
        vka_made_dirs_remove(&trace_dirs);
        vka_context_destroy(ctx);
        return CLI_FAIL;
    }
    /* The peaks the shares are stated against: fp32 FMA and copy bandwidth as probe shaders
     * reach them on this device (--peak-gflops replaces the FMA figure, e.g. a datasheet's). */
    vka_device_peak probe;
    if (vka_measure_peak(ctx, &probe)) {
        fprintf(stderr, "vkanchor bench: warning: the peak probes failed (%s): no shares of peak in this report\n",
                vka_context_last_error(ctx));
        probe = (vka_device_peak){0};
    }
    double pk = peak > 0 ? peak : probe.fma_gflops, bw = probe.copy_gbps;
    /* Convolution time per pass, matched by kernel name. */
    static const char *const passes[3] = {"conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight"};
    double conv_ms[3] = {0};
    for (uint32_t k = 0; k < r.kernel_count; k++)
        for (int p = 0; p < 3; p++)
            if (strncmp(r.kernels[k].name, passes[p], strlen(passes[p])) == 0 &&
                (p != 1 || strstr(r.kernels[k].name, "bwd_weight") == NULL))
                conv_ms[p] += r.kernels[k].ms;
    /* The classifier's matrix products run as the matmul kernels. */
    double linear_ms = 0;
    for (uint32_t k = 0; k < r.kernel_count; k++)
        if (strncmp(r.kernels[k].name, "matmul", 6) == 0) linear_ms += r.kernels[k].ms;
    double linear_gf = linear_ms > 0 ? r.linear_flops / (linear_ms * 1e6) : 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "device", dev->name);
        cJSON_AddStringToObject(o, "device_type", vka_device_type_string(dev->type));
        cJSON_AddStringToObject(o, "driver", dev->driver_name);
        cJSON_AddStringToObject(o, "driver_version", dev->driver_info[0] ? dev->driver_info : dev->driver_version);
        cJSON_AddStringToObject(o, "model", vka_model_kind_name(c.model));
        cJSON_AddNumberToObject(o, "batch_size", c.batch_size);
        cJSON_AddItemToObject(o, "input", cJSON_CreateIntArray((const int[]){(int)d.channels * (c.anchoring ? 2 : 1),
                                                                         (int)d.size, (int)d.size}, 3));
        cJSON_AddBoolToObject(o, "anchoring", c.anchoring);
        cJSON_AddNumberToObject(o, "steps", d.steps);
        cJSON_AddNumberToObject(o, "images_per_s", r.images_per_s);
        cJSON_AddNumberToObject(o, "step_ms", r.step_ms);
        cJSON_AddNumberToObject(o, "gpu_step_ms", r.gpu_step_ms);
        cJSON_AddNumberToObject(o, "record_ms", r.record_ms);
        cJSON_AddNumberToObject(o, "device_memory_bytes", (double)r.device_bytes);
        cJSON_AddNumberToObject(o, "final_loss", r.final_loss);
        cJSON_AddNumberToObject(o, "peak_gflops", pk);
        cJSON_AddStringToObject(o, "peak_source", peak > 0 ? "--peak-gflops" : "measured");
        cJSON_AddNumberToObject(o, "measured_fma_gflops", probe.fma_gflops);
        cJSON_AddNumberToObject(o, "measured_copy_gbps", bw);
        cJSON *cv = cJSON_AddObjectToObject(o, "conv");
        for (int p = 0; p < 3; p++) {
            cJSON *e = cJSON_AddObjectToObject(cv, passes[p]);
            cJSON_AddNumberToObject(e, "ms", conv_ms[p]);
            cJSON_AddNumberToObject(e, "gflops", conv_ms[p] > 0 ? r.conv_flops[p] / (conv_ms[p] * 1e6) : 0);
        }
        cJSON *lin = cJSON_AddObjectToObject(o, "linear");
        cJSON_AddNumberToObject(lin, "ms", linear_ms);
        cJSON_AddNumberToObject(lin, "gflops", linear_gf);
        cJSON *ks = cJSON_AddArrayToObject(o, "kernels");
        for (uint32_t k = 0; k < r.kernel_count; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", r.kernels[k].name);
            cJSON_AddNumberToObject(e, "ms", r.kernels[k].ms);
            cJSON_AddNumberToObject(e, "dispatches", r.kernels[k].count);
            cJSON_AddNumberToObject(e, "bytes", r.kernels[k].bytes);
            double gbps = r.kernels[k].ms > 0 ? r.kernels[k].bytes / (r.kernels[k].ms * 1e6) : 0;
            cJSON_AddNumberToObject(e, "gbps", gbps);
            cJSON_AddNumberToObject(e, "bandwidth_share", bw > 0 ? gbps / bw : 0);
            cJSON_AddItemToArray(ks, e);
        }
        cJSON_AddNumberToObject(o, "inference_images_per_s", r.infer_images_per_s);
        cJSON_AddNumberToObject(o, "inference_anchors", r.infer_anchors);
        char *text = cJSON_Print(o);
        printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else {
        printf("%s on %s (%s), batch %u, input %ux%ux%u%s\n", vka_model_kind_name(c.model), dev->name,
               vka_device_type_string(dev->type), c.batch_size, d.channels * (c.anchoring ? 2 : 1), d.size, d.size,
               c.anchoring ? " (anchored)" : "");
        printf("  training       %.1f images/s, %.1f ms per step (GPU time %.1f ms), %.1f MiB device memory\n",
               r.images_per_s, r.step_ms, r.gpu_step_ms, r.device_bytes / 1048576.0);
        printf("  recording      %.2f ms of host time per step (overlapped with the device's work)\n", r.record_ms);
        if (r.infer_anchors)
            printf("  inference      %.1f images/s with K=%u references each\n", r.infer_images_per_s, r.infer_anchors);
        printf("  device peak    %.0f GFLOP/s fp32 FMA (%s), %.1f GB/s copy (measured by a probe shader)\n", pk,
               peak > 0 ? "--peak-gflops" : "measured by a probe shader", bw);
        for (int p = 0; p < 3; p++) {
            double gf = conv_ms[p] > 0 ? r.conv_flops[p] / (conv_ms[p] * 1e6) : 0;
            printf("  %-18s %8.2f ms %8.1f GFLOP/s", passes[p], conv_ms[p], gf);
            if (pk > 0) printf("  %5.1f%% of peak", 100 * gf / pk);
            printf("\n");
        }
        printf("  %-18s %8.2f ms %8.1f GFLOP/s", "linear", linear_ms, linear_gf);
        if (pk > 0) printf("  %5.1f%% of peak", 100 * linear_gf / pk);
        printf("\n");
        /* Kernels by GPU time, largest first; GB/s counts each bound tensor once. */
        double order[VKA_BENCH_MAX_KERNELS][2];
        for (uint32_t k = 0; k < r.kernel_count; k++) order[k][0] = r.kernels[k].ms, order[k][1] = k;
        qsort(order, r.kernel_count, sizeof order[0], by_time);
        printf("  %-38s %9s %6s %7s %8s %7s\n", "kernel", "ms/step", "calls", "share", "GB/s", "of copy");
        for (uint32_t i = 0; i < r.kernel_count; i++) {
            uint32_t k = (uint32_t)order[i][1];
            double gbps = r.kernels[k].ms > 0 ? r.kernels[k].bytes / (r.kernels[k].ms * 1e6) : 0;
            printf("  %-38s %9.3f %6u %6.1f%% %8.1f %6.0f%%\n", r.kernels[k].name, r.kernels[k].ms, r.kernels[k].count,
                   r.gpu_step_ms > 0 ? 100 * r.kernels[k].ms / r.gpu_step_ms : 0, gbps, bw > 0 ? 100 * gbps / bw : 0);
        }
    }
    vka_context_destroy(ctx);
    return CLI_OK;
}
