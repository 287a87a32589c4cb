#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Repacks convolution weights for conv2d_packed.comp: dst [R][S][cin4*4][k4] vec4 holds, for
// kernel tap (r, s) and input channel i, 4 consecutive output channels o:
//   dst[((r*S + s)*cin4*4 + i)*k4 + o/4][o%4] = W[o*w_o + i*w_i + w_tap0 + r*w_r + s*w_s]
// (zero for o >= cout or i >= cin). forward: W = w (K,C,R,S) as stored (o = k, i = c);
// input gradient: the flipped, transposed w (o = c, i = k, taps R-1-r, S-1-s).
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push {
    uint cin, cout, R, S, cin4, k4;
    int w_o, w_i, w_tap0, w_r, w_s;
    uint total;   // R*S*cin4*4*k4 texels
} p;
layout(binding = 0) uniform samplerBuffer W;
layout(std430, binding = 1) writeonly buffer Dst { vec4 d[]; };

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total) return;
    uint kq = id % p.k4, rest = id / p.k4;
    uint i = rest % (p.cin4 * 4), rs = rest / (p.cin4 * 4);
    uint r = rs / p.S, s = rs - r * p.S;
    vec4 v;
    [[unroll]] for (uint c = 0; c < 4; c++) {
        uint o = kq * 4 + c;
        bool ok = o < p.cout && i < p.cin;
        int src = int(o) * p.w_o + int(i) * p.w_i + p.w_tap0 + int(r) * p.w_r + int(s) * p.w_s;
        float f = texelFetch(W, ok ? src : 0).x;
        v[c] = ok ? f : 0.0;
    }
    d[id] = v;
}
