# Precompiled headers shared by many targets.
#
# Most of the build's time went into parsing the same heavy headers (gtest,
# gmock, gRPC++, the generated lepton.grpc.pb.h, Abseil, Eigen through the
# core's headers) again for every test file, and again for every library
# file. lepton_pch(name ...) precompiles one such header set once, in a small
# object library of its own; targets take it with
# target_precompile_headers(<target> REUSE_FROM <name>). GCC uses a
# precompiled header only when the flags match, so every target reusing it is
# compiled with the same options (the project-wide ones; -Winvalid-pch, which
# CMake adds, warns when one is rejected and the headers are parsed instead).
# The headers are still included by each file that needs them, so a file
# compiles the same without them (-DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON builds
# without precompiled headers, e.g. to check that a file includes what it
# uses).
#
#   lepton_pch(<name> LIBS <libs whose include paths the headers need>
#              HEADERS <header>...)
function(lepton_pch name)
  cmake_parse_arguments(P "" "" "LIBS;HEADERS" ${ARGN})
  set(stub ${CMAKE_CURRENT_BINARY_DIR}/${name}_stub.cc)
  if(NOT EXISTS ${stub})
    file(WRITE ${stub} "// Empty: ${name} exists for its precompiled header.\n")
  endif()
  add_library(${name} OBJECT ${stub})
  target_link_libraries(${name} PRIVATE ${P_LIBS})
  target_precompile_headers(${name} PRIVATE ${P_HEADERS})
endfunction()
