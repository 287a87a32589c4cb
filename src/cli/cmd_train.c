/* vkanchor train: flags -> vka_train_config, a device, SIGINT handling. */
/* realpath (X/Open, beyond the project's _POSIX_C_SOURCE). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/checkpoint.h"
#include "train/file_replace.h"
#include "train/run_dir.h"
#include "train/trainer.h"

static volatile int interrupted = 0;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: vkanchor train [options]\n"
            "Anchored training with reference masking (defaults in brackets).\n"
            "  --data NAME|DIR        fashion-mnist, cifar10, cifar100 or a directory [fashion-mnist]\n"
            "                         (mnist, from scripts/fetch-mnist.sh, is a test set: eval --ood)\n"
            "  --model NAME           cnn, resnet20, resnet18 [cnn]\n"
            "  --epochs N             [2]\n"
            "  --batch-size N         [128]\n"
            "  --lr F                 peak learning rate [0.05]\n"
            "  --optimizer NAME       sgd, adamw [sgd]\n"
            "  --momentum F           SGD momentum [0.9]\n"
            "  --nesterov             Nesterov momentum\n"
            "  --weight-decay F       [5e-4]\n"
            "  --schedule NAME        cosine, multistep, constant [cosine]\n"
            "  --milestones A,B,...   multistep epochs [none]\n"
            "  --gamma F              multistep factor [0.2]\n"
            "  --warmup-epochs N      cosine warm-up [0]\n"
            "  --no-anchoring         standard training (the baseline)\n"
            "  --mask-prob F          reference-masking probability alpha, 0 = vanilla anchoring [0.25]\n"
            "  --mask-target T        label (released code) or uniform (paper's text) [label]\n"
            "  --mask-bn-stats M      skip (masked batches leave BN running stats alone) or update [skip]\n"
            "  --ref-pool P           batch or train (un-augmented training images) [batch]\n"
            "  --crop-pad N           random-crop padding in pixels, 0 = off [2; 4 for --data cifar10,\n"
            "                         cifar100 by name]\n"
            "  --no-flip              no horizontal flips (always off for digits: --data mnist by name)\n"
            "  --label-smoothing F    [0]\n"
            "  --seed N               [0]\n"
            "  --device INDEX|NAME    [the best device present]\n"
            "  --out DIR              [runs/<timestamp>]\n"
            "  --resume FILE          continue from a checkpoint, with its run's settings unless flags\n"
            "                         change them (named when it starts; not model, optimizer,\n"
            "                         anchoring, batch size, nor data of another shape or size), in\n"
            "                         the checkpoint's directory unless --out names another (empty) one\n"
            "  --overwrite            replace the run already in --out (refused otherwise)\n"
            "  --max-steps N          stop after N steps in total [no limit]\n"
            "  --quiet                no progress lines\n"
            "  --verbose              also the library's info messages\n"
            "Writes DIR/config.json, DIR/metrics.jsonl, and after each epoch DIR/checkpoint.ckpt and the\n"
            "training curves DIR/loss.png and DIR/accuracy.png.\n"
            "Ctrl-C finishes the current step, writes a checkpoint and exits with status 130.\n");
}

static int number(const char *flag, const char *s, double lo, double hi, double *out)
{
    return cli_number("train", flag, s, lo, hi, out);
}
static int integer(const char *flag, const char *s, double lo, double hi, double *out)
{
    return cli_integer("train", flag, s, lo, hi, out);
}

static int choice(const char *flag, const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return *out = i, 1;
    fprintf(stderr, "vkanchor train: %s %s: expected one of", flag, s);
    for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return 0;
}

/* A resumed run's defaults are its own run's settings (its checkpoint's configuration), so
 * that it continues that run bit for bit; flags given override them (and are named as changes
 * when the run starts). Not taken over: where it stops, writes and runs. An unreadable
 * checkpoint leaves the usual defaults: the trainer reports it. */
