/* vkanchor: anchored training and evaluation of vision models on any Vulkan device. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_verbose = 0;
/* Messages from the Vulkan validation layers (VKANCHOR_VALIDATION=1): any fails the command, as
 * it fails a test, so that a run under validation cannot pass with the layers objecting. */
static unsigned validation_messages = 0;

void cli_log(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level == VKA_LOG_VALIDATION) validation_messages++;
    static const char *const tags[] = {"debug", "info", "warning", "error", "validation"};
    if (level < VKA_LOG_WARNING && !cli_verbose) return;
    if (level == VKA_LOG_DEBUG && cli_verbose < 2) return;
    if (level == VKA_LOG_INFO) fprintf(stderr, "%s\n", message); /* progress and summaries, as they are */
    else fprintf(stderr, "vkanchor: %s: %s\n", tags[level], message);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkanchor <command> [options]\n"
            "\n"
            "commands:\n"
            "  devices [--json]   list the Vulkan devices, their limits and optional features\n"
            "  train [options]    anchored training with reference masking (default: Fashion-MNIST, cnn)\n"
            "  eval [options]     anchored inference: accuracy, calibration, OOD rejection, corruptions\n"
            "  bench [options]    training and inference throughput, per-kernel GPU time\n"
            "\n"
            "Run 'vkanchor <command> --help' for a command's options; 'vkanchor --version'.\n"
            "Environment: VKANCHOR_VALIDATION=1 turns the Vulkan validation layers on;\n"
            "VKANCHOR_LIMITS=min plans kernels with the Vulkan spec minimum limits;\n"
            "VKANCHOR_DATA=DIR is searched for datasets given by name (DIR/<name>/).\n");
}

/* What went to standard output (a JSON report, a table, the help) must have arrived: a full
 * disk behind it is a failure, not a silent loss. */
static int checked_stdout(const char *command, int status)
{
    errno = 0;
    int flush_failed = fflush(stdout) != 0, err = errno;
    if (flush_failed || ferror(stdout)) {
        /* errno names the flush's failure; an earlier failed write left only the error flag. */
        fprintf(stderr, "vkanchor %s: cannot write standard output (%s)\n", command,
                flush_failed && err ? strerror(err) : "a write failed");
        return status == CLI_OK ? CLI_FAIL : status;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        usage(stdout);
        return checked_stdout(command, CLI_OK);
    }
    if (strcmp(command, "--version") == 0) {
        printf("vkanchor 0.1.0\n");
        return checked_stdout(command, CLI_OK);
    }
    /* getopt names its errors after argv[0]: "vkanchor train: unrecognized option '--foo'". */
    char name[64];
    snprintf(name, sizeof name, "vkanchor %s", command);
    argv[1] = name;
    int status;
    if (strcmp(command, "devices") == 0) status = cli_devices(argc - 1, argv + 1);
    else if (strcmp(command, "train") == 0) status = cli_train(argc - 1, argv + 1);
    else if (strcmp(command, "eval") == 0) status = cli_eval(argc - 1, argv + 1);
    else if (strcmp(command, "bench") == 0) status = cli_bench(argc - 1, argv + 1);
    else {
        fprintf(stderr, "vkanchor: unknown command '%s' (see 'vkanchor --help')\n", command);
        return CLI_USAGE;
    }
    if (validation_messages && status == CLI_OK) {
        fprintf(stderr, "vkanchor %s: the Vulkan validation layers reported %u message%s (above): failing\n", command,
                validation_messages, validation_messages > 1 ? "s" : "");
        status = CLI_FAIL;
    }
    return checked_stdout(command, status);
}
