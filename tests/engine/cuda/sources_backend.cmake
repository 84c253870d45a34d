# Whole-model parity of the CUDA backend with the CPU backend, and its contract.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/backend_test.cc)
