# Parity tests of the element-wise kernels (embedding, RMSNorm, feature map +
# RoPE, SwiGLU) against the CPU ops.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/elementwise_test.cc)
