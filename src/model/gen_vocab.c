/* gen_vocab.c - the built-in byte-level BPE vocabulary of gen-model.
 *
 * 256 byte tokens (GPT-2 byte-to-unicode mapping), merges learnt by plain BPE
 * on a small English text written for this purpose, then deterministic
 * pseudo-random merges of existing tokens until the vocabulary has the real
 * model's size, with the real model's special tokens at their real ids.
 * Tokenizing English with it is plausible; the rest is filler.
 * Does not hold: tokenization itself (src/tokenizer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/utf8.h"

static const char corpus[] =
    "Once upon a time there was a small robot that lived on a farm at the edge of a quiet "
    "town. Every morning the robot woke up before the sun, checked the weather, and helped "
    "the farmer carry water to the animals. The robot liked the work because it could "
    "learn something new each day. One day a storm came and the power went out in the "
    "whole town. People could not reach the cloud, their phones were slow, and the "
    "messages did not arrive. The robot still had its own small brain inside, so it "
    "could think without the network. It answered questions, kept a list of the "
    "things people needed, and made sure that private notes stayed on the farm. When "
    "the storm was over and the network came back, the robot sent only a short "
    "summary of what had happened. The farmer said that this was the best way to "
    "build a helper: fast when the answer is simple, careful with what belongs to "
    "people, and ready to ask a bigger model in the city when a question is hard. "
    "The children of the town wrote stories about the robot, and the teacher read "
    "them in the school every evening. They asked how many tokens the robot could "
    "read in a second, how much memory it needed, and whether it would still work "
    "if the sun did not shine for a week. The robot answered that it would use less "
    "power, think a little slower, and keep working until the light returned.\n"
    "def main():\n    print(\"hello world\")\n    return 0\n"
    "{\"name\": \"edge\", \"value\": 42, \"items\": [1, 2, 3]}\n";

static const char chatml_template[] =
    "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{%- endif %}";

static const char llama3_template[] =
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}";

static const char zephyr_template[] =
    "{%- for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + "
    "eos_token + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}"
    "{%- endif %}";

static const char *const smollm_specials[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
    "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
    "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<jupyter_script>",
    "<empty_output>"};

static const char *const qwen_specials[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>"};

static const char *const llama3_specials[] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};

static const char *const spm_specials[] = {"<unk>", "<s>", "</s>"};

/* GPT-2's reversible byte -> printable code point mapping. */
static uint32_t byte_to_cp(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
            n++;
    return 256 + n;
}

/* ---- string set -------------------------------------------------------- */

