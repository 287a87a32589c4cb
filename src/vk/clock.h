/* The host's monotonic clock and durations as people read them: for progress lines (images/s,
 * ETA) and host-side timings. */
#ifndef VKA_VK_CLOCK_H
#define VKA_VK_CLOCK_H

#include <stddef.h>

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: for differences only). */
double vka_seconds(void);
/* "4m07s", or "2h05m" from an hour up; a negative or non-finite duration reads 0m00s. */
void vka_format_duration(double seconds, char *out, size_t n);

#endif
