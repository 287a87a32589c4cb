/* vkanchor: anchored training of vision models on any Vulkan device.
 *
 * One public header. Every numeric kernel is a GLSL compute shader compiled to
 * SPIR-V at build time; this API creates a device context, places tensors in
 * device-memory arenas, records ops into command buffers and runs them.
 *
 * A worked example (error handling trimmed: every call returns a vka_result):
 *
 *     vka_context *ctx;
 *     vka_context_create(&(vka_context_desc){ .device = NULL }, &ctx);  // best device
 *     vka_arena *arena;
 *     vka_arena_create(ctx, &(vka_arena_desc){ .name = "demo" }, &arena);
 *     vka_tensor x, y;                                  // (n,) floats each
 *     vka_arena_alloc(arena, n * sizeof(float), &x);
 *     vka_arena_alloc(arena, n * sizeof(float), &y);
 *     vka_upload(ctx, x, 0, host_x, n * sizeof(float));
 *     vka_upload(ctx, y, 0, host_y, n * sizeof(float));
 *     vka_cmd *cmd;
 *     vka_cmd_create(ctx, &(vka_cmd_desc){ .timing = 1 }, &cmd);
 *     vka_axpy(cmd, 2.0f, x, y, n);                     // y = 2 x + y, on the GPU
 *     vka_cmd_submit(cmd);
 *     vka_cmd_wait(cmd);
 *     vka_download(ctx, y, 0, host_y, n * sizeof(float));
 *     vka_cmd_destroy(cmd); vka_arena_destroy(arena); vka_context_destroy(ctx);
 *
 * Conventions: names vka_<noun>_<verb>; descriptor structs where zero means
 * "default"; every _create has a _destroy that accepts NULL; the library never
 * prints or exits: diagnostics go to the logger given at context creation, and
 * the last error message is kept per context (vka_context_last_error).
 */
#ifndef VKANCHOR_H
#define VKANCHOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- results and logging ------------------------------------------------- */

typedef enum vka_result {
    VKA_SUCCESS = 0,
    VKA_ERROR_INVALID_ARGUMENT,     /* a size, shape or flag the call cannot take */
    VKA_ERROR_NO_DEVICE,            /* no Vulkan loader, driver or device at all */
    VKA_ERROR_DEVICE_NOT_FOUND,     /* --device matched none of the devices */
    VKA_ERROR_OUT_OF_DEVICE_MEMORY,
    VKA_ERROR_OUT_OF_HOST_MEMORY,
    VKA_ERROR_LIMIT_EXCEEDED,       /* over a device limit (push constants, workgroup, ...) */
    VKA_ERROR_SHADER_MISMATCH,      /* SPIR-V interface differs from its C description */
    VKA_ERROR_UNSUPPORTED,          /* the device lacks a feature the call needs */
    VKA_ERROR_VULKAN,               /* any other VkResult failure (logged with its name) */
    VKA_ERROR_IO,                   /* a file could not be read or written */
    VKA_ERROR_FORMAT,               /* a file is malformed (magic, size, checksum) */
    VKA_RESULT_COUNT
} vka_result;

/* A short, stable, human-readable name of a result code. Never NULL. */
const char *vka_result_string(vka_result result);

typedef enum vka_log_level {
    VKA_LOG_DEBUG = 0,
    VKA_LOG_INFO,
    VKA_LOG_WARNING,
    VKA_LOG_ERROR,
    VKA_LOG_VALIDATION,  /* a message from the Vulkan validation layers */
} vka_log_level;

/* Receives every diagnostic as one line without a trailing newline. */
typedef void (*vka_log_fn)(void *user, vka_log_level level, const char *message);

/* ---- devices ---------------------------------------------------------------- */

typedef enum vka_device_type {
    VKA_DEVICE_OTHER = 0,
    VKA_DEVICE_INTEGRATED_GPU,
    VKA_DEVICE_DISCRETE_GPU,
    VKA_DEVICE_VIRTUAL_GPU,
    VKA_DEVICE_CPU,
} vka_device_type;

#define VKA_MAX_HEAPS 16

/* Limits the engine plans kernels with. With VKANCHOR_LIMITS=min these are
 * clamped to the Vulkan 1.1 spec minimums, so the portable path can be tested
 * on any device. */
