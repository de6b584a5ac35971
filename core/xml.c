/* libxml2 behind a few lookups; the only file that includes it. */
#include "xml.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "error.h"
#include "fsutil.h"

#define XML_MAX (8u << 20)

struct xml_doc {
    xmlDocPtr doc;
};

static xmlNodePtr node(const struct xml_node *n)
{
    return (xmlNodePtr)(void *)n;
}

static const struct xml_node *wrap(xmlNodePtr n)
{
    return (const struct xml_node *)(void *)n;
}

struct xml_doc *xml_parse(const char *buf, size_t len, struct merr *err)
{
    if (len > XML_MAX) {
        merr_set(err, MERR_INVALID, 0, "XML document larger than %u bytes", XML_MAX);
        return NULL;
    }
    /* no network, no entity substitution, no DTD loading, quiet */
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS;
    xmlDocPtr d = xmlReadMemory(buf != NULL ? buf : "", (int)len, "answer.xml", NULL, opts);
    if (d == NULL || xmlDocGetRootElement(d) == NULL) {
        if (d != NULL)
            xmlFreeDoc(d);
        merr_set(err, MERR_PROTOCOL, 0, "the answer is not well-formed XML");
        return NULL;
    }
    struct xml_doc *x = xcalloc(1, sizeof *x);
    x->doc = d;
    return x;
}

void xml_doc_free(struct xml_doc *doc)
{
    if (doc == NULL)
        return;
    xmlFreeDoc(doc->doc);
    free(doc);
}

const struct xml_node *xml_root(const struct xml_doc *doc)
{
    return doc != NULL ? wrap(xmlDocGetRootElement(doc->doc)) : NULL;
}

const char *xml_name(const struct xml_node *n)
{
    return n != NULL ? (const char *)node(n)->name : NULL;
}

static bool named(xmlNodePtr n, const char *name, size_t len)
{
    return n->type == XML_ELEMENT_NODE && strncmp((const char *)n->name, name, len) == 0 &&
           n->name[len] == '\0';
}

static const struct xml_node *child_n(const struct xml_node *n, const char *name, size_t len)
{
    for (xmlNodePtr c = n != NULL ? node(n)->children : NULL; c != NULL; c = c->next)
        if (named(c, name, len))
            return wrap(c);
    return NULL;
}

const struct xml_node *xml_first(const struct xml_node *n, const char *name)
{
    return child_n(n, name, strlen(name));
}

const struct xml_node *xml_next(const struct xml_node *n, const char *name)
{
    size_t len = strlen(name);
    for (xmlNodePtr c = n != NULL ? node(n)->next : NULL; c != NULL; c = c->next)
        if (named(c, name, len))
            return wrap(c);
    return NULL;
}

const struct xml_node *xml_path(const struct xml_node *n, const char *path)
{
    if (path == NULL)
        return n;
    const char *p = path;
    while (n != NULL && *p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        n = child_n(n, p, len);
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

static xmlNodePtr find_in(xmlNodePtr n, const char *name, size_t len, unsigned depth)
{
    if (depth > 64)
        return NULL;
    for (xmlNodePtr c = n->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (named(c, name, len))
            return c;
        xmlNodePtr f = find_in(c, name, len, depth + 1);
        if (f != NULL)
            return f;
    }
    return NULL;
}

const struct xml_node *xml_find(const struct xml_node *n, const char *name)
{
    return n != NULL ? wrap(find_in(node(n), name, strlen(name), 0)) : NULL;
}

char *xml_text(const struct xml_node *n, const char *path)
{
    const struct xml_node *e = xml_path(n, path);
    if (e == NULL)
        return NULL;
    xmlChar *c = xmlNodeGetContent(node(e));
    const char *s = c != NULL ? (const char *)c : "";
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    char *out = strndup(s, len);
    xmlFree(c);
    if (out == NULL)
        abort();
    return out;
}
