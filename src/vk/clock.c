#include <math.h>
#include <stdio.h>
#include <time.h>

#include "vk/clock.h"

double vka_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void vka_format_duration(double seconds, char *out, size_t n)
{
    if (seconds < 0 || !isfinite(seconds)) seconds = 0;
    unsigned long t = (unsigned long)seconds;
    if (t >= 3600) snprintf(out, n, "%luh%02lum", t / 3600, t / 60 % 60);
    else snprintf(out, n, "%lum%02lus", t / 60, t % 60);
}
