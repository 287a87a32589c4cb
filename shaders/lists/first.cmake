vka_add_shader(NAME axpy SOURCE axpy.comp)
vka_add_shader(NAME reduce_sum_max SOURCE reduce_sum_max.comp)
vka_add_shader(NAME reduce_sum_absmax SOURCE reduce_sum_max.comp DEFINES ABS)
vka_add_shader(NAME matmul_tiled SOURCE matmul_tiled.comp)
vka_add_shader(NAME matmul_texel SOURCE matmul_texel.comp)
vka_add_shader(NAME matmul_texel_vec4 SOURCE matmul_texel.comp DEFINES VEC4)

# Test-only copies: each generated header defines its array, so it may be
# included by one translation unit; the runtime tests include these.
vka_add_shader(NAME probe_axpy SOURCE axpy.comp)

# The device peak probes (src/nn/peak.c).
vka_add_shader(NAME peak_fma SOURCE peak_fma.comp)
vka_add_shader(NAME peak_copy SOURCE peak_copy.comp)
