// Kernels that write lavapipe's channels-packed layout (src/nn/packed_layout.h) instead of
// NCHW: an (N, C, H, W) element (n, c, h, w) goes to float index
// ((n*hp + border + h)*wp + border + w)*c4x4 + c; nothing around the elements is written.
// PACKED_PUSH_FIELDS goes at the end of the kernel's Push block (named p), which must also
// hold hw_div and c_div (fastdiv by the plane's units and by C).
#define PACKED_PUSH_FIELDS uvec2 w_div; uint W, hp, wp, c4x4, border;

// Float index of element (n, c, position pos of its H*W plane).
#define PACKED_INDEX(n, c, pos) packed_index_(n, c, pos, fastdiv(pos, p.w_div.x, p.w_div.y))
#define packed_index_(n, c, pos, h) \
    (((n) * p.hp + p.border + (h)) * p.wp + p.border + ((pos) - (h) * p.W)) * p.c4x4 + (c)

// Stores value g (VT) of unit e (channel c, unit j of its plane) into the float array buf.
// SPAN: j is the plane position of g's first float; the components from position hw on
// belong to the next plane (channel c + 1, or channel 0 of the next sample).
#if defined(SPAN)
#define STORE_PACKED(buf, e, c, j, g)                                                          \
    {                                                                                          \
        uint n_ = fastdiv(fastdiv((e) * 4u, p.hw_div.x, p.hw_div.y), p.c_div.x, p.c_div.y);    \
        uint cn_ = next_channel(c, p.C), nn_ = cn_ == 0u ? n_ + 1u : n_;                         \
        [[unroll]] for (uint i_ = 0; i_ < 4; i_++) { /* one store, not two masked ones */      \
            bool here_ = (j) + i_ < p.hw;                                                      \
            buf[PACKED_INDEX(here_ ? n_ : nn_, here_ ? (c) : cn_, here_ ? (j) + i_ : (j) + i_ - p.hw)] = (g)[i_]; \
        }                                                                                      \
    }
#elif defined(VEC4)
#define STORE_PACKED(buf, e, c, j, g)                                                          \
    {                                                                                          \
        uint n_ = fastdiv(fastdiv(e, p.hw_div.x, p.hw_div.y), p.c_div.x, p.c_div.y);           \
        [[unroll]] for (uint i_ = 0; i_ < 4; i_++) buf[PACKED_INDEX(n_, c, (j) * 4 + i_)] = (g)[i_]; \
    }
#else
#define STORE_PACKED(buf, e, c, j, g)                                                          \
    {                                                                                          \
        uint n_ = fastdiv(fastdiv(e, p.hw_div.x, p.hw_div.y), p.c_div.x, p.c_div.y);           \
        buf[PACKED_INDEX(n_, c, j)] = (g);                                                     \
    }
#endif
