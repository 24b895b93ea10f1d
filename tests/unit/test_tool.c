/* Unit tests: coordinator/tool.c — the merge of node answers, and the TOOL
 * relay against a fake coordinator (the functions tool.c calls are defined
 * here: sends are encoded and decoded again, so every message the relay
 * produces is checked against the wire's limits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/coord.h"
#include "coordinator/plan.h"

/* ---- helpers ---- */

static bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80             ? 0
                   : (c & 0xE0) == 0xC0 ? 1
                   : (c & 0xF0) == 0xE0 ? 2
                   : (c & 0xF8) == 0xF0 ? 3
                                        : 9;
        if (k == 9 || i + k >= n + (k == 0))
            return false;
        for (size_t j = 1; j <= k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

static px_tool_answer ans(const char *node, int32_t code, const char *msg, const char *json)
{
    return (px_tool_answer){.node = node,
                            .answered = true,
                            .code = code,
                            .msg = px_str_c(msg ? msg : ""),
                            .json = px_str_c(json ? json : "")};
}

static px_tool_answer silent(const char *node)
{
    return (px_tool_answer){.node = node};
}

static px_tool_merged merged;

/* ---- merge ---- */

static void test_merge_all_ok(void **state)
{
    (void)state;
    px_tool_answer a[3] = {ans("home", 0, "bus b: frames 3", "{\"node\":\"home\"}"),
                           ans("m1", 0, "", ""), ans("m2", 0, "member m2: lost 0", "{\"n\":2}")};
    a[0].ep = px_str_c("tcp://10.0.0.1:7000");
    a[2].ep = px_str_c("tcp://other:1");
    a[2].key = px_str_c("KEYKEY");
    px_tool_merge(a, 3, &merged);
    assert_int_equal(merged.code, PX_OK);
    assert_string_equal(merged.msg, "bus b: frames 3\nmember m2: lost 0");
    assert_string_equal(merged.json, "[{\"node\":\"home\"},{\"n\":2}]");
    assert_string_equal(merged.ep, "tcp://10.0.0.1:7000");
    assert_string_equal(merged.key, "KEYKEY");
}

static void test_merge_empty(void **state)
{
    (void)state;
    px_tool_merge(NULL, 0, &merged);
    assert_int_equal(merged.code, PX_OK);
    assert_string_equal(merged.msg, "");
    assert_string_equal(merged.json, "[]");
    assert_string_equal(merged.ep, "");
    assert_string_equal(merged.key, "");
}

static void test_merge_first_error_first(void **state)
{
    (void)state;
    px_tool_answer a[4] = {ans("a", 0, "a fine", NULL), ans("b", PX_E_INVAL, "b: bad --drop", NULL),
                           ans("c", PX_E_NOTFOUND, "c: no guest x", NULL), silent("d")};
    px_tool_merge(a, 4, &merged);
    assert_int_equal(merged.code, PX_E_INVAL);
    assert_string_equal(merged.msg, "b: bad --drop\na fine\nc: no guest x\n"
                                    "node d: no answer (is it up? plexus nodes)");
}

static void test_merge_silent_node_is_timeout(void **state)
{
    (void)state;
    px_tool_answer a[3] = {ans("a", 0, "a fine", "{}"), silent("b"), silent("c")};
    px_tool_merge(a, 3, &merged);
    assert_int_equal(merged.code, PX_E_TIMEOUT);
    assert_string_equal(merged.msg, "node b: no answer (is it up? plexus nodes)\n"
                                    "node c: no answer (is it up? plexus nodes)\na fine");
    assert_string_equal(merged.json, "[{}]");
    /* What a silent node's fields hold does not count. */
    a[1].ep = px_str_c("tcp://x:1");
    px_tool_merge(a, 3, &merged);
    assert_string_equal(merged.ep, "");
}

/* Messages much longer than a reply holds: cut on a character boundary,
 * with the cut line, within PX_WIRE_MAX_STR, for every cut position. */
static void test_merge_cut_utf8(void **state)
{
    (void)state;
    static char big[3000];
    /* "é" is 2 bytes, "€" 3: shift the text by 0..3 bytes so the cut falls
     * inside characters of every width. */
    for (unsigned shift = 0; shift < 4; shift++) {
        size_t l = 0;
        for (unsigned i = 0; i < shift; i++)
            big[l++] = 'x';
        while (l + 3 < sizeof(big) - 1) {
            memcpy(big + l, (l / 3) % 2 ? "\xe2\x82\xac" : "\xc3\xa9x", 3);
            l += 3;
        }
        big[l] = '\0';
        px_tool_answer a[3] = {ans("a", 0, big, NULL), ans("b", 0, big, NULL),
                               ans("c", 0, "tail", NULL)};
        px_tool_merge(a, 3, &merged);
        size_t n = strlen(merged.msg);
        assert_true(n <= PX_WIRE_MAX_STR);
        assert_true(n > PX_WIRE_MAX_STR - 8);
        assert_true(utf8_valid(merged.msg, n));
        assert_non_null(strstr(merged.msg, "[cut: a reply holds at most 4096 bytes]"));
        assert_null(strstr(merged.msg, "tail"));
        assert_memory_equal(merged.msg, big, 100);
    }
    /* Exactly full: no cut. */
    static char exact[PX_WIRE_MAX_STR + 1];
    memset(exact, 'y', PX_WIRE_MAX_STR);
    exact[PX_WIRE_MAX_STR] = '\0';
    px_tool_answer one = ans("a", 0, exact, NULL);
    px_tool_merge(&one, 1, &merged);
    assert_int_equal(strlen(merged.msg), PX_WIRE_MAX_STR);
    assert_null(strstr(merged.msg, "[cut"));
}

static void test_merge_json_too_big(void **state)
{
    (void)state;
    static char big[3000];
    memset(big, ' ', sizeof(big) - 3);
    big[0] = '"';
    big[sizeof(big) - 3] = '"';
    big[sizeof(big) - 2] = '\0';
    px_tool_answer a[3] = {ans("a", 0, "", big), ans("b", 0, "", big), ans("c", 0, "", "7")};
    px_tool_merge(a, 3, &merged);
    assert_int_equal(merged.code, PX_OK);
    size_t n = strlen(merged.json);
    assert_true(n <= PX_WIRE_MAX_STR);
    assert_int_equal(merged.json[0], '[');
    assert_int_equal(merged.json[n - 1], ']');
    assert_int_equal(n, 1 + strlen(big) + 1 + 1 + 1); /* [a,7] */
    assert_string_equal(merged.json + n - 3, ",7]");
    assert_string_equal(merged.msg,
                        "node b: JSON answer left out (2998 bytes; a reply holds 4096)");
}

/* ---- a fake coordinator for the relay ---- */

#define MAX_SENT 256

typedef struct sent {
    px_peer to;
    uint8_t *buf;
    px_msg *msg;
} sent;

static sent sends[MAX_SENT];
static unsigned n_sends;
static uint64_t now_ms = 1000;
static px_lab *the_lab;
static bool has[3][2]; /* host x net */

uint64_t px_coord_now_ms(const px_coord *c)
{
    (void)c;
    return now_ms;
}

px_cnode *px_coord_node(px_coord *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].name, name) == 0)
            return &c->nodes[i];
    return NULL;
}

