# Sanitizer builds of the whole project, without touching the top-level
# CMakeLists.txt: CMake includes this file at the end of project() when
# configured with
#
#   cmake -S . -B build-asan -DCMAKE_PROJECT_INCLUDE=$PWD/cmake/Sanitizers.cmake \
#         -DRELU_SANITIZE=address,undefined
#
# (`make test-sanitizers` does exactly that). Every target, tests included,
# is compiled and linked with -fsanitize=${RELU_SANITIZE}; undefined
# behaviour aborts instead of printing and carrying on, so a UBSan report
# fails the test that triggered it. Debian's gRPC, protobuf, abseil and
# oneTBB stay uninstrumented: ASan still sees our reads and writes into their
# buffers, and LeakSanitizer needs no suppressions for them (their
# process-wide singletons stay reachable).
#
# ThreadSanitizer is not offered here on purpose: over Debian's
# uninstrumented gRPC and oneTBB it reports false races. The batcher's TSan
# build is tests/batching/tsan (ctest relu_batching_tsan).
set(RELU_SANITIZE "" CACHE STRING
    "Comma-separated -fsanitize= list for every target, e.g. address,undefined")

if(RELU_SANITIZE)
  if(RELU_SANITIZE MATCHES "thread")
    message(FATAL_ERROR "RELU_SANITIZE=thread: use tests/batching/tsan; "
                        "Debian's gRPC and oneTBB are not TSan-instrumented")
  endif()
  set(_relu_sanitize_flags -fsanitize=${RELU_SANITIZE} -fno-omit-frame-pointer)
  if(RELU_SANITIZE MATCHES "undefined")
    list(APPEND _relu_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  # GCC 12's -Wmaybe-uninitialized gives false positives in instrumented
  # code (std::regex's std::function moves under ASan at -O2), which -Werror
  # would turn into build failures; the plain build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND _relu_sanitize_compile_flags -Wno-maybe-uninitialized)
  endif()
  add_compile_options(${_relu_sanitize_flags} ${_relu_sanitize_compile_flags})
  add_link_options(${_relu_sanitize_flags})
  message(STATUS "relu-serve: sanitizers ${RELU_SANITIZE} on every target")
endif()
