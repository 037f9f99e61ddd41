# embed.cmake - turns a file into a C array at build time (no xxd needed):
#   cmake -DIN=web/index.html -DOUT=gen.c -DNAME=ea__web_index_html -P cmake/embed.cmake
# defines `const unsigned char NAME[]` (NUL-terminated) and `const size_t NAME_len`.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," arr "${hex}")
# break the single line every 24 bytes (120 characters)
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){24})" "\\1\n" arr "${arr}")
file(WRITE "${OUT}.tmp"
  "/* generated from ${IN} by cmake/embed.cmake; do not edit */\n"
  "#include <stddef.h>\n"
  "const unsigned char ${NAME}[] = {\n${arr}0x00};\n"
  "const size_t ${NAME}_len = ${len};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
