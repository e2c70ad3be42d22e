/* The hakmem command: one file per subcommand group. */
#ifndef HAKMEM_CLI_H
#define HAKMEM_CLI_H

#include "internal.h"

/* Where this installation keeps libhakmem.so and the boxes, and its data
 * (bench runner, configs): found from the executable's own location. */
const char *cli_lib_dir(void);
const char *cli_data_dir(void);
const char *cli_exe_dir(void);

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_boxes(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* Weak while these land one by one; main.c says so if one is absent. */
__attribute__((weak)) int cmd_report(int argc, char **argv);  /* report.c */
__attribute__((weak)) int cmd_new_box(int argc, char **argv); /* newbox.c */
__attribute__((weak)) int cmd_boxtest(int argc, char **argv); /* boxtest.c */

#endif
