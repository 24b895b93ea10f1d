/* plexus — topology loader: arena, YAML tree, error messages, key checks.
 * Scalar and unit parsing is in topology_units.c. */
#include "coordinator/topology_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "fabric/core/text.h"

/* ---- arena ---- */

#define CHUNK_MIN (64u * 1024u)

typedef struct px_topo_chunk {
    struct px_topo_chunk *next;
    size_t used;
    size_t cap;
    max_align_t data[];
} px_topo_chunk;

void *px_tarena_alloc(px_topo_arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    /* Round up so every allocation stays aligned for any type. */
    size_t need = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (need == 0)
        need = sizeof(max_align_t);
    px_topo_chunk *h = a->head;
    if (!h || h->cap - h->used < need) {
        size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;
        h = calloc(1, sizeof(*h) + cap);
        if (!h)
            return NULL;
        h->cap = cap;
        h->next = a->head;
        a->head = h;
    }
    void *p = (unsigned char *)h->data + h->used;
    h->used += need;
    return p;
}

void *px_tarena_array(px_topo_arena *a, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    return px_tarena_alloc(a, total);
}

char *px_tarena_strdup(px_topo_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *d = px_tarena_alloc(a, n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

void px_tarena_fini(px_topo_arena *a)
{
    px_topo_chunk *h = a->head;
    while (h) {
        px_topo_chunk *next = h->next;
        free(h);
        h = next;
    }
    a->head = NULL;
}

/* ---- errors ---- */

static px_err vfail(tctx *c, uint32_t line, uint32_t col, px_err code, const char *fmt, va_list ap)
{
    if (!c->em)
        return code;
    char *text = c->em->text;
    size_t cap = sizeof(c->em->text);
    int w = line ? snprintf(text, cap, "%s:%u:%u: ", c->file, line, col)
                 : snprintf(text, cap, "%s: ", c->file);
    if (w >= 0 && (size_t)w < cap)
        vsnprintf(text + w, cap - (size_t)w, fmt, ap);
    return code;
}

px_err pxt_fail(tctx *c, const tnode *n, px_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_err e = vfail(c, n ? n->line : 0, n ? n->col : 0, code, fmt, ap);
    va_end(ap);
    return e;
}

px_err pxt_fail_at(tctx *c, px_topo_mark m, px_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_err e = vfail(c, m.line, m.col, code, fmt, ap);
    va_end(ap);
    return e;
}

px_err pxt_nomem(tctx *c)
{
    return pxt_fail(c, NULL, PX_E_NOMEM, "out of memory while loading the topology");
}

/* ---- building the tree from libyaml events ---- */

typedef struct builder {
    tctx *c;
    tnode *stack[PX_TOPO_MAX_DEPTH + 1];
    tnode *first[PX_TOPO_MAX_DEPTH + 1]; /* children of stack[i] as a list until its end */
    tnode *last[PX_TOPO_MAX_DEPTH + 1];
    uint32_t kids[PX_TOPO_MAX_DEPTH + 1];
    unsigned depth;
    uint32_t count;
} builder;

static uint32_t mark_u32(size_t v)
{
    return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)v + 1;
}

static px_err new_node(builder *b, const yaml_event_t *ev, tnode_type type, tnode **out)
{
    tctx *c = b->c;
    uint32_t line = mark_u32(ev->start_mark.line), col = mark_u32(ev->start_mark.column);
    if (++b->count > PX_TOPO_MAX_YAML_NODES)
        return pxt_fail_at(c, (px_topo_mark){line, col}, PX_E_TOOBIG,
                           "document has more than %u YAML values; expected a smaller topology",
                           PX_TOPO_MAX_YAML_NODES);
    tnode *n = px_tarena_alloc(&c->tree, sizeof(*n));
    if (!n)
        return pxt_nomem(c);
    n->type = type;
    n->line = line;
    n->col = col;
    if (b->depth == 0) {
        c->root = n;
    } else {
        unsigned d = b->depth - 1;
        if (b->last[d])
            b->last[d]->next = n;
        else
            b->first[d] = n;
        b->last[d] = n;
        b->kids[d]++;
    }
    *out = n;
    return PX_OK;
}

static px_err push(builder *b, const yaml_event_t *ev, tnode_type type)
{
    if (b->depth >= PX_TOPO_MAX_DEPTH)
        return pxt_fail_at(
            b->c, (px_topo_mark){mark_u32(ev->start_mark.line), mark_u32(ev->start_mark.column)},
            PX_E_TOOBIG, "nesting deeper than %u levels; expected a flatter document",
            PX_TOPO_MAX_DEPTH);
    tnode *n;
    px_err err = new_node(b, ev, type, &n);
    if (err)
        return err;
    b->stack[b->depth] = n;
    b->first[b->depth] = NULL;
    b->last[b->depth] = NULL;
    b->kids[b->depth] = 0;
    b->depth++;
    return PX_OK;
}

/* Turn the sibling list collected while building into an array. */
static px_err pop(builder *b)
{
    unsigned d = --b->depth;
    tnode *n = b->stack[d];
    tnode *first = b->first[d];
    uint32_t count = b->kids[d];
    n->n = n->type == TN_MAP ? count / 2 : count;
    if (count == 0)
        return PX_OK;
    n->kids = px_tarena_array(&b->c->tree, count, sizeof(*n->kids));
    if (!n->kids)
        return pxt_nomem(b->c);
    uint32_t i = 0;
    for (tnode *k = first; k; k = k->next)
        n->kids[i++] = k;
    return PX_OK;
}

static px_err add_scalar(builder *b, const yaml_event_t *ev)
{
    tctx *c = b->c;
    size_t len = ev->data.scalar.length;
    px_topo_mark m = {mark_u32(ev->start_mark.line), mark_u32(ev->start_mark.column)};
    if (len > PX_TOPO_MAX_STRING)
        return pxt_fail_at(c, m, PX_E_TOOBIG, "value is %zu bytes long; expected at most %u", len,
                           PX_TOPO_MAX_STRING);
    if (memchr(ev->data.scalar.value, 0, len))
        return pxt_fail_at(c, m, PX_E_CONFIG,
                           "value contains a NUL character; expected text without \\0");
    tnode *n;
    px_err err = new_node(b, ev, TN_SCALAR, &n);
    if (err)
        return err;
    n->str = px_tarena_alloc(&c->tree, len + 1);
    if (!n->str)
        return pxt_nomem(c);
    memcpy(n->str, ev->data.scalar.value, len);
    n->len = (uint32_t)len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return PX_OK;
}

/* libyaml reader errors carry a byte offset, not a mark. */
static px_topo_mark offset_mark(const char *buf, size_t len, size_t off)
{
    px_topo_mark m = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            m.line++;
            m.col = 1;
        } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
            m.col++;
        }
    }
    return m;
}