static int resume_defaults(const char *path, vka_train_config *c)
{
    vka_logger quiet = {0};
    vka_checkpoint ck;
    int adopted = 0;
    if (vka_checkpoint_read(&quiet, path, &ck)) return 0;
    const char *cfg = vka_checkpoint_text(&ck, "config");
    vka_train_config was = *c;
    if (cfg && vka_train_config_parse(&quiet, cfg, &was) == VKA_SUCCESS) {
        was.max_steps = c->max_steps;
        memcpy(was.device, c->device, sizeof was.device);
        memcpy(was.out_dir, c->out_dir, sizeof was.out_dir);
        memcpy(was.resume, c->resume, sizeof was.resume);
        *c = was;
        adopted = 1;
    }
    vka_checkpoint_free(&ck);
    return adopted;
}

/* The default run directory made for this run, removed again when the run wrote nothing
 * into it (its lock file aside). */
static void remove_unused_run_dir(const char *dir)
{
    char path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (stat(path, &st) == 0) return;
    snprintf(path, sizeof path, "%s/.lock", dir);
    remove(path);
    rmdir(dir);
}

int cli_train(int argc, char **argv)
{
    vka_train_config c;
    vka_train_config_default(&c);

    int crop_set = 0, quiet = 0, overwrite = 0, mask_set = 0, sgd_set = 0, gamma_set = 0, warm_set = 0, pool_set = 0;
    int mile_set = 0;
    enum { O_LR = 256, O_OPT, O_MOM, O_NEST, O_WD, O_SCHED, O_MILE, O_GAMMA, O_WARM, O_NOANCH, O_MASKP, O_MASKT,
           O_MASKBN, O_POOL, O_CROP, O_NOFLIP, O_LS, O_SEED, O_DEV, O_OUT, O_RESUME, O_MAX, O_BS, O_QUIET, O_OVERWRITE };
    static const struct option options[] = {
        {"data", required_argument, NULL, 'd'},     {"model", required_argument, NULL, 'm'},
        {"epochs", required_argument, NULL, 'e'},   {"batch-size", required_argument, NULL, O_BS},
        {"lr", required_argument, NULL, O_LR},      {"optimizer", required_argument, NULL, O_OPT},
        {"momentum", required_argument, NULL, O_MOM}, {"nesterov", no_argument, NULL, O_NEST},
        {"weight-decay", required_argument, NULL, O_WD}, {"schedule", required_argument, NULL, O_SCHED},
        {"milestones", required_argument, NULL, O_MILE}, {"gamma", required_argument, NULL, O_GAMMA},
        {"warmup-epochs", required_argument, NULL, O_WARM}, {"no-anchoring", no_argument, NULL, O_NOANCH},
        {"mask-prob", required_argument, NULL, O_MASKP}, {"mask-target", required_argument, NULL, O_MASKT},
        {"mask-bn-stats", required_argument, NULL, O_MASKBN}, {"ref-pool", required_argument, NULL, O_POOL},
        {"crop-pad", required_argument, NULL, O_CROP}, {"no-flip", no_argument, NULL, O_NOFLIP},
        {"label-smoothing", required_argument, NULL, O_LS}, {"seed", required_argument, NULL, O_SEED},
        {"device", required_argument, NULL, O_DEV}, {"out", required_argument, NULL, O_OUT},
        {"resume", required_argument, NULL, O_RESUME}, {"max-steps", required_argument, NULL, O_MAX},
        {"quiet", no_argument, NULL, O_QUIET},      {"verbose", no_argument, NULL, 'v'},
        {"overwrite", no_argument, NULL, O_OVERWRITE},
        {"help", no_argument, NULL, 'h'},           {0},
    };
    static const char *const models[] = {"cnn", "resnet20", "resnet18"}, *const opts[] = {"sgd", "adamw"},
                             *const scheds[] = {"cosine", "multistep", "constant"},
                             *const targets[] = {"label", "uniform"}, *const bns[] = {"skip", "update"},
                             *const pools[] = {"batch", "train"};
    int o, e;
    double v;
    /* A first pass finds --resume (as getopt_long takes it: abbreviated, with '=', the last of
     * several), so that its run's settings become the defaults the flags then override. */
    const char *resuming = NULL;
    opterr = 0;
    optind = 0;
    while ((o = getopt_long(argc, argv, "d:m:e:vh", options, NULL)) != -1)
        if (o == O_RESUME) resuming = optarg;
    opterr = 1;
    int adopted = resuming && resume_defaults(resuming, &c);
    optind = 0;
    while ((o = getopt_long(argc, argv, "d:m:e:vh", options, NULL)) != -1) {
        switch (o) {
        case 'd': snprintf(c.data, sizeof c.data, "%s", optarg); break;
        case 'm': if (!choice("--model", optarg, models, 3, &e)) return CLI_USAGE; c.model = e; break;
        case 'e': if (!integer("--epochs", optarg, 1, 100000, &v)) return CLI_USAGE; c.epochs = (uint32_t)v; break;
        case O_BS: if (!integer("--batch-size", optarg, 2, 65536, &v)) return CLI_USAGE; c.batch_size = (uint32_t)v; break;
        case O_LR: if (!number("--lr", optarg, 0, 100, &v)) return CLI_USAGE; c.lr = v; break;
        case O_OPT: if (!choice("--optimizer", optarg, opts, 2, &e)) return CLI_USAGE; c.optimizer = e; break;
        case O_MOM: if (!number("--momentum", optarg, 0, 0.9999, &v)) return CLI_USAGE; c.momentum = v; sgd_set = 1; break;
        case O_NEST: c.nesterov = 1; sgd_set = 1; break;
        case O_WD: if (!number("--weight-decay", optarg, 0, 1, &v)) return CLI_USAGE; c.weight_decay = v; break;
        case O_SCHED: if (!choice("--schedule", optarg, scheds, 3, &e)) return CLI_USAGE; c.schedule = e; break;
        case O_MILE: {
            c.milestone_count = 0;
            mile_set = 1;
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                if (c.milestone_count == VKA_MAX_MILESTONES || !integer("--milestones", tok, 1, 100000, &v))
                    return CLI_USAGE;
                c.milestones[c.milestone_count++] = (uint32_t)v;
            }
            break;
        }
        case O_GAMMA: if (!number("--gamma", optarg, 0, 1, &v)) return CLI_USAGE; c.gamma = v; gamma_set = 1; break;
        case O_WARM: if (!integer("--warmup-epochs", optarg, 0, 100000, &v)) return CLI_USAGE; c.warmup_epochs = (uint32_t)v; warm_set = 1; break;
        case O_NOANCH: c.anchoring = 0; break;
        case O_MASKP: if (!number("--mask-prob", optarg, 0, 1, &v)) return CLI_USAGE; c.mask_prob = v; mask_set = 1; break;
        case O_MASKT: if (!choice("--mask-target", optarg, targets, 2, &e)) return CLI_USAGE; c.mask_target = e; mask_set = 1; break;
        case O_MASKBN: if (!choice("--mask-bn-stats", optarg, bns, 2, &e)) return CLI_USAGE; c.mask_bn_stats = e; break;
        case O_POOL: if (!choice("--ref-pool", optarg, pools, 2, &e)) return CLI_USAGE; c.ref_pool = e; pool_set = 1; break;
        case O_CROP: if (!integer("--crop-pad", optarg, 0, 64, &v)) return CLI_USAGE; c.crop_pad = (uint32_t)v; crop_set = 1; break;
        case O_NOFLIP: c.flip = 0; break;
        case O_LS: if (!number("--label-smoothing", optarg, 0, 1, &v)) return CLI_USAGE; c.label_smoothing = v; break;
        case O_SEED: if (!cli_seed("train", "--seed", optarg, &c.seed)) return CLI_USAGE; break;
        case O_DEV: snprintf(c.device, sizeof c.device, "%s", optarg); break;
        case O_OUT:
        case O_RESUME:
            if (!optarg[0] || strlen(optarg) >= sizeof c.out_dir) {
                fprintf(stderr, "vkanchor train: %s '%s': give a path (at most %zu characters)\n",
                        o == O_OUT ? "--out" : "--resume", optarg, sizeof c.out_dir - 1);
                return CLI_USAGE;
            }
            snprintf(o == O_OUT ? c.out_dir : c.resume, sizeof c.out_dir, "%s", optarg);
            break;
        case O_MAX: if (!integer("--max-steps", optarg, 1, 1e15, &v)) return CLI_USAGE; c.max_steps = (uint64_t)v; break;
        case O_QUIET: quiet = 1; break;
        case O_OVERWRITE: overwrite = 1; break;
        case 'v': cli_verbose = 2; break;
        case 'h': train_usage(stdout); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (!cli_no_positional("train", argc, argv, optind)) return CLI_USAGE;
    if (c.schedule == VKA_SCHED_MULTISTEP && c.milestone_count == 0)
        fprintf(stderr, "vkanchor train: warning: --schedule multistep without --milestones keeps the lr constant\n");
    if (c.schedule != VKA_SCHED_MULTISTEP && c.milestone_count)
        fprintf(stderr, "vkanchor train: warning: --milestones is used by --schedule multistep only\n");
    for (uint32_t i = 0; i < c.milestone_count; i++)
        if (c.milestones[i] > c.epochs || (i && c.milestones[i] <= c.milestones[i - 1])) {
            fprintf(stderr, "vkanchor train: --milestones: expected increasing epochs up to --epochs %u%s\n", c.epochs,
                    adopted && !mile_set ? " (the milestones of the resumed run, from its checkpoint)" : "");
            return CLI_USAGE;
        }
    if (c.warmup_epochs >= c.epochs && c.warmup_epochs) {
        fprintf(stderr, "vkanchor train: --warmup-epochs %u: expected fewer than --epochs %u%s\n", c.warmup_epochs,
                c.epochs, adopted && !warm_set ? " (the warm-up of the resumed run, from its checkpoint)" : "");
        return CLI_USAGE;
    }
    if (!crop_set && !adopted && (strncmp(c.data, "cifar", 5) == 0)) c.crop_pad = 4;
    if (!c.anchoring && mask_set)
        fprintf(stderr, "vkanchor train: warning: --mask-prob and --mask-target do nothing with --no-anchoring\n");
    if (gamma_set && c.schedule != VKA_SCHED_MULTISTEP)
        fprintf(stderr, "vkanchor train: warning: --gamma is used by --schedule multistep only\n");
    if (warm_set && c.schedule != VKA_SCHED_COSINE)
        fprintf(stderr, "vkanchor train: warning: --warmup-epochs is used by --schedule cosine only\n");
    if (!c.anchoring && pool_set)
        fprintf(stderr, "vkanchor train: warning: --ref-pool does nothing with --no-anchoring\n");
    if (c.optimizer == VKA_OPT_ADAMW && sgd_set)
        fprintf(stderr, "vkanchor train: warning: --momentum and --nesterov do nothing with --optimizer adamw\n");
    /* A directory is recorded as an absolute path, so that eval finds it from anywhere (a
     * dataset name stays a name: vka_dataset_open looks names up first). */
    struct stat data_st;
    char absolute[PATH_MAX];
    if (!vka_dataset_is_name(c.data) && stat(c.data, &data_st) == 0 && S_ISDIR(data_st.st_mode) &&
        realpath(c.data, absolute) && strlen(absolute) < sizeof c.data)
        memcpy(c.data, absolute, strlen(absolute) + 1);
    char ckpt_dir[sizeof c.resume];
    vka_dir_of(c.resume, ckpt_dir, sizeof ckpt_dir);
    if (!c.out_dir[0] && c.resume[0]) /* resuming continues the run where its checkpoint is */
        snprintf(c.out_dir, sizeof c.out_dir, "%s", ckpt_dir);
    int made_out = 0;
    if (!c.out_dir[0]) {
        made_out = 1;
        /* runs/<timestamp>, made here: mkdir fails on a name taken (two runs started in one
         * second), and the next suffix is tried, so each run gets its own directory. */
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        mkdir("runs", 0755);
        char stamp[64];
        strftime(stamp, sizeof stamp, "runs/%Y%m%d-%H%M%S", &tm);
        snprintf(c.out_dir, sizeof c.out_dir, "%s", stamp);
        for (int k = 2; mkdir(c.out_dir, 0755) != 0; k++) {
            if (errno != EEXIST || k > 1000) {
                fprintf(stderr, "vkanchor train: cannot create a run directory under runs/ (%s): give --out DIR\n",
                        strerror(errno));
                return CLI_FAIL;
            }
            snprintf(c.out_dir, sizeof c.out_dir, "%s-%d", stamp, k);
        }
    }
    /* A run is not replaced by accident: its checkpoint and metrics would be. Resuming
     * continues the run in the checkpoint's own directory; any other --out must be free.
     * Said here before any work; the trainer checks again under the directory's lock. */
    c.overwrite = overwrite;
    if (vka_run_dir_busy(c.out_dir)) {
        fprintf(stderr, "vkanchor train: --out %s: " VKA_RUN_DIR_BUSY "\n", c.out_dir);
        return CLI_FAIL;
    }
    char refusal[3600];
    if (vka_run_dir_refuses(&c, refusal, sizeof refusal)) {
        fprintf(stderr, "vkanchor train: %s\n", refusal);
        return CLI_USAGE;
    }
    if (!cli_verbose && !quiet) cli_verbose = 1; /* progress lines are info messages */

    vka_context *ctx;
    vka_result rc = vka_context_create(&(vka_context_desc){.device = c.device[0] ? c.device : NULL, .log = cli_log}, &ctx);
    if (rc) {
        if (made_out) remove_unused_run_dir(c.out_dir);
        return CLI_FAIL;
    }
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    vka_train_result result;
    rc = vka_train_run(ctx, &c, &interrupted, &result);
    vka_context_destroy(ctx);
    if (rc && made_out) remove_unused_run_dir(c.out_dir); /* no empty directory under runs/ */
    if (rc) return CLI_FAIL;
    if (result.interrupted && !result.saved) {
        fprintf(stderr, "vkanchor train: interrupted before the first step: nothing trained, nothing saved\n");
        if (made_out) remove_unused_run_dir(c.out_dir);
        return 130;
    }
    if (result.interrupted) {
        fprintf(stderr, "vkanchor train: interrupted at step %llu; checkpoint in %s/checkpoint.ckpt\n",
                (unsigned long long)result.steps_done, c.out_dir);
        return 130;
    }
    if (result.epochs_done == 0) /* --max-steps stopped it before the first end-of-epoch evaluation */
        printf("trained %s on %s: %llu step%s, no full epoch, so no test evaluation; results in %s\n",
               vka_model_kind_name(c.model), c.data, (unsigned long long)result.steps_done,
               result.steps_done == 1 ? "" : "s", c.out_dir);
    else
        printf("trained %s on %s: %u epoch%s, %llu steps; test accuracy %.2f%%; results in %s\n",
               vka_model_kind_name(c.model), c.data, result.epochs_done, result.epochs_done == 1 ? "" : "s",
               (unsigned long long)result.steps_done, 100 * result.test_accuracy, c.out_dir);
    return CLI_OK;
}
