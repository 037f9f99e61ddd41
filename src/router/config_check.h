/* config_check.h - checking a configuration tree (struct ea_config_node,
 * from config_yaml.c) against what a section expects: typed getters and
 * the one-line rejections "file:line:column: path: what is wrong". Shared
 * by the sections' readers (router/config.c, ledger/config.c,
 * privacy/config.c) so that every section says things the same way.
 * Values echoed in messages are cut to EA__CFG_SHOW_MAX bytes with control
 * bytes shown as '?'.
 * Does not hold: YAML syntax (config_yaml.c), any section's keys or meaning.
 */
#ifndef EA_ROUTER_CONFIG_CHECK_H
#define EA_ROUTER_CONFIG_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/router.h"

#define EA__CFG_PATH_MAX 160 /* a key path in a message */
#define EA__CFG_SHOW_MAX 48  /* bytes of a bad value echoed */

/* Where messages go: the file's name (as given) and the caller's error. */
struct ea__cfg {
    const char *file;
    struct ea_error *err;
};

/* s cut and cleaned into buf (at least EA__CFG_SHOW_MAX + 8 bytes). */
const char *ea__cfg_show(const char *s, char *buf, size_t size);
/* EA_EFORMAT with "file:line:column: path: what" (no "path: " when empty). */
ea_status ea__cfg_fail(const struct ea__cfg *c, struct ea_config_pos p, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
ea_status ea__cfg_oom(const struct ea__cfg *c);
/* "parent.key" ("key" when parent is empty) / "parent[i]", into out
 * (EA__CFG_PATH_MAX bytes). */
void ea__cfg_join(char *out, const char *parent, const char *key);
void ea__cfg_join_index(char *out, const char *parent, size_t i);
/* A plain empty, ~ or null scalar: YAML's null. */
bool ea__cfg_is_null(const struct ea_config_node *n);
/* The value of key in a mapping, or NULL (also for a list or a value). */
const struct ea_config_node *ea__cfg_get(const struct ea_config_node *map, const char *key);
/* n is of kind (a non-null scalar for EA_CONFIG_SCALAR); what names it. */
ea_status ea__cfg_want(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                       enum ea_config_node_kind kind, const char *what);
/* Every key of map is in allowed (NULL-terminated); the message lists them. */
ea_status ea__cfg_only_keys(const struct ea__cfg *c, const struct ea_config_node *map, const char *path,
                            const char *const *allowed);
/* The typed getters: *out is set only on EA_OK. */
ea_status ea__cfg_string(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                         char **out); /* replaces *out (ea_free'd) */
ea_status ea__cfg_bool(const struct ea__cfg *c, const struct ea_config_node *n, const char *path, bool *out);
ea_status ea__cfg_u64(const struct ea__cfg *c, const struct ea_config_node *n, const char *path, uint64_t min,
                      uint64_t max, uint64_t *out);
ea_status ea__cfg_u32(const struct ea__cfg *c, const struct ea_config_node *n, const char *path, uint32_t min,
                      uint32_t max, uint32_t *out);
/* A decimal number in 0..max (no hex, inf or nan). */
ea_status ea__cfg_number(const struct ea__cfg *c, const struct ea_config_node *n, const char *path, double max,
                         double *out);
/* One of names[0..count): its index. */
ea_status ea__cfg_enum(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                       const char *const *names, size_t count, unsigned *out);

#endif
