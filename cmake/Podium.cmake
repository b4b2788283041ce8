# Helpers shared by every part of the tree.

# podium_library(NAME SOURCES... DEPS ...): a static library for one part, with the public
# headers under include/ and private headers beside its sources.
function(podium_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# podium_test(NAME SOURCES... DEPS ...): one gtest binary registered with ctest.
function(podium_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
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
