/* Softmax cross-entropy with int32 labels and label smoothing, or the uniform target of
 * reference masking, in one single-workgroup dispatch that also reduces the batch
 * statistics the trainer reads back. Internal; tests include "nn/loss.h". */
#ifndef VKA_NN_LOSS_H
#define VKA_NN_LOSS_H

#include "vkanchor.h"

typedef enum vka_ce_target {
    VKA_CE_LABEL = 0,   /* target = (1 - smoothing) * onehot(label) + smoothing / classes */
    VKA_CE_UNIFORM = 1, /* target = 1 / classes (masked batches, the paper's text); smoothing ignored */
} vka_ce_target;

typedef struct vka_cross_entropy_desc {
    uint32_t batch, classes;
    vka_ce_target target;
    float smoothing;          /* label mode: in [0, 1] */
} vka_cross_entropy_desc;

/* Layout of the stats buffer: [0] mean loss over the batch, [1] number of samples whose
 * argmax (ties -> lowest index) equals the label, as a float, [2 + b] max softmax probability
 * of sample b. */
#define VKA_CE_STAT_LOSS 0
#define VKA_CE_STAT_CORRECT 1
#define VKA_CE_STAT_MAXPROB 2
/* Bytes of the stats buffer for `batch` samples: (2 + batch) floats. */
uint64_t vka_cross_entropy_stats_bytes(uint32_t batch);

/* From logits (B, NC) and labels (B) int32: dlogits (B, NC) = (softmax - target) / B, the
 * gradient of the mean loss (OVERWRITTEN; may be absent: then only the stats), and stats
 * (2 + B floats, see above; batch sums in a fixed order, bit-identical run to run).
 * labels may be absent only in uniform mode (then stats[1] = 0). Labels outside [0, NC) are
 * the trainer's job: they are never used as an address here, and such a sample has no
 * one-hot part and is never correct. Stable: subtracts the row max. */
vka_result vka_cross_entropy(vka_cmd *cmd, const vka_cross_entropy_desc *d, vka_tensor dlogits, vka_tensor stats,
                             vka_tensor logits, vka_tensor labels);

#endif
