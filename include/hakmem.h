/*
 * Introspection for programs running under libhakmem.so. Look the symbols
 * up with dlsym(RTLD_DEFAULT, ...) so the program also runs without hakmem.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#ifdef __cplusplus
extern "C" {
#endif

/* The [box.NAME] instance owning p, or NULL (glibc's memory, or not heap). */
const char *hakmem_box_of(const void *p);
/* The config in use: a file path, or "(embedded default)"; NULL when the
 * host runs on glibc after a config error (on_config_error = fallback). */
const char *hakmem_config_name(void);

#ifdef __cplusplus
}
#endif
#endif
