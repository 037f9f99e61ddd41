/* test_router.c - the router's configuration and deployment decision
 * (EA_TEST_NEEDS_NET: the router is built with the server's libraries).
 * The minimal file loads with every field as written; bad files are
 * refused with the exact file:line:column and key path; the decision table
 * (defaults and overridden weights); `edgeagent route` as a user runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/router.h"
#include "harness.h"

/* The file of issue 11, section 1: must load exactly as written. */
static const char minimal_yaml[] =
    "upstreams:\n"
    "  - name: local\n"
    "    kind: local\n"
    "  - name: cloud\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:9000/v1\n"
    "    model: gpt-4o-mini\n"
    "    api_key_env: OPENAI_API_KEY\n"
    "    tier: cloud\n"
    "    price: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n"
    "    timeouts: {connect_ms: 500, first_token_ms: 2000, idle_ms: 5000, total_ms: 30000}\n"
    "tasks:\n"
    "  - name: intent\n"
    "    latency_sensitive: true\n"
    "    handles_private_data: true\n"
    "    request_volume_per_day: 5000\n"
    "    max_latency_ms: 300\n"
    "    mode: auto\n"
    "    privacy: local_only\n"
    "  - name: reasoning\n"
    "    requires_large_model: true\n"
    "    mode: prefer_cloud\n"
    "    privacy: redact\n";

static struct ea_router_config *parse_ok(const char *yaml)
{
    struct ea_router_config *cfg = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_config_parse(yaml, strlen(yaml), "edgeagent.yaml", &cfg, &e), &e);
    ASSERT(cfg);
    return cfg;
}

static void config_minimal(void)
{
    struct ea_router_config *cfg = parse_ok(minimal_yaml);
    ASSERT_STR_EQ(cfg->file, "edgeagent.yaml");
    ASSERT_EQ(cfg->n_server, 0);
    ASSERT(!cfg->privacy && !cfg->ledger);
    ASSERT_EQ(cfg->n_upstreams, 2);
    const struct ea_upstream_config *l = &cfg->upstreams[0], *c = &cfg->upstreams[1];
    ASSERT_STR_EQ(l->name, "local");
    ASSERT_EQ(l->kind, EA_UPSTREAM_LOCAL);
    ASSERT_EQ(l->tier, EA_TIER_DEVICE);
    ASSERT(!l->base_url && !l->model && !l->api_key_env && !l->ca_file && !l->n_headers);
    ASSERT_EQ(l->pos.line, 2);
    ASSERT_EQ(l->pos.column, 5);
    ASSERT_STR_EQ(c->name, "cloud");
    ASSERT_EQ(c->kind, EA_UPSTREAM_OPENAI);
    ASSERT_STR_EQ(c->base_url, "http://127.0.0.1:9000/v1");
    ASSERT_STR_EQ(c->model, "gpt-4o-mini");
    ASSERT_STR_EQ(c->api_key_env, "OPENAI_API_KEY");
    ASSERT_EQ(c->tier, EA_TIER_CLOUD);
    ASSERT_NEAR(c->price.input_per_mtok, 0.15, 1e-12);
    ASSERT_NEAR(c->price.output_per_mtok, 0.60, 1e-12);
    ASSERT_EQ(c->timeouts.connect_ms, 500);
    ASSERT_EQ(c->timeouts.first_token_ms, 2000);
    ASSERT_EQ(c->timeouts.idle_ms, 5000);
    ASSERT_EQ(c->timeouts.total_ms, 30000);
    ASSERT_EQ(c->max_concurrent, 0);
    ASSERT_EQ(c->fallback_on, EA_FALLBACK_ALL);
    ASSERT_EQ(c->pos.line, 4);
    ASSERT_EQ(cfg->n_tasks, 2);
    const struct ea_task_config *t = &cfg->tasks[0], *r = &cfg->tasks[1];
    ASSERT_STR_EQ(t->name, "intent");
    ASSERT(t->profile.latency_sensitive && t->profile.handles_private_data);
    ASSERT(!t->profile.requires_large_model);
    ASSERT_U64_EQ(t->profile.request_volume_per_day, 5000);
    ASSERT_EQ(t->profile.max_latency_ms, 300);
    ASSERT_EQ(t->mode, EA_MODE_AUTO);
    ASSERT_EQ(t->privacy, EA_PRIVACY_LOCAL_ONLY);
    ASSERT_EQ(t->n_upstreams, 0);
    ASSERT_STR_EQ(r->name, "reasoning");
    ASSERT(r->profile.requires_large_model);
    ASSERT(!r->profile.latency_sensitive && !r->profile.handles_private_data);
    ASSERT_U64_EQ(r->profile.request_volume_per_day, 0);
    ASSERT_EQ(r->profile.max_latency_ms, 0);
    ASSERT_EQ(r->mode, EA_MODE_PREFER_CLOUD);
    ASSERT_EQ(r->privacy, EA_PRIVACY_REDACT);
    ASSERT_EQ(r->pos.line, 20);
    /* routing absent: the framework's weights */
    struct ea_router_weights w;
    ea_router_weights_default(&w);
    ASSERT_EQ(cfg->routing.weights.latency_sensitive, w.latency_sensitive);
    ASSERT_EQ(cfg->routing.weights.private_data, 2);
    ASSERT_EQ(cfg->routing.weights.high_volume, 1);
    ASSERT_EQ(cfg->routing.weights.large_model, 3);
    ASSERT_U64_EQ(cfg->routing.weights.volume_threshold, 1000);
    ASSERT(!cfg->routing.has_default_task);
    ASSERT(ea_router_config_task(cfg, "reasoning") == r);
    ASSERT(ea_router_config_upstream(cfg, "cloud") == c);
    ASSERT(!ea_router_config_task(cfg, "cloud") && !ea_router_config_upstream(cfg, "intent"));
    /* the decision of each task: EDGE and CLOUD */
    struct ea_route_decision d;
    ea_router_decide(&t->profile, &cfg->routing.weights, &d);
    ASSERT_EQ(d.target, EA_ROUTE_EDGE);
    ea_router_decide(&r->profile, &cfg->routing.weights, &d);
    ASSERT_EQ(d.target, EA_ROUTE_CLOUD);
    ea_router_config_destroy(cfg);
    ea_router_config_destroy(NULL);
}

