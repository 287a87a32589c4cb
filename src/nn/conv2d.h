/* conv2d: 2-D convolution (cross-correlation, as PyTorch's Conv2d) of dense NCHW
 * float32 tensors with zero padding, any kernel R x S, one stride and one
 * padding for both axes, optional bias. Implicit GEMM (no im2col buffer):
 *
 *   forward      y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K)
 *   backward     dx (N,C,H,W) by gathering over k, r, s and the dy positions
 *                that touch each input element (no atomics);
 *                dw (K,C,R,S), db (K) by a split reduction over N*P*Q: a fixed
 *                number of slices write partials into a scratch tensor and a
 *                second pass sums them in slice order (bit-identical run to run).
 * On lavapipe (the TEXEL variant) inputs and weights are first repacked channels-packed
 * into the scratch, or written there packed by their producer (conv2d_packed.h); elsewhere
 * GEMM kernels read NCHW directly.
 *
 * P = (H + 2*pad - R) / stride + 1, Q = (W + 2*pad - S) / stride + 1 (floor).
 * Every backward OVERWRITES its outputs. Internal: tests include "nn/conv2d.h". */
#ifndef VKA_NN_CONV2D_H
#define VKA_NN_CONV2D_H

#include "nn/packed_layout.h"
#include "vkanchor.h"

typedef enum vka_conv2d_variant {
    VKA_CONV2D_AUTO = 0,          /* from device properties; VKANCHOR_CONV=tiled|texel overrides */
    VKA_CONV2D_TILED,             /* shared-memory tiles + register blocks: real GPUs */
    VKA_CONV2D_TEXEL,             /* texel-buffer loads, workgroups of 8, register blocks: lavapipe */
} vka_conv2d_variant;

typedef struct vka_conv2d_shape {
    uint32_t n, c, h, w;          /* input x (N,C,H,W) */
    uint32_t k, r, s;             /* weights w (K,C,R,S); output y (N,K,P,Q) */
    uint32_t stride, pad;         /* stride >= 1; zero padding on all four sides */
    vka_conv2d_variant variant;   /* 0: AUTO */
    /* The TILED kernels' register block per thread (rows x columns of the GEMM): 4 or 8
     * each; 0 picks it from the GEMM's size and the device (tests, A/B measurements). */
    uint32_t tiled_rm, tiled_rn;
    /* Backward only: the scratch still holds what vka_conv2d_forward packed from this x with
     * this shape (nothing else ran on the scratch since), so lavapipe's weight gradient skips
     * repacking x. The caller vouches for it; ignored where nothing is packed. */
    int x_packed_by_forward;
    /* Backward only: dy is already in the scratch in the packed layout that
     * vka_conv2d_dy_packed_layout describes (its producer wrote it there, e.g.
     * vka_batchnorm_backward_packed_dx), with zeros in its border; the dy
     * argument is not read and may be absent. */
    int dy_packed;
    /* Forward (and the backward after it): x is already in the scratch in the packed layout
     * that vka_conv2d_x_packed_layout describes (its producer wrote it there, e.g.
     * vka_batchnorm_forward with a yp), with zeros in its border; the x argument is not
     * read and may be absent. */
    int x_packed;
    /* Forward (and the backward after it), lavapipe's packed path: x is read from this packed
     * copy, another conv's packed x of the same tensor with a border of at least pad (a
     * projection shortcut reading its block's first conv's copy, vka_conv2d_x_shared_fits),
     * not packed again, with zeros in its border like x_packed's; the x argument is not read
     * and may be absent. Unused when its tensor is absent (size 0). */
    vka_packed_layout x_shared;
    /* Backward only, lavapipe's packed path (vka_conv2d_dx_tap_phases): where dx meets another
     * gradient part of the same x, written by another conv of the same stride.
     * dx_skip_empty_phases: the stride phases without taps (zeros) are not written; a later
     * writer covers them. dx_accumulate: a bit per phase (ph * stride + pw): dx there takes
     * this conv's part added to what is in it (the earlier writer's), instead of overwritten. */
    int dx_skip_empty_phases;
    uint32_t dx_accumulate;
    /* The batch the scratch was sized for (vka_conv2d_scratch_bytes at that batch), 0: n.
     * Calls with any n <= n_capacity then find the packed copies at the same places (a
     * smaller batch uses a prefix of each), so a pass at a smaller batch (an evaluation
     * between training steps) never writes into another region's border. */
    uint32_t n_capacity;
    /* All three passes on cooperative matrices (conv2d_coop.c: NVIDIA's tensor cores, fp16
     * inputs with dy scaled into their range, fp32 sums): 0 where the context enabled them,
     * their self-test passed, the variant is TILED and (backward) the scratch has the coop
     * region, 1 required (UNSUPPORTED otherwise), -1 never; 2 the same kernels with their
     * fragment operations emulated by plain code (their test, on any device with fp16
     * arithmetic). */
    int coop;
} vka_conv2d_shape;

