/* Kernel cache slots of the head family (linear, anchoring, losses, optimizers):
 * VKA_SLOT_BASE_HEAD .. +31, one enum so the four .c files never collide. */
#ifndef VKA_NN_HEAD_SLOTS_H
#define VKA_NN_HEAD_SLOTS_H

#include "nn/ops_internal.h"

enum vka_head_slot {
    VKA_SLOT_LINEAR_FWD_BIAS = VKA_SLOT_BASE_HEAD,   /* linear.c */
    VKA_SLOT_LINEAR_BWD_BIAS,
    VKA_SLOT_ANCHOR_TRAIN_INPUT = VKA_SLOT_BASE_HEAD + 4, /* anchor.c */
    VKA_SLOT_ANCHOR_INFER_INPUT,
    VKA_SLOT_ANCHOR_REDUCE,
    VKA_SLOT_CROSS_ENTROPY = VKA_SLOT_BASE_HEAD + 8,  /* loss.c */
    VKA_SLOT_CROSS_ENTROPY_NOGRAD,
    VKA_SLOT_SGD_STEP = VKA_SLOT_BASE_HEAD + 12,      /* optim.c */
    VKA_SLOT_SGD_STEP_PLAIN,
    VKA_SLOT_ADAMW_STEP,
    VKA_SLOT_HEAD_END,
};
_Static_assert((int)VKA_SLOT_HEAD_END <= (int)VKA_SLOT_BASE_DATA, "head slots overflow into the data family's range");

/* LIMIT_EXCEEDED unless `bytes` fit in one storage-buffer binding (name: op, what: tensor). */
static inline vka_result vka_head_check_range(vka_cmd *cmd, const char *op, const char *what, uint64_t bytes)
{
    vka_context *ctx = vka_cmd_context(cmd);
    if (bytes <= ctx->limits.max_storage_buffer_range) return VKA_SUCCESS;
    return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED,
                        "%s: %s is %llu bytes, over one storage binding (%llu bytes): split the batch", op, what,
                        (unsigned long long)bytes, (unsigned long long)ctx->limits.max_storage_buffer_range);
}

#endif
