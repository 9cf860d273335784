# The libFuzzer harnesses, built when lufa is configured with -DLUFA_FUZZ=ON and clang (scripts/fuzz does it).
# C harnesses call a native parser directly; Lua harnesses (NAME_fuzz.lua) run lufa's own Lua modules
# through lua_fuzz.c. Each harness is the program NAME_fuzz.

function(lufa_fuzz_harness name source)
  add_executable(${name}_fuzz ${source})
  target_include_directories(${name}_fuzz PRIVATE host host/include)
  target_compile_options(${name}_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(${name}_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  # linking the object library brings its objects and whatever libraries the host links
  target_link_libraries(${name}_fuzz PRIVATE lufa_objects PkgConfig::LUA m)
endfunction()

lufa_fuzz_harness(json tests/fuzz/json_fuzz.c)
lufa_fuzz_harness(http_request tests/fuzz/http_request_fuzz.c)

file(GLOB LUFA_LUA_HARNESSES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/*_fuzz.lua)
foreach(script ${LUFA_LUA_HARNESSES})
  get_filename_component(base ${script} NAME_WE)
  string(REGEX REPLACE "_fuzz$" "" name ${base})
  lufa_fuzz_harness(${name} tests/fuzz/lua_fuzz.c)
  target_compile_definitions(${name}_fuzz PRIVATE LUFA_FUZZ_SCRIPT="${script}")
  if(name STREQUAL "http_headers")
    target_compile_definitions(${name}_fuzz PRIVATE LUFA_FUZZ_HTTP_HEADERS=1)
  endif()
endforeach()