void px_coord_send(px_coord *c, const px_peer *to, px_msg *msg)
{
    (void)c;
    px_wbuf wb = {0};
    px_errmsg em = {{0}};
    if (!msg->env.seq)
        msg->env.seq = 1000 + n_sends;
    px_err err = px_wire_encode(&wb, msg, &em);
    if (err)
        fail_msg("the relay sent a message the wire refuses: %s", em.text);
    assert_true(n_sends < MAX_SENT);
    sent *s = &sends[n_sends++];
    s->to = *to;
    s->buf = wb.data; /* the decoded strings point here */
    s->msg = malloc(sizeof(*s->msg));
    assert_non_null(s->msg);
    size_t used = 0;
    assert_int_equal(px_wire_decode(wb.data, wb.len, &used, s->msg, &em), PX_OK);
    assert_int_equal(used, wb.len);
}

px_lab *px_lab_find(px_coord *c, const char *name)
{
    (void)c;
    return the_lab && strcmp(the_lab->name, name) == 0 ? the_lab : NULL;
}

bool px_lab_host_has_net(const px_lab *lab, uint32_t h, uint32_t n)
{
    (void)lab;
    return has[h][n];
}

uint32_t px_lab_net_find(const px_lab *lab, const char *name)
{
    for (uint32_t n = 0; n < lab->plan.n_nets; n++)
        if (strcmp(px_topo_ref_name(lab->topo, lab->plan.nets[n]), name) == 0)
            return n;
    return UINT32_MAX;
}