/* Whether this context's conv passes may run on cooperative matrices: the device offers
 * VK_NV_cooperative_matrix's 16x8x16 fp16 tiles (not with VKANCHOR_COOPMAT=0), and the
 * kernels passed their self-test against the fp32 tiled ones (forward and both gradients),
 * run on the first call (conv2d_coop.c; a failure is logged once as a warning and the fp32
 * kernels stay for all three passes). */
int vka_conv2d_coop_ready(vka_context *ctx);
/* One conv's forward and both gradients (bias included) run as `fast` and as `plain` say (the
 * same geometry; variant and coop differ), from the same deterministic inputs in [-1, 1) and a
 * dy scaled by dy_scale: the largest difference over the four outputs relative to plain's
 * largest magnitude, INFINITY where a value is not finite, NaN where a pass could not run
 * (conv2d_self_test.c).
 * What the fast paths' start-up self-tests run. */
double vka_conv2d_compare_paths(vka_context *ctx, const vka_conv2d_shape *fast, const vka_conv2d_shape *plain,
                                float dy_scale);
/* Whether the channels-packed kernels (lavapipe's path: RGBA32F texels, subgroup shuffles,
 * 64-bit stores) may run on this context: the device offers what they need, VKANCHOR_CONV_PACKED
 * does not turn them off, and their self-test against the fp32 tiled kernels passed. The model
 * runs it when a context makes its first model (the op tests test the kernels themselves); a
 * failure is logged once as a warning and every conv takes the fp32 kernels. */
int vka_conv2d_packed_ready(vka_context *ctx);
/* The same against another tolerance (its test: 0 fails it on any rounding difference). */
int vka_conv2d_packed_ready_within(vka_context *ctx, double tolerance);
/* The coop kernel's shared memory (conv2d_gemm_coop.glsl: fp16 A and B tiles 32 x 72, fp32 C
 * 64 x 68); a context planned with less (VKANCHOR_LIMITS=min) does not use it. */
#define VKA_CONV2D_COOP_SHARED_BYTES (2u * 32u * 72u * 2u + 64u * 68u * 4u)
/* The coop kernel's description as the forward gives it, checked against its SPIR-V and the
 * planned limits without building it (its test, on devices that cannot build it). */
vka_result vka_conv2d_coop_check(vka_context *ctx);

/* The tiled kernels' plan, exposed for its tests. Slices of the weight gradient's reduction
 * for variant v's GEMM kernels (the tiled ones aim at ~1024 workgroups of 64 x 64; a call
 * takes at most what its scratch holds), and the register block (4 or 8 per dimension) for
 * an M x N GEMM with `slices` workgroup layers on tx x ty threads, on a device of this type:
 * sh->tiled_rm / tiled_rn, else VKANCHOR_TILED_BLOCK=RMxRN, else 4x4 on CPU devices and on
 * GPUs 8 along a dimension of at least 128 rows / 256 columns where 256 workgroups remain. */
uint32_t vka_conv2d_weight_slices(const vka_conv2d_shape *sh, vka_conv2d_variant v);
void vka_conv2d_tiled_block(vka_device_type type, const vka_conv2d_shape *sh, uint64_t m, uint64_t n, uint32_t slices,
                            uint32_t tx, uint32_t ty, uint32_t *rm, uint32_t *rn);

/* Output height P / width Q by floor; 0 when the kernel exceeds the padded input or stride is 0. */
uint32_t vka_conv2d_out_h(const vka_conv2d_shape *sh);
uint32_t vka_conv2d_out_w(const vka_conv2d_shape *sh);

/* The variant the ops would run for this shape on this context (never AUTO):
 * sh->variant if set, else VKANCHOR_CONV, else TEXEL on CPU devices and TILED
 * elsewhere; AUTO falls back to TILED where the texel inputs cannot be bound
 * (texel-buffer element limit, no R32F texel buffers). */
vka_conv2d_variant vka_conv2d_choose(const vka_context *ctx, const vka_conv2d_shape *sh);

