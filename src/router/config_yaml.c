/* config_yaml.c - YAML text -> ea_config_node tree, with libyaml's event
 * parser (not its document loader: aliases would be resolved there into
 * shared nodes whose walk can explode; here they are refused).
 *
 * Every node keeps its 1-based line and column so that validation can say
 * where a bad value is. Keys must be scalars and unique within a mapping.
 * Depth, node count and pairs per mapping are capped.
 * Does not hold: any meaning of the keys (config.c).
 */
#include <string.h>
#include <yaml.h>

#include "router/router_int.h"

struct frame {
    struct ea_config_node node; /* the collection being built */
    size_t cap;
    bool have_key;
    struct ea_config_node key;  /* MAPPING: the key waiting for its value */
};

struct reader {
    const char *file;
    struct ea_error *err;
    struct frame stack[EA_CONFIG_MAX_DEPTH];
    int depth;
    size_t n_nodes;
    struct ea_config_node *root;
    int documents;
};

void ea__config_node_release(struct ea_config_node *n)
{
    if (!n)
        return;
    ea_free(n->scalar);
    for (size_t i = 0; i < n->n; i++) {
        if (n->items)
            ea__config_node_release(&n->items[i]);
        if (n->keys)
            ea__config_node_release(&n->keys[i]);
    }
    ea_free(n->items);
    ea_free(n->keys);
    memset(n, 0, sizeof *n);
}

void ea__config_node_free(struct ea_config_node *n)
{
    ea__config_node_release(n);
    ea_free(n);
}

static struct ea_config_pos pos_of(yaml_mark_t m)
{
    return (struct ea_config_pos){(uint32_t)m.line + 1, (uint32_t)m.column + 1};
}

/* Line and column (in bytes) of byte offset off of text. */
static struct ea_config_pos pos_at_offset(const char *text, size_t len, size_t off)
{
    struct ea_config_pos p = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            p.line++;
            p.column = 1;
        } else {
            p.column++;
        }
    }
    return p;
}

static ea_status fail_at(struct reader *r, ea_status s, struct ea_config_pos p, const char *what)
{
    return ea_error_set(r->err, s, "%s:%u:%u: %s", r->file, (unsigned)p.line, (unsigned)p.column,
                        what);
}

/* Hands a finished node n to the collection on top of the stack (or makes it
 * the root). On failure n has been released. */
static ea_status place(struct reader *r, struct ea_config_node *n)
{
    if (r->depth == 0) {
        if (!(r->root = ea_malloc(sizeof *r->root))) {
            ea__config_node_release(n);
            return ea_error_set(r->err, EA_ENOMEM, "%s: out of memory", r->file);
        }
        *r->root = *n;
        return EA_OK;
    }
    struct frame *f = &r->stack[r->depth - 1];
    struct ea_config_node *c = &f->node;
    if (c->kind == EA_CONFIG_MAPPING && !f->have_key) {
        if (n->kind != EA_CONFIG_SCALAR) {
            struct ea_config_pos p = n->pos;
            ea__config_node_release(n);
            return fail_at(r, EA_EFORMAT, p, "a key must be a plain name, not a list or mapping");
        }
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->keys[i].scalar, n->scalar) == 0) {
                char msg[EA_ERROR_MSG_MAX];
                snprintf(msg, sizeof msg, "key '%.64s' appears twice in this mapping (first on line %u)",
                         n->scalar, (unsigned)c->keys[i].pos.line);
                struct ea_config_pos p = n->pos;
                ea__config_node_release(n);
                return fail_at(r, EA_EFORMAT, p, msg);
            }
        if (c->n >= EA__CONFIG_MAX_PAIRS) {
            struct ea_config_pos p = n->pos;
            ea__config_node_release(n);
            return fail_at(r, EA_ETOOBIG, p, "more keys in one mapping than the limit (1024)");
        }
        f->key = *n;
        f->have_key = true;
        return EA_OK;
    }
    if (c->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        struct ea_config_node *items = ea_realloc(c->items, cap * sizeof *items);
        if (items)
            c->items = items;
        struct ea_config_node *keys = NULL;
        if (items && c->kind == EA_CONFIG_MAPPING && (keys = ea_realloc(c->keys, cap * sizeof *keys)))
            c->keys = keys;
        if (!items || (c->kind == EA_CONFIG_MAPPING && !keys)) {
            ea__config_node_release(n);
            return ea_error_set(r->err, EA_ENOMEM, "%s: out of memory", r->file);
        }
        f->cap = cap;
    }
    if (c->kind == EA_CONFIG_MAPPING) {
        c->keys[c->n] = f->key;
        memset(&f->key, 0, sizeof f->key);
        f->have_key = false;
    }
    c->items[c->n++] = *n;
    return EA_OK;
}