static void config_full(void)
{
    static const char yaml[] =
        "# every optional key\n"
        "server:\n"
        "  port: 8081\n"
        "  host: 0.0.0.0\n"
        "  log-content: false\n"
        "upstreams:\n"
        "  - name: phone\n"
        "    kind: local\n"
        "    model: models/qwen.gguf\n"
        "    max_concurrent: 2\n"
        "    fallback_on: [overloaded, not_loaded]\n"
        "    timeouts: {total_ms: 900}\n"
        "  - name: lan-box\n"
        "    kind: openai\n"
        "    base_url: https://10.0.0.2:8443/v1\n"
        "    model: default\n"
        "    tier: edge-node\n"
        "    ca_file: /etc/edgeagent/lan-ca.pem\n"
        "    headers:\n"
        "      X-Team: agents\n"
        "      OpenAI-Organization: org-1\n"
        "    fallback_on: []\n"
        "  - name: big\n"
        "    kind: openai\n"
        "    base_url: https://api.example.com/v1\n"
        "    model: large\n"
        "routing:\n"
        "  default_task: chat\n"
        "  defaults: {mode: prefer_edge, privacy: redact, max_latency_ms: 1500}\n"
        "  weights:\n"
        "    latency_sensitive: 1\n"
        "    private_data: 4\n"
        "    high_volume: 0\n"
        "    large_model: 5\n"
        "    volume_threshold: 100\n"
        "tasks:\n"
        "  - name: wake\n"
        "    mode: edge_only\n"
        "    upstreams: [phone, lan-box]\n"
        "  - name: chat\n"
        "    mode: hybrid\n"
        "    privacy: allow\n"
        "    max_latency_ms: 800\n"
        "privacy:\n"
        "  patterns: [email, phone]\n"
        "  redact_with: \"[redacted]\"\n"
        "ledger:\n"
        "  path: /var/lib/edgeagent/ledger.db\n";
    struct ea_router_config *cfg = parse_ok(yaml);
    ASSERT_EQ(cfg->n_server, 3);
    ASSERT_STR_EQ(cfg->server[0].key, "port");
    ASSERT_STR_EQ(cfg->server[0].value, "8081");
    ASSERT_EQ(cfg->server[0].pos.line, 3);
    ASSERT_EQ(cfg->server[0].pos.column, 9);
    ASSERT_STR_EQ(cfg->server[1].value, "0.0.0.0");
    ASSERT_STR_EQ(cfg->server[2].key, "log-content");
    ASSERT_STR_EQ(cfg->server[2].value, "false");
    const struct ea_upstream_config *ph = &cfg->upstreams[0], *lan = &cfg->upstreams[1];
    ASSERT_STR_EQ(ph->model, "models/qwen.gguf");
    ASSERT_EQ(ph->max_concurrent, 2);
    ASSERT_EQ(ph->fallback_on, EA_FALLBACK_OVERLOADED | EA_FALLBACK_NOT_LOADED);
    /* total_ms alone: the defaults above it are brought down to it */
    ASSERT_EQ(ph->timeouts.total_ms, 900);
    ASSERT_EQ(ph->timeouts.connect_ms, 900);
    ASSERT_EQ(ph->timeouts.first_token_ms, 900);
    ASSERT_EQ(ph->timeouts.idle_ms, 900);
    ASSERT_EQ(lan->tier, EA_TIER_EDGE_NODE);
    ASSERT_STR_EQ(lan->ca_file, "/etc/edgeagent/lan-ca.pem");
    ASSERT_EQ(lan->n_headers, 2);
    ASSERT_STR_EQ(lan->headers[0].name, "X-Team");
    ASSERT_STR_EQ(lan->headers[0].value, "agents");
    ASSERT_STR_EQ(lan->headers[1].name, "OpenAI-Organization");
    ASSERT_EQ(lan->fallback_on, 0);
    ASSERT(!lan->api_key_env);
    /* defaults of an upstream that sets none */
    const struct ea_upstream_config *big = &cfg->upstreams[2];
    ASSERT_EQ(big->tier, EA_TIER_CLOUD);
    ASSERT_EQ(big->timeouts.connect_ms, 2000);
    ASSERT_EQ(big->timeouts.first_token_ms, 10000);
    ASSERT_EQ(big->timeouts.idle_ms, 30000);
    ASSERT_EQ(big->timeouts.total_ms, 120000);
    ASSERT(big->price.input_per_mtok == 0 && big->price.output_per_mtok == 0);
    ASSERT_EQ(big->fallback_on, EA_FALLBACK_ALL);
    const struct ea_routing_config *r = &cfg->routing;
    ASSERT(r->has_default_task);
    ASSERT_STR_EQ(cfg->tasks[r->default_task].name, "chat");
    ASSERT_EQ(r->weights.latency_sensitive, 1);
    ASSERT_EQ(r->weights.private_data, 4);
    ASSERT_EQ(r->weights.high_volume, 0);
    ASSERT_EQ(r->weights.large_model, 5);
    ASSERT_U64_EQ(r->weights.volume_threshold, 100);
    /* routing.defaults fill what a task leaves out */
    const struct ea_task_config *wake = &cfg->tasks[0], *chat = &cfg->tasks[1];
    ASSERT_EQ(wake->mode, EA_MODE_EDGE_ONLY);
    ASSERT_EQ(wake->privacy, EA_PRIVACY_REDACT);
    ASSERT_EQ(wake->profile.max_latency_ms, 1500);
    ASSERT_EQ(wake->n_upstreams, 2);
    ASSERT_EQ(wake->upstreams[0], 0);
    ASSERT_EQ(wake->upstreams[1], 1);
    ASSERT_EQ(chat->mode, EA_MODE_HYBRID);
    ASSERT_EQ(chat->privacy, EA_PRIVACY_ALLOW);
    ASSERT_EQ(chat->profile.max_latency_ms, 800);
    /* privacy and ledger: carried as trees with positions */
    ASSERT(cfg->privacy && cfg->privacy->kind == EA_CONFIG_MAPPING);
    ASSERT_EQ(cfg->privacy->n, 2);
    ASSERT_STR_EQ(cfg->privacy->keys[0].scalar, "patterns");
    ASSERT_EQ(cfg->privacy->items[0].kind, EA_CONFIG_SEQUENCE);
    ASSERT_EQ(cfg->privacy->items[0].n, 2);
    ASSERT_STR_EQ(cfg->privacy->items[0].items[1].scalar, "phone");
    ASSERT_EQ(cfg->privacy->items[0].items[1].pos.line, 45);
    ASSERT_EQ(cfg->privacy->items[0].items[1].pos.column, 21);
    ASSERT_STR_EQ(cfg->privacy->items[1].scalar, "[redacted]");
    ASSERT(cfg->privacy->items[1].quoted);
    ASSERT(cfg->ledger && cfg->ledger->n == 1);
    ASSERT_STR_EQ(cfg->ledger->items[0].scalar, "/var/lib/edgeagent/ledger.db");
    ASSERT(!cfg->ledger->items[0].quoted);
    ea_router_config_destroy(cfg);
}

static void config_empty(void)
{
    static const char *const empties[] = {"", "# nothing\n", "---\n", "~\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        struct ea_router_config *cfg = parse_ok(empties[i]);
        ASSERT_EQ(cfg->n_tasks + cfg->n_server, 0);
        /* no upstream configured: the local engine, named local */
        ASSERT_EQ(cfg->n_upstreams, 1);
        ASSERT_STR_EQ(cfg->upstreams[0].name, "local");
        ASSERT_EQ(cfg->upstreams[0].kind, EA_UPSTREAM_LOCAL);
        ASSERT_EQ(cfg->upstreams[0].fallback_on, EA_FALLBACK_ALL);
        ASSERT_EQ(cfg->routing.weights.large_model, 3);
        ea_router_config_destroy(cfg);
    }
}

