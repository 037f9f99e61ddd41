/* router_int.h - what the router's files share and nothing outside uses: the
 * YAML reader that turns text into an ea_config_node tree (config_yaml.c)
 * and the tree's release.
 * Does not hold: validation (config.c) or the decision (decide.c).
 */
#ifndef EDGEAGENT_ROUTER_INT_H
#define EDGEAGENT_ROUTER_INT_H

#include "edgeagent/router.h"

/* Most pairs one mapping may hold (duplicate keys are found by a scan, so
 * this also bounds that work). */
#define EA__CONFIG_MAX_PAIRS 1024

/* Parses text as one YAML document into a tree (anchors, aliases, tags and
 * more than one document are refused). *root is NULL for an empty document.
 * Errors are "file:line:column: what" in err (EA_EFORMAT, EA_ETOOBIG past
 * EA_CONFIG_MAX_DEPTH / EA_CONFIG_MAX_NODES / EA__CONFIG_MAX_PAIRS,
 * EA_ENOMEM). The caller owns *root: free with ea__config_node_free. */
ea_status ea__config_tree_parse(const char *text, size_t len, const char *file,
                                struct ea_config_node **root, struct ea_error *err);
/* Frees what n holds (not n itself). NULL-safe. */
void ea__config_node_release(struct ea_config_node *n);
/* Releases and frees n. NULL-safe. */
void ea__config_node_free(struct ea_config_node *n);

#endif
