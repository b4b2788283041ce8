# Helpers shared by every part of the tree.

# Warnings are errors in Podium's own code (generated code and tests of it excepted by their
# targets).
set(PODIUM_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wno-maybe-uninitialized
                    -Wno-terminate)

# podium_library(NAME PART part SOURCES... DEPS ...): a static library of one part. Its public
# headers are include/podium/<part>/ (every part may see include/); its private include path is
# its own folder src/<part>/ only, so no part can include another's private headers (the layer
# check in the test suite also holds the order of the parts).
function(podium_library name)
  cmake_parse_arguments(ARG "" "PART" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                     PRIVATE ${PROJECT_SOURCE_DIR}/src/${ARG_PART})
  target_compile_options(${name} PRIVATE ${PODIUM_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# podium_test(NAME SOURCES... DEPS ...): one gtest binary registered with ctest. Unit tests may
# include the private headers of the part they test (src/ is on their include path).
function(podium_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/test)
  target_compile_options(${name} PRIVATE ${PODIUM_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit)
endfunction()

# podium_embed(OUTPUT VAR FILES...): a C++ source defining `extern const char VAR[]` with the
# concatenated contents of FILES, regenerated when they change.
function(podium_embed output var)
  set(content "")
  foreach(f ${ARGN})
    file(READ ${f} part)
    string(APPEND content "${part}\n")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${f})
  endforeach()
  file(WRITE ${output}.tmp "extern const char ${var}[];\nconst char ${var}[] = R\"PODIUMEMBED(${content})PODIUMEMBED\";\n")
  file(COPY_FILE ${output}.tmp ${output} ONLY_IF_DIFFERENT)
endfunction()

# podium_grpc_proto(TARGET PROTO NAME): a library of protoc's and gRPC's C++ for PROTO (its
# headers NAME.pb.h and NAME.grpc.pb.h on the target's public include path).
function(podium_grpc_proto target proto name)
  get_filename_component(dir ${proto} DIRECTORY)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target})
  set(gen ${out}/${name}.pb.cc ${out}/${name}.pb.h ${out}/${name}.grpc.pb.cc ${out}/${name}.grpc.pb.h)
  file(MAKE_DIRECTORY ${out})
  add_custom_command(OUTPUT ${gen}
    COMMAND protobuf::protoc --proto_path=${dir} --cpp_out=${out} --grpc_out=${out}
            --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin> ${proto}
    DEPENDS ${proto})
  add_library(${target} STATIC ${out}/${name}.pb.cc ${out}/${name}.grpc.pb.cc)
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC gRPC::grpc++ protobuf::libprotobuf)
  target_compile_options(${target} PRIVATE -w)
endfunction()
