# One decode layer of chained kernels (programmatic launch, fused GEMVs),
# eagerly and in a CUDA graph, against the CPU ops in sequence.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/decode_layer_test.cc)