static void sends_clear(void)
{
    for (unsigned i = 0; i < n_sends; i++) {
        free(sends[i].buf);
        free(sends[i].msg);
    }
    n_sends = 0;
}

static const char topo_text[] = "name: lab1\n"
                                "nets:\n"
                                "  bus0: {type: can_bus}\n"
                                "  bus1: {type: can_bus}\n"
                                "nodes:\n"
                                "  a: {image: builtin:tiny, can: [bus0]}\n"
                                "  b: {image: builtin:tiny, can: [bus0]}\n"
                                "  c: {image: builtin:tiny, can: [bus1]}\n";

static const char cli_key[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

typedef struct fixture {
    px_coord c;
    px_lab lab;
    px_plan_host hosts[3];
    px_topo_ref nets[2];
    px_peer cli;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->c.scratch = malloc(sizeof(px_msg));
    px_errmsg em = {{0}};
    if (!f->c.scratch ||
        px_topo_load_buffer("t.yaml", topo_text, strlen(topo_text), &f->lab.topo, &em) != PX_OK)
        return -1;
    snprintf(f->lab.name, sizeof(f->lab.name), "lab1");
    const char *names[3] = {"n1", "n2", "n3"};
    for (uint32_t i = 0; i < 3; i++) {
        snprintf(f->hosts[i].name, sizeof(f->hosts[i].name), "%s", names[i]);
        px_cnode *n = &f->c.nodes[f->c.n_nodes++];
        snprintf(n->name, sizeof(n->name), "%s", names[i]);
        n->state = PX_NODE_UP;
        n->peer.id_len = 1;
        n->peer.id[0] = (uint8_t)('1' + i);
    }
    f->lab.plan.n_hosts = 3;
    f->lab.plan.hosts = f->hosts;
    if (!px_topo_find_net(f->lab.topo, "bus0", &f->nets[0]) ||
        !px_topo_find_net(f->lab.topo, "bus1", &f->nets[1]))
        return -1;
    f->lab.plan.n_nets = 2;
    f->lab.plan.nets = f->nets;
    memset(has, 0, sizeof(has));
    has[0][0] = has[1][0] = true; /* bus0: home n1, member n2 */
    has[2][1] = true;             /* bus1: n3 alone */
    the_lab = &f->lab;
    f->cli.id_len = 3;
    memcpy(f->cli.id, "cli", 3);
    snprintf(f->cli.key_z85, sizeof(f->cli.key_z85), "%s", cli_key);
    now_ms = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    px_tool_fini(&f->c);
    sends_clear();
    px_topo_free(f->lab.topo);
    free(f->c.scratch);
    free(f);
    the_lab = NULL;
    return 0;
}

static void request(fixture *f, const char *lab, const char *net, uint64_t seq)
{
    px_msg m;
    memset(&m, 0, sizeof(m.env) + sizeof(m.body.tool));
    m.env.type = PX_MSG_TOOL;
    m.env.seq = seq;
    m.body.tool.lab = px_str_c(lab);
    m.body.tool.net = px_str_c(net);
    m.body.tool.args[m.body.tool.n_args++] = px_str_c("can");
    m.body.tool.args[m.body.tool.n_args++] = px_str_c("stats");
    m.body.tool.json = 1;
    px_tool_on_request(&f->c, &f->cli, &m);
}

static void answer(fixture *f, uint32_t node, uint64_t id, int32_t code, const char *msg,
                   const char *json, const char *ep)
{
    px_msg_tool_reply r = {.id = id,
                           .code = code,
                           .message = px_str_c(msg),
                           .json = px_str_c(json),
                           .endpoint = px_str_c(ep)};
    px_tool_on_reply(&f->c, &f->c.nodes[node], &r);
}

static const px_msg *sent_to(const px_peer *p, unsigned from)
{
    for (unsigned i = from; i < n_sends; i++)
        if (sends[i].to.id_len == p->id_len && memcmp(sends[i].to.id, p->id, p->id_len) == 0)
            return sends[i].msg;
    return NULL;
}

static void test_relay_forwards_and_merges(void **state)
{
    fixture *f = *state;
    request(f, "lab1", "bus0", 77);
    assert_int_equal(n_sends, 2); /* n1 and n2, not n3 */
    const px_msg *t1 = sent_to(&f->c.nodes[0].peer, 0), *t2 = sent_to(&f->c.nodes[1].peer, 0);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_null(sent_to(&f->c.nodes[2].peer, 0));
    assert_int_equal(t1->env.type, PX_MSG_TOOL);
    uint64_t id = t1->body.tool.id;
    assert_true(id != 0);
    assert_int_equal(t2->body.tool.id, id);
    assert_true(px_str_eq(t1->body.tool.client, cli_key));
    assert_true(px_str_eq(t1->body.tool.lab, "lab1"));
    assert_true(px_str_eq(t1->body.tool.net, "bus0"));
    assert_int_equal(t1->body.tool.n_args, 2);
    assert_true(px_str_eq(t1->body.tool.args[1], "stats"));
    assert_int_equal(t1->body.tool.json, 1);

    answer(f, 1, id, 0, "member n2", "{\"node\":\"n2\"}", "");
    assert_int_equal(n_sends, 2);         /* still waiting for n1 */
    answer(f, 1, id, 0, "twice", "", ""); /* a second answer from n2 counts for nothing */
    answer(f, 2, id, 0, "n3 was not asked", "", "");
    assert_int_equal(n_sends, 2);
    answer(f, 0, id, 0, "home n1", "{\"node\":\"n1\"}", "tcp://n1:9");
    assert_int_equal(n_sends, 3);
    const px_msg *r = sent_to(&f->cli, 2);
    assert_non_null(r);
    assert_int_equal(r->env.type, PX_MSG_TOOL_REPLY);
    assert_int_equal(r->env.seq, 77);
    assert_int_equal(r->body.tool_reply.code, PX_OK);
    assert_true(px_str_eq(r->body.tool_reply.message, "home n1\nmember n2"));
    assert_true(px_str_eq(r->body.tool_reply.json, "[{\"node\":\"n1\"},{\"node\":\"n2\"}]"));
    assert_true(px_str_eq(r->body.tool_reply.endpoint, "tcp://n1:9"));

    /* Late answers find no relay; a new request gets a new id. */
    answer(f, 0, id, 0, "late", "", "");
    assert_int_equal(n_sends, 3);
    request(f, "lab1", "bus1", 78);
    assert_int_equal(n_sends, 4);
    assert_true(sends[3].msg->body.tool.id != id);
}

static void test_relay_unknown_lab_and_net(void **state)
{
    fixture *f = *state;
    request(f, "nolab", "bus0", 5);
    assert_int_equal(n_sends, 1);
    const px_msg_tool_reply *r = &sends[0].msg->body.tool_reply;
    assert_int_equal(sends[0].msg->env.seq, 5);
    assert_int_equal(r->code, PX_E_NOTFOUND);
    assert_true(px_str_eq(r->message, "no lab named nolab; 'plexus status' lists them"));
    request(f, "lab1", "bus9", 6);
    assert_int_equal(n_sends, 2);
    r = &sends[1].msg->body.tool_reply;
    assert_int_equal(r->code, PX_E_NOTFOUND);
    assert_true(px_str_eq(r->message, "lab lab1 has no net bus9; its nets: bus0, bus1"));
    assert_true(px_str_eq(r->json, ""));
}

static void test_relay_timeout(void **state)
{
    fixture *f = *state;
    request(f, "lab1", "bus0", 9);
    uint64_t id = sends[0].msg->body.tool.id;
    answer(f, 0, id, 0, "home n1", "", "tcp://n1:9");
    px_tool_tick(&f->c);
    assert_int_equal(n_sends, 2); /* not yet */
    now_ms += PX_TOOL_TIMEOUT_MS - 1;
    px_tool_tick(&f->c);
    assert_int_equal(n_sends, 2);
    now_ms += 1;
    px_tool_tick(&f->c);
    assert_int_equal(n_sends, 3);
    const px_msg *r = sends[2].msg;
    assert_int_equal(r->env.seq, 9);
    assert_int_equal(r->body.tool_reply.code, PX_E_TIMEOUT);
    assert_true(px_str_eq(r->body.tool_reply.message,
                          "node n2: no answer (is it up? plexus nodes)\nhome n1"));
    assert_true(px_str_eq(r->body.tool_reply.endpoint, "tcp://n1:9"));
    px_tool_tick(&f->c);
    assert_int_equal(n_sends, 3); /* answered once */
}

static void test_relay_node_down(void **state)
{
    fixture *f = *state;
    f->c.nodes[1].state = PX_NODE_LOST;
    request(f, "lab1", "bus0", 11);
    assert_int_equal(n_sends, 1); /* only n1 asked */
    answer(f, 0, sends[0].msg->body.tool.id, PX_E_INVAL, "n1: bad args", "", "");
    assert_int_equal(n_sends, 2); /* no wait for a node that is not up */
    const px_msg_tool_reply *r = &sends[1].msg->body.tool_reply;
    assert_int_equal(r->code, PX_E_INVAL);
    assert_true(px_str_eq(r->message, "n1: bad args\nnode n2: no answer (is it up? plexus nodes)"));

    /* Nobody up: the answer comes at once. */
    f->c.nodes[2].state = PX_NODE_LOST;
    request(f, "lab1", "bus1", 12);
    assert_int_equal(n_sends, 3);
    assert_int_equal(sends[2].msg->body.tool_reply.code, PX_E_TIMEOUT);
    assert_int_equal(sends[2].msg->env.seq, 12);
}

static void test_relay_busy(void **state)
{
    fixture *f = *state;
    for (unsigned i = 0; i < PX_TOOL_MAX_PENDING; i++)
        request(f, "lab1", "bus1", 100 + i);
    assert_int_equal(n_sends, PX_TOOL_MAX_PENDING); /* one TOOL each, to n3 */
    request(f, "lab1", "bus1", 999);
    assert_int_equal(n_sends, PX_TOOL_MAX_PENDING + 1);
    const px_msg *r = sends[PX_TOOL_MAX_PENDING].msg;
    assert_int_equal(r->env.type, PX_MSG_TOOL_REPLY);
    assert_int_equal(r->env.seq, 999);
    assert_int_equal(r->body.tool_reply.code, PX_E_AGAIN);
    /* One answered frees a slot. */
    answer(f, 2, sends[0].msg->body.tool.id, 0, "ok", "", "");
    request(f, "lab1", "bus1", 1000);
    assert_int_equal(sends[n_sends - 1].msg->env.type, PX_MSG_TOOL);
    /* The rest are freed by px_tool_fini in teardown (ASan checks). */
}

/* Node messages at their wire limit: the merged reply still encodes
 * (px_coord_send here fails the test otherwise). */
static void test_relay_long_answers(void **state)
{
    fixture *f = *state;
    static char text[PX_WIRE_MAX_STR + 1];
    memset(text, 'z', PX_WIRE_MAX_STR);
    request(f, "lab1", "bus0", 21);
    uint64_t id = sends[0].msg->body.tool.id;
    answer(f, 0, id, 0, text, text, "");
    answer(f, 1, id, 0, text, text, "");
    assert_int_equal(n_sends, 3);
    const px_msg_tool_reply *r = &sends[2].msg->body.tool_reply;
    assert_true(r->message.len <= PX_WIRE_MAX_STR);
    assert_true(px_str_eq(r->json, "[]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_all_ok),
        cmocka_unit_test(test_merge_empty),
        cmocka_unit_test(test_merge_first_error_first),
        cmocka_unit_test(test_merge_silent_node_is_timeout),
        cmocka_unit_test(test_merge_cut_utf8),
        cmocka_unit_test(test_merge_json_too_big),
        cmocka_unit_test_setup_teardown(test_relay_forwards_and_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_unknown_lab_and_net, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_node_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_long_answers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
