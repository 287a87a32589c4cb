# conv2d (src/nn/conv2d.c): forward, input gradient, weight gradient (+ its slice reduction),
# each as a shared-memory tiled variant (GPUs) and a texel-buffer variant (lavapipe).
vka_add_shader(NAME conv2d_fwd_tiled SOURCE conv2d_fwd.comp)
vka_add_shader(NAME conv2d_fwd_texel SOURCE conv2d_fwd.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_data_tiled SOURCE conv2d_bwd_data.comp)
vka_add_shader(NAME conv2d_bwd_data_texel SOURCE conv2d_bwd_data.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_tiled SOURCE conv2d_bwd_weight.comp)
vka_add_shader(NAME conv2d_bwd_weight_texel SOURCE conv2d_bwd_weight.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_reduce SOURCE conv2d_bwd_weight_reduce.comp)