/* Each bad file, and the one line it must be refused with. */
static const struct {
    const char *yaml, *msg;
} bad_files[] = {
    {"upstream:\n  - name: x\n",
     "edgeagent.yaml:1:1: upstream: unknown key (expected one of: server, upstreams, tasks, routing, privacy, ledger)"},
    {"- a\n- b\n",
     "edgeagent.yaml:1:1: the top level must be a mapping of sections (server, upstreams, tasks, routing, privacy, ledger)"},
    {"tasks:\n  - name: a\n  - name: b\n    mode: fast\n",
     "edgeagent.yaml:4:11: tasks[1].mode: 'fast' is not one of auto, edge_only, prefer_edge, prefer_cloud, cloud_only, hybrid, cascade"},
    {"tasks:\n  - name: a\n    latency_sensitive: yes\n",
     "edgeagent.yaml:3:24: tasks[0].latency_sensitive: 'yes' is not true or false"},
    {"tasks:\n  - name: a\n    latency_sensitive: \"true\"\n",
     "edgeagent.yaml:3:24: tasks[0].latency_sensitive: 'true' is not true or false (write it without quotes)"},
    {"tasks:\n  - name: a\n    request_volume_per_day: -5\n",
     "edgeagent.yaml:3:29: tasks[0].request_volume_per_day: '-5' is not a whole number"},
    {"tasks:\n  - name: a\n    request_volume_per_day: 99999999999999999999999\n",
     "edgeagent.yaml:3:29: tasks[0].request_volume_per_day: 99999999999999999999999 is out of range (0..1000000000000)"},
    {"tasks:\n  - name: a\n    max_latency_ms: 0\n",
     "edgeagent.yaml:3:21: tasks[0].max_latency_ms: 0 is out of range (1..86400000)"},
    {"tasks:\n  - name: a\n    max_latency_ms:\n",
     "edgeagent.yaml:3:20: tasks[0].max_latency_ms: missing value (expected a whole number)"},
    {"tasks:\n  - name: a\n    speed: 3\n",
     "edgeagent.yaml:3:5: tasks[0].speed: unknown key (expected one of: name, latency_sensitive, requires_large_model, "
     "handles_private_data, request_volume_per_day, max_latency_ms, mode, privacy, local_only_edge_node, upstreams)"},
    {"tasks:\n  - mode: auto\n",
     "edgeagent.yaml:2:5: tasks[0]: missing 'name'"},
    {"tasks:\n  - name: a\n  - name: a\n",
     "edgeagent.yaml:3:11: tasks[1].name: 'a' is already the name of tasks[0]"},
    {"tasks:\n  - name: my task\n",
     "edgeagent.yaml:2:11: tasks[0].name: 'my task' is not a name (1 to 64 letters, digits, '.', '_', '-')"},
    {"tasks:\n  - name: auto\n",
     "edgeagent.yaml:2:11: tasks[0].name: 'auto' is reserved (requests use it to ask for the default task)"},
    {"tasks:\n  - name: a\n    privacy: secret\n",
     "edgeagent.yaml:3:14: tasks[0].privacy: 'secret' is not one of local_only, redact, allow"},
    {"upstreams:\n  - name: l\n    kind: local\ntasks:\n  - name: a\n    upstreams: [l, cloud]\n",
     "edgeagent.yaml:6:20: tasks[0].upstreams[1]: no upstream is named 'cloud'"},
    {"upstreams:\n  - name: l\n    kind: local\ntasks:\n  - name: a\n    upstreams: [l, l]\n",
     "edgeagent.yaml:6:20: tasks[0].upstreams[1]: 'l' is listed twice"},
    {"upstreams:\n  - name: l\n    kind: local\ntasks:\n  - name: a\n    mode: cloud_only\n",
     "edgeagent.yaml:6:11: tasks[0].mode: cloud_only, but no upstream of tier cloud is configured"},
    {"upstreams:\n  - {name: c, kind: openai, base_url: 'https://x/v1', model: m}\n"
     "tasks:\n  - name: a\n    mode: edge_only\n",
     "edgeagent.yaml:5:11: tasks[0].mode: edge_only, but no upstream of tier device or edge-node is configured"},
    {"upstreams:\n  - {name: c, kind: openai, base_url: 'https://x/v1', model: m}\n"
     "tasks:\n  - name: a\n    mode: cascade\n",
     "edgeagent.yaml:5:11: tasks[0].mode: cascade, but no upstream of tier device or edge-node is configured"},
    {"upstreams:\n  - {name: l, kind: local}\n  - {name: c, kind: openai, base_url: 'https://x/v1', model: m}\n"
     "tasks:\n  - name: a\n    upstreams: [c]\n    privacy: local_only\n",
     "edgeagent.yaml:7:14: tasks[0].privacy: local_only, but no upstream of tier device (edge-node ones need local_only_edge_node: true) is among its upstreams"},
    {"upstreams:\n  - {name: n, kind: openai, base_url: 'http://10.0.0.2/v1', model: m, tier: edge-node}\n"
     "tasks:\n  - name: a\n    privacy: local_only\n",
     "edgeagent.yaml:5:14: tasks[0].privacy: local_only, but no upstream of tier device (edge-node ones need local_only_edge_node: true) is configured"},
    {"upstreams:\n  - name: x\n    kind: local\n    base_url: http://127.0.0.1:9000/v1\n",
     "edgeagent.yaml:4:5: upstreams[0].base_url: a local upstream runs in this process and has no base_url (kind openai has)"},
    {"upstreams:\n  - name: x\n    kind: local\n    api_key_env: KEY\n",
     "edgeagent.yaml:4:5: upstreams[0].api_key_env: a local upstream runs in this process and has no api_key_env (kind openai has)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    model: m\n",
     "edgeagent.yaml:2:5: upstreams[0]: missing 'base_url' (kind openai needs the endpoint, e.g. https://api.openai.com/v1)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://api.openai.com/v1\n",
     "edgeagent.yaml:2:5: upstreams[0]: missing 'model' (the model name the endpoint serves)"},
    {"upstreams:\n  - name: x\n",
     "edgeagent.yaml:2:5: upstreams[0]: missing 'kind' (local or openai)"},
    {"upstreams:\n  - name: x\n    kind: anthropic\n",
     "edgeagent.yaml:3:11: upstreams[0].kind: 'anthropic' is not one of local, openai"},
    {"upstreams:\n  - {name: x, kind: local}\n  - {name: x, kind: local}\n",
     "edgeagent.yaml:3:12: upstreams[1].name: 'x' is already the name of upstreams[0]"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: ftp://h/v1\n    model: m\n",
     "edgeagent.yaml:4:15: upstreams[0].base_url: 'ftp://h/v1' is not an http:// or https:// URL"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://user:sk-secret@h/v1\n    model: m\n",
     "edgeagent.yaml:4:15: upstreams[0].base_url: credentials do not go in the URL: name an environment variable with api_key_env"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: http:///v1\n    model: m\n",
     "edgeagent.yaml:4:15: upstreams[0].base_url: the URL has no host"},
    /* a key pasted into the file is refused and never echoed */
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n    api_key: sk-abc123\n",
     "edgeagent.yaml:6:5: upstreams[0].api_key: keys are never read from this file: put the key in an environment "
     "variable and name it with api_key_env"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n    api_key_env: sk-abc123\n",
     "edgeagent.yaml:6:18: upstreams[0].api_key_env: not an environment variable name (letters, digits, '_'); "
     "the key itself never goes in this file"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    headers: {Authorization: Bearer sk-abc123}\n",
     "edgeagent.yaml:6:15: upstreams[0].headers.Authorization: keys are never read from this file: put the key in an "
     "environment variable and name it with api_key_env"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    headers: {Host: evil}\n",
     "edgeagent.yaml:6:15: upstreams[0].headers.Host: this header is set by the client itself"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n    tier: moon\n",
     "edgeagent.yaml:6:11: upstreams[0].tier: 'moon' is not one of device, edge-node, cloud"},
    {"upstreams:\n  - name: x\n    kind: local\n    tier: cloud\n",
     "edgeagent.yaml:4:11: upstreams[0].tier: a local upstream runs on this device: its tier is device"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    price: {input_per_mtok: -0.1}\n",
     "edgeagent.yaml:6:29: upstreams[0].price.input_per_mtok: -0.1 is out of range (0..1e+06)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    price: {input_per_mtok: nan}\n",
     "edgeagent.yaml:6:29: upstreams[0].price.input_per_mtok: 'nan' is not a number"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    price: {input: 1}\n",
     "edgeagent.yaml:6:13: upstreams[0].price.input: unknown key (expected one of: input_per_mtok, output_per_mtok)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    timeouts: {first_token_ms: 5000, total_ms: 1000}\n",
     "edgeagent.yaml:6:32: upstreams[0].timeouts.first_token_ms: 5000 is more than total_ms (1000)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    timeouts: {connect_ms: 0}\n",
     "edgeagent.yaml:6:28: upstreams[0].timeouts.connect_ms: 0 is out of range (1..86400000)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    timeouts: 500\n",
     "edgeagent.yaml:6:15: upstreams[0].timeouts: expected a mapping of timeouts, got a value"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    fallback_on: [timeout, http_418]\n",
     "edgeagent.yaml:6:28: upstreams[0].fallback_on[1]: 'http_418' is not one of connect_error, timeout, http_429, "
     "http_5xx, overloaded, not_loaded, context_too_long"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: https://h/v1\n    model: m\n"
     "    fallback_on: [timeout, timeout]\n",
     "edgeagent.yaml:6:28: upstreams[0].fallback_on[1]: 'timeout' is listed twice"},
    {"upstreams:\n  - name: x\n    kind: local\n    max_concurrent: 0\n",
     "edgeagent.yaml:4:21: upstreams[0].max_concurrent: 0 is out of range (1..65536)"},
    {"upstreams:\n  - name: x\n    kind: openai\n    base_url: http://h/v1\n    model: m\n    ca_file: ca.pem\n",
     "edgeagent.yaml:6:14: upstreams[0].ca_file: ca_file needs an https:// base_url"},
    {"upstreams:\n  name: x\n",
     "edgeagent.yaml:2:3: upstreams: expected a list of upstreams, got a mapping"},
    {"server:\n  --port: 8080\n",
     "edgeagent.yaml:2:3: server.--port: write the option's long name without dashes"},
    {"server:\n  port: [1, 2]\n",
     "edgeagent.yaml:2:9: server.port: expected a string, got a list"},
    {"server:\n  config: other.yaml\n",
     "edgeagent.yaml:2:3: server.config: a configuration file cannot name another one"},
    {"routing:\n  weights: {large_model: -1}\n",
     "edgeagent.yaml:2:26: routing.weights.large_model: '-1' is not a whole number"},
    {"routing:\n  weights: {cloud: 1}\n",
     "edgeagent.yaml:2:13: routing.weights.cloud: unknown key (expected one of: latency_sensitive, private_data, "
     "high_volume, large_model, volume_threshold)"},
    {"routing:\n  default_task: chat\n",
     "edgeagent.yaml:2:17: routing.default_task: no task is named 'chat'"},
    {"routing:\n  defaults: {mode: fastest}\n",
     "edgeagent.yaml:2:20: routing.defaults.mode: 'fastest' is not one of auto, edge_only, prefer_edge, prefer_cloud, "
     "cloud_only, hybrid, cascade"},
    /* YAML itself */
    {"tasks:\n  - name: a\n    mode: auto\n    mode: hybrid\n",
     "edgeagent.yaml:4:5: key 'mode' appears twice in this mapping (first on line 3)"},
    {"base: &b {kind: local}\nupstreams:\n  - *b\n",
     "edgeagent.yaml:1:7: anchors (&name) are not supported"},
    {"upstreams:\n  - *b\n",
     "edgeagent.yaml:2:5: aliases (*name) are not supported; write the value out"},
    {"tasks: !!seq []\n",
     "edgeagent.yaml:1:8: tags (!name) are not supported"},
    {"tasks: []\n---\ntasks: []\n",
     "edgeagent.yaml:2:1: only one YAML document is allowed (a second '---')"},
    {"tasks:\n  - name: a\n   mode: auto\n",
     "edgeagent.yaml:3:4: did not find expected '-' indicator while parsing a block collection"},
    {"tasks: [\n",
     "edgeagent.yaml:2:1: did not find expected node content while parsing a flow node"},
    {"tasks:\n  - name: \"a\\0b\"\n",
     "edgeagent.yaml:2:11: a value holds a NUL character"},
    {"{[a]: 1}\n",
     "edgeagent.yaml:1:2: a key must be a plain name, not a list or mapping"},
    {"tasks:\n  - name: caf\xc3\n",
     "edgeagent.yaml:2:15: invalid trailing UTF-8 octet"},
    {"tasks:\n  - name: \xff\n",
     "edgeagent.yaml:2:11: invalid leading UTF-8 octet"},
};