static ea_status count_node(struct reader *r, yaml_mark_t m)
{
    if (++r->n_nodes > EA_CONFIG_MAX_NODES)
        return fail_at(r, EA_ETOOBIG, pos_of(m), "more values than the limit (100000)");
    return EA_OK;
}

static ea_status on_event(struct reader *r, const yaml_event_t *ev)
{
    struct ea_config_pos p = pos_of(ev->start_mark);
    ea_status s;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++r->documents > 1)
            return fail_at(r, EA_EFORMAT, p, "only one YAML document is allowed (a second '---')");
        return EA_OK;
    case YAML_ALIAS_EVENT:
        return fail_at(r, EA_EFORMAT, p, "aliases (*name) are not supported; write the value out");
    case YAML_SCALAR_EVENT: {
        if (ev->data.scalar.anchor)
            return fail_at(r, EA_EFORMAT, p, "anchors (&name) are not supported");
        if (ev->data.scalar.tag)
            return fail_at(r, EA_EFORMAT, p, "tags (!name) are not supported");
        if ((s = count_node(r, ev->start_mark)))
            return s;
        size_t n = ev->data.scalar.length;
        const char *v = (const char *)ev->data.scalar.value;
        if (memchr(v, '\0', n))
            return fail_at(r, EA_EFORMAT, p, "a value holds a NUL character");
        struct ea_config_node node = {.kind = EA_CONFIG_SCALAR, .pos = p};
        node.quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (!(node.scalar = ea_strndup(v, n)))
            return ea_error_set(r->err, EA_ENOMEM, "%s: out of memory", r->file);
        return place(r, &node);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        if (seq ? ev->data.sequence_start.anchor != NULL : ev->data.mapping_start.anchor != NULL)
            return fail_at(r, EA_EFORMAT, p, "anchors (&name) are not supported");
        if (seq ? ev->data.sequence_start.tag != NULL : ev->data.mapping_start.tag != NULL)
            return fail_at(r, EA_EFORMAT, p, "tags (!name) are not supported");
        if ((s = count_node(r, ev->start_mark)))
            return s;
        if (r->depth == EA_CONFIG_MAX_DEPTH)
            return fail_at(r, EA_ETOOBIG, p, "nested deeper than the limit (32)");
        struct frame *f = &r->stack[r->depth++];
        memset(f, 0, sizeof *f);
        f->node.kind = seq ? EA_CONFIG_SEQUENCE : EA_CONFIG_MAPPING;
        f->node.pos = p;
        return EA_OK;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct frame *f = &r->stack[--r->depth];
        struct ea_config_node node = f->node;
        memset(&f->node, 0, sizeof f->node);
        return place(r, &node); /* a mapping never ends between key and value */
    }
    default:
        return EA_OK;
    }
}

ea_status ea__config_tree_parse(const char *text, size_t len, const char *file,
                                struct ea_config_node **root, struct ea_error *err)
{
    struct reader r = {.file = file, .err = err};
    *root = NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return ea_error_set(err, EA_ENOMEM, "%s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    ea_status s = EA_OK;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            struct ea_config_pos p = pos_of(parser.problem_mark);
            if (parser.error == YAML_READER_ERROR) /* bad encoding: libyaml gives a byte offset */
                p = pos_at_offset(text, len, parser.problem_offset);
            if (parser.error == YAML_MEMORY_ERROR)
                s = ea_error_set(err, EA_ENOMEM, "%s: out of memory", file);
            else if (parser.context)
                s = ea_error_set(err, EA_EFORMAT, "%s:%u:%u: %s %s", file, (unsigned)p.line,
                                 (unsigned)p.column, parser.problem ? parser.problem : "syntax error",
                                 parser.context);
            else
                s = ea_error_set(err, EA_EFORMAT, "%s:%u:%u: %s", file, (unsigned)p.line,
                                 (unsigned)p.column, parser.problem ? parser.problem : "syntax error");
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        s = on_event(&r, &ev);
        yaml_event_delete(&ev);
        if (s || end)
            break;
    }
    yaml_parser_delete(&parser);
    if (s) {
        for (int i = 0; i < r.depth; i++) {
            ea__config_node_release(&r.stack[i].node);
            ea__config_node_release(&r.stack[i].key);
        }
        ea__config_node_free(r.root);
        return s;
    }
    *root = r.root;
    return EA_OK;
}
