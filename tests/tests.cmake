# Registers every test with ctest. New tests are picked up by their file names; re-run cmake after adding one.

# C unit tests: tests/c/test_*.c, each its own program linked against the host objects.
file(GLOB LUFA_C_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/c/test_*.c)
foreach(src ${LUFA_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} $<TARGET_OBJECTS:lufa_objects>)
  target_include_directories(${name} PRIVATE host host/include tests/c)
  target_compile_definitions(${name} PRIVATE LUFA_SOURCE_DIR="${PROJECT_SOURCE_DIR}" LUFA_BUILD_DIR="${PROJECT_BINARY_DIR}")
  target_link_libraries(${name} PRIVATE PkgConfig::LUA PkgConfig::CURL PkgConfig::OPENSSL PkgConfig::EXPAT PkgConfig::SQLITE3 PkgConfig::LIBPQ Threads::Threads m)
  add_test(NAME c/${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(c/${name} PROPERTIES LABELS "c" TIMEOUT 120)
endforeach()

# The resolver that tests preload into lufa: names under .test resolve to loopback, and lookups fail on
# demand (tests/support/resolver_shim.c). Uninstrumented, so a sanitizer build can preload it too.
add_library(lufa_test_resolver MODULE tests/support/resolver_shim.c)
target_compile_options(lufa_test_resolver PRIVATE -fno-sanitize=all)
target_link_options(lufa_test_resolver PRIVATE -fno-sanitize=all)
target_link_libraries(lufa_test_resolver PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)

# Busted specs, run by the lufa binary itself so the native modules are present.
file(GLOB LUFA_SPECS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/spec/*_spec.lua)
foreach(spec ${LUFA_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME spec/${name} COMMAND lufa tests/busted.lua ${spec} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(spec/${name} PROPERTIES LABELS "spec" TIMEOUT 600
    ENVIRONMENT "LUFA_BUILD_DIR=${PROJECT_BINARY_DIR};LUFA_STORE=${PROJECT_BINARY_DIR}/test-state/runs.db")
endforeach()

# The local Azure stand-ins' own tests (Node's test runner).
find_program(NODE node)
file(GLOB LUFA_EMULATOR_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/emulators/*.test.mjs)
foreach(t ${LUFA_EMULATOR_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME emulators/${name} COMMAND ${NODE} --test ${t} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(emulators/${name} PROPERTIES LABELS "node" TIMEOUT 600)
endforeach()

# End-to-end tests: tests/e2e/*_test.lua, run by lufa against the stand-ins they start themselves.
file(GLOB LUFA_E2E_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/e2e/*_test.lua)
foreach(t ${LUFA_E2E_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME e2e/${name} COMMAND lufa tests/busted.lua ${t} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(e2e/${name} PROPERTIES LABELS "e2e" TIMEOUT 900
    ENVIRONMENT "LUFA_BUILD_DIR=${PROJECT_BINARY_DIR};LUFA_STORE=${PROJECT_BINARY_DIR}/test-state/runs.db")
endforeach()

# The embedding example pumps a host from a frame loop; it must finish its scripted work.
add_test(NAME c/embed_frame_loop COMMAND embed_frame_loop WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(c/embed_frame_loop PROPERTIES LABELS "c" TIMEOUT 60)

# The plugin host example runs three seconds: its two hostile plugins are stopped, the other keeps running.
add_test(NAME c/embed_plugin_host COMMAND plugin_host examples/plugin-host/plugins 3 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(c/embed_plugin_host PROPERTIES LABELS "c" TIMEOUT 60)

# Fuzz smoke: every harness of tests/fuzz runs a few seconds from its checked-in seeds (scripts/fuzz
# builds them with clang into build/fuzz first). The harnesses carry their own sanitizers, so scripts/test
# runs them in the plain pass only.
find_program(CLANG clang)
if(CLANG)
  file(GLOB LUFA_FUZZ_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/*_fuzz.c ${PROJECT_SOURCE_DIR}/tests/fuzz/*_fuzz.lua)
  set(LUFA_FUZZ_ENV "LUFA_FUZZ_BUILD=${PROJECT_BINARY_DIR}/fuzz")
  add_test(NAME fuzz/build COMMAND ${PROJECT_SOURCE_DIR}/scripts/fuzz --build WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(fuzz/build PROPERTIES LABELS "fuzz" TIMEOUT 600 FIXTURES_SETUP fuzz ENVIRONMENT "${LUFA_FUZZ_ENV}")
  foreach(src ${LUFA_FUZZ_SOURCES})
    get_filename_component(base ${src} NAME_WE)
    string(REGEX REPLACE "_fuzz$" "" name ${base})
    if(NOT name STREQUAL "lua")
      add_test(NAME fuzz/${name} COMMAND ${PROJECT_SOURCE_DIR}/scripts/fuzz ${name} --smoke 4 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
      set_tests_properties(fuzz/${name} PROPERTIES LABELS "fuzz" TIMEOUT 120 FIXTURES_REQUIRED fuzz ENVIRONMENT "${LUFA_FUZZ_ENV}")
    endif()
  endforeach()
endif()

# The JSON benchmark compiles lufa.json from host/ by itself: a 1 MB run keeps it building and agreeing
# with lua-cjson (its figures mean nothing here).
add_test(NAME bench/json COMMAND ${PROJECT_SOURCE_DIR}/scripts/bench/json 1 1 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(bench/json PROPERTIES LABELS "bench" TIMEOUT 120)

# The rockspec builds lufa for a stock lua5.4 (offline) and lua5.4 can require it.
add_test(NAME install/rockspec COMMAND bash ${PROJECT_SOURCE_DIR}/tests/install/rockspec_test.sh)
set_tests_properties(install/rockspec PROPERTIES LABELS "install" TIMEOUT 300)

# lufa serve in a real browser: playwright-core (tests/browser/package.json) driving Debian's chromium.
file(GLOB LUFA_BROWSER_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/browser/*.test.mjs)
foreach(t ${LUFA_BROWSER_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME browser/${name} COMMAND ${NODE} --test ${t} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(browser/${name} PROPERTIES LABELS "browser" TIMEOUT 600
    ENVIRONMENT "LUFA_BUILD_DIR=${PROJECT_BINARY_DIR}")
endforeach()

# cmake --install gives a working command, man page, completions, lufa.pc and find_package(lufa).
add_test(NAME install/cmake COMMAND bash ${PROJECT_SOURCE_DIR}/tests/install/cmake_install_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(install/cmake PROPERTIES LABELS "install" TIMEOUT 300)
