// uint8 batch in (binding 0), uint8 batch out (binding 1), both (N, C, H, W) packed four
// bytes to a word, and the per-word main(): one invocation writes one output word (four
// consecutive pixels; the padding bytes of the last word are written as 0). The shader
// defines corrupt_value(): the corrupted value, in pixel units [0, 255], of one pixel.
// (A shader with other passes defines CUSTOM_MAIN and calls bytes_main() itself.)
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Pixels { uint pix[]; };
layout(std430, binding = 1) writeonly buffer Out { uint o[]; };

uint pix_at(uint i) { return (pix[i >> 2] >> ((i & 3u) * 8u)) & 0xffu; }
float px(uint b, uint ch, int y, int x) { return float(pix_at(((b * p.c + ch) * p.h + uint(y)) * p.w + uint(x))); }

float corrupt_value(uint b, uint ch, int y, int x);

void bytes_main()
{
    uint wi = flat_invocation_index();
    uint total = p.n * p.c * p.h * p.w;
    if (wi >= (total + 3u) / 4u) return;
    uint word = 0u;
    for (uint k = 0u; k < 4u; k++) {
        uint i = wi * 4u + k;
        if (i >= total) break;
        uint x = i % p.w, t = i / p.w;
        uint y = t % p.h;
        t /= p.h;
        uint ch = t % p.c, b = t / p.c;
        word |= to_byte(corrupt_value(b, ch, int(y), int(x))) << (8u * k);
    }
    o[wi] = word;
}

#ifndef CUSTOM_MAIN
void main() { bytes_main(); }
#endif
