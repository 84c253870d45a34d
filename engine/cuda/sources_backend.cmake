# The backend itself: weights upload, the cuBLAS/GEMV dispatch, the forward
# pass, and the Backend implementation.
target_sources(supra_cuda PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/cuda_backend.cc
  ${CMAKE_CURRENT_LIST_DIR}/cuda_forward.cc
  ${CMAKE_CURRENT_LIST_DIR}/cuda_weights.cc
  ${CMAKE_CURRENT_LIST_DIR}/gemm.cc
  ${CMAKE_CURRENT_LIST_DIR}/random_fill.cu
)
# RopeInverseFrequencies is shared with the CPU backend.
target_link_libraries(supra_cuda PUBLIC supra_cpu)
