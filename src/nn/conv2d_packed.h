/* lavapipe's channels-packed convolution path (conv2d_packed.c), used by conv2d.c for the
 * TEXEL variant: x and dy repacked into [N][H'][W'][ceil(C/4)] vec4 with a zero border
 * (unless their producer wrote them so: x_packed, dy_packed), weights into
 * [R][S][Cin][ceil(Cout/4)] vec4, then register-blocked kernels with no padding tests; the
 * input gradient of a strided convolution runs as one stride-1 correlation per output phase.
 * The packed copies live in the layer's scratch after the weight-gradient partials, at
 * offsets fixed by the capacity batch (n_capacity). */
#ifndef VKA_NN_CONV2D_PACKED_H
#define VKA_NN_CONV2D_PACKED_H

#include "nn/conv2d.h"
#include "nn/ops_internal.h"
#include "nn/packed_layout.h"

/* Shapes the packed kernels take: square kernels up to 3x3, stride 1 or 2, pad < R. */
int vka_conv2d_packed_shape(const vka_conv2d_shape *sh);

/* Scratch bytes the packed path needs in all, its copies placed after partial_bytes. */
uint64_t vka_conv2d_packed_scratch_end(const vka_conv2d_shape *sh, uint64_t partial_bytes);

/* The larger of the packed x and dy copies, in bytes (each is one binding). */
uint64_t vka_conv2d_packed_largest_copy(const vka_conv2d_shape *sh);

/* Image groups of the packed weight gradient (its partials: groups x K x (C*R*S+1) floats). */
uint32_t vka_conv2d_packed_groups(const vka_conv2d_shape *sh);

/* Whether the device can run the packed kernels at all: RGBA32F texel buffers, subgroups of
 * exactly 8 (lavapipe on 256-bit SIMD) with shuffles. */
int vka_conv2d_packed_device(const vka_context *ctx);

/* Whether the packed path can run for this shape with this scratch on this device
 * (RGBA32F texel buffers, texel-element limits, binding alignments). */
int vka_conv2d_packed_usable(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                             uint64_t partial_bytes);

/* Whether l can serve as this shape's packed x (sh->x_shared): the same H, W and channel vec4,
 * a border of at least pad, room for every row and column the kernels read, bindable. */
int vka_conv2d_packed_x_shared_fits(const vka_context *ctx, const vka_conv2d_shape *sh, const vka_packed_layout *l);

/* Where the backward keeps its packed dy in the scratch (what a producer writes for sh->dy_packed). */
vka_packed_layout vka_conv2d_packed_dy_layout(const vka_conv2d_shape *sh, vka_tensor scratch,
                                              uint64_t partial_bytes);

/* Where the forward keeps its packed x in the scratch (what a producer writes for sh->x_packed). */
vka_packed_layout vka_conv2d_packed_x_layout(const vka_conv2d_shape *sh, vka_tensor scratch, uint64_t partial_bytes);

/* Workgroups of runs the packed forward dispatches per output channel block: the G of its
 * statistics partials (vka_conv2d_stats_groups). */
uint32_t vka_conv2d_packed_stats_groups(const vka_conv2d_shape *sh);

/* y (N,K,P,Q) = conv(x, w) + b: packs x (unless sh->x_packed) and w into the scratch, then one
 * kernel; when stats is present that kernel also writes y's per-channel statistics partials
 * ((K, vka_conv2d_packed_stats_groups) vec4: count, mean, M2, 0). */
vka_result vka_conv2d_packed_forward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x,
                                     vka_tensor w, vka_tensor b, vka_tensor stats, vka_tensor scratch,
                                     uint64_t partial_bytes);

/* The input gradient's stride phases with taps (bit ph * stride + pw). */
uint32_t vka_conv2d_packed_tap_phases(const vka_conv2d_shape *sh);

/* The backward passes on one packed copy of dy (packed here unless sh->dy_packed): dx (when
 * present) by the packed kernel, and,
 * when partials is present, the weight/bias gradient partials (vka_conv2d_packed_groups
 * groups, reduced by the caller). Leaves the barrier after its writes to the caller. */
vka_result vka_conv2d_packed_backward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor partials,
                                      int has_bias, vka_tensor dy, vka_tensor x, vka_tensor w, vka_tensor scratch,
                                      uint64_t partial_bytes);

#endif
