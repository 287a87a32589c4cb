/* The vkanchor command: one function per subcommand. Only src/cli prints and exits. */
#ifndef VKA_CLI_H
#define VKA_CLI_H

#include "vkanchor.h"

/* Exit codes: 0 success, 1 runtime failure, 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints library diagnostics to stderr: errors and warnings always, info with --verbose. */
void cli_log(void *user, vka_log_level level, const char *message);
extern int cli_verbose;

/* Parse a flag's value into *out, or print "vkanchor CMD: FLAG VALUE: expected ..." and
 * return 0: any number in [lo, hi], or an integer in it (cli_args.c). */
int cli_number(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
int cli_integer(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
/* A seed: all 64 bits of a decimal integer, exactly. */
int cli_seed(const char *cmd, const char *flag, const char *s, uint64_t *out);
/* 1 when getopt left no positional argument, else prints which one was unexpected. */
int cli_no_positional(const char *cmd, int argc, char **argv, int optind_now);

int cli_devices(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_eval(int argc, char **argv);

#endif
