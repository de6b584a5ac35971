/* Reading XML answers (the EC2 Query API's) through libxml2, never by hand: a parsed document
 * and lookups of elements by local name (namespaces ignored, as every EC2 answer carries its
 * API version's namespace). The parser never fetches anything (no network, no external
 * entities, no entity expansion) and refuses documents past a size cap. */
#ifndef MACHINE_XML_H
#define MACHINE_XML_H

#include <stddef.h>

#include "cleanup.h"

struct merr;
struct xml_doc;
struct xml_node; /* an element; borrowed from its document */

/* MERR_PROTOCOL for a document that is not well-formed XML, MERR_INVALID past 8 MiB. */
struct xml_doc *xml_parse(const char *buf, size_t len, struct merr *err) MUST_CHECK;
void xml_doc_free(struct xml_doc *doc);
DEFINE_CLEANUP(struct xml_doc, xml_doc_free)
#define auto_xml_doc __attribute__((cleanup(cleanup_xml_doc_freep)))

const struct xml_node *xml_root(const struct xml_doc *doc);
/* The root element's local name ("DescribeInstancesResponse", "Response"). */
const char *xml_name(const struct xml_node *n);

/* The element reached from n by a "/"-separated path of child local names ("a/b/c"); "" or
 * NULL: n itself. NULL when a step is missing (n NULL too). */
const struct xml_node *xml_path(const struct xml_node *n, const char *path);
/* The first element named `name` below n at any depth (depth first), or NULL. */
const struct xml_node *xml_find(const struct xml_node *n, const char *name);

/* Iterating a set: the first child of n named `name`, then its next sibling of that name. */
const struct xml_node *xml_first(const struct xml_node *n, const char *name);
const struct xml_node *xml_next(const struct xml_node *n, const char *name);

/* The trimmed text of the element at path below n, malloc'd; NULL when it is missing (an
 * empty element gives ""). */
char *xml_text(const struct xml_node *n, const char *path);

#endif