struct strset {
    uint32_t cap;
    int32_t *slots; /* token id + 1 */
    char **strs;    /* the vocabulary array it indexes */
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int32_t set_find(const struct strset *st, const char *s)
{
    uint32_t h = (uint32_t)fnv(s) & (st->cap - 1);
    while (st->slots[h]) {
        if (strcmp(st->strs[st->slots[h] - 1], s) == 0)
            return st->slots[h] - 1;
        h = (h + 1) & (st->cap - 1);
    }
    return -1;
}

static void set_add(struct strset *st, int32_t id)
{
    uint32_t h = (uint32_t)fnv(st->strs[id]) & (st->cap - 1);
    while (st->slots[h])
        h = (h + 1) & (st->cap - 1);
    st->slots[h] = id + 1;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- build ------------------------------------------------------------- */

struct layout {
    const char *const *specials;
    uint32_t n_specials;
    uint32_t special_base; /* id of specials[0] */
    uint32_t n_reserved;   /* extra generated specials right after them */
    uint32_t n_normal;     /* byte + merged tokens */
    uint32_t normal_base;
};

void ea__builtin_vocab_release(struct ea__builtin_vocab *v)
{
    if (!v)
        return;
    if (v->tokens)
        for (uint32_t i = 0; i < v->n_tokens; i++)
            ea_free(v->tokens[i]);
    if (v->merges)
        for (uint32_t i = 0; i < v->n_merges; i++)
            ea_free(v->merges[i]);
    ea_free(v->tokens);
    ea_free(v->types);
    ea_free(v->merges);
    memset(v, 0, sizeof *v);
}

static char *join(const char *a, const char *b, char sep)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = ea_malloc(na + nb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, na);
    size_t k = na;
    if (sep)
        s[k++] = sep;
    memcpy(s + k, b, nb);
    s[k + nb] = '\0';
    return s;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Word of the training corpus as a sequence of token ids. */
struct word {
    int32_t *ids;
    uint32_t n;
};

ea_status ea__builtin_vocab_build(const struct ea_model_preset *p, struct ea__builtin_vocab *v,
                                  struct ea_error *err)
{
    memset(v, 0, sizeof *v);
    struct layout L = {0};
    uint32_t N = p->n_vocab;
    v->bos = v->eos = v->unk = v->pad = -1;
    if (strcmp(p->tokenizer_pre, "qwen2") == 0) {
        L.specials = qwen_specials;
        L.n_specials = sizeof qwen_specials / sizeof *qwen_specials;
        L.special_base = 151643;
        L.normal_base = 0;
        L.n_normal = L.special_base;
        v->bos = 151643, v->eos = 151645, v->pad = 151643;
        v->chat_template = chatml_template;
    } else if (strcmp(p->tokenizer_pre, "llama-bpe") == 0) {
        L.specials = llama3_specials;
        L.n_specials = sizeof llama3_specials / sizeof *llama3_specials;
        L.special_base = 128000;
        L.n_reserved = 256 - L.n_specials;
        L.n_normal = L.special_base;
        v->bos = 128000, v->eos = 128009;
        v->add_bos = true;
        v->chat_template = llama3_template;
    } else if (strcmp(p->tokenizer_pre, "default") == 0) {
        L.specials = spm_specials;
        L.n_specials = 3;
        L.normal_base = 3;
        L.n_normal = N - 3;
        v->unk = 0, v->bos = 1, v->eos = 2;
        v->add_bos = true;
        v->chat_template = zephyr_template;
    } else {
        L.specials = smollm_specials;
        L.n_specials = sizeof smollm_specials / sizeof *smollm_specials;
        if (N < 2048) /* tiny: only the three chat tokens */
            L.n_specials = 3;
        L.normal_base = L.n_specials;
        L.n_normal = N - L.n_specials;
        v->unk = 0, v->bos = 1, v->eos = 2, v->pad = 2;
        v->chat_template = chatml_template;
    }
    if (L.special_base + L.n_specials + L.n_reserved > N || L.n_normal < 256)
        return ea_error_set(err, EA_EINVAL, "gen-model: vocabulary of %u tokens is too small", N);

    ea_status s = EA_ENOMEM;
    struct strset set = {0};
    struct word *words = NULL;
    uint32_t n_words = 0;
    uint64_t *pairs = NULL;
    v->n_tokens = N;
    v->tokens = ea_calloc(N, sizeof *v->tokens);
    v->types = ea_calloc(N, sizeof *v->types);
    v->merges = ea_calloc(L.n_normal, sizeof *v->merges);
    set.cap = 1;
    while (set.cap < N * 2)
        set.cap <<= 1;
    set.slots = ea_calloc(set.cap, sizeof *set.slots);
    set.strs = v->tokens;
    if (!v->tokens || !v->types || !v->merges || !set.slots)
        goto out;

    for (uint32_t i = 0; i < L.n_specials; i++) {
        uint32_t id = L.special_base + i;
        if (!(v->tokens[id] = ea_strdup(L.specials[i])))
            goto out;
        v->types[id] = EA_TOKTYPE_CONTROL;
    }
    if (strcmp(p->tokenizer_pre, "default") == 0)
        v->types[0] = EA_TOKTYPE_UNKNOWN;
    for (uint32_t i = 0; i < L.n_reserved; i++) {
        char name[64];
        uint32_t id = L.special_base + L.n_specials + i;
        snprintf(name, sizeof name, "<|reserved_special_token_%u|>", i + 3);
        if (!(v->tokens[id] = ea_strdup(name)))
            goto out;
        v->types[id] = EA_TOKTYPE_CONTROL;
    }
    /* Padding ids past the real specials (Qwen pads its embedding to 151936). */
    for (uint32_t id = 0; id < N; id++) {
        if (v->tokens[id] || (id >= L.normal_base && id < L.normal_base + L.n_normal))
            continue;
        char name[32];
        snprintf(name, sizeof name, "[PAD%u]", id);
        if (!(v->tokens[id] = ea_strdup(name)))
            goto out;
        v->types[id] = EA_TOKTYPE_UNUSED;
    }
    for (uint32_t id = 0; id < N; id++)
        if (v->tokens[id])
            set_add(&set, (int32_t)id);

    /* Byte tokens. */
    uint32_t next = L.normal_base;
    int32_t byte_id[256];
    for (unsigned b = 0; b < 256; b++) {
        char u[5] = {0};
        ea__utf8_encode(byte_to_cp(b), u);
        if (!(v->tokens[next] = ea_strdup(u)))
            goto out;
        v->types[next] = EA_TOKTYPE_NORMAL;
        byte_id[b] = (int32_t)next;
        set_add(&set, (int32_t)next++);
    }
    uint32_t end = L.normal_base + L.n_normal;

    /* Split the corpus into words: a word is an optional leading space plus
     * a run of letters, or a run of digits, or one other byte. */
    size_t clen = sizeof corpus - 1;
    words = ea_calloc(clen, sizeof *words);
    if (!words)
        goto out;
    for (size_t i = 0; i < clen;) {
        size_t j = i;
        if (corpus[j] == ' ' && j + 1 < clen &&
            ((corpus[j + 1] | 32) >= 'a' && (corpus[j + 1] | 32) <= 'z'))
            j++;
        size_t k = j;
        while (k < clen && (((corpus[k] | 32) >= 'a' && (corpus[k] | 32) <= 'z') ||
                            (corpus[k] >= '0' && corpus[k] <= '9')))
            k++;
        if (k == j)
            k = j + 1;
        struct word *w = &words[n_words++];
        w->n = (uint32_t)(k - i);
        if (!(w->ids = ea_malloc(w->n * sizeof *w->ids)))
            goto out;
        for (size_t t = i; t < k; t++)
            w->ids[t - i] = byte_id[(unsigned char)corpus[t]];
        i = k;
    }

    /* Plain BPE: merge the most frequent adjacent pair (ties: lowest ids). */
    pairs = ea_malloc(clen * sizeof *pairs);
    if (!pairs)
        goto out;
    while (next < end) {
        size_t np = 0;
        for (uint32_t wi = 0; wi < n_words; wi++)
            for (uint32_t t = 0; t + 1 < words[wi].n; t++)
                pairs[np++] = ((uint64_t)(uint32_t)words[wi].ids[t] << 32) |
                              (uint32_t)words[wi].ids[t + 1];
        qsort(pairs, np, sizeof *pairs, cmp_u64);
        uint64_t best_key = 0;
        size_t best = 1;
        for (size_t i = 0; i < np;) {
            size_t j = i;
            while (j < np && pairs[j] == pairs[i])
                j++;
            if (j - i > best) /* sorted: first maximum has the lowest ids */
                best = j - i, best_key = pairs[i];
            i = j;
        }
        if (best < 2)
            break;
        int32_t best_a = (int32_t)(best_key >> 32), best_b = (int32_t)(uint32_t)best_key;
        char *tok = join(v->tokens[best_a], v->tokens[best_b], 0);
        char *merge = join(v->tokens[best_a], v->tokens[best_b], ' ');
        if (!tok || !merge) {
            ea_free(tok);
            ea_free(merge);
            goto out;
        }
        int32_t id = set_find(&set, tok);
        if (id >= 0) { /* same string reachable another way: just record merge */
            ea_free(tok);
        } else {
            id = (int32_t)next++;
            v->tokens[id] = tok;
            v->types[id] = EA_TOKTYPE_NORMAL;
            set_add(&set, id);
        }
        v->merges[v->n_merges++] = merge;
        for (uint32_t wi = 0; wi < n_words; wi++) {
            struct word *w = &words[wi];
            uint32_t o = 0;
            for (uint32_t t = 0; t < w->n; t++) {
                if (t + 1 < w->n && w->ids[t] == best_a && w->ids[t + 1] == best_b) {
                    w->ids[o++] = id;
                    t++;
                } else {
                    w->ids[o++] = w->ids[t];
                }
            }
            w->n = o;
        }
    }

    /* Filler merges: existing token + short token, deterministic. */
    uint64_t rng = 0x5EEDC0DEull ^ N;
    uint32_t first_learnt = L.normal_base + 256;
    while (next < end) {
        uint32_t span = next - L.normal_base;
        int32_t a = (int32_t)(L.normal_base + splitmix(&rng) % span);
        int32_t b = (int32_t)(splitmix(&rng) % 4 == 0 && next > first_learnt
                                  ? first_learnt + splitmix(&rng) % (next - first_learnt)
                                  : L.normal_base + 0x21 + splitmix(&rng) % 94);
        /* b from the printable ASCII byte tokens most of the time */
        if (b >= (int32_t)next)
            continue;
        if (strlen(v->tokens[a]) + strlen(v->tokens[b]) > 16)
            continue;
        char *tok = join(v->tokens[a], v->tokens[b], 0);
        if (!tok)
            goto out;
        if (set_find(&set, tok) >= 0) {
            ea_free(tok);
            continue;
        }
        char *merge = join(v->tokens[a], v->tokens[b], ' ');
        if (!merge) {
            ea_free(tok);
            goto out;
        }
        int32_t id = (int32_t)next++;
        v->tokens[id] = tok;
        v->types[id] = EA_TOKTYPE_NORMAL;
        set_add(&set, id);
        v->merges[v->n_merges++] = merge;
    }
    s = EA_OK;
out:
    if (words)
        for (uint32_t i = 0; i < n_words; i++)
            ea_free(words[i].ids);
    ea_free(words);
    ea_free(pairs);
    ea_free(set.slots);
    if (s) {
        ea__builtin_vocab_release(v);
        return ea_error_set(err, s, "gen-model: out of memory building the vocabulary");
    }
    return EA_OK;
}
