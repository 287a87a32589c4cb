/* vkanchor devices [--json]: what each Vulkan device is and offers. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"

static cJSON *limits_json(const vka_limits *l)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max_workgroup_invocations", l->max_workgroup_invocations);
    cJSON_AddItemToObject(o, "max_workgroup_size", cJSON_CreateIntArray((const int[]){(int)l->max_workgroup_size[0],
                                                         (int)l->max_workgroup_size[1], (int)l->max_workgroup_size[2]}, 3));
    cJSON_AddNumberToObject(o, "max_shared_memory_bytes", l->max_shared_memory_bytes);
    cJSON_AddNumberToObject(o, "max_push_constants_bytes", l->max_push_constants_bytes);
    cJSON_AddNumberToObject(o, "max_storage_buffer_range", (double)l->max_storage_buffer_range);
    cJSON_AddNumberToObject(o, "max_memory_allocation_size", (double)l->max_memory_allocation_size);
    cJSON_AddNumberToObject(o, "max_texel_buffer_elements", l->max_texel_buffer_elements);
    cJSON_AddNumberToObject(o, "max_storage_buffers_per_stage", l->max_storage_buffers_per_stage);
    cJSON_AddNumberToObject(o, "subgroup_size", l->subgroup_size);
    return o;
}

static cJSON *device_json(const vka_device_info *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", d->index);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "vendor", d->vendor);
    cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", d->device_id);
    cJSON_AddStringToObject(o, "type", vka_device_type_string(d->type));
    cJSON_AddStringToObject(o, "driver", d->driver_name);
    cJSON_AddStringToObject(o, "driver_info", d->driver_info);
    cJSON_AddStringToObject(o, "driver_version", d->driver_version);
    cJSON_AddStringToObject(o, "api_version", d->api_version);
    cJSON *heaps = cJSON_AddArrayToObject(o, "memory_heaps");
    for (uint32_t i = 0; i < d->heap_count; i++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "size", (double)d->heap_size[i]);
        cJSON_AddBoolToObject(h, "device_local", d->heap_device_local[i]);
        cJSON_AddItemToArray(heaps, h);
    }
    cJSON_AddItemToObject(o, "limits", limits_json(&d->limits));
    cJSON_AddBoolToObject(o, "timestamps", d->features.timestamps);
    cJSON_AddNumberToObject(o, "timestamp_period_ns", d->timestamp_period_ns);
    cJSON *f = cJSON_AddObjectToObject(o, "features");
    cJSON_AddBoolToObject(f, "shader_float16", d->features.shader_float16);
    cJSON_AddBoolToObject(f, "shader_int64", d->features.shader_int64);
    cJSON_AddBoolToObject(f, "storage_buffer_16bit", d->features.storage_buffer_16bit);
    cJSON_AddBoolToObject(f, "subgroup_basic", d->features.subgroup_basic);
    cJSON_AddBoolToObject(f, "subgroup_arithmetic", d->features.subgroup_arithmetic);
    cJSON_AddBoolToObject(f, "subgroup_shuffle", d->features.subgroup_shuffle);
    cJSON_AddBoolToObject(f, "integer_dot_product", d->features.integer_dot_product);
    cJSON_AddBoolToObject(f, "cooperative_matrix", d->features.cooperative_matrix);
    cJSON_AddBoolToObject(f, "cooperative_matrix_nv_16x8x16", d->features.cooperative_matrix_nv);
    cJSON_AddBoolToObject(f, "texel_buffer_rgba32f", d->features.texel_buffer_rgba32f);
    return o;
}

static const char *yes(int b) { return b ? "yes" : "no"; }

static void print_device(const vka_device_info *d)
{
    printf("device %u: %s\n", d->index, d->name);
    printf("  vendor          %s (0x%04x), %s\n", d->vendor, d->vendor_id, vka_device_type_string(d->type));
    printf("  driver          %s %s (%s)\n", d->driver_name, d->driver_version, d->driver_info);
    printf("  Vulkan API      %s\n", d->api_version);
    for (uint32_t i = 0; i < d->heap_count; i++)
        printf("  memory heap %u   %.1f GiB%s\n", i, (double)d->heap_size[i] / (1u << 30),
               d->heap_device_local[i] ? ", device-local" : "");
    const vka_limits *l = &d->limits;
    printf("  subgroup size   %u\n", l->subgroup_size);
    printf("  workgroup       %u invocations, size %u x %u x %u\n", l->max_workgroup_invocations,
           l->max_workgroup_size[0], l->max_workgroup_size[1], l->max_workgroup_size[2]);
    printf("  shared memory   %u KiB\n", l->max_shared_memory_bytes / 1024);
    printf("  push constants  %u bytes\n", l->max_push_constants_bytes);
    printf("  storage range   %.0f MiB per binding; allocations up to %.1f GiB\n",
           (double)l->max_storage_buffer_range / (1 << 20), (double)l->max_memory_allocation_size / (1u << 30));
    printf("  timestamps      %s (%.2f ns per tick)\n", yes(d->features.timestamps), d->timestamp_period_ns);
    printf("  features        fp16 %s, 16-bit storage %s, subgroup ops %s/%s/%s (basic/arith/shuffle), "
           "integer dot %s, cooperative matrix %s (KHR) / %s (NV 16x8x16 fp16, the conv forward's)\n",
           yes(d->features.shader_float16), yes(d->features.storage_buffer_16bit), yes(d->features.subgroup_basic),
           yes(d->features.subgroup_arithmetic), yes(d->features.subgroup_shuffle),
           yes(d->features.integer_dot_product), yes(d->features.cooperative_matrix),
           yes(d->features.cooperative_matrix_nv));
}

int cli_devices(int argc, char **argv)
{
    int json = 0;
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jvh", options, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'v': cli_verbose = 2; break;
        case 'h':
            printf("usage: vkanchor devices [--json] [--verbose]\n"
                   "Lists every Vulkan device: name, vendor, type, driver, API version, memory heaps,\n"
                   "limits the kernels are planned with, and the optional features vkanchor can use.\n");
            return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vkanchor devices: unexpected argument '%s'\n", argv[optind]);
        return CLI_USAGE;
    }
    vka_device_info *list;
    uint32_t count;
    vka_result rc = vka_device_list(cli_log, NULL, &list, &count);
    if (rc) return CLI_FAIL; /* the logger has printed why */
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "devices");
        for (uint32_t i = 0; i < count; i++) cJSON_AddItemToArray(arr, device_json(&list[i]));
        char *text = cJSON_Print(root);
        printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(root);
    } else {
        for (uint32_t i = 0; i < count; i++) print_device(&list[i]);
    }
    vka_device_list_free(list);
    return CLI_OK;
}