static void config_bad(void)
{
    int wrong = 0;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        struct ea_router_config *cfg = (void *)1;
        struct ea_error e = {0};
        ea_status s = ea_router_config_parse(bad_files[i].yaml, strlen(bad_files[i].yaml), "edgeagent.yaml",
                                             &cfg, &e);
        if (s == EA_OK)
            FAIL("bad file %zu loaded:\n%s", i, bad_files[i].yaml);
        ASSERT_EQ(s, EA_EFORMAT);
        ASSERT(cfg == NULL);
        if (strcmp(e.msg, bad_files[i].msg) != 0) {
            fprintf(stderr, "bad file %zu:\n%s\nmessage:  %s\nexpected: %s\n", i, bad_files[i].yaml, e.msg,
                    bad_files[i].msg);
            wrong++;
        }
        ASSERT(!strstr(e.msg, "sk-abc123")); /* secrets are never echoed */
    }
    ASSERT_EQ(wrong, 0);
}

static void config_limits(void)
{
    struct ea_router_config *cfg = NULL;
    struct ea_error e = {0};
    /* nesting past EA_CONFIG_MAX_DEPTH, inside a carried section */
    char deep[256] = "privacy: ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    ASSERT_EQ(ea_router_config_parse(deep, strlen(deep), "d.yaml", &cfg, &e), EA_ETOOBIG);
    ASSERT_STR_EQ(e.msg, "d.yaml:1:41: nested deeper than the limit (32)");
    /* a mapping with more pairs than the cap */
    size_t cap = 16 * 2000;
    char *big = malloc(cap), *o = big;
    o += sprintf(o, "ledger:\n");
    for (int i = 0; i < 1100; i++)
        o += sprintf(o, "  k%d: 1\n", i);
    ASSERT_EQ(ea_router_config_parse(big, strlen(big), "b.yaml", &cfg, &e), EA_ETOOBIG);
    ASSERT_STR_EQ(e.msg, "b.yaml:1026:3: more keys in one mapping than the limit (1024)");
    free(big);
    ASSERT_EQ(ea_router_config_parse("a: 1", EA_CONFIG_MAX_BYTES + 1, "x.yaml", &cfg, &e), EA_ETOOBIG);
    ASSERT(cfg == NULL);
}

