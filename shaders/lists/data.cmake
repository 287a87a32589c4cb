vka_add_shader(NAME augment SOURCE augment.comp)
