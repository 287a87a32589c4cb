/* Kernel cache slots of the norm family (batchnorm.c, pointwise.c, pool.c), all in
 * one enum so the three files can never collide: VKA_SLOT_BASE_NORM .. +31, then
 * VKA_SLOT_BASE_NORM_MORE .. +23, then VKA_SLOT_BASE_NORM_THIRD .. +7 (batchnorm's SPAN variants
 * have their own range). */
#ifndef VKA_NN_NORM_SLOTS_H
#define VKA_NN_NORM_SLOTS_H

#include "nn/ops_internal.h"

enum vka_norm_slot {
    /* batchnorm: 4 big passes x {scalar, vec4} x {storage, texel}: + 4 pass + 2 vec4 + texel */
    VKA_SLOT_BN_BIG = VKA_SLOT_BASE_NORM,
    VKA_SLOT_BN_FWD_FINALIZE = VKA_SLOT_BN_BIG + 16,
    VKA_SLOT_BN_BWD_FINALIZE,
    /* pointwise: [op][vec4] */
    VKA_SLOT_RELU_FWD,
    VKA_SLOT_RELU_FWD_VEC4,
    VKA_SLOT_RELU_BWD,
    VKA_SLOT_RELU_BWD_VEC4,
    VKA_SLOT_ADD,
    VKA_SLOT_ADD_VEC4,
    VKA_SLOT_ADD_INPLACE,
    VKA_SLOT_ADD_INPLACE_VEC4,
    /* pool */
    VKA_SLOT_MAXPOOL_FWD,
    VKA_SLOT_MAXPOOL_FWD_TEXEL,
    VKA_SLOT_MAXPOOL_BWD,
    VKA_SLOT_MAXPOOL_BWD_DISJOINT,
    VKA_SLOT_GAP_FWD,
    VKA_SLOT_GAP_BWD,
    VKA_SLOT_NORM_END,
};
_Static_assert((int)VKA_SLOT_NORM_END <= (int)VKA_SLOT_BASE_HEAD, "the norm family owns slots 48..79");

enum vka_norm_slot_more {
    /* batchnorm apply + residual (+ ReLU): [vec4][texel] at + 2 vec4 + texel, then SPAN at + 4 */
    VKA_SLOT_BN_ADD = VKA_SLOT_BASE_NORM_MORE,
    VKA_SLOT_RELU_BWD_SUM = VKA_SLOT_BN_ADD + 5,
    VKA_SLOT_RELU_BWD_SUM_VEC4,
    /* relu_bwd and relu_bwd_sum with texel-buffer inputs: [sum][vec4] */
    VKA_SLOT_RELU_BWD_TEXEL,
    VKA_SLOT_RELU_BWD_VEC4_TEXEL,
    VKA_SLOT_RELU_BWD_SUM_TEXEL,
    VKA_SLOT_RELU_BWD_SUM_VEC4_TEXEL,
    /* add_inplace with b through a texel buffer: [vec4] */
    VKA_SLOT_ADD_INPLACE_TEXEL,
    VKA_SLOT_ADD_INPLACE_VEC4_TEXEL,
    /* batchnorm's packed outputs a texel per store: + 2 bwd + texel; then the tail's: + 4 + texel */
    VKA_SLOT_BN_PACKED4,
    /* max pool 2x2 / 2, pairs of windows per invocation (pool.c) */
    VKA_SLOT_MAXPOOL2X2_FWD = VKA_SLOT_BN_PACKED4 + 6,
    VKA_SLOT_MAXPOOL2X2_BWD,
    VKA_SLOT_GAP_BWD_VEC4,
    /* batchnorm apply writing y both NCHW and packed, without a residual: + texel */
    VKA_SLOT_BN_DUAL_PACKED4,
    VKA_SLOT_NORM_MORE_END = VKA_SLOT_BN_DUAL_PACKED4 + 2,
};
_Static_assert((int)VKA_SLOT_NORM_MORE_END <= (int)VKA_SLOT_BASE_NORM_MORE + 24, "the norm family owns 200..223");

enum vka_norm_slot_third {
    /* max pools applying the BatchNorm before them (pool.c: vka_maxpool_forward_bn) */
    VKA_SLOT_MAXPOOL_FWD_BN = VKA_SLOT_BASE_NORM_THIRD,
    VKA_SLOT_MAXPOOL_FWD_TEXEL_BN,
    VKA_SLOT_MAXPOOL2X2_FWD_BN,
    VKA_SLOT_NORM_THIRD_END,
};
_Static_assert((int)VKA_SLOT_NORM_THIRD_END <= (int)VKA_SLOT_BASE_NORM_THIRD + 8, "the norm family owns 480..487");

#endif
