/* The hakmem command: one file per subcommand group. */
#ifndef HAKMEM_CLI_H
#define HAKMEM_CLI_H

#include "internal.h"

/* cli_util.c: where this installation keeps libhakmem.so and the boxes,
 * and its data (bench runner, configs): found from the executable's own
 * location by cli_find_dirs(), which main calls first. */
void cli_find_dirs(void);
const char *cli_lib_dir(void);
const char *cli_data_dir(void);
const char *cli_exe_dir(void);

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_boxes(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);  /* report.c: telemetry JSON, one run or two */
int cmd_new_box(int argc, char **argv); /* newbox/: scaffold an out-of-tree box */
int cmd_boxtest(int argc, char **argv); /* boxtest/: conformance suite for a box */
int cmd_record(int argc, char **argv);  /* record.c: a program's malloc calls as a trace */
int cmd_replay(int argc, char **argv);  /* replay.c: a trace as a bench workload */
int cmd_trace(int argc, char **argv);   /* trace_stats.c: trace stats, trace convert */
int cmd_bundle(int argc, char **argv);  /* bundle.c: the host and a config's boxes in one .so */

#endif
