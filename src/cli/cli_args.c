/* Flag values for every subcommand: a number in a range (an integer where the flag counts
 * something), or the one-line error that names the flag, the value and the range. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "cli/cli.h"

int cli_number(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "vkanchor %s: %s %s: expected a number in [%g, %g]\n", cmd, flag, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_integer(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi) || v != floor(v)) {
        fprintf(stderr, "vkanchor %s: %s %s: expected an integer in [%.0f, %.0f]\n", cmd, flag, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_seed(const char *cmd, const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno == ERANGE || s[0] == '-' || s[0] == '+' || s[0] == ' ') {
        fprintf(stderr, "vkanchor %s: %s %s: expected an integer in [0, %llu]\n", cmd, flag, s, (unsigned long long)UINT64_MAX);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_no_positional(const char *cmd, int argc, char **argv, int optind_now)
{
    if (optind_now >= argc) return 1;
    fprintf(stderr, "vkanchor %s: unexpected argument '%s' (see --help)\n", cmd, argv[optind_now]);
    return 0;
}
