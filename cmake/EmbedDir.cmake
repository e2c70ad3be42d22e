# cmake -DDIR=folder -DOUTPUT=file.c -DSYMBOL=name -DTYPE=struct_name -DHEADER=file.h -P EmbedDir.cmake
# Writes a C file with every file below DIR (dot files too), sorted by path:
#   const struct TYPE SYMBOL[] = { {"sub/path", bytes, length}, ... };
#   const size_t SYMBOL_count;
# HEADER declares struct TYPE { const char *path; const char *data; size_t len; }.
# The bytes are NUL-terminated, as in EmbedFile.cmake.
file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${DIR}" "${DIR}/*")
list(SORT files)
set(arrays "")
set(table "")
set(index 0)
foreach(rel IN LISTS files)
  file(READ "${DIR}/${rel}" hex HEX)
  string(LENGTH "${hex}" hex_len)
  math(EXPR byte_count "${hex_len} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
  string(APPEND arrays "static const char file_${index}[] = {\n${body}0x00};\n")
  string(APPEND table "    {\"${rel}\", file_${index}, ${byte_count}},\n")
  math(EXPR index "${index} + 1")
endforeach()
file(WRITE "${OUTPUT}.tmp" "/* Generated from ${DIR} by cmake/EmbedDir.cmake. */\n#include \"${HEADER}\"\n${arrays}\nconst struct ${TYPE} ${SYMBOL}[] = {\n${table}};\nconst size_t ${SYMBOL}_count = ${index};\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