static void config_load_file(void)
{
    const char *path = ea_test_tmp_path("router_min.yaml");
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    fputs(minimal_yaml, f);
    fclose(f);
    struct ea_router_config *cfg = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_config_load(path, &cfg, &e), &e);
    ASSERT_STR_EQ(cfg->file, path);
    ASSERT_EQ(cfg->n_tasks, 2);
    ea_router_config_destroy(cfg);
    ASSERT_EQ(ea_router_config_load("/nonexistent/edgeagent.yaml", &cfg, &e), EA_ENOTFOUND);
    ASSERT(strstr(e.msg, "/nonexistent/edgeagent.yaml") == e.msg);
    remove(path);
}

/* Every allocation of a full load failed in turn: ENOMEM, never a crash
 * (the sanitizer build also checks nothing leaks). */
static void config_alloc_failures(void)
{
    const char *yaml = minimal_yaml;
    for (long n = 1;; n++) {
        struct ea_router_config *cfg = NULL;
        struct ea_error e = {0};
        ea_alloc_fail_after(n);
        ea_status s = ea_router_config_parse(yaml, strlen(yaml), "m.yaml", &cfg, &e);
        ea_alloc_fail_after(0);
        if (s == EA_OK) {
            ASSERT(n > 10); /* the load allocates; the hook must have been hit */
            ASSERT_EQ(cfg->n_tasks, 2);
            ea_router_config_destroy(cfg);
            break;
        }
        ASSERT_EQ(s, EA_ENOMEM);
        ASSERT(cfg == NULL);
        ASSERT(n < 10000);
    }
}

/* The example of docs/ROUTING.md (its first ```yaml block) loads as written
 * and its three tasks get the targets the comments say. */
static void docs_example(void)
{
    const char *src = getenv("EA_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/ROUTING.md", src ? src : ".");
    size_t n;
    char *md = ea_test_read_file(path, &n);
    if (!md)
        FAIL("%s: cannot read (run from the source tree or set EA_SOURCE_DIR)", path);
    char *start = strstr(md, "```yaml\n");
    ASSERT(start);
    start += 8;
    char *end = strstr(start, "\n```\n");
    ASSERT(end);
    struct ea_router_config *cfg = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_config_parse(start, (size_t)(end - start) + 1, "ROUTING.md", &cfg, &e), &e);
    ASSERT_EQ(cfg->n_server, 3);
    ASSERT_EQ(cfg->n_upstreams, 3);
    ASSERT_EQ(cfg->n_tasks, 3);
    ASSERT(cfg->routing.has_default_task);
    ASSERT_STR_EQ(cfg->tasks[cfg->routing.default_task].name, "assistant");
    ASSERT_STR_EQ(ea_router_config_upstream(cfg, "cloud")->api_key_env, "OPENAI_API_KEY");
    ASSERT_EQ(ea_router_config_upstream(cfg, "lan-box")->tier, EA_TIER_EDGE_NODE);
    ASSERT(cfg->privacy && cfg->ledger);
    static const struct {
        const char *task;
        enum ea_route_target target;
    } want[] = {{"intent", EA_ROUTE_EDGE}, {"reasoning", EA_ROUTE_CLOUD}, {"assistant", EA_ROUTE_HYBRID}};
    for (size_t i = 0; i < 3; i++) {
        const struct ea_task_config *t = ea_router_config_task(cfg, want[i].task);
        ASSERT(t);
        struct ea_route_decision d;
        ea_router_decide(&t->profile, &cfg->routing.weights, &d);
        ASSERT_STR_EQ(ea_route_target_name(d.target), ea_route_target_name(want[i].target));
    }
    ASSERT_EQ(ea_router_config_task(cfg, "reasoning")->profile.max_latency_ms, 2000); /* routing.defaults */
    ea_router_config_destroy(cfg);
    free(md);
}

/* ---- the decision ------------------------------------------------------ */

static void decide_table(void)
{
    static const struct {
        const char *what;
        struct ea_task_profile p;
        enum ea_route_target target;
        int edge, cloud;
        unsigned n_reasons;
    } rows[] = {
        {"wake-word: latency-sensitive, private, 5000/day", {true, false, true, 5000, 0}, EA_ROUTE_EDGE, 5, 0, 4},
        {"large model only", {false, true, false, 0, 0}, EA_ROUTE_CLOUD, 0, 3, 2},
        {"latency-sensitive + large model", {true, true, false, 0, 0}, EA_ROUTE_HYBRID, 2, 3, 3},
        {"nothing scores: the tie goes to the cloud", {false, false, false, 0, 0}, EA_ROUTE_CLOUD, 0, 0, 1},
        {"volume exactly 1000 does not count", {false, false, false, 1000, 0}, EA_ROUTE_CLOUD, 0, 0, 1},
        {"volume 1001 counts", {false, false, false, 1001, 0}, EA_ROUTE_EDGE, 1, 0, 2},
        {"private data only", {false, false, true, 0, 5}, EA_ROUTE_EDGE, 2, 0, 2},
        {"everything", {true, true, true, 1000000, 100}, EA_ROUTE_HYBRID, 5, 3, 5},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct ea_route_decision d;
        ea_router_decide(&rows[i].p, NULL, &d);
        if (d.target != rows[i].target || d.edge_score != rows[i].edge || d.cloud_score != rows[i].cloud ||
            d.n_reasons != rows[i].n_reasons)
            FAIL("%s: got %s %d/%d (%u reasons), want %s %d/%d (%u)", rows[i].what, ea_route_target_name(d.target),
                 (int)d.edge_score, (int)d.cloud_score, d.n_reasons, ea_route_target_name(rows[i].target),
                 rows[i].edge, rows[i].cloud, rows[i].n_reasons);
        ASSERT_EQ(d.reasons[d.n_reasons - 1].factor, EA_FACTOR_RULE);
        ASSERT_EQ(d.reasons[d.n_reasons - 1].side, d.target);
        int edge = 0, cloud = 0;
        for (unsigned k = 0; k + 1 < d.n_reasons; k++)
            *(d.reasons[k].side == EA_ROUTE_EDGE ? &edge : &cloud) += d.reasons[k].points;
        ASSERT_EQ(edge, d.edge_score); /* the reasons add up to the scores */
        ASSERT_EQ(cloud, d.cloud_score);
    }
    /* the wake-word reasons, as printed */
    struct ea_task_profile p = {true, false, true, 5000, 0};
    struct ea_route_decision d;
    ea_router_decide(&p, NULL, &d);
    static const char *const want[] = {"latency-sensitive: edge +2", "handles private data: edge +2",
                                       "volume 5000/day > 1000: edge +1", "edge 5 > cloud 0: EDGE"};
    char line[160];
    for (unsigned k = 0; k < 4; k++)
        ASSERT_STR_EQ(ea_route_reason_format(&d.reasons[k], &d, &p, NULL, line, sizeof line), want[k]);
    struct ea_task_profile h = {true, true, false, 0, 0};
    ea_router_decide(&h, NULL, &d);
    ASSERT_STR_EQ(ea_route_reason_format(&d.reasons[1], &d, &h, NULL, line, sizeof line),
                  "requires a large model: cloud +3");
    ASSERT_STR_EQ(ea_route_reason_format(&d.reasons[2], &d, &h, NULL, line, sizeof line),
                  "edge 2 and cloud 3 both > 0: HYBRID");
}