/* Bytes of scratch every pass of this shape needs (a multiple of 256): the weight-gradient
 * partials, on CPU devices the channels-packed copies of lavapipe's kernels, and where the
 * context may run the cooperative-matrix backward (or sh->coop == 2) max |dy| and its
 * reduction's partials at the end. One scratch
 * per layer: each call clobbers it, except what x_packed_by_forward and dy_packed rely on, and the
 * packed x another conv reads as its x_shared (calls never write their own packed x region when
 * x_packed is set). */
uint64_t vka_conv2d_scratch_bytes(const vka_context *ctx, const vka_conv2d_shape *sh);
/* The largest single buffer binding (bytes) a call at this shape makes on this device: x, y,
 * w, the weight-gradient partials, and on lavapipe's packed path the packed x and dy copies.
 * A model checks it against maxStorageBufferRange before it allocates (vka_model_create). */
uint64_t vka_conv2d_largest_binding(const vka_context *ctx, const vka_conv2d_shape *sh);

/* Whether the backward of this shape with this scratch runs lavapipe's packed kernels; if so,
 * *out describes where and how its packed dy lives in the scratch, for a producer to write
 * directly (then set sh->dy_packed). The border of that region must hold zeros:
 * zero the scratch once (vka_fill) before the first such step; the conv2d ops keep them as
 * long as every call on this scratch gives the same n_capacity. */
int vka_conv2d_dy_packed_layout(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                                vka_packed_layout *out);

/* The same for x, the forward's input (then set sh->x_packed): zeros in the border likewise. */
int vka_conv2d_x_packed_layout(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                               vka_packed_layout *out);

/* Whether this shape with this scratch runs lavapipe's packed kernels and can read its x from
 * the packed copy l (another conv's, of the same x: sh->x_shared). */
int vka_conv2d_x_shared_fits(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch,
                             const vka_packed_layout *l);

/* The input gradient's stride phases (bit ph * stride + pw) that have taps, on lavapipe's packed
 * path (the others are zeros: a 1x1 stride-2 conv has taps in phase (0, 0) only); 0 where the
 * packed path does not run for this shape with this scratch. */
uint32_t vka_conv2d_dx_tap_phases(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch);

/* y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K). b may be (vka_tensor){0}: no bias. */
vka_result vka_conv2d_forward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x,
                              vka_tensor w, vka_tensor b, vka_tensor scratch);

/* The forward can also hand the BatchNorm after it y's per-channel statistics, computed in its
 * epilogue from the outputs still in registers instead of by a pass of the BN over y (lavapipe's
 * packed path only): G partials per channel, each (count, mean, M2 about that mean, 0) as the
 * BN's finalize merges them (vka_batchnorm_io.stats). G for this shape with this scratch, 0
 * where the forward cannot write them (another kernel family runs; VKANCHOR_CONV_STATS=0). It
 * assumes x and w bindable as texel buffers; where they are not, vka_conv2d_forward_stats refuses. */
uint32_t vka_conv2d_stats_groups(const vka_context *ctx, const vka_conv2d_shape *sh, vka_tensor scratch);

/* vka_conv2d_forward that also writes those partials: stats (K, G) vec4, G = vka_conv2d_stats_groups
 * (an error where that is 0). */
vka_result vka_conv2d_forward_stats(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor y, vka_tensor x,
                                    vka_tensor w, vka_tensor b, vka_tensor scratch, vka_tensor stats);

/* Both gradients in one call (sharing lavapipe's packed copy of dy):
 *   dx (N,C,H,W) = d(sum y*dy)/dx from dy (N,K,P,Q) and w, when dx is present;
 *   dw (K,C,R,S) and db (K) from dy and x, when dw is present (db optional, needs dw).
 * Overwrites its outputs; x or w may be absent when its gradient is not asked for. */
vka_result vka_conv2d_backward(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor dw,
                               vka_tensor db, vka_tensor dy, vka_tensor x, vka_tensor w, vka_tensor scratch);

/* dx alone (vka_conv2d_backward without dw). */
vka_result vka_conv2d_backward_data(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dx, vka_tensor dy,
                                    vka_tensor w, vka_tensor scratch);

/* dw and db alone (vka_conv2d_backward without dx); db may be (vka_tensor){0}. */
vka_result vka_conv2d_backward_weight(vka_cmd *cmd, const vka_conv2d_shape *sh, vka_tensor dw, vka_tensor db,
                                      vka_tensor dy, vka_tensor x, vka_tensor scratch);

#endif
