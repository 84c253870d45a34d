list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/gemv_test.cc)
