# The mid-batch projection kernel (decode skinny GEMM on the tensor cores, n ≤ 128).
target_sources(supra_cuda PRIVATE ${CMAKE_CURRENT_LIST_DIR}/skinny_gemm.cu)
