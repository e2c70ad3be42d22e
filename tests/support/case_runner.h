/*
 * Running test cases in forked children, shared by the box suites: each
 * case gets a fresh process (so a fresh harness), a crash fails only that
 * case, and a case that must abort is checked for the abort and its message.
 */
#ifndef HAKMEM_CASE_RUNNER_H
#define HAKMEM_CASE_RUNNER_H

/* Run fn in a child; abort the test if it does not exit 0. Prints
 * "ok NAME" (and " [LABEL]" when case_label is set). */
void run_case(const char *name, void (*fn)(void));
/* Run fn in a child that must die of SIGABRT with `expect` on stderr. */
void run_abort_case(const char *name, void (*fn)(void), const char *expect);
/* An optional label for the current cases, e.g. the stack under test. */
extern const char *(*case_label)(void);
void sleep_ms(unsigned ms);

#endif
