/* Internals of the Vulkan runtime shared by src/vk and src/nn. Not public. */
#ifndef VKA_VK_INTERNAL_H
#define VKA_VK_INTERNAL_H

#include <stdlib.h>
#include <string.h>
#include <volk.h>

#include "vkanchor.h"

/* ---- logging and errors ---------------------------------------------------- */

typedef struct vka_logger {
    vka_log_fn fn;
    void *user;
    char last_error[1024];
    uint32_t validation_messages;
} vka_logger;

void vka_log(vka_logger *lg, vka_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs an error (kept as the last error) and returns `result`. */
vka_result vka_fail(vka_logger *lg, vka_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a failed VkResult to a vka_result and logs the call that failed. */
vka_result vka_vk_fail(vka_logger *lg, VkResult vr, const char *expr, const char *file, int line);
const char *vka_vk_result_name(VkResult vr);

/* Needs `vka_result rc` and a `done:` label in scope, and a vka_logger *lg. */
#define VKA_VK_CHECK(lg, expr)                                                  \
    do {                                                                        \
        VkResult vr_ = (expr);                                                  \
        if (vr_ != VK_SUCCESS) {                                                \
            rc = vka_vk_fail((lg), vr_, #expr, __FILE__, __LINE__);             \
            goto done;                                                          \
        }                                                                       \
    } while (0)

#define VKA_CHECK(expr)                                                         \
    do {                                                                        \
        rc = (expr);                                                            \
        if (rc != VKA_SUCCESS) goto done;                                       \
    } while (0)

/* ---- device description --------------------------------------------------------- */

/* Fills `info` for one physical device (needs an instance loaded by volk). */
void vka_device_describe(VkPhysicalDevice phys, uint32_t index, vka_device_info *info);
/* Which of n devices `want` names: NULL or "" the best type (discrete over integrated over
 * virtual over CPU, the first of equals), all digits an index, anything else the first name
 * containing it, case-blind. -1 for none. */
int vka_device_pick(const vka_device_info *infos, uint32_t n, const char *want);
/* Whether the device lists the extension `name`. */
int vka_device_has_extension(VkPhysicalDevice phys, const char *name);
/* The planned limits: the device's, or the spec minimums under VKANCHOR_LIMITS=min. */
vka_limits vka_limits_plan(const vka_limits *device_limits, vka_logger *lg);

/* ---- kernels (compute pipelines) ---------------------------------------------------- */

typedef enum vka_binding_kind {
    VKA_BIND_STORAGE = 0,        /* storage buffer (read or write) */
    VKA_BIND_TEXEL_R32F,         /* uniform texel buffer, one float per texel */
    VKA_BIND_TEXEL_RGBA32F,      /* uniform texel buffer, a vec4 per texel */
} vka_binding_kind;

#define VKA_MAX_BINDINGS 8
#define VKA_MAX_SPEC 8

/* Declares one compute pipeline. Spec constants 0..2 are the workgroup size
 * (layout(local_size_x_id = 0, ...)); spec[i] goes to constant_id 3 + i. */
typedef struct vka_kernel_desc {
    const char *name;
    const uint32_t *spirv;
    size_t spirv_bytes;
    uint32_t num_bindings;
    vka_binding_kind bindings[VKA_MAX_BINDINGS];
    uint32_t push_bytes;          /* sizeof the C mirror of the push-constant block */
    uint32_t local_size[3];       /* 0 means 1 */
    uint32_t shared_bytes;        /* workgroup shared memory this variant declares */
    uint32_t num_spec;
    uint32_t spec[VKA_MAX_SPEC];
} vka_kernel_desc;

typedef struct vka_kernel {
    vka_kernel_desc desc;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
} vka_kernel;

/* Checks the desc against the SPIR-V's own interface and the planned limits,
 * then builds the pipeline. */
vka_result vka_kernel_create(vka_context *ctx, const vka_kernel_desc *desc, vka_kernel **out);
/* Only the checks (desc against the SPIR-V and the limits), without a pipeline: how a test
 * proves the desc of a kernel this device cannot build (e.g. cooperative matrices) right. */
vka_result vka_kernel_check(vka_context *ctx, const vka_kernel_desc *desc);
void vka_kernel_destroy(vka_context *ctx, vka_kernel *k);

/* FNV-1a over n bytes, continuing from h (start from VKA_FNV1A_BASIS): the hash of the
 * context's kernel cache and of a cmd's descriptor sets. */
#define VKA_FNV1A_BASIS 1469598103934665603ull
static inline uint64_t vka_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Kernels are created once per context, keyed by their whole desc (kernel_cache.c). */
typedef struct vka_kernel_cache {
    vka_kernel **table;           /* open addressing, a power-of-two capacity, NULL = empty */
    uint32_t capacity, count;
} vka_kernel_cache;
/* The kernel built from a desc equal to `desc` (name, SPIR-V, bindings, push size, workgroup
 * size, shared bytes, specialization values), building it the first time. */
vka_result vka_kernel_get(vka_context *ctx, const vka_kernel_desc *desc, vka_kernel **out);
/* Whether this context built a kernel named `name` (with spec[spec_index] == spec_value, unless
 * spec_index < 0): how tests see which variant an op picked. */
int vka_kernel_built(const vka_context *ctx, const char *name, int spec_index, uint32_t spec_value);
void vka_kernel_cache_destroy(vka_context *ctx);

/* What reflection of a SPIR-V module found. */
typedef struct vka_spirv_interface {
    uint32_t push_bytes;          /* size of the push-constant block, 0 if none */
    uint32_t num_bindings;        /* highest binding + 1 in set 0 */
    vka_binding_kind bindings[VKA_MAX_BINDINGS]; /* texel: R32F (format not in SPIR-V) */
    int binding_present[VKA_MAX_BINDINGS];
    uint32_t local_size_ids[3];   /* 1 when the workgroup size comes from spec ids 0,1,2 */
} vka_spirv_interface;

vka_result vka_spirv_reflect(const uint32_t *code, size_t bytes, vka_spirv_interface *out,
                             char *why, size_t why_size);

/* ---- memory ------------------------------------------------------------------------- */

struct vka_block {
    vka_arena *arena;
    VkDeviceMemory memory;
    VkBuffer buffer;
    uint64_t size, used;
    void *mapped;                 /* staging blocks only */
    uint64_t serial;              /* unique in its context, never reused (descriptor sets cached by it) */
};

struct vka_arena {
    vka_context *ctx;
    char name[64];
    vka_memory_kind kind;
    uint64_t block_size;
    vka_block **blocks;
    uint32_t block_count, block_cap;
};

/* ---- command buffers -------------------------------------------------------------- */

typedef enum vka_hazard {
    VKA_HAZARD_SHADER_TO_SHADER,  /* shader writes -> later shader reads or writes */
    VKA_HAZARD_TRANSFER_TO_SHADER,/* copy/fill writes -> shader reads or writes */
    VKA_HAZARD_SHADER_TO_TRANSFER,/* shader writes -> copy reads or writes */
    VKA_HAZARD_TRANSFER_TO_TRANSFER,
    VKA_HAZARD_ANY_TO_HOST,       /* shader or copy writes -> host reads after the fence */
} vka_hazard;

void vka_cmd_barrier(vka_cmd *cmd, vka_hazard hazard);

/* Records one dispatch of `k` with one tensor per binding and the push block. */
vka_result vka_cmd_dispatch(vka_cmd *cmd, vka_kernel *k, const vka_tensor *tensors,
                            uint32_t num_tensors, const void *push,
                            uint32_t groups_x, uint32_t groups_y, uint32_t groups_z);
vka_context *vka_cmd_context(vka_cmd *cmd);
/* Records a fill of `dst` (whole 32-bit words) with `word`. */
vka_result vka_cmd_record_fill(vka_cmd *cmd, vka_tensor dst, uint32_t word);
/* Records an op error on the cmd (first wins) and returns it. */
vka_result vka_cmd_fail(vka_cmd *cmd, vka_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records an error already logged (first wins) and returns it. */
vka_result vka_cmd_keep(vka_cmd *cmd, vka_result result);
/* Begins recording if needed; every op calls this first. */
vka_result vka_cmd_ensure_recording(vka_cmd *cmd);

/* Descriptor sets a cmd keeps across recordings (one per kernel and list of bound tensors);
 * vka_cmd_reset drops them all once there are this many. */
#define VKA_CMD_SET_CACHE_MAX 4096
uint32_t vka_cmd_cached_sets(const vka_cmd *cmd);

/* ---- the context ---------------------------------------------------------------------- */

struct vka_context {
    vka_logger logger;
    vka_device_info info;
    vka_limits limits;            /* planned */
    int validation;

    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice device;
    uint32_t queue_family;
    VkQueue queue;
    VkCommandPool command_pool;
    VkPipelineCache pipeline_cache;
    uint32_t memory_type_device, memory_type_staging;
    int staging_coherent;

    vka_arena *staging;           /* for vka_upload / vka_download */
    vka_tensor staging_tensor;
    vka_cmd *transfer_cmd;

    vka_kernel_cache kernels;
    int coopmat_nv;               /* VK_NV_cooperative_matrix enabled on the device (conv2d_coop.c) */
    int coopmat_checked;          /* its self-test: 0 not run yet, 1 passed, -1 failed (then unused) */
    int packed_checked;           /* the channels-packed kernels' self-test: the same (conv2d_self_test.c) */
    uint64_t block_serials;       /* the last vka_block serial handed out */
};

VkBuffer vka_tensor_buffer(vka_tensor t);

/* Whether the A/B switch `name` (an environment variable, e.g. VKANCHOR_TEXEL) is set to "0":
 * the fast path it names is off. Unset or any other value: on. */
static inline int vka_switch_off(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "0") == 0;
}

/* Loads the loader through volk and creates the instance (validation per desc);
 * used by the context and by vka_device_list. */
vka_result vka_instance_open(const vka_context_desc *desc, vka_context *ctx);
void vka_instance_close(vka_context *ctx);

#endif
