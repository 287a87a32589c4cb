/* Shared by the dataset loaders. */
#ifndef VKA_DATA_INTERNAL_H
#define VKA_DATA_INTERNAL_H

#include <stddef.h>

#include "vk/vk_internal.h"

/* Reads a whole file, gunzipping it if it is gzip (zlib reads plain files as
 * they are). A truncated or corrupt gzip stream is an error, not short data. */
vka_result vka_read_file(vka_logger *lg, const char *path, unsigned char **data, size_t *size);

#endif