typedef struct vka_limits {
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_count[3];
    uint32_t max_shared_memory_bytes;
    uint32_t max_push_constants_bytes;
    uint64_t max_storage_buffer_range;   /* bytes one storage-buffer binding may see */
    uint64_t max_memory_allocation_size; /* bytes one VkDeviceMemory may hold */
    uint32_t max_texel_buffer_elements;
    uint32_t max_bound_descriptor_sets;
    uint32_t max_storage_buffers_per_stage;
    uint64_t min_storage_buffer_offset_alignment;
    uint64_t min_texel_buffer_offset_alignment;
    uint64_t non_coherent_atom_size;
    uint32_t subgroup_size;
} vka_limits;

/* Optional features the engine can use; each fast path checks its bit. */
typedef struct vka_features {
    int shader_float16;           /* fp16 arithmetic */
    int shader_int64;             /* 64-bit integers in shaders (enabled when offered: lavapipe's packed
                                     conv kernels store pairs of floats as one uint64) */
    int storage_buffer_16bit;     /* 16-bit storage in storage buffers */
    int subgroup_basic, subgroup_arithmetic, subgroup_shuffle; /* in compute */
    int integer_dot_product;      /* VK_KHR_shader_integer_dot_product */
    int cooperative_matrix;       /* VK_KHR_cooperative_matrix */
    int cooperative_matrix_nv;    /* VK_NV_cooperative_matrix with 16x8x16 fp16 x fp16 -> fp32 tiles in
                                     subgroups of 32, fp16 arithmetic: the conv forward's tensor-core
                                     kernel (enabled at device creation unless VKANCHOR_COOPMAT=0) */
    int texel_buffer_rgba32f;     /* RGBA32F uniform texel buffers */
    int texel_buffer_r32f;        /* R32F uniform texel buffers */
    int timestamps;               /* compute queue supports timestamp queries */
} vka_features;

typedef struct vka_device_info {
    uint32_t index;               /* position in the loader's enumeration */
    char name[256];
    uint32_t vendor_id, device_id;
    const char *vendor;           /* "NVIDIA", "AMD", "Intel", "Mesa", ... */
    vka_device_type type;
    char driver_name[256];
    char driver_info[256];
    char driver_version[64];      /* decoded per vendor convention */
    char api_version[32];         /* "1.3.239" */
    uint32_t heap_count;
    uint64_t heap_size[VKA_MAX_HEAPS];
    int heap_device_local[VKA_MAX_HEAPS];
    float timestamp_period_ns;    /* nanoseconds per timestamp tick */
    vka_limits limits;            /* as the device reports them, unclamped */
    vka_features features;
} vka_device_info;

const char *vka_device_type_string(vka_device_type type);

/* Lists the Vulkan devices present. On success *out is a malloc'd array of
 * *count entries (free with vka_device_list_free). Fails with
 * VKA_ERROR_NO_DEVICE when there is no loader, driver or device. */
vka_result vka_device_list(vka_log_fn log, void *log_user,
                           vka_device_info **out, uint32_t *count);
void vka_device_list_free(vka_device_info *list);

/* ---- context ------------------------------------------------------------------ */

typedef struct vka_context vka_context;

typedef enum vka_validation {
    VKA_VALIDATION_FROM_ENV = 0,  /* on when VKANCHOR_VALIDATION=1 */
    VKA_VALIDATION_ON,
    VKA_VALIDATION_OFF,
} vka_validation;

typedef struct vka_context_desc {
    const char *device;           /* index ("0") or name substring; NULL: best device */
    vka_validation validation;    /* Khronos validation layer + debug messenger */
    vka_log_fn log;               /* NULL: silent (the last error is still kept) */
    void *log_user;
} vka_context_desc;

/* Creates the instance (through volk) and a device with one compute queue.
 * Default device: discrete > integrated > virtual > CPU, first wins ties. */
vka_result vka_context_create(const vka_context_desc *desc, vka_context **out);
void vka_context_destroy(vka_context *ctx);

const vka_device_info *vka_context_device(const vka_context *ctx);
/* The limits kernels are planned with (clamped under VKANCHOR_LIMITS=min). */
const vka_limits *vka_context_limits(const vka_context *ctx);
/* The last error message logged on this context ("" if none). */
const char *vka_context_last_error(const vka_context *ctx);
/* How many validation-layer messages (any severity >= warning) were seen. */
uint32_t vka_context_validation_messages(const vka_context *ctx);

/* ---- memory ------------------------------------------------------------------- */

typedef struct vka_arena vka_arena;
typedef struct vka_block vka_block;

