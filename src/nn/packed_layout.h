/* lavapipe's channels-packed layout, shared by its producers and its readers (conv2d_packed.c):
 * an (N, C, H, W) tensor stored as [N][hp][wp][c4] vec4 (c4 = ceil(C/4)), element (n, c, h, w)
 * at float index ((n*hp + border + h)*wp + border + w)*c4*4 + c. The positions around the
 * elements (the border, and any padding channels) hold zeros; producers that write a
 * packed tensor write only its elements and leave those zeros as they are. */
#ifndef VKA_NN_PACKED_LAYOUT_H
#define VKA_NN_PACKED_LAYOUT_H

#include "vkanchor.h"

typedef struct vka_packed_layout {
    vka_tensor t;                 /* the packed tensor: N*hp*wp*c4 vec4 */
    uint32_t h, w;                /* the logical tensor's height and width */
    uint32_t hp, wp, c4;          /* packed height, width, channel vec4 */
    uint32_t border;              /* offset of element (0, 0) in rows and columns */
} vka_packed_layout;

#endif
