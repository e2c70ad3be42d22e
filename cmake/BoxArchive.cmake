# cmake -DLINKER=ld -DOBJCOPY=objcopy -DAR=ar -DNAME=box -DOBJECTS="a.o;b.o"
#       -DOUTPUT=hakbox_box.a -P BoxArchive.cmake   (OBJECTS: '|'-separated)
# One box's objects as an archive of one relocatable object that can be
# linked into a libhakmem.so beside other boxes: hidden symbols local (two
# boxes may both have a hidden helper of the same name), hak_box_describe
# renamed hak_box_describe_NAME.
string(REPLACE "|" ";" OBJECTS "${OBJECTS}")
set(object ${OUTPUT}.o)
execute_process(COMMAND ${LINKER} -r -o ${object} ${OBJECTS} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "ld -r for box ${NAME} failed")
endif()
execute_process(COMMAND ${OBJCOPY} --localize-hidden
                        --redefine-sym hak_box_describe=hak_box_describe_${NAME} ${object}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "objcopy of box ${NAME} failed")
endif()
file(REMOVE ${OUTPUT})
execute_process(COMMAND ${AR} rcs ${OUTPUT} ${object} RESULT_VARIABLE rc)
file(REMOVE ${object})
if(rc)
  message(FATAL_ERROR "ar for box ${NAME} failed")
endif()
