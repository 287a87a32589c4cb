/* The device's fp32 multiply-add rate and memory bandwidth, measured by two probe shaders:
 * the "peak" that vkanchor bench states each kernel's share of. Measured, not looked up,
 * so it is known on every device (lavapipe included) and is what shaders can reach there. */
#ifndef VKA_NN_PEAK_H
#define VKA_NN_PEAK_H

#include "vkanchor.h"

typedef struct vka_device_peak {
    double fma_gflops;   /* fp32 FMA throughput, 2 FLOP per FMA (the best of 3 timed runs) */
    double copy_gbps;    /* a buffer copy, bytes read + bytes written per second (best of 3) */
    uint64_t copy_bytes; /* the copied buffer's size */
} vka_device_peak;

/* Runs the probes (a few tens of milliseconds of device time); GPU timestamps where the
 * queue has them, else the host clock around each submit. */
vka_result vka_measure_peak(vka_context *ctx, vka_device_peak *out);

/* The probes alone, for their tests: fma writes (invocations,) floats to out after
 * `iterations` steps of its chains; copy moves n vec4s from src to dst. Each records one
 * dispatch into cmd. */
vka_result vka_peak_fma(vka_cmd *cmd, vka_tensor out, uint32_t invocations, uint32_t iterations, float m, float c);
vka_result vka_peak_copy(vka_cmd *cmd, vka_tensor dst, vka_tensor src, uint32_t n);

#endif