/* A tensor is a byte range of one arena block: plain data, copy it freely.
 * It lives as long as its arena. */
typedef struct vka_tensor {
    vka_block *block;
    uint64_t offset;              /* bytes from the start of the block */
    uint64_t size;                /* bytes */
} vka_tensor;

typedef enum vka_memory_kind {
    VKA_MEMORY_DEVICE = 0,        /* device-local: parameters, activations */
    VKA_MEMORY_STAGING,           /* host-visible, mapped: uploads and read-backs */
} vka_memory_kind;

typedef struct vka_arena_desc {
    const char *name;             /* named in errors ("out of device memory in arena 'x'") */
    vka_memory_kind kind;
    uint64_t block_size;          /* 0: 64 MiB, clamped to maxMemoryAllocationSize */
} vka_arena_desc;

vka_result vka_arena_create(vka_context *ctx, const vka_arena_desc *desc, vka_arena **out);
void vka_arena_destroy(vka_arena *arena);
/* Places `size` bytes (> 0) aligned for storage and texel-buffer binding.
 * Fails with VKA_ERROR_OUT_OF_DEVICE_MEMORY naming the size and the arena. */
vka_result vka_arena_alloc(vka_arena *arena, uint64_t size, vka_tensor *out);
/* Bytes of device memory this arena holds. */
uint64_t vka_arena_bytes(const vka_arena *arena);

/* A sub-range of a tensor (offset and size in bytes, within the tensor). */
vka_tensor vka_tensor_slice(vka_tensor t, uint64_t offset, uint64_t size);
/* Host pointer to a tensor of a staging arena; NULL for device arenas. */
void *vka_tensor_map(vka_tensor t);

/* Synchronous copies between host memory and a tensor through a staging
 * buffer (waits for the device). `offset` is in bytes within the tensor. */
vka_result vka_upload(vka_context *ctx, vka_tensor dst, uint64_t offset,
                      const void *src, uint64_t bytes);
vka_result vka_download(vka_context *ctx, vka_tensor src, uint64_t offset,
                        void *dst, uint64_t bytes);
/* Synchronous fill of a tensor with a repeated 32-bit word. */
vka_result vka_fill(vka_context *ctx, vka_tensor dst, uint32_t word);

/* ---- command buffers ---------------------------------------------------------- */

typedef struct vka_cmd vka_cmd;

typedef struct vka_cmd_desc {
    int timing;                   /* 1: timestamp every dispatch (if supported) */
    uint32_t max_timed_dispatches;/* 0: 512 */
} vka_cmd_desc;

vka_result vka_cmd_create(vka_context *ctx, const vka_cmd_desc *desc, vka_cmd **out);
void vka_cmd_destroy(vka_cmd *cmd);
/* Drops what was recorded (and its descriptor sets) so the buffer can be reused. */
vka_result vka_cmd_reset(vka_cmd *cmd);
vka_result vka_cmd_submit(vka_cmd *cmd);
/* Waits for the last submit; then timings can be read. */
vka_result vka_cmd_wait(vka_cmd *cmd);
/* The first error an op met while recording (ops keep recording as no-ops after). */
vka_result vka_cmd_status(const vka_cmd *cmd);

typedef struct vka_timing {
    const char *label;            /* the kernel's name */
    double ms;                    /* GPU time of the dispatch */
    uint64_t bytes;               /* bytes of the tensors it bound (each once): what a kernel that
                                     reads or writes each of them once moves; for GB/s figures */
    const char *scope;            /* what the dispatch was part of (vka_cmd_set_scope), or NULL */
    uint64_t workgroups;          /* how many it dispatched (x * y * z): a few long ones leave
                                     cores idle on a CPU device */
} vka_timing;
/* Names what the dispatches recorded from here on are part of (a model layer, say), for
 * vka_cmd_timings; NULL: nothing. The string must outlive the timings' use; reset clears it. */
void vka_cmd_set_scope(vka_cmd *cmd, const char *scope);
/* Copies up to `max` timings of the last completed submit; returns how many
 * were recorded (0 when timing is off or unsupported). */
uint32_t vka_cmd_timings(vka_cmd *cmd, vka_timing *out, uint32_t max);

/* Copy between tensors (sizes must match) inside a recording. */
vka_result vka_cmd_copy(vka_cmd *cmd, vka_tensor dst, vka_tensor src);

/* ---- first ops (each records into cmd; a barrier after its writes) ------------- */

