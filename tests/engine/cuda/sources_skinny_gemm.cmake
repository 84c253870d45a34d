# The mid-batch projection kernel (skinny GEMM) against the CPU reference.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/skinny_gemm_test.cc)
