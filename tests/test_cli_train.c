/* `vkanchor train` as a user runs it: Ctrl-C saves and exits 130, bad flags and
 * bad data give one clear line and a non-zero status. */
/* realpath (X/Open, beyond the project's _POSIX_C_SOURCE). */
#define _XOPEN_SOURCE 700
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "train/checkpoint.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return test_make_tiny_dataset(dir, "test_cli_train", 64, 16, 12);
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_dir(dir);
}

/* vkanchor with these arguments: exit status, stderr in err. */
static int run(const char *args, char *err, size_t n) { return test_run_cli(VKANCHOR_EXE, dir, args, err, n); }

static void ctrl_c_saves_a_checkpoint_and_exits_130(void **state)
{
    (void)state;
    char data[300], out[300], metrics[400], ckpt[400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.ckpt", out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(126);
        execl(VKANCHOR_EXE, "vkanchor", "train", "--data", data, "--batch-size", "16", "--epochs", "1000", "--out",
              out, (char *)NULL);
        _exit(127);
    }
    /* Wait until it has trained a little (a step record), then interrupt. */
    struct stat st;
    for (int i = 0; i < 600 && !(stat(metrics, &st) == 0 && st.st_size > 0); i++) nanosleep(&(struct timespec){0, 100000000}, NULL);
    assert_int_equal(kill(pid, SIGINT), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    vka_logger lg = {0};
    vka_checkpoint ck;
    TEST_OK(vka_checkpoint_read(&lg, ckpt, &ck));
    assert_non_null(vka_checkpoint_find(&ck, "params"));
    vka_checkpoint_free(&ck);
}

static void bad_flags_and_bad_data_fail_with_one_clear_line(void **state)
{
    (void)state;
    char err[4096], args[1024];
    assert_int_equal(run("train --lr abc", err, sizeof err), 2);
    assert_non_null(strstr(err, "--lr"));
    assert_int_equal(run("train --batch-size 0", err, sizeof err), 2);
    assert_non_null(strstr(err, "--batch-size"));
    assert_int_equal(run("train --model vgg", err, sizeof err), 2);
    assert_non_null(strstr(err, "--model"));
    assert_int_equal(run("train --mask-prob 1.5", err, sizeof err), 2);
    assert_int_equal(run("train --data /nonexistent/place", err, sizeof err), 1);
    assert_non_null(strstr(err, "/nonexistent/place"));
    snprintf(args, sizeof args, "train --data %s/data --batch-size 1000 --out %s/bad", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "--batch-size"));
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --out %s/bad --resume %s/data/train-labels-idx1-ubyte", dir, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    assert_non_null(strstr(err, "checkpoint"));
    assert_int_equal(run("train --help", err, sizeof err), 0);
}

/* --max-steps stopping before the first epoch ends: no test evaluation ran, and the summary
 * says so rather than reporting a test accuracy of 0%. */