static void decide_weights(void)
{
    /* weights from a file: private data alone outweighs nothing, a large
     * model's weight 0 switches the factor off, the threshold moves */
    static const char yaml[] = "routing:\n  weights: {private_data: 7, large_model: 0, volume_threshold: 10}\n";
    struct ea_router_config *cfg = parse_ok(yaml);
    const struct ea_router_weights *w = &cfg->routing.weights;
    ASSERT_EQ(w->latency_sensitive, 2); /* not given: the default */
    struct ea_route_decision d;
    struct ea_task_profile big = {false, true, true, 0, 0};
    ea_router_decide(&big, w, &d); /* HYBRID with the defaults; EDGE here */
    ASSERT_EQ(d.target, EA_ROUTE_EDGE);
    ASSERT_EQ(d.edge_score, 7);
    ASSERT_EQ(d.cloud_score, 0);
    ASSERT_EQ(d.n_reasons, 2); /* a factor weighted 0 adds no reason */
    ea_router_decide(&big, NULL, &d);
    ASSERT_EQ(d.target, EA_ROUTE_HYBRID);
    struct ea_task_profile vol = {false, false, false, 11, 0};
    ea_router_decide(&vol, w, &d);
    ASSERT_EQ(d.target, EA_ROUTE_EDGE);
    char line[160];
    ASSERT_STR_EQ(ea_route_reason_format(&d.reasons[0], &d, &vol, w, line, sizeof line),
                  "volume 11/day > 10: edge +1");
    ea_router_decide(&vol, NULL, &d);
    ASSERT_EQ(d.target, EA_ROUTE_CLOUD);
    /* heavier cloud: latency-sensitive + private (4) vs large model (9) is
     * still HYBRID (both > 0), edge alone loses nothing */
    struct ea_router_weights heavy;
    ea_router_weights_default(&heavy);
    heavy.large_model = 9;
    struct ea_task_profile both = {true, true, true, 0, 0};
    ea_router_decide(&both, &heavy, &d);
    ASSERT_EQ(d.target, EA_ROUTE_HYBRID);
    ASSERT_EQ(d.cloud_score, 9);
    ea_router_config_destroy(cfg);
}

/* ---- the CLI ----------------------------------------------------------- */

static char *route(const char *args, int want_rc, char **errout)
{
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' route %s", ea_test_binary(), args);
    int rc = ea_test_run(cmd, &out, &err);
    if (rc != want_rc)
        FAIL("route %s: exit %d (want %d)\nstdout: %s\nstderr: %s", args, rc, want_rc, out ? out : "",
             err ? err : "");
    if (errout)
        *errout = err;
    else
        free(err);
    return out;
}

static void cli_route(void)
{
    char *out = route("--latency-sensitive --private --volume 5000", 0, NULL);
    ASSERT_STR_EQ(out, "target:      EDGE\nedge score:  5\ncloud score: 0\nreasons:\n"
                       "  latency-sensitive: edge +2\n  handles private data: edge +2\n"
                       "  volume 5000/day > 1000: edge +1\n  edge 5 > cloud 0: EDGE\n");
    free(out);
    out = route("--large-model --json", 0, NULL);
    ASSERT_STR_EQ(out, "{\"target\":\"CLOUD\",\"edge_score\":0,\"cloud_score\":3,\"reasons\":"
                       "[\"requires a large model: cloud +3\",\"edge 0 <= cloud 3: CLOUD\"]}\n");
    free(out);
    /* --json holds exactly the four keys, for a JSON parser too */
    out = route("--latency-sensitive --large-model --max-latency-ms 250 --json | python3 -c 'import json,sys; "
                "d=json.load(sys.stdin); assert sorted(d)==[\"cloud_score\",\"edge_score\",\"reasons\",\"target\"], d; "
                "assert d[\"target\"]==\"HYBRID\" and d[\"edge_score\"]==2 and d[\"cloud_score\"]==3, d; "
                "assert len(d[\"reasons\"])==3, d; print(\"json ok\")'",
                0, NULL);
    ASSERT_STR_EQ(out, "json ok\n");
    free(out);
    /* a task of a file, with the file's weights; flags add to it */
    char path[4096]; /* ea_test_tmp_path's buffer is reused by ea_test_run */
    snprintf(path, sizeof path, "%s", ea_test_tmp_path("route.yaml"));
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    fputs(minimal_yaml, f);
    fputs("routing:\n  weights: {large_model: 1}\n", f);
    fclose(f);
    char args[4096];
    snprintf(args, sizeof args, "--task intent --config '%s'", path);
    out = route(args, 0, NULL);
    ASSERT(strstr(out, "task:        intent (mode auto, privacy local_only)\ntarget:      EDGE\n") == out);
    ASSERT(strstr(out, "budget:      300 ms per request"));
    ASSERT(strstr(out, "  volume 5000/day > 1000: edge +1\n"));
    free(out);
    snprintf(args, sizeof args, "--task reasoning --config '%s' --latency-sensitive --json", path);
    out = route(args, 0, NULL);
    ASSERT_STR_EQ(out, "{\"target\":\"HYBRID\",\"edge_score\":2,\"cloud_score\":1,\"reasons\":"
                       "[\"latency-sensitive: edge +2\",\"requires a large model: cloud +1\","
                       "\"edge 2 and cloud 1 both > 0: HYBRID\"]}\n");
    free(out);
    /* errors: usage (2), a bad file or an unknown task (1), one line each */
    char *err = NULL;
    free(route("--task intent", 2, &err));
    ASSERT_STR_EQ(err, "edgeagent: route: --task needs --config FILE (the file that defines the task)\n");
    free(err);
    free(route("--volume -3", 2, &err));
    ASSERT(strstr(err, "edgeagent: route: --volume") == err);
    free(err);
    free(route("--fast", 2, NULL));
    snprintf(args, sizeof args, "--task nope --config '%s'", path);
    free(route(args, 1, &err));
    ASSERT(strstr(err, "no task is named 'nope'"));
    free(err);
    f = fopen(path, "wb");
    ASSERT(f);
    fputs("tasks:\n  - name: a\n    mode: fast\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--config '%s'", path);
    free(route(args, 1, &err));
    char want[4096];
    snprintf(want, sizeof want, "edgeagent: route: %s:3:11: tasks[0].mode: 'fast' is not one of auto, "
             "edge_only, prefer_edge, prefer_cloud, cloud_only, hybrid, cascade\n", path);
    ASSERT_STR_EQ(err, want);
    free(err);
    remove(path);
}


/* ---- live state and the per-request plan -------------------------------- */

static const char plan_yaml[] =
    "upstreams:\n"
    "  - {name: local, kind: local}\n"
    "  - {name: lan, kind: openai, base_url: 'http://127.0.0.1:1/v1', model: m, tier: edge-node}\n"
    "  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:2/v1', model: m}\n"
    "  - {name: cloud2, kind: openai, base_url: 'http://127.0.0.1:3/v1', model: m}\n"
    "tasks:\n"
    "  - {name: intent, latency_sensitive: true, handles_private_data: true,\n"
    "     request_volume_per_day: 5000, max_latency_ms: 300}\n"
    "  - {name: big, requires_large_model: true}\n"
    "  - {name: both, latency_sensitive: true, requires_large_model: true, max_latency_ms: 1000}\n"
    "  - {name: edge, mode: edge_only}\n"
    "  - {name: cloudy, mode: cloud_only}\n"
    "  - {name: pick, mode: prefer_edge, upstreams: [cloud2, local]}\n";