static px_err syntax_error(tctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return pxt_nomem(c);
    if (p->error == YAML_READER_ERROR)
        return pxt_fail_at(c, offset_mark(buf, len, p->problem_offset), PX_E_CONFIG,
                           "unreadable text: %s; expected UTF-8 YAML",
                           p->problem ? p->problem : "bad input");
    px_topo_mark m = {mark_u32(p->problem_mark.line), mark_u32(p->problem_mark.column)};
    const char *hint = "";
    if (p->problem_mark.index < len && buf[p->problem_mark.index] == '\t')
        hint = " (hint: indent with spaces; YAML does not allow tabs there)";
    if (p->context)
        return pxt_fail_at(c, m, PX_E_CONFIG, "invalid YAML: %s %s; expected well-formed YAML%s",
                           p->problem ? p->problem : "error", p->context, hint);
    return pxt_fail_at(c, m, PX_E_CONFIG, "invalid YAML: %s; expected well-formed YAML%s",
                       p->problem ? p->problem : "error", hint);
}

px_err pxt_yaml_parse(tctx *c, const char *buf, size_t len)
{
    if (len > PX_TOPO_MAX_FILE)
        return pxt_fail(c, NULL, PX_E_TOOBIG, "file is %zu bytes; expected at most %u", len,
                        PX_TOPO_MAX_FILE);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return pxt_nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);

    builder b = {.c = c};
    px_err err = PX_OK;
    unsigned docs = 0;
    bool done = false;
    while (!done && !err) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            err = syntax_error(c, &p, buf, len);
            break;
        }
        px_topo_mark m = {mark_u32(ev.start_mark.line), mark_u32(ev.start_mark.column)};
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++ > 0)
                err = pxt_fail_at(c, m, PX_E_CONFIG,
                                  "a second YAML document; expected one topology per file");
            break;
        case YAML_ALIAS_EVENT:
            /* Refusing aliases outright is what makes expansion bombs
             * impossible; kinds and defaults cover the sharing they give. */
            err = pxt_fail_at(c, m, PX_E_CONFIG,
                              "YAML alias *%s is not supported; expected the value written out "
                              "(hint: share settings through kinds: or defaults:)",
                              (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT:
            err = add_scalar(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            err = push(&b, &ev, TN_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            err = push(&b, &ev, TN_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            err = pop(&b);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return err;
}

/* ---- tree access ---- */

bool pxt_is_null(const tnode *n)
{
    if (!n)
        return true;
    if (n->type != TN_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *pxt_kind_str(const tnode *n)
{
    if (pxt_is_null(n))
        return "nothing";
    switch (n->type) {
    case TN_SEQ:
        return "a list";
    case TN_MAP:
        return "a mapping";
    default:
        return "a single value";
    }
}

tnode *pxt_map_get_key(const tnode *map, const char *key, tnode **key_out)
{
    if (!map || map->type != TN_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->n; i++) {
        tnode *k = map->kids[2 * i];
        if (k->type == TN_SCALAR && strcmp(k->str, key) == 0) {
            if (key_out)
                *key_out = k;
            return map->kids[2 * i + 1];
        }
    }
    return NULL;
}

tnode *pxt_map_get(const tnode *map, const char *key)
{
    return pxt_map_get_key(map, key, NULL);
}

/* ---- key checks ---- */

static void join_words(char *out, size_t cap, const char *const *words)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; words[i]; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", words[i]);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
}

const char *pxt_suggest(const char *s, const char *const *words)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; words[i]; i++) {
        unsigned d = px_edit_distance(s, words[i]);
        if (d < best_d) {
            best_d = d;
            best = words[i];
        }
    }
    return best;
}

/* Mistakes people coming from containerlab or QEMU make, with the fix. */
static const struct {
    const char *key;
    const char *hint;
} key_hints[] = {
    {"topology", "plexus has no containerlab topology: wrapper; put nodes, nets and the "
                 "rest at the top level"},
    {"links", "plexus has no links; attach guests to nets with nics, can, ivshmem or cxl"},
    {"<<", "YAML merge keys are not supported; share settings with kinds: or defaults:"},
    {"ram", "the key is memory"},
    {"mem", "the key is memory"},
    {"smp", "the key is cpus"},
    {"accel", "the key is accelerator"},
};

static px_err unknown_key(tctx *c, const tnode *k, const char *what, const char *const *allowed)
{
    char list[360];
    join_words(list, sizeof(list), allowed);
    for (size_t i = 0; i < sizeof(key_hints) / sizeof(key_hints[0]); i++)
        if (strcmp(k->str, key_hints[i].key) == 0)
            return pxt_fail(c, k, PX_E_CONFIG,
                            "unknown key \"%s\" in %s; expected one of: %s (hint: %s)", k->str,
                            what, list, key_hints[i].hint);
    const char *near = pxt_suggest(k->str, allowed);
    if (near)
        return pxt_fail(c, k, PX_E_CONFIG,
                        "unknown key \"%s\" in %s; expected one of: %s (hint: did you mean "
                        "\"%s\"?)",
                        k->str, what, list, near);
    return pxt_fail(c, k, PX_E_CONFIG, "unknown key \"%s\" in %s; expected one of: %s", k->str,
                    what, list);
}

px_err pxt_check_map(tctx *c, const tnode *n, const char *what, const char *const *allowed)
{
    if (pxt_is_null(n))
        return PX_OK;
    if (n->type != TN_MAP) {
        char list[360];
        join_words(list, sizeof(list), allowed);
        return pxt_fail(c, n, PX_E_CONFIG,
                        "wrong type for %s: got %s; expected a mapping with keys from: %s", what,
                        pxt_kind_str(n), list);
    }
    for (uint32_t j = 0; j < n->n; j++) {
        const tnode *k = n->kids[2 * j];
        if (k->type != TN_SCALAR)
            return pxt_fail(c, k, PX_E_CONFIG, "key in %s is %s; expected a plain word", what,
                            pxt_kind_str(k));
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(k->str, allowed[i]) == 0;
        if (!known)
            return unknown_key(c, k, what, allowed);
        /* Earlier keys are all distinct allowed words, so this stays short. */
        for (uint32_t i = 0; i < j; i++) {
            const tnode *prev = n->kids[2 * i];
            if (strcmp(prev->str, k->str) == 0)
                return pxt_fail(c, k, PX_E_CONFIG,
                                "duplicate key \"%s\" in %s (first at %u:%u); expected each key "
                                "once",
                                k->str, what, prev->line, prev->col);
        }
    }
    return PX_OK;
}

typedef struct keypos {
    const tnode *k;
    uint32_t pos;
} keypos;

static int keypos_cmp(const void *a, const void *b)
{
    const keypos *x = a, *y = b;
    int r = strcmp(x->k->str, y->k->str);
    if (r)
        return r;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

px_err pxt_check_name_map(tctx *c, const tnode *n, const char *section, const char *what,
                          uint32_t max)
{
    if (pxt_is_null(n))
        return PX_OK;
    if (n->type != TN_MAP)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "wrong type for %s: got %s; expected a mapping of %s names to their "
                        "settings",
                        section, pxt_kind_str(n), what);
    if (n->n > max)
        return pxt_fail(c, n, PX_E_TOOBIG, "%s has %u entries; expected at most %u", section, n->n,
                        max);
    char scratch[PX_TOPO_NAME_MAX];
    char label[96];
    snprintf(label, sizeof(label), "%s name", what);
    for (uint32_t j = 0; j < n->n; j++) {
        px_err err = pxt_get_name(c, n->kids[2 * j], label, scratch);
        if (err)
            return err;
    }
    if (n->n < 2)
        return PX_OK;
    /* Sorting keeps this n log n for the big maps (thousands of guests);
     * the duplicate reported is the first one in document order. */
    keypos *kp = malloc(sizeof(*kp) * n->n);
    if (!kp)
        return pxt_nomem(c);
    for (uint32_t j = 0; j < n->n; j++)
        kp[j] = (keypos){n->kids[2 * j], j};
    qsort(kp, n->n, sizeof(*kp), keypos_cmp);
    const tnode *dup = NULL, *first = NULL;
    uint32_t dup_pos = UINT32_MAX;
    for (uint32_t j = 1; j < n->n; j++) {
        if (strcmp(kp[j].k->str, kp[j - 1].k->str) != 0)
            continue;
        /* Only the second occurrence of a run can be the earliest repeat. */
        bool second = j < 2 || strcmp(kp[j - 2].k->str, kp[j].k->str) != 0;
        if (second && kp[j].pos < dup_pos) {
            dup_pos = kp[j].pos;
            dup = kp[j].k;
            first = kp[j - 1].k;
        }
    }
    free(kp);
    if (dup)
        return pxt_fail(c, dup, PX_E_CONFIG,
                        "duplicate %s name \"%s\" (first at %u:%u); expected unique names", what,
                        dup->str, first->line, first->col);
    return PX_OK;
}

px_err pxt_check_seq(tctx *c, const tnode *n, const char *what, uint32_t max)
{
    if (pxt_is_null(n))
        return PX_OK;
    if (n->type != TN_SEQ)
        return pxt_fail(c, n, PX_E_CONFIG, "wrong type for %s: got %s; expected a list", what,
                        pxt_kind_str(n));
    if (n->n > max)
        return pxt_fail(c, n, PX_E_TOOBIG, "%s has %u entries; expected at most %u", what, n->n,
                        max);
    return PX_OK;
}
