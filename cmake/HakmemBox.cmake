# hakmem_add_box(NAME SOURCES src.c...): one box, one MODULE library named
# hakbox_NAME.so, built against include/box_api/ only. Used in the tree and,
# installed, by out-of-tree boxes (find_package(hakmem)).
#
# Beside the .so, a post-build step writes hakbox_NAME.a: the same objects
# as one relocatable object with every hidden symbol made local and
# hak_box_describe renamed hak_box_describe_NAME, so several boxes link into
# one libhakmem.so without clashing (the built-in boxes of the default
# build, and `hakmem bundle`).
set(HAKMEM_BOX_ARCHIVE_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/BoxArchive.cmake)

function(hakmem_add_box name)
  cmake_parse_arguments(BOX "" "" "SOURCES" ${ARGN})
  set(target hakbox_${name})
  add_library(${target} MODULE ${BOX_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME hakbox_${name}
    C_VISIBILITY_PRESET hidden
    C_STANDARD 11
    C_EXTENSIONS ON)
  if(TARGET hakmem::box_api)
    target_link_libraries(${target} PRIVATE hakmem::box_api)
  else()
    target_link_libraries(${target} PRIVATE hakmem_box_api)
  endif()
  # A box must not depend on the host's symbols or on libc's malloc being
  # anyone's in particular; -z defs catches a reference to host internals.
  if(NOT DEFINED HAKMEM_NO_UNDEFINED)
    set(HAKMEM_NO_UNDEFINED "-Wl,-z,defs")
  endif()
  if(HAKMEM_NO_UNDEFINED)
    target_link_options(${target} PRIVATE ${HAKMEM_NO_UNDEFINED})
  endif()
  string(MAKE_C_IDENTIFIER "${name}" symbol_name)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DLINKER=${CMAKE_LINKER} -DOBJCOPY=${CMAKE_OBJCOPY} -DAR=${CMAKE_AR}
            -DNAME=${symbol_name} "-DOBJECTS=$<JOIN:$<TARGET_OBJECTS:${target}>,|>"
            -DOUTPUT=$<TARGET_FILE_DIR:${target}>/hakbox_${name}.a
            -P ${HAKMEM_BOX_ARCHIVE_SCRIPT}
    VERBATIM)
  if(HAKMEM_INSTALL_LIBDIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${HAKMEM_INSTALL_LIBDIR})
    install(FILES $<TARGET_FILE_DIR:${target}>/hakbox_${name}.a DESTINATION ${HAKMEM_INSTALL_LIBDIR})
  endif()
endfunction()