static void stopping_before_an_epoch_says_there_was_no_test_evaluation(void **state)
{
    (void)state;
    char cmd[1024], outfile[300], line[512] = {0};
    snprintf(outfile, sizeof outfile, "%s/stdout.txt", dir);
    snprintf(cmd, sizeof cmd, "%s train --data %s/data --batch-size 16 --max-steps 2 --out %s/short --quiet >%s 2>/dev/null",
             VKANCHOR_EXE, dir, dir, outfile);
    int status = system(cmd);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(outfile, "r");
    assert_non_null(f);
    size_t got = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[got] = 0;
    if (!strstr(line, "2 steps, no full epoch, so no test evaluation") || strstr(line, "accuracy"))
        fail_msg("summary after 2 of 4 steps: %s", line);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t got = fread(buf, 1, (1 << 16) - 1, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* An --out that holds a run is refused (exit 2, naming --resume and --overwrite) and left
 * as it was; --overwrite replaces it; a --resume whose checkpoint does not fit the flags
 * fails before writing anything into the run. */
static void an_existing_run_is_kept_unless_resumed_or_overwritten(void **state)
{
    (void)state;
    char err[4096], args[1024], config[400], metrics[400];
    snprintf(config, sizeof config, "%s/kept/config.json", dir);
    snprintf(metrics, sizeof metrics, "%s/kept/metrics.jsonl", dir);
    /* The data directory by a path with "..": config.json records it resolved, for eval to find. */
    snprintf(args, sizeof args, "train --data %s/data/../data --batch-size 16 --epochs 1 --out %s/kept --quiet", dir,
             dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    char *config0 = read_text(config), *metrics0 = read_text(metrics), resolved[PATH_MAX + 8];
    assert_non_null(config0);
    assert_non_null(metrics0);
    assert_true(strlen(metrics0) > 0);
    /* The training curves are there, as PNGs. */
    static const char *const figures[] = {"loss.png", "accuracy.png"};
    for (int i = 0; i < 2; i++) {
        char png[400];
        snprintf(png, sizeof png, "%s/kept/%s", dir, figures[i]);
        char *bytes = read_text(png);
        if (!bytes || memcmp(bytes, "\x89PNG", 4) != 0) fail_msg("%s is missing or not a PNG", png);
        free(bytes);
    }
    char data_dir[300], data_real[PATH_MAX];
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    assert_non_null(realpath(data_dir, data_real));
    snprintf(resolved, sizeof resolved, "\"%s\"", data_real);
    if (!strstr(config0, resolved) || strstr(config0, "..")) fail_msg("data path in config.json: %s", config0);
    /* Resuming a run that already reached --epochs has nothing to do: said so, exit 1. */
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --epochs 1 --resume %s/kept/checkpoint.ckpt "
             "--out %s/kept --quiet", dir, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "raise --epochs")) fail_msg("resuming a finished run: %s", err);
    char *config_after = read_text(config);
    assert_string_equal(config_after, config0);
    free(config_after);
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --max-steps 1 --out %s/kept --quiet --lr 0.01",
             dir, dir);
    assert_int_equal(run(args, err, sizeof err), 2);
    if (!strstr(err, "already holds a run") || !strstr(err, "--resume") || !strstr(err, "--overwrite"))
        fail_msg("refusal message: %s", err);
    char *config1 = read_text(config), *metrics1 = read_text(metrics);
    assert_string_equal(config1, config0);
    assert_string_equal(metrics1, metrics0);
    /* A checkpoint for another model: refused before config.json is rewritten. */
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --model resnet20 --resume %s/kept/checkpoint.ckpt "
             "--out %s/kept --quiet", dir, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    char *config2 = read_text(config);
    assert_string_equal(config2, config0);
    /* Resuming into another directory that holds a run is refused like any --out... */
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --max-steps 1 --out %s/other --quiet", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --epochs 2 --resume %s/kept/checkpoint.ckpt "
             "--out %s/other --quiet", dir, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 2);
    assert_non_null(strstr(err, "already holds a run"));
    /* ... and without --out it continues in the checkpoint's directory: epoch 2 lands there. */
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --epochs 2 --resume %s/kept/checkpoint.ckpt "
             "--quiet", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    char *metrics2 = read_text(metrics);
    if (!strstr(metrics2, "\"type\":\"epoch\",\"epoch\":2")) fail_msg("no epoch 2 in %s: %s", metrics, metrics2);
    free(metrics2);
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --max-steps 1 --out %s/kept --quiet --lr 0.01 "
             "--overwrite", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    char *config3 = read_text(config);
    assert_non_null(strstr(config3, "0.01"));
    free(config0), free(metrics0), free(config1), free(metrics1), free(config2), free(config3);
}

/* A copy of checkpoint `from` at `to`, its section `tag` changed by `edit` and the CRC made
 * valid again: what a damaged or hand-made file that passes the CRC looks like. */
static void write_edited_checkpoint(const char *from, const char *to, const char *tag,
                                    void (*edit)(unsigned char *data, uint64_t bytes))
{
    vka_logger lg = {0};
    vka_checkpoint ck;
    assert_int_equal(vka_checkpoint_read(&lg, from, &ck), VKA_SUCCESS);
    vka_ckpt_section sections[128];
    assert_true(ck.count <= 128);
    unsigned char *copy = NULL;
    for (uint32_t i = 0; i < ck.count; i++) {
        sections[i] = ck.sections[i];
        if (strcmp(ck.sections[i].tag, tag) == 0) {
            copy = malloc(ck.sections[i].bytes);
            memcpy(copy, ck.sections[i].data, ck.sections[i].bytes);
            edit(copy, ck.sections[i].bytes);
            sections[i].data = copy;
        }
    }
    assert_non_null(copy);
    assert_int_equal(vka_checkpoint_write(&lg, to, sections, ck.count), VKA_SUCCESS);
    free(copy);
    vka_checkpoint_free(&ck);
}

static void nan_in_the_middle(unsigned char *data, uint64_t bytes)
{
    float nan = NAN;
    memcpy(data + (bytes / 8) * 4, &nan, 4);
}

/* Batch index 4 of epoch 0 in a run of 4 batches per epoch (64 images, batch 16): the end of
 * an epoch, which a run saves as the next epoch's batch 0. */
static void batch_past_the_epoch(unsigned char *data, uint64_t bytes)
{
    assert_true(bytes >= 24);
    const uint64_t pos[3] = {0, 4, 4};
    memcpy(data, pos, sizeof pos);
}

