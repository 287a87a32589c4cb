#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "fastdiv.glsl"
// conv2d_pack.comp for C % 4 == 0 and H*W % 4 == 0: the same dst [N][hp][wp][C/4] vec4 (src
// element (h, w) at (pad + h, pad + w), zeros in the border), but an interior invocation
// takes 4 channels x 4 consecutive positions: 4 vec4 texel loads (one per channel) instead of
// 16 float loads, transposed in registers into 4 stores of a vec4 (4 channels of one
// position), as batchnorm_packed4.comp does. Invocations past the interior ones write the
// border's zero texels, so that every texel of dst is written, as by conv2d_pack.comp.
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push {
    uvec2 q_div;     // fastdiv by Q
    uvec2 c4_div;    // fastdiv by C4
    uvec2 w_div;     // fastdiv by W
    uvec2 b_div;     // fastdiv by the border texels of one image: B = hp*wp - H*W
    uvec2 wp_div;    // fastdiv by wp
    uint Q;          // vec4 of positions per plane: H*W / 4
    uint C4, W, H;
    uint pad, hp, wp;
    uint interior;   // interior invocations: N * C4 * Q
    uint total;      // interior + N * C4 * B border invocations
} p;
layout(binding = 0) uniform samplerBuffer Src;                   // (N, C, H*W/4) vec4
layout(std430, binding = 1) writeonly buffer Dst { vec4 d[]; };  // [N][hp][wp][C4]

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    if (id < p.interior) {
        uint plane = fastdiv(id, p.q_div.x, p.q_div.y), q = id - plane * p.Q;  // plane: n * C4 + cg
        uint n = fastdiv(plane, p.c4_div.x, p.c4_div.y), cg = plane - n * p.C4;
        vec4 v[4];  // v[cc]: channel 4 cg + cc at the 4 positions
        [[unroll]] for (uint cc = 0; cc < 4; cc++) v[cc] = texelFetch(Src, int((plane * 4 + cc) * p.Q + q));
        uint pos = q * 4, h = fastdiv(pos, p.w_div.x, p.w_div.y), w = pos - h * p.W;
        [[unroll]] for (uint i = 0; i < 4; i++) {
            if (w == p.W) {  // the 4 positions may run into the next row
                w = 0;
                h++;
            }
            d[((n * p.hp + p.pad + h) * p.wp + p.pad + w) * p.C4 + cg] = vec4(v[0][i], v[1][i], v[2][i], v[3][i]);
            w++;
        }
        return;
    }
    // Border texel b of image n, channel group cg: the top pad rows, the bottom ones, then
    // the left and right pad columns of the H rows between.
    uint e = id - p.interior, B = p.hp * p.wp - p.H * p.W;
    uint image_cg = fastdiv(e, p.b_div.x, p.b_div.y), b = e - image_cg * B;
    uint n = fastdiv(image_cg, p.c4_div.x, p.c4_div.y), cg = image_cg - n * p.C4;
    uint top = p.pad * p.wp, row, col;
    if (b < 2 * top) {
        row = fastdiv(b, p.wp_div.x, p.wp_div.y);
        col = b - row * p.wp;
        if (row >= p.pad) row += p.H;  // a bottom row
    } else {
        uint s = b - 2 * top, side = 2 * p.pad;  // 2 pad texels per middle row
        uint r = s / side, k = s - r * side;     // (few invocations: a plain division is fine)
        row = p.pad + r;
        col = k < p.pad ? k : p.W + k;
    }
    d[((n * p.hp + row) * p.wp + col) * p.C4 + cg] = vec4(0.0);
}
