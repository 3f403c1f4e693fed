# ctest step: install the relu_client component of the build tree into a
# prefix inside the build tree, then configure and build the consumer project
# against that prefix only.
#   cmake -DBUILD_DIR=... -DPREFIX=... -DSOURCE=... -DCONSUMER_BUILD=...
#         -DCXX=... -DBUILD_TYPE=... -P consumer_build.cmake
foreach(var BUILD_DIR PREFIX SOURCE CONSUMER_BUILD CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} not set")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${PREFIX} ${CONSUMER_BUILD})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --component relu_client
    --prefix ${PREFIX})
foreach(f include/relu/client.h lib/cmake/relu_client/relu_clientConfig.cmake)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
# The installed header must stand alone: no generated or gRPC header.
file(READ ${PREFIX}/include/relu/client.h header)
if(header MATCHES "pb\\.h|grpcpp")
  message(FATAL_ERROR "client.h includes a generated or gRPC header")
endif()
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${CONSUMER_BUILD}
    -DCMAKE_PREFIX_PATH=${PREFIX}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${CONSUMER_BUILD})