static void step_far_ahead(unsigned char *data, uint64_t bytes)
{
    assert_true(bytes >= 24);
    uint64_t step = (uint64_t)1 << 62;
    memcpy(data + 16, &step, 8); /* progress: epoch, batch, step */
}

/* Checkpoints whose CRC holds but whose content no healthy run writes (a NaN parameter, a
 * position past any epoch) are refused by resume and eval with a message naming the problem,
 * not trained on or reported as a diverged run. */
static void checkpoints_no_healthy_run_writes_are_refused(void **state)
{
    (void)state;
    char err[4096], args[1400], good[400], bad[400];
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --max-steps 2 --out %s/healthy --quiet", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    snprintf(good, sizeof good, "%s/healthy/checkpoint.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/nan.ckpt", dir);
    write_edited_checkpoint(good, bad, "params", nan_in_the_middle);
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --epochs 2 --resume %s --out %s/from-nan --quiet",
             dir, bad, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "'params'") || !strstr(err, "nan") || strstr(err, "diverged")) fail_msg("resume from NaN: %s", err);
    snprintf(args, sizeof args, "eval --checkpoint %s --data %s/data --report %s/nan.json", bad, dir, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "'params'")) fail_msg("eval of NaN: %s", err);
    snprintf(bad, sizeof bad, "%s/ahead.ckpt", dir);
    write_edited_checkpoint(good, bad, "progress", step_far_ahead);
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --epochs 2 --resume %s --out %s/from-ahead --quiet",
             dir, bad, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "its position")) fail_msg("resume from a crafted position: %s", err);
    write_edited_checkpoint(good, bad, "progress", batch_past_the_epoch);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "its position")) fail_msg("resume from batch 4 of 4: %s", err);
    /* Its position counts batches of its own size: another --batch-size is refused. */
    snprintf(args, sizeof args, "train --data %s/data --batch-size 8 --epochs 2 --resume %s --out %s/other-batch "
             "--quiet", dir, good, dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "--batch-size 16")) fail_msg("resume with another batch size: %s", err);
    snprintf(args, sizeof args, "%s/from-nan", dir);
    if (access(args, F_OK) == 0) fail_msg("a refused resume made %s", args);
    /* A resume whose --max-steps the checkpoint has reached would train nothing: said, exit 1. */
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --resume %s --max-steps 2 --quiet", dir, good);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "raise --max-steps")) fail_msg("resume past --max-steps: %s", err);
    assert_int_equal(run("train --out '' --max-steps 1", err, sizeof err), 2);
    if (!strstr(err, "--out ''")) fail_msg("an empty --out: %s", err);
}

/* A resumed run takes its own run's settings where no flag is given (it continues that run),
 * names the flags that change one, and says which part of a mismatched checkpoint differs. */
