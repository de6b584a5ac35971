/* The document tree lab files are read into: YAML through libyaml, JSON through jansson, both
 * kept with the line of every node so errors can point at it. Private to core/lab*.c. */
#ifndef MACHINE_LAB_TREE_H
#define MACHINE_LAB_TREE_H

#include <stddef.h>

#include "cleanup.h"

struct merr;

enum lnode_kind { LNODE_SCALAR, LNODE_SEQ, LNODE_MAP };

struct lnode {
    enum lnode_kind kind;
    int line;      /* 1-based; 0 when the source gives none (JSON values) */
    char *scalar;  /* LNODE_SCALAR */
    size_t n;      /* items of a sequence, pairs of a map */
    char **keys;   /* LNODE_MAP */
    int *key_lines;
    struct lnode **items; /* values (map) or items (sequence) */
};

/* Parses one YAML (1.1) document, or a JSON text when it starts with '{'. path is for errors.
 * Anchors/aliases and several documents are refused; a map with a key twice is an error. */
MUST_CHECK struct lnode *lnode_parse(const char *text, size_t len, const char *path,
                                     struct merr *err);
void lnode_free(struct lnode *n);
DEFINE_CLEANUP(struct lnode, lnode_free)
#define auto_lnode __attribute__((cleanup(cleanup_lnode_freep)))

/* The value of key in a map, or NULL. */
const struct lnode *lnode_get(const struct lnode *map, const char *key);

#endif
