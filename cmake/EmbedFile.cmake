# cmake -DINPUT=file -DOUTPUT=file.c -DSYMBOL=name -P EmbedFile.cmake
# Writes a C file defining `const char SYMBOL[]` (NUL-terminated) and
# `const size_t SYMBOL_len` with the input's bytes.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR byte_count "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUTPUT}.tmp" "/* Generated from ${INPUT} by cmake/EmbedFile.cmake. */\n#include <stddef.h>\n__attribute__((visibility(\"hidden\"))) const char ${SYMBOL}[] = {\n${body}0x00};\n__attribute__((visibility(\"hidden\"))) const size_t ${SYMBOL}_len = ${byte_count};\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