/* y = a*x + y over n floats. x, y: (n,). Chunked to the storage-buffer range. */
vka_result vka_axpy(vka_cmd *cmd, float a, vka_tensor x, vka_tensor y, uint64_t n);

/* out[0] = sum(x), out[1] = max(x) over n >= 1 floats, by a fixed tree (no
 * atomics, bit-identical run to run). scratch: vka_reduce_scratch_bytes(n). */
vka_result vka_reduce_sum_max(vka_cmd *cmd, vka_tensor out, vka_tensor x, uint64_t n,
                              vka_tensor scratch);
/* The same with out[1] = max |x| (the scale of dy for the fp16 cooperative-matrix kernels). */
vka_result vka_reduce_sum_absmax(vka_cmd *cmd, vka_tensor out, vka_tensor x, uint64_t n, vka_tensor scratch);
uint64_t vka_reduce_scratch_bytes(const vka_context *ctx, uint64_t n);

typedef enum vka_matmul_variant {
    VKA_MATMUL_AUTO = 0,          /* from device properties (VKANCHOR_MATMUL overrides) */
    VKA_MATMUL_TILED,             /* shared-memory tiles: real GPUs */
    VKA_MATMUL_TEXEL,             /* texel-buffer loads, register blocks, no shared memory: lavapipe */
} vka_matmul_variant;

typedef struct vka_matmul_desc {
    uint32_t m, n, k;
    int trans_a;                  /* 0: A is (M, K) row-major; 1: A is (K, M) */
    int trans_b;                  /* 0: B is (K, N) row-major; 1: B is (N, K) */
    vka_matmul_variant variant;
} vka_matmul_desc;

/* C (M, N) = op(A) op(B). */
vka_result vka_matmul(vka_cmd *cmd, vka_tensor c, vka_tensor a, vka_tensor b,
                      const vka_matmul_desc *desc);
/* The variant vka_matmul would run for this shape (never AUTO). */
vka_matmul_variant vka_matmul_choose(const vka_context *ctx, const vka_matmul_desc *desc,
                                     vka_tensor a, vka_tensor b);

/* ---- datasets ----------------------------------------------------------------- */

#define VKA_MAX_CHANNELS 4

/* Images held on the host as uint8 (count, C, H, W), planar per image, with
 * labels (count,). Only whole, validated files become a dataset. */
typedef struct vka_dataset {
    char name[64];                /* "fashion-mnist", "cifar10", ... or the directory */
    uint32_t count, channels, height, width, classes;
    uint8_t *images;              /* (count, C, H, W) */
    uint8_t *labels;              /* (count,) each < classes */
    float mean[VKA_MAX_CHANNELS]; /* per-channel normalization, on the [0, 1] scale */
    float std[VKA_MAX_CHANNELS];
    int digits;                   /* 1: no horizontal flip in augmentation (digits, letters) */
    char dir[4096];               /* the directory its files were read from (a name resolved) */
} vka_dataset;

typedef enum vka_split { VKA_SPLIT_TRAIN = 0, VKA_SPLIT_TEST } vka_split;

/* Opens a dataset by name ("fashion-mnist", "mnist", "cifar10", "cifar100") or by
 * directory (IDX or CIFAR binary, detected from its files). Names are looked up
 * under $VKANCHOR_DATA/<name>, then the Debian location for fashion-mnist
 * (/usr/share/datasets/fashion-mnist), then ./data/<name>. Every file is
 * validated; an error names the file and what is wrong. */
vka_result vka_dataset_open(const char *name_or_dir, vka_split split, vka_log_fn log, void *log_user,
                            vka_dataset *out);
/* Whether vka_dataset_open takes `s` as one of its dataset names (not as a directory). */
int vka_dataset_is_name(const char *s);
/* IDX image + label files (gzip or raw; MNIST format). */
vka_result vka_dataset_load_idx(const char *images_path, const char *labels_path, vka_log_fn log,
                                void *log_user, vka_dataset *out);
/* CIFAR binary files: 1 label byte (CIFAR-10) or 2 (CIFAR-100: coarse, fine) + 3072 pixels per record. */
vka_result vka_dataset_load_cifar(const char *const *paths, uint32_t path_count, int cifar100, vka_log_fn log,
                                  void *log_user, vka_dataset *out);
void vka_dataset_free(vka_dataset *ds);

#ifdef __cplusplus
}
#endif
#endif /* VKANCHOR_H */
