# Every shader variant the library embeds: one vka_add_shader per variant.
# Each op family keeps its list in shaders/lists/<family>.cmake.
file(GLOB VKA_SHADER_LISTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/lists/*.cmake)
list(SORT VKA_SHADER_LISTS)
foreach(l ${VKA_SHADER_LISTS})
  include(${l})
endforeach()