static void input_default(struct ea_route_input *in, const struct ea_router_config *cfg,
                          const char *task)
{
    memset(in, 0, sizeof *in);
    in->task = task ? ea_router_config_task(cfg, task) : NULL;
    in->pinned = -1;
    in->allow_cloud = true;
    in->prompt_tokens = 20;
    in->max_tokens = 16;
    in->local.loaded = true;
    in->local.max_context = 512;
    in->local.max_running = 4;
}

/* The names of the plan, comma-separated. */
static const char *plan_names(const struct ea_router_config *cfg, const struct ea_route_plan *p)
{
    static char b[256];
    b[0] = '\0';
    for (uint32_t i = 0; i < p->n; i++) {
        strcat(b, i ? "," : "");
        strcat(b, cfg->upstreams[p->order[i]].name);
    }
    return b;
}

static void plan_modes(void)
{
    struct ea_router_config *cfg = parse_ok(plan_yaml);
    ea_router *r = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_create(cfg, NULL, &r, &e), &e);
    struct ea_route_input in;
    struct ea_route_plan p;
    /* auto: EDGE for the intent profile, edge side first in config order */
    input_default(&in, cfg, "intent");
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan,cloud,cloud2");
    ASSERT(p.has_decision && p.decision.target == EA_ROUTE_EDGE);
    ASSERT_EQ(p.target, EA_ROUTE_EDGE);
    ASSERT(!(p.hedge));
    ASSERT_EQ(p.budget_ms, 300u);
    /* auto: CLOUD for a large-model task */
    input_default(&in, cfg, "big");
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "cloud,cloud2,local,lan");
    ASSERT_EQ(p.target, EA_ROUTE_CLOUD);
    /* auto: HYBRID hedges the local engine with the first remote one */
    input_default(&in, cfg, "both");
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan,cloud,cloud2");
    ASSERT(p.hedge);
    ASSERT_EQ(p.target, EA_ROUTE_HYBRID);
    ASSERT_EQ(p.hedge_delay_ms, 500u); /* half the 1000 ms budget */
    /* edge_only / cloud_only keep one side */
    input_default(&in, cfg, "edge");
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan");
    input_default(&in, cfg, "cloudy");
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "cloud,cloud2");
    /* the task's own list, edge first */
    input_default(&in, cfg, "pick");
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,cloud2");
    /* allow_cloud false: no cloud on any path, even for cloud_only (nothing left) */
    input_default(&in, cfg, "big");
    in.allow_cloud = false;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan");
    ASSERT(strstr(p.reason, "2 cloud upstreams excluded") != NULL);
    input_default(&in, cfg, "cloudy");
    in.local_only = true;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_EQ(p.n, 0u);
    ASSERT_EQ(p.retry_after_ms, 0.0);
    /* local_only: the device only; the LAN box too when the task allows it */
    input_default(&in, cfg, NULL);
    in.local_only = true;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local");
    in.local_edge_node = true;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan");
    /* pinned */
    input_default(&in, cfg, NULL);
    in.pinned = 3;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "cloud2");
    ea_router_destroy(r);
    ea_router_config_destroy(cfg);
}

static void plan_local_state(void)
{
    struct ea_router_config *cfg = parse_ok(plan_yaml);
    ea_router *r = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_create(cfg, NULL, &r, &e), &e);
    struct ea_route_input in;
    struct ea_route_plan p;
    /* no statistics yet: assumed to fit */
    input_default(&in, cfg, "intent");
    in.max_tokens = 1000;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan,cloud,cloud2");
    /* with stats: 20 tokens at 1000 tok/s + 16 x 10 ms = 180 ms: fits 300 */
    input_default(&in, cfg, "intent");
    in.local.have_stats = true;
    in.local.prefill_tok_s = 1000;
    in.local.decode_step_ms = 10;
    in.local.mean_request_ms = 200;
    ASSERT_NEAR(ea_router_predict_local_ms(&in.local, 20, 16), 180.0, 1e-9);
    ea_router_plan(r, &in, 0, &p);
    ASSERT_EQ(p.order[0], 0u);
    /* the queue grows past the budget: the local engine goes last */
    in.local.running = 4;
    in.local.queue_depth = 3; /* (3+1) x 200 / 4 = 200 ms of waiting: 380 > 300 */
    ASSERT_NEAR(ea_router_predict_local_ms(&in.local, 20, 16), 380.0, 1e-9);
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "lan,cloud,cloud2,local");
    ASSERT(strstr(p.reason, "predicted 380 ms > budget 300 ms") != NULL);
    /* and back as it drains */
    in.local.queue_depth = 0;
    in.local.running = 1;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_EQ(p.order[0], 0u);
    /* a prompt past the local context, or no model: local dropped */
    in.prompt_tokens = 600;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "lan,cloud,cloud2");
    in.prompt_tokens = 20;
    in.local.loaded = false;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "lan,cloud,cloud2");
    /* ... unless nothing else may serve it (the attempt then reports why) */
    input_default(&in, cfg, "edge");
    in.local.loaded = false;
    in.pinned = 0;
    ea_router_plan(r, &in, 0, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local");
    ea_router_destroy(r);
    ea_router_config_destroy(cfg);
}

