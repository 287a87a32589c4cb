# Corruptions (src/data/corrupt.c, docs/corruptions.md): CIFAR-10-C style, uint8 -> uint8.
# The type is a push constant within each kernel; STATS adds the per-image statistics input.
vka_add_shader(NAME corrupt_noise SOURCE corrupt_noise.comp)
vka_add_shader(NAME corrupt_color SOURCE corrupt_color.comp)
vka_add_shader(NAME corrupt_color_stats SOURCE corrupt_color.comp DEFINES STATS)
vka_add_shader(NAME corrupt_stats SOURCE corrupt_stats.comp)
vka_add_shader(NAME corrupt_blur SOURCE corrupt_blur.comp)
vka_add_shader(NAME corrupt_glass SOURCE corrupt_glass.comp)
vka_add_shader(NAME corrupt_field SOURCE corrupt_field.comp)
vka_add_shader(NAME corrupt_warp SOURCE corrupt_warp.comp)
vka_add_shader(NAME corrupt_snow SOURCE corrupt_snow.comp)
vka_add_shader(NAME corrupt_jpeg SOURCE corrupt_jpeg.comp)
