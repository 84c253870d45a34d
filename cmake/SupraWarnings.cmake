# supra_target_warnings(target): the project's warning set, errors with SUPRA_WERROR.
function(supra_target_warnings target)
  set(flags -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local> -Wnon-virtual-dtor -Wimplicit-fallthrough)
  if(SUPRA_WERROR)
    list(APPEND flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${flags}>)
endfunction()
