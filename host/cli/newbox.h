/*
 * hakmem new-box: the templates the command writes, one file per role
 * (newbox_alloc.c, newbox_pages.c, newbox_observer.c) and one for the files
 * every project gets (newbox_common.c). Each is an array of lines ending in
 * NULL; @KEY@ is replaced by its value and a line "@BLOCK@" by a block of
 * lines (see write_template in newbox.c).
 */
#ifndef HAKMEM_NEWBOX_H
#define HAKMEM_NEWBOX_H

#include <stddef.h> /* NULL, which ends every template */

/* newbox_alloc.c: a size-class arena */
extern const char *const tmpl_alloc_c[];
extern const char *const tmpl_alloc_ini[];
extern const char *const alloc_params[];    /* README rows: parameters, links */

/* newbox_pages.c: a cache of freed page spans */
extern const char *const tmpl_pages_c[];
extern const char *const tmpl_pages_ini[];
extern const char *const pages_params[];

/* newbox_observer.c: event counters and a report at exit */
extern const char *const tmpl_observer_c[];
extern const char *const tmpl_observer_ini[];
extern const char *const observer_params[];

/* newbox_common.c: the same for every role */
extern const char *const tmpl_cmakelists[];
extern const char *const tmpl_readme[];
extern const char *const tmpl_gitignore[];

#endif
