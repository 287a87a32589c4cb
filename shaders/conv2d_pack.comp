#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Repacks a dense NCHW tensor src (N,C,H,W) into dst [N][hp][wp][ceil(C/4)] vec4: channels
// packed by 4 (zero channels past C), src element (h, w) at dst position
// (pad + h, pad + w), zeros everywhere else (the border, the padding channels). Feeds lavapipe's packed convolutions (conv2d_packed.comp,
// conv2d_bwd_weight_packed.comp), which then need no padding tests. One position (all its c4
// vec4) per invocation: a few integer divisions per position, not per vec4 (lavapipe has no
// vector integer division: each one is 8 scalar divisions).
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push {
    uint N, C, H, W;
    int pad;
    uint c4, hp, wp, total;  // total: N*hp*wp positions
} p;
layout(binding = 0) uniform samplerBuffer Src;                       // (N,C,H,W)
layout(std430, binding = 1) writeonly buffer Dst { vec4 d[]; };      // [N][hp][wp][c4]

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    uint row = id / p.wp, wq = id - row * p.wp;
    uint n = row / p.hp, hq = row - n * p.hp;
    int h = int(hq) - p.pad, w = int(wq) - p.pad;
    bool ok = h >= 0 && w >= 0 && h < int(p.H) && w < int(p.W);
    int src = ok ? int((n * p.C * p.H + uint(h)) * p.W + uint(w)) : 0;
    int hw = int(p.H * p.W);
    for (uint cg = 0; cg < p.c4; cg++) {
        vec4 v;
        [[unroll]] for (uint i = 0; i < 4; i++) {
            uint c = cg * 4 + i;
            bool oki = ok && c < p.C;
            float f = texelFetch(Src, oki ? src + int(c) * hw : 0).x;
            v[i] = oki ? f : 0.0;
        }
        d[id * p.c4 + cg] = v;
    }
}
