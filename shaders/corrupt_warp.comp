#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// elastic_transform, as CIFAR-10-C: a random affine (three points 1/3 of the image from the
// centre moved by uniform(-fp[2], fp[2]) each; cv2.warpAffine: bilinear, reflect-101), then
// scipy map_coordinates(order=1, mode='reflect') at (y + dy, x + dx) with the displacement
// field D of corrupt_field.comp (scratch word ip[1]; absent when ip[2] == 0, alpha = 0).
// The two bilinear steps are composed per pixel: 4 corners x 4 taps, no intermediate image.
#include "corrupt_bytes.glsl"

layout(std430, binding = 2) readonly buffer Scratch { float f[]; };

// The affine warped image at integer (qy, qx): input at B (qx, qy), B = inverse affine.
float warped(uint b, uint ch, int qy, int qx, mat2 l, vec2 t)
{
    vec2 s = l * vec2(float(qx), float(qy)) + t;
    int x0 = int(floor(s.x)), y0 = int(floor(s.y));
    float fx = s.x - float(x0), fy = s.y - float(y0);
    int W = int(p.w), H = int(p.h);
    int xa = reflect101(x0, W), xb = reflect101(x0 + 1, W), ya = reflect101(y0, H), yb = reflect101(y0 + 1, H);
    return (px(b, ch, ya, xa) * (1.0 - fx) + px(b, ch, ya, xb) * fx) * (1.0 - fy) +
           (px(b, ch, yb, xa) * (1.0 - fx) + px(b, ch, yb, xb) * fx) * fy;
}

float corrupt_value(uint b, uint ch, int y, int x)
{
    int W = int(p.w), H = int(p.h);
    // pts1 (x, y): centre +- square; pts2 = pts1 + uniform offsets; B maps pts2 -> pts1.
    float cx = float(W / 2), cy = float(H / 2), sq = float(min(W, H) / 3);
    vec2 p0 = vec2(cx + sq, cy + sq), p1 = vec2(cx + sq, cy - sq), p2 = vec2(cx - sq, cy - sq);
    uint key = rng_key(S_AFFINE, p.first_image + b);
    float a = p.fp[2];
    vec2 q0 = p0 + vec2(u01(rng_bits(key, 0u)), u01(rng_bits(key, 1u))) * (2.0 * a) - a;
    vec2 q1 = p1 + vec2(u01(rng_bits(key, 2u)), u01(rng_bits(key, 3u))) * (2.0 * a) - a;
    vec2 q2 = p2 + vec2(u01(rng_bits(key, 4u)), u01(rng_bits(key, 5u))) * (2.0 * a) - a;
    mat2 dq = mat2(q1 - q0, q2 - q0), dp = mat2(p1 - p0, p2 - p0);   // columns
    mat2 l = dp * inverse(dq);
    vec2 t = p0 - l * q0;

    float sy = float(y), sx = float(x);
    if (p.ip[2] != 0) {
        uint e = uint(y * W + x);
        sx += f[uint(p.ip[1]) + (2u * b) * p.h * p.w + e];
        sy += f[uint(p.ip[1]) + (2u * b + 1u) * p.h * p.w + e];
    }
    int y0 = int(floor(sy)), x0 = int(floor(sx));
    float fy = sy - float(y0), fx = sx - float(x0);
    float acc = 0.0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float wt = (i == 0 ? 1.0 - fy : fy) * (j == 0 ? 1.0 - fx : fx);
            if (wt != 0.0)
                acc += wt * warped(b, ch, reflect_half(y0 + i, H), reflect_half(x0 + j, W), l, t);
        }
    return acc;
}