static void breaker_cycle(void)
{
    struct ea_router_config *cfg = parse_ok(plan_yaml);
    ea_router *r = NULL;
    struct ea_error e = {0};
    struct ea_router_params prm;
    ea_router_params_default(&prm);
    prm.breaker_failures = 3;
    prm.breaker_cooldown_ms = 100;
    prm.breaker_cooldown_max_ms = 250;
    ASSERT_OK(ea_router_create(cfg, &prm, &r, &e), &e);
    bool probe;
    double t = 1000;
    /* two failures and a success: still closed (consecutive resets) */
    for (int i = 0; i < 2; i++) {
        ASSERT(ea_router_begin(r, 2, t, &probe));
        ea_router_end(r, 2, EA_ATTEMPT_FAILED, -1, probe, t);
    }
    ASSERT(ea_router_begin(r, 2, t, &probe));
    ea_router_end(r, 2, EA_ATTEMPT_OK, 40, probe, t);
    struct ea_upstream_status st;
    ea_router_status(r, 2, t, &st);
    ASSERT_EQ(st.breaker, EA_BREAKER_CLOSED);
    ASSERT_EQ(st.consecutive_failures, 0u);
    /* three in a row open it; neutral outcomes do not count */
    for (int i = 0; i < 3; i++) {
        ASSERT(ea_router_begin(r, 2, t, &probe));
        ea_router_end(r, 2, EA_ATTEMPT_NEUTRAL, -1, probe, t);
        ASSERT(ea_router_begin(r, 2, t, &probe));
        ea_router_end(r, 2, EA_ATTEMPT_FAILED, -1, probe, t);
    }
    ea_router_status(r, 2, t, &st);
    ASSERT_EQ(st.breaker, EA_BREAKER_OPEN);
    ASSERT_NEAR(st.retry_after_ms, 100.0, 1e-9);
    ASSERT(!(ea_router_begin(r, 2, t + 50, &probe)));
    /* the plan drops it; with every cloud open, cloudy has nothing and says when */
    for (int i = 0; i < 3; i++) {
        ASSERT(ea_router_begin(r, 3, t, &probe));
        ea_router_end(r, 3, EA_ATTEMPT_FAILED, -1, probe, t);
    }
    struct ea_route_input in;
    struct ea_route_plan p;
    input_default(&in, cfg, "cloudy");
    ea_router_plan(r, &in, t + 60, &p);
    ASSERT_EQ(p.n, 0u);
    ASSERT_NEAR(p.retry_after_ms, 40.0, 1e-9);
    input_default(&in, cfg, "big"); /* cloud first, but both open: the edge serves */
    ea_router_plan(r, &in, t + 60, &p);
    ASSERT_STR_EQ(plan_names(cfg, &p), "local,lan");
    /* after the cool-down: one half-open probe at a time; its failure reopens longer */
    ea_router_status(r, 2, t + 100, &st);
    ASSERT_EQ(st.breaker, EA_BREAKER_HALF_OPEN);
    ASSERT(ea_router_begin(r, 2, t + 100, &probe));
    ASSERT(probe);
    bool probe2;
    ASSERT(!(ea_router_begin(r, 2, t + 101, &probe2)));
    ea_router_end(r, 2, EA_ATTEMPT_FAILED, -1, probe, t + 110);
    ea_router_status(r, 2, t + 110, &st);
    ASSERT_EQ(st.breaker, EA_BREAKER_OPEN);
    ASSERT_NEAR(st.retry_after_ms, 200.0, 1e-9); /* doubled */
    ASSERT(!(ea_router_begin(r, 2, t + 300, &probe)));
    /* the next probe succeeds: closed, cool-down back to its start */
    ASSERT(ea_router_begin(r, 2, t + 310, &probe));
    ASSERT(probe);
    ea_router_end(r, 2, EA_ATTEMPT_OK, 30, probe, t + 320);
    ea_router_status(r, 2, t + 320, &st);
    ASSERT_EQ(st.breaker, EA_BREAKER_CLOSED);
    ASSERT_EQ(st.breaker_opens, 2u);
    ASSERT_EQ(st.in_flight, 0u);
    ASSERT_EQ(st.n_ttft, 2u);
    ASSERT_NEAR(st.ttft_p50_ms, 30.0, 1e-9);
    ASSERT_NEAR(st.ttft_p95_ms, 40.0, 1e-9);
    ea_router_destroy(r);
    ea_router_config_destroy(cfg);
}

static void backoff_and_concurrency(void)
{
    const char *yaml = "upstreams:\n"
                       "  - {name: c, kind: openai, base_url: 'http://127.0.0.1:2/v1', model: m,\n"
                       "     max_concurrent: 2}\n";
    struct ea_router_config *cfg = parse_ok(yaml);
    ea_router *r = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_create(cfg, NULL, &r, &e), &e);
    bool probe;
    ASSERT(ea_router_begin(r, 0, 0, &probe));
    ASSERT(ea_router_begin(r, 0, 0, &probe));
    ASSERT(!(ea_router_begin(r, 0, 0, &probe))); /* max_concurrent */
    ea_router_end(r, 0, EA_ATTEMPT_OK, -1, false, 0);
    ASSERT(ea_router_begin(r, 0, 0, &probe));
    /* full jitter within base * 2^(n-1), capped; Retry-After wins */
    for (uint64_t rnd = 0; rnd < 5000; rnd += 7) {
        ASSERT(ea_router_backoff_ms(r, 1, 0, rnd) <= 100);
        ASSERT(ea_router_backoff_ms(r, 3, 0, rnd) <= 400);
        ASSERT(ea_router_backoff_ms(r, 30, 0, rnd) <= 2000);
    }
    ASSERT_EQ(ea_router_backoff_ms(r, 1, 3000, 1), 3000u);
    ea_router_destroy(r);
    ea_router_config_destroy(cfg);
    /* and more upstreams than a request could try is refused */
    char big[4096] = "upstreams:\n";
    for (int i = 0; i <= EA_CONFIG_MAX_UPSTREAMS; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "  - {name: u%d, kind: local}\n", i);
    struct ea_router_config *c2 = NULL;
    ASSERT_EQ(ea_router_config_parse(big, strlen(big), "u.yaml", &c2, &e), EA_EFORMAT);
    ASSERT(strstr(e.msg, "at most 16") != NULL);
}


static void config_breaker_retries(void)
{
    struct ea_router_config *cfg = parse_ok("routing:\n"
                                            "  breaker: {failures: 3, cooldown_ms: 200, max_cooldown_ms: 800}\n"
                                            "  retries: {max: 0, base_ms: 10, max_ms: 50}\n"
                                            "  hedge_min_ms: 20\n");
    const struct ea_router_params *p = &cfg->routing.params;
    ASSERT_EQ(p->breaker_failures, 3);
    ASSERT_EQ(p->breaker_cooldown_ms, 200);
    ASSERT_EQ(p->breaker_cooldown_max_ms, 800);
    ASSERT_EQ(p->retries, 0);
    ASSERT_EQ(p->retry_base_ms, 10);
    ASSERT_EQ(p->retry_max_ms, 50);
    ASSERT_EQ(p->hedge_min_ms, 20);
    ea_router *r = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_create(cfg, NULL, &r, &e), &e); /* takes them */
    ASSERT_EQ(ea_router_get_params(r)->breaker_failures, 3);
    ea_router_destroy(r);
    ea_router_config_destroy(cfg);
    /* defaults, and refusals with their position */
    cfg = parse_ok("");
    ASSERT_EQ(cfg->routing.params.breaker_failures, 5);
    ASSERT_EQ(cfg->routing.params.retries, 1);
    ea_router_config_destroy(cfg);
    const char *bad[][2] = {
        {"routing:\n  breaker: {failures: 0}\n", "b.yaml:2:23: routing.breaker.failures:"},
        {"routing:\n  retries: {max: 9}\n", "b.yaml:2:18: routing.retries.max:"},
        {"routing:\n  breaker: {cooldown_ms: 500, max_cooldown_ms: 100}\n",
         "b.yaml:2:12: routing.breaker: max_cooldown_ms (100) is below cooldown_ms (500)"},
        {"routing:\n  retries: {tries: 1}\n", "b.yaml:2:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = NULL;
        ASSERT_EQ(ea_router_config_parse(bad[i][0], strlen(bad[i][0]), "b.yaml", &cfg, &e), EA_EFORMAT);
        if (strncmp(e.msg, bad[i][1], strlen(bad[i][1])) != 0)
            FAIL("case %zu: '%s' does not start with '%s'", i, e.msg, bad[i][1]);
    }
}

EA_TESTS(EA_TEST(config_minimal), EA_TEST(config_full), EA_TEST(config_empty), EA_TEST(config_bad),
         EA_TEST(config_limits), EA_TEST(config_load_file), EA_TEST(config_alloc_failures),
         EA_TEST(docs_example), EA_TEST(decide_table), EA_TEST(decide_weights), EA_TEST(cli_route),
         EA_TEST(plan_modes), EA_TEST(plan_local_state), EA_TEST(breaker_cycle),
         EA_TEST(backoff_and_concurrency), EA_TEST(config_breaker_retries))