static void a_resumed_run_defaults_to_its_own_settings(void **state)
{
    (void)state;
    char err[4096], args[1400], config[400];
    snprintf(args, sizeof args, "train --data %s/data --batch-size 8 --lr 0.01 --optimizer adamw --epochs 3 "
             "--max-steps 2 --out %s/own --quiet", dir, dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    snprintf(args, sizeof args, "train --resume %s/own/checkpoint.ckpt --max-steps 4 --quiet", dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    if (strstr(err, "did not have")) fail_msg("a resume with no flags changed settings: %s", err);
    snprintf(config, sizeof config, "%s/own/config.json", dir);
    char *text = read_text(config);
    assert_non_null(text);
    if (!strstr(text, "\"lr\":\t0.01") || !strstr(text, "\"adamw\"") || !strstr(text, "\"batch_size\":\t8") ||
        !strstr(text, "\"epochs\":\t3"))
        fail_msg("the resumed run's config.json: %s", text);
    free(text);
    /* getopt_long's abbreviation of --resume finds the run's settings too. */
    snprintf(args, sizeof args, "train --res=%s/own/checkpoint.ckpt --max-steps 5 --quiet", dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    if (strstr(err, "did not have")) fail_msg("a resume by --res changed settings: %s", err);
    snprintf(args, sizeof args, "train --resume %s/own/checkpoint.ckpt --max-steps 6 --lr 0.02 --quiet", dir);
    assert_int_equal(run(args, err, sizeof err), 0);
    if (!strstr(err, "lr 0.02 (was 0.01)")) fail_msg("a changed --lr: %s", err);
    snprintf(args, sizeof args, "train --resume %s/own/checkpoint.ckpt --max-steps 8 --optimizer sgd --quiet", dir);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "another optimizer")) fail_msg("another --optimizer: %s", err);
}

/* Runs started together without --out each get their own runs/<timestamp> directory (a suffix
 * where the second is the same), and a run that fails before writing leaves none behind. */
static void default_run_directories_never_collide(void **state)
{
    (void)state;
    char cmd[2048], runs[400];
    snprintf(runs, sizeof runs, "%s/cwd", dir);
    assert_int_equal(mkdir(runs, 0755), 0);
    snprintf(cmd, sizeof cmd, "cd %s && (for i in 1 2 3; do %s train --data %s/data --batch-size 16 --max-steps 1 "
             "--quiet >/dev/null 2>&1 & done; wait) && test $(ls runs | wc -l) -eq 3 && test $(ls runs/*/checkpoint.ckpt "
             "| wc -l) -eq 3", runs, VKANCHOR_EXE, dir);
    assert_int_equal(system(cmd), 0);
    /* A directory another process holds (its lock, taken here) is refused at once, saying so. */
    char locked[400], lock[420], err[4096], args[1024];
    snprintf(locked, sizeof locked, "%s/locked", dir);
    assert_int_equal(mkdir(locked, 0755), 0);
    snprintf(lock, sizeof lock, "%s/.lock", locked);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    assert_int_equal(fcntl(fd, F_SETLK, &l), 0);
    snprintf(args, sizeof args, "train --data %s/data --batch-size 16 --max-steps 1 --out %s --quiet", dir, locked);
    assert_int_equal(run(args, err, sizeof err), 1);
    if (!strstr(err, "another vkanchor train is writing into it")) fail_msg("a held directory: %s", err);
    close(fd);
    snprintf(cmd, sizeof cmd, "cd %s && ! %s train --data %s/data --batch-size 60000 --max-steps 1 --quiet 2>/dev/null "
             "&& ! %s train --data %s/data --device no-such-device --max-steps 1 --quiet 2>/dev/null "
             "&& test $(ls runs | wc -l) -eq 3", runs, VKANCHOR_EXE, dir, VKANCHOR_EXE, dir);
    assert_int_equal(system(cmd), 0);
}

/* Integer flags take integers, schedules that contradict --epochs are refused. */
static void flags_that_cannot_mean_what_they_say_are_refused(void **state)
{
    (void)state;
    char err[4096];
    assert_int_equal(run("train --epochs 1.5", err, sizeof err), 2);
    assert_non_null(strstr(err, "--epochs 1.5: expected an integer"));
    assert_int_equal(run("train --warmup-epochs 5 --epochs 2", err, sizeof err), 2);
    assert_non_null(strstr(err, "--warmup-epochs"));
    assert_int_equal(run("train --schedule multistep --milestones 9,3 --epochs 10", err, sizeof err), 2);
    assert_non_null(strstr(err, "--milestones"));
    assert_int_equal(run("train --schedule multistep --milestones 3,20 --epochs 10", err, sizeof err), 2);
    assert_int_equal(run("train --seed -1", err, sizeof err), 2);
    assert_int_equal(run("train --seed 1.5", err, sizeof err), 2);
    assert_int_equal(run("train --seed 18446744073709551616", err, sizeof err), 2);
    assert_int_equal(run("train extra", err, sizeof err), 2);
    assert_non_null(strstr(err, "'extra'"));
    /* Flags the rest of the command leaves nothing to do are said (the run itself then stops at
     * a batch larger than the 64 training images, before any work). */
    static const char *const idle[][2] = {{"--gamma 0.5", "--gamma is used by --schedule multistep only"},
                                          {"--schedule constant --warmup-epochs 1 --epochs 3", "--warmup-epochs is used"},
                                          {"--no-anchoring --ref-pool train", "--ref-pool does nothing"}};
    for (int i = 0; i < 3; i++) {
        char args[1024];
        snprintf(args, sizeof args, "train --data %s/data --batch-size 1000 --out %s/idle %s", dir, dir, idle[i][0]);
        assert_int_equal(run(args, err, sizeof err), 1);
        if (!strstr(err, idle[i][1])) fail_msg("train %s: %s", idle[i][0], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ctrl_c_saves_a_checkpoint_and_exits_130),
        cmocka_unit_test(stopping_before_an_epoch_says_there_was_no_test_evaluation),
        cmocka_unit_test(bad_flags_and_bad_data_fail_with_one_clear_line),
        cmocka_unit_test(an_existing_run_is_kept_unless_resumed_or_overwritten),
        cmocka_unit_test(flags_that_cannot_mean_what_they_say_are_refused),
        cmocka_unit_test(checkpoints_no_healthy_run_writes_are_refused),
        cmocka_unit_test(a_resumed_run_defaults_to_its_own_settings),
        cmocka_unit_test(default_run_directories_never_collide),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
