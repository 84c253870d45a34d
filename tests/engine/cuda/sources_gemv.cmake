list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/gemv_test.cc)
# The fused launches (grouped pair, SwiGLU epilogue) and the w12 layout.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/gemv_fused_test.cc)
